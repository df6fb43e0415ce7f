"""Quality bench, the report: the markdown file and the compact summary printed at the end.

The report's sections come from ``quality_families`` (the families' organisations) and
``quality_realsets`` (the real data sets); their tables from ``quality_tables``. A section
"## Where the engine fails" in an existing report is hand-written: it is kept (``kept_section``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from bench import quality_families, quality_realsets, quality_score
from bench import quality_tables as T
from bench import references as R
from bench.quality_run import RealResult
from bench.quality_score import ATTACK_KINDS, Pooled, Tuned

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def summary(
    pooled: Pooled,
    tuned: Mapping[str, Mapping[str, Tuned]],
    budget_iamspike: int | None,
    reals: Sequence[RealResult],
    engine_error: str,
) -> str:
    short = ("discov", "lowslow", "newprin", "acctwide", "relspike", "console")
    head = f"{'method':<12}" + "".join(f"{s:>9}" for s in short) + f"{'all':>7}{'FA/1kpd':>9}"
    lines = [head + (f"{'@budget':>9}" if budget_iamspike is not None else "")]
    for m in pooled.methods:
        d = pooled.detected[m]
        row = f"{m:<12}"
        for k in ATTACK_KINDS:
            items = [v for n, v in d.items() if n.split("#")[0] == k]
            row += f"{(sum(items) / len(items) if items else 0):>9.2f}"
        rate = T.rate(pooled.false[m], pooled.principal_days)
        row += f"{(sum(d.values()) / len(d) if d else 0):>7.2f}{rate:>9}"
        if budget_iamspike is not None and m in R.METHODS:
            t = tuned[m]["iamspike"].detected
            row += f"{sum(t.values()) / len(t):>9.2f}"
        lines.append(row)
    if engine_error:
        lines.append(f"iamspike not run: {engine_error}")
    adhoc = [sum(c.values()) for r in pooled.runs for c in r.adhoc]
    if adhoc:
        lines.append(
            f"ad hoc 24 h without state: {statistics.fmean(adhoc):.1f} false alerts per window "
            f"(median {statistics.median(adhoc):g}, max {max(adhoc)}, {len(adhoc)} windows)"
        )
    for rr in reals:
        v = rr.verdicts.get("iamspike")
        if v is not None:
            checks = " ".join("ok" if ok else "FAIL" for ok in v.checks)
            history = " (after 10 days of history)" if rr.history else ""
            lines.append(f"{rr.real.name}{history}: {checks} ({v.false} false alerts)")
    return "\n".join(lines)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _command(args: argparse.Namespace, seeds: Sequence[int]) -> str:
    cmd = "python tests/bench/quality.py " + (
        f"--families {args.families}" if args.families else f"--group {args.group}"
    )
    cmd += " --seeds " + ",".join(str(s) for s in seeds)
    if args.engine_options:
        cmd += f" --engine-options {shlex.quote(args.engine_options)}"
    if args.engine_path:
        cmd += f" --engine-path {shlex.quote(args.engine_path)}"
    for flag in ("no_curve", "no_real", "no_rows", "no_adhoc", "quick"):
        if getattr(args, flag):
            cmd += " --" + flag.replace("_", "-")
    for name, default in (("per_kind", 3), ("days", 30), ("accounts", 0)):
        if getattr(args, name) != default:
            cmd += f" --{name.replace('_', '-')} {getattr(args, name)}"
    return cmd


KEPT = "## Where the engine fails"


def kept_section(path: str) -> str:
    """The hand-written diagnosis of an earlier report at ``path`` (up to the next section)."""
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    start = text.find(KEPT + "\n")
    if start < 0:
        return ""
    end = text.find("\n## ", start + len(KEPT))
    return text[start : end + 1 if end >= 0 else len(text)].rstrip() + "\n"


def render(**kw: Any) -> str:
    """The markdown report."""
    pooled: Pooled = kw["pooled"]
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    group = kw["args"].families or kw["args"].group
    out = [
        f"# Quality bench ({group} families): `iamspike` against what Splunk users have today",
        "",
        f"Generated {now} at commit {_git_commit()} by `{_command(kw['args'], kw['seeds'])}` "
        f"({kw['elapsed']:.0f} s on 2 shared cores).",
        "Code: `tests/bench/families.py` (the families: generator settings), `tests/bench/generator.py`",
        "(records and labels), `tests/bench/references.py` (reference methods, each documented as",
        "implemented), `tests/bench/realsets.py` (real sets and their checks), `tests/bench/quality.py`",
        "(scoring, this report).",
        "",
    ]
    if kw["engine_error"]:
        out += [f"**iamspike was not run**: `{kw['engine_error']}`", ""]
    if group == "held-out":
        out += [
            "Held-out families: whole generator settings never looked at while tuning the engine. Run",
            "them once per engine worth reporting, after tuning on the tuning families; never tune on them.",
            "",
        ]
    out += quality_families.sections(kw)
    out += quality_realsets.section(kw["reals"], pooled.methods)
    if kw["kept"]:
        out += [kw["kept"]]
    out += [
        "## Re-running",
        "",
        "`--group held-out` (the held-out families: run once, after tuning), `--families a,b`,",
        "`--seeds 1,2,3` (organisations per family), `--quick` (one organisation, no real sets),",
        "`--engine-options 'sensitivity=2'`, `--engine-path /tmp/proto/bin` (a prototype copy of the",
        "engine), `--details` (iamspike's misses and false alerts per organisation on stderr).",
        "Generated organisations are cached in the system temp folder (`--cache ''` to turn off).",
        "",
        "## The references as implemented",
        "",
    ]
    ref_doc = R.__doc__ or ""
    out += ref_doc[ref_doc.find("``escu_static``") :].strip().splitlines()
    out += ["", "## Scoring rules", ""]
    doc = quality_score.__doc__ or ""
    out += doc[doc.find("- an attack is") :].strip().splitlines()
    out.append("")
    return "\n".join(out)
