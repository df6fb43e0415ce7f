"""aws_cloudtrail_s3 from the installed package, driven as splunkd drives it, against moto."""

from __future__ import annotations

import collections

import pytest
from standin import modinput
from standin.fixtures_aws import log_file, log_key, make_records

pytestmark = pytest.mark.contract

SCRIPT = "aws_cloudtrail_s3.py"
KIND = "aws_cloudtrail_s3"
N = 20_000


@pytest.fixture
def bucket(aws_clients, unique_name):
    s3 = aws_clients("s3")
    s3.create_bucket(Bucket=unique_name)
    return unique_name, s3


def start(splunk_python, home, bucket_name, tmp_path, env, **params) -> modinput.InputProcess:
    params = {"bucket": bucket_name, "start_date": "2023-08-25", "interval": "300", "index": "aws", **params}
    return modinput.InputProcess(
        splunk_python, home, SCRIPT, f"{KIND}://t", params, str(tmp_path / "checkpoints"), env
    )


def run_until_idle(process: modinput.InputProcess) -> list[modinput.Event]:
    """The S3 input ends its run by itself once every folder is read."""
    assert process.wait(120) == 0
    return process.events()


def test_scheme(splunk_python, splunk_home):
    scheme = modinput.scheme(splunk_python, splunk_home, SCRIPT)
    assert scheme.args["bucket"]["required_on_create"] == "true"
    assert {"start_date", "accounts", "regions", "role_arn", "endpoint_urls"} <= set(scheme.args)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bucket": "No_Such-Bucket!"}, "bucket"),
        ({"start_date": "2999-01-01"}, "in the future"),
        ({"start_date": "yesterday"}, "YYYY-MM-DD"),
        ({"accounts": "1234"}, "12-digit"),
        ({"interval": "1"}, "interval"),
        ({"region": "nowhere-1"}, "unknown AWS region"),
    ],
)
def test_validate_rejects_bad_settings(splunk_python, splunk_home, bucket, moto_env, params, message):
    good = {"bucket": bucket[0], "start_date": "2024-01-01", "interval": "300"}
    assert modinput.validate(splunk_python, splunk_home, SCRIPT, good, env=moto_env) == (True, "")
    ok, text = modinput.validate(splunk_python, splunk_home, SCRIPT, {**good, **params}, env=moto_env)
    assert not ok and message in text and "Traceback" not in text


def test_validate_rejects_a_bucket_that_does_not_exist(splunk_python, splunk_home, unique_name, moto_env):
    params = {"bucket": unique_name + "-gone", "start_date": "2024-01-01"}
    ok, text = modinput.validate(splunk_python, splunk_home, SCRIPT, params, env=moto_env)
    assert not ok and text.strip() == f"bucket: bucket {unique_name}-gone does not exist (NoSuchBucket)"


def test_backfill_then_incremental(splunk_python, fresh_splunk_home, bucket, tmp_path, moto_env):
    name, s3 = bucket
    s3.put_object(
        Bucket=name, Key=log_key("20230826T2035Z", "a"), Body=log_file(make_records(50, prefix="a"))
    )
    org_key = (
        "AWSLogs/o-abcdefghij/210987654321/CloudTrail/eu-west-1/2023/08/26/"
        "210987654321_CloudTrail_eu-west-1_20230826T2035Z_o.json.gz"
    )
    s3.put_object(Bucket=name, Key=org_key, Body=log_file(make_records(20, prefix="org")))
    digest = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2023/08/26/x_CloudTrail-Digest_x.json.gz"
    s3.put_object(Bucket=name, Key=digest, Body=b'{"not": "records"}')
    first = run_until_idle(start(splunk_python, fresh_splunk_home, name, tmp_path, moto_env))
    assert sorted(modinput.event_ids(first)) == sorted(
        [f"a-{n}" for n in range(50)] + [f"org-{n}" for n in range(20)]
    )
    assert {event.source for event in first} == {
        f"s3://{name}/{log_key('20230826T2035Z', 'a')}",
        f"s3://{name}/{org_key}",
    }
    assert {event.sourcetype for event in first} == {"aws:cloudtrail"}
    s3.put_object(Bucket=name, Key=log_key("20230826T2040Z", "b"), Body=log_file(make_records(5, prefix="b")))
    second = run_until_idle(start(splunk_python, fresh_splunk_home, name, tmp_path, moto_env))
    assert sorted(modinput.event_ids(second)) == [f"b-{n}" for n in range(5)]
    log = modinput.read_log(fresh_splunk_home, KIND)
    assert "70 events from 2 files to index aws" in log and "5 events from 1 files to index aws" in log


@pytest.mark.parametrize("stop", ["sigkill", "sigterm"])
def test_stopped_mid_file_then_restarted_delivers_every_record_once(
    splunk_python, fresh_splunk_home, bucket, tmp_path, moto_env, fault_proxy, stop
):
    name, s3 = bucket
    bodies = [log_file(make_records(N, prefix=f"f{n}", noise=True)) for n in range(2)]
    for n, body in enumerate(bodies):
        s3.put_object(Bucket=name, Key=log_key(f"20230826T20{30 + n}Z", f"f{n}"), Body=body)
    stall = fault_proxy.add(match="_f1.json.gz", stall_after=len(bodies[1]) // 2, stall_seconds=30, times=1)
    params = {"endpoint_urls": f"s3={fault_proxy.url}"}
    run = start(splunk_python, fresh_splunk_home, name, tmp_path, moto_env, **params)
    assert stall.stalling.wait(60)
    run.wait_for(N + 1)  # into the second file
    run.wait_quiet(1.5)  # every record read so far is out: the input waits in the stalled read
    if stop == "sigkill":
        run.kill()
    else:
        assert run.terminate() < 5  # splunkd's stop, while a download is stalled
        assert "stopped by SIGTERM" in modinput.read_log(fresh_splunk_home, KIND)
    first = run.events()
    assert N < len(first) < 2 * N
    second = run_until_idle(start(splunk_python, fresh_splunk_home, name, tmp_path, moto_env, **params))
    counts = collections.Counter(modinput.event_ids(first) + modinput.event_ids(second))
    assert len(counts) == 2 * N and max(counts.values()) == 1


def test_access_denied_on_the_bucket_names_the_permission(
    splunk_python, fresh_splunk_home, bucket, tmp_path, moto_env, fault_proxy
):
    name, _ = bucket
    fault_proxy.add(match=f"GET /{name}", status=403, code="AccessDenied")
    run = start(
        splunk_python, fresh_splunk_home, name, tmp_path, moto_env, endpoint_urls=f"s3={fault_proxy.url}"
    )
    assert run.wait(60) == 0
    log = modinput.read_log(fresh_splunk_home, KIND)
    assert f"add s3:ListBucket on arn:aws:s3:::{name}" in log
    assert "0 events from 0 files" in log  # and the run still ends cleanly
