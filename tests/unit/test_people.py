"""People's bursts (people.py, flags.py): the effective number of APIs of a person's failures, the
onset hold-down of a person's bin on fewer than 3 of them, and rule P20: one service's failures are
one API's worth, a burst on APIs the person failed on before is no sweep (docs/engine.md section 5)."""

from __future__ import annotations

import numpy as np
import pytest
from iamspike.engine import run
from iamspike.people import cell_breadth, effective_apis, page_load, person_breadth
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
        dict(event(spike + 50 + i, judy, api, "AccessDenied"), eventSource="iam.amazonaws.com")
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


# ---- rule P20: a person's failures on one service, and on APIs it has failed on before

SERVICES = {
    "DescribeInstances": "ec2.amazonaws.com",
    "DescribeVpcs": "ec2.amazonaws.com",
    "DescribeSnapshots": "ec2.amazonaws.com",
    "DescribeSecurityGroups": "ec2.amazonaws.com",
    "DescribeKeyPairs": "ec2.amazonaws.com",
    "DescribeImages": "ec2.amazonaws.com",
    "GetObject": "s3.amazonaws.com",
    "ListKeys": "kms.amazonaws.com",
    "ListQueues": "sqs.amazonaws.com",
    "GetParameters": "ssm.amazonaws.com",
    "ListFunctions": "lambda.amazonaws.com",
    "ListSecrets": "secretsmanager.amazonaws.com",
    "DescribeTrails": "cloudtrail.amazonaws.com",
    "ListClusters": "ecs.amazonaws.com",
    "GetFindings": "securityhub.amazonaws.com",
}
USUAL = ["GetObject", "ListKeys", "ListQueues", "GetParameters", "ListFunctions"]
OTHER = ["ListSecrets", "DescribeTrails", "ListClusters", "GetFindings", "DescribeImages"]
EC2_PAGE = [
    "DescribeInstances",
    "DescribeVpcs",
    "DescribeSnapshots",
    "DescribeSecurityGroups",
    "DescribeKeyPairs",
    "DescribeImages",
]


def call(t: float, arn: str, api: str) -> dict:
    return dict(event(t, arn, api, "AccessDenied"), eventSource=SERVICES[api])


def test_a_page_load_is_one_service_or_the_console_and_narrow() -> None:
    ec2 = {"ec2.amazonaws.com": 18}
    three = {"s3.amazonaws.com": 3, "kms.amazonaws.com": 3, "sqs.amazonaws.com": 3}
    assert page_load(ec2, {"aws-cli/2": 18})
    assert page_load(three, {"signin.amazonaws.com": 6, "AWS Internal": 3})
    assert not page_load(three, {"signin.amazonaws.com": 6, "aws-cli/2": 3})
    assert not page_load(three, {})
    assert cell_breadth({a: 3 for a in EC2_PAGE}, page=True) == 2.0
    assert cell_breadth({"GetObject": 3, "ListKeys": 3, "ListQueues": 3}, page=False) == 3.0


def test_person_breadth_counts_known_apis_as_usual_and_no_novelty_in_a_page_load() -> None:
    apis, new = person_breadth(
        np.array([5.0, 5.0, 5.0, 5.0]),
        np.array([0.0, 3.0, 0.0, 5.0]),
        np.array([1.5, 1.5, 0.0, 1.0]),
        known=np.array([True, True, False, False]),
        page=np.array([False, False, False, True]),
    )
    assert apis.tolist() == [1.5, 5.0, 5.0, 5.0]  # only a burst on known APIs alone is narrowed
    assert new.tolist() == [0.0, 3.0, 0.0, 2.0]  # a page load: no more than the two free new APIs


def student(busy_days: int = 10) -> list[dict]:
    """judy fails now and then on her five usual APIs (five services) in office hours."""
    judy = user("judy")
    return [
        call(T0 + d * 24 * HOUR + (10 + k) * HOUR + 600, judy, USUAL[(d + k) % 5])
        for d in range(busy_days)
        for k in range(2)
        if d % 7 < 5
    ]


def test_a_busier_hour_on_a_persons_usual_apis_is_not_a_sweep_new_apis_are() -> None:
    spike = T0 + SPIKE_HOUR * HOUR
    judy = user("judy")
    busy = [call(spike + 400 * i, judy, USUAL[i % 5]) for i in range(9)]
    assert flagged(student() + busy, judy) == []
    sweep = [call(spike + 400 * i, judy, OTHER[i % 5]) for i in range(9)]
    assert flagged(student() + sweep, judy) == [SPIKE_HOUR]


def test_a_console_pages_loads_on_one_service_are_one_api_a_burst_across_services_is_not() -> None:
    spike = T0 + SPIKE_HOUR * HOUR
    judy = user("judy")
    page = [call(spike + i / 3, judy, EC2_PAGE[i % 6]) for i in range(18)]  # 18 in 6 s, 6 EC2 APIs
    assert flagged(student() + page, judy) == []
    across = [call(spike + i / 3, judy, OTHER[i % 5]) for i in range(18)]
    assert flagged(student() + across, judy) == [SPIKE_HOUR]
