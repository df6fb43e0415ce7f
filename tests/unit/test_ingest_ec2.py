"""iamspike.ingest.ec2_inventory against moto EC2/IAM/STS (server mode, loopback)."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import replace

import boto3
import pytest
from iamspike.ingest import ec2_inventory
from iamspike.ingest.aws import AwsSettingError
from iamspike.ingest.context import InputContext
from iamspike.ingest.ec2_inventory import INPUT, instance_event, parse_settings
from iamspike.ingest.events import Deadline
from iamspike.ingest.settings import read_shared
from standin.fixtures_aws import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY


class ListSink:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.buffer: list[dict] = []

    def write(self, data: str, time: float | None, source: str, sourcetype: str) -> None:
        self.buffer.append(
            {"data": json.loads(data), "time": time, "source": source, "sourcetype": sourcetype}
        )

    def flush(self) -> None:
        self.events.extend(self.buffer)
        self.buffer = []


def account_session(moto_server: str, account: str) -> boto3.session.Session:
    """A boto3 session acting in ``account`` on moto (assumed role), for seeding."""
    sts = boto3.client(
        "sts",
        endpoint_url=moto_server,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        region_name="us-east-1",
    )
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/seed", RoleSessionName="seed")[
        "Credentials"
    ]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def seed(moto_server: str, account: str, region: str, count: int, profile: str = "") -> list[str]:
    session = account_session(moto_server, account)
    ec2 = session.client("ec2", endpoint_url=moto_server, region_name=region)
    kwargs = {}
    if profile:
        iam = session.client("iam", endpoint_url=moto_server, region_name="us-east-1")
        iam.create_role(RoleName=profile + "-role", AssumeRolePolicyDocument="{}")
        iam.create_instance_profile(InstanceProfileName=profile)
        iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=profile + "-role")
        kwargs["IamInstanceProfile"] = {"Name": profile}
    image = ec2.describe_images()["Images"][0]["ImageId"]
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"web-{region}"}]}]
    ids = []
    for _ in range(count):  # one call each: moto attaches the profile to the first instance of a call only
        reply = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=tags, **kwargs)
        ids.append(reply["Instances"][0]["InstanceId"])
    return ids


def run_inventory(params: dict, sink) -> ec2_inventory.InventorySummary:
    """One run of the input on a stanza, with the fake key as the one from storage/passwords."""
    shared = read_shared(params, "", INPUT)
    aws = replace(shared.aws, access_key_id=FAKE_ACCESS_KEY_ID, secret_access_key=FAKE_SECRET_ACCESS_KEY)
    log = logging.getLogger("test.ec2")
    ctx = InputContext("aws_ec2_inventory://test", shared.params, aws, sink, log, Deadline(60))
    return ec2_inventory.run(ctx, parse_settings(shared.params))


@pytest.fixture
def accounts() -> list[str]:
    return [str(random.randint(10**11, 10**12 - 1)) for _ in range(2)]


def test_inventory_across_accounts_and_regions(moto_server, accounts):
    first, second = accounts
    ids = {
        (first, "us-east-1"): seed(moto_server, first, "us-east-1", 2, profile="web-profile"),
        (first, "eu-west-1"): seed(moto_server, first, "eu-west-1", 1),
        (second, "us-east-1"): seed(moto_server, second, "us-east-1", 1),
    }
    sink = ListSink()
    stats = run_inventory(
        {
            "role_arn": f"arn:aws:iam::{first}:role/inventory, arn:aws:iam::{second}:role/inventory",
            "regions": "us-east-1,eu-west-1",
            "endpoint_urls": moto_server,
        },
        sink,
    )
    assert (stats.events, stats.accounts, stats.regions, stats.errors) == (4, 2, 4, 0)
    got = {(e["data"]["account"], e["data"]["region"]): [] for e in sink.events}
    for event in sink.events:
        got[(event["data"]["account"], event["data"]["region"])].append(event["data"]["instance_id"])
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in ids.items()}
    web = [e for e in sink.events if e["data"]["instance_id"] in ids[(first, "us-east-1")]]
    for event in web:
        data = event["data"]
        assert event["sourcetype"] == "aws:ec2:inventory"
        assert event["source"] == "aws:ec2:describeinstances:us-east-1"
        assert data["instance_profile"] == "web-profile"
        assert data["instance_role"] == "web-profile-role"
        assert data["instance_role_arn"] == f"arn:aws:iam::{first}:role/web-profile-role"
        assert data["state"] == "running"
        assert data["private_ip"] in data["private_ips"] and data["public_ip"] in data["public_ips"]
        assert data["tags"] == {"Name": "web-us-east-1"} and data["name"] == "web-us-east-1"
        assert data["launch_time"].endswith("Z")
    no_profile = [e["data"] for e in sink.events if e["data"]["region"] == "eu-west-1"]
    assert no_profile[0]["instance_profile"] == "" and no_profile[0]["instance_role"] == ""


def test_instance_event_collects_every_address():
    instance = {
        "InstanceId": "i-1",
        "PrivateIpAddress": "10.0.0.5",
        "PublicIpAddress": "203.0.113.5",
        "NetworkInterfaces": [
            {
                "Association": {"PublicIp": "203.0.113.5"},
                "PrivateIpAddresses": [
                    {"PrivateIpAddress": "10.0.0.5", "Association": {"PublicIp": "203.0.113.5"}},
                    {"PrivateIpAddress": "10.0.0.6", "Association": {"PublicIp": "203.0.113.6"}},
                ],
                "Ipv6Addresses": [{"Ipv6Address": "2001:db8::5"}],
            },
            {"PrivateIpAddresses": [{"PrivateIpAddress": "10.0.1.7"}]},
        ],
        "State": {"Name": "stopped"},
    }
    event = instance_event(instance, "123456789012", "us-east-1")
    assert event["private_ips"] == ["10.0.0.5", "10.0.0.6", "10.0.1.7"]
    assert event["public_ips"] == ["203.0.113.5", "203.0.113.6"]
    assert event["ipv6_ips"] == ["2001:db8::5"]
    assert event["state"] == "stopped" and event["instance_role"] == "" and event["tags"] == {}


@pytest.mark.parametrize(
    "params, words",
    [
        ({"regions": "us-east-1,atlantis-1"}, "unknown AWS region 'atlantis-1'"),
        ({"role_arn": "arn:aws:iam::123456789012:role/ok,arn:aws:iam::1:role/bad"}, "is not an IAM role ARN"),
        ({"interval": "60"}, "interval must be between 300"),
        ({"external_id": "abc"}, "external_id is set but role_arn is not"),
    ],
)
def test_bad_settings_are_one_line_errors(params, words):
    with pytest.raises(AwsSettingError) as error:
        parse_settings(read_shared(params, "", INPUT).params)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_unreachable_region_is_logged_and_the_run_goes_on(moto_server, accounts, caplog):
    account = accounts[0]
    seed(moto_server, account, "us-east-1", 1)
    sink = ListSink()
    with caplog.at_level(logging.INFO, logger="iamspike.ingest.ec2_inventory"):
        stats = run_inventory(
            {
                "role_arn": f"arn:aws:iam::{account}:role/inventory",
                "regions": "us-east-1",
                # STS and IAM on moto, EC2 on a closed port
                "endpoint_urls": f"default={moto_server},ec2=http://127.0.0.1:9",
                "max_attempts": "1",
                "connect_timeout": "2",
            },
            sink,
        )
    assert stats.errors == 1 and sink.events == []
    assert "ec2:DescribeInstances" in caplog.text and "region us-east-1 skipped this run" in caplog.text
    assert stats.line("").startswith("0 instances from 1 regions in 1 accounts to index default (1 errors)")


def test_failed_assume_role_names_sts_and_the_base_identity(caplog):
    role = "arn:aws:iam::210987654321:role/inventory"
    sink = ListSink()
    with caplog.at_level(logging.ERROR, logger="iamspike.ingest.ec2_inventory"):
        stats = run_inventory(
            {"role_arn": role, "endpoint_urls": "http://127.0.0.1:9", "max_attempts": "1"},
            sink,
        )
    assert (stats.accounts, stats.errors, sink.events) == (0, 1, [])
    assert f"calling sts:AssumeRole on {role}" in caplog.text and "skipping this account" in caplog.text
