"""Saved state (``show=state``): one row per entity, keyed for the KV store, and its restore.

A principal's row keeps its non-zero bins over the kept history, their distinct APIs (where not
1) and the APIs it has failed on with the bin of their first failure (novelty needs them; at most
:data:`FIRST_FAILURES_KEPT` of them, :func:`kept_first_failures`). An
account's row keeps the account's own history: its total per bin (its principals' failures, AWS
service principals excluded), the distinct (principal, API) pairs, the number of failing
principals per bin and the most of them failing on one event source per bin (``service_actors``,
rule P26: written only for the bins where it differs from the failing principals; a bin it leaves
out, and every bin of a row written before it existed, takes the failing principals) and where
its event sources' rates stood after its last bin (``sources``, rule P29: :mod:`iamspike.rare`;
a row without it reads, the rule then waiting a day of live history). So an alert
that reads only the state of the principals active in its window (``lookup ... _key AS
state_key``) still has the whole account's baseline.

Row fields: ``state_key`` (the KV store ``_key``: :func:`state_key`, :func:`account_state_key`),
``entity_type``, ``account``, ``principal`` (empty for an account), ``iamspike_state`` (compact
JSON, version 2) and ``updated`` (the last bin written). Rows of version 1 (one row per principal
plus a range row with empty account and principal, no account rows) are still read. Restored
counts are history only: for bins covered by the live rows, the live rows win.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import compress
from json.encoder import encode_basestring

from iamspike.intake import usable_time

STATE_FIELD = "iamspike_state"
ACCOUNT_STATE_FIELD = "iamspike_account_state"
VERSION = 2
READABLE = (1, 2)
PRINCIPAL = "principal"
ACCOUNT = "account"
RANGE = "range"  # a version-1 row with empty account and principal: only first and last
# A principal's row keeps at most this many first failures (:func:`kept_first_failures`): at the
# default history and span its worst row is then 39.1 KB, 75 % of the 52.4 KB a row that a KV store
# save batch allows (docs/distributed.md, "Splunk limits the distributed path meets").
FIRST_FAILURES_KEPT = 256
# An account's row keeps its event sources' sums (``sources``, P29) as far as the row stays within
# this many bytes (``row_bytes``): 90 % of those 52.4 KB (``rare.kept``). Its other fields take at
# most 46.7 KB at the default history and span (tests/unit/test_splunk_limits.py).
MAX_ACCOUNT_ROW_BYTES = 47_185
DIGITS = 7  # significant digits of a saved rate's sums (P29)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def state_key(account: str, principal: str) -> str:
    """The KV store ``_key`` of a principal's state row."""
    return _key(f"principal\x1f{account}\x1f{principal}")


def account_state_key(account: str) -> str:
    """The KV store ``_key`` of an account's state row."""
    return _key(f"account\x1f{account}")


@dataclass(frozen=True)
class SourceHistory:
    """Where an account's event sources' rates stood after its row's ``last`` bin (rule P29,
    ``rare``)."""

    since: int  # bin start (epoch s) from which the account was watched
    # event source -> (the level's decayed sum, the decayed sums of each bin of the day)
    sums: dict[str, tuple[float, tuple[float, ...]]] = field(default_factory=dict)
    # the sources not kept in ``sums`` (the busier ones): the highest of their sums, each bin of
    # the day apart (None: there are none), and their names' digests (``rare.digest``; None:
    # every source not in ``sums`` is one of them)
    busy: tuple[float, tuple[float, ...]] | None = None
    busy_ids: frozenset[str] | None = frozenset()


@dataclass(frozen=True)
class StateEntry:
    span: int
    first: int  # first bin start (epoch s) of the saved history
    last: int  # last bin start
    account: str
    principal: str
    bins: dict[int, int]  # bin start -> failures
    distinct_apis: dict[int, int] = field(default_factory=dict)  # bin start -> distinct APIs (1)
    first_failures: dict[str, int] = field(default_factory=dict)  # API -> bin of its first failure
    failing_principals: dict[int, int] = field(default_factory=dict)  # account rows only
    entity_type: str = PRINCIPAL
    # account rows only: bin start -> the most actors failing on one event source (P26)
    service_actors: dict[int, int] = field(default_factory=dict)
    # account rows only: where its event sources' rates stood after ``last`` (P29; None: not kept)
    sources: SourceHistory | None = None

    @property
    def key(self) -> str:
        if self.entity_type == ACCOUNT:
            return account_state_key(self.account)
        return state_key(self.account, self.principal)


def account_bins(entries, index_of, span: int, first: int, n_bins: int, live_first: int | None):
    """(bin index, account index, failures, distinct (principal, API) pairs, failing principals,
    the most of them failing on one event source) of saved account rows' bins within ``n_bins``
    bins from bin ``first``, before the live bins (``live_first``): the account history that the
    state of its principals does not carry. A bin without the last (rows written before P26
    carried it) gives the failing principals."""
    for entry in entries:
        a = index_of[entry.account]
        for start, count in entry.bins.items():
            b = start // span - first
            if b < 0 or b >= n_bins or (live_first is not None and start // span >= live_first):
                continue
            failing = entry.failing_principals.get(start, 0)
            yield (
                b,
                a,
                count,
                entry.distinct_apis.get(start, 1),
                failing,
                entry.service_actors.get(start, failing),
            )


def kept_first_failures(firsts: Mapping[str, int]) -> Mapping[str, int]:
    """At most :data:`FIRST_FAILURES_KEPT` of a principal's first failures (API -> bin start): the
    earliest (the principal's own first failure, from which novelty counts its settling time) and
    the most recent others, ties by API name. An API left out that fails again is taken as new."""
    if len(firsts) <= FIRST_FAILURES_KEPT:
        return firsts
    by_time = sorted(firsts.items(), key=lambda item: (item[1], item[0]))
    return dict([by_time[0], *by_time[len(by_time) - FIRST_FAILURES_KEPT + 1 :]])


def _offsets(entry: StateEntry, values: Mapping[int, int], skip: int | None = None) -> str:
    """``{"offset":value,...}`` as ``json.dumps(..., sort_keys=True)`` writes it: offsets (bins
    after ``first``) ordered as text, values that equal ``skip`` left out."""
    first, span = entry.first, entry.span
    if any(map(span.__rmod__, map(first.__rsub__, values))):  # off the grid: offsets may repeat
        items = [(str((start - first) // span), value) for start, value in values.items() if value != skip]
        items.sort()
        return "{" + ",".join([f'"{offset}":{value}' for offset, value in items]) + "}"
    # Distinct offsets: the items sort as their offsets do (a quote sorts before every digit).
    texts = [f'"{(start - first) // span}":{value}' for start, value in values.items() if value != skip]
    texts.sort()
    return "{" + ",".join(texts) + "}"


def _number(value: float) -> str:
    return f"{value:.{DIGITS}g}"


def _sums(level: float, hours) -> str:
    """``[level, each bin of the day's sum...]`` up to the last non-zero one."""
    hours = list(hours)
    while hours and not float(_number(hours[-1])):
        hours.pop()
    return f"[{','.join(_number(v) for v in (level, *hours))}]"


def source_text(name: str, level: float, hours) -> str:
    """One source of ``sources``'s ``by`` as the row writes it (``rare`` budgets a row by it)."""
    return f"{_text(name)}:{_sums(level, hours)}"


def _sources(history: SourceHistory) -> str:
    """``{"busy":sums,"busy_ids":[...],"by":{source:sums},"since":start}`` (``_sums``; the busy
    sources' fields only where there are any, ``busy_ids`` only where listed)."""
    fields = []
    if history.busy is not None:
        fields.append(f'"busy":{_sums(*history.busy)}')
        if history.busy_ids is not None:
            fields.append(f'"busy_ids":[{",".join(_text(i) for i in sorted(history.busy_ids))}]')
    by = ",".join(source_text(name, *value) for name, value in sorted(history.sums.items()))
    fields += [f'"by":{{{by}}}', f'"since":{history.since}']
    return "{" + ",".join(fields) + "}"


def row_bytes(row: Mapping[str, object]) -> int:
    """A row's size as its JSON text (what a KV store save batch's bytes are counted in)."""
    return len(json.dumps(row, separators=(",", ":")))


def sources_bytes(history: SourceHistory) -> int:
    """What ``sources`` adds to a row's :func:`row_bytes` (its text inside ``iamspike_state``)."""
    return len(json.dumps(f',"sources":{_sources(history)}')) - 2


def _text(value: str) -> str:
    """``json.dumps(value, ensure_ascii=False)`` of a text (the encoder's own function)."""
    return encode_basestring(value)


def encode(entry: StateEntry) -> dict[str, object]:
    """The output row for one entry. Its ``iamspike_state`` is compact JSON with sorted keys
    (written field by field: the fields are fixed, the offsets and API names sorted as text)."""
    first, span = entry.first, entry.span
    fields = [
        f'"account":{_text(entry.account)}',
        f'"apis":{_offsets(entry, entry.distinct_apis, skip=1)}',
        f'"bins":{_offsets(entry, entry.bins)}',
    ]
    if entry.failing_principals:
        fields.append(f'"failing":{_offsets(entry, entry.failing_principals)}')
    fields.append(f'"first":{first}')
    if entry.first_failures:
        fields.append(f'"first_failures":{{{_firsts(entry.first_failures, first, span)}}}')
    fields += [
        f'"last":{entry.last}',
        f'"principal":{_text(entry.principal)}',
    ]
    same = {
        start: n for start, n in entry.service_actors.items() if n != entry.failing_principals.get(start, 0)
    }
    if same:
        fields.append(f'"service_actors":{_offsets(entry, same)}')
    if entry.sources is not None:
        fields.append(f'"sources":{_sources(entry.sources)}')
    fields += [
        f'"span":{span}',
        f'"type":{_text(entry.entity_type)}',
        f'"v":{VERSION}',
    ]
    return {
        "state_key": entry.key,
        "entity_type": entry.entity_type,
        "account": entry.account,
        "principal": entry.principal,
        STATE_FIELD: "{" + ",".join(fields) + "}",
        "updated": entry.last,
    }


def _firsts(firsts: Mapping[str, int], first: int, span: int) -> str:
    """``first_failures``'s items (:func:`kept_first_failures`) as ``encode`` writes them."""
    kept = kept_first_failures(firsts)
    return ",".join([f"{_text(api)}:{(start - first) // span}" for api, start in sorted(kept.items())])


class PrincipalRows:
    """Principals' rows of one state pass, as :func:`encode` writes each (``span``, ``first`` and
    ``last`` shared), from columns: ``encode(StateEntry(...))`` per principal, without a dict
    per series, an object per entry or a sort per row (the backfill writes 200,000 of them).

    ``offsets``, ``failures`` and ``widths`` are every principal's bins (offsets after ``first``
    in spans, >= 0), principal after principal (``bounds``: where each one's begin), within a
    principal in the order :meth:`order` gives; ``apis``, ``bins`` the failed API ids and the
    offsets of their first failures (may be < 0), principal after principal (``fail_bounds``),
    in any order within one; ``names`` the API names by id."""

    def __init__(self, span: int, first: int, last: int, names: list[str]) -> None:
        self.span, self.first, self.last, self.names = span, first, last, names
        self._texts = [_text(name) + ":" for name in names]
        self._by_name = sorted(range(len(names)), key=names.__getitem__)  # API ids by name
        self._tail = f',"last":{last},"principal":'
        self._end = f',"span":{span},"type":{_text(PRINCIPAL)},"v":{VERSION}}}'

    @staticmethod
    def text_order(n: int) -> list[int]:
        """Each offset in ``range(n)``'s rank among them ordered as text (how ``encode`` orders a
        series: ``"12":`` before ``"120":`` before ``"13":``)."""
        rank = [0] * n
        for at, offset in enumerate(sorted(range(n), key=str)):
            rank[offset] = at
        return rank

    def name_order(self) -> list[int]:
        """Each API id's rank among the names ordered as text (first failures' order)."""
        rank = [0] * len(self.names)
        for at, api in enumerate(self._by_name):
            rank[api] = at
        return rank

    def rows(self, labels, bounds, offsets, failures, widths, fail_bounds, apis, bins) -> list[dict]:
        """One row per principal of ``labels`` (``((account, principal), i)`` in the rows' order,
        the i-th's columns at ``bounds[i]:bounds[i + 1]`` and ``fail_bounds[i]:fail_bounds[i +
        1]``) that has a bin."""
        first, span, last = self.first, self.span, self.last
        cell = [f'"{offset}":' for offset in range(max(offsets, default=-1) + 1)]
        bin_texts = list(map(str.__add__, map(cell.__getitem__, offsets), map(str, failures)))
        api_texts = list(map(str.__add__, map(cell.__getitem__, offsets), map(str, widths)))
        wide = [width != 1 for width in widths]
        firsts = list(map(str.__add__, map(self._texts.__getitem__, apis), map(str, bins)))
        head = '{"account":'
        start = f'"first":{first}'
        out = []
        account_text = ""
        last_account = None
        for (account, principal), i in labels:
            lo, hi = bounds[i], bounds[i + 1]
            if lo == hi:
                continue
            if account != last_account:
                account_text, last_account = head + _text(account) + ',"apis":{', account
            f_lo, f_hi = fail_bounds[i], fail_bounds[i + 1]
            if f_hi - f_lo > FIRST_FAILURES_KEPT:
                failed = {self.names[a]: first + b * span for a, b in zip(apis[f_lo:f_hi], bins[f_lo:f_hi])}
                kept = f',"first_failures":{{{_firsts(failed, first, span)}}}'
            elif f_hi > f_lo:
                kept = f',"first_failures":{{{",".join(firsts[f_lo:f_hi])}}}'
            else:
                kept = ""
            text = "".join(
                [
                    account_text,
                    ",".join(compress(api_texts[lo:hi], wide[lo:hi])),
                    '},"bins":{',
                    ",".join(bin_texts[lo:hi]),
                    "},",
                    start,
                    kept,
                    self._tail,
                    _text(principal),
                    self._end,
                ]
            )
            out.append(
                {
                    "state_key": state_key(account, principal),
                    "entity_type": PRINCIPAL,
                    "account": account,
                    "principal": principal,
                    STATE_FIELD: text,
                    "updated": last,
                }
            )
        return out


def _sources_of(value) -> SourceHistory:
    """The ``sources`` field read back (``_sources``)."""
    saved = dict(value)

    def sums_of(values) -> tuple[float, tuple[float, ...]]:
        out = [float(v) for v in values]
        if not out or not all(math.isfinite(v) and v >= 0 for v in out):
            raise ValueError("a rate that is no number")
        return out[0], tuple(out[1:])

    sums = {str(name): sums_of(values) for name, values in dict(saved["by"]).items()}
    if "busy" not in saved:
        return SourceHistory(int(saved["since"]), sums)
    ids = frozenset(str(i) for i in saved["busy_ids"]) if "busy_ids" in saved else None
    return SourceHistory(int(saved["since"]), sums, sums_of(saved["busy"]), ids)


def texts(value: str) -> list[str]:
    """The state texts of one ``iamspike_state`` value: one, or several where the state macro
    appends an account's states in one multivalue field (joined by newlines on the wire; a state
    text never holds a raw newline). Empty texts are left out."""
    return [text for text in value.split("\n") if text]


def decode(text: str) -> StateEntry:
    """Parse one ``iamspike_state`` value; ValueError with a short reason if it is not ours."""
    try:
        blob = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
        raise ValueError("not JSON") from exc
    if not isinstance(blob, Mapping) or blob.get("v") not in READABLE:
        raise ValueError("unknown state version")
    try:
        span = int(blob["span"])
        first = int(blob["first"])
        last = int(blob["last"])

        def bins_of(name: str) -> dict[int, int]:
            return {first + int(offset) * span: int(n) for offset, n in dict(blob.get(name, {})).items()}

        bins = bins_of("bins")
        apis = bins_of("apis")
        apis = {start: apis.get(start, 1) for start in bins}
        account, principal = str(blob["account"]), str(blob["principal"])
        if blob["v"] == 1:
            entity_type = PRINCIPAL if account or principal else RANGE
            firsts = dict(blob.get("seen", {}))
        else:
            entity_type = str(blob["type"])
            if entity_type not in (PRINCIPAL, ACCOUNT):
                raise ValueError("unknown entity type")
            firsts = dict(blob.get("first_failures", {}))
        first_failures = {str(api): first + int(offset) * span for api, offset in firsts.items()}
        services = bins_of("service_actors")
        failing = bins_of("failing")
        sources = _sources_of(blob["sources"]) if "sources" in blob else None
        times = (bins, first_failures.values(), failing, services)
        lo = min(first, last, *(min(t, default=first) for t in times))
        hi = max(first, last, *(max(t, default=first) for t in times))
        if sources is not None:
            lo, hi = min(lo, sources.since), max(hi, sources.since)
        if span <= 0 or not (usable_time(lo) and usable_time(hi)):
            raise ValueError("a time outside what a search reads")
        return StateEntry(
            span,
            first,
            last,
            account,
            principal if entity_type != ACCOUNT else "",
            bins,
            apis,
            first_failures,
            failing,
            entity_type,
            services,
            sources if entity_type == ACCOUNT else None,
        )
    except (KeyError, TypeError, ValueError, OverflowError, IndexError) as exc:
        raise ValueError("malformed state") from exc
