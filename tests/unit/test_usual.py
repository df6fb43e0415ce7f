"""Rule P31 (usual.py, flags.py): a principal's usual work is no sweep and no spike. From silence, an
application role's hour on APIs it has failed on before counts no more APIs than it usually fails
on (new APIs still do); a person who fails about once or twice an hour and retries a command 15
times is held down as an onset (30+ still flagged, a sweep of new APIs too) (docs/engine.md, P31)."""

from __future__ import annotations

import numpy as np
from iamspike.engine import run
from iamspike.scoring import score_counts
from iamspike.usual import as_usual, known, near_silent
from test_people import OTHER, USUAL, call
from test_spread import ACCT, HOUR, SPIKE_HOUR, T0, event, quiet_account, user

ROLE = f"arn:aws:iam::{ACCT}:role/orders-app"
JUDY = user("judy")
SPIKE = T0 + SPIKE_HOUR * HOUR


def flagged(records: list[dict], principal: str) -> list[dict]:
    rows = run(sorted(quiet_account(11) + records, key=lambda r: r["eventTime"]))
    return [r for r in rows if r["principal"] == principal]


def app_role(days: int = 10) -> list[dict]:
    """orders-app is denied twice a day (09:15, 12:15) on its five usual APIs: silent most hours."""
    return [
        call(T0 + d * 24 * HOUR + (9 + 3 * k) * HOUR + 900, ROLE, USUAL[(d + k) % 5])
        for d in range(days)
        for k in range(2)
    ]


def worker(days: int = 10) -> list[dict]:
    """judy is denied once or twice in every working hour (09-17) on her five usual APIs."""
    return [
        call(T0 + d * 24 * HOUR + h * HOUR + 600 + 1200 * j, JUDY, USUAL[(d + h + j) % 5])
        for d in range(days)
        for h in range(9, 18)
        for j in range((d + h) % 2 + 1)
    ]


def test_known_and_near_silent_cells() -> None:
    person = np.array([True, False, False, True])
    machine = np.array([False, True, True, False])
    silent = np.array([True, True, False, True])
    watched = np.array([True, True, True, False])
    # A silent person and a machine, silent or not, watched long enough.
    assert known(person, machine, silent, watched).tolist() == [True, True, True, False]
    narrow = np.array([True, True, True, False])
    expected = np.array([1.0, 2.0, 2.5, 1.0])
    assert near_silent(narrow, expected, np.array([False, False, False, False])).tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert not near_silent(narrow, expected, np.ones(4, dtype=bool)).any()  # silent: an onset already


def test_as_usual_leaves_the_onsets_given_to_the_scorer_alone() -> None:
    # score_counts may return the very array it was given as its onsets; the current-rate test
    # reads that array after as_usual, so as_usual must not write into it.
    silent = np.array([True, True, False])
    near = np.array([False, True, False])
    scored = score_counts(np.array([12.0, 12.0, 12.0]), np.ones(3), np.ones(3), np.ones(3), silent=silent)
    usual = as_usual(scored, near)
    assert usual.onset.tolist() == [True, False, False]
    assert not usual.lifted[1]
    assert silent.tolist() == [True, True, False]


def test_an_app_roles_hour_on_its_known_apis_is_no_sweep_new_apis_are() -> None:
    busy = [call(SPIKE + 400 * i, ROLE, USUAL[i % 5]) for i in range(7)]
    assert flagged(app_role() + busy, ROLE) == []  # 60.5 before P31
    sweep = [call(SPIKE + 400 * i, ROLE, OTHER[i % 5]) for i in range(7)]
    (row,) = flagged(app_role() + sweep, ROLE)
    assert (row["_time"] - T0) // HOUR == SPIKE_HOUR
    assert "first failures on" in row["reason"]


def test_a_near_silent_persons_retried_command_is_held_down_as_an_onset() -> None:
    retried = [event(SPIKE + 1000 + i, JUDY, "DescribeInstances") for i in range(15)]
    assert flagged(worker() + retried, JUDY) == []  # 60.7 before P31 (expected 2)
    many = [event(SPIKE + 1000 + i, JUDY, "DescribeInstances") for i in range(35)]
    (row,) = flagged(worker() + many, JUDY)
    assert row["score"] >= 50
    assert "no failures before" not in row["reason"]  # she had: the hold-down is P31's
    sweep = [call(SPIKE + 1000 + 30 * i, JUDY, OTHER[i % 5]) for i in range(12)]
    assert len(flagged(worker() + sweep, JUDY)) == 1
