"""Principals: fold a CloudTrail ``userIdentity`` to the entity whose failures are counted.

- IAM users: their ARN; root: ``arn:aws:iam::<acct>:root``.
- Roles: assumed-role sessions fold to ``arn:aws:iam::<acct>:role/<name>`` (from the session issuer,
  or derived from the STS ARN); the role path is dropped so both sources give one name.
- Identity Center (``AWSReservedSSO_*`` roles) and federated users: the person, i.e. the STS ARN
  with its session name (every SSO user shares the permission-set role).
- AWS service principals: the service that invoked the call (``userIdentity.invokedBy``).
"""

from __future__ import annotations

SSO_ROLE_PREFIX = "AWSReservedSSO_"


def _role_name(role_arn: str) -> tuple[str, str]:
    """(account, name) from ``arn:aws:iam::<acct>:role/<path/>name``."""
    parts = role_arn.split(":", 5)
    account = parts[4] if len(parts) > 4 else ""
    resource = parts[5] if len(parts) > 5 else ""
    return account, resource.rsplit("/", 1)[-1]


def fold_arn(arn: str) -> str:
    """Fold one ARN: STS assumed-role sessions to their role (SSO sessions kept whole)."""
    if ":assumed-role/" in arn:
        head, _, rest = arn.partition(":assumed-role/")
        role, _, _session = rest.partition("/")
        if role.startswith(SSO_ROLE_PREFIX):
            return arn
        account = head.rsplit(":", 1)[-1]
        return f"arn:aws:iam::{account}:role/{role}"
    if ":role/" in arn and arn.startswith("arn:aws"):
        account, name = _role_name(arn)
        return f"arn:aws:iam::{account}:role/{name}"
    return arn


def fold_principal(
    identity_type: str,
    arn: str,
    issuer_arn: str = "",
    invoked_by: str = "",
    account_id: str = "",
    principal_id: str = "",
) -> str:
    """The principal (entity) of one call, from the flattened ``userIdentity`` fields."""
    if identity_type == "AWSService" or (not arn and invoked_by):
        return invoked_by or principal_id or "aws-service"
    if identity_type == "Root" and not arn and account_id:
        return f"arn:aws:iam::{account_id}:root"
    if arn:
        if ":assumed-role/" in arn:
            role = arn.partition(":assumed-role/")[2].partition("/")[0]
            if role.startswith(SSO_ROLE_PREFIX):
                return arn
            if issuer_arn and ":role/" in issuer_arn:
                account, name = _role_name(issuer_arn)
                return f"arn:aws:iam::{account}:role/{name}"
        return fold_arn(arn)
    if issuer_arn:
        return fold_arn(issuer_arn)
    if identity_type == "AWSAccount" and account_id:
        return f"aws-account:{account_id}"
    if principal_id:
        return principal_id
    return "unknown"


def is_person(principal: str) -> bool:
    """IAM users, Identity Center (SSO) sessions and federated users: people, whose failures come
    in bursts of a command retried (root is left out: its failures are rare and serious)."""
    return (
        ":user/" in principal
        or ":federated-user/" in principal
        or (":assumed-role/" + SSO_ROLE_PREFIX in principal)
    )


def short_name(principal: str) -> str:
    """A readable name for reasons: the part after the last ``/`` of an ARN."""
    if principal.startswith("arn:"):
        tail = principal.rsplit("/", 1)[-1]
        return tail if tail and "/" in principal else principal.rsplit(":", 1)[-1]
    return principal
