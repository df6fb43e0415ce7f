"""P32: a steady stream's last bins against its own week (iamspike.steady)."""

from __future__ import annotations

import numpy as np
from iamspike.engine import Detector, parse_options, run
from iamspike.steady import SteadyParams, hour_dispersion, steady_scores

HOUR = 3600
START = 1_700_006_400  # a midnight UTC
BINS = 24 * 14
SPIKE = BINS - 40  # an hour of day 12
MACHINE = np.array([True])
ROLE = "arn:aws:iam::123456789012:role/poller"


def stream(rate: float = 5.0, spike=(20, 20), seed: int = 3) -> np.ndarray:
    """One principal failing about ``rate`` times an hour (Poisson), with ``spike`` from SPIKE on."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate, size=BINS).astype(np.float64)[:, None]
    counts[SPIKE : SPIKE + len(spike), 0] = spike
    return counts


def scores(counts, machine=MACHINE, params=None):
    t_idx = np.arange(counts.shape[0])
    return steady_scores(counts, t_idx, np.zeros(len(t_idx), dtype=np.int64), machine, params=params)


def test_two_hours_at_four_times_a_steady_rate_score_above_the_threshold_and_no_other_hour_does():
    score, bins, predicted = scores(stream())
    assert score[SPIKE + 1] >= 50.0
    assert bins[SPIKE + 1] == 2
    assert 7.0 <= predicted[SPIKE + 1] <= 13.0  # two hours of about 5
    assert score[:SPIKE].max() < 50.0
    assert score[SPIKE + 2 :].max() < 50.0


def test_a_person_is_never_judged():
    score, _, _ = scores(stream(), machine=np.array([False]))
    assert not score.any()


def test_a_stream_whose_days_step_is_judged_at_its_days_level_and_quiet_on_its_other_hours():
    """P36: the bench's day factors fail the steadiness test (P32), but the day's own level (its
    12 hours before) puts 25 an hour for two hours above an ordinary day of this stream."""
    counts = stream(spike=(25, 25))
    rng = np.random.default_rng(5)
    factors = np.repeat(rng.gamma(6.0, 1.0 / 6.0, size=BINS // 24), 24)  # the bench's day factors
    counts[:SPIKE, 0] = rng.poisson(5.0 * factors[:SPIKE])
    score, _, _ = scores(counts)
    assert score[SPIKE : SPIKE + 2].max() >= 50.0
    assert score[:SPIKE].max() < 50.0
    assert scores(counts, params=SteadyParams(level_bins=0))[0][SPIKE : SPIKE + 2].max() < 50.0  # P32 alone


def test_a_silent_day_in_the_week_before_is_not_steady():
    counts = stream()
    day = SPIKE - SPIKE % 24 - 48  # midnight two days before the spike's day
    counts[day : day + 24, 0] = 0.0
    score, _, _ = scores(counts)
    assert not score[SPIKE : SPIKE + 2].any()


def drifting(seed: int = 23, factor: float = 3.0) -> np.ndarray:
    """An over-dispersed stream (negative binomial, variance twice its mean) of about 10 an hour
    with a daily (+-30 %) and weekly (+-15 %) cycle and a drift of about 10 % a day, as the
    sensitivity sweep plants them, and ``factor`` times its rate for three hours from SPIKE."""
    rng = np.random.default_rng(seed)
    h = np.arange(BINS, dtype=np.float64)
    knots = np.exp(rng.normal(0.0, 0.1, BINS // 24 + 2))  # a day's level at its noon
    drift = np.interp(h, 24.0 * np.arange(len(knots)) - 12.0, knots)
    daily = 1.0 + 0.3 * np.sin(2 * np.pi * h / 24.0)
    weekly = 1.0 + 0.15 * np.cos(2 * np.pi * h / 168.0)
    mean = 10.0 * daily * weekly * drift
    counts = rng.negative_binomial(mean, 0.5).astype(np.float64)[:, None]
    spike = rng.poisson((factor - 1.0) * mean[SPIKE : SPIKE + 3])
    if factor > 1.0:
        counts[SPIKE : SPIKE + 3, 0] += spike
    return counts


def test_an_over_dispersed_drifting_streams_three_hours_at_three_times_its_rate_are_flagged_by_its_level():
    counts = drifting()
    score, bins, predicted = scores(counts)
    assert score[SPIKE + 2] >= 50.0
    assert bins[SPIKE + 2] == 3
    assert 30.0 <= predicted[SPIKE + 2] <= 50.0  # three hours of about 10-14 at the day's level
    assert scores(counts, params=SteadyParams(level_bins=0))[0][SPIKE : SPIKE + 3].max() < 50.0  # P32 alone
    assert score[:SPIKE].max() < 50.0


def test_the_same_stream_without_its_spike_is_quiet():
    score, _, _ = scores(drifting(factor=1.0))
    assert score.max() < 50.0


def test_the_window_must_stand_at_factor_times_its_prediction():
    counts = stream()
    assert scores(counts)[0][SPIKE + 1] > 0
    score, _, _ = scores(counts, params=SteadyParams(factor=5.0, bin_factor=5.0))
    assert not score[SPIKE : SPIKE + 2].any()


def test_hour_dispersion_is_about_one_for_poisson_and_two_for_a_negative_binomial():
    rng = np.random.default_rng(1)
    poisson = rng.poisson(10.0, size=(200, 7, 24)).astype(np.float64)
    negbin = rng.negative_binomial(10.0, 0.5, size=(200, 7, 24)).astype(np.float64)  # variance 2 x 10
    have = np.ones((200, 7), dtype=bool)
    assert abs(float(np.median(hour_dispersion(poisson, have))) - 1.0) < 0.15
    assert abs(float(np.median(hour_dispersion(negbin, have))) - 2.0) < 0.3


def records(counts: np.ndarray) -> list[dict]:
    out = []
    for h, n in enumerate(counts[:, 0].astype(int).tolist()):
        for k in range(n):
            t = START + h * HOUR + (k * 3593) % HOUR
            out.append(
                {
                    "eventTime": np.datetime_as_string(np.datetime64(t, "s")) + "Z",
                    "eventSource": "ec2.amazonaws.com",
                    "eventName": ("DescribeInstances", "DescribeVolumes")[k % 2],
                    "errorCode": "Client.UnauthorizedOperation",
                    "recipientAccountId": "123456789012",
                    "sourceIPAddress": "10.0.0.1",
                    "eventID": f"e-{h}-{k}",
                    "userIdentity": {
                        "type": "AssumedRole",
                        "arn": f"arn:aws:sts::123456789012:assumed-role/poller/s{h // 6}",
                        "accountId": "123456789012",
                        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": ROLE}},
                    },
                }
            )
    return out


def test_the_engine_flags_the_steady_streams_spike_with_its_note():
    rows = run(records(stream()), parse_options([]))
    flagged = [r for r in rows if r["entity_type"] == "principal" and r["principal"] == ROLE]
    hours = sorted((int(float(r["_time"])) - START) // HOUR for r in flagged)
    assert SPIKE + 1 in hours
    assert all(SPIKE <= h <= SPIKE + 1 for h in hours)
    reason = next(r["reason"] for r in flagged if (int(float(r["_time"])) - START) // HOUR == SPIKE + 1)
    assert "steady stream (its last week)" in reason


def test_the_hour_after_a_spike_is_no_spike_of_its_own():
    counts = stream(spike=(20, 20, 10))  # 10 is an ordinary hour of this stream (about 1 in 15)
    score, _, _ = scores(counts)
    assert score[SPIKE + 1] >= 50.0
    assert score[SPIKE + 2] < 50.0


def test_an_alert_run_from_saved_state_flags_the_spike_as_one_pass_does():
    """The alert runs over its last hours with the principal's saved state rows (``show=state``
    over the days before): the steady stream's days come from those rows, so its flagged rows
    equal one pass's over the whole range."""
    alert_from_state_as_one_pass(stream(), cut_bins=12)


def test_an_alert_run_from_saved_state_flags_the_drifting_streams_spike_as_one_pass_does():
    """P36's level comes from the bins before the window: here all but one from the saved state rows."""
    alert_from_state_as_one_pass(drifting(), cut_bins=1)


def alert_from_state_as_one_pass(counts: np.ndarray, cut_bins: int) -> None:
    """An alert over the bins from ``cut_bins`` before the spike on, continuing from the state rows
    saved before, flags the rows one pass over the whole range flags (the spike among them)."""
    cut = START + (SPIKE - cut_bins) * HOUR  # the alert's window
    alert_after_flags_as_one_pass(records(counts), cut, "steady stream (its last week)")


def alert_after_flags_as_one_pass(events: list[dict], cut: int, note: str) -> None:
    """An alert over ``events`` from ``cut`` on, continuing from the state rows saved before it,
    flags the rows one pass over all of them flags, one of them with ``note`` in its reason."""
    before = [e for e in events if np.datetime64(e["eventTime"][:-1], "s").astype(int) < cut]
    after = events[len(before) :]
    saved = run(before, parse_options(["show=state"]))
    header = sorted({key for row in saved for key in row})
    detector = Detector(parse_options([]))
    detector.add_rows(header, [[str(row.get(key, "")) for key in header] for row in saved])
    detector.add_records(after)

    def flagged(rows):
        keep = ("_time", "entity_type", "principal", "failures", "score", "reason")
        return sorted(tuple(str(r[k]) for k in keep) for r in rows if float(r["_time"]) >= cut)

    one_pass = flagged(run(events, parse_options([])))
    assert any(note in row[-1] for row in one_pass)
    assert flagged(detector.results()) == one_pass


def slowed(seed: int = 7, spike=(42, 42)) -> np.ndarray:
    """An over-dispersed stream of about 20 an hour (negative binomial, variance twice its mean)
    that runs at 12 an hour for the 12 hours before ``spike`` (two hours at 3.5 times that)."""
    rng = np.random.default_rng(seed)
    counts = rng.negative_binomial(20.0, 0.5, size=BINS).astype(np.float64)[:, None]
    counts[SPIKE - 12 : SPIKE, 0] = rng.negative_binomial(12.0, 0.5, size=12)
    counts[SPIKE : SPIKE + len(spike), 0] = spike
    return counts


def test_a_stream_running_below_its_days_is_judged_at_its_lower_level():
    """P37: 84 failures in two hours are 2.1 times this stream's days but 3.5 times its level of
    the 12 hours before; its level lowers the bar (shrunk towards 1 by 30 failures)."""
    counts = slowed()
    score, bins, predicted = scores(counts)
    assert score[SPIKE + 1] >= 50.0
    assert bins[SPIKE + 1] == 2
    assert 20.0 <= predicted[SPIKE + 1] <= 32.0  # two hours of about 12-16, not 20
    assert scores(counts, params=SteadyParams(level_prior=1e12))[0][SPIKE + 1] < 50.0  # level never lowered
    assert score[:SPIKE].max() < 50.0
    assert score[SPIKE + 2 :].max() < 50.0


def test_a_lowered_level_still_needs_the_window_at_factor_times_the_days():
    counts = slowed(spike=(36, 36))  # 3 times the level, 1.8 times the days
    assert scores(counts)[0][SPIKE : SPIKE + 2].max() < 50.0


def test_a_stream_that_paused_is_judged_at_its_days_not_at_its_pause():
    """A silent bin among the level's 12 leaves the level at 1: 25 after a pause of a 10/h stream
    (its catch-up) is no spike; at the pause's level (2 failures in 12 hours) it scored 71-79."""
    counts = stream(rate=10.0, spike=(25,), seed=4)
    counts[SPIKE - 12 : SPIKE, 0] = 0.0
    counts[SPIKE - 5, 0] = 2.0
    assert scores(counts)[0][SPIKE] < 50.0
