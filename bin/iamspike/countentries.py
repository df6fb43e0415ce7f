"""Count rows' entries texts, kept compressed on the search head until a row's entries are read.

A count row's entries (:mod:`iamspike.counttext`: one per distinct event source, API, error code,
source IP and user agent) are not read at intake: :class:`~iamspike.countrows.CountRows` reads
the row's summary and hands its entries text here. :class:`EntryBlocks` keeps the texts of about
:data:`BLOCK_ROWS` rows in one zlib block (level 1: about a tenth of the text), and gives a
row's text back (:meth:`EntryBlocks.texts`) only for the rows read entry by entry (cells moved
into the Tally by ``resolve``) or explained (a flagged cell's top fields).

A text is a *region*: a ``v3`` row's own entries, or a ``v6`` row's parts' entries joined by
``;`` (each part's first entry at ``entry_at`` in the region, the region's first part at 0; -1:
the region is the row's own; ``entry_at`` empty: every row's region is its own).
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterable, Iterator

import numpy as np

BLOCK_ROWS = 20_000  # rows whose entries are compressed together


class EntryBlocks:
    """The entries regions of rows ``0 .. n``, in zlib blocks of about ``block_rows`` rows."""

    def __init__(self, block_rows: int = BLOCK_ROWS) -> None:
        self.block_rows = block_rows
        self.blocks: list[bytes] = []  # zlib of "\n".join(regions) of about block_rows rows
        self.starts = array("q", [0])  # first row of each block, then the end
        self.pending: list[str] = []  # regions not yet in a block

    def add(self, region: str, rows: int) -> None:
        """One region; ``rows`` the rows held once its rows are added."""
        self.pending.append(region)
        if rows - self.starts[-1] >= self.block_rows:
            self.flush(rows)

    def extend(self, regions: list[str], rows: int) -> None:
        """Several regions (:meth:`add`)."""
        self.pending.extend(regions)
        if rows - self.starts[-1] >= self.block_rows:
            self.flush(rows)

    def flush(self, rows: int) -> None:
        """The pending regions (of the rows up to ``rows``) compressed into one block."""
        if self.pending:
            joined = "\n".join(self.pending).encode("utf-8", "surrogatepass")
            self.blocks.append(zlib.compress(joined, 1))
            self.starts.append(rows)
            self.pending.clear()

    def taken(self, rows: int) -> tuple[list[bytes], bytes]:
        """The blocks and their starts, as :meth:`add_taken` adds them (``rows`` the rows held)."""
        self.flush(rows)
        return self.blocks, self.starts.tobytes()

    def add_taken(self, blocks: list[bytes], starts: bytes, base: int) -> None:
        """Blocks :meth:`taken` gave, their rows numbered from ``base`` (the rows held here)."""
        self.flush(base)
        self.blocks.extend(blocks)
        self.starts.extend(base + end for end in array("q", starts)[1:])

    def texts(self, rows: Iterable[int], entry_at: array, held: int) -> Iterator[tuple[int, str]]:
        """(row, its entries text: what follows the digests) for the rows asked, in ascending
        row order, each once; one block decompressed at a time (only its texts are held).
        ``entry_at`` each row's first entry in its region (:class:`~iamspike.countrows.CountRows`
        holds it; empty: every row's region is its own), ``held`` the rows held."""
        self.flush(held)
        wanted = np.unique(np.fromiter(rows, dtype=np.int64))
        if not len(wanted):
            return
        starts = np.frombuffer(self.starts, dtype=np.int64)
        block_of = np.searchsorted(starts, wanted, side="right") - 1
        entry_at = np.frombuffer(entry_at, dtype=np.int32) if len(entry_at) else None
        for b in np.unique(block_of).tolist():
            regions = zlib.decompress(self.blocks[b]).decode("utf-8", "surrogatepass").split("\n")
            base, end = int(starts[b]), int(starts[b + 1])
            if entry_at is None:
                for r in wanted[block_of == b].tolist():
                    yield r, regions[r - base]
                continue
            at = entry_at[base:end].tolist()
            region_of = np.cumsum(entry_at[base:end] <= 0).tolist()
            split: dict[int, list[str]] = {}  # a shared region's entries
            for r in wanted[block_of == b].tolist():
                i = r - base
                region = region_of[i] - 1
                if at[i] < 0:
                    yield r, regions[region]
                    continue
                entries = split.get(region)
                if entries is None:
                    entries = split[region] = regions[region].split(";")
                stop = at[i + 1] if i + 1 < len(at) and at[i + 1] > 0 else len(entries)
                yield r, ";".join(entries[at[i] : stop])
