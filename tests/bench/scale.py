"""Scale of the ``iamspike`` scoring: 50,000 principals x 720 hourly bins (30 days).

    python tests/bench/scale.py [--principals 50000] [--bins 720] [--end-to-end]

A synthetic organisation (seeded): most principals fail rarely (sparse), some steadily with an
office-hours profile, a few are noisy automation, some run a daily batch, and a few hundred get an
injected burst over many APIs. Each measurement runs in a fresh child process so its peak RSS
(``ru_maxrss``) is its own:

- ``scoring``: what ``Detector.results()`` does once the counts are binned — principal baselines
  (``fit_baselines`` on the ``(bins, principals)`` matrix), account sums and their baselines,
  scoring every bin with at least ``min_failures`` failures, upper bounds for the flagged ones;
- ``end-to-end`` (optional): the same organisation as Input B rows (``count_field``) through
  ``Detector.add_rows`` + ``results()`` (only non-zero bins are rows).

Target (issue 3): < 10 s and < 1.5 GB RSS for the scoring. Writes ``docs/bench/scale.md``.
A benchmark, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(REPO, "bin")
START = 1_788_739_200  # 2026-09-07T00:00:00Z
SPAN = 3600
ACCOUNTS = 50


def synthesize(n_principals: int, n_bins: int, seed: int = 7):
    """Counts and distinct-API matrices, ``(bins, principals)`` float32, and each principal's account."""
    import numpy as np

    rng = np.random.default_rng(seed)
    hours = (np.arange(n_bins) % 24).astype(np.float32)
    office = np.where((hours >= 8) & (hours < 18), 1.6, 0.4).astype(np.float32)
    counts = np.zeros((n_bins, n_principals), dtype=np.float32)
    kind = rng.choice(4, size=n_principals, p=[0.70, 0.22, 0.05, 0.03])
    block = 5000
    for lo in range(0, n_principals, block):
        hi = min(lo + block, n_principals)
        k = kind[lo:hi]
        rate = np.where(k == 0, rng.gamma(0.3, 0.05, hi - lo), 0.0)
        rate = np.where(k == 1, rng.gamma(2.0, 0.8, hi - lo), rate)
        rate = np.where(k == 2, rng.gamma(4.0, 10.0, hi - lo), rate).astype(np.float32)
        lam = rate[None, :] * np.where(k == 1, 1.0, 0.0)[None, :] * office[:, None]
        lam += rate[None, :] * np.where(k == 1, 0.0, 1.0)[None, :]
        counts[:, lo:hi] = rng.poisson(lam).astype(np.float32)
        batch = np.flatnonzero(k == 3) + lo
        counts[2::24, batch] += rng.poisson(30, (len(counts[2::24]), len(batch)))
    breadth = np.minimum(counts, rng.integers(1, 4, size=counts.shape).astype(np.float32))
    victims = rng.choice(n_principals, size=max(1, n_principals // 200), replace=False)
    when = rng.integers(n_bins // 3, n_bins, size=len(victims))
    counts[when, victims] += rng.integers(30, 300, size=len(victims))
    breadth[when, victims] = rng.integers(10, 60, size=len(victims))
    account = rng.integers(0, ACCOUNTS, size=n_principals)
    return counts, breadth, account


def score(counts, breadth, account, min_failures: int = 5) -> dict:
    """The math of ``Detector.results()`` on binned matrices; returns counts of flagged bins."""
    import numpy as np
    from iamspike import bins
    from iamspike.baseline import BaselineParams, fit_baselines
    from iamspike.scoring import ScoreParams, score_counts, upper_bound

    params = BaselineParams()
    flagged = {}
    acc_counts = bins.sum_by_group(counts, account, ACCOUNTS)
    acc_breadth = bins.sum_by_group(breadth, account, ACCOUNTS)
    acc_spread = bins.sum_by_group((counts > 0).astype(np.float32), account, ACCOUNTS)
    spread_base = fit_baselines(acc_spread, START, SPAN, None, params)  # accounts' failing principals
    for name, matrix, width, groups in (
        ("principal", counts, breadth, account),
        ("account", acc_counts, acc_breadth, None),
    ):
        base = fit_baselines(matrix, START, SPAN, groups, params, width)
        t_idx, e_idx = np.nonzero(matrix >= min_failures)
        scored = score_counts(
            matrix[t_idx, e_idx],
            base.expected[t_idx, e_idx],
            base.variance[t_idx, e_idx],
            width[t_idx, e_idx],
            with_upper=False,
            silent=base.silent[t_idx, e_idx],
            typical_apis=base.typical_apis[t_idx, e_idx],
        )
        score = scored.score
        if name == "account":  # the higher of the failures and the failing-principals scores
            spread = score_counts(
                acc_spread[t_idx, e_idx],
                spread_base.expected[t_idx, e_idx],
                spread_base.variance[t_idx, e_idx],
                np.ones(len(t_idx)),
                with_upper=False,
                silent=spread_base.silent[t_idx, e_idx],
            )
            score = np.maximum(score, spread.score)
        pick = np.flatnonzero(score >= 50.0)
        upper_bound(
            scored.expected[pick], base.variance[t_idx[pick], e_idx[pick]], ScoreParams().threshold_surprise
        )
        flagged[name] = len(pick)
        flagged[name + "_candidates"] = len(t_idx)
        del base
    return flagged


def child(mode: str, n_principals: int, n_bins: int) -> dict:
    sys.path.insert(0, BIN)
    import numpy as np

    counts, breadth, account = synthesize(n_principals, n_bins)
    nonzero = int(np.count_nonzero(counts))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu = time.perf_counter(), time.process_time()
    if mode == "scoring":
        result = score(counts, breadth, account)
    else:
        from iamspike.engine import Detector, parse_options

        t_idx, e_idx = np.nonzero(counts)
        values = counts[t_idx, e_idx]
        rows = [
            [
                str(START + SPAN * int(t)),
                f"acct{account[e]}",
                f"arn:aws:iam::1:user/u{e}",
                "",
                str(int(v)),
            ]
            for t, e, v in zip(t_idx.tolist(), e_idx.tolist(), values.tolist())
        ]
        del counts, breadth, t_idx, e_idx, values
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started, cpu = time.perf_counter(), time.process_time()
        detector = Detector(parse_options(["count_field=count"]))
        header = ["_time", "account", "principal", "eventName", "count"]
        for lo in range(0, len(rows), 50_000):
            detector.add_rows(header, rows[lo : lo + 50_000])
        out = detector.results()
        result = {"rows": len(rows), "flagged": len(out)}
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "mode": mode,
        "principals": n_principals,
        "bins": n_bins,
        "nonzero_bins": nonzero,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(peak / 1024.0),
        "rss_before_mb": round(rss_before / 1024.0),
        **result,
    }


def render(results: list[dict], command: str) -> str:
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Scale bench: iamspike scoring",
        "",
        f"Run {today} on {platform.node() or 'this machine'} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy in the dev venv), shared with other jobs.",
        "",
        f"Command: `{command}`",
        "",
        "Target (issue 3): 50,000 principals x 720 hourly bins scored in < 10 s and < 1.5 GB RSS.",
        "",
        "| measurement | principals | bins | non-zero bins | wall s | CPU s | peak RSS (MB) "
        "| RSS before (MB) | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        extra = {
            k: v
            for k, v in r.items()
            if k
            not in (
                "mode",
                "principals",
                "bins",
                "nonzero_bins",
                "seconds",
                "cpu_seconds",
                "peak_rss_mb",
                "rss_before_mb",
            )
        }
        lines.append(
            f"| {r['mode']} | {r['principals']:,} | {r['bins']} | {r['nonzero_bins']:,} | {r['seconds']} "
            f"| {r['cpu_seconds']} "
            f"| {r['peak_rss_mb']} | {r['rss_before_mb']} | {json.dumps(extra)} |"
        )
    lines += [
        "",
        "- `scoring`: principal and account baselines (`fit_baselines`), scores of every bin with at",
        "  least `min_failures` failures, upper bounds of the flagged ones; the matrices are built before",
        "  the clock starts (`RSS before` is the process after synthesis; peak includes it).",
        "- `end-to-end`: the same counts as Input B rows (`count_field=count`, one row per non-zero bin)",
        "  through `Detector.add_rows` in 50,000-row chunks and `results()`.",
        "- Wall time includes waiting for the CPU on a shared machine; CPU time is the process's own.",
        "- The baseline recursion is vectorized across entities (one pass over the bins); explanations",
        "  are built only for output rows.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--principals", type=int, default=50_000)
    parser.add_argument("--bins", type=int, default=720)
    parser.add_argument("--end-to-end", action="store_true", help="also Input B rows through the Detector")
    parser.add_argument("--output", default=os.path.join(REPO, "docs", "bench", "scale.md"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.principals, args.bins)))
        return 0
    results = []
    modes = ["scoring"] + (["end-to-end"] if args.end_to_end else [])
    for mode in modes:
        out = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--child",
                mode,
                "--principals",
                str(args.principals),
                "--bins",
                str(args.bins),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(result))
        results.append(result)
    command = "python tests/bench/scale.py" + " ".join([""] + (argv if argv is not None else sys.argv[1:]))
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(render(results, command.strip()))
    print(f"wrote {os.path.relpath(args.output, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
