"""Hand-checked baselines: constant, sparse, all-zero, single-bin, gap, seasonal and spiky histories."""

from __future__ import annotations

import numpy as np
import pytest
from iamspike.baseline import BaselineParams, current_rate, fit_baselines, fit_together
from iamspike.scoring import rate_score, score_counts, upper_bound

START = 1_788_739_200  # 2026-09-07T00:00:00Z, a Monday
HOUR = 3600


def fit(series, day_shape=False, **kw):
    counts = np.asarray(series, dtype=np.float32).reshape(-1, 1)
    return fit_baselines(counts, START, HOUR, params=BaselineParams(**kw), day_shape=day_shape)


def test_constant_history_expects_the_constant() -> None:
    base = fit([10] * 72)
    assert np.allclose(base.expected[48:, 0], 10.0, atol=0.5)
    assert not base.silent[48:, 0].any()
    assert (base.variance[48:, 0] >= base.expected[48:, 0]).all()  # never below Poisson


def test_all_zero_history_is_silent_not_zero_variance() -> None:
    base = fit([0] * 48)
    assert base.silent[:, 0].all()
    assert (base.expected[:, 0] == 0).all()


def test_single_bin_has_insufficient_history() -> None:
    base = fit([30])
    assert base.insufficient.tolist() == [True]
    assert base.history_bins.tolist() == [0]
    assert base.silent[0, 0]


def test_sparse_history_stays_silent() -> None:
    series = [1 if t % 7 == 0 else 0 for t in range(96)]
    base = fit(series)
    assert base.silent[48:, 0].all()
    assert base.expected[48:, 0].max() < 1.0


def test_a_gap_does_not_reset_the_level() -> None:
    series = [10] * 48 + [0] * 24 + [10] * 4
    base = fit(series)
    assert base.expected[72, 0] > 7.0  # coming back from a gap is not a spike


def test_a_past_spike_does_not_inflate_the_baseline() -> None:
    series = [5] * 24 + [500] + [5] * 47
    base = fit(series)
    assert base.expected[24, 0] < 7.0
    assert base.expected[60:, 0].max() < 7.0


def test_daily_batch_is_expected_at_its_hour_from_the_first_day() -> None:
    series = [40 if t % 24 == 2 else 0 for t in range(24 * 10)]
    base = fit(series)
    batch_hours = np.arange(2, 24 * 10, 24)
    assert (base.expected[batch_hours, 0] >= 30).all()
    assert base.backfilled[2] and not base.backfilled[24 * 5 + 2]
    assert base.expected[24 * 5 + 10, 0] < 5.0  # other hours are not


def test_a_new_steady_stream_is_absorbed_once_it_has_lasted_silent_recent_bins() -> None:
    series = [0] * 48 + [120] * 10
    base = fit(series)
    assert base.expected[48, 0] < 1.0 and base.silent[48, 0]
    # bins 49-51: a stream of 1-3 bins from silence is not the new normal yet (low and slow)
    assert base.expected[49:52, 0].max() <= 1.0
    assert base.expected[52:, 0].min() >= 100
    fast = fit(series, silent_recent_bins=0)  # without the wait: the median of 3 absorbs it at 50
    assert fast.expected[50:, 0].min() >= 100


def test_a_stream_on_a_busy_entity_is_absorbed_by_the_median_of_three() -> None:
    series = [10] * 48 + [120] * 6
    base = fit(series)
    assert not base.silent[50, 0]
    assert base.expected[50:, 0].min() >= 100


def _day_to_day(rates, seed=7):
    # Poisson bins whose rate changes from one day to the next (a poller: 6/h one day, 25/h the next)
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.poisson(rate, 24) for rate in rates]).tolist()


def test_local_dispersion_tightens_the_bound_of_automation_that_varies_by_day() -> None:
    rates = [6, 25, 12, 20, 5, 15, 8, 22, 10, 6]
    series = _day_to_day(rates)
    local = fit(series)
    long_run = fit(series, local_half_life_bins=0)
    last_day = slice(24 * 9 + 4, 24 * 10)  # a quiet day (6/h) after busy ones
    # the long-run dispersion carries the day-to-day swings; the local one does not
    wide = np.median(long_run.variance[last_day, 0] / long_run.expected[last_day, 0])
    narrow = np.median(local.variance[last_day, 0] / local.expected[last_day, 0])
    assert wide > 3.0 and narrow < 0.75 * wide
    assert (local.variance[:, 0] <= long_run.variance[:, 0] + 1e-3).all()  # only ever the smaller


def test_bins_that_jump_keep_the_long_run_variance() -> None:
    # office hours: 0 at night, 20 by day; the short average never predicts the jumps
    series = [20 if 8 <= t % 24 < 18 else 0 for t in range(24 * 10)]
    local = fit(series)
    long_run = fit(series, local_half_life_bins=0)
    assert np.allclose(local.variance[24 * 8 :, 0], long_run.variance[24 * 8 :, 0], rtol=0.2)


def test_pooled_prior_below_min_history() -> None:
    counts = np.zeros((30, 3), dtype=np.float32)
    counts[:, 0] = 20
    counts[:, 1] = 20
    base = fit_baselines(
        counts, START, HOUR, groups=np.array([0, 0, 0]), params=BaselineParams(min_history_bins=24)
    )
    assert base.insufficient[:24].all() and not base.insufficient[24:].any()
    assert base.expected[10, 2] > 5.0  # the silent newcomer borrows its peers' level while history is short
    assert base.expected[28, 2] == 0.0
    assert base.peers.tolist() == [3, 3, 3]


def test_typical_apis_track_failing_bins() -> None:
    counts = np.array([[5], [0], [5], [5]], dtype=np.float32)
    breadth = np.array([[4], [0], [4], [4]], dtype=np.float32)
    base = fit_baselines(counts, START, HOUR, distinct_apis=breadth)
    assert base.typical_apis[0, 0] == 1.0
    assert abs(base.typical_apis[3, 0] - 4.0) < 1e-6


def test_an_ordinary_hour_whose_last_days_differ_keeps_the_entitys_dispersion() -> None:
    # A poller at 13/h; at 20:00 the last five weekdays happened to give 4, 22, 13, 24, 5 (MAD 9):
    # that hour is the poller's ordinary traffic, so its variance is not the 5-day MAD^2 (~178).
    series = [13.0] * (10 * 24)
    for day, count in ((2, 4), (3, 22), (4, 13), (7, 24), (8, 5)):
        series[day * 24 + 20] = count
    base = fit(series)
    t = 9 * 24 + 20
    assert base.seasonal_samples[t] == 5
    assert 13.0 <= base.variance[t, 0] < 60.0


def test_a_batch_hour_keeps_the_spread_of_its_sizes() -> None:
    # Nothing all day but a batch at 02:00 whose size varies: the slot's own MAD floors its variance.
    sizes = (30, 60, 40, 55, 35, 50, 45, 58, 32, 44)
    series = [0.0] * (10 * 24)
    for day, size in enumerate(sizes):
        series[day * 24 + 2] = size
    base = fit(series)
    t = 9 * 24 + 2
    samples = np.array([sizes[d] for d in (8, 7, 4, 3, 2)], dtype=float)
    mad_var = (1.4826 * np.median(np.abs(samples - np.median(samples)))) ** 2
    assert base.variance[t, 0] >= mad_var * 0.999


def _quiet_with_batch(days: int = 10) -> list[float]:
    """A quiet account: one failure every third hour, and a daily batch of 90-200 at 10:00."""
    sizes = (150, 90, 200, 120, 170, 100, 140, 160, 110, 180)
    series = [1.0 if t % 3 == 0 else 0.0 for t in range(days * 24)]
    for day in range(days):
        series[day * 24 + 10] = sizes[day]
    return series


def test_residuals_are_clipped_so_a_batch_does_not_set_every_hours_dispersion() -> None:
    # Each bin's squared residual enters at most residual_max (9): the batch hour moves the
    # dispersion by one bin's worth. At the ordinary afternoon hours (expected 6.7: the batch is in
    # the level) the upper is 24, so a thin spread of 30 failures stands out; clipped at 60 (the
    # rule before), the batch's residuals nearly tripled the variance and the upper was 46.
    series = _quiet_with_batch()
    ordinary = [9 * 24 + h for h in (13, 14, 15, 16)]
    clipped = fit(series)
    loose = fit(series, residual_max=60.0)
    tight = upper_bound(clipped.expected[ordinary, 0], clipped.variance[ordinary, 0], 6.0)
    wide = upper_bound(loose.expected[ordinary, 0], loose.variance[ordinary, 0], 6.0)
    assert (tight <= 25).all() and (wide >= 40).all(), (tight, wide)


def test_a_batch_slot_varies_by_at_least_batch_cv_of_its_size() -> None:
    # The last five batches happened to be the same size (MAD 0): the slot's variance is still at
    # least (0.4 x 50)^2, so a batch of 80 (x1.6) stays quiet and one of 250 (x5) does not.
    series = [0.0] * (10 * 24)
    for day in range(10):
        series[day * 24 + 2] = 50.0
    t = 9 * 24 + 2
    base = fit(series)
    assert base.variance[t, 0] >= (0.4 * 50.0) ** 2 * 0.999
    assert fit(series, batch_cv=0.0).variance[t, 0] < 0.5 * base.variance[t, 0]
    mu, var = base.expected[t : t + 1, 0], base.variance[t : t + 1, 0]
    quiet = score_counts(np.array([80.0]), mu, var, np.array([1.0])).score[0]
    loud = score_counts(np.array([250.0]), mu, var, np.array([1.0])).score[0]
    assert quiet < 50.0 <= loud, (quiet, loud)


def _dispersed(rate: float, shape: float, days: int, seed: int = 11) -> list[float]:
    """An automation at ``rate`` an hour whose hours vary by a gamma factor of ``shape`` (CV 1/sqrt)."""
    rng = np.random.default_rng(seed)
    return rng.poisson(rate * rng.gamma(shape, 1.0 / shape, days * 24)).astype(float).tolist()


def _flagged_hours(series: list[float], first: int, day_shape: bool = True) -> list[int]:
    """Bins from ``first`` on that the engine's two count rules (baseline, current rate) flag, as
    for a principal (``day_shape``, the count judged against the shaped rate)."""
    base = fit(series, day_shape=day_shape)
    counts = np.asarray(series, dtype=np.float32).reshape(-1, 1)
    t = np.arange(first, len(series))
    e = np.zeros(len(t), dtype=np.int64)
    x = counts[t, 0].astype(np.float64)
    by_count = score_counts(x, base.expected[t, 0], base.variance[t, 0], np.ones(len(t))).score
    rate = current_rate(counts, t, e, BaselineParams().local_half_life_bins)
    by_rate = rate_score(
        x,
        base.expected[t, 0],
        rate,
        base.silent[t, 0],
        dispersion=base.local_dispersion[t, 0],
        shaped=base.shaped_rate[t, 0] if day_shape else None,
    )
    return t[(np.maximum(by_count, by_rate) >= 50.0) & (x >= 5)].tolist()


def _weekly(weekday: float, weekend: float, days: int, seed: int = 5) -> list[float]:
    """A steady automation (Poisson hours) at ``weekday`` an hour on weekdays, ``weekend`` on
    weekends (START is a Monday)."""
    rng = np.random.default_rng(seed)
    rates = [weekend if (h // 24) % 7 >= 5 else weekday for h in range(days * 24)]
    return rng.poisson(rates).astype(float).tolist()


def test_a_weekly_automations_weekend_hour_is_judged_against_its_weekend_level() -> None:
    # 20 an hour on weekdays, 2 on weekends. The third Saturday's 14:00 at 14 (x7 its weekend
    # rate) was judged against the weekday level (expected ~15, upper ~40): unseen. Each kind of
    # day now has its own level, and the dispersions' excess shrinks with it.
    series = _weekly(20.0, 2.0, 21)
    at = 19 * 24 + 14  # Saturday of the third week
    assert _flagged_hours(series, 8 * 24) == []
    series[at] = 14.0
    assert _flagged_hours(series, 8 * 24, day_shape=False) == []
    assert _flagged_hours(series, 8 * 24) == [at]
    base = fit(series, day_shape=True)
    assert base.expected[at, 0] < 5.0 < 12.0 < fit(series).expected[at, 0]
    assert base.expected[at - 24 * 5, 0] > 15.0  # the Monday before: the weekday level


def test_a_weekend_that_runs_at_the_weekday_level_is_absorbed() -> None:
    # The same automation whose third weekend runs like a weekday: the recent bins carry it.
    series = _weekly(20.0, 2.0, 21)
    busy = _weekly(20.0, 20.0, 21, seed=6)
    series[19 * 24 : 21 * 24] = busy[19 * 24 : 21 * 24]
    assert _flagged_hours(series, 8 * 24) == []


def test_the_shaped_rate_follows_the_hour_of_the_day_and_the_days_own_level() -> None:
    # 30 an hour from 08:00 to 20:00, 6 at night; the last day (a Monday) runs at half.
    rates = [(30.0 if 8 <= h % 24 < 20 else 6.0) * (0.5 if h >= 14 * 24 else 1.0) for h in range(15 * 24)]
    series = np.random.default_rng(3).poisson(rates).astype(float).tolist()
    base = fit(series)
    assert base.shaped_rate[11 * 24 + 14, 0] == pytest.approx(30.0, rel=0.25)  # a Friday
    assert base.shaped_rate[11 * 24 + 2, 0] == pytest.approx(6.0, rel=0.35)
    # the plain current rate at 09:00 still holds the night; the shaped one the day
    counts = np.asarray(series, dtype=np.float32).reshape(-1, 1)
    plain = current_rate(counts, np.array([11 * 24 + 9]), np.array([0]), 4.0)[0]
    assert plain < 15.0 < base.shaped_rate[11 * 24 + 9, 0]
    # a day running at half: after a few hours its day hours are expected at about 15
    assert base.shaped_rate[14 * 24 + 14, 0] == pytest.approx(15.0, rel=0.3)


def test_a_dispersed_automation_keeps_its_own_dispersion_and_its_ordinary_hours_stay_quiet() -> None:
    # 15 an hour, hours varying by ~70 % (gamma shape 2): a dispersion of about 1 + 15/2 = 8.5.
    # Residuals clipped at a fixed 9 (three Poisson standard deviations) held the estimate at
    # about half of that (4.4), and against the current rate with a fixed dispersion of 2 four of
    # its ordinary hours in the last 10 days alerted.
    series = _dispersed(15.0, 2.0, 20)
    base = fit(series)
    counts = np.asarray(series)
    lag = counts[1:] - counts[:-1]
    actual = float(np.var(lag) / 2.0 / np.mean(counts))  # its hour-to-hour dispersion
    assert actual > 7.0
    assert np.median(base.local_dispersion[10 * 24 :, 0]) > 0.75 * actual
    assert _flagged_hours(series, 10 * 24) == []


def test_a_steady_automations_x3_hour_is_still_flagged() -> None:
    # The same check on a steady 15/h (Poisson hours): x3 of its rate stands out.
    series = _dispersed(15.0, 400.0, 20)
    at = 15 * 24 + 5
    assert _flagged_hours(series, 10 * 24) == []
    series[at] = 45.0
    assert _flagged_hours(series, 10 * 24) == [at]


def test_current_rate_is_the_decayed_mean_of_the_bins_before() -> None:
    counts = np.array([[4.0, 0.0], [4.0, 0.0], [8.0, 2.0], [30.0, 0.0]], dtype=np.float32)
    rate = current_rate(counts, np.array([0, 1, 3, 3]), np.array([0, 0, 0, 1]), 1.0)
    # half-life 1 bin: weights 1/4, 1/2, 1 for the three bins before bin 3 (the bin itself not in it)
    assert rate.tolist() == pytest.approx([0.0, 4.0, (4 * 0.25 + 4 * 0.5 + 8) / 1.75, 2.0 / 1.75])


def _weekly_bursts(weeks: int, sizes=(12, 15, 11, 14, 16, 13)) -> list[int]:
    """A person failing about once an office hour on weekdays, with a burst on Tuesdays and Thursdays."""
    series = [0] * (weeks * 7 * 24)
    sizes = iter(sizes * weeks)
    for d in range(weeks * 7):
        if d % 7 >= 5:
            continue
        for h in range(9, 17):
            series[d * 24 + h] = 1
        if d % 7 in (1, 3):
            series[d * 24 + 9 + (d * 3) % 8] = next(sizes)
    return series


def test_the_burst_memory_learns_a_recurring_burst_size() -> None:
    series = _weekly_bursts(3)
    base = fit(series)
    end = len(series) - 1
    # the bursts stay out of the level (expected about one an hour) ...
    assert base.expected[end, 0] < 2.0
    # ... and in the burst memory: their mean size and how often they come (6 bursts in 504 bins)
    assert 12.0 < base.burst_size[end, 0] < 15.5
    assert 0.008 < base.burst_rate[end, 0] < 0.02


def test_one_burst_is_no_habit() -> None:
    series = [1 if 9 <= t % 24 < 17 else 0 for t in range(7 * 24)]
    series[2 * 24 + 11] = 15
    base = fit(series)
    assert (base.burst_size[:, 0] == 0).all() and (base.burst_rate[:, 0] == 0).all()


@pytest.mark.parametrize("apis", [False, True])
def test_matrices_fitted_together_get_the_numbers_of_one_fit_each(apis) -> None:
    """Each matrix its own peer group: the pooled prior of the first bins, the bursts, the seasonal
    medians and the typical APIs are those of a fit of its own, to the bit."""
    rng = np.random.default_rng(7)
    n_bins = 24 * 9
    hours = np.arange(n_bins) % 24
    steady = rng.poisson(6.0, (n_bins, 3)).astype(np.float32)
    batch = np.where(hours == 2, 40.0, 0.0).astype(np.float32)[:, None]
    spiky = steady[:, :1].copy()
    spiky[100] = 500.0
    first = np.hstack([steady, batch, np.zeros((n_bins, 1), np.float32)])  # a silent column too
    second = np.hstack([spiky, rng.poisson(0.3, (n_bins, 4)).astype(np.float32)])
    distinct = np.minimum(first, 3.0) if apis else None  # one APIs matrix for both, as results give
    params = BaselineParams(min_history_bins=12, recent_bins=3)
    together = fit_together([first, second], START, HOUR, params, distinct)
    for matrix, joint in zip([first, second], together):
        alone = fit_baselines(matrix, START, HOUR, None, params, distinct)
        for name, value in vars(alone).items():
            other = getattr(joint, name)
            if isinstance(value, np.ndarray):
                assert other.shape == value.shape and other.dtype == value.dtype, name
                assert np.array_equal(other, value), name
            else:
                assert other == value, name
