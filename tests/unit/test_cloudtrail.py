"""Records and rows: time parsing, dotted field access, _raw JSON, records without eventTime."""

from __future__ import annotations

import json
import pathlib

import pytest
from iamspike.cloudtrail import FIELDS, get_path, parse_raw, parse_time, record_time, record_to_row

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "cloudtrail"


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2023-08-26T20:35:12Z", 1693082112.0),
        ("2023-08-26T20:35:12.250Z", 1693082112.25),
        ("2023-08-26T22:35:12+02:00", 1693082112.0),
        ("2023-08-26 20:35:12", 1693082112.0),
        ("1693082112", 1693082112.0),
        ("1693082112.5", 1693082112.5),
        (1693082112, 1693082112.0),
        ("", None),
        ("yesterday", None),
        (None, None),
        (True, None),
        ("2023-13-45T99:00:00Z", None),
    ],
)
def test_parse_time(value: object, epoch: float | None) -> None:
    assert parse_time(value) == epoch


def test_record_to_row_flattens_dotted_names() -> None:
    record = {
        "eventTime": "2023-08-26T20:35:12Z",
        "eventName": "ListUsers",
        "errorCode": "AccessDenied",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::1:assumed-role/r/s",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/r"}},
        },
        "responseElements": {"ConsoleLogin": "Failure"},
    }
    row = dict(zip(FIELDS, record_to_row(record)))
    assert float(row["_time"]) == 1693082112.0
    assert row["userIdentity.sessionContext.sessionIssuer.arn"] == "arn:aws:iam::1:role/r"
    assert row["responseElements.ConsoleLogin"] == "Failure"
    assert row["userIdentity.invokedBy"] == ""
    assert get_path(record, "userIdentity.type") == "AssumedRole"
    assert get_path(record, "userIdentity.type.nothing") is None


def test_logstash_records_without_event_time_use_timestamp() -> None:
    lines = (DATA / "otrf" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json").read_text().splitlines()
    record = json.loads(lines[0])
    assert "eventTime" not in record
    assert record_time(record) is not None


def test_parse_raw() -> None:
    assert parse_raw('{"eventName": "x"}') == {"eventName": "x"}
    assert parse_raw("[1, 2]") is None
    assert parse_raw("not json") is None
    assert parse_raw('{"a":' + "[" * 100_000) is None  # past json's recursion limit
