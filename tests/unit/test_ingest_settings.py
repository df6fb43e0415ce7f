"""Stanza validation shared by the inputs: one-line messages."""

from __future__ import annotations

import datetime

import pytest
from iamspike.ingest import accounts
from iamspike.ingest.context import InputKind
from iamspike.ingest.settings import (
    SettingsError,
    check_interval,
    check_no_clear_secret,
    check_queue_url,
    check_start_date,
    interval_seconds,
    read_shared,
    with_secrets,
)

ROLE = "arn:aws:iam::111122223333:role/reader"


def no_run(ctx, settings):
    raise AssertionError("not run here")


def adaptive(params):
    return dict(params, retry_mode=params.get("retry_mode") or "adaptive")


KIND = InputKind("aws_cloudtrail_lookup", dict, no_run, adaptive, default_interval=600)


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/ct-notify", "eu-west-1"),
        ("https://eu-west-1.queue.amazonaws.com/123456789012/ct.fifo", "eu-west-1"),
        ("http://127.0.0.1:5000/123456789012/local", ""),
    ],
)
def test_queue_urls_accepted(url, region):
    assert check_queue_url(url)[0] == region


@pytest.mark.parametrize(
    "url",
    [
        "",
        "sqs.us-east-1.amazonaws.com/123456789012/q",
        "https://sqs.us-east-1.amazonaws.com/12345/q",
        "https://sqs.us-east-1.amazonaws.com/123456789012/",
        "ftp://x/123456789012/q",
        "https://sqs.us-east-1.amazonaws.com/123456789012/q?x=1",
    ],
)
def test_malformed_queue_urls_rejected_in_one_line(url):
    with pytest.raises(SettingsError) as info:
        check_queue_url(url)
    assert "\n" not in str(info.value) and "queue_url" in str(info.value)


@pytest.mark.parametrize("value", ["", "300", "60", "86400", "*/5 * * * *", "0 * * * 1-5"])
def test_intervals_accepted(value):
    check_interval(value)


@pytest.mark.parametrize("value", ["10", "59", "0", "-5", "100000", "often", "* * *"])
def test_bad_intervals_rejected(value):
    with pytest.raises(SettingsError, match="interval"):
        check_interval(value)


@pytest.mark.parametrize(("value", "seconds"), [("600", 600), ("", 300), ("*/5 * * * *", 300), ("0", 300)])
def test_interval_seconds(value, seconds):
    assert interval_seconds(value, 300) == seconds


def test_start_date():
    today = datetime.date(2024, 5, 10)
    assert check_start_date("2024-05-01", today=today) == datetime.date(2024, 5, 1)
    assert check_start_date("", today=today) == datetime.date(2024, 5, 3)
    with pytest.raises(SettingsError, match="future"):
        check_start_date("2024-05-11", today=today)
    with pytest.raises(SettingsError, match="YYYY-MM-DD"):
        check_start_date("05/01/2024", today=today)


def test_secrets_in_clear_are_refused():
    with pytest.raises(SettingsError, match="storage/passwords"):
        check_no_clear_secret({"aws_secret_access_key": "wJalr..."})
    with pytest.raises(SettingsError, match="credential"):
        check_no_clear_secret({"credential": "has spaces"})
    check_no_clear_secret({"credential": "prod-readonly", "queue_url": "x"})


@pytest.fixture
def app(tmp_path):
    """An app folder with the Configuration page's files: an account with a static key and a
    role, a proxy with a user, a log level for the lookup input."""
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "aws_iam_error_spike_accounts.conf").write_text(
        f"[prod]\nauth = static_key\nrole_arn = {ROLE}\nregions = eu-west-1\n\n[chain]\n"
    )
    (tmp_path / "local" / "aws_iam_error_spike_settings.conf").write_text(
        "[proxy]\nhost = proxy.example\nport = 3128\nusername = fwd\n\n"
        "[logging]\naws_cloudtrail_lookup = debug\n"
    )
    return str(tmp_path)


def test_shared_settings_read_the_page_account_proxy_and_log_level_once(app):
    shared = read_shared({"aws_account": "prod", "interval": "*/5 * * * *"}, app, KIND)
    assert shared.params["regions"] == "eu-west-1" and shared.log_level == "DEBUG"
    assert shared.aws.role_arn == ROLE and shared.aws.retry_mode == "adaptive"  # the input's aws_params
    assert shared.aws.proxy == "http://fwd@proxy.example:3128" and shared.aws.access_key_id == ""
    assert shared.key_entry == (accounts.ACCOUNT_REALM, "prod") and shared.interval == 600  # cron: default
    own = read_shared(
        {"credential": "old-key", "proxy": "http://other:8080", "log_level": "error"}, app, KIND
    )
    assert own.key_entry == (accounts.CREDENTIAL_REALM, "old-key") and own.page_proxy is None
    assert own.aws.proxy == "http://other:8080" and own.log_level == "ERROR"
    bare = read_shared({"interval": "120"}, "", KIND)  # no app folder: nothing from the page
    assert (
        bare.key_entry is None and bare.aws.proxy == "" and bare.log_level == "INFO" and bare.interval == 120
    )


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"aws_account": "nobody"}, "aws_account 'nobody' is not an account"),
        ({"aws_account": "prod", "credential": "k"}, "aws_account and credential are both set"),
        ({"secret_key": "x"}, "must not be set in inputs.conf"),
        ({"role_arn": "arn:aws:iam::1:role/x"}, "is not an IAM role ARN"),
    ],
)
def test_shared_settings_refuse_bad_references_in_one_line(app, params, words):
    with pytest.raises(SettingsError, match=words):
        read_shared(params, app, KIND)


def test_secrets_are_read_by_name_and_added_to_the_aws_settings(app):
    store = {
        (accounts.ACCOUNT_REALM, "prod"): "AKIAIOSFODNN7EXAMPLE:s3cr/et",
        (accounts.PROXY_REALM, "fwd"): "p@ss:w",
    }
    asked = []

    def fetch(realm, username):
        asked.append((realm, username))
        if (realm, username) not in store:
            raise ValueError(f"no storage/passwords entry {realm}:{username}")
        return store[(realm, username)]

    aws = with_secrets(read_shared({"aws_account": "prod"}, app, KIND), fetch)
    assert (aws.access_key_id, aws.secret_access_key) == ("AKIAIOSFODNN7EXAMPLE", "s3cr/et")
    assert aws.proxy == "http://fwd:p%40ss%3Aw@proxy.example:3128" and aws.role_arn == ROLE
    assert asked == list(store)  # one entry each, by name
    with pytest.raises(
        SettingsError, match=r"no storage/passwords entry TA-aws-iam-error-spike:gone \(credential=gone\)"
    ):
        with_secrets(read_shared({"credential": "gone"}, app, KIND), fetch)
    store[(accounts.ACCOUNT_REALM, "prod")] = "no-colon"
    with pytest.raises(SettingsError, match="is not ACCESS_KEY_ID:SECRET_ACCESS_KEY"):
        with_secrets(read_shared({"aws_account": "prod"}, app, KIND), fetch)
