"""The ``iamspike`` command: the search command's engine on CloudTrail files, for incident responders.

``iamspike PATH ... [--span 1h] [--by both] ... [--format table|csv|json] [--report FILE.html]``
reads an S3 export or a folder of ``.json.gz`` (see :mod:`iamspike.files`), scores it exactly as
``| iamspike`` does and prints the same rows. Every search-command option is a flag; its default
and allowed values come from the engine's options. Exit status: 0 when it ran (with or without
spikes), 3 when it ran but skipped files it could not read to their end (each named on stderr),
1 when the input held no record, 2 for a bad flag, an unreadable path or an output it cannot
write, 130 when interrupted (Ctrl-C), 141 when the reader of its output went away (``| head``);
every error is one line on stderr naming the flag or the path. ``--report`` is written whole or not at all.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TextIO

from iamspike import atomic, formats
from iamspike.engine import Detector, hours
from iamspike.failures import ErrorClasses
from iamspike.files import FileError, FileReader, RowReader
from iamspike.options import (
    BY_VALUES,
    DURATIONS,
    OPTION_SPECS,
    SHOW_VALUES,
    OptionError,
    Options,
    OptionSpec,
    parse_options,
)

# The error-class lookup inside the installed wheel (pyproject.toml copies it there); in the app
# and in a checkout there is none, and the engine reads the app's lookups/ folder.
PACKAGED_LOOKUP = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "lookups", "iamspike_error_classes.csv"
)
# Every option of the search command is a flag, but phase: how splunkd distributes the command
# (map on the indexers, fold for drilldowns); the CLI always scores.
SPECS = tuple(spec for spec in OPTION_SPECS if spec.cli)
OPTION_NAMES = tuple(spec.name for spec in SPECS)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise SystemExit(fail(message))


def fail(message: str, status: int = 2) -> int:
    """Write ``iamspike: error: <message>`` (one line) on stderr; return ``status``."""
    sys.stderr.write(f"iamspike: error: {message}\n")
    return status


def flag(key: str) -> str:
    """``min_failures`` -> ``--min-failures``."""
    return "--" + key.replace("_", "-")


def _allowed(spec: OptionSpec, lookup: str | None) -> str:
    """The allowed values of a flag: the spec's, the error classes from the lookup in use."""
    if spec.name == "classes":
        try:
            return (
                "one or more of "
                + ", ".join(sorted(ErrorClasses.load(lookup).classes()))
                + ", comma-separated"
            )
        except (OSError, ValueError):
            pass
    return spec.allowed_values


def build_parser(prog: str = "iamspike", lookup: str | None = None) -> argparse.ArgumentParser:
    """The flags: one per search-command option, then the CLI's own."""
    parser = _Parser(
        prog=prog,
        description="Spikes of failed AWS API calls per account and principal in CloudTrail files: the"
        " engine of the Splunk search command `| iamspike`, on an S3 export or a folder of .json.gz.",
        epilog="Exit status: 0 ran (spikes or not), 3 ran but skipped damaged or unreadable files (named"
        " on stderr), 1 no CloudTrail record in the input, 2 bad flag, path or output, 130 interrupted,"
        " 141 output closed (| head).",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help='CloudTrail files or folders: {"Records": [...]}, JSON arrays, JSON lines, gzip or not',
    )
    group = parser.add_argument_group("search-command options (--min-failures is SPL min_failures=)")
    for spec in SPECS:
        choices = spec.name in ("by", "show")
        group.add_argument(
            flag(spec.name),
            dest=spec.name,
            metavar="|".join(BY_VALUES if spec.name == "by" else SHOW_VALUES)
            if choices
            else ("DURATION" if spec.name in DURATIONS else spec.name.upper()),
            help=f"{spec.help}; default {spec.default.strip('()')}"
            + ("" if choices else f"; allowed {_allowed(spec, lookup)}"),
        )
    own = parser.add_argument_group("output")
    own.add_argument("--format", choices=formats.FORMATS, default="table", help="default table")
    own.add_argument(
        "--epoch", action="store_true", help="_time as epoch seconds in csv and json (default ISO)"
    )
    own.add_argument("--report", metavar="FILE.html", help="also write a self-contained HTML report")
    own.add_argument("--lookup", metavar="CSV", help="error-class lookup (default: the app's)")
    return parser


def _values_to_flags(args: list[str], value_flags: set[str], known: set[str]) -> list[str]:
    """``--span -1h`` -> ``--span=-1h``: a value that starts with '-' is still the flag's value."""
    out: list[str] = []
    i = 0
    while i < len(args):
        value = args[i + 1] if i + 1 < len(args) else ""
        if args[i] in value_flags and value.startswith("-") and value.split("=", 1)[0] not in known:
            out.append(f"{args[i]}={value}")
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out


def options_from_args(args: argparse.Namespace, lookup: str | None) -> Options:
    """Options from the flags; OptionError naming the flag (``--span 0h: ...``)."""
    given = {key: getattr(args, key) for key in OPTION_NAMES if getattr(args, key) is not None}
    checked: list[str] = []  # in SPL order, so half_life is checked with the span given before it
    for key, value in given.items():
        try:
            parse_options([*checked, f"{key}={value}"], lookup=lookup)
            checked.append(f"{key}={value}")
        except OptionError as exc:
            text = str(exc)
            text = text[len(key) + 2 :] if text.startswith(key + ": ") else text  # the flag names it
            raise OptionError(f"{flag(key)} {value}: {text}") from None
    try:
        return parse_options([f"{key}={value}" for key, value in given.items()], lookup=lookup)
    except OptionError as exc:
        named = [flag(key) for key in OPTION_NAMES if key in str(exc)] or sorted(map(flag, given))
        raise OptionError(f"{', '.join(named)}: {exc}") from None


class Progress:
    """Counts records as they stream by; on a terminal, once the run has taken ``after`` seconds,
    keeps one stderr line up to date: files, records, records/s."""

    def __init__(
        self, reader: FileReader | RowReader, stream: TextIO, after: float = 2.0, every: float = 1.0
    ) -> None:
        self.reader = reader
        self.stream = stream
        self.enabled = stream.isatty()
        self.after = after
        self.every = every
        self.records = 0
        self.shown = False
        self._start = time.monotonic()
        self._next = self._start + after

    def line(self, now: float) -> str:
        rate = self.records / max(now - self._start, 1e-9)
        files, records = formats.plural(self.reader.opened, "file"), formats.plural(self.records, "record")
        return f"iamspike: {files}, {records}, {rate:,.0f} records/s"

    def _tick(self, final: bool = False) -> None:
        now = time.monotonic()
        if self.enabled and (now >= self._next or (final and now >= self._start + self.after)):
            self.stream.write("\r" + self.line(now) + ("\n" if final else ""))
            self.stream.flush()
            self.shown = True
            self._next = now + self.every

    def count(self, records: Iterable[Mapping]) -> Iterator[Mapping]:
        """``records`` unchanged, counted."""
        for record in records:
            self.records += 1
            if not self.records & 0x1FFF:
                self._tick()
            yield record
        self._tick(final=True)

    def add_rows(self, detector: Detector, reader: RowReader) -> None:
        """Feed the row chunks of ``reader`` to ``detector``, counted."""
        for header, rows in reader.chunks():
            self.records += len(rows)
            detector.add_rows(header, rows)
            self._tick()
        self._tick(final=True)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, prog: str = "iamspike") -> int:
    """Run the command; return the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["scan"]:  # the old subcommand name
        args_list = args_list[1:]
    out = out or sys.stdout
    lookup_flag = next((a.split("=", 1)[1] for a in args_list if a.startswith("--lookup=")), None)
    lookup_default = PACKAGED_LOOKUP if os.path.isfile(PACKAGED_LOOKUP) else None
    parser = build_parser(prog, lookup_flag or lookup_default)
    value_flags = {a for action in parser._actions if action.nargs is None for a in action.option_strings}
    known = {a for action in parser._actions for a in action.option_strings}
    try:
        args = parser.parse_args(_values_to_flags(args_list, value_flags, known))
    except SystemExit as exc:
        return int(exc.code or 0)
    lookup = args.lookup or lookup_default
    try:
        options = options_from_args(args, lookup)
    except OptionError as exc:
        return fail(str(exc))
    except (OSError, ValueError) as exc:
        return fail(f"--lookup {lookup}: {str(exc).splitlines()[0]}")
    if args.report and options.show == "state":
        return fail("--report needs --show spikes or all (state rows have no bins to chart)")
    part = None
    if args.report:
        try:
            part = atomic.reserve(args.report)
        except OSError as exc:
            return fail(f"--report {args.report}: {exc.strerror or exc}")
    try:
        return _run(args, options, out, part)
    except BrokenPipeError:  # `| head`, `2>&1 | head`: the reader has what it wanted
        _drop_output(out)
        _drop_output(sys.stderr)
        return 141  # as a process killed by SIGPIPE
    except KeyboardInterrupt:
        sys.stderr.write("\niamspike: interrupted: the run did not finish; no report written\n")
        return 130
    finally:
        if part and os.path.exists(part):
            os.unlink(part)


def _run(args: argparse.Namespace, options: Options, out: TextIO, part: str | None) -> int:
    """Read, score, write the report and the rows; the exit status."""
    reader = RowReader(args.paths) if options.count_field else FileReader(args.paths)
    progress = Progress(reader, sys.stderr)
    # The report charts every bin of the flagged entities: score all bins, print what was asked.
    detector = Detector(dataclasses.replace(options, show="all") if args.report else options)
    try:
        if isinstance(reader, RowReader):
            progress.add_rows(detector, reader)
        else:
            detector.add_records(progress.count(reader))
        for note in reader.notes():
            sys.stderr.write(f"iamspike: {note}\n")
        noun = "row" if options.count_field else "CloudTrail record"
        read = f"{formats.plural(progress.records, noun)} in {formats.plural(reader.files, 'file')}"
        if not progress.records:
            return fail(read + ": nothing to score", status=1)
        if progress.shown:
            sys.stderr.write(f"iamspike: {read} read, scoring\n")
        rows = detector.results()
    except (FileError, OSError) as exc:
        return fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    for message in detector.messages():
        sys.stderr.write(f"iamspike: {message}\n")
    if detector.unaided:
        sys.stderr.write(
            f"iamspike: no history before these files' {hours(detector.unaided)} h, so each "
            "entity's first hours are judged without a baseline: add earlier files of the same "
            "accounts (a week or more) for fewer false alerts\n"
        )
    shown = rows
    if args.report and part:
        from iamspike import report

        if options.show == "spikes":
            shown = [{k: v for k, v in row.items() if k != "is_spike"} for row in rows if row.get("is_spike")]
        try:
            report.write(args.report, part, rows, options, read)
        except OSError as exc:
            return fail(f"--report {args.report}: {exc.strerror or exc}")
    spikes = sum(1 for row in rows if row.get("is_spike", 1) and options.show != "state")
    skipped = f", {formats.plural(len(reader.skipped), 'file')} skipped" if reader.skipped else ""
    sys.stderr.write(f"iamspike: {read}, {formats.plural(spikes, 'spike')}{skipped}\n")
    width = shutil.get_terminal_size((120, 24)).columns
    try:
        formats.write_rows(shown, args.format, out, epoch=args.epoch, width=width)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:  # a full disk
        _drop_output(out)
        return fail(f"cannot write the rows: {exc.strerror or exc}")
    return 3 if reader.skipped else 0


def _drop_output(out: TextIO) -> None:
    """Point ``out``'s descriptor at /dev/null so that the flush at exit finds no error to print."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
