"""Saved baselines (``show=state``) and their restore.

One row per principal with failures in the kept history, plus one range row (empty account and
principal) that carries the history's first and last bin so silent bins are zero-filled the same
way after a restore. The ``iamspike_state`` column holds compact JSON: version, span, first and
last bin start, the non-zero bins as ``{offset_in_bins: count}`` and their breadth (distinct APIs,
where not 1) as ``{offset_in_bins: apis}`` (the baseline's usual breadth needs it), and the APIs
the principal has failed on with the bin of their first failure as ``{api: offset_in_bins}``
(negative before the kept history; the scoring's novelty needs it: without it, as in rows saved
before it existed, no API of the principal is taken as new until enough history has been seen
again). Rows go to a
lookup with ``outputlookup`` and come back with ``inputlookup append=t``; any row whose
``iamspike_state`` is non-empty is a state row. Restored counts are history only: for bins
covered by the live rows, the live rows win.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

STATE_FIELD = "iamspike_state"
VERSION = 1


@dataclass(frozen=True)
class StateEntry:
    span: int
    first: int  # first bin start (epoch s) of the saved history
    last: int  # last bin start
    account: str
    principal: str
    bins: dict[int, int]  # bin start (epoch s) -> failures
    apis: dict[int, int] = field(default_factory=dict)  # bin start -> distinct APIs (default 1)
    seen: dict[str, int] = field(default_factory=dict)  # API -> bin start of its first failure


def _offsets(entry: StateEntry, values: Mapping[int, int], skip: int | None = None) -> dict[str, int]:
    return {
        str((start - entry.first) // entry.span): value
        for start, value in sorted(values.items())
        if value != skip
    }


def encode(entry: StateEntry) -> dict[str, object]:
    """The output row for one entry."""
    blob = {
        "v": VERSION,
        "span": entry.span,
        "first": entry.first,
        "last": entry.last,
        "account": entry.account,
        "principal": entry.principal,
        "bins": _offsets(entry, entry.bins),
        "apis": _offsets(entry, entry.apis, skip=1),
    }
    if entry.seen:
        blob["seen"] = {api: (start - entry.first) // entry.span for api, start in sorted(entry.seen.items())}
    return {
        "_time": entry.last,
        "account": entry.account,
        "principal": entry.principal,
        "failures": sum(entry.bins.values()),
        STATE_FIELD: json.dumps(blob, separators=(",", ":"), sort_keys=True),
    }


def decode(text: str) -> StateEntry:
    """Parse one ``iamspike_state`` value; ValueError with a short reason if it is not ours."""
    try:
        blob = json.loads(text)
    except ValueError as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(blob, Mapping) or blob.get("v") != VERSION:
        raise ValueError("unknown state version")
    try:
        span = int(blob["span"])
        first = int(blob["first"])
        last = int(blob["last"])
        bins = {first + int(offset) * span: int(count) for offset, count in dict(blob["bins"]).items()}
        apis = {first + int(offset) * span: int(n) for offset, n in dict(blob.get("apis", {})).items()}
        apis = {start: apis.get(start, 1) for start in bins}
        seen = {str(api): first + int(offset) * span for api, offset in dict(blob.get("seen", {})).items()}
        return StateEntry(span, first, last, str(blob["account"]), str(blob["principal"]), bins, apis, seen)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError("malformed state") from exc
