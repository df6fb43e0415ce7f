"""Counting: the :class:`Tally` of failures per (bin, entity, detail), and the count rows.

Both phases count here: the map phase (``phase=map``, on the indexers) turns raw events into
:class:`CountRow` records and ships them encoded in ``iamspike_counts``; the reporting phase
counts raw events the same way and reads count rows back. Raw events and pre-aggregated rows come
in through :mod:`iamspike.intake`. Pure Python: no numpy, no scorer.

A :class:`Tally` keys each failure by :class:`Key` (bin start, account, principal, event source,
API, error code, source IP, user agent). A raw event is counted once per ``eventID`` (its 64-bit
digest, :func:`iamspike.counttext.digest`), so a batch sent twice cannot raise a bin; count rows
keep the digests of the events counted in each entry, and the reporting phase drops an event
that two partitions both counted.

``iamspike_counts`` (the count row's text) is written and read by :mod:`iamspike.counttext`.
Each map phase also sends one *range row* (empty account and principal, ``v2{"lo": .., "hi": ..,
"skipped": {..}}``): the time range of every row it saw (failed or not; the reporting phase
zero-fills over it, within the search's own time range: :meth:`Tally.bound`) and the rows it
skipped, so the search head reports them in its one warning line.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from iamspike import intake
from iamspike.cloudtrail import TIME
from iamspike.countpacked import encode_columns, split_members
from iamspike.counttext import (
    COUNT_VERSION,
    PACKED,
    V4,
    decode_counts,
    encode_counts,
    encode_parts,
    split_parts,
)
from iamspike.failures import CountedCodes
from iamspike.intake import UNKNOWN
from iamspike.state import ACCOUNT_STATE_FIELD, STATE_FIELD, account_state_key, state_key, texts

COUNTS_FIELD = "iamspike_counts"
BAD_COUNTS = "with unreadable iamspike_counts"
OUT_OF_RANGE = "range rows outside the search's time range: clamped to it"
OUTSIDE = "with a _time outside the search's time range"  # count rows (or v4 parts): skipped
STATE_KEYS = "state_keys"  # a v5 row's principals' state keys, space-separated
# A v5 row's bounds: at most this many principals, and no more text than this once it holds two
# (a principal whose own text is larger travels alone, as a v3/v4 row).
MEMBERS = 32
MEMBER_BYTES = 64 * 1024


class Key(NamedTuple):
    """What one failure is counted under (the Tally's dict keys are plain tuples of this layout)."""

    start: int  # bin start, epoch seconds
    account: str
    principal: str
    source: str  # eventSource
    api: str  # eventName
    code: str  # errorCode (ConsoleLoginFailure for a failed console sign-in)
    ip: str  # sourceIPAddress
    user_agent: str


@dataclass
class CountRow:
    """One (bin, account, principal) with its failures: what crosses from the map phase."""

    start: int
    account: str
    principal: str
    service: bool
    entries: list[tuple[str, str, str, str, str, int, bytes]] = field(default_factory=list)
    # (source, api, code, ip, user_agent, count, digests packed)
    masks: dict[str, int] = field(default_factory=dict)  # event source -> its minutes (P39)

    @property
    def failures(self) -> int:
        return sum(entry[5] for entry in self.entries)

    def counts_text(self) -> str:
        """The cell's ``iamspike_counts`` (``v3``)."""
        return encode_counts(self.service, self.entries, self.masks)

    def to_row(self) -> dict[str, object]:
        """The output row of the map phase."""
        return {
            TIME: self.start,
            "account": self.account,
            "principal": self.principal,
            "failures": self.failures,
            "state_key": state_key(self.account, self.principal),
            "account_state_key": account_state_key(self.account),
            COUNTS_FIELD: self.counts_text(),
        }


def wire_rows(cells: Iterable[CountRow]) -> list[dict[str, object]]:
    """The map phase's output rows for its cells: one row per (account, principal), ``v4`` with
    one part per bin from the first bin on (``v3`` when the principal has one bin), in first-seen
    order of the principals. One state key per row, as for a cell."""
    principals: dict[tuple[str, str], list[CountRow]] = {}
    for cell in cells:
        principals.setdefault((cell.account, cell.principal), []).append(cell)
    out = []
    for group in principals.values():
        if len(group) == 1:
            out.append(group[0].to_row())
            continue
        group.sort(key=lambda cell: cell.start)
        row = group[0].to_row()
        row["failures"] = sum(cell.failures for cell in group)
        row[COUNTS_FIELD] = encode_parts(
            any(cell.service for cell in group),
            [(cell.start - group[0].start, cell.entries, cell.masks) for cell in group],
        )
        out.append(row)
    return out


def packed_rows(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """One principal's rows (``v3``/``v4``) packed by account into ``v6`` rows of at most
    :data:`MEMBERS` principals and :data:`MEMBER_BYTES` of text, in first-seen order; a group of
    one stays the row it was. A ``v6`` row's ``state_keys`` lists its principals' state keys,
    space-separated (the state macro splits them and the lookup matches each: one field, no
    multivalue twin on the wire); it has no ``state_key`` and an empty ``principal``."""
    accounts: dict[str, list[list[dict[str, object]]]] = {}
    sizes: dict[str, int] = {}  # each account's last group's text so far
    for row in rows:
        account, size = row["account"], len(row[COUNTS_FIELD])
        groups = accounts.setdefault(account, [[]])
        group = groups[-1]
        if group and (len(group) >= MEMBERS or sizes[account] + size > MEMBER_BYTES):
            group = []
            groups.append(group)
            sizes[account] = 0
        group.append(row)
        sizes[account] = sizes.get(account, 0) + size
    out = []
    for groups in accounts.values():
        for group in groups:
            if len(group) == 1:
                out.append(group[0])
                continue
            first = min(member[TIME] for member in group)
            out.append(
                {
                    TIME: first,
                    "account": group[0]["account"],
                    "principal": "",
                    "failures": sum(member["failures"] for member in group),
                    STATE_KEYS: " ".join(member["state_key"] for member in group),
                    "account_state_key": group[0]["account_state_key"],
                    COUNTS_FIELD: encode_columns(
                        [
                            (member[TIME] - first, member["principal"], member[COUNTS_FIELD])
                            for member in group
                        ]
                    ),
                }
            )
    return out


def unpack_rows(
    header: list[str],
    rows: Iterable[list[str]],
    skipped: Counter,
    within: Callable[[float], bool] | None = None,
) -> Iterator[list[str]]:
    """Rows with each ``v5``/``v6`` row replaced by one row per member (its principal, ``_time`` and
    ``v3``/``v4`` text, the account's state on the first) and one state row per text of its
    ``iamspike_state`` (the lookup's answer for ``state_keys``: each text names its own entity);
    other rows unchanged. ``header`` must hold ``_time``, ``account``, ``principal`` and
    ``iamspike_state`` for a ``v5`` row to be read. A ``v5`` text that is not one of ours, or
    whose members are not as many as its ``state_keys`` (a text cut at a member's end reads as
    whole members), is counted in ``skipped``; the states attached to it are still read. So is a
    ``v5`` row with a member dated outside the search's range (``within``: :meth:`Tally.within`),
    once as one row (a damaged ``_time`` moves all its members)."""
    index = {name: i for i, name in enumerate(header)}
    counts_i, time_i, keys_i = index[COUNTS_FIELD], index.get(TIME), index.get(STATE_KEYS)
    prin_i, state_i = index.get("principal"), index.get(STATE_FIELD)
    cleared = [index[name] for name in (STATE_FIELD, ACCOUNT_STATE_FIELD, STATE_KEYS) if name in index]
    account_i = index.get(ACCOUNT_STATE_FIELD)
    for row in rows:
        if row[counts_i][:2] not in PACKED:
            yield row
            continue
        try:
            members = split_members(row[counts_i])
            if keys_i is not None and row[keys_i] and len(row[keys_i].split()) != len(members):
                raise ValueError
            first = float(row[time_i])
            if not intake.usable_time(first) or prin_i is None:
                raise ValueError
            first = int(first)
        except (ValueError, TypeError, IndexError, OverflowError):
            skipped[BAD_COUNTS] += 1
            members = []
        if members and within is not None and not all(within(first + offset) for offset, _, _ in members):
            skipped[OUTSIDE] += 1
            members = []
        for n, (offset, principal, text) in enumerate(members):
            member = list(row)
            for i in cleared:
                if not (n == 0 and i == account_i):
                    member[i] = ""
            member[time_i], member[prin_i], member[counts_i] = str(first + offset), principal, text
            yield member
        saved = texts(row[state_i]) if state_i is not None else []
        if not members and account_i is not None and row[account_i]:
            saved.append(row[account_i])  # the account's state, which no member carries
        if saved and state_i is not None:
            blank = [""] * len(row)
            for text in saved:
                state_row = list(blank)
                state_row[state_i] = text
                yield state_row


def unfold_rows(index: Mapping[str, int], rows: Iterable[list[str]], skipped: Counter):
    """Count rows with each ``v4`` row replaced by one ``v3`` row per part (its bin's ``_time``);
    other rows unchanged. A ``v4`` text that is not one of ours is counted in ``skipped``."""
    counts_i, time_i = index[COUNTS_FIELD], index.get(TIME)
    for row in rows:
        if row[counts_i][:2] != V4:
            yield row
            continue
        try:
            _service, parts = split_parts(row[counts_i])
            first = float(row[time_i])
            if not intake.usable_time(first):
                raise ValueError
            first = int(first)
        except (ValueError, TypeError, IndexError, OverflowError):
            skipped[BAD_COUNTS] += 1
            continue
        for offset, text in parts:
            part = list(row)
            part[time_i], part[counts_i] = str(first + offset), text
            yield part


class Tally:
    """Failures counted so far, by :class:`Key`; feed it chunk by chunk, read it at the end."""

    def __init__(
        self,
        span: int,
        counted: CountedCodes,
        sources: Iterable[str] = (),
        count_field: str | None = None,
        keep_ids: bool = False,
    ) -> None:
        self.span = span
        self.counted = counted
        self.sources = frozenset(sources)
        self.count_field = count_field
        self.counts: dict[tuple, int] = {}
        # (bin start, account, principal, event source) -> the slots of the bin it failed in (P39)
        self.slots: dict[tuple, int] = {}
        self.ids: dict[tuple, list[str]] | None = {} if keep_ids else None
        self.services: dict[tuple[str, str], bool] = {}
        self.lo = math.inf
        self.hi = -math.inf
        # The search's own time range (epoch s, ``latest`` excluded; infinite where unbounded):
        # a range row reaching outside it is clamped to it (:meth:`bound`).
        self.earliest = -math.inf
        self.latest = math.inf
        self.rows = 0
        self.skipped: Counter = Counter()
        self.messages: list[str] = []
        self.seen: set = set()  # the raw events counted, by eventID (see intake.add_events)
        self._digests: dict[tuple, bytes | bytearray] = {}  # count-row entries' digests, packed
        self.strings: dict = {}  # one object per text (and bin start) read from count rows
        self.identities: dict[tuple, tuple[str, str, bool]] = {}  # raw events' identities
        self.aggregated_identities: dict[tuple, tuple[str, str, bool]] = {}

    # ---- what came in

    def add_rows(self, header: list[str], rows: Iterable[list[str]]) -> None:
        """Raw events (extracted fields and/or ``_raw``) or, with ``count_field``, aggregated rows
        (:func:`iamspike.intake.add_rows`)."""
        intake.add_rows(self, header, rows)

    def add_records(self, records: Iterable[Mapping]) -> None:
        """CloudTrail record dicts (a log file's ``Records[]``)."""
        intake.add_records(self, records)

    def add_count_rows(self, index: Mapping[str, int], rows: list[list[str]]) -> None:
        """Count rows from map phases (any number of partitions, any order; ``v3``, ``v2`` or
        ``v1``), every entry read. Their texts are kept once (:attr:`strings`), so a key costs
        its tuple, not its text. (The search head reads most ``v3`` rows without their entries:
        :mod:`iamspike.countrows`.)"""
        counts_i, time_i = index[COUNTS_FIELD], index.get(TIME)
        acct_i, prin_i = index.get("account"), index.get("principal")
        keep = self.strings.setdefault
        for row in unfold_rows(index, rows, self.skipped):
            try:
                decoded = decode_counts(row[counts_i], keep)
                if isinstance(decoded, dict):
                    self._add_range(decoded)
                    continue
                service, entries, masks = decoded
                seconds = float(row[time_i])
                if not intake.usable_time(seconds):
                    raise ValueError
                if not self.within(seconds):
                    self.skipped[OUTSIDE] += 1
                    continue
                start = int(seconds // self.span) * self.span
                account = row[acct_i] or UNKNOWN
                principal = row[prin_i] or UNKNOWN
            except (ValueError, TypeError, IndexError, KeyError, OverflowError):
                self.skipped[BAD_COUNTS] += 1
                continue
            self.add_entries(start, account, principal, service, entries, masks)

    def add_entries(
        self,
        start: int,
        account: str,
        principal: str,
        service: bool,
        entries,
        masks: Mapping[str, int] | None = None,
    ) -> None:
        """One count row's decoded entries (:func:`iamspike.counttext.decode_counts`) and its
        event sources' minutes (none for rows written without them)."""
        keep = self.strings.setdefault
        start, account, principal = keep(start, start), keep(account, account), keep(principal, principal)
        counted, sources = self.counted, self.sources
        counts, digests_of, services = self.counts, self._digests, self.services
        if start < self.lo:
            self.lo = start
        if start > self.hi:
            self.hi = start
        entity = (account, principal)
        if service and not services.get(entity):
            services[entity] = True
        elif entity not in services:
            services[entity] = False
        for source, api, code, ip, agent, count, digests in entries:
            if (code and not counted[code]) or (sources and source not in sources):
                continue
            key = (start, account, principal, source, api, code, ip, agent)
            counts[key] = counts.get(key, 0) + count
            mask = masks.get(source) if masks else 0
            if mask:
                slots, cell = self.slots, key[:4]
                slots[cell] = slots.get(cell, 0) | mask
            if digests:
                known = digests_of.get(key)
                if known is None:
                    digests_of[key] = digests
                elif known.__class__ is bytes:  # a second text: settled by drop_duplicates
                    digests_of[key] = bytearray(known) + digests
                else:
                    known += digests

    def bound(self, earliest: float, latest: float) -> None:
        """The search's time range (splunkd's ``earliest_time`` and ``latest_time``, ``latest``
        excluded; infinite where unbounded): a range row never widens the scored range beyond it
        (a damaged ``lo`` years early would score years of empty bins) and a count row dated
        outside it is skipped (:meth:`within`). ``earliest`` is kept as its bin's start: a
        partition's ``lo`` may be its first bin's (a fold phase's)."""
        self.earliest = earliest // self.span * self.span if math.isfinite(earliest) else earliest
        self.latest = latest

    def within(self, seconds: float) -> bool:
        """A count row's bin start in the search's time range (always, without one). A map phase
        only counts the search's own events, so a count row dated outside it was damaged on the
        way: one such row would otherwise widen the scored range by years and move the
        principal's history."""
        return self.earliest <= seconds < self.latest

    def _add_range(self, blob: Mapping) -> None:
        low, high = float(blob["lo"]), float(blob["hi"])
        if intake.usable_time(low) and intake.usable_time(high):  # else only its rows' times
            if low < self.earliest or high >= self.latest:
                if OUT_OF_RANGE not in self.messages:
                    self.messages.append(OUT_OF_RANGE)
                low, high = max(low, self.earliest), min(high, self.latest - 0.001)
            if low <= high:
                self.lo = min(self.lo, low)
                self.hi = max(self.hi, high)
        for reason, n in dict(blob.get("skipped", {})).items():
            self.skipped[str(reason)] += int(n)
        for message in blob.get("messages", []):
            if message not in self.messages:
                self.messages.append(str(message))

    def drop_duplicates(self) -> None:
        """Take out of the counts the events that more than one count row carried (the same
        digest under the same key: an event two indexers both counted). Call before reading the
        counts; each key is settled once."""
        for key, packed in self._digests.items():
            if packed.__class__ is bytes:
                continue
            sent = array("Q", packed)
            distinct = set(sent)
            self.counts[key] -= len(sent) - len(distinct)
            self._digests[key] = array("Q", distinct).tobytes()

    # ---- what goes out

    def count_rows(self) -> list[CountRow]:
        """The counts so far as CountRows (one per bin, account, principal), in first-seen order."""
        cells: dict[tuple, CountRow] = {}
        ids = self.ids or {}
        slots = self.slots
        for key, count in self.counts.items():
            start, account, principal, source, api, code, ip, agent = key
            cell = cells.get(key[:3])
            if cell is None:
                service = self.services.get((account, principal), False)
                cell = cells[key[:3]] = CountRow(start, account, principal, service)
            mask = slots.get(key[:4])
            if mask:
                cell.masks[source] = mask
            cell.entries.append((source, api, code, ip, agent, count, b"".join(ids.get(key, ()))))
        return list(cells.values())

    def range_row(self) -> dict[str, object]:
        """The row that carries this partition's time range and skipped rows."""
        blob: dict[str, object] = {"lo": self.lo, "hi": self.hi}
        if self.skipped:
            blob["skipped"] = dict(self.skipped)
        if self.messages:
            blob["messages"] = self.messages
        low = self.lo if math.isfinite(self.lo) else 0
        return {
            TIME: int(low // self.span) * self.span,
            "account": "",
            "principal": "",
            "failures": 0,
            COUNTS_FIELD: COUNT_VERSION + json.dumps(blob, separators=(",", ":"), allow_nan=True),
        }

    def clear_counts(self) -> None:
        """Forget the counts (after they were sent) and, when the digests were sent with them,
        the eventIDs seen: a copy counted after this carries its digest under the same key, which
        the search head drops (so a map phase's memory follows its flushes, not its range).
        Keep the range."""
        self.counts = {}
        self.slots = {}
        if self.ids is not None:
            self.ids = {}
            self.seen = set()

    def warning(self) -> str:
        """One line naming every kind of skipped row, or ''."""
        if not self.skipped:
            return ""
        ranked = self.skipped.most_common()
        (reason, n), rest = ranked[0], ranked[1:]
        return "skipped " + ", ".join(
            [f"{n} {'row' if n == 1 else 'rows'} {reason}"] + [f"{m} {why}" for why, m in rest]
        )
