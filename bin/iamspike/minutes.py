"""Several principals failing within the same minutes in a quiet account (rule P39, prototype).

Each (bin, principal) keeps the slots of the bin (``SLOTS`` a bin: 5 minutes of an hour) in which
it failed, as a bit mask. Per account and bin, the pair of that bin and the one before is 2 x
``SLOTS`` slots; a window of ``WINDOW`` slots ending in the bin (its last slot occupied) holds the
actors failing in it. The most of them in one window is the account cell's *cluster*.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from iamspike.bins import cell_index

SLOTS = 12
WINDOW = int(os.environ.get("P39_WINDOW", "2"))
MIN_ACTORS = int(os.environ.get("P39_ACTORS", "3"))
BELOW_FLOOR = os.environ.get("P39_BELOW", "1") == "1"
SAME = os.environ.get("P39_SAME", "1") == "1"
SILENT = os.environ.get("P39_SILENT", "0") == "1"
WATCHED = os.environ.get("P39_WATCHED", "1") == "1"
OFF = os.environ.get("P39_OFF", "0") == "1"


def slot(when: float, start: int, span: int) -> int:
    """The slot of a failure at ``when`` in its bin starting at ``start``."""
    return min(int((when - start) * SLOTS // span), SLOTS - 1)


@dataclass(frozen=True)
class Clusters:
    cell: np.ndarray
    actors: np.ndarray

    def at(self, t_idx, e_idx, n_accounts):
        i = cell_index(self.cell, t_idx, e_idx, n_accounts)
        return np.where(i >= 0, self.actors[np.maximum(i, 0)] if len(self.cell) else 0, 0)

    def note(self, t: int, e: int, n_accounts: int) -> str:
        i = int(np.searchsorted(self.cell, t * n_accounts + e))
        return f"{int(self.actors[i])} of its principals failed within {WINDOW * 5} minutes"


def find(items, p_actor, a_group, n_accounts, n_bins, out_from=0) -> Clusters:
    """``items``: (bin offset, principal, slot mask, source id) of the live cells; ``a_group`` each
    actor's account (``n_accounts``: left out)."""
    t, p, mask, src = (np.asarray(x, dtype=np.int64) for x in items)
    if not SAME:
        src = np.zeros_like(src)
    empty = Clusters(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    keep = (t >= 0) & (t < n_bins)
    t, p, mask, src = t[keep], p[keep], mask[keep], src[keep]
    actor = p_actor[p]
    account = a_group[actor]
    mine = account < n_accounts
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
    cell = groups // n_src
    cells, at = np.unique(cell, return_inverse=True)
    most = np.zeros(len(cells), dtype=np.int64)
    np.maximum.at(most, at, best)
    return Clusters(cells, most)


def flagged(clusters, t_idx, e_idx, n_accounts, expected, min_failures):
    if clusters is None or OFF:
        return np.zeros(len(t_idx), dtype=bool)
    return (clusters.at(t_idx, e_idx, n_accounts) >= MIN_ACTORS) & (expected < min_failures)
