"""Sensitivity sweep of thin account-wide spreads: where the account rules are blind.

    .venv/bin/python tests/bench/sensitivity_spread.py [--instances 3] [--output docs/bench/sensitivity.md]

A sibling of ``sensitivity.py`` (its engine loading, options and organisations): plants, in
benign organisations (``generator._Builder``, no attack scenarios) whose accounts are scaled to a
*background* (``near-silent``: about 0.3 failures an hour, 0-1 failing principal; ``quiet``: about
2 an hour; ``busy``: the generator's own, a poller and a nightly batch), thin spreads over a grid:

- ``--members`` principals (2-12) denied ``--each`` times (1-5) each;

and, drawn at random per spread (reported by level, per background):

- services: one the account usually fails on (``known``), one it has never failed on (``rare``),
  or 2-3 services (``several``), the spread's APIs that service's (or those services') catalog APIs;
- timing: within 5 minutes, across the hour, across 2 hours (``--timing straddle``: 10 minutes
  across the turn of an hour, drawn only when asked);
- who: existing principals of the account (its quietest people and roles) or new ones (their
  first event the spread);
- origin: each principal from its own usual address and agent, or all from one new address with
  an attacker's agent (the generator's ``account_spread`` does the latter).

Spreads sit in days 8-13 of 14, at most one every other day in an account. The engine runs
twice over each organisation: with the spreads (detected: the account, or one of the spread's
principals, flagged in one of the spread's hours) and without them (false alerts: the same
entities flagged in the same hours). The report is appended to (or replaces) the section
``## Thin spreads`` of ``--output``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in (os.path.join(ROOT, "tests"), os.path.join(ROOT, "bin")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench.generator import API_CATALOG, ATTACKER_AGENTS, DEFAULT_START, HOUR, _Builder, parse_time  # noqa: E402
from bench.quality_score import entity_key  # noqa: E402
from bench.sensitivity import parse_and_load  # noqa: E402

BACKGROUNDS = {"near-silent": 0.3, "quiet": 2.0, "busy": 0.0}  # failures an hour (0: as generated)
MEMBERS = (2, 3, 5, 8, 12)
EACH = (1, 2, 3, 5)
SERVICES = ("known", "rare", "several")
# timing -> (first minute, None: drawn; minutes); "straddle" (drawn only when asked): 10 minutes
# across the turn of an hour, so the spread falls in two hourly bins
TIMINGS = {"5min": (None, 5.0), "hour": (0.0, 60.0), "2h": (0.0, 120.0), "straddle": (55.0, 10.0)}
DRAWN_TIMINGS = ("5min", "hour", "2h")
WHO = ("existing", "new")
ORIGINS = ("own", "shared")
SECTION = "## Thin spreads"
# The section's own subsections (written by every run); any other "### " heading in it starts the
# hand-kept analysis, which a run keeps as it is (earlier engines, the straddle runs, blind areas).
GENERATED = ("### Detection by background", "### By each drawn level")
PROFILE_MEAN = {"office": 0.24, "flat": 1.0, "batch": 1.0 / 24.0, "none": 0.0}  # a profile's hourly mean


@dataclass
class Spread:
    account: str
    background: str
    members: int
    each: int
    services: str
    timing: str
    who: str
    origin: str
    hour: int
    principals: tuple[str, ...]
    usual: float  # the account's mean failures an hour (its background)

    @property
    def hours(self) -> set[int]:
        first, span = TIMINGS[self.timing]
        return {self.hour, self.hour + 1} if (first or 0.0) + span > 60.0 else {self.hour}


def scale_accounts(builder: _Builder, backgrounds: dict[str, str]) -> None:
    """Scale each account's failure levels to its background's failures an hour (before
    ``background()``); a busy account keeps the generator's levels."""
    for acct, bg in backgrounds.items():
        target = BACKGROUNDS[bg]
        if not target:
            continue
        mine = [p for p in builder.principals if p.account == acct]
        usual = sum(p.fail_level * PROFILE_MEAN.get(p.profile, 1.0) for p in mine)
        for p in mine:
            p.fail_level *= target / max(usual, 1e-9)


def failed_sources(builder: _Builder, acct: str) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in builder.records:
        if r.get("errorCode") and r["recipientAccountId"] == acct:
            counts[r["eventSource"]] += 1
    return counts


def spread_apis(rng: np.random.Generator, kind: str, known: dict[str, int]) -> tuple[tuple[str, str], ...]:
    sources = sorted({s for s, _ in API_CATALOG})
    if kind == "known" and known:
        picked = [max(known, key=known.get)]
    elif kind == "rare" or kind == "known":
        picked = [str(rng.choice([s for s in sources if s not in known] or sources))]
    else:
        picked = [str(s) for s in rng.choice(sources, size=int(rng.integers(2, 4)), replace=False)]
    return tuple(api for api in API_CATALOG if api[0] in picked)


def plant(
    builder: _Builder,
    rng: np.random.Generator,
    cells,
    backgrounds: dict[str, str],
    levels: dict[str, list[str]],
) -> list[Spread]:
    """Each cell (background, members, each) a spread in an account of that background, at most
    one every other day an account (days 8, 10, 12), its other levels drawn at random from ``levels``."""
    slots = {acct: [8, 10, 12] for acct in backgrounds}
    known = {acct: failed_sources(builder, acct) for acct in backgrounds}
    spreads = []
    for n, (bg, members, each) in enumerate(cells):
        acct = next(a for a, b in backgrounds.items() if b == bg and slots[a])
        day = slots[acct].pop(0)
        hour = day * 24 + int(rng.integers(0, 22))
        services, timing, who, origin = (
            str(rng.choice(levels[k])) for k in ("services", "timing", "who", "origin")
        )
        apis = spread_apis(rng, services, known[acct])
        if who == "existing":
            pool = [
                p
                for p in builder.principals
                if p.account == acct
                and p.kind in ("human", "ci_user", "app_role", "sso_role")
                and p.first_hour == 0
            ]
            pool.sort(key=lambda p: p.fail_level)  # the account's quietest first
            pool = pool[: max(members, len(pool) // 2)]
            chosen = [
                pool[int(i)] for i in rng.choice(len(pool), size=min(members, len(pool)), replace=False)
            ]
        else:
            chosen = []
            for i in range(members):
                if i % 2:
                    p = builder._add_role(acct, "app_role", f"spread-{n}-role-{i}", first_hour=hour)
                else:
                    p = builder._add_user(acct, "ci_user", f"spread-{n}-user-{i}", 0, (), first_hour=hour)
                chosen.append(p)
        ip, agent = builder._ip(), str(builder._pick(ATTACKER_AGENTS))
        first, span = TIMINGS[timing]
        m0 = float(rng.uniform(0.0, 60.0 - span)) if first is None else first
        for p in chosen:
            shared = origin == "shared"
            builder.emit(
                p,
                hour,
                each,
                ok=False,
                apis=apis,
                ip=ip if shared else None,
                agent=agent if shared else None,
                minutes=(m0, m0 + span),
            )
        mine = [p.principal for p in builder.principals if p.account == acct and p.principal in builder.rates]
        usual = float(sum(np.mean(builder.rates[k]) for k in mine))
        spreads.append(
            Spread(
                acct,
                bg,
                members,
                each,
                services,
                timing,
                who,
                origin,
                hour,
                tuple(p.principal for p in chosen),
                usual,
            )
        )
    return spreads


def flagged_hours(
    rows: list[dict], start: int, every: bool = False
) -> dict[tuple[str, str], dict[int, float]]:
    """(entity type, account or principal key) -> hour -> score, of the engine's spikes (``is_spike``
    of show=all rows: score and min_failures; every row of the default show), or of every row."""
    out: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for r in rows:
        if not (every or r.get("is_spike", 1)):
            continue
        score = float(r.get("score") or 0.0)
        kind = str(r.get("entity_type"))
        key = str(r.get("account")) if kind == "account" else entity_key(str(r.get("principal") or ""))
        hour = (int(float(r["_time"])) - start) // HOUR
        out[(kind, key)][hour] = max(score, out[(kind, key)].get(hour, 0.0))
    return out


def hit(flags, s: Spread) -> bool:
    keys = [("account", s.account)] + [("principal", entity_key(p)) for p in s.principals]
    return any(set(flags.get(k, {})) & s.hours for k in keys)


@dataclass
class Result:
    spread: Spread
    found: bool
    false: bool  # flagged in the same hours without the spreads
    score: float  # the account's highest score in the spread's hours
    noted: bool  # the account's reason names its failing principals (the spread is evidence)


def shifted(records: list[dict], seconds: int) -> list[dict]:
    """Copies of ``records`` ``seconds`` earlier (the engine then bins them offset by that much)."""
    out = []
    for r in records:
        t = parse_time(r["eventTime"]) - seconds
        out.append(
            {**r, "eventTime": _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        )
    return out


def merge_offset(flags, more) -> tuple[dict, int]:
    """``flags`` with an offset pass's (an offset bin ``k`` overlaps hours ``k`` and ``k + 1``), and
    how many of the offset pass's account alerts overlap no account alert of ``flags``."""
    out: dict = defaultdict(dict, {k: dict(v) for k, v in flags.items()})
    new = 0
    for key, hours in more.items():
        for k, score in hours.items():
            if key[0] == "account" and not ({k, k + 1} & set(flags.get(key, {}))):
                new += 1
            for h in (k, k + 1):
                out[key][h] = max(score, out[key].get(h, 0.0))
    return out, new


def run_org(
    engine, options_all, options, seed: int, cells, days: int, levels, offset: int = 0
) -> tuple[list[Result], int]:
    per_bg = defaultdict(int)
    for bg, _, _ in cells:
        per_bg[bg] += 1
    n_accounts = {bg: -(-k // 3) for bg, k in per_bg.items()}
    builder = _Builder(seed, parse_time(DEFAULT_START), days, sum(n_accounts.values()), 0)
    builder.build_org()
    order = [bg for bg in BACKGROUNDS for _ in range(n_accounts.get(bg, 0))]
    backgrounds = dict(zip(builder.accounts, order))
    scale_accounts(builder, backgrounds)
    builder.background()
    builder.traps()
    control = list(builder.records)
    rng = np.random.Generator(np.random.PCG64(seed + 20_000))
    spreads = plant(builder, rng, cells, backgrounds, levels)
    records = sorted(builder.records, key=lambda r: r["eventTime"])
    control.sort(key=lambda r: r["eventTime"])
    start = builder.start
    rows = engine.run(records, options_all)
    flags = flagged_hours(rows, start)
    scores = flagged_hours(rows, start, every=True)
    ctrl = flagged_hours(engine.run(control, options), start)
    new = sum(len(v) for (kind, _), v in ctrl.items() if kind == "account")  # account alerts
    if offset:  # a second pass over bins ``offset`` seconds later (a prototype: union of the two)
        off = flagged_hours(engine.run(shifted(records, offset), options), start - offset)
        flags, _ = merge_offset(flags, off)
        off = flagged_hours(engine.run(shifted(control, offset), options), start - offset)
        ctrl, more = merge_offset(ctrl, off)
        new += more
    noted = {
        (str(r.get("account")), (int(float(r["_time"])) - start) // HOUR)
        for r in rows
        if r.get("entity_type") == "account" and "failed at once" in str(r.get("reason"))
    }
    results = []
    for s in spreads:
        score = max((scores.get(("account", s.account), {}).get(h, 0.0) for h in s.hours), default=0.0)
        spread_noted = any((s.account, h) in noted for h in s.hours)
        results.append(Result(s, hit(flags, s), hit(ctrl, s), score, spread_noted))
    return results, new


def rate(results: list[Result]) -> str:
    return f"{sum(r.found for r in results)}/{len(results)}" if results else "-"


def render(
    results: list[Result], account_alerts: int, account_days: int, args, elapsed: float, commit: str
) -> str:
    out = [
        SECTION,
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by"
        f" `python tests/bench/sensitivity_spread.py {' '.join(args.argv)}` ({elapsed:.0f} s on 2 shared"
        f" cores), engine of {commit}. Benign organisations (generator backdrop, seeds from {args.seed}),"
        " accounts scaled to a background: *near-silent* (about 0.3 failures an hour), *quiet* (about"
        " 2), *busy* (the generator's: a poller at 10-25 an hour, a nightly batch). Each spread: its"
        " principals denied *each* times on the same APIs; services, timing, who and origin drawn at"
        " random per spread (module docstring). Detected: the account or one of the spread's"
        " principals flagged (default Options: score >= 50, min_failures 5) in the spread's hours.",
        "",
        "### Detection by background, principals and denials each (median account score)",
        "",
    ]
    cell = defaultdict(list)
    for r in results:
        s = r.spread
        cell[(s.background, s.members, s.each)].append(r)
    shown = [bg for bg in BACKGROUNDS if bg in args.backgrounds]
    for bg in shown:
        usual = [r.spread.usual for r in results if r.spread.background == bg]
        out += [f"#### {bg} (usual hour {np.median(usual) if usual else 0:.1f} failures)", ""]
        out.append("| principals | " + " | ".join(f"x{e} each" for e in args.each) + " |")
        out.append("|---:|" + "---:|" * len(args.each))
        for m in args.members:
            row = []
            for e in args.each:
                rs = cell[(bg, m, e)]
                med = float(np.median([r.score for r in rs])) if rs else 0.0
                row.append(f"{rate(rs)} ({med:.0f})")
            out.append(f"| {m} | " + " | ".join(row) + " |")
        out.append("")
    out += ["### By each drawn level and background (all sizes; in brackets: failures <= 15)", ""]
    out.append("| level | " + " | ".join(shown) + " |")
    out.append("|---|" + "---:|" * len(shown))
    for attr, levels in (("services", SERVICES), ("timing", TIMINGS), ("who", WHO), ("origin", ORIGINS)):
        for level in levels:
            row = []
            for bg in shown:
                rs = [r for r in results if r.spread.background == bg and getattr(r.spread, attr) == level]
                small = [r for r in rs if r.spread.members * r.spread.each <= 15]
                row.append(f"{rate(rs)} ({rate(small)})")
            out.append(f"| {attr}={level} | " + " | ".join(row) + " |")
    missed = [r for r in results if not r.found]
    out += [
        "",
        f"Missed spreads whose account reason names its failing principals (the spread counted as"
        f" evidence, P13/P26): {sum(r.noted for r in missed)}/{len(missed)}; of the found ones:"
        f" {sum(r.noted for r in results if r.found)}/{len(results) - len(missed)}.",
    ]
    false = sum(r.false for r in results)
    out += [
        "",
        f"False alerts: the spread's account or principals flagged in its hours without the spreads:"
        f" {false}/{len(results)}; account alerts of the organisations without spreads: {account_alerts}"
        f" over {account_days} account-days.",
        "",
    ]
    return "\n".join(out)


def kept_tail(section: str) -> str:
    """What follows the generated part of ``section`` (the old report from SECTION on): from its
    first hand-kept "### " heading, else from the next "## " section, else nothing."""
    end = section.find("\n## ", 1)
    own = section if end < 0 else section[:end]
    at = 0
    while True:
        at = own.find("\n### ", at + 1)
        if at < 0:
            return "" if end < 0 else "\n" + section[end + 1 :]
        if not own[at + 1 :].startswith(GENERATED):
            return "\n" + section[at + 1 :]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=3, help="spreads per cell")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--members", type=lambda t: [int(x) for x in t.split(",")], default=list(MEMBERS))
    parser.add_argument("--each", type=lambda t: [int(x) for x in t.split(",")], default=list(EACH))
    parser.add_argument("--backgrounds", type=lambda t: t.split(","), default=list(BACKGROUNDS))
    drawn = (("services", SERVICES), ("timing", DRAWN_TIMINGS), ("who", WHO), ("origin", ORIGINS))
    for name, default in drawn:
        parser.add_argument(
            f"--{name}", type=lambda t: t.split(","), default=list(default), help="levels drawn"
        )
    parser.add_argument(
        "--offset", type=int, default=0, help="minutes: also run over bins that much later (a prototype)"
    )
    parser.add_argument("--per-org", type=int, default=30, help="spreads per organisation")
    parser.add_argument("--commit", default="", help="the engine's commit, for the report")
    parser.add_argument("--output", default="", help="markdown report whose section is replaced")
    args, loaded = parse_and_load(parser, argv)
    if loaded is None:
        return 1
    engine, options, options_all = loaded
    levels = {k: getattr(args, k) for k in ("services", "timing", "who", "origin")}
    cells = [
        (bg, m, e)
        for _ in range(args.instances)
        for bg in args.backgrounds
        for m in args.members
        for e in args.each
    ]
    order = np.random.Generator(np.random.PCG64(args.seed)).permutation(len(cells))
    levels = {k: getattr(args, k) for k in ("services", "timing", "who", "origin")}
    cells = [cells[int(i)] for i in order]
    started = time.perf_counter()
    results: list[Result] = []
    alerts = days = 0
    for n, at in enumerate(range(0, len(cells), args.per_org)):
        chunk = cells[at : at + args.per_org]
        rs, a = run_org(
            engine, options_all, options, args.seed + n, chunk, args.days, levels, 60 * args.offset
        )
        results += rs
        alerts += a
        days += args.days * len({r.spread.account for r in rs})
        print(
            f"org {args.seed + n}: {sum(r.found for r in rs)}/{len(rs)} found,"
            f" {sum(r.false for r in rs)} false"
            f" ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    text = render(results, alerts, days, args, time.perf_counter() - started, args.commit or "bin/")
    if args.output:
        with open(args.output, encoding="utf-8") as fh:
            old = fh.read()
        at = old.find("\n" + SECTION)
        head = old if at < 0 else old[:at]
        rest = "" if at < 0 else old[at + 1 :]
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(head.rstrip("\n") + "\n\n" + text + kept_tail(rest))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
