"""EC2 DescribeInstances -> one inventory event per instance (the ``aws_ec2_inventory`` input).

The investigation asks "is this source IP an EC2 instance in one of our accounts, and is the call
normal for its role?". Each run walks every configured account (the input's own identity, or one
``role_arn`` per account, assumed through STS) and region with the DescribeInstances paginator
and writes one ``sourcetype=aws:ec2:inventory`` JSON event per instance: ids, account, region,
state, every private and public IP (all network interfaces), the instance profile and the role
in it, tags and launch time. A scheduled search folds these events into the
``aws_ec2_inventory_ips`` lookup (IP -> instance, account, region, role, first/last seen).

An AWS error in one account or region is logged with what to fix, and the run goes on with the
others. The input keeps no checkpoint: every run is a full snapshot.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar

from iamspike.ingest.aws import (
    AWS_ERRORS,
    AwsClients,
    AwsSettingError,
    AwsSettings,
    check_region,
    check_role_arn,
    explain,
    int_setting,
    is_access_denied,
)
from iamspike.ingest.context import InputContext, InputKind
from iamspike.ingest.events import Deadline, EventSink, RunSummary
from iamspike.ingest.settings import check_interval

SOURCETYPE = "aws:ec2:inventory"
SOURCE_PREFIX = "aws:ec2:describeinstances:"
MIN_INTERVAL = 300

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InventorySettings:
    """The input's own settings (the AWS ones are ``AwsSettings``)."""

    regions: tuple[str, ...] = ("us-east-1",)
    role_arns: tuple[str, ...] = ()
    interval: int = 3600


def parse_settings(params: Mapping[str, str]) -> InventorySettings:
    """The stanza's keys -> settings; ``AwsSettingError`` (one line) on a bad value.

    Keys beyond the common AWS ones: ``regions`` (comma-separated), ``role_arn`` (comma-separated:
    one role per account; empty = the input's own identity), ``interval`` (seconds, >= 300).
    """
    regions = tuple(
        dict.fromkeys(check_region(r) for r in (params.get("regions") or "us-east-1").split(",") if r.strip())
    )
    if not regions:
        raise AwsSettingError("regions must name at least one AWS region (for example us-east-1)")
    role_arns = tuple(
        dict.fromkeys(check_role_arn(r) for r in (params.get("role_arn") or "").split(",") if r.strip())
    )
    interval_text = str(params.get("interval") or "").strip()
    if interval_text.isdigit():
        interval = int_setting(interval_text, "interval", 3600, MIN_INTERVAL, 7 * 86400)
    else:
        check_interval(interval_text)
        interval = 3600
    return InventorySettings(regions=regions, role_arns=role_arns, interval=interval)


def aws_params(params: Mapping[str, str]) -> dict[str, str]:
    """The AWS settings' keys: ``role_arn`` is the first of the stanza's roles (one per account)."""
    return dict(params, role_arn=(params.get("role_arn") or "").split(",")[0].strip())


def _tags(instance: Mapping[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value", "")) for t in instance.get("Tags") or [] if t.get("Key")}


def _addresses(instance: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    private: list[str] = []
    public: list[str] = []
    ipv6: list[str] = []

    def add(bucket: list[str], value: Any) -> None:
        if value and value not in bucket:
            bucket.append(str(value))

    add(private, instance.get("PrivateIpAddress"))
    add(public, instance.get("PublicIpAddress"))
    for eni in instance.get("NetworkInterfaces") or []:
        add(public, (eni.get("Association") or {}).get("PublicIp"))
        for address in eni.get("PrivateIpAddresses") or []:
            add(private, address.get("PrivateIpAddress"))
            add(public, (address.get("Association") or {}).get("PublicIp"))
        for address in eni.get("Ipv6Addresses") or []:
            add(ipv6, address.get("Ipv6Address"))
    return private, public, ipv6


def instance_event(
    instance: Mapping[str, Any], account: str, region: str, role: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One DescribeInstances instance -> the inventory event (a flat JSON object)."""
    private, public, ipv6 = _addresses(instance)
    profile_arn = str((instance.get("IamInstanceProfile") or {}).get("Arn") or "")
    launch = instance.get("LaunchTime")
    tags = _tags(instance)
    placement = instance.get("Placement") or {}
    return {
        "instance_id": instance.get("InstanceId", ""),
        "account": account,
        "region": region,
        "availability_zone": placement.get("AvailabilityZone", ""),
        "state": (instance.get("State") or {}).get("Name", ""),
        "instance_type": instance.get("InstanceType", ""),
        "image_id": instance.get("ImageId", ""),
        "launch_time": launch.strftime("%Y-%m-%dT%H:%M:%SZ")
        if hasattr(launch, "strftime")
        else str(launch or ""),
        "vpc_id": instance.get("VpcId", ""),
        "subnet_id": instance.get("SubnetId", ""),
        "private_ip": instance.get("PrivateIpAddress", ""),
        "public_ip": instance.get("PublicIpAddress", ""),
        "private_ips": private,
        "public_ips": public,
        "ipv6_ips": ipv6,
        "private_dns": instance.get("PrivateDnsName", ""),
        "public_dns": instance.get("PublicDnsName", ""),
        "instance_profile_arn": profile_arn,
        "instance_profile": profile_arn.rsplit("/", 1)[-1] if profile_arn else "",
        "instance_role": (role or {}).get("name", ""),
        "instance_role_arn": (role or {}).get("arn", ""),
        "key_name": instance.get("KeyName", ""),
        "name": tags.get("Name", ""),
        "tags": tags,
    }


@dataclass
class InventorySummary(RunSummary):
    """What one run did: ``events`` are the instances written."""

    regions: int = 0
    accounts: int = 0

    noun: ClassVar[str] = "instances"

    def read(self) -> str:
        return f"{self.regions} regions in {self.accounts} accounts"


@dataclass
class InventoryRun:
    """One run over every account and region."""

    aws: AwsSettings
    settings: InventorySettings
    sink: EventSink
    deadline: Deadline
    clients: Callable[[AwsSettings], AwsClients] = AwsClients
    clock: Callable[[], float] = time.time
    stats: InventorySummary = field(default_factory=InventorySummary)

    def run(self) -> InventorySummary:
        identities = [replace(self.aws, role_arn=arn) for arn in self.settings.role_arns] or [self.aws]
        log.info(
            "EC2 inventory run starts: %d accounts, regions %s",
            len(identities),
            ",".join(self.settings.regions),
        )
        for aws in identities:
            if self.deadline.expired():
                log.warning("EC2 inventory run stopped by its deadline before %s", aws.principal())
                break
            self._account(aws)
        return self.stats

    def _account(self, aws: AwsSettings) -> None:
        try:
            clients = self.clients(aws)
            account = str(clients.client("sts").get_caller_identity()["Account"])
        except AWS_ERRORS as exc:
            self.stats.errors += 1
            if aws.role_arn:  # the base identity assumes the role: name it, not the role
                cause = explain(exc, "sts:AssumeRole", aws.role_arn, replace(aws, role_arn=""))
            else:
                cause = explain(exc, "sts:GetCallerIdentity", "*", aws)
            log.error("%s; skipping this account", cause)
            return
        self.stats.accounts += 1
        roles = _RoleResolver(clients, aws)
        for region in self.settings.regions:
            if self.deadline.expired():
                break
            self._region(clients, aws, account, region, roles)

    def _region(
        self, clients: AwsClients, aws: AwsSettings, account: str, region: str, roles: _RoleResolver
    ) -> None:
        source = SOURCE_PREFIX + region
        count = 0
        try:
            paginator = clients.client("ec2", region).get_paginator("describe_instances")
            pages = iter(paginator.paginate(PaginationConfig={"PageSize": 1000}))
            while True:
                with self.deadline.interruptible():  # a SIGTERM cuts a slow call short (StopRun)
                    page = next(pages, None)
                if page is None:
                    break
                seen_at = self.clock()
                for reservation in page.get("Reservations") or []:
                    owner = str(reservation.get("OwnerId") or account)
                    for instance in reservation.get("Instances") or []:
                        role = roles.role(instance)
                        event = instance_event(instance, owner, region, role)
                        self.sink.write(json.dumps(event, sort_keys=True), seen_at, source, SOURCETYPE)
                        count += 1
                self.sink.flush()
                if self.deadline.expired():
                    break
        except AWS_ERRORS as exc:
            self.stats.errors += 1
            resource = f"arn:aws:ec2:{region}:{account}:instance/*"
            cause = explain(exc, "ec2:DescribeInstances", resource, aws)
            if count:  # a later page failed: what came before is written, the next run is whole
                log.error("%s; region %s stopped after %d instances this run", cause, region, count)
            else:
                log.error("%s; region %s skipped this run", cause, region)
        self.sink.flush()
        self.stats.regions += 1
        self.stats.events += count
        log.info("account %s region %s: %d instances", account, region, count)


class _RoleResolver:
    """Instance profile ARN -> the role in it (iam:GetInstanceProfile), cached; optional."""

    def __init__(self, clients: AwsClients, aws: AwsSettings) -> None:
        self.clients = clients
        self.aws = aws
        self.cache: dict[str, dict[str, str]] = {}
        self.denied = False

    def role(self, instance: Mapping[str, Any]) -> dict[str, str] | None:
        arn = str((instance.get("IamInstanceProfile") or {}).get("Arn") or "")
        if not arn or self.denied:
            return None
        if arn not in self.cache:
            name = arn.rsplit("/", 1)[-1]
            try:
                roles = self.clients.client("iam").get_instance_profile(InstanceProfileName=name)
                found = (roles.get("InstanceProfile") or {}).get("Roles") or []
                self.cache[arn] = {"name": found[0]["RoleName"], "arn": found[0]["Arn"]} if found else {}
            except AWS_ERRORS as exc:
                if is_access_denied(exc):
                    self.denied = True
                log.warning(
                    "%s; instance roles are left empty", explain(exc, "iam:GetInstanceProfile", arn, self.aws)
                )
                self.cache[arn] = {}
        return self.cache[arn]


def run(ctx: InputContext, settings: InventorySettings) -> InventorySummary:
    """One run of the input for one stanza."""
    return InventoryRun(ctx.aws, settings, ctx.sink, ctx.deadline).run()


INPUT = InputKind("aws_ec2_inventory", parse_settings, run, aws_params, default_interval=3600)
