"""A steady stream's last hours against its own days (P32, issue 12).

A machine principal (not a person) that fails at a steady rate and gets a few times that rate
for an hour or three on its usual APIs is what any analyst calls a spike (a stream at 5 an hour,
40 in two hours), yet the engine's other tests judge each hour alone, against an expectation that
is the highest of three short-memory views (level, same-hour median of 5 days, median of the last
3 bins) with the spread of that 5-day median added: x3-x6 of a steady 2-10/h stream scored 15-45
(docs/bench/sensitivity.md).

The rule, for the cell at bin ``t`` and each ``k`` of 1 to ``max_bins``: the window of the last
``k`` bins (``t - k + 1`` to ``t``, each at least ``bin_factor`` times its prediction) against
the sum ``R`` of its predictions, each the mean of the same bin of the day over the whole days
before the window's day (up to ``steady_days``, at least ``days``). Only steady streams are
judged: they failed on each of those days, at least ``min_daily`` times a day, and their daily
totals vary little beyond Poisson: ``cv2``, the relative variance of the totals beyond Poisson
raised to its one-sided 95 % bound (a week says little: an automation whose volume steps from day
to day, as the bench's gamma day factors make it, passes a 7-day test by chance), at most
``steady_cv`` squared. The window's sum must be at least ``factor`` times ``R``; its surprise is
``-log10 P(X >= sum)`` under a negative binomial of mean ``R`` and variance
``d R (1 + 1 / days) + (cv2 + shape_error^2) R^2``: ``d`` how much the stream's hours vary around
the mean of their bin of the day (at least 1, Poisson), the days' own error on the mean, their
day-to-day swing and the error of a mean shape of the day. The window's last bin (the cell)
must stand out on its own too (surprise at least ``cell_surprise``, p 1 %): the hour after a
spike, ordinary but for the spike before it, is no spike of its own. The best window's score is
kept; a stream's usual bursts are left to the burst memory.

P36: the same window is also judged against its predictions raised to the stream's *level*, the
``level_bins`` bins before the window against their own predictions (``(counts + 1) /
(predictions + 1)``, never below 1), with the level's own error in place of the days' swing:
variance ``d R (1 + 1 / days) + (shape_error^2 + d / (L + 1)) R^2``, ``L`` the level bins'
predictions. It needs no steadiness of the days (each failed, at least ``min_daily`` a day): a
stream whose days drift or cycle (the sensitivity sweep's seasonal streams, +-30 % a day, +-15 %
a week, 10 % a day of drift) is judged at its day's level, which the days' mean misses by as much
as a spike's excess. The window's last bin must stand out at that level too, and the higher of
the two surprises is the window's.

P37: the level may also fall, for a stream that keeps failing at a lower rate than its days (every
one of the level's bins failed; a paused stream's return is no spike), shrunk towards 1 by
``level_prior`` failures; the window must still hold ``factor`` times its days' prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iamspike.scoring import ScoreParams, log10_tail, to_score

PARAMS = ScoreParams()

HOURS_PER_DAY = 24
BLOCK = 20_000  # candidate cells scored at a time (each reads up to 14 days of its principal)
# CHI2_LOW[k]: the 5 % quantile of a chi-square of k degrees of freedom; a spread measured over n
# days is below the true one times CHI2_LOW[n - 1] / (n - 1) one time in 20.
CHI2_LOW = np.array(
    [0.0, 0.00393, 0.103, 0.352, 0.711, 1.145, 1.635, 2.167, 2.733, 3.325, 3.940, 4.575, 5.226, 5.892]
)


@dataclass(frozen=True)
class SteadyParams:
    days: int = 7  # whole days before the window's day at least
    max_bins: int = 3  # windows of 1 to this many bins
    steady_days: int = 14  # whole days (at most) whose totals say whether the stream is steady
    steady_cv: float = 0.3  # their relative spread beyond Poisson (an upper bound) at most this
    min_daily: float = 12.0  # failures a day at least (about one every two hours)
    factor: float = 2.0  # the window's sum at least this times its prediction
    bin_factor: float = 1.5  # each bin of the window at least this times its own prediction
    shape_error: float = 0.05  # relative error of the week's mean shape of the day, at least
    cell_surprise: float = 2.0  # the window's last bin alone at least this surprising (p 1 %)
    level_bins: int = 12  # bins before the window that set the stream's current level (P36)
    # P37: a level below 1 (a stream failing less than its days) is shrunk towards 1 by this many
    # failures, and lowers nothing when one of its bins is silent (a pause is no lower rate).
    level_prior: float = 30.0


def hour_dispersion(days: np.ndarray, have: np.ndarray) -> np.ndarray:
    """Per stream, how much its hours vary around its days' shape (``days``: ``(streams, days,
    bins a day)`` counts, ``have``: ``(streams, days)`` the days that count): the mean of
    ``(x - m)^2 / m`` over them, ``m`` the mean of the same bin over those days, at least 1
    (Poisson)."""
    w = have[:, :, None].astype(np.float64)
    n = w.sum(axis=1)  # (streams, 1): days that count
    m = np.maximum((days * w).sum(axis=1) / n, 0.5)[:, None, :]
    spread = (((days - m) ** 2 / m) * w).sum(axis=(1, 2)) / (n[:, 0] - 1.0) / days.shape[2]
    return np.maximum(spread, 1.0)


def steady_scores(
    counts: np.ndarray,
    t_idx: np.ndarray,
    e_idx: np.ndarray,
    machine: np.ndarray,
    sensitivity: float = 1.0,
    per_day: int = HOURS_PER_DAY,
    first_slot: int = 0,
    params: SteadyParams | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell ``(t_idx, e_idx)`` of a ``(bins, principals)`` count matrix with ``per_day`` bins
    a day, the first of them bin ``first_slot`` of its day: the score of its best window (0 where
    the rule does not apply), the window's length in bins (0: none) and its prediction.
    ``machine`` per principal."""
    p = params or SteadyParams()
    t_idx = np.asarray(t_idx, dtype=np.int64)
    e_idx = np.asarray(e_idx, dtype=np.int64)
    n = len(t_idx)
    best = np.zeros(n)
    length = np.zeros(n, dtype=np.int64)
    predicted = np.zeros(n)
    if per_day < 3:
        return best, length, predicted
    lo = (p.days + 1) * per_day + p.max_bins  # whole days before the window's day
    machine = np.asarray(machine, dtype=bool)
    cand = np.flatnonzero(machine[e_idx] & (t_idx >= lo) & (counts[t_idx, e_idx] > 0))
    if not len(cand):
        return best, length, predicted
    for lo_i in range(0, len(cand), BLOCK):
        block = cand[lo_i : lo_i + BLOCK]
        score, bins, rate = _block(counts, t_idx[block], e_idx[block], sensitivity, per_day, first_slot, p)
        best[block], length[block], predicted[block] = score, bins, rate
    return best, length, predicted


def _block(counts, t, e, sensitivity, per_day, first_slot, p: SteadyParams):
    """``steady_scores`` of candidate cells ``(t, e)``, a block at a time (bounded memory)."""
    n = len(t)
    best = np.zeros(n)
    length = np.zeros(n, dtype=np.int64)
    predicted = np.zeros(n)
    back = per_day * np.arange(1, p.steady_days + 1, dtype=np.int64)  # the same bin, days before

    def prediction(bins: np.ndarray, cols: np.ndarray, n_days: np.ndarray) -> np.ndarray:
        """Mean of the same bin of day on the ``n_days`` days before."""
        use = np.arange(p.steady_days)[None, :] < n_days[:, None]
        x = counts[np.maximum(bins[:, None] - back[None, :], 0), cols[:, None]]
        return (x * use).sum(axis=1) / n_days

    own = prediction(t, e, np.full(n, p.days))
    cand = np.flatnonzero(counts[t, e] >= p.bin_factor * np.maximum(own, 1e-9))
    t, e = t[cand], e[cand]
    for k in range(1, p.max_bins + 1):
        if not len(cand):
            break
        start = t - k + 1
        # Its whole days before the window's day (up to ``steady_days``): each failed, and how
        # much their totals vary beyond Poisson (an upper bound on it: few days say little).
        midnight = start - (start + first_slot) % per_day
        n_days = np.minimum(midnight // per_day, p.steady_days)
        span_bins = p.steady_days * per_day
        hours = counts[
            np.maximum(midnight[:, None] - span_bins + np.arange(span_bins)[None, :], 0), e[:, None]
        ]
        hours = hours.reshape(len(t), p.steady_days, per_day).astype(np.float64)
        have = np.arange(p.steady_days)[None, :] >= (p.steady_days - n_days)[:, None]
        daily = hours.sum(axis=2)
        mean = (daily * have).sum(axis=1) / n_days
        spread = (((daily - mean[:, None]) ** 2) * have).sum(axis=1) / (n_days - 1)
        excess = np.maximum(spread - mean, 0.0) / np.maximum(mean, 1e-9) ** 2
        cv2 = excess * (n_days - 1) / CHI2_LOW[np.minimum(n_days - 1, len(CHI2_LOW) - 1)]
        failing = np.where(have, daily, 1.0).min(axis=1) > 0
        steady = failing & (mean >= p.min_daily) & (cv2 <= p.steady_cv**2)
        total = np.zeros(len(t))
        rate = np.zeros(len(t))
        each = np.ones(len(t), dtype=bool)
        rates = []
        for j in range(k):
            u = start + j
            r = prediction(u, e, n_days)
            x = counts[u, e]
            each &= x >= p.bin_factor * np.maximum(r, 1e-9)
            total += x
            rate += r
            rates.append(r)
        # P36: the same window against its predictions raised to the stream's level of the last
        # ``level_bins`` bins before it (never lowered), where the days' swing is the level's own
        # error: judged whether or not the days vary (a smooth drift, a weekly cycle).
        level, level_spread = current_level(counts, start, e, n_days, per_day, p)
        each_l = each.copy()
        for j, r_j in enumerate(rates):
            each_l &= counts[start + j, e] >= p.bin_factor * r_j * level
        use = steady & each & (total >= p.factor * np.maximum(rate, 1.0))
        # A lowered level (P37) lowers the bar, never the window's own: at least ``factor`` times
        # the days' prediction still ("nothing new, only more" than the stream's usual hours).
        raised = rate * np.maximum(level, 1.0)
        use_l = failing & (mean >= p.min_daily) & each_l & (total >= p.factor * np.maximum(raised, 1.0))
        if not (use.any() or use_l.any()):
            continue
        d = hour_dispersion(hours, have)
        spread2 = cv2 + p.shape_error**2
        spread2_l = p.shape_error**2 + d * level_spread
        # The cell itself must stand out (x is the window's last bin, r its prediction): the hour
        # after a spike, ordinary but for the spike before it, is no spike of its own.
        use &= surprise_of(x, r, d, n_days, spread2) >= p.cell_surprise
        use_l &= surprise_of(x, r * level, d, n_days, spread2_l) >= p.cell_surprise
        by_days = np.where(use, surprise_of(total, rate, d, n_days, spread2), 0.0)
        by_level = np.where(use_l, surprise_of(total, rate * level, d, n_days, spread2_l), 0.0)
        surprise = np.maximum(by_days, by_level)
        score = to_score(np.minimum(surprise, PARAMS.max_surprise) * sensitivity, PARAMS)
        better = (use | use_l) & (score > best[cand])
        best[cand[better]] = score[better]
        length[cand[better]] = k
        predicted[cand[better]] = np.where(by_level > by_days, rate * level, rate)[better]
    return best, length, predicted


def current_level(counts, start, e, n_days, per_day, p: SteadyParams):
    """The stream's level before its window (P36): the ``level_bins`` bins before ``start``
    against their predictions (each the mean of the same bin of the day on the ``n_days`` days
    before it that the matrix holds), ``(counts + 1) / (predictions + 1)`` where the stream failed
    at least as often as predicted; below that (P37) ``(counts + level_prior) / (predictions +
    level_prior)``, shrunk towards 1, and 1 if one of the bins is silent (a paused stream is no
    slower one: its return is no spike); and that level's relative variance per unit of hour
    dispersion, ``1 / (predictions + 1)``."""
    seen = np.zeros(len(start))
    expected = np.zeros(len(start))
    silent = np.zeros(len(start), dtype=bool)
    back = per_day * np.arange(1, p.steady_days + 1, dtype=np.int64)
    for j in range(1, p.level_bins + 1):
        u = start - j
        before = u[:, None] - back[None, :]
        use = (np.arange(p.steady_days)[None, :] < n_days[:, None]) & (before >= 0)
        x = counts[np.maximum(before, 0), e[:, None]]
        seen += counts[np.maximum(u, 0), e]
        silent |= counts[np.maximum(u, 0), e] <= 0
        expected += (x * use).sum(axis=1) / np.maximum(use.sum(axis=1), 1)
    lowered = np.where(silent, 1.0, (seen + p.level_prior) / (expected + p.level_prior))
    level = np.where(seen >= expected, (seen + 1.0) / (expected + 1.0), lowered)
    return level, 1.0 / (expected + 1.0)


def surprise_of(x, r, d, n_days, spread2) -> np.ndarray:
    """``-log10 P(X >= x)`` for a prediction ``r`` made from ``n_days`` days, hours dispersed by
    ``d``, days and the day's shape off by a relative variance ``spread2``."""
    mu = np.maximum(r, 1.0)
    var = d * mu * (1.0 + 1.0 / n_days) + spread2 * mu**2
    return -log10_tail(x, mu, np.maximum(var, mu))


def steady_note(failures: float, bins: int, predicted: float, span: str) -> str:
    """The reason's note for a cell the rule flagged."""
    if bins <= 1:
        return f"{failures:.0f} against about {predicted:.3g} for this steady stream's {span} (its last week)"
    return (
        f"its last {bins} bins hold {failures:.0f} failures against about {predicted:.3g} for this"
        " steady stream (its last week)"
    )
