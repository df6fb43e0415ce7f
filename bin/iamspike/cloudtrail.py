"""CloudTrail records and Splunk rows: field access by dotted names, ``_raw`` JSON, time parsing.

Splunk extracts a CloudTrail record's nested JSON as dotted field names
(``userIdentity.sessionContext.sessionIssuer.arn``); the engine works on rows with those names.
A record dict (from a log file or from ``_raw``) is turned into a row of :data:`FIELDS` by
:func:`record_to_row`, so every input takes the same path through the engine.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping

TIME = "_time"
RAW = "_raw"
EVENT_TIME = "eventTime"

# The Input A columns, in the order of the rows record_to_row() builds.
FIELDS = (
    TIME,
    "eventID",
    "eventName",
    "eventSource",
    "errorCode",
    "errorMessage",
    "recipientAccountId",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "userIdentity.type",
    "userIdentity.arn",
    "userIdentity.accountId",
    "userIdentity.accessKeyId",
    "userIdentity.invokedBy",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.principalId",
    "responseElements.ConsoleLogin",
)

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$",
)


def parse_time(value: object) -> float | None:
    """Epoch seconds from a number, an epoch string (``"1693082100.5"``) or ISO 8601; else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    match = _ISO.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, frac, zone = match.groups()
    try:
        epoch = calendar.timegm(
            (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
        )
    except (ValueError, OverflowError):
        return None
    if frac:
        epoch += float(frac)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return float(epoch)


def get_path(record: Mapping, dotted: str) -> object:
    """The value at a dotted path in a nested record, or None."""
    node: object = record
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True)


def record_time(record: Mapping) -> float | None:
    """The record's time: ``eventTime``, else a ``@timestamp`` (Logstash exports), else ``_time``."""
    for key in (EVENT_TIME, "@timestamp", TIME):
        value = record.get(key)
        if value is not None:
            return parse_time(value)
    return None


def record_to_row(record: Mapping) -> list[str]:
    """One CloudTrail record dict -> a row of strings in :data:`FIELDS` order."""
    when = record_time(record)
    row = [(f"{when!r}") if when is not None else ""]
    for name in FIELDS[1:]:
        row.append(_text(record.get(name) if "." not in name else get_path(record, name)))
    return row


def parse_raw(raw: str) -> Mapping | None:
    """The record held in a ``_raw`` JSON string, or None if it is not a JSON object."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return None
    return value if isinstance(value, Mapping) else None
