"""Account-wide spreads (iamspike.spread): actors, the spread with the count, one actor's share."""

from __future__ import annotations

import json
import random

import numpy as np
from iamspike.cloudtrail import FIELDS, record_to_row
from iamspike.counting import COUNTS_FIELD
from iamspike.countpacked import split_members
from iamspike.engine import Detector, parse_options, run
from iamspike.phases import MapPhase
from iamspike.spread import (
    QUIET_BLOCK,
    SpreadParams,
    actor_apis,
    actor_name,
    actors,
    combined,
    failing_actors,
    one_actor_cap,
    quiet_failures,
    service_actors,
    top_actor,
)

HOUR = 3600
T0 = 1_788_739_200  # 2026-09-07T00:00:00Z, a Monday
ACCT = "111122223333"
SSO = f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_PowerUserAccess_0a1b"
EC2 = ["DescribeInstances", "DescribeVpcs", "DescribeSnapshots", "DescribeSecurityGroups"]


def user(name: str) -> str:
    return f"arn:aws:iam::{ACCT}:user/{name}"


# ------------------------------------------------------------------------------------ actors


def test_sso_sessions_of_one_role_are_one_actor_other_principals_their_own() -> None:
    assert actor_name(f"{SSO}/erin@example.com") == SSO
    assert actor_name(user("erin")) == user("erin")
    role = f"arn:aws:iam::{ACCT}:role/ci-deployer"
    assert actor_name(role) == role
    labels = [
        (ACCT, f"{SSO}/erin@example.com"),
        (ACCT, f"{SSO}/yara@example.com"),
        (ACCT, user("erin")),
        ("999988887777", f"{SSO}/erin@example.com"),  # the same name in another account
    ]
    p_actor, n = actors(labels)
    assert n == 3
    assert p_actor[0] == p_actor[1] != p_actor[2]
    assert p_actor[3] not in (p_actor[0], p_actor[2])


def test_failing_actors_count_an_sso_role_once() -> None:
    counts = np.array([[1, 3, 0], [0, 0, 2]], dtype=np.float32)  # sessions 0, 1 of one role; a user
    failing = failing_actors(counts, np.array([0, 0, 1]), 2)
    assert failing.tolist() == [[1, 0], [0, 1]]


def test_actor_apis_union_live_sum_before() -> None:
    # bins 0-1 from saved state (per principal), bin 2 live: both sessions failed on API 7.
    restored = np.array([[2, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=np.float32)
    items = (np.array([2, 2, 2]), np.array([0, 1, 1]), np.array([7, 7, 8]))
    out = actor_apis(restored, 2, np.array([0, 0, 1]), 2, items, n_apis=10)
    assert out.tolist() == [[3, 0], [0, 1], [2, 0]]


# ------------------------------------------------------------------- the spread with the count


def test_combined_adds_the_spread_only_where_it_is_evidence() -> None:
    params = SpreadParams()
    count = np.array([4.0, 4.0, 4.0, 4.0])
    spread = np.array([2.5, 2.5, 1.0, 0.0])
    actors_failing = np.array([5, 2, 5, 1])
    assert combined(count, spread, actors_failing, params).tolist() == [6.5, 4.0, 4.0, 4.0]


def test_combined_takes_the_quiet_principals_surprise_where_the_spread_is_evidence_only() -> None:
    params = SpreadParams()
    count = np.array([1.5, 1.5, 1.5, 3.0])
    spread = np.array([2.5, 1.0, 2.5, 2.5])
    actors_failing = np.array([5, 5, 2, 5])
    quiet = np.array([4.0, 4.0, 4.0, 1.0])
    assert combined(count, spread, actors_failing, params, quiet).tolist() == [6.5, 1.5, 1.5, 5.5]


def test_quiet_failures_leave_out_the_principals_that_are_not_silent_in_the_bin() -> None:
    # account 0: a batch role (not silent in bin 0), two quiet users; account 1: one user; a service
    counts = np.array([[30, 2, 3, 4, 9], [0, 1, 0, 2, 0]], dtype=np.float32)
    silent = np.array([[False, True, True, True, True], [True, True, True, False, True]])
    p_account = np.array([0, 0, 0, 1, 0])
    service = np.array([False, False, False, False, True])
    acc_counts = np.array([[35, 4], [1, 2]], dtype=np.float32)  # the services left out
    out = quiet_failures(acc_counts, counts, silent, p_account, service)
    assert out.tolist() == [[5, 4], [1, 0]]
    # an account whose history is its saved row: principals not read stay in, never below 0
    assert quiet_failures(acc_counts + 10, counts, silent, p_account, service).tolist() == [
        [15, 14],
        [11, 10],
    ]
    assert quiet_failures(np.zeros_like(acc_counts), counts, silent, p_account, service).min() == 0
    # in blocks of bins: the same as the whole matrix at once
    rng = np.random.default_rng(3)
    counts = rng.poisson(2, size=(QUIET_BLOCK * 2 + 5, 5)).astype(np.float32)
    silent = rng.random(counts.shape) < 0.5
    acc_counts = np.stack([counts[:, [0, 1, 2]].sum(axis=1), counts[:, 3]], axis=1)
    quiet = np.stack([(counts * silent)[:, [0, 1, 2]].sum(axis=1), (counts * silent)[:, 3]], axis=1)
    assert np.array_equal(quiet_failures(acc_counts, counts, silent, p_account, service), quiet)


def test_one_actor_cap_keeps_the_spread_and_spares_several_actors() -> None:
    params = SpreadParams()
    score = np.array([70.0, 70.0, 70.0])
    spread = np.array([10.0, 10.0, 60.0])
    top = np.array([19.0, 10.0, 19.0])
    total = np.array([20.0, 20.0, 20.0])
    actor = np.array([30.0, 30.0, 30.0])
    assert one_actor_cap(score, spread, top, total, actor, params).tolist() == [30.0, 70.0, 60.0]


def test_top_actor_sums_an_sso_roles_sessions_and_leaves_services_out() -> None:
    counts = np.array([[3, 4, 5, 50]], dtype=np.float32)
    p_account = np.array([0, 0, 0, 0])
    p_actor = np.array([0, 0, 1, 2])
    service = np.array([False, False, False, True])
    top, who, total = top_actor(counts, np.array([0]), np.array([0]), p_account, p_actor, service)
    assert (top.tolist(), who.tolist(), total.tolist()) == ([7.0], [0], [12.0])


# ------------------------------------------------------------------- behaviour of the engine


def event(
    t: float, arn: str, api: str = "DescribeInstances", code: str = "Client.UnauthorizedOperation"
) -> dict:
    if arn.startswith(SSO):
        identity = {
            "type": "AssumedRole",
            "arn": arn,
            "accountId": ACCT,
            "sessionContext": {
                "sessionIssuer": {"arn": f"arn:aws:iam::{ACCT}:role/aws-reserved/{SSO.rsplit('/', 1)[1]}"}
            },
        }
    else:
        identity = {"type": "IAMUser", "arn": arn, "accountId": ACCT}
    return {
        "eventTime": t,
        "eventName": api,
        "eventSource": "ec2.amazonaws.com",
        "errorCode": code,
        "recipientAccountId": ACCT,
        "sourceIPAddress": "198.51.100.9",
        "userAgent": "aws-cli/2",
        "userIdentity": identity,
    }


def quiet_account(days: int = 10) -> list[dict]:
    """A near-silent account: one person denied now and then in office hours, a nightly batch role
    denied 30 times at 02:00, successes every hour."""
    batch = f"arn:aws:iam::{ACCT}:role/nightly-etl"
    out = []
    for d in range(days):
        day = T0 + d * 24 * HOUR
        out += [event(day + 2 * HOUR + 60 * i, batch, "GetObject", "AccessDenied") for i in range(30)]
        if d % 3 == 0:
            out.append(event(day + 11 * HOUR, user("walter"), "ListUsers", "AccessDenied"))
        out += [event(day + h * HOUR + 300, user("walter"), "ListBuckets", "") for h in range(24)]
    return out


def account_hours(rows: list[dict]) -> list[int]:
    return [(r["_time"] - T0) // HOUR for r in rows if r["entity_type"] == "account"]


SPIKE_HOUR = 10 * 24 + 14


def test_a_thin_spread_over_several_people_flags_the_account_only() -> None:
    spike = T0 + SPIKE_HOUR * HOUR
    people = ["amy", "bob", "cat", "dan"]
    records = quiet_account(11) + [
        event(spike + 60 * k + i, user(name), EC2[i % 2]) for k, name in enumerate(people) for i in range(2)
    ]
    rows = run(sorted(records, key=lambda r: r["eventTime"]))
    assert account_hours(rows) == [SPIKE_HOUR]
    assert not [r for r in rows if r["entity_type"] == "principal"]
    (row,) = rows
    assert "4 of its principals failed at once" in row["reason"] and "on one service" not in row["reason"]


def test_one_sso_roles_burst_under_ten_session_names_is_one_actor_not_a_spread() -> None:
    spike = T0 + SPIKE_HOUR * HOUR
    names = [f"person{i}@example.com" for i in range(10)]
    burst = [event(spike + 2 * i, f"{SSO}/{names[i % 10]}", EC2[i % 2]) for i in range(14)]
    rows = run(sorted(quiet_account(11) + burst, key=lambda r: r["eventTime"]))
    assert account_hours(rows) == []
    # the same 14 denials from ten people who are not one role's sessions are a spread
    people = [event(spike + 2 * i, user(f"p{i % 10}"), EC2[i % 2]) for i in range(14)]
    rows = run(sorted(quiet_account(11) + people, key=lambda r: r["eventTime"]))
    assert account_hours(rows) == [SPIKE_HOUR]


def test_an_account_made_by_one_principal_scores_no_higher_than_it() -> None:
    spike = T0 + SPIKE_HOUR * HOUR
    burst = [event(spike + i, user("judy"), EC2[i % 2]) for i in range(16)]
    records = sorted(quiet_account(11) + burst, key=lambda r: r["eventTime"])
    assert account_hours(run(records)) == []
    everything = run(records, parse_options(["show=all"]))
    cell = [r for r in everything if (r["_time"] - T0) // HOUR == SPIKE_HOUR and r["failures"] >= 16]
    account = next(r for r in cell if r["entity_type"] == "account")
    judy = next(r for r in cell if r["entity_type"] == "principal")
    assert account["score"] <= judy["score"] < 50
    assert "100% of its failures are judy's, scored as that principal" in account["reason"]


BATCH_HOUR = 10 * 24 + 2


def test_a_spread_at_the_nightly_batch_hour_flags_the_account() -> None:
    """Four people denied three times each at 02:00, while the nightly batch fails its usual 30:
    the account's count (42 against 30) says little and five actors against one not enough
    (score 36 without rule P19); the quiet principals' 12 denials do (74 with it)."""
    spike = T0 + BATCH_HOUR * HOUR
    people = ["amy", "bob", "cat", "dan"]
    spread = [
        event(spike + 300 + 60 * k + i, user(n), EC2[i % 2]) for k, n in enumerate(people) for i in range(3)
    ]
    rows = run(sorted(quiet_account(11) + spread, key=lambda r: r["eventTime"]))
    assert account_hours(rows) == [BATCH_HOUR]
    assert not [r for r in rows if r["entity_type"] == "principal"]


def test_a_handful_of_denials_over_three_quiet_people_flags_the_account_two_people_do_not() -> None:
    """Five denials over three people across an hour of a near-silent account whose level is its
    nightly batch spread over the day (30 / 24 an hour): flagged (62 without rule P19, 77 with it);
    the same five from two people are no spread, with or without it."""
    spike = T0 + SPIKE_HOUR * HOUR
    three = [(user("amy"), 0), (user("amy"), 1), (user("bob"), 2), (user("bob"), 3), (user("cat"), 0)]
    rows = run(
        sorted(
            quiet_account(11) + [event(spike + 600 * i, a, EC2[k]) for i, (a, k) in enumerate(three)],
            key=lambda r: r["eventTime"],
        )
    )
    assert account_hours(rows) == [SPIKE_HOUR]
    two = [(user("amy"), 0), (user("amy"), 1), (user("bob"), 2), (user("bob"), 3), (user("bob"), 0)]
    rows = run(
        sorted(
            quiet_account(11) + [event(spike + 600 * i, a, EC2[k]) for i, (a, k) in enumerate(two)],
            key=lambda r: r["eventTime"],
        )
    )
    assert account_hours(rows) == []


def test_a_spread_at_the_batch_hour_is_flagged_after_a_state_round_trip() -> None:
    """The quiet principals' failures before the live rows come from the saved rows: the same
    spread at the batch hour is flagged when the first ten days are saved state."""
    spike = T0 + BATCH_HOUR * HOUR
    people = ["amy", "bob", "cat", "dan"]
    spread = [
        event(spike + 300 + 60 * k + i, user(n), EC2[i % 2]) for k, n in enumerate(people) for i in range(3)
    ]
    records = sorted(quiet_account(11) + spread, key=lambda r: r["eventTime"])
    early = [r for r in records if r["eventTime"] < T0 + 10 * 24 * HOUR]
    saved = run(early, parse_options(["show=state"]))
    header = sorted({key for row in saved for key in row})
    detector = Detector()
    detector.add_rows(header, [[str(row.get(key, "")) for key in header] for row in saved])
    detector.add_records([r for r in records if r["eventTime"] >= T0 + 10 * 24 * HOUR])
    assert account_hours(detector.results()) == [BATCH_HOUR]


def test_a_spread_in_an_account_where_no_principal_ever_reaches_min_failures_is_scored() -> None:
    """No principal cell reaches min_failures in the whole window (a person denied now and then,
    then six people twice each): the one-actor cap has no principal scores to read, and the
    account is still flagged (the search failed with an AttributeError before)."""
    spike = T0 + SPIKE_HOUR * HOUR
    records = [event(T0 + d * 24 * HOUR + 11 * HOUR, user("walter")) for d in range(0, 10, 3)]
    records += [event(spike + 60 * k + i, user(f"u{k}")) for k in range(6) for i in range(2)]
    assert account_hours(run(sorted(records, key=lambda r: r["eventTime"]))) == [SPIKE_HOUR]


# ------------------------------------------------------- actors on one event source (rule P26)


def test_service_actors_count_the_most_actors_failing_on_one_source() -> None:
    # principals 0-1: one SSO role's sessions (actor 0); 2, 3: users (actors 1, 2); 4: an AWS
    # service principal (actor 3, group 2 = n_accounts); account 0 has actors 0-2, account 1 none
    p_actor = np.array([0, 0, 1, 2, 3])
    a_group = np.array([0, 0, 0, 2])
    items = (
        np.array([0, 0, 0, 0, 0, 1, 1, 1, 1]),  # bin
        np.array([0, 1, 2, 3, 4, 2, 2, 3, 3]),  # principal
        np.array([5, 5, 5, 5, 5, 5, 6, -1, 6]),  # source (-1: unknown)
    )
    cell, most = service_actors(items, 2, p_actor, a_group, 2)
    out = np.zeros((2, 2))
    out.reshape(-1)[cell] = most
    # bin 0: source 5 failed for actors 0 (twice, one role), 1, 2 -> 3; the service is left out
    # bin 1: source 6 for actors 1 and 2 -> 2; source 5 for actor 1 alone
    assert out.tolist() == [[3, 0], [2, 0]]


SOURCES = ["iam", "s3", "ec2", "lambda", "kms", "sqs", "sns", "logs", "dynamodb", "rds"]
PEOPLE = [f"p{i}" for i in range(12)]


def on(t: float, name: str, source: str, api: str = "ListThings") -> dict:
    return {**event(t, user(name), api, "AccessDenied"), "eventSource": f"{source}.amazonaws.com"}


def busy_account(days: int = 11) -> list[dict]:
    """An account of twelve people where two or three of them are denied once or twice in every
    office hour, each on a service of their own (its failing principals: about 2.5 an hour)."""
    rng = random.Random(1)
    out = []
    for d in range(days):
        for h in range(9, 18):
            start = T0 + (d * 24 + h) * HOUR
            k = rng.randint(2, 3)
            for i, (name, source) in enumerate(zip(rng.sample(PEOPLE, k), rng.sample(SOURCES, k))):
                out += [on(start + 600 * i + 60 * j, name, source) for j in range(rng.randint(1, 2))]
        out += [on(T0 + (d * 24 + h) * HOUR + 30, "p0", "s3") | {"errorCode": ""} for h in range(24)]
    return out


def five_people(sources: list[str]) -> list[dict]:
    spike = T0 + SPIKE_HOUR * HOUR
    return [on(spike + 300 + 60 * k, PEOPLE[k + 3], s, EC2[k % 2]) for k, s in enumerate(sources)]


def test_five_people_denied_on_one_service_in_a_busy_account_flag_it_on_five_services_not() -> None:
    """Five people denied once each on EC2 within minutes, in an office hour of an account where
    two or three people fail every hour, each on their own service: 9 failures against about 5,
    5 failing principals against about 2.5 (score 42 without rule P26); 5 on one service against
    about 1 flags it (56). The same five on five services stay an ordinary hour (42)."""
    one = sorted(busy_account() + five_people(["ec2"] * 5), key=lambda r: r["eventTime"])
    (row,) = [r for r in run(one) if r["entity_type"] == "account"]
    assert (row["_time"] - T0) // HOUR == SPIKE_HOUR and row["failures"] == 9
    assert (
        "7 of its principals failed at once (usually 3), 5 of them on one service (usually 1)."
        in row["reason"]
    )
    five = sorted(
        busy_account() + five_people(["ec2", "kms", "sqs", "sns", "rds"]), key=lambda r: r["eventTime"]
    )
    assert account_hours(run(five)) == []


def test_count_rows_carry_the_event_sources_of_their_cells() -> None:
    """The same records read as count rows (phase=map) give the same account alert: a count row's
    summary names its cell's event sources (rows of several bins, and of one: the spike hour's
    records mapped apart)."""
    records = sorted(busy_account() + five_people(["ec2"] * 5), key=lambda r: r["eventTime"])
    spike = [(r["eventTime"] - T0) // HOUR == SPIKE_HOUR for r in records]
    rows = []
    for part in ([r for r, s in zip(records, spike) if not s], [r for r, s in zip(records, spike) if s]):
        mapper = MapPhase(parse_options(["phase=map"]))
        mapper.add_rows(list(FIELDS), [record_to_row(r) for r in part])
        rows += mapper.take() + mapper.results()
    texts = [str(row[COUNTS_FIELD]) for row in rows if row["account"]]
    assert any(text[:2] == "v6" for text in texts)  # an account's principals packed in one row
    members = [member for text in texts if text[:2] == "v6" for _, _, member in split_members(text)]
    assert {text[:2] for text in [*members, *texts] if text[:2] != "v6"} == {"v3", "v4"}
    header = sorted({key for row in rows for key in row})
    detector = Detector()
    detector.add_rows(header, [[str(row.get(key, "")) for key in header] for row in rows])
    assert account_hours(detector.results()) == account_hours(run(records)) == [SPIKE_HOUR]


def alert_from_state(
    records: list[dict],
    live_from: int,
    entity_types=("principal", "account"),
    mapped: bool = False,
    saved_as=list,
) -> list[dict]:
    """The scheduled alert's shape: the records before ``live_from`` saved as state rows
    (``show=state``, only those of ``entity_types`` read back, as ``saved_as`` gives them), the
    rest read live (as count rows of the map phase if ``mapped``)."""
    saved = run([r for r in records if r["eventTime"] < live_from], parse_options(["show=state"]))
    saved = saved_as([row for row in saved if row["entity_type"] in entity_types])
    live = [r for r in records if r["eventTime"] >= live_from]
    if mapped:
        mapper = MapPhase(parse_options(["phase=map"]))
        mapper.add_rows(list(FIELDS), [record_to_row(r) for r in live])
        saved, live = saved + mapper.take() + mapper.results(), []
    header = sorted({key for row in saved for key in row})
    detector = Detector()
    detector.add_rows(header, [[str(row.get(key, "")) for key in header] for row in saved])
    detector.add_records(live)
    return detector.results()


def test_a_spread_on_one_service_is_flagged_by_the_alert_from_saved_state_as_by_one_pass() -> None:
    """The account row carries the most actors on one event source per bin (``service_actors``):
    the alert that reads the first ten days as saved state judges the five people on EC2 against
    that history (about 1 an hour), as one pass over the eleven days does, and returns the same
    rows. Without it the failing principals (about 2.5) stood in before the live bins and the
    alert stayed below 50 (42). Principals' rows alone keep no sources: their fallback is that,
    where only rule P39 flags the hour (five people on EC2 within minutes, at the threshold)."""
    records = sorted(busy_account() + five_people(["ec2"] * 5), key=lambda r: r["eventTime"])
    one_pass = run(records)
    assert account_hours(one_pass) == [SPIKE_HOUR]
    live_from = T0 + 10 * 24 * HOUR
    assert alert_from_state(records, live_from) == one_pass
    assert alert_from_state(records, live_from, mapped=True) == one_pass  # the live hour as count rows
    (row,) = alert_from_state(records, live_from, ("principal",))
    assert row["score"] == 50.0 and row["reason"].endswith(
        "expected 3 (upper 16), across 3 APIs and 1 error code; compared with the same time of day on the"
        " last 5 days; 5 of its principals failed on ec2.amazonaws.com within 10 minutes."
    )


# ------------------------------------------------------- a service rare for the account (P29)


def on_rare(source: str, n: int) -> list[dict]:
    """``n`` people denied once each on ``source`` within minutes of the spike hour."""
    spike = T0 + SPIKE_HOUR * HOUR
    return [on(spike + 300 + 60 * k, PEOPLE[k + 3], source) for k in range(n)]


def test_a_spread_on_a_service_the_account_never_failed_on_flags_it_on_its_usual_service_not() -> None:
    """Three people denied on Athena, a service the account never failed on, in an office hour of
    the busy account (two or three people a hour, each on one of ten services of their own): 3
    actors on one source against about 0.003 an hour flags the account (60); without rule P29, 3
    on one service against about 1 (P26) did not (the same hour with two of them: 21). Four
    people on EC2, one of its ten usual services, are no rare service (47): only rule P39 flags
    that hour, at the threshold (four actors on one source within minutes in an account expecting
    3)."""
    rare = sorted(busy_account() + on_rare("athena", 3), key=lambda r: r["eventTime"])
    (row,) = [r for r in run(rare) if r["entity_type"] == "account"]
    assert (row["_time"] - T0) // HOUR == SPIKE_HOUR
    assert (
        "3 of them on athena.amazonaws.com, which the account seldom fails on (usually 0.0025)."
        in row["reason"]
    )
    assert (
        account_hours(run(sorted(busy_account() + on_rare("athena", 2), key=lambda r: r["eventTime"]))) == []
    )
    usual = sorted(busy_account() + on_rare("ec2", 4), key=lambda r: r["eventTime"])
    (row,) = run(usual)
    assert row["score"] == 50.0 and row["reason"].endswith(
        "4 of its principals failed on ec2.amazonaws.com within 10 minutes."
    )


def without_sources(rows: list[dict]) -> list[dict]:
    """State rows as the engine before rule P29 wrote them: account rows without ``sources``."""
    out = []
    for row in rows:
        blob = json.loads(row["iamspike_state"])
        blob.pop("sources", None)
        out.append({**row, "iamspike_state": json.dumps(blob, separators=(",", ":"), sort_keys=True)})
    return out


def test_a_spread_on_a_rare_service_is_flagged_by_the_alert_from_saved_state_as_by_one_pass() -> None:
    """The account row carries where its event sources' rates stood (``sources``: each source's
    decayed sums, the account's watch since its first bin): the alert that reads the first ten
    days as saved state continues them over the live day and returns the rows of one pass over
    the eleven days, read live as raw events or as the map phase's count rows. Rows written
    before the field existed still read; the rule is then off for the account until a day of
    live history, and only rule P39 flags the spread on Athena (three people within minutes, at
    the threshold)."""
    records = sorted(busy_account() + on_rare("athena", 3), key=lambda r: r["eventTime"])
    one_pass = run(records)
    assert account_hours(one_pass) == [SPIKE_HOUR]
    live_from = T0 + 10 * 24 * HOUR
    assert alert_from_state(records, live_from) == one_pass
    assert alert_from_state(records, live_from, mapped=True) == one_pass
    (row,) = alert_from_state(records, live_from, saved_as=without_sources)
    assert row["score"] == 50.0 and "seldom fails on" not in row["reason"]
    assert row["reason"].endswith("3 of its principals failed on athena.amazonaws.com within 10 minutes.")
    # A day of live history later the rule is back: four people denied on Glue a day and an hour
    # after the spread on Athena (the live day's first hours are not enough: the prior still
    # weighs, at about 0.02 an hour, and three are not).
    later = [{**r, "eventTime": r["eventTime"] + 25 * HOUR} for r in on_rare("glue", 4)]
    more = sorted(busy_account(12) + on_rare("athena", 3) + later, key=lambda r: r["eventTime"])
    rows = alert_from_state(more, live_from, saved_as=without_sources)
    assert account_hours(rows) == [SPIKE_HOUR, SPIKE_HOUR + 25]  # Athena's by P39 (above)
    assert "on glue.amazonaws.com, which the account seldom fails on" in rows[1]["reason"]
    assert account_hours(run(more)) == [SPIKE_HOUR, SPIKE_HOUR + 25]


def test_a_spread_in_a_batchs_hour_keeps_its_quiet_principals_score_a_persons_burst_not() -> None:
    """Three of a quiet account's own people denied twice each on Athena within minutes, in the hour
    of its daily batch (40 denials of one role: over 80 % of the hour). The one-actor cap would lower
    the account to the batch role's score, but the batch is not one of the principals that seldom
    fail: their failures and the spread, without it, score 55.5, which the cap keeps (P50). On EC2,
    the account's usual service, they stay below the threshold; the batch's hours alone flag
    nothing; a person's own burst on Athena with two others denied once is still that person's
    alert (the cap applies: the person is one of the quiet principals). Saved state and count rows
    give one pass's rows."""
    from test_newcomers import daily_batch
    from test_repeaters import assert_alert_from_state_is_one_pass
    from test_repeaters import quiet_account as staff_account

    def own(names: list[str], each: int, source: str = "athena") -> list[dict]:
        start = T0 + SPIKE_HOUR * HOUR + 1500
        return [
            on(start + 40 * k + 9 * i, name, source, "GetQueryResults")
            for k, name in enumerate(names)
            for i in range(each)
        ]

    def rows_of(extra: list[dict]) -> list[dict]:
        return run(sorted(staff_account() + daily_batch() + extra, key=lambda r: r["eventTime"]))

    rows = rows_of(own(["staff3", "staff4", "staff5"], 2))
    assert [(r["entity_type"], (r["_time"] - T0) // HOUR, r["score"]) for r in rows] == [
        ("account", SPIKE_HOUR, 55.5)
    ]
    assert "3 of them on athena.amazonaws.com" in rows[0]["reason"]
    assert "scored as that principal" not in rows[0]["reason"]
    assert_alert_from_state_is_one_pass(
        sorted(
            staff_account() + daily_batch() + own(["staff3", "staff4", "staff5"], 2),
            key=lambda r: r["eventTime"],
        )
    )
    assert account_hours(rows_of(own(["staff3", "staff4", "staff5"], 2, "ec2"))) == []
    assert account_hours(rows_of([])) == []
    burst = run(
        sorted(
            staff_account() + own(["staff3"], 30) + own(["staff4", "staff5"], 1), key=lambda r: r["eventTime"]
        )
    )
    (account,) = [r for r in burst if r["entity_type"] == "account"]
    assert "91% of its failures are staff3's, scored as that principal" in account["reason"]
