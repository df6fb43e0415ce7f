"""The methods Splunk users have today, re-implemented on the same CloudTrail records as `iamspike`.

Each reference returns `Candidate`s: one per (entity, hourly bin) it could alert on, with a
``score`` where higher is more anomalous; the method alerts when ``score >= threshold`` and
``DEFAULTS[method]`` is its shipped threshold. Keeping the score lets the quality bench tune every
reference to a given false-alert budget. As implemented:

``escu_static`` -- ESCU "AWS IAM AccessDenied Discovery Events"::

    `cloudtrail` (errorCode = "AccessDenied") user_type=IAMUser (userAgent!=*.amazonaws.com)
    | bucket _time span=1h | stats count as failures ... by src_ip, userIdentity.arn, _time
    | where failures >= 5 and methods >= 1 and sources >= 1

  Only the literal code AccessDenied (not Client.UnauthorizedOperation, AccessDeniedException...),
  only IAM users, grouped per source IP too. Score = failures of the (src_ip, arn, hour) row; the
  bench keeps the largest row per (arn, hour). Default threshold 5.

``escu_spike`` -- ESCU's deprecated spike searches ("Baseline of API Calls per User ARN" +
"Detect Spike in AWS API Activity"), applied to authorization-failure counts: a lookup holds per
entity numDataPoints, avg and stdev of its non-empty hourly counts (``stats count by _time, arn``
never yields zeros). The baseline search seeds it from the first 7 days (or the first half of a
shorter data set); then every hour the detection search updates each entity that has events,
``avg += (x - avg)/720``, ``stdev = sqrt((stdev^2*719 + (x - newavg)(x - avg))/720)``,
``numDataPoints += 1``, and flags ``x > avg + 3*stdev AND numDataPoints > 15`` against the updated
values. Score = (x - avg)/stdev (+inf when stdev is 0 and x > avg: the search then flags any count
above the average). Entities missing from the seed start at their first hour with one data point
(the real search never adds them; this is a favour). Per principal (assumed-role sessions folded
to the role, like `iamspike`; the real search keys raw ARNs) and per account. Default: > 3.

``mltk`` -- MLTK DensityFunction as ESCU's "Abnormally High Number Of Cloud ... API Calls"
searches use it: ``tstats count ... by _time span=1h user`` (non-empty hours),
``HourOfDay=floor(%H/4)*4``, ``isWeekend`` (Saturday/Sunday), ``fit DensityFunction count by
"<entity>,HourOfDay,isWeekend" dist=norm threshold=0.005``, fitted on the whole period and applied
to it (the baseline search runs over the same 30 days). A normal fit per group (mean, population
standard deviation); the outlier area 0.005 is split over both tails, so a high outlier is
``z > 2.807``; only high outliers count as alerts. At most 1,024 groups per model (groups in
sorted entity order; beyond the cap a group is not modelled, i.e. never alerts: about 85
principals with 12 groups each). Groups with fewer than 2 points or zero spread are not modelled.
One model per principal, one per account. Score = z.

``panther`` -- Panther's ``AWS.IAMUser.ReconAccessDenied``: errorCode == "AccessDenied", an IAM
user, userAgent not ``aws-internal/3*`` (console), sourceIPAddress an IP address, and a recon API
(dynamodb List/Describe/Get, ec2 Describe/Get, iam List/Get, s3 List/Get, rds Describe/List);
dedup key the user ARN, threshold 15 events within the 10-minute dedup period (a period opens at
the first matching event). Score = events in the period; bin = the hour the period opened; the
largest period per (arn, hour) is kept. Default threshold 15.

``static_all`` -- a control, not a search anyone ships: ``>= 5`` authorization failures (the whole
family, not only the literal AccessDenied) of one principal (every identity type, sessions
folded) in an hour. Tuned to a budget it shows the best any static per-principal threshold does.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

HOUR = 3600

# The authorization-failure family of issue 3 (what `iamspike` counts by default).
AUTHZ_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "Client.UnauthorizedOperation",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "UnauthorizedException",
        "OperationNotPermitted",
        "OperationNotPermittedException",
        "VpceAccessDenied",
        "AuthFailure",
        "Client.AuthFailure",
        "AuthorizationError",
        "Forbidden",
    }
)
PANTHER_RECON = {
    "dynamodb": ("List", "Describe", "Get"),
    "ec2": ("Describe", "Get"),
    "iam": ("List", "Get"),
    "s3": ("List", "Get"),
    "rds": ("Describe", "List"),
}
METHODS = ("escu_static", "escu_spike", "mltk", "panther", "static_all")
TITLES = {
    "escu_static": "ESCU AWS IAM AccessDenied Discovery Events (static >= 5 per hour)",
    "escu_spike": "ESCU's deprecated spike searches (avg + 3 sigma, 1/720 update, > 15 points)",
    "mltk": "MLTK DensityFunction (normal, threshold 0.005, 1,024 groups)",
    "panther": "Panther AWS.IAMUser.ReconAccessDenied (15 per 10 minutes)",
    "static_all": "control, not a shipped search: static >= 5 per hour, every principal, every authz code",
}
MLTK_Z = statistics.NormalDist().inv_cdf(1 - 0.005 / 2)
DEFAULTS = {
    "escu_static": 5.0,
    "escu_spike": math.nextafter(3.0, math.inf),
    "mltk": MLTK_Z,
    "panther": 15.0,
    "static_all": 5.0,
}


@dataclass(frozen=True)
class Event:
    """One failed call: the fields the references read."""

    time: float
    account: str
    arn: str
    principal: str
    identity_type: str
    error_code: str
    event_source: str
    event_name: str
    user_agent: str
    source_ip: str

    @property
    def authz(self) -> bool:
        return self.error_code in AUTHZ_CODES


@dataclass(frozen=True)
class Candidate:
    """An (entity, bin) a reference could alert on; it alerts when score >= threshold."""

    method: str
    entity_type: str  # "principal" | "account"
    account: str
    principal: str  # "" for accounts
    time: int  # bin start, epoch seconds
    score: float


def _get(record: Mapping[str, Any], *path: str) -> str:
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping):
            return ""
        value = value.get(key)
    return "" if value is None else str(value)


def fold_principal(record: Mapping[str, Any]) -> str:
    """The entity a call belongs to: IAM user / root ARN, role ARN for sessions, service host."""
    identity = record.get("userIdentity") or {}
    itype = _get(identity, "type")
    arn = _get(identity, "arn")
    if itype == "AWSService" or (not arn and _get(identity, "invokedBy")):
        return _get(identity, "invokedBy") or "aws-service"
    issuer = _get(identity, "sessionContext", "sessionIssuer", "arn")
    if ":assumed-role/" in arn:
        account = arn.split(":")[4]
        role = arn.partition(":assumed-role/")[2].partition("/")[0]
        return f"arn:aws:iam::{account}:role/{role}"
    if not arn and issuer:
        arn = issuer
    if ":role/" in arn:
        return f"arn:aws:iam::{arn.split(':')[4]}:role/{arn.rsplit('/', 1)[-1]}"
    if not arn and itype == "Root":
        return f"arn:aws:iam::{_get(identity, 'accountId')}:root"
    return arn or _get(identity, "principalId") or "unknown"


def parse_event_time(text: str) -> float:
    text = text.replace("Z", "+00:00")
    return _dt.datetime.fromisoformat(text).timestamp()


def events_from_records(records: Iterable[Mapping[str, Any]]) -> list[Event]:
    """The failed calls (any errorCode, plus failed console logins) of CloudTrail record dicts."""
    out = []
    for r in records:
        code = _get(r, "errorCode")
        console_failed = _get(r, "responseElements", "ConsoleLogin") == "Failure"
        if not code and _get(r, "eventName") == "ConsoleLogin" and console_failed:
            code = "Forbidden"
        if not code or not r.get("eventTime"):
            continue
        out.append(
            Event(
                time=parse_event_time(str(r["eventTime"])),
                account=_get(r, "recipientAccountId") or _get(r, "userIdentity", "accountId"),
                arn=_get(r, "userIdentity", "arn"),
                principal=fold_principal(r),
                identity_type=_get(r, "userIdentity", "type"),
                error_code=code,
                event_source=_get(r, "eventSource"),
                event_name=_get(r, "eventName"),
                user_agent=_get(r, "userAgent"),
                source_ip=_get(r, "sourceIPAddress"),
            )
        )
    return out


def hour_of(t: float) -> int:
    return int(t // HOUR) * HOUR


def hourly_counts(events: Iterable[Event]) -> dict[tuple[str, str, str], dict[int, int]]:
    """Authorization-failure counts of non-empty hours: {(entity_type, account, principal): {hour: n}}."""
    counts: dict[tuple[str, str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for e in events:
        if not e.authz:
            continue
        h = hour_of(e.time)
        counts[("principal", e.account, e.principal)][h] += 1
        counts[("account", e.account, "")][h] += 1
    return {k: dict(v) for k, v in counts.items()}


def escu_static(events: Iterable[Event]) -> list[Candidate]:
    rows: dict[tuple[str, str, str, int], int] = defaultdict(int)
    for e in events:
        if (
            e.error_code != "AccessDenied"
            or e.identity_type != "IAMUser"
            or e.user_agent.endswith(".amazonaws.com")
        ):
            continue
        rows[(e.source_ip, e.account, e.arn, hour_of(e.time))] += 1
    best: dict[tuple[str, str, int], int] = {}
    for (_ip, account, arn, h), n in rows.items():
        key = (account, arn, h)
        best[key] = max(best.get(key, 0), n)
    return [Candidate("escu_static", "principal", a, p, h, float(n)) for (a, p, h), n in best.items()]


@dataclass
class _Running:
    n: int
    avg: float
    stdev: float


def escu_spike(
    counts: Mapping[tuple[str, str, str], Mapping[int, int]],
    seed_seconds: int | None = None,
    deviations: float = 3.0,
    min_points: int = 15,
) -> list[Candidate]:
    """See the module doc. ``deviations`` only matters through DEFAULTS; scores are (x-avg)/stdev."""
    del deviations  # the threshold is applied by the caller on the score
    hours = sorted({h for series in counts.values() for h in series})
    if not hours:
        return []
    first, last = hours[0], hours[-1]
    if seed_seconds is None:
        span = last - first + HOUR
        seed_seconds = 7 * 86400 if span >= 14 * 86400 else span // 2
    seed_end = first + seed_seconds
    out = []
    for (etype, account, principal), series in counts.items():
        state: _Running | None = None
        seed = [n for h, n in series.items() if h < seed_end]
        if seed:
            state = _Running(
                len(seed), statistics.fmean(seed), statistics.stdev(seed) if len(seed) > 1 else 0.0
            )
        for h in sorted(h for h in series if h >= seed_end):
            x = float(series[h])
            if state is None:
                state = _Running(1, x, 0.0)
                continue
            new_avg = state.avg + (x - state.avg) / 720.0
            var = (state.stdev**2 * 719 + (x - new_avg) * (x - state.avg)) / 720.0
            state = _Running(state.n + 1, new_avg, math.sqrt(max(var, 0.0)))
            if state.n <= min_points:
                continue
            if state.stdev > 0:
                score = (x - state.avg) / state.stdev
            else:
                score = math.inf if x > state.avg else -math.inf
            out.append(Candidate("escu_spike", etype, account, principal, h, score))
    return out


def _mltk_group(h: int) -> tuple[int, int]:
    tm = time.gmtime(h)
    return (tm.tm_hour // 4) * 4, 1 if tm.tm_wday >= 5 else 0


def mltk(
    counts: Mapping[tuple[str, str, str], Mapping[int, int]],
    max_groups: int = 1024,
) -> list[Candidate]:
    out = []
    for etype in ("principal", "account"):
        groups: dict[tuple[str, str, int, int], list[tuple[int, int]]] = defaultdict(list)
        for (et, account, principal), series in counts.items():
            if et != etype:
                continue
            for h, n in series.items():
                hod, weekend = _mltk_group(h)
                groups[(account, principal, hod, weekend)].append((h, n))
        for key in sorted(groups)[:max_groups]:
            points = groups[key]
            values = [float(n) for _h, n in points]
            if len(values) < 2:
                continue
            mean = statistics.fmean(values)
            sd = statistics.pstdev(values, mean)
            if sd <= 0:
                continue
            for h, n in points:
                out.append(Candidate("mltk", etype, key[0], key[1], h, (n - mean) / sd))
    return out


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _panther_match(e: Event) -> bool:
    if e.error_code != "AccessDenied" or e.identity_type != "IAMUser":
        return False
    if e.user_agent.startswith("aws-internal/3") or not _is_ip(e.source_ip):
        return False
    for service, prefixes in PANTHER_RECON.items():
        if e.event_source.startswith(service) and e.event_name.startswith(prefixes):
            return True
    return False


def panther(events: Iterable[Event], period: int = 600) -> list[Candidate]:
    by_key: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if _panther_match(e):
            by_key[(e.account, e.arn)].append(e.time)
    best: dict[tuple[str, str, int], int] = {}
    for (account, arn), times in by_key.items():
        times.sort()
        opened, n = None, 0
        for t in [*times, math.inf]:
            if opened is not None and t < opened + period:
                n += 1
                continue
            if opened is not None:
                key = (account, arn, hour_of(opened))
                best[key] = max(best.get(key, 0), n)
            opened, n = t, 1
    return [Candidate("panther", "principal", a, p, h, float(n)) for (a, p, h), n in best.items()]


def static_all(counts: Mapping[tuple[str, str, str], Mapping[int, int]]) -> list[Candidate]:
    return [
        Candidate("static_all", "principal", account, principal, h, float(n))
        for (etype, account, principal), series in counts.items()
        if etype == "principal"
        for h, n in series.items()
    ]


def run_all(events: list[Event]) -> dict[str, list[Candidate]]:
    """Every reference's candidates over one data set."""
    counts = hourly_counts(events)
    return {
        "escu_static": escu_static(events),
        "escu_spike": escu_spike(counts),
        "mltk": mltk(counts),
        "panther": panther(events),
        "static_all": static_all(counts),
    }


def alerts(candidates: Iterable[Candidate], threshold: float) -> list[Candidate]:
    return [c for c in candidates if c.score >= threshold]
