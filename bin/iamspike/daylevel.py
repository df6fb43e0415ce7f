"""A machine stream's last hours against its own level today (P52, issue 12).

The relative spikes the other rules miss (docs/rules.md, P18, P28, P36, P52) are a few times an
automation's usual rate on a stream whose *days* differ: its volume steps from one day to the next
(a day at 1.6 times the week's mean, the next at 0.8) and follows a shape of the day (a daily
swing of 50-90 %), so every view that mixes days (the level, the same hour's median over 5 days,
P32's mean of the same hour over the week, P36's level of the 12 bins before, which reach back
into yesterday) carries the days' swing in its variance, and x3 of the usual rate sits inside it.
Measured around the stream's *own day*, the same hours are close to Poisson: the week's hours,
each against its day's total spread over the stream's shape of the day, vary 1.0-1.3 times
Poisson on the bench's weekly streams, where the hours' spread around the same hour's mean is
4-11 times.

The rule, for a machine principal's cell at bin ``t`` and each window of the last ``min_bins`` to
``max_bins`` bins (all of it within the cell's day, UTC; one bin is the hourly tests' job): the
stream's *shape of the day* ``s`` (its ``days`` whole days before today, each bin of the day's
share of the days' mean bin), its *level today* ``L`` (its failures in today's bins before the
window, at least ``min_before`` of them and ``min_failures`` failures, over their shape), the
window's prediction ``R = L x (the window's shape)``. The window's sum must be at least ``factor``
times ``R``, each of its bins at least ``bin_factor`` times its own prediction, and the cell (the
window's last bin) must stand out on its own (surprise at least ``cell_surprise``); the surprise
is the negative binomial tail at mean ``R`` and variance ``d R + d R^2 / (N + 1)``: ``d`` how much
the week's bins vary around their own day's level times the shape (at least 1, Poisson), the
second term the level's own error (``N`` today's failures before the window). Only streams that
fail every day of the week (at least ``min_daily`` a day) and in at least ``filled`` of its bins
are judged: a scanner on a schedule, whose runs sit in a few hours, has no level to speak of. And
only streams whose hours stay within ``max_dispersion`` times Poisson around their day's level: a
dispersed automation (hour factors of gamma shape 2-6) reaches twice its day's level for two hours
by itself (3 benign cells on the dispersed family's 3 organisations with no bound, 2 at 4, none at
2).

The level comes from today's bins only: a stream's volume that steps between days (the bench's
automations draw a day factor at 00:00 UTC) does not reach across midnight into the prediction.
That is also the rule's blind spot: a spike in the first ``min_before`` bins of a day is not
judged. A rolling level (the last 12 bins, across midnight) fired on 344 benign cells of the
tuning families' first 6 organisations (docs/rules.md, P52).

It reads the count matrix alone (the week before the cell's day and the day's bins), so raw
events, count rows and an alert run over restored state see the same bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iamspike.scoring import ScoreParams, log10_tail, to_score

PARAMS = ScoreParams()
BLOCK = 20_000  # candidate cells scored at a time (each reads its principal's week and day)


@dataclass(frozen=True)
class DayLevelParams:
    days: int = 7  # whole days before today: the shape of the day and the hours' noise
    min_daily: float = 12.0  # failures on each of those days at least
    filled: float = 0.75  # share of those days' bins holding a failure, at least
    min_before: int = 4  # bins of today before the window, at least
    min_failures: float = 8.0  # failures in them, at least
    min_bins: int = 2  # windows of this many bins at least (one bin: the hourly tests' job)
    max_bins: int = 3  # ... and at most
    factor: float = 2.0  # the window's sum at least this times its prediction
    bin_factor: float = 2.0  # each bin of the window at least this times its own prediction
    cell_surprise: float = 2.0  # the window's last bin alone at least this surprising (p 1 %)
    shape_floor: float = 0.05  # a bin's share of the mean bin, at least (a silent hour of the day)
    max_dispersion: float = 2.0  # the hours' variance around their day's level, at most this times Poisson


def day_level_scores(
    counts: np.ndarray,
    t_idx: np.ndarray,
    e_idx: np.ndarray,
    machine: np.ndarray,
    sensitivity: float = 1.0,
    per_day: int = 24,
    first_slot: int = 0,
    params: DayLevelParams | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell ``(t_idx, e_idx)`` of a ``(bins, principals)`` count matrix with ``per_day`` bins
    a day, the first of them bin ``first_slot`` of its day: the score of its best window (0 where
    the rule does not apply), the window's length in bins (0: none) and its prediction.
    ``machine`` per principal."""
    p = params or DayLevelParams()
    t_idx = np.asarray(t_idx, dtype=np.int64)
    e_idx = np.asarray(e_idx, dtype=np.int64)
    n = len(t_idx)
    best = np.zeros(n)
    length = np.zeros(n, dtype=np.int64)
    predicted = np.zeros(n)
    if per_day < 3 or p.min_before >= per_day:
        return best, length, predicted
    machine = np.asarray(machine, dtype=bool)
    slot = (t_idx + first_slot) % per_day
    midnight = t_idx - slot
    cand = np.flatnonzero(
        machine[e_idx]
        & (midnight - p.days * per_day >= 0)
        & (slot >= p.min_before)
        & (counts[t_idx, e_idx] >= 2)
    )
    for lo in range(0, len(cand), BLOCK):
        block = cand[lo : lo + BLOCK]
        score, bins, rate = _block(
            counts, t_idx[block], e_idx[block], midnight[block], sensitivity, per_day, p
        )
        best[block], length[block], predicted[block] = score, bins, rate
    return best, length, predicted


def _block(counts, t, e, midnight, sensitivity, per_day, p: DayLevelParams):
    n = len(t)
    best = np.zeros(n)
    length = np.zeros(n, dtype=np.int64)
    predicted = np.zeros(n)
    span = p.days * per_day
    week = counts[midnight[:, None] - span + np.arange(span)[None, :], e[:, None]].astype(np.float64)
    week = week.reshape(n, p.days, per_day)
    daily = week.sum(axis=2)  # (n, days)
    judged = (daily.min(axis=1) >= p.min_daily) & ((week > 0).mean(axis=(1, 2)) >= p.filled)
    mean_bin = np.maximum(daily.sum(axis=1) / span, 1e-9)
    shape = np.maximum(week.sum(axis=1) / p.days / mean_bin[:, None], p.shape_floor)  # (n, per_day)
    fitted = daily[:, :, None] / per_day * shape[:, None, :]
    d = np.maximum(((week - fitted) ** 2).sum(axis=(1, 2)) / np.maximum(fitted.sum(axis=(1, 2)), 1e-9), 1.0)
    judged &= d <= p.max_dispersion
    # today's bins (a day the matrix ends in reads its last bin for the rest: never used, only the
    # bins up to the cell are)
    day_bins = np.minimum(midnight[:, None] + np.arange(per_day)[None, :], counts.shape[0] - 1)
    today = counts[day_bins, e[:, None]].astype(np.float64)
    slots = np.arange(per_day)[None, :]
    cell_slot = t - midnight
    for k in range(p.min_bins, p.max_bins + 1):
        first = cell_slot - k + 1  # the window's first slot of the day
        before = slots < first[:, None]
        n_before = (today * before).sum(axis=1)
        level = n_before / np.maximum((shape * before).sum(axis=1), 1e-9)
        inside = before ^ (slots <= cell_slot[:, None])  # first .. cell_slot
        rates = level[:, None] * shape
        total = (today * inside).sum(axis=1)
        rate = np.maximum((rates * inside).sum(axis=1), 1.0)
        each = np.where(inside, today >= p.bin_factor * np.maximum(rates, 1.0), True).all(axis=1)
        use = (
            judged
            & (first >= p.min_before)
            & (n_before >= p.min_failures)
            & each
            & (total >= p.factor * rate)
        )
        if not use.any():
            continue
        r1 = np.maximum(rates[np.arange(n), cell_slot], 1.0)
        use &= surprise_of(today[np.arange(n), cell_slot], r1, d, n_before) >= p.cell_surprise
        surprise = np.where(use, surprise_of(total, rate, d, n_before), 0.0)
        score = to_score(np.minimum(surprise, PARAMS.max_surprise) * sensitivity, PARAMS)
        better = use & (score > best)
        best[better] = score[better]
        length[better] = k
        predicted[better] = rate[better]
    return best, length, predicted


def surprise_of(x, r, d, n_before) -> np.ndarray:
    """``-log10 P(X >= x)`` for a prediction ``r`` from a level measured on ``n_before`` failures,
    bins dispersed ``d`` times Poisson around their day's level."""
    var = d * r + d * r**2 / (n_before + 1.0)
    return -log10_tail(x, r, np.maximum(var, r))


def day_level_note(failures: float, bins: int, predicted: float, span: str) -> str:
    """The reason's note: the window against the stream's level today."""
    if bins <= 1:
        times = failures / predicted
        return f"{failures:.0f} is {times:.1f} times its level today (about {predicted:.1f} in this {span})"
    return (
        f"its last {bins} bins hold {failures:.0f} failures against about {predicted:.1f} at its level "
        f"today (its earlier bins of the day)"
    )
