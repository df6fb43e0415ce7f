"""The CLI's output formats: the table wraps every explanation field between items and cuts
nothing; JSON and CSV carry every field with ISO or epoch _time; option values as SPL writes them."""

from __future__ import annotations

import csv
import io
import json

from iamspike import formats
from iamspike.options import Options

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0"
ROW = {
    "_time": 1693080000,
    "entity_type": "principal",
    "account": "107513503799",
    "principal": "arn:aws:sts::107513503799:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789/alice",
    "failures": 505,
    "expected": 0.05,
    "upper": 4.0,
    "score": 100.0,
    "severity": "critical",
    "distinct_apis": 465,
    "top_error_codes": "AccessDenied (434), Client.UnauthorizedOperation (71)",
    "top_apis": "DescribeClusters (4), ListClusters (4), ListJobs (4), DescribeAccountAttributes (3)",
    "top_source_ips": "84.32.71.29 (37)",
    "top_user_agents": f"aws-sdk-go-v2/1.3.2 (503), {UA} (3)",
    "reason": "alice had 505 failed calls in 1h, expected 0.05 (upper 4.0), across 465 APIs and 2 codes.",
    "new_field": "an engine field added later",
}


def test_table_keeps_every_field_whole_and_wraps_between_items() -> None:
    out = io.StringIO()
    formats.write_table([ROW], out, width=70)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == list(formats.SUMMARY_FIELDS)
    assert lines[2].startswith("2023-08-26T20:00:00Z  principal") and ROW["principal"] in lines[2]
    text = out.getvalue()
    flat = " ".join(line.strip() for line in lines[3:])
    for field in ("top_error_codes", "top_apis", "top_source_ips", "top_user_agents", "reason", "new_field"):
        assert f"\n    {field} " in text
    for item in [*ROW["top_apis"].split(", "), f"{UA} (3)"]:
        assert any(item in line for line in lines), item  # an item is never split across lines
    assert "across 465 APIs and 2 codes." in flat
    assert all(len(line) <= 70 for line in lines[3:] if UA not in line)


def test_empty_table_says_so() -> None:
    out = io.StringIO()
    formats.write_rows([], "table", out)
    assert out.getvalue() == "no spikes\n"


def test_json_and_csv_every_field_iso_or_epoch() -> None:
    out = io.StringIO()
    formats.write_json([ROW], out)
    row = json.loads(out.getvalue())
    assert list(row) == list(ROW) and row["_time"] == "2023-08-26T20:00:00Z"
    out = io.StringIO()
    formats.write_json([ROW], out, epoch=True)
    assert json.loads(out.getvalue())["_time"] == 1693080000
    out = io.StringIO()
    formats.write_csv([ROW], out)
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert (
        list(row) == list(ROW) and row["_time"] == "2023-08-26T20:00:00Z" and row["reason"] == ROW["reason"]
    )


def test_option_text_as_spl_writes_it() -> None:
    defaults = Options()
    shown = {
        key: formats.option_text(key, getattr(defaults, key))
        for key in ("span", "by", "classes", "event_sources")
    }
    assert shown == {"span": "1h", "by": "both", "classes": "authorization", "event_sources": "all"}
    assert (
        formats.option_text("history", 30 * 86400) == "30d" and formats.option_text("sensitivity", 1.0) == "1"
    )
    assert formats.option_text("count_field", None) == "none"
    assert (formats.plural(1, "file"), formats.plural(2000, "entity", "entities")) == (
        "1 file",
        "2,000 entities",
    )
