"""Streaming CloudTrail log files: records out of gzip/JSON in bounded pieces, damage reported."""

from __future__ import annotations

import gzip
import json
import logging
import zlib

import pytest
from iamspike.ingest import cloudtrail_files
from iamspike.ingest.cloudtrail_files import BadFile, CloudTrailFile, FileReport, file_kind, iter_file_records
from standin.fixtures_aws import log_file, make_records

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


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("size", [4096, 1 << 20])
def test_a_truncated_gzip_yields_every_intact_record_before_the_cut(cut, size):
    records = make_records(3000, noise=True)
    body = json.dumps({"Records": records}).encode()
    data = gzip.compress(body)
    kept = data[: int(len(data) * cut)]
    produced = zlib.decompressobj(wbits=31).decompress(kept)  # every byte the cut left readable
    text = produced.decode("utf-8", "ignore")
    intact = sum(1 for record in records if json.dumps(record) in text)  # wholly readable
    reader = CloudTrailFile(pieces(kept, size), "t")
    got = []
    with pytest.raises(BadFile, match="truncated gzip stream") as info:
        for item in reader:
            got.append(item)
    assert [r["eventID"] for _, r in got] == [f"ev-{n}" for n in range(intact)]
    assert f"it ends after {len(kept)} bytes" in str(info.value)


def test_corrupt_gzip_data_yields_the_records_before_the_corrupt_spot():
    # Deflate has no check per block: bytes altered in the middle may decode to garbage that
    # only the CRC at the end reveals. The records before the altered spot all come out intact.
    records = make_records(3000, noise=True, seed=16)
    data = bytearray(gzip.compress(json.dumps({"Records": records}).encode(), mtime=0))
    spot = len(data) // 2
    data[spot : spot + 64] = b"\xff" * 64
    got, reader = [], CloudTrailFile(pieces(bytes(data), 1 << 18), "t")
    with pytest.raises(BadFile, match="corrupt gzip data") as info:
        for item in reader:
            got.append(item)
    assert len(got) > 1000 and [r["eventID"] for _, r in got] == [f"ev-{n}" for n in range(len(got))]
    assert "detected at compressed byte" in str(info.value)


def test_a_gzip_holding_no_json_is_named_as_such():
    with pytest.raises(BadFile, match="gzip file holding no JSON"):
        read(gzip.compress(b"eventID,eventName\n1,ListUsers\n"))


@pytest.mark.parametrize("compress", [True, False])
def test_json_lines_of_records_and_of_records_files(compress):
    lines = [json.dumps(r) for r in make_records(3, prefix="a")]
    lines.append(json.dumps({"Records": make_records(2, prefix="b")}))
    lines.append(json.dumps(make_records(1, prefix="c")))
    body = ("\n".join(lines) + "\n").encode()
    reader, got = read(gzip.compress(body) if compress else body, 5)
    assert [r["eventID"] for _, r in got] == ["a-0", "a-1", "a-2", "b-0", "b-1", "c-0"]
    assert [json.loads(text) for text, _ in got] == [r for _, r in got] and reader.records == 6


def test_a_lone_object_that_is_not_a_record_has_no_records():
    with pytest.raises(BadFile, match="without a Records array"):
        read(b'{"eventVersion_not": 1}\n{"eventID": "x"}\n')


def test_records_not_first_keep_their_text_in_bounded_memory(monkeypatch):
    monkeypatch.setattr(cloudtrail_files, "PIECE_CHARS", 1000)
    records = make_records(2000)
    body = json.dumps({"Version": "1.0", "Records": records}).encode()
    reader = CloudTrailFile(pieces(body, 1000), "t")
    longest = 0
    for _text, _record in reader:
        longest = max(longest, len(reader._buf))
    assert reader.records == 2000 and longest < 10_000


def test_iter_file_records_reads_a_local_file_and_reports(tmp_path):
    path = tmp_path / "111_CloudTrail_us-east-1_20230826T2035Z_x.json.gz"
    records = make_records(50)
    records.insert(10, "not a record")
    path.write_bytes(log_file(records))
    report = FileReport()
    assert [r["eventID"] for r in iter_file_records(str(path), report)] == [f"ev-{n}" for n in range(50)]
    assert report == FileReport(records=50, skipped_records=1)
    digest = tmp_path / "CloudTrail-Digest" / "111_CloudTrail-Digest_us-east-1_x.json.gz"
    digest.parent.mkdir()
    digest.write_bytes(gzip.compress(b'{"digestStartTime": "x"}'))
    report = FileReport()
    assert list(iter_file_records(str(digest), report)) == [] and report.digest


def test_iter_file_records_yields_what_precedes_damage_then_says_where(tmp_path):
    path = tmp_path / "cut.json.gz"
    data = log_file(make_records(3000, noise=True))
    path.write_bytes(data[: len(data) // 2])
    report, got = FileReport(), []
    with pytest.raises(BadFile) as info:
        for record in iter_file_records(str(path), report):
            got.append(record)
    assert len(got) == report.records > 0 and str(path) in str(info.value)
    assert report.damage == str(info.value) and "truncated gzip" in report.damage
