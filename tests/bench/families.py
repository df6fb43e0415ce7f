"""Families of organisations: generator settings whose habits each organisation draws for itself.

A seed of one generator tests little beyond the seed: its organisations share every habit. A
`Family` is a set of *ranges*; each organisation of the family (``generate(family, seed)``) draws
its own habits from them: how busy each account is (near-silent to busy), how many people,
automations and batches it has, the automations' rates (log-uniform over a wide range), their
day-to-day and hour-to-hour dispersion, daily and weekly seasonality, people with bursty days,
and the shapes of the attacks and benign bursts. The quality bench tunes on `TUNING` and reports
`HELD_OUT` (whole settings never looked at while tuning) once.

Attack kinds (category "attack"), as an independent bench described them:

- discovery_burst: a compromised user's key (or a role's session) sweeping many APIs in minutes;
- low_and_slow: a near-silent principal denied a few times an hour for hours (1-6 a failing hour,
  3-10 hours, some silent, 1-20 APIs; two thirds on a principal of its own that is near-silent but
  there: a person who signs in one day a week, an app role failing a few times once a day);
- new_principal_burst: a brand-new principal whose first hour is mostly denied;
- account_spread: several principals (2-8: people, roles, any, or principals new to the account)
  each denied a few times on the same 1-3 services within 2-15 minutes, from any minute of the
  hour (a handful to a few dozen failures in all), in the family's quietest account or (half of
  them) in a busier one with as many people as a busy account, at 2-10 times its usual hour;
- relative_spike: a steady denied automation at a few times its usual hourly rate, on its usual
  denied APIs, from its usual address (no new API, no new address); spread over each spike hour
  like the stream's own failures, or (``spike_concentrated``, tuning families) in 5-20 minutes of it;
  in the tuning families each spike on an automation of its own (``spike_own_automation``: a
  one-automation organisation gets new automations for its later spikes, which would otherwise read
  as that stream's usual bursts);
- console_login_burst: failed console sign-ins of one user.

In the tuning families each attack falls on a principal no earlier attack used
(``attack_own_principal``: a console login burst, a low-and-slow run or a thin spread's member that
would fall on an earlier attack's principal is drawn again; the held-out families keep the first
bench's habit, where a low-and-slow run could fall on the CI user of a discovery burst).

Benign traps (category "trap"): batch_hour (daily batches; weekdays only in some families),
log_delivery (the SANS-like service stream), throttling_burst, validation_burst, dryrun_burst,
benign_new_principal, person_burst (a person's small burst in seconds, like a student's 18
UnauthorizedOperation in 7 s), bursty_day (a person's hours at several times their rate) and
habitual_burst (a person, IAM user or SSO role, who bursts like that a few times every week) and
stuck_retry (after a deploy, a script on a near-silent principal calls one API it never called,
is denied, and retries it every 10-40 minutes for 3-10 hours: one API at a steady cadence).

Security tooling (benign, `_scanners`; office, steady-automation, weekly, startup,
dispersed-automation and compliance, each with its own ranges; none in classroom; of the held-out
families only audited, added for it, with ranges none of the tuning families has): a
CSPM scanner or inventory (Prowler, ScoutSuite, Wiz/Orca-style cross-account roles) calls 30-200
read APIs of many services in every account, hourly to weekly, from one role per account, and is
denied every run on the same 2-40 % of them (and on every call in an SCP-denied region); mid-month
an upgrade adds 5-30 denied checks, one more account is onboarded (a role never seen, its first run
full of denials) and some tools call one more denied region. Labels: scanner_first (a role's first
run in the data), scanner_onboard, scanner_upgrade, scanner_region (each account's first run after
the change) and scanner_run (every other run).
"""

from __future__ import annotations

import contextlib
import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from bench.generator import (
    API_CATALOG,
    ATTACKER_AGENTS,
    DAY,
    DEFAULT_START,
    ERROR_BURSTS,
    FIRST,
    HOUR,
    LAST,
    REGIONS,
    SYSTEMS,
    Org,
    Principal,
    _Builder,
    parse_time,
)

Range = tuple[float, float]
EC2_APIS = tuple(api for api in API_CATALOG if api[0] == "ec2.amazonaws.com")
# Read APIs a security scanner calls (service -> eventNames): a CSPM tool's checks walk most of them
_SCAN = {
    "iam": "GetAccountAuthorizationDetails GetAccountPasswordPolicy GetAccountSummary GetCredentialReport"
    " GenerateCredentialReport ListUsers ListRoles ListPolicies ListGroups ListAccessKeys ListMFADevices"
    " ListVirtualMFADevices ListServerCertificates ListSAMLProviders ListOpenIDConnectProviders"
    " ListAttachedRolePolicies ListAttachedUserPolicies ListRolePolicies ListUserPolicies GetPolicyVersion"
    " GetRole GetUser ListInstanceProfiles ListSSHPublicKeys ListSigningCertificates",
    "sts": "GetCallerIdentity",
    "organizations": "DescribeOrganization ListAccounts ListPolicies ListDelegatedAdministrators",
    "ec2": "DescribeInstances DescribeSecurityGroups DescribeVpcs DescribeSubnets DescribeRouteTables"
    " DescribeNetworkAcls DescribeFlowLogs DescribeVolumes DescribeSnapshots DescribeImages DescribeKeyPairs"
    " DescribeAddresses DescribeNatGateways DescribeVpcEndpoints DescribeVpcPeeringConnections"
    " DescribeNetworkInterfaces DescribeTransitGateways GetEbsEncryptionByDefault DescribeLaunchTemplates"
    " DescribeRegions DescribeInstanceAttribute GetSerialConsoleAccessStatus DescribeSnapshotAttribute",
    "s3": "ListBuckets GetBucketPolicy GetBucketAcl GetBucketEncryption GetBucketLogging GetBucketVersioning"
    " GetBucketPublicAccessBlock GetPublicAccessBlock GetBucketLocation GetBucketReplication"
    " GetBucketLifecycle GetBucketOwnershipControls GetBucketPolicyStatus GetObjectLockConfiguration",
    "lambda": "ListFunctions20150331 GetFunction20150331v2 GetPolicy20150331v2 ListLayers"
    " ListEventSourceMappings",
    "rds": "DescribeDBInstances DescribeDBSnapshots DescribeDBClusters DescribeDBClusterSnapshots"
    " DescribeDBParameterGroups DescribeEventSubscriptions DescribeDBSnapshotAttributes",
    "dynamodb": "ListTables DescribeTable DescribeContinuousBackups ListBackups",
    "kms": "ListKeys DescribeKey GetKeyPolicy GetKeyRotationStatus ListAliases",
    "cloudtrail": "DescribeTrails GetTrailStatus GetEventSelectors ListTrails",
    "config": "DescribeConfigurationRecorders DescribeConfigurationRecorderStatus DescribeDeliveryChannels"
    " DescribeConfigRules DescribeConformancePacks",
    "guardduty": "ListDetectors GetDetector ListFindings ListMembers",
    "securityhub": "DescribeHub GetEnabledStandards GetFindings ListMembers",
    "access-analyzer": "ListAnalyzers ListFindings",
    "logs": "DescribeLogGroups DescribeMetricFilters DescribeResourcePolicies",
    "monitoring": "DescribeAlarms DescribeAlarmsForMetric",
    "sns": "ListTopics GetTopicAttributes ListSubscriptions",
    "sqs": "ListQueues GetQueueAttributes",
    "ecr": "DescribeRepositories GetRepositoryPolicy DescribeImages GetLifecyclePolicy",
    "ecs": "ListClusters DescribeClusters ListTaskDefinitions DescribeTaskDefinition ListServices",
    "eks": "ListClusters DescribeCluster ListNodegroups",
    "cloudformation": "DescribeStacks ListStacks GetTemplate",
    "route53": "ListHostedZones GetDNSSEC ListQueryLoggingConfigs",
    "backup": "ListBackupVaults ListBackupPlans GetBackupVaultAccessPolicy",
    "redshift": "DescribeClusters DescribeClusterParameters DescribeLoggingStatus",
    "elasticloadbalancing": "DescribeLoadBalancers DescribeListeners DescribeLoadBalancerAttributes",
    "apigateway": "GetRestApis GetStages GetAuthorizers",
    "glue": "GetDatabases GetDataCatalogEncryptionSettings GetSecurityConfigurations",
    "athena": "ListWorkGroups GetWorkGroup",
    "sagemaker": "ListNotebookInstances DescribeNotebookInstance ListModels ListTrainingJobs",
    "cognito-idp": "ListUserPools DescribeUserPool",
    "secretsmanager": "ListSecrets DescribeSecret GetResourcePolicy",
    "ssm": "DescribeParameters DescribeInstanceInformation ListDocuments DescribeDocumentPermission",
    "elasticfilesystem": "DescribeFileSystems DescribeFileSystemPolicy DescribeBackupPolicy",
    "es": "ListDomainNames DescribeElasticsearchDomain DescribeDomain",
    "kinesis": "ListStreams DescribeStream",
    "cloudfront": "ListDistributions GetDistributionConfig",
    "acm": "ListCertificates DescribeCertificate",
    "wafv2": "ListWebACLs GetLoggingConfiguration",
    "elasticache": "DescribeCacheClusters DescribeReplicationGroups",
    "codebuild": "ListProjects BatchGetProjects",
    "inspector2": "BatchGetAccountStatus ListCoverage",
    "macie2": "GetMacieSession ListFindings",
    "fms": "ListPolicies",
    "shield": "DescribeSubscription GetSubscriptionState",
    "support": "DescribeTrustedAdvisorChecks DescribeTrustedAdvisorCheckResult",
    "account": "GetAlternateContact GetContactInformation",
    "ssm-incidents": "ListResponsePlans",
    "resource-explorer-2": "ListIndexes",
    "bedrock": "ListFoundationModels GetModelInvocationLoggingConfiguration ListGuardrails",
    "appstream": "DescribeFleets",
    "directconnect": "DescribeConnections",
    "drs": "DescribeJobs",
    "emr": "ListClusters GetBlockPublicAccessConfiguration",
}
SCAN_APIS = tuple((f"{svc}.amazonaws.com", name) for svc, names in _SCAN.items() for name in names.split())
SCAN_GLOBAL = frozenset(
    f"{s}.amazonaws.com"
    for s in ("iam", "sts", "organizations", "route53", "cloudfront", "support", "account", "shield", "fms")
)
SCAN_DENIED_REGIONS = (
    "ap-southeast-1",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
    "ap-south-1",
    "eu-north-1",
)
SCANNER_TOOLS = (  # (role name, user agent)
    (
        "ProwlerScanRole",
        "prowler/3.11.3 Boto3/1.28.57 Python/3.11.6 Linux/5.10.199-190.747.amzn2.x86_64 Botocore/1.31.57",
    ),
    (
        "ScoutSuiteAudit",
        "Boto3/1.26.165 Python/3.9.18 Linux/5.15.0-1045-aws Botocore/1.29.165 ScoutSuite/5.13.0",
    ),
    ("WizAccess-Role", "aws-sdk-go/1.44.327 (go1.21.1; linux; amd64) wiz-scanner/2.9"),
    (
        "OrcaSecurityRole",
        "aws-sdk-go-v2/1.21.0 os/linux lang/go#1.21.1 md/GOARCH#amd64 api/orca-side-scanner",
    ),
    (
        "SecurityInventory",
        "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux lang/python#3.12.2"
        " exec-env/AWS_Lambda_python3.12 ec2-inventory",
    ),
    (
        "CloudQueryReadOnly",
        "aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5 md/GOARCH#amd64 cloudquery/aws-23.6",
    ),
)


@dataclass(frozen=True)
class Family:
    """Ranges an organisation draws its habits from (a pair = uniform, ``log_`` = log-uniform)."""

    name: str
    note: str
    accounts: int = 6
    quiet_accounts: int = 1  # accounts drawn from ``quiet_scale`` (where the thin spreads go)
    account_scale: Range = (0.3, 2.0)  # log-uniform multiplier of an account's failure rates
    quiet_scale: Range = (0.05, 0.2)
    humans: Range = (8, 16)  # people per account (scaled down in quiet accounts)
    human_fail: Range = (0.05, 0.6)  # log-uniform failures per office hour
    bursty_people: float = 0.1  # share of people with bursty days
    bursty_day: float = 0.08  # chance a bursty person's working day has a burst of hours
    bursty_factor: Range = (3.0, 8.0)
    ci_users: Range = (2, 5)
    app_roles: Range = (10, 18)
    automations: Range = (0, 2)  # steady denied automation roles per account
    automation_rate: Range = (5.0, 30.0)  # log-uniform failures per hour
    automation_day_shape: Range = (4.0, 12.0)  # gamma shape of the day factor (low = dispersed)
    automation_hour_shape: Range = (20.0, 200.0)  # gamma shape of the hour factor
    automation_amplitude: Range = (0.1, 0.5)  # daily swing
    automation_weekend: Range = (0.7, 1.0)  # weekend level / weekday level (weekly seasonality)
    batches: Range = (1, 1)  # batch roles per account
    batch_rate: Range = (20.0, 60.0)
    weekday_batches: float = 0.0  # share of batch roles that run on weekdays only
    log_delivery: int = 2
    person_bursts: int = 3  # small benign bursts of people per organisation
    person_burst_size: Range = (8, 20)
    # APIs of a person's small burst: two EC2 APIs (a command retried) by default; a range above 2
    # draws that many EC2 APIs (a console page's loads: grycap's students fail on 4-13 Describe*)
    person_burst_apis: Range = (2, 2)
    habitual_bursters: float = 0.0  # share of people (IAM users, SSO roles) who burst every week
    habitual_bursts: Range = (1.0, 3.0)  # their bursts per week (working days)
    habitual_burst_size: Range = (5, 15)
    # attacks
    discovery_size: Range = (40, 400)
    discovery_apis: Range = (15, 60)
    # the first bench's low-and-slow draws: still made (then dropped) so that the other records stay
    low_slow_rate: Range = (4.0, 12.0)
    low_slow_hours: Range = (3, 12)
    # low-and-slow as the independent bench describes it ("denials from a near-silent principal over
    # a few hours"), drawn from a stream of its own after every other scenario (`_low_and_slow`)
    slow_rate: Range = (1.0, 6.0)  # log-uniform failures in a failing hour
    slow_hours: Range = (3, 10)
    slow_apis: Range = (1, 20)  # log-uniform APIs it tries (a failing hour tries up to that many)
    slow_silent: Range = (0.0, 0.4)  # share of its hours without a failure
    slow_new: float = 0.67  # share on a near-silent principal of its own: a weekly person, a daily trickle
    new_principal_size: Range = (20, 80)
    spread_members: Range = (4, 10)
    spread_each: Range = (1, 5)
    # the thin spread as the independent bench describes it (widened on 2026-12-07, issue 12, P47):
    spread_minutes: Range = (2.0, 15.0)
    spread_failures: Range = (4, 40)  # failures of a thin spread in all (log-uniform)
    spread_size: Range = (2, 8)  # its principals (log-uniform, at most the account's)
    spread_within_minutes: float = 1.0  # share of spreads within ``spread_minutes`` (else the hour)
    spread_busier: float = 0.5  # share of spreads in a busier account (`_busier_account`)
    spread_account_scale: Range = (0.15, 1.5)  # log-uniform rates of that account (quiet_scale's)
    spread_services: Range = (1, 3)  # services its principals are denied on (their catalog APIs)
    spread_factor: Range = (2.0, 10.0)  # log-uniform times a busier account's usual hour
    # who fails: the account's people (IAM users, SSO roles), its roles (app roles, CI users), any
    # of them, or principals new to the account (their first event the spread), one drawn a spread
    spread_who: tuple[str, ...] = ("people", "roles", "any", "new")
    spike_factor: Range = (3.0, 6.0)
    spike_hours: Range = (1, 2)
    # a relative spike's extra failures: in ``spike_minutes`` (log-uniform) of each spike hour for
    # a ``spike_concentrated`` share of spikes (drawn from a stream of their own), else spread over
    # the hour like the stream's own (0: every spike spread, as before 2026-12-07)
    spike_concentrated: float = 0.0
    spike_minutes: Range = (5.0, 20.0)
    # each relative spike on an automation of its own (tuning families): a spike that would fall on
    # an automation already carrying one is drawn again, after every other scenario and from a
    # stream of its own, on a new steady automation (`_own_spike`); False: the first bench's habit,
    # ``autos[i % len(autos)]``, which puts every spike of a one-automation organisation on it
    spike_own_automation: bool = False
    # each attack on a principal no earlier attack used (tuning families, issue 12, P53): a console
    # login burst or a low-and-slow run whose drawn principal carries an earlier attack is drawn
    # again from the principals that carry none, and so is each member of a thin spread that an
    # earlier attack used (from a stream of its own, after the draws made anyway, so an organisation
    # without such a collision is unchanged); False: the first bench's habit (P51: a low-and-slow
    # run on the CI user of an earlier discovery burst)
    attack_own_principal: bool = False
    console_size: Range = (15, 60)
    # benign: a script stuck retrying one API it never called before (a deploy's new call, denied)
    # every ``stuck_every`` minutes (log-uniform) for ``stuck_hours``, on a near-silent principal
    # (``stuck_new`` of them of its own, like the low-and-slow runs'), drawn last from its own stream
    stuck_retries: int = 3
    stuck_every: Range = (10.0, 40.0)
    stuck_hours: Range = (3, 10)
    stuck_new: float = 0.67
    # benign: security tooling (CSPM scanners, inventories: Prowler, ScoutSuite, Wiz/Orca-style
    # cross-account roles) calling many read APIs in every account on a schedule, denied on those
    # its policy lacks (`_scanners`, drawn last from a stream of its own); 0 tools = none
    scanners: Range = (0, 0)  # tools per organisation
    scanner_every: tuple[int, ...] = (24,)  # cadences (hours) a tool draws from: 1, 4, 24, 168
    scanner_apis: Range = (30, 300)  # log-uniform read APIs a run calls in each account
    scanner_denied: Range = (0.02, 0.4)  # share of them its policy lacks (denied every run)
    scanner_minutes: Range = (5.0, 40.0)  # a run's length in one account (accounts one after another)
    scanner_cross: float = 1.0  # share of tools assumed from a security account (one address for all)
    scanner_upgrade_apis: Range = (5, 30)  # new checks of the tool's upgrade (mid-month), all denied
    scanner_denied_regions: Range = (0, 0)  # regions an SCP denies that the tool still calls
    scanner_new_region: float = 0.0  # share of tools that start calling one more denied region mid-month
    scanner_on_demand: float = 0.0  # extra runs per working week (after a change) in one account


TUNING = (
    Family(
        "office",
        "office-hours people, a few moderate automations, weak weekly seasonality, a daily"
        " cross-account security scanner (40-200 APIs, 2-15 % denied)",
        spike_factor=(2.0, 8.0),
        spike_hours=(1, 3),
        spike_concentrated=0.5,
        spike_own_automation=True,
        attack_own_principal=True,
        scanners=(1, 1),
        scanner_apis=(40, 200),
        scanner_denied=(0.02, 0.15),
        scanner_upgrade_apis=(5, 20),
    ),
    Family(
        "steady-automation",
        "one or two steady denied automations per account (5-40/h, low dispersion), quiet people,"
        " relative spikes of x2.5-x4",
        automations=(1, 2),
        automation_rate=(5.0, 40.0),
        automation_day_shape=(15.0, 40.0),
        automation_amplitude=(0.0, 0.2),
        human_fail=(0.02, 0.3),
        spike_factor=(2.0, 8.0),
        spike_hours=(1, 3),
        spike_concentrated=0.5,
        spike_own_automation=True,
        attack_own_principal=True,
        spread_members=(3, 6),
        spread_each=(2, 6),
        scanners=(1, 1),
        scanner_every=(1, 4),
        scanner_apis=(30, 80),
        scanner_denied=(0.02, 0.1),
        scanner_minutes=(2.0, 10.0),
        scanner_cross=0.5,
    ),
    Family(
        "weekly",
        "strong weekly and daily seasonality (automation at 5-30 % on weekends, swings of 50-90 %),"
        " weekday-only batches, bursty people",
        automation_weekend=(0.05, 0.3),
        automation_amplitude=(0.5, 0.9),
        batches=(1, 2),
        weekday_batches=0.6,
        bursty_people=0.25,
        spike_factor=(2.0, 8.0),
        spike_hours=(1, 3),
        spike_concentrated=0.5,
        spike_own_automation=True,
        attack_own_principal=True,
        automations=(1, 2),
        scanners=(1, 2),
        scanner_every=(168, 24),
        scanner_apis=(100, 180),
        scanner_denied=(0.1, 0.4),
        scanner_denied_regions=(1, 2),
        scanner_on_demand=1.0,
    ),
    Family(
        "startup",
        "small near-silent accounts, few principals, small attacks",
        quiet_accounts=2,
        account_scale=(0.05, 0.5),
        humans=(3, 8),
        app_roles=(4, 8),
        ci_users=(1, 2),
        automations=(0, 1),
        automation_rate=(2.0, 10.0),
        discovery_size=(20, 80),
        discovery_apis=(8, 25),
        low_slow_rate=(3.0, 8.0),
        spike_factor=(2.0, 8.0),
        spike_hours=(1, 3),
        spike_concentrated=0.5,
        spike_own_automation=True,
        attack_own_principal=True,
        new_principal_size=(15, 40),
        spread_members=(3, 6),
        spread_each=(1, 3),
        log_delivery=1,
        scanners=(1, 1),
        scanner_every=(24, 168),
        scanner_apis=(30, 150),
        scanner_denied=(0.05, 0.4),
        scanner_upgrade_apis=(5, 30),
        scanner_cross=0.0,
    ),
    # Added after the first held-out run (docs/bench/quality.md, "Families"): the rules of issue 12
    # raised the false alerts on dispersed automation, which no tuning family had. Its ranges
    # differ from the held-out noisy-automation family's (slower, more dispersed day to day and
    # hour to hour, strong weekly seasonality), and it adds people who burst every week.
    Family(
        "dispersed-automation",
        "dispersed denied automations (3-25/h, day shape 1.2-3, hour shape 2-6, weekends at 30-70 %),"
        " people (IAM users, SSO roles) with small bursts a few times a week",
        automations=(1, 3),
        automation_rate=(3.0, 25.0),
        automation_day_shape=(1.2, 3.0),
        automation_hour_shape=(2.0, 6.0),
        automation_amplitude=(0.1, 0.4),
        automation_weekend=(0.3, 0.7),
        spike_factor=(2.0, 8.0),
        spike_hours=(1, 3),
        spike_concentrated=0.5,
        spike_own_automation=True,
        attack_own_principal=True,
        habitual_bursters=0.15,
        scanners=(2, 3),
        scanner_every=(1, 4, 24, 168),
        scanner_apis=(30, 170),
        scanner_denied=(0.02, 0.4),
        scanner_denied_regions=(0, 1),
        scanner_new_region=0.5,
        scanner_on_demand=2.0,
        scanner_cross=0.7,
    ),
    # Added for rule P20 (issue 12): the held-out run's false alerts on people's bursty days and
    # small bursts (teaching family) had no tuning family to be seen on. Its ranges are set from
    # what the independent bench and the grycap set describe, not from the held-out family's:
    # classes of 12-25 students (grycap: a handful of users per account) who fail a little every
    # office hour (0.05-0.8: a student's active hour holds about 8 calls, some denied), half of
    # them with bursty days (a lab session: 2.5-10 times their rate for an hour or two, 1 working
    # day in 6), and 10 small bursts in seconds over 3-7 EC2 APIs (the catalog has 7; grycap's 18
    # UnauthorizedOperation in 7 s over 4-13 Describe* APIs: a console page's loads); few
    # automations, small spreads, the usual attacks on people.
    Family(
        "classroom",
        "students (12-25 per account, 0.05-0.8 failures an office hour), half with bursty days"
        " (x2.5-x10 for 1-2 h, 1 working day in 6), 10 small bursts in seconds over 3-7 EC2 APIs",
        humans=(12, 25),
        human_fail=(0.05, 0.8),
        bursty_people=0.5,
        bursty_day=0.16,
        bursty_factor=(2.5, 10.0),
        app_roles=(3, 7),
        ci_users=(1, 3),
        automations=(0, 1),
        automation_rate=(2.0, 12.0),
        person_bursts=10,
        person_burst_size=(6, 22),
        person_burst_apis=(3, 7),
        spike_factor=(2.0, 8.0),
        spike_hours=(1, 3),
        spike_concentrated=0.5,
        spike_own_automation=True,
        attack_own_principal=True,
        spread_members=(3, 8),
        spread_each=(1, 3),
    ),
    # Added on 2026-12-07 after the held-out run of 4d42eb5 (issue 12, rules.md P45): audited's
    # scanners still drew false alerts, and no tuning family had slow runs that straddle the turn
    # of an hour, cadences of several hours or of 2-4 days, or SCP-denied regions with one more
    # mid-month on slow tools. Its ranges were set from audited's definition only (not its results)
    # and differ from them: cadences of 8, 48 and 96 hours, 15-50 minutes an account, half
    # cross-account; more people and fewer automations.
    Family(
        "compliance",
        "a compliance-minded organisation: two or three security tools (every 8, 48 or 96 h, 50-160"
        " APIs, 5-35 % denied, 15-50 minutes an account, half cross-account, SCP-denied regions),"
        " many people, few automations",
        humans=(12, 22),
        automations=(0, 1),
        automation_rate=(3.0, 20.0),
        bursty_people=0.2,
        spike_factor=(2.0, 8.0),
        spike_hours=(1, 3),
        spike_concentrated=0.5,
        spike_own_automation=True,
        attack_own_principal=True,
        scanners=(2, 3),
        scanner_every=(8, 48, 96),
        scanner_apis=(50, 160),
        scanner_denied=(0.05, 0.35),
        scanner_minutes=(15.0, 50.0),
        scanner_cross=0.5,
        scanner_upgrade_apis=(6, 16),
        scanner_denied_regions=(0, 2),
        scanner_new_region=0.3,
        scanner_on_demand=0.5,
    ),
)

HELD_OUT = (
    Family(
        "noisy-automation",
        "dispersed automations over a wide range (8-60/h, day shape 1.5-4, hour shape 3-10)",
        automations=(1, 2),
        automation_rate=(8.0, 60.0),
        automation_day_shape=(1.5, 4.0),
        automation_hour_shape=(3.0, 10.0),
        automation_amplitude=(0.2, 0.6),
        spike_factor=(3.0, 6.0),
        spike_hours=(1, 3),
    ),
    Family(
        "teaching",
        "many people with bursty days and small benign bursts (students), quiet automation",
        humans=(20, 35),
        human_fail=(0.1, 1.0),
        bursty_people=0.4,
        bursty_day=0.12,
        app_roles=(4, 8),
        automations=(0, 1),
        automation_rate=(3.0, 15.0),
        person_bursts=8,
        person_burst_size=(10, 25),
        spread_members=(5, 12),
        spread_each=(1, 4),
    ),
    Family(
        "global-busy",
        "busy accounts (x1-x4) and one quiet one, mixed seasonality, bursty people, relative"
        " spikes of x2.5-x5",
        account_scale=(1.0, 4.0),
        quiet_scale=(0.1, 0.3),
        automations=(1, 3),
        automation_rate=(5.0, 40.0),
        automation_weekend=(0.3, 1.0),
        automation_amplitude=(0.2, 0.7),
        bursty_people=0.2,
        spike_factor=(2.5, 5.0),
        discovery_size=(30, 200),
        spread_members=(4, 12),
        spread_each=(2, 5),
        batches=(1, 2),
        weekday_batches=0.3,
    ),
    Family(
        "near-silent",
        "near-silent accounts, low automation, small spreads and low-and-slow",
        quiet_accounts=3,
        account_scale=(0.02, 0.3),
        quiet_scale=(0.02, 0.1),
        humans=(4, 10),
        app_roles=(6, 12),
        automations=(1, 1),
        automation_rate=(1.5, 8.0),
        low_slow_rate=(3.0, 6.0),
        new_principal_size=(15, 40),
        spread_members=(3, 5),
        spread_each=(1, 3),
        discovery_size=(25, 120),
        log_delivery=1,
    ),
    # Added on 2026-12-07, after the scanners joined the tuning families (P42, P43) and before any
    # held-out run with them: the held-out check of that rule. Its tools' ranges differ from every
    # tuning family's (cadences of 6, 12 and 72 hours, which none has; slow runs; more denied
    # regions; fewer cross-account roles), set from what such tools do, not from any result.
    Family(
        "audited",
        "a regulated organisation: two or three security tools (every 6, 12 or 72 h, 60-190 APIs,"
        " 5-30 % denied, 10-45 minutes an account, most from each account's own address, SCP-denied"
        " regions), steady automations, weekday batches",
        automations=(1, 2),
        automation_rate=(4.0, 25.0),
        automation_day_shape=(6.0, 20.0),
        batches=(1, 2),
        weekday_batches=0.5,
        bursty_people=0.15,
        scanners=(2, 3),
        scanner_every=(6, 12, 72),
        scanner_apis=(60, 190),
        scanner_denied=(0.05, 0.3),
        scanner_minutes=(10.0, 45.0),
        scanner_cross=0.4,
        scanner_upgrade_apis=(8, 14),
        scanner_denied_regions=(0, 2),
        scanner_new_region=0.3,
        scanner_on_demand=0.5,
    ),
)
FAMILIES = {f.name: f for f in (*TUNING, *HELD_OUT)}


class _FamilyBuilder(_Builder):
    """The generator's builder with every habit drawn from a `Family`'s ranges."""

    def __init__(self, family: Family, seed: int, start: int, days: int, per_kind: int) -> None:
        super().__init__(seed, start, days, family.accounts, per_kind)
        # its own random stream per family: organisations of two families never share draws
        self.rng = np.random.Generator(np.random.PCG64([seed, zlib.crc32(family.name.encode())]))
        self.fast.seed(int(self.rng.integers(0, 2**62)))
        self.f = family
        self.scale: dict[str, float] = {}

    # ---- draws ------------------------------------------------------------------------------------
    def uni(self, r: Range) -> float:
        return float(self.rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])

    def log_uni(self, r: Range) -> float:
        return math.exp(self.uni((math.log(r[0]), math.log(r[1]))))

    def count(self, r: Range, scale: float = 1.0) -> int:
        return max(0, round(self.uni(r) * scale))

    # ---- the organisation -------------------------------------------------------------------------
    def build_org(self) -> None:
        f = self.f
        while len(self.accounts) < f.accounts:
            acct = str(int(self.rng.integers(100_000_000_000, 999_999_999_999)))
            if acct not in self.accounts:
                self.accounts.append(acct)
        for n, acct in enumerate(self.accounts):
            quiet = n < f.quiet_accounts
            self._build_account(n, acct, quiet, self.log_uni(f.quiet_scale if quiet else f.account_scale))

    def _build_account(self, n: int, acct: str, quiet: bool, scale: float, size: float = 0.0) -> None:
        """Account ``acct``'s principals at ``scale``; a quiet one has no steady automation and,
        unless ``size`` is given, half the people and roles."""
        f = self.f
        self.scale[acct] = scale
        size = size or (0.5 if quiet else 1.0)
        tz = int(self._pick([0, -5, 1, 8, -8, 2, 5, 9, -3]))
        office_ips = tuple(self._ip() for _ in range(3))
        for i in range(max(2, self.count(f.humans, size))):
            p = self._add_user(acct, "human", f"{self._pick(FIRST)}.{self._pick(LAST)}{i}", tz, office_ips)
            self._person_habits(p, scale)
        for i in range(max(1, self.count(f.ci_users, size))):
            p = self._add_user(acct, "ci_user", f"ci-{self._pick(SYSTEMS)}-{i}", 0, ())
            p.fail_level *= scale
            self._automation_habits(p, steady=False)
        for i in range(max(2, self.count(f.app_roles, size))):
            p = self._add_role(acct, "app_role", f"{self._pick(SYSTEMS)}-app-{i}")
            p.fail_level *= scale
            self._automation_habits(p, steady=False)
        for i in range(0 if quiet else self.count(f.automations)):
            p = self._add_role(acct, "noisy_role", f"{self._pick(SYSTEMS)}-poller-{n}-{i}")
            p.fail_level = self.log_uni(f.automation_rate)
            p.apis = self._apis(int(self.rng.integers(1, 5)))
            self._automation_habits(p, steady=True)
        for perm in ("AdministratorAccess", "ReadOnlyAccess", "PowerUserAccess"):
            suffix = f"{int(self.rng.integers(0, 2**62)):016x}"
            p = self._add_role(acct, "sso_role", f"AWSReservedSSO_{perm}_{suffix}", tz=tz, ips=office_ips)
            self._person_habits(p, scale)
        for i in range(self.count(f.batches)):
            p = self._add_role(acct, "batch_role", f"nightly-etl-{n}-{i}")
            p.fail_level = self.uni(f.batch_rate)
            p.habits["weekdays_only"] = float(self.rng.random() < f.weekday_batches)
            p.habits["day_shape"] = 6.0
            if p.habits["weekdays_only"]:
                self._weekday_batch_label(p)
        for host in ("config.amazonaws.com", "cloudtrail.amazonaws.com"):
            self._add_service(acct, host, fail_level=0.03 * scale, success_level=0.3)
        root = self._add_root(acct, tz, office_ips)
        root.habits = {"weekend": 0.05, "day_shape": 6.0}
        first = int(self.rng.integers(self.hours // 3, 2 * self.hours // 3))
        p = self._add_user(acct, "human", f"{self._pick(FIRST)}.new{n}", tz, office_ips, first)
        self._person_habits(p, scale, bursty=False)
        self._trap("benign_new_principal", p, [(first, first + 24)], "first day of a new principal")
        first = int(self.rng.integers(self.hours // 3, 2 * self.hours // 3))
        p = self._add_role(acct, "app_role", f"{self._pick(SYSTEMS)}-v2-{n}", first_hour=first)
        self._automation_habits(p, steady=False)
        self._trap("benign_new_principal", p, [(first, first + 24)], "first day of a new principal")

    def _person_habits(self, p: Principal, scale: float, bursty: bool = True) -> None:
        f = self.f
        p.fail_level = self.log_uni(f.human_fail) * scale * (2.0 if p.kind == "sso_role" else 1.0)
        p.habits = {
            "weekend": float(self.rng.choice([0.02, 0.05, 0.2])),
            "day_shape": self.uni((2.0, 8.0)),
            "bursty": float(bursty and self.rng.random() < f.bursty_people),
        }

    def _automation_habits(self, p: Principal, steady: bool) -> None:
        f = self.f
        if steady:
            p.habits = {
                "day_shape": self.uni(f.automation_day_shape),
                "hour_shape": self.uni(f.automation_hour_shape),
                "amplitude": self.uni(f.automation_amplitude),
                "weekend": self.uni(f.automation_weekend),
            }
        else:
            p.habits = {"day_shape": self.uni((3.0, 10.0)), "amplitude": 0.25, "weekend": 1.0}

    def _weekday(self, hours: np.ndarray, tz: int = 0) -> np.ndarray:
        return (self.start_weekday + (hours + tz) // 24) % 7

    def _weekday_batch_label(self, p: Principal) -> None:
        # _add_role labelled every day's batch hour; a weekday-only batch fails on weekdays only
        old = self.labels.pop()
        days = [d for d in range(self.days) if self._weekday(np.array([d * 24]))[0] < 5]
        windows = [(d * 24 + p.batch_hour, d * 24 + p.batch_hour + 1) for d in days]
        self._trap("batch_hour", p, windows, old.note + " (weekdays only)")

    # ---- background traffic -----------------------------------------------------------------------
    def profile(self, p: Principal) -> np.ndarray:
        h = np.arange(self.hours)
        habits = p.habits
        if p.profile == "batch":
            prof = ((h % 24) == p.batch_hour).astype(float)
            if habits.get("weekdays_only"):
                prof *= self._weekday(h) < 5
        elif p.profile == "office":
            local = (h + p.tz) % 24
            prof = np.where(
                (local >= 8) & (local < 18), 1.0, np.where((local == 7) | (local == 18), 0.4, 0.02)
            )
            prof = prof * np.where(self._weekday(h, p.tz) >= 5, habits.get("weekend", 0.05), 1.0)
            if "weekly_day" in habits:  # a person who signs in one working day a week
                prof = prof * (self._weekday(h, p.tz) == habits["weekly_day"])
        elif p.profile == "flat":
            amp = habits.get("amplitude", 0.25)
            prof = 1.0 + amp * np.sin(2 * np.pi * ((h % 24) - 6) / 24.0)
            prof = prof * np.where(self._weekday(h) >= 5, habits.get("weekend", 1.0), 1.0)
        else:
            prof = np.zeros(self.hours)
        prof = prof.astype(float)
        shape = habits.get("day_shape", 6.0)
        prof = prof * np.repeat(self.rng.gamma(shape, 1.0 / shape, size=self.days), 24)
        if habits.get("hour_shape"):
            shape = habits["hour_shape"]
            prof = prof * self.rng.gamma(shape, 1.0 / shape, size=self.hours)
        if habits.get("bursty"):
            prof = self._bursty_days(p, prof)
        prof[: p.first_hour] = 0.0
        return prof

    def _bursty_days(self, p: Principal, prof: np.ndarray) -> np.ndarray:
        windows = []
        for d in range(self.days):
            if self._weekday(np.array([d * 24]), p.tz)[0] >= 5 or self.rng.random() >= self.f.bursty_day:
                continue
            h = d * 24 + (int(self.rng.integers(9, 16)) - p.tz) % 24
            length = int(self.rng.integers(1, 3))
            if h + length > self.hours:
                continue
            prof[h : h + length] *= self.uni(self.f.bursty_factor)
            windows.append((h, h + length))
        if windows:
            self._trap("bursty_day", p, windows, "a person's hours at several times their rate")
        return prof

    def _account_usual(self, acct: str, hour: int) -> float:
        """Median over the week before ``hour`` of the account's expected failures an hour (the
        principals' rates as the thin spreads found them, `late_scenarios`, where they are set)."""
        rates = getattr(self, "_spread_rates", self.rates)
        week = [
            r[max(0, hour - 168) : hour] for q, r in rates.items() if q.startswith(f"arn:aws:iam::{acct}:")
        ]
        return float(np.median(np.sum(week, axis=0))) if week and hour > 0 else 0.0

    # ---- scenarios --------------------------------------------------------------------------------
    def _quietest(self) -> list[str]:
        return sorted(self.accounts, key=lambda a: self.scale[a])

    def _usual_rate(self, p: Principal, hour: int) -> float:
        """The automation's rate at ``hour`` without its day's and hour's random factors."""
        amp = p.habits.get("amplitude", 0.25)
        prof = 1.0 + amp * math.sin(2 * math.pi * ((hour % 24) - 6) / 24.0)
        if self._weekday(np.array([hour]))[0] >= 5:
            prof *= p.habits.get("weekend", 1.0)
        return p.fail_level * prof

    def scenarios(self) -> None:
        f, accounts = self.f, list(self.accounts)
        quiet = self._quietest()
        self._slow_runs: list[tuple[str, Principal]] = []
        self._spreads: list[tuple[bool, str, list[Principal], int, str, str]] = []
        self._spikes_again: list[str] = []
        for i in range(self.per_kind):
            # discovery burst: leaked credentials sweeping many APIs from a new IP within minutes
            kind = ("human", "ci_user", "app_role")[i % 3]
            p = self._pick(self._candidates((kind,), accounts[i % len(accounts)]))
            h = self._free_hour(p.account, 1)
            n = self.count(f.discovery_size)
            dur = self.uni((1.0, 30.0))
            m0 = self.uni((0.0, 60.0 - dur))
            apis = self._apis(self.count(f.discovery_apis))
            ip, agent = self._ip(), str(self._pick(ATTACKER_AGENTS))
            self.emit(p, h, n, ok=False, apis=apis, ip=ip, agent=agent, minutes=(m0, m0 + dur))
            self.emit(
                p, h, 2, ok=True, apis=(("sts.amazonaws.com", "GetCallerIdentity"),), ip=ip, agent=agent
            )
            note = f"{n} denials over {len(apis)} APIs in {dur:.0f} min"
            self._attack("discovery_burst", "principal", p.account, p.principal, h, h + 1, note=note)

            # low and slow: a near-silent principal denied a few times an hour for hours. The first
            # bench's draws are made (and their records dropped) so that every later draw stays; the
            # run itself is drawn after every other scenario from its own stream (`_low_and_slow`).
            acct = accounts[(i + 1) % len(accounts)]
            silent = sorted(
                self._candidates(("human", "app_role", "ci_user"), acct), key=lambda q: q.fail_level
            )
            p = self._pick(silent[: max(1, len(silent) // 2)])
            length = self.count(f.low_slow_hours)
            h = self._free_hour(acct, length)
            rate = self.uni(f.low_slow_rate)
            apis = self._apis(int(self.rng.integers(5, 20)))
            ip, agent = self._ip(), str(self._pick(ATTACKER_AGENTS))
            mark = len(self.records)
            for k in range(length):
                self.emit(p, h + k, int(self.rng.poisson(rate)), ok=False, apis=apis, ip=ip, agent=agent)
            del self.records[mark:]
            self._slow_runs.append((acct, p))

            # brand-new principal whose first hour is mostly denied
            acct = accounts[(i + 2) % len(accounts)]
            h = self._free_hour(acct, 1)
            if self.rng.random() < 0.5:
                p = self._add_user(acct, "ci_user", f"svc-backup-{self.seed}-{i}", 0, (), first_hour=h)
            else:
                p = self._add_role(acct, "app_role", f"OrganizationAccountAccess-{i}", first_hour=h)
            p.fail_level, p.success_level = 0.05, 0.5
            self._automation_habits(p, steady=False)
            self.background_of(p)
            n = self.count(f.new_principal_size)
            apis = self._apis(int(self.rng.integers(5, 25)))
            ip, agent = self._ip(), str(self._pick(ATTACKER_AGENTS))
            self.emit(p, h, n, ok=False, apis=apis, ip=ip, agent=agent, minutes=(5, 55))
            self.emit(
                p, h, 2, ok=True, apis=(("sts.amazonaws.com", "GetCallerIdentity"),), ip=ip, agent=agent
            )
            note = f"{n} denials in its first hour"
            self._attack("new_principal_burst", "principal", acct, p.principal, h, h + 1, note=note)

            # thin account-wide spread in the quietest account. The first bench's draws are made
            # (and their records dropped) so that every later scenario and trap draws what it drew
            # before; the spread itself is drawn after every other scenario, from its own stream
            # (`_thin_spread`, `late_scenarios`).
            acct = quiet[i % max(1, self.f.quiet_accounts)]
            pool = self._spread_pool(acct)
            mark = len(self.records)
            k = min(len(pool), self.count(f.spread_members))
            members = [pool[int(j)] for j in self.rng.choice(len(pool), size=k, replace=False)]
            h = self._free_hour(acct, 1)
            services = self.rng.choice(len(API_CATALOG), size=2, replace=False)
            sources = {API_CATALOG[int(j)][0] for j in services}
            apis = tuple(api for api in API_CATALOG if api[0] in sources)
            span = self.uni(f.spread_minutes)
            m0 = self.uni((0.0, 60.0 - span))
            ip, agent = self._ip(), str(self._pick(ATTACKER_AGENTS))
            for q in members:
                n = max(1, self.count(f.spread_each))
                self.emit(q, h, n, ok=False, apis=apis, ip=ip, agent=agent, minutes=(m0, m0 + span))
            del self.records[mark:]
            self._spreads.append((self._spreads_busier()[i], acct, pool, h, ip, agent))

            # relative spike: a steady denied automation at a few times its usual rate, on its
            # usual APIs, from its usual addresses
            autos = sorted(
                (q for q in self.principals if q.kind == "noisy_role"), key=lambda q: -q.fail_level
            )
            autos = [q for q in autos if q.fail_level >= 3.0] or autos[:1]
            if autos:
                p = autos[i % len(autos)]
                again = f.spike_own_automation and i >= len(autos)
                length = self.count(f.spike_hours)
                h = self._free_hour(p.account, length)
                factor = self.uni(f.spike_factor)
                # a spike drawn again (`_own_spike`) still makes these draws, records dropped, so
                # that every later draw stays; its minutes' stream is left to the spikes kept
                minutes, how = ((0.0, 60.0), "") if again else self._spike_minutes()
                mark = len(self.records)
                for k in range(length):
                    extra = int(self.rng.poisson(self._usual_rate(p, h + k) * (factor - 1)))
                    self.emit(p, h + k, extra, ok=False, minutes=minutes)
                if again:
                    del self.records[mark:]
                    self._spikes_again.append(p.account)
                else:
                    note = f"x{factor:.1f} over a usual ~{p.fail_level:.1f}/h for {length} h, {how}"
                    self._attack(
                        "relative_spike", "principal", p.account, p.principal, h, h + length, note=note
                    )

    def _spike_minutes(self) -> tuple[tuple[float, float], str]:
        """The minutes of each hour a relative spike puts its extra failures in, and how to say
        it: a ``spike_concentrated`` share in ``spike_minutes`` of the hour, the others over the
        whole hour (from a stream of their own, so that no other draw moves)."""
        f = self.f
        with self._stream(40):
            if not f.spike_concentrated or self.rng.random() >= f.spike_concentrated:
                return (0.0, 60.0), "over the hour"
            span = self.log_uni(f.spike_minutes)
            m0 = self.uni((0.0, 60.0 - span))
        return (m0, m0 + span), f"in {span:.0f} minutes"

    @contextlib.contextmanager
    def _stream(self, tag: int) -> Iterator[None]:
        """Draw from the family's stream ``tag`` (its own rng and fast picks) inside the block, so
        that a scenario's draws move no other scenario's."""
        streams = self.__dict__.setdefault("_streams", {})
        if tag not in streams:
            rng = np.random.Generator(np.random.PCG64([self.seed, zlib.crc32(self.f.name.encode()), tag]))
            streams[tag] = rng, random.Random(int(rng.integers(0, 2**62)))
        saved = self.rng, self.fast
        self.rng, self.fast = streams[tag]
        try:
            yield
        finally:
            self.rng, self.fast = saved

    def _spreads_busier(self) -> list[bool]:
        """Which thin spreads go to a busier account (`spread_busier`), from a stream of its own."""
        if not hasattr(self, "_busier"):
            with self._stream(25):
                self._busier = [bool(self.rng.random() < self.f.spread_busier) for _ in range(self.per_kind)]
        return self._busier

    def _spread_pool(self, acct: str) -> list[Principal]:
        return [
            q
            for q in self.principals
            if q.account == acct
            and not q.is_service
            and q.kind not in ("root", "scanner_role")
            and q.first_hour == 0
        ]

    def _thin_spread(
        self, acct: str, pool: list[Principal], h: int, ip: str, agent: str, total: int = 0
    ) -> None:
        """Several principals of ``acct`` denied a few times each on the same services from hour
        ``h``: ``spread_failures`` in all (log-uniform: a handful to a few dozen; ``total`` if given)
        over principals drawn log-uniform from ``spread_size`` (at most the account's, at least a
        quarter of the failures, so each fails a few times), on the catalog APIs of
        ``spread_services`` services, within ``spread_minutes`` starting at any minute of the hour
        (so some run into the next hour; a share ``spread_within_minutes`` of the spreads, the
        others across the hour). Who fails is one of ``spread_who``: the account's people, its
        roles, any of them, or principals new to the account (IAM users and roles whose first event
        is the spread). Drawn from the spread's own random streams, after every other scenario, so
        that no other scenario's draws move with it."""
        f = self.f
        with self._stream(19):
            total = total or round(self.log_uni(f.spread_failures))
            who = str(self._pick(f.spread_who))
            kinds = {"people": ("human", "sso_role"), "roles": ("app_role", "ci_user")}.get(who)
            if kinds and sum(q.kind in kinds for q in pool) >= f.spread_size[0]:
                pool = [q for q in pool if q.kind in kinds]
            most = round(f.spread_size[1]) if who == "new" else min(len(pool), round(f.spread_size[1]))
            most = max(1, most)
            least = min(most, max(round(f.spread_size[0]), math.ceil(total / 4)))
            k = min(most, max(least, round(self.log_uni((least, most)))))
            total = max(total, k)
            if who == "new":
                members = [self._new_spread_member(acct, h) for _ in range(k)]
            else:
                members = [pool[int(j)] for j in self.rng.choice(len(pool), size=k, replace=False)]
                members = self._unattacked_members(members, pool)
            sources = sorted({s for s, _ in API_CATALOG})
            n_src = min(len(sources), max(1, self.count(f.spread_services)))
            picked = {sources[int(j)] for j in self.rng.choice(len(sources), size=n_src, replace=False)}
            apis = tuple(api for api in API_CATALOG if api[0] in picked)
            each = 1 + self.rng.multinomial(total - k, np.full(k, 1.0 / k))
            within = self.rng.random() < f.spread_within_minutes
            span = self.uni(f.spread_minutes) if within else 60.0
            m0 = self.uni((0.0, 60.0)) if within else 0.0
            for q, n in zip(members, each.tolist()):
                self.emit(q, h, n, ok=False, apis=apis, ip=ip, agent=agent, minutes=(m0, m0 + span))
        usual = self._account_usual(acct, h)
        end = h + (2 if m0 + span > 60.0 else 1)
        note = (
            f"{total} denials over {k} principals ({who}) on {n_src} services in {span:.0f} min"
            f" from :{m0:02.0f}; usual hour ~{usual:.1f}"
        )
        members_t = tuple(q.principal for q in members)
        self._attack("account_spread", "account", acct, "", h, end, members=members_t, note=note)

    def _new_spread_member(self, acct: str, h: int) -> Principal:
        """A principal new to ``acct`` whose first event is the spread at hour ``h``: an IAM user
        named like a person or an app role, half each (no background: it does nothing else)."""
        n = len(self.principals)
        if self.rng.random() < 0.5:
            name = f"{self._pick(FIRST)}.{self._pick(LAST)}x{n}"
            return self._add_user(acct, "human", name, 0, (self._ip(),), first_hour=h)
        return self._add_role(acct, "app_role", f"{self._pick(SYSTEMS)}-job-{n}", first_hour=h)

    def _busier_spread(self, quiet: str, ip: str, agent: str) -> None:
        """A thin spread in an account busier than the quietest (`_busier_account`) at ``spread_factor``
        times (log-uniform) the usual count (`_account_usual`) of an hour where that stays within
        ``spread_failures``' top (the independent bench's "several times the account's usual hour"),
        at least ``spread_failures``' bottom; in the quietest account ``quiet`` when no such hour is
        found."""
        lo, hi = self.f.spread_failures
        with self._stream(19):
            acct = self._busier_account()
            factor = self.log_uni(self.f.spread_factor)
            for _ in range(200):
                h = int(self.rng.integers(8 * 24, self.hours - 25))
                free = all(h + 25 <= a or h >= b + 24 for a, b in self.busy.get(acct, []))
                usual = self._account_usual(acct, h)
                if free and factor * usual <= hi:
                    self.busy.setdefault(acct, []).append((h, h + 1))
                    total = max(round(lo), round(factor * usual))
                    break
            else:
                acct, h, total = quiet, self._free_hour(quiet, 1), 0
        self._thin_spread(acct, self._spread_pools.get(acct) or self._spread_pool(acct), h, ip, agent, total)

    def _busier_account(self) -> str:
        """The account of the busier thin spreads, built once: as many people and roles as a busy
        account (a classroom family's: many students) without steady automation, its rates at
        ``spread_account_scale`` (a quiet account's usual hour holds 0.2-1 failures, this one's a
        few). Drawn last, from a stream of its own, so the other accounts stay as they were."""
        if not hasattr(self, "_busier_acct"):
            with self._stream(26):
                acct = str(int(self.rng.integers(100_000_000_000, 999_999_999_999)))
                first = len(self.principals)
                self._build_account(
                    len(self.accounts), acct, True, self.log_uni(self.f.spread_account_scale), 1.0
                )
                self.accounts.append(acct)
                for p in self.principals[first:]:
                    self.background_of(p)
            self._busier_acct = acct
        return self._busier_acct

    def late_scenarios(self) -> None:
        """The scenarios drawn after every other, each from a stream of its own: the low-and-slow
        runs, the stuck retries, the security tools, the thin spreads (the account of the busier
        ones is built before the retries and tools, which use every account), then the relative
        spikes drawn again on automations of their own (`_own_spike`)."""
        for acct, p in self._slow_runs:
            self._low_and_slow(acct, p)
        if any(busier for busier, *_ in self._spreads):
            self._busier_account()
        # the spreads' principals and usual hours as they are now: the retries' near-silent
        # principals and the tools' roles, drawn next, move no spread
        self._spread_pools = {a: self._spread_pool(a) for a in self.accounts}
        self._spread_rates = dict(self.rates)
        with self._stream(27):
            for _ in range(self.f.stuck_retries):
                self._stuck_retry()
        with self._stream(28):
            self._scanners()
        for busier, acct, pool, h, ip, agent in self._spreads:
            if busier:
                self._busier_spread(acct, ip, agent)
            else:
                self._thin_spread(acct, pool, h, ip, agent)
        with self._stream(41):
            for j, acct in enumerate(self._spikes_again):
                self._own_spike(acct, j)

    def _own_spike(self, acct: str, j: int) -> None:
        """A relative spike on a steady automation of its own (``spike_own_automation``): a new
        automation of ``acct`` drawn as `_build_account` draws one (rate at least 3 an hour, like
        the automations a spike picks), with its month of background, then its spike drawn as in
        `scenarios`. Drawn last, from a stream of its own, so that no other record moves."""
        f = self.f
        n = self.accounts.index(acct)
        p = self._add_role(acct, "noisy_role", f"{self._pick(SYSTEMS)}-poller-{n}-s{j}")
        lo, hi = f.automation_rate
        p.fail_level = self.log_uni((max(3.0, lo), max(3.0, hi)))
        p.apis = self._apis(int(self.rng.integers(1, 5)))
        self._automation_habits(p, steady=True)
        self.background_of(p)
        length = self.count(f.spike_hours)
        h = self._free_hour(acct, length)
        factor = self.uni(f.spike_factor)
        minutes, how = self._spike_minutes()
        for k in range(length):
            extra = int(self.rng.poisson(self._usual_rate(p, h + k) * (factor - 1)))
            self.emit(p, h + k, extra, ok=False, minutes=minutes)
        note = f"x{factor:.1f} over a usual ~{p.fail_level:.1f}/h for {length} h, {how} (its own automation)"
        self._attack("relative_spike", "principal", acct, p.principal, h, h + length, note=note)

    # ---- security tooling (benign) ----------------------------------------------------------------
    def _scanners(self) -> None:
        """Security tools (`scanners` of them): each calls its read APIs (`scanner_apis`, log-uniform)
        in every account every `scanner_every` hours, from one role per account (assumed from a
        security account, one address for all, a share `scanner_cross`; else the account's own
        address), accounts one after another (`scanner_minutes` each), global APIs once and the
        others in each of 1-3 enabled regions and its SCP-denied regions. The same APIs are denied
        every run (`scanner_denied` of them, and every call in a denied region); mid-month the tool
        is upgraded (`scanner_upgrade_apis` new checks, all denied), onboards one more account (its
        role is new there) and, a share `scanner_new_region` of tools, calls one more denied region.
        The engine counts failures only: a run's successful calls are thinned to at most 20.
        Labels: `scanner_first` (a role's first run in the data), `scanner_onboard` (the first run
        in the onboarded account), `scanner_upgrade` and `scanner_region` (each account's first run
        after the change), `scanner_run` (the others, on-demand runs included)."""
        f = self.f
        tools = self.count(f.scanners)
        picks = self.rng.choice(len(SCANNER_TOOLS), size=min(tools, len(SCANNER_TOOLS)), replace=False)
        for t in picks.tolist():
            self._scanner(*SCANNER_TOOLS[int(t)])

    def _scanner(self, role: str, agent: str) -> None:
        f = self.f
        every = int(self._pick(f.scanner_every))
        k = min(len(SCAN_APIS) - round(f.scanner_upgrade_apis[1]), round(self.log_uni(f.scanner_apis)))
        idx = self.rng.choice(len(SCAN_APIS), size=k, replace=False)
        apis = [SCAN_APIS[int(j)] for j in idx]
        share = self.uni(f.scanner_denied)
        denied = {a for a in apis if self.rng.random() < share}
        rest = [a for a in SCAN_APIS if a not in apis]
        n_new = min(len(rest), self.count(f.scanner_upgrade_apis))
        new = [rest[int(j)] for j in self.rng.choice(len(rest), size=n_new, replace=False)]
        upgrade = int(self.rng.integers(self.days // 3, self.days - 3)) * 24
        regions = sorted({str(r) for r in self.rng.choice(REGIONS, size=int(self.rng.integers(1, 4)))})
        denied_regions = list(SCAN_DENIED_REGIONS[: self.count(f.scanner_denied_regions)])
        region_day = -1
        if self.rng.random() < f.scanner_new_region and len(denied_regions) < len(SCAN_DENIED_REGIONS):
            region_day = int(self.rng.integers(self.days // 3, self.days - 3)) * 24
        cross = self.rng.random() < f.scanner_cross
        home_ip = self._ip()
        accounts = list(self.accounts)
        onboarded = accounts[int(self.rng.integers(0, len(accounts)))]
        onboard = int(self.rng.integers(self.days // 3, 2 * self.days // 3)) * 24
        roles = {}
        for acct in accounts:
            first = onboard if acct == onboarded else 0
            p = self._add_role(acct, "scanner_role", role, first_hour=first)
            p.profile, p.fail_level, p.success_level = "none", 0.0, 0.0
            p.ips, p.agents, p.apis = ((home_ip,) if cross else (self._ip(),)), (agent,), tuple(apis)
            roles[acct] = p
        minutes = [self.uni(f.scanner_minutes) for _ in accounts]
        start = int(self.rng.integers(0, min(every, 24))) * 60.0 + self.uni((0.0, 60.0))
        if every >= 168:
            start += int(self.rng.integers(0, 5)) * 24 * 60.0
        runs = [
            start + r * every * 60.0 for r in range(int((self.hours * 60.0 - start) // (every * 60.0)) + 1)
        ]
        demand = []
        for d in range(self.days):
            if self._weekday(np.array([d * 24]))[0] < 5 and self.rng.random() < f.scanner_on_demand / 5.0:
                demand.append((d * 24 + int(self.rng.integers(9, 18))) * 60.0 + self.uni((0.0, 60.0)))
        windows: dict[tuple[str, str], list[tuple[int, int]]] = {}
        seen: dict[str, set[str]] = {acct: set() for acct in accounts}
        schedule = [(t0, accounts, "scheduled") for t0 in runs]
        schedule += [(t0, [self._pick(accounts)], "on demand") for t0 in demand]
        for t0, targets, why in sorted(schedule, key=lambda x: x[0]):
            for acct in targets:
                a0 = t0 + sum(minutes[: accounts.index(acct)]) if why == "scheduled" else t0
                a1 = a0 + minutes[accounts.index(acct)]
                p = roles[acct]
                if a1 >= self.hours * 60.0 or a0 < p.first_hour * 60.0:
                    continue
                hour = int(a0 // 60)
                calls = list(apis) + (new if hour >= upgrade else [])
                deny_regions = denied_regions + (
                    [SCAN_DENIED_REGIONS[len(denied_regions)]] if 0 <= region_day <= hour else []
                )
                kind = "scanner_run"
                if not seen[acct]:
                    kind = "scanner_onboard" if p.first_hour else "scanner_first"
                elif hour >= upgrade and "upgrade" not in seen[acct]:
                    kind = "scanner_upgrade"
                elif 0 <= region_day <= hour and "region" not in seen[acct]:
                    kind = "scanner_region"
                seen[acct].update({"run", *(["upgrade"] if hour >= upgrade else [])})
                if 0 <= region_day <= hour:
                    seen[acct].add("region")
                failures = self._scan_run(p, a0, a1, calls, denied | set(new), regions, deny_regions, agent)
                windows.setdefault((acct, kind), []).append((hour, int(a1 // 60) + 1))
                p.habits[f"{kind}_failures"] = p.habits.get(f"{kind}_failures", 0.0) + failures
        for (acct, kind), wins in windows.items():
            p = roles[acct]
            runs_n = len(wins)
            each = int(p.habits[kind + "_failures"] / runs_n)
            note = (
                f"{role}: {runs_n} run(s) every {every} h, {len(apis)} APIs, {len(denied)} denied"
                f" (+{len(new)} after the upgrade), {each} denials a run,"
                f" {'cross-account' if cross else 'own role'}, regions {','.join(regions)}"
                f" denied {','.join(denied_regions) or '-'}"
            )
            self._trap(kind, p, wins, note)

    def _scan_run(
        self,
        p: Principal,
        a0: float,
        a1: float,
        calls: list[tuple[str, str]],
        denied: set[tuple[str, str]],
        regions: list[str],
        deny_regions: list[str],
        agent: str,
    ) -> int:
        """One run of a scanner in ``p``'s account from minute ``a0`` to ``a1``; its failures."""
        session = f"{p.name[:24]}-{int(a0)}"
        oks: list[tuple[tuple[str, str], str]] = []
        failures = 0
        for api in calls:
            if self.rng.random() < 0.03:  # a check skipped this run (timeout, pagination)
                continue
            where = ["us-east-1"] if api[0] in SCAN_GLOBAL else regions + deny_regions
            for region in where:
                if api in denied or region in deny_regions:
                    for _ in range(1 + int(self.rng.poisson(0.2))):
                        t = self.start + self.uni((a0, a1)) * 60.0
                        rec = self.record(
                            p, t, api, self.authz_code(api), p.ips[0], agent, self.identity(p, t, session)
                        )
                        rec["awsRegion"] = region
                        self.records.append(rec)
                        failures += 1
                else:
                    oks.append((api, region))
        for j in self.rng.choice(len(oks), size=min(20, len(oks)), replace=False).tolist():
            api, region = oks[int(j)]
            t = self.start + self.uni((a0, a1)) * 60.0
            rec = self.record(p, t, api, None, p.ips[0], agent, self.identity(p, t, session))
            rec["awsRegion"] = region
            self.records.append(rec)
        return failures

    def _stuck_retry(self) -> None:
        """Benign: after a deploy in working hours, a quiet principal (a near-silent one of its own, a
        share ``stuck_new``, else the quieter half of an account's people and roles) calls one API it
        never called, is denied, and retries it every ``stuck_every`` minutes (a few percent of
        jitter) for ``stuck_hours``, from its usual address and agent: one API at a steady cadence,
        where a low-and-slow run walks several."""
        f = self.f
        acct = self.accounts[int(self.rng.integers(0, len(self.accounts)))]
        if self.rng.random() < f.stuck_new:
            p, what = self._near_silent(acct)
        else:
            quiet = sorted(
                self._candidates(("human", "app_role", "ci_user"), acct), key=lambda q: q.fail_level
            )
            p = self._pick(quiet[: max(1, len(quiet) // 2)])
            what = f"a quiet {p.kind.replace('_', ' ')}"
        api = self._pick([a for a in API_CATALOG if a not in p.apis])
        length = self.count(f.stuck_hours)
        day = int(self.rng.integers(8, self.days - 1))
        while self._weekday(np.array([day * 24]), p.tz)[0] >= 5:
            day = day - 1
        h = day * 24 + (int(self.rng.integers(9, 17)) - p.tz) % 24
        h = min(h, self.hours - length)
        every = self.log_uni(f.stuck_every) * 60.0
        t = self.start + h * HOUR + self.uni((0.0, every))
        end = self.start + (h + length) * HOUR
        n = 0
        while t < end:
            hour = int((t - self.start) // HOUR)
            minute = (t - self.start - hour * HOUR) / 60.0
            self.emit(p, hour, 1, ok=False, apis=(api,), minutes=(minute, minute))
            t += every * self.uni((0.95, 1.05))
            n += 1
        note = f"{n} denials on {api[1]} every ~{every / 60:.0f} min for {length} h ({what})"
        self._trap("stuck_retry", p, [(h, h + length)], note)

    def _low_and_slow(self, acct: str, p: Principal) -> None:
        """``p`` (or, a share ``slow_new`` of the runs, a near-silent principal of its own) denied
        ``slow_rate`` times a failing hour (log-uniform, at least once) for ``slow_hours``, a share
        ``slow_silent`` of its inner hours without a failure, over ``slow_apis`` APIs."""
        f = self.f
        with self._stream(24):
            if self.rng.random() < f.slow_new:
                p, what = self._near_silent(acct)
            else:
                quiet = sorted(
                    self._candidates(("human", "app_role", "ci_user"), acct), key=lambda q: q.fail_level
                )
                p = self._unattacked(p, quiet[: max(1, len(quiet) // 2)])
                what = f"a quiet {p.kind.replace('_', ' ')}"
            length = self.count(f.slow_hours)
            h = self._free_hour(acct, length)
            rate, silent = self.log_uni(f.slow_rate), self.uni(f.slow_silent)
            apis = self._apis(round(self.log_uni(f.slow_apis)))
            ip, agent = self._ip(), str(self._pick(ATTACKER_AGENTS))
            total = 0
            for k in range(length):
                quiet = 0 < k < length - 1 and self.rng.random() < silent
                n = 0 if quiet else max(1, int(self.rng.poisson(rate)))
                total += n
                self.emit(p, h + k, n, ok=False, apis=apis, ip=ip, agent=agent)
        note = (
            f"{total} denials over {length} h on {len(apis)} APIs from a principal failing"
            f" ~{p.fail_level:.2f}/h ({what})"
        )
        self._attack("low_and_slow", "principal", acct, p.principal, h, h + length, note=note)

    def _attacked(self) -> set[str]:
        """The principals of the attacks drawn so far: a principal-level attack's principal, an
        account spread's members."""
        return {
            name
            for lb in self.labels
            if lb.category == "attack"
            for name in (lb.principal, *lb.members)
            if name
        }

    def _unattacked(self, p: Principal, pool: list[Principal]) -> Principal:
        """``p``, or with ``attack_own_principal`` where an earlier attack used it, another of
        ``pool`` that no attack used (drawn from a stream of its own, so no other draw moves; ``p``
        if every one of ``pool`` carries an attack)."""
        if not self.f.attack_own_principal:
            return p
        used = self._attacked()
        free = [q for q in pool if q.principal not in used]
        if p.principal not in used or not free:
            return p
        with self._stream(43):
            return self._pick(free)

    def _unattacked_members(self, members: list[Principal], pool: list[Principal]) -> list[Principal]:
        """A thin spread's ``members`` as drawn, each that an earlier attack used replaced (with
        ``attack_own_principal``) by another of ``pool`` that no attack used and the spread does not
        hold (`_unattacked`; kept where none is left: a quiet account's few people)."""
        out: list[Principal] = []
        for j, q in enumerate(members):
            taken = {m.principal for m in (*out, *members[j:])}
            out.append(self._unattacked(q, [r for r in pool if r.principal not in taken]))
        return out

    def _near_silent(self, acct: str) -> tuple[Principal, str]:
        """A principal of ``acct`` that seldom fails but is there: a person who signs in one working
        day a week (0.05-0.4 failures an office hour that day), or an app role that runs once a day
        and fails 0.2-2 times then."""
        n = len(self.principals)
        if self.rng.random() < 0.5:
            model = self._pick([q for q in self.principals if q.account == acct and q.kind == "human"])
            p = self._add_user(
                acct, "human", f"{self._pick(FIRST)}.{self._pick(LAST)}w{n}", model.tz, model.ips
            )
            p.fail_level = self.log_uni((0.05, 0.4))
            p.habits = {
                "weekly_day": float(self.rng.integers(0, 5)),
                "weekend": 0.0,
                "day_shape": self.uni((2.0, 8.0)),
            }
            what = "a person signing in weekly"
        else:
            p = self._add_role(acct, "app_role", f"{self._pick(SYSTEMS)}-daily-{n}")
            p.profile, p.batch_hour = "batch", int(self.rng.integers(0, 24))
            p.fail_level = self.log_uni((0.2, 2.0))
            p.habits = {"day_shape": self.uni((2.0, 8.0))}
            what = "an app role's daily trickle"
        self.background_of(p)
        return p, what

    def traps(self) -> None:
        f = self.f
        self.log_delivery(self.accounts[: f.log_delivery])
        app_roles = [q for q in self.principals if q.kind == "app_role" and q.first_hour == 0]
        for kind, codes in ERROR_BURSTS:
            for _ in range(2):
                p, h, n, code, apis = self.error_burst(app_roles, codes)
                self.emit(p, h, n, ok=False, apis=apis, error=code)
                self._trap(kind, p, [(h, h + 1)], f"{n} x {code}")
        # small benign bursts of people: a student's 18 UnauthorizedOperation in 7 s
        people = [q for q in self.principals if q.kind == "human" and q.first_hour == 0]
        for _ in range(f.person_bursts):
            p = self._pick(people)
            day = int(self.rng.integers(2, self.days))
            while self._weekday(np.array([day * 24]), p.tz)[0] >= 5:
                day = (day + 1) % self.days
            h = day * 24 + (int(self.rng.integers(9, 17)) - p.tz) % 24
            n = self.count(f.person_burst_size)
            m0 = self.uni((0.0, 59.0))
            k = 2 if f.person_burst_apis == (2, 2) else min(len(EC2_APIS), self.count(f.person_burst_apis))
            apis = tuple(EC2_APIS[int(j)] for j in self.rng.choice(len(EC2_APIS), size=k, replace=False))
            self.emit(p, h, n, ok=False, apis=apis, minutes=(m0, m0 + self.uni((0.05, 0.5))))
            self._trap("person_burst", p, [(h, h + 1)], f"{n} denials in seconds by a person")
        if f.habitual_bursters > 0:
            self._habitual_bursts()

    def _habitual_bursts(self) -> None:
        """People who fail in small bursts every week: always on the same two EC2 APIs, in seconds."""
        f = self.f
        people = [q for q in self.principals if q.kind in ("human", "sso_role") and q.first_hour == 0]
        for p in people:
            if self.rng.random() >= f.habitual_bursters:
                continue
            apis = tuple(EC2_APIS[int(j)] for j in self.rng.choice(len(EC2_APIS), size=2, replace=False))
            per_day = self.uni(f.habitual_bursts) / 5.0
            windows = []
            for d in range(1, self.days):
                if self._weekday(np.array([d * 24]), p.tz)[0] >= 5 or self.rng.random() >= per_day:
                    continue
                h = d * 24 + (int(self.rng.integers(9, 17)) - p.tz) % 24
                if h >= self.hours:
                    continue
                m0 = self.uni((0.0, 59.0))
                self.emit(
                    p, h, self.count(f.habitual_burst_size), ok=False, apis=apis, minutes=(m0, m0 + 0.5)
                )
                windows.append((h, h + 1))
            if windows:
                self._trap("habitual_burst", p, windows, "a person's small bursts, a few every week")


def generate(
    family: Family | str,
    seed: int,
    days: int = 30,
    scenarios_per_kind: int = 3,
    start: str = DEFAULT_START,
) -> Org:
    """One organisation of ``family``; records sorted by eventTime. Same (family, seed), same data."""
    fam = FAMILIES[family] if isinstance(family, str) else family
    builder = _FamilyBuilder(fam, seed, parse_time(start), days, scenarios_per_kind)
    return builder.organisation({"family": fam.name})


def with_accounts(family: Family, accounts: int) -> Family:
    """The family at another size (tests use small organisations)."""
    return replace(family, accounts=accounts, quiet_accounts=min(family.quiet_accounts, accounts - 1))


__all__ = ["DAY", "FAMILIES", "HELD_OUT", "HOUR", "TUNING", "Family", "generate", "with_accounts"]
