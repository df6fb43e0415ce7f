"""AWS settings, sessions (role assumption through the loopback STS), error messages."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from iamspike.ingest.aws import (
    AwsClients,
    AwsSettingError,
    AwsSettings,
    explain,
    parse_aws_settings,
    parse_endpoint_urls,
    redact,
)
from standin.fixtures_aws import ACCOUNT

ROLE = f"arn:aws:iam::{ACCOUNT}:role/splunk-reader"


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


def test_key_ids_are_redacted():
    text = redact("key AKIAIOSFODNN7EXAMPLE and ASIAXXXXXXXXXXXX1234 and AKIA-not-a-key")
    assert "AKIAIOSFODNN7EXAMPLE" not in text and "AKIA************MPLE" in text
    assert "ASIA************1234" in text and "AKIA-not-a-key" in text


def test_access_denied_names_the_permission_resource_and_role():
    settings = AwsSettings(role_arn=ROLE)
    text = explain(client_error("AccessDenied", 403), "s3:GetObject", "arn:aws:s3:::trail/k", settings)
    assert text.startswith("AccessDenied")
    assert f"add s3:GetObject on arn:aws:s3:::trail/k to role {ROLE}" in text


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (client_error("ExpiredToken"), "expired"),
        (client_error("SlowDown", 503), "throttled"),
        (client_error("NoSuchKey", 404), "does not exist"),
        (client_error("InternalError", 500), "HTTP 500"),
        (EndpointConnectionError(endpoint_url="https://x"), "check network"),
    ],
)
def test_other_errors_are_explained_in_one_line(exc, words):
    text = explain(exc, "s3:GetObject", "arn:aws:s3:::b/k", AwsSettings(access_key_id="AKIAIOSFODNN7EXAMPLE"))
    assert words in text and "\n" not in text


def test_a_rejected_key_is_not_answered_with_a_permission():
    # moto (and an XML error on SQS's JSON protocol) leaves botocore the HTTP status as the code
    xml = (
        '<?xml version="1.0"?><ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code>'
        "<Message>The security token included in the request is invalid.</Message>"
        "</Error></Errors></ErrorResponse>"
    )
    exc = ClientError(
        {"Error": {"Code": "403", "Message": xml}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "Op"
    )
    settings = AwsSettings(access_key_id="AKIAIOSFODNN7EXAMPLE")
    for error in (exc, client_error("SignatureDoesNotMatch", 403), client_error("InvalidAccessKeyId", 403)):
        text = explain(error, "sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:1:q", settings)
        assert "rejected the credentials" in text and "add sqs:ReceiveMessage" not in text
        assert "AKIA************MPLE (storage/passwords)" in text and "\n" not in text
    assert explain(exc, "sqs:ReceiveMessage", "q", AwsSettings()).startswith("InvalidClientTokenId:")


def test_a_failed_assume_role_blames_the_forwarders_own_credentials():
    settings = AwsSettings(role_arn=ROLE)
    rejected = ClientError(
        {
            "Error": {"Code": "InvalidClientTokenId", "Message": "m"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "AssumeRole",
    )
    text = explain(rejected, "sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:1:q", settings)
    assert (
        "rejected the forwarder's own credentials (AWS default chain" in text
        and "the role is not the cause" in text
    )
    assert f"credentials of role {ROLE}" not in text and "add sqs:ReceiveMessage" not in text
    denied = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        "AssumeRole",
    )
    text = explain(denied, "sqs:ReceiveMessage", "q", AwsSettings(role_arn=ROLE, external_id="ext-1"))
    assert f"may not assume role {ROLE}" in text and "trust policy and the external_id" in text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"region": "mars-north-1"}, "unknown AWS region"),
        ({"role_arn": "arn:aws:iam::12:role/x"}, "role_arn"),
        ({"role_arn": "arn:aws:iam::123456789012:user/x"}, "role_arn"),
        ({"external_id": "abc"}, "external_id is set but role_arn is not"),
        ({"retry_mode": "legacy"}, "retry_mode"),
        ({"max_attempts": "0"}, "max_attempts"),
        ({"read_timeout": "ten"}, "read_timeout"),
        ({"proxy": "proxy.local:3128"}, "proxy"),
        ({"endpoint_urls": "s3=vpce.local"}, "endpoint_urls"),
    ],
)
def test_bad_settings_give_one_line(params, message):
    with pytest.raises(AwsSettingError, match=message) as info:
        parse_aws_settings(params)
    assert "\n" not in str(info.value)


def test_settings_and_endpoints_parse():
    settings = parse_aws_settings(
        {
            "region": "eu-west-1",
            "role_arn": ROLE,
            "external_id": "ext-1",
            "retry_mode": "adaptive",
            "endpoint_urls": "s3=https://s3.vpce.local, sqs=https://sqs.vpce.local",
        }
    )
    assert settings.region == "eu-west-1" and settings.retry_mode == "adaptive"
    assert dict(settings.endpoint_urls) == {"s3": "https://s3.vpce.local", "sqs": "https://sqs.vpce.local"}
    assert parse_endpoint_urls("http://127.0.0.1:5000") == {"default": "http://127.0.0.1:5000"}
    assert "secret" not in repr(AwsSettings(secret_access_key="secret"))


def test_proxy_passwords_are_redacted_and_kept_out_of_repr():
    assert redact("via http://ops:s3cr%40t@proxy.local:3128 and https://u:p@h/x") == (
        "via http://ops:***@proxy.local:3128 and https://u:***@h/x"
    )
    assert redact("http://proxy.local:3128 mail@example.com") == "http://proxy.local:3128 mail@example.com"
    assert "s3cr" not in repr(AwsSettings(proxy="http://ops:s3cr@proxy.local:3128"))


def test_the_proxy_setting_reaches_every_client():
    proxy = "http://ops:pw@proxy.local:3128"
    clients = AwsClients(parse_aws_settings({"proxy": proxy}))
    for service in ("s3", "sqs", "cloudtrail"):
        assert clients.client(service).meta.config.proxies == {"http": proxy, "https": proxy}


def test_clients_share_one_config_with_the_retry_mode():
    clients = AwsClients(
        AwsSettings(retry_mode="adaptive", max_attempts=7, endpoint_urls={"s3": "http://s3.local"})
    )
    s3 = clients.client("s3")
    assert s3 is clients.client("s3")
    assert s3.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 7}
    assert s3.meta.endpoint_url == "http://s3.local"


def test_role_is_assumed_through_sts_with_external_id(moto_server, aws_clients, unique_name):
    iam = aws_clients("iam")
    iam.create_role(RoleName=unique_name, AssumeRolePolicyDocument="{}")
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{unique_name}"
    settings = AwsSettings(
        role_arn=role_arn,
        external_id="ext-1",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key="x",
        endpoint_urls={"default": moto_server},
    )
    clients = AwsClients(settings)
    identity = clients.client("sts").get_caller_identity()
    assert f"assumed-role/{unique_name}/" in identity["Arn"]
    credentials = clients.session.get_credentials()
    assert credentials.get_frozen_credentials().access_key.startswith("ASIA")
    assert credentials.refresh_needed(refresh_in=4000)  # botocore refreshes before the 1 h expiry
