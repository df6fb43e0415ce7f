"""Intake: the rows a search passes -> a :class:`~iamspike.counting.Tally`'s counts.

Raw CloudTrail events (extracted fields and/or ``_raw``, or a log file's record dicts) and, with
``count_field=``, pre-aggregated rows. Each failed call is keyed by bin, account, folded principal
(:func:`identify`), event source, API, error code, source IP and user agent, and counted once per
``eventID``. Rows that cannot be used are counted in the tally's ``skipped`` under the reasons
below. Pure Python: no numpy, no scorer (the map phase counts here too).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from operator import itemgetter
from typing import TYPE_CHECKING

from iamspike.cloudtrail import FIELDS, RAW, TIME, parse_raw, record_to_row
from iamspike.counttext import MASK_BITS as SLOTS
from iamspike.counttext import digest
from iamspike.failures import CONSOLE_LOGIN_FAILURE, console_login_failed
from iamspike.principals import fold_principal

if TYPE_CHECKING:
    from iamspike.counting import Tally

MAX_COUNT = 1e12  # a count above this in count_field is absurd, not a number of API calls
UNKNOWN = "unknown"

# Why rows were skipped -> the words of the warning line ("3 rows with a non-numeric count").
NO_TIME = "with no usable _time"
NO_FIELDS = "without the fields iamspike needs"
NON_NUMERIC = "with a non-numeric count"
ABSURD = "with an absurd count"
NOT_POSITIVE = "with a zero or negative count"

# The times read, in epoch seconds: from CloudTrail's launch (2013-11-13) to 2038-01-19 (2**31).
# A row outside has no usable _time: one such row (a damaged timestamp, 1e300, year 9999) would
# otherwise stretch the window's hourly grid over decades or centuries, past what a bin number
# holds, and fail or stall the search.
FIRST_TIME, LAST_TIME = 1_384_300_800.0, 2.0**31
TIME_TEXTS = 100_000  # the _time (and count) texts an aggregated chunk's reading keeps at most

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


def is_service(principal: str) -> bool:
    """An AWS service principal (``delivery.logs.amazonaws.com``) named without an ARN."""
    return not principal.startswith("arn:") and principal.endswith(".amazonaws.com")


def identify(identity: tuple) -> tuple[str, str, bool]:
    """(account, principal, is AWS service) from the values of :data:`IDENTITY_FIELDS`."""
    account, ptype, arn, issuer, invoked, uacct, pid = identity
    principal = fold_principal(ptype, arn, issuer, invoked, uacct, pid)
    return account or uacct or UNKNOWN, principal, ptype == "AWSService" or is_service(principal)


def usable_time(when: float) -> bool:
    """A time the engine reads (False for NaN and the infinities too)."""
    return FIRST_TIME <= when < LAST_TIME


def absurd(count: float) -> bool:
    return not math.isfinite(count) or count > MAX_COUNT


def add_rows(tally: Tally, header: list[str], rows: Iterable[list[str]]) -> None:
    """Raw events (extracted fields and/or ``_raw``) or, with ``count_field``, aggregated rows.
    Raw events are counted as they are read (``rows`` may be the chunk's reader): a row is
    dropped as soon as it is counted, never held with the rest of its chunk."""
    index = {name: i for i, name in enumerate(header)}
    if tally.count_field:
        tally.rows += add_aggregated(tally, index, rows)
    elif any(name in index for name in EVENT_MARKERS) or RAW in index:
        tally.rows += add_events(tally, index, len(header), rows)
    else:
        n = sum(1 for _ in rows)
        tally.rows += n
        if n:
            tally.skipped[NO_FIELDS] += n


def add_records(tally: Tally, records: Iterable[Mapping]) -> None:
    """CloudTrail record dicts (a log file's ``Records[]``)."""
    batch: list[list[str]] = []
    for record in records:
        if not isinstance(record, Mapping):
            tally.skipped[NO_FIELDS] += 1
            continue
        batch.append(record_to_row(record))
        if len(batch) >= 20_000:
            tally.rows += len(batch)
            add_events(tally, _COL, len(FIELDS), batch)
            batch = []
    if batch:
        tally.rows += len(batch)
        add_events(tally, _COL, len(FIELDS), batch)


def timed(
    tally: Tally, rows: Iterable[list[str]], time_i: int, read: list[int], track: bool = True
) -> Iterator[tuple[list[str], float]]:
    """``(row, _time)`` of each row with a usable ``_time``, as ``rows`` yields them. Once they
    are all read, ``read[0]`` is the rows read and, with ``track``, the times seen widen the
    tally's range and the rows without a usable one are counted in ``skipped``."""
    lo, hi, n, no_time = tally.lo, tally.hi, 0, 0
    for row in rows:
        n += 1
        try:
            when = float(row[time_i])
        except (ValueError, IndexError):
            when = math.nan
        if not FIRST_TIME <= when < LAST_TIME:  # NaN too
            no_time += 1
            continue
        if when < lo:
            lo = when
        if when > hi:
            hi = when
        yield row, when
    read[0] = n
    if track:
        tally.lo, tally.hi = lo, hi
        if no_time:
            tally.skipped[NO_TIME] += no_time


def add_events(
    tally: Tally, index: Mapping[str, int], width: int, rows: Iterable[list[str]], track: bool = True
) -> int:
    """Count the failures among raw event rows, in one pass; returns the rows read. With
    ``track`` (rows not read before) every row's ``_time`` widens the tally's range, and a row
    without a usable one is counted in ``skipped``."""
    time_i = index.get(TIME)
    if time_i is None:
        n = sum(1 for _ in rows)
        if track and n:
            tally.skipped[NO_TIME] += n
        return n
    cols = [index.get(name, width) for name in FIELDS]
    padded = width in cols
    code_i, name_i, msg_i, console_i = cols[4], cols[2], cols[5], cols[17]
    id_i, account_i = cols[_COL["eventID"]], cols[_COL["recipientAccountId"]]
    raw_i = index.get(RAW)
    get_identity = itemgetter(*[cols[_COL[name]] for name in IDENTITY_FIELDS])
    source_i, (ip_i, agent_i) = cols[_COL["eventSource"]], [cols[_COL[name]] for name in TAIL_FIELDS]
    counted, sources, span = tally.counted, tally.sources, tally.span
    counts, ids, seen, identities = tally.counts, tally.ids, tally.seen, tally.identities
    services, slots = tally.services, tally.slots
    has_codes = code_i < width
    # The raw events this process counted, by eventID: their digests when they are sent on
    # (the map phase), else the string's own 64-bit hash (the same collision bound as the
    # digest, without a hashing call per row).
    mark = digest if ids is not None else hash
    pad = [""]
    reparse: list[list[str]] = []
    read = [0]
    for row, when in timed(tally, rows, time_i, read, track):
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
        start = int(when // span) * span
        key = (start, account, principal, source, row[name_i], code, row[ip_i], row[agent_i])
        counts[key] = counts.get(key, 0) + 1
        cell = key[:4]  # the minutes it failed in on this source (P39)
        slots[cell] = slots.get(cell, 0) | (1 << min(int((when - start) * SLOTS // span), SLOTS - 1))
        if ids is not None and event_id:
            found = ids.get(key)
            if found is None:
                ids[key] = [event_digest]
            else:
                found.append(event_digest)
    if reparse:
        add_events(tally, _COL, len(FIELDS), from_raw(tally, reparse, raw_i, time_i), track=False)
    return read[0]


def from_raw(tally: Tally, rows: list[list[str]], raw_i: int, time_i: int) -> list[list[str]]:
    parsed = []
    for row in rows:
        try:
            if not usable_time(float(row[time_i])):
                continue
        except ValueError:
            continue  # already named: no usable _time
        record = parse_raw(row[raw_i])
        if record is None:
            tally.skipped[NO_FIELDS] += 1
            continue
        converted = record_to_row(record)
        converted[0] = row[time_i]
        parsed.append(converted)
    return parsed


def add_aggregated(tally: Tally, index: Mapping[str, int], rows: Iterable[list[str]]) -> int:
    """Count aggregated rows as they are read, in one pass; returns the rows read. Every row's
    ``_time`` widens the tally's range; a row without a usable one, or whose count is not a
    positive number of calls, is counted in ``skipped``."""
    count_field = tally.count_field
    needed = (TIME, "account", "principal", count_field)
    missing = [name for name in needed if name not in index]
    if missing:
        n = sum(1 for _ in rows)
        if n:
            tally.skipped[NO_FIELDS] += n
            need, lacking = ", ".join(needed), ", ".join(missing)
            message = f"count_field={count_field} needs the fields {need}; missing: {lacking}"
            if message not in tally.messages:
                tally.messages.append(message)
        return n
    time_i, acct_i, prin_i, count_i = index[TIME], index["account"], index["principal"], index[count_field]
    code_i, name_i, source_i = index.get("errorCode"), index.get("eventName"), index.get("eventSource")
    counted, sources, span, counts = tally.counted, tally.sources, tally.span, tally.counts
    identities, services = tally.aggregated_identities, tally.services
    keep = tally.strings.setdefault  # one object per text: a key costs its tuple
    bad: Counter = Counter()  # skipped for their count, named after the rows without a time
    # Aggregated rows repeat a few _time texts (one a bin) and count texts: each text is read once
    # and what it gives kept by the text, so a row costs two dict look-ups instead of two float()s,
    # their checks, the bin arithmetic and round() (docs/bench/speed.md, "Fourth pass").
    starts: dict[str, int] = {}
    whole: dict[str, int] = {}  # and a count text (the same few small numbers) its calls
    lo, hi, n, no_time = tally.lo, tally.hi, 0, 0
    for row in rows:
        n += 1
        try:
            start = starts.get(row[time_i])
        except IndexError:
            no_time += 1
            continue
        if start is None:
            try:
                when = float(row[time_i])
            except ValueError:
                when = math.nan
            if not FIRST_TIME <= when < LAST_TIME:  # NaN too
                no_time += 1
                continue
            if when < lo:
                lo = when
            if when > hi:
                hi = when
            start = int(when // span) * span
            if len(starts) >= TIME_TEXTS:
                starts.clear()
            start = starts[row[time_i]] = keep(start, start)
        code = row[code_i] if code_i is not None else ""
        if code and not counted[code]:
            continue
        source = row[source_i] if source_i is not None else ""
        if sources and source not in sources:
            continue
        count = whole.get(row[count_i])
        if count is None:
            try:
                number = float(row[count_i])
            except ValueError:
                bad[NON_NUMERIC] += 1
                continue
            if not 0 < number <= MAX_COUNT:  # NaN and the infinities too
                bad[ABSURD if absurd(number) else NOT_POSITIVE] += 1
                continue
            count = round(number)
            if len(whole) < TIME_TEXTS:
                whole[row[count_i]] = count
        identity = (row[acct_i], row[prin_i])
        entity = identities.get(identity)
        if entity is None:  # a new identity: its service flag is set once
            entity = identities[identity] = identify((identity[0], "", identity[1], "", "", "", ""))
            services.setdefault(entity[:2], entity[2])
        name = keep(row[name_i], row[name_i]) if name_i is not None else ""
        key = (start, entity[0], entity[1], keep(source, source), name, keep(code, code), "", "")
        counts[key] = counts.get(key, 0) + count
    tally.lo, tally.hi = lo, hi
    if no_time:
        tally.skipped[NO_TIME] += no_time
    tally.skipped.update(bad)
    return n
