"""Scoring math: lgamma, count tails against exact sums, the upper bound, onset cap, API bonus."""

from __future__ import annotations

import math

import numpy as np
import pytest
from iamspike.scoring import lgamma, log10_tail, rate_score, score_counts, severity, upper_bound


def exact_log10_tail(x: int, mu: float, k: float | None = None) -> float:
    """log10 P(X >= x) summed term by term (Poisson, or NB with size k)."""
    terms = []
    for j in range(x, x + 2000):
        if k is None:
            terms.append(j * math.log(mu) - mu - math.lgamma(j + 1))
        else:
            terms.append(
                math.lgamma(j + k)
                - math.lgamma(k)
                - math.lgamma(j + 1)
                + k * math.log(k / (k + mu))
                + j * math.log(mu / (k + mu))
            )
    top = max(terms)
    return (top + math.log(sum(math.exp(t - top) for t in terms))) / math.log(10)


def test_lgamma_matches_math() -> None:
    z = np.array([0.05, 0.5, 1.0, 2.5, 6.9, 7.0, 31.5, 1e4])
    assert np.allclose(lgamma(z), [math.lgamma(v) for v in z], atol=1e-9)


@pytest.mark.parametrize(("x", "mu"), [(5, 1.0), (30, 0.1), (20, 10.0), (200, 50.0), (13, 12.0)])
def test_poisson_tail_is_a_tight_upper_bound(x: int, mu: float) -> None:
    got = float(log10_tail(np.array([x]), np.array([mu]), np.array([mu]))[0])
    exact = exact_log10_tail(x, mu)
    assert exact <= got + 1e-9  # never overstates the surprise
    assert got - exact < 0.35


@pytest.mark.parametrize(("x", "mu", "var"), [(40, 10.0, 30.0), (100, 20.0, 200.0), (8, 1.0, 3.0)])
def test_negative_binomial_tail(x: int, mu: float, var: float) -> None:
    k = mu * mu / (var - mu)
    got = float(log10_tail(np.array([x]), np.array([mu]), np.array([var]))[0])
    exact = exact_log10_tail(x, mu, k)
    assert exact <= got + 1e-9
    assert got - exact < 0.5


def test_tail_is_zero_at_or_below_the_mean() -> None:
    assert log10_tail(np.array([3.0, 10.0]), np.array([10.0, 10.0]), np.array([10.0, 10.0])).tolist() == [
        0,
        0,
    ]


def test_upper_bound_is_the_first_count_reaching_the_surprise() -> None:
    mu, var = np.array([0.05, 10.0, 100.0]), np.array([0.05, 30.0, 400.0])
    upper = upper_bound(mu, var, 6.0)
    assert (-log10_tail(upper, mu, var) >= 6.0).all()
    assert (-log10_tail(upper - 1, mu, var) < 6.0).all()
    assert upper.tolist() == sorted(upper.tolist())


def test_overdispersion_raises_the_upper_bound() -> None:
    poisson = upper_bound(np.array([20.0]), np.array([20.0]), 6.0)[0]
    dispersed = upper_bound(np.array([20.0]), np.array([200.0]), 6.0)[0]
    assert dispersed > poisson + 20


# observed, expected, variance, apis, silent -> flagged at the default threshold (score >= 50)
CASES = [
    ("new stream, one API, from silence", 136, 0.05, 0.05, 1, True, False),
    ("new stream, two APIs, from silence", 136, 0.05, 0.05, 2, True, False),
    ("sweep from silence, 465 APIs", 505, 0.05, 0.05, 465, True, True),
    ("30 denials over 6 APIs from silence", 30, 0.05, 0.05, 6, True, True),
    ("relative spike on a steady stream", 200, 50.0, 60.0, 1, False, True),
    ("ordinary bin of a steady stream", 55, 50.0, 60.0, 1, False, False),
    ("many APIs but at the expected rate", 50, 50.0, 60.0, 40, False, False),
]


@pytest.mark.parametrize(
    ("name", "x", "mu", "var", "apis", "silent", "flag"), CASES, ids=[c[0] for c in CASES]
)
def test_score_table(name: str, x: int, mu: float, var: float, apis: int, silent: bool, flag: bool) -> None:
    s = score_counts(
        np.array([x]), np.array([mu]), np.array([var]), np.array([apis]), silent=np.array([silent])
    )
    assert bool(s.score[0] >= 50.0) is flag, (name, s.score[0])
    assert 0.0 <= s.score[0] <= 100.0


def test_onset_cap_and_sensitivity() -> None:
    s = score_counts(np.array([1000.0]), np.array([0.05]), np.array([0.05]), np.array([1.0]))
    assert s.onset[0] and s.surprise[0] == 4.0
    low = score_counts(np.array([30.0]), np.array([5.0]), np.array([5.0]), np.array([1.0]), sensitivity=0.5)
    high = score_counts(np.array([30.0]), np.array([5.0]), np.array([5.0]), np.array([1.0]), sensitivity=2.0)
    assert low.score[0] < high.score[0]


# Onsets from silence (expected 0.05): x, onset_mean (0 = fixed cap), hold, surprise after the
# hold-down. Hand-checked: -log10 P(X >= x) under Poisson(5) summed term by term is 5.853 at 19,
# 6.462 at 20 and 12.769 at 29 (above the fixed cap 4 and, from 20 on, above the threshold 6);
# at 8 it is 0.875, below the cap, so the cap 4 stays.
ONSETS = [
    ("service principal, 136 on one API: fixed cap", 136, 0.0, True, 4.0, False),
    ("person, 8 on one API: cap 4 stays", 8, 5.0, True, 4.0, False),
    ("person, 19 on one API: held to 5.85", 19, 5.0, True, 5.853, False),
    ("person, 20 on one API: 6.46, over the threshold", 20, 5.0, True, 6.462, True),
    ("role, 29 GetPasswordData (Invictus)", 29, 5.0, True, 12.769, True),
]


@pytest.mark.parametrize(
    ("name", "x", "mean", "hold", "surprise", "flag"), ONSETS, ids=[c[0] for c in ONSETS]
)
def test_onset_hold_down_rises_with_the_count(
    name: str, x: int, mean: float, hold: bool, surprise: float, flag: bool
) -> None:
    s = score_counts(
        np.array([float(x)]),
        np.array([0.05]),
        np.array([0.05]),
        np.array([1.0]),
        onset_mean=np.array([mean]),
        hold=np.array([hold]),
    )
    assert s.onset[0] and s.held[0]
    # the tail is an upper bound, so the surprise is at most the exact one (and close to it)
    assert surprise - 0.05 <= s.surprise[0] <= surprise + 1e-6, (name, s.surprise[0])
    if mean:
        assert s.surprise[0] == pytest.approx(max(4.0, -exact_log10_tail(x, mean)), abs=0.05)
    assert bool(s.score[0] >= 50.0) is flag, (name, s.score[0])


def test_failed_console_sign_ins_are_not_held_down() -> None:
    args = (np.array([17.0]), np.array([0.05]), np.array([0.05]), np.array([1.0]))
    held = score_counts(*args, onset_mean=np.array([5.0]))
    free = score_counts(*args, onset_mean=np.array([5.0]), hold=np.array([False]))
    assert held.score[0] < 50.0 <= free.score[0]
    assert free.onset[0] and not free.held[0]
    assert free.surprise[0] == pytest.approx(-exact_log10_tail(17, 0.05), abs=0.05)


def test_distinct_apis_count_only_above_the_usual() -> None:
    args = (np.array([60.0]), np.array([20.0]), np.array([20.0]), np.array([12.0]))
    plain = score_counts(*args)
    usual = score_counts(*args, typical_apis=np.array([12.0]))
    assert plain.bonus[0] > 0 and usual.bonus[0] == 0


# Novelty counts only new APIs beyond the second. 39 against 12 (variance 20) alone: surprise 5.16,
# score 44.9. Two new APIs (a person's ordinary first EC2 denials) used to add log2(3) = 1.58 and
# flag it; now they add nothing. Three add log2(2) = 1, six log2(5) = 2.32.
NOVELTY = [
    ("no new API", 0, False),
    ("two new APIs: a person's ordinary day", 2, False),
    ("three new APIs", 3, True),
    ("six new APIs: stolen credentials exploring", 6, True),
]


@pytest.mark.parametrize(("name", "new", "flag"), NOVELTY, ids=[c[0] for c in NOVELTY])
def test_novelty_counts_new_apis_beyond_the_second(name: str, new: int, flag: bool) -> None:
    s = score_counts(
        np.array([39.0]), np.array([12.0]), np.array([20.0]), np.array([1.0]), new_apis=np.array([float(new)])
    )
    assert s.bonus[0] == pytest.approx(np.log2(1.0 + max(new - 2, 0)))
    assert bool(s.score[0] >= 50.0) is flag, (name, s.score[0])


# The current-rate rule: failures, long-run expected, current rate, silent -> flagged; 0 where the
# rule does not apply (below 2x expected, a stream not running, an entity that was silent).
RATES = [
    ("52 after 6, 8, 4 an hour (expected 14.6): x7 the current rate", 52, 14.6, 6.0, False, True),
    ("25 on a running 10/h: x2.5, noise of one bin", 25, 10.0, 10.0, False, False),
    ("a batch hour rising from zero (rate 0.5, expected 20)", 60, 20.0, 0.5, False, None),
    ("28 against 14.6: below 2x the expected", 28, 14.6, 4.0, False, None),
    ("30 from a silent entity (the onset rules decide)", 30, 0.5, 0.5, True, None),
]


@pytest.mark.parametrize(("name", "x", "mu", "rate", "silent", "flag"), RATES, ids=[c[0] for c in RATES])
def test_counts_far_above_the_current_rate(
    name: str, x: int, mu: float, rate: float, silent: bool, flag: bool | None
) -> None:
    score = rate_score(np.array([float(x)]), np.array([mu]), np.array([rate]), np.array([silent]))[0]
    if flag is None:
        assert score == 0.0, name
    else:
        r = max(rate, 1.0)
        surprise = -exact_log10_tail(x, r, r * r / (1.0 * r + (0.1 * r) ** 2 - r))
        assert score == pytest.approx(100.0 * (1.0 - 2.0 ** (-surprise / 6.0)), abs=1.0)
        assert bool(score >= 50.0) is flag, (name, score)


# The current rate is judged with the entity's own local dispersion (at least 1): failures, current
# rate, local dispersion -> flagged. An automation whose hours vary by 40-70 % around its rate
# (dispersion 1 + rate/shape: about 6 at 15/h) reaches x2.5 of its rate a few times a month.
OWN = [
    ("60 on a dispersed 15/h (dispersion 6): x4, within its spread", 60, 15.0, 6.0, False),
    ("60 on a steady 15/h (dispersion 1.2): x4", 60, 15.0, 1.2, True),
    ("60 on a 15/h with no dispersion given (1)", 60, 15.0, None, True),
    ("50 on a steady 10/h (dispersion 1.5): x5", 50, 10.0, 1.5, True),
    ("50 on a dispersed 10/h (dispersion 4)", 50, 10.0, 4.0, False),
]


@pytest.mark.parametrize(("name", "x", "rate", "dispersion", "flag"), OWN, ids=[c[0] for c in OWN])
def test_the_current_rate_is_judged_with_the_entitys_own_dispersion(
    name: str, x: int, rate: float, dispersion: float | None, flag: bool
) -> None:
    given = None if dispersion is None else np.array([dispersion])
    score = rate_score(
        np.array([float(x)]), np.array([rate]), np.array([rate]), np.array([False]), dispersion=given
    )[0]
    d = max(dispersion or 1.0, 1.0)
    surprise = -exact_log10_tail(x, rate, rate * rate / (d * rate + (0.1 * rate) ** 2 - rate))
    assert score == pytest.approx(100.0 * (1.0 - 2.0 ** (-surprise / 6.0)), abs=1.0)
    assert bool(score >= 50.0) is flag, (name, score)


# The count is judged against the shaped rate (its current rate carried to this hour of this kind
# of day); the plain current rate only says whether the stream is running: failures, expected,
# plain rate, shaped rate -> flagged (None: the rule does not apply).
SHAPED = [
    ("15 on a weekend hour that runs at 2.5 (plain rate 4 from Friday night)", 15, 5.0, 4.0, 2.5, True),
    ("the same 15 judged against the plain rate 4", 15, 5.0, 4.0, None, False),
    ("a batch hour its slot predicts (shaped 40), rising from zero", 100, 34.0, 0.5, 40.0, None),
]


@pytest.mark.parametrize(("name", "x", "mu", "rate", "shaped", "flag"), SHAPED, ids=[c[0] for c in SHAPED])
def test_the_count_is_judged_against_the_shaped_rate(
    name: str, x: int, mu: float, rate: float, shaped: float | None, flag: bool | None
) -> None:
    given = None if shaped is None else np.array([shaped])
    one = np.array([1.0])
    x_, mu_, rate_ = np.array([float(x)]), np.array([mu]), np.array([rate])
    score = rate_score(x_, mu_, rate_, np.array([False]), dispersion=one, shaped=given)[0]
    if flag is None:
        assert score == 0.0, name
        return
    r = max(shaped or rate, 1.0)
    surprise = -exact_log10_tail(x, r, r * r / (r + (0.1 * r) ** 2 - r))
    assert score == pytest.approx(100.0 * (1.0 - 2.0 ** (-surprise / 6.0)), abs=1.0)
    assert bool(score >= 50.0) is flag, (name, score)


@pytest.mark.parametrize(
    ("score", "flagged", "name"),
    [
        (99.0, True, "critical"),
        (90.0, True, "high"),
        (75.0, True, "medium"),
        (55.0, True, "low"),
        (99.0, False, "none"),
    ],
)
def test_severity(score: float, flagged: bool, name: str) -> None:
    assert severity(score, flagged) == name


@pytest.mark.parametrize(
    ("name", "x", "new", "flag"),
    [
        ("a burst of its usual size", 16, 0, False),
        ("three times its usual size", 45, 0, True),
        ("its usual size on new APIs", 16, 10, True),
    ],
)
def test_a_burst_like_the_entitys_usual_ones(name: str, x: int, new: int, flag: bool) -> None:
    # a person expected at 1 an hour who bursts ~13 at a time in about 1 bin of 100
    args = ([x], [1.0], [1.5], [2])
    kw = {"typical_apis": [1.3], "new_apis": [new]}
    alone = score_counts(*args, **kw)
    assert alone.score[0] >= 50 and not np.isfinite(alone.habit).any()  # without the burst memory
    scored = score_counts(*args, burst_size=[13.0], burst_rate=[0.01], **kw)
    assert bool(scored.score[0] >= 50) is flag, name
    assert bool(np.isfinite(scored.habit[0])) is (new == 0)
