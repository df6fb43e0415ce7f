"""Low-and-slow runs on near-silent principals (iamspike.runs, rule P22)."""

from __future__ import annotations

import json

from iamspike.cloudtrail import FIELDS, record_to_row
from iamspike.engine import Detector, parse_options, run
from test_spread import ACCT, HOUR, T0, event, user

APIS = ["DescribeInstances", "ListBuckets", "GetSecretValue", "ListRoles", "DescribeVpcs", "ListKeys"]
RUN_START = 10 * 24 + 9  # day 10, 09:00


def history(days: int = 11) -> list[dict]:
    """walter is denied in two hours running every third day (his record, P27: 2 failing bins in
    12); ivan once every third day (record 1); nora once in most office hours; all succeed hourly."""
    out = []
    for d in range(days):
        day = T0 + d * 24 * HOUR
        if d % 3 == 0:
            out.append(event(day + 11 * HOUR, user("walter"), "ListUsers", "AccessDenied"))
            out.append(event(day + 12 * HOUR, user("walter"), "ListUsers", "AccessDenied"))
            out.append(event(day + 11 * HOUR, user("ivan"), "ListUsers", "AccessDenied"))
        out += [
            event(day + h * HOUR + 600, user("nora"), "ListUsers", "AccessDenied")
            for h in range(8, 18)
            if h % 5
        ]
        for name in ("walter", "ivan", "nora"):
            out += [event(day + h * HOUR + 300, user(name), "ListBuckets", "") for h in range(24)]
    return out


def slow_run(
    arn: str, per_hour: tuple[int, ...], apis: list[str] = APIS, start: int = RUN_START
) -> list[dict]:
    """``per_hour[k]`` denials in hour ``start`` + k, rotating over ``apis``."""
    out = []
    for k, n in enumerate(per_hour):
        base = T0 + (start + k) * HOUR
        out += [event(base + 700 * i + 60, arn, apis[(k + i) % len(apis)], "AccessDenied") for i in range(n)]
    return out


def principal_rows(rows: list[dict], name: str) -> list[dict]:
    return [r for r in rows if r["entity_type"] == "principal" and r["principal"] == user(name)]


RUN = (3, 4, 3, 3, 4, 3, 4, 3)  # 27 denials over 8 h, every hour below min_failures (5)


def test_a_low_and_slow_run_on_a_near_silent_principal_is_flagged_once() -> None:
    records = sorted(history() + slow_run(user("walter"), RUN), key=lambda r: r["eventTime"])
    (row,) = principal_rows(run(records), "walter")
    hour = (row["_time"] - T0) // HOUR
    assert RUN_START + 3 <= hour < RUN_START + len(RUN)  # at least 4 failing bins (min_bins)
    assert row["failures"] < 5  # the bin alone is below min_failures: the run decided
    assert "low-and-slow run" in row["reason"]
    k = hour - RUN_START + 1
    assert f"{sum(RUN[:k])} failures over the last {k} bins of 1h" in row["reason"]


def test_without_the_run_rule_the_same_bins_were_not_flagged() -> None:
    records = sorted(history() + slow_run(user("walter"), RUN), key=lambda r: r["eventTime"])
    everything = principal_rows(run(records, parse_options(["show=all"])), "walter")
    run_hours = [r for r in everything if RUN_START <= (r["_time"] - T0) // HOUR < RUN_START + len(RUN)]
    assert len(run_hours) == len(RUN)
    flagged = [r for r in run_hours if r["is_spike"]]
    assert len(flagged) == 1 and "low-and-slow run" in flagged[0]["reason"]


def test_one_retried_command_is_no_run() -> None:
    records = sorted(history() + slow_run(user("walter"), RUN, ["ListUsers"]), key=lambda r: r["eventTime"])
    assert principal_rows(run(records), "walter") == []


def test_a_principal_that_fails_in_most_hours_has_no_silent_history() -> None:
    records = sorted(history() + slow_run(user("nora"), RUN), key=lambda r: r["eventTime"])
    assert principal_rows(run(records), "nora") == []


def test_a_short_run_is_no_run() -> None:
    records = sorted(history() + slow_run(user("walter"), (4, 4, 4)), key=lambda r: r["eventTime"])
    assert principal_rows(run(records), "walter") == []


def counted_results(records: list[dict]) -> list[dict]:
    """The engine's rows over ``records``' failures pre-counted per hour, principal and API
    (``count_field=count``), as a user's ``stats count`` would give them."""
    counts: dict[tuple, int] = {}
    for r in records:
        if r["errorCode"]:
            key = (int(r["eventTime"]) // HOUR * HOUR, r["userIdentity"]["arn"], r["eventName"])
            counts[key] = counts.get(key, 0) + 1
    detector = Detector(parse_options(["count_field=count"]))
    header = ["_time", "account", "principal", "eventName", "count"]
    detector.add_rows(header, [[str(t), ACCT, p, api, str(n)] for (t, p, api), n in sorted(counts.items())])
    return detector.results()


def test_count_rows_give_the_same_run() -> None:
    records = sorted(history() + slow_run(user("walter"), RUN), key=lambda r: r["eventTime"])
    via_rows = principal_rows(counted_results(records), "walter")
    via_records = principal_rows(run(records), "walter")
    assert [(r["_time"], r["score"]) for r in via_rows] == [(r["_time"], r["score"]) for r in via_records]
    assert len(via_rows) == 1


NEW_APIS = ["GetSecretValue", "ListRoles", "ListKeys", "DescribeVpcs"]  # walter never failed on them
THIN = (2, 2, 2, 2, 2)  # 10 denials over 5 h: 2 APIs a failing bin, below P22's 2.5


def test_a_thin_run_on_apis_the_principal_never_failed_on_is_flagged() -> None:
    """P24: 4 APIs failing for the first time make a run of 2 APIs a bin evidence, and its bins
    are not taken to move together like a person's bad day (no sqrt(bins) on its variance)."""
    records = sorted(history() + slow_run(user("walter"), THIN, NEW_APIS), key=lambda r: r["eventTime"])
    (row,) = principal_rows(run(records), "walter")
    assert RUN_START + 3 <= (row["_time"] - T0) // HOUR < RUN_START + len(THIN)
    assert "low-and-slow run" in row["reason"] and "4 APIs it never failed on" in row["reason"]


def test_a_thin_run_on_fewer_new_apis_is_no_run() -> None:
    for apis in (NEW_APIS[:3], ["ListUsers", *NEW_APIS[:2]]):
        records = sorted(history() + slow_run(user("walter"), THIN, apis), key=lambda r: r["eventTime"])
        assert principal_rows(run(records), "walter") == []


def test_the_thin_run_on_new_apis_of_a_principal_failing_most_hours_is_no_run() -> None:
    records = sorted(history() + slow_run(user("nora"), THIN, NEW_APIS), key=lambda r: r["eventTime"])
    assert principal_rows(run(records), "nora") == []


def test_a_thin_run_on_new_apis_of_a_principal_watched_less_than_a_week_is_no_run() -> None:
    """A person's first weeks fail on APIs for the first time as they work: walter's first denial
    on day 6 leaves 4 days of history before the run (P22's 3 days are met, P24's week is not)."""
    late = [r for r in history() if r["eventTime"] >= T0 + 6 * 24 * HOUR or r["errorCode"] == ""]
    records = sorted(late + slow_run(user("walter"), THIN, NEW_APIS), key=lambda r: r["eventTime"])
    assert principal_rows(run(records), "walter") == []


def test_thin_new_apis_all_in_one_bin_are_no_run() -> None:
    """P24 needs its new APIs in at least 2 bins: 4 APIs failing for the first time at once, then
    one of them an hour (make demo's sybil.lee8), is a person trying something new once."""
    first = T0 + RUN_START * HOUR
    records = [
        event(first + 600 * i + 60, user("walter"), api, "AccessDenied") for i, api in enumerate(NEW_APIS)
    ]
    records += [
        event(first + k * HOUR + 60, user("walter"), NEW_APIS[0], "AccessDenied") for k in (1, 2, 3, 4)
    ]
    assert principal_rows(run(sorted(history() + records, key=lambda r: r["eventTime"])), "walter") == []
    spread = slow_run(user("walter"), (2, 2, 1, 1, 1, 1), NEW_APIS)  # the same 4 APIs over two bins
    assert principal_rows(run(sorted(history() + spread, key=lambda r: r["eventTime"])), "walter")


ONE_API = ["GetSecretValue"]  # neither walter nor ivan ever failed on it
TWO_APIS = ["GetSecretValue", "ListKeys"]  # nor on these
BEYOND = (2, 3, 2, 2)  # 9 denials over 4 h


def test_a_run_beyond_the_principal_record_is_flagged_on_two_new_apis() -> None:
    """P27: ivan's most failing bins in any 12 bins before is 1; 3 failing bins on APIs he never
    failed on pass the API gate (2 APIs a bin) and min_bins (3 of P22's 4)."""
    records = sorted(history() + slow_run(user("ivan"), BEYOND, TWO_APIS), key=lambda r: r["eventTime"])
    (row,) = principal_rows(run(records), "ivan")
    assert (row["_time"] - T0) // HOUR == RUN_START + 2  # its third failing bin
    assert "low-and-slow run: 7 failures over the last 3 bins of 1h, 2.0 APIs a failing bin" in row["reason"]
    assert "more failing bins than 1 in any 12 bins before" in row["reason"]


def test_one_new_api_retried_beyond_the_record_is_a_stuck_retry_not_a_run() -> None:
    """P30: a deploy's new call denied and retried for hours (one API it never failed on, 2-3 an
    hour) is beyond ivan's record and, at night, outside walter's hours, yet walks no APIs: no run."""
    for who, start in (("ivan", RUN_START), ("walter", RUN_START - 8)):
        records = sorted(
            history() + slow_run(user(who), BEYOND, ONE_API, start), key=lambda r: r["eventTime"]
        )
        assert principal_rows(run(records), who) == []


def test_a_run_within_three_times_the_record_is_no_run() -> None:
    """walter's record is 2: 4 failing bins on two new APIs are not 3 times it (P22's API gate holds)."""
    records = sorted(history() + slow_run(user("walter"), BEYOND, TWO_APIS), key=lambda r: r["eventTime"])
    assert principal_rows(run(records), "walter") == []


def test_a_run_in_hours_the_principal_never_failed_in_is_flagged() -> None:
    """P27: the same 4 failing bins on two new APIs at night, hours walter never failed in (he
    fails at 11:00 and 12:00), are out of his usual hours though within 3 times his record."""
    night = RUN_START - 8  # day 10, 01:00
    records = sorted(
        history() + slow_run(user("walter"), BEYOND, TWO_APIS, night), key=lambda r: r["eventTime"]
    )
    (row,) = principal_rows(run(records), "walter")
    assert (row["_time"] - T0) // HOUR == night + 2
    assert "3 of them in hours of the day it never failed in before" in row["reason"]


def test_a_command_retried_on_its_usual_api_beyond_the_record_is_no_run() -> None:
    """P27 needs an API the principal never failed on: ivan retrying ListUsers is a stuck command."""
    records = sorted(history() + slow_run(user("ivan"), BEYOND, ["ListUsers"]), key=lambda r: r["eventTime"])
    assert principal_rows(run(records), "ivan") == []


def test_a_run_beyond_the_record_of_a_principal_watched_less_than_a_week_is_no_run() -> None:
    late = [r for r in history() if r["eventTime"] >= T0 + 6 * 24 * HOUR or r["errorCode"] == ""]
    records = sorted(late + slow_run(user("ivan"), BEYOND, TWO_APIS), key=lambda r: r["eventTime"])
    assert principal_rows(run(records), "ivan") == []


def alert_after(records: list[dict], split: int) -> list[dict]:
    """An alert run over the raw events from ``split`` on (as splunkd's rows, with ``_raw``),
    continuing from the state rows (``show=state``) a run over the events before saved."""
    saved = run([r for r in records if r["eventTime"] < split], parse_options(["show=state"]))
    header = sorted({key for row in saved for key in row})
    alert = Detector()
    alert.add_rows(header, [[str(row.get(key, "")) for key in header] for row in saved])
    late = [r for r in records if r["eventTime"] >= split]
    alert.add_rows([*FIELDS, "_raw"], [[*record_to_row(r), json.dumps(r)] for r in late])
    return alert.results()


def test_an_alert_run_on_saved_state_sees_the_same_record() -> None:
    """The record is read from the count matrix: an alert run whose live events start after the
    last earlier failures (its history restored from its state rows) flags ivan's run (record 1)
    as one pass over every event does, and not walter's (record 2, in the state rows only)."""
    records = (
        history() + slow_run(user("ivan"), BEYOND, TWO_APIS) + slow_run(user("walter"), BEYOND, TWO_APIS)
    )
    records.sort(key=lambda r: r["eventTime"])
    split = T0 + (RUN_START - 12) * HOUR
    rows = alert_after(records, split)
    whole = principal_rows(run(records), "ivan")
    assert len(whole) == 1 and principal_rows(rows, "ivan") == whole
    assert principal_rows(rows, "walter") == []


def test_one_new_api_tried_at_no_steady_cadence_beyond_the_record_is_flagged() -> None:
    """P30: one API is no retry loop where its hours differ (1, 4, 1, 3, 1 denials: tried by hand
    or by an intruder); the same run cut short at a steady loop's end (4, 4, 4, 1) is no run."""
    irregular = sorted(
        history() + slow_run(user("ivan"), (1, 4, 1, 3, 1), ONE_API), key=lambda r: r["eventTime"]
    )
    (row,) = principal_rows(run(irregular), "ivan")
    assert (row["_time"] - T0) // HOUR == RUN_START + 3
    assert (
        "9 failures over the last 4 bins of 1h, 1.0 APIs a failing bin, 1 APIs it never failed on"
        in row["reason"]
    )
    ending = sorted(history() + slow_run(user("ivan"), (4, 4, 4, 1), ONE_API), key=lambda r: r["eventTime"])
    assert principal_rows(run(ending), "ivan") == []


def test_a_stuck_retry_then_silence_then_a_usual_failure_is_no_run() -> None:
    """P30 reads the cadence of the failing bins only: ivan's retry loop (3 an hour for 4 hours on a
    new API), 3 silent hours, then one denial on ListUsers: the windows that end there hold the loop
    and the silence, and the silent hours make no irregular cadence."""
    records = history() + slow_run(user("ivan"), (3, 3, 3, 3), ONE_API)
    records.append(event(T0 + (RUN_START + 7) * HOUR + 60, user("ivan"), "ListUsers", "AccessDenied"))
    assert principal_rows(run(sorted(records, key=lambda r: r["eventTime"])), "ivan") == []


def bursty_history(days: int = 11) -> list[dict]:
    """zed is denied 6 times in one hour on ListUsers every third day (a high dispersion) and
    succeeds hourly."""
    out = []
    for d in range(days):
        day = T0 + d * 24 * HOUR
        if d % 3 == 0:
            out += [
                event(day + 11 * HOUR + 60 * i, user("zed"), "ListUsers", "AccessDenied") for i in range(6)
            ]
        out += [event(day + h * HOUR + 300, user("zed"), "ListBuckets", "") for h in range(24)]
    return out


WALK = ["DescribeInstances", "GetSecretValue", "ListRoles", "DescribeVpcs", "ListKeys", "GetUser"]


def test_a_run_walking_new_apis_is_judged_as_first_touches_not_the_principal_bursts() -> None:
    """P30: 6 denials over 6 night hours, each on an API zed never failed on, are first touches:
    they are scored as a Poisson count, not under zed's own dispersion (his bursts of 6 on one API
    made the same run score 0); a retried command keeps the dispersion (P22's bad days)."""
    night = RUN_START - 8
    walk = [
        event(T0 + (night + k) * HOUR + 600, user("zed"), api, "AccessDenied") for k, api in enumerate(WALK)
    ]
    (row,) = principal_rows(run(sorted(bursty_history() + walk, key=lambda r: r["eventTime"])), "zed")
    assert (row["_time"] - T0) // HOUR == night + 5
    assert (
        "6 failures over the last 6 bins of 1h, 1.0 APIs a failing bin, 6 APIs it never failed on"
        in row["reason"]
    )


def test_a_run_walking_new_apis_is_taken_after_six_days_of_watching() -> None:
    """P30: ivan's first denial at day 4 00:00 leaves 6.4 days before the run: a week for P24 and
    P27 is not met, but 6 denials over 6 hours, each on an API he never failed on, walk APIs and
    are taken from 6 days; 9 denials on two of them (2, 3, 2, 2) are no walk and wait for the week."""
    late = [r for r in history() if r["eventTime"] >= T0 + 5 * 24 * HOUR or r["errorCode"] == ""]
    late.append(event(T0 + 4 * 24 * HOUR, user("ivan"), "ListUsers", "AccessDenied"))
    walk = [
        event(T0 + (RUN_START + k) * HOUR + 600, user("ivan"), api, "AccessDenied")
        for k, api in enumerate(WALK)
    ]
    (row,) = principal_rows(run(sorted(late + walk, key=lambda r: r["eventTime"])), "ivan")
    assert "6 APIs it never failed on" in row["reason"]
    retried = slow_run(user("ivan"), BEYOND, TWO_APIS)
    assert principal_rows(run(sorted(late + retried, key=lambda r: r["eventTime"])), "ivan") == []


HEAVY = (
    (6, ("GetSecretValue", "ListRoles")),
    (0, ()),
    (4, ("ListRoles", "ListKeys")),
    (4, ("GetSecretValue", "ListKeys")),
    (0, ()),
    (5, ("GetSecretValue", "ListRoles")),
)


def heavy_run(arn: str, start: int = RUN_START) -> list[dict]:
    """19 denials over 6 h on 3 APIs walter never failed on, 2 of them a failing bin (P51)."""
    out = []
    for k, (n, apis) in enumerate(HEAVY):
        base = T0 + (start + k) * HOUR
        out += [event(base + 500 * i + 60, arn, apis[i % len(apis)], "AccessDenied") for i in range(n)]
    return out


def test_a_run_of_three_times_min_failures_on_three_new_apis_is_flagged() -> None:
    """P51: 19 denials over 6 hours on 3 APIs walter never failed on (2 a failing bin, below P22's
    2.5; 3 new APIs, below P24's 4; 4 failing bins, within 3 x his record of 2; 2 of them in hours
    he fails in) pass P24's gate on 3 new APIs because the run holds 3 x min_failures; raw events
    and count rows flag the same bin."""
    records = sorted(history() + heavy_run(user("walter")), key=lambda r: r["eventTime"])
    (row,) = principal_rows(run(records), "walter")
    assert "low-and-slow run" in row["reason"] and "3 APIs it never failed on" in row["reason"]
    assert [(r["_time"], r["score"]) for r in principal_rows(counted_results(records), "walter")] == [
        (row["_time"], row["score"])
    ]


def test_fewer_than_three_times_min_failures_on_three_new_apis_is_no_run() -> None:
    """The same hours with 2 failures a failing bin (8 denials) stay below P51's 15: no run."""
    thin = [r for r in heavy_run(user("walter")) if (r["eventTime"] - T0) % HOUR < 500 * 2]
    records = sorted(history() + thin, key=lambda r: r["eventTime"])
    assert principal_rows(run(records), "walter") == []


def test_an_alert_run_on_saved_state_flags_the_same_heavy_run() -> None:
    """P51's new APIs are counted against the first failures the state rows keep: an alert run whose
    live events start 12 hours before the run flags the bin that one pass over every event flags."""
    records = sorted(history() + heavy_run(user("walter")), key=lambda r: r["eventTime"])
    split = T0 + (RUN_START - 12) * HOUR
    whole = principal_rows(run(records), "walter")
    assert len(whole) == 1 and principal_rows(alert_after(records, split), "walter") == whole
