"""Stream the records of a CloudTrail log file, and write them to a sink with de-duplication.

A log file is ``{"Records": [...]}``, usually gzipped; files can reach 100 MB and more, so the
reader never holds the whole file: it decompresses in bounded pieces, decodes UTF-8 incrementally
and cuts one record at a time out of the text with ``json.JSONDecoder.raw_decode``. Each record
is passed on with its original JSON text (what Splunk indexes) and its decoded dict.

Damage is reported, never fatal to the run: a file that is not gzip nor JSON, truncated, or has
no ``Records`` raises ``BadFile`` (records before the damage have been yielded); a record larger
than ``max_record_bytes`` or that is not an object is skipped and counted; bytes that are not
UTF-8 are replaced (U+FFFD) and counted.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, Callable

from iamspike.ingest.checkpoint import SeenIds
from iamspike.ingest.events import (
    SOURCETYPE,
    SOURCETYPE_INSIGHT,
    Deadline,
    EventSink,
    RunStats,
    StopRun,
    event_time,
)

MAX_RECORD_BYTES = 1_000_000
CHUNK_BYTES = 256 * 1024  # S3 reads: records flow while a slow download goes on (a read blocks for all of it)
PIECE_CHARS = 1 << 20  # decompressed bytes per piece
FLUSH_EVENTS = 2000  # events handed to Splunk (and their ids journaled) per flush

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_ERRORS = "iamspike-count-replace"


class BadFile(Exception):
    """A log file that cannot be read to its end; ``str(e)`` says why in one line."""


class _ReplacementCounter:
    count = 0

    @classmethod
    def handler(cls, exc: UnicodeError) -> tuple[str, int]:
        if not isinstance(exc, UnicodeDecodeError):
            raise exc
        cls.count += exc.end - exc.start
        return "\ufffd", exc.end


codecs.register_error(_ERRORS, _ReplacementCounter.handler)


def file_kind(key: str) -> str:
    """``log``, ``insight``, ``digest`` or ``other`` from an S3 key of a trail bucket."""
    name = key.rsplit("/", 1)[-1]
    if "/CloudTrail-Digest/" in key or "_CloudTrail-Digest_" in name:
        return "digest"
    if "/CloudTrail-Insight/" in key or "_CloudTrail-Insight_" in name:
        return "insight"
    if name.endswith((".json.gz", ".json")):
        return "log"
    return "other"


def sourcetype_for(key: str) -> str:
    return SOURCETYPE_INSIGHT if file_kind(key) == "insight" else SOURCETYPE


def _decompressed(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Bytes of the file, gunzipped if it starts with the gzip magic (multi-member aware)."""
    iterator = iter(chunks)
    first = b""
    for chunk in iterator:
        first += chunk
        if len(first) >= 2:
            break
    if first[:2] != b"\x1f\x8b":
        if first:
            yield first
        yield from iterator
        return
    inflater = zlib.decompressobj(wbits=31)
    fed = False  # has the current gzip member received any byte?
    pending = first
    full = False  # did the last call fill its output limit (more output may be waiting)?
    while True:
        while pending or (full and not inflater.eof):
            fed = fed or bool(pending)
            try:
                out = inflater.decompress(pending, PIECE_CHARS)
            except zlib.error as exc:
                raise BadFile(f"not a valid gzip stream ({exc})") from None
            full = len(out) >= PIECE_CHARS
            if out:
                yield out
            if inflater.eof:
                pending = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
                fed = False
                if pending[:2] not in (b"", b"\x1f\x8b"):
                    pending = b""  # trailing garbage after the last member: ignored
            else:
                pending = inflater.unconsumed_tail
        chunk = next(iterator, None)
        if chunk is None:
            break
        pending = chunk
    if fed and not inflater.eof:
        raise BadFile("truncated gzip stream")


def _text(chunks: Iterable[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors=_ERRORS)
    first = True
    for raw in _decompressed(chunks):
        text = decoder.decode(raw)
        if first and text:
            text = text.lstrip("\ufeff")
            first = False
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


class CloudTrailFile:
    """Iterate ``(json_text, record)`` over a log file given as an iterable of byte chunks.

    After iteration: ``records`` yielded, ``skipped_records`` (too large / not an object, each
    logged to ``log``), ``replaced_bytes`` (non-UTF-8 bytes replaced).
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        name: str = "",
        max_record_bytes: int = MAX_RECORD_BYTES,
        log: logging.Logger | None = None,
    ) -> None:
        self._pieces = _text(chunks)
        self.name = name
        self.max_record_bytes = max_record_bytes
        self.hard_limit = max(64 * 1024 * 1024, 4 * max_record_bytes)
        self.log = log or logging.getLogger(__name__)
        self.records = 0
        self.skipped_records = 0
        self.replaced_bytes = 0
        self._buf = ""
        self._pos = 0
        self._eof = False

    # -- text buffer ---------------------------------------------------------------------
    def _more(self) -> bool:
        piece = next(self._pieces, None)
        if piece is None:
            self._eof = True
            return False
        self._buf = self._buf[self._pos :] + piece
        self._pos = 0
        return True

    def _peek(self) -> str:
        while True:
            self._pos = _WS.match(self._buf, self._pos).end()
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._more():
                return ""

    def _value(self) -> tuple[Any, int, int]:
        """Decode the JSON value at the cursor; return (value, start, end) in the buffer."""
        self._peek()
        while True:
            start = self._pos
            try:
                value, end = _DECODER.raw_decode(self._buf, start)
            except json.JSONDecodeError as exc:
                if self._eof:
                    raise BadFile(f"invalid JSON ({exc.msg})") from None
                if len(self._buf) - start > self.hard_limit:
                    raise BadFile(f"a JSON value larger than {self.hard_limit} bytes") from None
                self._more()
                continue
            if end >= len(self._buf) and not self._eof and not isinstance(value, (dict, list, str)):
                self._more()  # a number or literal may continue in the next piece
                continue
            self._pos = end
            return value, start, end

    def _expect(self, chars: str, what: str) -> str:
        char = self._peek()
        if not char or char not in chars:
            raise BadFile("invalid JSON: expected {}, found {!r}".format(what, char or "end of file"))
        self._pos += 1
        return char

    # -- records -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        before = _ReplacementCounter.count
        try:
            first = self._peek()
            if first == "[":
                self._pos += 1
                yield from self._array()
            elif first == "{":
                self._pos += 1
                yield from self._object()
            elif not first:
                raise BadFile("empty file")
            else:
                raise BadFile(f"neither gzip nor JSON (starts with {first!r})")
            if self._peek():
                raise BadFile("invalid JSON: data after the end of the document")
        finally:
            self.replaced_bytes = _ReplacementCounter.count - before

    def _object(self) -> Iterator[tuple[str, dict[str, Any]]]:
        found = False
        if self._peek() == "}":
            self._pos += 1
        else:
            while True:
                key, _, _ = self._value()
                if not isinstance(key, str):
                    raise BadFile("invalid JSON: object key is not a string")
                self._expect(":", "':'")
                if key == "Records" and self._peek() == "[":
                    found = True
                    self._pos += 1
                    yield from self._array()
                else:
                    self._value()
                if self._expect(",}", "',' or '}'") == "}":
                    break
        if not found:
            raise BadFile("JSON without a Records array")

    def _array(self) -> Iterator[tuple[str, dict[str, Any]]]:
        if self._peek() == "]":
            self._pos += 1
            return
        scan = _DECODER.scan_once  # raw_decode without its Python frame: StopIteration = no value
        max_bytes = self.max_record_bytes
        whitespace = _WS.match
        lookahead = PIECE_CHARS // 16  # read on while fewer characters lie ahead of the cursor
        count = 0
        # The buffer and cursor live in locals on the fast path (compact or ", "-separated files,
        # the record whole in the buffer); self._buf/_pos are synced around every slow call
        # (whitespace, a record cut by the end of the piece, damage: _value, _expect).
        buf, pos = self._buf, self._pos
        try:
            while True:
                if len(buf) - pos < lookahead and not self._eof:
                    # Read on before the record at the cursor can be cut by the end of the piece:
                    # a failed decode costs a count of the buffer's newlines (for its message).
                    self._pos = pos
                    self._more()
                    buf, pos = self._buf, self._pos
                start = pos
                try:
                    value, end = scan(buf, pos)
                except json.JSONDecodeError:
                    # A record longer than the lookahead cut by the end of the piece, or damage:
                    # read on before _value decodes again.
                    self._pos = pos
                    if not self._eof:
                        self._more()
                    value, start, end = self._value()
                    buf = self._buf
                except StopIteration:
                    self._pos = pos
                    value, start, end = self._value()
                    buf = self._buf
                else:
                    if end >= len(buf) and value.__class__ is not dict:
                        self._pos = pos
                        value, start, end = self._value()
                        buf = self._buf
                pos = end
                if value.__class__ is dict and end - start <= max_bytes:
                    count += 1
                    yield buf[start:end], value
                elif not isinstance(value, dict):
                    self._skip("a record that is not a JSON object")
                else:
                    self._skip(
                        f"record {value.get('eventID', '?')} of {end - start} bytes"
                        f" (over max_record_bytes={self.max_record_bytes})"
                    )
                separator = buf[pos : pos + 1]
                if separator == ",":
                    # skip the whitespace after it here: a failed fast decode scans the buffer
                    pos += 1
                    if buf.startswith(" {", pos):
                        pos += 1
                    elif not buf.startswith("{", pos):
                        pos = whitespace(buf, pos).end()
                elif separator == "]":
                    self._pos = pos + 1
                    return
                else:
                    self._pos = pos
                    if self._expect(",]", "',' or ']'") == "]":
                        return
                    buf, pos = self._buf, self._pos
        finally:
            self.records += count

    def _skip(self, what: str) -> None:
        self.skipped_records += 1
        self.log.warning("skipped %s in %s", what, self.name)


def record_id(text: str, record: dict[str, Any]) -> str:
    """The de-duplication key of a record: its eventID, else a hash of its text."""
    event_id = record.get("eventID")
    if isinstance(event_id, str) and event_id:
        return event_id
    return "sha1:" + hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()


def write_file(
    chunks: Iterable[bytes],
    source: str,
    sink: EventSink,
    seen: SeenIds,
    stats: RunStats,
    log: logging.Logger,
    deadline: Deadline | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
    sourcetype: str | None = None,
) -> bool:
    """Write every record of one log file to ``sink``, dropping ids already in ``seen``.

    Events are flushed to Splunk every ``FLUSH_EVENTS`` records and at the end, and their ids
    journaled in ``seen`` right after each flush, so a kill at any moment neither loses nor
    (beyond the instant between a flush and its journal line) duplicates a record on retry.
    Returns True when the file was read to its end or is damaged beyond repair (logged, and
    ``stats.skipped_files`` counted: retrying would not help); False when the deadline or a stop
    cut it short (the caller must retry it later; what was written is journaled).
    """
    sourcetype = sourcetype or sourcetype_for(source)
    if deadline is not None:
        chunks = _interruptible(chunks, deadline)
    reader = CloudTrailFile(chunks, source, max_record_bytes, log)
    pending: dict[str, None] = {}  # ids written since the last flush, in order (a file repeating
    # a record writes it once)
    write = sink.write
    seen_ids = seen.ids  # ``in`` on the view: no method call per record
    completed = True
    try:
        for text, record in reader:
            key = record.get("eventID")  # record_id's common case, inlined
            if key.__class__ is not str or not key:
                key = record_id(text, record)
            if key in pending or key in seen_ids:
                stats.duplicates += 1
                continue
            write(text, event_time(record.get("eventTime")), source, sourcetype)
            pending[key] = None
            if len(pending) >= FLUSH_EVENTS:
                _commit(sink, seen, pending, stats)
                if deadline is not None and deadline.expired():
                    completed = False
                    break
    except BadFile as exc:
        stats.skipped_files += 1
        log.error("skipped the rest of %s after %d records: %s", source, reader.records, exc)
    except StopRun:
        completed = False
    finally:
        _commit(sink, seen, pending, stats)
        stats.skipped_records += reader.skipped_records
    if reader.replaced_bytes:
        log.warning("%d bytes that are not UTF-8 replaced by U+FFFD in %s", reader.replaced_bytes, source)
    if completed:
        stats.files += 1
    return completed


def _interruptible(chunks: Iterable[bytes], deadline: Deadline) -> Iterator[bytes]:
    """The chunks of a download; a stop request cuts a slow read short (``StopRun``)."""
    iterator = iter(chunks)
    while True:
        with deadline.interruptible():
            chunk = next(iterator, None)
        if chunk is None:
            return
        yield chunk


def _commit(sink: EventSink, seen: SeenIds, pending: dict[str, None], stats: RunStats) -> None:
    if not pending:
        return
    sink.flush()
    seen.add_all(pending)
    stats.events += len(pending)
    pending.clear()


class LogFilePipeline:
    """What the inputs reading log files from S3 share: one run's sink, seen ids, stats, logger
    and deadline, and writing one S3 object's records."""

    def __init__(
        self,
        max_record_bytes: int,
        sink: EventSink,
        seen: SeenIds,
        log: logging.Logger,
        deadline: Deadline,
    ) -> None:
        self.max_record_bytes = max_record_bytes
        self.sink = sink
        self.seen = seen
        self.log = log
        self.deadline = deadline
        self.stats = RunStats()

    def write_object(
        self, s3: Any, bucket: str, key: str, wrap: Callable[[Iterable[bytes]], Iterable[bytes]] | None = None
    ) -> bool:
        """``write_file`` on ``s3://bucket/key`` streamed from S3 (``wrap`` sees every chunk).

        AWS errors propagate: what they mean (retry, dead-letter queue) is the caller's call.
        """
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            chunks = body.iter_chunks(CHUNK_BYTES)
            return write_file(
                wrap(chunks) if wrap else chunks,
                f"s3://{bucket}/{key}",
                self.sink,
                self.seen,
                self.stats,
                self.log,
                self.deadline,
                self.max_record_bytes,
            )
        finally:
            body.close()
