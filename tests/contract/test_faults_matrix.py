"""The faults the input suites did not reach, found by an independent fault matrix: checkpoint
files that parse as JSON but hold what this version does not write (an older version's, a hand
edit, a damaged value), LookupEvents killed (SIGKILL) at seeded random times mid-pagination, odd
records and odd notifications on the SQS input, an S3 connection reset mid-file on the SQS
input, and a forwarder frozen (SIGSTOP) mid-file past the visibility timeout while another
forwarder reads the same message.

Every case drives the installed entry script as splunkd does and asserts: the run exits 0 (or
stops within 5 s of SIGTERM), the log says in one line what it could not use, no traceback
anywhere, and every event is delivered (a damaged checkpoint may re-send what it no longer
remembers, never lose).
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import random
import signal
import time

import pytest
from standin import modinput
from standin.fixtures_aws import aws_env, log_file, log_key
from standin.fixtures_aws import make_records as make_s3_records
from standin.lookup_events_server import LookupEventsServer, make_records

CHUNK_BYTES = 256 * 1024  # the inputs read S3 objects in chunks of this size

pytestmark = pytest.mark.contract

SEED = 16


def checkpoint_files(folder, pattern: str = "*.json") -> list[str]:
    return sorted(glob.glob(os.path.join(str(folder), pattern)))


def damage(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(value if isinstance(value, str) else json.dumps(value))


def clean_log(run: modinput.InputProcess, start: int) -> str:
    text = run.log()[start:]
    assert "Traceback" not in text and "Traceback" not in run.stderr, text + run.stderr
    return text


# -- LookupEvents ---------------------------------------------------------------------------
LOOKUP = "aws_cloudtrail_lookup"


def log_size(home, kind: str) -> int:
    """Where the input's log ends now (0 before its first line)."""
    try:
        return len(modinput.read_log(home, kind))
    except FileNotFoundError:
        return 0


def lookup_run(python, home, server, folder, **extra) -> modinput.InputProcess:
    params = {
        "endpoint_urls": "cloudtrail=" + server.endpoint_url,
        "requests_per_second": "2",
        "interval": "300",
        **extra,
    }
    return modinput.InputProcess(
        python,
        home,
        "aws_cloudtrail_lookup.py",
        f"{LOOKUP}://faults",
        params,
        str(folder),
        env=aws_env(server.endpoint_url),
    )


LOOKUP_DAMAGE = [
    {"high": "yesterday", "pending": None, "seen": {}},
    {"high": None, "pending": [1], "seen": {}},
    {"high": None, "pending": ["a", "b", "c"], "seen": {}},
    {"high": None, "pending": None, "seen": ["evt-1", "evt-2"]},
    {"high": None, "pending": None, "seen": {"evt-1": "noon"}},
    ["an", "older", "list"],
    '{"high": 1700000000.0, "pend',  # cut short (not written by this version: its writes are atomic)
]


def test_lookup_damaged_checkpoints_are_one_log_line_and_lose_nothing(splunk_python, splunk_home, tmp_path):
    with LookupEventsServer(rate=2.0, burst=2.0) as server:
        now = time.time()
        server.load(make_records(60, now - 600, step=5, prefix="first"))
        first = lookup_run(splunk_python, splunk_home, server, tmp_path / "ckpt")
        assert first.wait(60) == 0, first.stderr
        (path,) = checkpoint_files(tmp_path / "ckpt")
        for n, value in enumerate(LOOKUP_DAMAGE):
            records = make_records(10, time.time() - 30, step=1, prefix=f"new{n}")
            server.load(records)
            damage(path, value)
            start = len(first.log())
            run = lookup_run(splunk_python, splunk_home, server, tmp_path / "ckpt")
            assert run.wait(60) == 0, (value, run.stderr)
            text = clean_log(run, start)
            assert "checkpoint" in text and "unreadable" in text, (value, text)
            got = collections.Counter(json.loads(e.data)["eventID"] for e in run.events())
            assert all(got[r["eventID"]] == 1 for r in records), (value, got)


def test_lookup_kill_9_at_random_times_resends_at_most_one_page(splunk_python, splunk_home, tmp_path):
    """Killed (SIGKILL) 4 times at seeded random moments mid-pagination, then a run to the end:
    every event delivered, at most one page (50 events) re-sent per kill."""
    rng = random.Random(f"{SEED}-kill-lookup-{'py3.13' if '3.13' in splunk_python else 'py3.9'}")
    log_start = log_size(splunk_home, LOOKUP)
    with LookupEventsServer(rate=2.0, burst=2.0) as server:
        records = make_records(800, time.time() - 120, step=20)
        server.load(records)
        runs = []
        for _ in range(4):
            run = lookup_run(splunk_python, splunk_home, server, tmp_path / "ckpt")
            run.wait_for(1 if not runs else 0)
            time.sleep(rng.uniform(0.0, 2.0))
            run.kill()
            runs.append([json.loads(e.data)["eventID"] for e in run.events()])
        last = lookup_run(splunk_python, splunk_home, server, tmp_path / "ckpt")
        assert last.wait(120) == 0, last.stderr
        runs.append([json.loads(e.data)["eventID"] for e in last.events()])
    seen: set[str] = set()
    for ids in runs:
        assert sum(1 for i in ids if i in seen) <= 50
        seen.update(ids)
    got = collections.Counter(i for ids in runs for i in ids)
    assert set(got) == {r["eventID"] for r in records}
    assert "Traceback" not in modinput.read_log(splunk_home, LOOKUP)[log_start:]


# -- S3 prefix -------------------------------------------------------------------------------
S3 = "aws_cloudtrail_s3"

S3_DAMAGE = [
    {"newest": "2023-08-26T20:30:00+00:00", "recent": 7, "pending": {}},
    {"newest": "2023-08-26T20:30:00+00:00", "recent": [], "pending": {"AWSLogs/x.json.gz": 3}},
    {"newest": "2023-08-26T20:30:00+00:00", "recent": [], "pending": {"AWSLogs/x.json.gz": {"tries": "x"}}},
    {"newest": 1692000000, "recent": [], "pending": []},
    ["an", "older", "list"],
]


def test_s3_damaged_checkpoints_are_one_log_line_and_lose_nothing(
    splunk_python, splunk_home, aws_clients, unique_name, tmp_path, moto_env
):
    s3 = aws_clients("s3")
    s3.create_bucket(Bucket=unique_name)
    s3.put_object(
        Bucket=unique_name, Key=log_key("20230826T2030Z", "a"), Body=log_file(make_s3_records(20, prefix="a"))
    )
    params = {"bucket": unique_name, "start_date": "2023-08-25", "interval": "300"}

    def start():
        return modinput.InputProcess(
            splunk_python,
            splunk_home,
            "aws_cloudtrail_s3.py",
            f"{S3}://faults",
            params,
            str(tmp_path / "ckpt"),
            moto_env,
        )

    assert start().wait(60) == 0
    paths = checkpoint_files(tmp_path / "ckpt")
    assert paths
    for n, value in enumerate(S3_DAMAGE):
        records = make_s3_records(10, prefix=f"new{n}")
        s3.put_object(
            Bucket=unique_name, Key=log_key(f"20230826T21{n:02d}Z", f"n{n}"), Body=log_file(records)
        )
        for path in paths:
            damage(path, value)
        log_start = len(modinput.read_log(splunk_home, S3))
        run = start()
        assert run.wait(60) == 0, (value, run.stderr)
        text = clean_log(run, log_start)
        assert "unreadable" in text or not value, (value, text)
        got = collections.Counter(json.loads(e.data)["eventID"] for e in run.events())
        assert all(got[r["eventID"]] == 1 for r in records), (value, got, text)


# -- SQS claims --------------------------------------------------------------------------------
SQS = "aws_cloudtrail_sqs"


def sqs_run(python, home, name: str, params: dict, folder, env) -> modinput.InputProcess:
    return modinput.InputProcess(
        python, home, "aws_cloudtrail_sqs.py", f"{SQS}://{name}", params, str(folder), env
    )


def test_sqs_damaged_claims_are_one_log_line_and_lose_nothing(
    splunk_python, splunk_home, trail, tmp_path, moto_env
):
    trail["s3"].put_object(
        Bucket=trail["bucket"],
        Key=log_key("20230826T2030Z", "a"),
        Body=log_file(make_s3_records(5, prefix="a")),
    )
    params = {"queue_url": trail["queue"], "interval": "300", "wait_seconds": "1"}

    def start():
        return sqs_run(splunk_python, splunk_home, "faults", params, tmp_path / "ckpt", moto_env)

    def stop(run):
        # SIGTERM cuts the input's long poll short, but the server's side of it waits on for
        # wait_seconds: a message sent then goes to the closed connection and comes back only
        # after the visibility timeout, as on real SQS (late, not lost). Send after it ends.
        assert run.terminate() < 5
        time.sleep(int(params["wait_seconds"]) + 1)

    first = start()
    assert len(first.wait_for(5, 30)) == 5, first.log()
    first.wait_quiet(1.5)
    stop(first)
    now = time.time()
    damaged = [
        {},
        {"m-1": {"at": "yesterday", "receipt": "r"}},
        {"m-1": {"at": now, "receipt": "r", "done": 5, "position": "x", "source": "s3://b/k"}},
        {"m-1": {"at": now, "receipt": 7, "body": {"Records": 1}}},
        ["an", "older", "list"],
    ]
    claims = [p for p in checkpoint_files(tmp_path / "ckpt") if "claims" in os.path.basename(p)]
    names = os.listdir(tmp_path / "ckpt")
    assert claims, names
    for n, value in enumerate(damaged):
        records = make_s3_records(10, prefix=f"new{n}")
        key = log_key(f"20230826T21{n:02d}Z", f"n{n}")
        trail["s3"].put_object(Bucket=trail["bucket"], Key=key, Body=log_file(records))
        notice = {
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": trail["bucket"]}, "object": {"key": key}},
        }
        trail["sqs"].send_message(QueueUrl=trail["queue"], MessageBody=json.dumps({"Records": [notice]}))
        for path in claims:
            damage(path, value)
        log_start = len(first.log())
        run = start()
        run.wait_for(10, 30)
        run.wait_quiet(1.5)
        stop(run)
        text = clean_log(run, log_start)
        assert "unreadable" in text or not value, (value, text)
        got = collections.Counter(json.loads(e.data)["eventID"] for e in run.events())
        assert all(got[r["eventID"]] == 1 for r in records), (value, got, text)


# -- odd records and odd notifications on the SQS input -------------------------------------------
def test_sqs_odd_records_and_notifications_are_skipped_in_one_line_each(
    splunk_python, splunk_home, trail, tmp_path, moto_env
):
    bucket, sqs, queue = trail["bucket"], trail["sqs"], trail["queue"]
    good = make_s3_records(6, prefix="odd")
    files = {
        "records-object": gzip.compress(json.dumps({"Records": {"eventID": "x"}}).encode()),
        "records-mixed": gzip.compress(json.dumps({"Records": [1, "two", None, [], *good[:3]]}).encode()),
        "records-string": gzip.compress(b'{"Records": "many"}'),
        "top-list": gzip.compress(json.dumps([good[3]]).encode()),
        "plain": log_file(good[4:]),
    }
    for name, body in files.items():
        trail["s3"].put_object(Bucket=bucket, Key=log_key("20230826T2030Z", name), Body=body)
    odd_messages = [
        "{not json",
        json.dumps({"Records": "x"}),
        json.dumps({"Records": [{"s3": 5}]}),
        json.dumps({"Records": [{"s3": {"bucket": {"name": bucket}, "object": {}}}]}),
        json.dumps({"Type": "Notification", "Message": "{oops"}),
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}),
        json.dumps([1, 2]),
        "",
    ]
    for body in odd_messages:
        sqs.send_message(QueueUrl=queue, MessageBody=body or " ")
    start = log_size(splunk_home, SQS)
    params = {"queue_url": queue, "interval": "300", "wait_seconds": "1"}
    run = sqs_run(splunk_python, splunk_home, "odd", params, tmp_path / "c", moto_env)
    run.wait_for(6, 60)
    run.wait_quiet(2.0)
    assert run.terminate() < 5
    text = clean_log(run, start)
    got = collections.Counter(json.loads(e.data)["eventID"] for e in run.events())
    assert got == collections.Counter(r["eventID"] for r in good), (got, text)  # a bare list too
    assert text.count("skipped a record that is not a JSON object") == 4, text
    assert text.count("JSON without a Records array") == 2, text
    assert text.count("is not a notification") == len(odd_messages) - 1, text  # the test event is not one


def test_sqs_download_reset_mid_file_resumes_on_redelivery_without_duplicates(
    splunk_python, splunk_home, trail, tmp_path, moto_env, fault_proxy
):
    """S3 resets the connection 40% into a file (max_attempts=1: botocore does not retry): the
    message is left to SQS, comes back after its 5 s visibility timeout and is resumed at the
    record where the reset cut it: every record once."""
    records = make_s3_records(3000, prefix="reset", noise=True, seed=SEED)
    body = log_file(records)
    key = log_key("20230826T2030Z", "reset")
    trail["s3"].put_object(Bucket=trail["bucket"], Key=key, Body=body)
    fault_proxy.add(match="_reset.json.gz", reset_after=len(body) * 2 // 5, times=1)
    params = {
        "queue_url": trail["queue"],
        "interval": "300",
        "wait_seconds": "1",
        "visibility_timeout": "5",
        "max_attempts": "1",
        "endpoint_urls": f"s3={fault_proxy.url}",
    }
    start = log_size(splunk_home, SQS)
    run = sqs_run(splunk_python, splunk_home, "reset", params, tmp_path / "c", moto_env)
    run.wait_for(len(records), 90)
    run.wait_quiet(2.0)
    assert run.terminate() < 5
    text = clean_log(run, start)
    got = collections.Counter(json.loads(e.data)["eventID"] for e in run.events())
    assert got == collections.Counter(r["eventID"] for r in records), (len(got), sum(got.values()), text)


def test_sqs_forwarder_frozen_past_the_visibility_timeout_stops_reading_what_another_reads(
    splunk_python, splunk_home, trail, tmp_path, moto_env, fault_proxy
):
    """Forwarder a is frozen (SIGSTOP) in its first download of a file, past the message's 5 s
    visibility timeout; b receives the message again and reads the whole file; a is thawed
    (SIGCONT): its next visibility extension finds the message no longer its own and it stops
    reading (it used to read the file to its end: 3000 events written twice)."""
    records = make_s3_records(3000, prefix="frozen", noise=True, seed=SEED)
    body = log_file(records)
    assert len(body) // 2 < CHUNK_BYTES  # the stall holds a's first chunk: a has written nothing
    trail["s3"].put_object(Bucket=trail["bucket"], Key=log_key("20230826T2030Z", "frozen"), Body=body)
    stall = fault_proxy.add(match="_frozen.json.gz", stall_after=len(body) // 2, stall_seconds=3, times=1)
    params = {
        "queue_url": trail["queue"],
        "interval": "300",
        "wait_seconds": "1",
        "visibility_timeout": "5",
        "endpoint_urls": f"s3={fault_proxy.url}",
    }
    start = log_size(splunk_home, SQS)

    def forwarder(name):
        return sqs_run(splunk_python, splunk_home, name, params, tmp_path / name, moto_env)

    a = forwarder("a")
    assert stall.stalling.wait(60)
    a.proc.send_signal(signal.SIGSTOP)
    b = forwarder("b")
    b.wait_for(len(records), 60)
    frozen = a.event_count()
    a.proc.send_signal(signal.SIGCONT)
    a.wait_for_log("is no longer held by this forwarder", 30)
    a.wait_quiet(2.0)
    assert a.terminate() < 5 and b.terminate() < 5
    text = clean_log(a, start)
    assert "is no longer held by this forwarder (ReceiptHandleIsInvalid" in text, text
    got = collections.Counter(json.loads(e.data)["eventID"] for e in a.events() + b.events())
    assert set(got) == {r["eventID"] for r in records}
    assert (frozen, sum(got.values()) - len(got)) == (0, 0)
