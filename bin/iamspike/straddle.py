"""Spreads across the turn of an hour (rule P34): an account's two bins judged together.

A spread of a few principals within minutes is one bin's evidence when it falls inside a clock
hour, and two halves when it crosses the turn of one (16:55-17:05): each half under
``min_failures`` or ``min_actors``, neither a spread. The bins are all the engine has of a failure's
time (the Tally's keys and the count rows hold the bin, not the minute), so the rule reads the
account's *pair* of a bin and the one before it:

- its failures (the two bins' sum), its distinct failing actors (an actor failing in both counts
  once) and the most actors failing on one event source over the two bins (``pair_series``), from
  the live items alone: the pair needs who failed, which saved state does not keep, so both bins
  must be live (no saved state is added);
- each judged against the sum of the two bins' own expected and variance (``pair_scores``: the
  account's, the failing actors' and the actors on one service's baselines, and where known the
  quiet principals' failures, P19), summed as the hour's cell is (``spread.combined``);
- alerting only where the spread is evidence (at least ``min_actors`` actors over the pair, its
  surprise at least ``min_surprise``: several principals failed at once), both bins hold failing
  actors, the pair holds ``min_failures``, and no one actor makes ``dominant_share`` of the pair's
  failures. The later bin's account row carries it, with the hours it crossed in its reason.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from iamspike import bins
from iamspike.accounts import live_offset
from iamspike.baseline import Baseline
from iamspike.scoring import ScoreParams, score_counts, to_score
from iamspike.spread import Spread, SpreadParams, combined, service_actors, top_actor


class Straddle(NamedTuple):
    """An account's pairs, ``(bins, accounts)`` each: at bin ``t`` the bins ``t - 1`` and ``t``
    together (0 where either is not live). ``failures`` the pair's failures, ``actors`` its distinct
    failing actors, ``same`` the most actors on one event source over the pair, ``apis`` the two
    bins' distinct (actor, API) pairs summed."""

    failures: np.ndarray
    actors: np.ndarray
    same: np.ndarray
    apis: np.ndarray


def _pairs(codes: np.ndarray, per_bin: int, n_bins: int, live_from: int) -> np.ndarray:
    """Cells ``bin offset * per_bin + x`` -> the same cells (sorted, unique) for each pair ending
    at a bin whose bin before is live: every cell counted in its own bin's pair and the next one's,
    once each."""
    w = np.concatenate([codes, codes + per_bin])
    t = w // per_bin
    return bins.sorted_unique(w[(t - 1 >= live_from) & (t < n_bins)])


def pair_series(
    acc_counts: np.ndarray,
    acc_apis: np.ndarray,
    items: tuple[np.ndarray, np.ndarray, np.ndarray],
    p_actor: np.ndarray,
    a_group: np.ndarray,
    live_from: int,
) -> Straddle:
    """The account's pairs from the live items (``items``: bin offset, principal, event source id,
    one per live cell and source; a source id below 0 is unknown); ``a_group`` each actor's
    account (``n_accounts`` for AWS service principals, left out) and ``acc_counts``,
    ``acc_apis`` the account's failures and distinct (actor, API) pairs per bin."""
    n_bins, n_accounts = acc_counts.shape
    failures = np.zeros_like(acc_counts)
    failures[live_from + 1 :] = acc_counts[live_from:-1] + acc_counts[live_from + 1 :]
    apis = np.zeros_like(acc_apis)
    apis[live_from + 1 :] = acc_apis[live_from:-1] + acc_apis[live_from + 1 :]
    actors = np.zeros_like(acc_counts)
    same = np.zeros_like(acc_counts)
    item_t, item_p, item_src = items
    keep = (item_t >= live_from) & (item_t < n_bins) & (a_group[p_actor[item_p]] < n_accounts)
    if not keep.any():
        return Straddle(failures, actors, same, apis)
    n_actors = len(a_group)
    actor, t = p_actor[item_p[keep]], item_t[keep].astype(np.int64)
    pairs = _pairs(t * n_actors + actor, n_actors, n_bins, live_from)
    np.add.at(actors, (pairs // n_actors, a_group[pairs % n_actors]), 1)
    # Each item also counts in the next bin's pair; an actor in both bins of a pair counts once.
    pair_t = np.concatenate([t, t + 1])
    mine = pair_t - 1 >= live_from
    both = (pair_t[mine], np.tile(item_p[keep], 2)[mine], np.tile(item_src[keep], 2)[mine])
    cell, most = service_actors(both, n_bins, p_actor, a_group, n_accounts)
    same[cell // n_accounts, cell % n_accounts] = most
    return Straddle(failures, actors, same, apis)


def live_pairs(results, acc_counts, acc_apis, a_group, live_first: int | None, items) -> Straddle:
    """``pair_series`` of the results pass's live items (``items``: ``accounts.source_items``), its
    principals' actors ``results.p_actor`` and their accounts ``a_group`` (``accounts.account_actors``)."""
    t, p, src, _ = items
    live_from = live_offset(results.first, results.n_bins, live_first)
    return pair_series(acc_counts, acc_apis, (t - results.first, p, src), results.p_actor, a_group, live_from)


def candidates(straddle: Straddle, acc_spread: np.ndarray, out_from: int, min_failures: int):
    """The account cells (bin offset, account) from ``out_from`` whose pair could alert: at least
    ``min_failures`` failures and ``min_actors`` failing actors over the pair, failing actors in
    both of its bins."""
    params = SpreadParams()
    ok = (
        (straddle.failures >= min_failures)
        & (straddle.actors >= params.min_actors)
        & (acc_spread > 0)
        & (np.roll(acc_spread, 1, axis=0) > 0)
    )
    ok[: max(out_from, 1)] = False
    return np.nonzero(ok)


def _pair_sum(values: np.ndarray, t_idx: np.ndarray, e_idx: np.ndarray) -> np.ndarray:
    return values[t_idx - 1, e_idx].astype(np.float64) + values[t_idx, e_idx]


def _surprise(observed, base: Baseline, t_idx, e_idx, sensitivity, floor=None, apis=None) -> np.ndarray:
    """The surprise of ``observed`` against the pair's summed baseline, with the breadth bonus of
    ``apis`` beyond the summed typical APIs where given."""
    expected = _pair_sum(base.expected, t_idx, e_idx)
    if floor is not None:
        expected = np.maximum(expected, floor)
    typical = None if apis is None else _pair_sum(base.typical_apis, t_idx, e_idx)
    scored = score_counts(
        observed,
        expected,
        np.maximum(_pair_sum(base.variance, t_idx, e_idx), expected),
        np.ones(len(t_idx)) if apis is None else apis,
        sensitivity,
        ScoreParams(),
        with_upper=False,
        silent=np.zeros(len(t_idx), dtype=bool),
        typical_apis=typical,
    )
    return scored.surprise + scored.bonus


def pair_scores(
    straddle: Straddle,
    base: Baseline,
    spread: Spread,
    t_idx: np.ndarray,
    e_idx: np.ndarray,
    sensitivity: float,
) -> np.ndarray:
    """The pairs' scores at the account cells (bin offset, account; the pair of the bin and the one
    before): the count's surprise plus the spread's (``spread.combined``, each against the two
    bins' summed baselines), 0 where the spread is no evidence."""
    params = SpreadParams()
    if not len(t_idx):
        return np.zeros(0)
    failures = straddle.failures[t_idx, e_idx].astype(np.float64)
    actors = straddle.actors[t_idx, e_idx].astype(np.float64)
    same = straddle.same[t_idx, e_idx].astype(np.float64)
    apis = straddle.apis[t_idx, e_idx].astype(np.float64)
    count_s = _surprise(failures, base, t_idx, e_idx, sensitivity, apis=apis)
    actors_s = _surprise(actors, spread.base, t_idx, e_idx, sensitivity)
    same_s = None
    if spread.same is not None:
        same_s = _surprise(same, spread.same[1], t_idx, e_idx, sensitivity)
        same_s = np.where(same >= params.min_actors, same_s, 0.0)
    quiet_s = None
    if spread.quiet is not None:
        q_counts, q_base = spread.quiet
        floor = _pair_sum(spread.base.expected, t_idx, e_idx)
        quiet_s = _surprise(_pair_sum(q_counts, t_idx, e_idx), q_base, t_idx, e_idx, sensitivity, floor)
    total = combined(count_s, actors_s, actors, params, quiet_s, same_s)
    spread_s = actors_s if same_s is None else np.maximum(actors_s, same_s)
    evidence = (actors >= params.min_actors) & (spread_s >= params.min_surprise)
    return np.where(evidence, to_score(total * sensitivity, ScoreParams()), 0.0)


def top_share(one_actor, p_actor: np.ndarray, t_idx: np.ndarray, e_idx: np.ndarray) -> np.ndarray:
    """The share of each pair's failures (the account cell's bin and the one before) that its
    busiest actor makes (``spread.top_actor`` over the two bins' sums); 0 without the principals'
    counts (``one_actor``: counts, account of each principal, AWS service principals)."""
    if one_actor is None or not len(t_idx):
        return np.zeros(len(t_idx))
    counts, p_account, service = one_actor
    pairs = counts[t_idx - 1].astype(np.float64) + counts[t_idx]
    top, _, total = top_actor(pairs, np.arange(len(t_idx)), e_idx, p_account, p_actor, service)
    return np.divide(top, total, out=np.zeros(len(t_idx)), where=total > 0)


def straddle_note(straddle: Straddle, spread: Spread, t: int, e: int, start: int, span: int) -> str:
    """The reason's words for an account cell its pair decided (``start`` the epoch seconds of the
    bin before): the bins it crossed, how many principals failed over them and how many failures."""
    usual = float(spread.base.expected[t - 1, e] + spread.base.expected[t, e])
    hours = "-".join(time.strftime("%H:%M", time.gmtime(start + k * span)) for k in (0, 2))
    return (
        f"the spread crossed the hour ({hours} UTC): {int(straddle.actors[t, e])} of its principals"
        f" failed at once over the two hours (usually {usual:.0f}),"
        f" {int(straddle.failures[t, e])} failures in all"
    )
