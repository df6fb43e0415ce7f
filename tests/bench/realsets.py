"""Real CloudTrail sets for the quality bench, read from ../shared/data/cloudtrail (never copied).

Each `RealSet` names its files and its checks: a positive (an entity that must alert in a window)
or a negative (an entity, or the whole set, that must stay quiet). Every method's alerts on a set
are judged by `judge`; anything not covered by a positive check counts as a false alert (the
sets hold no other labelled attack).
"""

from __future__ import annotations

import glob
import gzip
import json
import math
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import references as R

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "shared", "data", "cloudtrail")


@dataclass(frozen=True)
class Check:
    """``must`` alert (a positive) or must not (a negative) for entities matching ``principal``."""

    what: str
    entity_type: str  # "principal" | "account"
    match: str  # substring of the folded principal (or the account id for accounts); "" = any
    window: tuple[int, int] = (0, 2**62)
    must: bool = True

    def hit(self, c: R.Candidate) -> bool:
        if c.entity_type != self.entity_type or not self.window[0] <= c.time < self.window[1]:
            return False
        name = c.account if self.entity_type == "account" else c.principal
        return self.match.lower() in name.lower()


@dataclass(frozen=True)
class RealSet:
    name: str
    paths: tuple[str, ...]  # folders or files under DATA
    checks: tuple[Check, ...]
    note: str


SETS = (
    RealSet(
        "pwnedlabs_incident_3252",
        ("pwnedlabs_incident_3252",),
        (
            Check(
                "temp-user flagged (505 denials, 20:35-20:48)",
                "principal",
                ":user/temp-user",
                (1693080000, 1693083600),
            ),
            Check("account flagged", "account", "107513503799", (1693080000, 1693083600)),
        ),
        "an IAM user's discovery sweep",
    ),
    RealSet(
        "sans504_s3_ransomware_lab",
        ("sans504_s3_ransomware_lab",),
        (
            Check(
                "delivery.logs quiet (~125/h for 83 h)",
                "principal",
                "delivery.logs.amazonaws.com",
                must=False,
            ),
        ),
        "a service principal's steady denials",
    ),
    RealSet(
        "invictus_aws_dataset",
        ("invictus_aws_dataset",),
        (
            Check("get-password-data role flagged (29 in 3 s)", "principal", "ec2-get-password-data-role"),
            Check("get-usr-data role flagged (15 in 2 s)", "principal", "get-usr-data-role"),
        ),
        "Stratus Red Team detonations in one account",
    ),
    RealSet(
        "stratus ec2-get-password-data",
        ("stratus_red_team_detonation_logs/aws.credential-access.ec2-get-password-data.json",),
        (Check("role flagged (30 in 11 s)", "principal", "ec2-get-password-data-role"),),
        "one anonymised detonation file",
    ),
    RealSet(
        "stratus ec2-download-user-data",
        ("stratus_red_team_detonation_logs/aws.discovery.ec2-download-user-data.json",),
        (Check("role flagged (15 in 7 s)", "principal", "get-usr-data-role"),),
        "one anonymised detonation file",
    ),
    RealSet(
        "grycap_cloudtrail_tracker",
        ("grycap_cloudtrail_tracker_974349055189",),
        (),
        "students of a teaching account, 2014-2018: benign only (e.g. 18 UnauthorizedOperation in 7 s)",
    ),
)


def load(path: str) -> list[dict[str, Any]]:
    """Records of every CloudTrail file at ``path`` (a file or a folder; json / json.gz; no digests)."""
    files = (
        [path] if os.path.isfile(path) else sorted(glob.glob(os.path.join(path, "**", "*"), recursive=True))
    )
    records: list[dict[str, Any]] = []
    for full in files:
        name = os.path.basename(full)
        if "Digest" in name or not name.endswith((".json", ".json.gz")) or not os.path.isfile(full):
            continue
        opener = gzip.open if name.endswith(".gz") else open
        with opener(full, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
        records.extend(doc.get("Records") or [] if isinstance(doc, dict) else doc)
    return records


def with_history(
    rs: RealSet, records: list[dict[str, Any]], days: int = 10, seed: int = 1
) -> list[dict[str, Any]]:
    """``records`` after ``days`` of synthetic history of the set's own principals.

    Without history a set's first event starts the window, so every principal is "silent since
    the start": a new role cannot be told from a long-known one. The history gives each
    principal of the set that made a successful call, except those a positive check names (the
    attack's identities stay new; so do streams of failures only, like a service's denied log
    delivery), weekday office hours (08:00-18:00 UTC) with successful calls (Poisson 1 an hour)
    and authorization failures at its own rate in the set (failures per hour it was active, at
    most 10), each a copy of one of its own records with a new time and eventID.
    """
    rng = random.Random(seed)
    times = [R.parse_event_time(str(r["eventTime"])) for r in records if r.get("eventTime")]
    if not times:
        return records
    first = int(min(times)) // 3600 * 3600
    own: dict[str, list[dict[str, Any]]] = defaultdict(list)
    hours: dict[str, set[int]] = defaultdict(set)
    fails: dict[str, int] = defaultdict(int)
    for r in records:
        if not r.get("eventTime"):
            continue
        p = R.fold_principal(r)
        own[p].append(r)
        hours[p].add(int(R.parse_event_time(str(r["eventTime"]))) // 3600)
        fails[p] += int(str(r.get("errorCode") or "") in R.AUTHZ_CODES)
    positives = [c for c in rs.checks if c.must and c.entity_type == "principal"]
    history = []
    for p, recs in sorted(own.items()):
        if any(c.match.lower() in p.lower() for c in positives):
            continue
        ok = [r for r in recs if not r.get("errorCode")]
        if not ok:
            continue  # a stream of failures only (a service's denied delivery) stays new
        failed = [r for r in recs if str(r.get("errorCode") or "") in R.AUTHZ_CODES]
        rate = min(fails[p] / max(len(hours[p]), 1), 10.0)
        for h in range(first - days * 86400, first, 3600):
            tm = time.gmtime(h)
            if tm.tm_wday >= 5 or not 8 <= tm.tm_hour < 18:
                continue
            n_ok = _poisson(rng, 1.0)
            n_fail = _poisson(rng, rate) if failed else 0
            for template in [rng.choice(ok) for _ in range(n_ok)] + [
                rng.choice(failed) for _ in range(n_fail)
            ]:
                copy = dict(template)
                copy["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(h + rng.randrange(3600)))
                copy["eventID"] = f"history-{len(history)}"
                history.append(copy)
    return history + records


def _poisson(rng: random.Random, mean: float) -> int:
    limit, n, prod = math.exp(-mean), 0, rng.random()
    while prod > limit:
        n += 1
        prod *= rng.random()
    return n


def available() -> list[tuple[RealSet, list[dict[str, Any]]]]:
    out = []
    for rs in SETS:
        paths = [os.path.join(DATA, p) for p in rs.paths]
        if all(os.path.exists(p) for p in paths):
            out.append((rs, [r for p in paths for r in load(p)]))
    return out


@dataclass
class Verdict:
    checks: list[bool]  # per check: passed
    alerts: int
    false: int  # alerts no positive check explains
    false_names: list[str]


def judge(rs: RealSet, alerts: Sequence[R.Candidate]) -> Verdict:
    passed = []
    for check in rs.checks:
        hit = any(check.hit(c) for c in alerts)
        passed.append(hit if check.must else not hit)
    false = [c for c in alerts if not any(check.must and check.hit(c) for check in rs.checks)]
    names = sorted({f"{c.entity_type}:{(c.principal or c.account).rsplit('/', 1)[-1]}" for c in false})
    return Verdict(passed, len(alerts), len(false), names)


def positives(results: Iterable[tuple[RealSet, Verdict]]) -> tuple[int, int]:
    """(positive checks passed, positive checks) over (set, verdict) pairs."""
    hit = total = 0
    for rs, v in results:
        for check, ok in zip(rs.checks, v.checks):
            if check.must:
                total += 1
                hit += int(ok)
    return hit, total
