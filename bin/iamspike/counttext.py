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

``v5`` and ``v6`` (several principals of one account in one row) are in
:mod:`iamspike.countpacked`.

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
from operator import itemgetter

from iamspike.failures import CONSOLE_LOGIN_FAILURE as CONSOLE

COUNT_VERSION = "v3"
V4 = "v4"  # several bins of one principal, each part a v3 text
V5 = "v5"  # several principals of one account, each member a v3 or v4 text
V6 = "v6"  # several principals of one account, their parts' fields as columns (written)
PACKED = (V5, V6)  # a row of several principals
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
    escaped = sorted((escape(name), name) for name in names[0])
    groups = ["|".join(text for text, _ in escaped)]
    groups += ["|".join(sorted(escape(name) for name in group)) for group in names[1:]]
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
        fields = [SAME if text and text == last else escape(text) for text, last in zip(texts, previous)]
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
    return (COUNT_VERSION + fields[0][2], offsets, *part_fields(fields, heads, ends))


def part_fields(fields: list[str], heads: list[int], ends: list[int]) -> tuple[list[str], ...]:
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


def digest(event_id: str) -> bytes:
    """The 64-bit digest of an eventID."""
    return hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()


def escape(text: str) -> str:
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
