"""Scale of the ``iamspike`` scoring: 50,000 principals x 720 hourly bins (30 days).

    python tests/bench/scale.py [--principals 50000] [--bins 720] [--end-to-end]

A synthetic organisation (seeded): most principals fail rarely (sparse), some steadily with an
office-hours profile, a few are noisy automation, some run a daily batch, and a few hundred get an
injected burst over many APIs. Each measurement runs in a fresh child process so its peak RSS
(``ru_maxrss``) is its own:

- ``scoring``: what ``Detector.results()`` does once the counts are binned — principal baselines
  (``fit_baselines`` on the ``(bins, principals)`` matrix) with rule P22's low-and-slow runs
  (``runhistory.LongRun``, ``find_runs``), account sums and their baselines, scoring every bin with at
  least ``min_failures`` failures, upper bounds for the flagged ones;
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
    from iamspike.options import Options
    from iamspike.runhistory import LongRun
    from iamspike.runs import find_runs
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
        long_run = None
        if name == "principal":  # low-and-slow runs (P22) once a principal is watched 3 days
            watched = np.where((matrix > 0).any(axis=0), np.argmax(matrix > 0, axis=0), len(matrix))
            long_run = LongRun(watched + 3 * 86400 // SPAN)
        base = fit_baselines(matrix, START, SPAN, groups, params, width, name == "principal", long_run)
        if long_run is not None:
            flagged["principal_runs"] = len(find_runs(matrix, base, width, Options()).cell)
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
    elif mode == "state":
        result = state_size(counts, breadth)
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


# ------------------------------------------------------------------ the distributed alert run
CHUNK_ROWS = 50_000
FIELD_LIMIT = 1 << 31  # a busy principal's count row carries a digest per event: fields of MBs
RAW_RECORD_BYTES = 1500  # a CloudTrail record's _raw, which the raw path carried with every event


def peak_hour(n_accounts: int, n_principals: int, n_events: int, n_partitions: int, seed: int = 11):
    """Failed calls of one peak hour dealt to indexers: a few principals (automation) make most of
    them (Pareto weights), 1% of the events are re-sent to a second indexer. Yields per partition
    its splunkd chunk bodies (the fields macro's columns with their ``__mv_`` twins; ``_raw``
    stays on the indexer and is not generated)."""
    import csv
    import io

    import numpy as np

    sys.path.insert(0, BIN)
    from iamspike.cloudtrail import FIELDS as FIELDS_ORDER  # the fields macro's columns

    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.1, n_principals) + 0.02
    who = rng.choice(n_principals, size=n_events, p=weights / weights.sum())
    when = START + rng.integers(0, SPAN, size=n_events)
    api = (who * 7 + rng.integers(0, 6, size=n_events)) % 300
    where = rng.integers(0, n_partitions, size=n_events)
    resent = np.flatnonzero(rng.random(n_events) < 0.01)
    from scale_backfill import Org

    org = Org(n_accounts, n_principals)
    columns = [org.columns(p) for p in range(n_principals)]
    header = list(FIELDS_ORDER) + ["__mv_" + name for name in FIELDS_ORDER]
    blanks = [""] * len(FIELDS_ORDER)
    for part in range(n_partitions):
        mine = np.concatenate(
            [np.flatnonzero(where == part), resent[(where[resent] + 1) % n_partitions == part]]
        )
        bodies = []
        for lo in range(0, len(mine), CHUNK_ROWS):
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(header)
            for n in mine[lo : lo + CHUNK_ROWS].tolist():
                p = int(who[n])
                row = [
                    str(int(when[n])),
                    f"{n:032x}",
                    f"Api{int(api[n])}",
                    "iam.amazonaws.com",
                    "AccessDenied",
                    "",
                ]
                writer.writerow(row + columns[p] + blanks)
            bodies.append(buffer.getvalue().encode())
        yield bodies


def _respool(bodies: list[bytes]) -> list[bytes]:
    """Rows the indexers returned, re-encoded as splunkd sends them on (every field with its
    ``__mv_`` twin), in chunks of CHUNK_ROWS."""
    import csv
    import io

    csv.field_size_limit(FIELD_LIMIT)
    rows, fields = [], {}
    for body in bodies:
        reader = csv.DictReader(io.StringIO(body.decode()))
        for row in reader:
            rows.append(row)
            fields.update(dict.fromkeys(name for name in row if not name.startswith("__mv_")))
    names = list(fields)
    chunks = []
    for lo in range(0, len(rows), CHUNK_ROWS):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names + ["__mv_" + name for name in names])
        blanks = [""] * len(names)
        for row in rows[lo : lo + CHUNK_ROWS]:
            writer.writerow([row.get(name, "") for name in names] + blanks)
        chunks.append(buffer.getvalue().encode())
    return chunks or [b""]


def _with_state(chunks: list[bytes], state_rows: list[dict]) -> tuple[list[bytes], int, int]:
    """The alert's state macro (``iam_error_spike_baseline``) as splunkd runs it: the count rows
    pass unchanged, then ``appendpipe`` appends one row per account (``stats values(...) by
    account_state_key``) whose ``iamspike_state`` holds the states of its distinct keys found (each
    count row's ``state_key`` or ``v5`` ``state_keys``, and the account's own key): multivalue,
    newline-joined with its ``__mv_`` twin, as splunkd sends it. Returns the chunks and the state
    values and bytes read (each state once)."""
    import csv
    import io

    csv.field_size_limit(FIELD_LIMIT)
    table = {row["state_key"]: row["iamspike_state"] for row in state_rows}
    accounts: dict[str, dict[str, None]] = {}
    for body in chunks:
        reader = csv.reader(io.StringIO(body.decode()))
        header = next(reader, [])
        at = {name: i for i, name in enumerate(header)}
        if "account_state_key" not in at:
            continue
        for row in reader:
            account = row[at["account_state_key"]]
            if not account:
                continue
            keys = accounts.setdefault(account, {})
            packed = row[at["state_keys"]] if "state_keys" in at else ""
            single = row[at["state_key"]] if "state_key" in at else ""
            keys.update(dict.fromkeys((packed or single).split()))
    values = size = 0
    appended = []
    for account, keys in accounts.items():
        found = [table[key] for key in [*sorted(keys), account] if key in table]
        if found:
            values += len(found)
            size += sum(map(len, found))
            twin = "$" + "$;$".join(text.replace("$", "$$") for text in found) + "$"
            appended.append(["\n".join(found), twin if len(found) > 1 else ""])
    out = list(chunks)
    for lo in range(0, len(appended), CHUNK_ROWS):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["iamspike_state", "__mv_iamspike_state"])
        writer.writerows(appended[lo : lo + CHUNK_ROWS])
        out.append(buffer.getvalue().encode())
    return out, values, size


def distributed(
    command: list[str], n_accounts: int, n_principals: int, n_events: int, n_partitions: int
) -> dict:
    """One alert run at peak: the map phase on each simulated indexer, the search head's reporting
    phase over their output (with and without the state lookup), the maintenance run's
    ``show=state``, and the old raw path (every failed event to the search head) side by side."""
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from standin import scpv2

    out: dict = {"accounts": n_accounts, "principals": n_principals, "events": n_events}
    parts = list(peak_hour(n_accounts, n_principals, n_events, n_partitions))
    out["raw_rows"] = sum(body.count(b"\n") - 1 for bodies in parts for body in bodies)
    out["raw_mb_fields"] = sum(len(body) for bodies in parts for body in bodies) / 1e6
    out["raw_mb_with_raw"] = out["raw_mb_fields"] + out["raw_rows"] * RAW_RECORD_BYTES / 1e6
    preop = scpv2.probe_getinfo(command, []).getinfo["streaming_preop"].split()[1:]
    maps, shipped = [], []
    for bodies in parts:
        session = scpv2.run(command, preop, bodies, decode=False, timeout=3600)
        assert session.returncode == 0 and not session.errors, session.stderr[-2000:]
        maps.append(session)
        shipped.extend(body for body in session.bodies if body)
    out["map_cpu_s_max"] = max(s.cpu_seconds for s in maps)
    out["map_cpu_s_sum"] = sum(s.cpu_seconds for s in maps)
    out["map_rss_mb_max"] = max(s.peak_rss_mb for s in maps)
    out["field_mb"] = field_breakdown(shipped)
    chunks = _respool(shipped)
    out["shipped_rows"] = sum(max(len(scpv2.decode_body(body)[1]), 0) for body in shipped)
    out["shipped_mb"] = sum(len(body) for body in shipped) / 1e6
    alert = scpv2.run(command, [], chunks, decode=False, timeout=3600)
    assert alert.returncode == 0 and not alert.errors, alert.stderr[-2000:]
    out["sh_cpu_s"], out["sh_rss_mb"] = alert.cpu_seconds, alert.peak_rss_mb
    state = scpv2.run(command, ["show=state"], chunks, timeout=3600)
    assert state.returncode == 0 and not state.errors, state.stderr[-2000:]
    out["state_rows"] = len(state.rows)
    out["state_mb"] = sum(len(str(row.get("iamspike_state", ""))) for row in state.rows) / 1e6
    joined, read_rows, read_bytes = _with_state(chunks, state.rows)
    keyed = scpv2.run(command, [], joined, decode=False, timeout=3600)
    assert keyed.returncode == 0 and not keyed.errors, keyed.stderr[-2000:]
    out["sh_state_cpu_s"], out["sh_state_rss_mb"] = keyed.cpu_seconds, keyed.peak_rss_mb
    out["state_read_rows"], out["state_read_mb"] = read_rows, read_bytes / 1e6
    del chunks, joined, shipped
    raw = scpv2.run(command, [], [body for bodies in parts for body in bodies], decode=False, timeout=3600)
    assert raw.returncode == 0 and not raw.errors, raw.stderr[-2000:]
    out["raw_sh_cpu_s"], out["raw_sh_rss_mb"] = raw.cpu_seconds, raw.peak_rss_mb
    return {key: round(value, 2) if isinstance(value, float) else value for key, value in out.items()}


def field_breakdown(bodies: list[bytes]) -> dict:
    """MB of each field of the map phases' replies (CSV, as sent), the digests of
    ``iamspike_counts`` apart, and what CSV adds (commas, quotes, line ends)."""
    import csv
    import io

    csv.field_size_limit(FIELD_LIMIT)
    sizes: dict[str, int] = {}
    total = 0
    for body in bodies:
        total += len(body)
        reader = csv.reader(io.StringIO(body.decode()))
        header = next(reader, [])
        for row in reader:
            for name, value in zip(header, row):
                size = len(value.encode())
                if name == "iamspike_counts" and value.startswith("v3") and value[2:3] != "{":
                    summary = value.split(";", 5)  # v3<service>;failures;console;profile;digests;...
                    sizes["digests"] = sizes.get("digests", 0) + len(summary[4])
                    sizes["summary"] = sizes.get("summary", 0) + sum(len(part) + 1 for part in summary[:4])
                    size -= len(summary[4]) + sum(len(part) + 1 for part in summary[:4])
                sizes[name] = sizes.get(name, 0) + size
    sizes["csv"] = total - sum(sizes.values())
    return {name: round(size / 1e6, 1) for name, size in sizes.items()}


# Measured on the same peak hour with the v1 count text (JSON entries, hex digests), before the
# v2 text: MB per field of 163.2 MB (tests/bench/scale_backfill.py's synthesized hour).
V1_FIELD_MB = {
    "iamspike_counts": 65.9,
    "digests": 32.3,
    "state_key": 13.1,
    "account_state_key": 13.1,
    "principal": 16.6,
    "account": 4.9,
    "_time": 4.1,
    "failures": 0.4,
    "csv": 12.6,
}


def render_distributed(r: dict, partitions: int, command: str) -> list[str]:
    ratio = r["raw_rows"] / max(r["shipped_rows"], 1)
    return [
        "",
        "## One alert run at peak, on a distributed search",
        "",
        f"Command: `{command}`. {r['accounts']:,} accounts, {r['principals']:,} principals, "
        f"{r['events']:,} failed calls in the hour (Pareto activity: a few automation principals make most"
        f" of them; 1% re-sent to a second indexer), dealt to {partitions} simulated indexers. Each runs"
        " the command's `streaming_preop` (`iamspike phase=map ...`) over SCPv2 from the repository's"
        " bin/ (dev venv Python); the search head runs `iamspike` over their output.",
        "",
        "| path | rows to SH | MB to SH | SH CPU s | SH peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        f"| raw events (before) | {r['raw_rows']:,} | {r['raw_mb_with_raw']:,.0f} with `_raw`,"
        f" {r['raw_mb_fields']:,.0f} without | {r['raw_sh_cpu_s']} (without `_raw`)"
        f" | {r['raw_sh_rss_mb']:.0f} |",
        f"| map phase on the indexers, count rows | {r['shipped_rows']:,} | {r['shipped_mb']:,.1f} "
        f"| {r['sh_cpu_s']} | {r['sh_rss_mb']:.0f} |",
        f"| count rows + state of the active entities by key | {r['shipped_rows']:,} "
        f"| {r['shipped_mb'] + r['state_read_mb']:,.1f} | {r['sh_state_cpu_s']}"
        f" | {r['sh_state_rss_mb']:.0f} |",
        "",
        f"- Rows reaching the search head: 1/{ratio:.1f} of the raw failed-event rows.",
        "- MB per field of the count rows (`iamspike_counts` without its digests; `csv`: commas, quotes,"
        " line ends): "
        + ", ".join(f"{name} {mb}" for name, mb in r["field_mb"].items())
        + ". Before the v2 text (v1: JSON entries, 16 hex digits an event, CSV-quoted): "
        + ", ".join(f"{name} {mb}" for name, mb in V1_FIELD_MB.items())
        + " (163.2 MB in all).",
        f"- Each indexer's map phase: at most {r['map_cpu_s_max']} CPU s and"
        f" {r['map_rss_mb_max']:.0f} MB peak RSS ({r['map_cpu_s_sum']} CPU s over all {partitions});"
        " no numpy.",
        f"- State written by the maintenance run (`show=state` over the same hour): {r['state_rows']:,}"
        f" rows, {r['state_mb']:.1f} MB; read by the alert run: {r['state_read_rows']:,} state values,"
        f" {r['state_read_mb']:.1f} MB"
        " (one hour of history per entity here; a principal's 30-day row is the `state` measurement"
        " of the first table: its mean times the active principals is what an alert run reads at peak).",
        "- Memory and CPU are the command's own (CPU: user + system from `wait4`; RSS: `VmHWM`"
        " sampled every 20 ms).",
    ]


def state_size(counts, distinct_apis) -> dict:
    """Bytes of the 30-day state rows (``show=state``) of these principals: each principal's
    non-zero bins, their distinct APIs and (here) five first failures."""
    import numpy as np
    from iamspike import state

    sizes = []
    last = START + SPAN * (counts.shape[0] - 1)
    for p in range(counts.shape[1]):
        nonzero = np.flatnonzero(counts[:, p]).tolist()
        if not nonzero:
            continue
        bins = {START + SPAN * t: int(counts[t, p]) for t in nonzero}
        apis = {START + SPAN * t: int(distinct_apis[t, p]) for t in nonzero}
        firsts = {f"Api{n}": START + SPAN * nonzero[0] for n in range(5)}
        entry = state.StateEntry(
            SPAN, START, last, "100000000000", f"arn:aws:iam::100000000000:user/u{p}", bins, apis, firsts
        )
        sizes.append(sum(len(str(v)) for v in state.encode(entry).values()))
    return {
        "state_rows": len(sizes),
        "state_bytes_mean": round(float(np.mean(sizes))),
        "state_bytes_max": max(sizes),
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
        "- `scoring`: principal and account baselines (`fit_baselines`), P22's runs (`find_runs`),",
        "  scores of every bin with at least `min_failures` failures, upper bounds of the flagged ones;",
        "  the matrices are built before",
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
    parser.add_argument(
        "--distributed", action="store_true", help="also one alert run at peak over N indexers"
    )
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--peak-principals", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--indexers", type=int, default=8)
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="only the 30-day backfill over N indexers (replaces its section of the output)",
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sh-hours", type=int, default=12, help="hours the search head really runs over")
    parser.add_argument(
        "--raw-cpu-us-per-row", type=float, help="the raw path's search-head CPU per row (peak-hour run)"
    )
    parser.add_argument("--calibrate-indexers", type=int, default=2, help="indexers whose day 0 runs raw")
    parser.add_argument("--output", default=os.path.join(REPO, "docs", "bench", "scale.md"))
    parser.add_argument(
        "--capture", metavar="FILE", help="with --backfill: write the search head's chunks, do not run it"
    )
    parser.add_argument("--feed", metavar="FILE", help="drive show=state with a capture (scale_feed.py)")
    parser.add_argument("--package", help="with --feed: the built tgz (default: newest in package/dist)")
    parser.add_argument("--python", default="3.13", help="with --feed: the bare Python (3.9, 3.13)")
    parser.add_argument("--source", help="with --feed: run DIR/bin/iamspike_command.py with this Python")
    parser.add_argument("--runs", type=int, default=1, help="with --feed: runs one after the other")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.feed:
        if not os.path.isfile(args.feed):
            parser.error(f"--feed {args.feed}: no such capture (make one with --capture FILE)")
        import scale_feed

        return scale_feed.run(args)
    if args.capture:
        import scale_backfill

        argv_command = [sys.executable, os.path.join(BIN, "iamspike_command.py")]
        print(json.dumps(scale_backfill.backfill(argv_command, args, capture=args.capture)))
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.principals, args.bins)))
        return 0
    command = "python tests/bench/scale.py" + " ".join([""] + (argv if argv is not None else sys.argv[1:]))
    if args.backfill:
        return _backfill_section(args, command.strip())
    results = []
    modes = ["scoring", "state"] + (["end-to-end"] if args.end_to_end else [])
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
    text = render(results, command.strip())
    if args.distributed:
        argv_command = [sys.executable, os.path.join(BIN, "iamspike_command.py")]
        peak = distributed(argv_command, args.accounts, args.peak_principals, args.events, args.indexers)
        print(json.dumps(peak))
        text += "\n".join(render_distributed(peak, args.indexers, command.strip())) + "\n"
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"wrote {os.path.relpath(args.output, REPO)}")
    return 0


def _backfill_section(args, command: str) -> int:
    """Run the backfill and put its section in place of the old one (the rest stays)."""
    import scale_backfill

    argv_command = [sys.executable, os.path.join(BIN, "iamspike_command.py")]
    result = scale_backfill.backfill(argv_command, args)
    print(json.dumps(result))
    section = "\n".join(scale_backfill.render(result, command)) + "\n"
    text = ""
    if os.path.exists(args.output):
        with open(args.output, encoding="utf-8") as handle:
            text = handle.read()
    heading = section.strip().splitlines()[0]
    at = text.find(heading)
    if at >= 0:
        following = text.find("\n## ", at + len(heading))
        text = text[:at].rstrip("\n") + "\n" + section + (text[following:] if following >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n" + section
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"wrote {os.path.relpath(args.output, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
