"""P52: a machine stream's last bins against its own level today (iamspike.daylevel)."""

from __future__ import annotations

import numpy as np
from iamspike.daylevel import DayLevelParams, day_level_scores
from iamspike.engine import parse_options, run
from iamspike.steady import steady_scores
from test_steady import alert_after_flags_as_one_pass, records

HOUR = 3600
START = 1_700_006_400  # a midnight UTC
BINS = 24 * 14
SPIKE = 24 * 12 + 17  # 17:00 UTC of day 12
MACHINE = np.array([True])
ROLE = "arn:aws:iam::123456789012:role/poller"


def swinging(seed: int = 1, factor: float = 3.0, hours: int = 2, hour_shape: float = 50.0) -> np.ndarray:
    """An automation of about 17 failures an hour as the bench's weekly family draws them: a daily
    swing of +-70 %, a day factor (gamma, shape 6) that steps at 00:00 UTC and an hour factor
    (gamma, shape 50); ``factor`` times its usual rate for ``hours`` from SPIKE."""
    rng = np.random.default_rng(seed)
    h = np.arange(BINS)
    shape = 1.0 + 0.7 * np.sin(2 * np.pi * ((h % 24) - 6) / 24.0)
    day = np.repeat(rng.gamma(6.0, 1.0 / 6.0, size=BINS // 24), 24)
    hour = rng.gamma(hour_shape, 1.0 / hour_shape, size=BINS)
    counts = rng.poisson(17.0 * shape * day * hour).astype(np.float64)
    if factor > 1.0:
        spike = slice(SPIKE, SPIKE + hours)
        counts[spike] += rng.poisson((factor - 1.0) * 17.0 * shape[spike])
    return counts[:, None]


def scores(counts, machine=MACHINE, params=None):
    t_idx = np.arange(counts.shape[0])
    return day_level_scores(counts, t_idx, np.zeros(len(t_idx), dtype=np.int64), machine, params=params)


def test_two_hours_at_three_times_the_usual_rate_stand_out_against_the_days_level_and_no_other_hour_does():
    counts = swinging()
    score, bins, predicted = scores(counts)
    assert score[SPIKE + 1] >= 50.0
    assert bins[SPIKE + 1] == 2
    # two hours at the day's level (a low day: about 8), where the spike holds 74 failures
    assert 4.0 <= predicted[SPIKE + 1] <= counts[SPIKE : SPIKE + 2, 0].sum() / 4.0
    assert np.delete(score, [SPIKE, SPIKE + 1]).max() < 50.0
    # the days' views (P32, P36) see its swing between days: the spike's second hour stays below
    t_idx = np.arange(BINS)
    steady = steady_scores(counts, t_idx, np.zeros(BINS, dtype=np.int64), MACHINE)[0]
    assert steady[SPIKE + 1] < 50.0


def test_the_same_stream_without_its_spike_is_quiet():
    assert scores(swinging(factor=1.0))[0].max() < 50.0


def test_a_stream_whose_hours_vary_beyond_twice_poisson_around_its_day_is_left_to_the_hourly_tests():
    """The dispersed family's automations (hour factors of gamma shape 2-6): two hours at twice
    their day's level are their own noise often enough (3 benign cells on 3 organisations)."""
    counts = swinging(hour_shape=3.0, factor=5.0)
    assert not scores(counts)[0].any()
    assert scores(counts, params=DayLevelParams(max_dispersion=100.0))[0].any()


def test_a_matrix_that_ends_within_the_day_scores_its_last_bin():
    """The spike's second hour is the matrix's last bin (an alert run ending at 19:00)."""
    counts = swinging()[: SPIKE + 2]
    assert scores(counts)[0][SPIKE + 1] >= 50.0


def test_a_person_is_never_judged():
    assert not scores(swinging(), machine=np.array([False]))[0].any()


def test_the_first_bins_of_a_day_are_not_judged():
    """The level comes from today's bins before the window: two hours of 40 more from 02:00 have
    two bins before them; the same at 12:00 are judged."""
    counts = swinging(factor=1.0)
    early, noon = 24 * 11 + 2, 24 * 12 + 12
    counts[[early, early + 1, noon, noon + 1], 0] += 40.0
    score, _, _ = scores(counts)
    assert not score[early : early + 2].any()
    assert score[noon + 1] >= 50.0
    assert scores(counts, params=DayLevelParams(min_before=13))[0][noon + 1] == 0.0


def test_one_bin_is_left_to_the_hourly_tests():
    """A single hour at three times the day's level is a dispersed stream's own hour often enough:
    windows start at two bins."""
    counts = swinging(factor=1.0)
    noon = 24 * 12 + 12
    counts[noon, 0] += 60.0
    assert scores(counts)[0][noon] == 0.0
    assert scores(counts, params=DayLevelParams(min_bins=1))[0][noon] >= 50.0


def test_a_scheduled_stream_whose_week_is_mostly_silent_is_not_judged():
    """A scanner failing a few hours a day has no level to speak of (filled)."""
    counts = swinging()
    counts[(np.arange(BINS) % 24) % 4 != 0] = 0.0  # fails one hour in four
    assert not scores(counts)[0].any()


def hours_flagged(rows) -> list[int]:
    return sorted(
        (int(float(r["_time"])) - START) // HOUR
        for r in rows
        if r["entity_type"] == "principal" and r["principal"] == ROLE
    )


def test_the_engine_flags_the_spike_with_its_note_and_nothing_else():
    rows = run(records(swinging()), parse_options([]))
    assert hours_flagged(rows) == [SPIKE + 1]  # the window of its two hours, at its second
    reason = next(r["reason"] for r in rows if (int(float(r["_time"])) - START) // HOUR == SPIKE + 1)
    assert "at its level today" in reason


def test_an_alert_run_from_saved_state_flags_the_spike_as_one_pass_does():
    """The alert runs over the spike's day from 12:00 on with the state rows saved before: the
    stream's week and its morning come from those rows, so its flagged rows equal one pass's."""
    cut = START + (24 * 12 + 12) * HOUR
    alert_after_flags_as_one_pass(records(swinging()), cut, "at its level today")
