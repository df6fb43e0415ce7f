"""Quality bench, the report's markdown pieces: a table, and the cells the report's tables share
(recall, delay and false-alert rate cells, the benign kinds an alert hits)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from bench.quality_score import ATTACK_KINDS


def rate(n: int, principal_days: float) -> str:
    return f"{1000.0 * n / principal_days:.2f}" if principal_days else "-"


def recall_cell(detected: Mapping[str, bool], kind: str | None = None) -> str:
    items = [v for n, v in detected.items() if kind is None or n.split("#")[0] == kind]
    return f"{sum(items) / len(items):.2f} ({sum(items)}/{len(items)})" if items else "-"


def delay_cell(delay: Mapping[str, float], kind: str | None = None) -> str:
    items = [v for n, v in delay.items() if kind is None or n.split("#")[0] == kind]
    return f"{statistics.fmean(items):.1f}" if items else "-"


def recall_cells(detected: Mapping[str, bool]) -> list[str]:
    return [*(recall_cell(detected, k) for k in ATTACK_KINDS), recall_cell(detected)]


def short_kinds(kinds: Counter, top: int = 4) -> str:
    return ", ".join(f"{k} {n}" for k, n in kinds.most_common(top)) + (" ..." if len(kinds) > top else "")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]
