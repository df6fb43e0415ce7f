"""Rule P43 (reruns.py, flags.py): a machine's re-run of an earlier broad burst on APIs it knows is
held below the threshold: a weekly scanner's second run; not a discovery on the same role (APIs
new to it), not a run twice as large, not a broad stream's spike at three times its rate, never a
person (docs/engine.md, P43). The hourly alert reads the earlier run from the scanner's saved
state row and holds it as one pass does. Rule P45: an account's count is judged without its
machines' re-runs, so two tools re-running in one hour (neither 80 % of its failures: no one-actor
cap) do not flag their account, from one pass or from saved state."""

from __future__ import annotations

import numpy as np
from iamspike.engine import Detector, parse_options, run
from iamspike.reruns import held
from test_spread import ACCT, HOUR, T0, event, quiet_account, user

SCANNER = f"arn:aws:iam::{ACCT}:role/cspm-scanner"
SOURCES = ["ec2", "iam", "s3", "rds", "lambda", "kms", "sqs", "sns", "logs", "ecs"]
CATALOG = [(f"{s}.amazonaws.com", f"List{s.capitalize()}Things{k}") for k in range(7) for s in SOURCES]
FIRST = CATALOG[:30]  # the first run's 30 denied checks
AGAIN = CATALOG[3:33]  # a week later: 27 of them and 3 checks the first run skipped
RUN_HOUR = 3  # runs at 03:00
SECOND = (8 * 24 + RUN_HOUR) * HOUR  # the second run's hour (from T0)
INVENTORY = f"arn:aws:iam::{ACCT}:role/asset-inventory"  # a second tool, in the same hour
ITS_APIS = CATALOG[40:60]  # its 20 denied checks (40 failures a run: 40 % of the hour's)


def sweep(day: int, arn: str, apis, regions: int = 2) -> list[dict]:
    """A scan at 03:00 of ``day``: each API denied once in each region."""
    start = T0 + day * 24 * HOUR + RUN_HOUR * HOUR + 60
    return [
        dict(event(start + 20 * i + r, arn, name, "AccessDenied"), eventSource=source)
        for i, (source, name) in enumerate(apis)
        for r in range(regions)
    ]


def records(*runs: list[dict]) -> list[dict]:
    """The runs in a quiet account (a nightly batch role, a person denied now and then)."""
    return sorted(quiet_account(10) + [r for one in runs for r in one], key=lambda r: r["eventTime"])


def rows_of(rows: list[dict], principal: str, at: int) -> list[dict]:
    return [r for r in rows if r["_time"] == T0 + at and r["principal"] == principal]


def hours_flagged(rows: list[dict], principal: str) -> list[int]:
    return [(r["_time"] - T0) // HOUR for r in rows if r["principal"] == principal]


def test_held_finds_the_latest_earlier_bin_as_large_and_as_broad() -> None:
    counts = np.zeros((400, 1))
    apis = np.zeros((400, 1))
    counts[[5, 100, 200, 250, 380], 0] = [60, 50, 60, 60, 60]
    apis[[5, 100, 200, 250, 380], 0] = [30, 25, 30, 30, 30]
    t_idx = np.array([200, 200, 200, 200, 250, 380])
    e_idx = np.zeros(6, dtype=np.int64)
    eligible = np.array([True, False, True, True, True, True])
    new_apis = np.array([3.0, 0.0, 4.0, 0.0, 0.0, 0.0])
    out = held(counts, apis, t_idx, e_idx, eligible, new_apis, HOUR)
    # 200: 100 (50 >= 60 / 1.25 on 25 >= 0.7 x 30 APIs), not 5 (more than 8 days back); not
    # eligible; 4 of 30 APIs new (more than 3); 250: 200, the latest; 380: 250 is 130 bins back.
    assert out.tolist() == [100, -1, -1, 100, 200, 250]
    counts[250, 0], apis[250, 0] = 76, 30  # more than 1.25 times 60
    counts[380, 0], apis[380, 0] = 60, 43  # 30 APIs are less than 0.7 x 43
    assert held(counts, apis, t_idx[4:], e_idx[4:], eligible[4:], new_apis[4:], HOUR).tolist() == [-1, -1]
    apis[200, 0] = 4  # a narrow bin is no broad burst
    assert held(counts, apis, t_idx[3:4], e_idx[3:4], eligible[3:4], new_apis[3:4], HOUR).tolist() == [-1]


def test_a_weekly_scanners_second_run_is_held_its_first_flagged() -> None:
    both = records(sweep(1, SCANNER, FIRST), sweep(8, SCANNER, AGAIN))
    rows = run(both)
    assert hours_flagged(rows, SCANNER) == [24 + RUN_HOUR]  # the first run only (the second: 99.9)
    assert not rows_of(rows, "", SECOND)  # nor its account (one actor)
    (row,) = rows_of(run(both, parse_options(["show=all"])), SCANNER, SECOND)
    assert row["is_spike"] == 0 and row["score"] == 49.0
    assert "it ran like this 7d before (60 failures on 30 APIs): a re-run on APIs it knows" in row["reason"]
    assert "it had no failures before" not in row["reason"]


def test_a_run_twice_as_large_is_flagged() -> None:
    rows = run(records(sweep(1, SCANNER, FIRST), sweep(8, SCANNER, AGAIN, regions=4)))
    assert hours_flagged(rows, SCANNER) == [24 + RUN_HOUR, SECOND // HOUR]


def test_a_discovery_on_the_scanners_role_with_mostly_new_apis_is_flagged() -> None:
    discovery = FIRST[:8] + CATALOG[40:62]  # 22 of its 30 APIs new to the role
    rows = run(records(sweep(1, SCANNER, FIRST), sweep(8, SCANNER, discovery)))
    assert hours_flagged(rows, SCANNER) == [24 + RUN_HOUR, SECOND // HOUR]
    (row,) = rows_of(rows, SCANNER, SECOND)
    assert "first failures on" in row["reason"] and "ran like this" not in row["reason"]


def test_a_persons_second_sweep_is_never_held_as_a_rerun() -> None:
    eve = user("eve")
    rows = run(records(sweep(1, eve, FIRST), sweep(8, eve, AGAIN)))
    assert hours_flagged(rows, eve) == [24 + RUN_HOUR, SECOND // HOUR]
    (row,) = rows_of(rows, eve, SECOND)
    assert "ran like this" not in row["reason"]


def alert(events: list[dict], cut: int, options: list[str]) -> list[dict]:
    """An alert over the events from ``cut`` on, continuing from the state rows (``show=state``)
    that a run over the events before saved: what the shipped hourly alert reads."""
    early = [e for e in events if e["eventTime"] < cut]
    saved = run(early, parse_options(["show=state"]))
    header = sorted({key for row in saved for key in row})
    detector = Detector(parse_options(options))
    detector.add_rows(header, [[str(row.get(key, "")) for key in header] for row in saved])
    detector.add_records(events[len(early) :])
    return detector.results()


def test_an_hourly_alert_from_saved_state_holds_the_rerun_as_one_pass_does() -> None:
    """The first run is 7 days before the alert's hour: its count and its 30 distinct APIs, and
    the role's first failures (novelty, its watch), come from the scanner's saved state row only."""
    both = records(sweep(1, SCANNER, FIRST), sweep(8, SCANNER, AGAIN))
    cut = T0 + SECOND
    keep = ("_time", "entity_type", "account", "principal", "failures", "score", "is_spike", "reason")

    def cells(rows):
        return sorted(tuple(str(r[k]) for k in keep) for r in rows if r["_time"] >= cut and r["failures"])

    one_pass = cells(run(both, parse_options(["show=all"])))
    assert any("it ran like this 7d before (60 failures on 30 APIs)" in row[-1] for row in one_pass)
    assert cells(alert(both, cut, ["show=all"])) == one_pass
    assert not [r for r in alert(both, cut, []) if r["_time"] >= cut]  # no alert in its hour
    discovery = records(sweep(1, SCANNER, FIRST), sweep(8, SCANNER, FIRST[:8] + CATALOG[40:62]))
    assert hours_flagged(alert(discovery, cut, []), SCANNER) == [SECOND // HOUR]


def test_a_broad_streams_spike_above_its_highest_hours_is_flagged() -> None:
    """A role denied about 10 times an hour on 6 APIs for 9 days (its highest hour 21), then 30 on
    the same APIs (x3): P32/P36 flag it (52.9). Held at FACTOR 1.5 (21 x 1.5 >= 30), not at 1.25."""
    rng = np.random.default_rng(0)
    counts = rng.poisson(10, 10 * 24)
    spike = 9 * 24 + 14
    counts[spike] = 30
    apis = [f"Describe{name}" for name in ("Instances", "Volumes", "Vpcs", "Subnets", "Images", "Snapshots")]
    poller = f"arn:aws:iam::{ACCT}:role/poller"
    stream = [
        event(T0 + h * HOUR + 60 + 30 * k, poller, apis[k % 6], "AccessDenied")
        for h, n in enumerate(counts.tolist())
        for k in range(n)
    ]
    assert counts[:spike].max() == 21
    assert hours_flagged(run(stream), poller) == [spike]


def two_tools(second_regions: int = 2) -> list[dict]:
    """Both tools' weekly runs at 03:00 of days 1 and 8 in the quiet account."""
    return records(
        sweep(1, SCANNER, FIRST),
        sweep(1, INVENTORY, ITS_APIS),
        sweep(8, SCANNER, AGAIN, regions=second_regions),
        sweep(8, INVENTORY, ITS_APIS),
    )


def test_two_tools_rerunning_in_one_hour_leave_their_account_unflagged() -> None:
    rows = run(two_tools())
    assert hours_flagged(rows, "") == [24 + RUN_HOUR]  # the account: the first runs only
    assert hours_flagged(rows, SCANNER) == hours_flagged(rows, INVENTORY) == [24 + RUN_HOUR]
    (account,) = rows_of(run(two_tools(), parse_options(["show=all"])), "", SECOND)
    assert account["failures"] == 100 and account["score"] < 50
    # a run twice as large is no re-run: it and its account are flagged
    rows = run(two_tools(second_regions=4))
    assert hours_flagged(rows, SCANNER) == hours_flagged(rows, "") == [24 + RUN_HOUR, SECOND // HOUR]


def test_an_hourly_alert_from_saved_state_judges_the_account_without_the_reruns() -> None:
    """The two tools' first runs, 7 days before the alert's hour, come from their state rows only."""
    events = two_tools()
    cut = T0 + SECOND
    keep = ("_time", "entity_type", "account", "principal", "failures", "score", "is_spike")

    def cells(rows):
        return sorted(tuple(str(r[k]) for k in keep) for r in rows if r["_time"] >= cut and r["failures"])

    one_pass = cells(run(events, parse_options(["show=all"])))
    assert [row for row in one_pass if row[1] == "account" and row[4] == "100"]
    assert cells(alert(events, cut, ["show=all"])) == one_pass
    assert not [r for r in alert(events, cut, []) if r["_time"] >= cut]
