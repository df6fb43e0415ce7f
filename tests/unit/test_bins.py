"""Durations, spans and zero-filled matrices."""

from __future__ import annotations

import numpy as np
import pytest
from iamspike.bins import (
    bin_start,
    cell_index,
    dense_counts,
    parse_duration,
    parse_span,
    sorted_counts,
    sorted_unique,
    stable_order,
    sum_by_group,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("30m", 1800),
        ("5min", 300),
        ("1d", 86400),
        ("3600", 3600),
        ("2hr", 7200),
        ("1w", 604800),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "-1h", "0.5s", "abc"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["1m", "2d", "90s", "61m30s"])
def test_parse_span_bounds(text: str) -> None:
    with pytest.raises(ValueError):
        parse_span(text)


def test_bin_start() -> None:
    assert bin_start(1693082112.9, 3600) == 1693080000
    assert bin_start(1693080000, 3600) == 1693080000


def test_dense_counts_sums_repeats_and_zero_fills() -> None:
    m = dense_counts(np.array([0, 2, 2]), np.array([1, 0, 0]), np.array([3.0, 1.0, 4.0]), 4, 2)
    assert m.tolist() == [[0, 3], [0, 0], [5, 0], [0, 0]]


def test_sum_by_group() -> None:
    m = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    assert sum_by_group(m, np.array([1, 0, 1]), 3).tolist() == [[2, 4, 0], [5, 10, 0]]


@pytest.mark.parametrize("size", [0, 1, 2, 50, 5000])
def test_sorted_unique_is_numpys_unique(size) -> None:
    rng = np.random.default_rng(size)
    for values in (rng.integers(-20, 20, size), rng.integers(0, 2**62, size), np.repeat(7, size)):
        got, want = sorted_unique(values.astype(np.int64)), np.unique(values.astype(np.int64))
        assert got.dtype == want.dtype and got.tolist() == want.tolist()


def test_cell_index_finds_each_wanted_cell_or_minus_one() -> None:
    cells = np.array([1 * 3 + 0, 1 * 3 + 2, 4 * 3 + 1])  # (bin, entity): (1, 0), (1, 2), (4, 1)
    got = cell_index(cells, np.array([1, 1, 4, 0, 5]), np.array([2, 1, 1, 0, 2]), 3)
    assert got.tolist() == [1, -1, 2, -1, -1]
    assert cell_index(cells[:0], np.array([1]), np.array([0]), 3).tolist() == [-1]


@pytest.mark.parametrize("seed", range(6))
def test_stable_order_is_a_stable_argsort(seed) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, [5, 1000, 2**40, 2**62, 3, 2**20][seed], 5000).astype(np.int64)
    assert np.array_equal(stable_order(values), np.argsort(values, kind="stable"))
    assert np.array_equal(stable_order(values[:0]), np.zeros(0, dtype=np.int64))
    small = (values % 2**20).astype(np.int32)  # packed in an int64 all the same
    assert np.array_equal(stable_order(small), np.argsort(small, kind="stable"))


@pytest.mark.parametrize("values", [[], [3], [1, 1, 1], [0, 2, 2, 5, 9, 9, 9, 2**40]])
def test_sorted_counts_are_uniques(values) -> None:
    array = np.array(values, dtype=np.int64)
    unique, counts = sorted_counts(array)
    expected = np.unique(array, return_counts=True)
    assert np.array_equal(unique, expected[0]) and np.array_equal(counts, expected[1])
