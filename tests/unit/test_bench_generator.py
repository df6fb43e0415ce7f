"""The quality bench's generator: deterministic per seed, real CloudTrail shapes, honest labels."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from bench import generator
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
