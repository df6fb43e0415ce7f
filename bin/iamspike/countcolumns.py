"""A ``v6`` count text read into arrays on the search head (numpy), for ``CountRows``.

A ``v6`` row (:mod:`iamspike.counttext`) holds several principals of one account, its parts'
numbers as ``|``-separated columns. :func:`read_columns` reads those columns with a few numpy
calls for the whole row (the eight number columns joined and parsed by one ``numpy.fromstring``,
their lengths, lows, highs and sums by one ``reduceat`` each) and checks the layout with
:func:`~iamspike.counttext.check_columns`, the one place a ``v6`` text's layout is checked (the
map phase's pure-Python reader, :func:`~iamspike.counttext.read_columns`, calls it too).
:func:`minutes` reads the parts' masks groups (rule P39) into the values
:attr:`CountRows.masks <iamspike.countrows.CountRows.masks>` holds.

Nothing here knows the search's options or ids: :meth:`CountRows.add_members
<iamspike.countrows.CountRows.add_members>` looks up the profiles and principals and decides
whether the row reads whole in columns.
"""

from __future__ import annotations

import binascii
from itertools import accumulate, compress, repeat

import numpy as np

from iamspike.counttext import check_columns, v6_fields

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
    is not one of ours, as :func:`iamspike.counttext.read_columns` does."""
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
    # what counttext.check_columns needs besides the columns' lengths, lows, highs and sums:
    # whether the members' first parts are the shifts of 0, the rising pairs of shifts, and the
    # most parts of a v3 member (each is only read once the members' part counts are checked)
    m = len(heads)
    at_starts, rising, v3_parts = False, 0, 0
    if lengths[1] == m and lows[1] >= 1 and sums[1] == lengths[2]:
        member_starts = np.cumsum(n_parts) - n_parts
        at_starts = np.count_nonzero(shifts == 0) == m and not shifts[member_starts].any()
        rising = int(np.count_nonzero(shifts[1:] > shifts[:-1]))
        v3_parts = max(compress(n_parts.tolist(), map(str.startswith, heads, repeat("v3"))), default=0)
    check_columns(
        heads,
        principals,
        profiles,
        entries,
        masks,
        len(packed),
        lengths,
        lows,
        highs,
        sums,
        at_starts,
        rising,
        v3_parts,
    )
    out = Columns()
    out.heads, out.principals, out.offsets, out.n_parts = heads, principals, offsets, n_parts
    out.shifts, out.totals, out.consoles, out.index = shifts, totals, consoles, index
    out.n_digests, out.n_entries, out.highs, out.packed = n_digests, n_entries, highs, packed
    out.profiles, out.masks, out.entries = profiles, masks, entries
    return out


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
    return values.astype(np.int32).tobytes()
