"""Fixtures for the loopback AWS endpoints: moto server, LookupEvents endpoint.

One moto server in server mode serves S3, SQS, SNS, STS, IAM and EC2 on a free loopback port.
Product code reaches it only through standard boto3 settings: child processes get
``AWS_ENDPOINT_URL`` plus fake credentials and a region in their environment (``moto_env``).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

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
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        region_name=REGION,
    )

    def make(service: str):
        return session.client(service, endpoint_url=moto_server)

    return make


@pytest.fixture
def unique_name() -> str:
    """A short name unique to this test, for buckets and queues on the shared moto server."""
    return "t" + uuid.uuid4().hex[:12]


# -- CloudTrail test data and a sink that records what a pipeline hands to Splunk -------------
ACCOUNT = "123456789012"


def make_records(
    count: int, start: str = "2023-08-26T20:00:00Z", prefix: str = "ev", principal: str = "alice", **fields
) -> list[dict]:
    """``count`` CloudTrail-shaped records, one second apart from ``start``, eventIDs
    ``<prefix>-<n>``; ``fields`` are added to every record (e.g. errorCode="AccessDenied")."""
    import datetime

    base = datetime.datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ")
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
        records.append(record)
    return records


def log_file(records: list[dict], compress: bool = True) -> bytes:
    """A CloudTrail log file body (``{"Records": [...]}``, gzipped by default)."""
    import gzip
    import json

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
        import json

        return [json.loads(event[0]).get("eventID") for event in self.flushed]


def make_queue(aws_clients, name: str, bucket: str | None = None, dlq_after: int = 0) -> str:
    """An SQS queue (optionally with a dead-letter queue after ``dlq_after`` receives, and fed by
    ``bucket``'s ObjectCreated notifications); returns its URL."""
    import json

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
