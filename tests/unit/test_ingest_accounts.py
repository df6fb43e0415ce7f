"""iamspike.ingest.accounts: the Configuration page's accounts, proxy and log levels on a stanza."""

from __future__ import annotations

import pytest
from iamspike.ingest import accounts
from iamspike.ingest.aws import AwsSettingError

ROLE = "arn:aws:iam::111122223333:role/reader"


@pytest.fixture
def app(tmp_path):
    (tmp_path / "default").mkdir()
    (tmp_path / "local").mkdir()
    (tmp_path / "default" / "aws_iam_error_spike_settings.conf").write_text(
        "[proxy]\nhost =\nport =\n\n[logging]\naws_cloudtrail_sqs = INFO\n"
    )
    (tmp_path / "local" / "aws_iam_error_spike_accounts.conf").write_text(
        "[default]\nauth = default_chain\n\n"
        f"[prod-audit]\nauth = static_key\nrole_arn = {ROLE}\nexternal_id = ext-1\n"
        "regions = us-east-1,eu-west-1\n\n"
        "[chain]\n\n[old]\ndisabled = 1\n"
    )
    return tmp_path


def write_local_settings(app, text):
    (app / "local" / "aws_iam_error_spike_settings.conf").write_text(text)


def test_local_layers_over_default_and_the_default_stanza_applies_to_every_stanza(app):
    write_local_settings(app, "[logging]\naws_cloudtrail_sqs = debug\n# a comment\n")
    confs = accounts.read_conf(str(app), "aws_iam_error_spike_settings")
    assert confs["logging"] == {"aws_cloudtrail_sqs": "debug"}
    assert confs["proxy"] == {"host": "", "port": ""}
    assert accounts.read_conf(str(app), "aws_iam_error_spike_accounts")["chain"] == {"auth": "default_chain"}
    assert accounts.read_conf(str(app), "missing") == {}


def test_an_input_naming_an_account_gets_its_role_regions_and_key_entry(app):
    applied = accounts.apply({"aws_account": "prod-audit", "bucket": "b"}, str(app), "aws_cloudtrail_s3")
    assert applied.params["role_arn"] == ROLE and applied.params["external_id"] == "ext-1"
    assert applied.params["regions"] == "us-east-1,eu-west-1"
    assert applied.key_entry == (accounts.ACCOUNT_REALM, "prod-audit")
    assert applied.params["log_level"] == "INFO" and applied.proxy is None


@pytest.mark.parametrize(
    ("params", "kind", "expected"),
    [
        (
            {"role_arn": "arn:aws:iam::999999999999:role/own"},
            "aws_cloudtrail_s3",
            ("arn:aws:iam::999999999999:role/own", "us-east-1,eu-west-1"),
        ),
        ({"regions": "ap-south-1"}, "aws_cloudtrail_s3", (ROLE, "ap-south-1")),
        ({}, "aws_cloudtrail_sqs", (ROLE, None)),  # the SQS input takes its region from the queue URL
    ],
)
def test_the_stanza_own_settings_win_over_the_account(app, params, kind, expected):
    applied = accounts.apply({"aws_account": "prod-audit", **params}, str(app), kind)
    assert (applied.params["role_arn"], applied.params.get("regions")) == expected


def test_a_default_chain_account_has_no_key_entry_and_a_stanza_without_account_is_unchanged(app):
    assert accounts.apply({"aws_account": "chain"}, str(app), "aws_cloudtrail_sqs").key_entry is None
    plain = accounts.apply({"credential": "prod", "queue_url": "q"}, str(app), "aws_cloudtrail_sqs")
    assert plain.params == {"credential": "prod", "queue_url": "q", "log_level": "INFO"}
    assert plain.key_entry is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"aws_account": "nope"}, "aws_account 'nope' is not an account of the Configuration page"),
        ({"aws_account": "old"}, "aws_account 'old' is not an account"),  # disabled
        ({"aws_account": "a b"}, "aws_account 'a b' must be 1-128 letters"),
        ({"aws_account": "prod-audit", "credential": "prod"}, "aws_account and credential are both set"),
    ],
)
def test_a_bad_account_reference_is_one_line(app, params, message):
    with pytest.raises(AwsSettingError, match=message):
        accounts.apply(params, str(app), "aws_cloudtrail_sqs")


@pytest.mark.parametrize(
    ("stanza", "message"),
    [
        ("auth = token", "auth must be default_chain or static_key"),
        ("role_arn = arn:aws:iam::1:role/x", "is not an IAM role ARN"),
        ("external_id = abc", "external_id is set but role_arn is not"),
        ("regions = mars-1", "unknown AWS region 'mars-1'"),
    ],
)
def test_a_malformed_account_is_refused(app, stanza, message):
    (app / "local" / "aws_iam_error_spike_accounts.conf").write_text(f"[bad]\n{stanza}\n")
    with pytest.raises(AwsSettingError, match=message):
        accounts.apply({"aws_account": "bad"}, str(app), "aws_cloudtrail_sqs")


def test_the_page_proxy_and_log_level_apply_unless_the_stanza_sets_its_own(app):
    write_local_settings(
        app,
        "[proxy]\nhost = proxy.example\nport = 3128\nusername = fwd\n[logging]\naws_cloudtrail_sqs = DEBUG\n",
    )
    applied = accounts.apply({}, str(app), "aws_cloudtrail_sqs")
    assert applied.proxy == accounts.Proxy("proxy.example", 3128, "fwd")
    assert applied.params["proxy"] == "http://fwd@proxy.example:3128"  # no password in the stanza
    assert applied.params["log_level"] == "DEBUG"
    assert applied.proxy.url("p@ss:w/rd") == "http://fwd:p%40ss%3Aw%2Frd@proxy.example:3128"
    own = accounts.apply({"proxy": "http://other:8080", "log_level": "ERROR"}, str(app), "aws_cloudtrail_sqs")
    assert (
        own.proxy is None
        and own.params["proxy"] == "http://other:8080"
        and own.params["log_level"] == "ERROR"
    )
    assert accounts.apply({}, str(app), "aws_cloudtrail_s3").params["log_level"] == "INFO"


@pytest.mark.parametrize(
    ("proxy", "message"),
    [
        ("host = proxy.example\nport = 99999", "proxy port must be 1-65535"),
        ("host = a b\nport = 1", "proxy host"),
    ],
)
def test_a_bad_page_proxy_is_one_line(app, proxy, message):
    write_local_settings(app, f"[proxy]\n{proxy}\n")
    with pytest.raises(AwsSettingError, match=message):
        accounts.apply({}, str(app), "aws_cloudtrail_sqs")
