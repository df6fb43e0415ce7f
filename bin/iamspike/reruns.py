"""A machine's re-run of an earlier broad burst is no spike (rule P43, docs/engine.md section 5).

Security scanners (CSPM tools, inventories: P42) call dozens to hundreds of read APIs from one
role on a schedule and are denied on the same share every run. Their first run looks like
discovery and is flagged (a role failing on dozens of APIs new to it); the runs after it, and the
runs after a change (an upgrade, an onboarded account, a denied region), were flagged again and
again: a weekly run is no habit yet, and a daily or hourly run after a step up is judged against
the old level for days. What sets a re-run apart from stolen credentials used on the same role:
it repeats a burst of the same size and breadth within days, on APIs the role has failed on
before; a discovery on a role fails on APIs new to it.

So (``held``): a machine principal's cell (not a person, not an AWS service principal) watched
long enough to know its APIs (``results.NOVELTY_HISTORY``), on at least :data:`MIN_APIS` distinct
APIs, with at most ``max(`` :data:`NEW_APIS` ``,`` :data:`NEW_SHARE` ``x its APIs)`` of them new
to it (a check an earlier run skipped is back), whose count is at most :data:`FACTOR` times that of
an earlier bin of the same principal within :data:`MEMORY` seconds on at least :data:`BREADTH`
times its distinct APIs, is held below the threshold (``flags.flag``). Everything it reads is in
a principal's saved state row (its bins, their distinct APIs and its first failures): an hourly
alert holds what one pass holds (tests/unit/test_reruns.py).

An account's count is judged without its machines' re-runs (rule P45, ``in_accounts``): every
machine cell that repeats an earlier bin this way, whatever its score, hands its failures to its
account, whose cells near the threshold are scored again without them (``flags.without_reruns``):
two tools re-running in one hour, neither making most of the account's failures, flagged it.
"""

from __future__ import annotations

import numpy as np

from iamspike.options import span_text

MIN_APIS = 5  # a broad burst: at least this many distinct APIs in the bin
NEW_APIS = 2  # at most this many APIs new to the principal in the bin ...
NEW_SHARE = 0.1  # ... or this share of its distinct APIs, whichever is more
FACTOR = 1.25  # the earlier bin's count times this reaches the bin's
BREADTH = 0.7  # the earlier bin has at least this share of the bin's distinct APIs
MEMORY = 8 * 86400  # how far back an earlier bin may be (seconds): a weekly tool's last run
HELD_BELOW = 1.0  # a held cell's score is at most this far below the threshold
RERUN_MARGIN = 20.0  # account cells this close to the threshold are scored without re-runs (P45)


def held(
    counts: np.ndarray,
    distinct_apis: np.ndarray,
    t_idx: np.ndarray,
    e_idx: np.ndarray,
    eligible: np.ndarray,
    new_apis: np.ndarray,
    span: int,
) -> np.ndarray:
    """Per cell (bin offset ``t_idx``, principal ``e_idx``): the offset of the latest earlier bin
    the cell repeats, -1 where none or where the cell is not ``eligible`` (machine principals
    watched long enough, at the threshold) or too narrow, or has too many APIs new to the principal
    (``new_apis``)."""
    out = np.full(len(t_idx), -1, dtype=np.int64)
    apis = np.asarray(distinct_apis[t_idx, e_idx], dtype=np.float64)
    few_new = np.asarray(new_apis) <= np.maximum(NEW_APIS, NEW_SHARE * apis)
    memory = max(1, MEMORY // span)
    for i in np.flatnonzero(np.asarray(eligible, dtype=bool) & few_new & (apis >= MIN_APIS)).tolist():
        t, e = int(t_idx[i]), int(e_idx[i])
        lo = max(0, t - memory)
        if t <= lo:
            continue
        earlier = np.asarray(counts[lo:t, e], dtype=np.float64)
        breadth = np.asarray(distinct_apis[lo:t, e], dtype=np.float64)
        match = np.flatnonzero((earlier * FACTOR >= counts[t, e]) & (breadth >= BREADTH * apis[i]))
        if len(match):
            out[i] = lo + int(match[-1])
    return out


def note(counts: np.ndarray, distinct_apis: np.ndarray, t: int, e: int, earlier: int, span: int) -> str:
    """The reason's words for a cell (bin offset ``t``, principal ``e``) held as a re-run of bin
    ``earlier``."""
    return (
        f"it ran like this {span_text((t - earlier) * span)} before ({int(counts[earlier, e])} failures"
        f" on {int(distinct_apis[earlier, e])} APIs): a re-run on APIs it knows"
    )


def in_accounts(
    reruns: tuple[np.ndarray, np.ndarray, np.ndarray],
    t_idx: np.ndarray,
    a_idx: np.ndarray,
    p_account: np.ndarray,
    service: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per account cell (bin offset ``t_idx``, account ``a_idx``): the failures of its principals'
    cells that repeat an earlier bin (``reruns``: cell = bin offset * principals + principal, their
    failures and distinct APIs; AWS service principals left out, as in the account's sum) and the
    largest such cell's distinct APIs (P45)."""
    cells, failures, apis = reruns
    n = len(p_account)
    t_of, p_of = cells // n, cells % n
    keep = ~service[p_of]
    key = t_of[keep] * (int(p_account.max(initial=0)) + 1) + p_account[p_of[keep]]
    wanted = t_idx * (int(p_account.max(initial=0)) + 1) + a_idx
    out = np.zeros(len(t_idx), dtype=np.float64)
    widest = np.zeros(len(t_idx), dtype=np.float64)
    for j, w in enumerate(wanted.tolist()):
        hit = key == w
        if hit.any():
            out[j] = float(failures[keep][hit].sum())
            widest[j] = float(apis[keep][hit].max())
    return out, widest
