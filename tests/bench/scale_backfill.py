"""The 30-day backfill of the scale bench (``python tests/bench/scale.py --backfill``).

The organisation of the peak-hour run (1,000 accounts, 200,000 principals with Pareto activity,
8 indexers, 1% of events re-sent to a second indexer) over 30 days of hourly bins with a diurnal
volume: :func:`diurnal` (1.0 at 15:00 UTC on weekdays, 0.3 at night, weekends half). Each hour is
drawn as cells: events per (principal, indexer, API) (:func:`hour_cells`). From the cells:

- every hour's rows, entries and events to the search head are counted exactly (numpy), for the
  raw path (one row per failed event on its indexer) and the map phase (one count row per
  principal an indexer saw in the hour);
- the first ``--sh-hours`` hours are written as the count rows the map phase would send (the
  product's own encoders: each send's ``wire_rows`` packed by ``packed_rows`` into ``v6``) and
  fed to the search head's ``iamspike show=state`` as the shipped backfill search does; its CPU
  and peak RSS are measured and extrapolated to 30 days;
- day 0 is also written as raw events for ``--calibrate-indexers`` indexers and the real map
  phase is run over each: its count rows must equal the synthesized ones in number, and its bytes
  calibrate the synthesized bytes.

Generating every raw event of 30 days (about 0.7 billion) on a shared 2-core machine would take
hours, hence the synthesis; what is measured and what is extrapolated is said in the output.
Run alone (``python tests/bench/scale_backfill.py``), it prints the rows other count-row units
would send over the peak hour, a day and a week (:func:`row_units`, docs/engine.md section 7);
with ``--multi-bin-day`` the rows and MB of one day as ``v3`` and as ``v4`` (:func:`multi_bin_day`).
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(REPO, "bin")
sys.path.insert(0, BIN)
START = 1_788_739_200  # 2026-09-07T00:00:00Z, a Monday
SPAN = 3600
APIS_PER_PRINCIPAL = 6
RESENT = 0.01
CHUNK_ROWS = 50_000
COUNT_COLUMNS = [
    "_time",
    "account",
    "principal",
    "failures",
    "state_key",
    "account_state_key",
    "iamspike_counts",
]
PACKED_COLUMNS = [*COUNT_COLUMNS, "state_keys"]  # a packed row's principals' state keys


def diurnal(n_hours: int):
    """Volume of each hour relative to the peak hour (weekday 15:00 UTC = 1.0)."""
    import numpy as np

    hours = np.arange(n_hours)
    hour, day = hours % 24, (hours // 24) % 7
    factor = 0.3 + 0.7 * np.exp(-(((hour - 15) / 4.5) ** 2))
    return factor * np.where(day >= 5, 0.5, 1.0)


class Org:
    """The organisation: activity weights and the identity columns of each principal."""

    def __init__(self, n_accounts: int, n_principals: int, seed: int = 11) -> None:
        import numpy as np

        sys.path.insert(0, BIN)
        rng = np.random.default_rng(seed)
        weights = rng.pareto(1.1, n_principals) + 0.02
        self.p = weights / weights.sum()
        self.n_accounts, self.n_principals = n_accounts, n_principals
        self._columns: dict[int, list[str]] = {}

    def columns(self, p: int) -> list[str]:
        """recipientAccountId .. principalId of principal ``p`` (a third are assumed roles)."""
        found = self._columns.get(p)
        if found is None:
            account = f"{100000000000 + p % self.n_accounts}"
            ip, agent = f"10.{p // 65536 % 256}.{p // 256 % 256}.{p % 256}", f"aws-cli/2.{p % 7} bench"
            if p % 3 == 0:
                arn = f"arn:aws:sts::{account}:assumed-role/role{p}/session{p % 5}"
                issuer, kind = f"arn:aws:iam::{account}:role/role{p}", "AssumedRole"
            else:
                arn, issuer, kind = f"arn:aws:iam::{account}:user/user{p}", "", "IAMUser"
            found = [
                account,
                "us-east-1",
                ip,
                agent,
                kind,
                arn,
                account,
                f"AKIA{p:016d}",
                "",
                issuer,
                f"AID{p}",
                "",
            ]
            self._columns[p] = found
        return found

    def folded(self, p: int) -> str:
        """The folded principal (what the map phase names it)."""
        cols = self.columns(p)
        return cols[9] or cols[5]


def hour_cells(rng, org: Org, n_events: int, n_partitions: int):
    """One hour: the active principals, the events each indexer holds per (principal, indexer,
    API) counting re-sent copies, and the re-sent copies alone (taken from the previous indexer's
    cell of the same principal and API)."""
    import numpy as np

    per_principal = rng.multinomial(n_events, org.p)
    active = np.flatnonzero(per_principal)
    split = rng.multinomial(per_principal[active], [1.0 / n_partitions] * n_partitions)
    own = rng.multinomial(split, [1.0 / APIS_PER_PRINCIPAL] * APIS_PER_PRINCIPAL)
    resent = rng.binomial(own, RESENT)
    shipped = own + np.roll(resent, 1, axis=1)  # indexer k also holds copies from k-1
    return active, own, np.roll(resent, 1, axis=1), shipped


def hour_totals(shipped) -> tuple[int, int, int]:
    """(count rows, entries, events) an hour's cells send to the search head."""
    import numpy as np

    per_row = shipped.sum(axis=2)
    return int(np.count_nonzero(per_row)), int(np.count_nonzero(shipped)), int(per_row.sum())


def _api(p: int, j: int) -> str:
    return f"Api{(p * 7 + j) % 300}"


def count_bodies(
    org: Org, start: int, cells, n_partitions: int, rng, only: int | None = None
) -> list[list[dict]]:
    """The map phase's count rows of one hour, written by the product's encoder, per indexer
    (only indexer ``only`` if given)."""
    return [
        [cell.to_row() for cell in part] for part in count_cells(org, start, cells, n_partitions, rng, only)
    ]


def count_cells(org: Org, start: int, cells, n_partitions: int, rng, only: int | None = None) -> list[list]:
    """The map phase's cells (``CountRow``) of one hour per indexer (only indexer ``only`` if
    given). Digests are random; a re-sent copy carries the digest its first indexer sent. Each
    event falls in a random slot of the hour (``MASK_BITS`` of them, drawn by a generator spawned
    from ``rng``, which leaves ``rng``'s draws as they were before the masks): a cell's event
    source gets the slots of its events as its mask (rule P39), a re-sent copy the slot of its
    first send."""
    import numpy as np
    from iamspike.counting import CountRow
    from iamspike.counttext import DIGEST_BYTES, MASK_BITS

    active, own, resent_in, _ = cells
    n_apis = own.shape[2]
    n_events = int(own.sum())
    packed = rng.bytes(n_events * DIGEST_BYTES)
    slot_of = rng.spawn(1)[0].integers(0, MASK_BITS, size=n_events)  # spawned: rng's own draws stay
    bits = np.append(np.left_shift(1, slot_of), 0)  # the 0 ends the last cell for reduceat
    ends = np.cumsum(own.reshape(-1))
    offsets = np.concatenate([[0], ends]).tolist()
    slots = np.where(own.reshape(-1) > 0, np.bitwise_or.reduceat(bits, ends - own.reshape(-1)), 0)
    slots = np.bitwise_or.reduce(slots.reshape(own.shape), axis=2).tolist()  # per (principal, indexer)
    own_l, res_l = own.tolist(), resent_in.tolist()
    out: list[list] = [[] for _ in range(n_partitions)]
    for i, p in enumerate(active.tolist()):
        cols = org.columns(p)
        account, principal, ip, agent = cols[0], org.folded(p), cols[2], cols[3]
        for k in range(n_partitions) if only is None else (only,):
            entries, mask = [], slots[i][k]
            for j in range(n_apis):
                mine, copies = own_l[i][k][j], res_l[i][k][j]
                if not mine and not copies:
                    continue
                cell = (i * n_partitions + k) * n_apis + j
                text = packed[offsets[cell] * DIGEST_BYTES : offsets[cell + 1] * DIGEST_BYTES]
                if copies:  # the first copies of the previous indexer's cell
                    prev = (i * n_partitions + (k - 1) % n_partitions) * n_apis + j
                    text += packed[offsets[prev] * DIGEST_BYTES : (offsets[prev] + copies) * DIGEST_BYTES]
                    mask |= int(np.bitwise_or.reduce(bits[offsets[prev] : offsets[prev] + copies]))
                entries.append(
                    (
                        "iam.amazonaws.com",
                        _api(p, j),
                        "AccessDenied",
                        ip,
                        agent,
                        mine + copies,
                        text,
                    )
                )
            if entries:
                out[k].append(CountRow(start, account, principal, False, entries, {entries[0][0]: mask}))
    return out


def _csv_lines(rows: list[dict], columns: list[str] = COUNT_COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([row.get(name, "") for name in columns])
    return buffer.getvalue()


def _capture(path: str, lines: str, args, cells: int) -> dict:
    """Write the search head's chunks (packed rows, then each indexer's range row) to ``path``."""
    import scale_feed

    ranges = [_range_row(START, START + SPAN * args.sh_hours - 1)] * args.indexers
    lines += _csv_lines(ranges, PACKED_COLUMNS)
    header = PACKED_COLUMNS + ["__mv_" + name for name in PACKED_COLUMNS]
    twins = "," * len(PACKED_COLUMNS)
    lines = "".join(line + twins + "\n" for line in lines.splitlines())
    chunks = _chunks(lines, header)
    scale_feed.write_chunks(path, chunks)
    return {
        "sh_rows": lines.count("\n"),
        "sh_cells": cells,
        "sh_mb": round(sum(len(chunk) for chunk in chunks) / 1e6, 1),
        "chunks": len(chunks),
        "capture": path,
    }


def _range_row(lo: float, hi: float) -> dict:
    from iamspike.counting import Tally

    tally = Tally(SPAN, {})  # only its range row is used
    tally.lo, tally.hi = lo, hi
    return tally.range_row()


def raw_bodies(org: Org, start: int, cells, k: int, n_partitions: int, rng, first_id: int) -> list[str]:
    """Indexer ``k``'s raw failed events of one hour (the fields macro's columns with their
    ``__mv_`` twins, ``_raw`` left on the indexer) from the same cells: rows as CSV lines, and
    the next free event number. A re-sent copy carries its first indexer's eventID."""
    from iamspike.cloudtrail import FIELDS

    active, own, resent_in, _ = cells
    n_apis = own.shape[2]
    blanks = [""] * len(FIELDS)
    own_l, res_l = own.tolist(), resent_in.tolist()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    ids = _event_ids(own, first_id)
    for i, p in enumerate(active.tolist()):
        cols = org.columns(p)
        for j in range(n_apis):
            first = ids[(i * n_partitions + k) * n_apis + j]
            prev = ids[(i * n_partitions + (k - 1) % n_partitions) * n_apis + j]
            numbers = list(range(first, first + own_l[i][k][j])) + list(range(prev, prev + res_l[i][k][j]))
            for n in numbers:
                when = start + (n * 2654435761) % SPAN
                row = [str(when), f"{n:032x}", _api(p, j), "iam.amazonaws.com", "AccessDenied", ""]
                writer.writerow(row + cols + blanks)
    return buffer.getvalue()


def _event_ids(own, first_id: int) -> list[int]:
    import numpy as np

    return (first_id + np.concatenate([[0], np.cumsum(own.reshape(-1))])).tolist()


def _chunks(lines: str, header: list[str]) -> list[bytes]:
    out, rows = [], lines.splitlines(keepends=True)
    head = ",".join(header) + "\n"
    for lo in range(0, len(rows), CHUNK_ROWS):
        out.append((head + "".join(rows[lo : lo + CHUNK_ROWS])).encode())
    return out


def calibrate(command: list[str], org: Org, args, seed: int) -> dict:
    """Day 0 on ``args.calibrate_indexers`` indexers: raw events through the real map phase
    against the synthesized count rows of the same cells."""
    import numpy as np

    sys.path.insert(0, os.path.join(REPO, "tests"))
    from iamspike.cloudtrail import FIELDS
    from iamspike.counting import packed_rows, wire_rows
    from iamspike.phases import FLUSH_KEYS
    from standin import scpv2

    preop = scpv2.probe_getinfo(command, []).getinfo["streaming_preop"].split()[1:]
    raw_header = list(FIELDS) + ["__mv_" + name for name in FIELDS]
    factors = diurnal(24)
    out = {"indexers": 0, "raw_rows": 0, "map_rows": 0, "map_mb": 0.0, "synth_rows": 0, "synth_mb": 0.0}
    out.update(map_cpu_s_max=0.0, map_rss_mb_max=0)
    for k in range(args.calibrate_indexers):
        rng = np.random.default_rng(seed)  # the same hours as the backfill's day 0
        synth_lines, raw_lines, first_id, held = [], [], 0, []
        for h in range(24):
            cells = hour_cells(rng, org, round(float(args.events * factors[h])), args.indexers)
            start = START + SPAN * h
            held.extend(count_cells(org, start, cells, args.indexers, rng, k)[k])
            if sum(len(cell.entries) for cell in held) >= FLUSH_KEYS:  # as backfill() sends
                synth_lines.append(_csv_lines(packed_rows(wire_rows(held)), PACKED_COLUMNS))
                held = []
            raw_lines.append(raw_bodies(org, start, cells, k, args.indexers, rng, first_id))
            first_id += int(cells[1].sum())
        synth_lines.append(_csv_lines(packed_rows(wire_rows(held)), PACKED_COLUMNS))
        del held
        synth = "".join(synth_lines)
        out["synth_rows"] += synth.count("\n")
        out["synth_mb"] += len(synth.encode()) / 1e6
        raw = "".join(raw_lines)
        del raw_lines, synth_lines, synth
        out["raw_rows"] += raw.count("\n")
        session = scpv2.run(command, preop, _chunks(raw, raw_header), decode=False, timeout=7200)
        del raw
        assert session.returncode == 0 and not session.errors, session.stderr[-2000:]
        bodies = [body for body in session.bodies if body]
        out["map_rows"] += sum(body.count(b"\n") - 1 for body in bodies) - 1  # less the range row
        out["map_mb"] += sum(len(body) for body in bodies) / 1e6
        out["map_cpu_s_max"] = max(out["map_cpu_s_max"], session.cpu_seconds)
        out["map_rss_mb_max"] = max(out["map_rss_mb_max"], session.peak_rss_mb)
        out["indexers"] += 1
        print(f"calibrated indexer {k}: {out}", file=sys.stderr, flush=True)
    return out


def backfill(command: list[str], args, capture: str | None = None) -> dict:
    """Counts of every hour of ``args.days`` days; the search head's ``show=state`` over the
    first ``args.sh_hours`` hours; the map phase calibrated on day 0.

    The search head reads what the map phase sends (``phases.py``): each send's principals'
    rows (``counting.wire_rows``, ``v4``) packed by account into ``v6`` rows
    (``counting.packed_rows``). With ``capture`` (a file name) the search head is not run: those
    chunks are written there for :mod:`scale_feed` to drive the command with, again and again
    (the bytes model, the memory per key and the calibration are skipped).

    Each indexer sends as the map phase does: a send when its held keys (entries) reach
    ``FLUSH_KEYS`` (checked at the end of each hour) and one at the end. Over the whole range
    only the rows are counted: a send's ``v4`` rows are the principals it holds, its ``v6`` rows
    are estimated (each account's principals in groups of ``MEMBERS``, times the ratio of real
    ``v6`` rows to those groups in the written hours: ``packed_rows`` also closes a group at
    ``MEMBER_BYTES`` of text, which only written rows have). The first ``sh_hours`` hours are
    written (each indexer also sends at their end, where that shorter search finishes) and fed
    to the search head."""
    import numpy as np
    import scale_feed
    from iamspike.counting import MEMBERS, packed_rows, wire_rows
    from iamspike.phases import FLUSH_KEYS

    sys.path.insert(0, os.path.join(REPO, "tests"))
    from standin import scpv2

    memory = memory_per_key(args) if capture is None else {}
    org = Org(args.accounts, args.peak_principals)
    seed = 23
    rng = np.random.default_rng(seed)
    n_hours = args.days * 24
    factors = diurnal(n_hours)
    out: dict = {"days": args.days, "sh_hours": args.sh_hours, "accounts": args.accounts}
    out.update({"memory_" + key: value for key, value in memory.items()})
    out.update(principals=args.peak_principals, peak_events=args.events, indexers=args.indexers)
    out["flush_keys"] = FLUSH_KEYS
    per_hour = []  # (raw rows = events, cells: v3 rows, entries)
    sh_v3: list[str] = []  # the written hours as v3 rows (one per cell): the bytes model
    sh_v6: list[str] = []  # the same cells as the map phase sends them: what the search head reads
    v4_written = {"rows": 0, "bytes": 0, "groups": 0}  # the written sends as v4 rows; v6 groups of MEMBERS
    sh_hours = args.sh_hours
    held: list[list] = [[] for _ in range(args.indexers)]  # written cells not yet sent
    unsent = np.zeros((args.indexers, args.peak_principals), dtype=bool)  # principals held
    keys = [0] * args.indexers
    totals_sent = {"rows": 0, "sends": 0, "groups": 0}

    def groups(per_account) -> int:
        return int((-(-np.asarray(per_account) // MEMBERS)).sum())  # ceil by account

    def send(k: int) -> None:
        totals_sent["rows"] += int(unsent[k].sum())
        totals_sent["groups"] += groups(np.bincount(np.flatnonzero(unsent[k]) % args.accounts))
        totals_sent["sends"] += 1
        unsent[k] = False
        keys[k] = 0
        flush_written(k)

    def flush_written(k: int) -> None:
        if held[k]:
            rows = wire_rows(held[k])
            if capture is None:
                v4_written["rows"] += len(rows)
                v4_written["bytes"] += len(_csv_lines(rows).encode())
                per_account: dict = {}
                for row in rows:
                    per_account[row["account"]] = per_account.get(row["account"], 0) + 1
                v4_written["groups"] += groups(list(per_account.values()))
            sh_v6.append(_csv_lines(packed_rows(rows), PACKED_COLUMNS))
            held[k] = []

    started = time.perf_counter()
    for h in range(n_hours):
        cells = hour_cells(rng, org, round(float(args.events * factors[h])), args.indexers)
        active, _, _, shipped = cells
        rows, entries, events = hour_totals(shipped)
        per_hour.append((events, rows, entries))
        if h < sh_hours:
            for k, part in enumerate(count_cells(org, START + SPAN * h, cells, args.indexers, rng)):
                if capture is None:
                    sh_v3.append(_csv_lines([cell.to_row() for cell in part]))
                held[k].extend(part)
        per_indexer = shipped.sum(axis=2)
        for k in range(args.indexers):
            unsent[k, active[per_indexer[:, k] > 0]] = True
            keys[k] += int(np.count_nonzero(shipped[:, k, :]))
            if keys[k] >= FLUSH_KEYS:
                send(k)
        if h == sh_hours - 1:  # the search head's shorter search finishes here
            for k in range(args.indexers):
                flush_written(k)
        if h % 24 == 23:
            print(f"day {h // 24}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    for k in range(args.indexers):
        if unsent[k].any():
            send(k)
    totals = np.array(per_hour, dtype=np.float64)
    out["raw_rows"] = int(totals[:, 0].sum())
    out["cells"] = int(totals[:, 1].sum())
    out["count_rows"] = totals_sent["rows"]
    out["sends_per_indexer"] = totals_sent["sends"] / args.indexers
    out["raw_bytes_per_row"] = raw_row_bytes(org)
    out["raw_cpu_us_per_row"] = args.raw_cpu_us_per_row
    out["entries"] = int(totals[:, 2].sum())
    out["peak_hour_raw_rows"] = int(totals[:, 0].max())
    sh = totals[:sh_hours]
    if capture is not None:
        out.update(_capture(capture, "".join(sh_v6), args, int(sh[:, 1].sum())))
        return out
    v3_text = "".join(sh_v3)
    del sh_v3
    # Bytes of the other hours: per event, per cell and per entry fitted on the written hours as
    # v3; a v4 row saves the per-row fields of the cells it packs (measured on the written hours).
    per = _bytes_model(v3_text, sh)
    v3_mb = len(v3_text.encode()) / 1e6
    del v3_text
    synth = "".join(sh_v6)
    sh_v6.clear()
    sh_mb = len(synth.encode()) / 1e6
    v4_mb, v4_rows = v4_written["bytes"] / 1e6, v4_written["rows"]
    sh_cells, sh_rows = int(sh[:, 1].sum()), synth.count("\n")
    saved_per_row = (v3_mb - v4_mb) * 1e6 / max(sh_cells - v4_rows, 1)
    v3_total = v3_mb * 1e6 + float((totals[sh_hours:] @ np.array(per)).sum())
    out["count_mb_v4"] = (v3_total - (out["cells"] - out["count_rows"]) * saved_per_row) / 1e6
    out["cells_mb"] = v3_total / 1e6
    out["count_mb_written_v4"], out["count_rows_written_v4"] = round(v4_mb, 1), v4_rows
    out["count_mb_written"] = round(sh_mb, 1)
    out["count_rows_written"] = sh_rows
    # v6 over the whole range, estimated from the written hours (see the docstring)
    out["groups_written"], out["groups"] = v4_written["groups"], totals_sent["groups"]
    out["count_rows_v6"] = round(totals_sent["groups"] * sh_rows / max(v4_written["groups"], 1))
    out["count_mb"] = out["count_mb_v4"] * sh_mb / max(v4_mb, 1e-9)
    out["bytes_saved_per_row"] = round(saved_per_row, 1)
    out["bytes_per_event"], out["bytes_per_row"], out["bytes_per_entry"] = (round(x, 1) for x in per)
    ranges = [_range_row(START, START + SPAN * sh_hours - 1)] * args.indexers
    lines = synth + _csv_lines(ranges, PACKED_COLUMNS)
    del synth
    header = PACKED_COLUMNS + ["__mv_" + name for name in PACKED_COLUMNS]
    twins = "," * len(PACKED_COLUMNS)
    lines = "".join(line + twins + "\n" for line in lines.splitlines())
    out["sh_rows"] = lines.count("\n")
    out["sh_cells"] = sh_cells
    session = scpv2.run(command, ["show=state"], _chunks(lines, header), decode=False, timeout=14400)
    del lines
    assert session.returncode == 0 and not session.errors, session.stderr[-2000:]
    out["sh_cpu_s"], out["sh_rss_mb"] = session.cpu_seconds, session.peak_rss_mb
    state_bodies = [body for body in session.bodies if body]
    out["state_rows"] = sum(body.count(b"\n") - 1 for body in state_bodies)
    out["state_mb"] = sum(len(body) for body in state_bodies) / 1e6
    out["state_sha256"] = scale_feed.state_digest(state_bodies)[1][:16]  # as scale.py --feed prints it
    # The search head reads each v6 row's members' cells: its cost follows cells, not rows.
    scale = out["cells"] / max(sh_cells, 1)
    out["sh_cpu_s_30d"] = out["sh_cpu_s"] * scale
    if args.calibrate_indexers:
        cal = calibrate(command, org, args, seed)
        out.update({"cal_" + key: value for key, value in cal.items()})
    return {key: round(value, 2) if isinstance(value, float) else value for key, value in out.items()}


def memory_per_key(args) -> dict:
    """The reporting phase's memory per key at the peak hour: the count rows of a peak hour
    parsed as splunkd's chunks are (csv) and added to a ``Detector`` in this process;
    tracemalloc's current size after the last chunk, divided by the keys held."""
    import gc
    import tracemalloc

    import numpy as np
    from iamspike.engine import Detector
    from iamspike.options import parse_options

    org = Org(args.accounts, args.peak_principals)
    rng = np.random.default_rng(5)
    cells = hour_cells(rng, org, args.events, args.indexers)
    text = "".join(_csv_lines(part) for part in count_bodies(org, START, cells, args.indexers, rng))
    lines = text.splitlines(keepends=True)
    del text, cells
    gc.collect()
    csv.field_size_limit(1 << 31)  # a busy principal's entry carries a digest per event
    tracemalloc.start()
    detector = Detector(parse_options([]))
    for lo in range(0, len(lines), CHUNK_ROWS):
        detector.add_rows(COUNT_COLUMNS, list(csv.reader(lines[lo : lo + CHUNK_ROWS])))
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    parts = row_parts(detector.count_rows)
    parts["the Tally (rows read whole)"] = sum(key_parts(detector.tally).values())
    del detector
    gc.collect()
    keys = count_keys(lines)
    return {
        "rows": len(lines),
        "keys": keys,
        "held_mb": held / 1e6,
        "bytes_per_key": held / max(keys, 1),
        "digest_bytes_per_key": parts["digests"] / max(keys, 1),
        "parts": ", ".join(f"{part} {size / max(keys, 1):.1f}" for part, size in parts.items()),
    }


def count_keys(lines: list[str]) -> int:
    """Distinct (bin, account, principal, source, API, code, IP, user agent) keys of the rows:
    what the search head held one dict entry for before the v3 intake (the denominator of the
    bytes a key)."""
    from iamspike.counting import COUNTS_FIELD, Tally
    from iamspike.failures import ErrorClasses

    tally = Tally(SPAN, ErrorClasses.load().counter(("authorization",)))
    index = {name: i for i, name in enumerate(COUNT_COLUMNS)}
    assert COUNTS_FIELD in index
    for lo in range(0, len(lines), CHUNK_ROWS):
        tally.add_count_rows(index, list(csv.reader(lines[lo : lo + CHUNK_ROWS])))
    return len(tally.counts)


def row_parts(rows) -> dict[str, int]:
    """Bytes (``sys.getsizeof``) of each part of what the search head's CountRows holds."""
    size = sys.getsizeof
    columns = (rows.bins, rows.entity, rows.failures, rows.console, rows.n_apis, rows.n_digests)
    names = {id(name): size(name) for key in rows.entities for name in key}
    profiles = rows.profiles
    return {
        "row columns": sum(size(column) for column in columns),
        "API ids": size(rows.apis),
        "event sources and their minutes": size(rows.n_sources) + size(rows.sources) + size(rows.masks),
        "entries' offsets": size(rows.entry_at),
        "digests": size(rows.digests),
        "entries blocks": sum(size(block) for block in rows.blocks.blocks),
        "entries not yet in a block": sum(size(text) for text in rows.blocks.pending),
        "entities dict and keys": size(rows.entities) + sum(size(key) for key in rows.entities),
        "entity ids": sum(size(e) for e in rows.entities.values() if e > 256),  # ints > 256: objects
        "account and principal texts": sum(names.values()),
        "profiles cache": sum(
            size(cache) + sum(_deep_size(k) + _deep_size(v) for k, v in cache.items())
            for cache in (profiles.texts, profiles.bases, profiles.masks)
        ),
    }


def _deep_size(value) -> int:
    """``sys.getsizeof`` of a value and, for a tuple, of its items (ints to 256 are shared)."""
    if isinstance(value, tuple):
        return sys.getsizeof(value) + sum(_deep_size(item) for item in value)
    if isinstance(value, int) and -5 <= value <= 256:
        return 0
    return sys.getsizeof(value)


def key_parts(tally) -> dict[str, int]:
    """Bytes (``sys.getsizeof``) of each part of what a Tally holds for its keys; each text
    object is counted once."""
    size = sys.getsizeof
    texts: dict[int, int] = {}
    for key in tally.counts:
        for value in key[1:]:
            texts.setdefault(id(value), size(value))
    return {
        "key tuples": sum(size(key) for key in tally.counts),
        "counts dict": size(tally.counts),
        "count ints": sum(size(count) for count in tally.counts.values() if count > 256),
        "digests dict": size(tally._digests),
        "packed digests": sum(size(packed) for packed in tally._digests.values()),
        "texts": sum(texts.values()),
        "one-object-per-text dict": size(tally.strings),
        "services dict and keys": size(tally.services) + sum(size(key) for key in tally.services),
    }


def _bytes_model(text: str, hours) -> tuple[float, float, float]:
    """Least-squares bytes per event, per row and per entry over the written hours (each hour's
    bytes from its own lines)."""
    import numpy as np

    # The written text is hour after hour; split it where _time changes.
    sizes: dict[str, int] = {}
    for line in text.splitlines():
        stamp = line.split(",", 1)[0]
        sizes[stamp] = sizes.get(stamp, 0) + len(line) + 1
    y = np.array(list(sizes.values()), dtype=np.float64)
    x = np.asarray(hours, dtype=np.float64)[: len(y)]
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return tuple(float(c) for c in coef)


def render(r: dict, command: str) -> list[str]:
    mb_raw = r["raw_rows"] * r.get("raw_bytes_per_row", 0) / 1e6
    days, sh_hours = r["days"], r["sh_hours"]
    written = f"measured over the first {sh_hours} hours"
    return [
        "",
        f"## The {days}-day backfill, on a distributed search",
        "",
        f"Command: `{command}`. The organisation of the peak-hour run ({r['accounts']:,} accounts,"
        f" {r['principals']:,} principals, {r['indexers']} indexers, 1% re-sent) over {days} days of hourly"
        " bins, diurnal volume (1.0 at 15:00 UTC on weekdays, 0.3 at night, weekends half); peak hour"
        f" {r['peak_hour_raw_rows']:,} raw rows. The backfill search: map phase, then"
        " `iamspike show=state` (tests/bench/scale_backfill.py explains the synthesis).",
        "",
        "| path | rows to SH | MB to SH | SH CPU s | SH peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        f"| raw events (before) | {r['raw_rows']:,} | {mb_raw:,.0f} without `_raw` "
        f"| {_raw_cpu(r)} | not run (holds every event's digest) |",
        f"| map phase, count rows (`v6`) | {r['count_rows_v6']:,} estimated | {r['count_mb']:,.0f} estimated "
        f"| {r['sh_cpu_s']} {written}; {r['sh_cpu_s_30d']:,.0f} extrapolated "
        f"| {r['sh_rss_mb']:.0f} {written} (it follows the largest pass of `show=state`, not the range) |",
        "",
        f"- Rows to the search head: each indexer sends when it holds {r['flush_keys']:,} keys, checked"
        f" hourly, and at the end ({r['sends_per_indexer']:.1f} sends an indexer over {days} days); a"
        f" send's principals travel as `v4` rows ({r['count_rows']:,},"
        f" 1/{r['raw_rows'] / max(r['count_rows'], 1):.1f} of the raw rows, {r['count_mb_v4']:,.0f} MB)"
        " packed by account into `v6` rows (`counting.packed_rows`, as `phases.py` sends):"
        f" 1/{r['raw_rows'] / max(r['count_rows_v6'], 1):.0f} of the raw rows. The `v6` rows and MB of"
        f" the whole range are estimated: {r['groups']:,} groups of"
        f" up to 32 principals of an account, times the written hours' {r['count_rows_written']:,} `v6` rows"
        f" for {r['groups_written']:,} such groups; MB times the written hours' `v6`/`v4` bytes"
        f" ({r['count_mb_written']:,} / {r['count_mb_written_v4']:,} MB). As one row per cell (`v3`):"
        f" {r['cells']:,} rows, {r['cells_mb']:,.0f} MB.",
        f"- The search head ran over the first {sh_hours} hours as the map phase sends them:"
        f" {r['sh_rows']:,} `v6` rows (with the {r['indexers']} range rows) holding {r['sh_cells']:,} cells"
        f" ({r['count_mb_written']:,} MB; as `v4` {r['count_rows_written_v4']:,} rows,"
        f" {r['count_mb_written_v4']:,} MB).",
        f"- State written ({written}): {r['state_rows']:,} rows, {r['state_mb']:.1f} MB, sha256"
        f" {r.get('state_sha256', '')} (the state rows less the header lines, as `scale.py --feed`"
        " prints it).",
        f"- Extrapolation to {days} days: the search head's CPU scaled by cells (it reads each `v6` row's"
        " members' cells). Its peak RSS is not scaled: `show=state` reads the rows a few accounts at a"
        " time (`spill.py`), so it follows the largest pass (docs/engine.md section 7).",
        f"- The search head's memory per key (tracemalloc, the peak hour's {r['memory_rows']:,} count rows"
        f" added to a Detector): {r['memory_keys']:,} keys (bin, principal, API, error code, IP, agent)"
        f" hold {r['memory_held_mb']:.0f} MB, {r['memory_bytes_per_key']:.0f} bytes a key, of which"
        f" {r['memory_digest_bytes_per_key']:.0f} are the packed eventID digests (goal: <= 200)."
        f" By part (sys.getsizeof, bytes a key): {r['memory_parts']}.",
        f"- Count-row bytes: the first {sh_hours} hours written; the rest from {r['bytes_per_event']}"
        f" bytes per event, {r['bytes_per_row']} per cell and {r['bytes_per_entry']} per entry fitted on"
        f" them as `v3`, less {r['bytes_saved_per_row']} bytes per cell a `v4` row packs (the per-row"
        " fields, measured on the written hours), then scaled to `v6` as above.",
        *_calibration(r),
    ]


def _calibration(r: dict) -> list[str]:
    if not r.get("cal_indexers"):
        return []
    return [
        f"- Day 0 raw through the real map phase on {r.get('cal_indexers', 0)} indexer(s):"
        f" {r.get('cal_raw_rows', 0):,} raw rows -> {r.get('cal_map_rows', 0):,} count rows,"
        f" {r.get('cal_map_mb', 0):.1f} MB; synthesized for the same cells (`v6`, packed as the map phase"
        f" packs): {r.get('cal_synth_rows', 0):,} rows, {r.get('cal_synth_mb', 0):.1f} MB."
        f" Map phase at most {r.get('cal_map_cpu_s_max', 0)} CPU s"
        f" and {r.get('cal_map_rss_mb_max', 0):.0f} MB per indexer-day.",
    ]


def _raw_cpu(r: dict) -> str:
    per_row = r.get("raw_cpu_us_per_row")
    if not per_row:
        return "not run"
    return f"{r['raw_rows'] * per_row / 1e6:,.0f} estimated ({per_row} us a row, the peak-hour raw run's)"


def row_units(accounts: int, principals: int, peak_events: int, indexers: int, days: int = 7) -> dict:
    """Rows a count row's unit would send (docs/engine.md section 7): now one per (bin, principal,
    indexer); one per (principal, indexer) for the whole range; one per principal; one per
    (account, indexer) in the peak hour. The model and seed of :func:`backfill` (whose written
    hours also draw digests, so its later hours are other draws of the same distribution)."""
    import numpy as np

    org = Org(accounts, principals)
    rng = np.random.default_rng(23)
    factors = diurnal(24 * days)
    account = np.arange(principals) % accounts
    seen = np.zeros((principals, indexers), dtype=bool)
    out: dict = {}
    raw = hourly = 0
    for h in range(24 * days):
        active, _, _, shipped = hour_cells(rng, org, round(float(peak_events * factors[h])), indexers)
        cells = shipped.sum(axis=2) > 0
        seen[active] |= cells
        raw, hourly = raw + int(shipped.sum()), hourly + int(cells.sum())
        if h == 15:
            pairs = (account[active][:, None] * indexers + np.arange(indexers)[None, :])[cells]
            out["peak"] = {
                "raw": int(shipped.sum()),
                "rows": int(cells.sum()),
                "principals": len(active),
                "account_indexer": len(np.unique(pairs)),
            }
        if h in (23, 24 * days - 1):
            out[f"{(h + 1) // 24}d"] = {
                "raw": raw,
                "rows": hourly,
                "principal_indexer": int(seen.sum()),
                "principals": int(seen.any(axis=1).sum()),
            }
    return out


def multi_bin_day(accounts: int, principals: int, peak_events: int, indexers: int, hours: int = 24) -> dict:
    """Rows and MB one day of the backfill sends to the search head, per cell (``v3``) and per
    principal and send (``v4``, :func:`iamspike.counting.wire_rows`), both written by the
    product's encoder from the same cells (the model and seed of :func:`backfill`). Each indexer
    sends when its held keys (entries) reach ``FLUSH_KEYS``, checked at the end of each hour (the
    real map phase checks after each chunk, so it sends a little earlier and more often)."""
    import numpy as np
    from iamspike.counting import wire_rows
    from iamspike.phases import FLUSH_KEYS

    org = Org(accounts, principals)
    rng = np.random.default_rng(23)
    factors = diurnal(hours)
    held: list[list] = [[] for _ in range(indexers)]
    keys = [0] * indexers
    out = {"raw_rows": 0, "v3_rows": 0, "v3_mb": 0.0, "v4_rows": 0, "v4_mb": 0.0, "sends": 0}

    def send(k: int) -> None:
        rows = wire_rows(held[k])
        out["v4_rows"] += len(rows)
        out["v4_mb"] += len(_csv_lines(rows).encode()) / 1e6
        out["sends"] += 1
        held[k], keys[k] = [], 0

    for h in range(hours):
        cells = hour_cells(rng, org, round(float(peak_events * factors[h])), indexers)
        out["raw_rows"] += int(cells[3].sum())
        for k, part in enumerate(count_cells(org, START + SPAN * h, cells, indexers, rng)):
            out["v3_rows"] += len(part)
            out["v3_mb"] += len(_csv_lines([cell.to_row() for cell in part]).encode()) / 1e6
            held[k].extend(part)
            keys[k] += sum(len(cell.entries) for cell in part)
            if keys[k] >= FLUSH_KEYS:
                send(k)
        print(f"hour {h}: {out}", file=sys.stderr, flush=True)
    for k in range(indexers):
        if held[k]:
            send(k)
    return {key: round(value, 1) if isinstance(value, float) else value for key, value in out.items()}


def raw_row_bytes(org: Org) -> float:
    """Bytes of one raw failed-event row as the fields macro ships it (without ``_raw``)."""
    from iamspike.cloudtrail import FIELDS

    row = [str(START), f"{1:032x}", _api(1, 1), "iam.amazonaws.com", "AccessDenied", ""]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row + org.columns(1) + [""] * len(FIELDS))
    return float(len(buffer.getvalue()))


if __name__ == "__main__":
    import json

    if sys.argv[1:] == ["--multi-bin-day"]:
        print(json.dumps(multi_bin_day(1000, 200_000, 2_000_000, 8)))
    else:
        print(json.dumps(row_units(1000, 200_000, 2_000_000, 8)))
