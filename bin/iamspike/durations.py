"""Durations in Splunk's units (``30m``, ``1h``, ``7d``) and bin widths (``span``). Pure Python."""

from __future__ import annotations

import re

MIN_SPAN = 300
MAX_SPAN = 86400
_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration(text: str) -> int:
    """Seconds in ``"1h"``, ``"30m"``, ``"7d"``, ``"3600"`` (Splunk's time units); ValueError if bad."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 5m, 1h, 1d)")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower() if unit else "s")
    if factor is None:
        raise ValueError(f"unknown time unit {unit!r} in {text!r} (use s, m, h, d or w)")
    seconds = float(number) * factor
    if seconds != int(seconds) or seconds <= 0:
        raise ValueError(f"duration must be a positive whole number of seconds: {text!r}")
    return int(seconds)


def parse_span(text: str) -> int:
    """A bin width: a duration between 5m and 1d, a whole number of minutes."""
    seconds = parse_duration(text)
    if not MIN_SPAN <= seconds <= MAX_SPAN:
        raise ValueError(f"span must be between 5m and 1d, got {text!r}")
    if seconds % 60:
        raise ValueError(f"span must be a whole number of minutes, got {text!r}")
    return seconds
