"""Validation of input stanzas shared by every input: one-line messages splunkd shows as is."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from iamspike.ingest.aws import AwsSettingError, int_setting

_CRON_FIELD = re.compile(r"^[\d*/,\-]+$")
_QUEUE_PATH = re.compile(r"^/(\d{12})/([A-Za-z0-9_-]{1,80}(\.fifo)?)$")
_SQS_HOST = re.compile(
    r"^(?:sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?|([a-z0-9-]+)\.queue\.amazonaws\.com)$"
)
_CREDENTIAL = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
_SECRET_KEYS = ("secret", "access_key", "password", "session_token")

SettingsError = AwsSettingError


def check_interval(value: str | None) -> None:
    """An interval in seconds (60..86400) or a 5-field cron schedule."""
    text = (value or "").strip()
    if not text:
        return
    if text.isdigit() or text.lstrip("-").isdigit():
        int_setting(text, "interval", 300, 60, 86400)
        return
    fields = text.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise SettingsError(f"interval must be seconds (60-86400) or a cron schedule, not {text!r}")


def interval_seconds(value: str | None, default: int = 300) -> int:
    """An input's interval in seconds (a cron schedule or nothing counts as ``default``)."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else default


def check_no_clear_secret(params: Mapping[str, str]) -> None:
    """Refuse keys that would hold a secret in clear in inputs.conf."""
    for key, value in params.items():
        if value and any(word in key.lower() for word in _SECRET_KEYS):
            raise SettingsError(
                f"{key} must not be set in inputs.conf: store the key in storage/passwords "
                "(realm TA-aws-iam-error-spike) and set credential=<name>"
            )
    credential = (params.get("credential") or "").strip()
    if credential and not _CREDENTIAL.match(credential):
        raise SettingsError(f"credential {credential!r} is not a storage/passwords entry name")


def check_queue_url(url: str) -> tuple[str, str]:
    """An SQS queue URL -> (region or "", queue ARN-ish name); one-line error if malformed."""
    url = (url or "").strip()
    if not url:
        raise SettingsError("queue_url is required (https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE)")
    parts = urlsplit(url)
    match = _QUEUE_PATH.match(parts.path)
    if parts.scheme not in ("http", "https") or not parts.hostname or not match or parts.query:
        raise SettingsError(
            f"queue_url {url!r} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE)"
        )
    host = _SQS_HOST.match(parts.hostname)
    region = (host.group(1) or host.group(2)) if host else ""
    return region, f"arn:aws:sqs:{region or '*'}:{match.group(1)}:{match.group(2)}"


def check_start_date(
    value: str | None, default_days: int = 7, today: datetime.date | None = None
) -> datetime.date:
    """``YYYY-MM-DD`` not in the future (default: ``default_days`` ago)."""
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    text = (value or "").strip()
    if not text:
        return today - datetime.timedelta(days=default_days)
    try:
        date = datetime.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise SettingsError(f"start_date must be YYYY-MM-DD, not {text!r}") from None
    if date > today:
        raise SettingsError(f"start_date {text} is in the future (today is {today.isoformat()} UTC)")
    return date
