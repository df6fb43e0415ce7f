"""Scoring: observed failures against a baseline -> expected, upper bound, score, severity.

Counts are treated as counts: the surprise of ``x`` failures is ``-log10 P(X >= x)`` under a
negative binomial with the baseline's mean and variance (Poisson when the variance is not above
the mean). The tail is bounded from above by ``pmf(x) / (1 - r)`` with ``r`` the largest later ratio
``pmf(j+1)/pmf(j)`` (tight for x above the mean, and never below the true tail, so it never
overstates the surprise).

- **Onset from silence**: when the entity was silent (its long-run expectation below ``onset_level``,
  see ``Baseline.silent``) the surprise is held down to ``onset_cap``: a single-API stream that
  starts from nothing (a log-delivery service denied on a bucket, new misconfigured automation) is
  not enough on its own; the distinct APIs decide. Cells given an ``onset_mean`` (the engine gives
  ``min_failures`` for every principal except AWS service principals) are held down less the
  further the count is above it: the cap becomes the surprise of ``x`` under a Poisson with that
  mean when that is higher (``min_failures`` failures from silence are what the admin calls
  routine; about four times as many in one bin are not). Cells with ``hold=False`` (failed console
  sign-ins: never automation) are not held down at all.
- **Usual bursts** (cells given a ``burst_size`` above 0 and no new APIs): an entity that bursts
  now and then (a person who fails 10-17 times in seconds on the same two APIs once or twice a
  week) has two kinds of bins, ordinary ones and its bursts. ``P(X >= x)`` is at least
  ``burst_rate * P(B >= x)``, ``B`` its burst size under a negative binomial of mean ``burst_size``
  and standard deviation ``burst_cv`` (0.4) of it, so the surprise is at most
  ``-log10(burst_rate) - log10 P(B >= x)``: about 2 for a burst like its usual ones, above the
  threshold for three times their size; a burst on APIs the entity never failed on before is
  not one of its usual bursts and is judged as before.
- **Distinct APIs** in the bin add ``apis_weight * b * max(1, b / 2)`` with
  ``b = log2(distinct_apis / typical_apis)`` (APIs beyond the entity's usual: one or two add
  little, a sweep over dozens adds a lot), but never more than the uncapped surprise: they
  strengthens a spike, it does not make one.
- **Novelty** (APIs the entity fails on for the first time in its known history, see the engine)
  adds ``novelty_weight * log2(1 + max(new_apis - novelty_free, 0))``: one or two new APIs are a
  person's ordinary day (a student's first EC2 denials), those beyond the second count; capped the
  same way on its own (how many APIs and which ones are two pieces of evidence, neither worth more
  than the count's own surprise): stolen credentials are used on APIs their owner never called, so
  a modest excess that touches new APIs is a spike, while the same excess on the entity's usual
  APIs (a busier day) is not.
- **Current rate** (``rate_score``): a count at least ``rate_factor`` times its long-run expectation
  is also judged against the entity's current rate carried to this hour (``Baseline.shaped_rate``:
  how its last bins ran against their usual hour of their kind of day, times this hour's usual
  count) under a negative binomial of mean ``max(r, 1)`` and variance ``d r + (0.1r)^2``, ``d`` the
  entity's own local dispersion (how much its bins vary around that rate, at least
  ``rate_dispersion_min`` = 1), where the entity is not silent and its stream is running (its
  plain current rate, a decayed mean of its last bins, see ``baseline.current_rate``, at least
  ``rate_running * expected``: a batch hour rising from zero is not a running stream, though its
  slot predicts it); the higher score is kept. The long-run expectation and its dispersion carry the
  day-to-day swings of automation; on a day that runs low (6, 8, 4 an hour), 52 is x7 the current
  rate. With a fixed ``d = 2`` an automation whose hours vary by 40-70 % around its rate alerted on
  its ordinary hours (x2.5 of its rate is then a few in a hundred hours, not one in a million).
- ``score = 100 * (1 - 2 ** (-total * sensitivity / threshold_surprise))``: 50 at the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

LN10 = math.log(10.0)
SEVERITIES = ((95.0, "critical"), (85.0, "high"), (70.0, "medium"), (0.0, "low"))


@dataclass(frozen=True)
class ScoreParams:
    threshold_surprise: float = 6.0
    onset_level: float = 1.0
    onset_cap: float = 4.0
    apis_weight: float = 1.5
    novelty_weight: float = 1.0
    novelty_free: float = 2.0
    rate_factor: float = 2.0
    rate_running: float = 0.3
    rate_dispersion_min: float = 1.0
    max_surprise: float = 60.0
    burst_cv: float = 0.4
    expected_floor: float = 0.05


@dataclass(frozen=True)
class Scores:
    observed: np.ndarray
    expected: np.ndarray
    upper: np.ndarray
    surprise: np.ndarray  # -log10 tail probability (after the onset cap)
    bonus: np.ndarray  # distinct-APIs (and novelty) bonus added
    score: np.ndarray  # 0..100
    onset: np.ndarray  # bool: expected below onset_level (failures from silence)
    held: np.ndarray  # bool: onsets whose surprise the cap actually lowered
    lifted: np.ndarray  # bool: onsets not held down to onset_cap (hold=False, or the count lifted it)
    # the surprise of the count as one of the entity's usual bursts (inf where it is not one)
    habit: np.ndarray | None = None


def lgamma(z: np.ndarray) -> np.ndarray:
    """log Gamma(z) for z > 0, vectorized (Stirling series after shifting z up by 6)."""
    z = np.asarray(z, dtype=np.float64)
    shift = np.zeros_like(z)
    w = z.copy()
    for _ in range(6):
        small = w < 7.0
        shift = shift + np.where(small, np.log(np.where(small, w, 1.0)), 0.0)
        w = np.where(small, w + 1.0, w)
    inv = 1.0 / w
    inv2 = inv * inv
    series = inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 * (1.0 / 1260 - inv2 / 1680)))
    return (w - 0.5) * np.log(w) - w + 0.5 * math.log(2 * math.pi) + series - shift


# Cells per block of ``log10_tail``: its twenty-odd float64 temporaries stay a few MB each
# instead of the size of every scored cell (2.5 M cells: ~20 MB per temporary, ~190 MB at once).
TAIL_BLOCK = 1 << 16


def log10_tail(x: np.ndarray, mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """log10 P(X >= x) (upper bound) for NB(mean mu, variance var); 0 where x <= mu."""
    x, mu, var = np.broadcast_arrays(
        np.asarray(x, dtype=np.float64), np.asarray(mu, dtype=np.float64), np.asarray(var, dtype=np.float64)
    )
    if x.ndim != 1 or len(x) <= TAIL_BLOCK:
        return _log10_tail(x, mu, var)
    out = np.empty(x.shape)
    for lo in range(0, len(x), TAIL_BLOCK):
        cut = slice(lo, lo + TAIL_BLOCK)
        out[cut] = _log10_tail(x[cut], mu[cut], var[cut])
    return out


def _log10_tail(x: np.ndarray, mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    mu = np.maximum(mu, 1e-12)
    excess = var - mu
    nb = excess > 1e-6 * mu
    k = np.where(nb, mu * mu / np.where(nb, excess, 1.0), 1e12)
    nb = nb & (k < 1e7)
    k_nb = np.where(nb, k, 1.0)
    log_nb = (
        lgamma(x + k_nb)
        - lgamma(k_nb)
        - lgamma(x + 1.0)
        + k_nb * np.log(k_nb / (k_nb + mu))
        + x * np.log(mu / (k_nb + mu))
    )
    log_pois = x * np.log(mu) - mu - lgamma(x + 1.0)
    log_pmf = np.where(nb, log_nb, log_pois)
    # pmf(j+1)/pmf(j) falls with j when k >= 1 (so its value at x bounds the rest); when k < 1 it
    # rises towards mu / (k + mu), which then bounds every later ratio.
    ratio_x = (x + k_nb) / (x + 1.0) * mu / (k_nb + mu)
    ratio = np.where(nb, np.where(k_nb < 1.0, mu / (k_nb + mu), ratio_x), mu / (x + 1.0))
    ratio = np.clip(ratio, 0.0, 1.0 - 1e-12)
    out = (log_pmf - np.log1p(-ratio)) / LN10
    return np.where(x > mu, np.minimum(out, 0.0), 0.0)


def upper_bound(mu: np.ndarray, var: np.ndarray, surprise: float) -> np.ndarray:
    """Smallest whole count whose surprise reaches ``surprise`` (no bonus, no onset cap)."""
    mu = np.maximum(np.asarray(mu, dtype=np.float64), 1e-12)
    var = np.asarray(var, dtype=np.float64)
    lo = np.floor(mu)
    hi = np.ceil(mu + 8.0 * np.sqrt(var) + 8.0)
    for _ in range(40):
        short = -log10_tail(hi, mu, var) < surprise
        if not short.any():
            break
        hi = np.where(short, hi * 2.0 + 1.0, hi)
    for _ in range(64):
        if not (hi - lo > 1).any():
            break
        mid = np.floor((lo + hi) / 2.0)
        reached = -log10_tail(mid, mu, var) >= surprise
        hi = np.where(reached, mid, hi)
        lo = np.where(reached, lo, mid)
    return hi


def to_score(surprise: np.ndarray, params: ScoreParams) -> np.ndarray:
    """Surprise (-log10 of a tail, sensitivity applied) -> score 0-100; 50 at the threshold."""
    return 100.0 * (1.0 - np.exp2(-surprise / params.threshold_surprise))


def score_counts(
    observed: np.ndarray,
    expected: np.ndarray,
    variance: np.ndarray,
    apis: np.ndarray,
    sensitivity: float = 1.0,
    params: ScoreParams | None = None,
    with_upper: bool = True,
    silent: np.ndarray | None = None,
    typical_apis: np.ndarray | None = None,
    onset_mean: np.ndarray | None = None,
    hold: np.ndarray | None = None,
    new_apis: np.ndarray | None = None,
    burst_size: np.ndarray | None = None,
    burst_rate: np.ndarray | None = None,
) -> Scores:
    """Score cells (1-D arrays of equal length): counts, baseline mean/variance, distinct APIs.

    ``silent`` (bool) marks onsets; by default a cell is an onset when expected < onset_level.
    ``typical_apis``: the entity's usual distinct APIs; only those above it count (default 1).
    ``onset_mean``: per cell, the mean an onset's count is measured against to lift the cap (0 or
    absent: the fixed ``onset_cap``). ``hold`` (bool): False where onsets are not held down at all.
    ``new_apis``: per cell, APIs the entity fails on for the first time (default none).
    ``burst_size``, ``burst_rate``: per cell, the entity's usual bursts (``Baseline``; 0: none).

    Every cell is scored on its own: many cells go in blocks of ``TAIL_BLOCK`` (the temporaries
    stay the size of a block, only the results are the size of every cell).
    """
    cells = {
        "observed": observed,
        "expected": expected,
        "variance": variance,
        "apis": apis,
        "silent": silent,
        "typical_apis": typical_apis,
        "onset_mean": onset_mean,
        "hold": hold,
        "new_apis": new_apis,
        "burst_size": burst_size,
        "burst_rate": burst_rate,
    }
    cells = {name: None if value is None else np.asarray(value) for name, value in cells.items()}
    n = len(cells["observed"]) if cells["observed"].ndim == 1 else 0
    if n <= TAIL_BLOCK:
        return _score_block(sensitivity=sensitivity, params=params, with_upper=with_upper, **cells)
    out = None
    for lo in range(0, n, TAIL_BLOCK):
        cut = slice(lo, lo + TAIL_BLOCK)
        part = {
            name: value if value is None or value.ndim == 0 else value[cut] for name, value in cells.items()
        }
        block = _score_block(sensitivity=sensitivity, params=params, with_upper=with_upper, **part)
        if out is None:
            out = {f.name: np.empty(n, dtype=getattr(block, f.name).dtype) for f in fields(Scores)}
        for name, column in out.items():
            column[cut] = getattr(block, name)
    return Scores(**out)


def _score_block(
    observed: np.ndarray,
    expected: np.ndarray,
    variance: np.ndarray,
    apis: np.ndarray,
    sensitivity: float,
    params: ScoreParams | None,
    with_upper: bool,
    silent: np.ndarray | None,
    typical_apis: np.ndarray | None,
    onset_mean: np.ndarray | None,
    hold: np.ndarray | None,
    new_apis: np.ndarray | None,
    burst_size: np.ndarray | None,
    burst_rate: np.ndarray | None,
) -> Scores:
    params = params or ScoreParams()
    observed = np.asarray(observed, dtype=np.float64)
    expected = np.maximum(np.asarray(expected, dtype=np.float64), params.expected_floor)
    variance = np.maximum(np.asarray(variance, dtype=np.float64), expected)
    raw = np.minimum(-log10_tail(observed, expected, variance), params.max_surprise)
    habit = np.full(observed.shape, np.inf)
    if burst_size is not None:
        size = np.asarray(burst_size, dtype=np.float64)
        usual_burst = size > 0
        if new_apis is not None:
            usual_burst &= np.asarray(new_apis, dtype=np.float64) <= 0
        if usual_burst.any():
            b = np.maximum(size[usual_burst], 1.0)
            share = np.maximum(np.asarray(burst_rate, dtype=np.float64)[usual_burst], 1e-12)
            tail = log10_tail(observed[usual_burst], b, b + (params.burst_cv * b) ** 2)
            habit[usual_burst] = -np.log10(share) - tail
            raw = np.minimum(raw, habit)
    onset = expected < params.onset_level if silent is None else np.asarray(silent, dtype=bool)
    cap = np.full(observed.shape, params.onset_cap)
    if onset_mean is not None:
        mean = np.asarray(onset_mean, dtype=np.float64)
        given = (mean > 0) & onset  # only onsets are held down: the extra tail only for them
        if given.any():
            beyond = -log10_tail(observed[given], mean[given], mean[given])
            cap[given] = np.maximum(cap[given], beyond)
    held = onset if hold is None else onset & np.asarray(hold, dtype=bool)
    surprise = np.where(held, np.minimum(raw, cap), raw)
    usual = 1.0 if typical_apis is None else np.maximum(np.asarray(typical_apis, dtype=np.float64), 1.0)
    bits = np.maximum(np.log2(np.maximum(np.asarray(apis, dtype=np.float64), 1.0) / usual), 0.0)
    bonus = params.apis_weight * bits * np.maximum(1.0, bits / 2.0)
    bonus = np.minimum(bonus, raw)
    if new_apis is not None:
        beyond_free = np.maximum(np.asarray(new_apis, dtype=np.float64) - params.novelty_free, 0.0)
        novelty = params.novelty_weight * np.log2(1.0 + beyond_free)
        bonus = bonus + np.minimum(novelty, raw)
    total = (surprise + bonus) * sensitivity
    score = to_score(total, params)
    if with_upper:
        upper = upper_bound(expected, variance, params.threshold_surprise / sensitivity)
    else:
        upper = np.full(observed.shape, np.nan)
    lifted = onset & ~(held & (cap <= params.onset_cap))
    return Scores(
        observed, expected, upper, surprise, bonus, score, onset, held & (raw > surprise), lifted, habit
    )


def rate_score(
    observed: np.ndarray,
    expected: np.ndarray,
    rate: np.ndarray,
    silent: np.ndarray,
    sensitivity: float = 1.0,
    params: ScoreParams | None = None,
    dispersion: np.ndarray | None = None,
    shaped: np.ndarray | None = None,
) -> np.ndarray:
    """Scores of counts against the entity's current ``rate`` (0 where the rule does not apply).

    ``dispersion``: per cell, the entity's local dispersion (``Baseline.local_dispersion``); the
    variance around the rate is ``max(dispersion, rate_dispersion_min) r + (0.1 r)^2``.
    ``shaped``: per cell, the rate the count is judged against (``Baseline.shaped_rate``: the
    current rate carried to this hour of this kind of day); ``rate`` then only says whether the
    stream is running. Without it the count is judged against ``rate``.
    """
    params = params or ScoreParams()
    observed = np.asarray(observed, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    rate = np.asarray(rate, dtype=np.float64)
    use = ~np.asarray(silent, dtype=bool)
    use &= observed >= params.rate_factor * np.maximum(expected, 1.0)
    use &= rate >= params.rate_running * expected
    out = np.zeros(observed.shape)
    if use.any():
        judged = rate if shaped is None else np.asarray(shaped, dtype=np.float64)
        r = np.maximum(judged[use], 1.0)
        d = np.full(r.shape, params.rate_dispersion_min)
        if dispersion is not None:
            d = np.maximum(np.asarray(dispersion, dtype=np.float64)[use], d)
        surprise = np.minimum(-log10_tail(observed[use], r, d * r + (0.1 * r) ** 2), params.max_surprise)
        out[use] = to_score(surprise * sensitivity, params)
    return out


def severity(score: float, flagged: bool = True) -> str:
    """low | medium | high | critical for a flagged score; "none" otherwise."""
    if not flagged:
        return "none"
    for floor, name in SEVERITIES:
        if score >= floor:
            return name
    return "low"
