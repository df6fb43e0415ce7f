"""The 30-day backfill bench (tests/bench/scale_backfill.py) synthesizes what the map phase sends.

Its search head reads synthesized count rows, not rows of the real map phase (30 days of raw
events would take hours to generate). Those rows must be the real map phase's: on one
indexer's raw day of a small organisation, the real ``streaming_preop`` (driven over SCPv2) and
the synthesis give the same rows, packed the same way (``v6``: the rows of 2026-12-07 were
``v4``, one per principal, about seven times as many)."""

from __future__ import annotations

import os
import sys
from argparse import Namespace

from bench import scale_backfill


def test_synthesized_rows_are_the_map_phase_s() -> None:
    command = [sys.executable, os.path.join(scale_backfill.BIN, "iamspike_command.py")]
    org = scale_backfill.Org(20, 2_000)
    args = Namespace(calibrate_indexers=1, events=20_000, indexers=8)
    out = scale_backfill.calibrate(command, org, args, seed=23)
    assert out["raw_rows"] > 20 * out["map_rows"] > 0
    assert out["synth_rows"] == out["map_rows"]
    assert abs(out["synth_mb"] - out["map_mb"]) <= 0.001 * out["map_mb"]
