"""P21: a steady machine stream's new record over its own past (iamspike.tail)."""

from __future__ import annotations

import numpy as np
from iamspike.baseline import BaselineParams, fit_baselines
from iamspike.tail import TailParams, own_record, tail_scores

HOUR = 3600
START = 1_700_006_400  # a midnight UTC
BINS = 24 * 20
SPIKE = BINS - 5
MACHINE = np.array([True])


def stream(spike: float = 3.0, seed: int = 7) -> np.ndarray:
    """One principal failing about 20 times an hour, every hour, with one hour at ``spike`` times."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.gamma(40.0, 20.0 / 40.0, size=BINS)).astype(np.float64)[:, None]
    counts = np.maximum(counts, 1.0)
    counts[SPIKE, 0] = round(spike * 20)
    return counts


def flags(counts, machine=MACHINE, params=None, t=None):
    base = fit_baselines(counts, START, HOUR, params=BaselineParams(), day_shape=True)
    t_idx = np.arange(counts.shape[0]) if t is None else np.asarray(t)
    e_idx = np.zeros(len(t_idx), dtype=np.int64)
    hl = BaselineParams().local_half_life_bins
    return own_record(counts, base, t_idx, e_idx, machine, hl, params=params), base


def test_a_steady_streams_spike_is_its_own_record_and_no_other_hour_is():
    counts = stream()
    record, _ = flags(counts)
    assert record[SPIKE]
    assert not record[:SPIKE].any()


def test_a_person_is_never_judged_against_its_own_record():
    record, _ = flags(stream(), machine=np.array([False]))
    assert not record.any()


def test_a_stream_with_a_silent_hour_in_the_last_week_is_not_steady():
    counts = stream()
    counts[SPIKE - 30, 0] = 0.0
    record, _ = flags(counts)
    assert not record[SPIKE]


def test_a_spike_no_higher_than_an_earlier_hour_is_no_record():
    counts = stream()
    counts[SPIKE - 24 * 9, 0] = counts[SPIKE, 0] + 10  # an earlier, bigger hour
    record, _ = flags(counts)
    assert not record[SPIKE]


def test_the_margin_and_the_floor_decide():
    counts = stream()
    base = fit_baselines(counts, START, HOUR, params=BaselineParams(), day_shape=True)
    hl = BaselineParams().local_half_life_bins
    zero = np.zeros(1, dtype=np.int64)
    now = tail_scores(counts, base, np.array([SPIKE]), zero, hl)[0]
    assert now >= TailParams().floor
    high = TailParams(floor=now + 1.0)
    record, _ = flags(counts, params=high, t=[SPIKE])
    assert not record[0]
    past = tail_scores(counts, base, np.arange(SPIKE), np.zeros(SPIKE, dtype=np.int64), hl).max()
    wide = TailParams(margin=now - past + 1.0)
    record, _ = flags(counts, params=wide, t=[SPIKE])
    assert not record[0]
    record, _ = flags(counts, params=TailParams(margin=now - past - 1.0), t=[SPIKE])
    assert record[0]
