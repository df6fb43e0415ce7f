"""Sensitivity sweep: which relative spikes of a steady denied automation the engine sees.

    .venv/bin/python tests/bench/sensitivity.py [--instances 3] [--output docs/bench/sensitivity.md]

(``make``-style: ``$(PY) tests/bench/sensitivity.py --instances 3``; about 10 minutes on 2 cores.)

Plants, in an otherwise benign organisation (``generator._Builder`` with no attack scenarios: its
people, roles, batch hours and error-burst traps over ``--days`` days), steady denied
automations over a grid, each an assumed role failing on its own few APIs from its own addresses
(the generator's ``emit``-style records):

- usual rate: ``--rates`` failures an hour (0.5 to 100);
- shape: Poisson or negative binomial (variance twice the mean), flat or seasonal: a smooth
  daily cycle (+-30 %, its own phase), a smooth weekly one (+-15 %) and a smooth drift (a day's
  level interpolated hour by hour, never a step at 00:00 UTC);
- spike: ``--factors`` times the usual rate (the extra failures Poisson around ``(f - 1)`` times
  the stream's rate of the hour) for ``--hours`` hours, on its usual APIs from its usual
  addresses, starting at a random hour of days 8 to ``days - 1`` (a week of history at least).

Every stream holds one spike. The engine (``iamspike.engine.run``, default Options, or a
prototype copy with ``--engine-path``) runs twice over each batch: with the spikes (a spike is
detected when the stream's principal is flagged in one of its hours) and without them, the same
streams otherwise (every principal alert of a planted stream there is a false alert). Writes the
detection rate per cell, the highest score in each spike's hours (median per cell) and the
false alerts per 1,000 principal-days per stream kind. A section "## Before P32" of an existing
report (the engine's tables before that rule, docs/rules.md P32) is kept.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import random
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in (os.path.join(ROOT, "tests"), os.path.join(ROOT, "bin")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench.generator import DEFAULT_START, HOUR, _Builder, parse_time  # noqa: E402
from bench.quality_run import engine_options, load_engine  # noqa: E402
from bench.quality_score import entity_key  # noqa: E402

RATES = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0)
SHAPES = ("poisson", "poisson-seasonal", "negbin", "negbin-seasonal")
FACTORS = (2.0, 3.0, 4.0, 6.0)
LENGTHS = (1, 2, 3)
NEGBIN_INDEX = 2.0  # variance / mean of the negative-binomial streams
KEPT = "## Before P32"  # a report's section from this heading on is hand-kept across runs


@dataclass
class Stream:
    """One planted automation: its hourly failures without and with its spike."""

    account: str
    principal: str
    name: str
    shape: str
    rate: float
    factor: float
    length: int
    spike: int  # first spike hour (from the start)
    base: np.ndarray  # failures per hour, no spike
    extra: np.ndarray  # the spike's extra failures per hour
    apis: tuple[tuple[str, str], ...]
    ips: tuple[str, ...]
    agent: str


def hourly_rate(
    rng: np.random.Generator, shape: str, rate: float, hours: int, start_weekday: int
) -> np.ndarray:
    """The stream's expected failures per hour: flat, or smooth daily, weekly and drift factors."""
    h = np.arange(hours, dtype=float)
    if not shape.endswith("seasonal"):
        return np.full(hours, rate)
    daily = 1.0 + 0.3 * np.sin(2 * np.pi * (h / 24.0 + rng.uniform()))
    week_hour = h + 24 * start_weekday
    weekly = 1.0 + 0.15 * np.cos(2 * np.pi * (week_hour / 168.0 - rng.uniform()))
    knots = np.exp(rng.normal(0.0, 0.1, size=hours // 24 + 2))
    drift = np.interp(h, 24.0 * np.arange(len(knots)) - 12.0, knots)  # a day's level at its noon
    return rate * daily * weekly * drift


def draw_counts(rng: np.random.Generator, shape: str, mean: np.ndarray) -> np.ndarray:
    if shape.startswith("negbin"):
        # variance NEGBIN_INDEX * mean: n = mean / (index - 1), p = 1 / index
        n = mean / (NEGBIN_INDEX - 1.0)
        return rng.negative_binomial(np.maximum(n, 1e-9), 1.0 / NEGBIN_INDEX)
    return rng.poisson(mean)


def plant(
    builder: _Builder,
    rng: np.random.Generator,
    cells: Sequence[tuple[str, float, float, int]],
    days: int,
) -> list[Stream]:
    """One stream per cell (shape, rate, factor, length), spread over the builder's accounts."""
    hours = days * 24
    streams = []
    for i, (shape, rate, factor, length) in enumerate(cells):
        account = builder.accounts[i % len(builder.accounts)]
        name = f"sweep-{shape}-{rate:g}-x{factor:g}-{length}h-{i}"
        mean = hourly_rate(rng, shape, rate, hours, builder.start_weekday)
        base = draw_counts(rng, shape, mean)
        spike = int(rng.integers(8 * 24, hours - length))
        extra = np.zeros(hours, dtype=np.int64)
        extra[spike : spike + length] = rng.poisson((factor - 1.0) * mean[spike : spike + length])
        streams.append(
            Stream(
                account=account,
                principal=f"arn:aws:iam::{account}:role/{name}",
                name=name,
                shape=shape,
                rate=rate,
                factor=factor,
                length=length,
                spike=spike,
                base=base,
                extra=extra,
                apis=builder._apis(int(rng.integers(2, 6))),
                ips=(builder._ip(private=True),),
                agent=builder._pick(("Boto3/1.34.69 Botocore/1.34.69", "aws-sdk-java/2.25.11")),
            )
        )
    return streams


def stream_records(stream: Stream, start: int, with_spike: bool, seed: int) -> Iterator[dict]:
    """CloudTrail records of one stream (sessions rotate every 6 hours, as the generator's roles)."""
    fast = random.Random(seed)
    counts = stream.base + stream.extra if with_spike else stream.base
    role_id = f"AROA{zlib.crc32(stream.principal.encode()):012d}"
    identity: dict = {}
    for h in np.nonzero(counts)[0].tolist():
        session = f"{stream.name[:20]}-{h // 6}"
        if session not in identity:
            identity = {
                session: {
                    "type": "AssumedRole",
                    "principalId": f"{role_id}:{session}",
                    "arn": f"arn:aws:sts::{stream.account}:assumed-role/{stream.name}/{session}",
                    "accountId": stream.account,
                    "sessionContext": {
                        "sessionIssuer": {
                            "type": "Role",
                            "arn": stream.principal,
                            "accountId": stream.account,
                        }
                    },
                }
            }
        ident = identity[session]
        base = start + h * HOUR
        n = int(counts[h])
        for k, off in enumerate(sorted(fast.uniform(0, HOUR) for _ in range(n))):
            source, event = stream.apis[fast.randrange(len(stream.apis))]
            yield {
                "eventVersion": "1.09",
                "userIdentity": ident,
                "eventTime": _dt.datetime.fromtimestamp(base + off, _dt.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "eventSource": source,
                "eventName": event,
                "awsRegion": "us-east-1",
                "sourceIPAddress": stream.ips[0],
                "userAgent": stream.agent,
                "errorCode": "AccessDenied",
                "errorMessage": f"not authorized to perform {source.split('.')[0]}:{event}",
                "eventID": f"{stream.name}-{h}-{k}",
                "recipientAccountId": stream.account,
            }


@dataclass
class Batch:
    streams: list[Stream]
    flagged: dict[str, set[int]]  # principal key -> flagged hours (with spikes)
    control: dict[str, set[int]]  # principal key -> flagged hours (without spikes)
    scores: dict[str, float]  # principal key -> highest score in its spike hours
    backdrop_false: int  # principal alerts of the benign backdrop (without spikes)

    def found(self, s: Stream) -> bool:
        """Whether the stream's principal is flagged in one of its spike's hours."""
        return bool(
            self.flagged.get(entity_key(s.principal), set()) & set(range(s.spike, s.spike + s.length))
        )


def principal_hours(rows: list[dict], start: int) -> tuple[dict[str, set[int]], dict[tuple[str, int], float]]:
    flagged: dict[str, set[int]] = defaultdict(set)
    scores: dict[tuple[str, int], float] = {}
    for r in rows:
        if r.get("entity_type") != "principal":
            continue
        key = entity_key(str(r.get("principal") or ""))
        hour = (int(float(r["_time"])) - start) // HOUR
        flagged[key].add(hour)
        scores[(key, hour)] = float(r.get("score") or 0.0)
    return flagged, scores


def run_batch(engine, options_all, options, seed: int, cells, days: int, accounts: int) -> Batch:
    builder = _Builder(seed, parse_time(DEFAULT_START), days, accounts, 0)
    builder.build_org()
    builder.background()
    builder.traps()
    backdrop = builder.records
    rng = np.random.Generator(np.random.PCG64(seed + 10_000))
    streams = plant(builder, rng, cells, days)
    start = builder.start

    def records(with_spike: bool) -> Iterator[dict]:
        yield from backdrop
        for i, s in enumerate(streams):
            yield from stream_records(s, start, with_spike, seed * 100_000 + i)

    with_rows = engine.run(records(True), options_all)
    without = engine.run(records(False), options)
    flagged_all, scores_all = principal_hours(with_rows, start)
    flagged = {k: {h for h in v if scores_all[(k, h)] >= options.threshold} for k, v in flagged_all.items()}
    control, _ = principal_hours(without, start)
    scores = {}
    for s in streams:
        key = entity_key(s.principal)
        scores[key] = max(
            (scores_all.get((key, h), 0.0) for h in range(s.spike, s.spike + s.length)), default=0.0
        )
    planted = {entity_key(s.principal) for s in streams}
    backdrop_false = sum(len(v) for k, v in control.items() if k not in planted)
    return Batch(streams, flagged, control, scores, backdrop_false)


def grid(shapes, rates, factors, lengths) -> list[tuple[str, float, float, int]]:
    return [(s, r, f, n) for s in shapes for r in rates for f in factors for n in lengths]


def render(batches: list[Batch], args, elapsed: float, engine_note: str) -> str:
    hit: dict[tuple, list[bool]] = defaultdict(list)
    score: dict[tuple, list[float]] = defaultdict(list)
    false_spiked: dict[tuple, int] = defaultdict(int)
    false_control: dict[tuple, int] = defaultdict(int)
    days: dict[tuple, float] = defaultdict(float)
    backdrop_false = sum(b.backdrop_false for b in batches)
    for b in batches:
        for s in b.streams:
            key = entity_key(s.principal)
            window = set(range(s.spike, s.spike + s.length))
            flagged = b.flagged.get(key, set())
            cell = (s.shape, s.rate, s.factor, s.length)
            hit[cell].append(b.found(s))
            score[cell].append(b.scores[key])
            kind = (s.shape, s.rate)
            false_spiked[kind] += len(flagged - window)
            false_control[kind] += len(b.control.get(key, set()))
            days[kind] += args.days
    shapes = [s for s in SHAPES if s in args.shapes]
    cols = [(f, n) for f in args.factors for n in args.hours]
    out = [
        "# Sensitivity sweep: relative spikes of steady denied automation",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by"
        f" `python tests/bench/sensitivity.py {' '.join(args.argv)}` ({elapsed:.0f} s on 2 shared cores)"
        f"{engine_note}.",
        "",
        f"Each cell: {args.instances} streams (one spike each, at a random hour of days 8-{args.days - 1}"
        f" of {args.days}), planted in benign organisations of {args.accounts} accounts (generator"
        " backdrop, seeds "
        f"{', '.join(str(args.seed + i) for i in range(args.instances))}). Streams: an assumed role"
        " failing with AccessDenied on 2-5 APIs from one address; *poisson* / *negbin* (variance"
        f" {NEGBIN_INDEX:g} x the mean), *-seasonal*: smooth daily +-30 %, weekly +-15 % and a smooth"
        " drift (sd 10 % a day). A spike: Poisson extra failures at (factor - 1) x the stream's"
        " rate of the hour, on its usual APIs and address. Detected: a principal alert in one of"
        " the spike's hours (default Options: threshold 50, min_failures 5).",
        "",
        "## Detection rate (and median highest score in the spike's hours)",
        "",
    ]
    for shape in shapes:
        out += [f"### {shape}", ""]
        out.append("| rate/h | " + " | ".join(f"x{f:g} {n}h" for f, n in cols) + " |")
        out.append("|---:|" + "---:|" * len(cols))
        for rate in args.rates:
            cells = []
            for f, n in cols:
                hits = hit[(shape, rate, f, n)]
                med = float(np.median(score[(shape, rate, f, n)])) if hits else 0.0
                cells.append(f"{sum(hits)}/{len(hits)} ({med:.0f})")
            out.append(f"| {rate:g} | " + " | ".join(cells) + " |")
        out.append("")
    out += [
        "## False alerts on the planted streams",
        "",
        "Principal alerts of each stream kind per 1,000 principal-days: *without spikes* (the same"
        " streams, the spike's extra failures left out), and *with spikes* outside the spike's hours.",
        "",
        "| shape | rate/h | principal-days | without spikes | (per 1,000) | with spikes, outside them |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for shape in shapes:
        for rate in args.rates:
            k = (shape, rate)
            per = 1000.0 * false_control[k] / days[k] if days[k] else math.nan
            out.append(
                f"| {shape} | {rate:g} | {days[k]:.0f} | {false_control[k]} | {per:.2f} | {false_spiked[k]} |"
            )
    total_days = sum(days.values())
    total_false = sum(false_control.values())
    out += [
        "",
        f"All planted streams: {total_false} false alerts over {total_days:.0f} principal-days"
        f" ({1000.0 * total_false / max(total_days, 1):.2f} per 1,000); the benign backdrop's own"
        f" principal alerts (without spikes): {backdrop_false}.",
        "",
        "## By factor and length (all shapes and rates >= 2/h)",
        "",
        "| factor | " + " | ".join(f"{n}h" for n in args.hours) + " |",
        "|---:|" + "---:|" * len(args.hours),
    ]
    for f in args.factors:
        cells = []
        for n in args.hours:
            hits = [x for (s, r, ff, nn), v in hit.items() if ff == f and nn == n and r >= 2 for x in v]
            cells.append(f"{sum(hits)}/{len(hits)} ({sum(hits) / max(len(hits), 1):.2f})")
        out.append(f"| x{f:g} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def kept(path: str) -> str:
    """The hand-kept tail of an existing report (from its KEPT heading on), or ''."""
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as fh:
        old = fh.read()
    at = old.find("\n" + KEPT)
    return "" if at < 0 else old[at:]


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def parse_and_load(parser: argparse.ArgumentParser, argv: Sequence[str] | None):
    """The sweep's arguments (with ``--engine-path`` added and ``argv`` kept for the report) and the
    engine (a prototype copy, or bin/) with its default Options and those with show=all; the
    engine part None (said on stderr) when it cannot be loaded."""
    parser.add_argument("--engine-path", default="", help="a folder holding a prototype copy of iamspike")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    engine, error = load_engine(args.engine_path)
    if engine is None:
        print(f"engine unavailable: {error}", file=sys.stderr)
        return args, None
    return args, (engine, engine_options(engine), engine_options(engine, show="all"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=3, help="streams per cell (one organisation each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--accounts", type=int, default=2, help="accounts of each benign organisation")
    parser.add_argument("--rates", type=floats, default=list(RATES))
    parser.add_argument("--factors", type=floats, default=list(FACTORS))
    parser.add_argument("--hours", type=lambda t: [int(x) for x in t.split(",")], default=list(LENGTHS))
    parser.add_argument("--shapes", type=lambda t: t.split(","), default=list(SHAPES))
    parser.add_argument("--output", default="", help="markdown report (default: print only)")
    args, loaded = parse_and_load(parser, argv)
    if loaded is None:
        return 1
    engine, options, options_all = loaded
    started = time.perf_counter()
    batches = []
    for i in range(args.instances):
        for shape in args.shapes:
            cells = grid([shape], args.rates, args.factors, args.hours)
            batch = run_batch(engine, options_all, options, args.seed + i, cells, args.days, args.accounts)
            batches.append(batch)
            found = sum(batch.found(s) for s in batch.streams)
            false = sum(len(batch.control.get(entity_key(s.principal), ())) for s in batch.streams)
            print(
                f"seed {args.seed + i} {shape}: {found}/{len(batch.streams)} spikes found,"
                f" {false} false alerts ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    note = f" with the engine at {args.engine_path}" if args.engine_path else ""
    text = render(batches, args, time.perf_counter() - started, note)
    if args.output:
        text += kept(args.output)
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
