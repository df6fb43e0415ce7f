"""The saved state's rows (``show=state``) from the results pass's items, without dense matrices.

``show=state`` is an aggregation, not scoring: per principal its failures per bin, its distinct
APIs per bin and the bin of its first failure of each API; per account its failures per bin (AWS
service principals left out), its distinct (actor, API) pairs and its failing actors per bin
(:mod:`iamspike.spread` says what an actor is). So it needs no baseline, no explanation and no
``(bins, principals)`` matrix: every series here is a sorted array of the non-zero cells only
(a cell is ``bin offset * width + entity``), and the rows are written entity by entity.

The rows are those the matrices gave (``ResultsPass._state_rows`` until issue 15's backfill
work), byte for byte: principals' counts are summed in float32 in the same order, the account
series in float64 (equal for counts below 2**24 a cell; tests/unit/test_statefold.py compares
with hashes of the matrices' rows). Memory follows the cells that failed rather than every (bin,
principal) of the range: over 30 days of 200,000 principals each dense matrix was 576 MB, and
the state pass built six. Nothing here reads console sign-ins or explanations, so their item
arrays are dropped first (a day of the scale bench: 11 M items, 86 MB an array).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from iamspike import rare, state
from iamspike.accounts import account_actors, covered_accounts, live_offset, live_source_actors, source_items
from iamspike.bins import sorted_counts, sorted_unique, stable_order
from iamspike.spread import most_on_one_source


class Cells:
    """Values of sparse cells: ``cell`` sorted and unique (``bin offset * width + entity``)."""

    def __init__(self, cell: np.ndarray, value: np.ndarray) -> None:
        self.cell, self.value = cell, value

    @classmethod
    def summed(cls, cell: np.ndarray, value: np.ndarray, dtype=np.float32) -> Cells:
        """Repeated cells summed in ``dtype``, in the given order (as ``np.add.at`` into a matrix).

        The cells are put in order by one sort (:func:`~iamspike.bins.stable_order`; ``np.unique`` with its
        inverse took 2-2.7 s for 6 M cells, this 0.35); where every value is a whole number >= 0
        and each cell's sum is below 2**24, every partial sum is exact in float32 and float64
        alike, so each cell's values are summed at once (``np.add.reduceat``, in float64) instead
        of one at a time: the same sums (counts of events, always here). Else ``np.add.at``."""
        order = stable_order(cell)
        ordered = cell[order]
        head = np.ones(len(cell), dtype=bool)
        np.not_equal(ordered[1:], ordered[:-1], out=head[1:])
        unique = ordered[head]
        if not len(cell):
            return cls(unique, np.zeros(0, dtype=dtype))
        value = np.asarray(value, dtype=np.float64)
        if value.min() >= 0 and np.array_equal(value, np.trunc(value)):
            sums = np.add.reduceat(value[order], np.flatnonzero(head))
            if sums.max() < 2**24:
                return cls(unique, sums.astype(dtype))
        at = np.empty(len(cell), dtype=np.int64)
        at[order] = np.cumsum(head) - 1
        out = np.zeros(len(unique), dtype=dtype)
        np.add.at(out, at, value)
        return cls(unique, out)

    @classmethod
    def distinct(cls, cell: np.ndarray, item: np.ndarray, n_items: int) -> Cells:
        """How many distinct ``item`` values each cell holds."""
        pairs = cell * n_items
        pairs += item
        pairs = sorted_unique(pairs)
        pairs //= n_items
        unique, per_cell = sorted_counts(pairs)
        return cls(unique, per_cell.astype(np.float64))

    def at(self, wanted: np.ndarray) -> np.ndarray:
        """The value of each wanted cell (0 where there is none)."""
        if not len(self.cell):
            return np.zeros(len(wanted), dtype=np.float64)
        pos = np.minimum(np.searchsorted(self.cell, wanted), len(self.cell) - 1)
        return np.where(self.cell[pos] == wanted, self.value[pos], 0).astype(np.float64)


def state_rows(results, restored, s_first: list[tuple[int, int, int]], live_first: int | None) -> list[dict]:
    """The state rows of a results pass (``iamspike.results.ResultsPass`` after its entities,
    ``first`` and ``n_bins`` are set): ``restored`` is the saved principals' history before the
    live rows as lists (bin, principal, failures, distinct APIs), ``s_first`` their first
    failures (principal, API id, bin)."""
    o = results.o
    span, first, n_bins = o.span, results.first, results.n_bins
    n_p = max(len(results.principals), 1)
    s_bin, s_entity, s_count, s_apis = restored
    s_b = np.asarray(s_bin, dtype=np.int64) - first
    s_e = np.asarray(s_entity, dtype=np.int64)
    s_keep = s_b >= 0
    s_b, s_e = s_b[s_keep], s_e[s_keep]
    s_c = np.asarray(s_count, dtype=np.float64).reshape(-1)[s_keep]
    s_a = np.asarray(s_apis, dtype=np.float64).reshape(-1)[s_keep]

    p_account = np.array(results.p_account, dtype=np.int64)
    actors = account_actors(results, p_account, np.array(results.p_service, dtype=bool))
    # Reads the count rows' items, dropped below.
    sources = live_source_actors(results, *actors[1:], source_items(results))
    same = most_on_one_source(sources[0], len(results.accounts))
    # Where the accounts' event sources' rates stand after the run (P29: rare.SourceHistory).
    _, histories = rare.run(
        *sources, rare.starts(results, live_first), results.first, n_bins, span, rare.half_life_bins(o)
    )
    # No console sign-ins and no explanations here: their item arrays go first, and the others
    # are read in place where every item is in the window (a day's 11 M items: 86 MB an array).
    results.k_console = results.k_explain = results.item_row = None
    fail = first_failures(results, s_first)
    k_t, k_p, k_api, k_count = results.k_bin - first, results.k_p, results.k_api, results.k_count
    results.k_bin = results.k_count = None
    live = k_t >= 0
    if not live.all():
        k_t, k_p, k_api, k_count = k_t[live], k_p[live], k_api[live], k_count[live]
    del live

    # Principals: failures per cell (float32, summed in the matrix's order), distinct APIs.
    cell = k_t * n_p
    cell += k_p
    failures = Cells.summed(_joined(cell, s_b * n_p + s_e), _joined(k_count, s_c))
    del k_count
    apis = Cells.distinct(cell, k_api, results.n_apis)
    del cell
    restored_apis = Cells(*_sorted(s_b * n_p + s_e, s_a))

    keep_from = max(0, n_bins - (o.history // span))
    out = _principal_rows(results, failures, apis, restored_apis, fail, keep_from)
    out += _account_rows(
        results,
        actors,
        failures,
        (k_t, k_p, k_api),
        (s_b, s_e, s_c, s_a),
        (same, histories),
        live_first,
        keep_from,
    )
    return out


def first_failures(results, s_first: list[tuple[int, int, int]]) -> tuple[np.ndarray, ...]:
    """Each (principal, API) pair's first failing bin, from the live items and the saved first
    failures, as arrays (principal, API id, bin) sorted by principal then API: the
    ``first_fail`` of ``ResultsPass._novelty`` (which calls it), by one sort of (pair, bin)
    packed in an int64 (a ``lexsort`` of the two took a third of the state pass on a backfill)."""
    n_apis = max(len(results.api_ids), 1)
    blank = results.api_ids.get("")
    k_p, k_api, k_bin = results.k_p, results.k_api, results.k_bin
    if blank is not None:
        live = k_api != blank
        k_p, k_api, k_bin = k_p[live], k_api[live], k_bin[live]
    saved = np.array(s_first, dtype=np.int64).reshape(-1, 3)
    pair = np.concatenate([k_p * n_apis + k_api, saved[:, 0] * n_apis + saved[:, 1]])
    when = np.concatenate([k_bin, saved[:, 2]])
    if not len(pair):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    low = int(when.min())
    width = int(when.max()) - low + 1
    if (int(pair.max()) + 1) * width < 2**62:
        packed = pair * width
        packed += when - low
        packed.sort()
        pair, when = packed // width, packed % width + low
    else:
        order = np.lexsort((when, pair))
        pair, when = pair[order], when[order]
    head = np.ones(len(pair), dtype=bool)
    head[1:] = pair[1:] != pair[:-1]
    pair, when = pair[head], when[head]
    return pair // n_apis, pair % n_apis, when


def _joined(live: np.ndarray, saved: np.ndarray) -> np.ndarray:
    return np.concatenate([live, saved]) if len(saved) else live


def _sorted(cell: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = stable_order(cell)
    return cell[order], value[order]


def _principal_rows(results, failures: Cells, apis: Cells, restored: Cells, fail, keep_from: int) -> list:
    o = results.o
    span, n_p = o.span, max(len(results.principals), 1)
    first = (results.first + keep_from) * span
    last = (results.first + results.n_bins - 1) * span
    nonzero = failures.value != 0
    cell = failures.cell[nonzero]
    t, p = cell // n_p, cell % n_p
    window = t >= keep_from
    cell, t, p, value = cell[window], t[window], p[window], failures.value[nonzero][window]
    width = np.where(np.isin(cell, restored.cell), restored.at(cell), apis.at(cell))
    offset = t - keep_from
    writer = state.PrincipalRows(span, first, last, list(results.api_ids))
    rank = np.array(writer.text_order(int(offset.max()) + 1 if len(offset) else 0), dtype=np.int64)
    order = stable_order(p * len(rank) + rank[offset])  # by principal, then offset as text
    bounds = np.searchsorted(p[order], np.arange(len(results.principals) + 1)).tolist()
    fail_p, fail_api, fail_when = fail
    names = np.array(writer.name_order(), dtype=np.int64)
    by_name = stable_order(fail_p * len(names) + names[fail_api])  # by principal, then API name
    fail_bounds = np.searchsorted(fail_p, np.arange(len(results.principals) + 1)).tolist()
    return writer.rows(
        sorted(results.principals.items()),
        bounds,
        offset[order].tolist(),
        value[order].astype(np.int64).tolist(),
        width[order].astype(np.int64).tolist(),
        fail_bounds,
        fail_api[by_name].tolist(),
        (fail_when[by_name] - (results.first + keep_from)).tolist(),
    )


def _account_rows(
    results, actors, failures: Cells, items, restored, same, live_first: int | None, keep_from: int
) -> list:
    """Per account: failures (its principals', AWS service principals left out), distinct (actor,
    API) pairs, failing actors and the most actors on one event source (``same``'s first: the
    live items', ``accounts.live_source_actors``) per bin, and where its event sources' rates
    stand (its second: ``rare.SourceHistory`` per account); before the live rows, an account with a
    saved account row takes that row's history instead of its principals', others their failing
    actors for the actors on one source (``actors``: ``accounts.account_actors``).

    These are the series of ``accounts.account_series``, summed here over sorted arrays of the
    non-zero cells rather than its ``(bins, principals)`` and ``(bins, actors)`` matrices (for
    memory: this module's docstring); who is an actor, the live actors on one source, the first
    live bin and the accounts with a saved row are computed by the same functions for both."""
    o = results.o
    span, first, n_bins = o.span, results.first, results.n_bins
    n_p, n_a = len(results.principals), len(results.accounts)
    group, p_actor, a_group = actors
    same, histories = same
    n_actors = len(a_group)
    live_from = live_offset(first, n_bins, live_first)
    width = n_a + 1

    # Failures per (bin, account) and failing actors per (bin, account).
    t, p = failures.cell // max(n_p, 1), failures.cell % max(n_p, 1)
    counts = Cells.summed(t * width + group[p], failures.value.astype(np.float64), np.float64)
    failing = failures.value > 0
    actor_cells = sorted_unique(t[failing] * n_actors + p_actor[p[failing]])
    spread = Cells.summed(
        (actor_cells // n_actors) * width + a_group[actor_cells % n_actors],
        np.ones(len(actor_cells)),
        np.float64,
    )
    # Distinct (actor, API) pairs: live items from live_from on; before it the saved principals'.
    k_t, k_p, k_api = items
    mine = (k_t >= live_from) & (k_t < n_bins)
    if not mine.all():
        k_t, k_p, k_api = k_t[mine], k_p[mine], k_api[mine]
    del mine
    actor_cell = k_t * n_actors
    actor_cell += p_actor[k_p]
    pairs = Cells.distinct(actor_cell, k_api, results.n_apis)
    del actor_cell
    s_b, s_e, s_c, s_a = restored
    before = s_b < live_from
    acc_apis = Cells.summed(
        np.concatenate(
            [
                (pairs.cell // n_actors) * width + a_group[pairs.cell % n_actors],
                s_b[before] * width + a_group[p_actor[s_e[before]]],
            ]
        ),
        np.concatenate([pairs.value, s_a[before]]),
        np.float64,
    )
    extra_cell: list[int] = []
    extra = ([], [], [])
    saved_same: tuple[list[int], list[float]] = ([], [])
    covered = covered_accounts(results)
    if covered.any():
        # The saved principals' history of a covered account is replaced by its account row.
        a = group[s_e]
        take = covered[a]
        extra_cell += (s_b[take] * width + a[take]).tolist()
        extra[0].extend((-s_c[take]).tolist())
        extra[1].extend((-s_a[take]).tolist())
        extra[2].extend([0.0] * int(take.sum()))
        spread = _without_before(spread, covered, width, live_from)
        saved = state.account_bins(results.account_entries, results.accounts, span, first, n_bins, live_first)
        for b, a, count, apis, failing, one_source in saved:
            extra_cell.append(b * width + a)
            extra[0].append(float(count))
            extra[1].append(float(apis))
            extra[2].append(float(failing))
            saved_same[0].append(b * width + a)
            saved_same[1].append(float(one_source))
    cells = np.asarray(extra_cell, dtype=np.int64)
    counts = _plus(counts, cells, extra[0])
    acc_apis = _plus(acc_apis, cells, extra[1])
    spread = _plus(spread, cells, extra[2])
    same = _one_source(same, spread, saved_same, covered, n_a, live_from)

    start_of = first + keep_from
    first_s, last_s = start_of * span, (first + n_bins - 1) * span
    t = counts.cell // width
    a = counts.cell % width
    keep = (counts.value.astype(np.float32) != 0) & (t >= keep_from) & (a < n_a)
    cell, t, a = counts.cell[keep], t[keep], a[keep]
    value = counts.value[keep].astype(np.float32).astype(np.int64)
    width_v = acc_apis.at(cell).astype(np.float32).astype(np.int64)
    spread_v = spread.at(cell).astype(np.float32).astype(np.int64)
    same_v = same.at(cell).astype(np.float32).astype(np.int64)
    order = np.lexsort((t, a))
    t, a = t[order], a[order]
    starts = ((first + t) * span).tolist()
    value_l, width_l, spread_l = value[order].tolist(), width_v[order].tolist(), spread_v[order].tolist()
    same_l = same_v[order].tolist()
    bounds = np.searchsorted(a, np.arange(n_a + 1)).tolist()
    out = []
    for account, e in sorted(results.accounts.items()):
        lo, hi = bounds[e], bounds[e + 1]
        if lo == hi:
            continue
        entry = state.StateEntry(
            span,
            first_s,
            last_s,
            account,
            "",
            dict(zip(starts[lo:hi], value_l[lo:hi])),
            dict(zip(starts[lo:hi], width_l[lo:hi])),
            {},
            dict(zip(starts[lo:hi], spread_l[lo:hi])),
            state.ACCOUNT,
            dict(zip(starts[lo:hi], same_l[lo:hi])),
        )
        out.append(account_row(entry, histories[e]))
    return out


def account_row(entry: state.StateEntry, history: state.SourceHistory) -> dict:
    """An account's row with as much of its event sources' sums as ``state.MAX_ACCOUNT_ROW_BYTES``
    leaves beside its other fields (``rare.kept``)."""
    row = state.encode(entry)
    room = state.MAX_ACCOUNT_ROW_BYTES - state.row_bytes(row)
    sources = rare.kept(history, lambda h: state.sources_bytes(h) <= room)
    return state.encode(replace(entry, sources=sources)) if sources is not None else row


def _one_source(same, spread: Cells, saved, covered: np.ndarray, n_a: int, live_from: int) -> Cells:
    """The most actors on one event source per ``(bin, account)`` cell (``bin * (n_a + 1) +
    account``): from the live bins on the live items' (``same``); before them an account row's
    (``saved``) where the account has one, else its failing actors (``spread``), as
    ``accounts.account_series``."""
    width = n_a + 1
    cell, value = same
    t, a = cell // max(n_a, 1), cell % max(n_a, 1)
    live = t >= live_from
    before = (spread.cell // width < live_from) & ~covered[spread.cell % width]
    return Cells.summed(
        np.concatenate([(t * width + a)[live], spread.cell[before], np.asarray(saved[0], dtype=np.int64)]),
        np.concatenate([value[live].astype(np.float64), spread.value[before], np.asarray(saved[1])]),
        np.float64,
    )


def _without_before(cells: Cells, covered: np.ndarray, width: int, live_from: int) -> Cells:
    drop = covered[cells.cell % width] & (cells.cell // width < live_from)
    return Cells(cells.cell[~drop], cells.value[~drop])


def _plus(cells: Cells, cell: np.ndarray, value: Sequence[float]) -> Cells:
    if not len(cell):
        return cells
    return Cells.summed(
        np.concatenate([cells.cell, cell]), np.concatenate([cells.value, np.asarray(value)]), np.float64
    )
