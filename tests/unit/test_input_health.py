"""The input-health macro (default/macros.conf `iam_error_spike_input_log`) against the log lines
the inputs really write: the line format of iamspike_splunk.modinput, each input's summary line,
and the error lines the view sorts by kind. If a summary's wording changes, this fails before
the Input Health view goes blank."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from iamspike.ingest.ec2_inventory import InventorySummary
from iamspike.ingest.events import FileSummary
from iamspike.ingest.lookup import LookupSummary
from iamspike_splunk import modinput
from standin.conf import read_conf

ROOT = Path(__file__).resolve().parents[2]
MACRO = read_conf(ROOT / "default" / "macros.conf")["iam_error_spike_input_log"]["definition"]


def rexes() -> list[tuple[str, re.Pattern]]:
    """(field, compiled pattern) of each ``rex`` of the macro, PCRE named groups made Python's."""
    found = []
    for step in MACRO.split(" | "):
        match = re.fullmatch(r'rex (?:field=(\w+) )?"(.*)"', step.strip())
        if match:
            pattern = match.group(2).replace("(?<", "(?P<").replace('\\"', '"')
            found.append((match.group(1) or "_raw", re.compile(pattern)))
    return found


def extract(line: str) -> dict[str, str]:
    """The fields the macro's rex steps give ``line`` (each rex a search, as Splunk's)."""
    fields = {"_raw": line}
    for field, pattern in rexes():
        match = pattern.search(fields.get(field, ""))
        if match:
            fields.update({k: v for k, v in match.groupdict().items() if v is not None})
    return fields


def error_kind(message: str) -> str:
    """The macro's eval of error_kind (its replace() applied as Splunk does, with \\1)."""
    expr = re.search(r'error_kind=if\(level="ERROR", replace\(message, "(.*?)", "\\1"\)', MACRO)
    assert expr, "error_kind is no longer a replace() of the message"
    return re.sub(expr.group(1), r"\1", message)


def log_line(level: int, input_name: str, message: str) -> str:
    """One line formatted by the inputs' own handler (modinput.setup_logging's formatter)."""
    record = logging.LogRecord("iamspike.input", level, __file__, 1, message, None, None)
    record.input = input_name
    fmt = logging.Formatter("%(asctime)s %(levelname)s pid=%(process)d input=%(input)s %(message)s")
    return fmt.format(record)


def test_the_line_format_is_the_one_modinput_writes() -> None:
    source = Path(modinput.__file__).read_text(encoding="utf-8")
    assert '"%(asctime)s %(levelname)s pid=%(process)d input=%(input)s %(message)s"' in source


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (
            FileSummary(events=7, files=2, errors=0).line("aws"),
            {"events": "7", "units": "2", "unit": "files", "run_errors": "0"},
        ),
        (
            LookupSummary(events=50, pages=1, regions=3, errors=2).line("aws"),
            {"events": "50", "units": "1", "unit": "pages", "run_errors": "2"},
        ),
        (
            InventorySummary(events=4, regions=2, accounts=1).line("main"),
            {"events": "4", "units": "2", "unit": "regions", "run_errors": "0"},
        ),
    ],
)
def test_each_input_summary_gives_events_what_it_read_and_errors(summary: str, expected: dict) -> None:
    fields = extract(log_line(logging.INFO, "aws_cloudtrail_sqs://prod", summary))
    assert fields["level"] == "INFO" and fields["input"] == "aws_cloudtrail_sqs://prod"
    assert {k: fields.get(k) for k in expected} == expected


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (
            "AccessDenied: role arn:aws:iam::111122223333:role/r is not allowed to call s3:GetObject",
            "AccessDenied",
        ),
        (
            "ExpiredToken: the credentials of role x are expired or invalid for sqs:ReceiveMessage",
            "ExpiredToken",
        ),
        ("bad setting: queue_url 'x' is not an SQS queue URL", "bad setting"),
        ("stopped by an unexpected error", "stopped by an unexpected error"),
        (
            "ProxyConnectionError calling sqs:ReceiveMessage on arn:aws:sqs:*:1:q: Failed",
            "ProxyConnectionError",
        ),
    ],
)
def test_error_lines_are_sorted_by_kind(message: str, kind: str) -> None:
    fields = extract(log_line(logging.ERROR, "aws_cloudtrail_s3://backfill", message))
    assert fields["level"] == "ERROR" and fields["message"] == message
    assert error_kind(fields["message"]) == kind


def test_messages_left_to_redelivery_are_counted() -> None:
    line = log_line(
        logging.ERROR,
        "aws_cloudtrail_sqs://q",
        "AccessDenied: ...; 3 messages will be redelivered (their records...)",
    )
    assert extract(line)["redelivered"] == "3"
