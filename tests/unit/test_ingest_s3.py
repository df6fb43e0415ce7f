"""aws_cloudtrail_s3 core: prefix walk (org trails too), incremental runs, late files."""

from __future__ import annotations

import datetime
import logging

import pytest
from iamspike.ingest.aws import AwsClients, AwsSettings
from iamspike.ingest.checkpoint import CheckpointStore
from iamspike.ingest.events import Deadline
from iamspike.ingest.s3 import S3Pipeline, file_time, parse_settings
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


@pytest.fixture
def bucket(aws_clients, unique_name, moto_server, tmp_path):
    s3 = aws_clients("s3")
    s3.create_bucket(Bucket=unique_name)
    store = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://test")
    aws = AwsSettings(
        endpoint_urls={"default": moto_server}, access_key_id="AKIAIOSFODNN7EXAMPLE", secret_access_key="x"
    )

    def run(**params) -> tuple[RecordingSink, S3Pipeline]:
        settings = parse_settings({"bucket": unique_name, "start_date": "2023-08-25", **params}, aws)
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
