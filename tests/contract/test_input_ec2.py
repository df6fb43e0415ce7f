"""``aws_ec2_inventory`` through the installed package, from each bare Splunk Python, on moto.

moto (server mode, loopback) plays EC2, IAM and STS; each test seeds its own random accounts
(through an assumed role) so tests sharing the moto server never see each other's instances.
An account of the Configuration page (``aws_account =``) is written as the page writes it (its
stanza in ``local/``, its key in the splunkd stand-in's storage/passwords); a ``KeyRecorder``
in front of moto shows which access key id signed each call. Never imports product code.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import urllib.parse

import boto3
import pytest
from standin import modinput
from standin.fixtures_aws import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, ForwardProxy, KeyRecorder
from standin.tls_proxy import ConnectProxy, TlsRelay

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
        ({"aws_account": "nobody"}, "aws_account 'nobody' is not an account of the Configuration page"),
        ({"aws_account": "audit", "credential": "prod"}, "aws_account and credential are both set"),
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


# -- an account of the Configuration page (aws_account =), its key in storage/passwords --------
KEY_ID = "AKIAI44QH8DHINVENT01"
SECRET = "1nv/3nt0ry+s3cr3t/K3yEXAMPLEKEY0000001"
PROXY_PASSWORD = "pr0xy/Inv3nt0ry:pa55"
MOTO_ACCOUNT = "123456789012"  # moto's account for a key it did not issue


def run_with_account(
    python, home, tmp_path, moto_server, entries, endpoint, env=None, **params
) -> modinput.InputProcess:
    """One run of a stanza naming the page's account ``inv``, splunkd holding ``entries``."""
    with modinput.FakeSplunkd(entries) as splunkd:
        run = modinput.InputProcess(
            python,
            home,
            SCRIPT,
            f"{KIND}://account",
            {"aws_account": "inv", "endpoint_urls": endpoint, "interval": "3600", "index": "aws", **params},
            str(tmp_path / "ckpt"),
            env={**moto_child_env(), **(env or {})},
            server_uri=splunkd.uri,
        )
        assert run.wait(120) == 0, run.stderr
    names = {urllib.parse.quote(f"{realm}:{user}:", safe="") for realm, user, _ in entries}
    asked = {path.split("/storage/passwords/", 1)[-1] for path in splunkd.requests}
    assert asked == names and all("/storage/passwords/" in path for path in splunkd.requests)  # by name
    return run


@pytest.fixture
def recorder(moto_server):
    relay = KeyRecorder(moto_server)
    yield relay
    relay.close()


def test_an_account_s_static_key_signs_every_call(
    splunk_python, fresh_splunk_home, moto_server, recorder, tmp_path
):
    region = "ap-southeast-2"  # a region no other test launches in, in moto's default account
    ec2 = in_moto_account(moto_server, region)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    mine = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    entries = modinput.page_account(fresh_splunk_home, "inv", KEY_ID, SECRET, regions=region)
    run = run_with_account(splunk_python, fresh_splunk_home, tmp_path, moto_server, entries, recorder.url)
    data = [json.loads(e.data) for e in run.events()]
    assert mine["InstanceId"] in {d["instance_id"] for d in data}
    assert {(d["account"], d["region"]) for d in data} == {(MOTO_ACCOUNT, region)}  # the account's regions
    assert recorder.key_ids and set(recorder.key_ids) == {KEY_ID}  # never the environment's key
    modinput.assert_no_secret(run, SECRET, KEY_ID, FAKE_ACCESS_KEY_ID)


def test_an_account_s_key_assumes_the_account_s_role(
    splunk_python, fresh_splunk_home, moto_server, recorder, tmp_path
):
    account = str(random.randint(10**11, 10**12 - 1))
    instance = launch(moto_server, account, "eu-west-1")
    role = f"arn:aws:iam::{account}:role/inventory"
    entries = modinput.page_account(
        fresh_splunk_home, "inv", KEY_ID, SECRET, role_arn=role, external_id="inv-ext", regions="eu-west-1"
    )
    run = run_with_account(splunk_python, fresh_splunk_home, tmp_path, moto_server, entries, recorder.url)
    data = [json.loads(e.data) for e in run.events()]
    assert [(d["instance_id"], d["account"]) for d in data] == [(instance["InstanceId"], account)]
    assert recorder.key_ids[0] == KEY_ID  # sts:AssumeRole, signed with the account's key
    assert KEY_ID in recorder.key_ids and FAKE_ACCESS_KEY_ID not in recorder.key_ids
    assert len(set(recorder.key_ids)) == 2  # then the role's temporary key
    modinput.assert_no_secret(run, SECRET, KEY_ID)


def test_the_page_s_proxy_carries_every_call_with_its_password_from_storage_passwords(
    splunk_python, fresh_splunk_home, moto_server, recorder, tmp_path
):
    region = "ap-southeast-2"
    proxy = ForwardProxy("iamspike", PROXY_PASSWORD)
    entries = modinput.page_account(fresh_splunk_home, "inv", KEY_ID, SECRET, regions=region)
    entries += modinput.page_proxy(fresh_splunk_home, "127.0.0.1", proxy.port, "iamspike", PROXY_PASSWORD)
    try:
        run = run_with_account(splunk_python, fresh_splunk_home, tmp_path, moto_server, entries, recorder.url)
    finally:
        proxy.close()
    log = modinput.read_log(fresh_splunk_home, KIND)
    assert "from 1 regions in 1 accounts to index aws" in log
    assert proxy.rejected == 0 and proxy.requests  # every call carried the proxy's password
    assert {host for _, host, _ in proxy.requests} == {recorder.url.split("//", 1)[1]}
    assert len(proxy.requests) == len(recorder.key_ids) and set(recorder.key_ids) == {KEY_ID}
    assert f"proxy=http://iamspike@127.0.0.1:{proxy.port}" in log
    modinput.assert_no_secret(run, PROXY_PASSWORD, SECRET, KEY_ID)


def test_the_page_s_proxy_tunnels_https_to_ec2_through_connect(
    splunk_python, fresh_splunk_home, moto_server, recorder, tmp_path
):
    """AWS endpoints are HTTPS: EC2 (moto behind a TLS relay whose certificate AWS_CA_BUNDLE
    trusts) is reached only through CONNECT tunnels of the page's proxy, with its stored password."""
    proxy = ConnectProxy("iamspike", PROXY_PASSWORD)
    tls = TlsRelay(recorder.url, str(tmp_path))
    entries = modinput.page_account(fresh_splunk_home, "inv", KEY_ID, SECRET, regions="ap-southeast-2")
    entries += modinput.page_proxy(fresh_splunk_home, "127.0.0.1", proxy.port, "iamspike", PROXY_PASSWORD)
    try:
        env = {"AWS_CA_BUNDLE": tls.ca_file}
        run = run_with_account(splunk_python, fresh_splunk_home, tmp_path, moto_server, entries, tls.url, env)
    finally:
        proxy.close()
        tls.close()
    assert "from 1 regions in 1 accounts to index aws" in modinput.read_log(fresh_splunk_home, KIND)
    assert proxy.rejected == 0 and set(proxy.tunnels) == {tls.url.split("//", 1)[1]}
    assert recorder.key_ids and set(recorder.key_ids) == {KEY_ID}
    modinput.assert_no_secret(run, PROXY_PASSWORD, SECRET, KEY_ID)


def in_moto_account(moto_server: str, region: str):
    """An EC2 client in moto's default account (the account of any key moto did not issue)."""
    return boto3.client(
        "ec2",
        endpoint_url=moto_server,
        region_name=region,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
    )


# ------------------------------------------------- faults (docs/reliability.md, fourth matrix)


def test_faults_transient_denied_cut_and_killed_runs_leave_no_instance_out(
    splunk_python, fresh_splunk_home, moto_server, fault_proxy, tmp_path
):
    """1,001 instances in us-east-1 (two DescribeInstances pages) and 3 in eu-west-1, EC2 reached
    through the fault proxy: a 503 twice on page 2 (retried), page 2 failing past the retries,
    us-east-1 denied, a kill -9 at a seeded number of events; each run's events distinct, and the
    instances of the runs after a fault all there (the lookup search folds by ip and instance)."""
    rng = random.Random(f"ec2-faults-{splunk_python}")
    account = str(rng.randint(10**11, 10**12 - 1))
    ec2 = in_account(moto_server, account, "ec2", "us-east-1")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    # a page holds 1,000 reservations (moto and EC2 count them, not instances): 1,001 make two
    many = [ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0] for _ in range(1001)]
    west = [launch(moto_server, account, "eu-west-1") for _ in range(3)]
    everyone = {i["InstanceId"] for i in many} | {i["InstanceId"] for i in west}
    log_path = os.path.join(fresh_splunk_home.log_dir, f"ta_aws_iam_error_spike_{KIND}.log")

    def start(name, **params):
        settings = {
            "role_arn": f"arn:aws:iam::{account}:role/inventory",
            "regions": "us-east-1,eu-west-1",
            "endpoint_urls": f"{moto_server},ec2={fault_proxy.url}",
            "index": "aws",
            "interval": "3600",
            **params,
        }
        return modinput.InputProcess(
            splunk_python,
            fresh_splunk_home,
            SCRIPT,
            f"{KIND}://{name}",
            settings,
            str(tmp_path / name),
            env=moto_child_env(),
        )

    def ids(run):
        found = [json.loads(e.data)["instance_id"] for e in run.events()]
        assert len(found) == len(set(found)), "an instance written twice in one run"
        return set(found)

    def log_text():
        with open(log_path, encoding="utf-8") as handle:
            return handle.read()

    fault_proxy.rules.clear()
    fault_proxy.add(match="POST /", rate=1e12, times=1)  # page 1 answered
    fault_proxy.add(match="POST /", status=503, code="ServiceUnavailable", times=2)
    run = start("transient")
    assert run.wait(300) == 0, run.stderr
    assert ids(run) == everyone
    assert "ERROR" not in log_text()

    fault_proxy.rules.clear()
    fault_proxy.add(match="POST /", rate=1e12, times=1)
    fault_proxy.add(match="POST /", status=500, code="InternalError", times=1)
    run = start("cut", max_attempts="1")
    assert run.wait(300) == 0, run.stderr
    cut = ids(run)
    assert len(cut & {i["InstanceId"] for i in many}) == 1000 and {i["InstanceId"] for i in west} <= cut
    said = [line for line in log_text().splitlines() if "ERROR" in line and "us-east-1" in line]
    assert len(said) == 1 and "after 1000 instances" in said[0], said

    fault_proxy.rules.clear()
    fault_proxy.add(match="POST /", status=403, code="UnauthorizedOperation", times=1)
    run = start("denied")
    assert run.wait(300) == 0, run.stderr
    assert ids(run) == {i["InstanceId"] for i in west}
    said = [line for line in log_text().splitlines() if "input=aws_ec2_inventory://denied" in line]
    said = [line for line in said if "ERROR" in line]
    assert len(said) == 1 and "ec2:DescribeInstances" in said[0], said
    assert said[0].endswith("; region us-east-1 skipped this run"), said

    fault_proxy.rules.clear()
    run = start("killed")
    run.wait_for(rng.randrange(1, 1000), timeout=300)
    run.kill()
    killed = ids(run)
    run = start("killed")
    assert run.wait(300) == 0, run.stderr
    assert killed <= everyone and ids(run) == everyone
