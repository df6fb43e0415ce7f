"""The Configuration page in a real headless Chromium against the Splunk Web + splunkd stand-in,
on the installed package; then the input it created run as splunkd runs it, against moto.

Proof asked by issue 11: create an account with a static key, create an SQS input naming it, run
that input and see it read the queue with that key; disable it and see it stop. Bad input gets
one inline message each and writes nothing; the secret never reaches a log line, a conf file,
an answer to the browser other than splunkd's echo of the POST that carried it, or a
screenshot. Screenshots of each tab go to docs/config-<tab>.png (``IAMSPIKE_SCREENSHOTS=docs``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from standin import modinput
from standin.conf import read_conf
from standin.fixtures_aws import ForwardProxy, KeyRecorder, log_file, log_key, make_queue, make_records
from standin.install import bare_python
from standin.splunkweb import APP, LOCALE, PASSWORD, USER, SplunkWeb
from standin.tls_proxy import ConnectProxy, TlsRelay
from web.browser import Chromium, find_chromium

pytestmark = pytest.mark.contract

KEY_ID = "AKIAPAGETESTKEY00001"
SECRET = "pAgE/s3cr3t+K3y/v4lue0000EXAMPLEKEY00001"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOTS = os.environ.get("IAMSPIKE_SCREENSHOTS", "")


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        message = "chromium not found (apt-get install -y chromium; `make web-deps`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    browser = Chromium(binary)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def python313(tmp_path_factory):
    python = bare_python("3.13", str(tmp_path_factory.mktemp("bare-py3.13") / "venv"))
    if python is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("python3.13 not found")
        pytest.skip("python3.13 not found")
    return python


@pytest.fixture
def web(fresh_splunk_home, python313, moto_env):
    if not os.path.exists(
        os.path.join(fresh_splunk_home.app_dir, "appserver", "static", "build", "configuration.js")
    ):
        pytest.fail(
            "the package has no appserver/static/build/configuration.js (build it with `make package`)"
        )
    standin = SplunkWeb(fresh_splunk_home, python313, env=moto_env)  # validation reaches moto
    yield standin
    standin.close()


def sign_in(chromium, web, query: str = ""):
    """A new page on the Configuration page (``query`` added to its URL), signed in."""
    page = chromium.new_page()
    page.goto(f"{web.url}/{LOCALE}/app/{APP}/configuration{query}")  # redirected to the login form
    page.wait("!!document.querySelector('#login')")
    page.eval(
        f"document.querySelector('#username').value = '{USER}';"
        f"document.querySelector('#password').value = '{PASSWORD}';"
        "document.querySelector('#signin').click()"
    )
    return page


@pytest.fixture
def page(chromium, web):
    page = sign_in(chromium, web)
    page.wait("!!document.querySelector('[data-page=configuration] [data-tab=accounts]')", 30)
    return page


def tab(page, name: str) -> None:
    page.click(f"[data-tab-id={name}]")
    page.wait(f"!!document.querySelector('[data-tab={name}]')")


def shot(page, name: str) -> None:
    if SHOTS:
        time.sleep(0.3)  # let the theme's transitions settle
        page.screenshot(os.path.join(REPO, SHOTS, f"config-{name}.png"))


def form_says(page, form: str, text: str) -> None:
    """Wait until the open ``form`` shows ``text`` (an inline message)."""
    page.wait(f"document.querySelector('[data-form={form}]').innerText.includes({text!r})")


# A tab's messages as [type, text]: the type @splunk/react-ui's Message renders (data-test-type),
# which sets its styling and what a screen reader announces ("Alert" for error, "Info" for info).
MESSAGES = (
    "[...document.querySelectorAll('[data-tab=%s] [data-test=message]')]"
    ".map(m => [m.dataset.testType, m.querySelector('[data-test=content]').innerText])"
)


def local_conf(home, name: str) -> dict[str, dict[str, str]]:
    return read_conf(Path(home.app_dir, "local", name + ".conf"))


def all_files_text(root: str) -> str:
    out = []
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                out.append(handle.read().decode("utf-8", errors="replace"))
    return "\n".join(out)


def fill_account(page, name: str, key_id: str = "", secret: str = "", role_arn: str = "") -> None:
    page.type("[data-field=name]", name)
    if key_id or secret:
        page.click("[data-auth=static_key]")
        page.wait("!!document.querySelector('[data-field=keyId]')")
        page.type("[data-field=keyId]", key_id)
        page.type("[data-field=secret]", secret)
    page.type("[data-field=roleArn]", role_arn)


def test_account_and_sqs_input_from_the_page_then_the_input_reads_with_that_key_and_stops_when_disabled(
    page, web, fresh_splunk_home, python313, aws_clients, unique_name, moto_server, moto_env, tmp_path
):
    home = fresh_splunk_home
    # -- AWS accounts: bad input first, one inline message each, nothing written
    page.click("[data-action=add-account]")
    page.wait("!!document.querySelector('[data-form=account]')")
    page.click("[data-form=account] [data-action=save]")
    form_says(page, "account", "Account name is required")
    fill_account(page, "prod-audit", key_id=KEY_ID, secret="")
    page.click("[data-form=account] [data-action=save]")
    form_says(page, "account", "Secret access key is required")
    page.type("[data-field=secret]", SECRET)
    page.type("[data-field=roleArn]", "arn:aws:iam::12:role/x")
    page.click("[data-form=account] [data-action=save]")
    form_says(page, "account", "is not an IAM role ARN")
    assert not os.path.exists(os.path.join(home.app_dir, "local", "aws_iam_error_spike_accounts.conf"))
    assert not os.path.exists(os.path.join(home.app_dir, "local", "passwords.conf"))
    # -- then a good one
    page.type("[data-field=roleArn]", "")
    page.type("[data-field=regions]", "us-east-1")
    shot(page, "accounts-form")
    page.click("[data-form=account] [data-action=save]")
    page.wait("!!document.querySelector('[data-row=\"prod-audit\"]')")
    accounts = local_conf(home, "aws_iam_error_spike_accounts")
    assert accounts["prod-audit"] == {
        "auth": "static_key",
        "role_arn": "",
        "external_id": "",
        "regions": "us-east-1",
    }
    passwords = local_conf(home, "passwords")
    assert list(passwords) == ["default", "credential:TA-aws-iam-error-spike-account:prod-audit:"]
    assert passwords["credential:TA-aws-iam-error-spike-account:prod-audit:"]["password"].startswith("$7$")
    # -- a duplicate name: splunkd's 409 (or the page's own check) inline, nothing changed
    page.click("[data-action=add-account]")
    fill_account(page, "prod-audit")
    page.click("[data-form=account] [data-action=save]")
    form_says(page, "account", "already exists")
    page.click("[data-form=account] [data-action=cancel]")
    shot(page, "accounts")

    # -- Proxy and Logging tabs render their settings (screenshots only)
    tab(page, "proxy")
    page.wait("!!document.querySelector('[data-field=host]')")
    shot(page, "proxy")
    tab(page, "logging")
    page.wait("!!document.querySelector('[data-kind=aws_cloudtrail_sqs]')")
    shot(page, "logging")
    tab(page, "alerts")
    page.wait("!!document.querySelector('[data-row=\"IAM Error Spike - Account Alert\"]')")
    shot(page, "alerts")

    # -- Inputs: a malformed queue URL (the page), a bad interval (splunkd's --validate-arguments)
    s3 = aws_clients("s3")
    s3.create_bucket(Bucket=unique_name)
    queue = make_queue(aws_clients, unique_name, bucket=unique_name)
    tab(page, "inputs")
    page.click("[data-action=add-input]")
    page.wait("!!document.querySelector('[data-form=input]')")
    page.type("[data-field=name]", "audit-queue")
    page.choose("[data-field=aws_account]", "prod-audit")
    page.type("[data-field=queue_url]", "https://sqs.us-east-1.amazonaws.com/not-a-queue")
    page.click("[data-form=input] [data-action=save]")
    form_says(page, "input", "is not an SQS queue URL")
    page.type("[data-field=queue_url]", queue)
    page.type("[data-field=interval]", "10")
    page.click("[data-form=input] [data-action=save]")
    message = page.wait(
        "(m => m && m.innerText)(document.querySelector('[data-form=input] [data-message=form]'))", 60
    )
    assert "interval must be between 60 and 86400, not 10" in message
    # a queue that does not exist: --validate-arguments asks SQS with the account's key
    missing = queue + "-gone"
    page.type("[data-field=queue_url]", missing)
    page.type("[data-field=interval]", "300")
    page.click("[data-form=input] [data-action=save]")
    says = f"queue_url: queue {missing} does not exist in us-east-1 ("
    page.wait(f"document.querySelector('[data-form=input]').innerText.includes({says!r})", 60)
    assert not os.path.exists(os.path.join(home.app_dir, "local", "inputs.conf"))
    page.type("[data-field=queue_url]", queue)
    page.type("[data-field=interval]", "300")
    page.type("[data-field=index]", "aws")
    shot(page, "inputs-form")
    page.click("[data-form=input] [data-action=save]")
    page.wait("!!document.querySelector('[data-row=\"aws_cloudtrail_sqs/audit-queue\"]')", 60)
    stanza = local_conf(home, "inputs")["aws_cloudtrail_sqs://audit-queue"]
    assert stanza == {"aws_account": "prod-audit", "queue_url": queue, "interval": "300", "index": "aws"}
    shot(page, "inputs")

    # -- splunkd runs the enabled stanza: it reads the queue with the account's key
    s3.put_object(
        Bucket=unique_name, Key=log_key("20230826T2030Z", "p"), Body=log_file(make_records(7, prefix="p"))
    )
    recorder = KeyRecorder(moto_server)
    try:
        env = {**moto_env, "AWS_ENDPOINT_URL_SQS": recorder.url}
        run = modinput.InputProcess(
            python313,
            home,
            "aws_cloudtrail_sqs.py",
            "aws_cloudtrail_sqs://audit-queue",
            {**stanza, "wait_seconds": "1"},
            str(tmp_path / "cp"),
            env,
            server_uri=web.mgmt_uri,
        )
        events = run.wait_for(7, 60)
        assert len(events) == 7, run.stderr
        assert recorder.key_ids and set(recorder.key_ids) == {KEY_ID}  # never the environment's key
        # one secret, read by its name (by the validation's checks and by the run): no listing
        # that decrypts all
        assert set(web.mgmt_requests) == {
            f"GET /servicesNS/nobody/{APP}/storage/passwords/TA-aws-iam-error-spike-account%3Aprod-audit%3A"
        }

        # -- disabled from the page: splunkd sees disabled = 1 and stops the input
        row = '[data-row="aws_cloudtrail_sqs/audit-queue"]'
        page.click(f"{row} [data-action=disable]")
        page.wait(f"document.querySelector('{row} [data-status]').dataset.status === 'disabled'")
        assert local_conf(home, "inputs")["aws_cloudtrail_sqs://audit-queue"]["disabled"] == "1"
        assert run.terminate() < 5
        calls = len(recorder.key_ids)
        s3.put_object(
            Bucket=unique_name, Key=log_key("20230826T2035Z", "q"), Body=log_file(make_records(3, prefix="q"))
        )
        time.sleep(2)
        assert len(recorder.key_ids) == calls and len(run.events()) == 7
    finally:
        recorder.close()

    # -- the secret: nowhere but storage/passwords, encrypted
    log = modinput.read_log(home, "aws_cloudtrail_sqs")
    assert "events" in log and SECRET not in log and KEY_ID not in log and SECRET not in run.stderr
    for folder in ("local", "default", "appserver"):
        assert SECRET not in all_files_text(os.path.join(home.app_dir, folder))
    leaks = [r for r in web.responses if SECRET in r.body]
    assert [(r.method, r.path.split("?")[0]) for r in leaks] == [
        ("POST", f"/servicesNS/nobody/{APP}/storage/passwords")
    ]  # splunkd's echo of the request that carried it, never read by the page
    assert not [r for r in web.responses if r.method == "GET" and "storage/passwords" in r.path]


PROXY_PASSWORD = "pr0xy/Pa55:word"


def save_proxy(page, host: str, port: str) -> None:
    """On the Proxy tab, type ``host`` and ``port`` and click Save."""
    tab(page, "proxy")
    page.wait("!!document.querySelector('[data-field=host]')")
    page.type("[data-field=host]", host)
    page.type("[data-field=port]", port)
    page.click("[data-tab=proxy] [data-action=save]")


def test_proxy_logging_and_alerts_from_the_page_land_in_the_app_conf_files_and_storage_passwords(page, web):
    home = web.home
    save_proxy(page, "proxy.example", "99999")
    page.wait("document.querySelector('[data-tab=proxy]').innerText.includes('Port must be 1-65535')")
    assert not os.path.exists(os.path.join(home.app_dir, "local", "aws_iam_error_spike_settings.conf"))
    page.type("[data-field=port]", "3128")
    page.type("[data-field=password]", PROXY_PASSWORD)
    page.click("[data-tab=proxy] [data-action=save]")
    page.wait("document.querySelector('[data-tab=proxy]').innerText.includes('needs its user name')")
    page.type("[data-field=username]", "fwd")
    page.click("[data-tab=proxy] [data-action=save]")
    page.wait("document.querySelector('[data-tab=proxy]').innerText.includes('Proxy saved')")
    settings = local_conf(home, "aws_iam_error_spike_settings")
    assert settings["proxy"] == {"host": "proxy.example", "port": "3128", "username": "fwd", "disabled": "0"}
    assert "credential:TA-aws-iam-error-spike-proxy:fwd:" in local_conf(home, "passwords")

    tab(page, "logging")
    page.choose("[data-kind=aws_cloudtrail_s3]", "DEBUG")
    page.click("[data-tab=logging] [data-action=save]")
    page.wait("document.querySelector('[data-tab=logging]').innerText.includes('Log levels saved')")
    assert local_conf(home, "aws_iam_error_spike_settings")["logging"]["aws_cloudtrail_s3"] == "DEBUG"

    tab(page, "alerts")
    row = '[data-row="IAM Error Spike - Account Alert"]'
    page.wait(f"!!document.querySelector('{row}')")
    page.click(f"{row} [data-action=toggle]")
    page.wait("document.querySelector('[data-tab=alerts]').innerText.includes('switched off')")
    page.type(f"{row} input", "soc@example.com")
    page.click(f"{row} [data-action=save-email]")
    page.wait("document.querySelector('[data-tab=alerts]').innerText.includes('e-mail to soc@example.com')")
    saved = local_conf(home, "savedsearches")["IAM Error Spike - Account Alert"]
    assert saved == {"disabled": "1", "action.email": "1", "action.email.to": "soc@example.com"}

    for folder in ("local", "default"):
        assert PROXY_PASSWORD not in all_files_text(os.path.join(home.app_dir, folder))
    assert [r.method for r in web.responses if PROXY_PASSWORD in r.body] == ["POST"]


def page_proxy_run(web, python, aws_clients, bucket, proxy_port, password, env, name, records):
    """The Proxy tab's settings as the page writes them (conf + storage/passwords), a trail
    bucket with ``records`` announced on its queue, and an SQS input whose stanza names no
    proxy, run until it wrote them all; returns (run, its log)."""
    page_proxy = {"host": "127.0.0.1", "port": str(proxy_port), "username": "fwd"}
    web.confs.write("aws_iam_error_spike_settings", "proxy", page_proxy)
    web.passwords.put("TA-aws-iam-error-spike-proxy:fwd:", password)
    s3 = aws_clients("s3")
    s3.create_bucket(Bucket=bucket)
    queue = make_queue(aws_clients, bucket, bucket=bucket)
    body = log_file(make_records(records, prefix=name))
    s3.put_object(Bucket=bucket, Key=log_key("20230826T2030Z", name), Body=body)
    params = {"queue_url": queue, "interval": "300", "wait_seconds": "1"}
    cp = os.path.join(web.home.home, "cp-" + name)
    run = modinput.InputProcess(
        python,
        web.home,
        "aws_cloudtrail_sqs.py",
        f"aws_cloudtrail_sqs://{name}",
        params,
        cp,
        env,
        server_uri=web.mgmt_uri,
    )
    events = run.wait_for(records, 60)
    assert run.terminate() < 5
    assert len(events) == records, run.stderr
    return run, modinput.read_log(web.home, "aws_cloudtrail_sqs")


def test_the_page_proxy_carries_every_aws_call_with_its_password_from_storage_passwords(
    web, splunk_python, aws_clients, unique_name, moto_env
):
    """Through a plain forward proxy to moto: the stored password (percent-encoded in the URL
    botocore gets) is checked by the proxy, and no log line shows it."""
    password = "p@ss:w/rd%9"
    proxy = ForwardProxy("fwd", password)
    try:
        run, log = page_proxy_run(
            web, splunk_python, aws_clients, unique_name, proxy.port, password, moto_env, "px", 4
        )
        assert proxy.rejected == 0 and len(proxy.requests) >= 3  # SQS receive, S3 get, SQS delete
        assert f"proxy=http://fwd@127.0.0.1:{proxy.port}" in log
        assert password not in log and "w%2Frd" not in log and password not in run.stderr
    finally:
        proxy.close()


def test_the_page_proxy_tunnels_https_to_aws_through_connect(
    web, splunk_python, aws_clients, unique_name, moto_server, moto_env, tmp_path
):
    """AWS endpoints are HTTPS: the input reaches a TLS endpoint (moto behind a TLS relay whose
    certificate AWS_CA_BUNDLE trusts) only through CONNECT tunnels of the page's proxy, with the
    stored password."""
    password = "tunnel:p@ss"
    proxy = ConnectProxy("fwd", password)
    tls = TlsRelay(moto_server, str(tmp_path))
    try:
        env = {**moto_env, "AWS_ENDPOINT_URL": tls.url, "AWS_CA_BUNDLE": tls.ca_file}
        run, log = page_proxy_run(
            web, splunk_python, aws_clients, unique_name, proxy.port, password, env, "tn", 5
        )
        tls_port = tls.url.rsplit(":", 1)[1]
        assert proxy.tunnels and set(proxy.tunnels) == {f"127.0.0.1:{tls_port}"} and proxy.rejected == 0
        assert password not in log and "p%40ss" not in log and password not in run.stderr
    finally:
        proxy.close()
        tls.close()


def test_inputs_edit_clone_enable_delete_and_accounts_in_use_from_the_page(
    chromium, web, aws_clients, unique_name
):
    """Edit, clone, enable and delete an input, and what an account in use allows, against
    stanzas written as splunkd would have them."""
    home = web.home
    web.confs.write("aws_iam_error_spike_accounts", "ops", {"auth": "default_chain"})
    queue = make_queue(aws_clients, unique_name)  # validation asks SQS whether it exists
    web.confs.write(
        "inputs",
        "aws_cloudtrail_sqs://ops-queue",
        {"aws_account": "ops", "queue_url": queue, "batch_size": "5"},
    )
    page = sign_in(chromium, web, "?tab=inputs")
    row = '[data-row="aws_cloudtrail_sqs/ops-queue"]'
    page.wait(f"!!document.querySelector('{row}')", 30)
    # edit: a new interval; the stanza's other keys stay
    page.click(f"{row} [data-action=edit]")
    page.type("[data-field=interval]", "600")
    page.click("[data-form=input] [data-action=save]")
    page.wait("document.querySelector('[data-tab=inputs]').innerText.includes('Input ops-queue saved')", 60)
    stanza = local_conf(home, "inputs")["aws_cloudtrail_sqs://ops-queue"]
    assert stanza["interval"] == "600" and stanza["batch_size"] == "5" and stanza["aws_account"] == "ops"
    # clone: the same settings under a new name (a taken name refused first)
    page.click(f"{row} [data-action=clone]")
    page.type("[data-field=name]", "ops-queue")
    page.click("[data-form=input] [data-action=save]")
    form_says(page, "input", 'Input name "ops-queue" already exists')
    page.type("[data-field=name]", "ops-queue-2")
    page.click("[data-form=input] [data-action=save]")
    clone = '[data-row="aws_cloudtrail_sqs/ops-queue-2"]'
    page.wait(f"!!document.querySelector('{clone}')", 60)
    cloned = local_conf(home, "inputs")["aws_cloudtrail_sqs://ops-queue-2"]
    assert cloned == {"aws_account": "ops", "queue_url": queue, "interval": "600"}
    # disable then enable
    page.click(f"{clone} [data-action=disable]")
    page.wait(f"document.querySelector('{clone} [data-status]').dataset.status === 'disabled'")
    page.click(f"{clone} [data-action=enable]")
    page.wait(f"document.querySelector('{clone} [data-status]').dataset.status === 'enabled'")
    assert local_conf(home, "inputs")["aws_cloudtrail_sqs://ops-queue-2"]["disabled"] == "0"
    # delete
    page.click(f"{clone} [data-action=delete]")
    page.wait(f"!document.querySelector('{clone}')")
    assert "aws_cloudtrail_sqs://ops-queue-2" not in local_conf(home, "inputs")
    # an account named by an input is not deleted
    tab(page, "accounts")
    account = '[data-row="ops"]'
    page.wait(f"!!document.querySelector('{account}')")
    page.click(f"{account} [data-action=delete]")
    page.wait("document.querySelector('[data-tab=accounts]').innerText.includes('is used by ops-queue')")
    assert "ops" in local_conf(home, "aws_iam_error_spike_accounts")
    # editing it to a static key needs both halves; then the key is stored and the stanza says so
    page.click(f"{account} [data-action=edit]")
    page.click("[data-auth=static_key]")
    page.wait("!!document.querySelector('[data-field=keyId]')")
    page.type("[data-field=secret]", SECRET)
    page.click("[data-form=account] [data-action=save]")
    form_says(page, "account", "Access key ID must look like AKIA")
    assert local_conf(home, "aws_iam_error_spike_accounts")["ops"]["auth"] == "default_chain"
    page.type("[data-field=keyId]", KEY_ID)
    page.click("[data-form=account] [data-action=save]")
    page.wait("document.querySelector('[data-tab=accounts]').innerText.includes('Account ops saved')")
    assert local_conf(home, "aws_iam_error_spike_accounts")["ops"]["auth"] == "static_key"
    assert "credential:TA-aws-iam-error-spike-account:ops:" in local_conf(home, "passwords")
    page.send("Page.close")


ACCOUNTS_CONF = "aws_iam_error_spike_accounts"
ACCOUNT_SECRET = "credential:TA-aws-iam-error-spike-account:{}:"  # its stanza in passwords.conf


def stanzas_without_their_secret(home) -> list[str]:
    """The accounts whose stanza says ``static_key`` with no key in storage/passwords."""
    passwords = local_conf(home, "passwords")
    return [
        name
        for name, keys in local_conf(home, ACCOUNTS_CONF).items()
        if keys.get("auth") == "static_key" and ACCOUNT_SECRET.format(name) not in passwords
    ]


@pytest.mark.parametrize("change", ["edit to a static key", "edit to the default chain", "delete"])
def test_an_account_change_whose_second_write_fails_leaves_no_stanza_without_its_secret(
    chromium, web, change
):
    """An account is two writes: its secret (storage/passwords) and its stanza. The page stores
    the secret before the stanza that names it, and deletes it after the stanza stops naming it:
    when splunkd refuses the second write, no stanza says static_key without its key, and the page
    shows splunkd's message on one line; an edit saved again then goes through."""
    home = web.home
    had_key = change != "edit to a static key"
    web.confs.write(ACCOUNTS_CONF, "ops", {"auth": "static_key" if had_key else "default_chain"})
    if had_key:
        web.passwords.put("TA-aws-iam-error-spike-account:ops:", f"{KEY_ID}:{SECRET}")
    page = sign_in(chromium, web)
    row = '[data-row="ops"]'
    page.wait(f"!!document.querySelector('{row}')", 30)
    refused = "Internal error: the write to local/ failed"
    web.refuse_write(2, 500, refused)
    if change == "delete":
        page.click(f"{row} [data-action=delete]")
    else:
        page.click(f"{row} [data-action=edit]")
        auth = "default_chain" if had_key else "static_key"
        page.click(f"[data-auth={auth}]")
        if auth == "static_key":
            page.wait("!!document.querySelector('[data-field=keyId]')")
            page.type("[data-field=keyId]", KEY_ID)
            page.type("[data-field=secret]", SECRET)
        page.click("[data-form=account] [data-action=save]")
    shown = page.wait(f"(m => m.length && m)({MESSAGES % 'accounts'})")
    assert len(web.writes) == 2, web.writes  # the refused one was the last
    assert stanzas_without_their_secret(home) == []
    assert shown == [["error", refused]]  # an error, announced as "Alert", never as "Info"
    if change != "delete":  # saved again: both writes go through
        page.click("[data-form=account] [data-action=save]")
        page.wait("document.querySelector('[data-tab=accounts]').innerText.includes('Account ops saved')")
        assert local_conf(home, ACCOUNTS_CONF)["ops"]["auth"] == auth
        assert (ACCOUNT_SECRET.format("ops") in local_conf(home, "passwords")) == (auth == "static_key")
    page.send("Page.close")


def test_a_write_splunkd_refuses_on_any_tab_shows_its_message_as_an_error_and_a_success_as_info(
    chromium, web
):
    """Deleting an input, saving log levels, switching a search, saving the proxy: when splunkd
    refuses the write the tab shows its message as an error (styled and announced as an alert),
    alone; the same write done again shows as info."""
    home = web.home
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/ops"
    web.confs.write("inputs", "aws_cloudtrail_sqs://ops-queue", {"queue_url": queue})
    page = sign_in(chromium, web, "?tab=inputs")
    row = '[data-row="aws_cloudtrail_sqs/ops-queue"]'
    page.wait(f"!!document.querySelector('{row}')", 30)
    refused = "Internal error: the write to local/ failed"

    def refused_then_done(name: str, button: str, done: str) -> None:
        web.refuse_write(1, 500, refused)
        page.click(button)
        assert page.wait(f"(m => m.length && m)({MESSAGES % name})") == [["error", refused]]
        page.click(button)
        page.wait(f"document.querySelector('[data-tab={name}]').innerText.includes({done!r})")
        assert page.eval(MESSAGES % name) == [["info", done]]

    refused_then_done("inputs", f"{row} [data-action=delete]", "Input ops-queue: deleted.")
    assert "aws_cloudtrail_sqs://ops-queue" not in local_conf(home, "inputs")

    tab(page, "logging")
    page.choose("[data-kind=aws_cloudtrail_s3]", "DEBUG")
    done = "Log levels saved. Inputs use them from their next run."
    refused_then_done("logging", "[data-tab=logging] [data-action=save]", done)

    tab(page, "alerts")
    search = "IAM Error Spike - Account Alert"
    page.wait(f"!!document.querySelector('[data-row=\"{search}\"]')")
    refused_then_done("alerts", f'[data-row="{search}"] [data-action=toggle]', f"{search} switched off.")

    # the proxy's refused save shows in its form, and the earlier "saved" does not stand beside it
    save_proxy(page, "proxy.example", "3128")
    page.wait("document.querySelector('[data-tab=proxy]').innerText.includes('Proxy saved')")
    web.refuse_write(1, 500, refused)
    page.click("[data-tab=proxy] [data-action=save]")
    page.wait("!!document.querySelector('[data-tab=proxy] [data-message=form]')")
    assert page.eval(MESSAGES % "proxy") == [["error", refused]]
    page.send("Page.close")
