"""Principals failing for the first time together in an account (iamspike.newcomers, P38)."""

from __future__ import annotations

import numpy as np
from iamspike.engine import run
from iamspike.newcomers import MIN_NEWCOMERS, NEVER, find, first_seen, flagged
from test_repeaters import assert_alert_from_state_is_one_pass, quiet_account
from test_spread import HOUR, SPIKE_HOUR, T0, account_hours, event, on


def poller(days: int = 11) -> list[dict]:
    """A poller role denied 12 times every hour: with it the quiet account of test_repeaters is a
    busy one (its usual hour about 14.5 failures, so P35 is off)."""
    role = "arn:aws:iam::111122223333:role/poller"
    return [
        event(T0 + h * HOUR + 240 * i + 60, role, "GetQueueAttributes", "AccessDenied")
        for h in range(days * 24)
        for i in range(12)
    ]


def arrivals(names: list[str], hour: int = SPIKE_HOUR) -> list[dict]:
    """``names`` denied once each on S3 within two minutes of ``hour``."""
    start = T0 + hour * HOUR + 1500
    return [on(start + 30 * k, name, "s3", "GetObject") for k, name in enumerate(names)]


def records_with(spread: list[dict]) -> list[dict]:
    return sorted(quiet_account() + poller() + spread, key=lambda r: r["eventTime"])


def test_three_principals_failing_for_the_first_time_flag_a_busy_account() -> None:
    """Three principals new to a busy account denied once each within minutes: 3 failures more in
    an hour of about 15, 3 failing principals more; the other rules stay far below the threshold.
    Rule P38 flags the account at the threshold, no principal."""
    rows = run(records_with(arrivals(["new0", "new1", "new2"])))
    assert account_hours(rows) == [SPIKE_HOUR]
    assert not [r for r in rows if r["entity_type"] == "principal"]
    (row,) = rows
    assert row["score"] == 50.0
    assert "3 of its principals failed for the first time, in the same hour" in row["reason"]


def test_two_newcomers_existing_people_and_an_accounts_first_days_raise_no_alert() -> None:
    """Two principals new to the account are no spread (``MIN_NEWCOMERS``); three of its own
    people denied once each are its background; on the account's first three days every
    principal is new (the rule is off); the account's eleven days alone raise no account alert."""
    assert account_hours(run(records_with(arrivals(["new0", "new1"])))) == []
    assert account_hours(run(records_with(arrivals(["staff3", "staff7", "staff11"])))) == []
    assert account_hours(run(records_with(arrivals(["new0", "new1", "new2"], hour=50)))) == []
    assert account_hours(run(records_with([]))) == []


def test_the_alert_from_saved_state_and_count_rows_flags_the_newcomers_as_one_pass() -> None:
    """The rule keeps nothing in state: the principals' first failures come from their own saved
    rows, the account's watch from its row. The alert over the last day, from the first ten
    saved, returns one pass's rows, with the live day as raw events or as count rows."""
    assert_alert_from_state_is_one_pass(records_with(arrivals(["new0", "new1", "new2"])))


def test_find_counts_principals_first_failing_in_a_watched_account() -> None:
    # principals 0-3 of account 0, 4 of account 1, 5 an AWS service principal (group 2 = n_accounts);
    # bins are absolute, the matrices start at bin 100, history 3 bins
    seen = first_seen(np.array([100, 110, 110, 112, 110, 110, 110]), np.array([0, 1, 2, 3, 4, 5, 0]), 6)
    assert seen.tolist() == [100, 110, 110, 112, 110, 110]
    eligible = np.array([True, True, True, True, True, True])
    group = np.array([0, 0, 0, 0, 1, 2])
    since = np.array([NEVER, NEVER])
    found = find(seen, eligible, group, since, 100, 20, 3)
    # account 0: principals 1 and 2 at offset 10, 3 at offset 12; account 1's first failure is its
    # principal 4's own (not watched 3 bins before): none; the service principal is left out
    assert found.cell.tolist() == [10 * 2 + 0, 12 * 2 + 0] and found.principals.tolist() == [2, 1]
    # an account row watching account 1 since bin 90: principal 4 counts
    watched = find(seen, eligible, group, np.array([NEVER, 90]), 100, 20, 3)
    assert watched.cell.tolist() == [20, 21, 24] and watched.principals.tolist() == [2, 1, 1]
    # a third newcomer at offset 10 reaches MIN_NEWCOMERS; an ineligible one (an SSO session) not
    seen3 = np.append(seen, 110)
    group3, since3 = np.append(group, 0), since
    three = find(seen3, np.append(eligible, True), group3, since3, 100, 20, 3)
    assert flagged(three, np.array([10]), np.array([0]), 2).tolist() == [MIN_NEWCOMERS == 3]
    ineligible = find(seen3, np.append(eligible, False), group3, since3, 100, 20, 3)
    assert flagged(ineligible, np.array([10]), np.array([0]), 2).tolist() == [False]


def daily_batch(days: int = 11, hour: int = SPIKE_HOUR % 24) -> list[dict]:
    """A batch role denied 40 times within 20 minutes of ``hour`` every day: at that hour it makes
    over 80 % of its account's failures (the one-actor cap's share)."""
    role = "arn:aws:iam::111122223333:role/nightly-etl"
    return [
        event(T0 + (d * 24 + hour) * HOUR + 30 * i + 15, role, "GetObject", "AccessDenied")
        for d in range(days)
        for i in range(40)
    ]


def test_newcomers_in_the_hour_of_a_batch_flag_the_account_the_batch_does_not_make() -> None:
    """Three principals new to the quiet account denied once each in the hour of its daily batch
    (40 denials of one role: 93 % of the hour's failures). P38 flags the cell; the one-actor cap
    (an account cell one actor makes is that actor's alert) would lower it to the batch role's
    score, but the cell is not the batch's: several principals failed for the first time (P47).
    The batch's other hours flag nothing; saved state and count rows give one pass's rows."""
    records = sorted(
        quiet_account() + daily_batch() + arrivals(["new0", "new1", "new2"]), key=lambda r: r["eventTime"]
    )
    rows = run(records)
    assert account_hours(rows) == [SPIKE_HOUR]
    assert not [r for r in rows if r["entity_type"] == "principal"]
    (row,) = rows
    assert row["score"] == 50.0
    assert "3 of its principals failed for the first time, in the same hour" in row["reason"]
    assert "scored as that principal" not in row["reason"]
    assert_alert_from_state_is_one_pass(records)
    # the batch's hours alone, and two newcomers in it, raise no account alert
    assert account_hours(run(sorted(quiet_account() + daily_batch(), key=lambda r: r["eventTime"]))) == []
    two = sorted(quiet_account() + daily_batch() + arrivals(["new0", "new1"]), key=lambda r: r["eventTime"])
    assert account_hours(run(two)) == []
