"""Error classes: which ``errorCode`` values count as failures for the spike detector.

The classes come from the lookup shipped in ``lookups/iamspike_error_classes.csv`` (columns
``errorCode,class[,description]``) so admins can change them; a code missing from the lookup is
classified by its name (``*AccessDenied*`` -> authorization, ``*DryRun*`` -> dryrun, ...). EC2's
``Client.DryRunOperation`` is NOT a failure (the call would have succeeded). A failed console
sign-in has no ``errorCode`` in CloudTrail (only ``errorMessage`` and
``responseElements.ConsoleLogin=Failure``); it is given the synthetic code ``ConsoleLoginFailure``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping

AUTHORIZATION = "authorization"
CONSOLE_LOGIN_FAILURE = "ConsoleLoginFailure"
KNOWN_CLASSES = (
    AUTHORIZATION,
    "authentication",
    "dryrun",
    "throttling",
    "validation",
    "not_found",
    "conflict",
    "limit",
    "service",
    "other",
)
DEFAULT_LOOKUP = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "lookups",
    "iamspike_error_classes.csv",
)

# Name patterns for codes the lookup does not list, checked in this order (first match wins).
_PATTERNS = (
    ("dryrun", ("dryrun",)),
    ("throttling", ("throttl", "toomanyrequests", "requestlimitexceeded", "slowdown", "rateexceeded")),
    (
        AUTHORIZATION,
        ("accessdenied", "unauthorized", "notauthorized", "forbidden", "authfailure", "notpermitted"),
    ),
    ("authentication", ("token", "signature", "credential")),
    ("not_found", ("notfound", "nosuch")),
    ("validation", ("invalid", "validation", "malformed", "missing")),
    ("limit", ("limitexceeded",)),
)


def classify_by_name(code: str) -> str:
    """Class of an error code from its name alone (used for codes absent from the lookup)."""
    low = code.lower()
    for name, needles in _PATTERNS:
        if any(needle in low for needle in needles):
            return name
    return "other"


class ErrorClasses:
    """errorCode -> class, from the lookup plus name patterns; memoized per code."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = {code: cls for code, cls in table.items()}

    @classmethod
    def load(cls, path: str | None = None) -> ErrorClasses:
        """Read the lookup CSV (default: the app's ``lookups/iamspike_error_classes.csv``)."""
        path = path or DEFAULT_LOOKUP
        table = {}
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                code = (row.get("errorCode") or "").strip()
                if code:
                    table[code] = (row.get("class") or "other").strip().lower() or "other"
        return cls(table)

    def classify(self, code: str) -> str:
        """Class of one errorCode ("" means no error: class "")."""
        if not code:
            return ""
        found = self._table.get(code)
        if found is None:
            found = classify_by_name(code)
            self._table[code] = found
        return found

    def classes(self) -> set[str]:
        """Every class name the lookup knows, plus the built-in ones."""
        return set(self._table.values()) | set(KNOWN_CLASSES)

    def counter(self, selected: Iterable[str]) -> CountedCodes:
        """A fast membership test for the codes whose class is in ``selected``."""
        return CountedCodes(self, frozenset(selected))


class CountedCodes(dict):
    """``codes[code]`` is True when the code's class is selected; filled lazily (dict speed)."""

    def __init__(self, classes: ErrorClasses, selected: frozenset[str]) -> None:
        super().__init__()
        self._classes = classes
        self._selected = selected
        self[""] = False

    def __missing__(self, code: str) -> bool:
        counted = self._classes.classify(code) in self._selected
        self[code] = counted
        return counted


def console_login_failed(event_name: str, error_message: str, console_result: str) -> bool:
    """True for a failed console sign-in (no errorCode in CloudTrail for these)."""
    return event_name == "ConsoleLogin" and (console_result == "Failure" or bool(error_message))
