"""The quality bench's reference methods and scoring, on hand-checked tables."""

from __future__ import annotations

import math

import pytest
from bench import quality
from bench import references as R

T0 = 1788739200  # 2026-09-07T00:00Z, a Monday
USER = "arn:aws:iam::111122223333:user/alice"
ACCT = "111122223333"


def ev(minute: float, code: str = "AccessDenied", **kw: str) -> R.Event:
    fields = {
        "account": ACCT,
        "arn": USER,
        "principal": USER,
        "identity_type": "IAMUser",
        "error_code": code,
        "event_source": "iam.amazonaws.com",
        "event_name": "ListUsers",
        "user_agent": "aws-cli/2.13.9",
        "source_ip": "203.0.113.33",
    }
    fields.update(kw)
    return R.Event(time=T0 + minute * 60, **fields)


def scores(cands: list[R.Candidate]) -> dict[tuple[str, str, int], float]:
    return {(c.entity_type, c.principal, c.time): c.score for c in cands}


# ---- ESCU static ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([ev(m) for m in range(5)], 5.0),  # 5 AccessDenied in the hour: alerts
        ([ev(m) for m in range(4)], 4.0),  # 4: below the threshold
        ([ev(m, "Client.UnauthorizedOperation") for m in range(9)], None),  # not the literal code
        ([ev(m, "AccessDeniedException") for m in range(9)], None),
        ([ev(m, identity_type="AssumedRole") for m in range(9)], None),  # IAM users only
        ([ev(m, user_agent="lambda.amazonaws.com") for m in range(9)], None),
        ([ev(m, source_ip=f"10.0.0.{m % 2}") for m in range(6)], 3.0),  # grouped per source IP too
    ],
)
def test_escu_static(events: list[R.Event], expected: float | None) -> None:
    got = R.escu_static(events)
    if expected is None:
        assert got == []
    else:
        assert scores(got) == {("principal", USER, T0): expected}
        assert bool(R.alerts(got, R.DEFAULTS["escu_static"])) is (expected >= 5)


def test_escu_static_splits_hours() -> None:
    got = scores(R.escu_static([ev(55 + k) for k in range(10)]))  # 5 before 01:00, 5 after
    assert got == {("principal", USER, T0): 5.0, ("principal", USER, T0 + 3600): 5.0}


# ---- ESCU avg + 3 sigma -----------------------------------------------------------------------


def series(values: dict[int, int]) -> dict[tuple[str, str, str], dict[int, int]]:
    return {("principal", ACCT, USER): {T0 + h * 3600: n for h, n in values.items()}}


def test_escu_spike_zero_sigma_flags_any_rise() -> None:
    # seed: 20 hours of exactly 2 (stdev 0); then 10 -> avg 2.0111, stdev 0.2979, score 26.81
    values = {h: 2 for h in range(20)}
    values[30] = 10
    got = R.escu_spike(series(values), seed_seconds=24 * 3600)
    assert len(got) == 1
    assert got[0].score == pytest.approx((10 - 2.011111) / 0.297935, rel=1e-4)
    assert got[0].score > 3


def test_escu_spike_needs_more_than_15_points() -> None:
    values = {h: 1 for h in range(5)}  # 5 seed points
    values.update({24 + h: 1 for h in range(10)})  # points 6..15: not scored
    values[40] = 50  # point 16: scored
    got = R.escu_spike(series(values), seed_seconds=24 * 3600)
    assert [c.time for c in got] == [T0 + 40 * 3600]


def test_escu_spike_past_spike_inflates_sigma() -> None:
    values = {h: 1 for h in range(20)}
    values[10] = 100  # a spike inside the seed
    values[30] = 30
    (got,) = R.escu_spike(series(values), seed_seconds=24 * 3600)
    assert got.score < 3  # 30 denials where 1 is usual: not flagged


def test_escu_spike_default_seed_is_seven_days_or_half() -> None:
    values = {h: 1 for h in range(0, 30 * 24, 2)}
    got = R.escu_spike(series(values))
    assert min(c.time for c in got) >= T0 + 7 * 86400
    short = R.escu_spike(series({h: 1 + h % 2 for h in range(48)}), min_points=0)
    assert min(c.time for c in short) == T0 + 24 * 3600


# ---- MLTK DensityFunction ---------------------------------------------------------------------


def test_mltk_groups_by_four_hour_block_and_weekend() -> None:
    assert R._mltk_group(T0) == (0, 0)  # Monday 00:00
    assert R._mltk_group(T0 + 3 * 3600) == (0, 0)
    assert R._mltk_group(T0 + 4 * 3600) == (4, 0)
    assert R._mltk_group(T0 + 5 * 86400 + 13 * 3600) == (12, 1)  # Saturday 13:00
    assert R._mltk_group(T0 + 6 * 86400) == (0, 1)  # Sunday


def test_mltk_spike_inflates_a_short_group_but_not_a_long_one() -> None:
    short = {d * 24: 1 for d in range(4)}  # Mon..Thu 00:00, one point each
    short[4 * 24] = 10  # Friday 00:00: mean 2.8, pstdev 3.6 -> z 2.0
    (z,) = [c.score for c in R.mltk(series(short)) if c.time == T0 + 4 * 86400]
    assert z == pytest.approx(2.0)
    assert z < R.DEFAULTS["mltk"]
    long = {w * 168 + d * 24 + h: 1 + (h % 2) for w in range(3) for d in range(5) for h in range(4)}
    long[2 * 168 + 4 * 24] = 10
    (z,) = [c.score for c in R.mltk(series(long)) if c.time == T0 + (2 * 168 + 4 * 24) * 3600]
    assert z > R.DEFAULTS["mltk"]


def test_mltk_cap_leaves_groups_unmodelled_and_zero_spread_is_skipped() -> None:
    counts = {
        ("principal", ACCT, "a"): {T0: 1, T0 + 86400: 5},
        ("principal", ACCT, "b"): {T0: 1, T0 + 86400: 5},
        ("principal", ACCT, "c"): {T0: 3, T0 + 86400: 3},
    }
    assert {c.principal for c in R.mltk(counts)} == {"a", "b"}  # c: zero spread
    assert {c.principal for c in R.mltk(counts, max_groups=1)} == {"a"}
    assert R.DEFAULTS["mltk"] == pytest.approx(2.807, abs=1e-3)


# ---- Panther ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([ev(k * 0.5) for k in range(15)], {0: 15.0}),  # 15 in 7 minutes
        ([ev(k * 0.8) for k in range(15)], {0: 13.0}),  # period closes at 10 min: 13 + 2
        ([ev(k * 0.1, event_name="CreateUser") for k in range(20)], {}),  # not a recon API
        ([ev(k * 0.1, user_agent="aws-internal/3 aws-sdk-java") for k in range(20)], {}),  # console
        ([ev(k * 0.1, source_ip="ec2.amazonaws.com") for k in range(20)], {}),  # from inside AWS
        ([ev(k * 0.1, "Client.UnauthorizedOperation") for k in range(20)], {}),
        (
            [
                ev(k * 0.1, event_source="ec2.amazonaws.com", event_name="DescribeInstances")
                for k in range(20)
            ],
            {0: 20.0},
        ),
    ],
)
def test_panther(events: list[R.Event], expected: dict[int, float]) -> None:
    got = {c.time - T0: c.score for c in R.panther(events)}
    assert got == expected


# ---- record parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        ({"type": "IAMUser", "arn": USER}, USER),
        (
            {
                "type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/app/i-0abc",
                "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/svc/app"}},
            },
            "arn:aws:iam::111122223333:role/app",
        ),
        ({"type": "AWSService", "invokedBy": "delivery.logs.amazonaws.com"}, "delivery.logs.amazonaws.com"),
        ({"type": "Root", "accountId": ACCT}, "arn:aws:iam::111122223333:root"),
    ],
)
def test_fold_principal(identity: dict, expected: str) -> None:
    assert R.fold_principal({"userIdentity": identity}) == expected


def test_events_from_records_keeps_failures_and_failed_console_logins() -> None:
    base = {
        "eventTime": "2026-09-07T00:10:00Z",
        "recipientAccountId": ACCT,
        "userIdentity": {"type": "IAMUser"},
    }
    records = [
        {**base, "eventName": "ListUsers"},
        {**base, "eventName": "ListUsers", "errorCode": "AccessDenied"},
        {**base, "eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": "Failure"}},
        {**base, "eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": "Success"}},
        {**base, "eventName": "RunInstances", "errorCode": "Client.DryRunOperation"},
    ]
    events = R.events_from_records(records)
    assert [(e.event_name, e.authz) for e in events] == [
        ("ListUsers", True),
        ("ConsoleLogin", True),
        ("RunInstances", False),
    ]
    assert events[0].time == T0 + 600
    counts = R.hourly_counts(events)
    assert counts[("account", ACCT, "")] == {T0: 2}


# ---- scoring in quality.py --------------------------------------------------------------------


def test_entity_key_folds_sessions_and_paths() -> None:
    key = quality.entity_key
    assert key("arn:aws:sts::1:assumed-role/app/sess") == key("arn:aws:iam::1:role/path/app") == "role:1:app"
    assert key("arn:aws:iam::1:user/Bob") == "arn:aws:iam::1:user/bob"
    assert key("") == ""


def test_tune_picks_the_loosest_threshold_within_budget() -> None:
    scored = [
        ("false", "", 9.0),
        ("false", "", 5.0),
        ("trap", "", 4.0),
        ("detect", "a", 6.0),
        ("detect", "b", 4.5),
        ("explained", "", 100.0),
    ]
    assert quality.tune(scored, ["a", "b", "c"], 0).threshold == 9.0
    one = quality.tune(scored, ["a", "b", "c"], 1)
    assert (one.threshold, one.false, one.detected) == (5.0, 1, {"a": True, "b": False, "c": False})
    two = quality.tune(scored, ["a", "b", "c"], 2)
    assert (two.threshold, two.detected["b"]) == (4.0, True)
    everything = quality.tune(scored, ["a", "b", "c"], 3)
    assert everything.threshold == -math.inf and everything.false == 3
    unreachable = quality.tune([("false", "", math.inf), ("detect", "a", math.inf)], ["a"], 0)
    assert unreachable.threshold is None and unreachable.detected == {"a": False}


def test_at_threshold_counts_what_scores_at_or_above() -> None:
    scored = [
        ("false", "", 9.0),
        ("trap", "", 5.0),
        ("detect", "a", 5.0),
        ("detect", "b", 4.0),
        ("explained", "", 9),
    ]
    five = quality.at_threshold(scored, ["a", "b"], 5.0)
    assert (five.false, five.detected) == (2, {"a": True, "b": False})
    assert quality.at_threshold(scored, ["a", "b"], 10.0).false == 0


def test_judge_separates_detections_explained_traps_and_false_alerts() -> None:
    from bench.generator import Label, Org

    hour = (T0 + 3600, T0 + 7200)
    role = "arn:aws:iam::111122223333:role/app"
    labels = [
        Label("discovery_burst#1", "discovery_burst", "attack", "principal", ACCT, USER, (hour,)),
        Label("account_spread#1", "account_spread", "attack", "account", "999", "", (hour,), members=(role,)),
        Label("dryrun_burst#1", "dryrun_burst", "trap", "principal", ACCT, role, ((T0, T0 + 3600),)),
    ]
    judge = quality.Judge(Org(1, T0, 1, [ACCT, "999"], [], [], labels))

    def verdict(entity_type: str, account: str, principal: str, t: int) -> tuple[str, str]:
        v, label = judge.classify(R.Candidate("m", entity_type, account, principal, t, 1.0))
        return v, label.name if label else ""

    assert verdict("principal", ACCT, USER, T0 + 3600) == ("detect", "discovery_burst#1")
    assert verdict("principal", ACCT, USER, T0) == ("false", "")  # outside the window
    assert verdict("account", ACCT, "", T0 + 3600) == ("explained", "discovery_burst#1")
    assert verdict("account", "999", "", T0 + 3600) == ("detect", "account_spread#1")
    assert verdict("principal", "999", "arn:aws:sts::999:assumed-role/app/s1", T0 + 3600)[0] == "false"
    assert verdict("principal", "999", "arn:aws:iam::999:role/app", T0 + 3600)[0] == "false"
    assert verdict("principal", ACCT, "arn:aws:sts::111122223333:assumed-role/app/s", T0) == (
        "trap",
        "dryrun_burst#1",
    )
    assert verdict("account", ACCT, "", T0) == ("trap", "dryrun_burst#1")
    out = judge.outcome(
        [
            R.Candidate("m", "principal", ACCT, USER, T0 + 3600, 1.0),
            R.Candidate("m", "account", ACCT, "", T0, 1.0),
        ]
    )
    assert out.detected == {"discovery_burst#1": True, "account_spread#1": False}
    assert (out.false, dict(out.trap_alerts), out.alerts) == (1, {"dryrun_burst": 1}, 2)


def test_quality_bench_end_to_end_on_a_small_org(tmp_path, capsys) -> None:
    out = tmp_path / "quality.md"
    argv = ["--families", "startup", "--seeds", "4", "--days", "14", "--accounts", "2", "--per-kind", "1"]
    argv += ["--no-real", "--no-curve"]
    cache = tmp_path / "cache"
    assert quality.main([*argv, "--output", str(out), "--cache", str(cache)]) == 0
    report = out.read_text()
    assert len(list(cache.glob("quality-startup-4-*.pickle"))) == 1
    again = tmp_path / "again.md"
    again.write_text("# old\n\n## Where the engine fails\n\nhand-written diagnosis\n\n## Data\n\nold table\n")
    assert quality.main([*argv, "--output", str(again), "--cache", str(cache)]) == 0  # from the cache
    rerun = again.read_text()
    assert "hand-written diagnosis" in rerun and "old table" not in rerun  # the diagnosis is kept

    def tables(text: str) -> str:  # before them: the date and the engine's seconds
        return text[text.index("## Recall per attack kind") :]

    kept = "## Where the engine fails\n\nhand-written diagnosis\n\n"
    assert tables(rerun).replace(kept, "") == tables(report)
    command = report.split("`")[3]
    assert command.startswith("python tests/bench/quality.py --families startup --seeds 4")
    assert {"--days 14", "--accounts 2", "--per-kind 1", "--no-real", "--no-curve"} <= {
        " ".join(pair) for pair in zip(command.split(), command.split()[1:])
    } | set(command.split())
    for heading in (
        "## Recall per attack kind",
        "### Mean delay",
        "### iamspike per family",
        "## False alerts",
        "### By benign kind",
        "### Budget: ",
        "## Ad hoc searches without saved state",
    ):
        assert heading in report
    assert "| discovery_burst | 1.00 (1/1) |" in report  # iamspike, first column, finds the sweep
    (data_row,) = [line for line in report.splitlines() if line.startswith("| startup |")][:1]
    assert data_row.endswith("| 0 |")  # Splunk rows in 50,000-row chunks: the same alerts
    summary = capsys.readouterr().out
    assert summary.splitlines()[0].startswith("method") and "iamspike" in summary
    assert "ad hoc 24 h without state" in summary


def test_splunk_rows_flatten_records_like_search_time_extraction() -> None:
    record = {
        "eventTime": "2026-09-07T00:10:00Z",
        "eventName": "ListUsers",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::1:assumed-role/app/s",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/app"}},
        },
    }
    (row,) = quality.splunk_rows([record])
    got = dict(zip(quality.SPLUNK_FIELDS, row))
    assert got["_time"] == f"{T0 + 600}.000"
    assert got["userIdentity.sessionContext.sessionIssuer.arn"] == "arn:aws:iam::1:role/app"
    assert got["userIdentity.type"] == "AssumedRole" and got["eventName"] == "ListUsers"
    assert got["errorCode"] == got["userIdentity.invokedBy"] == got["__mv_errorCode"] == ""


def test_input_b_rows_count_failures_per_hour_principal_code_and_api() -> None:
    def rec(minute: int, code: str | None, identity: dict) -> dict:
        r = {
            "eventTime": quality.iso(T0 + minute * 60),
            "recipientAccountId": ACCT,
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "userIdentity": identity,
        }
        return {**r, "errorCode": code} if code else r

    session = {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::111122223333:assumed-role/app/s1",
        "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/app"}},
    }
    service = {"type": "AWSService", "invokedBy": "delivery.logs.amazonaws.com"}
    records = [
        rec(1, "AccessDenied", session),
        rec(2, "AccessDenied", session),
        rec(3, None, session),  # a success: not counted
        rec(61, "AccessDenied", session),  # next hour
        rec(4, "AccessDenied", service),
        rec(5, "Client.DryRunOperation", service),  # every errorCode goes in; the engine classifies
    ]
    role, svc = "arn:aws:iam::111122223333:role/app", "delivery.logs.amazonaws.com"

    def row(t: int, principal: str, code: str, n: int) -> list[str]:
        return [str(t), ACCT, principal, code, "s3.amazonaws.com", "GetObject", str(n)]

    assert sorted(quality.input_b_rows(records)) == sorted(
        [
            row(T0, role, "AccessDenied", 2),
            row(T0 + 3600, role, "AccessDenied", 1),
            row(T0, svc, "AccessDenied", 1),
            row(T0, svc, "Client.DryRunOperation", 1),
        ]
    )


def test_static_all_scores_every_principal_hour_and_no_account() -> None:
    events = [ev(1, "Client.UnauthorizedOperation"), ev(2, identity_type="AssumedRole"), ev(70)]
    got = scores(R.static_all(R.hourly_counts(events)))
    assert got == {("principal", USER, T0): 2.0, ("principal", USER, T0 + 3600): 1.0}


def test_real_set_history_keeps_attackers_and_failure_streams_new() -> None:
    from bench import realsets

    def rec(arn: str, minute: int, code: str = "") -> dict:
        r = {
            "eventTime": quality.iso(T0 + 30 * 86400 + minute * 60),
            "eventSource": "ec2.amazonaws.com",
            "eventName": "DescribeInstances",
            "recipientAccountId": ACCT,
            "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": ACCT},
        }
        if code:
            r["errorCode"] = code
        return r

    known, attacker, stream = (f"arn:aws:iam::{ACCT}:user/{n}" for n in ("known", "attacker", "stream"))
    records = [
        rec(known, 0),
        rec(known, 1, "AccessDenied"),
        rec(attacker, 2),
        rec(attacker, 3, "AccessDenied"),
    ]
    records += [rec(stream, m, "AccessDenied") for m in range(4, 9)]
    rs = realsets.RealSet("t", (), (realsets.Check("attacker flagged", "principal", ":user/attacker"),), "")
    out = realsets.with_history(rs, records, days=10)
    history = out[: len(out) - len(records)]
    assert out[len(history) :] == records
    assert history and {R.fold_principal(r) for r in history} == {known}
    first = min(R.parse_event_time(r["eventTime"]) for r in records)
    times = [R.parse_event_time(r["eventTime"]) for r in history]
    assert first - 10 * 86400 <= min(times) and max(times) < first
    assert any(r.get("errorCode") == "AccessDenied" for r in history)  # its own failure rate
    assert len({r["eventID"] for r in history}) == len(history)
    assert realsets.with_history(rs, records, days=10) == out  # seeded


def test_real_set_checks_judge_positives_negatives_and_false_alerts() -> None:
    from bench import realsets

    role = "arn:aws:iam::1:role/stratus-red-team-get-usr-data-role"
    rs = realsets.RealSet(
        "t",
        (),
        (
            realsets.Check("role flagged", "principal", "get-usr-data-role", (T0, T0 + 3600)),
            realsets.Check("service quiet", "principal", "delivery.logs.amazonaws.com", must=False),
        ),
        "",
    )

    def cand(entity_type: str, principal: str, t: int) -> R.Candidate:
        return R.Candidate("m", entity_type, "1", principal, t, 60.0)

    caught = realsets.judge(rs, [cand("principal", role, T0), cand("account", "", T0)])
    assert (caught.checks, caught.alerts, caught.false, caught.false_names) == (
        [True, True],
        2,
        1,
        ["account:1"],
    )
    late = realsets.judge(rs, [cand("principal", role, T0 + 3600)])  # outside the window
    assert (late.checks, late.false) == ([False, True], 1)
    noisy = realsets.judge(rs, [cand("principal", "delivery.logs.amazonaws.com", T0)])
    assert noisy.checks == [False, False] and noisy.false == 1
    assert realsets.positives([(rs, caught)]) == (1, 1)
    assert realsets.positives([(rs, late), (rs, caught)]) == (1, 2)
