"""Quiet principals failing repeatedly on one service in a quiet hour (iamspike.repeaters, P35)."""

from __future__ import annotations

import random

import numpy as np
from iamspike.engine import parse_options, run
from iamspike.repeaters import MIN_REPEATERS, find, flagged
from test_spread import HOUR, SPIKE_HOUR, T0, account_hours, alert_from_state, on

STAFF = [f"staff{i}" for i in range(16)]


def quiet_account(days: int = 11) -> list[dict]:
    """A quiet account: every hour one to three of its sixteen people are denied, each once (now
    and then twice), half of them on EC2 (its usual hour about 2.5 failures), successes every
    hour."""
    rng = random.Random(5)
    out = []
    for h in range(days * 24):
        start = T0 + h * HOUR
        for i, name in enumerate(rng.sample(STAFF, rng.choice([1, 1, 2, 2, 3, 3]))):
            source = rng.choice(["ec2", "ec2", "s3", "iam"])
            out += [on(start + 600 * i + 120 + 7 * j, name, source) for j in range(rng.choice([1, 1, 1, 2]))]
        out.append(on(start + 30, "staff0", "s3", "ListBuckets") | {"errorCode": ""})
    return out


def spread(people: int, each: int) -> list[dict]:
    """``people`` principals new to the account denied ``each`` times on EC2 within 3 minutes of
    the spike hour."""
    spike = T0 + SPIKE_HOUR * HOUR + 1500
    apis = ["DescribeInstances", "DescribeVpcs", "DescribeSnapshots"]
    return [
        on(spike + 40 * k + 5 * i, f"new{k}", "ec2", apis[i % 3]) for k in range(people) for i in range(each)
    ]


def records_with(people: int, each: int) -> list[dict]:
    return sorted(quiet_account() + spread(people, each), key=lambda r: r["eventTime"])


def test_three_quiet_principals_denied_twice_on_one_service_flag_a_quiet_account() -> None:
    """Three people new to the quiet account denied twice each on EC2 within minutes: 7 failures
    against 2.5, its other rules score 34.5 (the spread under its gate); rule P35 flags it at the
    threshold. No principal is flagged (each is two denials from silence)."""
    rows = run(records_with(3, 2))
    assert account_hours(rows) == [SPIKE_HOUR]
    assert not [r for r in rows if r["entity_type"] == "principal"]
    (row,) = rows
    assert row["score"] == 50.0
    assert (
        "3 of its principals that seldom fail each failed 2 times or more on ec2.amazonaws.com,"
        " in an hour that usually holds" in row["reason"]
    )


def test_single_denials_of_three_are_rule_p39s_and_double_ones_of_two_leave_the_quiet_account_alone() -> None:
    """Three people denied once each are no repeaters (12.6 by the other rules): they failed on
    EC2 within 2 minutes, which rule P39 flags at the threshold below ``min_failures`` (4
    failures), and the reason says so (not P38's newcomers, whose floor is ``min_failures``).
    Two people denied three or two times each are no spread (``MIN_REPEATERS``; 34.5, 19.7). The
    account's eleven days alone raise no account alert."""
    (row,) = run(records_with(3, 1))
    assert (row["_time"] - T0) // HOUR == SPIKE_HOUR and row["score"] == 50.0
    assert row["reason"].endswith("3 of its principals failed on ec2.amazonaws.com within 10 minutes.")
    assert "seldom fail each" not in row["reason"] and "for the first time" not in row["reason"]
    assert account_hours(run(records_with(2, 3))) == []
    assert account_hours(run(records_with(2, 2))) == []
    assert account_hours(run(sorted(quiet_account(), key=lambda r: r["eventTime"]))) == []


def test_the_rule_is_off_above_min_failures_expected() -> None:
    """In an account whose hour is expected to hold ``min_failures`` or more, the same repeaters
    are judged by the other rules alone: with min_failures 2 the quiet account's expected (about
    2) is no longer below it. (Its three people are new to the account: rule P38 flags the hour
    at the threshold instead, newcomers.py.)"""
    options = parse_options(["min_failures=2", "show=all"])
    cell = [
        r
        for r in run(records_with(3, 2), options)
        if r["entity_type"] == "account" and (r["_time"] - T0) // HOUR == SPIKE_HOUR
    ]
    assert cell and "seldom fail each" not in cell[0]["reason"]
    assert "failed for the first time" in cell[0]["reason"]


def test_the_alert_from_saved_state_and_count_rows_flags_the_repeaters_as_one_pass() -> None:
    """The rule keeps nothing in state: the principals' silence comes from their own rows, the
    account's expected from its row, the live hour's sources and counts from raw events or from
    count rows. The alert over the last day, from the first ten saved, returns one pass's rows."""
    assert_alert_from_state_is_one_pass(records_with(3, 2))


def assert_alert_from_state_is_one_pass(records: list[dict]) -> None:
    """One pass flags the account in the spike hour alone, and the alert over the last day (the
    first ten saved as state; the live day as raw events, then as count rows) returns its rows."""
    one_pass = run(records)
    assert account_hours(one_pass) == [SPIKE_HOUR]
    live_from = T0 + 10 * 24 * HOUR
    assert alert_from_state(records, live_from) == one_pass
    assert alert_from_state(records, live_from, mapped=True) == one_pass


def test_find_counts_silent_actors_failing_twice_per_source() -> None:
    # principals: 0-1 one SSO role's sessions (actor 0), 2-4 users (actors 1-3), 5 a service
    # principal (actor 4, group 1 = n_accounts); one account, one bin; sources 0 (ec2), 1 (s3)
    p_actor = np.array([0, 0, 1, 2, 3, 4])
    p_group = np.array([0, 0, 0, 0, 0, 1])
    counts = np.array([[1, 1, 2, 3, 5, 9]], dtype=np.float32)
    silent = np.array([[True, True, True, True, False, True]])
    items = (np.zeros(7, dtype=np.int64), np.array([0, 1, 2, 3, 4, 5, 3]), np.array([0, 0, 0, 0, 0, 0, 1]))
    found = find(items, ["ec2", "s3"], counts, silent, p_actor, p_group, 1)
    # on ec2: the SSO role (1 + 1), users 2 and 3; not user 4 (not silent) nor the service principal
    assert found.cell.tolist() == [0] and found.actors.tolist() == [3] and found.source == ["ec2"]
    assert flagged(found, np.array([0]), np.array([0]), 1, np.array([2.0]), 5).tolist() == [True]
    assert flagged(found, np.array([0]), np.array([0]), 1, np.array([5.0]), 5).tolist() == [False]
    # one failure less for user 3: two repeaters, below MIN_REPEATERS
    counts[0, 3] = 1
    fewer = find(items, ["ec2", "s3"], counts, silent, p_actor, p_group, 1)
    assert fewer.actors.tolist() == [MIN_REPEATERS - 1]
    assert flagged(fewer, np.array([0]), np.array([0]), 1, np.array([2.0]), 5).tolist() == [False]
