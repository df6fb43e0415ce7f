"""Command line: ``iamspike_cli.py [scan] PATH ... [--span 1h] [--by both] [--format table]``.

Runs the same engine as the search command on CloudTrail files (an S3 export, a folder of
``.json.gz``) and prints the same rows. Errors are one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from iamspike.engine import OUTPUT_FIELDS, Detector, OptionError, parse_options
from iamspike.files import FileError, FileReader

TABLE_FIELDS = (*OUTPUT_FIELDS[:10], "top_apis")  # the table's columns; csv and json have all
_OPTIONS = (
    ("span", None),
    ("by", None),
    ("sensitivity", None),
    ("threshold", None),
    ("min_failures", "min-failures"),
    ("show", None),
    ("classes", None),
    ("event_sources", "event-sources"),
    ("history", None),
    ("half_life", "half-life"),
    ("min_history", "min-history"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise SystemExit(_fail(message))


def _fail(message: str, stream: TextIO | None = None) -> int:
    (stream or sys.stderr).write(f"iamspike: error: {message}\n")
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="iamspike_cli.py",
        description="Spikes of failed AWS API calls per account and principal in CloudTrail files.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="CloudTrail files or folders")
    for key, flag in _OPTIONS:
        parser.add_argument("--" + (flag or key), dest=key, metavar=key.upper(), help=f"SPL {key}=")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--lookup", help="error-class CSV (default: the app's lookup)")
    return parser


def _iso(epoch: object) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(float(epoch))))  # type: ignore[arg-type]


def write_rows(rows: list[dict[str, object]], fmt: str, out: TextIO) -> None:
    """Rows as a table, CSV (every field) or JSON lines."""
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(row, sort_keys=True) + "\n")
        return
    fields = list(OUTPUT_FIELDS)
    for row in rows:
        fields.extend(key for key in row if key not in fields)
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    if not rows:
        out.write("no spikes\n")
        return
    shown = [f for f in TABLE_FIELDS if any(f in row for row in rows)] or fields
    cells = [[_iso(r[f]) if f == "_time" else str(r.get(f, "")) for f in shown] for r in rows]
    cells = [[c if len(c) <= 60 else c[:57] + "..." for c in line] for line in cells]
    widths = [max(len(f), *(len(line[i]) for line in cells)) for i, f in enumerate(shown)]
    out.write("  ".join(f.ljust(w) for f, w in zip(shown, widths)).rstrip() + "\n")
    for line in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() + "\n")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["scan"]:
        args_list = args_list[1:]
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(args_list)
    except SystemExit as exc:
        return int(exc.code or 0)
    tokens = [f"{key}={getattr(args, key)}" for key, _ in _OPTIONS if getattr(args, key) is not None]
    try:
        options = parse_options(tokens, lookup=args.lookup)
        reader = FileReader(args.paths)
        detector = Detector(options)
        detector.add_records(reader)
        rows = detector.results()
    except (OptionError, FileError, OSError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    for message in detector.messages() + [f"skipped {s}" for s in reader.skipped[:5]]:
        sys.stderr.write(f"iamspike: {message}\n")
    write_rows(rows, args.format, out)
    return 0
