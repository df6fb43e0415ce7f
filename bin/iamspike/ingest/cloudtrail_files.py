"""The one streaming reader of CloudTrail files, for the S3 and SQS inputs and for the CLI.

A file is ``{"Records": [...]}`` (what CloudTrail writes), a bare JSON array of records, or JSON
lines (one record, or one ``{"Records": [...]}``, per line), gzipped or not. Files reach 100 MB
and more, so the reader never holds a whole file: it decompresses in bounded pieces, decodes
UTF-8 incrementally and cuts one record at a time out of the text with the JSON decoder's
``scan_once``. Each record is passed on with its original JSON text (what Splunk indexes) and
its decoded dict. Digest files (``file_kind(...) == "digest"``) hold no records: callers skip them.

Damage is reported, never fatal to the run: a file that is not JSON, truncated or corrupt gzip,
invalid JSON, or an object without ``Records`` raises ``BadFile`` **after** every intact record
before the damage was yielded (the message says where the damage starts); a record larger than
``max_record_bytes`` or that is not an object is skipped and counted; bytes that are not UTF-8
are replaced (U+FFFD) and counted.

Local files: ``iter_file_records(path, report)`` (the CLI's reader).
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from iamspike.ingest.events import SOURCETYPE, SOURCETYPE_INSIGHT

MAX_RECORD_BYTES = 1_000_000
CHUNK_BYTES = 256 * 1024  # S3 and file reads: records flow while a slow download goes on
PIECE_CHARS = 1 << 20  # decompressed bytes per piece
SALVAGE_BYTES = 1024  # compressed bytes fed at a time to recover the data before a corrupt spot

_WS = re.compile(r"[ \t\n\r]*")
_RECORDS_FIRST = re.compile(r'\{[ \t\n\r]*"Records"[ \t\n\r]*:[ \t\n\r]*\[')
_DECODER = json.JSONDecoder()
_ERRORS = "iamspike-count-replace"
_RECORD_KEYS = ("eventID", "eventName", "eventSource", "eventTime")  # a lone object is a record


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
    """``log``, ``insight``, ``digest`` or ``other`` from an S3 key (or a local path)."""
    name = key.rsplit("/", 1)[-1]
    if "CloudTrail-Digest/" in key or "_CloudTrail-Digest_" in name:
        return "digest"
    if "/CloudTrail-Insight/" in key or "_CloudTrail-Insight_" in name:
        return "insight"
    if name.endswith((".json.gz", ".json")):
        return "log"
    return "other"


def sourcetype_for(key: str) -> str:
    return SOURCETYPE_INSIGHT if file_kind(key) == "insight" else SOURCETYPE


class _Bytes:
    """The bytes of a file from its chunks, gunzipped if it starts with the gzip magic
    (multi-member aware). ``gzip``: it did; ``read``/``produced``: bytes taken in and given out,
    to say where damage starts. Corrupt gzip data yields everything before the corrupt spot
    (fed again from a copy of the inflater, ``SALVAGE_BYTES`` at a time) before ``BadFile``."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.gzip = False
        self.read = 0
        self.produced = 0

    def __iter__(self) -> Iterator[bytes]:
        iterator = iter(self._chunks)
        first = b""
        for chunk in iterator:
            first += chunk
            if len(first) >= 2:
                break
        self.read = len(first)
        if first[:2] != b"\x1f\x8b":
            if first:
                yield first
            for chunk in iterator:
                self.read += len(chunk)
                yield chunk
            return
        self.gzip = True
        yield from self._gunzip(first, iterator)

    def _gunzip(self, pending: bytes, iterator: Iterator[bytes]) -> Iterator[bytes]:
        inflater = zlib.decompressobj(wbits=31)
        fed = False  # has the current gzip member received any byte?
        full = False  # did the last call fill its output limit (more output may be waiting)?
        while True:
            while pending or (full and not inflater.eof):
                fed = fed or bool(pending)
                saved = inflater.copy()
                try:
                    out = inflater.decompress(pending, PIECE_CHARS)
                except zlib.error as exc:
                    yield from self._salvage(saved, pending)
                    raise BadFile(
                        f"corrupt gzip data ({exc}), detected at compressed byte"
                        f" {self.read - len(pending)} (decompressed byte {self.produced})"
                    ) from None
                full = len(out) >= PIECE_CHARS
                if out:
                    self.produced += len(out)
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
            self.read += len(chunk)
            pending = chunk
        if fed and not inflater.eof:
            raise BadFile(
                f"truncated gzip stream (it ends after {self.read} bytes, {self.produced} decompressed)"
            )

    def _salvage(self, inflater: Any, pending: bytes) -> Iterator[bytes]:
        """What ``pending`` holds before its corrupt spot: fed to a copy of the inflater as it
        was before the failed call, ``SALVAGE_BYTES`` at a time, the failing piece byte by byte."""
        step = SALVAGE_BYTES
        at = 0
        while at < len(pending):
            saved = inflater.copy()
            try:
                out = inflater.decompress(pending[at : at + step])
            except zlib.error:
                if step == 1:
                    return
                inflater, step = saved, 1
                continue
            at += step
            if out:
                self.produced += len(out)
                yield out


def _text(source: _Bytes) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors=_ERRORS)
    first = True
    for raw in source:
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
    """Iterate ``(json_text, record)`` over a file given as an iterable of byte chunks.

    After iteration: ``records`` yielded, ``skipped_records`` (too large / not an object, each
    logged to ``log``), ``replaced_bytes`` (non-UTF-8 bytes replaced), ``gzip``.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        name: str = "",
        max_record_bytes: int = MAX_RECORD_BYTES,
        log: logging.Logger | None = None,
    ) -> None:
        self._source = _Bytes(chunks)
        self._pieces = _text(self._source)
        self.name = name
        self.max_record_bytes = max_record_bytes
        self.hard_limit = max(64 * 1024 * 1024, 4 * max_record_bytes)
        self.log = log or logging.getLogger(__name__)
        self.records = 0
        self.skipped_records = 0
        self.replaced_bytes = 0
        self._buf = ""
        self._pos = 0
        self._keep = -1  # >= 0: the buffer keeps its text from here (a top-level object's start)
        self._eof = False
        self._damage: BadFile | None = None  # met while reading ahead; raised once the buffer is used

    @property
    def gzip(self) -> bool:
        return self._source.gzip

    # -- text buffer ---------------------------------------------------------------------
    def _more(self) -> bool:
        try:
            piece = next(self._pieces, None)
        except BadFile as exc:
            # Damage met while reading ahead: the records the buffer holds come first.
            self._damage, piece = exc, None
        if piece is None:
            self._eof = True
            return False
        cut = self._pos if self._keep < 0 else self._keep
        if len(self._buf) - cut > self.hard_limit:
            raise BadFile(f"a JSON object larger than {self.hard_limit} bytes without a Records array")
        self._buf = self._buf[cut:] + piece
        self._pos -= cut
        if self._keep >= 0:
            self._keep = 0
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
            if not first:
                raise BadFile("empty file")
            if first not in "[{":
                if self.gzip:
                    raise BadFile(f"gzip file holding no JSON (its data starts with {first!r})")
                raise BadFile(f"neither gzip nor JSON (starts with {first!r})")
            while first:  # one document, or JSON lines: one value after another
                if first == "[":
                    self._pos += 1
                    yield from self._array()
                elif first == "{":
                    yield from self._top_object()
                else:
                    raise BadFile("invalid JSON: data after the end of the document")
                first = self._peek()
        except BadFile:
            if self._damage is not None:
                raise self._damage from None  # the cause, not the record it cut
            raise
        finally:
            self.replaced_bytes = _ReplacementCounter.count - before
        if self._damage is not None:
            raise self._damage  # every record was whole, but the stream was not

    def _top_object(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """A top-level object: ``{"Records": [...]}`` streamed, or one record (JSON lines)."""
        if len(self._buf) - self._pos < PIECE_CHARS // 16 and not self._eof:
            self._more()
        start = self._pos
        if not _RECORDS_FIRST.match(self._buf, start):
            try:
                value, end = _DECODER.scan_once(self._buf, start)
            except (StopIteration, json.JSONDecodeError):
                value = None  # cut by the end of the buffer, or damage: the slow path says which
            if value.__class__ is dict and "Records" not in value:
                self._pos = end
                yield from self._single(self._buf[start:end], value)
                return
        self._keep = start  # its text stays in the buffer until "Records" shows up
        self._pos = start + 1
        try:
            found = yield from self._object()
            if not found:
                text = self._buf[self._keep : self._pos]
                yield from self._single(text, json.loads(text))
        finally:
            self._keep = -1

    def _single(self, text: str, value: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        if not any(key in value for key in _RECORD_KEYS):
            raise BadFile("JSON without a Records array")
        if len(text) > self.max_record_bytes:
            self._skip(f"record {value.get('eventID', '?')} of {len(text)} bytes (over max_record_bytes)")
            return
        self.records += 1
        yield text, value

    def _object(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The members of an object whose ``{`` was read; the records of its ``Records``.
        Returns whether it had a ``Records`` array."""
        found = False
        if self._peek() == "}":
            self._pos += 1
            return found
        while True:
            key, _, _ = self._value()
            if not isinstance(key, str):
                raise BadFile("invalid JSON: object key is not a string")
            self._expect(":", "':'")
            if key == "Records" and self._peek() == "[":
                found = True
                self._keep = -1
                self._pos += 1
                yield from self._array()
            else:
                self._value()
            if self._expect(",}", "',' or '}'") == "}":
                return found

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


# -- local files (the CLI) --------------------------------------------------------------------
@dataclass
class FileReport:
    """What reading one local file found: ``records`` yielded, ``skipped_records`` (too large or
    not objects), ``replaced_bytes`` (not UTF-8), ``damage`` (why the file could not be read to
    its end, "" if it could), ``digest`` (a digest file: no records, skipped)."""

    records: int = 0
    skipped_records: int = 0
    replaced_bytes: int = 0
    damage: str = ""
    digest: bool = False


_QUIET = logging.getLogger(__name__ + ".local")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def _file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if not chunk:
                return
            yield chunk


def iter_file_records(
    path: str, report: FileReport | None = None, max_record_bytes: int = MAX_RECORD_BYTES
) -> Iterator[dict[str, Any]]:
    """The records of one local CloudTrail file (any shape the reader accepts), streamed.

    A digest file yields nothing (``report.digest``). A damaged file yields every intact record
    before the damage, then raises ``BadFile`` (one line, saying where; also in
    ``report.damage``). ``OSError`` (missing, unreadable) propagates. Skipped records and
    replaced bytes are counted in ``report``, not logged.
    """
    report = report if report is not None else FileReport()
    if file_kind(path) == "digest":
        report.digest = True
        return
    reader = CloudTrailFile(_file_chunks(path), path, max_record_bytes, _QUIET)
    try:
        for _, record in reader:
            yield record
    except BadFile as exc:
        report.damage = f"{path}: {exc} (after {reader.records} records)"
        raise BadFile(report.damage) from None
    finally:
        report.records = reader.records
        report.skipped_records = reader.skipped_records
        report.replaced_bytes = reader.replaced_bytes
