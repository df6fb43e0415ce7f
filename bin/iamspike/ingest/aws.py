"""AWS access shared by every input: session, credentials, clients, error messages, validation.

Credentials come from (in this order) an explicit static key (read by the adapter from Splunk's
storage/passwords, never from a .conf), else the AWS default chain (environment, shared config,
instance profile). An optional ``role_arn`` (+ ``external_id``) is assumed through STS with
credentials that botocore refreshes before they expire. Retries are botocore's ``standard`` or
``adaptive`` modes, configured once on the client; endpoints per service (VPC endpoints) and a
proxy come from the settings, else from the standard ``AWS_ENDPOINT_URL*`` variables.

Clients come from botocore sessions directly: boto3 adds nothing the inputs use (resources,
managed transfers) and its import (s3transfer, ~0.05-0.07 s) would be paid by every run. Every
session of the process shares one data loader, so botocore's endpoint and service models are
parsed once (validation's region check and the clients used to parse endpoints.json twice).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Callable
from urllib.parse import urlsplit

import botocore.session
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.regions import EndpointResolver

SESSION_NAME = "TA-aws-iam-error-spike"
RETRY_MODES = ("standard", "adaptive")
ASSUME_ROLE_SECONDS = 3600

_KEY_ID_RE = re.compile(r"\b(AKIA|ASIA|AROA|AIDA)([A-Z0-9]{12})([A-Z0-9]{4})\b")
_URL_PASSWORD_RE = re.compile(
    r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@"
)  # a proxy's user:password@
_ROLE_ARN_RE = re.compile(r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_XML_CODE_RE = re.compile(r"<Code>([A-Za-z0-9_.]+)</Code>")  # an XML error botocore did not parse

ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden", "403"}
)
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"})
REJECTED_KEY_CODES = frozenset(  # the key itself refused: unknown, deactivated, wrong secret
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
    }
)
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "SlowDown"}
)
NOT_FOUND_CODES = frozenset(
    {"NoSuchKey", "NoSuchBucket", "404", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
)


class AwsSettingError(ValueError):
    """A bad AWS setting; ``str(e)`` is one line fit for Splunk's UI."""


@dataclass(frozen=True)
class AwsSettings:
    """How to reach AWS. Empty strings mean "not set" (use the default chain / standard env)."""

    region: str = "us-east-1"
    role_arn: str = ""
    external_id: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    endpoint_urls: Mapping[str, str] = field(default_factory=dict)  # service name -> URL
    proxy: str = field(default="", repr=False)  # may hold user:password@
    retry_mode: str = "standard"
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def principal(self) -> str:
        """Who the calls run as, for error messages that name what to fix."""
        if self.role_arn:
            return f"role {self.role_arn}"
        if self.access_key_id:
            return f"the IAM user of key {redact(self.access_key_id)}"
        return "the identity of the AWS default credential chain"

    def source(self) -> str:
        """The forwarder's own credentials: what signs every call, or ``sts:AssumeRole`` with a role."""
        if self.access_key_id:
            return f"the forwarder's own key {redact(self.access_key_id)} (storage/passwords)"
        return "the forwarder's own credentials (AWS default chain: environment, ~/.aws, instance role)"


def redact(text: str) -> str:
    """Mask AWS key ids (AKIA/ASIA/...) in ``text``, keeping the prefix and last 4 characters,
    and the password of any ``scheme://user:password@host`` URL (a proxy's)."""
    text = _KEY_ID_RE.sub(lambda m: m.group(1) + "*" * 12 + m.group(3), str(text))
    return _URL_PASSWORD_RE.sub(r"\1***@", text) if "@" in text else text


def botocore_config(settings: AwsSettings) -> Config:
    """The one botocore ``Config`` every client of an input uses: retries, timeouts, proxy."""
    kwargs: dict[str, Any] = {
        "region_name": settings.region,
        "retries": {"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        "connect_timeout": settings.connect_timeout,
        "read_timeout": settings.read_timeout,
        "user_agent_extra": SESSION_NAME,
    }
    if settings.proxy:
        kwargs["proxies"] = {"http": settings.proxy, "https": settings.proxy}
    return Config(**kwargs)


@functools.lru_cache(maxsize=1)
def _data_loader() -> Any:
    """botocore's JSON data loader, shared by every session of the process (it caches)."""
    return botocore.session.get_session().get_component("data_loader")


def new_session() -> botocore.session.Session:
    """A fresh botocore session (own credentials and config) on the process's shared loader."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _data_loader())
    return session


def _base_session(settings: AwsSettings) -> botocore.session.Session:
    session = new_session()
    if settings.access_key_id:
        session.set_credentials(settings.access_key_id, settings.secret_access_key)
    return session


def _assume_role_fetcher(
    sts_client: Any, role_arn: str, external_id: str, duration: int = ASSUME_ROLE_SECONDS
) -> Callable[[], dict[str, str]]:
    def fetch() -> dict[str, str]:
        kwargs: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": f"{SESSION_NAME}-{int(time.time())}",
            "DurationSeconds": duration,
        }
        if external_id:
            kwargs["ExternalId"] = external_id
        creds = sts_client.assume_role(**kwargs)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    return fetch


class AwsClients:
    """botocore clients for one input run, built once per service with the shared ``Config``.

    With ``role_arn`` set, the credentials are assumed lazily through STS and refreshed by
    botocore before they expire (15 minutes ahead), so long runs never use an expired token.
    """

    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        self.config = botocore_config(settings)
        base = _base_session(settings)
        if settings.role_arn:
            sts = base.create_client(
                "sts", region_name=settings.region, config=self.config, endpoint_url=self.endpoint_url("sts")
            )
            assumed = new_session()
            assumed._credentials = DeferredRefreshableCredentials(
                refresh_using=_assume_role_fetcher(sts, settings.role_arn, settings.external_id),
                method="sts-assume-role",
            )
            base = assumed
        self.session = base
        self._clients: dict[tuple[str, str], Any] = {}

    def endpoint_url(self, service: str) -> str | None:
        """The setting's endpoint for ``service`` (or its "default"), else None (botocore decides)."""
        urls = self.settings.endpoint_urls
        return urls.get(service) or urls.get("default") or None

    def client(self, service: str, region: str | None = None) -> Any:
        """A cached botocore client for ``service`` in ``region`` (default: the settings' region)."""
        region = region or self.settings.region
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self.session.create_client(
                service,
                region_name=region,
                config=self.config,
                endpoint_url=self.endpoint_url(service),
            )
        return self._clients[key]


def error_code(exc: BaseException) -> str:
    """The AWS error code of ``exc`` ("AccessDenied", "NoSuchKey", ...) or its class name."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "")
        if not code or code.isdigit():
            # An error body botocore's protocol parser could not read (an XML error on a JSON
            # protocol) leaves the HTTP status as the code: the body still names the error.
            found = _XML_CODE_RE.search(str(err.get("Message") or ""))
            if found:
                return found.group(1)
        if not code:
            code = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        return code or "ClientError"
    return type(exc).__name__


def is_access_denied(exc: BaseException) -> bool:
    return error_code(exc) in ACCESS_DENIED_CODES


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in NOT_FOUND_CODES


def explain(exc: BaseException, action: str, resource: str, settings: AwsSettings) -> str:
    """One log line naming the cause of an AWS error and what to fix.

    ``action`` is the IAM action of the failed call (``s3:GetObject``), ``resource`` the ARN it
    was called on. Key ids in the message are redacted.
    """
    code = error_code(exc)
    who = settings.principal()
    if settings.role_arn and getattr(exc, "operation_name", "") == "AssumeRole":
        text = _explain_assume_role(exc, code, action, settings)
    elif code in REJECTED_KEY_CODES:
        text = (
            f"{code}: AWS rejected the credentials of {who} calling {action} on {resource}"
            " (unknown or deactivated access key, wrong secret, or a clock far off); fix "
            + (f"the credentials of {who}" if settings.role_arn else settings.source())
            + " (not a permission: no policy change helps)"
        )
    elif code in ACCESS_DENIED_CODES:
        text = (
            f"AccessDenied: {who} is not allowed to call {action} on {resource}; "
            f"add {action} on {resource} to {who}"
        )
    elif code in EXPIRED_CODES:
        text = (
            f"{code}: the credentials of {who} are expired or invalid for {action} on {resource}; renew them"
        )
    elif code in THROTTLING_CODES:
        text = (
            f"{code}: AWS throttled {action} on {resource} after the configured retries; will retry next run"
        )
    elif code in NOT_FOUND_CODES:
        text = f"{code}: {resource} does not exist ({action})"
    elif isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        text = f"{code} (HTTP {status}) from {action} on {resource}: {exc}"
    elif isinstance(exc, BotoCoreError):
        text = f"{code} calling {action} on {resource}: {exc} (check network, proxy and endpoint settings)"
    else:
        text = f"{code} calling {action} on {resource}: {exc}"
    return redact(text).replace("\n", " ")


def _explain_assume_role(exc: BaseException, code: str, action: str, settings: AwsSettings) -> str:
    """An ``sts:AssumeRole`` failure: the forwarder's own credentials, or the role's trust."""
    role, source = settings.role_arn, settings.source()
    if code in REJECTED_KEY_CODES or code in EXPIRED_CODES:
        return (
            f"{code}: AWS rejected {source} when assuming role {role} (sts:AssumeRole, before"
            f" {action}); fix those credentials: the role is not the cause"
        )
    if code in ACCESS_DENIED_CODES:
        external = " and the external_id it requires" if settings.external_id else ""
        return (
            f"AccessDenied: {source} may not assume role {role} (sts:AssumeRole, before {action});"
            f" allow it in the role's trust policy{external}, and sts:AssumeRole on {role} in the"
            " policy of those credentials"
        )
    return f"{code} from sts:AssumeRole of role {role} with {source} (before {action}): {exc}"


AWS_ERRORS: tuple[type[BaseException], ...] = (ClientError, BotoCoreError)

CHECK_SECONDS = 5.0  # connect and read timeouts of a check at validation (one attempt)
_ERRNO_RE = re.compile(r"\[Errno -?\d+\] ([^)\]]+)")


def check_reachable(
    aws: AwsSettings,
    service: str,
    call: Callable[[Any], object],
    setting: str,
    missing: str,
    action: str,
    resource: str,
) -> None:
    """At ``--validate-arguments``: ``call(client)`` once, with ``CHECK_SECONDS`` timeouts and no
    retry, and an ``AwsSettingError`` "<setting>: <cause>" if the endpoint cannot be reached, the
    resource does not exist (``missing`` says which), or the credentials or the role are refused.

    AccessDenied on the call itself (its permission need not be one the input uses), throttling
    and a 5xx let the stanza pass: the endpoint answered, and the input's log will say more.
    """
    quick = replace(
        aws,
        connect_timeout=min(aws.connect_timeout, CHECK_SECONDS),
        read_timeout=min(aws.read_timeout, CHECK_SECONDS),
        max_attempts=1,
    )
    client = AwsClients(quick).client(service)
    try:
        call(client)
    except ClientError as exc:
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in NOT_FOUND_CODES:
            raise AwsSettingError(f"{setting}: {missing} ({code})") from None
        assume = getattr(exc, "operation_name", "") == "AssumeRole"
        if not assume and (code in ACCESS_DENIED_CODES or code in THROTTLING_CODES or status >= 500):
            return
        raise AwsSettingError(f"{setting}: {explain(exc, action, resource, aws)}") from None
    except NoCredentialsError:
        raise AwsSettingError(
            f"{setting}: no AWS credentials to call {action} with (set aws_account or credential,"
            " or give the forwarder credentials of the AWS default chain)"
        ) from None
    except BotoCoreError as exc:
        kwargs = getattr(exc, "kwargs", {}) or {}
        cause = str(kwargs.get("error") or exc)
        errno = _ERRNO_RE.search(cause)
        cause = errno.group(1) if errno else cause.split("): ", 1)[-1]
        where = kwargs.get("endpoint_url") or kwargs.get("proxy_url") or client.meta.endpoint_url
        raise AwsSettingError(
            redact(f"{setting}: cannot reach {where}: {cause}").replace("\n", " ")
        ) from None


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region botocore's endpoint data knows for S3, SQS, CloudTrail or EC2, in every
    partition (computed once).

    Asked of botocore's endpoint resolver directly (these services' endpoint prefixes are their
    names): ``Session.get_available_regions`` loads each service's whole model first to read
    its prefix, and EC2's costs 0.06-0.07 s of every start of an input that never calls EC2.
    """
    resolver = EndpointResolver(_data_loader().load_data("endpoints"))
    regions: set[str] = set()
    for partition in resolver.get_available_partitions():
        for service in ("s3", "sqs", "cloudtrail", "ec2"):
            regions.update(resolver.get_available_endpoints(service, partition))
    return frozenset(regions)


def check_region(region: str) -> str:
    region = region.strip()
    if region not in known_regions():
        raise AwsSettingError(f"unknown AWS region {region!r} (for example: us-east-1, eu-west-1)")
    return region


def check_role_arn(role_arn: str) -> str:
    role_arn = role_arn.strip()
    if role_arn and not _ROLE_ARN_RE.match(role_arn):
        raise AwsSettingError(
            f"role_arn {role_arn!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
        )
    return role_arn


def check_external_id(external_id: str) -> str:
    external_id = external_id.strip()
    if external_id and not _EXTERNAL_ID_RE.match(external_id):
        raise AwsSettingError("external_id must be 2-1224 characters of [A-Za-z0-9+=,.@:/-]")
    return external_id


def check_url(name: str, url: str) -> str:
    url = url.strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AwsSettingError(f"{name} {url!r} is not an http(s) URL")
    return url


def parse_endpoint_urls(text: str) -> dict[str, str]:
    """``"s3=https://vpce..., sqs=https://..."`` or a single URL (for every service) -> dict."""
    urls: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        service, sep, url = item.partition("=")
        if not sep or service.startswith(("http:", "https:")):
            service, url = "default", item
        urls[service.strip()] = check_url(f"endpoint_urls[{service.strip()}]", url)
    return urls


def parse_aws_settings(
    params: Mapping[str, str], access_key_id: str = "", secret_access_key: str = ""
) -> AwsSettings:
    """The common AWS settings of an input stanza -> ``AwsSettings``; ``AwsSettingError`` if bad.

    Keys: region, role_arn, external_id, endpoint_urls, proxy, retry_mode, max_attempts,
    connect_timeout, read_timeout. The static key (if any) is passed separately: it never lives
    in the stanza.
    """
    retry_mode = (params.get("retry_mode") or "standard").strip()
    if retry_mode not in RETRY_MODES:
        raise AwsSettingError(f"retry_mode must be standard or adaptive, not {retry_mode!r}")
    external_id = check_external_id(params.get("external_id") or "")
    role_arn = check_role_arn(params.get("role_arn") or "")
    if external_id and not role_arn:
        raise AwsSettingError("external_id is set but role_arn is not")
    return AwsSettings(
        region=check_region(params.get("region") or "us-east-1"),
        role_arn=role_arn,
        external_id=external_id,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        endpoint_urls=parse_endpoint_urls(params.get("endpoint_urls") or ""),
        proxy=check_url("proxy", params.get("proxy") or ""),
        retry_mode=retry_mode,
        max_attempts=_int_setting(params, "max_attempts", 5, 1, 20),
        connect_timeout=float(_int_setting(params, "connect_timeout", 10, 1, 300)),
        read_timeout=float(_int_setting(params, "read_timeout", 60, 1, 900)),
    )


def _int_setting(params: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    return int_setting(params.get(key), key, default, low, high)


def int_setting(value: str | None, key: str, default: int, low: int, high: int) -> int:
    """Parse an integer setting within [low, high]; ``AwsSettingError`` with a one-line message."""
    if value is None or str(value).strip() == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise AwsSettingError(f"{key} must be an integer, not {value!r}") from None
    if not low <= number <= high:
        raise AwsSettingError(f"{key} must be between {low} and {high}, not {number}")
    return number
