"""aws_cloudtrail_s3 core: prefix walk (org trails too), incremental runs, late files."""

from __future__ import annotations

import datetime
import json
import logging
import os

import pytest
from iamspike.ingest.aws import AwsClients, AwsSettings
from iamspike.ingest.checkpoint import CheckpointStore
from iamspike.ingest.events import Deadline
from iamspike.ingest.s3 import S3Pipeline, check_bucket, file_time, parse_settings
from iamspike.ingest.settings import SettingsError
from standin.fixtures_aws import RecordingSink, log_file, log_key, make_records

LOG = logging.getLogger("test.s3")


def test_file_time_from_the_name_or_the_day_folder():
    assert file_time(log_key("20230826T2035Z")) == datetime.datetime(
        2023, 8, 26, 20, 35, tzinfo=datetime.timezone.utc
    )
    assert file_time("AWSLogs/1/CloudTrail/r/2023/08/26/other.json.gz").day == 26
    assert file_time("nothing") is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bucket": "Bad_Bucket"}, "bucket"),
        ({"bucket": "trail", "start_date": "2999-01-01"}, "future"),
        ({"bucket": "trail", "accounts": "123"}, "12-digit"),
        ({"bucket": "trail", "interval": "5"}, "interval"),
    ],
)
def test_bad_settings(params, message):
    with pytest.raises(ValueError, match=message):
        parse_settings(params)


def test_the_validation_check_accepts_a_bucket_that_exists_and_names_one_that_does_not(
    aws_clients, unique_name, moto_server
):
    aws_clients("s3").create_bucket(Bucket=unique_name)
    aws = AwsSettings(endpoint_urls={"default": moto_server}, access_key_id="AKIAIOSFODNN7EXAMPLE")
    check_bucket(parse_settings({"bucket": unique_name}), aws)
    with pytest.raises(
        SettingsError, match=f"^bucket: bucket {unique_name}-gone does not exist \\(NoSuchBucket\\)$"
    ):
        check_bucket(parse_settings({"bucket": unique_name + "-gone"}), aws)


@pytest.fixture
def bucket(aws_clients, unique_name, fault_proxy, tmp_path):
    s3 = aws_clients("s3")
    s3.create_bucket(Bucket=unique_name)
    store = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://test")
    aws = AwsSettings(
        endpoint_urls={"default": fault_proxy.url},
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key="x",
        max_attempts=1,
    )

    def run(**params) -> tuple[RecordingSink, S3Pipeline]:
        settings = parse_settings({"bucket": unique_name, "start_date": "2023-08-25", **params})
        sink = RecordingSink()
        seen = store.seen_ids()
        pipeline = S3Pipeline(settings, AwsClients(aws), sink, store, seen, LOG, Deadline(60))
        pipeline.run()
        seen.close()
        return sink, pipeline

    def put(key: str, records: list) -> None:
        s3.put_object(Bucket=unique_name, Key=key, Body=log_file(records))

    return run, put


def test_walks_accounts_regions_and_org_trails_from_the_start_date(bucket):
    run, put = bucket
    put(log_key("20230826T2035Z", "a"), make_records(5, prefix="a"))
    put(log_key("20230826T2035Z", "b", region="eu-west-1"), make_records(5, prefix="b"))
    put(
        "org/AWSLogs/o-abcdefghij/210987654321/CloudTrail/us-east-1/2023/08/26/"
        "210987654321_CloudTrail_us-east-1_20230826T2035Z_c.json.gz",
        make_records(5, prefix="c"),
    )
    put(log_key("20230801T0000Z", "old"), make_records(5, prefix="old"))  # before start_date
    put(
        log_key("20230826T2035Z", "i").replace("/CloudTrail/", "/CloudTrail-Insight/"),
        make_records(2, prefix="i"),
    )
    sink, _ = run()
    assert sorted({i.split("-")[0] for i in sink.event_ids()}) == ["a", "b", "i"]
    sink, _ = run(prefix="org")
    assert sorted({i.split("-")[0] for i in sink.event_ids()}) == ["c"]


def test_incremental_runs_read_only_new_and_late_files(bucket):
    run, put = bucket
    put(log_key("20230826T2035Z", "a"), make_records(5, prefix="a"))
    put(log_key("20230826T2040Z", "b"), make_records(5, prefix="b"))
    first, _ = run()
    assert len(first.event_ids()) == 10
    put(log_key("20230826T2045Z", "c"), make_records(5, prefix="c"))
    put(log_key("20230826T2030Z", "late"), make_records(5, prefix="late"))  # delivered late, within overlap
    put(log_key("20230826T1800Z", "tooold"), make_records(5, prefix="tooold"))  # older than the overlap
    second, pipeline = run()
    assert sorted({i.split("-")[0] for i in second.event_ids()}) == ["c", "late"]
    assert pipeline.stats.duplicates == 0
    third, _ = run()
    assert third.event_ids() == []


def test_account_and_region_filters(bucket):
    run, put = bucket
    put(log_key("20230826T2035Z", "a"), make_records(3, prefix="a"))
    put(log_key("20230826T2035Z", "b", region="eu-west-1"), make_records(3, prefix="b"))
    sink, _ = run(regions="eu-west-1")
    assert {i.split("-")[0] for i in sink.event_ids()} == {"b"}
    sink, _ = run(accounts="999999999999")
    assert sink.event_ids() == []


def test_a_file_that_failed_stays_pending_until_read_whatever_the_cursor_passes(bucket, fault_proxy, caplog):
    run, put = bucket
    put(log_key("20230826T2035Z", "a"), make_records(5, prefix="a"))
    put(log_key("20230826T2040Z", "denied"), make_records(40, prefix="d"))
    put(log_key("20230826T2300Z", "late"), make_records(5, prefix="c"))  # moves newest 2 h 20 on
    rule = fault_proxy.add(match="_denied.json.gz", status=403, code="AccessDenied", times=2)
    first, pipeline = run()
    assert sorted({i.split("-")[0] for i in first.event_ids()}) == ["a", "c"] and pipeline.stats.errors == 1
    assert "1 files pending in" in caplog.text and "_denied.json.gz (failing since" in caplog.text
    caplog.clear()
    second, _ = run()  # still denied: retried, named again
    assert second.event_ids() == [] and rule.fired == 2 and "2 tries" in caplog.text
    caplog.clear()
    third, _ = run()  # its backoff is not over: not retried, still named
    assert third.event_ids() == [] and rule.fired == 2 and "_denied.json.gz (failing since" in caplog.text
    (path,) = bucket_state_files(pipeline)
    with open(path) as handle:
        state = json.load(handle)
    key = next(iter(state["pending"]))
    state["pending"][key]["last"] = "2000-01-01T00:00:00+00:00"  # as if an hour went by
    pipeline.store.save("stream-" + key.rsplit("2023/", 1)[0], state)
    caplog.clear()
    fourth, _ = run()  # the policy was fixed
    assert sorted(fourth.event_ids()) == sorted(f"d-{n}" for n in range(40)) and "pending" not in caplog.text


def bucket_state_files(pipeline):
    folder = pipeline.store.directory
    return [os.path.join(folder, name) for name in os.listdir(folder) if ".stream-" in name]


def test_an_admin_drops_a_pending_file(bucket, fault_proxy, caplog):
    run, put = bucket
    key = log_key("20230826T2040Z", "denied")
    put(key, make_records(4, prefix="d"))
    fault_proxy.add(match="_denied.json.gz", status=403, code="AccessDenied")
    run()
    assert "1 files pending" in caplog.text
    caplog.clear()
    sink, _ = run(drop_pending=key)
    assert sink.event_ids() == [] and "dropped pending file" in caplog.text
    assert "files pending" not in caplog.text and fault_proxy.rules[0].fired == 1


def test_a_file_deleted_before_it_was_read_is_not_kept_pending(bucket, fault_proxy, caplog):
    run, put = bucket
    put(log_key("20230826T2040Z", "gone"), make_records(4, prefix="g"))
    fault_proxy.add(match="_gone.json.gz", status=404, code="NoSuchKey", message="gone")
    run()
    assert "deleted before it was read" in caplog.text and "pending" not in caplog.text
