"""Quiet principals failing again and again on one service in a quiet hour (rule P35).

A thin spread in a quiet account (its usual hour 1-3 failures, one or two people failing once
each) is 3 or so principals denied 2-3 times each on the same service within minutes: 6-9
failures against an expected 2-4, 4-5 failing actors against 2, 3 actors on one service against
1. Each of the account's series alone is weak there, and the failing actors' surprise stays under
the spread's gate. What the background of such an hour does not do is this: principals that
seldom fail (silent in their own baselines), several of them, each failing more than once, on one
service. Per (bin, account) its **repeaters** are the most actors failing on one event source
whose principals are all silent in the bin and that failed at least :data:`MIN_EACH` times in it
(in all; an SSO role's sessions are one actor, ``spread.actor_name``; AWS service principals and
an unknown source left out). Where at least :data:`MIN_REPEATERS` of them fail together in an
account whose expected failures in the bin are below ``min_failures`` (an hour that would not
reach the floor on its own), the account cell is flagged at least at the threshold
(``flags.flag``).

It reads the live cells (their event sources: raw events, the Tally's keys or count rows'
summaries, ``accounts.source_items``; the principals' failures in the bin) and the principals'
baselines (``silent``), which an alert rebuilds from the principals' own saved rows, and the
account's expected, from its account row: it keeps nothing of its own in state. Without the
principals' baselines (``by=account``) it is off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iamspike.bins import cell_index
from iamspike.spread import source_actor_cells

MIN_REPEATERS = 3  # actors that seldom fail, each failing MIN_EACH times or more, on one source
MIN_EACH = 2


@dataclass(frozen=True)
class Repeaters:
    """The account cells with repeaters: ``cell`` (``bin offset * n_accounts + account``, sorted and
    unique), the most repeaters on one event source and that source's name."""

    cell: np.ndarray
    actors: np.ndarray
    source: list[str]

    def at(self, t_idx: np.ndarray, e_idx: np.ndarray, n_accounts: int) -> np.ndarray:
        """The repeaters of each wanted cell (bin offset, account), 0 where none."""
        i = cell_index(self.cell, t_idx, e_idx, n_accounts)
        return np.where(i >= 0, self.actors[np.maximum(i, 0)] if len(self.cell) else 0, 0)

    def note(self, t: int, e: int, n_accounts: int, expected: float) -> str:
        """The reason's words for an account cell this rule flagged."""
        i = int(np.searchsorted(self.cell, t * n_accounts + e))
        return (
            f"{int(self.actors[i])} of its principals that seldom fail each failed {MIN_EACH} times or"
            f" more on {self.source[i]}, in an hour that usually holds {expected:.2g} failures"
        )


def find(
    items: tuple[np.ndarray, np.ndarray, np.ndarray],
    names: list[str],
    counts: np.ndarray,
    silent: np.ndarray,
    p_actor: np.ndarray,
    p_group: np.ndarray,
    n_accounts: int,
    out_from: int = 0,
) -> Repeaters:
    """The repeaters of every account cell from bin offset ``out_from`` on (``items``: bin offset,
    principal, event source id of every live cell's sources, ``names`` the ids' names, a source id
    below 0 or the empty name unknown; ``counts`` and ``silent`` the principals' ``(bins,
    principals)`` failures and baselines' silence; ``p_actor`` each principal's actor and
    ``p_group`` its account, ``n_accounts`` for AWS service principals, left out)."""
    item_t, item_p, item_src = (np.asarray(x, dtype=np.int64) for x in items)
    unknown = names.index("") if "" in names else -1
    keep = (item_t >= out_from) & (item_t < counts.shape[0]) & (item_src >= 0) & (item_src != unknown)
    keep &= p_group[item_p] < n_accounts
    empty = Repeaters(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), [])
    if not keep.any():
        return empty
    t, p, src = item_t[keep], item_p[keep], item_src[keep]
    n_actors = int(p_actor.max()) + 1
    # Each (bin, actor): its failures in the bin (over its principals) and whether all are silent.
    n_p = counts.shape[1]
    cell = np.unique(t * n_p + p)
    ct, cp = cell // n_p, cell % n_p
    actor_cell, at = np.unique(ct * n_actors + p_actor[cp], return_inverse=True)
    failures = np.bincount(at, weights=counts[ct, cp].astype(np.float64))
    loud = np.bincount(at, weights=(~silent[ct, cp]).astype(np.float64))
    repeating = actor_cell[(failures >= MIN_EACH) & (loud == 0)]
    if not len(repeating):
        return empty
    # Per (bin, account, source): the repeaters failing on it; per (bin, account) the most.
    mine = np.isin(t * n_actors + p_actor[p], repeating)
    a_group = np.full(n_actors, n_accounts, dtype=np.int64)
    a_group[p_actor] = p_group  # an actor's principals share its account
    at_t, account, source, n = source_actor_cells(
        (t[mine], p[mine], src[mine]), counts.shape[0], p_actor, a_group, n_accounts
    )
    at_cell = at_t * n_accounts + account
    order = np.lexsort((-n, at_cell))
    at_cell, n, best = at_cell[order], n[order], source[order]
    heads = np.flatnonzero(np.concatenate([[True], at_cell[1:] != at_cell[:-1]]))
    return Repeaters(at_cell[heads], n[heads].astype(np.int64), [names[int(s)] for s in best[heads]])


def flagged(
    repeaters: Repeaters | None,
    t_idx: np.ndarray,
    e_idx: np.ndarray,
    n_accounts: int,
    expected: np.ndarray,
    min_failures: int,
) -> np.ndarray:
    """The account cells the rule flags: at least ``MIN_REPEATERS`` repeaters on one source where
    the account's ``expected`` failures are below ``min_failures``."""
    if repeaters is None:
        return np.zeros(len(t_idx), dtype=bool)
    return (repeaters.at(t_idx, e_idx, n_accounts) >= MIN_REPEATERS) & (expected < min_failures)
