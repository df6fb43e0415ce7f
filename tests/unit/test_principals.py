"""Principal folding table: sessions fold to roles, SSO users stay people, services by invokedBy."""

from __future__ import annotations

import pytest
from iamspike.principals import fold_arn, fold_principal, is_person, short_name

ACCT = "111122223333"
SSO = "AWSReservedSSO_Admin_0123abcd"


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (
            {"identity_type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/alice"},
            f"arn:aws:iam::{ACCT}:user/alice",
        ),
        (
            {
                "identity_type": "AssumedRole",
                "arn": f"arn:aws:sts::{ACCT}:assumed-role/app-role/i-0abc",
                "issuer_arn": f"arn:aws:iam::{ACCT}:role/service-role/app-role",
            },
            f"arn:aws:iam::{ACCT}:role/app-role",
        ),
        (
            {"identity_type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/app-role/session-2"},
            f"arn:aws:iam::{ACCT}:role/app-role",
        ),
        (
            {
                "identity_type": "AssumedRole",
                "arn": f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_Admin_0123abcd/bob@example.com",
                "issuer_arn": f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/{SSO}",
            },
            f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_Admin_0123abcd/bob@example.com",
        ),
        ({"identity_type": "Root", "arn": f"arn:aws:iam::{ACCT}:root"}, f"arn:aws:iam::{ACCT}:root"),
        ({"identity_type": "Root", "arn": "", "account_id": ACCT}, f"arn:aws:iam::{ACCT}:root"),
        (
            {"identity_type": "FederatedUser", "arn": f"arn:aws:sts::{ACCT}:federated-user/carol"},
            f"arn:aws:sts::{ACCT}:federated-user/carol",
        ),
        (
            {"identity_type": "AWSService", "arn": "", "invoked_by": "delivery.logs.amazonaws.com"},
            "delivery.logs.amazonaws.com",
        ),
        (
            {
                "identity_type": "AssumedRole",
                "arn": f"arn:aws:sts::{ACCT}:assumed-role/app-role/s",
                "invoked_by": "athena.amazonaws.com",
            },
            f"arn:aws:iam::{ACCT}:role/app-role",
        ),
        (
            {"identity_type": "AWSAccount", "arn": "", "account_id": "999988887777"},
            "aws-account:999988887777",
        ),
        ({"identity_type": "", "arn": "", "principal_id": "AIDAEXAMPLE"}, "AIDAEXAMPLE"),
        ({"identity_type": "", "arn": ""}, "unknown"),
    ],
)
def test_fold_principal(identity: dict, expected: str) -> None:
    assert fold_principal(**identity) == expected


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (f"arn:aws:sts::{ACCT}:assumed-role/r/s", f"arn:aws:iam::{ACCT}:role/r"),
        (f"arn:aws:iam::{ACCT}:role/path/to/r", f"arn:aws:iam::{ACCT}:role/r"),
        (f"arn:aws:iam::{ACCT}:user/u", f"arn:aws:iam::{ACCT}:user/u"),
        ("delivery.logs.amazonaws.com", "delivery.logs.amazonaws.com"),
    ],
)
def test_fold_arn(arn: str, expected: str) -> None:
    assert fold_arn(arn) == expected


def test_short_name() -> None:
    assert short_name(f"arn:aws:iam::{ACCT}:user/temp-user") == "temp-user"
    assert short_name(f"arn:aws:iam::{ACCT}:root") == "root"
    assert short_name("delivery.logs.amazonaws.com") == "delivery.logs.amazonaws.com"


def test_people_are_users_sso_sessions_and_federated_users() -> None:
    assert is_person(f"arn:aws:iam::{ACCT}:user/alice")
    assert is_person(f"arn:aws:sts::{ACCT}:assumed-role/{SSO}/alice@example.com")
    assert is_person(f"arn:aws:sts::{ACCT}:federated-user/bob")
    assert not is_person(f"arn:aws:iam::{ACCT}:role/ci-deployer")
    assert not is_person(f"arn:aws:iam::{ACCT}:root")
    assert not is_person("delivery.logs.amazonaws.com")
