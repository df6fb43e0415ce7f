"""Several principals failing within the same minutes in a quiet account (rule P39).

Each (bin, principal, event source) keeps the slots of the bin (``SLOTS`` a bin: 5 minutes of an
hour) in which the principal failed on the source, as a bit mask (the raw events' times at intake;
a count row's profile carries them, :mod:`iamspike.counttext`). Per account and bin, the pair of
that bin and the one before is 2 x ``SLOTS`` slots; a window of ``WINDOW`` slots ending in the bin
(its last slot occupied) holds the actors failing in it on one event source. The most of them in
one window and source is the account cell's *cluster*; ``MIN_ACTORS`` or more in a quiet account
flag the cell (docs/engine.md, P39).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iamspike.bins import cell_index
from iamspike.counttext import MASK_BITS

SLOTS = MASK_BITS  # slots a bin
WINDOW = 2  # slots a window: 5-10 minutes of an hour's bins
MIN_ACTORS = 3  # actors failing on one source within a window


@dataclass(frozen=True)
class Clusters:
    """The largest cluster of each account cell that has one (``cell``: bin x accounts + account,
    ascending): its actors and its event source."""

    cell: np.ndarray
    actors: np.ndarray
    source: list[str]

    def at(self, t_idx: np.ndarray, e_idx: np.ndarray, n_accounts: int) -> np.ndarray:
        """The cluster's actors of each account cell (0 where none)."""
        if not len(self.cell):
            return np.zeros(len(t_idx), dtype=np.int64)
        i = cell_index(self.cell, t_idx, e_idx, n_accounts)
        return np.where(i >= 0, self.actors[np.maximum(i, 0)], 0)

    def note(self, t: int, e: int, n_accounts: int, span: int) -> str:
        """The reason clause of a cell the cluster flagged."""
        i = int(np.searchsorted(self.cell, t * n_accounts + e))
        minutes = WINDOW * span / SLOTS / 60
        return (
            f"{int(self.actors[i])} of its principals failed on {self.source[i]} within {minutes:g} minutes"
        )


def find(
    items, p_actor, a_group, n_accounts: int, n_bins: int, names: list[str], out_from: int = 0
) -> Clusters:
    """``items``: (bin offset, principal, slot mask, source id) of the live cells' event sources
    (``names`` the source ids' names); ``p_actor`` each principal's actor, ``a_group`` each
    actor's account (``n_accounts``: left out, as AWS service principals are)."""
    t, p, mask, src = (np.asarray(x, dtype=np.int64) for x in items)
    empty = Clusters(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), [])
    keep = (t >= 0) & (t < n_bins) & (mask != 0)
    t, p, mask, src = t[keep], p[keep], mask[keep], src[keep]
    actor = p_actor[p]
    mine = a_group[actor] < n_accounts
    t, actor, mask, src = t[mine], actor[mine], mask[mine], src[mine]
    if not len(t):
        return empty
    n_actors = len(a_group)
    n_src = int(src.max()) + 1
    # Each actor's bits in the pair ending at its bin (the later half) and at the next (the earlier).
    pt = np.concatenate([t, t + 1])
    bits = np.concatenate([mask << SLOTS, mask])
    pa = np.concatenate([actor, actor])
    ps = np.concatenate([src, src])
    ok = (pt >= out_from) & (pt < n_bins)
    pt, bits, pa, ps = pt[ok], bits[ok], pa[ok], ps[ok]
    if not len(pt):
        return empty
    key = (pt * n_actors + pa) * n_src + ps
    order = np.argsort(key, kind="stable")
    key, bits = key[order], bits[order]
    heads = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    bits = np.bitwise_or.reduceat(bits, heads)
    key = key[heads]
    ps = key % n_src
    pt, pa = key // n_src // n_actors, key // n_src % n_actors
    group = (pt * n_accounts + a_group[pa]) * n_src + ps
    groups, inverse = np.unique(group, return_inverse=True)
    best = np.zeros(len(groups), dtype=np.int64)
    for last in range(SLOTS, 2 * SLOTS):
        window = ((1 << WINDOW) - 1) << (last - WINDOW + 1)
        hit = (bits & window) != 0
        n = np.bincount(inverse, weights=hit, minlength=len(groups)).astype(np.int64)
        lastbit = np.bincount(inverse, weights=(bits >> last) & 1, minlength=len(groups)) > 0
        best = np.maximum(best, np.where(lastbit, n, 0))
    # Each cell's largest cluster (the first source of the largest, by id).
    cell = groups // n_src
    order = np.lexsort((-best, cell))
    first = np.concatenate([[True], cell[order][1:] != cell[order][:-1]])
    top = order[first]
    return Clusters(cell[top], best[top], [names[i] for i in (groups[top] % n_src).tolist()])


def flagged(
    clusters: Clusters | None, t_idx, e_idx, n_accounts: int, expected, min_failures: float
) -> np.ndarray:
    """Account cells (``t_idx``, ``e_idx``) with a cluster of ``MIN_ACTORS`` or more where the
    account's ``expected`` failures are below ``min_failures`` (P35's quiet gate)."""
    if clusters is None:
        return np.zeros(len(t_idx), dtype=bool)
    return (clusters.at(t_idx, e_idx, n_accounts) >= MIN_ACTORS) & (expected < min_failures)
