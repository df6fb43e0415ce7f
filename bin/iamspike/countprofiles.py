"""Count rows' profiles on the search head: the ids of their APIs and event sources.

A count row's *profile* (:mod:`iamspike.counttext`) lists its cell's event sources, APIs and error
codes, and the minutes it failed on each source (rule P39). :class:`Profiles` reads each profile
text once into what :class:`~iamspike.countrows.CountRows` stores per row (the API ids as int32,
their number, the event source ids, their number and the sources' minutes as uint16), numbering
names as they first come; a profile with an error code this search does not count, or an event source
it leaves out, reads as :data:`FILTERED` (the row is then read entry by entry by the Tally). The
instances of one search share one :class:`Profiles` (``CountRows(names=...)``), so rows moved
between them keep their ids.
"""

from __future__ import annotations

from array import array

from iamspike.counttext import read_masks, read_profile, split_masks

PROFILES_KEPT = 50_000  # profile texts remembered (a cache: cleared when it grows past this)
FILTERED = ()  # a profile with an entry this search leaves out (or past WIDEST): the row is read whole
# the most APIs or event sources of a profile, and the highest event source id, CountRows holds
# (its counts and source ids are uint16: 2 bytes a row each instead of 4)
WIDEST = 0xFFFF


class Profiles:
    """Profile texts read, and the API and event source names numbered so far."""

    def __init__(self, tally) -> None:
        """``tally``: the search's :class:`~iamspike.counting.Tally` (its error classes and event
        sources say which profiles are :data:`FILTERED`)."""
        self.tally = tally
        self.api_names: list[str] = []
        self.api_ids: dict[str, int] = {}
        self.source_names: list[str] = []  # event sources (spread.service_actors)
        self.source_ids: dict[str, int] = {}
        # profile text without masks group -> (API ids, their number, event source ids, their
        # number, the sources' minutes: 0), packed as the arrays hold them; or FILTERED
        self.texts: dict[str, tuple[bytes, int, bytes, int, bytes]] = {}
        # a profile's first three groups -> the same and its sources' number, and masks groups
        # -> (their minutes packed, their number): a profile with masks is read from these two
        # (the masks make many more texts than there are of either, most of them seen once)
        self.bases: dict[str, tuple[tuple, int]] = {}
        self.masks: dict[str, tuple[bytes, int]] = {}

    def read(self, text: str) -> tuple[bytes, int, bytes, int, bytes]:
        """The API ids of a profile and their number, its event source ids and theirs, and the
        sources' minutes (packed as :class:`~iamspike.countrows.CountRows` holds them), or
        ``FILTERED``; raises ValueError if it is no profile. A profile without masks group is
        remembered in :attr:`texts`; one with masks is read from :attr:`bases` and :attr:`masks`
        each time (most of them come once: kept whole they were 15 bytes a key at the peak hour)."""
        base, group = split_masks(text)
        if group is None:
            return _kept(self.texts, text, (self.bases.get(base) or self.base(base))[0])
        minutes = self.masks.get(group)
        if minutes is None:
            packed = array("H", read_masks(group))
            minutes = _kept(self.masks, group, (packed.tobytes(), len(packed)))
        known = self.bases.get(base)
        if known is None:
            if minutes[1] != base.partition("^")[0].count("|") + 1:
                raise ValueError("masks differ from the sources")  # before any name is numbered
            known = self.base(base)
        found, n_sources = known
        if minutes[1] != n_sources:
            raise ValueError("masks differ from the sources")
        if found is FILTERED:
            return found
        return (*found[:4], minutes[0])

    def base(self, text: str) -> tuple[tuple, int]:
        """A profile without its masks group: :meth:`_profile`'s answer (minutes 0) and the
        number of its event sources."""
        sources, apis, codes, _none = read_profile(text)
        counted, wanted = self.tally.counted, self.tally.sources
        if any(code and not counted[code] for code in codes) or (
            wanted and any(source not in wanted for source in sources)
        ):
            found: tuple = FILTERED
        else:
            api_ids = _ids(apis, self.api_ids, self.api_names)
            source_ids = _ids(sources, self.source_ids, self.source_names)
            if max(len(api_ids), len(source_ids), max(source_ids, default=0)) > WIDEST:
                found = FILTERED  # no map phase of ours writes such a profile: read whole
            else:
                packed = array("H", source_ids).tobytes()
                found = (api_ids.tobytes(), len(api_ids), packed, len(source_ids), bytes(len(packed)))
        return _kept(self.bases, text, (found, len(sources)))


def _kept(cache: dict, key: str, value):
    """``value`` remembered for ``key`` (the cache cleared when it holds :data:`PROFILES_KEPT`)."""
    if len(cache) >= PROFILES_KEPT:
        cache.clear()
    cache[key] = value
    return value


def _ids(names: tuple[str, ...], ids: dict[str, int], listed: list[str]) -> array:
    """The ids of ``names`` in ``ids`` (new names numbered on and appended to ``listed``)."""
    out = array("i", [ids.setdefault(name, len(ids)) for name in names])
    if len(ids) > len(listed):
        listed.extend(list(ids)[len(listed) :])
    return out
