"""Spreads on a service rare for the account (iamspike.rare, rule P29): the rates' recursion, its
continuation from saved sums, and the cells it scores."""

from __future__ import annotations

import numpy as np
import pytest
from iamspike import rare
from iamspike.state import sources_bytes

SPAN = 3600
DAY = 24
FIRST = 496_872  # a bin: 2026-09-07T00:00Z


def cells(rows):
    """(bin offset, account, source id, actors) arrays from (offset, account, source, actors)."""
    return tuple(np.array([r[i] for r in rows], dtype=np.int64) for i in range(4))


def history(rng: np.random.Generator, n_bins: int):
    """Two accounts over ``n_bins``: account 0 fails on sources 0 and 1 most office hours, account
    1 on source 1 now and then; one cell per (bin, account, source)."""
    out = []
    for t in range(n_bins):
        if 9 <= t % DAY < 17:
            out += [(t, 0, s, int(rng.integers(1, 4))) for s in (0, 1) if rng.random() < 0.7]
        if rng.random() < 0.05:
            out.append((t, 1, 1, 1))
    return out


def start(n_accounts, since, at=None, sums=None, busy=None):
    since = np.full(n_accounts, since, dtype=np.int64)
    return (
        since,
        since.copy() if at is None else np.full(n_accounts, at, dtype=np.int64),
        sums or {},
        busy or {},
    )


def saved(histories):
    """``rare.starts``'s saved sums from ``rare.run``'s histories, through the row's text digits."""
    return {
        (a, name): (float(f"{level:.7g}"), tuple(float(f"{h:.7g}") for h in hours))
        for a, h in histories.items()
        for name, (level, hours) in h.sums.items()
    }


@pytest.mark.parametrize("gap", [0, 5])
def test_a_run_continued_from_saved_sums_scores_as_one_pass(gap: int) -> None:
    """Ten days, then an eleventh with spreads (4 actors on account 1's rare source 1, 4 on
    source 2, new to both): one pass over the eleven days, and a run over the eleventh continuing
    the sums a run over the first ten saved (after ``gap`` bins without failures), score the same
    cells within the saved sums' 7 digits; so do the sums after both."""
    rng = np.random.default_rng(3)
    names = ["ec2.amazonaws.com", "kms.amazonaws.com", "glue.amazonaws.com"]
    early = history(rng, 10 * DAY)
    late = [(t + 10 * DAY + gap, a, s, k) for t, a, s, k in history(rng, DAY) if not (a == 1 and t == 14)]
    late += [(10 * DAY + gap + 14, 1, 1, 4), (10 * DAY + gap + 15, 0, 2, 4)]
    n_bins = 11 * DAY + gap
    failing = np.zeros((n_bins, 2))
    for t, a, _, k in early + late:
        failing[t, a] += k
    found, after = rare.run(cells(early + late), names, start(2, FIRST), FIRST, n_bins, SPAN, 168.0, failing)
    strong = [name for name, x in zip(found.source, found.surprise) if x > 1.5]
    assert sorted(strong) == ["glue.amazonaws.com", "kms.amazonaws.com"]

    _, before = rare.run(cells(early), names, start(2, FIRST), FIRST, 10 * DAY, SPAN, 168.0)
    assert sorted(before[0].sums) == names[:2] and list(before[1].sums) == [names[1]]
    live = FIRST + 10 * DAY + gap
    resumed = start(2, FIRST, FIRST + 10 * DAY, saved(before))
    shifted = [(t - 10 * DAY - gap, a, s, k) for t, a, s, k in late]
    found2, after2 = rare.run(
        cells(shifted), names, resumed, live, DAY, SPAN, 168.0, failing[10 * DAY + gap :]
    )
    last_day = found.cell >= (10 * DAY + gap) * 2  # cells: bin offset * 2 accounts + account
    assert (found2.cell + (10 * DAY + gap) * 2 == found.cell[last_day]).all()
    assert found2.source == [name for name, x in zip(found.source, last_day) if x]
    assert (found2.actors == found.actors[last_day]).all()
    np.testing.assert_allclose(found2.surprise, found.surprise[last_day], rtol=1e-6)
    for a in (0, 1):
        assert after2[a].since == after[a].since == FIRST * SPAN
        for name, (level, hours) in after[a].sums.items():
            np.testing.assert_allclose(after2[a].sums[name][0], level, rtol=1e-6)
            np.testing.assert_allclose(after2[a].sums[name][1], hours, rtol=1e-6, atol=1e-12)


def test_the_usual_source_a_share_below_half_and_the_first_day_are_not_scored() -> None:
    """Account 0's usual sources (actors most office hours) are no rare source (their surprise
    below P26's ``min_surprise``, 1.5); 3 actors on a new
    source where 7 fail in all are no spread of it; nothing scores in the account's first day."""
    rng = np.random.default_rng(4)
    base = history(rng, 10 * DAY)
    t = 10 * DAY + 11
    n_bins = 11 * DAY
    failing = np.zeros((n_bins, 2))
    for b, a, _, k in base:
        failing[b, a] += k
    for extra, fail_total, scored in (
        ((t, 0, 0, 4), 4, False),
        ((t, 0, 2, 3), 7, False),
        ((t, 0, 2, 3), 3, True),
    ):
        rows = [r for r in base if not (r[0] == t and r[1] == 0)] + [extra]
        f = failing.copy()
        f[t, 0] = fail_total
        found, _ = rare.run(
            cells(rows), ["ec2", "kms", "glue"], start(2, FIRST), FIRST, n_bins, SPAN, 168.0, f
        )
        assert (t * 2 in found.cell[found.surprise > 1.5].tolist()) == scored
    early = [(5, 0, 2, 5)]
    f = np.zeros((DAY, 2))
    f[5, 0] = 5
    found, _ = rare.run(cells(early), ["ec2", "kms", "glue"], start(2, FIRST), FIRST, DAY, SPAN, 168.0, f)
    assert len(found.cell) == 0


def test_a_row_keeps_its_rarest_sources_and_the_busier_ones_as_one_floor() -> None:
    """Source i failed in every bin 0..24+i (every hour of the day non-zero): ``rare.run`` gives
    every source's sums; where they do not all fit (here 4,000 bytes of ``sources``), a row keeps
    the sources with the lowest level sums as they are while they fit beside the busier ones'
    sums, the highest of each (the busiest's), and their digests. Read back, a busy source starts
    from that floor (judged no rarer than it was), an unlisted one from nothing (the prior); with
    too many to list, every source not kept starts from the floor."""
    n = 30
    rows = [(t, 0, s, 1) for s in range(n) for t in range(DAY + s)]
    names = [f"s{i:02d}" for i in range(n)]
    _, after = rare.run(cells(rows), names, start(1, FIRST), FIRST, 2 * DAY, SPAN, 168.0)
    assert sorted(after[0].sums) == names and after[0].busy is None
    assert rare.kept(after[0], lambda h: True) == after[0]  # room for all: every source as it is
    history = rare.kept(after[0], lambda h: sources_bytes(h) <= 4_000)
    kept = len(history.sums)
    assert 5 < kept < n and sorted(history.sums) == names[:kept]
    assert 4_000 - 300 < sources_bytes(history) <= 4_000  # a source here: ~230 characters
    assert history.busy_ids == {rare.digest(name) for name in names[kept:]}
    floor = history.busy[0]
    assert floor > max(level for level, _ in history.sums.values())

    saved = {(0, name): value for name, value in history.sums.items()} | {(0, rare.BUSY): history.busy}
    end, d = FIRST + 2 * DAY, 2 ** (-1 / 168)
    live = cells([(0, 0, 0, 1), (0, 0, 1, 1)])  # one actor on s29 (busy), one on a source never seen
    resumed = start(1, FIRST, end, saved, {0: history.busy_ids})
    _, again = rare.run(live, ["s29", "new"], resumed, end, 1, SPAN, 168.0)
    assert again[0].sums["new"][0] == pytest.approx(d)
    assert again[0].sums["s29"][0] == pytest.approx((floor + 1) * d)  # from the floor, as its own
    assert again[0].busy[0] == pytest.approx(floor * d)
    row = rare.kept(again[0], lambda h: sources_bytes(h) <= 4_000)
    assert "new" in row.sums and "s29" not in row.sums and row.busy[0] == pytest.approx((floor + 1) * d)
    resumed = start(1, FIRST, end, saved, {0: None})
    _, again = rare.run(live, ["s29", "new"], resumed, end, 1, SPAN, 168.0)
    assert again[0].sums["new"][0] == pytest.approx((floor + 1) * d)  # unlisted: busy, the floor
    row = rare.kept(again[0], lambda h: sources_bytes(h) <= 4_000)
    assert row.busy_ids is None and row.busy[0] == pytest.approx((floor + 1) * d)
