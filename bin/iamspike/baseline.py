"""Per-entity baselines of failure counts, built by ONE function from plain arrays.

For every bin ``t`` and entity the baseline uses only bins before ``t`` (causal), so a spike is
judged against what came before it and never inflates its own baseline:

- ``level``: an exponentially decayed mean (half-life ``half_life_bins``) of past counts, each
  WINSORIZED at ``expected + clip_sigmas * sd + 2`` before it enters, so past spikes barely move it;
- ``seasonal``: the median of the same hour-of-day (weekdays and weekends apart) over the last
  ``seasonal_samples`` days of that kind, once ``seasonal_min_samples`` exist (a daily batch that
  fails at 02:00 is expected at 02:00);
- ``recent``: the median of the last ``recent_bins`` bins (a new steady stream is absorbed after a
  few bins instead of alerting for days).

``expected = max(level, seasonal, recent)``. ``silent`` marks bins where the long-run
expectation (level and seasonal, not the recent bins) is below ``silent_level``: the entity had
no failures to speak of, so failures now are an onset (the scoring caps the surprise of onsets).

The dispersion (variance / mean, 1 = Poisson) is the decayed mean squared deviation over the
level, bounded to ``[1, dispersion_max]``; a relative floor keeps high-rate streams from looking
too regular. Below ``min_history_bins`` bins of history the baseline is "insufficient history":
it falls back to a prior pooled from the entity's peers (mean level of its group, e.g. the
principals of its account) and doubles the dispersion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class BaselineParams:
    half_life_bins: float = 168.0
    min_history_bins: int = 24
    seasonal_samples: int = 5
    seasonal_min_samples: int = 3
    recent_bins: int = 3
    clip_sigmas: float = 4.0
    dispersion_max: float = 20.0
    relative_sd_floor: float = 0.1
    silent_level: float = 1.0


@dataclass(frozen=True)
class Baseline:
    """Expected count and variance for every (bin, entity), time-major ``(bins, entities)``."""

    expected: np.ndarray
    variance: np.ndarray
    history_bins: np.ndarray  # (bins,) bins of history before each bin
    seasonal_samples: np.ndarray  # (bins,) same-slot days the seasonal median used (0 = none)
    insufficient: np.ndarray  # (bins,) bool: below min_history_bins, prior pooled from peers
    silent: np.ndarray  # (bins, entities) bool: level and seasonal below silent_level
    peers: np.ndarray  # (entities,) size of the entity's peer group


def _seasonal_slots(start: int, span: int, n_bins: int) -> list[int] | None:
    """Slot (hour-of-day x weekday/weekend) of each bin, or None when span is not sub-daily."""
    if span >= SECONDS_PER_DAY or SECONDS_PER_DAY % span:
        return None
    per_day = SECONDS_PER_DAY // span
    slots = []
    for t in range(n_bins):
        epoch = start + t * span
        weekend = time.gmtime(epoch).tm_wday >= 5
        slots.append((epoch % SECONDS_PER_DAY) // span + (per_day if weekend else 0))
    return slots


def _median_of_three(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def fit_baselines(
    counts: np.ndarray,
    start: int,
    span: int,
    groups: np.ndarray | None = None,
    params: BaselineParams | None = None,
) -> Baseline:
    """Baselines for a ``(bins, entities)`` count matrix whose first bin starts at ``start``.

    ``groups`` (entities,) ints name each entity's peer group for the pooled prior (default: all
    entities are peers).
    """
    params = params or BaselineParams()
    counts = np.asarray(counts, dtype=np.float32)
    n_bins, n_entities = counts.shape
    if groups is None:
        groups = np.zeros(n_entities, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    n_groups = int(groups.max()) + 1 if n_entities else 0
    peers = np.bincount(groups, minlength=n_groups)[groups] if n_entities else np.zeros(0, np.int64)

    expected = np.empty((n_bins, n_entities), dtype=np.float32)
    variance = np.empty((n_bins, n_entities), dtype=np.float32)
    silent = np.empty((n_bins, n_entities), dtype=bool)
    history = np.arange(n_bins, dtype=np.int64)
    seasonal_used = np.zeros(n_bins, dtype=np.int64)
    insufficient = history < params.min_history_bins

    decay = 0.5 ** (1.0 / max(params.half_life_bins, 1.0))
    weighted_sum = np.zeros(n_entities, dtype=np.float64)
    weighted_sq = np.zeros(n_entities, dtype=np.float64)
    weight = 0.0
    slots = _seasonal_slots(start, span, n_bins)
    slot_history: dict[int, list[int]] = {}
    zero = np.zeros(n_entities, dtype=np.float32)

    for t in range(n_bins):
        if weight > 0:
            level = weighted_sum / weight
            spread = weighted_sq / weight
        else:
            level = np.zeros(n_entities, dtype=np.float64)
            spread = level
        prev = [counts[t - k] if t - k >= 0 else zero for k in (1, 2, 3)]
        long_run = level
        if slots is not None:
            past = slot_history.setdefault(slots[t], [])
            if len(past) >= params.seasonal_min_samples:
                chosen = past[-params.seasonal_samples :]
                seasonal_used[t] = len(chosen)
                long_run = np.maximum(level, np.median(counts[chosen], axis=0))
            past.append(t)
        silent[t] = long_run < params.silent_level
        mu = np.maximum(long_run, _median_of_three(*prev) if params.recent_bins else zero)
        dispersion = np.where(level > 0.5, spread / np.maximum(level, 1e-9), 1.0)
        dispersion = np.clip(dispersion, 1.0, params.dispersion_max)
        if insufficient[t] and n_entities:
            prior = np.bincount(groups, weights=level, minlength=n_groups) / np.maximum(
                np.bincount(groups, minlength=n_groups), 1
            )
            mu = np.maximum(mu, prior[groups])
            dispersion = dispersion * 2.0
        var = mu * dispersion + (params.relative_sd_floor * mu) ** 2
        expected[t] = mu
        variance[t] = var
        # Winsorized update: a spike enters the level only up to the bound it broke.
        clipped = np.minimum(counts[t], mu + params.clip_sigmas * np.sqrt(var) + 2.0)
        weighted_sum = weighted_sum * decay + clipped
        weighted_sq = weighted_sq * decay + (clipped - level) ** 2
        weight = weight * decay + 1.0
    return Baseline(expected, variance, history, seasonal_used, insufficient, silent, peers)
