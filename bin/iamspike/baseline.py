"""Per-entity baselines of failure counts, built by ONE function from plain arrays.

For every bin ``t`` and entity the baseline uses only bins before ``t`` (causal), so a spike is
judged against what came before it and never inflates its own baseline:

- ``level``: an exponentially decayed mean (half-life ``half_life_bins``) of past counts, each
  WINSORIZED at ``expected + clip_sigmas * sd + 2`` before it enters, so past spikes barely move it;
- ``seasonal``: the median of the same hour-of-day (weekdays and weekends apart when there are
  enough of each) over the last ``seasonal_samples`` days, once ``seasonal_min_samples`` exist (a
  daily batch that fails at 02:00 is expected at 02:00); on the first days of a window the
  following days stand in (see ``_seasonal_samples``);
- ``recent``: the median of the last ``recent_bins`` bins (a new steady stream is absorbed after a
  few bins instead of alerting for days). For a silent entity (below) a stream counts as absorbed
  only once it has lasted ``silent_recent_bins`` bins: until then ``recent`` stays at the silent
  level, so a low-and-slow stream from a quiet principal (4-10 an hour for hours) is not taken as
  the new normal after its second bin.

For principals (``day_shape``) the level is that of the bin's kind of day (weekday or weekend):
an automation that runs at 10 % on weekends is judged at the weekend against its weekend level,
and the dispersions' excess over Poisson shrinks with that level (its day-to-day swings are a
share of its rate). ``shaped_rate``: the entity's current rate carried to this bin's hour, the
usual count of this (kind of day, hour) slot times how its last bins ran against their own slots;
a principal's local dispersion is measured around it, so a daily swing or a weekend step is not
taken for noise, as it was around the plain current rate (which lags a swing by hours).

``expected = max(level, seasonal, recent)``. The bins the winsorization cuts (above
``expected + clip_sigmas * sd + 2``) are the entity's BURSTS; they stay out of the level, and a
burst memory keeps them apart: ``burst_size``, the decayed mean size of its past bursts, and
``burst_rate``, the decayed share of its bins that were bursts (half-life ``burst_memory`` times
``half_life_bins``: a person who bursts once or twice a week must still be remembered after a
quiet week), both 0 until the decayed number of bursts reaches ``burst_min`` (one burst is no
habit). The scorer judges a burst like the usual ones as one of them (see ``scoring``).
``silent`` marks bins where the long-run expectation (level and seasonal, not the recent bins) is
below ``silent_level``: the entity had no failures to speak of, so failures now are an onset (the
scoring caps the surprise of onsets).

The variance is the smaller of two estimates. The long-run one: the dispersion (variance / mean, 1
= Poisson) is the decayed mean of ``(x - center)^2 / center`` over past bins, ``center`` the median
of level, seasonal and recent (winsorized counts, so the residual of a spike is bounded), bounded
to ``[1, dispersion_max]``; each bin's squared residual enters clipped at ``residual_max`` (9:
three standard deviations) times the dispersion estimated so far, so a day's jump, a batch hour or
an earlier spike moves the dispersion by one bin's worth, not for a week (a quiet account whose
daily batch kept the dispersion at its cap hid a spread of 19 failures under an upper of 39), while
a stream that is dispersed hour to hour keeps its own spread (clipped at a fixed 9, an automation
whose hours vary by 40-70 % was estimated at about half its dispersion, and its ordinary hours
alerted). The local one: the same decayed mean of ``(x
- rate)^2 / rate`` (clipped the same way) with ``rate`` a short exponential average (half-life
``local_half_life_bins``) of the entity's own last bins: how well the entity's CURRENT rate
predicts its next bin. Automation whose volume changes from day to day (a poller at 6/h on a quiet
day, 25/h on a busy one) has a large long-run dispersion (the day-to-day swings) but a small local
one, and a spike of four times its rate stands out against the latter; entities whose bins jump for
reasons the average does not follow (office hours, batches) have a large local dispersion too, and
keep the long-run variance. Where the seasonal median stands clearly above the level (a daily
batch, whose size varies from day to day) the variance is at least the robust spread (MAD) of the
seasonal samples and at least ``(batch_cv * median)^2`` (a batch's size varies by about 40 % from
day to day, which five samples' MAD often misses), elsewhere that MAD adds at most one failure's
resolution, and a relative floor keeps high-rate streams from looking too regular. Below
``min_history_bins`` bins of history the baseline is "insufficient history": it falls back to a
prior pooled from the entity's peers (mean level of its group, e.g. the principals of its account)
and doubles the dispersion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SECONDS_PER_DAY = 86400
# The variance a MAD of ONE failure stands for: the finest spread a median of integer counts sees.
MAD_RESOLUTION = 1.4826**2


@dataclass(frozen=True)
class BaselineParams:
    """The tuned numbers of the baselines (this module's docstring; docs/engine.md section 4, whose
    table says why each is what it is: the row named in each comment). Units: *bins* of ``span``
    (hours at the default), *failures* a bin, *sd* the entity's standard deviations, a dispersion
    is a variance over its mean (1 = Poisson)."""

    # level: the half-life of its decayed mean, in bins; the results pass sets it from the
    # ``half_life`` option (7 d: ``rare.half_life_bins``), so the default here is 7 d of hours
    half_life_bins: float = 168.0
    # insufficient history: below this many bins before a bin, the peers' prior; set from the
    # ``min_history`` option (1 d)
    min_history_bins: int = 24
    # seasonal: the median of the same hour on the last this many days of the same kind ...
    seasonal_samples: int = 5
    # ... once this many exist (fewer: the backfill's following days stand in)
    seasonal_min_samples: int = 3
    # recent: the median of the last this many bins (a new steady stream absorbed after a few)
    recent_bins: int = 3
    # level: each count winsorized at expected + this many sd + 2 before it enters (past spikes
    # barely move it); the bins it cuts are the usual bursts
    clip_sigmas: float = 4.0
    # dispersion: its upper bound (lower bound 1)
    dispersion_max: float = 20.0
    # dispersion: the variance is at least (this x expected)^2 (high-rate streams are no steadier)
    relative_sd_floor: float = 0.1
    # silent: level and seasonal below this many failures a bin (failures then are an onset)
    silent_level: float = 1.0
    # recent, on a silent entity: the stream is absorbed only once it has lasted this many bins
    # (a low-and-slow stream is not the new normal after its second bin)
    silent_recent_bins: int = 4
    # local dispersion: the half-life of the current rate it is measured around, in bins
    local_half_life_bins: float = 4.0
    # dispersion and local dispersion: each bin's term clipped at this many times the dispersion
    # so far (three of the entity's own sd: a batch hour moves it by one bin's worth)
    residual_max: float = 9.0
    # dispersion at a batch slot: the variance at least (this x seasonal median)^2 (a batch's size
    # varies about 40 % from day to day)
    batch_cv: float = 0.4
    # usual bursts: 0 until the decayed number of bursts reaches this (about two: one is no habit)
    burst_min: float = 1.5
    # usual bursts: their half-life is this many times ``half_life_bins`` (28 d by default: a
    # person who bursts once or twice a week is remembered after a quiet week)
    burst_memory: float = 4.0
    # day levels (principals): a kind of day's own level once it has this many decayed bins
    day_kind_min_bins: float = 36.0
    # shaped rate (principals): the slot is shrunk towards the level by this many bins' weight,
    # and the same weight is added to both sums of its ratio, (sum w x + 1) / (sum w slot + 1)
    shape_prior: float = 1.0


@dataclass(frozen=True)
class Baseline:
    """Expected count and variance for every (bin, entity), time-major ``(bins, entities)``."""

    expected: np.ndarray
    variance: np.ndarray
    history_bins: np.ndarray  # (bins,) bins of history before each bin
    seasonal_samples: np.ndarray  # (bins,) same-slot days the seasonal median used (0 = none)
    backfilled: np.ndarray  # (bins,) bool: the seasonal median used later days (window start)
    insufficient: np.ndarray  # (bins,) bool: below min_history_bins, prior pooled from peers
    silent: np.ndarray  # (bins, entities) bool: level and seasonal below silent_level
    peers: np.ndarray  # (entities,) size of the entity's peer group
    typical_apis: np.ndarray | None  # (bins, entities) usual distinct APIs of a failing bin
    # (bins, entities) the local dispersion: how much the entity's bins vary around its current rate
    local_dispersion: np.ndarray | None = None
    # (bins, entities) the mean size of the entity's past bursts and the share of its bins that
    # were bursts (0 until it has burst about twice: no habit)
    burst_size: np.ndarray | None = None
    burst_rate: np.ndarray | None = None
    # (bins, entities) the entity's current rate carried to this bin's hour and kind of day
    shaped_rate: np.ndarray | None = None
    # the long-run expectation alone, max(level, seasonal), no recent view: kept only where rule
    # P22 reads it (``runhistory.LongRun``, given to the fit as ``runs``), else None
    long_run: object | None = None


def _day_kinds(start: int, span: int, n_bins: int) -> np.ndarray:
    """Per bin: 1 on a weekend day (UTC), 0 on a weekday; -1 when span is not sub-daily."""
    if span >= SECONDS_PER_DAY or SECONDS_PER_DAY % span:
        return np.full(n_bins, -1, dtype=np.int64)
    days = (start + np.arange(n_bins, dtype=np.int64) * span) // SECONDS_PER_DAY
    return ((days + 3) % 7 >= 5).astype(np.int64)


def _seasonal_samples(
    start: int, span: int, n_bins: int, params: BaselineParams
) -> list[tuple[list[int], bool]]:
    """For each bin, the bins whose median is its seasonal expectation, and whether any are later.

    The same hour-of-day on the last days of the same kind (weekday or weekend); if there are too
    few, the same hour on any of the last days; if still too few (the first days of the window),
    the same hour on the FOLLOWING days too ("backfilled": a window that starts with a daily batch
    must not alert on its first days). Empty when span is not sub-daily.
    """
    if span >= SECONDS_PER_DAY or SECONDS_PER_DAY % span:
        return [([], False)] * n_bins
    per_day = SECONDS_PER_DAY // span
    want, need = params.seasonal_samples, params.seasonal_min_samples
    weekend = [((start + t * span) // SECONDS_PER_DAY + 3) % 7 >= 5 for t in range(n_bins)]
    out: list[tuple[list[int], bool]] = []
    for t in range(n_bins):
        same_kind: list[int] = []
        u = t - per_day
        while u >= 0 and len(same_kind) < want and u > t - 4 * want * per_day:
            if weekend[u] == weekend[t]:
                same_kind.append(u)
            u -= per_day
        if len(same_kind) >= need:
            out.append((same_kind, False))
            continue
        prev = list(range(t - per_day, -1, -per_day))[:want]
        if len(prev) >= need:
            out.append((prev, False))
            continue
        later = list(range(t + per_day, n_bins, per_day))[: want - len(prev)]
        out.append((prev + later, True) if len(prev) + len(later) >= need else ([], False))
    return out


def _median_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Element-wise median of a few equal-length arrays (odd-even transposition sort, no partition)."""
    rows = list(rows)
    n = len(rows)
    for round_ in range(n):
        for i in range(round_ % 2, n - 1, 2):
            low = np.minimum(rows[i], rows[i + 1])
            rows[i + 1] = np.maximum(rows[i], rows[i + 1])
            rows[i] = low
    if n % 2:
        return rows[n // 2]
    return (rows[n // 2 - 1] + rows[n // 2]) * 0.5


def _median_of_three(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def fit_baselines(
    counts: np.ndarray,
    start: int,
    span: int,
    groups: np.ndarray | None = None,
    params: BaselineParams | None = None,
    distinct_apis: np.ndarray | None = None,
    day_shape: bool = False,
    runs=None,
) -> Baseline:
    """Baselines for a ``(bins, entities)`` count matrix whose first bin starts at ``start``.

    ``groups`` (entities,) ints name each entity's peer group for the pooled prior (default: all
    entities are peers). ``distinct_apis`` (same shape, per bin) gives
    ``typical_apis``: the decayed mean distinct APIs of the entity's earlier failing bins (1 when
    none), each entering at most at twice the typical value plus 2. ``day_shape`` (principals):
    the level of a bin is the decayed mean of the bins of its own kind of day (weekday or weekend)
    once each kind has ``day_kind_min_bins`` (decayed) bins, the dispersions' excess over Poisson
    is scaled down with it where that level is below the all-days one (see ``_day_level``), and
    the local dispersion is measured around the shaped rate (``shaped_rate``) instead of the plain
    current rate. ``shaped_rate`` is filled either way. ``runs`` (``runhistory.LongRun``) is given
    each bin's counts, long-run expectation and silence in turn, keeps what rule P22 reads of them
    and becomes ``long_run``.
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
    backfilled = np.zeros(n_bins, dtype=bool)
    typical = None if distinct_apis is None else np.empty((n_bins, n_entities), dtype=np.float32)
    apis_sum = np.zeros(n_entities, dtype=np.float64)
    apis_weight = np.zeros(n_entities, dtype=np.float64)
    insufficient = history < params.min_history_bins

    decay = 0.5 ** (1.0 / max(params.half_life_bins, 1.0))
    weighted_sum = np.zeros(n_entities, dtype=np.float64)
    weighted_sq = np.zeros(n_entities, dtype=np.float64)
    weight = 0.0
    # The local estimate: the long-memory mean of how far each bin fell from the rate before it,
    # a short-memory average of the winsorized counts (``day_shape``: the shaped rate, their ratio
    # to their slots carried to this bin's slot).
    local_decay = 0.5 ** (1.0 / max(params.local_half_life_bins, 1e-9))
    local_sum = np.zeros(n_entities, dtype=np.float64)
    local_weight = 0.0
    local_sq = np.zeros(n_entities, dtype=np.float64)
    seasonal = _seasonal_samples(start, span, n_bins, params)
    zero = np.zeros(n_entities, dtype=np.float32)
    local_dispersion = np.ones((n_bins, n_entities), dtype=np.float32)
    local = np.ones(n_entities, dtype=np.float64)
    # The burst memory: decayed number and total size of past bursts, over decayed bins.
    burst_decay = 0.5 ** (1.0 / max(params.half_life_bins * params.burst_memory, 1.0))
    burst_weight = 0.0
    burst_sum = np.zeros(n_entities, dtype=np.float64)
    burst_n = np.zeros(n_entities, dtype=np.float64)
    burst_size = np.zeros((n_bins, n_entities), dtype=np.float32)
    burst_rate = np.zeros((n_bins, n_entities), dtype=np.float32)
    # The levels of each kind of day (weekday, weekend) and the shape of the day: a decayed mean
    # per (kind of day, hour) slot, each slot decayed when it is next used (only ratios matter).
    kinds = _day_kinds(start, span, n_bins)
    kind_sum = np.zeros((2, n_entities), dtype=np.float64)
    kind_weight = np.zeros(2, dtype=np.float64)
    per_day = SECONDS_PER_DAY // span if span < SECONDS_PER_DAY and not SECONDS_PER_DAY % span else 1
    slot_of = ((start + np.arange(n_bins, dtype=np.int64) * span) % SECONDS_PER_DAY) // span
    slot_of = np.where(kinds >= 0, slot_of + per_day * kinds, 0)
    slot_sum = np.zeros((2 * per_day, n_entities), dtype=np.float64)
    slot_weight = np.zeros(2 * per_day, dtype=np.float64)
    slot_last = np.zeros(2 * per_day, dtype=np.int64)
    shaped_num = np.zeros(n_entities, dtype=np.float64)
    shaped_den = np.zeros(n_entities, dtype=np.float64)
    shaped_rate = np.zeros((n_bins, n_entities), dtype=np.float32)
    shape_prior = params.shape_prior

    for t in range(n_bins):
        if weight > 0:
            level = weighted_sum / weight
            dispersion = weighted_sq / weight
        else:
            level = np.zeros(n_entities, dtype=np.float64)
            dispersion = np.ones(n_entities, dtype=np.float64)
        # The shaped rate: the slot's usual count times how the entity's last bins ran against
        # their own slots (a day running at half its usual rate predicts half the slot).
        slot = slot_of[t]
        age = decay ** (t - slot_last[slot])
        usual = (slot_sum[slot] * age + shape_prior * level) / (slot_weight[slot] * age + shape_prior)
        shaped_rate[t] = usual * (shaped_num + shape_prior) / (shaped_den + shape_prior)
        kind = int(kinds[t])
        excess_scale = None
        if day_shape and kind >= 0 and min(kind_weight[0], kind_weight[1]) >= params.day_kind_min_bins:
            level, excess_scale = _day_level(level, kind_sum, kind_weight, kind)
        prev = [counts[t - k] if t - k >= 0 else zero for k in (1, 2, 3)]
        lasted = prev[0]  # the smallest of the last silent_recent_bins bins
        for k in range(2, params.silent_recent_bins + 1):
            lasted = np.minimum(lasted, counts[t - k] if t - k >= 0 else zero)
        long_run = level
        seasonal_var = None
        median = level
        chosen, later = seasonal[t]
        if chosen:
            seasonal_used[t] = len(chosen)
            backfilled[t] = later
            samples = [counts[u] for u in chosen]
            median = _median_rows(samples)
            long_run = np.maximum(level, median)
            seasonal_var = (1.4826 * _median_rows([np.abs(x - median) for x in samples])) ** 2
        silent[t] = long_run < params.silent_level
        if runs is not None:
            runs.add(t, counts[t], long_run, silent[t])
        recent = _median_of_three(*prev) if params.recent_bins else zero
        if params.silent_recent_bins:
            absorbed = np.minimum(recent, np.maximum(lasted, params.silent_level))
            recent = np.where(silent[t], absorbed, recent)
        mu = np.maximum(long_run, recent)
        center = _median_of_three(level, median, recent)
        dispersion = np.clip(dispersion, 1.0, params.dispersion_max)
        own = dispersion
        if excess_scale is not None:
            dispersion = 1.0 + (dispersion - 1.0) * excess_scale
        if insufficient[t] and n_entities:
            prior = np.bincount(groups, weights=level, minlength=n_groups) / np.maximum(
                np.bincount(groups, minlength=n_groups), 1
            )
            mu = np.maximum(mu, prior[groups])
            dispersion = dispersion * 2.0
        floor = (params.relative_sd_floor * mu) ** 2
        var = mu * dispersion + floor
        if weight > 0 and params.local_half_life_bins > 0:
            local = np.clip(local_sq / weight, 1.0, params.dispersion_max)
            scaled = local if excess_scale is None else 1.0 + (local - 1.0) * excess_scale
            local_dispersion[t] = scaled
            var = np.minimum(var, mu * scaled * (2.0 if insufficient[t] else 1.0) + floor)
        if seasonal_var is not None:
            # The slot's own spread (MAD of only ``seasonal_samples`` days) floors the variance
            # in full only where the slot stands clearly above the entity's level (a daily
            # batch): there the all-bins dispersion says nothing about the batch's size.
            # Elsewhere the slot is the entity's ordinary traffic, whose dispersion is already
            # estimated from hundreds of bins; the max with a 5-sample MAD (itself very noisy,
            # and carrying the day-to-day factor the dispersion already has) only inflated the
            # bound: a noisy poller at ~13/h got an upper of ~100 instead of ~60 on the hours
            # whose last five days happened to differ, and a 4x spike went unseen. There the MAD
            # adds at most its integer resolution (one failure), which a quiet entity needs.
            own_slot = median > level + 2.0 * np.sqrt(np.maximum(level, 1.0) * dispersion)
            var = np.where(
                own_slot,
                np.maximum(np.maximum(var, seasonal_var), (params.batch_cv * median) ** 2),
                np.maximum(var, np.minimum(seasonal_var, var + MAD_RESOLUTION)),
            )
        expected[t] = mu
        variance[t] = var
        # Winsorized update: a spike enters the level only up to the bound it broke.
        bound = mu + params.clip_sigmas * np.sqrt(var) + 2.0
        clipped = np.minimum(counts[t], bound)
        # Written only where there is a habit: few entities have one, and the zero pages of the
        # two matrices (np.zeros) then stay unmapped, ~2 x 140 MB less for 50,000 x 720.
        habit = np.flatnonzero(burst_n >= params.burst_min)
        if len(habit):
            burst_size[t, habit] = burst_sum[habit] / np.maximum(burst_n[habit], 1e-12)
            burst_rate[t, habit] = burst_n[habit] / max(burst_weight, 1.0)
        bursting = counts[t] > bound
        burst_sum = burst_sum * burst_decay + np.where(bursting, counts[t], 0.0)
        burst_n = burst_n * burst_decay + bursting
        burst_weight = burst_weight * burst_decay + 1.0
        weighted_sum = weighted_sum * decay + clipped
        kind_sum *= decay
        kind_weight *= decay
        if kind >= 0:
            kind_sum[kind] += clipped
            kind_weight[kind] += 1.0
        # Each residual enters at most at three of the entity's own standard deviations so far.
        residual = np.minimum((clipped - center) ** 2 / np.maximum(center, 1.0), params.residual_max * own)
        weighted_sq = weighted_sq * decay + residual
        if params.local_half_life_bins > 0:
            if day_shape:
                rate = shaped_rate[t].astype(np.float64)
            else:
                rate = local_sum / local_weight if local_weight > 0 else local_sum
            local_residual = (clipped - rate) ** 2 / np.maximum(rate, 1.0)
            local_sq = local_sq * decay + np.minimum(local_residual, params.residual_max * local)
            local_sum = local_sum * local_decay + clipped
            local_weight = local_weight * local_decay + 1.0
            shaped_num = shaped_num * local_decay + clipped
            shaped_den = shaped_den * local_decay + usual
            slot_sum[slot] = slot_sum[slot] * age + clipped
            slot_weight[slot] = slot_weight[slot] * age + 1.0
            slot_last[slot] = t
        weight = weight * decay + 1.0
        if typical is not None:
            usual = np.where(apis_weight > 0, apis_sum / np.maximum(apis_weight, 1e-12), 1.0)
            typical[t] = np.maximum(usual, 1.0)
            failing = counts[t] > 0
            entering = np.minimum(distinct_apis[t], 2.0 * typical[t] + 2.0)
            apis_sum = apis_sum * decay + np.where(failing, entering, 0.0)
            apis_weight = apis_weight * decay + failing
    return Baseline(
        expected,
        variance,
        history,
        seasonal_used,
        backfilled,
        insufficient,
        silent,
        peers,
        typical,
        local_dispersion,
        burst_size,
        burst_rate,
        shaped_rate,
        None if runs is None else runs.done(),
    )


def fit_together(
    matrices: list[np.ndarray],
    start: int,
    span: int,
    params: BaselineParams | None = None,
    distinct_apis: np.ndarray | None = None,
) -> list[Baseline]:
    """:func:`fit_baselines` of each ``(bins, entities)`` matrix (same bins; each its own peer
    group, as when fitted alone, and the same ``distinct_apis`` for each), in one pass over the
    bins: the per-bin work is array-wide, so a few narrow matrices cost about one. Every number
    is the one a fit of its own gives (each entity's are computed alone, and a group's pooled
    prior sums its own entities in the same order)."""
    widths = [matrix.shape[1] for matrix in matrices]
    if len(matrices) == 1:
        return [fit_baselines(matrices[0], start, span, None, params, distinct_apis)]
    groups = np.repeat(np.arange(len(matrices), dtype=np.int64), widths)
    apis = None if distinct_apis is None else np.concatenate([distinct_apis] * len(matrices), axis=1)
    joint = fit_baselines(
        np.concatenate([np.asarray(m, dtype=np.float32) for m in matrices], axis=1),
        start,
        span,
        groups,
        params,
        apis,
    )
    out = []
    for lo, hi in zip(np.cumsum([0, *widths[:-1]]), np.cumsum(widths)):
        fields = {}
        for name, value in vars(joint).items():
            if isinstance(value, np.ndarray) and value.ndim == 2:
                value = value[:, lo:hi]
            elif name == "peers":
                value = value[lo:hi]
            fields[name] = value.copy() if isinstance(value, np.ndarray) else value
        out.append(Baseline(**fields))
    return out


def _day_level(
    level: np.ndarray, kind_sum: np.ndarray, kind_weight: np.ndarray, kind: int
) -> tuple[np.ndarray, np.ndarray]:
    """The level of the bin's kind of day (weekday or weekend) and the factor that scales the
    dispersions' excess over Poisson: an automation that runs at 10 % on weekends has a weekend
    level of a tenth of its weekday one, and the excess variance its day-to-day swings give (a
    share of the rate, so quadratic in it) shrinks with it; where the kind's level is not below
    the all-days level the dispersions stay."""
    own = kind_sum[kind] / kind_weight[kind]
    scale = np.clip(own / np.maximum(level, 1e-9), 0.0, 1.0)
    return own, scale


def current_rate(
    counts: np.ndarray, t_idx: np.ndarray, e_idx: np.ndarray, half_life_bins: float
) -> np.ndarray:
    """The entity's current rate at each cell ``(t_idx[i], e_idx[i])``: an exponentially decayed
    mean (half-life ``half_life_bins``) of its counts in the bins BEFORE ``t`` (0 before any)."""
    t_idx = np.asarray(t_idx, dtype=np.int64)
    e_idx = np.asarray(e_idx, dtype=np.int64)
    out = np.zeros(len(t_idx), dtype=np.float64)
    if not len(t_idx):
        return out
    decay = 0.5 ** (1.0 / max(half_life_bins, 1e-9))
    order = np.argsort(t_idx, kind="stable")
    bounds = np.searchsorted(t_idx[order], np.arange(int(t_idx.max()) + 2))
    acc = np.zeros(counts.shape[1], dtype=np.float64)
    weight = 0.0
    for t in range(int(t_idx.max()) + 1):
        mine = order[bounds[t] : bounds[t + 1]]
        if len(mine) and weight > 0:
            out[mine] = acc[e_idx[mine]] / weight
        acc = acc * decay + counts[t]
        weight = weight * decay + 1.0
    return out
