"""The allowlist: known automation whose flagged principal rows the alerts drop.

Entries reach the reporting phase as rows of their own, appended by the macro
``iam_error_spike_allowlist`` (``inputlookup append=true`` of the KV store collection and of the
older CSV): a ``principal`` pattern and an ``allowlist_reason``. An entry counts only when it is
well formed; a malformed one is named once in the search's messages and never drops a row, so a
typo can only make the allowlist narrower, never wider.

Well formed: a reason that is not blank, no column besides ``principal`` and ``allowlist_reason``
(and the KV store's ``_key``/``_user``), and a principal that names its kind literally
(``...:user/``, ``...:role/``, ``...:root``, ``...:assumed-role/``, ``...:federated-user/``,
``<service>.amazonaws.com``, ``aws-account:<12 digits>``) with an account of 12 digits or ``*``
and a literal first character of the name. ``*`` stands for any run of characters (Splunk's
``WILDCARD`` lookup match), only in the account and the rest of a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

PRINCIPAL = "principal"
REASON = "allowlist_reason"
COLUMNS = (PRINCIPAL, REASON)
# Columns Splunk adds to the rows of a lookup: the KV store's own fields and the event-ish fields
# that `inputlookup append=true` rows may carry through a pipeline.
SPLUNK_COLUMNS = frozenset({"_key", "_user", "_time", "_raw"})
_NAME = r"[\w+=,.@-][\w+=,.@/*-]*"
_ACCOUNT = r"(\d{12}|\*)"
VALID = re.compile(
    rf"arn:aws(-[a-z]+)*:iam::{_ACCOUNT}:(user|role)/{_NAME}"
    rf"|arn:aws(-[a-z]+)*:iam::{_ACCOUNT}:root"
    rf"|arn:aws(-[a-z]+)*:sts::{_ACCOUNT}:(assumed-role|federated-user)/{_NAME}"
    r"|[a-z0-9-]+(\.[a-z0-9*-]+)*\.amazonaws\.com"
    r"|aws-account:\d{12}"
)
SHOWN = 3  # malformed entries named in the message; the rest are counted


class Entry(NamedTuple):
    principal: str
    reason: str
    extra: tuple[str, ...]  # columns that are neither principal nor reason, with a value


def problem(entry: Entry) -> str | None:
    """Why ``entry`` does not count, or None when it is well formed."""
    if entry.extra:
        return "unknown column " + ", ".join(entry.extra)
    if not entry.reason.strip():
        return "blank allowlist_reason"
    if not VALID.fullmatch(entry.principal):
        return "principal must name its kind and first character literally"
    return None


def _pattern(principal: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in principal.split("*")), re.S)


class Allowlist:
    """The well-formed entries, and one message naming the malformed ones."""

    def __init__(self) -> None:
        self._patterns: list[re.Pattern] = []
        self._literal: set[str] = set()
        self._malformed: list[tuple[str, str]] = []

    def add(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            why = problem(entry)
            if why:
                self._malformed.append((entry.principal, why))
            elif "*" in entry.principal:
                self._patterns.append(_pattern(entry.principal))
            else:
                self._literal.add(entry.principal)

    def add_rows(self, header: list[str], rows: Iterable[list[str]]) -> None:
        """Rows of an ``inputlookup`` of either allowlist lookup."""
        at = {name: i for i, name in enumerate(header)}
        p_i, r_i = at.get(PRINCIPAL), at.get(REASON)
        others = [(name, i) for name, i in at.items() if name not in COLUMNS and name not in SPLUNK_COLUMNS]
        self.add(
            Entry(
                row[p_i] if p_i is not None else "",
                row[r_i] if r_i is not None else "",
                tuple(name for name, i in others if row[i]),
            )
            for row in rows
        )

    def __bool__(self) -> bool:
        return bool(self._patterns or self._literal or self._malformed)

    def drops(self, principal: str) -> bool:
        """Is ``principal`` known automation? An empty principal (an account row) never is."""
        if not principal:
            return False
        return principal in self._literal or any(p.fullmatch(principal) for p in self._patterns)

    def keep(self, rows: list[dict[str, object]]) -> list[dict[str, object]]:
        """The result rows that are not principal rows of an allowlisted principal."""
        if not (self._patterns or self._literal):
            return rows
        return [
            row
            for row in rows
            if row.get("entity_type") != "principal" or not self.drops(str(row.get(PRINCIPAL) or ""))
        ]

    def message(self) -> str | None:
        """One line naming the malformed entries (ignored), or None."""
        if not self._malformed:
            return None
        named = "; ".join(f"{p or '(empty)'!r}: {why}" for p, why in self._malformed[:SHOWN])
        more = len(self._malformed) - SHOWN
        tail = f"; and {more} more" if more > 0 else ""
        count = len(self._malformed)
        return f"allowlist: {count} malformed entr{'y' if count == 1 else 'ies'} ignored ({named}{tail})"


def is_entry_row(at: Mapping[str, int], row: list[str]) -> bool:
    """A row of an allowlist lookup rather than an event, a count row or a state row: it has the
    ``allowlist_reason`` column (the marker; it may be blank) and no ``_time``."""
    time_i = at.get("_time")
    return REASON in at and (time_i is None or not row[time_i])
