"""The ``iamspike`` engine's reporting phase: the chunk-accumulating :class:`Detector` and ``run``.

Reads like its pipeline: rows are routed as they arrive (count rows from the map phase, saved
state, allowlist entries, raw events or pre-aggregated rows) and counted (``counting``);
``results()`` runs the results pass once (``results``: matrices, baselines, scores,
explanations). Nothing is scored before ``results()``, so any chunking of the same rows gives the
same answer.

The CLI and the benches import from here: :class:`Options`, :class:`OptionError`,
:func:`parse_options`, :class:`Detector`, :func:`run`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from iamspike import state
from iamspike.allowlist import REASON, Allowlist, is_entry_row
from iamspike.counting import COUNTS_FIELD, Tally, unpack_rows
from iamspike.countrows import CountRows
from iamspike.failures import ErrorClasses
from iamspike.options import (  # noqa: F401 (the engine's API)
    BY_VALUES,
    SHOW_VALUES,
    OptionError,
    Options,
    counting_args,
    parse_options,
    span_text,
)
from iamspike.results import ResultsPass

OUTPUT_FIELDS = (
    "_time",
    "entity_type",
    "account",
    "principal",
    "failures",
    "expected",
    "upper",
    "score",
    "severity",
    "distinct_apis",
    "top_error_codes",
    "top_apis",
    "top_source_ips",
    "top_user_agents",
    "reason",
)
BAD_STATE = "with an iamspike_state that is unreadable or of another span"
BACKFILL = "run 'IAM Error Spike - Baseline Backfill' to rebuild the saved state"
# Below this much scored time without a saved baseline, every stream's first hours look like an
# onset and the week-long rules are off: an analyst's 24 h search raised ~19 false alerts where the
# scheduled alert, reading the baseline, raised 0.2 (docs/bench/quality.md, "Ad hoc searches").
UNAIDED = 7 * 86400


def unaided_note(seconds: float) -> tuple[str, str]:
    """The INFO line of a search that scored ``seconds`` of rows without any saved baseline."""
    return (
        "INFO",
        f"no saved baseline reached iamspike: no history before this search's {hours(seconds)} h, "
        "so each entity's first hours are judged without a baseline: expect more false alerts than "
        "the scheduled alerts raise; read the baseline between the phases as they do: "
        "... | iamspike phase=map | `iam_error_spike_baseline` | iamspike",
    )


class Window(NamedTuple):
    """The time a results pass spans: its live rows' ``lo`` and ``hi`` (epoch s) and its saved
    state's ``first`` and ``last`` bin starts (infinite where there are none)."""

    lo: float = math.inf
    hi: float = -math.inf
    first: float = math.inf
    last: float = -math.inf

    def union(self, other: Window) -> Window:
        return Window(
            min(self.lo, other.lo),
            max(self.hi, other.hi),
            min(self.first, other.first),
            max(self.last, other.last),
        )


def new_tally(options: Options, keep_ids: bool = False) -> Tally:
    """The Tally the options ask for (span, error classes, event sources, count_field)."""
    counted = ErrorClasses.load(options.lookup).counter(options.classes)
    return Tally(options.span, counted, options.event_sources, options.count_field, keep_ids)


def hours(seconds: float) -> int:
    return max(1, round(seconds / 3600))


class Detector:
    """Accumulates rows chunk by chunk; scores everything once in :meth:`results`."""

    def __init__(self, options: Options | None = None, names: CountRows | None = None) -> None:
        """``names``: count rows whose API and event source ids these share (``show=state``'s
        spill adds rows it read as they came: :meth:`CountRows.add_taken`)."""
        self.options = options or Options()
        self.tally = new_tally(self.options)
        self.count_rows = CountRows(self.tally, names=names)
        self._entries: dict[tuple[str, str, str], state.StateEntry] = {}
        self._ranges: list[state.StateEntry] = []
        self._decoded: set[str] = set()
        self._messages: list[str] = []
        # Seconds of rows scored without any saved baseline, when under UNAIDED (else 0)
        self.unaided = 0.0
        self.allowlist = Allowlist()

    def getinfo(self) -> dict[str, object]:
        """The SCPv2 getinfo reply: a reporting command whose map phase splunkd may distribute."""
        preop = " ".join(["iamspike", "phase=map", *counting_args(self.options)])
        return {"type": "reporting", "run_in_preview": False, "streaming_preop": preop}

    def bound(self, earliest: float, latest: float) -> None:
        """The search's time range (epoch s, ``latest`` excluded; infinite where unbounded): range
        rows reaching outside it are clamped to it (:meth:`Tally.bound`). Without it (the CLI) a
        range row is taken as sent."""
        self.tally.bound(earliest, latest)

    # ---- input

    def add_rows(self, header: list[str], rows: Iterable[list[str]]) -> None:
        """One chunk of Splunk rows: count rows (with state attached by lookup), state rows, raw
        events or aggregated rows, in any mix. Count rows and raw events are read one at a time
        as the chunk is parsed (a chunk's rows are never all held: holding 50,000 row lists costs
        the garbage collector and the memory caches more than reading them)."""
        index = {name: i for i, name in enumerate(header)}
        counts_i = index.get(COUNTS_FIELD)
        if counts_i is None and state.STATE_FIELD not in index and REASON not in index:
            self.tally.add_rows(header, rows)
            return
        if counts_i is not None:
            rows = unpack_rows(header, rows, self.tally.skipped, self.tally.within)  # v5 rows: their members
        live: list[list[str]] = []
        entry_rows: list[list[str]] = []
        routed = self._routed(index, rows, live, entry_rows)
        if counts_i is not None:
            self.count_rows.add(index, routed)
        else:
            for _ in routed:
                pass
        if entry_rows:
            self.allowlist.add_rows(header, entry_rows)
        if live:
            self.tally.add_rows(header, live)

    def _routed(self, index: Mapping[str, int], rows: Iterable[list[str]], live: list, entry_rows: list):
        """The chunk's count rows, one at a time; on the way, state rows and the state ``lookup``
        attached to count rows are read (decoded once per key), allowlist entries and raw rows set
        aside."""
        counts_i = index.get(COUNTS_FIELD)
        state_i = index.get(state.STATE_FIELD)
        entries = REASON in index
        attached = [
            (index[field], index.get(key_field))
            for field, key_field in (
                (state.STATE_FIELD, "state_key"),
                (state.ACCOUNT_STATE_FIELD, "account_state_key"),
            )
            if field in index
        ]
        for row in rows:
            if counts_i is not None and row[counts_i]:
                for text_i, key_i in attached:
                    text = row[text_i]
                    if text:
                        self._add_state(text, row[key_i] if key_i is not None else "")
                yield row
            elif state_i is not None and row[state_i]:
                for text in state.texts(row[state_i]):  # one, or an account's several
                    self._add_state(text, "")
            elif entries and is_entry_row(index, row):
                entry_rows.append(row)
            else:
                live.append(row)

    def add_records(self, records: Iterable[Mapping]) -> None:
        """CloudTrail record dicts (a log file's ``Records[]``)."""
        self.tally.add_records(records)

    def _add_state(self, text: str, key: str) -> None:
        key = key or text
        if key in self._decoded:
            return
        self._decoded.add(key)
        try:
            entry = state.decode(text)
        except ValueError:
            self.tally.skipped[BAD_STATE] += 1
            return
        if entry.span != self.options.span:
            self.tally.skipped[BAD_STATE] += 1
            return
        if entry.entity_type == state.RANGE:
            self._ranges.append(entry)
        else:
            self._entries.setdefault((entry.entity_type, entry.account, entry.principal), entry)

    # ---- output

    def messages(self) -> list[str]:
        """Warnings for the user, one line each; every skipped row is named in one line."""
        out = [*self.tally.messages, *self._messages]
        malformed = self.allowlist.message()
        if malformed:
            out.append(malformed)
        warning = self.tally.warning()
        if warning:
            out.append(warning + (f"; {BACKFILL}" if BAD_STATE in self.tally.skipped else ""))
        return out

    def notes(self) -> list[tuple[str, str]]:
        """``(level, text)`` lines that are no warning, after :meth:`results`: a range scored
        without any saved baseline (:func:`unaided_note`)."""
        return [unaided_note(self.unaided)] if self.unaided else []

    def results(self, window: Window | None = None) -> list[dict[str, object]]:
        """Score everything accumulated; rows per the engine API (show=spikes|all|state).

        :attr:`window` is then the time these rows span. With ``window`` (``show=state`` run a few
        accounts at a time, :mod:`iamspike.spill`) the pass spans that time instead, as if the
        other accounts' rows were here too."""
        entries = [*self._entries.values(), *self._ranges]
        saved = bool(entries)
        self.count_rows.resolve(failures_only=self.options.show == "state")
        self.tally.drop_duplicates()
        firsts = [e.first for e in entries] or [math.inf]
        lasts = [e.last for e in entries] or [-math.inf]
        self.window = Window(self.tally.lo, self.tally.hi, min(firsts), max(lasts))
        if window is not None:
            self.tally.lo, self.tally.hi = window.lo, window.hi
            if math.isfinite(window.first):
                entries.append(
                    state.StateEntry(
                        self.options.span,
                        int(window.first),
                        int(window.last),
                        "",
                        "",
                        {},
                        entity_type=state.RANGE,
                    )
                )
        results = ResultsPass(self.options, self.tally, entries, self._messages, self.count_rows)
        rows = results.rows()
        self.n_principals = len(results.principals)
        scored = self.tally.hi - self.tally.lo + self.options.span
        if not saved and self.options.show != "state" and 0 < scored < UNAIDED:
            self.unaided = scored
        # Allowlist entries (rows of `iam_error_spike_allowlist`) drop flagged principal rows of
        # known automation; the saved state (show=state) keeps learning them.
        return rows if self.options.show == "state" else self.allowlist.keep(rows)


def run(records: Iterable[Mapping], options: Options | None = None) -> list[dict[str, object]]:
    """Convenience for the CLI and the benches: ``Detector(options)``, add records, results."""
    detector = Detector(options)
    detector.add_records(records)
    return detector.results()


def iter_chunks(items: list, size: int) -> Iterator[list]:
    """``items`` in chunks of ``size`` (tests and benches use it to prove chunking invariance)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
