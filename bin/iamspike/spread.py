"""Account-wide spreads: who is one actor, how many fail together, and when one actor is the account.

An account is scored on two series (``results``): its failures, and its failing ACTORS per bin
(the spread). Three rules of this module shape both:

- **Actors**: every principal is one actor, except that the Identity Center sessions of one
  permission-set role (``AWSReservedSSO_*``, kept whole as principals: each session name is a
  person) count as ONE actor for the account. A burst of one SSO role that CloudTrail shows under
  ten session names is one actor failing, not ten; the account's breadth is its distinct (actor,
  API) pairs for the same reason. The cost: people who share a permission set and fail together
  count once.
- **Spread with the count**: several actors failing together is evidence on top of the account's
  count, not instead of it. Where at least ``min_actors`` actors fail and the spread's own surprise
  is at least ``min_surprise`` (p <= 0.03), the two surprises add (``combined``); the account
  keeps the highest of its count's score, its spread's score and the combined one. In a quiet
  account 3-5 actors failing 2-3 times each on the same services scored 24-38 on the spread and
  39-50 on the count, and neither alone reached 50.
- **One actor is no spread** (``one_actor_cap``): where a single actor makes at least
  ``dominant_share`` of the account's failures in a bin, the account's count says nothing the
  actor's own rows do not: the account scores no higher than that actor's principals (the spread
  score, which needs several actors, is kept). A person's benign burst or a batch hour raised the
  account row as well as (or instead of) the principal's; a compromised principal's burst flags
  its account whenever the principal itself is flagged.
- **Quiet principals' failures** (``quiet_failures``, rule P19): the account's failures less those of
  its principals that are not silent (their level or seasonal at least one failure a bin: a
  nightly batch, a steady automation). Where the spread is evidence (``combined``), this count's
  surprise against its own baseline stands in for the account's when higher. A quiet account's
  level is its batch hour spread over the day (2-3 an hour) and at the batch hour the batch
  itself: 5-20 denials of 3-7 near-silent principals scored 31-45 against it.
- **Actors on one service** (``service_actors``, rule P26): the most actors failing on one event
  source in the bin, with a baseline of its own. Where it is the stronger, its surprise stands in
  for the spread's (``combined``): in a busier account people fail every hour, each on a service
  of their own, so 6-8 failing principals against 1-3 are weak evidence (the spread's surprise
  2-3), while 6-7 of them on one service against about 1 are not (3-4). Before the live bins,
  where only saved state is read, it comes from the account's state row (``service_actors``);
  principals' rows keep no sources, so without an account row the failing actors stand in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from iamspike import bins
from iamspike.baseline import Baseline
from iamspike.principals import SSO_ROLE_PREFIX
from iamspike.rare import Rare
from iamspike.scoring import ScoreParams, score_counts, to_score

if TYPE_CHECKING:  # repeaters reads this module's source_actor_cells
    from iamspike.minutes import Clusters
    from iamspike.newcomers import Newcomers
    from iamspike.repeaters import Repeaters

QUIET_BLOCK = 168  # bins per block in quiet_failures (a week of hours)


@dataclass(frozen=True)
class SpreadParams:
    min_actors: int = 3
    min_surprise: float = 1.5
    dominant_share: float = 0.8


class Spread(NamedTuple):
    """An account's spread as the results pass scores it, each ``(bins, accounts)`` with its
    baseline: the failing actors, the quiet principals' failures (``quiet_failures``; None without
    the principals' baselines) and the most actors on one event source (``service_actors``, P26);
    and the cells where actors failed on a source rare for the account (``rare``, P29); the
    account cells with quiet principals failing repeatedly on one source (``repeat``, P35) and
    with principals failing for the first time together (``newcomers``, P38)."""

    counts: np.ndarray
    base: Baseline
    quiet: tuple[np.ndarray, Baseline] | None
    same: tuple[np.ndarray, Baseline] | None
    rare: Rare | None = None
    repeat: Repeaters | None = None
    newcomers: Newcomers | None = None
    minutes: Clusters | None = None


def principal_groups(p_account: np.ndarray, service: np.ndarray, n_accounts: int) -> np.ndarray:
    """Each principal's group for the account sums: its account, or ``n_accounts`` for an AWS
    service principal (left out of its account: it acts on the account's resources)."""
    return np.where(service, n_accounts, p_account) if len(p_account) else p_account


def actor_name(principal: str) -> str:
    """The actor of a principal: an SSO session's role (``.../AWSReservedSSO_x``), else itself."""
    if ":assumed-role/" + SSO_ROLE_PREFIX in principal:
        return principal.rsplit("/", 1)[0]
    return principal


def actors(labels: Sequence[tuple[str, str]]) -> tuple[np.ndarray, int]:
    """Principal index -> actor index for ``labels`` (account, principal) in principal order."""
    ids: dict[tuple[str, str], int] = {}
    out = np.fromiter(
        (ids.setdefault((account, actor_name(p)), len(ids)) for account, p in labels),
        dtype=np.int64,
        count=len(labels),
    )
    return out, len(ids)


def failing_actors(counts: np.ndarray, p_actor: np.ndarray, n_actors: int) -> np.ndarray:
    """``(bins, actors)``: 1 where any principal of the actor failed in the bin."""
    failing = (counts > 0).astype(np.float32)
    return (bins.sum_by_group(failing, p_actor, n_actors) > 0).astype(np.float32)


def actor_apis(
    distinct_apis: np.ndarray,
    live_from: int,
    p_actor: np.ndarray,
    n_actors: int,
    items: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_apis: int,
) -> np.ndarray:
    """``(bins, actors)`` distinct APIs: from bin offset ``live_from`` on, the union over the actor's
    principals of the live items' APIs (``items``: bin offset, principal, API id); before it, where
    only saved state has them, the sum of its principals' distinct APIs."""
    out = np.zeros((distinct_apis.shape[0], n_actors), dtype=distinct_apis.dtype)
    out[:live_from] = bins.sum_by_group(distinct_apis[:live_from], p_actor, n_actors)
    item_t, item_p, item_api = items
    keep = (item_t >= live_from) & (item_t < out.shape[0])
    if keep.any():
        cell = item_t[keep] * n_actors + p_actor[item_p[keep]]
        pairs = bins.sorted_unique(cell * n_apis + item_api[keep])
        cells, per_cell = np.unique(pairs // n_apis, return_counts=True)
        out.reshape(-1)[cells] = per_cell
    return out


def source_actor_cells(
    items: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_bins: int,
    p_actor: np.ndarray,
    a_group: np.ndarray,
    n_accounts: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The actors of each account that failed on each event source in each bin: (bin offset,
    account, source id, actors) per (bin, account, source) with any, sorted by bin, account and
    source (``items``: bin offset, principal, event source id; a source id below 0 is unknown and
    left out; ``a_group`` each actor's account, ``n_accounts`` for AWS service principals, left
    out)."""
    item_t, item_p, item_src = items
    keep = (item_t >= 0) & (item_t < n_bins) & (item_src >= 0)
    if not keep.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    actor = p_actor[item_p[keep]]
    n_src = int(item_src[keep].max()) + 1
    n_actors = len(a_group)
    triples = bins.sorted_unique((item_t[keep] * n_actors + actor) * n_src + item_src[keep])
    t = triples // n_src // n_actors
    account = a_group[(triples // n_src) % n_actors]
    mine = account < n_accounts
    cells, per_cell = np.unique(
        (t[mine] * n_accounts + account[mine]) * n_src + triples[mine] % n_src, return_counts=True
    )
    cell = cells // n_src
    return cell // n_accounts, cell % n_accounts, cells % n_src, per_cell.astype(np.int64)


def service_actors(
    items: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_bins: int,
    p_actor: np.ndarray,
    a_group: np.ndarray,
    n_accounts: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The most actors of the account that failed on one event source in the bin, as its non-zero
    ``(bins, accounts)`` cells: ``bin offset * n_accounts + account`` (sorted, unique) and that
    count (``source_actor_cells`` says what counts). The results pass makes it a matrix
    (``accounts``), the saved state writes it (``statefold``)."""
    return most_on_one_source(source_actor_cells(items, n_bins, p_actor, a_group, n_accounts), n_accounts)


def most_on_one_source(cells: tuple[np.ndarray, ...], n_accounts: int) -> tuple[np.ndarray, np.ndarray]:
    """``service_actors`` from the cells of ``source_actor_cells``."""
    t, account, _, per_cell = cells
    cell = t * n_accounts + account
    if not len(cell):
        return cell, np.zeros(0, dtype=np.float32)
    heads = np.flatnonzero(np.concatenate([[True], cell[1:] != cell[:-1]]))
    return cell[heads], np.maximum.reduceat(per_cell, heads).astype(np.float32)


def combined(
    count_surprise: np.ndarray,
    spread_surprise: np.ndarray,
    spread_count: np.ndarray,
    params: SpreadParams,
    quiet_surprise: np.ndarray | None = None,
    same_surprise: np.ndarray | None = None,
) -> np.ndarray:
    """The count's surprise plus the spread's where the spread is evidence itself (enough actors,
    ``min_surprise``), else the count's alone. Where the spread is evidence, the quiet principals'
    surprise (``quiet_failures``) counts instead of the account's when higher; the surprise of the
    actors on one service (``same_surprise``, P26) counts as the spread's when higher."""
    if same_surprise is not None:
        spread_surprise = np.maximum(spread_surprise, same_surprise)
    counts = (spread_count >= params.min_actors) & (spread_surprise >= params.min_surprise)
    if quiet_surprise is not None:
        count_surprise = np.where(counts, np.maximum(count_surprise, quiet_surprise), count_surprise)
    return count_surprise + np.where(counts, spread_surprise, 0.0)


def quiet_failures(
    acc_counts: np.ndarray, counts: np.ndarray, silent: np.ndarray, p_account: np.ndarray, service: np.ndarray
) -> np.ndarray:
    """``(bins, accounts)``: each account's failures less those of its principals that are not
    silent in the bin (``silent``: the principals' baselines), never below 0. Where the account's
    history comes from its saved row and not every principal's is read, the principals not read
    stay in: the count is then higher than the quiet principals' own, never lower."""
    n_accounts = acc_counts.shape[1]
    group = principal_groups(p_account, service, n_accounts)
    out = acc_counts.copy()
    for lo in range(0, counts.shape[0], QUIET_BLOCK):  # a block of bins at a time: no second matrix
        loud = np.where(silent[lo : lo + QUIET_BLOCK], np.float32(0), counts[lo : lo + QUIET_BLOCK])
        out[lo : lo + QUIET_BLOCK] -= bins.sum_by_group(loud, group, n_accounts + 1)[:, :n_accounts]
    return np.maximum(out, 0)


def quiet_surprise(spread: Spread, t_idx: np.ndarray, e_idx: np.ndarray) -> np.ndarray | None:
    """The surprise of the account cells' quiet principals' failures (``spread.quiet``). Their
    expected is at least the failing actors' (each failing actor fails at least once), and neither
    held down as an onset nor given the distinct APIs' bonus: several principals failing together
    are no single stream starting, and their (actor, API) pairs are the spread itself, already
    counted."""
    if spread.quiet is None:
        return None
    counts, base = spread.quiet
    expected = np.maximum(base.expected[t_idx, e_idx], spread.base.expected[t_idx, e_idx])
    scored = score_counts(
        counts[t_idx, e_idx],
        expected,
        np.maximum(base.variance[t_idx, e_idx], expected),
        np.ones(len(t_idx)),
        1.0,
        ScoreParams(),
        with_upper=False,
        silent=np.zeros(len(t_idx), dtype=bool),
    )
    return scored.surprise


def same_surprise(
    spread: Spread, t_idx: np.ndarray, e_idx: np.ndarray, sensitivity: float = 1.0
) -> np.ndarray | None:
    """The surprise of the most actors failing on one event source (``spread.same``,
    ``service_actors``) in the account cells, where at least ``min_actors`` of them fail on it
    (else 0); not held down as an onset, as the failing actors. Where actors failed on a source
    rare for the account (``spread.rare``, P29), that surprise where higher."""
    if spread.same is None:
        return None
    out = _one_service_surprise(spread, t_idx, e_idx, sensitivity)
    if spread.rare is not None:
        out = np.maximum(out, spread.rare.surprise_at(t_idx, e_idx, spread.counts.shape[1]))
    return out


def _one_service_surprise(
    spread: Spread, t_idx: np.ndarray, e_idx: np.ndarray, sensitivity: float
) -> np.ndarray:
    counts, base = spread.same
    observed = counts[t_idx, e_idx]
    scored = score_counts(
        observed,
        base.expected[t_idx, e_idx],
        base.variance[t_idx, e_idx],
        np.ones(len(t_idx)),
        sensitivity,
        ScoreParams(),
        with_upper=False,
        silent=np.zeros(len(t_idx), dtype=bool),
    )
    return np.where(observed >= SpreadParams().min_actors, scored.surprise, 0.0)


def spread_note(spread: Spread, t: int, e: int, on_one_service: bool = False) -> str:
    """The reason's words for an account cell the spread decided: where known, its quiet principals'
    failures, then its failing actors, and where the actors on one service stood in for them
    (``on_one_service``) how many those were: on a source rare for the account (P29) where that
    scored higher, else on its busiest source (P26)."""
    counts, base, quiet = spread.counts, spread.base, spread.quiet
    text = f"{int(counts[t, e])} of its principals failed at once (usually {float(base.expected[t, e]):.0f})"
    if on_one_service:
        where = np.array([t]), np.array([e])
        i = -1 if spread.rare is None else int(spread.rare.find(*where, counts.shape[1])[0])
        if i >= 0 and spread.rare.surprise[i] >= _one_service_surprise(spread, *where, 1.0)[0]:
            rare = spread.rare
            text += (
                f", {int(rare.actors[i])} of them on {rare.source[i]}, which the account seldom fails"
                f" on (usually {float(rare.rate[i]):.2g})"
            )
        else:
            same, same_base = spread.same
            text += (
                f", {int(same[t, e])} of them on one service (usually {float(same_base.expected[t, e]):.0f})"
            )
    if quiet is not None and quiet[0][t, e] > 0:
        q_counts, q_base = quiet
        n, usual = int(q_counts[t, e]), float(q_base.expected[t, e])
        text = f"{n} failures from principals that seldom fail (usually {usual:.2g}); {text}"
    return text


def top_actor(
    counts: np.ndarray,
    t_idx: np.ndarray,
    a_idx: np.ndarray,
    p_account: np.ndarray,
    p_actor: np.ndarray,
    service: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each account cell (bin offset, account): the failures of its busiest actor, that actor,
    and the failures of all its actors (AWS service principals left out, as in the account's sum)."""
    top = np.zeros(len(t_idx), dtype=np.float64)
    total = np.zeros(len(t_idx), dtype=np.float64)
    who = np.full(len(t_idx), -1, dtype=np.int64)
    group = np.where(service, -1, p_account)
    order = np.argsort(group, kind="stable")
    sorted_account = group[order]
    for i, (t, a) in enumerate(zip(t_idx.tolist(), a_idx.tolist())):
        lo, hi = np.searchsorted(sorted_account, [a, a + 1])
        idx = order[lo:hi]
        row = counts[t, idx]
        if not len(idx) or row.sum() <= 0:
            continue
        local, inverse = np.unique(p_actor[idx], return_inverse=True)
        sums = np.bincount(inverse, weights=row)
        best = int(np.argmax(sums))
        top[i], who[i], total[i] = sums[best], local[best], row.sum()
    return top, who, total


def one_actor_cap(
    score: np.ndarray,
    spread_score: np.ndarray,
    top: np.ndarray,
    total: np.ndarray,
    actor_score: np.ndarray,
    params: SpreadParams,
    quiet_kept: np.ndarray | None = None,
) -> np.ndarray:
    """Account scores where one actor makes ``dominant_share`` of the failures: no higher than that
    actor's own score, unless the spread alone says more, or (``quiet_kept``, P50) the quiet
    principals' failures and the spread without that actor do."""
    one = (total > 0) & (top >= params.dominant_share * total)
    kept = spread_score if quiet_kept is None else np.maximum(spread_score, quiet_kept)
    return np.where(one, np.maximum(np.minimum(score, actor_score), kept), score)


def quiet_score(
    spread: Spread,
    t_idx: np.ndarray,
    e_idx: np.ndarray,
    quiet: np.ndarray,
    spread_surprise: np.ndarray,
    same,
    sensitivity: float,
) -> np.ndarray:
    """The account cells' score on their quiet principals' failures and their spread alone, the
    account's count left out (P50): where the cell's dominant actor is not one of its quiet
    principals (a batch, a steady automation, a security tool), this is evidence that actor does
    not make, which the one-actor cap keeps (``flags.one_actor_cap``). ``quiet``: their
    :func:`quiet_surprise`."""
    total = combined(
        np.zeros(len(t_idx)), spread_surprise, spread.counts[t_idx, e_idx], SpreadParams(), quiet, same
    )
    return to_score(total * sensitivity, ScoreParams())
