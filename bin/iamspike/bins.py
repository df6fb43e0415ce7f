"""Time bins of ``span`` seconds: durations, bin starts and zero-filled count matrices (and the
sorted distinct cells of sparse ones: :func:`sorted_unique`).

Matrices are time-major, ``(bins, entities)``: row ``t`` is one bin across every entity, so the
baseline recursion reads contiguous memory. Silent bins are zeros (zero-filled).
"""

from __future__ import annotations

import numpy as np

from iamspike.durations import MAX_SPAN, MIN_SPAN, parse_duration, parse_span  # noqa: F401 (re-exported)


def bin_start(epoch: float, span: int) -> int:
    """Start (epoch seconds) of the bin holding ``epoch``."""
    return int(epoch // span) * span


def dense_counts(
    bin_index: np.ndarray, entity_index: np.ndarray, counts: np.ndarray, n_bins: int, n_entities: int
) -> np.ndarray:
    """Zero-filled ``(n_bins, n_entities)`` float32 matrix; repeated cells are summed."""
    matrix = np.zeros((n_bins, n_entities), dtype=np.float32)
    if len(counts):
        np.add.at(matrix, (np.asarray(bin_index), np.asarray(entity_index)), np.asarray(counts))
    return matrix


def sum_by_group(matrix: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Column sums of a ``(bins, entities)`` matrix per entity group -> ``(bins, n_groups)``."""
    out = np.zeros((matrix.shape[0], n_groups), dtype=matrix.dtype)
    if matrix.shape[1] == 0:
        return out
    order = np.argsort(group, kind="stable")
    sorted_group = np.asarray(group)[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    sums = np.add.reduceat(matrix[:, order], starts, axis=1)
    out[:, sorted_group[starts]] = sums
    return out


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` by one sort: numpy 2's default hashes instead, about 100 times slower
    on the tens of millions of int64 cells of a backfill (6.4 s against 0.04 s for 5 M)."""
    values = np.sort(values)
    if len(values) > 1:
        keep = np.empty(len(values), dtype=bool)
        keep[0] = True
        np.not_equal(values[1:], values[:-1], out=keep[1:])
        values = values[keep]
    return values


def sorted_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_counts=True)`` of values already sorted, without sorting them
    again (0.07-0.19 s for 3 M sorted int64 values, this 0.01)."""
    if not len(values):
        return values[:0], np.zeros(0, dtype=np.int64)
    head = np.empty(len(values), dtype=bool)
    head[0] = True
    np.not_equal(values[1:], values[:-1], out=head[1:])
    starts = np.flatnonzero(head)
    return values[starts], np.diff(np.append(starts, len(values)))


def stable_order(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` of whole numbers >= 0, by one sort of each value and
    its index packed in an int64 where they fit (numpy sorts int64 several times faster than it
    argsorts them)."""
    n = len(values)
    bits = max(n - 1, 1).bit_length()
    if not n or values.min() < 0 or int(values.max()) >= 1 << (63 - bits):
        return np.argsort(values, kind="stable")
    packed = values.astype(np.int64) << bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    packed &= (1 << bits) - 1
    return packed


def cell_index(cells: np.ndarray, t_idx: np.ndarray, e_idx: np.ndarray, n_entities: int) -> np.ndarray:
    """The index in ``cells`` (sorted, unique ``bin offset * n_entities + entity``) of each wanted
    cell (bin offset, entity), -1 where it is not there."""
    wanted = np.asarray(t_idx, dtype=np.int64) * n_entities + np.asarray(e_idx, dtype=np.int64)
    if not len(cells):
        return np.full(len(wanted), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(cells, wanted), len(cells) - 1)
    return np.where(cells[pos] == wanted, pos, -1)
