"""Streaming CloudTrail log files: records out of gzip/JSON in bounded pieces, damage reported."""

from __future__ import annotations

import gzip
import json
import logging

import pytest
from iamspike.ingest import cloudtrail_files
from iamspike.ingest.checkpoint import SeenIds
from iamspike.ingest.cloudtrail_files import BadFile, CloudTrailFile, file_kind, record_id, write_file
from iamspike.ingest.events import Deadline, RunStats
from standin.fixtures_aws import RecordingSink, log_file, make_records

LOG = logging.getLogger("test")


def pieces(data: bytes, size: int):
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def read(data: bytes, size: int = 1 << 16, **kwargs):
    reader = CloudTrailFile(pieces(data, size), "test", **kwargs)
    return reader, list(reader)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
def test_records_are_the_same_whatever_the_chunking(compress, size):
    records = make_records(300, errorCode="AccessDenied", errorMessage='a "quoted" <msg> & more')
    reader, got = read(log_file(records, compress), size)
    assert [record for _, record in got] == records
    assert [json.loads(text) for text, _ in got] == records
    assert reader.records == 300 and reader.skipped_records == 0


def test_small_pieces_keep_memory_bounded(monkeypatch):
    monkeypatch.setattr(cloudtrail_files, "PIECE_CHARS", 1000)
    records = make_records(2000)
    reader, got = read(log_file(records), 1 << 20)
    assert len(got) == 2000 and max(len(reader._buf), 0) < 10_000


def test_records_need_not_be_the_first_key_and_arrays_are_accepted():
    body = json.dumps({"Version": 1, "Records": make_records(3), "Tail": [1, {"x": 2}]}).encode()
    assert len(read(body)[1]) == 3
    assert len(read(json.dumps(make_records(4)).encode())[1]) == 4


def test_multi_member_gzip_is_read_to_the_end():
    one, two = make_records(2, prefix="a"), make_records(2, prefix="b")
    body = json.dumps({"Records": one + two}).encode()
    half = len(body) // 2
    data = gzip.compress(body[:half]) + gzip.compress(body[half:])
    assert [r["eventID"] for _, r in read(data, 10)[1]] == ["a-0", "a-1", "b-0", "b-1"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 a zip file", "neither gzip nor JSON"),
        (b"", "empty file"),
        (b'{"Records": [{"a": 1}, {"b": ', "invalid JSON"),
        (b'{"Version": 1}', "without a Records array"),
        (b'{"Records": [{"a": 1}] } trailing', "after the end"),
        (b"\x1f\x8b\x08\x00garbage that is not deflate", "gzip"),
    ],
)
def test_damaged_files_raise_a_one_line_reason(data, message):
    with pytest.raises(BadFile, match=message) as info:
        read(data)
    assert "\n" not in str(info.value)


def test_truncated_gzip_yields_what_precedes_the_damage():
    data = log_file(make_records(5000))
    reader = CloudTrailFile(pieces(data[: len(data) // 2], 4096), "t")
    got = []
    with pytest.raises(BadFile, match="truncated gzip"):
        for item in reader:
            got.append(item)
    assert 0 < len(got) < 5000
    assert [r["eventID"] for _, r in got] == [f"ev-{n}" for n in range(len(got))]


def test_bytes_that_are_not_utf8_are_replaced_and_counted():
    body = json.dumps({"Records": make_records(2)}).encode().replace(b"alice", b"al\xffce\xfe")
    reader, got = read(body, 3)
    assert len(got) == 2 and reader.replaced_bytes == 4
    assert got[0][1]["userIdentity"]["arn"].endswith("al\ufffdce\ufffd")


def test_a_record_over_the_limit_is_skipped_and_its_neighbours_kept(caplog):
    records = make_records(3)
    records[1]["requestParameters"] = {"policy": "x" * 50_000}
    reader, got = read(log_file(records), 1000, max_record_bytes=20_000, log=LOG)
    assert [r["eventID"] for _, r in got] == ["ev-0", "ev-2"]
    assert reader.skipped_records == 1
    assert "ev-1" in caplog.text and "max_record_bytes" in caplog.text


def test_a_record_that_is_not_an_object_is_skipped():
    reader, got = read(b'{"Records": [{"eventID": "a"}, 42, "x", {"eventID": "b"}]}')
    assert [r["eventID"] for _, r in got] == ["a", "b"] and reader.skipped_records == 2


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("AWSLogs/1/CloudTrail/us-east-1/2023/08/26/1_CloudTrail_us-east-1_20230826T2035Z_x.json.gz", "log"),
        (
            "AWSLogs/1/CloudTrail-Digest/us-east-1/2023/08/26/1_CloudTrail-Digest_us-east-1_x.json.gz",
            "digest",
        ),
        (
            "AWSLogs/1/CloudTrail-Insight/us-east-1/2023/08/26/1_CloudTrail-Insight_us-east-1_x.json.gz",
            "insight",
        ),
        ("AWSLogs/1/CloudTrail/us-east-1/2023/08/26/readme.txt", "other"),
    ],
)
def test_file_kind(key, kind):
    assert file_kind(key) == kind


def test_record_id_falls_back_to_a_hash():
    assert record_id("{}", {"eventID": "abc"}) == "abc"
    assert record_id('{"a":1}', {"a": 1}).startswith("sha1:")
    assert record_id('{"a":1}', {"a": 1}) != record_id('{"a":2}', {"a": 2})


def test_write_file_drops_known_ids_and_journals_only_flushed_ones(tmp_path):
    seen = SeenIds(str(tmp_path / "seen"), 10_000)
    seen.add_all(["ev-1"])
    sink, stats = RecordingSink(), RunStats()
    records = make_records(5000) + make_records(1)  # ev-0 twice in one file
    done = write_file([log_file(records)], "s3://b/k.json.gz", sink, seen, stats, LOG)
    assert done and stats.files == 1
    ids = sink.event_ids()
    assert len(ids) == len(set(ids)) == 4999 and "ev-1" not in ids
    assert stats.events == 4999 and stats.duplicates == 2
    assert sink.flushes >= 3  # flushed in batches, not once at the end
    assert all(event[2] == "s3://b/k.json.gz" and event[3] == "aws:cloudtrail" for event in sink.flushed)
    assert sink.flushed[0][1] == 1693080000.0
    seen.close()
    again = SeenIds(str(tmp_path / "seen"), 10_000)
    assert all(event_id in again for event_id in ids)


def test_write_file_skips_a_damaged_file_and_counts_it(tmp_path, caplog):
    seen, sink, stats = SeenIds(str(tmp_path / "seen")), RecordingSink(), RunStats()
    assert write_file([b"not gzip"], "s3://b/bad", sink, seen, stats, LOG) is True
    assert stats.skipped_files == 1 and not sink.flushed
    assert "s3://b/bad" in caplog.text and "neither gzip nor JSON" in caplog.text


def test_a_stop_cuts_a_slow_download_short_and_keeps_what_was_read(tmp_path):
    seen, sink, stats = SeenIds(str(tmp_path / "seen")), RecordingSink(), RunStats()
    deadline = Deadline(60)
    data = log_file(make_records(5000))

    def slow_download():
        half = len(data) // 2
        yield data[:half]
        deadline.stop.set()  # SIGTERM arrives while the rest is being downloaded
        yield data[half:]

    done = write_file(slow_download(), "s3://b/k", sink, seen, stats, LOG, deadline)
    assert done is False and 0 < len(sink.flushed) < 5000 and not sink.pending
    assert all(event_id in seen for event_id in sink.event_ids())


def test_insight_files_get_their_sourcetype(tmp_path):
    seen, sink = SeenIds(str(tmp_path / "seen")), RecordingSink()
    key = "s3://b/AWSLogs/1/CloudTrail-Insight/us-east-1/2023/08/26/1_CloudTrail-Insight_us-east-1_x.json.gz"
    write_file([log_file(make_records(2))], key, sink, seen, RunStats(), LOG)
    assert {event[3] for event in sink.flushed} == {"aws:cloudtrail:insight"}
