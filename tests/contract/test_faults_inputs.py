"""The inputs' fault suite: the installed package under damaged files, failed reads, stops and
kills, driven as splunkd drives it (bare Python 3.9 and 3.13, moto on loopback, faults from the
proxy the input reaches through ``endpoint_urls``).

Every case is seeded and asserts delivered == expected by eventID with 0 duplicates, or, for
kill -9, at most one batch re-sent per kill (docs/inputs.md: 500 events, 256 KiB plus one
record). Figures per case go to ``$IAMSPIKE_FAULTS_REPORT`` (JSON lines) when it is set; they
are what docs/reliability.md reports.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import random
import time
import zlib

import pytest
from standin import modinput
from standin.fixtures_aws import log_file, log_key, make_queue, make_records, queue_depth

pytestmark = pytest.mark.contract

SEED = 16
KILLS = 10  # seeded kill -9 times per input and Python: 20 per input over 3.9 and 3.13
STOPS = 5  # seeded SIGTERMs of one of two forwarders per Python
BATCH_EVENTS, BATCH_BYTES = 500, 256 * 1024  # the kill -9 bound of docs/inputs.md
SQS, S3 = "aws_cloudtrail_sqs", "aws_cloudtrail_s3"


def report(case: str, python: str, expected: list[str], delivered: list[str], bound: int = 0) -> None:
    """Assert delivered == expected by eventID with at most ``bound`` duplicates; record it."""
    counts = collections.Counter(delivered)
    lost = len(set(expected) - set(counts))
    unexpected = len(set(counts) - set(expected))
    duplicated = sum(count - 1 for count in counts.values())
    path = os.environ.get("IAMSPIKE_FAULTS_REPORT")
    if path:
        row = {"case": case, "python": python, "expected": len(expected), "lost": lost}
        row.update(duplicated=duplicated, unexpected=unexpected, held=not lost and duplicated <= bound)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
    assert (lost, unexpected) == (0, 0), (case, lost, unexpected)
    assert duplicated <= bound, (case, duplicated, bound)


class Log:
    """The input's log in the session's SPLUNK_HOME, from where it stood when the test began."""

    def __init__(self, home, kind: str) -> None:
        self.path = os.path.join(home.log_dir, f"ta_aws_iam_error_spike_{kind}.log")
        self.start = os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def text(self) -> str:
        try:
            with open(self.path, encoding="utf-8") as handle:
                handle.seek(self.start)
                return handle.read()
        except FileNotFoundError:
            return ""

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text() and time.monotonic() < deadline:
            time.sleep(0.2)


def version(splunk_python: str) -> str:
    return "3.13" if "3.13" in splunk_python else "3.9"


def ids_by_source(events: list[modinput.Event]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = collections.defaultdict(list)
    for event in events:
        found[event.source or ""].append(json.loads(event.data)["eventID"])
    return found


def whole_records(records: list[dict], data: bytes) -> list[str]:
    """eventIDs of the records whose JSON text is wholly readable from the start of a damaged
    gzip ``data`` (fed to zlib a byte at a time until it refuses)."""
    inflater, out = zlib.decompressobj(wbits=31), []
    for at in range(len(data)):
        try:
            out.append(inflater.decompress(data[at : at + 1]))
        except zlib.error:
            break
    text = b"".join(out).decode("utf-8", "replace")
    found = [record["eventID"] for record in records if json.dumps(record) in text]
    return found[: next((n for n, i in enumerate(found) if i != records[n]["eventID"]), len(found))]


def sqs_input(python, home, trail, tmp_path, env, name="a", **params) -> modinput.InputProcess:
    params = {"queue_url": trail["queue"], "interval": "300", "wait_seconds": "1", **params}
    return modinput.InputProcess(
        python, home, "aws_cloudtrail_sqs.py", f"{SQS}://{name}", params, str(tmp_path / name), env
    )


def s3_input(python, home, bucket, tmp_path, env, **params) -> modinput.InputProcess:
    params = {"bucket": bucket, "start_date": "2023-08-25", "interval": "300", **params}
    return modinput.InputProcess(
        python, home, "aws_cloudtrail_s3.py", f"{S3}://t", params, str(tmp_path / "cp"), env
    )


# -- damaged and odd files on SQS (what held in the independent matrix, and the truncated gzip) ----
def test_damaged_and_odd_files_give_every_intact_record_once(
    splunk_python, splunk_home, trail, tmp_path, moto_env, fault_proxy
):
    log = Log(splunk_home, SQS)
    py, bucket = version(splunk_python), trail["bucket"]
    files: dict[str, tuple[str, bytes, list[str]]] = {}

    def add(case, records, body=None, expected=None, suffix=None):
        key = log_key("20230826T2030Z", suffix or case)
        body = log_file(records) if body is None else body
        files[case] = (key, body, [r["eventID"] for r in records] if expected is None else expected)

    big = make_records(5, prefix="big")
    big[2]["requestParameters"] = {"policyDocument": "x" * 2_000_000}  # over max_record_bytes
    truncated = make_records(2000, prefix="trunc", noise=True, seed=SEED)
    cut = log_file(truncated)[: len(log_file(truncated)) * 3 // 5]
    corrupt = make_records(2000, prefix="corrupt", noise=True, seed=SEED)
    # half the file, then a block zlib refuses at once (reserved block type): corrupt data that a
    # reader can tell from the records (bytes altered at random may decode to garbage first)
    body, deflate = json.dumps({"Records": corrupt}).encode(), zlib.compressobj(wbits=31)
    altered = deflate.compress(body[: len(body) // 2]) + deflate.flush(zlib.Z_FULL_FLUSH) + b"\x07" * 512
    latin = json.dumps({"Records": make_records(3, prefix="latin")}).encode().replace(b"alice", b"al\xe9ce")
    add("not gzip nor JSON", [], b"PK\x03\x04 a zip file")
    add("gzip holding no JSON", [], gzip.compress(b"eventID,eventName\nx,ListUsers\n"), suffix="csv")
    add("no Records", [], gzip.compress(b'{"Version": "1.0"}'), suffix="norecords")
    add("non-UTF-8 bytes", [], gzip.compress(latin), [f"latin-{n}" for n in range(3)], suffix="latin")
    add("a 2 MB record", big, expected=["big-0", "big-1", "big-3", "big-4"], suffix="big")
    add("truncated gzip", truncated, cut, whole_records(truncated, cut), suffix="trunc")
    add("corrupt gzip", corrupt, bytes(altered), whole_records(corrupt, bytes(altered)), suffix="corrupt")
    add("URL-encoded key", make_records(30, prefix="url"), suffix="a+b c=d")
    add("duplicate notification", make_records(40, prefix="dup"), suffix="dup")
    add(
        "download stalled mid-file", make_records(3000, prefix="stall", noise=True, seed=SEED), suffix="stall"
    )
    for key, body, _ in files.values():
        trail["s3"].put_object(Bucket=bucket, Key=key, Body=body)
    key, _, _ = files["duplicate notification"]
    again = {
        "Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}
        ]
    }
    trail["sqs"].send_message(QueueUrl=trail["queue"], MessageBody=json.dumps(again))
    gone = log_key("20230826T2030Z", "gone")
    trail["s3"].put_object(Bucket=bucket, Key=gone, Body=log_file(make_records(5, prefix="gone")))
    trail["s3"].delete_object(Bucket=bucket, Key=gone)  # NoSuchKey: left for the dead-letter queue
    stalled = files["download stalled mid-file"]
    fault_proxy.add(
        match=stalled[0].rsplit("/", 1)[1], stall_after=len(stalled[1]) // 2, stall_seconds=2, times=1
    )
    expected_total = sum(len(expected) for _, _, expected in files.values())
    run = sqs_input(
        splunk_python, splunk_home, trail, tmp_path, moto_env, endpoint_urls=f"s3={fault_proxy.url}"
    )
    run.wait_for(expected_total, 60)
    log.wait_for("deleted after its notification")
    run.wait_until(lambda: queue_depth(trail) == 1)  # every message but the deleted object's is done
    assert run.terminate() < 5
    delivered = ids_by_source(run.events())
    for case, (key, _, expected) in files.items():
        report(f"SQS: {case}", py, expected, delivered.pop(f"s3://{bucket}/{key}", []))
    assert not delivered  # nothing from anywhere else (the deleted object)
    assert queue_depth(trail) == 1  # the deleted object's message, left for the dead-letter queue
    text = log.text()
    assert "gzip file holding no JSON" in text and "neither gzip nor JSON" in text
    trunc = len(files["truncated gzip"][2])
    assert (
        f"the damage starts after record {trunc} (eventID trunc-{trunc - 1}): truncated gzip stream" in text
    )
    assert "deleted after its notification" in text and "Traceback" not in text


# -- two forwarders on one queue, one of them stopped (SIGTERM) at seeded random points ---------
def test_two_forwarders_one_stopped_at_random_points_lose_and_duplicate_nothing(
    splunk_python, splunk_home, trail, tmp_path, moto_env, fault_proxy
):
    log = Log(splunk_home, SQS)
    rng = random.Random(f"{SEED}-sigterm-{version(splunk_python)}")
    expected, sizes = [], []
    for n in range(10):
        records = make_records(3000, prefix=f"f{n}", noise=True, seed=n)
        expected += [r["eventID"] for r in records]
        body = log_file(records)
        sizes.append(len(body))
        trail["s3"].put_object(
            Bucket=trail["bucket"], Key=log_key(f"20230826T20{10 + n}Z", f"f{n}"), Body=body
        )
    # the first download stalls half-way, so the first stop lands mid-file for certain
    stall = fault_proxy.add(match=".json.gz", stall_after=min(sizes) // 2, stall_seconds=30, times=1)
    fault_proxy.add(match="GET /", rate=600_000)  # ~1 s per file: most random stops land mid-file
    params = {"endpoint_urls": f"s3={fault_proxy.url}", "visibility_timeout": "10", "batch_size": "2"}

    def start(name):
        return sqs_input(splunk_python, splunk_home, trail, tmp_path, moto_env, name, **params)

    current, runs = start("a"), []
    assert stall.stalling.wait(60)
    other = start("b")
    for stop in range(STOPS):
        if stop:  # once the run writes (its start alone can take seconds under load), then at random
            current.wait_until(lambda run=current: run.event_count() > 0 or queue_depth(trail) == 0)
            time.sleep(rng.uniform(0.5, 2.0))
        assert current.terminate() < 5
        runs.append(current)
        current = start("a")
    current.wait_until(
        lambda: (
            sum(run.event_count() for run in [*runs, current, other]) >= len(expected)
            and queue_depth(trail) == 0
        ),
        180,
    )
    for run in (current, other):
        run.wait_quiet(1.5)
        assert run.terminate() < 5
    delivered = [i for run in [*runs, current, other] for i in modinput.event_ids(run.events())]
    report("SQS: two forwarders, SIGTERM at random points", version(splunk_python), expected, delivered)
    text = log.text()
    assert "stays with this forwarder" in text  # the first stop, in the stalled download
    # every message stopped mid-file was taken back by the next run, wherever the other stops landed
    assert text.count("stays with this forwarder") == text.count("resuming message")
    assert queue_depth(trail) == 0


# -- kill -9 at seeded random times: at most one small batch re-sent per kill ------------------
def kill_loop(start, rng, expected: list[str], last) -> list[list[modinput.Event]]:
    """Start, kill -9 at a random time after the first event, ``KILLS`` times; then a last run
    (``last(run)`` waits for its end). The events of each run, in order."""
    runs, total = [], 0
    for _ in range(KILLS):
        run = start()
        if total < len(expected):
            run.wait_for(1)
        time.sleep(rng.uniform(0.0, 0.4))
        run.kill()
        runs.append(run.events())
        total += len(runs[-1])
    run = start()
    last(run)
    runs.append(run.events())
    return runs


def assert_kill_bound(case: str, python: str, expected: list[str], runs: list[list[modinput.Event]]) -> None:
    """Each restart re-sends at most one batch (events and bytes); nothing is lost."""
    seen: set[str] = set()
    for events in runs:
        again = [event for event in events if json.loads(event.data)["eventID"] in seen]
        largest = max((len(event.data) for event in events), default=0)
        assert len(again) <= BATCH_EVENTS, (case, len(again))
        assert sum(len(event.data) for event in again) <= BATCH_BYTES + largest, case
        seen.update(modinput.event_ids(events))
    delivered = [i for events in runs for i in modinput.event_ids(events)]
    report(case, python, expected, delivered, bound=len(runs) * BATCH_EVENTS)


def many_files(put, files: int = 24, per_file: int = 4000) -> list[str]:
    expected = []
    for n in range(files):
        records = make_records(per_file, prefix=f"k{n}", noise=True, seed=100 + n)
        expected += [r["eventID"] for r in records]
        put(log_key(f"20230826T{10 + n // 60:02d}{n % 60:02d}Z", f"k{n}"), log_file(records))
    return expected


def test_sqs_kill_9_at_random_times_resends_at_most_one_batch(
    splunk_python, splunk_home, aws_clients, unique_name, tmp_path, moto_env
):
    py, s3 = version(splunk_python), aws_clients("s3")
    s3.create_bucket(Bucket=unique_name)
    # no dead-letter queue: a kill -9 leaves the messages of its batch to be received again, and
    # how often a message is received depends on where the kills land and how fast runs start
    queue = make_queue(aws_clients, unique_name, bucket=unique_name)
    trail = {"bucket": unique_name, "queue": queue, "s3": s3, "sqs": aws_clients("sqs")}
    expected = many_files(
        lambda key, body: trail["s3"].put_object(Bucket=trail["bucket"], Key=key, Body=body)
    )

    def start():
        return sqs_input(splunk_python, splunk_home, trail, tmp_path, moto_env, visibility_timeout="5")

    def last(run):
        run.wait_until(lambda: queue_depth(trail) == 0, 180)
        run.wait_quiet(1.5)
        assert run.terminate() < 5

    runs = kill_loop(start, random.Random(f"{SEED}-kill-sqs-{py}"), expected, last)
    assert_kill_bound("SQS: kill -9 at random times", py, expected, runs)


def test_s3_kill_9_at_random_times_resends_at_most_one_batch(
    splunk_python, splunk_home, aws_clients, unique_name, tmp_path, moto_env
):
    py, s3 = version(splunk_python), aws_clients("s3")
    s3.create_bucket(Bucket=unique_name)
    expected = many_files(lambda key, body: s3.put_object(Bucket=unique_name, Key=key, Body=body))
    start = lambda: s3_input(splunk_python, splunk_home, unique_name, tmp_path, moto_env)  # noqa: E731
    runs = kill_loop(start, random.Random(f"{SEED}-kill-s3-{py}"), expected, lambda run: run.wait(120))
    assert_kill_bound("S3 prefix: kill -9 at random times", py, expected, runs)


# -- the S3 prefix input never moves past a file it failed to read ---------------------------
def test_s3_files_that_failed_stay_pending_until_read(
    splunk_python, splunk_home, aws_clients, unique_name, tmp_path, moto_env, fault_proxy
):
    """A download reset mid-file and an object denied by a bucket policy, while a file delivered
    2 h 30 later is read (the cursor moves past both): the next run reads both."""
    log = Log(splunk_home, S3)
    py, s3 = version(splunk_python), aws_clients("s3")
    s3.create_bucket(Bucket=unique_name)
    records = {
        "reset": make_records(2000, prefix="reset", noise=True, seed=1),
        "denied": make_records(40, prefix="denied"),
        "later": make_records(50, prefix="later"),
    }
    bodies = {name: log_file(items) for name, items in records.items()}
    for name, when in (
        ("reset", "20230826T2030Z"),
        ("denied", "20230826T2035Z"),
        ("later", "20230826T2300Z"),
    ):
        s3.put_object(Bucket=unique_name, Key=log_key(when, name), Body=bodies[name])
    fault_proxy.add(match="_reset.json.gz", reset_after=len(bodies["reset"]) * 2 // 5, times=1)
    fault_proxy.add(match="_denied.json.gz", status=403, code="AccessDenied", times=1)  # fixed after run 1
    params = {"endpoint_urls": f"s3={fault_proxy.url}", "max_attempts": "1"}
    first = s3_input(splunk_python, splunk_home, unique_name, tmp_path, moto_env, **params)
    assert first.wait(60) == 0
    got = ids_by_source(first.events())
    assert 0 < len(got[f"s3://{unique_name}/{log_key('20230826T2030Z', 'reset')}"]) < 2000  # cut mid-file
    text = log.text()
    assert "2 files pending in" in text and "_denied.json.gz (failing since" in text
    second = s3_input(splunk_python, splunk_home, unique_name, tmp_path, moto_env, **params)
    assert second.wait(60) == 0
    delivered = ids_by_source(first.events() + second.events())
    for name, case in (
        ("reset", "S3 prefix: download reset mid-file, a newer file read, next run"),
        ("denied", "S3 prefix: object denied, policy fixed before the next run"),
        ("later", "S3 prefix: the newer file of the same folder"),
    ):
        when = {"reset": "20230826T2030Z", "denied": "20230826T2035Z", "later": "20230826T2300Z"}[name]
        expected = [r["eventID"] for r in records[name]]
        report(case, py, expected, delivered.get(f"s3://{unique_name}/{log_key(when, name)}", []))
    last_run = log.text().split(" start:")[-1]
    assert "files pending" not in last_run and "from 2 files" in last_run


# -- messages that point at the cause ----------------------------------------------------------
ROLE = "arn:aws:iam::123456789012:role/splunk-reader"


@pytest.mark.parametrize(
    ("service", "rule", "params", "said", "not_said"),
    [
        pytest.param(  # moto answers a rejected key on SQS's JSON protocol with an XML error (403)
            "sqs",
            {"target": "AmazonSQS.ReceiveMessage"},
            {},
            ["InvalidClientTokenId: AWS rejected the credentials"],
            ["add sqs:ReceiveMessage"],
            id="rejected-key-on-sqs",
        ),
        pytest.param(  # STS refuses the forwarder's own key: the role is not the cause
            "sts",
            {"match": "POST /"},
            {"role_arn": ROLE},
            ["rejected the forwarder's own credentials", f"when assuming role {ROLE}"],
            [f"the credentials of role {ROLE}", "add sqs:ReceiveMessage"],
            id="assume-role-with-rejected-source-key",
        ),
    ],
)
def test_credential_errors_name_their_cause(
    splunk_python, splunk_home, trail, tmp_path, moto_env, fault_proxy, service, rule, params, said, not_said
):
    log = Log(splunk_home, SQS)
    message = "The security token included in the request is invalid."
    fault_proxy.add(code="InvalidClientTokenId", xml_error=True, message=message, **rule)
    endpoint = f"{service}={fault_proxy.url}"
    run = sqs_input(splunk_python, splunk_home, trail, tmp_path, moto_env, endpoint_urls=endpoint, **params)
    log.wait_for("InvalidClientTokenId")
    assert run.terminate() < 5
    text = log.text()
    assert all(words in text for words in said) and not any(words in text for words in not_said), text
