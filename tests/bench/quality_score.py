"""Quality bench, scoring: alerts matched to the labels of one organisation, pooled over many.

Used by tests/bench/quality.py; its report quotes the rules below (``quality_report.render``).

- an attack is *detected* by a method when the method alerts on the attack's entity (same
  entity type; principals compared with assumed-role sessions folded to the role) in one of the
  attack's hourly bins. Principal attacks need a principal alert, account attacks an account alert.
  *Delay*: from the attack's start to the end of the first flagged bin (1.0 h = its first hour).
- an alert is *explained* (neither detection nor false) when it falls in an attack's window on
  the attack's account (account alerts) or on a principal that carries the attack's events.
- any other alert is a *false alert*, counted by the benign kind it hits: a benign trap (its
  principal, or its account, in the trap's window), else the kind of principal (background
  traffic of people, automation, ...) or the account. Rate: false alerts per 1,000
  principal-days (principals x days they exist, summed over organisations). Every flagged
  (entity, hour) counts once.
- *same budget*: each reference's threshold is lowered or raised to the loosest value whose false
  alerts do not exceed iamspike's (pooled over organisations), and its recall reported there; and
  the same at the target budget of 1 false alert per 1,000 principal-days.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench import references as R
from bench.generator import Label, Org

if TYPE_CHECKING:
    from bench.quality_run import OrgRun

ATTACK_KINDS = (
    "discovery_burst",
    "low_and_slow",
    "new_principal_burst",
    "account_spread",
    "relative_spike",
    "console_login_burst",
)
TRAP_KINDS = (
    "batch_hour",
    "log_delivery",
    "throttling_burst",
    "validation_burst",
    "dryrun_burst",
    "benign_new_principal",
    "person_burst",
    "bursty_day",
    "habitual_burst",
    "stuck_retry",
    "scanner_first",
    "scanner_onboard",
    "scanner_upgrade",
    "scanner_region",
    "scanner_run",
)
TARGET_RATE = 1.0  # false alerts per 1,000 principal-days


def entity_key(principal: str) -> str:
    """Compare principals across methods: roles (and their sessions) by account and role name."""
    if not principal:
        return ""
    if ":assumed-role/" in principal:
        account = principal.split(":")[4]
        role = principal.partition(":assumed-role/")[2].partition("/")[0]
        return f"role:{account}:{role}".lower()
    if ":role/" in principal:
        return f"role:{principal.split(':')[4]}:{principal.rsplit('/', 1)[-1]}".lower()
    return principal.strip().lower()


@dataclass
class Outcome:
    """How one method did on one data set."""

    detected: dict[str, bool] = field(default_factory=dict)  # attack label name -> detected
    delay: dict[str, float] = field(default_factory=dict)  # attack label name -> hours to its first alert
    false: int = 0
    trap_alerts: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # trap kind -> alerts
    traps_hit: set[str] = field(default_factory=set)  # trap label names with >= 1 alert
    false_kinds: Counter = field(default_factory=Counter)  # benign kind hit -> false alerts
    alerts: int = 0


class Judge:
    """Classifies alerts of one organisation against its labels."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.by_account: dict[str, list[Label]] = defaultdict(list)
        for label in org.labels:
            self.by_account[label.account].append(label)
        self.members = {label.name: {entity_key(m) for m in label.members} for label in org.labels}
        self.kinds = {entity_key(p.principal): p.kind for p in org.principals}

    def classify(self, c: R.Candidate) -> tuple[str, Label | None]:
        """('detect', attack) | ('explained', attack) | ('trap', trap) | ('false', None)."""
        key = entity_key(c.principal)
        explained = None
        trap = None
        for label in self.by_account.get(c.account, ()):
            if not label.covers(c.time):
                continue
            same = c.entity_type == label.entity_type and (
                label.entity_type == "account" or key == entity_key(label.principal)
            )
            if label.category == "attack":
                if same:
                    return "detect", label
                if (
                    c.entity_type == "account"
                    or key == entity_key(label.principal)
                    or key in self.members[label.name]
                ):
                    explained = label
            elif trap is None and (c.entity_type == "account" or key == entity_key(label.principal)):
                trap = label
        if explained is not None:
            return "explained", explained
        if trap is not None:
            return "trap", trap
        return "false", None

    def benign_kind(self, c: R.Candidate, label: Label | None) -> str:
        """What a false alert hit: a trap's kind, else the principal's kind (or the account)."""
        if label is not None:
            return label.kind
        if c.entity_type == "account":
            return "account (background)"
        kind = self.kinds.get(entity_key(c.principal), "other")
        return f"{'automation' if kind == 'noisy_role' else kind} (background)"

    def outcome(self, alerts: Iterable[R.Candidate], span: int = 3600) -> Outcome:
        out = Outcome(detected={label.name: False for label in self.org.attacks()})
        starts = {label.name: label.windows[0][0] for label in self.org.attacks()}
        for c in alerts:
            out.alerts += 1
            verdict, label = self.classify(c)
            if verdict == "detect" and label is not None:
                out.detected[label.name] = True
                delay = (c.time + span - starts[label.name]) / 3600.0
                out.delay[label.name] = min(out.delay.get(label.name, math.inf), delay)
            elif verdict in ("trap", "false"):
                out.false += 1
                out.false_kinds[self.benign_kind(c, label)] += 1
                if verdict == "trap" and label is not None:
                    out.trap_alerts[label.kind] += 1
                    out.traps_hit.add(label.name)
        return out


# ---- the same-budget tuning -------------------------------------------------------------------


@dataclass
class Tuned:
    threshold: float | None  # alert when score > threshold; None = budget unreachable
    false: int
    detected: dict[str, bool]


def tune(scored: Sequence[tuple[str, str, float]], attacks: Sequence[str], budget: int) -> Tuned:
    """Loosest threshold with at most ``budget`` false alerts.

    ``scored``: (verdict, attack name or "", score) for every candidate of every seed.
    """
    false_scores = sorted((s for v, _n, s in scored if v in ("false", "trap")), reverse=True)
    if len(false_scores) <= budget:
        threshold = -math.inf
    else:
        threshold = false_scores[budget]
        if threshold == math.inf:
            return Tuned(None, len(false_scores), {name: False for name in attacks})
    detected = {name: False for name in attacks}
    for verdict, name, score in scored:
        if verdict == "detect" and score > threshold:
            detected[name] = True
    return Tuned(threshold, sum(1 for s in false_scores if s > threshold), detected)


def at_threshold(scored: Sequence[tuple[str, str, float]], attacks: Sequence[str], threshold: float) -> Tuned:
    """Detections and false alerts when everything scoring ``>= threshold`` alerts."""
    detected = {name: False for name in attacks}
    false = 0
    for verdict, name, score in scored:
        if score < threshold:
            continue
        if verdict == "detect":
            detected[name] = True
        elif verdict in ("false", "trap"):
            false += 1
    return Tuned(threshold, false, detected)


SWEEP = (30.0, 40.0, 45.0, 50.0, 55.0, 60.0, 70.0, 80.0)


def scored_candidates(runs: Sequence[OrgRun], method: str) -> list[tuple[str, str, float]]:
    """(verdict, attack name or "", score) of every candidate of ``method`` (``curve``: iamspike show=all)."""
    scored = []
    for r in runs:
        cands = r.curve if method == "curve" else r.candidates[method]
        for c in cands:
            verdict, label = r.judge.classify(c)
            name = f"{label.name}@{r.key}" if verdict == "detect" and label else ""
            scored.append((verdict, name, c.score))
    return scored


@dataclass
class Pooled:
    """Outcomes of every method pooled over a set of organisations."""

    runs: list[OrgRun]
    methods: list[str]
    detected: dict[str, dict[str, bool]]
    delay: dict[str, dict[str, float]]
    false: dict[str, int]
    false_kinds: dict[str, Counter]
    principal_days: float

    @classmethod
    def of(cls, runs: Sequence[OrgRun], methods: Sequence[str]) -> Pooled:
        p = cls(list(runs), list(methods), {}, {}, {}, {}, sum(r.org.principal_days() for r in runs))
        for m in methods:
            p.detected[m], p.delay[m], p.false[m], p.false_kinds[m] = {}, {}, 0, Counter()
            for r in runs:
                o = r.outcomes[m]
                p.detected[m].update({f"{n}@{r.key}": v for n, v in o.detected.items()})
                p.delay[m].update({f"{n}@{r.key}": v for n, v in o.delay.items()})
                p.false[m] += o.false
                p.false_kinds[m].update(o.false_kinds)
        return p
