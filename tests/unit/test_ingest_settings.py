"""Stanza validation shared by the inputs: one-line messages."""

from __future__ import annotations

import datetime

import pytest
from iamspike.ingest.settings import (
    SettingsError,
    check_interval,
    check_no_clear_secret,
    check_queue_url,
    check_start_date,
)


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
