"""Quality bench, the rows Splunk hands the engine: Input A as search-time JSON extraction gives it
(``splunk_rows``) and Input B, events pre-counted per hour (``input_b_rows``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from bench import references as R

# Input A as Splunk's search-time JSON extraction hands it over (dotted names, strings, "" for
# missing), in an arbitrary column order with fields the engine must ignore.
SPLUNK_FIELDS = (
    "sourcetype",
    "userIdentity.arn",
    "eventName",
    "_time",
    "errorCode",
    "__mv_errorCode",
    "userIdentity.type",
    "eventSource",
    "recipientAccountId",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "errorMessage",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "userIdentity.accountId",
    "userIdentity.accessKeyId",
    "userIdentity.invokedBy",
    "responseElements.ConsoleLogin",
    "eventID",
)
CHUNK = 50_000


def splunk_rows(records: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """Records as rows of SPLUNK_FIELDS."""
    out = []
    for r in records:
        row = []
        for name in SPLUNK_FIELDS:
            if name == "_time":
                row.append(f"{R.parse_event_time(str(r['eventTime'])):.3f}")
            elif name == "sourcetype":
                row.append("aws:cloudtrail")
            elif name.startswith("__mv_"):
                row.append("")
            else:
                value: Any = r
                for part in name.split("."):
                    value = value.get(part) if isinstance(value, Mapping) else None
                row.append("" if value is None else str(value))
        out.append(row)
    return out


INPUT_B_FIELDS = ["_time", "account", "principal", "errorCode", "eventSource", "eventName", "count"]


def input_b_rows(records: Iterable[Mapping[str, Any]], span: int = 3600) -> list[list[str]]:
    """What ``errorCode=* | stats count by _time span=1h account principal errorCode eventSource
    eventName`` gives (calls with an errorCode only: failed console sign-ins have none), with
    ``principal`` from the `iam_error_spike_principal` macro:
    coalesce(sessionIssuer.arn, userIdentity.arn, invokedBy, principalId)."""
    counts: dict[tuple[int, str, str, str, str, str], int] = defaultdict(int)
    for r in records:
        code = r.get("errorCode")
        if not code:
            continue
        ident = r.get("userIdentity") or {}
        issuer = ((ident.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
        principal = issuer or ident.get("arn") or ident.get("invokedBy") or ident.get("principalId") or ""
        when = int(R.parse_event_time(str(r["eventTime"])) // span) * span
        counts[
            (when, str(r.get("recipientAccountId", "")), principal, code, r["eventSource"], r["eventName"])
        ] += 1
    return [[str(k[0]), *k[1:], str(n)] for k, n in counts.items()]
