"""The count row's text, ``iamspike_counts``: what crosses from the indexers to the search head.

``v2`` (written): the service flag (``1`` for an AWS service principal, else ``0``), then one
entry per distinct (event source, API, error code, source IP, user agent), each after a ``;``:
``source|api|code|ip|user_agent|count|digests``. A non-empty text field equal to the same field
of the entry before is written ``^``; ``%``, ``|``, ``;``, ``^``, ``,``, ``"`` and line breaks in
a field are written ``%XX``, so the text needs no CSV quoting. ``digests`` is the entry's eventID
digests (64 bits each, :data:`DIGEST_BYTES`) packed end to end in base64url (events without an
eventID are in ``count`` but have no digest): 10.7 characters an event.

``v1`` (read, from indexers upgraded after the search head): JSON ``[service, [[source, api,
code, ip, user_agent, count, digests], ...]]`` with 16 hex digits an event.

A range row's text is the version followed by a JSON object (``v2{"lo": ..}``), in both. Nothing
else parses these texts; docs/distributed.md describes them and their collision bound.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence

COUNT_VERSION = "v2"
OLD_VERSION = "v1"  # JSON entries, hex digests: still read (indexers upgraded after the search head)
DIGEST_BYTES = 8  # an eventID's digest: 64 bits
SAME = "^"  # a text field equal to the previous entry's
_SPECIAL = re.compile('[%|;^,"\r\n]')
_ESCAPES = str.maketrans({c: f"%{ord(c):02X}" for c in '%|;^,"\r\n'})
_DECODER = json.JSONDecoder()


def encode_counts(service: bool, entries: Sequence[tuple]) -> str:
    """``v2`` text of a cell: entries ``(source, api, code, ip, user_agent, count, digests text)``."""
    parts = [COUNT_VERSION + ("1" if service else "0")]
    previous: tuple = ("",) * 5
    for entry in entries:
        texts = entry[:5]
        fields = [SAME if text and text == last else _escape(text) for text, last in zip(texts, previous)]
        previous = texts
        parts.append("|".join([*fields, str(entry[5]), entry[6]]))
    return ";".join(parts)


def digest(event_id: str) -> bytes:
    """The 64-bit digest of an eventID."""
    return hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()


def digests_text(packed: bytes) -> str:
    """Digests packed end to end (``DIGEST_BYTES`` each) as one entry's text in iamspike_counts."""
    return base64.urlsafe_b64encode(packed).decode("ascii")


def _escape(text: str) -> str:
    return text.translate(_ESCAPES) if _SPECIAL.search(text) else text


def _unescape(text: str) -> str:
    if "%" not in text:
        return text
    out = text.split("%")
    return out[0] + "".join(chr(int(part[:2], 16)) + part[2:] for part in out[1:])


def decode_counts(text: str, keep=None) -> tuple[bool, list[tuple]] | dict:
    """A count row's ``iamspike_counts`` (``v2`` or ``v1``): ``(service, entries)`` with entries
    ``(source, api, code, ip, user_agent, count, digests)`` (digests packed, as bytes), or a range
    row's dict. ``keep(text, text)`` returns the one object kept for a text (``dict.setdefault``).
    Raises ValueError (or TypeError, KeyError) when the text is not one of ours."""
    keep = keep or _same
    version = text[:2]
    if text[2:3] == "{" and version in (COUNT_VERSION, OLD_VERSION):
        blob, end = _DECODER.raw_decode(text, 2)
        if end != len(text) or not isinstance(blob, dict):
            raise ValueError("not a range row")
        return blob
    if version == OLD_VERSION:
        return _decode_v1(text, keep)
    head, *parts = text.split(";")
    if head not in ("v20", "v21") or not parts:
        raise ValueError("not a v2 count text")
    entries = []
    source = api = code = ip = agent = ""
    for part in parts:
        s_source, s_api, s_code, s_ip, s_agent, count, digests = part.split("|")
        if s_source != SAME:
            source = _kept(s_source, keep)
        if s_api != SAME:
            api = _kept(s_api, keep)
        if s_code != SAME:
            code = _kept(s_code, keep)
        if s_ip != SAME:
            ip = _kept(s_ip, keep)
        if s_agent != SAME:
            agent = _kept(s_agent, keep)
        entries.append((source, api, code, ip, agent, int(count), _unpack(digests)))
    return head == "v21", entries


def _decode_v1(text: str, keep) -> tuple[bool, list[tuple]]:
    blob, end = _DECODER.raw_decode(text, 2)
    if end != len(text):
        raise ValueError("trailing text")
    service, raw_entries = blob
    entries = []
    for source, api, code, ip, agent, count, digests in raw_entries:
        texts = [keep(str(value), str(value)) for value in (source, api, code, ip, agent)]
        entries.append((*texts, int(count), _packed(bytes.fromhex(digests))))
    return bool(service), entries


def _unpack(text: str) -> bytes:
    """Digests from their base64url text (binascii directly: base64's wrappers and str.translate
    cost more than the decoding)."""
    return _packed(binascii.a2b_base64(text.replace("-", "+").replace("_", "/"))) if text else b""


def _kept(text: str, keep) -> str:
    if "%" in text:
        text = _unescape(text)
    return keep(text, text)


def _packed(digests: bytes) -> bytes:
    if len(digests) % DIGEST_BYTES:
        raise ValueError("not whole digests")
    return digests


def _same(text, _default):
    return text
