"""aws_cloudtrail_sqs from the installed package, driven as splunkd drives it, against moto.

Every test runs the entry script in a bare Splunk Python (3.9 and 3.13) with the XML config on
stdin and reads the XML event stream; AWS is the loopback moto server (faults injected by a
proxy the input reaches through its ``endpoint_urls`` setting).
"""

from __future__ import annotations

import collections
import functools
import gzip
import io
import json
import re
import socket
import time
import urllib.parse

import pytest
from standin import modinput
from standin.fixtures_aws import (
    ForwardProxy,
    free_port,
    log_file,
    log_key,
    make_queue,
    make_records,
    queue_depth,
)

pytestmark = pytest.mark.contract

SCRIPT = "aws_cloudtrail_sqs.py"
KIND = "aws_cloudtrail_sqs"
N = 20_000  # records per file in the crash tests: big enough that a stalled download is mid-file


def put(trail, key: str, body: bytes) -> None:
    trail["s3"].put_object(Bucket=trail["bucket"], Key=key, Body=body)


def start(splunk_python, home, trail, tmp_path, moto_env, name="t", **params) -> modinput.InputProcess:
    params = {"queue_url": trail["queue"], "interval": "300", "index": "aws", "wait_seconds": "1", **params}
    return modinput.InputProcess(
        splunk_python, home, SCRIPT, f"{KIND}://{name}", params, str(tmp_path / "checkpoints"), moto_env
    )


def test_scheme(splunk_python, splunk_home):
    scheme = modinput.scheme(splunk_python, splunk_home, SCRIPT)
    assert scheme.use_external_validation and not scheme.use_single_instance
    assert scheme.args["queue_url"]["required_on_create"] == "true"
    assert {"role_arn", "external_id", "credential", "endpoint_urls", "proxy", "retry_mode"} <= set(
        scheme.args
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"queue_url": "sqs.us-east-1.amazonaws.com/q"}, "queue_url"),
        ({"role_arn": "arn:aws:iam::123:role/x"}, "role_arn"),
        ({"region": "us-middle-9"}, "unknown AWS region"),
        ({"interval": "5"}, "interval"),
        ({"batch_size": "50"}, "batch_size"),
        ({"aws_secret_access_key": "abc"}, "storage/passwords"),
    ],
)
def test_validate_rejects_bad_settings_in_one_line(
    splunk_python, splunk_home, trail, moto_env, params, message
):
    good = {"queue_url": trail["queue"], "interval": "300"}
    assert modinput.validate(splunk_python, splunk_home, SCRIPT, good, env=moto_env) == (True, "")
    ok, text = modinput.validate(splunk_python, splunk_home, SCRIPT, {**good, **params}, env=moto_env)
    assert not ok and message in text and "\n" not in text.strip() and "Traceback" not in text


def test_validate_rejects_a_queue_that_does_not_exist(splunk_python, splunk_home, trail, moto_env):
    missing = trail["queue"].rsplit("/", 1)[0] + "/no-such-queue"
    ok, text = modinput.validate(splunk_python, splunk_home, SCRIPT, {"queue_url": missing}, env=moto_env)
    assert not ok and "\n" not in text.strip() and "Traceback" not in text
    assert text.startswith(f"queue_url: queue {missing} does not exist in us-east-1 (")
    assert "NonExistentQueue" in text or "QueueDoesNotExist" in text


def test_validate_rejects_an_unreachable_queue_endpoint_in_bounded_time(
    splunk_python, splunk_home, trail, moto_env
):
    """Connection refused, and an endpoint that accepts and never answers: one line naming
    queue_url and the cause, within the check's 5 s timeouts and no retry (the stanza's own
    read_timeout of 60 s and 5 attempts would take minutes)."""
    closed = f"http://127.0.0.1:{free_port()}"
    ok, text = modinput.validate(
        splunk_python,
        splunk_home,
        SCRIPT,
        {"queue_url": trail["queue"], "endpoint_urls": closed},
        env=moto_env,
    )
    assert not ok and text.strip() == f"queue_url: cannot reach {closed}/: Connection refused"
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        params = {
            "queue_url": trail["queue"],
            "endpoint_urls": url,
            "read_timeout": "60",
            "max_attempts": "5",
        }
        began = time.monotonic()
        ok, text = modinput.validate(splunk_python, splunk_home, SCRIPT, params, env=moto_env)
        took = time.monotonic() - began
    finally:
        silent.close()
    assert not ok and text.startswith(f"queue_url: cannot reach {url}/: Read timed out") and "\n" not in text
    assert took < 40, took  # 5 s read timeout, one attempt, plus the interpreter's start


def test_events_from_every_notification_shape(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env):
    key = log_key("20230826T2035Z", "a+b")  # '+' arrives URL-encoded in S3 events
    put(trail, key, log_file(make_records(300, prefix="raw", errorCode="AccessDenied")))
    other = log_key("20230826T2040Z", "sns")
    trail["s3"].put_bucket_notification_configuration(Bucket=trail["bucket"], NotificationConfiguration={})
    put(trail, other, log_file(make_records(20, prefix="ct")))
    cloudtrail_sns = {"s3Bucket": trail["bucket"], "s3ObjectKey": [other]}
    trail["sqs"].send_message(
        QueueUrl=trail["queue"],
        MessageBody=json.dumps({"Type": "Notification", "Message": json.dumps(cloudtrail_sns)}),
    )
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env)
    events = run.wait_for(320, 60)
    assert run.terminate() < 5
    assert sorted(modinput.event_ids(events)) == sorted(
        [f"raw-{n}" for n in range(300)] + [f"ct-{n}" for n in range(20)]
    )
    first = next(event for event in events if json.loads(event.data)["eventID"] == "raw-0")
    assert first.sourcetype == "aws:cloudtrail" and first.index == "aws" and first.done
    assert first.source == f"s3://{trail['bucket']}/{key}"
    assert first.time == "1693080000.000" and first.stanza == f"{KIND}://t"
    assert json.loads(first.data)["errorCode"] == "AccessDenied"
    assert queue_depth(trail) == 0
    log = modinput.read_log(fresh_splunk_home, KIND)
    assert "start:" in log and "end:" in log and "320 events from 2 files to index aws" in log


def test_s3_events_through_eventbridge_to_the_queue(
    splunk_python, fresh_splunk_home, aws_clients, unique_name, tmp_path, moto_env
):
    """S3 -> EventBridge (a rule on the default bus, the queue as its target) -> SQS: moto sends
    the "Object Created" event with the key as it is ('+' stays '+', not a space)."""
    s3, sqs, events = aws_clients("s3"), aws_clients("sqs"), aws_clients("events")
    s3.create_bucket(Bucket=unique_name)
    queue = make_queue(aws_clients, unique_name)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=unique_name, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [unique_name]}},
    }
    events.put_rule(Name=unique_name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=unique_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    key = log_key("20230826T2035Z", "eb+1")
    s3.put_object(Bucket=unique_name, Key=key, Body=log_file(make_records(40, prefix="eb")))
    body = json.loads(sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"][0]["Body"])
    assert body["detail-type"] == "Object Created" and body["detail"]["object"]["key"] == key
    trail = {"queue": queue, "sqs": sqs}
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env)
    got = run.wait_for(40, 60)
    run.wait_until(lambda: queue_depth(trail) == 0)  # the message deleted once its file was written
    assert run.terminate() < 5
    assert sorted(modinput.event_ids(run.events())) == sorted(f"eb-{n}" for n in range(40)) and len(got) >= 40
    assert {event.source for event in got} == {f"s3://{unique_name}/{key}"}
    assert queue_depth(trail) == 0


def test_kill_9_mid_file_then_restart_delivers_every_record_once(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, fault_proxy
):
    bodies = [log_file(make_records(N, prefix=f"f{n}", noise=True)) for n in range(3)]
    for n, body in enumerate(bodies):
        put(trail, log_key(f"20230826T20{30 + n}Z", f"f{n}"), body)
    # the second file's download stalls half-way: the input has flushed part of it when killed
    stall = fault_proxy.add(match="_f1.json.gz", stall_after=len(bodies[1]) // 2, stall_seconds=30, times=1)
    params = {"endpoint_urls": f"s3={fault_proxy.url}", "visibility_timeout": "5", "batch_size": "10"}
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, **params)
    assert stall.stalling.wait(60)
    run.wait_until(lambda: any(event_id.startswith("f1-") for event_id in modinput.event_ids(run.events())))
    run.wait_quiet(1.5)  # every record read so far is out: the input waits in the stalled read
    run.kill()
    first = run.events()
    written_of_f1 = [event_id for event_id in modinput.event_ids(first) if event_id.startswith("f1-")]
    assert 0 < len(written_of_f1) < N  # killed in the middle of a file
    second_run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, **params)
    second_run.wait_for(3 * N - len(first), 60)
    # every message deleted: redeliveries (visibility 5 s) came and were absorbed, none is left
    second_run.wait_until(lambda: queue_depth(trail) == 0)
    assert second_run.terminate() < 5
    second = second_run.events()
    counts = collections.Counter(modinput.event_ids(first) + modinput.event_ids(second))
    assert len(counts) == 3 * N and max(counts.values()) == 1
    assert queue_depth(trail) == 0


def test_sigterm_stops_within_5_s_and_saves_what_was_written(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, fault_proxy
):
    body = log_file(make_records(N, prefix="s", noise=True))
    put(trail, log_key("20230826T2030Z", "s"), body)
    stall = fault_proxy.add(match="_s.json.gz", stall_after=len(body) // 2, stall_seconds=60, times=1)
    params = {"endpoint_urls": f"s3={fault_proxy.url}", "visibility_timeout": "5", "wait_seconds": "20"}
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, **params)
    assert stall.stalling.wait(60)
    run.wait_for(1)
    first = run.wait_quiet(1.5)
    assert 0 < len(first) < N
    assert run.terminate() < 5  # while the download is stalled
    first = run.events()
    again = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, **params)
    rest = again.wait_for(N - len(first), 60)
    assert again.terminate() < 5  # while long-polling an empty queue (wait_seconds=20)
    counts = collections.Counter(modinput.event_ids(first) + modinput.event_ids(rest))
    assert len(counts) == N and max(counts.values()) == 1
    assert "stopped by SIGTERM" in modinput.read_log(fresh_splunk_home, KIND)


def test_access_denied_and_deleted_objects_are_logged_and_the_input_goes_on(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, fault_proxy
):
    denied, gone, fine = (log_key("20230826T2030Z", s) for s in ("denied", "gone", "fine"))
    put(trail, denied, log_file(make_records(5, prefix="d")))
    put(trail, gone, log_file(make_records(5, prefix="g")))
    trail["s3"].delete_object(Bucket=trail["bucket"], Key=gone)
    put(trail, fine, log_file(make_records(5, prefix="ok")))
    fault_proxy.add(match="_denied.json.gz", status=403, code="AccessDenied")
    params = {"endpoint_urls": f"s3={fault_proxy.url}", "visibility_timeout": "30"}
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, **params)
    events = run.wait_for(5, 60)
    run.wait_for_log(f"add s3:GetObject on arn:aws:s3:::{trail['bucket']}/{denied}")
    run.wait_for_log("deleted after its notification")
    assert run.terminate() < 5
    assert sorted(modinput.event_ids(run.events())) == [f"ok-{n}" for n in range(5)] and len(events) >= 5
    log = modinput.read_log(fresh_splunk_home, KIND)
    assert f"add s3:GetObject on arn:aws:s3:::{trail['bucket']}/{denied}" in log
    assert "deleted after its notification" in log
    assert queue_depth(trail) == 2  # both left for redelivery and the dead-letter queue
    assert "AKIAIOSFODNN7EXAMPLE" not in log


def test_bad_files_are_skipped_with_a_log_line_and_never_stall_the_queue(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env
):
    good = make_records(10, prefix="good")
    big = make_records(3, prefix="big")
    big[1]["requestParameters"] = {"policyDocument": "x" * 1_100_000}
    utf = json.dumps({"Records": make_records(2, prefix="utf")}).encode().replace(b"alice", b"al\xe9ce")
    truncated = log_file(make_records(2000, prefix="trunc"))
    bodies = {
        "truncated": truncated[: len(truncated) // 2],
        "notgzip": b"PK\x03\x04 not a gzip file",
        "invalid": gzip.compress(b'{"Records": [{"eventID": "x"}, {'),
        "norecords": gzip.compress(b'{"Version": "1.0"}'),
        "latin1": gzip.compress(utf),
        "big": log_file(big),
        "good": log_file(good),
    }
    for name, body in bodies.items():
        put(trail, log_key("20230826T2030Z", name), body)
    reasons = (
        "truncated gzip",
        "neither gzip nor JSON",
        "invalid JSON",
        "without a Records array",
        "max_record_bytes",
        "not UTF-8",
    )
    wanted = {f"good-{n}" for n in range(10)} | {"utf-0", "utf-1", "big-0", "big-2"}
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env)
    run.wait_until(lambda: wanted <= set(modinput.event_ids(run.events())))
    run.wait_until(lambda: all(reason in run.log() for reason in reasons))
    run.wait_until(lambda: queue_depth(trail) == 0)
    assert run.terminate() < 5
    got = set(modinput.event_ids(run.events()))
    assert wanted <= got and "big-1" not in got
    assert queue_depth(trail) == 0
    log = modinput.read_log(fresh_splunk_home, KIND)
    for reason in reasons:
        assert reason in log, reason


def test_access_denied_on_the_queue_names_the_permission_and_the_input_keeps_polling(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, fault_proxy
):
    rule = fault_proxy.add(target="AmazonSQS.ReceiveMessage", status=403, code="AccessDenied")
    run = start(
        splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, endpoint_urls=f"sqs={fault_proxy.url}"
    )
    run.wait_until(lambda: rule.fired >= 2)  # it backs off and tries again
    assert run.terminate() < 5
    assert rule.fired >= 2
    log = modinput.read_log(fresh_splunk_home, KIND)
    queue_name = trail["queue"].rsplit("/", 1)[1]
    assert "AccessDenied" in log and "add sqs:ReceiveMessage on arn:aws:sqs:" in log and queue_name in log


def test_throttling_and_server_errors_are_retried_by_botocore(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, fault_proxy
):
    key = log_key("20230826T2030Z", "flaky")
    put(trail, key, log_file(make_records(50, prefix="flaky")))
    fault_proxy.add(
        match="_flaky.json.gz", status=503, code="SlowDown", message="Reduce your request rate", times=1
    )
    fault_proxy.add(match="_flaky.json.gz", status=500, code="InternalError", message="try again", times=1)
    run = start(
        splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, endpoint_urls=f"s3={fault_proxy.url}"
    )
    events = run.wait_for(50, 60)
    assert run.terminate() < 5
    assert sorted(modinput.event_ids(events)) == sorted(f"flaky-{n}" for n in range(50))
    assert all(rule.fired == 1 for rule in fault_proxy.rules)
    assert " ERROR " not in modinput.read_log(fresh_splunk_home, KIND)
    assert queue_depth(trail) == 0


def test_expired_credentials_are_named_in_the_log(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, fault_proxy
):
    put(trail, log_key("20230826T2030Z", "exp"), log_file(make_records(5, prefix="exp")))
    fault_proxy.add(
        match="_exp.json.gz", status=400, code="ExpiredToken", message="The provided token has expired"
    )
    run = start(
        splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, endpoint_urls=f"s3={fault_proxy.url}"
    )
    run.wait_for_log("renew them")
    assert run.terminate() < 5
    log = modinput.read_log(fresh_splunk_home, KIND)
    assert "ExpiredToken" in log and "renew them" in log


@pytest.fixture
def splunkd():
    fake = modinput.FakeSplunkd(
        [
            (
                "TA-aws-iam-error-spike",
                "prod",
                "AKIAI44QH8DHBSTORED1:je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
            ),
            ("other-app", "prod", "AKIAOTHERAPPKEY12345:nope"),
        ]
    )
    yield fake
    fake.close()


def test_a_static_key_comes_from_storage_passwords_and_never_reaches_the_log(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, fault_proxy, splunkd
):
    put(trail, log_key("20230826T2030Z", "k"), log_file(make_records(5, prefix="k")))
    fault_proxy.add(match="_k.json.gz", status=403, code="AccessDenied")  # makes the log name the key
    params = {
        "queue_url": trail["queue"],
        "interval": "300",
        "wait_seconds": "1",
        "credential": "prod",
        "endpoint_urls": f"s3={fault_proxy.url}",
    }
    run = modinput.InputProcess(
        splunk_python,
        fresh_splunk_home,
        SCRIPT,
        f"{KIND}://key",
        params,
        str(tmp_path / "cp"),
        moto_env,
        server_uri=splunkd.uri,
    )
    run.wait_for_log("to the IAM user of key")  # the denied GET, however long the start takes
    assert run.terminate() < 5
    assert any("storage/passwords" in path for path in splunkd.requests)
    log = modinput.read_log(fresh_splunk_home, KIND)
    assert "to the IAM user of key AKIA************RED1" in log  # the stored key, not the environment's
    assert (
        "AKIAI44QH8DHBSTORED1" not in log and "je7MtGbClwBF" not in log and "je7MtGbClwBF" not in run.stderr
    )


def test_a_missing_storage_passwords_entry_is_a_clear_error(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, splunkd
):
    params = {"queue_url": trail["queue"], "interval": "300", "credential": "staging"}
    run = modinput.InputProcess(
        splunk_python,
        fresh_splunk_home,
        SCRIPT,
        f"{KIND}://nokey",
        params,
        str(tmp_path / "cp"),
        moto_env,
        server_uri=splunkd.uri,
    )
    assert run.wait(60) == 0
    log = modinput.read_log(fresh_splunk_home, KIND)
    assert "no storage/passwords entry TA-aws-iam-error-spike:staging" in log and "Traceback" not in log


def test_a_checkpoint_folder_it_cannot_write_is_one_log_line_and_loses_nothing(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env
):
    """A file where the checkpoint folder should be (as root, the one folder a test can make
    unwritable): one ERROR line naming it, no event, the notification left on the queue; once
    the folder is mended the next run reads every record."""
    put(trail, log_key("20230826T2035Z", "cp"), log_file(make_records(30, prefix="cp")))
    folder = tmp_path / "checkpoints"
    folder.write_text("a file where the checkpoint folder should be")
    depth = queue_depth(trail)
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env)
    assert run.wait(60) == 0 and run.events() == []
    log = modinput.read_log(fresh_splunk_home, KIND)
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in log, log
    assert errors[0].endswith(
        f"checkpoint folder {folder} cannot be written (Not a directory): nothing read this run;"
        " give the user splunkd runs as write access to it"
    )
    assert queue_depth(trail) == depth > 0
    folder.unlink()
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env)
    events = run.wait_for(30, 60)
    assert run.terminate() < 5
    assert sorted(modinput.event_ids(events)) == sorted(f"cp-{n}" for n in range(30))


PROXY_PASSWORD = "pr0xy-s3cr3t-9"


@pytest.fixture
def forward_proxy():
    proxy = ForwardProxy("iamspike", PROXY_PASSWORD)
    yield proxy
    proxy.close()


def test_every_aws_call_goes_through_the_proxy_whose_password_stays_out_of_the_log(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, forward_proxy
):
    key = log_key("20230826T2030Z", "px")
    put(trail, key, log_file(make_records(30, prefix="px")))
    proxy = forward_proxy.url("iamspike", PROXY_PASSWORD)
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, proxy=proxy)
    events = run.wait_for(30, 60)
    run.wait_until(lambda: queue_depth(trail) == 0)  # the message deleted once its file was written
    assert run.terminate() < 5
    assert (
        sorted(modinput.event_ids(run.events())) == sorted(f"px-{n}" for n in range(30)) and len(events) >= 30
    )
    assert queue_depth(trail) == 0
    moto = urllib.parse.urlsplit(moto_env["AWS_ENDPOINT_URL"]).netloc
    seen = forward_proxy.requests
    assert forward_proxy.rejected == 0 and {host for _, host, _ in seen} == {moto}
    assert ("GET", moto, f"/{trail['bucket']}/{key}") in seen  # the log file, from S3
    assert sum(method == "POST" for method, _, _ in seen) >= 2  # SQS receive + delete
    log = modinput.read_log(fresh_splunk_home, KIND)
    assert f"proxy=http://iamspike:***@127.0.0.1:{forward_proxy.port}" in log
    assert PROXY_PASSWORD not in log and PROXY_PASSWORD not in run.stderr


def test_an_unreachable_proxy_is_named_in_the_log_without_its_password(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env
):
    port = free_port()
    params = {"proxy": f"http://iamspike:{PROXY_PASSWORD}@127.0.0.1:{port}", "max_attempts": "1"}
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env, **params)
    run.wait_for_log("ProxyConnectionError", 30)
    assert run.terminate() < 5
    log = modinput.read_log(fresh_splunk_home, KIND)
    assert "ProxyConnectionError" in log and f"127.0.0.1:{port}" in log and "sqs:ReceiveMessage" in log
    assert PROXY_PASSWORD not in log and PROXY_PASSWORD not in run.stderr


BIG_RECORDS = 100_000  # ~1 KB each: ~100 MB of JSON
BIG_SECONDS = 300  # bounds a hang only: the file takes a few seconds, more on a loaded machine


@functools.lru_cache(maxsize=1)
def big_log_file() -> bytes:
    """A ~100 MB (uncompressed) log file, cheaply: one record template with distinct eventIDs."""
    record = make_records(1, prefix="big", requestParameters={"policyDocument": "p" * 600})[0]
    head, tail = json.dumps(record).split('"big-0"')
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as gz:
        gz.write(b'{"Records": [')
        step = 10_000
        for first in range(0, BIG_RECORDS, step):
            last = min(BIG_RECORDS, first + step)
            text = ", ".join(f'{head}"big-{n}"{tail}' for n in range(first, last))
            gz.write(((", " if first else "") + text).encode())
        gz.write(b"]}")
    return out.getvalue()


def test_a_100_mb_file_streams_every_record_once_in_flat_memory(
    splunk_python, fresh_splunk_home, trail, tmp_path, moto_env
):
    put(trail, log_key("20230826T2030Z", "small"), log_file(make_records(5, prefix="small")))
    run = start(splunk_python, fresh_splunk_home, trail, tmp_path, moto_env)
    run.wait_for(5, 60)
    run.wait_until(lambda: queue_depth(trail) == 0)  # done with the small file's message
    baseline = run.peak_rss_mb()  # imports, clients, one small file
    body = big_log_file()
    put(trail, log_key("20230826T2031Z", "big"), body)
    run.wait_until(lambda: run.event_count() >= BIG_RECORDS + 5, BIG_SECONDS)
    peak = run.peak_rss_mb()
    assert run.terminate() < 5
    ids = re.findall(rb'"eventID": "big-(\d+)"', run.stdout)
    assert len(ids) == BIG_RECORDS and len(set(ids)) == BIG_RECORDS, (len(ids), run.stderr[-2000:])
    # Read whole, the file would cost its 100 MB of bytes plus as much again as text, and more
    # as decoded records; streamed, a few 1 MiB pieces and one flush of events are alive at once.
    assert peak < baseline + 100, (peak, baseline, len(body))
    assert queue_depth(trail) == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"interval": "0"}, "interval must be between 60 and 86400, not 0"),
        ({"interval": "abc"}, "interval must be seconds (60-86400) or a cron schedule, not 'abc'"),
        ({"interval": "-5"}, "interval must be between 60 and 86400, not -5"),
        ({"interval": "1e9"}, "interval must be seconds (60-86400) or a cron schedule, not '1e9'"),
        ({"aws_account": "../etc"}, "aws_account '../etc' must be 1-128 letters, digits or _ . @ -"),
        ({"aws_account": "a/b"}, "aws_account 'a/b' must be 1-128 letters"),
        ({"aws_account": "ünï"}, "aws_account 'ünï' must be 1-128 letters"),
        ({"aws_account": "x" * 10240}, "must be 1-128 letters"),
        ({"queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/ü"}, "is not an SQS queue URL"),
        ({"queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/" + "q" * 10240}, "is not an SQS"),
        ({"region": "ü"}, "unknown AWS region 'ü'"),
        ({"max_attempts": "abc"}, "max_attempts must be an integer, not 'abc'"),
    ],
)
def test_validate_odd_values_from_the_page_in_one_line(splunk_python, splunk_home, params, message):
    """What the Inputs page sends is checked by ``--validate-arguments`` before any AWS call: the
    fourth matrix's bad values (docs/reliability.md), each one line, nothing saved (a 400)."""
    given = {"queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/q", "interval": "300", **params}
    ok, text = modinput.validate(splunk_python, splunk_home, SCRIPT, given)
    assert not ok and message in text and "\n" not in text.strip() and "Traceback" not in text
