"""Count rows on the search head: each ``v3`` row read from its summary, its entries kept packed.

A map phase's count row (``iamspike_counts``, :mod:`iamspike.counttext`) says in its summary what
scoring needs of a (bin, account, principal) cell: its failures, its failed console sign-ins, its
APIs, its event sources with the minutes it failed on each (rule P39), and (to check them against
this search's options) its error codes. At intake :class:`CountRows` reads that summary and
nothing else: per row a few fields go into arrays (bin, entity, failures, console sign-ins, API
ids, event source ids and their masks), the eventID digests are decoded into one buffer, and the
entries' text is kept in compressed blocks (:mod:`iamspike.countentries`). No
per-key object: memory follows rows and their events. A ``v4`` row (one principal over several
bins) is read as one ``v3`` row per bin (:func:`~iamspike.counttext.part_columns`), so "row"
below is a (bin, account, principal) row either way.

:meth:`CountRows.resolve` (once, before the results pass) settles what summaries cannot: a cell
whose rows share a digest (an event two indexers counted, or counted again after an early
send), or a cell the :class:`~iamspike.counting.Tally` also holds entry by entry (``v2``/``v1``
rows from indexers upgraded after the search head, rows with entries this search's options leave
out), is moved into the Tally entry by entry, where ``drop_duplicates`` drops the copies as
before. The entries of the other rows are read again only to explain a flagged cell
(:meth:`CountRows.entries`).
"""

from __future__ import annotations

import binascii
import pickle
from array import array
from collections.abc import Iterable, Iterator, Mapping
from operator import le

import numpy as np

from iamspike.cloudtrail import TIME
from iamspike.countcolumns import MAX_ROW, add_columns
from iamspike.countcopies import shared_digests, take_copies
from iamspike.countentries import BLOCK_ROWS, EntryBlocks
from iamspike.counting import BAD_COUNTS, COUNTS_FIELD, OUTSIDE, Tally
from iamspike.countpacked import member_columns
from iamspike.countprofiles import FILTERED, Profiles
from iamspike.counttext import (
    HEADS,
    V4,
    V6,
    add_fields,
    decode_entries,
    part_columns,
)
from iamspike.intake import UNKNOWN, usable_time


class CountRows:
    """``v3`` count rows as arrays; anything else goes to the Tally (read whole, as before)."""

    def __init__(self, tally: Tally, block_rows: int = BLOCK_ROWS, names: CountRows | None = None) -> None:
        """``names``: another instance whose API and event source ids (and profiles) these rows
        share, so rows taken from it (:meth:`take`) are added here without renumbering them."""
        self.tally = tally
        self.block_rows = block_rows
        self.profiles = Profiles(tally) if names is None else names.profiles
        self.api_names, self.source_names = self.profiles.api_names, self.profiles.source_names
        self._profiles, self._bases = self.profiles.texts, self.profiles.bases
        self._clear()

    def _clear(self) -> None:
        """No rows (the names stay)."""
        self.entities: dict[tuple[str, str], int] = {}  # (account, principal) -> entity id
        self.services: set[int] = set()  # entities a row marks as an AWS service principal
        self._accounts: dict[str, str] = {}
        # per row
        self.bins = array("i")  # bin number (bin start // span: < 2**31 / MIN_SPAN, intake.usable_time)
        self.entity = array("i")
        self.failures = array("i")  # a row's failures are < 2**31 (its digests alone would be 17 GB)
        self.console = array("i")
        self.n_apis = array("H")  # at most countprofiles.WIDEST, as n_sources and sources
        self.n_digests = array("i")
        # per row, flat
        self.apis = array("i")  # the rows' API ids, row after row
        self.n_sources = array("H")
        self.sources = array("H")  # the rows' event source ids, row after row
        self.masks = array("H")  # each of those sources' minutes (P39: 12 bits; 0: none sent)
        self.digests = bytearray()  # the rows' eventID digests, row after row
        # where a row's entries text begins in its *region* (-1: the region is the row's own;
        # a v6 row's parts share one region, their entries joined by ";": the first part's 0);
        # empty while every row's region is its own (v3 and v4 rows: an alert's rows)
        self.entry_at = array("i")
        self.blocks = EntryBlocks(self.block_rows)  # the entries texts, compressed
        self._unreadable: set[int] = set()  # rows whose entries text did not decode
        self.fast = np.zeros(0, dtype=bool)  # after resolve(): rows not moved into the Tally
        self._resolved = -1  # rows when resolve() ran

    def __len__(self) -> int:
        return len(self.bins)

    # ---- intake

    def add(self, index: Mapping[str, int], rows: Iterable[list[str]]) -> None:
        """Count rows (and range rows) of one chunk, read one at a time (``rows`` may be the
        chunk's csv reader). A ``v4`` row is read part by part from one split of its text (no
        ``v3`` row is made of a part unless the Tally must read it whole)."""
        tally = self.tally
        counts_i, time_i = index[COUNTS_FIELD], index.get(TIME)
        acct_i, prin_i = index.get("account"), index.get("principal")
        named = acct_i is not None and prin_i is not None
        span = tally.span
        profiles, entities = self._profiles, self.entities
        a2b, add_row = binascii.a2b_base64, self._add_row
        whole: list[list[str]] = []  # rows read entry by entry by the Tally
        bad = outside = 0
        within = tally.within
        for row in rows:
            text = row[counts_i]
            if text[:3] in HEADS:
                parts = [(None, text.split(";", 5))]
            elif text[:2] == V4:
                try:
                    first = float(row[time_i])
                    if not usable_time(first):
                        raise ValueError
                    columns = part_columns(text)
                except (ValueError, TypeError, IndexError, OverflowError):
                    tally.skipped[BAD_COUNTS] += 1
                    continue
                if not (within(first) and within(first + columns[1][-1])):
                    outside += 1  # the row, once (its parts' offsets ascend from 0)
                    continue
                first = int(first)
                if (
                    len(columns[1]) > 1
                    and named
                    and "\n" not in text
                    and self._add_parts(columns, first, row[acct_i] or UNKNOWN, row[prin_i] or UNKNOWN)
                ):
                    continue
                parts = _parts(columns, first)
            else:
                whole.append(row)
                continue
            e = None
            for when, fields in parts:
                try:
                    head, total, consoles, profile, packed, rest = fields
                    found = profiles.get(profile)
                    if found is None:
                        found = self.profiles.read(profile)
                    if found is FILTERED:
                        whole.append(row if when is None else _part_row(row, time_i, counts_i, when, fields))
                        continue
                    seconds = float(row[time_i]) if when is None else when
                    if not usable_time(seconds):
                        raise ValueError
                    if not within(seconds):
                        outside += 1
                        continue
                    start = int(seconds // span)
                    if e is None:
                        key = (row[acct_i] or UNKNOWN, row[prin_i] or UNKNOWN)
                    packed = a2b(packed)
                    total, consoles = int(total), int(consoles)
                    counted = 0 <= consoles <= total and 0 < total < MAX_ROW
                    if len(packed) & 7 or not counted or "\n" in rest:
                        raise ValueError
                except (ValueError, TypeError, IndexError, OverflowError, binascii.Error):
                    bad += 1
                    continue
                if e is None:
                    e = entities.get(key)
                    if e is None:
                        e = self._entity(key)
                if head == "v31":
                    self.services.add(e)
                add_row(start, e, total, consoles, found, packed, rest)
        if bad:
            tally.skipped[BAD_COUNTS] += bad
        if outside:
            tally.skipped[OUTSIDE] += outside
        if whole:
            tally.add_count_rows(index, whole)

    def add_text(self, text: str, when: str, account: str, principal: str) -> int | None:
        """One count row's ``v3`` or ``v4`` text (``when`` its ``_time``) added column by column
        when it reads whole and this search counts all of it, as :meth:`add` would add it: the
        offset of its last bin (0 for ``v3``). None (nothing added) otherwise: :meth:`add` then
        reads the row."""
        if "\n" in text:
            return None
        try:
            first = float(when)
            if not (usable_time(first) and self.tally.within(first)):
                return None
            if text[:2] == V4:
                columns = part_columns(text)
                added = self._add_parts(columns, int(first), account or UNKNOWN, principal or UNKNOWN)
                return columns[1][-1] if added else None
            if text[:3] not in HEADS:
                return None
            head, total, consoles, profile, packed, rest = text.split(";", 5)
            found = self._profiles.get(profile)
            if found is None:
                found = self.profiles.read(profile)
            if found is FILTERED:
                return None
            packed = binascii.a2b_base64(packed)
            total, consoles = int(total), int(consoles)
        except (ValueError, TypeError, IndexError, OverflowError, binascii.Error):
            return None
        if not (0 <= consoles <= total and 0 < total < MAX_ROW) or len(packed) & 7:
            return None
        key = (account or UNKNOWN, principal or UNKNOWN)
        e = self.entities.get(key)
        if e is None:
            e = self._entity(key)
        if head == "v31":
            self.services.add(e)
        self._add_row(int(first) // self.tally.span, e, total, consoles, found, packed, rest)
        return 0

    def _add_row(self, start: int, e: int, total: int, consoles: int, found: tuple, packed: bytes, rest: str):
        """One row's columns (``found`` its profile's packed ids, ``packed`` its digests)."""
        self.bins.append(start)
        self.entity.append(e)
        self.failures.append(total)
        self.console.append(consoles)
        apis, n_apis, srcs, n_srcs, masks = found
        self.n_apis.append(n_apis)
        self.apis.frombytes(apis)
        self.n_sources.append(n_srcs)
        self.sources.frombytes(srcs)
        self.masks.frombytes(masks)
        self.n_digests.append(len(packed) >> 3)
        self.digests += packed
        if self.entry_at:
            self.entry_at.append(-1)
        self.blocks.add(rest, len(self.bins))

    def add_members(
        self, text: str, first: int, account: str, expected: int | None = None
    ) -> tuple[int, int, int, int] | None:
        """A ``v5`` or ``v6`` row's text (``first`` its ``_time``, ``account`` its account or
        ``UNKNOWN``) added as :meth:`add_text` adds each member's own text (its ``_time``:
        ``first`` plus its offset), all its parts at once: ``(the first part's _time, the last
        part's, the members, the characters of their _time, principal and text)``. None (nothing
        added) when a member would not be added that way: the row is then unpacked member by
        member (:func:`~iamspike.counting.unpack_rows`)."""
        if "\n" in text:
            return None
        if text[:2] == V6:
            return add_columns(self, text, first, account, expected)
        try:
            members, (offsets, totals, consoles, profiles, packed, rests), length = member_columns(text)
        except (ValueError, IndexError):
            return None
        if expected is not None and len(members) != expected:
            return None
        # every part's time between the earliest and the latest: each is read when both are
        low, high = first + min(offsets), first + max(offsets)
        within = self.tally.within
        if not (usable_time(low) and usable_time(high) and within(low) and within(high)):
            return None
        read = self._read(profiles, totals, consoles, packed)
        if read is None:
            return None
        entity = []
        for _offset, principal, head, n in members:
            e = self._entity_of(account, principal or UNKNOWN, head[2] == "1")
            entity += [e] * n
        self._extend(first, offsets, entity, read, rests)
        characters = length + sum(len(str(first + at)) + len(principal) for at, principal, _, _ in members)
        return low, high, len(members), characters

    def _add_parts(self, columns: tuple, first: int, account: str, principal: str) -> bool:
        """A ``v4`` row's parts (:func:`~iamspike.counttext.part_columns`, ``first`` the row's
        ``_time``) added column by column; False (nothing added) when a part needs reading one by
        one (a profile this search leaves out, an unreadable part)."""
        head, offsets, totals, consoles, profiles, packed, rests = columns
        read = self._read(profiles, totals, consoles, packed)
        if (
            read is None
            or not (usable_time(first) and usable_time(first + offsets[-1]))
            or not (self.tally.within(first) and self.tally.within(first + offsets[-1]))
        ):
            return False  # read part by part, where it is skipped
        e = self._entity_of(account, principal, head == "v31")
        self._extend(first, offsets, [e] * len(offsets), read, rests)  # extend's speed from a list
        return True

    def _read(self, profiles: list[str], totals: list[str], consoles: list[str], packed: list[str]):
        """Parts' summaries read: (their profiles' packed ids, failures, console sign-ins,
        digests); None when a part needs reading one by one (a profile this search leaves out, an
        unreadable part)."""
        get = self._profiles.get
        found = list(map(get, profiles))
        try:
            if None in found:
                for at in [at for at, known in enumerate(found) if known is None]:
                    known = get(profiles[at])  # a profile twice in the row is read once
                    found[at] = self.profiles.read(profiles[at]) if known is None else known
            if FILTERED in found:
                return None
            totals, consoles = list(map(int, totals)), list(map(int, consoles))
            packed = list(map(binascii.a2b_base64, packed))
        except (ValueError, binascii.Error):
            return None
        if (
            min(totals) <= 0
            or max(totals) >= MAX_ROW
            or min(consoles) < 0
            or not all(map(le, consoles, totals))
            or any(map((7).__and__, map(len, packed)))  # not whole digests
        ):
            return None
        return found, totals, consoles, packed

    def _entity_of(self, account: str, principal: str, service: bool) -> int:
        key = (account, principal)
        e = self.entities.get(key)
        if e is None:
            e = self._entity(key)
        if service:
            self.services.add(e)
        return e

    def _extend(
        self, first: int, offsets: list[int], entity: list[int], read: tuple, rests: list[str]
    ) -> None:
        """Parts' columns (:meth:`_read`'s ``read``), each part's bin ``first`` plus its offset."""
        found, totals, consoles, packed = read
        span = self.tally.span
        self.bins.fromlist([(first + offset) // span for offset in offsets])  # fromlist: 3 times
        self.entity.fromlist(entity)
        self.failures.fromlist(totals)
        self.console.fromlist(consoles)
        apis, n_apis, srcs, n_srcs, masks = zip(*found)
        self.n_apis.fromlist(list(n_apis))
        self.apis.frombytes(b"".join(apis))
        self.n_sources.fromlist(list(n_srcs))
        self.sources.frombytes(b"".join(srcs))
        self.masks.frombytes(b"".join(masks))
        self.n_digests.fromlist([len(digests) >> 3 for digests in packed])
        self.digests += b"".join(packed)
        if self.entry_at:
            self.entry_at.fromlist([-1] * len(rests))
        self.blocks.extend(rests, len(self.bins))

    def region_offsets(self, added: int) -> array:
        """:attr:`entry_at` with one offset a row for the rows held but the last ``added`` (-1
        each where it was still empty), for those rows' offsets to be appended."""
        if not self.entry_at:
            self.entry_at.fromlist([-1] * (len(self.bins) - added))
        return self.entry_at

    def _entity(self, key: tuple[str, str]) -> int:
        account, principal = key
        key = (self._accounts.setdefault(account, account), principal)
        e = self.entities[key] = len(self.entities)
        return e

    # ---- moving rows (show=state's spill: rows read as they arrive, added to a pass later)

    def take(self) -> bytes:
        """The rows, as :meth:`add_taken` adds them (their ids in the names shared); none left."""
        columns = (self.bins, self.entity, self.failures, self.console, self.n_apis, self.n_digests)
        columns += (self.apis, self.n_sources, self.sources, self.masks, self.entry_at)
        out = pickle.dumps(
            (
                list(self.entities),
                sorted(self.services),
                [column.tobytes() for column in columns],
                bytes(self.digests),
                *self.blocks.taken(len(self.bins)),
            ),
            pickle.HIGHEST_PROTOCOL,
        )
        self._clear()
        return out

    def add_taken(self, taken: bytes) -> None:
        """Rows :meth:`take` gave (of an instance sharing these names), after those here."""
        labels, services, columns, digests, blocks, block_rows = pickle.loads(taken)
        base = len(self.bins)
        known = list(map(self.entities.get, labels))
        if None in known:
            for at, e in enumerate(known):
                if e is None:
                    known[at] = self._entity(labels[at])
        ids = array("i", known)
        for e in services:
            self.services.add(ids[e])
        offsets = columns[-1]  # empty where each taken row's region is its own
        if offsets or self.entry_at:
            if not offsets:
                offsets = array("i", [-1] * (len(columns[0]) // self.bins.itemsize)).tobytes()
            self.region_offsets(0).frombytes(offsets)
        self.bins.frombytes(columns[0])
        entity = np.frombuffer(columns[1], dtype=np.int32)
        self.entity.frombytes(np.frombuffer(ids, dtype=np.int32)[entity].tobytes())
        rest = (self.failures, self.console, self.n_apis, self.n_digests, self.apis, self.n_sources)
        for column, data in zip((*rest, self.sources, self.masks), columns[2:-1]):
            column.frombytes(data)
        self.digests += digests
        self.blocks.add_taken(blocks, block_rows, base)

    # ---- reading back

    def entries(self, rows: Iterable[int]) -> Iterator[tuple[int, list[tuple]]]:
        """(row, its entries ``(source, api, code, ip, user_agent, count, digests)``) in
        ascending row order, one block at a time. An entries text that does not decode is
        counted as skipped (its summary was counted) and has no entries."""
        offsets = self._digest_offsets()
        for r, text in self.blocks.texts(rows, self.entry_at, len(self.bins)):
            packed = bytes(self.digests[offsets[r] * 8 : offsets[r + 1] * 8])
            try:
                yield r, decode_entries(text, packed)
            except (ValueError, IndexError):
                self._unreadable_row(r)
                yield r, []

    def add_fields(self, rows: Iterable[int], tables_of) -> None:
        """Each row's entries counted into ``tables_of(i)`` for the i-th row in ascending row
        order (five dicts: source, API, error code, source IP, user agent), as an explanation
        reads them, one block at a time. A text that does not decode is counted as skipped once
        (its summary was counted)."""
        for i, (r, text) in enumerate(self.blocks.texts(rows, self.entry_at, len(self.bins))):
            try:
                add_fields(text, tables_of(i))
            except (ValueError, IndexError):
                self._unreadable_row(r)

    def _unreadable_row(self, r: int) -> None:
        if r not in self._unreadable:
            self._unreadable.add(r)
            self.tally.skipped[BAD_COUNTS] += 1

    def _digest_offsets(self) -> np.ndarray:
        offsets = np.zeros(len(self.bins) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(self.n_digests, dtype=np.int32), out=offsets[1:])
        return offsets

    def labels(self) -> list[tuple[str, str]]:
        """(account, principal) of each entity id."""
        return list(self.entities)

    # ---- settling

    def resolve(self, failures_only: bool = False) -> None:
        """Move into the Tally, entry by entry, the rows of every cell whose rows share a digest
        or that the Tally also counts from whole rows; the rest stay rows (:attr:`fast`). Call
        after the last rows, before the Tally's ``drop_duplicates``; a second call changes nothing.

        With ``failures_only`` (``show=state``: failures and APIs per cell, no console sign-ins
        and no explanations), a cell whose rows share digests stays rows: each copy of a digest
        after the first in the cell is taken off the failures of the cell's first row."""
        n = len(self.bins)
        if self._resolved == n:
            return
        self._resolved = n
        self.fast = np.ones(n, dtype=bool)
        if not n:
            return
        tally = self.tally
        span = tally.span
        bins = np.frombuffer(self.bins, dtype=np.int32).astype(np.int64)
        low, width = int(bins.min()), int(bins.max() - bins.min()) + 1
        tally.lo = min(tally.lo, low * span)
        tally.hi = max(tally.hi, int(bins.max()) * span)
        cell = np.frombuffer(self.entity, dtype=np.int32).astype(np.int64) * width + (bins - low)
        n_digests = np.frombuffer(self.n_digests, dtype=np.int32)
        digests = np.frombuffer(self.digests, dtype=np.uint64)
        if failures_only:
            slow = take_copies(cell, n_digests, digests, self.failures)
        else:
            slow = shared_digests(cell, n_digests, digests)
        held = [
            self.entities[key[1:3]] * width + (key[0] // span - low)
            for key in tally._digests
            if key[1:3] in self.entities and 0 <= key[0] // span - low < width
        ]
        if held:
            slow = np.union1d(slow, np.array(held, dtype=np.int64))
        if not len(slow):
            return
        moved = np.isin(cell, slow)
        self.fast = ~moved
        labels = self.labels()
        entity, names, sources, masks = self.entity, self.source_names, self.sources, self.masks
        at = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(self.n_sources, dtype=np.uint16), out=at[1:])
        for r, entries in self.entries(np.flatnonzero(moved).tolist()):
            e = entity[r]
            account, principal = labels[e]
            minutes = {names[sources[i]]: masks[i] for i in range(at[r], at[r + 1])}
            tally.add_entries(self.bins[r] * span, account, principal, e in self.services, entries, minutes)


def _parts(columns: tuple, first: int) -> list[tuple[int, list[str]]]:
    """A ``v4`` row's parts (:func:`~iamspike.counttext.part_columns`) as (the part's ``_time``,
    its ``v3`` fields)."""
    head, offsets, *fields = columns
    return [(first + offset, [head, *part]) for offset, *part in zip(offsets, *fields)]


def _part_row(row: list[str], time_i: int, counts_i: int, when: int, fields: list[str]) -> list[str]:
    """The ``v3`` row of one part of a ``v4`` row (what the Tally reads whole)."""
    part = list(row)
    part[time_i], part[counts_i] = str(when), ";".join(fields)
    return part
