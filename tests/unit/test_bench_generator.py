"""The quality bench's generator: deterministic per seed, real CloudTrail shapes, honest labels."""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from dataclasses import replace

import pytest
from bench import families, generator, quality
from bench.references import AUTHZ_CODES, fold_principal

SMALL = {"days": 16, "accounts": 2, "scenarios_per_kind": 1}


@pytest.fixture(scope="module")
def org() -> generator.Org:
    org = generator.generate(11, **SMALL)
    # (time, account, principal, record) once, for the look-ups below
    org.extra["rows"] = [
        (generator.record_time(r), r["recipientAccountId"], fold_principal(r), r) for r in org.records
    ]
    return org


def _calls(org: generator.Org, start: int, end: int, account: str, principal: str = "") -> list[dict]:
    return [
        r
        for t, a, p, r in org.extra["rows"]
        if start <= t < end and a == account and (not principal or p == principal)
    ]


def _failures(org: generator.Org, start: int, end: int, account: str, principal: str = "") -> list[dict]:
    return [r for r in _calls(org, start, end, account, principal) if r.get("errorCode") in AUTHZ_CODES]


def test_same_seed_same_data_other_seed_other_data(org: generator.Org) -> None:
    again = generator.generate(11, **SMALL)
    assert again.records == org.records
    assert again.labels == org.labels
    other = generator.generate(12, **SMALL)
    assert other.records[:50] != org.records[:50]


def test_records_have_cloudtrail_shapes(org: generator.Org) -> None:
    ids = set()
    types = Counter()
    for r in org.records:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["eventTime"])
        assert r["eventSource"].endswith(".amazonaws.com")
        assert re.fullmatch(r"\d{12}", r["recipientAccountId"])
        assert r["awsRegion"] and r["sourceIPAddress"] and r["userAgent"] and r["eventName"]
        ident = r["userIdentity"]
        types[ident["type"]] += 1
        if ident["type"] == "AssumedRole":
            issuer = ident["sessionContext"]["sessionIssuer"]["arn"]
            role = issuer.rsplit("/", 1)[-1]
            assert re.fullmatch(
                rf"arn:aws:sts::{ident['accountId']}:assumed-role/{re.escape(role)}/.+", ident["arn"]
            )
            assert ident["accessKeyId"].startswith("ASIA")
        elif ident["type"] == "IAMUser":
            assert ident["arn"].startswith(f"arn:aws:iam::{ident['accountId']}:user/")
            assert ident["accessKeyId"].startswith("AKIA") or r["eventName"] == "ConsoleLogin"
        elif ident["type"] == "AWSService":
            assert ident["invokedBy"].endswith(".amazonaws.com") and "arn" not in ident
        if "errorCode" in r:
            assert r["errorMessage"]
        ids.add(r["eventID"])
    assert len(ids) == len(org.records)
    assert {"IAMUser", "AssumedRole", "AWSService"} <= set(types)
    times = [r["eventTime"] for r in org.records]
    assert times == sorted(times)
    assert times[0] >= generator.iso(org.start) and times[-1] < generator.iso(org.end)


def test_successes_are_mixed_in_and_non_authz_codes_exist(org: generator.Org) -> None:
    codes = Counter(r.get("errorCode", "") for r in org.records)
    assert codes[""] > 0.25 * len(org.records)
    assert codes["Client.DryRunOperation"] > 0
    assert codes["AccessDenied"] > 0 and codes["Client.UnauthorizedOperation"] > 0


def test_every_attack_kind_is_labelled_with_hour_aligned_windows(org: generator.Org) -> None:
    kinds = Counter(label.kind for label in org.attacks())
    assert kinds == Counter(
        {
            "discovery_burst": 1,
            "low_and_slow": 1,
            "new_principal_burst": 1,
            "account_spread": 1,
            "relative_spike": 1,
            "console_login_burst": 1,
        }
    )
    for label in org.labels:
        for start, end in label.windows:
            assert start % 3600 == 0 and end % 3600 == 0
            assert org.start <= start < end <= org.end
        assert (label.entity_type == "account") == (label.principal == "")


def test_attack_windows_hold_the_injected_failures(org: generator.Org) -> None:
    for label in org.attacks():
        start, end = label.windows[0]
        if label.kind == "account_spread":
            members = set(label.members)
            assert len(members) >= 20
            hit = {fold_principal(r) for r in _failures(org, start, end, label.account)}
            assert len(members & hit) == len(members)
        elif label.kind == "discovery_burst":
            fails = _failures(org, start, end, label.account, label.principal)
            assert len(fails) >= 40
            assert len({r["eventName"] for r in fails}) >= 15
        elif label.kind == "new_principal_burst":
            assert len(_failures(org, start, end, label.account, label.principal)) >= 25
            assert _calls(org, org.start, start, label.account, label.principal) == []
        elif label.kind == "low_and_slow":
            fails = _failures(org, start, end, label.account, label.principal)
            hours = (end - start) // 3600
            assert 3 * hours <= len(fails) <= 25 * hours
        elif label.kind == "console_login_burst":
            calls = _calls(org, start, end, label.account, label.principal)
            failed = [r for r in calls if (r.get("responseElements") or {}).get("ConsoleLogin") == "Failure"]
            assert len(failed) >= 15
            assert all(r["eventName"] == "ConsoleLogin" and "errorCode" not in r for r in failed)
        elif label.kind == "relative_spike":
            during = len(_failures(org, start, end, label.account, label.principal)) / ((end - start) / 3600)
            day_before = len(_failures(org, start - 86400, start, label.account, label.principal)) / 24
            assert during > 2 * day_before > 0


def test_traps_are_benign_by_construction(org: generator.Org) -> None:
    kinds = Counter(label.kind for label in org.traps())
    assert kinds["log_delivery"] == 2 and kinds["batch_hour"] == 2 and kinds["dryrun_burst"] == 2
    for label in org.traps():
        start, end = label.windows[0]
        if label.kind == "log_delivery":
            per_hour = Counter(
                generator.record_time(r) // 3600
                for r in _failures(org, start, end, label.account, label.principal)
            )
            assert len(per_hour) == 83 and all(80 <= n <= 180 for n in per_hour.values())
        elif label.kind in ("dryrun_burst", "throttling_burst", "validation_burst"):
            own = _calls(org, start, end, label.account, label.principal)
            odd = Counter(r.get("errorCode") for r in own if r.get("errorCode") not in AUTHZ_CODES)
            assert sum(odd.values()) >= 80
            assert not any("DryRun" in c or "Throttl" in c for c in AUTHZ_CODES)
        elif label.kind == "batch_hour":
            assert len(label.windows) == org.days
            in_batch = sum(
                len(_failures(org, a, b, label.account, label.principal)) for a, b in label.windows
            )
            assert in_batch > 20 * org.days
            # outside its hour the batch role fails only when an attack scenario drags it in
            attacks = [w for lb in org.attacks() if lb.account == label.account for w in lb.windows]
            stray = [
                r
                for r in _failures(org, org.start, org.end, label.account, label.principal)
                if not label.covers(generator.record_time(r))
                and not any(a <= generator.record_time(r) < b for a, b in attacks)
            ]
            assert stray == []


def test_principal_days_counts_late_principals_from_their_first_hour(org: generator.Org) -> None:
    late = [p for p in org.principals if p.first_hour > 0]
    assert late
    full = sum(1 for p in org.principals if p.first_hour == 0) * org.days
    expected = full + sum((org.days * 24 - p.first_hour) / 24 for p in late)
    assert org.principal_days() == pytest.approx(expected)
    for p in late:
        seen = [t for t, a, q, _r in org.extra["rows"] if a == p.account and q == p.principal]
        assert not seen or min(seen) >= org.start + p.first_hour * 3600


# ---- families: generator settings whose habits each organisation draws ----------------------------

SMALL_FAMILY = {"days": 16, "scenarios_per_kind": 1}


def _family_org(name: str, seed: int) -> generator.Org:
    org = families.generate(families.with_accounts(families.FAMILIES[name], 2), seed, **SMALL_FAMILY)
    org.extra["rows"] = [
        (generator.record_time(r), r["recipientAccountId"], fold_principal(r), r) for r in org.records
    ]
    return org


@pytest.fixture(scope="module")
def steady() -> generator.Org:
    return _family_org("steady-automation", 3)


def test_families_are_named_settings_tuning_and_held_out_apart() -> None:
    tuning = {f.name for f in families.TUNING}
    held_out = {f.name for f in families.HELD_OUT}
    assert len(tuning) >= 4 and len(held_out) >= 4 and not tuning & held_out
    assert set(families.FAMILIES) == tuning | held_out
    # whole settings differ, not only seeds
    assert (
        len({(f.automation_rate, f.account_scale, f.spread_members) for f in families.FAMILIES.values()}) > 4
    )


def test_a_family_organisation_is_fixed_by_its_seed_and_draws_its_own_habits(steady: generator.Org) -> None:
    again = _family_org("steady-automation", 3)
    assert again.records == steady.records and again.labels == steady.labels
    other = _family_org("steady-automation", 4)
    rates = {p.fail_level for p in steady.principals if p.kind == "noisy_role"}
    assert rates and rates.isdisjoint({p.fail_level for p in other.principals if p.kind == "noisy_role"})
    assert steady.extra["family"] == "steady-automation"
    office = _family_org("office", 3)
    assert office.records[:50] != steady.records[:50]


def test_every_attack_kind_is_labelled_in_a_family_organisation(steady: generator.Org) -> None:
    assert {label.kind for label in steady.attacks()} == set(quality.ATTACK_KINDS)
    assert {"batch_hour", "person_burst", "dryrun_burst", "throttling_burst"} <= {
        lb.kind for lb in steady.traps()
    }


def test_the_thin_spread_is_a_few_principals_a_few_denials_each_within_minutes(steady: generator.Org) -> None:
    (label,) = [lb for lb in steady.attacks() if lb.kind == "account_spread"]
    fam = families.FAMILIES["steady-automation"]
    pool = [
        p
        for p in steady.principals
        if p.account == label.account and not p.is_service and p.kind != "root" and p.first_hour == 0
    ]
    assert min(fam.spread_size[0], len(pool)) <= len(label.members) <= fam.spread_size[1]
    start, end = label.windows[0]
    members = set(label.members)
    attack = [r for r in _failures(steady, start, end, label.account) if fold_principal(r) in members]
    per_member = Counter(fold_principal(r) for r in attack)
    assert set(per_member) == members
    ips = {r["sourceIPAddress"] for r in attack}
    mine = [r for r in attack if r["sourceIPAddress"] in ips and r["userAgent"] in generator.ATTACKER_AGENTS]
    assert max(len(members), fam.spread_failures[0]) <= len(mine) <= max(len(members), fam.spread_failures[1])
    assert len({r["eventSource"] for r in mine}) <= fam.spread_services[1]
    # in the organisation's quietest account (no steady automation there), or in a busier one at an
    # hour whose usual count it outnumbers ``spread_factor`` times
    usual = float(label.note.rsplit("~", 1)[1])
    noisy = [p for p in steady.principals if p.account == label.account and p.kind == "noisy_role"]
    assert not noisy or fam.spread_factor[0] * usual - 0.5 <= len(mine)


def _org_rows(fam: families.Family, seed: int) -> generator.Org:
    org = families.generate(fam, seed, **SMALL_FAMILY)
    org.extra["rows"] = [
        (generator.record_time(r), r["recipientAccountId"], fold_principal(r), r) for r in org.records
    ]
    return org


def test_thin_spreads_also_go_to_busier_accounts_at_several_times_their_usual_hour() -> None:
    base = families.with_accounts(families.FAMILIES["office"], 3)
    quiet_only = _org_rows(replace(base, spread_busier=0.0), 2)
    busier = _org_rows(replace(base, spread_busier=1.0), 2)
    (quiet_label,) = [lb for lb in quiet_only.attacks() if lb.kind == "account_spread"]
    (label,) = [lb for lb in busier.attacks() if lb.kind == "account_spread"]
    assert label.account != quiet_label.account  # the quietest account's spread moved
    spread, _rest = _spread_records(busier)
    usual = float(label.note.rsplit("~", 1)[1])
    assert base.spread_factor[0] * usual - 0.5 <= len(spread) <= base.spread_failures[1]
    # other accounts have more principals than the quietest
    sizes = Counter(p.account for p in busier.principals)
    assert sizes[label.account] > sizes[quiet_label.account]


def _spread_records(org: generator.Org) -> tuple[list[dict], list[dict]]:
    """The records of the organisation's thin spreads (its members, in its hour), and the others."""
    spreads = [(lb.windows[0], set(lb.members)) for lb in org.attacks() if lb.kind == "account_spread"]
    inside, outside = [], []
    for t, _a, p, r in org.extra["rows"]:
        hit = any(s <= t < e and p in m for (s, e), m in spreads) and r.get("errorCode") in AUTHZ_CODES
        (inside if hit and r["userAgent"] in generator.ATTACKER_AGENTS else outside).append(r)
    return inside, outside


def test_thin_spreads_of_many_sizes_and_timings_move_no_other_draw() -> None:
    """The spread's size and timing come from its own stream: a family whose spreads are 3
    principals within minutes and one whose spreads are 8 across the hour make the same
    organisation otherwise (records and labels)."""
    base = families.with_accounts(families.FAMILIES["startup"], 2)
    orgs = []
    for size, within in ((3, 1.0), (8, 0.0)):
        fam = replace(base, spread_size=(size, size), spread_failures=(8, 8), spread_within_minutes=within)
        org = families.generate(fam, 5, **SMALL_FAMILY)
        org.extra["rows"] = [
            (generator.record_time(r), r["recipientAccountId"], fold_principal(r), r) for r in org.records
        ]
        orgs.append(org)
    (small, small_rest), (wide, wide_rest) = (_spread_records(o) for o in orgs)
    assert small_rest == wide_rest
    assert [lb for lb in orgs[0].labels if lb.kind != "account_spread"] == [
        lb for lb in orgs[1].labels if lb.kind != "account_spread"
    ]
    (small_label,) = [lb for lb in orgs[0].attacks() if lb.kind == "account_spread"]
    (wide_label,) = [lb for lb in orgs[1].attacks() if lb.kind == "account_spread"]
    assert len(small_label.members) == 3 and len(wide_label.members) == 8
    assert len(small) >= base.spread_failures[0]
    times = sorted(generator.record_time(r) for r in small)
    assert times[-1] - times[0] <= base.spread_minutes[1] * 60
    times = sorted(generator.record_time(r) for r in wide)
    assert times[-1] - times[0] > base.spread_minutes[1] * 60


def _slow_records(org: generator.Org) -> tuple[list[dict], list[dict]]:
    """The attacker's records of the organisation's low-and-slow runs, and the others."""
    runs = [(lb.windows[0], lb.principal) for lb in org.attacks() if lb.kind == "low_and_slow"]
    inside, outside = [], []
    for t, _a, p, r in org.extra["rows"]:
        hit = any(s <= t < e and p == q for (s, e), q in runs) and r.get("errorCode") in AUTHZ_CODES
        (inside if hit and r["userAgent"] in generator.ATTACKER_AGENTS else outside).append(r)
    return inside, outside


def test_low_and_slow_runs_of_many_shapes_move_no_other_draw() -> None:
    """The run's rate, length, APIs and silent hours come from its own stream, drawn after every
    other scenario: 1 failure an hour for 3 hours on one API, or about 6 an hour for 10 hours on 20
    APIs with silent hours, make the same organisation otherwise (records and labels)."""
    base = replace(families.with_accounts(families.FAMILIES["office"], 2), spread_busier=0.0)
    thin = replace(base, slow_rate=(1.0, 1.0), slow_hours=(3, 3), slow_apis=(1, 1), slow_silent=(0.0, 0.0))
    wide = replace(
        base, slow_rate=(6.0, 6.0), slow_hours=(10, 10), slow_apis=(20, 20), slow_silent=(0.5, 0.5)
    )
    orgs = [_org_rows(fam, 4) for fam in (thin, wide)]
    (small, small_rest), (big, big_rest) = (_slow_records(o) for o in orgs)
    assert small_rest == big_rest
    others = [[lb for lb in o.labels if lb.kind != "low_and_slow"] for o in orgs]
    assert others[0] == others[1]
    (small_label,) = [lb for lb in orgs[0].attacks() if lb.kind == "low_and_slow"]
    (big_label,) = [lb for lb in orgs[1].attacks() if lb.kind == "low_and_slow"]
    assert small_label.windows[0][1] - small_label.windows[0][0] == 3 * 3600
    assert big_label.windows[0][1] - big_label.windows[0][0] == 10 * 3600
    assert len({r["eventName"] for r in small}) == 1 and len({r["eventName"] for r in big}) > 5
    # each hour of the thin run fails at least once; the wide one has silent hours inside
    assert len({generator.record_time(r) // 3600 for r in small}) == 3
    assert len({generator.record_time(r) // 3600 for r in big}) < 10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_low_and_slow_principal_is_near_silent_but_there(seed: int) -> None:
    """A run's own principal (a person signing in one day a week, an app role failing a few times
    once a day) has calls before the run, and fails about once a day or less."""
    fam = replace(families.with_accounts(families.FAMILIES["office"], 2), slow_new=1.0)
    org = _org_rows(fam, seed)
    (label,) = [lb for lb in org.attacks() if lb.kind == "low_and_slow"]
    start = label.windows[0][0]
    assert _calls(org, org.start, start, label.account, label.principal)
    days = (start - org.start) / 86400
    assert len(_failures(org, org.start, start, label.account, label.principal)) <= 2 * days
    assert label.principal not in {p.principal for p in generate_without_runs(fam, seed).principals}


def generate_without_runs(fam: families.Family, seed: int) -> generator.Org:
    return families.generate(replace(fam, slow_new=0.0), seed, **SMALL_FAMILY)


def test_the_relative_spike_uses_the_automations_usual_apis_and_addresses(steady: generator.Org) -> None:
    (label,) = [lb for lb in steady.attacks() if lb.kind == "relative_spike"]
    start, end = label.windows[0]
    before = _failures(steady, steady.start, start, label.account, label.principal)
    during = _failures(steady, start, end, label.account, label.principal)
    assert {r["eventName"] for r in during} <= {r["eventName"] for r in before}
    assert {r["sourceIPAddress"] for r in during} <= {r["sourceIPAddress"] for r in before}
    usual = len(before) / ((start - steady.start) / 3600)
    assert len(during) / ((end - start) / 3600) > 2 * usual


def test_a_concentrated_relative_spike_falls_in_minutes_of_each_hour_and_moves_no_other_draw() -> None:
    """A spike drawn concentrated (``spike_concentrated``) puts its extra failures in
    ``spike_minutes`` of each of its hours, the same minutes every hour; drawn spread, the same
    organisation otherwise (every other record, every label but the spike's note)."""
    base = replace(
        families.with_accounts(families.FAMILIES["steady-automation"], 2),
        spike_factor=(6.0, 6.0),
        spike_hours=(2, 2),
        spike_minutes=(10.0, 10.0),
    )
    orgs = [families.generate(replace(base, spike_concentrated=c), 4, **SMALL_FAMILY) for c in (1.0, 0.0)]
    spikes = []
    for org in orgs:
        (label,) = [lb for lb in org.attacks() if lb.kind == "relative_spike"]
        start, end = label.windows[0]
        arn = label.principal.split("/")[-1]
        inside = [
            r
            for r in org.records
            if start <= generator.record_time(r) < end
            and r.get("errorCode") in AUTHZ_CODES
            and fold_principal(r).endswith("/" + arn)
        ]
        spikes.append((label, start, inside))
        ids = {r["eventID"] for r in inside}
        org.extra["others"] = {r["eventID"]: r for r in org.records if r["eventID"] not in ids}
    (concentrated, start, inside), (spread, start2, inside2) = spikes
    assert (concentrated.windows, start) == (spread.windows, start2)
    assert "in 10 minutes" in concentrated.note and "over the hour" in spread.note
    assert orgs[0].extra["others"] == orgs[1].extra["others"]
    assert len(inside) == len(inside2)
    for hour in (start, start + 3600):
        mins = sorted(
            (generator.record_time(r) - hour) / 60
            for r in inside
            if hour <= generator.record_time(r) < hour + 3600
        )
        # x6: five sixths of the hour's failures are the spike's, all within one 10-minute window
        densest = max(bisect.bisect_right(mins, m + 10) - i for i, m in enumerate(mins))
        assert densest >= 0.6 * len(mins)
        mins2 = sorted(
            (generator.record_time(r) - hour) / 60
            for r in inside2
            if hour <= generator.record_time(r) < hour + 3600
        )
        assert max(bisect.bisect_right(mins2, m + 10) - i for i, m in enumerate(mins2)) < 0.45 * len(mins2)


def test_each_relative_spike_falls_on_an_automation_of_its_own_and_moves_no_other_record() -> None:
    """With ``spike_own_automation`` (the tuning families), an organisation whose only automation
    would carry all three spikes puts the second and third on new automations of their own; every
    other record and label is the organisation's without it (the spikes drawn again leave their
    draws made and their records dropped), so the held-out families, which keep the first bench's
    habit, are unchanged."""
    base = replace(
        families.with_accounts(families.FAMILIES["steady-automation"], 4),
        automations=(1, 1),
        quiet_accounts=3,
        scanners=(0, 0),
    )
    own, habit = (
        families.generate(replace(base, spike_own_automation=flag), 4, days=24, scenarios_per_kind=3)
        for flag in (True, False)
    )
    own_spikes, habit_spikes = (
        [lb for lb in o.attacks() if lb.kind == "relative_spike"] for o in (own, habit)
    )
    assert len({lb.principal for lb in habit_spikes}) == 1
    assert len({lb.principal for lb in own_spikes}) == 3 and own_spikes[0] == habit_spikes[0]
    assert all("its own automation" in lb.note for lb in own_spikes[1:])
    new = {p.principal for p in own.principals} - {p.principal for p in habit.principals}
    assert new == {lb.principal for lb in own_spikes[1:]}
    assert [lb for lb in own.labels if lb.kind != "relative_spike"] == [
        lb for lb in habit.labels if lb.kind != "relative_spike"
    ]

    def key(r: dict) -> str:
        return json.dumps(r, sort_keys=True)

    kept = Counter(key(r) for r in own.records if fold_principal(r) not in new)
    dropped = Counter(key(r) for r in habit.records) - kept
    assert not kept - Counter(key(r) for r in habit.records)  # every other record as it was
    windows = [lb.windows[0] for lb in habit_spikes[1:]]
    assert dropped and all(
        json.loads(k)["errorCode"] in AUTHZ_CODES
        and fold_principal(json.loads(k)) == habit_spikes[0].principal
        and any(s <= generator.record_time(json.loads(k)) < e for s, e in windows)
        for k in dropped
    )


def _attacks_by_principal(org: generator.Org) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for lb in org.attacks():
        for name in (lb.principal,) if lb.principal else lb.members:
            out.setdefault(name, set()).add(lb.name)
    return out


def test_each_attack_is_planted_on_a_principal_no_other_attack_used() -> None:
    """With ``attack_own_principal`` (the tuning families), a console login burst or a thin
    spread's member that would fall on the person of an earlier discovery burst (office, seed 29:
    the same person three times) is drawn again among principals no attack used; the other attacks
    and every trap are as drawn without it, so an organisation without such a collision (every
    held-out family keeps the first bench's habit) is unchanged."""
    base = replace(families.with_accounts(families.FAMILIES["office"], 2), slow_new=0.0, scanners=(0, 0))
    own, habit = (
        families.generate(replace(base, attack_own_principal=flag), 29, **SMALL_FAMILY)
        for flag in (True, False)
    )
    shared = {p: kinds for p, kinds in _attacks_by_principal(habit).items() if len(kinds) > 1}
    assert any({"discovery_burst#1", "console_login_burst#1"} <= kinds for kinds in shared.values())
    assert all(len(kinds) == 1 for kinds in _attacks_by_principal(own).values())
    moved = ("console_login_burst", "account_spread")
    assert [lb for lb in own.labels if lb.kind not in moved] == [
        lb for lb in habit.labels if lb.kind not in moved
    ]
    (spread,) = [lb for lb in own.attacks() if lb.kind == "account_spread"]
    (habit_spread,) = [lb for lb in habit.attacks() if lb.kind == "account_spread"]
    assert len(spread.members) == len(habit_spread.members) and spread.windows == habit_spread.windows
    # the same organisation where nothing collides: office, seed 1, the same records either way
    plain, plain_habit = (
        families.generate(replace(base, attack_own_principal=flag), 1, **SMALL_FAMILY)
        for flag in (True, False)
    )
    assert all(len(kinds) == 1 for kinds in _attacks_by_principal(plain_habit).values())
    assert plain.records == plain_habit.records and plain.labels == plain_habit.labels


def test_a_person_burst_is_a_small_burst_in_seconds(steady: generator.Org) -> None:
    fam = families.FAMILIES["steady-automation"]
    labels = [lb for lb in steady.traps() if lb.kind == "person_burst"]
    assert len(labels) == fam.person_bursts
    for label in labels:
        start, end = label.windows[0]
        fails = sorted(
            generator.record_time(r) for r in _failures(steady, start, end, label.account, label.principal)
        )
        densest = max(bisect.bisect_right(fails, t + 31) - i for i, t in enumerate(fails))
        assert densest >= fam.person_burst_size[0]


def test_people_who_burst_every_week_do_it_in_seconds_on_their_own_two_apis() -> None:
    org = _family_org("dispersed-automation", 2)
    fam = families.FAMILIES["dispersed-automation"]
    labels = [lb for lb in org.traps() if lb.kind == "habitual_burst"]
    assert labels
    kinds = {p.principal: p.kind for p in org.principals}
    for label in labels:
        assert kinds[label.principal] in ("human", "sso_role")
        apis: Counter = Counter()
        for start, end in label.windows:
            fails = sorted(
                _failures(org, start, end, label.account, label.principal), key=generator.record_time
            )
            times = [generator.record_time(r) for r in fails]
            size, first = max((bisect.bisect_right(times, t + 31) - i, i) for i, t in enumerate(times))
            assert size >= fam.habitual_burst_size[0]
            apis.update({r["eventName"] for r in fails[first : first + size]})
        # the same two APIs every time
        assert 1 <= len([api for api, n in apis.items() if n == len(label.windows)]) <= 2
    # only this family draws them: the others' organisations are unchanged by the habit
    assert not [lb for lb in _family_org("steady-automation", 2).traps() if lb.kind == "habitual_burst"]


def test_the_dispersed_tuning_family_differs_from_the_held_out_noisy_one() -> None:
    tuning, held_out = families.FAMILIES["dispersed-automation"], families.FAMILIES["noisy-automation"]
    assert tuning in families.TUNING and held_out in families.HELD_OUT
    for name in ("automation_rate", "automation_day_shape", "automation_hour_shape", "automation_weekend"):
        assert getattr(tuning, name) != getattr(held_out, name), name


def test_the_classroom_family_bursts_over_several_ec2_apis_and_differs_from_teaching() -> None:
    org = _family_org("classroom", 2)
    fam = families.FAMILIES["classroom"]
    labels = [lb for lb in org.traps() if lb.kind == "person_burst"]
    assert len(labels) == fam.person_bursts
    widths = set()
    for label in labels:
        start, end = label.windows[0]
        fails = sorted(_failures(org, start, end, label.account, label.principal), key=generator.record_time)
        times = [generator.record_time(r) for r in fails]
        size, first = max((bisect.bisect_right(times, t + 31) - i, i) for i, t in enumerate(times))
        burst = fails[first : first + size]
        assert {r["eventSource"] for r in burst} == {"ec2.amazonaws.com"}
        widths.add(len({r["eventName"] for r in burst}))
    assert max(widths) >= 3  # a console page's loads, not a command retried on two APIs
    assert [lb for lb in org.traps() if lb.kind == "bursty_day"]
    # the other families' small bursts stay on two APIs; classroom's ranges are its own
    assert families.FAMILIES["office"].person_burst_apis == (2, 2)
    teaching = families.FAMILIES["teaching"]
    assert fam in families.TUNING and teaching in families.HELD_OUT
    for name in ("humans", "human_fail", "bursty_people", "bursty_day", "person_burst_size"):
        assert getattr(fam, name) != getattr(teaching, name), name


def test_a_stuck_retry_is_one_new_api_at_a_steady_cadence_and_moves_no_other_draw() -> None:
    """The benign stuck script (a deploy's new call denied and retried for hours on a near-silent
    principal) comes from a stream of its own, drawn last: every other record and label of the
    organisation is the same with or without it, and each is one API the principal never called,
    retried at a steady interval for the label's hours."""
    base = families.with_accounts(families.FAMILIES["office"], 2)
    without = _org_rows(replace(base, stuck_retries=0), 2)
    stuck = _org_rows(replace(base, stuck_retries=3), 2)
    ids = {r["eventID"] for r in without.records}
    assert [r for r in stuck.records if r["eventID"] in ids] == without.records
    assert [lb for lb in stuck.labels if lb.kind != "stuck_retry"] == without.labels
    labels = [lb for lb in stuck.traps() if lb.kind == "stuck_retry"]
    assert len(labels) == 3 and not [lb for lb in without.labels if lb.kind == "stuck_retry"]
    extra = {fold_principal(r) for r in stuck.records if r["eventID"] not in ids}
    assert extra <= {lb.principal for lb in labels}
    apis = {p.principal: {name for _s, name in p.apis} for p in stuck.principals}
    for lb in labels:
        ((s, e),) = lb.windows
        assert 3 * 3600 <= e - s <= 10 * 3600
        retries = [
            r
            for t, _a, p, r in stuck.extra["rows"]
            if s <= t < e and p == lb.principal and r["eventName"] not in apis[lb.principal]
        ]
        assert len({r["eventName"] for r in retries}) == 1
        times = [generator.record_time(r) for r in retries]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert len(retries) >= 3 and max(gaps) <= 1.2 * min(gaps) + 2
        assert all(r["errorCode"] in AUTHZ_CODES for r in retries)


def test_a_security_scanner_is_denied_on_the_same_apis_every_run_and_moves_no_other_record() -> None:
    fam = replace(
        families.with_accounts(families.FAMILIES["office"], 2), scanner_every=(24,), scanner_denied=(0.2, 0.3)
    )
    org = families.generate(fam, 3, **SMALL_FAMILY)
    org.extra["rows"] = [
        (generator.record_time(r), r["recipientAccountId"], fold_principal(r), r) for r in org.records
    ]
    kinds = Counter(lb.kind for lb in org.traps() if lb.kind.startswith("scanner_"))
    assert kinds["scanner_first"] >= 1 and kinds["scanner_run"] >= 1 and kinds["scanner_onboard"] == 1
    assert kinds["scanner_upgrade"] >= 1
    run = next(lb for lb in org.traps() if lb.kind == "scanner_run")
    upgrade = next(lb for lb in org.traps() if lb.kind == "scanner_upgrade" and lb.principal == run.principal)
    first = upgrade.windows[0][0]
    denied = [
        {r["eventName"] for r in _failures(org, start, end, run.account, run.principal)}
        for start, end in run.windows
        if end <= first
    ]
    assert len(denied) >= 2 and all(len(d) >= 5 for d in denied)
    # the same APIs every run (a check may be skipped), more after the upgrade
    assert all(len(a & b) >= 0.8 * max(len(a), len(b)) for a, b in zip(denied, denied[1:]))
    after = {r["eventName"] for r in _failures(org, *upgrade.windows[0], run.account, run.principal)}
    assert len(after - set.union(*denied)) >= fam.scanner_upgrade_apis[0] - 2
    agents = {r["userAgent"] for r in _calls(org, *run.windows[0], run.account, run.principal)}
    assert len(agents) == 1
    # drawn last from a stream of its own: without scanners the organisation is the same, record for record
    without = families.generate(replace(fam, scanners=(0, 0)), 3, **SMALL_FAMILY)
    ids = {r["eventID"] for r in org.records}
    assert all(r["eventID"] in ids for r in without.records)
    # (the thin spreads are drawn after the tools, from their own stream: their labels come last)
    assert without.labels == [lb for lb in org.labels if not lb.kind.startswith("scanner_")]
    # of the held-out families only audited draws scanners, on cadences no tuning family has
    assert [f.name for f in families.HELD_OUT if f.scanners != (0, 0)] == ["audited"]
    tuned = {e for f in families.TUNING for e in f.scanner_every}
    assert not tuned & set(families.FAMILIES["audited"].scanner_every)
