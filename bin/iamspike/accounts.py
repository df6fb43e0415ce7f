"""Account series: per account and bin, its failures, distinct (actor, API) pairs and failing
actors, summed from its principals (the results pass's matrices) and its saved account rows.

The account rows of ``by=account`` are scored on these three series (``results``); who is one
actor, and how the spread is scored, is :mod:`iamspike.spread`.
"""

from __future__ import annotations

from itertools import repeat
from operator import itemgetter

import numpy as np

from iamspike import bins, state
from iamspike.spread import (
    actor_apis,
    actors,
    failing_actors,
    most_on_one_source,
    principal_groups,
    source_actor_cells,
)

_CELL = itemgetter(0, 1, 2, 3)  # a Tally key's (bin start, account, principal, event source)


def account_series(results, counts, distinct_apis, p_account, service, live_first, restored, live_items):
    """Per account: failures, distinct (actor, API) pairs and failing actors per bin.

    AWS service principals act on the account's resources; their denials are not the account's
    principals probing, so they are scored alone, not in the account's sum. An account's
    breadth is its distinct (actor, API) pairs: a spike spread thinly over many principals
    is broad; an SSO role's sessions are one actor (``spread``). Before the live rows, an
    account with a saved account row takes its history from that row (the principals' rows
    read may be only those active now), others from the sum of their principals' rows (state
    saved before account rows existed). Returns the four series ``(bins, accounts)`` (the fourth:
    the most actors on one event source, ``spread.service_actors``), the actor of each principal
    (``spread.actors``), each actor's account (``account_actors``) and the live actors on each
    event source with the sources' names (``live_source_actors`` of ``live_items``, the live
    cells' ``source_items``, for rule P29: ``rare``).

    ``statefold._account_rows`` writes the same four series for ``show=state`` from sorted arrays
    of the non-zero cells instead of these matrices (it never builds a ``(bins, principals)``
    matrix, for memory): the actors, the live actors on one source, the first live bin and the
    accounts with a saved row come from the functions below for both; the sums differ only in
    their containers."""
    first, n_bins, entries = results.first, results.n_bins, results.account_entries
    n_accounts = len(results.accounts)
    group, p_actor, a_group = account_actors(results, p_account, service)
    n_actors = len(a_group)
    acc_counts = bins.sum_by_group(counts, group, n_accounts + 1)[:, :n_accounts]
    live_from = live_offset(first, n_bins, live_first)
    items = (results.k_bin - first, results.k_p, results.k_api)
    apis = actor_apis(distinct_apis, live_from, p_actor, n_actors, items, results.n_apis)
    acc_apis = bins.sum_by_group(apis, a_group, n_accounts + 1)[:, :n_accounts]
    del apis
    failing = failing_actors(counts, p_actor, n_actors)
    acc_spread = bins.sum_by_group(failing, a_group, n_accounts + 1)[:, :n_accounts]
    del failing
    same = np.zeros((n_bins, n_accounts), dtype=np.float32)
    sources = live_source_actors(results, p_actor, a_group, live_items)
    cell, most = most_on_one_source(sources[0], n_accounts)
    same.reshape(-1)[cell] = most
    # Before the live bins only saved state: principals' rows keep no sources, so there the failing
    # actors stand in for the actors on one service; an account row keeps both (state.account_bins).
    same[:live_from] = acc_spread[:live_from]
    if entries:
        covered = covered_accounts(results)
        b, e, c = restored
        if len(b):
            a = group[e]
            mine = covered[a]
            b, e, c, a = b[mine], e[mine], c[mine], a[mine]
            np.subtract.at(acc_counts, (b, a), c.astype(np.float32))
            np.subtract.at(acc_apis, (b, a), distinct_apis[b, e])
        # Bins before the live ones hold only state: the account row's actors replace them.
        acc_spread[:live_from, covered[:n_accounts]] = 0
        same[:live_from, covered[:n_accounts]] = 0
        saved = state.account_bins(entries, results.accounts, results.o.span, first, n_bins, live_first)
        for t, a, count, apis, failing, one_source in saved:
            acc_counts[t, a] += count
            acc_apis[t, a] += apis
            acc_spread[t, a] += failing
            same[t, a] += one_source
    return (acc_counts, acc_apis, acc_spread, same), p_actor, a_group, sources


def account_actors(results, p_account, service) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each principal's group (its account; ``n_accounts`` for an AWS service principal, left out
    of its account), each principal's actor (``spread.actors``: an SSO role's sessions are one)
    and each actor's group; ``p_account`` and ``service`` per principal, in principal order."""
    n_accounts = len(results.accounts)
    group = principal_groups(p_account, service, n_accounts)
    labels = [key for key, _ in sorted(results.principals.items(), key=lambda item: item[1])]
    p_actor, n_actors = actors(labels)
    a_group = np.full(n_actors, n_accounts, dtype=np.int64)
    a_group[p_actor] = group
    return group, p_actor, a_group


def live_offset(first: int, n_bins: int, live_first: int | None) -> int:
    """The bin offset of the first live bin (``n_bins`` without live rows): before it, saved state only."""
    return min(max((live_first - first) if live_first is not None else n_bins, 0), n_bins)


def covered_accounts(results) -> np.ndarray:
    """``(n_accounts + 1,)`` booleans: True for the accounts with a saved account row."""
    covered = np.zeros(len(results.accounts) + 1, dtype=bool)
    for entry in results.account_entries:
        covered[results.accounts[entry.account]] = True
    return covered


def live_source_actors(results, p_actor, a_group, items) -> tuple[tuple[np.ndarray, ...], list[str]]:
    """The live items' actors failing on each event source per (bin, account): (bin offset,
    account, source id, actors), ``spread.source_actor_cells``, and the source ids' names
    (``items``: ``source_items`` of ``results``)."""
    t, p, src, names = items
    n_accounts = len(results.accounts)
    return source_actor_cells(
        (t - results.first, p, src), results.n_bins, p_actor, a_group, n_accounts
    ), names


def source_items(results) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(bin, principal, event source id) of every live cell's event sources, and the ids' names:
    the Tally's keys and the count rows' profiles (a count row names its cell's sources, not which
    API is whose)."""
    n = results.n_keys
    ids: dict[str, int] = {}
    key_src = np.fromiter((ids.setdefault(key[3], len(ids)) for key in results.keys), np.int64, n)
    heads, size, at = _row_sources(results)
    if not len(heads):
        return results.k_bin[:n], results.k_p[:n], key_src, list(ids)
    rows = results.count_rows
    to_id = np.array([ids.setdefault(name, len(ids)) for name in rows.source_names], dtype=np.int64)
    row_src = to_id[np.frombuffer(rows.sources, dtype=np.uint16)[at]]
    return (
        np.concatenate([results.k_bin[:n], np.repeat(results.k_bin[heads], size)]),
        np.concatenate([results.k_p[:n], np.repeat(results.k_p[heads], size)]),
        np.concatenate([key_src, row_src]),
        list(ids),
    )


def source_masks(results) -> np.ndarray:
    """The minutes (P39's slot masks, 0 where none came) of each of ``source_items``' items, in
    its order: the Tally's (bin, account, principal, source) masks and the count rows' profiles."""
    slots = results.tally.slots
    if slots:
        cells = map(_CELL, results.keys)
        keys = np.fromiter(map(slots.get, cells, repeat(0)), np.int64, results.n_keys)
    else:  # aggregated rows bring no minutes
        keys = np.zeros(results.n_keys, dtype=np.int64)
    heads, _size, at = _row_sources(results)
    if not len(heads):
        return keys
    return np.concatenate(
        [keys, np.frombuffer(results.count_rows.masks, dtype=np.uint16)[at].astype(np.int64)]
    )


def _row_sources(results) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first item of each count row read from its summary, its number of event sources and
    where they are in the rows' flat :attr:`~iamspike.countrows.CountRows.sources`."""
    n = results.n_keys
    heads = n + np.flatnonzero(results.k_explain[n:])
    if not len(heads):
        return heads, heads, heads
    r = results.item_row[heads - n]
    per_row = np.frombuffer(results.count_rows.n_sources, dtype=np.uint16).astype(np.int64)
    offset = np.cumsum(per_row) - per_row
    size = per_row[r]
    at = np.repeat(offset[r] - np.cumsum(size) + size, size) + np.arange(int(size.sum()))
    return heads, size, at
