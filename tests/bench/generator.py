"""Seeded generator of a realistic 30-day AWS organisation's CloudTrail, with labelled scenarios.

`generate(seed)` returns an `Org`: CloudTrail record dicts (the nested JSON objects of a log
file's ``Records[]``, successful and failed calls mixed) and `Label`s for the injected scenarios
(attacks a detector must find) and benign traps (bursts it must not alert on).

The organisation: several accounts, each with people (IAM users working office hours in the
account's time zone), CI users with access keys (24/7), application roles used through
assumed-role sessions (Lambda/EC2/ECS style session names), IAM Identity Center (SSO) roles, a
daily batch role that fails at the same hour every day, AWS service principals (``invokedBy``),
root, and principals that appear mid-month. Hourly counts are Poisson with a per-principal,
per-day gamma factor (overdispersion), hour-of-day and weekday profiles.

Attack scenarios (category "attack"): discovery_burst (a user's key or a role's session),
low_and_slow, new_principal_burst, account_spread (many principals, a few denials each: only the
account sees it), relative_spike (a noisy automation role at several times its usual level),
console_login_burst (failed console sign-ins of one user: no errorCode, responseElements says so).
Benign traps (category "trap"): batch_hour, log_delivery (steady ~125/h AccessDenied from
delivery.logs.amazonaws.com for 83 h, like the SANS SEC504 lab), throttling_burst,
validation_burst (ValidationException / NoSuchEntity), dryrun_burst (EC2 Client.DryRunOperation),
benign_new_principal (first day of a principal created mid-month).

Label windows are hour-aligned ``[start, end)`` epoch seconds. Everything depends only on the
seed and the arguments (numpy's PCG64 generator), so a seed is a fixed data set.
"""

from __future__ import annotations

import datetime as _dt
import random
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HOUR = 3600
DAY = 86400
DEFAULT_START = "2026-09-07T00:00:00Z"  # a Monday

# (eventSource, eventName, global?) -- the APIs principals call; discovery sweeps draw from it.
API_CATALOG: tuple[tuple[str, str], ...] = (
    ("iam.amazonaws.com", "ListUsers"),
    ("iam.amazonaws.com", "ListRoles"),
    ("iam.amazonaws.com", "ListPolicies"),
    ("iam.amazonaws.com", "GetAccountAuthorizationDetails"),
    ("iam.amazonaws.com", "ListAccessKeys"),
    ("iam.amazonaws.com", "GetUser"),
    ("iam.amazonaws.com", "ListAttachedUserPolicies"),
    ("iam.amazonaws.com", "CreateUser"),
    ("iam.amazonaws.com", "CreateAccessKey"),
    ("iam.amazonaws.com", "AttachUserPolicy"),
    ("sts.amazonaws.com", "GetSessionToken"),
    ("organizations.amazonaws.com", "DescribeOrganization"),
    ("organizations.amazonaws.com", "ListAccounts"),
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "DescribeSecurityGroups"),
    ("ec2.amazonaws.com", "DescribeVpcs"),
    ("ec2.amazonaws.com", "DescribeSnapshots"),
    ("ec2.amazonaws.com", "DescribeKeyPairs"),
    ("ec2.amazonaws.com", "RunInstances"),
    ("ec2.amazonaws.com", "CreateKeyPair"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("s3.amazonaws.com", "GetBucketPolicy"),
    ("s3.amazonaws.com", "GetBucketAcl"),
    ("s3.amazonaws.com", "GetObject"),
    ("s3.amazonaws.com", "PutObject"),
    ("lambda.amazonaws.com", "ListFunctions20150331"),
    ("lambda.amazonaws.com", "GetFunction20150331v2"),
    ("rds.amazonaws.com", "DescribeDBInstances"),
    ("rds.amazonaws.com", "DescribeDBSnapshots"),
    ("dynamodb.amazonaws.com", "ListTables"),
    ("dynamodb.amazonaws.com", "DescribeTable"),
    ("secretsmanager.amazonaws.com", "ListSecrets"),
    ("secretsmanager.amazonaws.com", "GetSecretValue"),
    ("ssm.amazonaws.com", "DescribeParameters"),
    ("ssm.amazonaws.com", "GetParameters"),
    ("kms.amazonaws.com", "ListKeys"),
    ("kms.amazonaws.com", "Decrypt"),
    ("cloudtrail.amazonaws.com", "DescribeTrails"),
    ("cloudtrail.amazonaws.com", "StopLogging"),
    ("guardduty.amazonaws.com", "ListDetectors"),
    ("logs.amazonaws.com", "DescribeLogGroups"),
    ("sns.amazonaws.com", "ListTopics"),
    ("sqs.amazonaws.com", "ListQueues"),
    ("ecr.amazonaws.com", "DescribeRepositories"),
    ("ecs.amazonaws.com", "ListClusters"),
    ("eks.amazonaws.com", "ListClusters"),
    ("cloudformation.amazonaws.com", "DescribeStacks"),
    ("route53.amazonaws.com", "ListHostedZones"),
    ("backup.amazonaws.com", "ListBackupVaults"),
    ("redshift.amazonaws.com", "DescribeClusters"),
    ("elasticloadbalancing.amazonaws.com", "DescribeLoadBalancers"),
    ("apigateway.amazonaws.com", "GetRestApis"),
    ("lightsail.amazonaws.com", "GetInstances"),
    ("glue.amazonaws.com", "GetDatabases"),
    ("athena.amazonaws.com", "ListWorkGroups"),
    ("sagemaker.amazonaws.com", "ListNotebookInstances"),
    ("cognito-idp.amazonaws.com", "ListUserPools"),
    ("config.amazonaws.com", "DescribeConfigRules"),
    ("securityhub.amazonaws.com", "GetFindings"),
    ("iot.amazonaws.com", "ListThings"),
    ("gamelift.amazonaws.com", "ListFleets"),
    ("elasticbeanstalk.amazonaws.com", "DescribeApplications"),
)
GLOBAL_SOURCES = frozenset(
    {"iam.amazonaws.com", "organizations.amazonaws.com", "route53.amazonaws.com", "sts.amazonaws.com"}
)
REGIONS = ("us-east-1", "us-east-1", "eu-west-1", "us-west-2", "eu-central-1")
CONSOLE_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0"
ATTACKER_AGENTS = (
    "aws-cli/2.13.9 Python/3.11.4 Linux/6.3.0-kali1-amd64 exe/x86_64.kali.2023 prompt/off",
    "Boto3/1.28.21 Python/3.11.4 Linux/6.3.0-kali1-amd64 Botocore/1.31.21 (pacu)",
    "aws-sdk-go-v2/1.3.2",
    "Boto3/1.26.0 Python/3.9.16 Linux/5.15.0 Botocore/1.29.0 (enumerate-iam)",
)
BENIGN_AGENTS = {
    "human": (
        "aws-internal/3 aws-sdk-java/1.12.524 Linux/5.10 OpenJDK_64-Bit_Server_VM/25.372-b08",
        "console",
    ),
    "cli": ("aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/s3.ls",),
    "auto": (
        "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213 lang/python#3.12.2 "
        "exec-env/AWS_Lambda_python3.12",
        "aws-sdk-java/2.25.11 Linux/5.10.210 OpenJDK_64-Bit_Server_VM/17.0.10 exec-env/AWS_ECS_FARGATE",
        "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0",
    ),
}
AUTHZ_MESSAGE = (
    "User: {arn} is not authorized to perform: {action} because no identity-based policy allows the "
    "{action} action"
)
ERROR_BURSTS = (  # benign bursts of errors the engine must not count (trap kind, codes)
    ("throttling_burst", ("ThrottlingException", "Client.RequestLimitExceeded", "Throttling")),
    ("validation_burst", ("ValidationException", "NoSuchEntityException", "InvalidParameterValue")),
    ("dryrun_burst", ("Client.DryRunOperation",)),
)
EC2_AUTHZ_MESSAGE = (
    "You are not authorized to perform this operation. Encoded authorization failure message: {enc}"
)


@dataclass(frozen=True)
class Label:
    """One labelled scenario (attack) or benign trap, with hour-aligned ``[start, end)`` windows."""

    name: str
    kind: str
    category: str  # "attack" | "trap"
    entity_type: str  # "principal" | "account"
    account: str
    principal: str  # "" for account scenarios
    windows: tuple[tuple[int, int], ...]
    members: tuple[str, ...] = ()  # principals whose events make up an account scenario
    note: str = ""

    def covers(self, t: int) -> bool:
        return any(start <= t < end for start, end in self.windows)


@dataclass
class Principal:
    account: str
    kind: str  # human | ci_user | app_role | noisy_role | sso_role | batch_role | service | root
    name: str
    principal: str  # canonical name: IAM user ARN, role ARN (sessions folded), service host, root ARN
    identity_type: str  # IAMUser | AssumedRole | AWSService | Root
    first_hour: int
    fail_level: float
    success_level: float
    profile: str  # office | flat | batch | none
    tz: int = 0
    batch_hour: int = 0
    ips: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    apis: tuple[tuple[str, str], ...] = ()
    key_id: str = ""
    habits: dict[str, float] = field(default_factory=dict)  # a family's per-principal draws (families.py)

    @property
    def is_service(self) -> bool:
        return self.identity_type == "AWSService"


@dataclass
class Org:
    seed: int
    start: int
    days: int
    accounts: list[str]
    principals: list[Principal]
    records: list[dict[str, Any]]
    labels: list[Label]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + self.days * DAY

    def principal_days(self) -> float:
        """Sum over principals of the days they exist (from their first hour to the end)."""
        hours = self.days * 24
        return sum((hours - p.first_hour) / 24.0 for p in self.principals if p.first_hour < hours)

    def attacks(self) -> list[Label]:
        return [label for label in self.labels if label.category == "attack"]

    def traps(self) -> list[Label]:
        return [label for label in self.labels if label.category == "trap"]


def parse_time(text: str) -> int:
    return int(_dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc).timestamp())


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


class _Builder:
    """Holds the random state while one organisation is generated."""

    def __init__(self, seed: int, start: int, days: int, n_accounts: int, scenarios_per_kind: int) -> None:
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.fast = random.Random(int(self.rng.integers(0, 2**62)))  # per-record choices, cheap
        self.seed = seed
        self.start = start
        self.days = days
        self.hours = days * 24
        self.n_accounts = n_accounts
        self.per_kind = scenarios_per_kind
        self.records: list[dict[str, Any]] = []
        self.labels: list[Label] = []
        self.principals: list[Principal] = []
        self.accounts: list[str] = []
        self.busy: dict[str, list[tuple[int, int]]] = {}  # account -> attack windows (hours)
        self.rates: dict[str, np.ndarray] = {}  # principal -> expected failures per hour
        self.start_weekday = _dt.datetime.fromtimestamp(start, tz=_dt.timezone.utc).weekday()

    def organisation(self, extra: dict[str, Any] | None = None) -> Org:
        """Build everything, in the order that fixes a seed's data; records sorted by eventTime."""
        self.build_org()
        self.background()
        self.scenarios()
        self.traps()
        self.console_scenarios()
        self.late_scenarios()
        self.records.sort(key=lambda r: r["eventTime"])
        return Org(
            seed=self.seed,
            start=self.start,
            days=self.days,
            accounts=self.accounts,
            principals=self.principals,
            records=self.records,
            labels=self.labels,
            extra=dict(extra or {}),
        )

    # ---- small random helpers -------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.fast.getrandbits(128), version=4))

    def _key(self, prefix: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        return prefix + "".join(alphabet[i] for i in self.rng.integers(0, 32, 16))

    def _ip(self, private: bool = False) -> str:
        if private:
            a, b, c = (int(x) for x in self.rng.integers(0, 255, 3))
            return f"10.{a}.{b}.{c}"
        first = int(self.rng.choice([34, 52, 54, 84, 91, 185, 203]))
        a, b, c = (int(x) for x in self.rng.integers(1, 255, 3))
        return f"{first}.{a}.{b}.{c}"

    def _pick(self, seq: Any) -> Any:
        return seq[self.fast.randrange(len(seq))]

    def _apis(self, n: int) -> tuple[tuple[str, str], ...]:
        idx = self.rng.choice(len(API_CATALOG), size=min(n, len(API_CATALOG)), replace=False)
        return tuple(API_CATALOG[int(i)] for i in idx)

    # ---- the organisation -----------------------------------------------------------------------
    def build_org(self) -> None:
        used: set[str] = set()
        while len(self.accounts) < self.n_accounts:
            acct = str(int(self.rng.integers(100_000_000_000, 999_999_999_999)))
            if acct not in used:
                used.add(acct)
                self.accounts.append(acct)
        for n, acct in enumerate(self.accounts):
            tz = int(self._pick([0, -5, 1, 8, -8, 2, 5]))
            office_ips = tuple(self._ip() for _ in range(3))
            for i in range(12):
                self._add_user(acct, "human", f"{self._pick(FIRST)}.{self._pick(LAST)}{i}", tz, office_ips)
            for i in range(4):
                self._add_user(acct, "ci_user", f"ci-{self._pick(SYSTEMS)}-{i}", 0, ())
            for i in range(16):
                self._add_role(acct, "app_role", f"{self._pick(SYSTEMS)}-{self._pick(ROLES)}-{i}")
            if n % 2 == 0:
                self._add_role(acct, "noisy_role", f"{self._pick(SYSTEMS)}-poller-{n}")
            for perm in ("AdministratorAccess", "ReadOnlyAccess", "PowerUserAccess"):
                suffix = f"{int(self.rng.integers(0, 2**62)):016x}"
                self._add_role(acct, "sso_role", f"AWSReservedSSO_{perm}_{suffix}", tz=tz, ips=office_ips)
            self._add_role(acct, "batch_role", f"nightly-etl-{n}")
            for host in (
                "config.amazonaws.com",
                "cloudtrail.amazonaws.com",
                "elasticloadbalancing.amazonaws.com",
            ):
                self._add_service(acct, host, fail_level=0.03, success_level=0.3)
            self._add_root(acct, tz, office_ips)
            # principals that appear mid-month (benign): a new hire, a new application role
            for kind in ("human", "app_role"):
                first = int(self.rng.integers(self.hours // 3, 2 * self.hours // 3))
                if kind == "human":
                    p = self._add_user(acct, "human", f"{self._pick(FIRST)}.new{n}", tz, office_ips, first)
                else:
                    p = self._add_role(acct, "app_role", f"{self._pick(SYSTEMS)}-v2-{n}", first_hour=first)
                self._trap("benign_new_principal", p, [(first, first + 24)], "first day of a new principal")

    def _add_root(self, acct: str, tz: int, ips: tuple[str, ...]) -> Principal:
        root = Principal(
            account=acct,
            kind="root",
            name="root",
            principal=f"arn:aws:iam::{acct}:root",
            identity_type="Root",
            first_hour=0,
            fail_level=0.002,
            success_level=0.02,
            profile="office",
            tz=tz,
            ips=ips,
            agents=BENIGN_AGENTS["human"],
            apis=self._apis(6),
            key_id="",
        )
        self.principals.append(root)
        return root

    def _add_user(
        self, acct: str, kind: str, name: str, tz: int, ips: tuple[str, ...], first_hour: int = 0
    ) -> Principal:
        if kind == "human":
            fail, ok, profile = float(self.rng.uniform(0.05, 0.6)), float(self.rng.uniform(0.5, 2)), "office"
            agents = BENIGN_AGENTS["human"] + BENIGN_AGENTS["cli"]
        else:
            fail = float(self.rng.choice([0.02, 0.1, 0.5, 2.0]))
            ok, profile, agents = float(self.rng.uniform(0.3, 1)), "flat", BENIGN_AGENTS["auto"][2:]
            ips = (self._ip(),)
        p = Principal(
            account=acct,
            kind=kind,
            name=name,
            principal=f"arn:aws:iam::{acct}:user/{name}",
            identity_type="IAMUser",
            first_hour=first_hour,
            fail_level=fail,
            success_level=ok,
            profile=profile,
            tz=tz,
            ips=ips,
            agents=agents,
            apis=self._apis(int(self.rng.integers(4, 10))),
            key_id=self._key("AKIA"),
        )
        self.principals.append(p)
        return p

    def _add_role(
        self, acct: str, kind: str, name: str, tz: int = 0, ips: tuple[str, ...] = (), first_hour: int = 0
    ) -> Principal:
        profile, batch_hour, agents = "flat", 0, BENIGN_AGENTS["auto"]
        if kind == "app_role":
            fail = float(
                self.rng.choice([0.01, 0.05, 0.2, 0.5, 1.5, 3.0], p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
            )
            ok = float(self.rng.uniform(0.2, 0.8))
        elif kind == "noisy_role":
            fail, ok = float(self.rng.uniform(10, 25)), float(self.rng.uniform(0.5, 1.5))
        elif kind == "sso_role":
            fail, ok, profile = float(self.rng.uniform(0.2, 1.5)), float(self.rng.uniform(1, 3)), "office"
            agents = BENIGN_AGENTS["human"]
        else:  # batch_role
            fail, ok, profile = float(self.rng.uniform(30, 60)), 5.0, "batch"
            batch_hour = int(self.rng.integers(0, 6))
        p = Principal(
            account=acct,
            kind=kind,
            name=name,
            principal=f"arn:aws:iam::{acct}:role/{name}",
            identity_type="AssumedRole",
            first_hour=first_hour,
            fail_level=fail,
            success_level=ok,
            profile=profile,
            tz=tz,
            batch_hour=batch_hour,
            ips=ips or (self._ip(private=True), self._ip()),
            agents=agents,
            apis=self._apis(int(self.rng.integers(3, 8))),
        )
        self.principals.append(p)
        if kind == "batch_role":
            windows = [(d * 24 + batch_hour, d * 24 + batch_hour + 1) for d in range(self.days)]
            self._trap("batch_hour", p, windows, "daily batch failing at the same hour")
        return p

    def _add_service(
        self,
        acct: str,
        host: str,
        fail_level: float,
        success_level: float,
        first_hour: int = 0,
        profile: str = "flat",
    ) -> Principal:
        apis = {
            "delivery.logs.amazonaws.com": (
                ("s3.amazonaws.com", "PutObject"),
                ("s3.amazonaws.com", "GetBucketAcl"),
            ),
            "config.amazonaws.com": (
                ("ec2.amazonaws.com", "DescribeInstances"),
                ("iam.amazonaws.com", "GetRole"),
            ),
            "cloudtrail.amazonaws.com": (
                ("s3.amazonaws.com", "GetBucketAcl"),
                ("s3.amazonaws.com", "PutObject"),
            ),
        }.get(host, (("ec2.amazonaws.com", "DescribeInstances"),))
        p = Principal(
            account=acct,
            kind="service",
            name=host,
            principal=host,
            identity_type="AWSService",
            first_hour=first_hour,
            fail_level=fail_level,
            success_level=success_level,
            profile=profile,
            ips=(host,),
            agents=(host,),
            apis=apis,
        )
        self.principals.append(p)
        return p

    def _trap(self, kind: str, p: Principal, windows: list[tuple[int, int]], note: str) -> None:
        self.labels.append(
            Label(
                name=f"{kind}#{sum(1 for lb in self.labels if lb.kind == kind) + 1}",
                kind=kind,
                category="trap",
                entity_type="principal",
                account=p.account,
                principal=p.principal,
                windows=tuple((self.start + a * HOUR, self.start + b * HOUR) for a, b in windows),
                note=note,
            )
        )

    # ---- background traffic ---------------------------------------------------------------------
    def profile(self, p: Principal) -> np.ndarray:
        h = np.arange(self.hours)
        if p.profile == "batch":
            prof = ((h % 24) == p.batch_hour).astype(float)
        elif p.profile == "office":
            local = (h + p.tz) % 24
            weekday = (self.start_weekday + (h + p.tz) // 24) % 7
            prof = np.where(
                (local >= 8) & (local < 18), 1.0, np.where((local == 7) | (local == 18), 0.4, 0.02)
            )
            prof = prof * np.where(weekday >= 5, 0.05, 1.0)
        elif p.profile == "flat":
            prof = 1.0 + 0.25 * np.sin(2 * np.pi * ((h % 24) - 6) / 24.0)
        else:
            prof = np.zeros(self.hours)
        prof = prof.astype(float)
        prof[: p.first_hour] = 0.0
        day_factor = self.rng.gamma(6.0, 1.0 / 6.0, size=self.days)
        return prof * np.repeat(day_factor, 24)

    def background(self) -> None:
        for p in self.principals:
            self.background_of(p)

    def background_of(self, p: Principal) -> None:
        prof = self.profile(p)
        self.rates[p.principal] = p.fail_level * prof
        fails = self.rng.poisson(p.fail_level * prof)
        oks = self.rng.poisson(p.success_level * prof)
        for h in np.nonzero(fails + oks)[0]:
            h = int(h)
            self.emit(p, h, int(fails[h]), ok=False)
            self.emit(p, h, int(oks[h]), ok=True)

    # ---- record emission ------------------------------------------------------------------------
    def identity(self, p: Principal, t: float, session: str | None = None) -> dict[str, Any]:
        acct = p.account
        if p.identity_type == "IAMUser":
            return {
                "type": "IAMUser",
                "principalId": "AIDA" + p.key_id[4:],
                "arn": p.principal,
                "accountId": acct,
                "accessKeyId": p.key_id,
                "userName": p.name,
            }
        if p.identity_type == "Root":
            return {
                "type": "Root",
                "principalId": acct,
                "arn": p.principal,
                "accountId": acct,
                "accessKeyId": "",
            }
        if p.identity_type == "AWSService":
            return {"type": "AWSService", "invokedBy": p.principal}
        if session is None:
            if p.kind == "sso_role":
                session = f"{self._pick(FIRST)}@example.com"
            else:
                # Lambda/ECS style session names rotate every few hours
                session = f"{p.name[:20]}-{int(t) // (6 * HOUR)}"
        created = iso(int(t) - int(t) % HOUR)
        role_id = f"AROA{zlib.crc32(p.principal.encode()):08X}{acct[:8]}"
        key_id = f"ASIA{zlib.crc32(f'{p.principal}/{session}'.encode()):08X}{acct[4:12]}"
        return {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{acct}:assumed-role/{p.name}/{session}",
            "accountId": acct,
            "accessKeyId": key_id,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": p.principal,
                    "accountId": acct,
                    "userName": p.name,
                },
                "attributes": {"creationDate": created, "mfaAuthenticated": "false"},
            },
        }

    def record(
        self,
        p: Principal,
        t: float,
        api: tuple[str, str],
        error: str | None,
        ip: str,
        agent: str,
        identity: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        source, name = api
        region = "us-east-1" if source in GLOBAL_SOURCES else str(self._pick(REGIONS))
        rec: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": identity if identity is not None else self.identity(p, t),
            "eventTime": iso(t),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": agent,
            "requestParameters": None,
            "responseElements": None,
            "requestID": self._uuid(),
            "eventID": self._uuid(),
            "readOnly": name.startswith(("List", "Describe", "Get")),
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": p.account,
            "eventCategory": "Management",
        }
        if error is not None:
            rec["errorCode"] = error
            if message is None:
                action = f"{source.split('.')[0]}:{name}"
                arn = rec["userIdentity"].get("arn", p.principal)
                message = (
                    EC2_AUTHZ_MESSAGE.format(enc=self._uuid().replace("-", ""))
                    if error == "Client.UnauthorizedOperation"
                    else AUTHZ_MESSAGE.format(arn=arn, action=action)
                )
            rec["errorMessage"] = message
        return rec

    def authz_code(self, api: tuple[str, str]) -> str:
        source = api[0]
        if source == "ec2.amazonaws.com":
            return "Client.UnauthorizedOperation"
        if source in (
            "dynamodb.amazonaws.com",
            "secretsmanager.amazonaws.com",
            "ssm.amazonaws.com",
            "kms.amazonaws.com",
            "sagemaker.amazonaws.com",
            "glue.amazonaws.com",
        ):
            return "AccessDenied" if self.rng.random() < 0.5 else "AccessDeniedException"
        return "AccessDenied"

    def emit(
        self,
        p: Principal,
        hour: int,
        n: int,
        ok: bool,
        apis: tuple[tuple[str, str], ...] | None = None,
        ip: str | None = None,
        agent: str | None = None,
        minutes: tuple[float, float] = (0.0, 60.0),
        error: str | None = None,
        session: str | None = None,
    ) -> None:
        if n <= 0:
            return
        apis = apis or p.apis
        base = self.start + hour * HOUR
        offsets = np.sort(self.rng.uniform(minutes[0] * 60, minutes[1] * 60, size=n))
        api_idx = self.rng.integers(0, len(apis), size=n)
        for k in range(n):
            t = base + float(offsets[k])
            api = apis[int(api_idx[k])]
            code = None if ok else (error or self.authz_code(api))
            self.records.append(
                self.record(
                    p,
                    t,
                    api,
                    code,
                    ip or str(self._pick(p.ips)),
                    agent or str(self._pick(p.agents)),
                    identity=self.identity(p, t, session),
                )
            )

    # ---- scenarios ------------------------------------------------------------------------------
    def _free_hour(self, acct: str, length: int, lo_day: int = 8) -> int:
        """An hour in [lo_day, days-1) whose window is at least a day away from other attacks."""
        for _ in range(1000):
            h = int(self.rng.integers(lo_day * 24, self.hours - 24 - length))
            if all(h + length + 24 <= a or h >= b + 24 for a, b in self.busy.get(acct, [])):
                self.busy.setdefault(acct, []).append((h, h + length))
                return h
        raise RuntimeError("no free hour left for a scenario; use fewer scenarios per kind")

    def _attack(
        self,
        kind: str,
        entity_type: str,
        acct: str,
        principal: str,
        h0: int,
        h1: int,
        members: tuple[str, ...] = (),
        note: str = "",
    ) -> None:
        n = sum(1 for lb in self.labels if lb.kind == kind) + 1
        self.labels.append(
            Label(
                name=f"{kind}#{n}",
                kind=kind,
                category="attack",
                entity_type=entity_type,
                account=acct,
                principal=principal,
                windows=((self.start + h0 * HOUR, self.start + h1 * HOUR),),
                members=members,
                note=note,
            )
        )

    def _unattacked(self, p: Principal, pool: list[Principal]) -> Principal:
        """The principal of an attack drawn as ``p`` (the families' builder may draw another of
        ``pool`` where an earlier attack used ``p``: `Family.attack_own_principal`)."""
        return p

    def _candidates(self, kinds: tuple[str, ...], acct: str | None = None) -> list[Principal]:
        return [
            p
            for p in self.principals
            if p.kind in kinds and p.first_hour == 0 and (acct is None or p.account == acct)
        ]

    def scenarios(self) -> None:
        accounts = list(self.accounts)
        for i in range(self.per_kind):
            # discovery burst: leaked credentials (a user's key, or an instance role's session taken
            # through SSRF) sweeping many APIs from a new IP, within one hour
            kind = ("human", "ci_user", "app_role")[i % 3]
            p = self._pick(self._candidates((kind,), accounts[i % len(accounts)]))
            h = self._free_hour(p.account, 1)
            n = int(self.rng.integers(40, 400))
            dur = float(self.rng.uniform(3, 30))
            m0 = float(self.rng.uniform(0, 60 - dur))
            apis = self._apis(int(self.rng.integers(20, 60)))
            ip, agent = self._ip(), str(self._pick(ATTACKER_AGENTS))
            self.emit(p, h, n, ok=False, apis=apis, ip=ip, agent=agent, minutes=(m0, m0 + dur))
            self.emit(
                p,
                h,
                int(self.rng.integers(1, 6)),
                ok=True,
                apis=(("sts.amazonaws.com", "GetCallerIdentity"),),
                ip=ip,
                agent=agent,
                minutes=(m0, m0 + dur),
            )
            self._attack(
                "discovery_burst",
                "principal",
                p.account,
                p.principal,
                h,
                h + 1,
                note=f"{n} denials over {len(apis)} APIs in {dur:.0f} min",
            )

            # low and slow: a few extra denials an hour for 6-12 hours, on a quiet principal
            acct = accounts[(i + 1) % len(accounts)]
            quiet = [
                q for q in self._candidates(("human", "app_role", "ci_user"), acct) if q.fail_level <= 0.6
            ]
            p = self._pick(quiet)
            length = int(self.rng.integers(6, 13))
            h = self._free_hour(acct, length)
            rate = float(self.rng.uniform(6, 12))
            apis = self._apis(int(self.rng.integers(10, 25)))
            ip, agent = self._ip(), str(self._pick(ATTACKER_AGENTS))
            total = 0
            for k in range(length):
                n = int(self.rng.poisson(rate))
                total += n
                self.emit(p, h + k, n, ok=False, apis=apis, ip=ip, agent=agent)
            self._attack(
                "low_and_slow",
                "principal",
                acct,
                p.principal,
                h,
                h + length,
                note=f"{total} denials over {length} h",
            )

            # new-principal burst: a principal created by the attacker, whose first hour is a sweep
            acct = accounts[(i + 2) % len(accounts)]
            h = self._free_hour(acct, 1)
            if self.rng.random() < 0.5:
                p = self._add_user(acct, "ci_user", f"svc-backup-{self.seed}-{i}", 0, (), first_hour=h)
            else:
                p = self._add_role(acct, "app_role", f"OrganizationAccountAccess-{i}", first_hour=h)
            p.fail_level, p.success_level = 0.05, 0.5  # afterwards it looks like a quiet principal
            self.background_of(p)
            n = int(self.rng.integers(25, 80))
            apis = self._apis(int(self.rng.integers(8, 30)))
            ip, agent = self._ip(), str(self._pick(ATTACKER_AGENTS))
            self.emit(p, h, n, ok=False, apis=apis, ip=ip, agent=agent, minutes=(5, 55))
            self.emit(
                p, h, 3, ok=True, apis=(("sts.amazonaws.com", "GetCallerIdentity"),), ip=ip, agent=agent
            )
            self._attack(
                "new_principal_burst",
                "principal",
                acct,
                p.principal,
                h,
                h + 1,
                note=f"{n} denials in its first hour",
            )

            # account-wide spread: many principals, 1-4 denials each, same hour
            acct = accounts[(i + 3) % len(accounts)]
            pool = [
                q
                for q in self.principals
                if q.account == acct and not q.is_service and q.kind != "root" and q.first_hour == 0
            ]
            k = min(len(pool), int(self.rng.integers(25, 40)))
            members = [pool[int(j)] for j in self.rng.choice(len(pool), size=k, replace=False)]
            h = self._free_hour(acct, 1)
            apis = self._apis(12)
            total = 0
            for q in members:
                n = int(self.rng.integers(1, 5))
                total += n
                self.emit(q, h, n, ok=False, apis=apis, ip=self._ip(), agent=str(self._pick(ATTACKER_AGENTS)))
            self._attack(
                "account_spread",
                "account",
                acct,
                "",
                h,
                h + 1,
                members=tuple(q.principal for q in members),
                note=f"{total} denials over {k} principals",
            )

            # relative spike on noisy automation: several times its usual level for 1-2 hours
            noisy = [q for q in self.principals if q.kind == "noisy_role"]
            p = noisy[i % len(noisy)]
            length = int(self.rng.integers(1, 3))
            h = self._free_hour(p.account, length)
            factor = float(self.rng.uniform(3, 6))
            apis = p.apis + self._apis(6)
            for k in range(length):
                self.emit(p, h + k, int(self.rng.poisson(p.fail_level * (factor - 1))), ok=False, apis=apis)
            self._attack(
                "relative_spike",
                "principal",
                p.account,
                p.principal,
                h,
                h + length,
                note=f"x{factor:.1f} over a steady ~{p.fail_level:.0f}/h",
            )

    def console_scenarios(self) -> None:
        """Password guessing at the console: failed ConsoleLogin events (no errorCode in CloudTrail).

        Drawn after the traps so the other scenarios stay as they were before this kind existed."""
        for i in range(self.per_kind):
            acct = self.accounts[(i + 4) % len(self.accounts)]
            people = self._candidates(("human",), acct)
            p = self._unattacked(self._pick(people), people)
            h = self._free_hour(acct, 1)
            n = int(self.rng.integers(15, 60))
            ip = self._ip()
            for offset in np.sort(self.rng.uniform(0, HOUR, size=n)):
                t = self.start + h * HOUR + float(offset)
                identity = {
                    "type": "IAMUser",
                    "principalId": "AIDA" + p.key_id[4:],
                    "arn": p.principal,
                    "accountId": acct,
                    "accessKeyId": "",
                    "userName": p.name,
                }
                rec = self.record(
                    p, t, ("signin.amazonaws.com", "ConsoleLogin"), None, ip, CONSOLE_AGENT, identity
                )
                rec.update(
                    awsRegion="us-east-1",
                    eventType="AwsConsoleSignIn",
                    readOnly=False,
                    errorMessage="Failed authentication",
                    responseElements={"ConsoleLogin": "Failure"},
                    additionalEventData={
                        "LoginTo": "https://console.aws.amazon.com/console/home",
                        "MobileVersion": "No",
                        "MFAUsed": "No",
                    },
                )
                self.records.append(rec)
            self._attack(
                "console_login_burst",
                "principal",
                acct,
                p.principal,
                h,
                h + 1,
                note=f"{n} failed console sign-ins",
            )

    def late_scenarios(self) -> None:
        """Scenarios drawn after every other (none here; families.py draws some), so that adding
        one moves no earlier record."""

    def log_delivery(self, accounts: list[str]) -> None:
        """Steady log-delivery denials, like the SANS SEC504 lab: a new service principal, ~125/h for 83 h."""
        for acct in accounts:
            h = int(self.rng.integers(min(9 * 24, self.hours // 3), self.hours - 90))
            p = self._add_service(
                acct,
                "delivery.logs.amazonaws.com",
                fail_level=0.0,
                success_level=0.0,
                first_hour=h,
                profile="none",
            )
            for k in range(83):
                self.emit(p, h + k, int(self.rng.poisson(125)), ok=False, error="AccessDenied")
            self._trap("log_delivery", p, [(h, h + 83)], "steady ~125/h AccessDenied for 83 h")

    def error_burst(
        self, app_roles: list[Principal], codes: tuple[str, ...]
    ) -> tuple[Principal, int, int, str, tuple[tuple[str, str], ...]]:
        """Who, when, how many, which code and APIs of a burst of errors that are not authorization."""
        p = self._pick(app_roles)
        h = int(self.rng.integers(8 * 24, self.hours - 2))
        n = int(self.rng.integers(80, 300))
        code = str(self._pick(codes))
        apis = (
            (("ec2.amazonaws.com", "RunInstances"), ("ec2.amazonaws.com", "CreateVolume"))
            if "DryRun" in code or code.startswith("Client.")
            else p.apis
        )
        return p, h, n, code, apis

    def traps(self) -> None:
        self.log_delivery(self.accounts[:2])
        app_roles = [q for q in self.principals if q.kind == "app_role" and q.first_hour == 0]
        for kind, codes in ERROR_BURSTS:
            for _ in range(2):
                p, h, n, code, apis = self.error_burst(app_roles, codes)
                message = (
                    "Request would have succeeded, but DryRun flag is set." if "DryRun" in code else code
                )
                for api_i in range(n):
                    api = apis[api_i % len(apis)]
                    t = self.start + h * HOUR + float(self.rng.uniform(0, HOUR))
                    self.records.append(
                        self.record(
                            p,
                            t,
                            api,
                            code,
                            str(self._pick(p.ips)),
                            str(self._pick(p.agents)),
                            message=message,
                        )
                    )
                self._trap(kind, p, [(h, h + 1)], f"{n} x {code}")


FIRST = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "yara",
)
LAST = ("smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "moore", "clark", "lee")
SYSTEMS = ("billing", "orders", "search", "ledger", "ingest", "report", "notify", "catalog", "auth", "media")
ROLES = ("lambda", "ecs-task", "ec2", "worker", "api", "sync")


def generate(
    seed: int,
    days: int = 30,
    accounts: int = 6,
    scenarios_per_kind: int = 3,
    start: str = DEFAULT_START,
) -> Org:
    """Generate one organisation. Records are sorted by eventTime (ties keep generation order)."""
    return _Builder(seed, parse_time(start), days, accounts, scenarios_per_kind).organisation()


def record_time(record: dict[str, Any]) -> int:
    return parse_time(record["eventTime"])
