"""A loopback CloudTrail ``LookupEvents`` endpoint (moto does not implement the operation).

It speaks the real AWS JSON 1.1 protocol to the real boto3 client (``endpoint_url``): ``POST /``
with ``X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`` and
``Content-Type: application/x-amz-json-1.1``. Shapes follow botocore's ``cloudtrail`` service
model: request ``StartTime``/``EndTime`` (epoch seconds), ``LookupAttributes`` (at most one),
``MaxResults`` (1..50, default 50), ``NextToken``; response ``Events`` newest first (each with
``CloudTrailEvent`` = the record JSON as a string) and ``NextToken`` while more remain.

Like the real service it
- serves the records loaded for the caller's account and region (region from the SigV4
  credential scope, account from a key -> account map, else ``default_account``);
- limits each account+region to ``rate`` requests a second (a token bucket holding ``burst``
  tokens) and answers the excess with ``ThrottlingException`` (HTTP 400);
- keeps pages stable while new events arrive: a ``NextToken`` names the last event returned.

For tests it also injects faults on demand (``inject("throttle"|500|"AccessDeniedException", n)``)
and records
every request (``requests``) for assertions. Signatures are not verified.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
CONTENT_TYPE = "application/x-amz-json-1.1"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
MAX_RESULTS = 50
ATTRIBUTE_KEYS = (
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
)
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


def parse_event_time(value: str) -> float:
    """CloudTrail's ``eventTime`` (``2023-08-26T20:35:01Z``) -> epoch seconds."""
    text = value.strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _username(record: Mapping[str, Any]) -> str:
    identity = record.get("userIdentity") or {}
    if identity.get("userName"):
        return str(identity["userName"])
    arn = str(identity.get("arn") or "")
    if identity.get("type") == "AssumedRole" and "/" in arn:
        return arn.rsplit("/", 1)[-1]
    if identity.get("type") == "Root":
        return "root"
    return arn.rsplit("/", 1)[-1] if arn else ""


@dataclass(frozen=True)
class StoredEvent:
    """One record as LookupEvents serves it."""

    time: float
    event_id: str
    body: str
    event: dict[str, Any]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StoredEvent:
        identity = record.get("userIdentity") or {}
        resources = [
            {"ResourceType": r.get("type"), "ResourceName": r.get("ARN") or r.get("arn")}
            for r in record.get("resources") or []
            if isinstance(r, Mapping)
        ]
        read_only = record.get("readOnly")
        event = {
            "EventId": str(record["eventID"]),
            "EventName": str(record.get("eventName", "")),
            "ReadOnly": "" if read_only is None else str(read_only).lower(),
            "AccessKeyId": str(identity.get("accessKeyId", "")),
            "EventTime": parse_event_time(str(record["eventTime"])),
            "EventSource": str(record.get("eventSource", "")),
            "Username": _username(record),
            "Resources": resources,
            "CloudTrailEvent": json.dumps(record, separators=(",", ":")),
        }
        return cls(event["EventTime"], event["EventId"], event["CloudTrailEvent"], event)

    @property
    def order(self) -> tuple[float, str]:
        return (self.time, self.event_id)

    def matches(self, key: str, value: str) -> bool:
        if key in ("ResourceType", "ResourceName"):
            return any(r.get(key) == value for r in self.event["Resources"])
        return str(self.event.get(key, "")) == value


@dataclass
class RecordedRequest:
    """What the endpoint saw and answered, for assertions."""

    at: float
    account: str
    region: str
    access_key: str
    target: str
    params: dict[str, Any]
    status: int
    error: str = ""
    returned: int = 0


class _Bucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class LookupEventsServer:
    """The endpoint; ``with LookupEventsServer() as server: server.endpoint_url``."""

    rate: float | None = 2.0
    burst: float = 2.0
    default_account: str = DEFAULT_ACCOUNT
    clock: Callable[[], float] = time.monotonic
    host: str = "127.0.0.1"
    port: int = 0
    hang_seconds: float = 30.0
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[tuple[str, str], dict[str, StoredEvent]] = {}
        self._sorted: dict[tuple[str, str], list[StoredEvent]] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._faults: list[int | str] = []
        self.received = 0  # requests that reached the handler (answered or not yet)
        self._keys: dict[str, str] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- set-up ---------------------------------------------------------------------------------
    def load(
        self, records: Iterable[Mapping[str, Any]], region: str = DEFAULT_REGION, account: str | None = None
    ) -> int:
        """Serve ``records`` to callers in ``account`` (default: the default account) and ``region``.

        A record whose eventID is already loaded replaces the old one. Returns how many were loaded.
        """
        key = (account or self.default_account, region)
        count = 0
        with self._lock:
            store = self._events.setdefault(key, {})
            for record in records:
                event = StoredEvent.from_record(record)
                store[event.event_id] = event
                count += 1
            self._sorted[key] = sorted(store.values(), key=lambda e: e.order, reverse=True)
        return count

    def map_key(self, access_key_id: str, account: str) -> None:
        """Requests signed with ``access_key_id`` act in ``account``."""
        self._keys[access_key_id] = account

    def inject(self, fault: int | str, count: int = 1) -> None:
        """Answer the next ``count`` requests with ``fault``: ``"throttle"`` (ThrottlingException),
        an HTTP 5xx status (InternalFailure), ``"hang"`` (HTTP 500 after ``hang_seconds``), or
        another AWS error code answered with HTTP 400 (``"AccessDeniedException"``...)."""
        if isinstance(fault, int) and not 500 <= fault <= 599:
            raise ValueError(f"an injected HTTP status must be 5xx, not {fault}")
        if isinstance(fault, str) and not re.match(r"^[A-Za-z]+$", fault):
            raise ValueError(f"an injected error must be 'throttle' or an AWS error code, not {fault!r}")
        with self._lock:
            self._faults.extend([fault] * count)

    def served(self, region: str | None = None) -> list[RecordedRequest]:
        """The LookupEvents requests answered with 200, optionally for one region."""
        with self._lock:
            return [r for r in self.requests if r.status == 200 and region in (None, r.region)]

    # -- life cycle -----------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> LookupEventsServer:
        handler = type("Handler", (_Handler,), {"endpoint": self})
        self._httpd = _QuietServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="lookup-events", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LookupEventsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the API --------------------------------------------------------------------------------
    def handle(self, target: str, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one request: (HTTP status, JSON body)."""
        scope = _SCOPE.search(authorization or "")
        access_key = scope.group(1) if scope else ""
        region = scope.group(2) if scope else DEFAULT_REGION
        account = self._keys.get(access_key, self.default_account)
        now = self.clock()
        entry = RecordedRequest(now, account, region, access_key, target, {}, 200)
        try:
            try:
                params = json.loads(body.decode("utf-8") or "{}")
            except ValueError:
                raise ApiError(400, "SerializationException", "request body is not JSON") from None
            entry.params = params
            with self._lock:
                self.received += 1
                fault = self._faults.pop(0) if self._faults else None
            if fault == "hang":  # a server that does not answer for a while, then fails
                time.sleep(self.hang_seconds)
                raise ApiError(500, "InternalFailure", "injected slow server error")
            with self._lock:
                if fault == "throttle":
                    raise ApiError(400, "ThrottlingException", "Rate exceeded")
                if isinstance(fault, str):
                    raise ApiError(400, fault, f"injected {fault}")
                if fault is not None:
                    raise ApiError(int(fault), "InternalFailure", "injected server error")
                if self.rate is not None:
                    bucket = self._buckets.get((account, region))
                    if bucket is None:
                        bucket = self._buckets[(account, region)] = _Bucket(self.rate, self.burst, now)
                    if not bucket.take(now):
                        raise ApiError(400, "ThrottlingException", "Rate exceeded")
            if not target.startswith(TARGET_PREFIX):
                raise ApiError(400, "UnknownOperationException", f"unknown target {target}")
            operation = target[len(TARGET_PREFIX) :]
            if operation != "LookupEvents":
                raise ApiError(400, "UnknownOperationException", f"operation {operation} not served")
            answer = self._lookup(account, region, params)
            entry.returned = len(answer["Events"])
            return 200, answer
        except ApiError as exc:
            entry.status, entry.error = exc.status, exc.code
            return exc.status, {"__type": exc.code, "message": exc.message}
        finally:
            with self._lock:
                self.requests.append(entry)

    def _lookup(self, account: str, region: str, params: Mapping[str, Any]) -> dict[str, Any]:
        limit = params.get("MaxResults", MAX_RESULTS)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
            raise ApiError(400, "InvalidMaxResultsException", "MaxResults must be 1 to 50")
        start = params.get("StartTime")
        end = params.get("EndTime")
        if start is not None and end is not None and float(start) > float(end):
            raise ApiError(400, "InvalidTimeRangeException", "StartTime is after EndTime")
        attributes = params.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise ApiError(400, "InvalidLookupAttributesException", "only one lookup attribute allowed")
        for attribute in attributes:
            if attribute.get("AttributeKey") not in ATTRIBUTE_KEYS:
                raise ApiError(400, "InvalidLookupAttributesException", "unknown AttributeKey")
        if params.get("EventCategory") not in (None, "insight"):
            raise ApiError(400, "InvalidEventCategoryException", "EventCategory must be insight")
        query = {k: params.get(k) for k in ("StartTime", "EndTime", "LookupAttributes", "EventCategory")}
        digest = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]
        after: tuple[float, str] | None = None
        if params.get("NextToken"):
            try:
                token = json.loads(base64.urlsafe_b64decode(params["NextToken"].encode()))
                after = (float(token["t"]), str(token["id"]))
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "InvalidNextTokenException", "NextToken is not valid") from None
            if token.get("q") != digest:
                raise ApiError(400, "InvalidNextTokenException", "NextToken was issued for other parameters")
        if params.get("EventCategory") == "insight":
            return {"Events": []}
        with self._lock:
            events = list(self._sorted.get((account, region), []))
        page: list[StoredEvent] = []
        more = False
        for event in events:
            if after is not None and event.order >= after:
                continue
            if start is not None and event.time < float(start):
                continue
            if end is not None and event.time > float(end):
                continue
            if attributes and not event.matches(
                attributes[0]["AttributeKey"], attributes[0]["AttributeValue"]
            ):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(event)
        answer: dict[str, Any] = {"Events": [e.event for e in page]}
        if more:
            last = page[-1]
            token = json.dumps({"t": last.time, "id": last.event_id, "q": digest})
            answer["NextToken"] = base64.urlsafe_b64encode(token.encode()).decode()
        return answer


def make_records(
    count: int,
    end: float,
    step: float = 1.0,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    prefix: str = "evt",
) -> list[dict[str, Any]]:
    """``count`` synthetic CloudTrail records, one every ``step`` s, the newest at ``end``.

    Every third one is a failed call (AccessDenied); eventIDs are ``<prefix>-<n>``, unique per prefix.
    """
    records = []
    for n in range(count):
        moment = end - (count - 1 - n) * step
        stamp = datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        record: dict[str, Any] = {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": f"AIDAEXAMPLE{n % 7:04d}",
                "arn": f"arn:aws:iam::{account}:user/user{n % 7}",
                "accountId": account,
                "accessKeyId": f"AKIAEXAMPLE{n % 7:05d}",
                "userName": f"user{n % 7}",
            },
            "eventTime": stamp,
            "eventSource": "iam.amazonaws.com",
            "eventName": ("ListUsers", "GetUser", "ListRoles")[n % 3],
            "awsRegion": region,
            "sourceIPAddress": f"198.51.100.{n % 250}",
            "userAgent": "aws-cli/2.13.0",
            "requestParameters": None,
            "responseElements": None,
            "requestID": f"req-{prefix}-{n}",
            "eventID": f"{prefix}-{n}",
            "readOnly": True,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        }
        if n % 3 == 0:
            record["errorCode"] = "AccessDenied"
            record["errorMessage"] = "User is not authorized to perform: iam:ListUsers"
        records.append(record)
    return records


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) while its request hung is not an error."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    endpoint: LookupEventsServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        status, answer = self.endpoint.handle(
            self.headers.get("X-Amz-Target", ""), self.headers.get("Authorization", ""), body
        )
        payload = json.dumps(answer).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", hashlib.md5(body + str(time.time()).encode()).hexdigest())
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


def main(argv: list[str] | None = None) -> int:
    """Serve CloudTrail JSON files (``{"Records": [...]}``) on loopback until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="CloudTrail log files to serve (JSON)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--rate", type=float, default=2.0, help="requests/s per account+region")
    args = parser.parse_args(argv)
    server = LookupEventsServer(rate=args.rate, port=args.port)
    for name in args.files:
        with open(name, encoding="utf-8") as handle:
            server.load(json.load(handle).get("Records", []), region=args.region)
    with server:
        print(server.endpoint_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
