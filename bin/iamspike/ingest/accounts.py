"""AWS accounts, proxy and log levels set on the Configuration page, applied to an input stanza.

The page writes two conf files of the app through splunkd's REST API (so they land in the app's
``local/``), and the secrets into storage/passwords:

- ``aws_iam_error_spike_accounts.conf``: one stanza per account, ``auth = default_chain`` or
  ``static_key`` (the key pair ``ACCESS_KEY_ID:SECRET_ACCESS_KEY`` is the password of
  storage/passwords entry realm ``ACCOUNT_REALM``, username = the account's name),
  ``role_arn``, ``external_id``, ``regions``.
- ``aws_iam_error_spike_settings.conf``: ``[proxy]`` ``host``, ``port``, ``username`` (the
  password in realm ``PROXY_REALM``, username = the proxy's username) and ``[logging]``
  ``<input kind> = DEBUG|INFO|WARNING|ERROR``.

An input names an account with ``aws_account = <name>``; its own ``role_arn``, ``external_id``,
``regions``, ``proxy`` and ``log_level`` win over what the page set. Nothing here reads a
secret: ``apply`` says which storage/passwords entries the adapter must fetch, by name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from iamspike.ingest.aws import AwsSettingError, check_region, parse_aws_settings

ACCOUNTS_CONF = "aws_iam_error_spike_accounts"
SETTINGS_CONF = "aws_iam_error_spike_settings"
CREDENTIAL_REALM = "TA-aws-iam-error-spike"  # an input's ``credential = <name>`` (before accounts)
ACCOUNT_REALM = "TA-aws-iam-error-spike-account"
PROXY_REALM = "TA-aws-iam-error-spike-proxy"
AUTH_TYPES = ("default_chain", "static_key")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
KINDS_WITH_REGIONS = ("aws_cloudtrail_s3", "aws_cloudtrail_lookup", "aws_ec2_inventory")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$")


def read_conf(app_dir: str, name: str) -> dict[str, dict[str, str]]:
    """``default/<name>.conf`` layered under ``local/<name>.conf`` as splunkd merges them.

    Keys of a ``[default]`` stanza apply to every stanza; ``#`` comments and ``\\``
    continuations as in any .conf. A missing file is an empty conf.
    """
    merged: dict[str, dict[str, str]] = {}
    for layer in ("default", "local"):
        path = os.path.join(app_dir, layer, name + ".conf")
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            continue
        for stanza, keys in _parse(text).items():
            merged.setdefault(stanza, {}).update(keys)
    base = merged.pop("default", {})
    return {stanza: {**base, **keys} for stanza, keys in merged.items()}


def _parse(text: str) -> dict[str, dict[str, str]]:
    stanzas: dict[str, dict[str, str]] = {"default": {}}
    current = stanzas["default"]
    lines = iter(text.splitlines())
    for line in lines:
        while line.endswith("\\"):
            line = line[:-1] + "\n" + next(lines, "")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stanzas.setdefault(stripped[1:-1], {})
            continue
        key, sep, value = stripped.partition("=")
        if sep:
            current[key.strip()] = value.strip()
    return stanzas


@dataclass(frozen=True)
class Account:
    """An AWS account of the Configuration page (no secret: see ``ACCOUNT_REALM``)."""

    name: str
    auth: str = "default_chain"
    role_arn: str = ""
    external_id: str = ""
    regions: str = ""


@dataclass(frozen=True)
class Proxy:
    """The page's proxy; the password (if ``username``) is in storage/passwords."""

    host: str
    port: int
    username: str = ""

    def url(self, password: str = "") -> str:
        """``http://[user[:password]@]host:port`` (user and password percent-encoded)."""
        from urllib.parse import quote

        auth = ""
        if self.username:
            auth = quote(self.username, safe="") + (":" + quote(password, safe="") if password else "") + "@"
        return f"http://{auth}{self.host}:{self.port}"


def check_name(what: str, name: str) -> str:
    """An account (or input) name: 1-128 of letters, digits, ``_.@-``, not starting with one of
    ``_.@-``."""
    name = (name or "").strip()
    if not name:
        raise AwsSettingError(f"{what} is required")
    if not _NAME.match(name):
        raise AwsSettingError(f"{what} {name!r} must be 1-128 letters, digits or _ . @ - (starting with one)")
    return name


def parse_account(name: str, keys: Mapping[str, str]) -> Account:
    """One stanza of the accounts conf -> ``Account``; ``AwsSettingError`` naming the setting."""
    auth = (keys.get("auth") or "default_chain").strip()
    if auth not in AUTH_TYPES:
        raise AwsSettingError(f"account {name}: auth must be default_chain or static_key, not {auth!r}")
    try:  # the same checks as an input stanza's role_arn and external_id
        role = parse_aws_settings(
            {"role_arn": keys.get("role_arn") or "", "external_id": keys.get("external_id") or ""}
        )
        regions = ",".join(check_region(r) for r in (keys.get("regions") or "").split(",") if r.strip())
    except AwsSettingError as exc:
        raise AwsSettingError(f"account {name}: {exc}") from None
    return Account(name, auth, role.role_arn, role.external_id, regions)


def account(app_dir: str, name: str) -> Account:
    """The account ``name`` of the app's accounts conf; ``AwsSettingError`` if there is none."""
    name = check_name("aws_account", name)
    stanzas = read_conf(app_dir, ACCOUNTS_CONF)
    if name not in stanzas or _is_disabled(stanzas[name]):
        raise AwsSettingError(
            f"aws_account {name!r} is not an account of the Configuration page (AWS accounts tab)"
        )
    return parse_account(name, stanzas[name])


def proxy(app_dir: str) -> Proxy | None:
    """The page's proxy, or None when its host is empty or it is disabled."""
    keys = read_conf(app_dir, SETTINGS_CONF).get("proxy", {})
    host = (keys.get("host") or "").strip()
    if not host or _is_disabled(keys):
        return None
    if not _HOST.match(host):
        raise AwsSettingError(f"proxy host {host!r} is not a host name or address")
    port = (keys.get("port") or "").strip()
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise AwsSettingError(f"proxy port must be 1-65535, not {port!r}")
    return Proxy(host, int(port), (keys.get("username") or "").strip())


def log_level(app_dir: str, kind: str) -> str:
    """The page's log level for input ``kind`` ("" if not set)."""
    level = (read_conf(app_dir, SETTINGS_CONF).get("logging", {}).get(kind) or "").strip().upper()
    return level if level in LOG_LEVELS else ""


def _is_disabled(keys: Mapping[str, str]) -> bool:
    return (keys.get("disabled") or "").strip().lower() in ("1", "true", "yes", "t")


@dataclass(frozen=True)
class Applied:
    """A stanza with the page's settings filled in, and the secrets to fetch by name.

    ``key_entry``: (realm, username) of the static key, or None; ``proxy``: the page's proxy
    when the stanza has none of its own (its password, if any, under ``PROXY_REALM``).
    """

    params: dict[str, str]
    key_entry: tuple[str, str] | None = None
    proxy: Proxy | None = None


def apply(params: Mapping[str, str], app_dir: str, kind: str) -> Applied:
    """Fill the stanza's unset ``role_arn``, ``external_id``, ``regions`` and ``log_level`` from
    its ``aws_account`` and the page's settings; ``AwsSettingError`` on a bad reference.

    ``credential`` (a storage/passwords entry of the older realm) and ``aws_account`` exclude
    each other: the account already says where its key is.
    """
    merged = dict(params)
    key_entry = None
    name = (params.get("aws_account") or "").strip()
    if name:
        if (params.get("credential") or "").strip():
            raise AwsSettingError("aws_account and credential are both set: keep one")
        acct = account(app_dir, name)
        if not (params.get("role_arn") or "").strip():
            merged["role_arn"] = acct.role_arn
            merged["external_id"] = (params.get("external_id") or "").strip() or acct.external_id
        if kind in KINDS_WITH_REGIONS and acct.regions and not (params.get("regions") or "").strip():
            merged["regions"] = acct.regions
        if acct.auth == "static_key":
            key_entry = (ACCOUNT_REALM, acct.name)
    if not (params.get("log_level") or "").strip():
        merged["log_level"] = log_level(app_dir, kind) or "INFO"
    page_proxy = None if (params.get("proxy") or "").strip() else proxy(app_dir)
    if page_proxy:
        merged["proxy"] = page_proxy.url()  # the adapter adds the password it fetches
    return Applied(merged, key_entry, page_proxy)
