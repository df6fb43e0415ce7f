"""Spreads on a service rare for the account (rule P29): several actors failing on one event
source the account seldom fails on.

Per (bin, account, event source): the actors failing on it (``spread.source_actor_cells``),
judged against that column's own rate, the higher of

- its **level**: an exponentially decayed mean of its actors per bin (half-life the baselines',
  :func:`half_life_bins`), from a prior of :data:`PRIOR_PER_HOUR` an hour weighing a day of bins, and
- its **hour**: the decayed mean of the same bin of the day on earlier days (half-life
  :data:`HOUR_HALF_LIFE_DAYS` days; where a day is a whole number of bins, at most 24),

as a Poisson tail ``-log10 P(X >= k)`` times :data:`WEIGHT`, where at least ``min_actors`` actors
fail on the source, they are at least :data:`SHARE` of the account's failing actors, and the
account has been watched for a day. The most over the account's sources stands in for the
spread's surprise in ``spread.combined`` where higher (``spread.same_surprise``).

The means are recursions over every bin since the account's watch began (``since``), so a run that
continues from saved state needs only where they stood: the account's state row keeps ``since``
and, per event source, the level's decayed sum and the decayed sums of each bin of the day as of
the bin after the row's ``last`` (``state.SourceHistory``; the weights follow from ``since``), for
every source where the row has room (``state.MAX_ACCOUNT_ROW_BYTES``), else for its rarest sources
and the busier ones as the highest of their sums, under their names' digests (:func:`kept`). A run
continues them over its live bins.
An account whose saved rows carry no such history (rows written before P29, or principals' rows
alone) is watched from its first live bin: the rule is off for it until a day of live history. An
account with no saved row at all had no failures in the saved range and is watched from the run's
first bin, as in one pass. Live bins at or before a saved row's ``last`` are already in its sums:
the rule is off there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from iamspike.bins import cell_index
from iamspike.scoring import log10_tail
from iamspike.state import SourceHistory

WEIGHT = 0.6
SHARE = 0.5
PRIOR_PER_HOUR = 0.05
HOUR_HALF_LIFE_DAYS = 7.0
# An account row keeps every source as it is where the row allows (``state.MAX_ACCOUNT_ROW_BYTES``),
# else those with the lowest level sums, the others as "busy" (:func:`kept`).
MAX_BUSY_IDS = 48  # digests of the busier sources a row lists; past it, every other source is busy
BUSY = "\x00busy"  # the pseudo-source carrying an account's busy sources' sums through a run
DAY = 86400


@dataclass(frozen=True)
class Rare:
    """The account cells P29 scores: ``cell`` (``bin offset * n_accounts + account``, sorted and
    unique), the surprise (times :data:`WEIGHT`) of the source that scored highest, its actors,
    its rate and its name."""

    cell: np.ndarray
    surprise: np.ndarray
    actors: np.ndarray
    rate: np.ndarray
    source: list[str]

    def find(self, t_idx: np.ndarray, e_idx: np.ndarray, n_accounts: int) -> np.ndarray:
        """The index of each wanted cell (bin offset, account) here, -1 where none."""
        return cell_index(self.cell, t_idx, e_idx, n_accounts)

    def surprise_at(self, t_idx: np.ndarray, e_idx: np.ndarray, n_accounts: int) -> np.ndarray:
        """The surprise of each wanted cell (0 where none)."""
        i = self.find(t_idx, e_idx, n_accounts)
        return np.where(i >= 0, self.surprise[np.maximum(i, 0)] if len(self.cell) else 0.0, 0.0)


def half_life_bins(options) -> float:
    """The level's half-life in bins: the baselines' ``half_life`` over the ``span`` (168 at the
    defaults, 7 days of hours). The one place it is computed: the results pass fits the baselines
    with it and both the results pass and the state fold (``statefold``) run this rule with it, so
    a run from saved state decays the sums as one pass does."""
    return options.half_life / options.span


def day_bins(span: int) -> int:
    """Bins of a day (at least 1): the prior's weight and the watch the rule needs."""
    return max(DAY // span, 1)


def day_slots(span: int) -> int:
    """Bins of a day for the same-hour means: 0 where a day is not a whole number of bins or
    holds more than 24 (the level alone then)."""
    return DAY // span if DAY % span == 0 and DAY // span <= 24 else 0


def digest(name: str) -> str:
    """A short digest of an event source's name, as a row lists its busy sources."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:6]


def starts(results, live_first: int | None) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """Per account (``results.accounts`` order): the bin its watch began (``since``), the bin its
    sums continue from (``at``), the saved sums ``{(account, source): (level, hours)}`` (an
    account's busy sources' under :data:`BUSY`) and the busy sources' digests ``{account: ids}``
    (None: every source not saved), as this module's docstring says (``results``: a results pass
    whose ``first`` and ``n_bins`` are set)."""
    span = results.o.span
    live = live_first if live_first is not None else results.first + results.n_bins
    since = np.full(len(results.accounts), results.first, dtype=np.int64)
    for entry in results.entries:
        since[results.accounts[entry.account]] = live
    at = since.copy()
    sums, busy = {}, {}
    for entry in results.account_entries:
        a = results.accounts[entry.account]
        if entry.sources is None:
            since[a] = at[a] = live
            continue
        since[a], at[a] = entry.sources.since // span, entry.last // span + 1
        for name, value in entry.sources.sums.items():
            sums[(a, name)] = value
        if entry.sources.busy is not None:
            sums[(a, BUSY)] = entry.sources.busy
            busy[a] = entry.sources.busy_ids
    return since, at, sums, busy


def run(
    cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    names: list[str],
    start: tuple[np.ndarray, np.ndarray, dict, dict],
    first: int,
    n_bins: int,
    span: int,
    half_life_bins: float,
    failing: np.ndarray | None = None,
    min_actors: int = 3,
) -> tuple[Rare | None, dict[int, SourceHistory]]:
    """The rule over a run's live cells, and where each account's sums stand after it.

    ``cells``: (bin offset, account, source id, actors) per (bin, account, source), unique;
    ``names``: the source ids' names (the empty name, an unknown source, is left out); ``start``:
    :func:`starts`; ``failing``: the accounts' failing actors ``(bins, accounts)`` (None: the
    sums only, for ``show=state``). Returns the cells the rule scores (None without
    ``failing``) and per account index its :class:`SourceHistory` after bin ``first + n_bins -
    1``, every source's sums (``_histories``; what a row keeps of them is :func:`kept`'s). A
    live source that the saved row counts among its busy ones starts from their sums (the
    highest of each: its rate is judged no lower than its own)."""
    since, at, saved, busy = start
    saved = dict(saved)
    ids = {name: i for i, name in enumerate(names)}
    for _, name in saved:
        ids.setdefault(name, len(ids))
    every = list(ids)
    n_src = max(len(every), 1)
    t, a, src, k = (np.asarray(x, dtype=np.int64) for x in cells)
    g = t + first
    keep = (g >= at[a]) & (src != ids.get("", -1))
    t, a, src, k, g = t[keep], a[keep], src[keep], k[keep].astype(np.float64), g[keep]
    for acct, s in sorted(set(zip(a.tolist(), src.tolist()))):
        listed = busy.get(acct, frozenset())
        if (
            (acct, every[s]) not in saved
            and (acct in busy)
            and (listed is None or digest(every[s]) in listed)
        ):
            saved[(acct, every[s])] = saved[(acct, BUSY)]
    n_live = len(t)
    col = a * n_src + src
    end = first + n_bins
    # Saved sums enter as cells at ``at`` that sort before a live cell of the same bin.
    s_col = np.array([acct * n_src + ids[name] for acct, name in saved], dtype=np.int64)
    s_a = s_col // n_src
    level = _Decayed(
        np.concatenate([col, s_col]),
        np.concatenate([g, at[s_a]]),
        np.concatenate([k, [value[0] for value in saved.values()]]),
        n_live,
        at,
        n_src,
        half_life_bins,
    )
    slots = day_slots(span)
    hour = None
    if slots:
        h_saved = [
            (acct * n_src + ids[name], h, v)
            for (acct, name), (_, hours) in saved.items()
            for h, v in enumerate(hours)
            if v and h < slots
        ]
        h_col = np.array([c for c, _, _ in h_saved], dtype=np.int64)
        h_slot = np.array([h for _, h, _ in h_saved], dtype=np.int64)
        hour = _Decayed(
            np.concatenate([col * slots + g % slots, h_col * slots + h_slot]),
            np.concatenate([g, at[h_col // n_src]]),
            np.concatenate([k, [v for _, _, v in h_saved]]),
            n_live,
            at,
            n_src * slots,
            HOUR_HALF_LIFE_DAYS * slots,
        )
    rare = None
    if failing is not None:
        rare = _score(
            (t, a, src, k, g), since, (level, hour), every, (span, half_life_bins, slots), failing, min_actors
        )
    return rare, _histories(level, hour, (since, end, span), every, n_src, slots, busy)


class _Decayed:
    """Decayed sums of values in groups (a column, or a column's bin of the day): the first
    ``n_live`` entries are live cells (one a group and bin), the rest saved sums as of the
    group's ``at`` (before any live cell of that bin). Each value is scaled by ``2**((when -
    at) / half_life)``, so a sum over a group's earlier entries, divided by the scale at a later
    bin, is the decayed sum as of that bin."""

    def __init__(self, group, when, value, n_live, at, per_account, half_life) -> None:
        group = np.asarray(group, dtype=np.int64)
        when = np.asarray(when, dtype=np.int64)
        self.half_life, self.per_account, self.at = half_life, per_account, at
        self.ref = at[group // per_account] if len(group) else np.zeros(0, dtype=np.int64)
        live = np.arange(len(group)) < n_live
        self.order = np.lexsort((live, when, group))
        scaled = np.asarray(value, dtype=np.float64) * np.exp2((when - self.ref) / half_life)
        self.group, self.value = group[self.order], scaled[self.order]
        self.heads = (
            np.flatnonzero(np.concatenate([[True], self.group[1:] != self.group[:-1]]))
            if len(group)
            else self.order
        )
        self.pos = np.empty(len(group), dtype=np.int64)
        self.pos[self.order] = np.arange(len(group))
        self.when, self.n_live = when, n_live

    def before(self, wanted: np.ndarray) -> np.ndarray:
        """The decayed sum of each wanted live cell's earlier entries, as of its own bin."""
        if not len(wanted):
            return np.zeros(0)
        pos = self.pos[wanted]
        head = self.heads[np.searchsorted(self.heads, pos, side="right") - 1]
        bounds = np.empty(2 * len(pos), dtype=np.int64)
        bounds[0::2], bounds[1::2] = head, pos
        sums = np.add.reduceat(np.append(self.value, 0.0), bounds)[0::2]
        sums = np.where(pos > head, sums, 0.0)
        return sums / np.exp2((self.when[wanted] - self.ref[wanted]) / self.half_life)

    def totals(self, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Each group and its decayed sum as of bin ``end``."""
        if not len(self.group):
            return self.group, np.zeros(0)
        sums = np.add.reduceat(self.value, self.heads)
        ref = self.at[self.group[self.heads] // self.per_account]
        return self.group[self.heads], sums / np.exp2((end - ref) / self.half_life)


def _score(live, since, sums, names, timing, failing, min_actors) -> Rare:
    t, a, src, k, g = live
    span, half_life, slots = timing
    level, hour = sums
    n_a = failing.shape[1]
    watched = g - since[a]
    wanted = np.flatnonzero((k >= min_actors) & (k >= SHARE * failing[t, a]) & (watched >= day_bins(span)))
    n = watched[wanted].astype(np.float64)
    d = np.exp2(-1.0 / half_life)
    prior_w = float(day_bins(span))
    prior_s = PRIOR_PER_HOUR * span / 3600 * prior_w
    weight = prior_w * d**n + (1 - d**n) / (1 - d)
    rate = (prior_s * d**n + level.before(wanted)) / weight
    if hour is not None:
        m = n // slots
        dd = np.exp2(-1.0 / HOUR_HALF_LIFE_DAYS)
        h_weight = dd * (1 - dd**m) / (1 - dd)
        by_hour = hour.before(wanted) / np.where(m > 0, h_weight, 1.0)
        rate = np.maximum(rate, np.where(m > 0, by_hour, 0.0))
    surprise = -log10_tail(k[wanted], rate, rate) * WEIGHT
    cell = t[wanted] * n_a + a[wanted]
    src = src[wanted]
    # the highest surprise of each cell: sort by cell then surprise, keep each cell's last
    order = np.lexsort((surprise, cell))
    cell, surprise, src = cell[order], surprise[order], src[order]
    actors, rate = k[wanted][order], rate[order]
    last = np.flatnonzero(np.concatenate([cell[1:] != cell[:-1], [True]])) if len(cell) else cell
    return Rare(cell[last], surprise[last], actors[last], rate[last], [names[i] for i in src[last].tolist()])


def _histories(level, hour, timing, names, n_src, slots, busy) -> dict[int, SourceHistory]:
    """Per account index: every source's sums as of bin ``end``, and the busy sources' sums and
    digests its saved row had (carried over the run). Which of them a row keeps exactly is
    :func:`kept`'s."""
    since, end, span = timing
    col, value = level.totals(end)
    hours: dict[int, list[float]] = {}
    if hour is not None:
        h_group, h_value = hour.totals(end)
        for group, v in zip(h_group.tolist(), h_value.tolist()):
            hours.setdefault(group // slots, [0.0] * slots)[group % slots] = v
    per_account: dict[int, dict[str, tuple[float, tuple[float, ...]]]] = {}
    for c, v in zip(col.tolist(), value.tolist()):
        per_account.setdefault(c // n_src, {})[names[c % n_src]] = (v, tuple(hours.get(c, ())))
    out = {}
    for a in range(len(since)):
        sums = per_account.get(a, {})
        floor = sums.pop(BUSY, None)
        out[a] = SourceHistory(
            int(since[a]) * span, sums, floor, busy.get(a, frozenset()) if floor else frozenset()
        )
    return out


def kept(history: SourceHistory, fits) -> SourceHistory | None:
    """What an account row keeps of ``history`` (:func:`run`'s) where ``fits`` (a test of a
    candidate) allows: every source as it is where they fit, else the sources with the lowest
    level sums (the rare ones, where the rule decides) as they are, rarest first, as many as fit,
    and the busier ones as one set of sums, the highest of each (their own and those the row had),
    with their names' digests (at most :data:`MAX_BUSY_IDS`, else none: every source not kept is
    then busy); None where not even the busy sums fit (the rule then waits a day of live history
    for the account, as for a row without them). Read back, a busy source's rate is no lower than
    its own: the rule is never more eager for it than one pass."""
    if history.busy is None and fits(history):
        return history
    columns = sorted(history.sums.items(), key=lambda item: (item[1][0], item[0]))
    floor = [history.busy] if history.busy is not None else []
    # The most the kept sources alone can be (more of them, more text): a bisection; then fewer
    # until the busy sums fit beside them.
    lo, hi = 0, len(columns)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(_split(history, columns, floor, mid, True, alone=True)) else (lo, mid - 1)
    n = lo
    for k in range(n, -1, -1):
        for ids_kept in (True, False):  # without the digests, every source not kept is busy
            candidate = _split(history, columns, floor, k, ids_kept)
            if fits(candidate):
                return candidate
    return None


def _split(history, columns, floor, k, ids_kept, alone=False) -> SourceHistory:
    """The ``k`` rarest ``columns`` kept, the rest and ``floor`` as the busy sums (their digests
    where ``ids_kept`` and they are at most :data:`MAX_BUSY_IDS`); ``alone``: the kept ones only."""
    keep, rest = columns[:k], columns[k:]
    if alone or not (rest or floor):
        return SourceHistory(history.since, dict(keep))
    ids = history.busy_ids if ids_kept else None
    if ids is not None:
        ids = (ids | {digest(name) for name, _ in rest}) - {digest(name) for name, _ in keep}
        ids = ids if len(ids) <= MAX_BUSY_IDS else None
    values = [value for _, value in rest] + floor
    top = max(level for level, _ in values)
    width = max(len(hours) for _, hours in values)
    each = tuple(max(hours[i] if i < len(hours) else 0.0 for _, hours in values) for i in range(width))
    return SourceHistory(history.since, dict(keep), (top, each), ids)
