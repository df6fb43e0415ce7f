"""``show=state`` over a long range in bounded memory: count rows spilled to disk by account, the
state pass run a few accounts at a time.

An entity's state row depends only on its account's rows: a principal belongs to one account,
copies of an event are found within a cell (bin, account, principal), an account's series sum
its own principals, and first failures, actors and the AWS service flag are per principal. What
crosses accounts is the time the pass spans (the live rows' range and the saved state's, which
set the ``first`` and ``last`` every row carries, the bins a row keeps and where saved history
gives way to live rows), the one warning line, the message of a range too long for the
principals, and the rows' order. So :class:`StateSpill` writes each count row (and each state
row) to one of :data:`BUCKETS` files by a stable hash of its account as the chunks arrive,
keeping in memory only the rows that are no account's (range rows, allowlist entries) and a
:class:`~iamspike.engine.Window` of the rows' times; at ``finished`` it runs the ordinary
:class:`~iamspike.engine.Detector` over consecutive buckets holding up to :data:`PASS_BYTES` of
rows at a time, each pass spanning the whole range, writes each pass's rows to disk and gives
them back merged in the one-pass order (principal rows by account and principal, then account
rows by account) as the command writes them out: the same rows, byte for byte
(tests/unit/test_spill.py). The window noted at intake is checked against the one the
passes found (it differs only where an unreadable row lay at the edge of the range); if it
differs, the passes run again with the true one.

A count row that reads whole (a ``v3`` or ``v4`` text with a readable summary for every part,
every profile counted by this search, no state attached; a ``v5`` or ``v6`` row whose members all
do, read from one split of its text: :meth:`~iamspike.countrows.CountRows.add_members`) is read as it
comes, into the bucket's :class:`~iamspike.countrows.CountRows`, and goes to the file as columns (every
:data:`COLUMN_ROWS` rows: the row columns, the digests, the entries' zlib blocks:
:meth:`~iamspike.countrows.CountRows.take`), which the pass adds without reading a text again
(:meth:`~iamspike.countrows.CountRows.add_taken`; the passes share the API and event source ids).
Any other row is written as a line, in zlib blocks (:data:`LEVEL`, about :data:`_BLOCK`
characters of whole lines each), read again by the pass as a chunk; a bucket's rows keep the
order they came in, both kinds. Each block has its kind and length before it; memory holds at
most a block of each kind per file. The files live in a folder of their own in the working directory
(splunkd runs a search command in the search's dispatch directory, which it deletes with the job),
removed when the results are out, on error, when this object is collected and at exit. A disk that
fills up (or a folder that cannot be written) is one line naming the folder and the cause
(:class:`SpillError`). Rows that need the whole range in one process
(raw events, ``count_field=`` rows) turn the spill off: everything is then read in one pass.
"""

from __future__ import annotations

import gc
import heapq
import json
import logging
import math
import os
import pickle
import shutil
import struct
import tempfile
import weakref
import zlib
from collections.abc import Iterable, Iterator
from operator import itemgetter

from iamspike import state
from iamspike.cloudtrail import TIME
from iamspike.counting import COUNTS_FIELD, STATE_KEYS, unpack_rows
from iamspike.countrows import CountRows
from iamspike.counttext import PACKED
from iamspike.engine import Detector, Window, new_tally
from iamspike.intake import UNKNOWN, usable_time
from iamspike.options import OptionError, Options
from iamspike.results import too_long

LOGGER = logging.getLogger(__name__)
BUCKETS = 128  # files; a pass reads consecutive ones, so an account is the finest split
# Rows read per pass. One pass over a weekday of the scale bench's rows (1,331 MB) peaked at
# 1.55-1.60 GB; in passes of 256 MB at 567 MB, and a pass's peak follows its rows, not the range.
PASS_BYTES = 256 * 2**20
COLUMNS = [
    TIME,
    "account",
    "principal",
    "state_key",
    "account_state_key",
    COUNTS_FIELD,
    state.STATE_FIELD,
    state.ACCOUNT_STATE_FIELD,
]
FEED_ROWS = 50_000
# zlib's fastest level: the bench's rows to 0.37 of their bytes at ~7 CPU s a GB written and ~2.3
# read back (levels 2-3 gain 2 %, 6 gains 9 % at twice the CPU; Huffman-only or RLE keep 0.68).
LEVEL = 1
_BLOCK = 1 << 17  # characters of rows per compressed block (a bucket's pending lines)
_HEAD = struct.Struct("<BI")  # before each block: its kind and its length
_LINES, _COLUMNS = 0, 1  # a block's kind: zlib of whole lines, or count rows read as they came
# Count rows a bucket reads as they come before they go to its file as one block (its arrays,
# digests and entries' zlib: CountRows.take); each pass then adds them without reading a text.
COLUMN_ROWS = 4096
_BATCH = 200  # output rows a pass writes at a time (each pass's file is read a batch at a time)
# A spilled row is its fields joined by US and ended by LF (csv.writer took 12 times as long over
# the long count texts); a row with either inside a field is written as RS + its JSON instead.
_US, _RS = "\x1f", "\x1e"


class StateSpill:
    """The reporting phase of ``show=state``: :class:`~iamspike.engine.Detector`'s interface."""

    def __init__(
        self,
        options: Options,
        folder: str | None = None,
        buckets: int = BUCKETS,
        pass_bytes: int = PASS_BYTES,
    ) -> None:
        self.options = options
        # The API and event source ids of every count row read as it came (and of each pass's).
        self._names = CountRows(new_tally(options))
        # rows that are no account's; all rows when the spill is off
        self.head = Detector(options, self._names)
        self.pass_bytes = pass_bytes
        self.passes = 0
        self.spilled_bytes = 0  # the rows' characters
        self.disk_bytes = 0  # what they take on disk
        self.window = Window()  # of the rows spilled, as noted at intake
        self._dir = tempfile.mkdtemp(prefix="iamspike_spill_", dir=folder)
        self._removal = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._pending: list[list[str]] = [[] for _ in range(buckets)]
        self._pending_size = [0] * buckets
        self._columns = [CountRows(self._names.tally, names=self._names) for _ in range(buckets)]
        self._sizes = [0] * buckets
        self._bucket_of: dict[str, int] = {}
        self._too_long = ""
        self._range = (-math.inf, math.inf)  # the search's (:meth:`bound`)

    def getinfo(self) -> dict[str, object]:
        return self.head.getinfo()

    def bound(self, earliest: float, latest: float) -> None:
        self.head.bound(earliest, latest)  # range rows are no account's: the head reads them
        self._names.tally.bound(earliest, latest)  # the columns' (rows read as they come)
        self._range = (earliest, latest)  # each pass's Detector's

    def messages(self) -> list[str]:
        """The one-pass messages: the map phases', a range too long, the allowlist's, skipped rows."""
        out = self.head.messages()
        if self._too_long:
            out.insert(len(self.head.tally.messages), self._too_long)
        return out

    # ---- intake

    def add_rows(self, header: list[str], rows: Iterable[list[str]]) -> None:
        index = {name: i for i, name in enumerate(header)}
        counts_i, state_i = index.get(COUNTS_FIELD), index.get(state.STATE_FIELD)
        if self.head.tally.rows or (counts_i is None and state_i is None):
            self.head.add_rows(header, rows)  # raw events or count_field= rows (or no spill)
            return
        at = [index.get(name) for name in COLUMNS]
        if counts_i is not None:
            rows = self._members(header, index, at, rows)  # v5 rows: read whole or unpacked
        pick = itemgetter(*at) if None not in at else _padded(at)
        present = [i for i in at if i is not None]  # a spilled line's fields (the others empty)
        taken = itemgetter(*present, counts_i)  # counts_i twice: always a tuple
        time_i, acct_i, prin_i = index.get(TIME), index.get("account"), index.get("principal")
        readable = time_i is not None and acct_i is not None and prin_i is not None
        saved = [i for i in (at[6], at[7]) if i is not None]
        lo, hi, first, last = self.window
        span = self.options.span
        within = self._names.tally.within
        other: list[list[str]] = []
        for row in rows:
            text = row[counts_i] if counts_i is not None else ""
            if text and text[2:3] != "{":  # a count row (a range row's text is JSON)
                account = (row[acct_i] if acct_i is not None else "") or UNKNOWN
                attached = False
                for i in saved:
                    if row[i]:
                        attached = True
                        first, last = _saved_range(row[i], first, last)
                if readable and not attached:
                    bucket = self._bucket(account)
                    if self._pending[bucket]:
                        self._flush(bucket)  # the bucket's rows stay in the order they came
                    columns = self._columns[bucket]
                    offset = columns.add_text(text, row[time_i], row[acct_i], row[prin_i])
                    if offset is not None:
                        start = float(row[time_i])
                        lo, hi = min(lo, start // span * span), max(hi, (start + offset) // span * span)
                        # the characters of its line, as if spilled as one
                        size = sum(map(len, taken(row))) - len(text) + len(COLUMNS)
                        self._sizes[bucket] += size
                        self.spilled_bytes += size
                        if len(columns) >= COLUMN_ROWS:
                            self._flush_columns(bucket)
                        continue
                try:
                    start = float(row[time_i])
                    end = start + (_last_offset(text) if text[:2] == "v4" else 0)
                    if within(start) and within(end):  # else its pass skips it
                        lo, hi = min(lo, start // span * span), max(hi, end // span * span)
                except (TypeError, ValueError, IndexError):
                    pass  # unreadable: its pass skips it
            elif not text and state_i is not None and row[state_i]:
                # one state text, or an account's several joined by newlines (the state macro's
                # row: docs/distributed.md "State join"), each to its own account's bucket
                for one in state.texts(row[state_i]):
                    single = list(row)
                    single[state_i] = one
                    account = _state_account(one)
                    if account is None:
                        other.append(single)  # a version-1 range row, or unreadable: counted once here
                        continue
                    first, last = _saved_range(one, first, last)
                    self._write(account, pick(single))
                continue
            else:
                other.append(row)
                continue
            self._write(account, pick(row))
        self.window = self.window.union(Window(lo, hi, first, last))
        if other:
            self.head.add_rows(header, other)

    def _members(self, header: list[str], index: dict[str, int], at: list, rows: Iterable[list[str]]):
        """The rows, each ``v5`` row read whole into its bucket's columns when every member
        reads whole and no state is attached (:meth:`CountRows.add_members`: what
        :meth:`add_rows` does with each member ``unpack_rows`` gives), else unpacked into its
        members (:func:`~iamspike.counting.unpack_rows`); other rows as they come."""
        counts_i, time_i, acct_i = index[COUNTS_FIELD], index.get(TIME), index.get("account")
        keys_i = index.get(STATE_KEYS)
        skipped = self.head.tally.skipped
        if time_i is None or acct_i is None or index.get("principal") is None:
            yield from unpack_rows(header, rows, skipped, self.head.tally.within)
            return
        saved = [i for i in at[6:] if i is not None]
        keys = [i for i in (at[3], at[4]) if i is not None]  # kept on each member (state_key ..)
        span = self.options.span
        lo, hi = math.inf, -math.inf
        for row in rows:
            text = row[counts_i]
            if text[:2] not in PACKED:
                yield row
                continue
            added = None
            if not any(row[i] for i in saved):
                try:
                    when = float(row[time_i])
                except ValueError:
                    when = math.nan
                if usable_time(when):
                    account = row[acct_i]
                    bucket = self._bucket(account or UNKNOWN)
                    columns = self._columns[bucket]
                    if self._pending[bucket]:
                        self._flush(bucket)  # the bucket's rows stay in the order they came
                    named = row[keys_i].split() if keys_i is not None and row[keys_i] else None
                    added = columns.add_members(
                        text, int(when), account or UNKNOWN, None if named is None else len(named)
                    )
            if added is None:
                yield from unpack_rows(header, [row], skipped, self.head.tally.within)
                continue
            # its members' lines' characters, as if spilled one by one (their state fields empty)
            low, high, n, characters = added
            size = characters + n * (len(account) + sum(len(row[i]) for i in keys) + len(COLUMNS))
            self._sizes[bucket] += size
            self.spilled_bytes += size
            lo, hi = min(lo, float(low // span * span)), max(hi, float(high // span * span))
            if len(columns) >= COLUMN_ROWS:
                self._flush_columns(bucket)
        self.window = self.window.union(Window(lo, hi))

    def _bucket(self, account: str) -> int:
        bucket = self._bucket_of.get(account)
        if bucket is None:
            bucket = zlib.crc32(account.encode("utf-8", "surrogatepass")) % len(self._sizes)
            self._bucket_of[account] = bucket
        return bucket

    def _write(self, account: str, row: list[str]) -> None:
        bucket = self._bucket(account)
        if len(self._columns[bucket]):
            self._flush_columns(bucket)  # the bucket's rows stay in the order they came
        line = _US.join(row)
        if "\n" in line or line.count(_US) != len(COLUMNS) - 1 or line[:1] == _RS:
            line = _RS + json.dumps(row)
        size = len(line) + 1
        self._pending[bucket].append(line)
        self._sizes[bucket] += size
        self.spilled_bytes += size
        self._pending_size[bucket] += size
        if self._pending_size[bucket] >= _BLOCK:
            self._flush(bucket)

    def _flush(self, bucket: int) -> None:
        """The bucket's pending lines, compressed, appended to its file as one block."""
        lines = self._pending[bucket]
        if not lines:
            return
        lines.append("")
        block = zlib.compress("\n".join(lines).encode("utf-8", "surrogatepass"), LEVEL)
        self._pending[bucket] = []
        self._pending_size[bucket] = 0
        self._append(bucket, _LINES, block)

    def _flush_columns(self, bucket: int) -> None:
        """The count rows the bucket read as they came, appended to its file as one block."""
        if len(self._columns[bucket]):
            self._append(bucket, _COLUMNS, self._columns[bucket].take())

    def _append(self, bucket: int, kind: int, block: bytes) -> None:
        try:
            with open(self._path(bucket), "ab") as handle:
                handle.write(_HEAD.pack(kind, len(block)))
                handle.write(block)
        except OSError as error:
            self._removal()
            raise SpillError(self._dir, error) from None
        self.disk_bytes += _HEAD.size + len(block)

    def _path(self, bucket: int) -> str:
        return os.path.join(self._dir, f"{bucket:03d}.rows")

    # ---- results

    def results(self) -> Iterable[dict[str, object]]:
        """The state rows, in the one-pass order: read from the passes' files as they are taken
        (the folder goes when the last is taken)."""
        try:
            for bucket in range(len(self._sizes)):
                self._flush(bucket)
                self._flush_columns(bucket)
            if self.head.tally.rows:  # raw events came: one pass over everything
                self._add(self.head, range(len(self._sizes)))
                self._removal()
                return self.head.results()
            return self._merged(self._by_passes())
        except OSError as error:  # a pass's rows written out: the disk filled up
            self._removal()
            raise SpillError(self._dir, error) from None
        except BaseException:
            self._removal()
            raise

    def _by_passes(self) -> list[tuple[str, str]]:
        groups = self._groups()
        head = self.head
        head.results()  # settles the rows that are no account's (range rows): their window
        hint = self.window.union(head.window)
        outputs, found, principals, skipped = self._run(groups, hint)
        if found.union(head.window) != hint:
            outputs, found, principals, skipped = self._run(groups, found.union(head.window))
        head.tally.skipped.update(skipped)
        self._too_long = _too_long(self.options, found.union(head.window), principals)
        LOGGER.info(
            "show=state: %.1f MB of count rows spilled by account (%.1f MB on disk) to %d files,"
            " read in %d passes",
            self.spilled_bytes / 1e6,
            self.disk_bytes / 1e6,
            sum(1 for size in self._sizes if size),
            self.passes,
        )
        return outputs

    def _merged(self, outputs: list[tuple[str, str]]) -> Iterator[dict[str, object]]:
        """Principal rows by account and principal, then account rows by account: each pass's
        rows come in that order, and no account is in two passes."""
        try:
            yield from heapq.merge(*(_load(path) for path, _ in outputs), key=_by_principal)
            yield from heapq.merge(*(_load(path) for _, path in outputs), key=_by_account)
        finally:
            self._removal()

    def _groups(self) -> list[list[int]]:
        """Consecutive non-empty buckets, each group up to ``pass_bytes`` of rows (a bucket above
        it alone)."""
        groups: list[list[int]] = []
        size = 0
        for bucket, bytes_ in enumerate(self._sizes):
            if not bytes_:
                continue
            if not groups or size + bytes_ > self.pass_bytes:
                groups.append([])
                size = 0
            groups[-1].append(bucket)
            size += bytes_
        return groups

    def _run(self, groups: list[list[int]], window: Window):
        """Each group's pass: its state rows written to two files (principal rows, account rows),
        the window its rows spanned, the principals and the skipped rows."""
        outputs: list[tuple[str, str]] = []
        found, principals, skipped = Window(), 0, []
        for n, group in enumerate(groups):
            detector = Detector(self.options, self._names)
            detector.bound(*self._range)
            self._add(detector, group)
            rows = detector.results(window)
            found = found.union(detector.window)
            principals += detector.n_principals
            skipped.append(detector.tally.skipped)
            self.passes += 1
            del detector
            paths = (
                os.path.join(self._dir, f"pass{n}.principals"),
                os.path.join(self._dir, f"pass{n}.accounts"),
            )
            accounts = next(
                (i for i, row in enumerate(rows) if row["entity_type"] == state.ACCOUNT), len(rows)
            )
            _dump(paths[0], rows[:accounts])
            _dump(paths[1], rows[accounts:])
            outputs.append(paths)
        total = sum(skipped, start=type(self.head.tally.skipped)())
        return outputs, found, principals, total

    def _add(self, detector: Detector, buckets: Iterable[int]) -> None:
        """The spilled rows of ``buckets`` added to ``detector``, in the order they came (per
        bucket): lines in chunks of up to :data:`FEED_ROWS`, count rows read as they came whole."""
        for bucket in buckets:
            if not self._sizes[bucket]:
                continue
            chunk: list[list[str]] = []
            for kind, block in _blocks(self._path(bucket)):
                if kind == _COLUMNS:
                    _feed(detector, chunk)
                    chunk = []
                    detector.count_rows.add_taken(block)
                    continue
                text = zlib.decompress(block).decode("utf-8", "surrogatepass")
                for line in text.split("\n")[:-1]:
                    chunk.append(json.loads(line[1:]) if line[0] == _RS else line.split(_US))
                    if len(chunk) >= FEED_ROWS:
                        _feed(detector, chunk)
                        chunk = []
            _feed(detector, chunk)


def _feed(detector: Detector, chunk: list[list[str]]) -> None:
    if not chunk:
        return
    enabled = gc.isenabled()
    gc.disable()  # as the command loop feeds a chunk (chunked.feed)
    try:
        detector.add_rows(COLUMNS, chunk)
    finally:
        if enabled:
            gc.enable()


def _blocks(path: str) -> Iterator[tuple[int, bytes]]:
    """A bucket's file a block at a time: (its kind, its bytes)."""
    with open(path, "rb") as handle:
        while True:
            head = handle.read(_HEAD.size)
            if not head:
                return
            kind, size = _HEAD.unpack(head)
            yield kind, handle.read(size)


class SpillError(OptionError):
    """The spill's folder could not be written (a full disk): one line naming it and the cause."""

    def __init__(self, folder: str, error: OSError) -> None:
        super().__init__(
            f"show=state could not write its spilled rows to {os.path.dirname(folder) or '.'}"
            f" ({error.strerror or error}): free disk space there, or run the backfill over fewer days"
        )


def _dump(path: str, rows: list[dict[str, object]]) -> None:
    with open(path, "wb") as handle:
        for at in range(0, len(rows), _BATCH):
            pickle.dump(rows[at : at + _BATCH], handle, pickle.HIGHEST_PROTOCOL)


def _load(path: str) -> Iterator[dict[str, object]]:
    with open(path, "rb") as handle:
        while True:
            try:
                batch = pickle.load(handle)
            except EOFError:
                return
            yield from batch


def _by_principal(row: dict[str, object]) -> tuple:
    return row["account"], row["principal"]


def _by_account(row: dict[str, object]) -> object:
    return row["account"]


def _padded(at: list[int | None]):
    """The spilled fields of a row that lacks some of the columns (empty there)."""
    return lambda row: [row[i] if i is not None else "" for i in at]


def _too_long(options: Options, window: Window, principals: int) -> str:
    """The one-pass message of a range too long for the principals (``ResultsPass.rows``)."""
    span = options.span
    live = window.lo <= window.hi
    if not live and window.first > window.last:
        return ""
    first = min(window.first, window.lo) // span if live else window.first // span
    last = window.hi // span if live else window.last // span
    return too_long(options, int(last - first + 1), principals)


def _last_offset(text: str) -> int:
    """The last part's offset in a ``v4`` text: its last ``;``-field of the form ``<offset>:<n>``
    (entries hold ``|``, profiles ``^``, digests and counts no ``:``); 0 if none."""
    end = len(text)
    while True:
        colon = text.rfind(":", 0, end)
        if colon < 0:
            return 0
        start = text.rfind(";", 0, colon) + 1
        stop = text.find(";", colon)
        offset, _, n = text[start : stop if stop >= 0 else len(text)].partition(":")
        if offset.isdigit() and n.isdigit():
            return int(offset)
        end = start


def _saved_range(text: str, first: float, last: float) -> tuple[float, float]:
    """``first`` and ``last`` widened by a state text's, read without decoding it: the first
    ``"first":`` and the last ``"last":`` of its JSON are its own (its keys are written sorted,
    and a quote inside a JSON string is escaped). A text read otherwise only costs a second pass."""
    head, tail = text.find('"first":'), text.rfind('"last":')
    if head < 0 or tail < 0:
        return first, last
    try:
        return min(first, _int_at(text, head + 8)), max(last, _int_at(text, tail + 7))
    except ValueError:
        return first, last


def _int_at(text: str, at: int) -> int:
    end = text.find(",", at)
    return int(text[at : end if end >= 0 else len(text)].rstrip("}"))


def _state_account(text: str) -> str | None:
    """The account of a state row, or None for a version-1 range row or an unreadable one."""
    try:
        entry = state.decode(text)
    except ValueError:
        return None
    return None if entry.entity_type == state.RANGE else entry.account
