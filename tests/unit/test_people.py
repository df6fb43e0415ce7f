"""People's bursts (results.py): the effective number of APIs of a person's failures, and the onset
hold-down of a person's bin on fewer than 3 of them (docs/engine.md section 5)."""

from __future__ import annotations

import pytest
from iamspike.engine import run
from iamspike.results import effective_apis
from test_spread import ACCT, EC2, HOUR, SPIKE_HOUR, T0, event, quiet_account, user


@pytest.mark.parametrize(
    ("failures", "expected"),
    [([14, 1], 225 / 197), ([5, 5], 2.0), ([1] * 10, 10.0), ([7], 1.0), ([], 0.0)],
)
def test_effective_apis(failures: list[int], expected: float) -> None:
    assert effective_apis(failures) == pytest.approx(expected)


def flagged(records: list[dict], principal: str) -> list[int]:
    rows = run(sorted(quiet_account(11) + records, key=lambda r: r["eventTime"]))
    return [(r["_time"] - T0) // HOUR for r in rows if r["principal"] == principal]


def test_a_command_retried_with_a_stray_denial_is_one_api_a_sweep_is_not() -> None:
    spike = T0 + SPIKE_HOUR * HOUR
    judy = user("judy")
    retried = [event(spike + i, judy, "DescribeInstances") for i in range(16)]
    stray = [event(spike + 100, judy, "DescribeVpcs"), event(spike + 200, judy, "ListUsers", "AccessDenied")]
    assert flagged(retried + stray, judy) == []
    sweep = [event(spike + i, judy, EC2[i % 4]) for i in range(12)] + [
        event(spike + 50 + i, judy, api, "AccessDenied")
        for i, api in enumerate(["ListUsers", "ListRoles"] * 3)
    ]
    assert flagged(sweep, judy) == [SPIKE_HOUR]


def test_a_persons_burst_on_one_api_lifts_the_hold_down_from_about_30_a_roles_from_20() -> None:
    spike = T0 + SPIKE_HOUR * HOUR
    judy = user("judy")
    role = f"arn:aws:iam::{ACCT}:role/ci-deployer"
    assert flagged([event(spike + i, judy) for i in range(22)], judy) == []
    assert flagged([event(spike + i, judy) for i in range(32)], judy) == [SPIKE_HOUR]
    assert flagged([event(spike + i, role) for i in range(22)], role) == [SPIKE_HOUR]
