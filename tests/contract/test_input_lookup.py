"""``aws_cloudtrail_lookup`` through the installed package, from each bare Splunk Python.

splunkd's side is the stand-in (``standin.modinput``): ``--scheme``, ``--validate-arguments``
and runs with the ``<input>`` XML on stdin, the XML event stream read as it arrives, SIGTERM and
SIGKILL as splunkd (or a crash) sends them. AWS's side is the loopback LookupEvents endpoint
(``standin.lookup_events_server``), enforcing 2 requests/s per account and region and recording
the access key id each request was signed with. An account of the Configuration page
(``aws_account =``) is written as the page writes it: its stanza in ``local/``, its key (and the
page proxy's password) in the splunkd stand-in's storage/passwords. Never imports product code.
"""

from __future__ import annotations

import calendar
import json
import os
import time
from collections import Counter

import pytest
from standin import modinput
from standin.fixtures_aws import FAKE_ACCESS_KEY_ID, ForwardProxy, aws_env
from standin.lookup_events_server import LookupEventsServer, make_records
from standin.tls_proxy import ConnectProxy, TlsRelay

pytestmark = pytest.mark.contract

SCRIPT = "aws_cloudtrail_lookup.py"
KIND = "aws_cloudtrail_lookup"
STANZA = KIND + "://contract"


@pytest.fixture
def lookup_server():
    with LookupEventsServer(rate=2.0, burst=2.0) as server:
        yield server


def params(server: LookupEventsServer, **extra: str) -> dict[str, str]:
    values = {
        "endpoint_urls": "cloudtrail=" + server.endpoint_url,
        "requests_per_second": "2",
        "interval": "300",
        "index": "aws",
    }
    values.update(extra)
    return values


def start(python, home, server, checkpoint_dir, server_uri=modinput.SERVER_URI, env=None, **extra: str):
    return modinput.InputProcess(
        python,
        home,
        SCRIPT,
        STANZA,
        params(server, **extra),
        str(checkpoint_dir),
        env={**aws_env(server.endpoint_url), **(env or {})},
        server_uri=server_uri,
    )


def event_ids(events: list[modinput.Event]) -> Counter:
    return Counter(json.loads(e.data)["eventID"] for e in events)


def log_text(home) -> str:
    path = os.path.join(home.log_dir, f"ta_aws_iam_error_spike_{KIND}.log")
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def test_scheme_declares_the_lookup_settings(splunk_python, splunk_home):
    scheme = modinput.scheme(splunk_python, splunk_home, SCRIPT)
    assert {"regions", "backfill_days", "overlap", "requests_per_second", "role_arn", "credential"} <= set(
        scheme.args
    )
    assert scheme.use_external_validation


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"regions": "us-east-1,moon-base-1"}, "unknown AWS region 'moon-base-1'"),
        ({"interval": "20"}, "interval 20 is below 60 seconds"),
        ({"requests_per_second": "5"}, "LookupEvents allows 2 requests/s per account and region"),
        ({"role_arn": "arn:aws:iam::123:role/x"}, "is not an IAM role ARN"),
        ({"backfill_days": "120"}, "backfill_days must be between 1 and 90"),
        ({"secret_access_key": "abc"}, "must not be set in inputs.conf"),
        ({"aws_account": "nobody"}, "aws_account 'nobody' is not an account of the Configuration page"),
        ({"aws_account": "audit", "credential": "prod"}, "aws_account and credential are both set"),
    ],
)
def test_validate_arguments_rejects_bad_settings(splunk_python, splunk_home, bad, words):
    ok, message = modinput.validate(splunk_python, splunk_home, SCRIPT, {"regions": "us-east-1", **bad})
    assert not ok
    assert words in message and "\n" not in message.strip() and "Traceback" not in message


def test_validate_arguments_accepts_good_settings(splunk_python, splunk_home):
    ok, message = modinput.validate(
        splunk_python,
        splunk_home,
        SCRIPT,
        {"regions": "us-east-1,eu-west-1", "backfill_days": "90", "interval": "*/5 * * * *"},
    )
    assert ok, message


def test_backfill_across_many_pages(splunk_python, fresh_splunk_home, lookup_server, tmp_path):
    records = make_records(480, time.time() - 120, step=60)
    lookup_server.load(records)
    run = start(splunk_python, fresh_splunk_home, lookup_server, tmp_path / "ckpt")
    assert run.wait(120) == 0, run.stderr
    events = run.events()
    assert event_ids(events) == Counter(r["eventID"] for r in records)
    newest = events[0]
    assert newest.source == "aws:cloudtrail:lookupevents:us-east-1"
    assert newest.sourcetype == "aws:cloudtrail" and newest.index == "aws"
    assert json.loads(newest.data) == records[-1]
    stamp = calendar.timegm(time.strptime(records[-1]["eventTime"], "%Y-%m-%dT%H:%M:%SZ"))
    assert float(newest.time) == stamp
    assert [r.status for r in lookup_server.requests] == [200] * 10
    text = log_text(fresh_splunk_home)
    assert "LookupEvents run starts" in text
    assert "480 events from 10 pages in 1 regions to index aws" in text


def test_sigkill_then_restart_loses_nothing_and_repeats_nothing(
    splunk_python, fresh_splunk_home, lookup_server, tmp_path
):
    records = make_records(600, time.time() - 120, step=30)
    lookup_server.load(records)
    # 0.5 requests/s: a page every 2 s, so the run is far from done when the next request is made
    # to hang; the kill lands while the input waits on it, i.e. after every page before it was
    # handed to splunkd and checkpointed, however loaded the machine. (A kill between the flush
    # and the checkpoint write would replay that one page: the at-least-once window every modular
    # input has; see docs/inputs.md.)
    lookup_server.hang_seconds = 30.0
    first = start(
        splunk_python, fresh_splunk_home, lookup_server, tmp_path / "ckpt", requests_per_second="0.5"
    )
    seen = first.wait_for(200)
    assert len(seen) >= 200
    lookup_server.inject("hang")
    received = lookup_server.received
    assert first.wait_until(lambda: lookup_server.received > received)  # the next request is stuck
    first.kill()
    second = start(splunk_python, fresh_splunk_home, lookup_server, tmp_path / "ckpt")
    assert second.wait(120) == 0, second.stderr
    counts = event_ids(first.events()) + event_ids(second.events())
    assert counts == Counter(r["eventID"] for r in records)
    assert 0 < len(second.events()) < len(records)


def test_sigterm_stops_within_5_s_and_the_next_run_resumes(
    splunk_python, fresh_splunk_home, lookup_server, tmp_path
):
    records = make_records(600, time.time() - 120, step=30)
    lookup_server.load(records)
    first = start(splunk_python, fresh_splunk_home, lookup_server, tmp_path / "ckpt")
    assert len(first.wait_for(100, timeout=60)) >= 100
    assert first.terminate() < 5
    second = start(splunk_python, fresh_splunk_home, lookup_server, tmp_path / "ckpt")
    assert second.wait(120) == 0, second.stderr
    assert event_ids(first.events()) + event_ids(second.events()) == Counter(r["eventID"] for r in records)
    assert "stopped by SIGTERM" in log_text(fresh_splunk_home)


def test_throttling_and_5xx_still_complete_with_clear_log_lines(
    splunk_python, fresh_splunk_home, lookup_server, tmp_path
):
    records = make_records(200, time.time() - 120, step=30)
    lookup_server.load(records)
    lookup_server.inject("throttle", 2)
    lookup_server.inject(500, 1)
    lookup_server.inject(503, 1)
    run = start(splunk_python, fresh_splunk_home, lookup_server, tmp_path / "ckpt", max_attempts="6")
    assert run.wait(120) == 0, run.stderr
    assert event_ids(run.events()) == Counter(r["eventID"] for r in records)
    text = log_text(fresh_splunk_home)
    assert "LookupEvents in us-east-1 throttled: ThrottlingException (HTTP 400)" in text
    assert "LookupEvents in us-east-1 failed: InternalFailure (HTTP 500)" in text
    assert "LookupEvents in us-east-1 failed: InternalFailure (HTTP 503)" in text
    assert "Traceback" not in text and "Traceback" not in run.stderr


def test_overlap_rereads_late_events_and_drops_repeats(
    splunk_python, fresh_splunk_home, lookup_server, tmp_path
):
    end = time.time() - 60
    early = make_records(100, end, step=5, prefix="early")
    lookup_server.load(early)
    first = start(splunk_python, fresh_splunk_home, lookup_server, tmp_path / "ckpt", overlap="900")
    assert first.wait(120) == 0, first.stderr
    late = make_records(30, end - 200, step=5, prefix="late")  # delivered after the first run
    lookup_server.load(late)
    second = start(splunk_python, fresh_splunk_home, lookup_server, tmp_path / "ckpt", overlap="900")
    assert second.wait(120) == 0, second.stderr
    assert event_ids(second.events()) == Counter(r["eventID"] for r in late)
    assert event_ids(first.events()) + event_ids(second.events()) == Counter(
        r["eventID"] for r in early + late
    )
    assert "100 duplicates dropped" in log_text(fresh_splunk_home)


def test_role_arn_is_assumed_through_sts(
    splunk_python, fresh_splunk_home, lookup_server, moto_server, tmp_path
):
    records = make_records(60, time.time() - 120, step=30)
    lookup_server.load(records)
    role = "arn:aws:iam::111122223333:role/cloudtrail-reader"
    run = start(
        splunk_python,
        fresh_splunk_home,
        lookup_server,
        tmp_path / "ckpt",
        role_arn=role,
        external_id="contract-external-id",
        endpoint_urls=f"cloudtrail={lookup_server.endpoint_url},sts={moto_server}",
    )
    assert run.wait(120) == 0, run.stderr
    assert event_ids(run.events()) == Counter(r["eventID"] for r in records)
    keys = {r.access_key for r in lookup_server.requests}
    assert len(keys) == 1 and FAKE_ACCESS_KEY_ID not in keys  # the role's temporary key signed the calls
    text = log_text(fresh_splunk_home)
    assert f"as role {role}" in text
    assert FAKE_ACCESS_KEY_ID not in text


def test_sigterm_while_aws_is_slow_still_stops_within_5_s(
    splunk_python, fresh_splunk_home, lookup_server, tmp_path
):
    records = make_records(300, time.time() - 120, step=30)
    lookup_server.load(records)
    lookup_server.hang_seconds = 30.0
    first = start(splunk_python, fresh_splunk_home, lookup_server, tmp_path / "ckpt")
    assert len(first.wait_for(50, timeout=60)) >= 50
    lookup_server.inject("hang")
    received = lookup_server.received
    assert first.wait_until(lambda: lookup_server.received > received)  # the next request is stuck
    assert first.terminate() < 5
    second = start(splunk_python, fresh_splunk_home, lookup_server, tmp_path / "ckpt")
    assert second.wait(120) == 0, second.stderr
    assert event_ids(first.events()) + event_ids(second.events()) == Counter(r["eventID"] for r in records)
    assert "still waiting on AWS" in log_text(fresh_splunk_home)


# -- an account of the Configuration page (aws_account =), its key in storage/passwords --------
KEY_ID = "AKIAI44QH8DHLOOKUP01"
SECRET = "Lk9/l00kUp+s3cr3t/K3yEXAMPLEKEY0000001"
PROXY_PASSWORD = "pr0xy/L00kup:pa55"


def run_with_account(
    python, home, server, tmp_path, entries, env=None, **extra: str
) -> tuple[modinput.InputProcess, list[str]]:
    """One run of a stanza naming the page's account ``audit``, splunkd's storage/passwords
    holding ``entries``; the run and the paths splunkd was asked for."""
    with modinput.FakeSplunkd(entries) as splunkd:
        uri = splunkd.uri
        run = start(python, home, server, tmp_path / "ckpt", uri, env, aws_account="audit", **extra)
        assert run.wait(120) == 0, run.stderr
    return run, splunkd.requests


def test_an_account_s_static_key_signs_every_call_and_its_regions_are_read(
    splunk_python, fresh_splunk_home, lookup_server, tmp_path
):
    east = make_records(60, time.time() - 120, step=30, prefix="east")
    west = make_records(40, time.time() - 120, step=30, prefix="west", region="eu-west-1")
    lookup_server.load(east)
    lookup_server.load(west, region="eu-west-1")
    entries = modinput.page_account(fresh_splunk_home, "audit", KEY_ID, SECRET, regions="us-east-1,eu-west-1")
    run, asked = run_with_account(
        splunk_python,
        fresh_splunk_home,
        lookup_server,
        tmp_path,
        [*entries, ("TA-aws-iam-error-spike-account", "other", "AKIAOTHER:x")],
    )
    assert event_ids(run.events()) == Counter(r["eventID"] for r in east + west)
    assert {r.region for r in lookup_server.served()} == {"us-east-1", "eu-west-1"}
    assert {r.access_key for r in lookup_server.requests} == {KEY_ID}  # never the environment's key
    # the one entry, read by its name: nothing lists (and decrypts) every secret of the app
    assert asked == [
        "/servicesNS/nobody/TA-aws-iam-error-spike/storage/passwords/"
        "TA-aws-iam-error-spike-account%3Aaudit%3A"
    ]
    assert "100 events from" in log_text(fresh_splunk_home)
    modinput.assert_no_secret(run, SECRET, KEY_ID, FAKE_ACCESS_KEY_ID)


def test_an_account_whose_key_is_not_in_storage_passwords_is_one_log_line(
    splunk_python, fresh_splunk_home, lookup_server, tmp_path
):
    modinput.page_account(fresh_splunk_home, "audit", KEY_ID, SECRET)
    # the stanza was written, its secret is gone: splunkd answers 404 for the entry
    run, asked = run_with_account(splunk_python, fresh_splunk_home, lookup_server, tmp_path, [])
    assert run.events() == [] and lookup_server.requests == [] and len(asked) == 1
    text = log_text(fresh_splunk_home)
    assert "no storage/passwords entry TA-aws-iam-error-spike-account:audit (aws_account=audit)" in text
    assert "Traceback" not in text and "Traceback" not in run.stderr


def test_the_page_s_proxy_carries_every_call_with_its_password_from_storage_passwords(
    splunk_python, fresh_splunk_home, lookup_server, tmp_path
):
    records = make_records(30, time.time() - 120, step=30, prefix="px")
    lookup_server.load(records)
    proxy = ForwardProxy("iamspike", PROXY_PASSWORD)
    entries = modinput.page_account(fresh_splunk_home, "audit", KEY_ID, SECRET)
    entries += modinput.page_proxy(fresh_splunk_home, "127.0.0.1", proxy.port, "iamspike", PROXY_PASSWORD)
    try:
        run, asked = run_with_account(splunk_python, fresh_splunk_home, lookup_server, tmp_path, entries)
    finally:
        proxy.close()
    assert event_ids(run.events()) == Counter(r["eventID"] for r in records)
    endpoint = lookup_server.endpoint_url.split("//", 1)[1]
    assert proxy.rejected == 0 and proxy.requests  # every call carried the proxy's password
    assert {host for _, host, _ in proxy.requests} == {endpoint}
    assert len(proxy.requests) == len(lookup_server.requests)  # none went around the proxy
    assert {r.access_key for r in lookup_server.requests} == {KEY_ID}
    assert sorted(path.rsplit("/", 1)[1] for path in asked) == [
        "TA-aws-iam-error-spike-account%3Aaudit%3A",
        "TA-aws-iam-error-spike-proxy%3Aiamspike%3A",
    ]  # two entries, each by its name
    assert f"proxy=http://iamspike@127.0.0.1:{proxy.port}" in log_text(fresh_splunk_home)
    modinput.assert_no_secret(run, PROXY_PASSWORD, SECRET, KEY_ID)


def test_the_page_s_proxy_tunnels_https_to_cloudtrail_through_connect(
    splunk_python, fresh_splunk_home, lookup_server, tmp_path
):
    """AWS endpoints are HTTPS: LookupEvents (behind a TLS relay whose certificate AWS_CA_BUNDLE
    trusts) is reached only through CONNECT tunnels of the page's proxy, with its stored password."""
    records = make_records(30, time.time() - 120, step=30, prefix="tn")
    lookup_server.load(records)
    proxy = ConnectProxy("iamspike", PROXY_PASSWORD)
    tls = TlsRelay(lookup_server.endpoint_url, str(tmp_path))
    entries = modinput.page_account(fresh_splunk_home, "audit", KEY_ID, SECRET)
    entries += modinput.page_proxy(fresh_splunk_home, "127.0.0.1", proxy.port, "iamspike", PROXY_PASSWORD)
    try:
        env, endpoint = {"AWS_CA_BUNDLE": tls.ca_file}, f"cloudtrail={tls.url}"
        run, _ = run_with_account(
            splunk_python, fresh_splunk_home, lookup_server, tmp_path, entries, env, endpoint_urls=endpoint
        )
    finally:
        proxy.close()
        tls.close()
    assert event_ids(run.events()) == Counter(r["eventID"] for r in records)
    assert proxy.rejected == 0 and set(proxy.tunnels) == {tls.url.split("//", 1)[1]}
    assert {r.access_key for r in lookup_server.requests} == {KEY_ID}
    modinput.assert_no_secret(run, PROXY_PASSWORD, SECRET, KEY_ID)
