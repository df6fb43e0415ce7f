"""Quality bench: recall and false alerts of `iamspike` against the methods Splunk users have today.

    .venv/bin/python tests/bench/quality.py [--group tuning|held-out] [--seeds 1,2,3] [--quick]

For every family of the group (tests/bench/families.py: generator settings from which each
organisation draws its own habits) and every seed, generates a 30-day organisation, runs
``iamspike.engine.run(records)`` with its default Options (by=both, span=1h) and every reference
(tests/bench/references.py) on the same records, and scores the alerts against the labels. The
engine also runs on the same data as Input B (pre-counted rows, ``count_field=count``), with
``show=all`` (its recall across score thresholds), as Splunk rows in 50,000-row chunks (which
must give the same alerts), and ad hoc: over the last 24 h alone, without saved state.

Scoring (tests/bench/quality_score.py): an attack is detected when the method alerts on the
attack's entity in one of its hourly bins; an alert neither on an attack nor explained by one is
a false alert, by benign kind; *same budget*: each reference's threshold moved to the loosest value
whose false alerts do not exceed iamspike's, and to the target of 1 per 1,000 principal-days.
Real sets (tests/bench/realsets.py) in a separate table. The modules, one job each:
``quality_run`` (the engine and the references over an organisation), ``quality_rows`` (Splunk
rows and Input B rows), ``quality_score`` (alerts against labels: recall, false alerts, delay,
the same-budget tuning), ``quality_report`` (the markdown report; its sections in
``quality_families`` and ``quality_realsets``, its tables in ``quality_tables``). This file: the
command line.

Writes the markdown report and prints a compact summary; exits 0 unless something crashes. A
section "## Where the engine fails" in an existing report is hand-written: it is kept.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in (os.path.join(ROOT, "tests"), os.path.join(ROOT, "bin")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench import families as F  # noqa: E402
from bench import realsets  # noqa: E402
from bench import references as R  # noqa: E402
from bench.generator import iso  # noqa: E402
from bench.quality_report import KEPT, kept_section, render, summary  # noqa: E402
from bench.quality_rows import (  # noqa: E402
    CHUNK,
    INPUT_B_FIELDS,
    SPLUNK_FIELDS,
    input_b_rows,
    splunk_rows,
)
from bench.quality_run import (  # noqa: E402
    ADHOC_EVERY,
    ENGINE_METHODS,
    METHODS,
    OrgRun,
    RealResult,
    adhoc_windows,
    details,
    engine_options,
    generated,
    iamspike_candidates,
    load_engine,
    real_sets,
    rows_agree,
    run_iamspike,
    run_input_b,
    run_org,
)
from bench.quality_score import (  # noqa: E402
    ATTACK_KINDS,
    SWEEP,
    TARGET_RATE,
    TRAP_KINDS,
    Judge,
    Outcome,
    Pooled,
    Tuned,
    at_threshold,
    entity_key,
    scored_candidates,
    tune,
)

__all__ = [  # what other files use from here (e.g. ``from bench import quality as Q``)
    "ADHOC_EVERY",
    "ATTACK_KINDS",
    "CHUNK",
    "ENGINE_METHODS",
    "INPUT_B_FIELDS",
    "KEPT",
    "METHODS",
    "SPLUNK_FIELDS",
    "SWEEP",
    "TARGET_RATE",
    "TRAP_KINDS",
    "Judge",
    "OrgRun",
    "Outcome",
    "Pooled",
    "R",
    "RealResult",
    "Tuned",
    "adhoc_windows",
    "at_threshold",
    "details",
    "engine_options",
    "entity_key",
    "generated",
    "iamspike_candidates",
    "input_b_rows",
    "iso",
    "load_engine",
    "main",
    "real_sets",
    "realsets",
    "rows_agree",
    "run_iamspike",
    "run_input_b",
    "run_org",
    "scored_candidates",
    "splunk_rows",
    "tune",
]

GROUPS = {"tuning": F.TUNING, "held-out": F.HELD_OUT}
DEFAULT_SEEDS = (1, 2, 3)  # organisations per family


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--group", choices=sorted(GROUPS), default="tuning", help="which families (default tuning)"
    )
    ap.add_argument("--families", default="", help="comma-separated family names instead of a group")
    ap.add_argument("--seeds", default=",".join(str(s) for s in DEFAULT_SEEDS), help="seeds per family")
    ap.add_argument("--quick", action="store_true", help="one family, one seed, no real sets, no ad hoc")
    ap.add_argument("--per-kind", type=int, default=3, help="attack scenarios of each kind per organisation")
    ap.add_argument("--days", type=int, default=30, help="days per organisation (>= 12)")
    ap.add_argument(
        "--accounts", type=int, default=0, help="accounts per organisation (default: the family's)"
    )
    ap.add_argument(
        "--output", default="", help="report (default docs/bench/quality.md, -heldout for held-out)"
    )
    ap.add_argument("--no-real", action="store_true", help="skip the real data sets")
    ap.add_argument("--no-adhoc", action="store_true", help="skip the ad hoc 24 h windows")
    ap.add_argument(
        "--engine-options",
        default="",
        help="SPL-style iamspike options instead of the defaults, e.g. 'sensitivity=2'",
    )
    ap.add_argument(
        "--engine-path", default="", help="a folder holding another iamspike package (a prototype)"
    )
    ap.add_argument(
        "--no-curve", action="store_true", help="skip iamspike show=all (its recall at the target budget)"
    )
    ap.add_argument("--details", action="store_true", help="print iamspike's misses and false alerts")
    ap.add_argument(
        "--no-rows",
        action="store_true",
        help="skip re-running iamspike on Splunk-style rows in 50,000-row chunks",
    )
    ap.add_argument(
        "--cache",
        default=os.path.join(tempfile.gettempdir(), "iamspike-quality-cache"),
        help="folder keeping generated organisations between runs ('' = none)",
    )
    args = ap.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if args.families:
        unknown = [n for n in args.families.split(",") if n not in F.FAMILIES]
        if unknown:
            ap.error(f"--families: unknown {', '.join(unknown)} (known: {', '.join(F.FAMILIES)})")
        fams = [F.FAMILIES[n] for n in args.families.split(",")]
    else:
        fams = list(GROUPS[args.group])
    if args.accounts:
        if args.accounts < 2:
            ap.error("--accounts must be >= 2")
        fams = [F.with_accounts(f, args.accounts) for f in fams]
    if args.quick:
        fams, seeds = fams[:1], seeds[:1]
    if args.days < 12 or args.per_kind < 1:
        ap.error("--days must be >= 12 and --per-kind >= 1")
    if not args.output:
        name = "quality.md" if args.group == "tuning" or args.families else "quality-heldout.md"
        args.output = os.path.join(ROOT, "docs", "bench", name)
    engine, engine_error = load_engine(args.engine_path)
    options = curve_options = options_b = None
    if engine is not None:
        tokens = shlex.split(args.engine_options)
        try:
            options = engine_options(engine, tokens)
        except ValueError as exc:
            ap.error(f"--engine-options: {exc}")
        if not (args.no_curve or args.quick):
            curve_options = engine_options(engine, [t for t in tokens if not t.startswith("show=")], "all")
        options_b = engine_options(engine, [*tokens, "count_field=count"])
    started = time.perf_counter()
    runs = []
    for fam in fams:
        for seed in seeds:
            t0 = time.perf_counter()
            run = run_org(fam, seed, engine, args, options, curve_options, options_b)
            runs.append(run)
            if args.details and engine is not None:
                print(details(run), file=sys.stderr)
            print(
                f"{run.key}: {len(run.org.records)} records, {len(run.org.principals)} principals, "
                f"engine {run.engine_seconds:.1f}s, total {time.perf_counter() - t0:.1f}s",
                file=sys.stderr,
            )
    methods = [m for m in METHODS if m in runs[0].candidates]
    pooled = Pooled.of(runs, methods)
    by_family = {
        fam.name: Pooled.of([r for r in runs if r.org.extra["family"] == fam.name], methods) for fam in fams
    }

    # same-budget tuning of the references
    budget_iamspike = pooled.false["iamspike"] if "iamspike" in methods else None
    budget_target = math.floor(TARGET_RATE * pooled.principal_days / 1000.0)
    attack_names = sorted(pooled.detected[methods[0]])
    tuned: dict[str, dict[str, Tuned]] = {}
    for m in R.METHODS:
        scored = scored_candidates(runs, m)
        tuned[m] = {"target": tune(scored, attack_names, budget_target)}
        if budget_iamspike is not None:
            tuned[m]["iamspike"] = tune(scored, attack_names, budget_iamspike)
    sweep: list[Tuned] = []
    if curve_options is not None:
        scored = scored_candidates(runs, "curve")
        tuned["iamspike"] = {"target": tune(scored, attack_names, budget_target)}
        sweep = [at_threshold(scored, attack_names, t) for t in SWEEP]
    real_thresholds = {
        m: tuned[m]["iamspike" if budget_iamspike is not None else "target"].threshold for m in R.METHODS
    }
    reals = [] if (args.quick or args.no_real) else real_sets(engine, options, options_b, real_thresholds)
    elapsed = time.perf_counter() - started

    report = render(
        args=args,
        fams=fams,
        seeds=seeds,
        pooled=pooled,
        by_family=by_family,
        engine_error=engine_error,
        tuned=tuned,
        budget_iamspike=budget_iamspike,
        budget_target=budget_target,
        reals=reals,
        elapsed=elapsed,
        sweep=sweep,
        kept=kept_section(args.output),
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write(report)
    print(summary(pooled, tuned, budget_iamspike, reals, engine_error))
    print(f"report: {os.path.relpath(args.output, os.getcwd())} ({elapsed:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
