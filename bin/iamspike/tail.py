"""A steady stream's own record (P21, issue 12): a relative spike judged against the principal's past.

A steady denied automation at a few times its hourly rate scores 35-48 against the global
threshold, while its other hours never score above about 31: the hour's noise and the shaped
rate's tracking error hold the score down for everyone alike. Against its OWN history the spike
stands out. A machine principal (not a person) whose stream has failed in every one of the
``run_bins`` bins before this one, whose count is at least ``factor`` times its expectation and
outside its usual bursts, is flagged (scored at the threshold) when its tail score reaches
``floor`` and beats the highest tail score of all its earlier bins by ``margin``.

The tail score is the engine's own tests on the bin, without the people's inputs: the long-run
score (``score_counts``) and the current-rate score (``rate_score``). It is computed from the
count matrix and the baseline alone, so raw events, count rows and an alert run that restores
the kept history from its state rows (a principal's non-zero bins) see the same past.

False alerts: a new record among N earlier hours happens by chance about 1/N per hour; a margin
of 8 score units is about a decade of ``p`` at scores 35-45, so a record that clears it is rarer
still (about 1/(10 N)), and only steady machine streams (a week without a silent hour) are eligible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iamspike.baseline import current_rate
from iamspike.scoring import ScoreParams, rate_score, score_counts


@dataclass(frozen=True)
class TailParams:
    floor: float = 35.0  # the bin's own tail score at least this
    margin: float = 8.0  # ... and this much above every earlier bin's tail score
    factor: float = 2.0  # count at least this times its expectation (at least 1)
    run_bins: int = 168  # failing in every one of this many bins before (a week of hours)


def tail_scores(counts, base, t_idx, e_idx, half_life_bins, sensitivity=1.0, rate=None) -> np.ndarray:
    """The tail score of cells ``(t_idx, e_idx)``: the higher of the long-run and current-rate scores
    (``rate``: the cells' current rates, when the caller has them)."""
    observed = counts[t_idx, e_idx].astype(np.float64)
    expected = base.expected[t_idx, e_idx]
    silent = base.silent[t_idx, e_idx]
    long_run = score_counts(
        observed,
        expected,
        base.variance[t_idx, e_idx],
        np.ones(len(t_idx)),
        sensitivity,
        ScoreParams(),
        with_upper=False,
        silent=silent,
    ).score
    if rate is None:
        cols, local = np.unique(e_idx, return_inverse=True)  # the rate reads only these columns
        rate = current_rate(counts[:, cols], t_idx, local.reshape(-1), half_life_bins)
    by_rate = rate_score(
        observed,
        expected,
        rate,
        silent,
        sensitivity,
        dispersion=base.local_dispersion[t_idx, e_idx],
        shaped=base.shaped_rate[t_idx, e_idx],
    )
    return np.maximum(long_run, by_rate)


def own_record(
    counts,
    base,
    t_idx,
    e_idx,
    machine,
    half_life_bins,
    sensitivity=1.0,
    params: TailParams | None = None,
    rate: np.ndarray | None = None,
) -> np.ndarray:
    """Per cell: True where the bin is a steady machine stream's new record by the margin
    (``rate``: the cells' current rates, ``baseline.current_rate``, when the caller has them)."""
    p = params or TailParams()
    t_idx = np.asarray(t_idx, dtype=np.int64)
    e_idx = np.asarray(e_idx, dtype=np.int64)
    out = np.zeros(len(t_idx), dtype=bool)
    observed = counts[t_idx, e_idx]
    cand = machine[e_idx] & (t_idx >= p.run_bins)
    cand &= observed >= p.factor * np.maximum(base.expected[t_idx, e_idx], 1.0)
    cand &= base.burst_size[t_idx, e_idx] <= 0
    idx = np.flatnonzero(cand)
    if not len(idx):
        return out
    # A steady stream: a failure in every one of the run_bins bins before.
    running = counts[t_idx[idx, None] - np.arange(1, p.run_bins + 1)[None, :], e_idx[idx, None]] > 0
    idx = idx[running.all(axis=1)]
    if not len(idx):
        return out
    now = tail_scores(
        counts, base, t_idx[idx], e_idx[idx], half_life_bins, sensitivity, None if rate is None else rate[idx]
    )
    idx, now = idx[now >= p.floor], now[now >= p.floor]
    if not len(idx):
        return out
    # Every earlier bin's tail score of these principals, and its running maximum.
    cols = np.unique(e_idx[idx])
    tt, jj = np.nonzero(counts[:, cols] > 0)
    past = np.zeros((counts.shape[0], len(cols)))
    past[tt, jj] = tail_scores(counts, base, tt, cols[jj], half_life_bins, sensitivity)
    record = np.maximum.accumulate(past, axis=0)
    out[idx] = now >= record[t_idx[idx] - 1, np.searchsorted(cols, e_idx[idx])] + p.margin
    return out


def record_note(failures: int) -> str:
    """The reason's note for a flagged record."""
    return f"{failures} is far above every earlier bin of this steady stream (its own record)"
