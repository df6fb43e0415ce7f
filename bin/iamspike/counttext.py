"""The count row's text, ``iamspike_counts``: what crosses from the indexers to the search head.

``v3`` (written): a summary of the cell, then its digests, then its entries, separated by ``;``:
``v3<service>;<failures>;<console>;<sources>^<apis>^<codes>^<masks>;<digests>;<entry>;<entry>...``.
``service`` is ``1`` for an AWS service principal, else ``0``; ``failures`` the cell's counted
events; ``console`` how many of them are failed console sign-ins (error code
``ConsoleLoginFailure``); then the cell's distinct event sources, APIs and error codes (each list
sorted, names joined by ``|``, the lists by ``^``: the *profile*, which the search head reads
instead of the entries) and, per event source in the sources' order, the 5-minute slots of the
bin in which the principal failed on it (``masks``: :data:`MASK_BITS` bits, bit ``k`` the
``k``-th twelfth of the bin, :data:`MASK_DIGITS` hex digits each, joined by ``|``; rule P39).
A profile of three groups (written before the masks, 2026-12-07) reads as no minutes; a search
head older than the masks cannot read a profile of four (upgrade the search head first, as for
every version here); ``digests`` the eventID digests (64 bits each,
:data:`DIGEST_BYTES`) of every entry in entry order, packed end to end in standard base64
(10.7 characters an event). One entry per distinct (event source, API, error code, source IP,
user agent): ``source|api|code|ip|user_agent|count|n``, ``n`` the entry's digests, empty when it
equals ``count`` (events without an eventID are counted but have no digest). A non-empty text
field equal to the same field of the entry before is written ``^``; ``%``, ``|``, ``;``, ``^``,
``,``, ``"`` and line breaks in a field are written ``%XX``, so the text needs no CSV quoting.

``v2`` (read): ``v2<service>`` then entries ``source|api|code|ip|user_agent|count|digests``, the
digests per entry in base64url. ``v1`` (read): JSON ``[service, [[source, api, code, ip,
user_agent, count, digests], ...]]`` with 16 hex digits an event. Both from indexers upgraded
after the search head.

``v4`` (written when a principal has more than one bin in a send): one row per (account,
principal), ``_time`` its first bin, then each bin's *part*:
``v4<service>;<offset>:<n>;<failures>;<console>;<profile>;<digests>;<entry>...;<offset>:<n>;...``
``offset`` the part's bin start in seconds after ``_time`` (ascending, the first ``0``: seconds,
not spans, so a search head whose span differs from the map phase's still places each bin), ``n``
its entries; what follows is the bin's ``v3`` text after its head. :func:`split_parts` turns it back
into ``v3`` texts, so the search head reads each part as a ``v3`` row. A one-bin send stays ``v3``.

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

A range row's text is the version followed by a JSON object (``v3{"lo": ..}``), in every
version. Nothing else parses these texts; docs/distributed.md describes them and their collision
bound.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from itertools import accumulate
from operator import itemgetter, lt
from typing import NamedTuple

from iamspike.failures import CONSOLE_LOGIN_FAILURE as CONSOLE

COUNT_VERSION = "v3"
V4 = "v4"  # several bins of one principal, each part a v3 text
V5 = "v5"  # several principals of one account, each member a v3 or v4 text
V6 = "v6"  # several principals of one account, their parts' fields as columns (written)
PACKED = (V5, V6)  # a row of several principals
_V6_FIELDS = 14  # a v6 text's fields before its profiles
MEMBER_HEADS = frozenset(("v30", "v31", "v40", "v41"))  # a v5 or v6 member's own head
V2 = "v2"  # per-entry base64url digests, no summary: still read
OLD_VERSION = "v1"  # JSON entries, hex digests: still read (indexers upgraded after the search head)
HEADS = ("v30", "v31")  # a v3 count row's text starts with one of these (service 0 or 1)
DIGEST_BYTES = 8  # an eventID's digest: 64 bits
MASK_BITS = 12  # a source's minutes in a bin: one bit per twelfth (5 minutes of an hour)
MASK_DIGITS = 3  # hex digits of a mask
_HEX = "0123456789abcdefABCDEF"
SAME = "^"  # a text field equal to the previous entry's
_SPECIAL = re.compile('[%|;^,"\r\n]')
_ESCAPES = str.maketrans({c: f"%{ord(c):02X}" for c in '%|;^,"\r\n'})
_DECODER = json.JSONDecoder()


def encode_counts(service: bool, entries: Sequence[tuple], masks: Mapping[str, int] | None = None) -> str:
    """``v3`` text of a cell: entries ``(source, api, code, ip, user_agent, count, digests)``,
    digests packed (bytes, :data:`DIGEST_BYTES` each); ``masks`` each event source's minutes
    (:data:`MASK_DIGITS`; none: the profile has no masks group)."""
    failures = console = 0
    names: tuple[set, set, set] = (set(), set(), set())
    for entry in entries:
        failures += entry[5]
        if entry[2] == CONSOLE:
            console += entry[5]
        for at in range(3):
            names[at].add(entry[at])
    escaped = sorted((_escape(name), name) for name in names[0])
    groups = ["|".join(text for text, _ in escaped)]
    groups += ["|".join(sorted(_escape(name) for name in group)) for group in names[1:]]
    if masks:
        groups.append("|".join(f"{masks.get(name, 0):0{MASK_DIGITS}x}" for _, name in escaped))
    profile = "^".join(groups)
    packed = b"".join(entry[6] for entry in entries)
    parts = [
        COUNT_VERSION + ("1" if service else "0"),
        str(failures),
        str(console),
        profile,
        base64.b64encode(packed).decode("ascii"),
    ]
    previous: tuple = ("",) * 5
    for entry in entries:
        texts = entry[:5]
        fields = [SAME if text and text == last else _escape(text) for text, last in zip(texts, previous)]
        previous = texts
        n = len(entry[6]) // DIGEST_BYTES
        parts.append("|".join([*fields, str(entry[5]), "" if n == entry[5] else str(n)]))
    return ";".join(parts)


def encode_parts(
    service: bool, parts: Sequence[tuple[int, Sequence[tuple], Mapping[str, int] | None]]
) -> str:
    """``v4`` text of one principal's bins: parts ``(offset, entries, masks)``, offsets the bin
    starts in seconds after the row's ``_time``, ascending from 0 (entries and masks as
    :func:`encode_counts`)."""
    out = [V4 + ("1" if service else "0")]
    for offset, entries, masks in parts:
        out.append(f"{offset}:{len(entries)}")
        out.append(encode_counts(service, entries, masks).split(";", 1)[1])
    return ";".join(out)


def split_parts(text: str) -> tuple[bool, list[tuple[int, str]]]:
    """A ``v4`` text's parts: ``(service, [(offset, v3 text), ...])``. Raises ValueError when the
    text is not one of ours (a part's own ``v3`` text is checked where it is read)."""
    head, offsets, *columns = part_columns(text)
    return head == "v31", [(offset, ";".join([head, *fields])) for offset, *fields in zip(offsets, *columns)]


def part_columns(text: str) -> tuple[str, list[int], list[str], list[str], list[str], list[str], list[str]]:
    """A ``v4`` text's parts as columns from one split: ``(head, offsets, failures, consoles,
    profiles, digests, entries)``, ``head`` the parts' ``v3`` head (``v30`` or ``v31``) and each
    part's fields as its ``v3`` text splits into them with ``split(";", 5)``. Raises ValueError
    when the text is not one of ours."""
    fields = text.split(";")
    size = len(fields)
    if fields[0] not in ("v40", "v41") or size < 2:
        raise ValueError("not a v4 count text")
    offsets: list[int] = []
    heads: list[int] = []  # each part's ``<offset>:<n>`` field
    at, last = 1, -1
    while at < size:
        offset, _, n = fields[at].partition(":")
        offset, n = int(offset), int(n)
        if offset <= last or n <= 0:
            raise ValueError("v4 part out of range")
        offsets.append(offset)
        heads.append(at)
        at, last = at + 5 + n, offset
    if at != size or offsets[0]:
        raise ValueError("v4 part out of range")
    ends = heads[1:]
    ends.append(size)
    return (COUNT_VERSION + fields[0][2], offsets, *_part_fields(fields, heads, ends))


def _part_fields(fields: list[str], heads: list[int], ends: list[int]) -> tuple[list[str], ...]:
    """Parts' fields as columns: (failures, consoles, profiles, digests, entries), each part's
    head at ``heads[i]`` (its failures the field after it) and its entries up to ``ends[i]``."""
    get = itemgetter(*heads) if len(heads) > 1 else lambda part: (part[heads[0]],)
    return (
        list(get(fields[1:])),  # failures
        list(get(fields[2:])),  # consoles
        list(get(fields[3:])),  # profiles
        list(get(fields[4:])),  # digests
        [";".join(fields[head + 5 : end]) for head, end in zip(heads, ends)],
    )


def encode_members(members: Sequence[tuple[int, str, str]]) -> str:
    """``v5`` text of several principals of one account: members ``(offset, principal, text)``,
    ``text`` the principal's ``v3`` or ``v4`` text, ``offset`` its ``_time`` after the row's."""
    out = [V5]
    for offset, principal, text in members:
        out.append(f"{text.count(';') + 1}:{offset}:{_escape(principal)}")
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
        principals.append(_escape(principal))
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
    :func:`part_columns` or ``split(";", 5)`` on each member's text, would give):
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
    return members, (offsets, *_part_fields(fields, heads, ends)), length


def digest(event_id: str) -> bytes:
    """The 64-bit digest of an eventID."""
    return hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()


def _escape(text: str) -> str:
    return text.translate(_ESCAPES) if _SPECIAL.search(text) else text


def unescape(text: str) -> str:
    if "%" not in text:
        return text
    out = text.split("%")
    return out[0] + "".join(chr(int(part[:2], 16)) + part[2:] for part in out[1:])


def decode_counts(text: str, keep=None) -> tuple[bool, list[tuple], dict[str, int]] | dict:
    """A count row's ``iamspike_counts`` (``v3``, ``v2`` or ``v1``): ``(service, entries,
    masks)`` with entries ``(source, api, code, ip, user_agent, count, digests)`` (digests packed,
    as bytes) and masks each event source's minutes (``v3`` with a masks group; else none), or
    a range row's dict. ``keep(text, text)`` returns the one object kept for a text
    (``dict.setdefault``). Raises ValueError (or TypeError, KeyError) when the text is not one of
    ours."""
    keep = keep or _same
    version = text[:2]
    if text[2:3] == "{" and version in (COUNT_VERSION, V2, OLD_VERSION):
        blob, end = _json(text)
        if end != len(text) or not isinstance(blob, dict):
            raise ValueError("not a range row")
        return blob
    if version == OLD_VERSION:
        return _decode_v1(text, keep)
    if version == COUNT_VERSION:
        head, failures, _console, profile, digests, rest = text.split(";", 5)
        if head not in HEADS:
            raise ValueError("not a v3 count text")
        entries = decode_entries(rest, unpack_digests(digests), keep)
        if sum(entry[5] for entry in entries) != int(failures):
            raise ValueError("failures differ from the entries")
        sources, _apis, _codes, minutes = read_profile(profile)
        return head == "v31", entries, dict(zip(sources, minutes))
    head, *parts = text.split(";")
    if head not in ("v20", "v21") or not parts:
        raise ValueError("not a v2 count text")
    entries = []
    for fields in _fields(parts, keep):
        *texts, count, digests = fields
        entries.append((*texts, int(count), _unpack_v2(digests)))
    return head == "v21", entries, {}


def decode_entries(text: str, packed: bytes, keep=None) -> list[tuple]:
    """The entries of a ``v3`` text (what follows its digests) with their digests from ``packed``
    (the row's digests, in entry order)."""
    entries = []
    at = 0
    for fields in _fields(text.split(";"), keep or _same):
        *texts, count, n = fields
        count = int(count)
        end = at + (int(n) if n else count) * DIGEST_BYTES
        if end > len(packed) or count <= 0:
            raise ValueError("digests or count out of range")
        entries.append((*texts, count, packed[at:end]))
        at = end
    if at != len(packed):
        raise ValueError("digests left over")
    return entries


def _resolved(parts: list[str]):
    """Each entry ``source|api|code|ip|user_agent|count|last``: its five texts (``^`` resolved to
    the entry before's, unescaped), its count and its last field, as texts."""
    source = api = code = ip = agent = ""
    for part in parts:
        s_source, s_api, s_code, s_ip, s_agent, count, last = part.split("|")
        escaped = "%" in part
        if s_source != SAME:
            source = unescape(s_source) if escaped else s_source
        if s_api != SAME:
            api = unescape(s_api) if escaped else s_api
        if s_code != SAME:
            code = unescape(s_code) if escaped else s_code
        if s_ip != SAME:
            ip = unescape(s_ip) if escaped else s_ip
        if s_agent != SAME:
            agent = unescape(s_agent) if escaped else s_agent
        yield source, api, code, ip, agent, count, last


def _fields(parts: list[str], keep) -> list[list[str]]:
    """:func:`_resolved` with each text the one object ``keep`` returns for it."""
    return [[*(keep(text, text) for text in entry[:5]), entry[5], entry[6]] for entry in _resolved(parts)]


def add_fields(text: str, tables: Sequence[dict]) -> None:
    """Add each entry's count of a ``v3`` entries text to ``tables[i][name]`` for its five text
    fields in order (source, API, error code, source IP, user agent); empty names are left out
    (what an explanation reads: digests left aside). Raises ValueError on a text that is not one
    of ours (the entries before it are added)."""
    for *names, count, _ in _resolved(text.split(";")):
        n = int(count)
        for table, name in zip(tables, names):
            if name:
                table[name] = table.get(name, 0) + n


def read_profile(text: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
    """A ``v3`` profile: (event sources, APIs, error codes, each source's minutes) of the cell;
    the minutes are empty where the profile has no masks group (written before it)."""
    base, group = split_masks(text)
    sources, apis, codes = base.split("^")
    names = tuple(map(unescape, sources.split("|")))
    minutes: tuple[int, ...] = ()
    if group is not None:
        minutes = read_masks(group)
        if len(minutes) != len(names):
            raise ValueError("masks differ from the sources")
    return names, tuple(map(unescape, apis.split("|"))), tuple(map(unescape, codes.split("|"))), minutes


def split_masks(text: str) -> tuple[str, str | None]:
    """A profile as its first three groups and its masks group (None where it has none; a text
    of other than three or four groups is returned whole, for :func:`read_profile` to refuse)."""
    base, _, group = text.rpartition("^")
    if base.count("^") != 2:
        return text, None
    return base, group


def read_masks(group: str) -> tuple[int, ...]:
    """A profile's masks group: each source's minutes. Raises ValueError when a mask is not one:
    each must be :data:`MASK_DIGITS` hex digits (``int`` alone would take ``-01``, ``0x1`` or
    `` 1``: a negative mask would set every slot)."""
    texts = group.split("|")
    if any(len(mask) != MASK_DIGITS or mask.strip(_HEX) for mask in texts):
        raise ValueError("masks differ from the sources")
    return tuple(int(mask, 16) for mask in texts)  # 3 hex digits: within MASK_BITS


def unpack_digests(text: str) -> bytes:
    """A ``v3`` row's digests from their standard base64."""
    return _packed(binascii.a2b_base64(text)) if text else b""


def _decode_v1(text: str, keep) -> tuple[bool, list[tuple], dict[str, int]]:
    blob, end = _json(text)
    if end != len(text):
        raise ValueError("trailing text")
    service, raw_entries = blob
    entries = []
    for source, api, code, ip, agent, count, digests in raw_entries:
        texts = [keep(str(value), str(value)) for value in (source, api, code, ip, agent)]
        entries.append((*texts, int(count), _packed(bytes.fromhex(digests))))
    return bool(service), entries, {}


def _json(text: str) -> tuple[object, int]:
    """The JSON value after a text's two-character version, and where it ends. Raises ValueError
    where it is not JSON, or is nested too deep to read (json raises RecursionError there)."""
    try:
        return _DECODER.raw_decode(text, 2)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def _unpack_v2(text: str) -> bytes:
    """Digests from their base64url text (binascii directly: base64's wrappers and str.translate
    cost more than the decoding)."""
    return _packed(binascii.a2b_base64(text.replace("-", "+").replace("_", "/"))) if text else b""


def _packed(digests: bytes) -> bytes:
    if len(digests) % DIGEST_BYTES:
        raise ValueError("not whole digests")
    return digests


def _same(text, _default):
    return text
