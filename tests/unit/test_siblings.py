"""Rule P46 (siblings.py, flags.py): a role sweeping what the same role (by name) swept in another
account is held below the threshold, and left out of its account's count: a security tool's first
run is flagged in one account, not in every account; its run in an onboarded account (a role
never seen) and each account's run after an upgrade but the first are held. Not a discovery by a
role named like a tool's on APIs no sibling walked, not a run twice the size of the siblings', never
a person (docs/engine.md, P46). The hourly alert reads the siblings from their saved state rows and
holds the follower as one pass does."""

from __future__ import annotations

import json

import numpy as np
from iamspike.engine import parse_options, run
from iamspike.siblings import followed, pairs, roles
from test_reruns import CATALOG, FIRST, RUN_HOUR, alert, records, sweep
from test_spread import ACCT, HOUR, T0, user

OTHER, THIRD = "222233334444", "333344445555"  # accounts sorting after ACCT
ROLE = "cspm-scanner"


def scanner(acct: str = ACCT) -> str:
    return f"arn:aws:iam::{acct}:role/{ROLE}"


def elsewhere(events: list[dict], acct: str) -> list[dict]:
    """The events as if made in account ``acct`` (ACCT replaced in every field)."""
    return [json.loads(json.dumps(e).replace(ACCT, acct)) for e in events]


def org(runs: dict[str, list[list[dict]]]) -> list[dict]:
    """Each account (a quiet account of its own) with its runs of the scanner's role."""
    out = []
    for acct, its in runs.items():
        out += elsewhere(records(*its), acct)
    return sorted(out, key=lambda r: r["eventTime"])


def flagged_cells(rows: list[dict], principal_role: str = ROLE) -> list[tuple[str, int]]:
    """(account, hour from T0) of the flagged rows of roles named ``principal_role``."""
    return sorted(
        (r["account"], (r["_time"] - T0) // HOUR)
        for r in rows
        if r["principal"].endswith(f":role/{principal_role}")
    )


def accounts_flagged(rows: list[dict]) -> list[tuple[str, int]]:
    return sorted((r["account"], (r["_time"] - T0) // HOUR) for r in rows if r["principal"] == "")


FIRST_RUN = 24 + RUN_HOUR  # day 1, 03:00
LATER = 8 * 24 + RUN_HOUR  # day 8, 03:00


def test_roles_groups_a_role_name_found_in_two_accounts() -> None:
    principals = {
        (ACCT, scanner()): 0,
        (OTHER, scanner(OTHER)): 1,
        (ACCT, f"arn:aws:iam::{ACCT}:role/orders-app"): 2,  # one account only
        (ACCT, user("eve")): 3,
        (OTHER, f"arn:aws:iam::{OTHER}:user/eve"): 4,  # people are never siblings
        (OTHER, "ec2.amazonaws.com"): 5,
    }
    group, rank = roles(principals)
    assert group[0] == group[1] >= 0 and group[2:].tolist() == [-1, -1, -1, -1]
    assert rank.tolist() == [0, 1, 0, 0, 1, 1]


def test_followed_needs_a_sibling_bin_as_large_as_broad_and_its_new_apis_known() -> None:
    principals = {(ACCT, scanner()): 0, (OTHER, scanner(OTHER)): 1, (THIRD, scanner(THIRD)): 2}
    counts = np.zeros((10, 3))
    apis = np.zeros((10, 3))
    counts[5], apis[5] = [60, 60, 60], [30, 30, 30]
    counts[7, 2], apis[7, 2] = 80, 30  # more than 1.25 x 60
    api = np.arange(30)
    first_fail = (
        np.repeat([0, 1, 2], 30),
        np.tile(api, 3),
        np.concatenate([np.full(30, 5), np.full(30, 5), np.where(api < 26, 5, 7)]),
    )
    t_idx, e_idx = np.array([5, 5, 5, 7]), np.array([0, 1, 2, 2])
    eligible = np.ones(4, dtype=bool)
    who, when = followed(counts, apis, t_idx, e_idx, eligible, first_fail, 0, principals, HOUR)
    # the first account in the bin is judged on its own; the others follow the first account of
    # the latest bin that matches; 80 is more than 1.25 x 60
    assert who.tolist() == [-1, 0, 0, -1] and when.tolist() == [-1, 5, 5, -1]
    counts[7, 2] = 70  # within 1.25 x 60: follows, its 4 new APIs (26-29) known to siblings
    who, when = followed(counts, apis, t_idx[3:], e_idx[3:], eligible[3:], first_fail, 0, principals, HOUR)
    assert who.tolist() == [0] and when.tolist() == [5]
    unknown = (first_fail[0], np.where(first_fail[0] == 2, first_fail[1] + 100, first_fail[1]), first_fail[2])
    who, _ = followed(counts, apis, t_idx[3:], e_idx[3:], eligible[3:], unknown, 0, principals, HOUR)
    assert who.tolist() == [-1]  # 4 APIs no sibling failed on: more than max(2, 10 % of 30)
    apis[5] = [20, 20, 20]  # 20 is less than 0.7 x 30
    who, _ = followed(counts, apis, t_idx[3:], e_idx[3:], eligible[3:], first_fail, 0, principals, HOUR)
    assert who.tolist() == [-1]
    who, _ = followed(
        counts, apis, t_idx[1:2], e_idx[1:2], np.zeros(1, dtype=bool), first_fail, 0, principals, HOUR
    )
    assert who.tolist() == [-1]  # not eligible


def test_a_tools_first_run_is_flagged_in_one_account_not_in_each() -> None:
    events = org({a: [sweep(1, scanner(), FIRST)] for a in (ACCT, OTHER, THIRD)})
    rows = run(events)
    assert flagged_cells(rows) == [(ACCT, FIRST_RUN)]
    assert accounts_flagged(rows) == [(ACCT, FIRST_RUN)]  # the others' rows: without their role's run
    for row in run(events, parse_options(["show=all"])):
        if row["principal"] == scanner(OTHER) and row["failures"]:
            assert row["score"] == 49.0 and row["is_spike"] == 0
            assert (
                f"the same role in account {ACCT} ran like this in the same hour (60 failures on 30 APIs)"
                in (row["reason"])
            )


def test_an_onboarded_accounts_first_run_is_held_and_so_is_its_account() -> None:
    both = [sweep(1, scanner(), FIRST), sweep(8, scanner(), FIRST[1:])]
    events = org({ACCT: both, OTHER: both, THIRD: [sweep(8, scanner(), FIRST)]})
    rows = run(events)
    assert flagged_cells(rows) == [(ACCT, FIRST_RUN)]
    assert accounts_flagged(rows) == [(ACCT, FIRST_RUN)]


def test_an_upgrade_is_flagged_in_the_first_account_only() -> None:
    upgraded = FIRST + CATALOG[40:50]  # ten new checks, denied
    runs = [sweep(1, scanner(), FIRST), sweep(8, scanner(), upgraded)]
    rows = run(org({a: runs for a in (ACCT, OTHER, THIRD)}))
    assert flagged_cells(rows) == [(ACCT, FIRST_RUN), (ACCT, LATER)]


def test_a_discovery_by_a_role_named_like_a_tools_is_flagged() -> None:
    """The third account's role sweeps 30 APIs no sibling failed on, and a run twice the size of
    its siblings' is no sweep they made."""
    discovery = CATALOG[40:70]
    events = org(
        {
            ACCT: [sweep(1, scanner(), FIRST)],
            OTHER: [sweep(1, scanner(), FIRST)],
            THIRD: [sweep(8, scanner(), discovery)],
        }
    )
    assert flagged_cells(run(events)) == [(ACCT, FIRST_RUN), (THIRD, LATER)]
    events = org({ACCT: [sweep(1, scanner(), FIRST)], THIRD: [sweep(8, scanner(), FIRST, regions=4)]})
    assert flagged_cells(run(events)) == [(ACCT, FIRST_RUN), (THIRD, LATER)]


def test_people_of_one_name_in_two_accounts_are_no_siblings() -> None:
    eve = user("eve")
    events = org({ACCT: [sweep(1, eve, FIRST)], OTHER: [sweep(1, eve, FIRST)]})
    assert flagged_cells(run(events), "eve") == [] and sorted(
        (r["account"], (r["_time"] - T0) // HOUR) for r in run(events) if r["principal"].endswith("user/eve")
    ) == [(ACCT, FIRST_RUN), (OTHER, FIRST_RUN)]


def test_an_hourly_alert_from_saved_state_holds_the_onboarded_run_as_one_pass_does() -> None:
    """The siblings' first runs, 7 days before the alert's hour, and their first failures come
    from their saved state rows; in the alert's hour they re-run (P43) and the third account's
    new role follows them."""
    both = [sweep(1, scanner(), FIRST), sweep(8, scanner(), FIRST[1:])]
    events = org({ACCT: both, OTHER: both, THIRD: [sweep(8, scanner(), FIRST)]})
    cut = T0 + LATER * HOUR
    keep = ("_time", "entity_type", "account", "principal", "failures", "score", "is_spike", "reason")

    def cells(rows):
        return sorted(tuple(str(r[k]) for k in keep) for r in rows if r["_time"] >= cut and r["failures"])

    one_pass = cells(run(events, parse_options(["show=all"])))
    assert any(row[3] == scanner(THIRD) and "the same role in account" in row[-1] for row in one_pass)
    assert cells(alert(events, cut, ["show=all"])) == one_pass
    assert not [r for r in alert(events, cut, []) if r["_time"] >= cut]


def test_pairs_adds_the_bin_before_a_sweep_not_a_streams() -> None:
    counts = np.array([[0, 5], [0, 5], [30, 5], [30, 5], [0, 5]], dtype=float)
    apis = np.array([[0, 2], [0, 2], [20, 2], [25, 2], [0, 2]], dtype=float)
    c, a = pairs(counts, apis, 2, 4, np.array([0, 1]))
    # bins 2-4: the sweep's second bin with its first (silent before); the stream's bins alone
    assert c[:, 0].tolist() == [30, 60, 0] and a[:, 0].tolist() == [20, 25, 0]
    assert c[:, 1].tolist() == [5, 5, 5]
    c, _ = pairs(counts, apis, 0, 1, np.array([0, 1]))  # no bins before the first: silent
    assert c[:, 1].tolist() == [5, 10]


def test_a_sweep_that_began_the_hour_before_in_another_account_leads() -> None:
    """The account sorting second began at 04:00 (40 failures) and went on at 05:00 (30); the
    first account's run, all at 05:00 (60), follows it, though it sorts first."""
    principals = {(ACCT, scanner()): 0, (OTHER, scanner(OTHER)): 1}
    counts, apis = np.zeros((8, 2)), np.zeros((8, 2))
    counts[4:6, 1], apis[4:6, 1] = [40, 30], [25, 20]
    counts[5, 0], apis[5, 0] = 60, 30
    first_fail = (np.repeat([0, 1], 30), np.tile(np.arange(30), 2), np.repeat([5, 4], 30))
    args = (first_fail, 0, principals, HOUR)
    who, when = followed(
        counts, apis, np.array([5, 4, 5]), np.array([0, 1, 1]), np.ones(3, dtype=bool), *args
    )
    # its 04:00 cell leads (judged on its own); at 05:00 each follows the other
    assert who.tolist() == [1, -1, 0] and when.tolist() == [5, -1, 5]
    counts[4, 0] = 5  # the first account's run began at 04:00 too: it leads
    who, _ = followed(counts, apis, np.array([5]), np.array([0]), np.ones(1, dtype=bool), *args)
    assert who.tolist() == [-1]
