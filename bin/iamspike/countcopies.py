"""Re-sent copies among count rows: an event two indexers counted, or one indexer counted again
after an early send, is in two rows of one (bin, account, principal) cell with the same eventID
digest. :meth:`CountRows.resolve <iamspike.countrows.CountRows.resolve>` asks here which cells
hold such copies (:func:`shared_digests`: their rows are then read entry by entry into the
Tally, whose ``drop_duplicates`` drops the copies), or, for ``show=state``, takes each copy off
the failures of its cell's first row (:func:`take_copies`). Arrays in, arrays out: the rows'
cells (one int64 a row), their digest counts and their digests end to end.
"""

from __future__ import annotations

import numpy as np

from iamspike.bins import sorted_counts, stable_order

TABLE_BITS = 1 << 24  # the most bits of the table that narrows the search for shared digests


def repeated(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of cells that came in more than one row; the rows by cell then row (a stable
    order) and their cells in that order."""
    order = stable_order(cell)
    ordered = cell[order]
    out = np.zeros(len(cell), dtype=bool)
    same = ordered[1:] == ordered[:-1]
    out[order[1:][same]] = True
    out[order[:-1][same]] = True
    return out, order, ordered


def digests_of(rows: np.ndarray, n_digests: np.ndarray, digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The digests of the rows marked in ``rows`` (a copy), and the row of each."""
    row_of = np.repeat(np.arange(len(rows), dtype=np.int32), n_digests)
    mine = rows[row_of]
    return digests[mine], row_of[mine]


def take_copies(cell: np.ndarray, n_digests: np.ndarray, digests: np.ndarray, failures) -> np.ndarray:
    """Each digest's copies after the first in a cell taken off ``failures`` (per row, changed in
    place) of the cell's first row; no cell to move (the empty array)."""
    rows, order, ordered = repeated(cell)
    none = np.zeros(0, dtype=np.int64)
    if not rows.any():
        return none
    digests, row_of = digests_of(rows, n_digests, digests)
    where = cell[row_of]
    maybe = maybe_shared(where, digests)  # a sort of 64-bit values, not a lexsort of pairs
    where, digests = where[maybe], digests[maybe]
    del maybe, row_of
    pairs = np.lexsort((digests, where))
    where, digests = where[pairs], digests[pairs]
    del pairs
    copy = np.zeros(len(where), dtype=bool)
    copy[1:] = (where[1:] == where[:-1]) & (digests[1:] == digests[:-1])
    if not copy.any():
        return none
    cells, copies = sorted_counts(where[copy])
    first_rows = order[np.searchsorted(ordered, cells)]  # by cell, then row: each cell's first
    for r, n in zip(first_rows.tolist(), copies.tolist()):
        failures[r] -= n
    return none


def shared_digests(cell: np.ndarray, n_digests: np.ndarray, digests: np.ndarray) -> np.ndarray:
    """Cells with more than one row whose rows share a digest."""
    rows = repeated(cell)[0]
    if not rows.any():
        return np.zeros(0, dtype=np.int64)
    digests, row_of = digests_of(rows, n_digests, digests)
    # A cell read entry by entry for nothing (a collision of the mixed values) costs time,
    # never the answer.
    return np.unique(cell[row_of[maybe_shared(cell[row_of], digests)]])


def maybe_shared(where: np.ndarray, digests: np.ndarray) -> np.ndarray:
    """Which (cell, digest) pairs may occur more than once: one 64-bit value per pair (the digest
    mixed with its cell), equal for a digest two rows of a cell share and for few others; found
    by one sort of those values (a ``lexsort`` of the pairs took 7 s for 20 M digests)."""
    mixed = where.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    mixed ^= digests
    shared = np.sort(mixed)
    shared = shared[1:][shared[1:] == shared[:-1]]
    if not len(shared):
        return np.zeros(len(mixed), dtype=bool)
    # A table of bits first: the binary search then runs only where a bit is set (it took 2.7 s
    # for 20 M digests searched whole). At least 16 bits a shared value (so at most 1/16 of the
    # others go on to the search), at most TABLE_BITS: a table that fits in the cache costs a third
    # of a larger one's look-ups. The indexes are int64 views: numpy indexes by uint64 at about
    # half the speed (it converts them first).
    bits = min(max((16 * len(shared)).bit_length(), 16), TABLE_BITS.bit_length() - 1)
    low = np.uint64((1 << bits) - 1)
    table = np.zeros(1 << bits, dtype=bool)
    table[(shared & low).view(np.int64)] = True
    maybe = np.flatnonzero(table[(mixed & low).view(np.int64)])
    at = np.minimum(np.searchsorted(shared, mixed[maybe]), len(shared) - 1)
    out = np.zeros(len(mixed), dtype=bool)
    out[maybe[shared[at] == mixed[maybe]]] = True
    return out
