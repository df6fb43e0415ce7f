"""Spreads across the turn of an hour (iamspike.straddle, rule P34): a bin with the one before."""

from __future__ import annotations

import numpy as np
from iamspike.engine import parse_options, run
from iamspike.straddle import pair_series
from test_spread import (
    EC2,
    HOUR,
    SPIKE_HOUR,
    T0,
    account_hours,
    alert_from_state,
    busy_account,
    event,
    quiet_account,
    user,
)

# ------------------------------------------------------------------------------ the pairs


def test_pairs_count_each_actor_once_over_the_bin_and_the_one_before() -> None:
    # principals 0-1: one SSO role's sessions (actor 0); 2, 3: users (actors 1, 2); 4: an AWS
    # service principal (actor 3, group 1 = n_accounts, left out). Bin 0 is saved state only.
    p_actor = np.array([0, 0, 1, 2, 3])
    a_group = np.array([0, 0, 0, 1])
    acc_counts = np.array([[9], [2], [3], [1]], dtype=np.float32)
    acc_apis = np.array([[9], [2], [2], [1]], dtype=np.float32)
    items = (  # bin, principal, event source id (-1: unknown)
        np.array([0, 1, 1, 2, 2, 2, 2, 3]),
        np.array([2, 0, 2, 1, 3, 3, 4, 1]),
        np.array([0, 0, 0, 0, 0, 1, 0, -1]),
    )
    pairs = pair_series(acc_counts, acc_apis, items, p_actor, a_group, live_from=1)
    # bin 1: no pair (bin 0 is not live); bin 2: bins 1-2; bin 3: bins 2-3
    assert pairs.failures[:, 0].tolist() == [0, 0, 5, 4]
    assert pairs.apis[:, 0].tolist() == [0, 0, 4, 3]
    # bins 1-2: the role (both bins, once), users 2 and 3; bins 2-3: the role and user 3
    assert pairs.actors[:, 0].tolist() == [0, 0, 3, 2]
    # on source 0: over bins 1-2 the role, users 2 and 3; over bins 2-3 the role and user 3
    assert pairs.same[:, 0].tolist() == [0, 0, 3, 2]


# --------------------------------------------------------------------------- in the engine

ACROSS = T0 + SPIKE_HOUR * HOUR  # 14:00 on the eleventh day


def across_the_hour(names: list[str], before: int, each: int = 1) -> list[dict]:
    """``names`` denied ``each`` times within ten minutes across 14:00: the first ``before`` of
    them at 13:55-13:59, the others at 14:01-14:05."""
    out = []
    for k, name in enumerate(names):
        at = ACROSS - 300 + 60 * k if k < before else ACROSS + 60 + 60 * (k - before)
        out += [event(at + i, user(name), EC2[(k + i) % 2]) for i in range(each)]
    return out


FIVE = ["amy", "bob", "cat", "dan", "eve"]


def test_a_spread_across_the_turn_of_an_hour_flags_the_later_hour_once() -> None:
    """Five people denied once each at 13:55-14:02 in a near-silent account: 3 failures at 13:00
    and 2 at 14:00, each hour under min_failures (5), neither flagged without the rule; over the
    two hours they are 5 failures of 5 principals against about 0.4 of each. The account row is
    at 14:00, once, and says which hours the spread crossed."""
    records = sorted(quiet_account(11) + across_the_hour(FIVE, 3), key=lambda r: r["eventTime"])
    rows = run(records)
    assert account_hours(rows) == [SPIKE_HOUR]
    assert not [r for r in rows if r["entity_type"] == "principal"]
    (row,) = rows
    assert row["failures"] == 2 and row["score"] >= 50
    crossed = "the spread crossed the hour (13:00-15:00 UTC): 5 of its principals failed at once"
    assert crossed in row["reason"]
    assert "5 failures in all" in row["reason"]


def test_the_same_spread_inside_one_hour_is_flagged_by_the_hour_alone() -> None:
    inside = [event(ACROSS + 300 + 60 * k, user(n), EC2[k % 2]) for k, n in enumerate(FIVE)]
    (row,) = run(sorted(quiet_account(11) + inside, key=lambda r: r["eventTime"]))
    assert (row["_time"] - T0) // HOUR == SPIKE_HOUR and row["failures"] == 5
    assert "crossed the hour" not in row["reason"]


def test_a_spread_across_the_hour_is_flagged_from_count_rows_and_saved_state_as_by_one_pass() -> None:
    """The pair needs who failed in both bins: the live rows have it, as raw events or as count
    rows of the map phase; the alert that reads the first ten days as saved state (no new field:
    the pair's baselines are the bins' own) returns the one pass's rows. Live from 14:00 the bin
    before is saved state only: no pair, no alert."""
    records = sorted(quiet_account(11) + across_the_hour(FIVE, 3), key=lambda r: r["eventTime"])
    one_pass = run(records)
    assert account_hours(one_pass) == [SPIKE_HOUR]
    live_from = T0 + 10 * 24 * HOUR
    assert alert_from_state(records, live_from) == one_pass
    assert alert_from_state(records, live_from, mapped=True) == one_pass
    assert account_hours(alert_from_state(records, ACROSS)) == []


def test_one_persons_burst_across_the_hour_is_no_spread() -> None:
    """Judy denied 8 times across 14:00, two others once each: 3 principals over the two hours,
    but 80 % of the failures are one actor's, which the principal's own rows judge."""
    burst = across_the_hour(["judy"], 1, each=4) + across_the_hour(["judy"], 0, each=4)
    burst += across_the_hour(["x", "amy", "bob"], 2)[1:]
    records = sorted(quiet_account(11) + burst, key=lambda r: r["eventTime"])
    everything = run(records, parse_options(["show=all"]))
    assert not [r for r in everything if r["entity_type"] == "account" and "crossed the hour" in r["reason"]]
    assert account_hours(run(records)) == []


def test_hours_where_people_fail_each_on_their_own_service_stay_quiet() -> None:
    """The busy account's office hours: two or three people denied once or twice every hour, each
    on a service of their own, so each of its 88 pairs of office hours holds 3-6 failing
    principals and 5-11 failures, the pair's floors (min_actors, min_failures) reached: none is
    flagged (their own hours are not either)."""
    records = sorted(busy_account(), key=lambda r: r["eventTime"])
    assert account_hours(run(records)) == []
