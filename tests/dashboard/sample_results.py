"""Sample results for every data source of the investigation dashboard (render tooling only).

The sample run: 14 days of the quality bench's seeded organisation (tests/bench/generator.py)
with a synthetic discovery burst injected into its second account on the last day: a new IAM user
key (`BURST_USER`) making ~500 AccessDenied / UnauthorizedOperation calls over ~100 APIs within
minutes from documentation-range IPs (RFC 5737). Every record is made up: no real CloudTrail set is
read. The burst, the root user creating its user and key before it, a CloudTrail Insights
ApiErrorRateInsight event for it and an EC2 inventory of the organisation's private addresses are
added here and say so in their fields (`sample_note`, `instance_name`). `iamspike` results come
from the real engine (bin/iamspike); the other panels are their SPL evaluated in Python over the
same records. ES risk events are the ones ES's risk action would write from this app's alerts
(risk_object, risk_score = score).

Usage: .venv/bin/python tests/dashboard/sample_results.py --out tests/dashboard/out/samples.json
Prints the selected entity; render.js --samples takes the file.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench import generator
from iamspike import engine, principals

ROOT = Path(__file__).resolve().parents[2]
BURST_USER = "backup-sync"  # made up, like everything in the burst
BURST_IPS = ("203.0.113.45", "203.0.113.77", "198.51.100.23", "198.51.100.140")  # RFC 5737
BURST_BUCKET = "example-corp-backups"
# ~50 more read-only APIs a discovery tool sweeps, on top of the generator's catalog (~100 in all).
SWEEP = (
    ("iam.amazonaws.com", "ListGroups"),
    ("iam.amazonaws.com", "ListMFADevices"),
    ("iam.amazonaws.com", "GetAccountSummary"),
    ("iam.amazonaws.com", "ListAccountAliases"),
    ("iam.amazonaws.com", "GetAccountPasswordPolicy"),
    ("iam.amazonaws.com", "ListInstanceProfiles"),
    ("iam.amazonaws.com", "ListSAMLProviders"),
    ("iam.amazonaws.com", "ListOpenIDConnectProviders"),
    ("iam.amazonaws.com", "ListServerCertificates"),
    ("iam.amazonaws.com", "ListVirtualMFADevices"),
    ("ec2.amazonaws.com", "DescribeRegions"),
    ("ec2.amazonaws.com", "DescribeVolumes"),
    ("ec2.amazonaws.com", "DescribeImages"),
    ("ec2.amazonaws.com", "DescribeSubnets"),
    ("ec2.amazonaws.com", "DescribeNetworkInterfaces"),
    ("ec2.amazonaws.com", "DescribeAddresses"),
    ("ec2.amazonaws.com", "DescribeRouteTables"),
    ("ec2.amazonaws.com", "DescribeLaunchTemplates"),
    ("ec2.amazonaws.com", "GetPasswordData"),
    ("s3.amazonaws.com", "GetBucketLocation"),
    ("s3.amazonaws.com", "GetBucketVersioning"),
    ("s3.amazonaws.com", "GetBucketLogging"),
    ("s3.amazonaws.com", "ListObjects"),
    ("lambda.amazonaws.com", "GetAccountSettings20160819"),
    ("lambda.amazonaws.com", "ListLayers20181031"),
    ("rds.amazonaws.com", "DescribeDBClusters"),
    ("elasticfilesystem.amazonaws.com", "DescribeFileSystems"),
    ("es.amazonaws.com", "ListDomainNames"),
    ("elasticache.amazonaws.com", "DescribeCacheClusters"),
    ("kinesis.amazonaws.com", "ListStreams"),
    ("firehose.amazonaws.com", "ListDeliveryStreams"),
    ("states.amazonaws.com", "ListStateMachines"),
    ("codecommit.amazonaws.com", "ListRepositories"),
    ("codebuild.amazonaws.com", "ListProjects"),
    ("codepipeline.amazonaws.com", "ListPipelines"),
    ("acm.amazonaws.com", "ListCertificates"),
    ("cloudfront.amazonaws.com", "ListDistributions"),
    ("support.amazonaws.com", "DescribeTrustedAdvisorChecks"),
    ("ce.amazonaws.com", "GetCostAndUsage"),
    ("budgets.amazonaws.com", "DescribeBudgets"),
    ("ds.amazonaws.com", "DescribeDirectories"),
    ("workspaces.amazonaws.com", "DescribeWorkspaces"),
    ("mq.amazonaws.com", "ListBrokers"),
    ("batch.amazonaws.com", "DescribeComputeEnvironments"),
    ("elasticmapreduce.amazonaws.com", "ListClusters"),
    ("inspector2.amazonaws.com", "ListFindings"),
    ("macie2.amazonaws.com", "GetMacieSession"),
    ("access-analyzer.amazonaws.com", "ListAnalyzers"),
    ("transfer.amazonaws.com", "ListServers"),
    ("kafka.amazonaws.com", "ListClusters"),
)
SPAN = 3600
PERSISTENCE = {
    "CreateUser",
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "AttachUserPolicy",
    "AttachRolePolicy",
    "AttachGroupPolicy",
    "PutUserPolicy",
    "PutRolePolicy",
    "PutGroupPolicy",
    "AddUserToGroup",
    "CreateRole",
    "UpdateAssumeRolePolicy",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "DeactivateMFADevice",
    "DeleteVirtualMFADevice",
}


def table_columns() -> dict[str, list[str]]:
    """Each data source's columns from its SPL's last `| table ...` (the view is the truth)."""
    view = ROOT / "default" / "data" / "ui" / "views" / "iam_error_spike_investigation.xml"
    definition = json.loads(ET.parse(view).getroot().findtext("definition"))
    columns = {}
    for ds_id, ds in definition["dataSources"].items():
        query = ds["options"]["query"]
        while re.search(r"\[[^\[\]]*\]", query):  # drop subsearches
            query = re.sub(r"\[[^\[\]]*\]", "", query)
        tables = re.findall(r"\|\s*table ([^|]+)", query)
        if tables:
            columns[ds_id] = tables[-1].split()
    return columns


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def ctime(t: float) -> str:
    return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(t))


def when(record: dict[str, Any]) -> int:
    return generator.parse_time(record["eventTime"])


def burst_key(account: str) -> str:
    return "AKIASAMPLE" + account[:10]


def discovery_burst(account: str, burst: int, seed: int) -> list[dict[str, Any]]:
    """The burst: `BURST_USER`'s new key sweeps ~100 APIs, ~500 denials in ~9 minutes, 4 IPs."""
    rng = random.Random(seed)
    arn = f"arn:aws:iam::{account}:user/{BURST_USER}"
    identity = {
        "type": "IAMUser",
        "principalId": "AIDASAMPLE" + account[:10],
        "arn": arn,
        "accountId": account,
        "accessKeyId": burst_key(account),
        "userName": BURST_USER,
    }
    apis = sorted(set(generator.API_CATALOG) | set(SWEEP))
    rng.shuffle(apis)
    apis = apis[:100]
    calls = [(api, True) for api in apis] + [(rng.choice(apis), True) for _ in range(400)]
    calls += [(("sts.amazonaws.com", "GetCallerIdentity"), False)] * 3 + [
        (("s3.amazonaws.com", "ListBuckets"), False)
    ]
    rng.shuffle(calls)
    calls.insert(0, (("sts.amazonaws.com", "GetCallerIdentity"), False))
    agents = {ip: rng.choice(generator.ATTACKER_AGENTS) for ip in BURST_IPS}
    offsets = sorted(rng.uniform(0, 540) for _ in calls)
    out = []
    for offset, ((source, name), denied) in zip(offsets, calls):
        ip = rng.choices(BURST_IPS, weights=(5, 3, 2, 1))[0]
        params: dict[str, Any] | None = None
        resource = None
        if source == "s3.amazonaws.com" and name != "ListBuckets":
            params = {"bucketName": BURST_BUCKET}
            resource = f"arn:aws:s3:::{BURST_BUCKET}"
        elif source == "iam.amazonaws.com" and name in (
            "GetUser",
            "ListAccessKeys",
            "ListAttachedUserPolicies",
        ):
            params = {"userName": "admin"}
            resource = f"arn:aws:iam::{account}:user/admin"
        record: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": iso(burst + offset),
            "eventSource": source,
            "eventName": name,
            "awsRegion": "us-east-1" if source in generator.GLOBAL_SOURCES else rng.choice(generator.REGIONS),
            "sourceIPAddress": ip,
            "userAgent": agents[ip],
            "requestParameters": params,
            "responseElements": None,
            "requestID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "eventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "readOnly": True,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
            "sample_note": "synthetic discovery burst",
        }
        if denied and source == "ec2.amazonaws.com":
            record["errorCode"] = "Client.UnauthorizedOperation"
            encoded = uuid.UUID(int=rng.getrandbits(128)).hex
            record["errorMessage"] = generator.EC2_AUTHZ_MESSAGE.format(enc=encoded)
        elif denied:
            action = f"{source.split('.')[0]}:{name}"
            on = f" on resource: {resource}" if resource else ""
            record["errorCode"] = "AccessDenied"
            record["errorMessage"] = (
                f"User: {arn} is not authorized to perform: {action}{on} because no identity-based "
                f"policy allows the {action} action"
            )
        out.append(record)
    return out


def synthetic(account: str, burst: int) -> list[dict[str, Any]]:
    """Root creates `BURST_USER`, its key and a policy attachment before the burst; an Insight."""
    root = {
        "type": "Root",
        "arn": f"arn:aws:iam::{account}:root",
        "accountId": account,
        "principalId": account,
        "accessKeyId": "ASIA" + account + "ROOTSAMPLE",
        "sessionContext": {"attributes": {"mfaAuthenticated": "false"}},
    }
    out = []
    for n, (name, params, response) in enumerate(
        [
            ("CreateUser", {"userName": BURST_USER}, None),
            (
                "AttachUserPolicy",
                {"userName": BURST_USER, "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
                None,
            ),
            (
                "CreateAccessKey",
                {"userName": BURST_USER},
                {"accessKey": {"accessKeyId": burst_key(account), "userName": BURST_USER}},
            ),
        ]
    ):
        out.append(
            {
                "eventTime": iso(burst - 5400 + 60 * n),
                "eventSource": "iam.amazonaws.com",
                "eventName": name,
                "awsRegion": "us-east-1",
                "sourceIPAddress": BURST_IPS[2],
                "userAgent": "AWS Internal",
                "userIdentity": root,
                "requestParameters": params,
                "responseElements": response,
                "recipientAccountId": account,
                "eventType": "AwsApiCall",
                "eventCategory": "Management",
                "sample_note": "synthetic: root creates the burst's user",
            }
        )
    out.append(
        {
            "eventTime": iso(burst + 600),
            "eventSource": "iam.amazonaws.com",
            "eventName": "ListAccountAliases",
            "eventType": "AwsCloudTrailInsight",
            "eventCategory": "Insight",
            "recipientAccountId": account,
            "awsRegion": "us-east-1",
            "sample_note": "synthetic Insight",
            "insightDetails": {
                "state": "Start",
                "eventSource": "iam.amazonaws.com",
                "eventName": "ListAccountAliases",
                "insightType": "ApiErrorRateInsight",
                "errorCode": "AccessDenied",
                "insightContext": {
                    "statistics": {"baseline": {"average": 0.0021}, "insight": {"average": 4.7}}
                },
            },
        }
    )
    return out


def principal_of(r: dict[str, Any]) -> str:
    """The principal `iamspike phase=fold` gives the record (macro iam_error_spike_entity)."""
    ui = r.get("userIdentity") or {}
    issuer = ((ui.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn") or ""
    return principals.fold_principal(
        ui.get("type") or "",
        ui.get("arn") or "",
        issuer,
        ui.get("invokedBy") or "",
        ui.get("accountId") or "",
        ui.get("principalId") or "",
    )


def table(rows: list[dict[str, Any]], fields: list[str]) -> dict[str, Any]:
    def cell(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return "\n".join(str(v) for v in value)
        if isinstance(value, float):
            return round(value, 2)
        return "" if value is None else value

    return {"fields": fields, "columns": [[cell(r.get(f)) for r in rows] for f in fields]}


def values(items) -> list[str]:
    return sorted({str(i) for i in items if i not in (None, "")})


def stats_by(records, key_of, **values_of) -> list[tuple[Any, dict[str, Any]]]:
    """`eval failed=... | stats count AS calls sum(failed) AS failures dc(eventName) AS apis
    min(_time) AS first_seen max(_time) AS last_seen values(...) ... by <key>`."""
    groups: dict[Any, dict[str, Any]] = {}
    for r in records:
        g = groups.setdefault(
            key_of(r), {"calls": 0, "failures": 0, "apis": set(), "t": [], "v": defaultdict(set)}
        )
        g["calls"] += 1
        g["failures"] += 1 if r.get("errorCode") else 0
        g["apis"].add(r["eventName"])
        g["t"].append(when(r))
        for name, value_of in values_of.items():
            g["v"][name].add(value_of(r))
    return [
        (
            key,
            {
                "calls": g["calls"],
                "failures": g["failures"],
                "apis": len(g["apis"]),
                "first_seen": ctime(min(g["t"])),
                "last_seen": ctime(max(g["t"])),
                **{name: values(g["v"][name]) for name in values_of},
            },
        )
        for key, g in groups.items()
    ]


def build(seed: int) -> tuple[dict[str, Any], dict[str, str]]:
    org = generator.generate(seed, days=14, accounts=3, scenarios_per_kind=1)
    account = org.accounts[1]  # its last 3 days hold no generated scenario
    burst = org.end - 6 * 3600 + 1380  # 18:23 on the last day
    records = org.records + discovery_burst(account, burst, seed) + synthetic(account, burst)
    records.sort(key=when)
    principal = f"arn:aws:iam::{account}:user/{BURST_USER}"
    in_account = [r for r in records if r.get("recipientAccountId") == account]
    entity = [r for r in in_account if principal_of(r) == principal]
    failed = [r for r in records if r.get("errorCode") or r.get("eventName") == "ConsoleLogin"]
    options = engine.parse_options(["span=1h", "min_failures=5"])
    spikes = engine.run(failed, options)
    every = engine.run(
        [r for r in failed if r.get("recipientAccountId") == account],
        engine.parse_options(["span=1h", "min_failures=5", "show=all"]),
    )
    mine = [r for r in every if r["entity_type"] == "principal" and r["principal"] == principal]
    samples: dict[str, Any] = {}

    # ds_series: failures and expected summed, margins (upper - expected) in quadrature.
    series = defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in every:
        if r["entity_type"] == "account":
            s = series[r["_time"]]
            s[0] += r["failures"]
            s[1] += r["expected"]
            s[2] += (r["upper"] - r["expected"]) ** 2
    for r in mine:  # the selected principal's own rows replace the account's
        series[r["_time"]] = [r["failures"], r["expected"], (r["upper"] - r["expected"]) ** 2]
    series = {t: [f, e, e + m**0.5] for t, (f, e, m) in series.items()}
    series = {t: v for t, v in series.items() if t >= org.end - 3 * 86400}  # the last 3 days
    times = sorted(series)
    samples["ds_series"] = {
        "fields": ["_time", "failures", "expected", "upper"],
        "columns": [[iso(t) for t in times]] + [[round(series[t][i], 2) for t in times] for i in range(3)],
    }
    columns = table_columns()
    rows = []
    for r in sorted(spikes, key=lambda r: -r["score"]):
        rows.append(
            {
                **r,
                "time": time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["_time"])),
                "principal": r["principal"] or "*",
            }
        )
    samples["ds_spikes"] = table(rows, columns["ds_spikes"])
    history = [r for r in rows if r["principal"] == principal]
    samples["ds_history"] = table(history, columns["ds_history"])

    rows = [
        {"eventSource": k[0], "eventName": k[1], **g}
        for k, g in stats_by(
            entity, lambda r: (r["eventSource"], r["eventName"]), day=lambda r: r["eventTime"][:10]
        )
    ]
    for row in rows:
        row["active_days"] = len(row.pop("day"))
    rows.sort(key=lambda row: -row["calls"])
    samples["ds_usual_apis"] = table(
        rows[:25], ["eventSource", "eventName", "calls", "failures", "active_days"]
    )

    rows = []
    for r in sorted((r for r in entity if r.get("errorCode")), key=when, reverse=True)[:500]:
        denied = re.search(r"on resource: (\S+)", r.get("errorMessage") or "")
        params = r.get("requestParameters") or {}
        rows.append(
            {
                "_time": r["eventTime"],
                "principal": principal,
                "userIdentity.arn": r["userIdentity"].get("arn"),
                "eventSource": r["eventSource"],
                "eventName": r["eventName"],
                "errorCode": r["errorCode"],
                "target": denied.group(1) if denied else params.get("bucketName") or params.get("userName"),
                "request_parameters": json.dumps(params) if params else "",
                "errorMessage": r.get("errorMessage"),
                "sourceIPAddress": r["sourceIPAddress"],
                "awsRegion": r["awsRegion"],
            }
        )
    samples["ds_failed_calls"] = table(rows, columns["ds_failed_calls"])

    def key_kind(r: dict[str, Any]) -> tuple[str, str]:
        key = r["userIdentity"].get("accessKeyId") or "(none)"
        kind = {"AKIA": "long-term (AKIA)", "ASIA": "temporary (ASIA)"}.get(key[:4], "none")
        return key, kind

    def context(r: dict[str, Any]) -> dict[str, Any]:
        return r["userIdentity"].get("sessionContext") or {}

    rows = [
        {"key": k[0], "key_kind": k[1], **g}
        for k, g in stats_by(
            entity,
            key_kind,
            identity_type=lambda r: r["userIdentity"].get("type"),
            arn=lambda r: r["userIdentity"].get("arn"),
            session_issuer=lambda r: (context(r).get("sessionIssuer") or {}).get("arn"),
            mfa=lambda r: (context(r).get("attributes") or {}).get("mfaAuthenticated") or "n/a",
        )
    ]
    rows.sort(key=lambda row: -row["calls"])
    samples["ds_identity"] = table(
        rows,
        [
            "key",
            "key_kind",
            "calls",
            "failures",
            "first_seen",
            "last_seen",
            "identity_type",
            "arn",
            "session_issuer",
            "mfa",
        ],
    )

    private = sorted(
        {r["sourceIPAddress"] for r in records if r.get("sourceIPAddress", "").startswith("10.")}
    )
    inventory = {}
    for n, ip in enumerate(private):
        issuer = next(principal_of(r) for r in records if r.get("sourceIPAddress") == ip)
        inventory[ip] = {
            "instance_id": f"i-0sample{n:09d}",
            "ec2_account": issuer.split(":")[4],
            "ec2_region": "eu-central-1",
            "instance_role": issuer.rsplit("/", 1)[-1],
            "instance_name": "sample",
            "ec2_last_seen": ctime(org.end - 3600),
        }
    ips = stats_by(entity, lambda r: r["sourceIPAddress"], user_agents=lambda r: r["userAgent"])
    rows = [{"sourceIPAddress": ip, **g, **inventory.get(ip, {})} for ip, g in ips]
    rows.sort(key=lambda row: -row["failures"])
    samples["ds_source_ips"] = table(
        rows,
        [
            "sourceIPAddress",
            "calls",
            "failures",
            "apis",
            "user_agents",
            "City",
            "Country",
            "Region",
            "instance_id",
            "ec2_account",
            "ec2_region",
            "instance_role",
            "instance_name",
            "ec2_last_seen",
        ],
    )

    risks = [r for r in spikes if r["_time"] >= org.end - 48 * 3600 and r["account"] == account]
    rows = [
        {
            "_time": iso(r["_time"] + 5400),
            "index": "risk",
            "alert": f"IAM Error Spike - {r['entity_type'].title()} Alert",
            "risk_object": r["principal"] or r["account"],
            "risk_object_type": "user" if r["principal"] else "other",
            "risk_score": round(r["score"]),
            "threat_object": r["top_source_ips"].split(" (")[0],
        }
        for r in risks
    ]
    samples["ds_other_alerts"] = table(rows, columns["ds_other_alerts"])

    rows = []
    for r in sorted((r for r in in_account if r.get("eventName") in PERSISTENCE), key=when, reverse=True):
        params = r.get("requestParameters") or {}
        rows.append(
            {
                "_time": r["eventTime"],
                "account": account,
                "principal": principal_of(r),
                "eventName": r["eventName"],
                "outcome": "failed: " + r["errorCode"] if r.get("errorCode") else "succeeded",
                "target": params.get("userName") or params.get("roleName") or params.get("groupName"),
                "policy": params.get("policyArn") or params.get("policyName"),
                "new_key": ((r.get("responseElements") or {}).get("accessKey") or {}).get("accessKeyId"),
                "sourceIPAddress": r["sourceIPAddress"],
            }
        )
    samples["ds_persistence"] = table(rows, columns["ds_persistence"])

    entity_ips = {ip for ip, _ in ips if not ip.endswith(".amazonaws.com") and ip != "AWS Internal"}
    others = [r for r in records if r.get("sourceIPAddress") in entity_ips and principal_of(r) != principal]
    rows = [
        {"account": k[0], "principal": k[1], **g}
        for k, g in stats_by(
            others,
            lambda r: (r["recipientAccountId"], principal_of(r)),
            source_ips=lambda r: r["sourceIPAddress"],
        )
    ]
    rows.sort(key=lambda row: -row["failures"])
    samples["ds_same_ips"] = table(
        rows,
        [
            "account",
            "principal",
            "calls",
            "failures",
            "apis",
            "source_ips",
            "first_seen",
            "last_seen",
        ],
    )

    rows = []
    for r in records:
        if r.get("eventCategory") == "Insight" and r["recipientAccountId"] == account:
            d = r["insightDetails"]
            rows.append(
                {
                    "_time": r["eventTime"],
                    "recipientAccountId": account,
                    "api": f"{d['eventSource']} {d['eventName']}",
                    "error_code": d["errorCode"],
                    "state": d["state"],
                    "baseline": d["insightContext"]["statistics"]["baseline"]["average"],
                    "observed": d["insightContext"]["statistics"]["insight"]["average"],
                }
            )
    samples["ds_insights"] = table(rows, columns["ds_insights"])
    counts = Counter(r["entity_type"] for r in spikes)
    selected = {"account": account, "principal": principal, "spikes": dict(counts), "records": len(records)}
    return samples, selected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "samples.json")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    samples, selected = build(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"__tokens__": selected, **samples}))
    print(json.dumps(selected))
    for ds_id, sample in samples.items():
        print(f"{ds_id}: {len(sample['columns'][0]) if sample['columns'] else 0} rows")


if __name__ == "__main__":
    main()
