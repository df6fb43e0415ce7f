"""Fixtures for the loopback AWS endpoints: moto server, LookupEvents endpoint.

One moto server in server mode serves S3, SQS, SNS, STS, IAM and EC2 on a free loopback port.
Product code reaches it only through standard boto3 settings: child processes get
``AWS_ENDPOINT_URL`` plus fake credentials and a region in their environment (``moto_env``).
"""

from __future__ import annotations

import base64
import datetime
import gzip
import http.client
import http.server
import json
import logging
import os
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

FAKE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
FAKE_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_moto() -> Iterator[str]:
    """Start moto in server mode on a free loopback port; yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def aws_env(endpoint_url: str) -> dict[str, str]:
    """Environment a child process needs to reach the loopback endpoint with fake credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        # Nothing from the developer's own ~/.aws may leak into a test.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Endpoint URL of a moto server (S3, SQS, SNS, STS, IAM, EC2) on loopback, for the session."""
    with running_moto() as url:
        yield url


@pytest.fixture(scope="session")
def moto_env(moto_server: str) -> dict[str, str]:
    """Environment variables for child processes (entry scripts) to use the moto server."""
    return aws_env(moto_server)


@pytest.fixture
def aws_clients(moto_server: str):
    """A factory of boto3 clients on the moto server, for tests to seed and inspect AWS state."""
    return client_factory(moto_server)


def client_factory(endpoint: str):
    """``make(service)`` -> a boto3 client on ``endpoint`` with the fake credentials."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        region_name=REGION,
    )

    def make(service: str):
        return session.client(service, endpoint_url=endpoint)

    return make


@pytest.fixture
def unique_name() -> str:
    """A short name unique to this test, for buckets and queues on the shared moto server."""
    return "t" + uuid.uuid4().hex[:12]


# -- CloudTrail test data and a sink that records what a pipeline hands to Splunk -------------
ACCOUNT = "123456789012"


def make_records(
    count: int,
    start: str = "2023-08-26T20:00:00Z",
    prefix: str = "ev",
    principal: str = "alice",
    noise: bool = False,
    seed: int | None = None,
    **fields,
) -> list[dict]:
    """``count`` CloudTrail-shaped records, one second apart from ``start``, eventIDs
    ``<prefix>-<n>``; ``fields`` are added to every record (e.g. errorCode="AccessDenied");
    ``noise`` adds a random requestID (files that gzip like real ones, not 50:1), the same
    ones for the same ``seed``."""
    base = datetime.datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ")
    rng = random.Random(seed)
    records = []
    for n in range(count):
        when = base + datetime.timedelta(seconds=n)
        record = {
            "eventVersion": "1.08",
            "eventID": f"{prefix}-{n}",
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "iam.amazonaws.com",
            "eventName": "ListUsers",
            "awsRegion": REGION,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-cli/2.13.0",
            "recipientAccountId": ACCOUNT,
            "userIdentity": {
                "type": "IAMUser",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/{principal}",
                "accountId": ACCOUNT,
                "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            },
        }
        record.update(fields)
        if noise:
            record["requestID"] = uuid.uuid4().hex if seed is None else f"{rng.getrandbits(128):032x}"
        records.append(record)
    return records


def log_file(records: list[dict], compress: bool = True) -> bytes:
    """A CloudTrail log file body (``{"Records": [...]}``, gzipped by default)."""
    body = json.dumps({"Records": records}).encode("utf-8")
    return gzip.compress(body) if compress else body


def log_key(
    when: str = "20230826T2035Z", suffix: str = "abc", region: str = REGION, account: str = ACCOUNT
) -> str:
    """The S3 key CloudTrail gives a log file delivered at ``when`` (``YYYYMMDDTHHMMZ``)."""
    day = f"{when[0:4]}/{when[4:6]}/{when[6:8]}"
    return (
        f"AWSLogs/{account}/CloudTrail/{region}/{day}/{account}_CloudTrail_{region}_{when}_{suffix}.json.gz"
    )


class RecordingSink:
    """An ``EventSink`` keeping events in memory; ``flushed`` = what Splunk would have."""

    def __init__(self) -> None:
        self.pending: list[tuple] = []
        self.flushed: list[tuple] = []
        self.flushes = 0

    def write(self, data: str, time: float | None, source: str, sourcetype: str) -> None:
        self.pending.append((data, time, source, sourcetype))

    def flush(self) -> None:
        self.flushed.extend(self.pending)
        self.pending = []
        self.flushes += 1

    def event_ids(self) -> list[str]:
        return [json.loads(event[0]).get("eventID") for event in self.flushed]


def make_queue(aws_clients, name: str, bucket: str | None = None, dlq_after: int = 0) -> str:
    """An SQS queue (optionally with a dead-letter queue after ``dlq_after`` receives, and fed by
    ``bucket``'s ObjectCreated notifications); returns its URL."""
    sqs = aws_clients("sqs")
    attributes = {}
    if dlq_after:
        dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": dlq_after}
        )
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    if bucket:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        aws_clients("s3").put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
    return url


@pytest.fixture
def trail(aws_clients, unique_name) -> dict:
    """A trail bucket whose ObjectCreated notifications go to a queue (DLQ after 3 receives):
    ``bucket``, ``queue`` (URL), and the ``s3`` and ``sqs`` clients."""
    s3 = aws_clients("s3")
    s3.create_bucket(Bucket=unique_name)
    queue = make_queue(aws_clients, unique_name, bucket=unique_name, dlq_after=3)
    return {"bucket": unique_name, "queue": queue, "s3": s3, "sqs": aws_clients("sqs")}


def queue_depth(trail: dict) -> int:
    """Messages on the trail's queue, visible or not."""
    values = trail["sqs"].get_queue_attributes(QueueUrl=trail["queue"], AttributeNames=["All"])["Attributes"]
    return int(values["ApproximateNumberOfMessages"]) + int(values["ApproximateNumberOfMessagesNotVisible"])


# -- a fault-injecting proxy in front of moto ---------------------------------------------------
@dataclass
class FaultRule:
    """Requests whose ``METHOD path`` contains ``match`` (and ``X-Amz-Target`` contains ``target``)
    get an AWS error (``status``/``code``; ``xml_error``: the query protocol's XML error body, also
    on a JSON protocol, as moto answers a rejected key on SQS) or the real answer altered: with
    ``stall_after``, cut in two with ``stall_seconds`` between the parts; with ``reset_after``,
    cut there and the connection closed (a download reset mid-file); with ``rate``, sent at that
    many bytes per second. ``times`` limits how often it fires (0 = always)."""

    match: str = ""
    target: str = ""
    status: int = 403
    code: str = "AccessDenied"
    message: str = "Access Denied"
    xml_error: bool = False
    stall_after: int = -1
    stall_seconds: float = 0.0
    reset_after: int = -1
    rate: float = 0.0
    times: int = 0
    fired: int = 0
    stalling: threading.Event = field(default_factory=threading.Event)  # set during a stall

    def alters(self) -> bool:
        """True if the real answer is sent (altered), False if an error replaces it."""
        return self.stall_after >= 0 or self.reset_after >= 0 or self.rate > 0


def serve(
    handle, context: ssl.SSLContext | None = None, connect: bool = False
) -> http.server.ThreadingHTTPServer:
    """A threaded HTTP/1.1 server on a free loopback port (TLS with ``context``), serving forever
    in a daemon thread, that hands every request (``BaseHTTPRequestHandler``) to ``handle``;
    CONNECT too with ``connect`` (else answered 501 as before)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _handle(self) -> None:
            handle(self)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle
        if connect:
            do_CONNECT = _handle

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def relay(request, host: str, port: int, path: str, body: bytes, drop: tuple[str, ...] = ()) -> bytes:
    """Send ``request`` (its method, headers but ``drop``, ``body``) to ``host:port`` ``path`` and
    answer it with the upstream's status and headers; return the payload, left for the caller to
    write (HEAD: write nothing)."""
    upstream = http.client.HTTPConnection(host, port, timeout=60)
    skip = ("connection", "content-length", *drop)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
    upstream.request(request.command, path, body=body, headers=headers)
    response = upstream.getresponse()
    payload = response.read()
    request.send_response(response.status)
    for name, value in response.getheaders():
        if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
            request.send_header(name, value)
    size = response.getheader("Content-Length") if request.command == "HEAD" else str(len(payload))
    request.send_header("Content-Length", size or "0")
    request.end_headers()
    upstream.close()
    return payload


class KeyRecorder:
    """A loopback relay in front of an AWS stand-in (moto) that keeps the access key id each
    request was signed with (SigV4 ``Authorization: ... Credential=<key id>/...``); products
    reach it through an endpoint setting (``endpoint_urls = ec2=<url>``)."""

    def __init__(self, target: str) -> None:
        self.key_ids: list[str] = []
        upstream = urllib.parse.urlsplit(target)

        def forward(request) -> None:
            match = re.search(r"Credential=([A-Z0-9]+)/", request.headers.get("Authorization", ""))
            self.key_ids.append(match.group(1) if match else "")
            length = int(request.headers.get("Content-Length") or 0)
            body = request.rfile.read(length) if length else b""
            payload = relay(request, upstream.hostname, upstream.port, request.path, body)
            if request.command != "HEAD":
                request.wfile.write(payload)

        self.server = serve(forward)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FaultProxy:
    """A loopback HTTP proxy in front of moto: products reach it through an endpoint setting
    (``endpoint_urls = s3=<proxy url>``), tests add ``FaultRule``s to make AWS fail on purpose."""

    def __init__(self, target: str) -> None:
        self.target = urllib.parse.urlsplit(target)
        self.rules: list[FaultRule] = []
        self.server = serve(self.forward)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, **kwargs) -> FaultRule:
        rule = FaultRule(**kwargs)
        self.rules.append(rule)
        return rule

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _rule(self, request) -> FaultRule | None:
        line = f"{request.command} {urllib.parse.unquote(request.path)}"
        target = request.headers.get("X-Amz-Target", "")
        for rule in self.rules:
            if rule.match in line and rule.target in target and (not rule.times or rule.fired < rule.times):
                rule.fired += 1
                return rule
        return None

    def forward(self, request) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        rule = self._rule(request)
        if rule is not None and not rule.alters():
            if rule.xml_error:
                payload = (
                    '<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
                    f"<Code>{rule.code}</Code><Message>{rule.message}</Message></Error>"
                    "<RequestId>standin</RequestId></ErrorResponse>"
                ).encode()
                headers = {"Content-Type": "text/xml"}
            elif request.headers.get("X-Amz-Target"):
                payload = json.dumps({"__type": rule.code, "message": rule.message}).encode()
                headers = {
                    "Content-Type": "application/x-amz-json-1.0",
                    "x-amzn-query-error": f"{rule.code};Sender",
                }
            else:
                payload = f"<Error><Code>{rule.code}</Code><Message>{rule.message}</Message></Error>".encode()
                headers = {"Content-Type": "application/xml"}
            request.send_response(rule.status)
            for name, value in headers.items():
                request.send_header(name, value)
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            if request.command != "HEAD":
                request.wfile.write(payload)
            return
        payload = relay(request, self.target.hostname, self.target.port, request.path, body)
        if request.command == "HEAD":
            return
        try:
            if rule is not None and rule.reset_after >= 0:  # part, then the connection is gone
                request.wfile.write(payload[: rule.reset_after])
                request.wfile.flush()
                request.close_connection = True
                request.connection.shutdown(socket.SHUT_RDWR)
                return
            if rule is not None and rule.stall_after >= 0:  # a stall: part, pause, rest
                request.wfile.write(payload[: rule.stall_after])
                request.wfile.flush()
                rule.stalling.set()
                time.sleep(rule.stall_seconds)
                rule.stalling.clear()
                payload = payload[rule.stall_after :]
            if rule is not None and rule.rate > 0:  # a slow link: 16 KiB pieces at ``rate`` bytes/s
                for at in range(0, len(payload), 16384):
                    request.wfile.write(payload[at : at + 16384])
                    request.wfile.flush()
                    time.sleep(16384 / rule.rate)
                return
            request.wfile.write(payload)
        except (ConnectionError, BrokenPipeError, OSError):
            pass  # the client was killed or gave up: nothing to answer


@pytest.fixture
def fault_proxy(moto_server: str) -> Iterator[FaultProxy]:
    """A ``FaultProxy`` in front of the session's moto server, for one test."""
    proxy = FaultProxy(moto_server)
    yield proxy
    proxy.close()


# -- a forwarding HTTP proxy (absolute-URI requests, no CONNECT) --------------------------------
class ForwardProxy:
    """A loopback forward proxy for plain-http endpoints: botocore, given ``proxies`` for an
    http:// endpoint, sends ``GET http://host:port/path`` here; the request is forwarded to that
    host and counted. With ``user``/``password`` set, a request without the matching
    ``Proxy-Authorization: Basic`` header gets 407. ``requests``: (method, host:port, path)."""

    def __init__(self, user: str = "", password: str = "") -> None:
        self.requests: list[tuple[str, str, str]] = []
        self.rejected = 0
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user else ""
        self.server = serve(self.forward)
        self.port = self.server.server_address[1]

    def forward(self, request) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if self.expected and request.headers.get("Proxy-Authorization") != self.expected:
            self.rejected += 1
            request.send_response(407)
            request.send_header("Proxy-Authenticate", 'Basic realm="standin"')
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        target = urllib.parse.urlsplit(request.path)  # absolute-form: http://host:port/path?query
        self.requests.append((request.command, target.netloc, target.path))
        path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        drop = ("proxy-authorization", "proxy-connection")
        payload = relay(request, target.hostname, target.port, path, body, drop)
        if request.command != "HEAD":
            request.wfile.write(payload)

    def url(self, user: str = "", password: str = "") -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
