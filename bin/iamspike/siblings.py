"""A role sweeping what the same role swept in another account is no new discovery (rule P46,
docs/engine.md section 5).

Security tools (P42) run from one role per account, named alike in every account
(``arn:aws:iam::<account>:role/WizAccess-Role``), and walk the accounts one after another with
the same checks. The engine judged each account's role on its own: a tool's first run was flagged
once in every account, its run in an onboarded account (a role never seen) and each account's
first run after an upgrade or in a newly denied region once more, though the same role had done
the same thing minutes or days before in the other accounts. What sets such a run apart from
stolen credentials used for discovery: the role in this account fails on APIs (those new to it)
that the same role already failed on in another account, at about the size and breadth of a
bin of that other account's role; a discovery by a compromised role walks APIs no sibling walked,
and a compromised role in one account has no sibling doing the same in another.

So (``followed``): a role's cell (not a person, not an AWS service principal) on at least
``reruns.MIN_APIS`` distinct APIs, whose APIs failing for the first time in the bin are, all but
``max(`` ``reruns.NEW_APIS`` ``,`` ``reruns.NEW_SHARE`` ``x its APIs)``, APIs a *sibling* (a role
of the same name in another account) failed on by the end of the bin, and whose count is at most
``reruns.FACTOR`` times that of a sibling's bin within ``reruns.MEMORY`` seconds on at least
``reruns.BREADTH`` times its distinct APIs, follows that sibling: it is held below the threshold
(``flags.flag``) and its failures are left out of its account's count as a re-run's are (P45).
The sibling's bin may be the same bin only for a sibling in an account that sorts first, or one
whose sweep began in the bin before while this cell's did not, so that of a sweep of several
accounts the cell that began it is still judged on its own: a new sweep (a tool's first run, an
upgrade's new checks, a new denied region) is flagged once, in one account, not once per account
(most of the time: two accounts beginning in one bin, the second larger, are both flagged). A
sibling's bin counts with the bin before it where the sibling was silent in the bin before that
(``pairs``): one account's sweep across the turn of the hour, split between two bins, is not a
stream's two hours.

Everything it reads is in the pass: the siblings' bins, their distinct APIs and first failures,
from the raw events or from the saved state rows of the principals the alert reads (those active
in its window: a sibling whose run was in an earlier window and is quiet in this one is not
read, and its follower is judged on its own, a false alert and not a miss).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from iamspike.options import span_text
from iamspike.principals import short_name
from iamspike.reruns import BREADTH, FACTOR, MEMORY, MIN_APIS, NEW_APIS, NEW_SHARE


def roles(principals: Mapping[tuple[str, str], int]) -> tuple[np.ndarray, np.ndarray]:
    """Per principal id: its role group (one per role name found in at least two accounts; -1 for
    every other principal) and its account's rank (accounts sorted by name)."""
    n = len(principals)
    group = np.full(n, -1, dtype=np.int64)
    rank = np.zeros(n, dtype=np.int64)
    if not n:
        return group, rank
    order = {a: i for i, a in enumerate(sorted({a for a, _ in principals}))}
    names: dict[str, list[tuple[int, str]]] = {}
    for (account, principal), p in principals.items():
        rank[p] = order[account]
        if ":role/" in principal and principal.startswith("arn:"):
            names.setdefault(short_name(principal), []).append((p, account))
    for g, members in enumerate(m for m in names.values() if len({a for _, a in m}) > 1):
        for p, _ in members:
            group[p] = g
    return group, rank


def followed(
    counts: np.ndarray,
    distinct_apis: np.ndarray,
    t_idx: np.ndarray,
    e_idx: np.ndarray,
    eligible: np.ndarray,
    first_fail: tuple[np.ndarray, np.ndarray, np.ndarray],
    first: int,
    principals: Mapping[tuple[str, str], int],
    span: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per cell (bin offset ``t_idx``, principal ``e_idx``): the sibling it follows and that
    sibling's bin offset (-1, -1 where none, or where the cell is not ``eligible``: a machine
    principal's cell). ``first_fail``: each (principal, API)'s first bin (absolute, sorted by
    principal), ``first`` the matrices' first bin."""
    who = np.full(len(t_idx), -1, dtype=np.int64)
    when = np.full(len(t_idx), -1, dtype=np.int64)
    group, rank = roles(principals)
    if not (group >= 0).any() or not len(t_idx):
        return who, when
    apis = np.asarray(distinct_apis[t_idx, e_idx], dtype=np.float64)
    e_arr = np.asarray(e_idx, dtype=np.int64)
    pick = np.flatnonzero(np.asarray(eligible, dtype=bool) & (group[e_arr] >= 0) & (apis >= MIN_APIS))
    if not len(pick):
        return who, when
    f_p, f_api, f_bin = first_fail
    by_group = np.argsort(group[f_p], kind="stable")  # the first failures' rows, by role group
    row_group = group[f_p][by_group]
    memory = max(1, MEMORY // span)
    for i in pick.tolist():
        t, e = int(t_idx[i]), int(e_idx[i])
        now = t + first
        lo, hi = np.searchsorted(f_p, [e, e + 1])
        fresh = f_api[lo:hi][f_bin[lo:hi] == now]  # its APIs failing for the first time in the bin
        # ... known to a sibling by the end of the bin
        rows = by_group[slice(*np.searchsorted(row_group, [group[e], group[e] + 1]))]
        known = (rank[f_p[rows]] != rank[e]) & (f_bin[rows] <= now)
        if len(np.setdiff1d(fresh, f_api[rows][known])) > max(NEW_APIS, NEW_SHARE * apis[i]):
            continue
        sibs = np.flatnonzero((group == group[e]) & (rank != rank[e]))
        start = max(0, t - memory)
        # a sibling's bin with the bin before it: a sweep of an account across the turn of the hour
        earlier, breadth = pairs(counts, distinct_apis, start, t, sibs)
        match = (earlier * FACTOR >= counts[t, e]) & (breadth >= BREADTH * apis[i])
        # the same bin: a sibling in an account sorting first, or one whose sweep began in the bin
        # before while this cell's did not
        began = (counts[t - 1, sibs] > 0) & (counts[t - 1, e] == 0) if t > 0 else False
        match[-1] &= (rank[sibs] < rank[e]) | began
        bins, cols = np.nonzero(match)
        if len(bins):
            j = int(np.lexsort((cols, -bins))[0])  # the latest bin, its first sibling
            who[i], when[i] = int(sibs[cols[j]]), start + int(bins[j])
    return who, when
    apis = np.asarray(distinct_apis[t_idx, e_idx], dtype=np.float64)
    e_arr = np.asarray(e_idx, dtype=np.int64)
    pick = np.flatnonzero(np.asarray(eligible, dtype=bool) & (group[e_arr] >= 0) & (apis >= MIN_APIS))
    f_p, f_api, f_bin = first_fail
    memory = max(1, MEMORY // span)
    for i in pick.tolist():
        t, e = int(t_idx[i]), int(e_idx[i])
        now = t + first
        sibs = np.flatnonzero((group == group[e]) & (rank != rank[e]))
        lo, hi = np.searchsorted(f_p, [e, e + 1])
        fresh = f_api[lo:hi][f_bin[lo:hi] == now]  # its APIs failing for the first time in the bin
        known = np.zeros(0, dtype=np.int64)
        for s in sibs.tolist():
            a, b = np.searchsorted(f_p, [s, s + 1])
            before = (f_bin[a:b] < now) | ((f_bin[a:b] == now) & (rank[s] < rank[e]))
            known = np.union1d(known, f_api[a:b][before])
        if len(np.setdiff1d(fresh, known)) > max(NEW_APIS, NEW_SHARE * apis[i]):
            continue
        start = max(0, t - memory)
        best = (-1, -1)
        for s in sibs.tolist():
            last = t + 1 if rank[s] < rank[e] else t  # the same bin: only an account sorting first
            earlier = np.asarray(counts[start:last, s], dtype=np.float64)
            breadth = np.asarray(distinct_apis[start:last, s], dtype=np.float64)
            match = np.flatnonzero((earlier * FACTOR >= counts[t, e]) & (breadth >= BREADTH * apis[i]))
            if len(match) and start + int(match[-1]) > best[1]:
                best = (s, start + int(match[-1]))
        who[i], when[i] = best
    return who, when


def pairs(
    counts: np.ndarray, distinct_apis: np.ndarray, start: int, t: int, sibs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The siblings' (columns ``sibs``) counts of each bin from ``start`` to ``t``, with the bin
    before it where the sibling was silent in the bin before that (a sweep of one account across
    the turn of the hour, not a stream's two hours), and the larger of the two bins' distinct
    APIs."""
    lo = max(0, start - 2)
    pad = 2 - (start - lo)
    c = np.asarray(counts[lo : t + 1][:, sibs], dtype=np.float64)
    a = np.asarray(distinct_apis[lo : t + 1][:, sibs], dtype=np.float64)
    if pad:  # no bins before the first
        c = np.vstack([np.zeros((pad, len(sibs))), c])
        a = np.vstack([np.zeros((pad, len(sibs))), a])
    swept = (c[:-2] == 0) & (c[2:] > 0)
    return c[2:] + np.where(swept, c[1:-1], 0.0), np.maximum(a[2:], np.where(swept, a[1:-1], 0.0))


def note(
    counts: np.ndarray, distinct_apis: np.ndarray, t: int, sibling: int, earlier: int, account: str, span: int
) -> str:
    """The reason's words for a cell at bin offset ``t`` held as following ``sibling`` (of
    ``account``) at bin ``earlier``."""
    ago = "in the same hour" if earlier == t else f"{span_text((t - earlier) * span)} before"
    if earlier == t and span != 3600:
        ago = f"in the same {span_text(span)}"
    c, a = pairs(counts, distinct_apis, earlier, earlier, np.array([sibling]))
    return (
        f"the same role in account {account} ran like this {ago} ({int(c[0, 0])}"
        f" failures on {int(a[0, 0])} APIs): a sweep it already made there"
    )
