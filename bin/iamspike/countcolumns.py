"""A ``v6`` count text read into arrays on the search head (numpy), for ``CountRows``.

A ``v6`` row (:mod:`iamspike.countpacked`) holds several principals of one account, its parts'
numbers as ``|``-separated columns. :func:`read_columns` reads those columns with a few numpy
calls for the whole row (the eight number columns joined and parsed by one ``numpy.fromstring``,
their lengths, lows, highs and sums by one ``reduceat`` each) and checks the layout with
:func:`~iamspike.countpacked.check_columns`, the one place a ``v6`` text's layout is checked (the
map phase's pure-Python reader, :func:`~iamspike.countpacked.read_columns`, calls it too).
:func:`minutes` reads the parts' masks groups (rule P39) into the values
:attr:`CountRows.masks <iamspike.countrows.CountRows.masks>` holds.

:func:`add_columns` then adds a row's columns to a :class:`~iamspike.countrows.CountRows` (its
profiles' and principals' ids looked up there) when the row reads whole in columns: every part
within the search's time range, every profile counted whole by this search's options, counts
below :data:`MAX_ROW`. Else the row is unpacked member by member
(:func:`~iamspike.counting.unpack_rows`), where a member that is not one of ours is skipped.
"""

from __future__ import annotations

import binascii
from itertools import accumulate, compress, repeat
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np

from iamspike.countpacked import ColumnStats, check_columns, v6_fields
from iamspike.countprofiles import FILTERED
from iamspike.counttext import unescape
from iamspike.intake import UNKNOWN, usable_time

if TYPE_CHECKING:
    from iamspike.countrows import CountRows

MAX_ROW = 2**31  # failures in one count row: more is no count row of ours
MAX_OFFSET = 2**40  # seconds between a v6 row's _time and a part's: more is no text of ours

_NUMBER_BYTES = b"0123456789|"  # what the number columns are made of (deleted: nothing may be left)


class Columns:
    """One ``v6`` text's fields: per member ``heads`` and ``principals`` (still escaped); per
    part ``offsets`` (the members', repeated to their parts by ``n_parts``), ``shifts``, ``totals``,
    ``consoles``, ``index`` (profile numbers), ``n_digests`` and ``n_entries`` (int64 arrays);
    ``highs`` the highest value of each of the eight number columns (in the text's order);
    ``packed`` the digests, ``profiles`` the profiles without masks groups, ``masks`` the masks
    groups' text and ``entries`` every part's entries."""

    __slots__ = (
        "consoles",
        "entries",
        "heads",
        "highs",
        "index",
        "masks",
        "n_digests",
        "n_entries",
        "n_parts",
        "offsets",
        "packed",
        "principals",
        "profiles",
        "shifts",
        "totals",
    )  # fmt: skip


def read_columns(text: str) -> Columns:
    """A ``v6`` text's :class:`Columns`. Raises ValueError (or ``binascii.Error``) when the text
    is not one of ours, as :func:`iamspike.countpacked.read_columns` does."""
    heads, principals, numbers, masks, profiles, digests, entries = v6_fields(text)
    joined = "|".join(numbers)
    # digits and "|" alone (what `str.isdigit` without the "|" said, without a copy a column)
    if not joined.isascii() or joined.encode("ascii").translate(None, _NUMBER_BYTES):
        raise ValueError("not numbers")
    lengths = [field.count("|") + 1 for field in numbers]
    values = np.fromstring(joined, dtype=np.int64, sep="|")
    if len(values) != sum(lengths):
        raise ValueError("not numbers")  # an empty number, or a column cut short
    starts = [0, *accumulate(lengths[:-1])]
    lows = np.minimum.reduceat(values, starts).tolist()
    highs = np.maximum.reduceat(values, starts).tolist()
    sums = np.add.reduceat(values, starts).tolist()
    ends = [*starts[1:], len(values)]
    offsets, n_parts, shifts, totals, consoles, index, n_digests, n_entries = (
        values[a:b] for a, b in zip(starts, ends)
    )
    packed = binascii.a2b_base64(digests)
    # what countpacked.check_columns needs besides the columns' lengths, lows, highs and sums:
    # whether the members' first parts are the shifts of 0, the rising pairs of shifts, and the
    # most parts of a v3 member (each is only read once the members' part counts are checked)
    m = len(heads)
    at_starts, rising, v3_parts = False, 0, 0
    if lengths[1] == m and lows[1] >= 1 and sums[1] == lengths[2]:
        member_starts = np.cumsum(n_parts) - n_parts
        at_starts = np.count_nonzero(shifts == 0) == m and not shifts[member_starts].any()
        rising = int(np.count_nonzero(shifts[1:] > shifts[:-1]))
        v3_parts = max(compress(n_parts.tolist(), map(str.startswith, heads, repeat("v3"))), default=0)
    stats = ColumnStats(lengths, lows, highs, sums)
    check_columns(
        heads, principals, profiles, entries, masks, len(packed), stats, at_starts, rising, v3_parts
    )
    out = Columns()
    out.heads, out.principals, out.offsets, out.n_parts = heads, principals, offsets, n_parts
    out.shifts, out.totals, out.consoles, out.index = shifts, totals, consoles, index
    out.n_digests, out.n_entries, out.highs, out.packed = n_digests, n_entries, highs, packed
    out.profiles, out.masks, out.entries = profiles, masks, entries
    return out


def add_columns(
    rows: CountRows, text: str, first: int, account: str, expected: int | None
) -> tuple[int, int, int, int] | None:
    """:meth:`CountRows.add_members <iamspike.countrows.CountRows.add_members>` of a ``v6`` text
    (``rows`` the rows it is added to): its columns read whole as arrays (:func:`read_columns`),
    its parts' entries kept as one region; None (nothing added) when the row must be read member
    by member."""
    try:
        read = read_columns(text)
    except (ValueError, binascii.Error):
        return None
    heads, shifts, totals, consoles = read.heads, read.shifts, read.totals, read.consoles
    m, p = len(heads), len(shifts)
    highs = read.highs  # of offsets, parts, shifts, totals, ...
    if (
        (expected is not None and m != expected)
        or max(highs[0], highs[2]) >= MAX_OFFSET
        or highs[3] >= MAX_ROW
        or (consoles > totals).any()
    ):
        return None  # read member by member, where the row is skipped
    n_parts, index = read.n_parts, read.index
    seconds = np.repeat(read.offsets, n_parts)
    seconds += shifts
    seconds += first
    low, high = int(seconds.min()), int(seconds.max())
    within = rows.tally.within
    if not (usable_time(low) and usable_time(high) and within(low) and within(high)):
        return None
    profiles = read.profiles
    known = list(map(rows._bases.get, profiles))
    if None in known:
        try:
            known = [
                rows.profiles.base(base) if found is None else found for base, found in zip(profiles, known)
            ]
        except ValueError:
            return None
    found = [profile for profile, _ in known]
    if FILTERED in found:
        return None
    apis, n_apis, srcs, n_srcs, _zeros = zip(*found)
    n_sources = np.array(n_srcs, dtype=np.int32)[index]
    masks = minutes(read.masks, n_sources, p)
    if masks is None:
        return None
    ids = _entity_ids(rows, account, read.principals, heads)
    if ids is None:
        return None
    rows.bins.frombytes((seconds // rows.tally.span).astype(np.int32).tobytes())
    rows.entity.frombytes(np.repeat(np.array(ids, dtype=np.int32), n_parts).tobytes())
    rows.failures.frombytes(totals.astype(np.int32).tobytes())
    rows.console.frombytes(consoles.astype(np.int32).tobytes())
    picked = index.tolist()
    rows.n_apis.frombytes(np.array(n_apis, dtype=np.uint16)[index].tobytes())
    rows.n_sources.frombytes(n_sources.astype(np.uint16).tobytes())
    if p > 1:
        pick = itemgetter(*picked)
        rows.apis.frombytes(b"".join(pick(apis)))
        rows.sources.frombytes(b"".join(pick(srcs)))
    else:
        rows.apis.frombytes(apis[picked[0]])
        rows.sources.frombytes(srcs[picked[0]])
    rows.masks.frombytes(masks)
    n_entries = read.n_entries
    rows.n_digests.frombytes(read.n_digests.astype(np.int32).tobytes())
    rows.digests += read.packed
    rows.region_offsets(p).frombytes((np.cumsum(n_entries) - n_entries).astype(np.int32).tobytes())
    rows.blocks.add(read.entries, len(rows.bins))
    characters = len(text) + m * len(str(first))  # its principals are in the text
    return low, high, m, characters


def _entity_ids(rows: CountRows, account: str, principals: list[str], heads: list[str]) -> list[int] | None:
    """The entity id of each member (``principals`` their principals as a ``v6`` text
    writes them, escaped; ``heads`` their heads), new entities numbered in member order; None
    (nothing numbered) when a principal does not unescape."""
    account = rows._accounts.setdefault(account, account)
    try:
        names = [unescape(principal) or UNKNOWN for principal in principals]
    except ValueError:
        return None
    keys = list(zip(repeat(account), names))
    entities = rows.entities
    base = len(entities)
    if not any(map(entities.__contains__, keys)):
        entities.update(zip(keys, range(base, base + len(keys))))
        if len(entities) == base + len(keys):
            ids = list(range(base, base + len(keys)))  # every member new (a bucket's rows mostly are)
        else:  # a principal twice in the row: numbered again, once
            for key in keys:
                entities.pop(key, None)
            ids = None
    else:
        ids = None
    if ids is None:
        get = entities.get
        ids = []
        for key in keys:
            e = get(key)
            if e is None:
                e = entities[key] = len(entities)
            ids.append(e)
    if "v31" in heads or "v41" in heads:
        rows.services.update(e for e, head in zip(ids, heads) if head[2] == "1")
    return ids


def minutes(groups: str, n_sources: np.ndarray, parts: int) -> bytes | None:
    """A ``v6`` text's masks groups (``^``-separated, one a part, each its profile's sources'
    masks) as :attr:`CountRows.masks <iamspike.countrows.CountRows.masks>` holds them; None when
    a part has no masks group or a group is not its sources' masks."""
    n = int(n_sources.sum())
    if len(groups) != 4 * n - 1 or n_sources.min() < 1:
        return None
    # every fourth character separates two masks: "^" where a part's last source ends
    ends = np.cumsum(n_sources[:-1]) - 1
    separators = groups[3::4]
    if (
        groups.count("^") != parts - 1
        or groups.count("|") != n - parts
        or separators.count("|") != n - parts
        or (np.frombuffer(separators.encode("ascii", "replace"), dtype=np.uint8)[ends] != ord("^")).any()
    ):
        return None
    try:
        values = np.frombuffer(bytes.fromhex("0" + groups.replace("|", "0").replace("^", "0")), dtype=">u2")
    except ValueError:
        return None
    if len(values) != n:
        return None
    return values.astype(np.uint16).tobytes()
