"""``aws_ec2_inventory`` through the installed package, from each bare Splunk Python, on moto.

moto (server mode, loopback) plays EC2, IAM and STS; each test seeds its own random accounts
(through an assumed role) so tests sharing the moto server never see each other's instances.
Never imports product code.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket

import boto3
import pytest
from standin import modinput
from standin.fixtures_aws import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY

pytestmark = pytest.mark.contract

SCRIPT = "aws_ec2_inventory.py"
KIND = "aws_ec2_inventory"


def in_account(moto_server: str, account: str, service: str, region: str):
    """A boto3 client acting in ``account`` on moto (STS AssumeRole), to seed it."""
    sts = boto3.client(
        "sts",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
    )
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/seeder", RoleSessionName="seeder")
    return boto3.client(
        service,
        endpoint_url=moto_server,
        region_name=region,
        aws_access_key_id=creds["Credentials"]["AccessKeyId"],
        aws_secret_access_key=creds["Credentials"]["SecretAccessKey"],
        aws_session_token=creds["Credentials"]["SessionToken"],
    )


def launch(moto_server: str, account: str, region: str, profile: str = "") -> dict:
    ec2 = in_account(moto_server, account, "ec2", region)
    extra = {}
    if profile:
        iam = in_account(moto_server, account, "iam", "us-east-1")
        iam.create_role(RoleName=f"{profile}-role", AssumeRolePolicyDocument="{}")
        iam.create_instance_profile(InstanceProfileName=profile)
        iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=f"{profile}-role")
        extra["IamInstanceProfile"] = {"Name": profile}
    image = ec2.describe_images()["Images"][0]["ImageId"]
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, **extra)["Instances"][0]


def moto_child_env() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def test_scheme(splunk_python, splunk_home):
    scheme = modinput.scheme(splunk_python, splunk_home, SCRIPT)
    assert {"regions", "role_arn", "external_id", "endpoint_urls"} <= set(scheme.args)


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"regions": "us-east-1,nowhere-9"}, "unknown AWS region 'nowhere-9'"),
        ({"role_arn": "arn:aws:iam::123456789012:role/a, not-an-arn"}, "is not an IAM role ARN"),
        ({"interval": "120"}, "interval must be between 300"),
    ],
)
def test_validate_arguments(splunk_python, splunk_home, bad, words):
    ok, message = modinput.validate(splunk_python, splunk_home, SCRIPT, bad)
    assert not ok and words in message and "Traceback" not in message


def test_inventory_of_two_accounts(splunk_python, fresh_splunk_home, moto_server, tmp_path):
    first, second = (str(random.randint(10**11, 10**12 - 1)) for _ in range(2))
    web = launch(moto_server, first, "us-east-1", profile="web")
    worker = launch(moto_server, first, "eu-west-1")
    other = launch(moto_server, second, "us-east-1")
    run = modinput.InputProcess(
        splunk_python,
        fresh_splunk_home,
        SCRIPT,
        f"{KIND}://contract",
        {
            "role_arn": f"arn:aws:iam::{first}:role/inventory,arn:aws:iam::{second}:role/inventory",
            "regions": "us-east-1,eu-west-1",
            "endpoint_urls": moto_server,
            "index": "aws",
            "interval": "3600",
        },
        str(tmp_path / "ckpt"),
        env=moto_child_env(),
    )
    assert run.wait(120) == 0, run.stderr
    events = run.events()
    by_id = {json.loads(e.data)["instance_id"]: e for e in events}
    assert set(by_id) == {web["InstanceId"], worker["InstanceId"], other["InstanceId"]}
    assert {e.sourcetype for e in events} == {"aws:ec2:inventory"}
    event = by_id[web["InstanceId"]]
    data = json.loads(event.data)
    assert event.source == "aws:ec2:describeinstances:us-east-1" and event.index == "aws"
    assert data["account"] == first and data["region"] == "us-east-1"
    assert data["private_ips"] == [web["PrivateIpAddress"]]
    assert data["public_ips"] == [web["PublicIpAddress"]]
    assert data["instance_role"] == "web-role" and data["instance_profile"] == "web"
    assert json.loads(by_id[worker["InstanceId"]].data)["region"] == "eu-west-1"
    assert json.loads(by_id[other["InstanceId"]].data)["account"] == second
    log = os.path.join(fresh_splunk_home.log_dir, f"ta_aws_iam_error_spike_{KIND}.log")
    with open(log, encoding="utf-8") as handle:
        assert "3 instances from 4 regions in 2 accounts to index aws" in handle.read()


def test_events_carry_every_field_the_lookup_search_reads(
    splunk_python, fresh_splunk_home, moto_server, tmp_path
):
    """The saved search that maintains aws_ec2_inventory_ips reads these events' fields by name."""
    account = str(random.randint(10**11, 10**12 - 1))
    launch(moto_server, account, "us-east-1", profile="app")
    run = modinput.InputProcess(
        splunk_python,
        fresh_splunk_home,
        SCRIPT,
        f"{KIND}://fields",
        {"role_arn": f"arn:aws:iam::{account}:role/inventory", "endpoint_urls": moto_server},
        str(tmp_path / "ckpt"),
        env=moto_child_env(),
    )
    assert run.wait(120) == 0, run.stderr
    data = json.loads(run.events()[0].data)
    conf = os.path.join(fresh_splunk_home.app_dir, "default", "savedsearches.conf")
    with open(conf, encoding="utf-8") as handle:
        text = handle.read()
    stanza = text.split("[IAM Error Spike - EC2 Inventory Lookup]", 1)[1].split("\n[", 1)[0]
    search = stanza.split("search = ", 1)[1].split("\ndispatch.", 1)[0]
    read = set(re.findall(r"\blatest\((\w+)\)", search)) | set(re.findall(r"\bpath=(\w+)\{\}", search))
    made = set(re.findall(r"\(\?<(\w+)>", search)) | set(re.findall(r"\beval (\w+)=", search))
    read -= made  # fields the search computes itself (rex, eval)
    assert {"private_ips", "public_ips", "account", "region", "instance_role"} <= read
    assert read <= set(data), sorted(read - set(data))
    assert "sourcetype=aws:ec2:inventory" in text or "iam_error_spike_ec2_inventory" in search


def test_sigterm_while_ec2_does_not_answer_stops_within_5_s(
    splunk_python, fresh_splunk_home, moto_server, tmp_path
):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        run = modinput.InputProcess(
            splunk_python,
            fresh_splunk_home,
            SCRIPT,
            f"{KIND}://silent",
            {
                "endpoint_urls": f"default={moto_server},ec2=http://127.0.0.1:{silent.getsockname()[1]}",
                "read_timeout": "300",
            },
            str(tmp_path / "ckpt"),
            env=moto_child_env(),
        )
        silent.settimeout(60)
        connection, _ = silent.accept()  # the input now waits for DescribeInstances
        assert run.proc.poll() is None
        assert run.terminate() < 5
        connection.close()
    finally:
        silent.close()
    with open(
        os.path.join(fresh_splunk_home.log_dir, f"ta_aws_iam_error_spike_{KIND}.log"), encoding="utf-8"
    ) as log:
        assert "stopped by SIGTERM" in log.read()
