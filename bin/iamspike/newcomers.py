"""Principals failing for the first time together in an account (rule P38).

A thin spread is a few principals denied a few times each within minutes. In a quiet account
(usual hour about 2 failures) three of them denied once each is the background's own shape, and in
a busy one (a poller failing every hour, people failing each on a service of their own: 5-12
failing actors an hour) three to five more failing actors, even denied two or three times each,
are within its hours' spread: the account's count, its failing actors and its actors on one
service all stay under the threshold. What neither background does is this: several principals
that never failed before, failing in the same hour. In the spread sweep's quiet and busy accounts
three or more such principals met in 1 of 22,968 hours without spreads (after the accounts' first
three days); a spread of 3 or more principals new to the account always has them.

Per (bin, account) its **newcomers** are the principals whose first failure (in the live items or
the saved rows: their saved bins and first failures) is in the bin, in an account whose own first
failure (its principals' read here, and its account row's watch where it has one) is at least
``history`` bins (3 days, as novelty) before it: on an account's first days every principal is
new. AWS service principals and the sessions of Identity Center roles are left out: a service
acts on the account's resources, and an SSO role's sessions are one actor (``spread.actor_name``)
whose other sessions an alert does not read. Where at least :data:`MIN_NEWCOMERS` of them fail in
the bin, the account cell is flagged at least at the threshold (``flags.flag``; its failures must
still reach ``min_failures``).

It reads what every path has: the principals' bins (live keys, count rows, saved rows) and the
account rows' watch (``rare.starts``); nothing is added to the saved state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iamspike.bins import cell_index

MIN_NEWCOMERS = 3  # principals failing for the first time in the same bin of an account
NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Newcomers:
    """The account cells with newcomers: ``cell`` (``bin offset * n_accounts + account``, sorted
    and unique) and how many principals failed for the first time in it."""

    cell: np.ndarray
    principals: np.ndarray

    def at(self, t_idx: np.ndarray, e_idx: np.ndarray, n_accounts: int) -> np.ndarray:
        """The newcomers of each wanted cell (bin offset, account), 0 where none."""
        i = cell_index(self.cell, t_idx, e_idx, n_accounts)
        return np.where(i >= 0, self.principals[np.maximum(i, 0)] if len(self.cell) else 0, 0)

    def note(self, t: int, e: int, n_accounts: int) -> str:
        """The reason's words for an account cell this rule flagged."""
        i = int(np.searchsorted(self.cell, t * n_accounts + e))
        return f"{int(self.principals[i])} of its principals failed for the first time, in the same hour"


def first_seen(bins: np.ndarray, principals: np.ndarray, n_principals: int) -> np.ndarray:
    """Each principal's first bin among ``bins`` (absolute bins of its failing cells, live or
    saved), ``NEVER`` where it has none."""
    out = np.full(n_principals, NEVER, dtype=np.int64)
    if len(bins):
        np.minimum.at(out, np.asarray(principals, dtype=np.int64), np.asarray(bins, dtype=np.int64))
    return out


def find(
    seen: np.ndarray,
    eligible: np.ndarray,
    p_group: np.ndarray,
    since: np.ndarray,
    first: int,
    n_bins: int,
    history: int,
    out_from: int = 0,
) -> Newcomers:
    """The newcomers of every account cell from bin offset ``out_from`` on (``seen`` each
    principal's first failing bin, ``first_seen``; ``eligible`` the principals that count: not an
    AWS service principal, not an SSO session; ``p_group`` each principal's account,
    ``len(since)`` for AWS service principals; ``since`` each account's watch from its saved row,
    ``NEVER`` where it has none; ``first`` the matrices' first bin)."""
    n_accounts = len(since)
    watch = np.append(np.asarray(since, dtype=np.int64), NEVER)
    np.minimum.at(watch, p_group, seen)  # an account is watched from its first failure
    t = seen - first
    new = eligible & (seen < NEVER) & (p_group < n_accounts) & (t >= out_from) & (t < n_bins)
    new &= seen - watch[p_group] >= history
    if not new.any():
        return Newcomers(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    cell, n = np.unique(t[new] * n_accounts + p_group[new], return_counts=True)
    return Newcomers(cell, n.astype(np.int64))


def flagged(newcomers: Newcomers | None, t_idx: np.ndarray, e_idx: np.ndarray, n_accounts: int) -> np.ndarray:
    """The account cells the rule flags: at least ``MIN_NEWCOMERS`` newcomers."""
    if newcomers is None:
        return np.zeros(len(t_idx), dtype=bool)
    return newcomers.at(t_idx, e_idx, n_accounts) >= MIN_NEWCOMERS
