"""Several principals failing on one event source within the same minutes in a quiet account
(iamspike.minutes, rule P39): the raw events' minutes and the count rows' masks give one answer."""

from __future__ import annotations

import numpy as np
from iamspike.counting import COUNTS_FIELD
from iamspike.engine import Detector, parse_options, run
from iamspike.minutes import find, flagged
from test_countrows import mapped, mapped_cells, table
from test_repeaters import quiet_account
from test_spread import HOUR, SPIKE_HOUR, T0, account_hours, alert_from_state, on

SPIKE = T0 + SPIKE_HOUR * HOUR  # 14:00 on the eleventh day
CLAUSE = "3 of its principals failed on ec2.amazonaws.com within 10 minutes."


def test_find_counts_actors_on_one_source_in_two_slots_ending_in_the_bin() -> None:
    # principals: 0-1 one SSO role's sessions (actor 0), 2-4 users (actors 1-3), 5 a service
    # principal (actor 4, group 1 = n_accounts: left out); one account; sources 0 and 1.
    p_actor = np.array([0, 0, 1, 2, 3, 4])
    a_group = np.array([0, 0, 0, 0, 1])
    late, first = 1 << 11, 1  # the bin's last slot (:55-:59), its first (:00-:04)
    items = (  # bin, principal, slot mask, source id
        np.array([0, 0, 0, 1, 1, 1, 1, 1]),
        np.array([0, 2, 5, 1, 3, 4, 5, 2]),
        np.array([late, late, late, first, first, first | 1 << 6, first, 1 << 6]),
        np.array([0, 0, 0, 0, 0, 1, 0, 0]),
    )
    found = find(items, p_actor, a_group, 1, 2, ["ec2", "s3"])
    # bin 0: the role and user 2 at :55 (the service principal left out); bin 1 with the bin
    # before: the role (twice, one actor), user 2 at 0:55, user 3 at 1:00 -> 3 on ec2 in :55-:04;
    # user 4 on s3 is another source; user 2's 1:30 is in no window with the others.
    assert (
        found.cell.tolist() == [0, 1] and found.actors.tolist() == [2, 3] and found.source == ["ec2", "ec2"]
    )
    cells = (np.array([0, 1]), np.array([0, 0]))
    assert flagged(found, *cells, 1, np.array([2.0, 2.0]), 5).tolist() == [False, True]
    assert flagged(found, *cells, 1, np.array([2.0, 5.0]), 5).tolist() == [False, False]  # not quiet
    # user 3 at 1:25 instead: in no window with the others (2 actors in each bin)
    alone = find(
        (*items[:2], np.where(items[1] == 3, 1 << 5, items[2]), items[3]), p_actor, a_group, 1, 2, ["a", "b"]
    )
    assert alone.actors.tolist() == [2, 2]


def three(at: list[int], sources: tuple[str, ...] = ("ec2",) * 3) -> list[dict]:
    """Three of the quiet account's people denied once each, at ``at`` seconds after 14:00."""
    return [
        {**on(SPIKE + t, f"staff{3 + 4 * k}", source), "eventID": f"spread-{k}"}
        for k, (t, source) in enumerate(zip(at, sources))
    ]


def with_background(records: list[dict]) -> list[dict]:
    return sorted(quiet_account() + records, key=lambda r: r["eventTime"])


def test_three_people_denied_once_across_the_hour_flag_a_quiet_account_from_events_and_count_rows() -> None:
    """Three of the quiet account's people denied once each on EC2 at 13:57, 14:01 and 14:03: 2
    failures at 13:00 and 2 at 14:00 with the background, under ``min_failures`` (5) and the
    other rules (the account usually holds about 2.5 an hour). Rule P39 flags 14:00 at the
    threshold; the alert from saved state returns the rows of one pass, with the live day as raw
    events or as count rows, and so do count rows of two indexers that each hold part of a cell
    (their masks OR-merged, in either order, also where a re-sent event makes the search head
    read the cell entry by entry)."""
    spread = [*three([-180, 60, 180]), {**on(SPIKE + 1800, "staff7", "ec2"), "eventID": "late"}]  # at 14:30
    records = with_background(spread)
    one_pass = run(records)
    (row,) = one_pass
    assert (row["_time"] - T0) // HOUR == SPIKE_HOUR and row["score"] == 50.0
    assert row["reason"].endswith(CLAUSE)
    live_from = T0 + 10 * 24 * HOUR
    assert alert_from_state(records, live_from) == one_pass
    assert alert_from_state(records, live_from, mapped=True) == one_pass
    everything = run(records, parse_options(["show=all"]))
    late, resent = spread[-1], spread[1]  # staff7 at 14:30; its 14:01 sent to both indexers
    others = [r for r in records if r is not late]
    for parts in ([others, [late]], [[late], others], [others, [late, resent]], [[resent, late], others]):
        detector = Detector(parse_options(["show=all"]))
        detector.add_rows(*table(mapped(parts)))
        assert detector.results() == everything


def test_three_people_an_hour_apart_or_on_three_sources_leave_it_alone() -> None:
    assert account_hours(run(with_background(three([60, 1500, 3000])))) == []
    assert account_hours(run(with_background(three([60, 90, 120], ("ec2", "s3", "iam"))))) == []
    assert account_hours(run(with_background(three([60, 90, 120])))) == [SPIKE_HOUR]


def test_count_rows_written_without_masks_still_read_and_the_rule_has_no_minutes() -> None:
    """v3 rows as an indexer before the masks group wrote them (three profile groups): every row
    reads, the principals' rows are those of one pass, and the account's hour has no minutes to
    flag."""
    records = with_background(three([-180, 60, 180]))
    rows = mapped_cells([records])
    for row in rows:
        text = str(row[COUNTS_FIELD])
        if row["failures"]:
            fields = text.split(";")
            fields[3] = "^".join(fields[3].split("^")[:3])
            row[COUNTS_FIELD] = ";".join(fields)
    detector = Detector(parse_options(["show=all"]))
    detector.add_rows(*table(rows))
    got = detector.results()
    assert not detector.tally.skipped
    everything = run(records, parse_options(["show=all"]))
    assert [r for r in got if r["entity_type"] == "principal"] == [
        r for r in everything if r["entity_type"] == "principal"
    ]
    assert [r["_time"] for r in got if r["is_spike"]] == []
    assert [(r["_time"] - T0) // HOUR for r in everything if r["is_spike"]] == [SPIKE_HOUR]
