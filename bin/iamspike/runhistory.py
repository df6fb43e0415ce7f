"""What a low-and-slow run is judged against (rules P22, P24, P27): the rule's parameters and
``LongRun``, what the baseline fit keeps of each principal's history where a run can end (its
long-run expectation, its record of failing bins, the hours of the day it failed in). ``runs``
judges the runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RunParams:
    """The tuned numbers of the low-and-slow runs (``runs.py``; docs/rules.md P22, P24, P27, P30, P51).

    A *run* is a principal's current bin and the bins before it, its failures judged against what
    its history expected of them. Each field says what it is, its unit, the rule it belongs to and
    why it has this value (the measurements are in docs/rules.md under the rule). Units: *bins*
    are bins of ``span`` (hours at the default), *seconds* are seconds, a *share* is of the run's
    failures or failing bins, *failures a bin* and *APIs a bin* are per bin of the run. A
    principal is *watched* from 3 days after its first failure (``results.NOVELTY_HISTORY``);
    ``new_apis_after`` and ``walk_after`` count from there.
    """

    # P22. The longest run looked at, in bins: the current bin and up to 11 before it (the bench's
    # runs last 3-10 hours).
    max_bins: int = 12
    # P22. Failing bins a run needs (bins): 3 flagged a person's bad morning (14 denials in 3 hours).
    min_bins: int = 4
    # P22. The least a bin's history is taken to expect (failures a bin): a history of zeros is no
    # certainty; what the run's first bin expects, raised to this, times its bins is its mean.
    min_expected: float = 0.05
    # P22. The most the history may expect of a run (failures a bin, on average over the run): the
    # rule is for near-silent principals; busier ones are the single-bin rules' (not swept alone:
    # P22's table).
    near_silent: float = 0.25
    # P22. The least distinct APIs a failing bin holds on average (APIs a bin): one command retried
    # for hours is a stuck script or a person; stolen keys try many APIs (with 2, people's retries
    # on 2 APIs were among P22's +18 false alerts).
    min_apis: float = 2.5
    # P22. The most of a run's failures one bin may hold (share): above it the run is a burst, which
    # the single-bin rules judge.
    max_share: float = 0.5
    # P22. No bin of a run above this times ``min_failures`` (a factor): such a bin is judged on its
    # own with the onset hold-down (a new stream of 11 an hour from silence is what it is for).
    max_bin_factor: float = 2.0
    # P24. APIs the principal never failed on that pass a run through the API gate (APIs): at 4
    # its bins are also not taken to move together (variance d x mean); 2 and 3 flagged more of
    # people's hours (25 and 20 false alerts against 19, seed 1).
    min_new_apis: int = 4
    # P24 (and P27's week). Seconds past being watched before a run on new APIs counts: a person's
    # first weeks fail on APIs for the first time as they work (4 days past the 3: a week).
    new_apis_after: int = 4 * 86400
    # P27. The new APIs of P24 must fail in at least this many of the run's bins (bins): one hour of
    # 4 new APIs, then one of them, is a person trying a service (make demo's sybil.lee8).
    min_new_bins: int = 2
    # P27. A run beyond the principal's own record (the most failing bins it had in any ``max_bins``
    # bins before, at least 1) by this factor passes the API gate (a factor): a daily app role
    # failing in 3 hours of one day.
    record_factor: float = 3.0
    # P27. ... or this share of its failing bins in hours of the day (UTC) the principal never failed
    # in before (share): the same role failing at night.
    unusual_share: float = 0.75
    # P27. Either way on at least this many APIs the principal never failed on (APIs): a command it
    # retries is on an API it failed on before.
    record_new_apis: int = 1
    # P27. ... from this many failing bins (bins; P22's ``min_bins`` is 4): the 3-hour runs.
    record_min_bins: int = 3
    # P30. P27 takes a run that walks APIs: at least this many APIs it never failed on (APIs) ...
    walk_new_apis: int = 2
    # P30. ... or this many distinct APIs a failing bin on average (APIs a bin); one API retried all
    # along is a stuck command (a deploy's new call denied, retried for hours).
    walk_apis: float = 1.5
    # P30. A run whose new APIs are at least this share of its failures (and ``walk_new_apis``) is
    # judged as a Poisson count (d = 1): its failures are first touches, not the principal's usual
    # retries and bad days (share).
    walk_share: float = 0.5
    # P30. Such a run counts from this many seconds past being watched (6 days of watching in all,
    # not P24's week).
    walk_after: int = 3 * 86400
    # P30. ... or its hours are no steady cadence: its failing bins between its first and its last
    # differ by more than this (failures a bin): a retry loop's hours hold the same count, its first
    # and last hours cut short; a person's or an intruder's do not.
    steady_spread: float = 1.0
    # P51. P24's gate also takes a run on this many APIs the principal never failed on (APIs; P24's
    # ``min_new_apis`` is 4) where it holds at least ``heavy_factor`` x ``min_failures`` failures (a
    # factor): 19 denials over 6 hours on 3 new APIs, 2 a failing bin; at 3 new APIs alone P24's
    # table measured more of people's hours (20 false alerts against 19, seed 1).
    heavy_new_apis: int = 3
    heavy_factor: float = 3.0


class LongRun:
    """``Baseline.long_run``: the long-run expectation (level and seasonal, no recent view) of the
    ``max_bins`` bins up to each cell a run can end in, kept only for those cells: a failing bin of
    a silent principal from its ``since`` bin on (per principal, the first bin a run is judged), with
    ``min_bins`` failing bins among them and one that expected at most ``near_silent`` (else no
    run ends there). The fit gives it each bin in turn (``add``); it holds the last ``max_bins``
    bins meanwhile. A dense matrix was the size of ``expected`` (137 MB for 50,000 x 720 bins).

    ``watched``: per principal, the bin offset from which it has a history (P24 counts its week
    from there); ``since`` is that, not before the output's first bin ``out_from``. ``record``
    (P27), per kept cell: the most failing bins the principal had in any ``max_bins`` bins that
    end before the longest run ending in the cell starts; ``usual`` (P27), per kept cell and bin of
    its longest run, whether the principal failed before in that hour of the day (``hour_of_day``
    per bin offset; without it every hour is usual)."""

    def __init__(
        self,
        watched: np.ndarray,
        out_from: int = 0,
        params: RunParams | None = None,
        hour_of_day: np.ndarray | None = None,
    ) -> None:
        self.params = params = params or RunParams()
        self.watched = np.asarray(watched, dtype=np.int64)
        self.since = np.maximum(self.watched, out_from)
        self.ring = np.zeros((params.max_bins, len(self.since)), dtype=np.float32)
        self.failed = np.zeros((params.max_bins, len(self.since)), dtype=bool)
        self.failing = np.zeros(len(self.since), dtype=np.int64)  # failing bins among the last max_bins
        self.was_failing = np.zeros((params.max_bins, len(self.since)), dtype=np.int16)  # ... per bin
        self.most = np.zeros(len(self.since), dtype=np.int64)  # the record up to max_bins bins ago
        self.least_bins = min(params.min_bins, params.record_min_bins)
        self.hour_of_day = hour_of_day
        self.seen = np.zeros((len(self.since), 24), dtype=bool)  # hours it failed in, max_bins bins ago
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.cell = np.zeros(0, dtype=np.int64)  # t * principals + e, in bin order
        # per cell: the long-run expectation of bins t, t-1, ... t-max_bins+1 (0 before bin 0)
        self.values = np.zeros((0, params.max_bins), dtype=np.float32)
        self.record = np.zeros(0, dtype=np.int64)
        self.usual = np.zeros((0, params.max_bins), dtype=bool)

    def add(self, t: int, counts: np.ndarray, long_run: np.ndarray, silent: np.ndarray) -> None:
        """Bin ``t``: its counts, long-run expectation and silence, per principal."""
        k_max = self.params.max_bins
        slot = t % k_max
        now = counts > 0
        np.maximum(self.most, self.was_failing[slot], out=self.most)  # the window ending max_bins ago
        if self.hour_of_day is not None and t >= k_max:
            self.seen[self.failed[slot], self.hour_of_day[t - k_max]] = True
        self.failing += now.astype(np.int64) - self.failed[slot]
        self.failed[slot], self.ring[slot], self.was_failing[slot] = now, long_run, self.failing
        e = np.flatnonzero(now & silent & (self.since <= t) & (self.failing >= self.least_bins))
        if len(e):
            values = self.ring[((t - np.arange(k_max)) % k_max)[:, None], e[None, :]].T
            quiet = (values <= self.params.near_silent).any(axis=1)
            e = e[quiet]
            if self.hour_of_day is None:
                usual = np.ones((len(e), k_max), dtype=bool)
            else:
                usual = self.seen[e][:, self.hour_of_day[np.maximum(t - np.arange(k_max), 0)]]
            self.parts.append((t * len(self.since) + e, values[quiet], self.most[e], usual))

    def done(self) -> LongRun:
        """After the last bin: the cells kept as arrays (the ring goes)."""
        if self.parts:
            self.cell, self.values, self.record, self.usual = (
                np.concatenate([part[j] for part in self.parts]) for j in range(4)
            )
        self.parts, self.ring, self.failed, self.was_failing, self.seen = (
            [],
            self.ring[:0],
            self.failed[:0],
            None,
            None,
        )
        return self

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """The cells kept (bin offset, principal), in bin order."""
        n = max(len(self.since), 1)
        return self.cell // n, self.cell % n

    def at(self, t_c: np.ndarray, e_c: np.ndarray) -> np.ndarray:
        """``(cells, max_bins)``: per kept cell, the long-run expectation of its bin and the ones before."""
        return self.values[np.searchsorted(self.cell, t_c * len(self.since) + e_c)]

    def record_at(self, t_c: np.ndarray, e_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per kept cell, its principal's record (P27): the most failing bins in any ``max_bins``
        bins that end before the cell's longest run starts, and ``usual`` (its run's hours)."""
        at = np.searchsorted(self.cell, t_c * len(self.since) + e_c)
        return self.record[at], self.usual[at]
