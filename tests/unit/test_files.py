"""The CLI's files: CloudTrail through the inputs' streaming reader (Records JSON, gzip, arrays, JSON
lines, folders, digests, damage), and pre-aggregated rows (CSV, JSON lines, Splunk's export)."""

from __future__ import annotations

import gzip
import json
import os
import pathlib

import pytest
from iamspike.files import FileError, FileReader, RowReader

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "cloudtrail"
RECORD = {"eventTime": "2023-08-26T20:35:12Z", "eventName": "ListUsers", "errorCode": "AccessDenied"}


def test_formats(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"Records": [RECORD, RECORD]}))
    with gzip.open(tmp_path / "b.json.gz", "wt") as handle:
        json.dump({"Records": [RECORD]}, handle)
    (tmp_path / "c.json").write_text(json.dumps([RECORD]))
    (tmp_path / "d.jsonl").write_text(json.dumps(RECORD) + "\n\n" + json.dumps(RECORD) + "\n")
    digest = tmp_path / "AWSLogs" / "1" / "CloudTrail-Digest" / "x.json.gz"
    digest.parent.mkdir(parents=True)
    with gzip.open(digest, "wt") as handle:
        json.dump({"digestStartTime": "x"}, handle)
    (tmp_path / "notes.txt").write_text("ignored")
    reader = FileReader([str(tmp_path)])
    assert [r["eventName"] for r in reader] == ["ListUsers"] * 6
    assert reader.files == 4 and reader.skipped == [] and reader.notes() == []


def test_damage_is_named_and_records_before_it_kept(tmp_path: pathlib.Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "obj.json").write_text('{"foo": 1}')
    records = [{**RECORD, "eventID": f"{n:08d}-{n * 7919 % 100003}"} for n in range(2000)]
    whole = gzip.compress(json.dumps({"Records": records}).encode())
    (tmp_path / "cut.json.gz").write_bytes(whole[: len(whole) // 2])
    reader = FileReader([str(tmp_path)])
    read = list(reader)
    assert 0 < len(read) < 2000 and read == records[: len(read)] and reader.files == 1
    assert [line.split(": ", 1)[0].rsplit("/", 1)[-1] for line in reader.skipped] == [
        "bad.json",
        "cut.json.gz",
        "empty.json",
        "obj.json",
    ]
    assert "JSON without a Records array" in reader.skipped[3]
    assert reader.notes()[0] == "skipped " + reader.skipped[0]
    named = FileReader([str(tmp_path / "obj.json")])
    assert list(named) == [] and named.files == 0 and len(named.skipped) == 1
    with pytest.raises(FileError, match="no such file or folder"):
        list(FileReader([str(tmp_path / "missing")]))


def test_pipes_links_and_paths_given_twice(tmp_path: pathlib.Path) -> None:
    """A named pipe in a folder is named, never opened (it would block); links to folders are
    followed; a file or folder reached twice is read once and named in ``repeated``."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "a.json").write_text(json.dumps({"Records": [RECORD] * 3}))
    (data / "b.json").write_text(json.dumps([RECORD]))
    os.mkfifo(data / "c.json.gz")
    os.symlink(".", data / "loop")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(data / "sub", elsewhere / "linked")
    reader = FileReader([str(elsewhere), str(data), str(data / "b.json"), str(data)])
    assert len(list(reader)) == 4 and reader.files == 2
    assert reader.skipped == [f"{data / 'c.json.gz'}: not a regular file (a pipe, socket or device)"]
    assert reader.repeated == [
        f"{data / 'loop'} (the same as {data})",
        f"{data / 'sub'} (the same as {elsewhere / 'linked'})",
        f"{data / 'b.json'} (the same as {data / 'b.json'})",
        f"{data} (the same as {data})",
    ]
    assert reader.notes()[1] == f"read once: {data / 'loop'} (the same as {data})"
    with pytest.raises(FileError, match="not a regular file or folder"):
        list(FileReader([str(data / "c.json.gz")]))


def test_licensed_fixtures_parse() -> None:
    def count(path: pathlib.Path) -> int:
        return sum(1 for _ in FileReader([str(path)]))

    assert count(DATA / "stratus" / "aws.discovery.ec2-download-user-data.json") > 10
    assert count(DATA / "otrf" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json") == 103
    assert count(DATA / "panther" / "panther_cloudtrail_test_events.jsonl") == 464


def test_rows_csv_json_and_splunk_export(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.csv").write_text("_time,account,principal,n\n2023-08-26T20:00:00.000+0000,1,p,3\n")
    (tmp_path / "b.jsonl").write_text(
        json.dumps(
            {"preview": False, "result": {"_time": "1693080000", "account": "1", "principal": "q", "n": 4}}
        )
    )
    (tmp_path / "c.json").write_text(
        json.dumps([{"_time": "2023-08-26T20:00:00Z", "account": "1", "n": None}])
    )
    reader = RowReader([str(tmp_path)])
    chunks = list(reader.chunks())
    assert reader.files == 3
    assert chunks == [
        (["_time", "account", "principal", "n"], [["1693080000.0", "1", "p", "3"]]),
        (["_time", "account", "principal", "n"], [["1693080000", "1", "q", "4"]]),
        (["_time", "account", "n"], [["1693080000.0", "1", ""]]),
    ]
