"""CloudTrail files: Records JSON (gz), arrays, JSON lines, folders, digests, errors."""

from __future__ import annotations

import gzip
import json
import pathlib

import pytest
from iamspike.files import FileError, FileReader, read_file

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "cloudtrail"
RECORD = {"eventTime": "2023-08-26T20:35:12Z", "eventName": "ListUsers", "errorCode": "AccessDenied"}


def test_formats(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"Records": [RECORD, RECORD]}))
    with gzip.open(tmp_path / "b.json.gz", "wt") as handle:
        json.dump({"Records": [RECORD]}, handle)
    (tmp_path / "c.json").write_text(json.dumps([RECORD]))
    (tmp_path / "d.jsonl").write_text(json.dumps(RECORD) + "\n\n" + json.dumps(RECORD) + "\n")
    digest = tmp_path / "CloudTrail-Digest" / "x.json.gz"
    digest.parent.mkdir()
    with gzip.open(digest, "wt") as handle:
        json.dump({"digestStartTime": "x"}, handle)
    (tmp_path / "notes.txt").write_text("ignored")
    reader = FileReader([str(tmp_path)])
    assert len(list(reader)) == 6
    assert reader.files == 4 and reader.skipped == []


def test_bad_file_in_a_folder_is_skipped_but_named_file_fails(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    reader = FileReader([str(tmp_path)])
    assert list(reader) == [] and len(reader.skipped) == 1
    with pytest.raises(FileError, match=r"bad\.json line 1: not JSON"):
        list(FileReader([str(bad)]))
    with pytest.raises(FileError, match="no such file or folder"):
        list(FileReader([str(tmp_path / "missing")]))
    (tmp_path / "obj.json").write_text('{"foo": 1}')
    with pytest.raises(FileError, match="not CloudTrail JSON"):
        read_file(str(tmp_path / "obj.json"))


def test_licensed_fixtures_parse() -> None:
    assert len(read_file(str(DATA / "stratus" / "aws.discovery.ec2-download-user-data.json"))) > 10
    assert len(read_file(str(DATA / "otrf" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json"))) == 103
    assert len(read_file(str(DATA / "panther" / "panther_cloudtrail_test_events.jsonl"))) == 464
