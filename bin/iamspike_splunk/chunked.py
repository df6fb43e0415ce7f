"""The command side of Splunk's chunked search command protocol, version 2 (SCPv2).

splunkd starts the command once per search and talks to it over stdin/stdout in chunks framed as
``chunked 1.0,<metadata bytes>,<body bytes>\\n`` + JSON metadata + CSV body:

1. ``getinfo``: metadata only, with ``searchinfo`` (``args``, ``raw_args``, ``dispatch_dir``, ...).
   The command answers with its configuration, which the sink gives (``sink.getinfo()``):
   ``iamspike`` is a reporting (transforming) command, ``{"type": "reporting", "run_in_preview":
   false, "streaming_preop": "iamspike phase=map ..."}``, so splunkd runs its map phase next to
   the data and the reporting phase on the search head; ``phase=map`` and ``phase=fold`` are
   ``{"type": "streaming"}``. A bad option is answered with ``finished: true`` and one ERROR
   inspector message, which Splunk shows as one line. The search's time range
   (``earliest_time``, ``latest_time``: :func:`search_range`) goes to ``sink.bound()``.
2. ``execute`` chunks carry CSV bodies where every field ``x`` has a ``__mv_x`` twin. The command
   answers each chunk with what the sink has ready (``sink.take()``: nothing for the reporting
   phase) until splunkd says ``finished: true``; then it answers with ``sink.results()``.

A body over :data:`BODY_IN_PIECES` is read from stdin as the sink takes its rows
(:func:`feed_pieces`): splunkd counts a chunk in rows, and 50,000 packed count rows can make a
gigabyte. This loop is column-oriented and hand-written: the body is read with ``csv.reader`` and handed to
the sink as a header plus lists of strings, untouched (the sink picks its columns by name, so the
``__mv_`` twins are never looked at and cost no copy), with no per-row dictionaries; output
columns come from every result row and carry ``__mv_`` twins only where a value is a list.
Unexpected errors become one-line ERROR messages; the traceback goes to stderr, which splunkd
writes to search.log.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Callable, Protocol

LOGGER = logging.getLogger("iamspike.command")

HEADER_RE = re.compile(rb"chunked\s+1\.0\s*,\s*(\d+)\s*,\s*(\d+)\s*\n")
MV_PREFIX = "__mv_"
MAX_MESSAGE = 400
STREAM_ROWS = 10_000  # rows encoded at a time when the sink streams its results
GETINFO_REPLY = {"type": "reporting", "run_in_preview": False}
# A body larger than this is read from stdin as the sink takes its rows instead of whole: a
# chunk of 50,000 packed count rows can hold over a gigabyte (docs/distributed.md, "Chunks").
BODY_IN_PIECES = 64 * 1024 * 1024
PIECE = 1024 * 1024
NUL_REPLACEMENT = "\ufffd".encode("utf-8")
# A body whose first PIECE holds fewer line breaks than this (lines of over 16 KB) is read a line
# at a time with str.split (:func:`csv_rows`); raw events (a few KB a line) by csv.reader.
LONG_LINES = 64
# A line as io.TextIOWrapper(newline="") ends one: CRLF, CR or LF (the last line perhaps none).
_LINE_ENDS = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


class ProtocolError(RuntimeError):
    """splunkd sent something this loop cannot read (bad header, short read, wrong action)."""


class Sink(Protocol):
    """What the loop feeds: the engine's ``Detector`` satisfies it."""

    def add_rows(self, header: list[str], rows: Iterable[list[str]]) -> None: ...

    def results(self) -> Iterable[dict[str, object]]: ...


def _raise_field_limit() -> None:
    """Splunk delivers fields of any size (an ``aws:cloudtrail`` event can be several MB)."""
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


_raise_field_limit()


def read_chunk(istream: IO[bytes]) -> tuple[dict, bytes] | None:
    """Read one chunk; ``None`` at end of input. Blank lines between chunks are skipped."""
    head = read_head(istream)
    if head is None:
        return None
    metadata, body_length = head
    body = istream.read(body_length) if body_length else b""
    if len(body) != body_length:
        raise ProtocolError(f"body cut short: {len(body)} of {body_length} bytes")
    return metadata, body


def read_head(istream: IO[bytes]) -> tuple[dict, int] | None:
    """A chunk's metadata and the length of the body that follows it (left unread); ``None`` at
    end of input."""
    line = istream.readline()
    while line in (b"\n", b"\r\n"):
        line = istream.readline()
    if not line:
        return None
    match = HEADER_RE.match(line)
    if match is None:
        raise ProtocolError(f"bad transport header {line[:80]!r}")
    metadata_length, body_length = int(match.group(1)), int(match.group(2))
    metadata = istream.read(metadata_length) if metadata_length else b""
    if len(metadata) != metadata_length:
        raise ProtocolError(f"metadata cut short: {len(metadata)} of {metadata_length} bytes")
    try:
        decoded = json.loads(metadata.decode("utf-8")) if metadata else {}
    except ValueError as error:
        raise ProtocolError(f"metadata is not JSON: {error}") from None
    if not isinstance(decoded, dict):
        raise ProtocolError("metadata is not a JSON object")
    return decoded, body_length


class _Body(io.RawIOBase):
    """The next ``length`` bytes of ``istream`` (a chunk's body), read a piece at a time, NUL
    bytes replaced as :func:`read_body` replaces them. Raises :class:`ProtocolError` where the
    input ends before the body does."""

    def __init__(self, istream: IO[bytes], length: int) -> None:
        super().__init__()
        self.istream, self.length, self.left = istream, length, length
        self.last = b""  # the body's last byte read
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self.pending:
            if not self.left:
                return 0
            data = self.istream.read(min(PIECE, self.left))
            if not data:
                raise ProtocolError(f"body cut short: {self.length - self.left} of {self.length} bytes")
            self.left -= len(data)
            self.last = data[-1:]
            self.pending = memoryview(data.replace(b"\x00", NUL_REPLACEMENT) if b"\x00" in data else data)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n

    def drain(self) -> None:
        """Read what the sink left of the body, so that the next chunk's header comes next."""
        self.pending = memoryview(b"")
        while self.left:
            data = self.istream.read(min(PIECE, self.left))
            if not data:
                raise ProtocolError(f"body cut short: {self.length - self.left} of {self.length} bytes")
            self.left -= len(data)


def frame(metadata: Mapping[str, object], body: bytes = b"") -> bytes:
    """One chunk as bytes: compact JSON metadata (ASCII-escaped, as splunklib writes it)."""
    encoded = json.dumps(metadata, separators=(",", ":")).encode("ascii")
    return b"chunked 1.0,%d,%d\n" % (len(encoded), len(body)) + encoded + body


def write_chunk(
    ostream: IO[bytes], metadata: Mapping[str, object], body: bytes = b"", trailer: bytes = b""
) -> None:
    """Write one chunk (plus ``trailer``) in a single write: splunkd may close the pipe as soon
    as it has read a ``finished`` chunk."""
    ostream.write(frame(metadata, body) + trailer)
    ostream.flush()


def read_body(body: bytes) -> tuple[list[str], Iterable[list[str]]]:
    """CSV body -> (header, row iterator). An empty body gives an empty header and no rows.

    The ``__mv_`` twins stay in the header and the rows: the sink looks columns up by name once
    per chunk, so columns it does not ask for cost nothing, while trimming them would cost a copy
    of every row."""
    if not body:
        return [], iter(())
    if b"\x00" in body:  # Python 3.9's csv refuses NUL ("line contains NUL"); 3.13 keeps it
        body = body.replace(b"\x00", "\ufffd".encode("utf-8"))
    reader = csv_rows(io.BufferedReader(io.BytesIO(body), PIECE))
    header = next(reader, [])
    return header, reader


def csv_rows(stream: io.BufferedReader) -> Iterator[list[str]]:
    """The rows of a CSV body (UTF-8, undecodable bytes replaced), exactly as ``csv.reader`` over
    ``io.TextIOWrapper(stream, newline="")`` gives them. A body of long lines (its first
    :data:`PIECE` holds fewer than :data:`LONG_LINES` line breaks: packed count rows, tens of KB
    a row) is read by :func:`_split_rows`; any other by ``csv.reader``, decoded lazily as it
    reads (no up-front copy of the whole body into a str)."""
    if stream.peek(PIECE)[:PIECE].count(b"\n") < LONG_LINES:
        return _split_rows(stream)
    return csv.reader(io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline=""))


def _split_rows(stream: io.BufferedReader) -> Iterator[list[str]]:
    """:func:`csv_rows` a line at a time with ``str.split``: ``csv.reader`` reads a long field
    a character at a time, at about a third of the speed (fields bench: 2.7 against 1.0 CPU s for
    a weekday's 1.09 GB of ``v6`` rows). A line whose fields are unquoted, or quoted whole with no
    quote, comma or line break inside, is split on commas (what ``csv.reader`` gives such a line);
    any other (a quote or a comma inside a field, a field over several lines, a bare CR) goes to
    ``csv.reader``, fed the same lines as ``io.TextIOWrapper`` would give it."""
    back: list[str] = []  # lines for csv.reader before the body's next
    lines = _lines(stream)

    def fed() -> Iterator[str]:
        while True:
            while back:
                yield back.pop()
            line = next(lines, None)
            if line is None:
                return
            back.extend(reversed(_LINE_ENDS.findall(line[0] + "\n" if line[1] else line[0])))

    reader = csv.reader(fed())
    for text, ended in lines:
        line = text[:-1] if text[-1:] == "\r" else text
        if "\r" not in line:
            if '"' not in line:
                yield line.split(",") if line else []
                continue
            fields = line.split(",")
            for at, field in enumerate(fields):
                if '"' in field:
                    if field.count('"') != 2 or len(field) < 2 or field[0] != '"' or field[-1] != '"':
                        break
                    fields[at] = field[1:-1]
            else:
                yield fields
                continue
        back.extend(reversed(_LINE_ENDS.findall(text + "\n" if ended else text)))
        while back:
            yield next(reader)


def _lines(stream: io.BufferedReader) -> Iterator[tuple[str, bool]]:
    """A body's lines split at LF, decoded (each piece of whole lines at once: a line break never
    falls within a character), each as (its text without the LF, whether an LF ended it)."""
    pending: list[bytes] = []
    while True:
        piece = stream.read1(PIECE)
        if not piece:
            break
        cut = piece.rfind(b"\n") + 1
        if not cut:
            pending.append(piece)
            continue
        pending.append(piece[:cut])
        texts = b"".join(pending).decode("utf-8", "replace").split("\n")
        pending = [piece[cut:]]
        texts.pop()  # after the last LF: nothing
        for text in texts:
            yield text, True
    if any(pending):
        yield b"".join(pending).decode("utf-8", "replace"), False


def feed_pieces(sink: Sink, istream: IO[bytes], length: int) -> int:
    """:func:`feed` for a body still on ``istream``, read as the sink takes its rows: a large
    body is never held whole (peak memory follows the sink's state, not the chunk). A body that
    ends before ``length`` raises :class:`ProtocolError` after its rows went to the sink; rows
    with fewer fields than the header (a body cut mid-row) are skipped and counted, as
    :func:`feed` does."""
    body = _Body(istream, length)
    reader = csv_rows(io.BufferedReader(body, PIECE))
    header = next(reader, [])
    cut: list[int] = []
    if header:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            sink.add_rows(header, _whole_rows(reader, len(header), cut))
        finally:
            if was_enabled:
                gc.enable()
    body.drain()
    return len(cut)


def feed(sink: Sink, body: bytes) -> int:
    """One execute body into the sink, with the garbage collector paused: a chunk makes tens of
    thousands of row lists and strings and no cycle, and the collector's passes over them cost
    about a third of the reading (fields bench, 3.13). It runs again after the chunk.

    Returns the rows skipped as cut short: rows with fewer fields than the header (a body cut
    mid-row, a blank or short line in a damaged chunk), which no reader could index; the others
    are read. The check costs about 30 ns a row (1.6 ms for 50,000 count rows, against 57 ms of
    csv reading)."""
    header, rows = read_body(body)
    if not header:
        return 0
    cut: list[int] = []
    rows = _whole_rows(rows, len(header), cut)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        sink.add_rows(header, rows)
    finally:
        if was_enabled:
            gc.enable()
    return len(cut)


def _whole_rows(rows: Iterable[list[str]], width: int, cut: list[int]) -> Iterator[list[str]]:
    """The rows with at least ``width`` fields; the length of each other one goes to ``cut``."""
    for row in rows:
        if len(row) >= width:
            yield row
        else:
            cut.append(len(row))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _mv_cell(values: list | tuple) -> str:
    return "$" + "$;$".join(_cell(value).replace("$", "$$") for value in values) + "$"


def encode_results(results: list[dict[str, object]]) -> bytes:
    """Result rows -> CSV body (``\\r\\n`` lines, as splunklib writes). Columns are the union of
    keys in order of first appearance; a ``__mv_`` twin follows a column only when some value in
    it is a list or tuple (multivalue)."""
    if not results:
        return b""
    fields: dict[str, bool] = {}
    for row in results:
        for key, value in row.items():
            if isinstance(value, (list, tuple)):
                fields[key] = True
            elif key not in fields:
                fields[key] = False
    header: list[str] = []
    for name, multivalue in fields.items():
        header.append(name)
        if multivalue:
            header.append(MV_PREFIX + name)
    return _encoded(results, list(fields.items()), header)


def _encoded(
    results: Iterable[Mapping[str, object]], names: list[tuple[str, bool]], header: list[str] | None
):
    """Rows as CSV lines in the columns ``names`` (each ``(name, multivalue)``), after ``header``."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header is not None:
        writer.writerow(header)
    for row in results:
        cells: list[str] = []
        for name, multivalue in names:
            value = row.get(name)
            if isinstance(value, (list, tuple)):
                cells.append("\n".join(_cell(item) for item in value))
                cells.append(_mv_cell(value) if len(value) > 1 else "")
            else:
                cells.append(_cell(value))
                if multivalue:
                    cells.append("")
        writer.writerow(cells)
    return buffer.getvalue().encode("utf-8")


def write_streamed(
    ostream: IO[bytes], metadata: Mapping[str, object], results: Iterable[dict[str, object]]
) -> int:
    """The last reply when the sink gives its rows as an iterator (``show=state`` reads them back
    from disk, :mod:`iamspike.spill`): the body is encoded a batch at a time into a temporary file
    in the working directory (splunkd's dispatch directory) and copied out, so it is never held
    whole. Columns are the first row's (the rows are of one shape). Returns the rows written."""
    rows = iter(results)
    first = next(rows, None)
    with tempfile.TemporaryFile(dir=os.getcwd()) as spool:
        n = 0
        if first is not None:
            names = [(name, False) for name in first]
            header: list[str] | None = list(first)
            batch = [first]
            for row in rows:
                batch.append(row)
                if len(batch) >= STREAM_ROWS:
                    spool.write(_encoded(batch, names, header))
                    n, batch, header = n + len(batch), [], None
            spool.write(_encoded(batch, names, header))
            n += len(batch)
        size = spool.tell()
        spool.seek(0)
        encoded = json.dumps(metadata, separators=(",", ":")).encode("ascii")
        ostream.write(b"chunked 1.0,%d,%d\n" % (len(encoded), size) + encoded)
        shutil.copyfileobj(spool, ostream, 1 << 20)
        ostream.flush()
    return n


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Collapse whitespace so the message shows as one line in Splunk's UI."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _messages(level: str, text: str) -> dict[str, object]:
    return {"messages": [[level, one_line(text)]]}


def _sink_messages(sink: object) -> list[list[str]]:
    """What the sink wants shown: its ``messages()`` (warnings, e.g. rows skipped), then its
    ``notes()`` if it has them; each item a text (shown as WARN) or a ``(level, text)`` pair."""
    shown = []
    for name in ("messages", "notes"):
        getter = getattr(sink, name, None)
        for item in getter() if callable(getter) else ():
            level, text = ("WARN", item) if isinstance(item, str) else item
            shown.append([str(level), one_line(text)])
    return shown


def search_range(searchinfo: Mapping[str, object]) -> tuple[float, float]:
    """The search's time range from getinfo's ``earliest_time`` and ``latest_time`` (epoch
    seconds as text): infinite where unbounded (0 or empty: all time, a real-time search) or
    unreadable."""

    def seconds(name: str, unbounded: float) -> float:
        try:
            value = float(str(searchinfo.get(name) or 0))
        except ValueError:
            return unbounded
        return value if math.isfinite(value) and value > 0 else unbounded

    return seconds("earliest_time", -math.inf), seconds("latest_time", math.inf)


def serve(
    factory: Callable[[list[str]], Sink],
    istream: IO[bytes],
    ostream: IO[bytes],
    user_errors: tuple[type[BaseException], ...] = (ValueError,),
    name: str = "iamspike",
) -> int:
    """Run the protocol to the end; return the process exit status: 0 when the search got its
    answer (results, or one ERROR line), 1 when splunkd sent nothing or closed the output pipe.
    ``factory(args)`` builds the sink from ``searchinfo.args`` and raises one of ``user_errors``
    on a bad option; its message is shown as is."""
    replied = False
    chunks = cut = 0

    def fail(message: str) -> int:
        try:
            if replied:
                write_chunk(ostream, {"finished": True, "inspector": _messages("ERROR", message)})
            else:
                reply = dict(GETINFO_REPLY, finished=True, inspector=_messages("ERROR", message))
                write_chunk(ostream, reply, trailer=b"\n")  # splunklib's getinfo reply ends so
        except BrokenPipeError:
            LOGGER.error("%s: splunkd closed the output pipe before the error could be shown", name)
            return 1
        return 0

    try:
        chunk = read_chunk(istream)
        if chunk is None:
            LOGGER.error("%s: no getinfo chunk on stdin", name)
            return 1
        metadata, _ = chunk
        if metadata.get("action") != "getinfo":
            raise ProtocolError(f"expected getinfo, got {metadata.get('action')!r}")
        searchinfo = metadata.get("searchinfo") or {}
        args = [str(arg) for arg in searchinfo.get("args") or []]
        LOGGER.info("%s: start, args=%s, sid=%s", name, args, searchinfo.get("sid"))
        try:
            sink = factory(args)
        except user_errors as error:
            LOGGER.info("%s: rejected options: %s", name, error)
            return fail(f"{name}: {error}")
        bound = getattr(sink, "bound", None)
        if callable(bound):
            bound(*search_range(searchinfo))
        getinfo = getattr(sink, "getinfo", None)
        write_chunk(ostream, getinfo() if callable(getinfo) else GETINFO_REPLY, trailer=b"\n")
        take = getattr(sink, "take", None)
        replied = True
        chunks = 0
        while True:
            chunk = read_head(istream)
            if chunk is None:
                LOGGER.warning("%s: stdin closed before finished=true; %d chunks read", name, chunks)
                return 0
            metadata, length = chunk
            if metadata.get("action") != "execute":
                raise ProtocolError(f"expected execute, got {metadata.get('action')!r}")
            if length > BODY_IN_PIECES:
                cut += feed_pieces(sink, istream, length)
            elif length:
                body = istream.read(length)
                if len(body) != length:
                    raise ProtocolError(f"body cut short: {len(body)} of {length} bytes")
                cut += feed(sink, body)
            chunks += 1
            if not metadata.get("finished"):
                write_chunk(ostream, {"finished": False}, encode_results(take()) if callable(take) else b"")
                continue
            results = sink.results()
            reply: dict[str, object] = {"finished": True}
            messages = _sink_messages(sink)
            if cut:
                rows = "1 row" if cut == 1 else f"{cut} rows"
                messages.append(["WARN", f"skipped {rows} cut short (a chunk from splunkd was damaged)"])
            if messages:
                reply["inspector"] = {"messages": messages}
            if isinstance(results, list):
                write_chunk(ostream, reply, encode_results(results))
                written = len(results)
            else:
                written = write_streamed(ostream, reply, results)
            LOGGER.info("%s: end, %d chunks in, %d results out", name, chunks, written)
            return 0
    except user_errors as error:
        LOGGER.info("%s: rejected input: %s", name, error)
        return fail(f"{name}: {error}")
    except BrokenPipeError:
        LOGGER.error("%s: splunkd closed the output pipe", name)
        return 1
    except ProtocolError as error:
        LOGGER.error("%s: unreadable data from splunkd (%d chunks read): %s", name, chunks, error)
        return fail(f"{name}: unreadable data from splunkd ({chunks} chunks read): {error}")
    except Exception as error:
        LOGGER.exception("%s: unexpected error", name)
        kind = type(error).__name__
        return fail(f"{name} failed: {kind}: {error} (details in search.log)")


def _sink_factory(args: list[str]) -> Sink:
    """The phase the options pick; numpy and the scorer are imported for the reporting phase only
    (an indexer running ``phase=map`` never loads them)."""
    from iamspike.options import parse_options

    options = parse_options(args)
    if options.phase in ("map", "fold"):
        from iamspike.phases import FoldPhase, MapPhase

        return MapPhase(options) if options.phase == "map" else FoldPhase(options)
    from iamspike.engine import Detector

    if options.show == "state":  # a long range's state pass, a few accounts at a time
        from iamspike.spill import StateSpill

        return StateSpill(options, folder=os.getcwd())  # splunkd: the search's dispatch directory
    return Detector(options)


def _option_error() -> tuple[type[BaseException], ...]:
    try:
        from iamspike.options import OptionError
    except Exception:  # the engine failed to import: serve() reports it via the factory
        return ()
    return (OptionError,)


def main() -> int:
    """Entry point for ``bin/iamspike_command.py``: the phase the options pick, over stdin/stdout."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    status = serve(_sink_factory, sys.stdin.buffer, sys.stdout.buffer, user_errors=_option_error())
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # splunkd is gone: nothing left to tell it, exit without noise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status
