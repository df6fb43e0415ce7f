"""What every input reads from its stanza the same way, and the checks the inputs share.

``read_shared`` reads, once per run (or validation), what the four inputs share: the
Configuration page's account, regions, proxy and log level filled into the stanza
(``accounts.apply``), the AWS settings (``parse_aws_settings`` on the keys the input's
``aws_params`` gives), the interval, and which storage/passwords entries hold the secrets.
``with_secrets`` adds those secrets, fetched by name through the adapter's ``fetch``. Every
error is one line naming the setting, as splunkd shows it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Callable
from urllib.parse import urlsplit

from iamspike.ingest import accounts
from iamspike.ingest.aws import AwsSettingError, AwsSettings, int_setting, parse_aws_settings
from iamspike.ingest.context import InputKind

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


@dataclass(frozen=True)
class SharedSettings:
    """What every input reads the same way (see the module docstring)."""

    params: dict[str, str]  # the stanza, the page's account, regions, proxy and log level filled in
    aws: AwsSettings  # without the secrets: ``with_secrets`` adds them
    log_level: str
    interval: int  # seconds; a cron schedule or none counts as the input's default
    key_entry: tuple[str, str] | None = None  # storage/passwords (realm, username) of the static key
    page_proxy: accounts.Proxy | None = None  # the page's proxy, when the stanza names none


def read_shared(params: Mapping[str, str], app_dir: str, kind: InputKind[Any]) -> SharedSettings:
    """The shared settings of a stanza of input ``kind``; ``SettingsError`` (one line) on a bad
    value. ``app_dir`` holds the page's conf files ("" for none)."""
    check_no_clear_secret(params)
    applied = accounts.apply(params, app_dir, kind.name) if app_dir else accounts.Applied(dict(params))
    merged = applied.params
    key_entry = applied.key_entry
    credential = (merged.get("credential") or "").strip()
    if credential and key_entry is None:
        key_entry = (accounts.CREDENTIAL_REALM, credential)
    return SharedSettings(
        params=merged,
        aws=parse_aws_settings(kind.aws_params(merged)),
        log_level=(merged.get("log_level") or "").strip().upper() or "INFO",
        interval=interval_seconds(merged.get("interval"), kind.default_interval),
        key_entry=key_entry,
        page_proxy=applied.proxy,
    )


_HINTS = {accounts.CREDENTIAL_REALM: "credential", accounts.ACCOUNT_REALM: "aws_account"}


def with_secrets(shared: SharedSettings, fetch: Callable[[str, str], str]) -> AwsSettings:
    """``shared.aws`` with the static key and the page proxy's password, each read by name with
    ``fetch(realm, username)`` (the clear password; ``ValueError`` if there is none)."""
    aws = shared.aws
    if shared.key_entry:
        realm, name = shared.key_entry
        key_id, sep, secret = _fetch(fetch, realm, name).partition(":")
        if not sep or not key_id.strip() or not secret.strip():
            raise SettingsError(
                f"storage/passwords entry {realm}:{name} is not ACCESS_KEY_ID:SECRET_ACCESS_KEY"
            )
        aws = replace(aws, access_key_id=key_id.strip(), secret_access_key=secret.strip())
    proxy = shared.page_proxy
    if proxy and proxy.username:
        aws = replace(aws, proxy=proxy.url(_fetch(fetch, accounts.PROXY_REALM, proxy.username)))
    return aws


def _fetch(fetch: Callable[[str, str], str], realm: str, name: str) -> str:
    try:
        return fetch(realm, name)
    except ValueError as exc:
        hint = f" ({_HINTS[realm]}={name})" if realm in _HINTS else " (the Proxy tab's password)"
        raise SettingsError(f"{exc}{hint}".replace("\n", " ")) from None
