"""Count rows of several principals of one account (``v5``, ``v6``): what the map phase packs
so that the search head reads one row per account instead of one per principal.

A member's own text, and every field it holds, is a ``v3`` or ``v4`` text
(:mod:`iamspike.counttext`, which holds the formats of one principal's row); this module packs
members into one row and gives them back.

``v5`` (read; until ``v6``, written when an account has more than one principal in a send):
several principals of one account in one row, ``_time`` the earliest of theirs, then per
principal (a *member*) a head ``<k>:<offset>:<principal>`` and its own ``v3`` or ``v4`` text as
``k`` fields:
``v5;<k>:<offset>:<principal>;<v3 or v4 text>;<k>:<offset>:<principal>;...``. ``offset`` the
member's ``_time`` in seconds after the row's, ``principal`` escaped as an entry's fields are.
:func:`split_members` turns it back into ``(offset, principal, text)``, so the search head reads
each member as the ``v3``/``v4`` row it would have been.

``v6`` (written instead of ``v5``, 2026-12-07): the same members with their parts' fields as
columns, so that the search head reads a row's numbers in bulk instead of part by part:
``v6;<heads>;<offsets>;<principals>;<parts>;<part offsets>;<failures>;<consoles>;<k>;<profile
numbers>;<masks>;<digest counts>;<digests>;<entry counts>;<profile>;...;<entry>;<entry>...``.
Per member (``|``-separated, in member order): its ``v3``/``v4`` head (``v30``, ``v31``, ``v40``,
``v41``), its ``_time`` in seconds after the row's, its principal (escaped), its parts (1 for a
``v3`` member). Per part (``|``-separated, member after member, each member's parts by bin): its
offset after its member's ``_time`` (0 for a ``v3`` member; ascending from 0 within a ``v4``
member), failures, console sign-ins, the number (from 0) of its profile without the masks group
among the ``k`` profiles that follow the entry counts, its masks group (``^``-separated, one a
part, empty where the part has none), its digests and its entries; ``digests`` every part's
digests end to end in one standard base64 text. After the ``k`` profiles (first three groups
only, each once in the row) come every part's entries, part after part, each part's written as its
``v3`` text writes them. Every field is what the member's ``v3``/``v4`` text holds, so
:func:`split_members` gives each member's text back, byte for byte; a text whose columns do not
agree (a cut, a number that is not one, columns of other lengths than the parts, entries or
digests other than the counts say) is refused whole.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from itertools import accumulate
from operator import lt
from typing import NamedTuple

from iamspike.counttext import (
    DIGEST_BYTES,
    HEADS,
    V4,
    V5,
    V6,
    escape,
    part_columns,
    part_fields,
    split_masks,
    unescape,
    unpack_digests,
)

_V6_FIELDS = 14  # a v6 text's fields before its profiles
MEMBER_HEADS = frozenset(("v30", "v31", "v40", "v41"))  # a v5 or v6 member's own head


def encode_members(members: Sequence[tuple[int, str, str]]) -> str:
    """``v5`` text of several principals of one account: members ``(offset, principal, text)``,
    ``text`` the principal's ``v3`` or ``v4`` text, ``offset`` its ``_time`` after the row's."""
    out = [V5]
    for offset, principal, text in members:
        out.append(f"{text.count(';') + 1}:{offset}:{escape(principal)}")
        out.append(text)
    return ";".join(out)


def encode_columns(members: Sequence[tuple[int, str, str]]) -> str:
    """``v6`` text of several principals of one account: members ``(offset, principal, text)``
    as :func:`encode_members` takes them (each ``text`` one of ours: ``v3`` or ``v4``)."""
    heads, offsets, principals, n_parts = [], [], [], []
    shifts, totals, consoles, index, masks, n_digests, n_entries, entries = [], [], [], [], [], [], [], []
    packed: list[bytes] = []
    table: dict[str, int] = {}  # profile without its masks group -> its number
    for offset, principal, text in members:
        if text[:2] == V4:
            head, part_offsets, *columns = part_columns(text)
            head = V4 + head[2]
        else:
            head, *fields = text.split(";", 5)
            if head not in HEADS or len(fields) != 5:
                raise ValueError("not a v3 count text")
            part_offsets, columns = [0], [[field] for field in fields]
        heads.append(head)
        offsets.append(str(offset))
        principals.append(escape(principal))
        n_parts.append(str(len(part_offsets)))
        shifts += map(str, part_offsets)
        part_totals, part_consoles, profiles, digests, rests = columns
        totals += part_totals
        consoles += part_consoles
        split = list(map(split_masks, profiles))
        for base, _ in split:
            table.setdefault(base, len(table))
        index += [str(table[base]) for base, _ in split]
        masks += ["" if group is None else group for _, group in split]
        raw = list(map(unpack_digests, digests))
        n_digests += [str(len(part) // DIGEST_BYTES) for part in raw]
        packed += raw
        n_entries += [str(rest.count(";") + 1) for rest in rests]
        entries += rests
    columns = [heads, offsets, principals, n_parts, shifts, totals, consoles]
    return ";".join(
        [
            V6,
            *map("|".join, columns),
            str(len(table)),
            "|".join(index),
            "^".join(masks),
            "|".join(n_digests),
            base64.b64encode(b"".join(packed)).decode("ascii"),
            "|".join(n_entries),
            *table,
            *entries,
        ]
    )


def v6_fields(text: str) -> tuple[list[str], list[str], list[str], str, list[str], str, str]:
    """A ``v6`` text's fields, split and not yet read: ``(heads, principals, numbers, masks,
    profiles, digests, entries)``, ``numbers`` the texts of the members' offsets and parts, then
    the parts' offsets, failures, console sign-ins, profile numbers, digests and entries (each
    ``|``-separated), ``masks`` the parts' masks groups (``^``-separated). Raises ValueError when
    a field is missing."""
    fields = text.split(";", _V6_FIELDS)
    if fields[0] != V6 or len(fields) != _V6_FIELDS + 1:
        raise ValueError("not a v6 count text")
    _, heads, offsets, principals, n_parts, shifts, totals, consoles, k, index, masks = fields[:11]
    n_digests, digests, n_entries, rest = fields[11:]
    k = int(k)
    profiles = rest.split(";", k) if k > 0 else []
    if len(profiles) != k + 1:
        raise ValueError("v6 profiles out of range")
    entries = profiles.pop()
    numbers = [offsets, n_parts, shifts, totals, consoles, index, n_digests, n_entries]
    return heads.split("|"), principals.split("|"), numbers, masks, profiles, digests, entries


def read_columns(text: str) -> tuple:
    """A ``v6`` text read: ``(members, columns, profiles, packed, entries)``. ``members``
    ``(offset, principal, head, n_parts)`` as :func:`member_columns` gives them; ``columns`` the
    parts' ``(offsets, failures, consoles, profile numbers, masks groups, digests, entries)``,
    each part's offset its own within its member, the others numbers (its masks group a text,
    empty where it has none); ``profiles`` the profiles without their masks groups,
    ``packed`` every part's digests end to end and ``entries`` every part's entries text joined by
    ``;``. Raises ValueError when the text is not one of ours (:func:`check_columns`). The search
    head reads the same text into arrays (:func:`iamspike.countcolumns.read_columns`)."""
    heads, principals, numbers, masks, profiles, digests, entries = v6_fields(text)
    columns = list(map(_numbers, numbers))
    offsets, n_parts, shifts, totals, consoles, index, n_digests, n_entries = columns
    packed = unpack_digests(digests)
    m = len(heads)
    starts, at_starts, rising, v3_parts = [], False, 0, 0
    if len(n_parts) == m and min(n_parts) >= 1 and sum(n_parts) == len(shifts):
        starts = [0, *accumulate(n_parts[:-1])]
        at_starts = shifts.count(0) == m and not any(shifts[at] for at in starts)
        rising = sum(map(lt, shifts, shifts[1:]))
        v3_parts = max([n for head, n in zip(heads, n_parts) if head[1:2] == "3"], default=0)
    stats = ColumnStats(
        list(map(len, columns)), list(map(min, columns)), list(map(max, columns)), list(map(sum, columns))
    )
    check_columns(
        heads, principals, profiles, entries, masks, len(packed), stats, at_starts, rising, v3_parts
    )
    members = [
        (offset, unescape(principal), head, n)
        for head, offset, principal, n in zip(heads, offsets, principals, n_parts)
    ]
    return (
        members,
        (shifts, totals, consoles, index, masks.split("^"), n_digests, n_entries),
        profiles,
        packed,
        entries,
    )


class ColumnStats(NamedTuple):
    """Of a ``v6`` text's eight number columns (members' offsets and parts, then the parts'
    offsets, failures, consoles, profile numbers, digest counts and entry counts), each one's
    length, lowest value, highest and sum."""

    lengths: list[int]
    lows: list[int]
    highs: list[int]
    sums: list[int]


def check_columns(
    heads: list[str],
    principals: list[str],
    profiles: list[str],
    entries: str,
    masks: str,
    packed: int,
    stats: ColumnStats,
    at_starts: bool,
    rising: int,
    v3_parts: int,
) -> None:
    """The one check of a ``v6`` text's layout (:func:`v6_fields`' fields; ``packed`` the bytes
    of its digests), given its number columns' :class:`ColumnStats`; ``at_starts`` whether the
    parts' offsets of 0 are exactly each member's first, ``rising`` how many parts' offsets are
    above the one before and ``v3_parts`` the most parts of a ``v3`` member (0: none). Both
    readers compute those, each its own way (this module's :func:`read_columns` in Python, the
    search head's :func:`iamspike.countcolumns.read_columns` with numpy). Raises ValueError when
    the text is not one of ours: columns of other lengths than the members' parts, counts out of
    range, digests or entries other than the parts', parts' offsets not ascending from 0 within
    a member."""
    lengths, lows, highs, sums = stats
    m, p = len(heads), lengths[2]
    if not (len(principals) == lengths[0] == lengths[1] == m) or lows[1] < 1 or sums[1] != p:
        raise ValueError("v6 members out of range")
    if any(length != p for length in lengths[3:]) or masks.count("^") + 1 != p:
        raise ValueError("v6 parts out of range")
    if lows[7] < 1 or highs[5] >= len(profiles):
        raise ValueError("v6 parts out of range")
    if packed != sums[6] * DIGEST_BYTES or not whole_entries(entries, sums[7]):
        raise ValueError("v6 digests or entries out of range")
    if not set(heads) <= MEMBER_HEADS or v3_parts > 1:
        raise ValueError("v6 member out of range")
    # each member's parts ascend from 0: its first part's offset is 0, the others above the one
    # before (so the zeros are the members' first parts, and every other pair of parts rises)
    if not at_starts or rising != p - m:
        raise ValueError("v4 part out of range")
    if lows[3] < 1 or lows[4] < 0:
        raise ValueError("v6 counts out of range")


def whole_entries(text: str, n: int) -> bool:
    """Whether a ``v6`` text's entries are ``n`` entries, the last of them whole (its seven
    fields: a text cut within it is refused here, one cut elsewhere by its columns)."""
    return text.count(";") + 1 == n and text.count("|", text.rfind(";") + 1) == 6


def _numbers(text: str) -> list[int]:
    """``|``-separated whole numbers (at least one), each >= 0 and written in digits alone."""
    if not text.replace("|", "").isdigit():
        raise ValueError("not numbers")
    return list(map(int, text.split("|")))


def split_members(text: str) -> list[tuple[int, str, str]]:
    """A ``v5`` or ``v6`` text's members ``(offset, principal, v3 or v4 text)``. Raises
    ValueError when the text is not one of ours (a member's own text is checked where it is
    read)."""
    if text[:2] == V6:
        return _v6_members(text)
    fields = text.split(";")
    size = len(fields)
    if fields[0] != V5 or size < 3:
        raise ValueError("not a v5 count text")
    out = []
    at = 1
    while at < size:
        k, offset, principal = fields[at].split(":", 2)
        k, offset = int(k), int(offset)
        end = at + 1 + k
        if k < 2 or offset < 0 or end > size or fields[at + 1] not in MEMBER_HEADS:
            raise ValueError("v5 member out of range")
        out.append((offset, unescape(principal), ";".join(fields[at + 1 : end])))
        at = end
    return out


def _v6_members(text: str) -> list[tuple[int, str, str]]:
    """:func:`split_members` of a ``v6`` text: each member's ``v3`` or ``v4`` text as it was."""
    members, columns, profiles, packed, entries = read_columns(text)
    offsets, totals, consoles, index, masks, n_digests, n_entries = columns
    texts = entries.split(";")
    out = []
    part = at = digest = 0
    for offset, principal, head, n in members:
        fields = [head]
        for i in range(part, part + n):
            if head[1] == "4":
                fields.append(f"{offsets[i]}:{n_entries[i]}")
            profile = profiles[index[i]] + ("^" + masks[i] if masks[i] else "")
            end = digest + n_digests[i] * DIGEST_BYTES
            digests = base64.b64encode(packed[digest:end]).decode("ascii")
            fields += [str(totals[i]), str(consoles[i]), profile, digests, *texts[at : at + n_entries[i]]]
            at, digest = at + n_entries[i], end
        part += n
        out.append((offset, principal, ";".join(fields)))
    return out


def member_columns(text: str) -> tuple[list[tuple[int, str, str, int]], tuple[list, ...], int]:
    """A ``v5`` text's members and their parts from one split (what :func:`split_members`, then
    :func:`~iamspike.counttext.part_columns` or ``split(";", 5)`` on each member's text, would give):
    ``(members, parts, length)``, members ``(offset, principal, head, n_parts)`` (``head`` the
    member's ``v30``/``v31``/``v40``/``v41``), parts the columns ``(offsets, failures, consoles,
    profiles, digests, entries)`` (each part's offset its member's plus its own, its fields as
    texts) and ``length`` the characters of the members' texts together. Raises ValueError (or
    IndexError) when the text or a member's text is not one of ours, or a ``v3`` member splits
    into fewer than six fields."""
    fields = text.split(";")
    size = len(fields)
    if fields[0] != V5 or size < 3:
        raise ValueError("not a v5 count text")
    members = []
    length = len(text) - len(V5)
    heads: list[int] = []  # each part's field before its failures
    ends: list[int] = []  # the field after its entries
    offsets: list[int] = []
    at = 1
    while at < size:
        k, offset, principal = fields[at].split(":", 2)
        k, offset = int(k), int(offset)
        end = at + 1 + k
        head = fields[at + 1]
        if k < 2 or offset < 0 or end > size or head not in MEMBER_HEADS:
            raise ValueError("v5 member out of range")
        if head[1] == "3":
            if k < 6:
                raise ValueError("not a v3 count text")
            heads.append(at + 1)
            offsets.append(offset)
            n = 1
        else:
            part, last, n = at + 2, -1, 0
            while part < end:
                shift, _, count = fields[part].partition(":")
                shift, count = int(shift), int(count)
                if shift <= last or count <= 0:
                    raise ValueError("v4 part out of range")
                if n:
                    ends.append(part)
                heads.append(part)
                offsets.append(offset + shift)
                part, last, n = part + 5 + count, shift, n + 1
            if part != end or offsets[-n] != offset:
                raise ValueError("v4 part out of range")
        ends.append(end)
        members.append((offset, principal, head, n))
        length -= len(fields[at]) + 2  # ";<k>:<offset>:<principal>;" before the member's text
        at = end
    members = [(offset, unescape(principal), head, n) for offset, principal, head, n in members]
    return members, (offsets, *part_fields(fields, heads, ends)), length
