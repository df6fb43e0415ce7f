"""The CLI's output: the engine's rows as a table an analyst reads, as CSV or as JSON lines.

The table has one line of numbers per row (``_time`` to ``distinct_apis``) and under it every
other field (the reason, top error codes, APIs, source IPs, user agents and any field the engine
adds), each wrapped at commas and spaces to the terminal's width: nothing is cut. CSV and JSON
carry every field; ``_time`` is ISO 8601 UTC unless ``epoch`` is asked for.
"""

from __future__ import annotations

import csv
import json
import re
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

from iamspike.engine import OUTPUT_FIELDS
from iamspike.options import BY_VALUES, DURATIONS, span_text

SUMMARY_FIELDS = OUTPUT_FIELDS[: OUTPUT_FIELDS.index("distinct_apis") + 1]
FORMATS = ("table", "csv", "json")
MIN_WIDTH = 60
_ITEM = re.compile(r"(.+?\(\d+\))(?:, |$)")  # one ``name (count)`` of an engine top_* list


def option_text(key: str, value: object) -> str:
    """An option's parsed value as SPL writes it: ``span=3600`` -> ``1h``, ``by`` -> ``both``."""
    if key == "by":
        return next((name for name, fields in BY_VALUES.items() if fields == value), str(value))
    if value is None or value == ():
        return "none" if key == "count_field" else "all"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if key in DURATIONS:
        return span_text(int(value))  # type: ignore[call-overload]
    return f"{value:g}" if isinstance(value, float) else str(value)


def plural(count: int, word: str, words: str = "") -> str:
    """``1 file``, ``2,000 files``."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def iso(epoch: object) -> str:
    """Epoch seconds -> ``2023-08-26T20:00:00Z``; anything else unchanged."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(float(epoch))))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return str(epoch)


def field_order(rows: Iterable[Mapping[str, object]]) -> list[str]:
    """The engine's output fields first, then any other field in order of first appearance."""
    fields = list(OUTPUT_FIELDS)
    for row in rows:
        fields.extend(key for key in row if key not in fields)
    return fields


def _with_time(row: Mapping[str, object], epoch: bool) -> dict[str, object]:
    out = dict(row)
    if not epoch and "_time" in out:
        out["_time"] = iso(out["_time"])
    return out


def write_json(rows: Sequence[Mapping[str, object]], out: TextIO, epoch: bool = False) -> None:
    """One JSON object per line, fields in :func:`field_order`."""
    order = field_order(rows)
    for row in rows:
        shaped = _with_time(row, epoch)
        out.write(json.dumps({key: shaped[key] for key in order if key in shaped}) + "\n")


def write_csv(rows: Sequence[Mapping[str, object]], out: TextIO, epoch: bool = False) -> None:
    """A header of every field present, then the rows."""
    fields = [f for f in field_order(rows) if any(f in row for row in rows)] or list(OUTPUT_FIELDS)
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(_with_time(row, epoch) for row in rows)


def write_table(rows: Sequence[Mapping[str, object]], out: TextIO, width: int = 120, empty: str = "") -> None:
    """Summary columns, then each other field on its own wrapped line under the row."""
    if not rows:
        out.write(empty + "\n")
        return
    columns = [f for f in SUMMARY_FIELDS if any(f in row for row in rows)]
    details = [f for f in field_order(rows) if f not in columns]
    cells = [[iso(row[f]) if f == "_time" else str(row.get(f, "")) for f in columns] for row in rows]
    widths = [max(len(f), *(len(line[i]) for line in cells)) for i, f in enumerate(columns)]
    label = max((len(f) for f in details), default=0) + 2
    wrapper = textwrap.TextWrapper(
        width=max(width, MIN_WIDTH),
        initial_indent="    ",
        subsequent_indent=" " * (4 + label),
        break_long_words=False,
        break_on_hyphens=False,
    )
    out.write(_line(columns, widths))
    for row, line in zip(rows, cells):
        out.write("\n" + _line(line, widths))
        for name in details:
            value = row.get(name)
            if value is None or value == "":
                continue
            text = f"{name:<{label}}{value}"
            lines = _pack(text, wrapper) if name.startswith("top_") else wrapper.wrap(text)
            out.write("\n".join(lines) + "\n")


def _pack(text: str, wrapper: textwrap.TextWrapper) -> list[str]:
    """A ``name (count), ...`` list wrapped between items only (an item is never split, even one
    with a comma inside, as browsers' user agents have)."""
    items = [match.group(1) for match in _ITEM.finditer(text)] or [text]
    lines = [wrapper.initial_indent + items[0]]
    for item in items[1:]:
        if len(lines[-1]) + 2 + len(item) > wrapper.width:
            lines[-1] += ","
            lines.append(wrapper.subsequent_indent + item)
        else:
            lines[-1] += ", " + item
    return lines


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(value.ljust(w) for value, w in zip(values, widths)).rstrip() + "\n"


def write_rows(
    rows: Sequence[Mapping[str, object]],
    fmt: str,
    out: TextIO,
    epoch: bool = False,
    width: int = 120,
    empty: str = "no spikes",
) -> None:
    """Rows in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        write_json(rows, out, epoch)
    elif fmt == "csv":
        write_csv(rows, out, epoch)
    else:
        write_table(rows, out, width, empty)
