"""Counting: raw events, pre-aggregated rows and count rows -> failures per (bin, entity, detail).

Both phases count here: the map phase (``phase=map``, on the indexers) turns raw events into
:class:`CountRow` records and ships them encoded in ``iamspike_counts``; the reporting phase
counts raw events the same way and reads count rows back. Pure Python: no numpy, no scorer.

A :class:`Tally` keys each failure by :class:`Key` (bin start, account, principal, event source,
API, error code, source IP, user agent). A raw event is counted once per ``eventID`` (its 64-bit
digest, :func:`digest`), so a batch sent twice cannot raise a bin; count rows keep the digests of
the events counted in each entry, and the reporting phase drops an event that two partitions
both counted.

``iamspike_counts`` (the count row's text) is written and read by :mod:`iamspike.counttext`.
Each map phase also sends one *range row* (empty account and principal, ``v2{"lo": .., "hi": ..,
"skipped": {..}}``): the time range of every row it saw (failed or not; the reporting phase
zero-fills over it) and the rows it skipped, so the search head reports them in its one warning
line.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

from iamspike.cloudtrail import FIELDS, RAW, TIME, parse_raw, record_to_row
from iamspike.counttext import (
    COUNT_VERSION,
    V4,
    decode_counts,
    digest,
    encode_counts,
    encode_parts,
    split_parts,
)
from iamspike.failures import CONSOLE_LOGIN_FAILURE, CountedCodes, console_login_failed
from iamspike.principals import fold_principal
from iamspike.state import account_state_key, state_key

COUNTS_FIELD = "iamspike_counts"
MAX_COUNT = 1e12  # a count above this in count_field is absurd, not a number of API calls
UNKNOWN = "unknown"

# Why rows were skipped -> the words of the warning line ("3 rows with a non-numeric count").
NO_TIME = "with no usable _time"
NO_FIELDS = "without the fields iamspike needs"
NON_NUMERIC = "with a non-numeric count"
ABSURD = "with an absurd count"
NOT_POSITIVE = "with a zero or negative count"
BAD_COUNTS = "with unreadable iamspike_counts"

_COL = {name: i for i, name in enumerate(FIELDS)}
IDENTITY_FIELDS = (
    "recipientAccountId",
    "userIdentity.type",
    "userIdentity.arn",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.invokedBy",
    "userIdentity.accountId",
    "userIdentity.principalId",
)
DETAIL_FIELDS = ("eventSource", "eventName")  # then the error code, then:
TAIL_FIELDS = ("sourceIPAddress", "userAgent")
EVENT_MARKERS = ("errorCode", "eventName", "eventSource", "userIdentity.arn", "recipientAccountId")


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

    @property
    def failures(self) -> int:
        return sum(entry[5] for entry in self.entries)

    def counts_text(self) -> str:
        """The cell's ``iamspike_counts`` (``v3``)."""
        return encode_counts(self.service, self.entries)

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
            [(cell.start - group[0].start, cell.entries) for cell in group],
        )
        out.append(row)
    return out


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
            first = int(float(row[time_i]))
        except (ValueError, TypeError, IndexError, OverflowError):
            skipped[BAD_COUNTS] += 1
            continue
        for offset, text in parts:
            part = list(row)
            part[time_i], part[counts_i] = str(first + offset), text
            yield part


def is_service(principal: str) -> bool:
    """An AWS service principal (``delivery.logs.amazonaws.com``) named without an ARN."""
    return not principal.startswith("arn:") and principal.endswith(".amazonaws.com")


def identify(identity: tuple) -> tuple[str, str, bool]:
    """(account, principal, is AWS service) from the values of :data:`IDENTITY_FIELDS`."""
    account, ptype, arn, issuer, invoked, uacct, pid = identity
    principal = fold_principal(ptype, arn, issuer, invoked, uacct, pid)
    return account or uacct or UNKNOWN, principal, ptype == "AWSService" or is_service(principal)


def absurd(count: float) -> bool:
    return not math.isfinite(count) or count > MAX_COUNT


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
        self.ids: dict[tuple, list[str]] | None = {} if keep_ids else None
        self.services: dict[tuple[str, str], bool] = {}
        self.lo = math.inf
        self.hi = -math.inf
        self.rows = 0
        self.skipped: Counter = Counter()
        self.messages: list[str] = []
        self._seen: set = set()  # the raw events counted, by eventID (see _add_events)
        self._digests: dict[tuple, bytes | bytearray] = {}  # count-row entries' digests, packed
        self._strings: dict = {}  # one object per text (and bin start) read from count rows
        self._identities: dict[tuple, tuple[str, str, bool]] = {}  # raw events' identities
        self._aggregated_identities: dict[tuple, tuple[str, str, bool]] = {}

    # ---- what came in

    def add_rows(self, header: list[str], rows: list[list[str]]) -> None:
        """Raw events (extracted fields and/or ``_raw``) or, with ``count_field``, aggregated rows."""
        if not rows:
            return
        self.rows += len(rows)
        index = {name: i for i, name in enumerate(header)}
        if self.count_field:
            self._add_aggregated(index, rows)
        elif any(name in index for name in EVENT_MARKERS) or RAW in index:
            self._add_events(index, len(header), rows)
        else:
            self.skipped[NO_FIELDS] += len(rows)

    def add_records(self, records: Iterable[Mapping]) -> None:
        """CloudTrail record dicts (a log file's ``Records[]``)."""
        batch: list[list[str]] = []
        for record in records:
            if not isinstance(record, Mapping):
                self.skipped[NO_FIELDS] += 1
                continue
            batch.append(record_to_row(record))
            if len(batch) >= 20_000:
                self.rows += len(batch)
                self._add_events(_COL, len(FIELDS), batch)
                batch = []
        if batch:
            self.rows += len(batch)
            self._add_events(_COL, len(FIELDS), batch)

    def _track_times(self, rows: list[list[str]], time_i: int | None) -> None:
        if time_i is None:
            self.skipped[NO_TIME] += len(rows)
            return
        try:
            values = list(map(float, map(itemgetter(time_i), rows)))
            low, high = min(values), max(values)
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ValueError
        except (ValueError, IndexError):
            values = []
            for row in rows:
                try:
                    value = float(row[time_i])
                except (ValueError, IndexError):
                    value = math.nan
                if math.isfinite(value):
                    values.append(value)
                else:
                    self.skipped[NO_TIME] += 1
            if not values:
                return
            low, high = min(values), max(values)
        self.lo = min(self.lo, low)
        self.hi = max(self.hi, high)

    def _add_events(
        self, index: Mapping[str, int], width: int, rows: list[list[str]], track: bool = True
    ) -> None:
        time_i = index.get(TIME)
        if track:
            self._track_times(rows, time_i)
        if time_i is None:
            return
        cols = [index.get(name, width) for name in FIELDS]
        padded = width in cols
        code_i, name_i, msg_i, console_i = cols[4], cols[2], cols[5], cols[17]
        id_i, account_i = cols[_COL["eventID"]], cols[_COL["recipientAccountId"]]
        raw_i = index.get(RAW)
        get_identity = itemgetter(*[cols[_COL[name]] for name in IDENTITY_FIELDS])
        source_i, (ip_i, agent_i) = cols[_COL["eventSource"]], [cols[_COL[name]] for name in TAIL_FIELDS]
        counted, sources, span = self.counted, self.sources, self.span
        counts, ids, seen, identities = self.counts, self.ids, self._seen, self._identities
        services = self.services
        has_codes = code_i < width
        # The raw events this process counted, by eventID: their digests when they are sent on
        # (the map phase), else the string's own 64-bit hash (the same collision bound as the
        # digest, without a hashing call per row).
        mark = digest if ids is not None else hash
        pad = [""]
        reparse: list[list[str]] = []
        for row in rows:
            if padded:
                row = row + pad
            code = row[code_i] if has_codes else ""
            if code:
                if not counted[code]:
                    continue
            elif row[name_i] != "ConsoleLogin":
                if raw_i is not None and not row[name_i] and row[raw_i]:
                    reparse.append(row)  # nothing extracted: read the record from _raw
                continue
            if raw_i is not None and row[raw_i] and not (row[id_i] and row[account_i]):
                reparse.append(row)  # extraction stopped early (size or field limit)
                continue
            if not code:
                if not console_login_failed(row[name_i], row[msg_i], row[console_i]):
                    continue
                code = CONSOLE_LOGIN_FAILURE
                if not counted[code]:
                    continue
            source = row[source_i]
            if sources and source not in sources:
                continue
            try:
                when = float(row[time_i])
            except ValueError:
                continue  # counted by _track_times
            if when != when or when in (math.inf, -math.inf):
                continue
            event_id = row[id_i]
            if event_id:
                event_digest = mark(event_id)
                if event_digest in seen:
                    continue
                seen.add(event_digest)
            identity = get_identity(row)
            entity = identities.get(identity)
            if entity is None:  # a new identity: its service flag (never lowered) is set once
                entity = identities[identity] = identify(identity)
                account, principal, service = entity
                if service and not services.get((account, principal)):
                    services[(account, principal)] = True
                elif (account, principal) not in services:
                    services[(account, principal)] = False
            else:
                account, principal, service = entity
            key = (
                int(when // span) * span,
                account,
                principal,
                source,
                row[name_i],
                code,
                row[ip_i],
                row[agent_i],
            )
            counts[key] = counts.get(key, 0) + 1
            if ids is not None and event_id:
                found = ids.get(key)
                if found is None:
                    ids[key] = [event_digest]
                else:
                    found.append(event_digest)
        if reparse:
            self._add_events(_COL, len(FIELDS), self._from_raw(reparse, raw_i, time_i), track=False)

    def _from_raw(self, rows: list[list[str]], raw_i: int, time_i: int) -> list[list[str]]:
        parsed = []
        for row in rows:
            try:
                if not math.isfinite(float(row[time_i])):
                    continue
            except ValueError:
                continue  # already named: no usable _time
            record = parse_raw(row[raw_i])
            if record is None:
                self.skipped[NO_FIELDS] += 1
                continue
            converted = record_to_row(record)
            converted[0] = row[time_i]
            parsed.append(converted)
        return parsed

    def _add_aggregated(self, index: Mapping[str, int], rows: list[list[str]]) -> None:
        count_field = self.count_field
        needed = (TIME, "account", "principal", count_field)
        missing = [name for name in needed if name not in index]
        if missing:
            self.skipped[NO_FIELDS] += len(rows)
            message = (
                f"count_field={count_field} needs the fields {', '.join(needed)};"
                f" missing: {', '.join(missing)}"
            )
            if message not in self.messages:
                self.messages.append(message)
            return
        time_i = index[TIME]
        self._track_times(rows, time_i)
        acct_i, prin_i, count_i = index["account"], index["principal"], index[count_field]
        code_i, name_i, source_i = index.get("errorCode"), index.get("eventName"), index.get("eventSource")
        counted, sources, span, counts = self.counted, self.sources, self.span, self.counts
        identities, services, skipped = self._aggregated_identities, self.services, self.skipped
        keep = self._strings.setdefault  # one object per text: a key costs its tuple
        for row in rows:
            code = row[code_i] if code_i is not None else ""
            if code and not counted[code]:
                continue
            source = row[source_i] if source_i is not None else ""
            when = _finite(row[time_i])  # an unusable _time is named by _track_times
            if when is None or (sources and source not in sources):
                continue
            try:
                count = float(row[count_i])
            except ValueError:
                skipped[NON_NUMERIC] += 1
                continue
            if absurd(count):
                skipped[ABSURD] += 1
                continue
            if count <= 0:
                skipped[NOT_POSITIVE] += 1
                continue
            identity = (row[acct_i], "", row[prin_i], "", "", "", "")
            entity = identities.get(identity)
            if entity is None:
                entity = identities[identity] = identify(identity)
            account, principal, service = entity
            services.setdefault((account, principal), service)
            name = keep(row[name_i], row[name_i]) if name_i is not None else ""
            start = int(when // span) * span
            start, source, code = keep(start, start), keep(source, source), keep(code, code)
            key = (start, account, principal, source, name, code, "", "")
            counts[key] = counts.get(key, 0) + round(count)

    def add_count_rows(self, index: Mapping[str, int], rows: list[list[str]]) -> None:
        """Count rows from map phases (any number of partitions, any order; ``v3``, ``v2`` or
        ``v1``), every entry read. Their texts are kept once (:attr:`_strings`), so a key costs
        its tuple, not its text. (The search head reads most ``v3`` rows without their entries:
        :mod:`iamspike.countrows`.)"""
        counts_i, time_i = index[COUNTS_FIELD], index.get(TIME)
        acct_i, prin_i = index.get("account"), index.get("principal")
        keep = self._strings.setdefault
        for row in unfold_rows(index, rows, self.skipped):
            try:
                decoded = decode_counts(row[counts_i], keep)
                if isinstance(decoded, dict):
                    self._add_range(decoded)
                    continue
                service, entries = decoded
                start = int(float(row[time_i]) // self.span) * self.span
                account = row[acct_i] or UNKNOWN
                principal = row[prin_i] or UNKNOWN
            except (ValueError, TypeError, IndexError, KeyError, OverflowError):
                self.skipped[BAD_COUNTS] += 1
                continue
            self.add_entries(start, account, principal, service, entries)

    def add_entries(self, start: int, account: str, principal: str, service: bool, entries) -> None:
        """One count row's decoded entries (:func:`iamspike.counttext.decode_counts`)."""
        keep = self._strings.setdefault
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
            if digests:
                known = digests_of.get(key)
                if known is None:
                    digests_of[key] = digests
                elif known.__class__ is bytes:  # a second text: settled by drop_duplicates
                    digests_of[key] = bytearray(known) + digests
                else:
                    known += digests

    def _add_range(self, blob: Mapping) -> None:
        low, high = float(blob["lo"]), float(blob["hi"])
        if math.isfinite(low) and math.isfinite(high):
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
        for key, count in self.counts.items():
            start, account, principal, source, api, code, ip, agent = key
            cell = cells.get(key[:3])
            if cell is None:
                service = self.services.get((account, principal), False)
                cell = cells[key[:3]] = CountRow(start, account, principal, service)
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
        if self.ids is not None:
            self.ids = {}
            self._seen = set()

    def warning(self) -> str:
        """One line naming every kind of skipped row, or ''."""
        if not self.skipped:
            return ""
        ranked = self.skipped.most_common()
        (reason, n), rest = ranked[0], ranked[1:]
        return "skipped " + ", ".join(
            [f"{n} {'row' if n == 1 else 'rows'} {reason}"] + [f"{m} {why}" for why, m in rest]
        )


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
