"""Time bins of ``span`` seconds: durations, bin starts and zero-filled count matrices.

Matrices are time-major, ``(bins, entities)``: row ``t`` is one bin across every entity, so the
baseline recursion reads contiguous memory. Silent bins are zeros (zero-filled).
"""

from __future__ import annotations

import re

import numpy as np

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


def bin_start(epoch: float, span: int) -> int:
    """Start (epoch seconds) of the bin holding ``epoch``."""
    return int(epoch // span) * span


def dense_counts(
    bin_index: np.ndarray, entity_index: np.ndarray, counts: np.ndarray, n_bins: int, n_entities: int
) -> np.ndarray:
    """Zero-filled ``(n_bins, n_entities)`` float32 matrix; repeated cells are summed."""
    matrix = np.zeros((n_bins, n_entities), dtype=np.float32)
    if len(counts):
        np.add.at(matrix, (np.asarray(bin_index), np.asarray(entity_index)), np.asarray(counts))
    return matrix


def sum_by_group(matrix: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Column sums of a ``(bins, entities)`` matrix per entity group -> ``(bins, n_groups)``."""
    out = np.zeros((matrix.shape[0], n_groups), dtype=matrix.dtype)
    if matrix.shape[1] == 0:
        return out
    order = np.argsort(group, kind="stable")
    sorted_group = np.asarray(group)[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    sums = np.add.reduceat(matrix[:, order], starts, axis=1)
    out[:, sorted_group[starts]] = sums
    return out
