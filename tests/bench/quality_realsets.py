"""Quality bench, the report's section on the real data sets (``realsets``): each method's checks
and false alerts on each set, as delivered and after 10 days of synthetic history."""

from __future__ import annotations

from collections.abc import Sequence

from bench import quality_tables as T
from bench import realsets
from bench.quality_run import ENGINE_METHODS, RealResult


def section(reals: Sequence[RealResult], methods: Sequence[str]) -> list[str]:
    """The section's lines (none without real sets)."""
    if not reals:
        return []
    out = [
        "## Real data sets (read from ../shared/data/cloudtrail, never copied)",
        "",
        "References at their default thresholds (in brackets where it differs: at the thresholds",
        "tuned to iamspike's budget above). False alerts: alerts no positive check explains. Each",
        "set as delivered, then after 10 days of synthetic history of its own principals",
        "(`realsets.with_history`: without it a set's first event starts the window, and a new",
        "role cannot be told from a known one).",
        "",
    ]
    real_methods = [m for m in methods if m in reals[0].verdicts]
    for history in (False, True):
        shown = [rr for rr in reals if rr.history == history]
        out += [f"### {'After 10 days of synthetic history' if history else 'As delivered'}", ""]
        out += T.table(
            ["data set", "check", *real_methods],
            [row for rr in shown for row in real_rows(rr, real_methods)],
        )
        v = {rr.real.name: rr.verdicts["iamspike"] for rr in shown if "iamspike" in rr.verdicts}
        if v:
            hit, total = realsets.positives(
                (rr.real, rr.verdicts["iamspike"]) for rr in shown if "iamspike" in rr.verdicts
            )
            names = "; ".join(f"{n}: {', '.join(x.false_names)}" for n, x in v.items() if x.false_names)
            out += [f"iamspike: {hit} of {total} real positives; false alerts: {names or 'none'}.", ""]
    return out


def real_rows(rr: RealResult, methods: Sequence[str]) -> list[list[str]]:
    """One set's rows: each check's verdict per method, then its false alerts."""

    def cell(m: str, default: object, tuned_: object) -> str:
        return str(default) if m in ENGINE_METHODS or default == tuned_ else f"{default} [{tuned_}]"

    def yes(flag: bool) -> str:
        return "yes" if flag else "**no**"

    label = f"{rr.real.name} ({rr.records} records)"
    rows = []
    for i, check in enumerate(rr.real.checks):
        what = ("must alert: " if check.must else "must stay quiet: ") + check.what
        rows.append(
            [label, what]
            + [
                cell(m, yes(rr.verdicts[m].checks[i]), yes(rr.tuned[m].checks[i]))
                for m in methods
                if m in rr.verdicts
            ]
        )
    rows.append(
        [label, "false alerts"]
        + [cell(m, rr.verdicts[m].false, rr.tuned[m].false) for m in methods if m in rr.verdicts]
    )
    return rows
