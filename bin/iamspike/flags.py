"""Flagging: which cells of the results pass are spikes, and their scores.

Every rule's score of a cell, combined: the count against the baseline with its breadth, novelty
and onset hold-down (``scoring.score_counts``; a person's breadth, ``people``), the current rate
(``scoring.rate_score``), a steady stream's own record (``tail``, P21), a steady stream's last
bins against its own days (``steady``, P32), low-and-slow runs (``runs``, P22), and for
accounts the spread over their actors and the one-actor cap (``spread``). ``flag`` returns them
as a ``Flagged``; ``results`` builds the output rows and their explanations from it. ``rp`` is
what ``flag`` reads of the results pass: a ``PassView`` that ``results.ResultsPass`` builds (and
nothing else of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from iamspike.baseline import BaselineParams, current_rate
from iamspike.daylevel import day_level_scores
from iamspike.minutes import flagged as minutes_flagged
from iamspike.newcomers import flagged as newcomers_flagged
from iamspike.options import Options
from iamspike.people import cell_breadth, page_load, person_breadth
from iamspike.principals import short_name
from iamspike.repeaters import flagged as repeaters_flagged
from iamspike.reruns import HELD_BELOW, RERUN_MARGIN
from iamspike.reruns import held as reruns_held
from iamspike.reruns import in_accounts as rerun_failures
from iamspike.runs import Runs, find_runs
from iamspike.scoring import ScoreParams, Scores, rate_score, score_counts, to_score, upper_bound
from iamspike.secretapis import secret_apis
from iamspike.sensitive import reads_secrets
from iamspike.siblings import followed as siblings_followed
from iamspike.spread import (
    Spread,
    SpreadParams,
    actor_name,
    combined,
    quiet_score,
    quiet_surprise,
    same_surprise,
    top_actor,
)
from iamspike.spread import (
    one_actor_cap as cap_by_one_actor,
)
from iamspike.steady import steady_scores
from iamspike.straddle import Straddle, candidates, pair_scores, top_share
from iamspike.tail import own_record
from iamspike.usual import as_usual, known, near_silent

# A person's bin on fewer than NARROW_APIS distinct APIs (a command retried: 19 UnauthorizedOperation
# on two EC2 APIs in seconds) lifts the onset hold-down only from NARROW_FACTOR times min_failures.
NARROW_APIS = 3
NARROW_FACTOR = 2.0


@dataclass(frozen=True, eq=False)
class PassView:
    """What ``flag`` reads of the results pass: ``results.ResultsPass`` builds it from its
    attributes of these names (``person`` is None when principals are not scored, ``p_actor``
    without accounts, ``one_actor`` until the accounts are scored)."""

    o: Options
    first: int  # the matrices' first bin (bin offsets count from it)
    n_bins: int
    principals: Mapping[tuple[str, str], int]  # (account, principal) -> principal id
    baseline_params: BaselineParams
    k_bin: np.ndarray  # the live keys: bin, principal id, failed console sign-ins
    k_p: np.ndarray
    k_console: np.ndarray
    first_fail: tuple[np.ndarray, np.ndarray, np.ndarray]  # (principal, API, bin) first failures
    new_cells: np.ndarray  # cells with an API failing for the first time, sorted (repeated per API)
    watched: np.ndarray  # per principal: the bin its failures are watched from
    history: int  # bins a principal is watched before an API of it can be new
    person: np.ndarray | None  # principals: which are people (people.py)
    # Accounts, for the one-actor cap: (principal counts, account of each principal, AWS service
    # principals), each principal's actor, and the principals' scores (``Flagged.principal_scores``).
    one_actor: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    p_actor: np.ndarray | None
    principal_scores: tuple[np.ndarray, np.ndarray]  # empty until the principals are scored
    # Accounts: the principals' cells that repeat an earlier broad bin (P45), their failures and
    # distinct APIs (``Flagged.reruns``); empty until the principals are scored.
    reruns: tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Flagged:
    """The cells scored (``t_idx``, ``e_idx``: bin offset, entity), each rule's part, and which are
    flagged; ``pick`` the cells output (the flagged ones, every cell with ``show=all``) and
    ``upper`` their upper bounds. The principal rules' parts are None for accounts and the
    account rules' for principals. ``principal_scores`` (principals): the cells (bin offset *
    principals + principal) and their scores (0 below ``min_failures``), for the accounts'
    one-actor cap."""

    t_idx: np.ndarray
    e_idx: np.ndarray
    observed: np.ndarray
    scored: Scores
    score: np.ndarray
    flagged: np.ndarray
    pick: np.ndarray
    upper: np.ndarray
    rate: np.ndarray | None  # the current rate (scoring.rate_score)
    by_rate: np.ndarray | None
    runs: Runs | None  # low-and-slow runs (P22) and each cell's run (-1: none)
    run: np.ndarray | None
    console: np.ndarray | None  # failed console sign-ins
    hold: np.ndarray | None
    usual_burst: np.ndarray | None
    record: np.ndarray | None  # a steady stream's own record (P21)
    new_apis: np.ndarray | None
    spread_score: np.ndarray | None  # accounts: the spread's score, both together, cap notes
    both: np.ndarray | None
    capped: dict[int, str] | None
    principal_scores: tuple[np.ndarray, np.ndarray] | None
    on_one_service: np.ndarray | None = None  # accounts: the actors on one service stood in (P26)
    # principals: a steady stream's last bins against its week (P32): score, bins, prediction
    steady: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    # accounts: the score of the cell's pair with the bin before, where it alerts (P34; else 0)
    pair: np.ndarray | None = None
    repeat: np.ndarray | None = None  # accounts: quiet principals repeating on one source (P35)
    arrived: np.ndarray | None = None  # accounts: principals failing for the first time together (P38)
    cluster: np.ndarray | None = None  # accounts: actors failing within the same minutes (P39)
    # principals: the earlier bin a cell at the threshold repeats, held below it (P43; else -1)
    rerun: np.ndarray | None = None
    # principals: the cells that repeat an earlier bin whatever their score, for their accounts (P45)
    reruns: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    # principals: the sibling (the same role in another account) and its bin offset that a cell at
    # the threshold follows, held below it (P46; else -1, -1)
    sibling: tuple[np.ndarray, np.ndarray] | None = None
    # principals: a machine stream's last bins against its level today (P52): score, bins, prediction
    day_level: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def flag(
    rp: PassView,
    counts,
    distinct_apis,
    base,
    cells,
    out_from,
    spread: Spread | None = None,
    onset=None,
    straddle: Straddle | None = None,
) -> Flagged | None:
    """The cells of ``counts`` from bin ``out_from`` on that are scored (at least ``min_failures``,
    a run's end, a pair across the hour, or every cell with ``show=all``), with ``base`` their
    baselines, ``cells`` their explanations (``explain.CellDetail``), ``onset`` (principals) the
    onset hold-down's mean per principal, ``spread`` (accounts) the actors' series
    (``spread.Spread``) and ``straddle`` (accounts) each bin's pair with the bin before
    (``straddle.Straddle``, P34); None when no cell is scored (``pick`` empty when none is
    output)."""
    o = rp.o
    principal_scores = reruns = None
    window = counts[out_from:]
    if o.show == "all":
        t_idx, e_idx = np.nonzero(np.ones_like(window, dtype=bool))
    else:
        t_idx, e_idx = np.nonzero(window >= o.min_failures)
    t_idx = t_idx + out_from
    paired = np.zeros(len(t_idx), dtype=bool)
    if straddle is not None and spread is not None:  # P34: cells whose pair could alert
        pair_t, pair_e = candidates(straddle, spread.counts, out_from, o.min_failures)
        n = counts.shape[1]
        cell = np.union1d(t_idx * n + e_idx, pair_t * n + pair_e)
        paired = np.isin(cell, pair_t * n + pair_e)
        t_idx, e_idx = cell // n, cell % n
    runs = None
    if onset is not None:  # low-and-slow runs on near-silent principals (runs.py, P22)
        first = (rp.first_fail[0], rp.first_fail[1], rp.first_fail[2] - rp.first)  # P24: new APIs
        runs = find_runs(counts, base, distinct_apis, o, first_fail=first)
        t_idx, e_idx = runs.cells(t_idx, e_idx)
    if not len(t_idx):
        return None
    observed = counts[t_idx, e_idx]
    apis = distinct_apis[t_idx, e_idx]
    onset_mean = hold = in_console = secret = new_apis = record = rate = by_rate = run = usual_burst = None
    rerun = sibling = None
    steady = day_level = None
    silent = base.silent[t_idx, e_idx]
    near = np.zeros(len(t_idx), dtype=bool)
    if onset is not None:
        onset_mean = onset[e_idx]
        in_console = console(rp, t_idx, e_idx)
        hold = in_console < o.min_failures
        # A machine principal's denied reads of secrets are no routine start (sensitive.py, P25).
        machine = ~rp.person[e_idx] & (onset_mean > 0)
        secret = reads_secrets(
            machine, observed, t_idx, e_idx, cells, o.min_failures, secret=secret_apis(o.lookup)
        )
        hold &= ~secret
        new_apis = first_new = new_in(rp, t_idx, e_idx)
        # A person's breadth: its APIs' worth, page loads and known APIs (people.py, P16, P20).
        apis, page = people_apis(rp, t_idx, e_idx, observed, apis, cells)
        # ... and a machine's known APIs (usual.py, P31).
        watched = t_idx + rp.first - rp.watched[e_idx] >= rp.history
        usual = known(rp.person[e_idx], machine, silent, watched)
        apis, new_apis = person_breadth(
            apis, new_apis, base.typical_apis[t_idx, e_idx], usual & hold, page & hold
        )
        # People's narrow bursts are held down longer (NARROW_APIS), near silence too (P31).
        narrow = rp.person[e_idx] & (apis < NARROW_APIS)
        onset_mean = np.where(narrow, NARROW_FACTOR * onset_mean, onset_mean)
        near = near_silent(narrow, base.expected[t_idx, e_idx], silent)
        silent = silent | near
    scored = score_counts(
        observed,
        base.expected[t_idx, e_idx],
        base.variance[t_idx, e_idx],
        apis,
        o.sensitivity,
        ScoreParams(),
        with_upper=False,
        silent=silent,
        typical_apis=base.typical_apis[t_idx, e_idx],
        onset_mean=onset_mean,
        hold=hold,
        new_apis=new_apis,
        burst_size=None if onset is None else base.burst_size[t_idx, e_idx],
        burst_rate=None if onset is None else base.burst_rate[t_idx, e_idx],
    )
    scored = as_usual(scored, near)  # they had failures before (P31)
    score = scored.score
    if onset is not None:
        # A principal's count is also judged against its current rate (scoring.rate_score).
        rate = current_rate(counts, t_idx, e_idx, rp.baseline_params.local_half_life_bins)
        by_rate = rate_score(
            observed,
            base.expected[t_idx, e_idx],
            rate,
            silent,
            o.sensitivity,
            dispersion=base.local_dispersion[t_idx, e_idx],
            shaped=base.shaped_rate[t_idx, e_idx],
        )
        # One of its usual bursts is no spike against its current rate either.
        usual_burst = np.isfinite(scored.habit)
        by_rate = np.where(usual_burst, np.minimum(by_rate, scored.score), by_rate)
        score = np.maximum(score, by_rate)
        # A steady machine stream's new record by a margin over its own past (tail.py, P21).
        half_life = rp.baseline_params.local_half_life_bins
        record = own_record(counts, base, t_idx, e_idx, ~rp.person, half_life, o.sensitivity, rate=rate)
        score = np.where(record, np.maximum(score, o.threshold), score)
        # ... and a steady stream's last bins against its own week, and at its level (steady.py,
        # P32 and P36).
        # ... and against its own level today (daylevel.py, P52); none of them on its usual bursts.
        per_day = 86400 // o.span if 86400 % o.span == 0 else 0
        steady, day_level = (
            _off_usual_bursts(
                rule(counts, t_idx, e_idx, ~rp.person, o.sensitivity, per_day, rp.first % max(per_day, 1)),
                usual_burst,
            )
            for rule in (steady_scores, day_level_scores)
        )
        score = np.maximum(score, np.maximum(steady[0], day_level[0]))
        # ... and flagged from silence whatever a short window's prior expects (P25).
        score = np.where(secret & scored.onset, np.maximum(score, o.threshold), score)
        run = runs.find(t_idx, e_idx)
        score = np.maximum(score, runs.scores(run))
        # A machine's re-run of an earlier broad burst on APIs it knows is held (reruns.py, P43);
        # every such cell, whatever its score, is left out of its account's count (P45).
        repeats = reruns_held(counts, distinct_apis, t_idx, e_idx, machine & watched, first_new, o.span)
        rerun = np.where(score >= o.threshold, repeats, -1)
        score = np.where(rerun >= 0, np.minimum(score, o.threshold - HELD_BELOW), score)
        # ... and so is a role's sweep that the same role made in another account (siblings.py, P46).
        sib, sib_bin = siblings_followed(
            counts,
            distinct_apis,
            t_idx,
            e_idx,
            machine & (observed >= o.min_failures),
            rp.first_fail,
            rp.first,
            rp.principals,
            o.span,
        )
        follows = (score >= o.threshold) & (rerun < 0) & (sib >= 0)
        sibling = (np.where(follows, sib, -1), np.where(follows, sib_bin, -1))
        score = np.where(follows, np.minimum(score, o.threshold - HELD_BELOW), score)
        again = (repeats >= 0) | (sib >= 0)
        reruns = (
            t_idx[again] * counts.shape[1] + e_idx[again],
            observed[again],
            distinct_apis[t_idx[again], e_idx[again]],
        )
        # The scores an account cell one actor makes is capped at (bins below min_failures: 0).
        principal_scores = (
            t_idx * counts.shape[1] + e_idx,
            np.where(observed >= o.min_failures, score, 0.0),
        )
    spread_score = both = capped = on_one_service = repeat = arrived = cluster = None
    if spread is not None:
        # An account's count without its machines' re-runs (P45): the spread scores below still see
        # every actor.
        scored, score = without_reruns(rp, t_idx, e_idx, observed, apis, base, silent, scored, score)
        # Accounts are also scored on how many of their actors fail in the bin: a spike
        # spread thinly over many principals can hide in a noisy account total.
        spread_counts, spread_base = spread.counts, spread.base
        by_spread = score_counts(
            spread_counts[t_idx, e_idx],
            spread_base.expected[t_idx, e_idx],
            spread_base.variance[t_idx, e_idx],
            np.ones(len(t_idx)),
            o.sensitivity,
            ScoreParams(),
            with_upper=False,
            # Several principals failing together are no single stream starting: no hold-down.
            silent=np.zeros(len(t_idx), dtype=bool),
        )
        spread_score = by_spread.score
        # ... and on both: several actors failing add to the count's surprise (spread.combined).
        same = same_surprise(spread, t_idx, e_idx, o.sensitivity)
        quiet = quiet_surprise(spread, t_idx, e_idx)
        total = combined(
            scored.surprise + scored.bonus,
            by_spread.surprise,
            spread_counts[t_idx, e_idx],
            SpreadParams(),
            quiet,
            same,
        )
        on_one_service = None if same is None else same > by_spread.surprise
        both = to_score(total * o.sensitivity, ScoreParams())
        score = np.maximum(np.maximum(score, spread_score), both)
        # ... and flagged where quiet principals fail repeatedly on one source in a quiet hour (P35).
        expected = base.expected[t_idx, e_idx]
        repeat = repeaters_flagged(
            spread.repeat, t_idx, e_idx, spread_counts.shape[1], expected, o.min_failures
        )
        score = np.where(repeat, np.maximum(score, o.threshold), score)
        # ... and where several principals fail for the first time together (P38).
        arrived = newcomers_flagged(spread.newcomers, t_idx, e_idx, spread_counts.shape[1])
        score = np.where(arrived, np.maximum(score, o.threshold), score)
        # ... and where several actors fail within the same minutes in a quiet account (P39).
        cluster = minutes_flagged(
            spread.minutes, t_idx, e_idx, spread_counts.shape[1], expected, o.min_failures
        )
        score = np.where(cluster, np.maximum(score, o.threshold), score)
        # The one-actor cap (a cell one actor makes is that actor's alert) spares a cell where
        # several principals failed for the first time together: it is theirs, not the actor's (P47).
        # ... nor where the quiet principals' failures and the spread flag it without that actor (P50).
        alone = None
        if quiet is not None:
            alone = quiet_score(spread, t_idx, e_idx, quiet, by_spread.surprise, same, o.sensitivity)
            alone = (alone, spread.quiet[0][t_idx, e_idx])
        score, capped = one_actor_cap(rp, t_idx, e_idx, score, spread_score, ~arrived, alone)
    flagged = (score >= o.threshold) & ((observed >= o.min_failures) | (onset is not None and run >= 0))
    pair = None
    if paired.any():
        cells_in = (t_idx, e_idx, paired)
        pair, score, flagged = across_the_hour(rp, straddle, base, spread, cells_in, score, flagged)
    if cluster is not None:  # a handful of failures: also below min_failures; the pair decides first (P39)
        flagged |= cluster & (score >= o.threshold)
    pick = np.arange(len(t_idx)) if o.show == "all" else np.flatnonzero(flagged)
    upper = upper_bound(
        scored.expected[pick],
        np.maximum(base.variance[t_idx[pick], e_idx[pick]], scored.expected[pick]),
        ScoreParams().threshold_surprise / o.sensitivity,
    )
    return Flagged(
        t_idx,
        e_idx,
        observed,
        scored,
        score,
        flagged,
        pick,
        upper,
        rate,
        by_rate,
        runs,
        run,
        in_console,
        hold,
        usual_burst,
        record,
        new_apis,
        spread_score,
        both,
        capped,
        principal_scores,
        on_one_service,
        steady,
        pair,
        repeat,
        arrived,
        cluster,
        rerun,
        reruns,
        sibling,
        day_level,
    )


def _off_usual_bursts(window_scores, usual_burst: np.ndarray):
    """A window rule's (score, bins, prediction) with no score on a stream's usual bursts."""
    score, bins_, predicted = window_scores
    return np.where(usual_burst, 0.0, score), bins_, predicted


def without_reruns(rp: PassView, t_idx, e_idx, observed, apis, base, silent, scored, score):
    """Account cells near the threshold with failures of their principals' re-runs
    (``reruns.in_accounts``, P45): scored again on the count without them (and the distinct APIs
    without the largest re-run's), each keeping the lower score and surprise."""
    if rp.one_actor is None or not len(rp.reruns[0]):
        return scored, score
    near = np.flatnonzero(score >= rp.o.threshold - RERUN_MARGIN)
    _, p_account, service = rp.one_actor
    failures, rerun_apis = rerun_failures(rp.reruns, t_idx[near], e_idx[near], p_account, service)
    near, failures, rerun_apis = near[failures > 0], failures[failures > 0], rerun_apis[failures > 0]
    if not len(near):
        return scored, score
    t, e = t_idx[near], e_idx[near]
    again = score_counts(
        np.maximum(observed[near] - failures, 0.0),
        base.expected[t, e],
        base.variance[t, e],
        np.maximum(1.0, apis[near] - rerun_apis),
        rp.o.sensitivity,
        ScoreParams(),
        with_upper=False,
        silent=silent[near],
        typical_apis=base.typical_apis[t, e],
    )
    surprise, bonus, out = scored.surprise.copy(), scored.bonus.copy(), score.copy()
    surprise[near] = np.minimum(surprise[near], again.surprise)
    bonus[near] = np.minimum(bonus[near], again.bonus)
    out[near] = np.minimum(out[near], again.score)
    return replace(scored, surprise=surprise, bonus=bonus), out


def across_the_hour(rp: PassView, straddle, base, spread, cells_in, score, flagged):
    """Account cells whose pair with the bin before (``straddle``, P34) reaches the threshold where
    the cell alone does not, and the bin before is not flagged on its own: flagged at the pair's
    score. ``cells_in``: the cells scored (bin offset, account) and which are candidates
    (``straddle.candidates``). Returns the pairs' scores (0 where they do not decide) and the new
    scores and flags."""
    o = rp.o
    t_idx, e_idx, paired = cells_in
    at = np.flatnonzero(paired)
    pair = np.zeros(len(t_idx))
    pair[at] = pair_scores(straddle, base, spread, t_idx[at], e_idx[at], o.sensitivity)
    near = at[(pair[at] >= o.threshold) & ~flagged[at]]
    # One actor's burst across the hour is that principal's, not a spread (spread.one_actor_cap).
    share = top_share(rp.one_actor, rp.p_actor, t_idx[near], e_idx[near])
    near = near[share < SpreadParams().dominant_share]
    n = int(e_idx.max()) + 1
    before = np.isin((t_idx[near] - 1) * n + e_idx[near], t_idx[flagged] * n + e_idx[flagged])
    near = near[~before]
    out = np.zeros(len(t_idx))
    out[near] = pair[near]
    score, flagged = score.copy(), flagged.copy()
    score[near] = pair[near]
    flagged[near] = True
    return out, score, flagged


def new_in(rp: PassView, t_idx: np.ndarray, e_idx: np.ndarray) -> np.ndarray:
    """How many APIs fail for the first time in each cell (bin offset, principal)."""
    wanted = np.asarray(t_idx, dtype=np.int64) * len(rp.principals) + np.asarray(e_idx, dtype=np.int64)
    lo = np.searchsorted(rp.new_cells, wanted, side="left")
    hi = np.searchsorted(rp.new_cells, wanted, side="right")
    return (hi - lo).astype(np.float64)


def console(rp: PassView, t_idx: np.ndarray, e_idx: np.ndarray) -> np.ndarray:
    """Failed console sign-ins in the cells (bin offset, principal) from the live keys (sparse:
    only keys with the console code are looked at, no (bins, principals) matrix)."""
    t = rp.k_bin - rp.first
    keep = (t >= 0) & (t < rp.n_bins) & (rp.k_console > 0)
    out = np.zeros(len(t_idx), dtype=np.float64)
    if keep.any():
        n = len(rp.principals)
        cells, at = np.unique(t[keep] * n + rp.k_p[keep], return_inverse=True)
        sums = np.bincount(at, weights=rp.k_console[keep])
        wanted = np.asarray(t_idx, dtype=np.int64) * n + np.asarray(e_idx, dtype=np.int64)
        pos = np.minimum(np.searchsorted(cells, wanted), len(cells) - 1)
        out = np.where(cells[pos] == wanted, sums[pos], 0.0)
    return out


def one_actor_cap(rp: PassView, t_idx, e_idx, score, spread_score, capable, alone=None):
    """Account cells at or above the threshold that one actor makes (``spread.one_actor_cap``),
    of those ``capable`` marks: their scores capped at the actor's principals' scores, and a note
    for each cell the cap lowered (cell index -> text). ``alone`` (P50): the cells' scores on their
    quiet principals and spread alone (``spread.quiet_score``) and their quiet failures; kept where
    the actor's failures are not among the quiet ones."""
    notes: dict[int, str] = {}
    if rp.one_actor is None:
        return score, notes
    near = np.flatnonzero((score >= rp.o.threshold) & capable)
    if not len(near):
        return score, notes
    counts, p_account, service = rp.one_actor
    top, who, total = top_actor(counts, t_idx[near], e_idx[near], p_account, rp.p_actor, service)
    cells, p_scores = rp.principal_scores
    n_principals = counts.shape[1]
    actor_score = np.zeros(len(near), dtype=np.float64)
    for j, (t, a) in enumerate(zip(t_idx[near].tolist(), who.tolist())):
        members = np.flatnonzero(rp.p_actor == a) if a >= 0 else np.zeros(0, dtype=np.int64)
        wanted = t * n_principals + members
        pos = np.minimum(np.searchsorted(cells, wanted), max(len(cells) - 1, 0))
        found = cells[pos] == wanted if len(cells) else np.zeros(len(wanted), dtype=bool)
        actor_score[j] = float(p_scores[pos[found]].max()) if found.any() else 0.0
    kept = None
    if alone is not None:
        loud = alone[1][near] <= total - top  # the actor is not one of the quiet principals
        kept = np.where(loud, alone[0][near], 0.0)
    lowered = cap_by_one_actor(score[near], spread_score[near], top, total, actor_score, SpreadParams(), kept)
    out = score.copy()
    out[near] = lowered
    lowered_at = np.flatnonzero(lowered < score[near]).tolist()
    labels = {p: key for key, p in rp.principals.items()} if lowered_at else {}
    for j in lowered_at:
        name = short_name(actor_name(labels[int(np.flatnonzero(rp.p_actor == who[j])[0])][1]))
        share = f"{top[j] / total[j]:.0%} of its failures are {name}'s"
        if kept is not None and kept[j] >= lowered[j] > max(actor_score[j], spread_score[near[j]]):
            notes[int(near[j])] = f"{share}, scored on its other principals"  # P50 kept it
        else:
            notes[int(near[j])] = f"{share}, scored as that principal"
    return out, notes


def people_apis(rp: PassView, t_idx, e_idx, observed, apis, cells):
    """A person's distinct APIs in each cell of at least ``min_failures`` failures, lowered to
    its APIs' worth (``people.cell_breadth``: the effective number of APIs, at most 2 in a
    ``people.page_load``), and which are page loads. Only such cells can be flagged, and only
    they are read (their explanations, as for a flagged cell)."""
    page = np.zeros(len(apis), dtype=bool)
    pick = np.flatnonzero(rp.person[e_idx] & (observed >= rp.o.min_failures) & (apis >= 2))
    if not len(pick):
        return apis, page
    cells.prefetch(e_idx[pick], t_idx[pick])
    out = np.asarray(apis, dtype=np.float64).copy()
    for i in pick.tolist():
        cell = cells(int(e_idx[i]), int(t_idx[i]))
        page[i] = page_load(cell.services, cell.user_agents)
        out[i] = min(out[i], cell_breadth(cell.apis, page[i]))
    return out, page
