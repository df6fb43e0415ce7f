"""The streaming phases of ``iamspike``: ``phase=map`` (count rows) and ``phase=fold``.

Both run where splunkd puts them (the indexers, for a distributed search) and import neither
numpy nor the scorer. ``phase=map`` counts raw events (or ``count_field=`` rows) into one count
text per (account, principal) per send (``v4``, one part per bin; ``v3`` for one bin), packs
the texts of an account's principals into ``v5`` rows of up to 32 (``counting.packed_rows``), and passes
count rows and state rows through unchanged, so running it twice changes nothing; it answers
each chunk with what it passed through and sends its counts when splunkd says ``finished`` (or
earlier, when they grow past :data:`FLUSH_KEYS`).
``phase=fold`` adds ``account`` and ``principal`` to each raw event by the engine's own rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from iamspike import state
from iamspike.cloudtrail import FIELDS, RAW, parse_raw, record_to_row
from iamspike.counting import COUNTS_FIELD, Tally, packed_rows, wire_rows
from iamspike.failures import ErrorClasses
from iamspike.intake import IDENTITY_FIELDS, UNKNOWN, identify
from iamspike.options import Options

STREAMING = {"type": "streaming"}
# Count keys held before the counts are sent early (bounded memory). A send's rows are the
# principals it holds, so fewer sends are fewer rows: at 1.5 M an indexer of the scale bench's
# organisation (3.2 M failed events, 1.35 M keys a weekday) sends once a day (docs/bench/scale.md).
FLUSH_KEYS = 1_500_000
_IDENTITY_AT = [FIELDS.index(name) for name in IDENTITY_FIELDS]


def _passed(header: list[str], row: list[str]) -> dict[str, object]:
    return dict(zip(header, row))


class MapPhase:
    """``phase=map``: raw events -> count rows; count rows and state rows pass through."""

    def __init__(self, options: Options) -> None:
        counted = ErrorClasses.load(options.lookup).counter(options.classes)
        self.tally = Tally(options.span, counted, options.event_sources, options.count_field, keep_ids=True)
        self._out: list[dict[str, object]] = []

    def getinfo(self) -> dict[str, object]:
        return dict(STREAMING)

    def add_rows(self, header: list[str], rows: Iterable[list[str]]) -> None:
        index = {name: i for i, name in enumerate(header)}
        marks = [index[name] for name in (COUNTS_FIELD, state.STATE_FIELD) if name in index]
        if marks:
            live = []
            for row in rows:
                if any(row[i] for i in marks):
                    self._out.append(_passed(header, row))
                else:
                    live.append(row)
            rows = live
        self.tally.add_rows(header, rows)

    def take(self) -> list[dict[str, object]]:
        """What to send with this chunk's reply: rows passed through, and the counts if large."""
        out, self._out = self._out, []
        if len(self.tally.counts) >= FLUSH_KEYS:
            out.extend(packed_rows(wire_rows(self.tally.count_rows())))
            self.tally.clear_counts()
        return out

    def results(self) -> list[dict[str, object]]:
        out, self._out = self._out, []
        if self.tally.rows:
            out.extend(packed_rows(wire_rows(self.tally.count_rows())))
            out.append(self.tally.range_row())
            self.tally.clear_counts()
        return out

    def messages(self) -> list[str]:
        return []  # skipped rows travel in the range row to the search head's one warning


class FoldPhase:
    """``phase=fold``: each raw event with ``account`` and ``principal`` added."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self._out: list[dict[str, object]] = []
        self._identities: dict[tuple, tuple[str, str, bool]] = {}

    def getinfo(self) -> dict[str, object]:
        return dict(STREAMING)

    def add_rows(self, header: list[str], rows: Iterable[list[str]]) -> None:
        index = {name: i for i, name in enumerate(header)}
        at = [index.get(name) for name in IDENTITY_FIELDS]
        raw_i = index.get(RAW)
        for row in rows:
            identity = tuple(row[i] if i is not None else "" for i in at)
            if raw_i is not None and row[raw_i] and not (identity[0] and any(identity[1:])):
                record = parse_raw(row[raw_i])  # extraction stopped early, or only _raw
                if record is not None:
                    converted = record_to_row(record)
                    identity = tuple(converted[i] for i in _IDENTITY_AT)
            found = self._identities.get(identity)
            if found is None:
                found = self._identities[identity] = identify(identity)
            out = _passed(header, row)
            out["account"], out["principal"] = found[0] or UNKNOWN, found[1]
            self._out.append(out)

    def take(self) -> list[dict[str, object]]:
        out, self._out = self._out, []
        return out

    def results(self) -> list[dict[str, object]]:
        return self.take()

    def messages(self) -> list[str]:
        return []
