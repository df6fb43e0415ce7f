"""Low-and-slow runs on near-silent principals (rule P22).

An attacker who keeps below ``min_failures`` an hour for hours on a quiet principal (3-5 denials
an hour for 8 hours) leaves no bin to flag; after four bins the recent view of the baseline lifts
the expected to the stream itself. A *run* is judged on its own: over the current bin and up to
``max_bins - 1`` bins before it, the sum of the principal's failures against the sum of what its
history expected in those bins (``Baseline.long_run``: level and seasonal, never the recent view
that the run lifts), under a negative binomial with the principal's own dispersion.

Only for principals that are silent in the bin (their history holds less than one failure a bin,
at most ``near_silent`` over the run), watched long enough to have a history (``since``: new
principals have their own rules), not AWS service principals (their streams are held down as
onsets), and only for runs of at least ``min_bins`` failing bins and ``min_failures`` failures
(``min_failures`` keeps its meaning for a single bin; a run must hold as many), at most
``max_share`` of them in one bin (a burst) and no bin above ``max_rate`` x ``min_failures`` (such a
bin is judged on its own, held down as an onset), on ``min_apis`` distinct APIs a failing bin (one
command retried for hours is a stuck script), or on ``min_new_apis`` APIs it fails on for the first
time (rule P24: 10 denials over 5 hours, 2 a bin, on 4 APIs the principal never failed on, once
it has been watched a week). The
variance of a run's sum is ``d`` x its mean x sqrt(bins) (a person's hours of a bad day move
together), or ``d`` x its mean for a run on new APIs (no bad day of its usual work). A run is
flagged in the bin where its evidence first crosses the threshold; the windows of later bins
start after it (reported once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iamspike.scoring import ScoreParams, score_counts, to_score


@dataclass(frozen=True)
class RunParams:
    max_bins: int = 12  # the longest run looked at, in bins
    min_bins: int = 4  # failing bins a run needs: a run is hours, not a burst
    floor: float = 0.05  # the least a bin's history expects (a history of zeros is not certainty)
    near_silent: float = 0.25  # the most a run's history may expect a bin on average
    min_apis: float = 2.5  # the least mean distinct APIs of its failing bins: no retried command
    max_share: float = 0.5  # the most of a run's failures one bin may hold: else it is a burst
    max_rate: float = 2.0  # no bin above this times min_failures: such a bin is judged on its own
    # P24: a run on at least ``min_new_apis`` APIs the principal never failed on before is no bad day
    # of its usual work: its bins are not taken to move together (variance ``d`` x mean, no sqrt(bins))
    min_new_apis: int = 4
    # ... on a principal watched a week (``since`` is 3 days of it): a person's first weeks fail on
    # APIs for the first time as they work
    new_apis_after: int = 4 * 86400  # seconds past ``since``


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

    n_entities: int = 1

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

    def note(self, i: int, span: str) -> str:
        return (
            f"a low-and-slow run: {int(self.failures[i])} failures over the last {int(self.bins[i])}"
            f" bins of {span}, {float(self.apis[i]):.1f} APIs a failing bin"
            + (f", {int(self.new_apis[i])} APIs it never failed on" if self.new_apis[i] else "")
            + f" (its history expected {float(self.expected[i]):.2g})"
        )


def find_runs(
    counts: np.ndarray,
    base,
    distinct_apis: np.ndarray,
    since: np.ndarray,
    out_from: int,
    options,
    params: RunParams | None = None,
    first_fail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Runs:
    """The low-and-slow runs of ``counts`` ``(bins, principals)`` from bin ``out_from`` on
    (``base``: their baselines; ``since``: per principal, the first bin offset it is judged from:
    watched long enough to have a history, never for AWS service principals; ``options``: its
    min_failures, threshold and sensitivity; ``first_fail``: principal, API and bin offset of each
    pair's first failure, for the runs on new APIs)."""
    params = params or RunParams()
    min_failures, threshold, sensitivity = options.min_failures, options.threshold, options.sensitivity
    k_max = params.max_bins
    n_entities = counts.shape[1]
    t_c, e_c = np.nonzero(counts[out_from:] > 0)
    t_c = t_c + out_from
    keep = base.silent[t_c, e_c] & (t_c >= since[e_c]) & ~base.insufficient[t_c]
    t_c, e_c = t_c[keep], e_c[keep]
    empty = Runs(*(np.zeros(0, dtype=np.int64) for _ in range(7)), n_entities)
    if not len(t_c):
        return empty
    # The windows ending at each candidate: lags 0 .. k_max-1 (before the first bin: nothing).
    lags = np.arange(k_max)
    rows = t_c[:, None] - lags[None, :]
    inside = rows >= 0
    rows = np.maximum(rows, 0)
    x = np.where(inside, counts[rows, e_c[:, None]], 0.0)
    # What the history expected of the run: its first bin's long-run expectation, for each of its
    # bins (the long run itself rises with the run: a weekend's level is a few dozen bins).
    start = np.maximum(base.long_run[rows, e_c[:, None]], params.floor)
    sum_x, sum_m = np.cumsum(x, axis=1), start * (lags + 1)
    failing = np.cumsum(x > 0, axis=1)
    apis = np.cumsum(np.where(inside & (x > 0), distinct_apis[rows, e_c[:, None]], 0.0), axis=1)
    new = np.zeros(x.shape, dtype=np.int64)
    if first_fail is not None:
        new = new_in_run(first_fail, rows, e_c, inside, n_entities)
    settled = (t_c - since[e_c]) * options.span >= params.new_apis_after
    novel = (new >= params.min_new_apis) & settled[:, None]
    ok = inside & (failing >= params.min_bins) & (sum_x >= min_failures)
    ok &= (sum_m <= params.near_silent * (lags + 1)) & (
        novel | (apis >= params.min_apis * np.maximum(failing, 1))
    )
    largest = np.maximum.accumulate(x, axis=1)
    ok &= (largest <= params.max_share * sum_x) & (largest <= params.max_rate * min_failures)
    # The principal's own dispersion: its variance over its expected in the bin (at least Poisson).
    d = np.maximum(base.variance[t_c, e_c] / np.maximum(base.expected[t_c, e_c], 1e-6), 1.0)
    which = np.nonzero(ok)
    if not len(which[0]):
        return empty
    mean = sum_m[which]
    scored = score_counts(
        sum_x[which],
        mean,
        mean * d[which[0]] * np.where(novel[which], 1.0, np.sqrt(which[1] + 1)),
        np.ones(len(mean)),
        sensitivity,
        ScoreParams(),
        with_upper=False,
        silent=np.zeros(len(mean), dtype=bool),
    )
    surprise = np.full(ok.shape, -np.inf)
    surprise[which] = scored.surprise
    scores = to_score(np.maximum(surprise, 0.0) * sensitivity, ScoreParams())
    # A run's failures are reported once: the windows of a later bin start after the principal's
    # last flagged bin (the window after an attack still holds the attack's failures).
    order = np.lexsort((t_c, e_c))
    flag = np.zeros(len(t_c), dtype=bool)
    best = np.zeros(len(t_c), dtype=np.int64)
    last_flag: dict[int, int] = {}
    over = scores.max(axis=1) >= threshold
    for i in order[over[order]].tolist():
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
        n_entities,
    )


def new_in_run(
    first_fail: tuple[np.ndarray, np.ndarray, np.ndarray],
    rows: np.ndarray,
    e_c: np.ndarray,
    inside: np.ndarray,
    n_entities: int,
) -> np.ndarray:
    """``(candidates, lags)``: how many APIs the candidate's principal fails on for the first time
    in the run's bins (``rows``: each lag's bin offset; ``first_fail``: principal, API, bin offset)."""
    principal, _api, when = first_fail
    cells = np.sort(when.astype(np.int64) * n_entities + principal)
    wanted = rows.astype(np.int64) * n_entities + e_c[:, None]
    per_bin = np.searchsorted(cells, wanted, side="right") - np.searchsorted(cells, wanted, side="left")
    return np.cumsum(np.where(inside, per_bin, 0), axis=1)
