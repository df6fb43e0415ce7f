"""Quality bench, the runs: the engine and the references over one organisation and the real sets.

The engine runs with its default Options (by=both, span=1h) on the records (Input A), on the same
data as Input B (pre-counted rows, ``count_field=count``), with ``show=all`` (its recall across
score thresholds), as Splunk rows in 50,000-row chunks (which must give the same alerts), and ad
hoc: over the last 24 h alone, without saved state. Organisations and the references' candidates
are cached (``generated``).

Real sets (tests/bench/realsets.py), read from ../shared/data/cloudtrail (never copied), as a
separate table: the PwnedLabs temp-user burst must alert (principal and account), the SANS SEC504
steady log-delivery denial must not, the Stratus Red Team roles (Invictus and Stratus files)
should, grycap's students should not.
"""

from __future__ import annotations

import argparse
import bisect
import glob
import hashlib
import importlib
import os
import pickle
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import families as F
from bench import realsets
from bench import references as R
from bench.generator import DAY, Org, iso
from bench.quality_rows import CHUNK, INPUT_B_FIELDS, SPLUNK_FIELDS, input_b_rows, splunk_rows
from bench.quality_score import Judge, Outcome

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINE_METHODS = ("iamspike", "iamspike_b")  # Input A (raw events) and Input B (count_field=count)
METHODS = (*ENGINE_METHODS, *R.METHODS)
ADHOC_EVERY = 3  # ad hoc windows: the 24 h ending at 14:00 UTC of every third day


def iamspike_candidates(rows: Iterable[Mapping[str, Any]], min_failures: int = 0) -> list[R.Candidate]:
    """Alerts (show=spikes rows), or with show=all every bin that passes the min_failures floor."""
    return [
        R.Candidate(
            "iamspike",
            str(r["entity_type"]),
            str(r["account"]),
            str(r.get("principal") or ""),
            int(float(r["_time"])),
            float(r.get("score") or 0.0),
        )
        for r in rows
        if int(float(r.get("failures") or 0)) >= min_failures
    ]


def load_engine(path: str = "") -> tuple[Any, str]:
    """``iamspike.engine`` from bin/, or from ``path`` (a folder holding a prototype copy)."""
    if path:
        sys.path.insert(0, os.path.abspath(path))
    try:
        engine = importlib.import_module("iamspike.engine")
    except Exception as exc:  # the engine is written in parallel: report without it
        return None, f"{type(exc).__name__}: {exc}"
    if not hasattr(engine, "run"):
        return None, "iamspike.engine has no run()"
    return engine, ""


def engine_options(engine: Any, tokens: Sequence[str] = (), show: str = "") -> Any:
    """The engine's default Options, or those SPL-style tokens give (e.g. ``sensitivity=2``)."""
    tokens = [*tokens, f"show={show}"] if show else list(tokens)
    return engine.parse_options(tokens) if tokens else engine.Options()


def run_iamspike(engine: Any, records: list[dict[str, Any]], options: Any) -> tuple[list[R.Candidate], float]:
    started = time.perf_counter()
    rows = engine.run(records, options)
    floor = int(getattr(options, "min_failures", 0)) if getattr(options, "show", "") == "all" else 0
    return iamspike_candidates(rows, floor), time.perf_counter() - started


def rows_agree(
    engine: Any, records: list[dict[str, Any]], options: Any, alerts: Sequence[R.Candidate]
) -> int:
    """Alerts that differ when the same records go in as Splunk rows in 50,000-row chunks."""
    detector = engine.Detector(options)
    rows = splunk_rows(records)
    for i in range(0, len(rows), CHUNK):
        detector.add_rows(list(SPLUNK_FIELDS), rows[i : i + CHUNK])
    via_rows = {
        (c.entity_type, c.account, c.principal, c.time) for c in iamspike_candidates(detector.results())
    }
    via_records = {(c.entity_type, c.account, c.principal, c.time) for c in alerts}
    return len(via_rows ^ via_records)


def run_input_b(engine: Any, records: list[dict[str, Any]], options: Any) -> list[R.Candidate]:
    detector = engine.Detector(options)
    rows = input_b_rows(records)
    for i in range(0, len(rows), CHUNK):
        detector.add_rows(INPUT_B_FIELDS, rows[i : i + CHUNK])
    return iamspike_candidates(detector.results())


# ---- real data sets ---------------------------------------------------------------------------


@dataclass
class RealResult:
    real: realsets.RealSet
    history: bool  # after 10 days of synthetic history (realsets.with_history)
    records: int
    verdicts: dict[str, realsets.Verdict]  # method -> at its default threshold
    tuned: dict[str, realsets.Verdict]  # references at the thresholds tuned to iamspike's budget


def real_sets(
    engine: Any, options: Any, options_b: Any, thresholds: Mapping[str, float | None]
) -> list[RealResult]:
    out = []
    sets = [
        (rs, h, realsets.with_history(rs, recs) if h else recs)
        for rs, recs in realsets.available()
        for h in (0, 1)
    ]
    for rs, history, records in sets:
        cands = R.run_all(R.events_from_records(records))
        alerts = {m: R.alerts(c, R.DEFAULTS[m]) for m, c in cands.items()}
        tuned = {}
        for m, c in cands.items():
            thr = thresholds.get(m)
            tuned[m] = [] if thr is None else [x for x in c if x.score > thr]
        if engine is not None:
            alerts["iamspike"], _secs = run_iamspike(engine, records, options)
            alerts["iamspike_b"] = run_input_b(engine, records, options_b)
            tuned.update({m: alerts[m] for m in ENGINE_METHODS})
        out.append(
            RealResult(
                rs,
                bool(history),
                len(records),
                {m: realsets.judge(rs, a) for m, a in alerts.items()},
                {m: realsets.judge(rs, a) for m, a in tuned.items()},
            )
        )
    return out


# ---- the run ----------------------------------------------------------------------------------


@dataclass
class OrgRun:
    org: Org
    judge: Judge
    candidates: dict[str, list[R.Candidate]]
    outcomes: dict[str, Outcome]
    engine_seconds: float = 0.0
    curve: list[R.Candidate] = field(default_factory=list)  # iamspike show=all: every bin's score
    rows_differ: int | None = None  # alerts that differ via Splunk rows (None: not checked)
    adhoc: list[Counter] = field(default_factory=list)  # per 24 h window: benign kind -> false alerts

    @property
    def key(self) -> str:
        return f"{self.org.extra.get('family', 'classic')}/{self.org.seed}"


def generated(
    family: F.Family, seed: int, per_kind: int, days: int, cache: str
) -> tuple[Org, dict[str, list[R.Candidate]]]:
    """The organisation and the references' candidates, from ``cache`` (a folder) when it has them.

    The cache key covers the arguments and the source of the generator, the families and the
    references, so a change to any regenerates.
    """
    sources = repr(family).encode()
    for name in ("generator.py", "families.py", "references.py"):
        with open(os.path.join(HERE, name), "rb") as fh:
            sources += fh.read()
    key = hashlib.sha256(repr((seed, per_kind, days)).encode() + sources).hexdigest()[:16]
    stem = f"quality-{family.name}-{seed}"
    path = os.path.join(cache, f"{stem}-{key}.pickle") if cache else ""
    if path and os.path.exists(path):
        with open(path, "rb") as fh:
            return pickle.load(fh)
    org = F.generate(family, seed, days=days, scenarios_per_kind=per_kind)
    cands = R.run_all(R.events_from_records(org.records))
    if path:
        os.makedirs(cache, exist_ok=True)
        for old in glob.glob(os.path.join(cache, f"{stem}-*.pickle")):
            os.remove(old)  # one organisation per family and seed: older versions go
        with open(f"{path}.{os.getpid()}.tmp", "wb") as fh:
            pickle.dump((org, cands), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(f"{path}.{os.getpid()}.tmp", path)
    return org, cands


def adhoc_windows(engine: Any, org: Org, judge: Judge, options: Any) -> list[Counter]:
    """An analyst's ``| iamspike`` over the last 24 h alone (no baseline rows): the false alerts
    of each window, by benign kind. Windows end at 14:00 UTC of every ADHOC_EVERY-th day."""
    times = [r["eventTime"] for r in org.records]  # sorted ISO strings
    out = []
    for day in range(ADHOC_EVERY, org.days + 1, ADHOC_EVERY):
        end = min(org.start + day * DAY + 14 * 3600, org.end)
        lo = bisect.bisect_left(times, iso(end - DAY))
        hi = bisect.bisect_left(times, iso(end))
        alerts, _secs = run_iamspike(engine, org.records[lo:hi], options)
        out.append(judge.outcome(alerts).false_kinds)
    return out


def run_org(
    family: F.Family,
    seed: int,
    engine: Any,
    args: argparse.Namespace,
    options: Any = None,
    curve_options: Any = None,
    options_b: Any = None,
) -> OrgRun:
    org, cands = generated(family, seed, args.per_kind, args.days, args.cache)
    judge = Judge(org)
    run = OrgRun(org, judge, cands, {})
    if engine is not None:
        cands["iamspike"], run.engine_seconds = run_iamspike(engine, org.records, options)
        if curve_options is not None:
            run.curve, _secs = run_iamspike(engine, org.records, curve_options)
        if not (args.no_rows or args.quick):
            run.rows_differ = rows_agree(engine, org.records, options, cands["iamspike"])
        if options_b is not None:
            cands["iamspike_b"] = run_input_b(engine, org.records, options_b)
        if not (args.no_adhoc or args.quick):
            run.adhoc = adhoc_windows(engine, org, judge, options)
    for m, c in cands.items():
        run.outcomes[m] = judge.outcome(c if m in ENGINE_METHODS else R.alerts(c, R.DEFAULTS[m]))
    return run


def details(run: OrgRun, limit: int = 60) -> str:
    """iamspike's misses and false alerts on one organisation, for tuning the engine."""
    lines = [f"-- {run.key}: iamspike misses"]
    detected = run.outcomes["iamspike"].detected
    for label in run.org.attacks():
        if not detected[label.name]:
            start, end = label.windows[0]
            lines.append(
                f"  MISS {label.name} {label.account} {label.principal} {iso(start)}..{iso(end)} {label.note}"
            )
    lines.append(f"-- {run.key}: iamspike false alerts (benign kind)")
    false = []
    for c in run.candidates["iamspike"]:
        verdict, label = run.judge.classify(c)
        if verdict in ("false", "trap"):
            what = run.judge.benign_kind(c, label)
            false.append(
                f"  {iso(c.time)} {what:<26} {c.entity_type:<9} {c.account} {c.principal} score={c.score:.1f}"
            )
    lines += sorted(false)[:limit]
    if len(false) > limit:
        lines.append(f"  ... {len(false) - limit} more")
    return "\n".join(lines)
