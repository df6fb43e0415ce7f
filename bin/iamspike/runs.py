"""Low-and-slow runs on near-silent principals (rule P22).

An attacker who keeps below ``min_failures`` an hour for hours on a quiet principal (3-5 denials
an hour for 8 hours) leaves no bin to flag; after four bins the recent view of the baseline lifts
the expected to the stream itself. A *run* is judged on its own: over the current bin and up to
``max_bins - 1`` bins before it, the sum of the principal's failures against the sum of what its
history expected in those bins (``Baseline.long_run``: level and seasonal, never the recent view
that the run lifts), under a negative binomial with the principal's own dispersion. The fit keeps
that expectation only where a run can end (``LongRun``), not as a matrix the size of ``expected``.

Only for principals that are silent in the bin (their history holds less than one failure a bin,
at most ``near_silent`` over the run), watched long enough to have a history (``since``: new
principals have their own rules), not AWS service principals (their streams are held down as
onsets), and only for runs of at least ``min_bins`` failing bins and ``min_failures`` failures
(``min_failures`` keeps its meaning for a single bin; a run must hold as many), at most
``max_share`` of them in one bin (a burst) and no bin above ``max_rate`` x ``min_failures`` (such a
bin is judged on its own, held down as an onset), on ``min_apis`` distinct APIs a failing bin (one
command retried for hours is a stuck script), or on ``min_new_apis`` APIs it fails on for the first
time (rule P24: 10 denials over 5 hours, 2 a bin, on 4 APIs the principal never failed on, once
it has been watched a week; those new APIs in at least ``min_new_bins`` of its bins: 4 APIs
failing at once in one hour is a person trying something new, once; rule P51: on ``heavy_new_apis``
(3) where the run holds ``heavy_factor`` x ``min_failures`` failures), or (rule P27) on at least
one API it never failed on, with at least ``record_factor`` times as many failing bins as the
most the principal had in any ``max_bins`` bins before (a daily app role failing in 4 hours of
one day: its record is 1) or with ``unusual_share`` of its failing bins in hours of the day it
never failed in before (the same role failing at night), from ``record_min_bins`` failing bins,
once it has been watched a week; a command it retries is on an API it failed on before. P27 takes
no stuck retry (rule P30): its run walks APIs (``walk_new_apis`` APIs it never failed on, or
``walk_apis`` a failing bin) or its hours are no steady cadence (a deploy's new call denied and
retried every 20 minutes for hours is one API at the same count an hour); a run whose failures
are mostly first touches of APIs is taken from 6 days of watching, not a week. The
variance of a run's sum is ``d`` x its mean x sqrt(bins) (a person's hours of a bad day move
together), or ``d`` x its mean for a run on new APIs or beyond its habits (no bad day of its
usual work), and ``d`` is 1 where the run's failures are mostly first touches of APIs (P30: they
are no retries or bad days of its usual work); ``runhistory`` holds what the fit keeps for it. A run is
flagged in the bin where its evidence first crosses the threshold; the windows of later bins
start after it (reported once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iamspike.runhistory import RunParams
from iamspike.scoring import ScoreParams, score_counts, to_score


@dataclass
class Runs:
    """The runs found: per flagged cell (bin offset, principal), its score, failures and bins."""

    cell: np.ndarray  # t * n_principals + e, sorted
    score: np.ndarray
    failures: np.ndarray
    bins: np.ndarray
    expected: np.ndarray
    apis: np.ndarray  # the mean distinct APIs of its failing bins
    new_apis: np.ndarray  # the APIs it failed on for the first time in the run
    # P27: the principal's most failing bins in max_bins bins before (>= 0), or -1 - its failing
    # bins in hours of the day it never failed in before (< -1), -1: neither was the reason
    record: np.ndarray

    n_entities: int = 1
    max_bins: int = 12

    def cells(self, t_idx: np.ndarray, e_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cells ``t_idx``, ``e_idx`` and the runs' flagged cells, each once, in bin order."""
        key = np.union1d(t_idx * self.n_entities + e_idx, self.cell.astype(np.int64))
        return key // self.n_entities, key % self.n_entities

    def find(self, t_idx: np.ndarray, e_idx: np.ndarray) -> np.ndarray:
        """Per cell, the index of its run, or -1."""
        key = t_idx * self.n_entities + e_idx
        if not len(self.cell):
            return np.full(len(key), -1)
        pos = np.minimum(np.searchsorted(self.cell, key), len(self.cell) - 1)
        return np.where(self.cell[pos] == key, pos, -1)

    def scores(self, run: np.ndarray) -> np.ndarray:
        """The runs' scores of cells (``find``), 0 where none."""
        return np.where(run >= 0, self.score[np.maximum(run, 0)] if len(self.cell) else 0.0, 0.0)

    def _beyond(self, record: int) -> str:
        if record >= 0:
            return f", more failing bins than {record} in any {self.max_bins} bins before"
        if record < -1:
            return f", {-1 - record} of them in hours of the day it never failed in before"
        return ""

    def note(self, i: int, span: str) -> str:
        return (
            f"a low-and-slow run: {int(self.failures[i])} failures over the last {int(self.bins[i])}"
            f" bins of {span}, {float(self.apis[i]):.1f} APIs a failing bin"
            + (f", {int(self.new_apis[i])} APIs it never failed on" if self.new_apis[i] else "")
            + self._beyond(int(self.record[i]))
            + f" (its history expected {float(self.expected[i]):.2g})"
        )


def find_runs(
    counts: np.ndarray,
    base,
    distinct_apis: np.ndarray,
    options,
    first_fail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Runs:
    """The low-and-slow runs of ``counts`` ``(bins, principals)`` ending in the cells
    ``base.long_run`` kept (``base``: their baselines, fitted with a ``LongRun`` whose ``watched``
    is, per principal, the first bin offset it has a history from, never for AWS service
    principals, and whose ``params`` are the rule's; ``options``: its min_failures, threshold,
    sensitivity and span). For the runs on new APIs (P24): ``first_fail``, principal, API and bin
    offset of each pair's first failure."""
    n_entities = counts.shape[1]
    empty = Runs(*(np.zeros(0, dtype=np.int64) for _ in range(8)), n_entities)
    if base.long_run is None:
        return empty
    params = base.long_run.params
    threshold, k_max = options.threshold, params.max_bins
    first = _first_failures(first_fail, n_entities)
    t_c, e_c = base.long_run.cells()
    keep = ~base.insufficient[t_c]
    t_c, e_c = t_c[keep], e_c[keep]
    if not len(t_c):
        return empty
    # The windows of RUN_BLOCK candidates at a time (their temporaries are a dozen floats a
    # candidate each: 800,000 candidates at once held ~500 MB); kept: those that reach the threshold.
    kept = []
    for lo in range(0, len(t_c), RUN_BLOCK):
        part = slice(lo, lo + RUN_BLOCK)
        scores, *sums = _windows(counts, base, distinct_apis, t_c[part], e_c[part], options, params, first)
        over = np.flatnonzero(scores.max(axis=1) >= threshold)
        kept.append((over + lo, scores[over], *(column[over] for column in sums)))
    idx = np.concatenate([k[0] for k in kept])
    if not len(idx):
        return empty
    joined = (np.concatenate([k[j] for k in kept]) for j in range(1, 8))
    scores, sum_x, sum_m, failing, apis, new, record = joined
    t_c, e_c = t_c[idx], e_c[idx]
    # A run's failures are reported once: the windows of a later bin start after the principal's
    # last flagged bin (the window after an attack still holds the attack's failures).
    order = np.lexsort((t_c, e_c))
    flag = np.zeros(len(t_c), dtype=bool)
    best = np.zeros(len(t_c), dtype=np.int64)
    last_flag: dict[int, int] = {}
    for i in order.tolist():
        e, t = int(e_c[i]), int(t_c[i])
        row = scores[i, : max(min(t - last_flag.get(e, -k_max), k_max), 0)]
        if len(row) and row.max() >= threshold:
            flag[i], best[i], last_flag[e] = True, int(np.argmax(row)), t
    score = scores[np.arange(len(t_c)), best]
    pick = np.flatnonzero(flag)
    cell = t_c[pick] * n_entities + e_c[pick]
    order = np.argsort(cell)
    pick, ib = pick[order], best[pick[order]]
    return Runs(
        cell[order],
        score[pick],
        sum_x[pick, ib],
        ib + 1,
        sum_m[pick, ib],
        apis[pick, ib] / failing[pick, ib],
        new[pick, ib],
        record[pick, ib],
        n_entities,
        k_max,
    )


RUN_BLOCK = 1 << 15  # candidate cells whose windows are judged at once


def _windows(counts, base, distinct_apis, t_c, e_c, options, params: RunParams, first):
    """Per candidate cell ``(t_c, e_c)`` and run length (1 .. ``max_bins``): the run's score (0 where
    a gate fails), failures, what its history expected, failing bins, distinct APIs summed, the
    APIs failed on for the first time (``first``: ``_first_failures``) and the principal's record
    where the run is beyond it (P27; else -1)."""
    min_failures, k_max = options.min_failures, params.max_bins
    # The windows ending at each candidate: lags 0 .. k_max-1 (before the first bin: nothing).
    lags = np.arange(k_max)
    rows = t_c[:, None] - lags[None, :]
    inside = rows >= 0
    rows = np.maximum(rows, 0)
    x = np.where(inside, counts[rows, e_c[:, None]], 0.0)
    # What the history expected of the run: its first bin's long-run expectation, for each of its
    # bins (the long run itself rises with the run: a weekend's level is a few dozen bins).
    start = np.maximum(base.long_run.at(t_c, e_c)[:, :k_max], params.min_expected)
    sum_x, sum_m = np.cumsum(x, axis=1), start * (lags + 1)
    failing = np.cumsum(x > 0, axis=1)
    apis = np.cumsum(np.where(inside & (x > 0), distinct_apis[rows, e_c[:, None]], 0.0), axis=1)
    new, new_bins = new_in_run(first, rows, e_c, inside, counts.shape[1])
    watched = ((t_c - base.long_run.watched[e_c]) * options.span)[:, None]
    # P30: a run whose failures are mostly first touches of APIs walks them (no retried command)
    walks = (new >= params.walk_new_apis) & (new >= params.walk_share * sum_x)
    settled = (watched >= params.new_apis_after) | (walks & (watched >= params.walk_after))
    # P51: fewer new APIs where the run holds several times min_failures
    heavy = (new >= params.heavy_new_apis) & (sum_x >= params.heavy_factor * min_failures)
    novel = ((new >= params.min_new_apis) | heavy) & (new_bins >= params.min_new_bins) & settled
    # P27: beyond the principal's own record of failing bins, on an API it never failed on.
    record, usual = base.long_run.record_at(t_c, e_c)
    record = record[:, None]
    unusual = np.cumsum(inside & (x > 0) & ~usual[:, :k_max], axis=1)
    by_record = failing >= params.record_factor * np.maximum(record, 1)
    by_hours = unusual >= params.unusual_share * failing
    beyond = (by_record | by_hours) & settled
    beyond &= (new >= params.record_new_apis) & (failing >= params.record_min_bins)
    # P30: no stuck retry (one API at a steady cadence)
    beyond &= (new >= params.walk_new_apis) | (apis >= params.walk_apis * failing) | ~_steady(x, params)
    ok = inside & ((failing >= params.min_bins) | beyond) & (sum_x >= min_failures)
    ok &= (sum_m <= params.near_silent * (lags + 1)) & (
        novel | beyond | (apis >= params.min_apis * np.maximum(failing, 1))
    )
    largest = np.maximum.accumulate(x, axis=1)
    ok &= (largest <= params.max_share * sum_x) & (largest <= params.max_bin_factor * min_failures)
    # The principal's own dispersion: its variance over its expected in the bin (at least Poisson).
    d = np.maximum(base.variance[t_c, e_c] / np.maximum(base.expected[t_c, e_c], 1e-6), 1.0)
    which = np.nonzero(ok)
    surprise = np.full(ok.shape, -np.inf)
    if len(which[0]):
        mean = sum_m[which]
        surprise[which] = score_counts(
            sum_x[which],
            mean,
            mean
            * np.where(walks[which], 1.0, d[which[0]])
            * np.where((novel | beyond)[which], 1.0, np.sqrt(which[1] + 1)),
            np.ones(len(mean)),
            options.sensitivity,
            ScoreParams(),
            with_upper=False,
            silent=np.zeros(len(mean), dtype=bool),
        ).surprise
    scores = to_score(np.maximum(surprise, 0.0) * options.sensitivity, ScoreParams())
    why = np.where(beyond & by_record, record, np.where(beyond, -1 - unusual, -1))
    return scores, sum_x, sum_m, failing, apis, new, why


def _steady(x: np.ndarray, params: RunParams) -> np.ndarray:
    """Per candidate and run length (``x``: counts by lag, the current bin first): whether the
    run's failing bins after its current one and before its earliest (a retry loop's first and
    last hours are cut short) differ by at most ``steady_spread``."""
    lags = np.arange(x.shape[1])
    earliest = np.maximum.accumulate(np.where(x > 0, lags, -1), axis=1)  # per length: its first failing lag
    inner = x[:, 1:]
    if not inner.shape[1]:
        return np.ones(x.shape, dtype=bool)
    most = np.maximum.accumulate(inner, axis=1)
    least = np.minimum.accumulate(np.where(inner > 0, inner, np.inf), axis=1)
    spread = np.where(np.isfinite(least), most - least, 0.0)
    at = np.clip(earliest - 2, 0, inner.shape[1] - 1)  # the inner bins: lags 1 .. earliest - 1
    return (earliest < 2) | (np.take_along_axis(spread, at, axis=1) <= params.steady_spread)


def _first_failures(first_fail, n_entities: int) -> np.ndarray:
    """The cells (bin offset x principals + principal) of each pair's first failure, sorted."""
    if first_fail is None:
        return np.zeros(0, dtype=np.int64)
    principal, _api, when = first_fail
    return np.sort(np.asarray(when, dtype=np.int64) * n_entities + np.asarray(principal, dtype=np.int64))


def new_in_run(
    first: np.ndarray, rows: np.ndarray, e_c: np.ndarray, inside: np.ndarray, n_entities: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(candidates, lags)``: how many APIs the candidate's principal fails on for the first time
    in the run's bins, and in how many of them (``rows``: each lag's bin offset; ``first``:
    ``_first_failures``)."""
    wanted = rows.astype(np.int64) * n_entities + e_c[:, None]
    per_bin = np.searchsorted(first, wanted, side="right") - np.searchsorted(first, wanted, side="left")
    per_bin = np.where(inside, per_bin, 0)
    return np.cumsum(per_bin, axis=1), np.cumsum(per_bin > 0, axis=1)
