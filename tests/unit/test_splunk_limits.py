"""The Splunk limits the distributed path and the saved state meet, read from Splunk's own files.

docs/distributed.md ("Splunk limits the distributed path meets") lists each limit with its
default in Splunk 10.0, 10.2 and 10.4; tests/standin/limits.py reads them from
etc/system/default/limits.conf and the .spec files of those versions (../shared/data/splunk-spec).
Here: the documented defaults are Splunk's, and what the shipped searches send and store stays
within them, at the worst case the engine can produce where that is bounded (a state row at the
default `history` and `span`, a principal's first failures at their cap, `state.FIRST_FAILURES_KEPT`);
the PwnedLabs enumeration (465 APIs in one hour) is the most any real set reaches.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from iamspike import cli, rare, state, statefold
from iamspike.intake import FIRST_TIME
from iamspike.options import Options
from iamspike.state import SourceHistory
from standin import kvstore, limits
from standin.conf import read_conf
from standin.spl import documented_searches, expand_macros, pipeline, shipped_searches, unquoted, walk

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "default"
DOC = ROOT / "docs" / "distributed.md"
SECTION = "## Splunk limits the distributed path meets"
CLOUDTRAIL = ROOT.parent / "shared" / "data" / "cloudtrail"
SAVED = read_conf(DEFAULT / "savedsearches.conf")
MACROS = read_conf(DEFAULT / "macros.conf")
MB = 1024 * 1024

ACCOUNTS = 1_000  # issue 15's organisation: >= 1,000 accounts, >= 200,000 principals
ENUMERATED_APIS = 465  # PwnedLabs' temp-user: distinct APIs failed in one hour (measured)
LONGEST_API = 46  # the longest API name in that enumeration
AWS_APIS = 20_000  # more APIs than a principal can fail on (AWS has tens of thousands)
WELL_WITHIN = 0.75  # the share of a save batch's bytes a principal's row of the worst case may take
ACCOUNT_WITHIN = 0.9  # ... an account's row, its event sources' sums (P29) fitted to the rest
# Each number of a state row at a width no real one reaches: a bin's failures; an account's distinct
# (principal, API) pairs, failing principals (the organisation has 200,000) and busiest source's
# actors; a principal's distinct APIs (AWS has tens of thousands).
FAILURES, PAIRS, PRINCIPALS, APIS = 9_999_999_999, 9_999_999, 999_999, 99_999
# An account's event sources' rates (P29): each sum at its widest text (7 digits and an exponent),
# the source names longer than AWS's longest (route53-recovery-control-config.amazonaws.com: 45),
# more sources than AWS has (about 400 event sources).
RATE_SUM, LONGEST_SOURCE, SOURCES = 1.234567e-05, 48, 1_000


@pytest.fixture(scope="module", autouse=True)
def _specs_present() -> None:
    if not limits.SPLUNK_SPECS.is_dir():
        pytest.skip(f"{limits.SPLUNK_SPECS} not present (shared reference data, never copied)")


def documented() -> list[tuple[str, str, str, list[str]]]:
    """(conf, stanza, key, [10.0, 10.2, 10.4 values]) of the doc section's table rows."""
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"docs/distributed.md has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in body.splitlines():
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        ref = re.fullmatch(r"`(\w+\.conf) \[([^\]]+)\] (\w+)`", cells[0]) if len(cells) > 2 else None
        if ref:
            rows.append((*ref.groups(), [v.strip() for v in cells[1].split("/")]))
    return rows


def splunk_value(version: str, conf: str, stanza: str, key: str) -> str:
    if conf == "limits.conf":
        value = limits.default(version, stanza, key)
    else:  # no default/<conf> here: the spec's Default line
        value = limits.spec_default(version, conf, stanza, key)
    return "none" if value is None else value


def test_the_documented_defaults_are_splunks() -> None:
    rows = documented()
    assert len(rows) >= 15, "the section's table lost its rows"
    for conf, stanza, key, values in rows:
        expected = [splunk_value(v, conf, stanza, key) for v in limits.VERSIONS]
        assert values == expected, f"{conf} [{stanza}] {key}: documented {values}, Splunk's {expected}"


def test_a_reply_chunk_of_any_size_is_accepted() -> None:
    """The map phase answers `finished` with all its counts in one chunk (166.4 MB for one
    indexer-day of the scale bench) and SCPv2 allows one reply per chunk: only commands.conf
    `maxchunksize` bounds it, 0 (any size) in every version, and the app never sets it."""
    for version in limits.VERSIONS:
        assert limits.spec_default(version, "commands.conf", "<STANZA_NAME>", "maxchunksize") == "0"
        said = limits.spec_text(version, "commands.conf", "<STANZA_NAME>", "maxchunksize")
        assert 'If set to "0", the command can send any size chunk' in said, version
        assert limits.spec_default(version, "commands.conf", "<STANZA_NAME>", "maxwait") == "0"
    command = read_conf(DEFAULT / "commands.conf")["iamspike"]
    assert command.get("maxchunksize", "0") == "0", "a reply larger than maxchunksize ends the command"
    assert command.get("maxwait", "0") == "0", "the map phase holds its counts until finished"


BETWEEN_PHASES = {"localop", "appendpipe", "streamstats", "eval", "lookup", "fields", "inputlookup"}


def test_nothing_between_the_phases_limits_a_row_or_a_field() -> None:
    """Count rows (a `v4` field up to 776 KB) pass only commands with no size or memory limit
    of their own between `iamspike phase=map` and the scoring `iamspike`: no stats family
    (maxvaluesize, max_mem_usage_mb spills), no mvexpand (truncates past max_mem_usage_mb). The
    state macro's `appendpipe` subpipeline works on a copy of the rows and appends its own: its
    `stats` starts from the keys alone (`values` of one key field by `account_state_key`, which
    spills to disk past `[stats]` max_mem_usage_mb and keeps every value: `maxvalues` 0), so no
    count text enters it, and no mvexpand is used."""
    seen = 0
    for where, spl in shipped_searches(ROOT):
        steps = pipeline(expand_macros(spl, MACROS))
        maps = [i for i, (c, rest, _) in enumerate(steps) if c == "iamspike" and "phase=map" in rest]
        for i in maps:
            end = next((j for j in range(i + 1, len(steps)) if steps[j][0] == "iamspike"), len(steps))
            between = {c for c, _, _ in steps[i + 1 : end]}
            assert between <= BETWEEN_PHASES, (
                f"{where}: {sorted(between - BETWEEN_PHASES)} between the phases"
            )
            for command, _, subsearches in steps[i + 1 : end]:
                for sub in subsearches if command == "appendpipe" else ():
                    inner = [(c, rest) for c, rest, _ in pipeline("| " + sub)]
                    assert "mvexpand" not in {c for c, _ in inner}, where
                    stats = [rest for c, rest in inner if c == "stats"]
                    assert all(
                        re.fullmatch(r"values\(iamspike_key\) AS \w+ by account_state_key", r) for r in stats
                    )
                    assert inner[0] == ("eval", "iamspike_key=coalesce(state_keys, state_key)"), where
            seen += 1
    assert seen >= 5
    for version in limits.VERSIONS:
        assert limits.default(version, "stats", "maxvalues") == "0", version
        assert limits.default(version, "stats", "maxvaluesize") == "0", version


def worst_entry(kind: str, apis: int = 0) -> state.StateEntry:
    """The largest state row the engine writes at the default history and span: every kept bin
    non-zero with the widest numbers above, `apis` first failures of the longest name, in the first
    hours a search reads (first failures are not trimmed to the history: the widest offsets); for an
    account, its series only (:func:`worst_account_row` adds its event sources)."""
    o = Options()
    n, span = o.history // o.span, o.span
    first = 1_700_000_000 // span * span
    last = first + (n - 1) * span

    def each(value: int) -> dict[int, int]:
        return {first + i * span: value for i in range(n)}

    account = "123456789012"
    if kind == state.ACCOUNT:
        failing = each(PRINCIPALS)
        return state.StateEntry(
            span,
            first,
            last,
            account,
            "",
            each(FAILURES),
            each(PAIRS),
            {},
            failing,
            kind,
            each(PRINCIPALS - 1),
        )
    principal = f"arn:aws:sts::{account}:assumed-role/{'r' * 64}/{'s' * 64}"
    oldest = -(-int(FIRST_TIME) // span) * span
    names = {f"{i:0{LONGEST_API}d}": oldest + (i % n) * span for i in range(apis)}
    return state.StateEntry(span, first, last, account, principal, each(FAILURES), each(APIS), names)


def widest_sources(n: int = SOURCES) -> dict[str, tuple[float, tuple[float, ...]]]:
    """``n`` sources of the longest name and widest sums, every hour of the day non-zero."""
    return {f"{i:0{LONGEST_SOURCE}d}": (RATE_SUM, (RATE_SUM,) * 24) for i in range(n)}


def worst_account_row(n_sources: int = SOURCES) -> dict:
    """The worst account row as the state fold writes it: the widest series, then as many of
    ``n_sources`` widest event sources as fit beside them, and the busy ones' sums and digests (a
    saved row's busy sources: as many digests as a row lists)."""
    entry = worst_entry(state.ACCOUNT)
    busy_ids = frozenset(f"{i:06x}" for i in range(rare.MAX_BUSY_IDS))
    sources = SourceHistory(entry.first, widest_sources(n_sources), (RATE_SUM, (RATE_SUM,) * 24), busy_ids)
    return statefold.account_row(entry, sources)


def row_bytes(entry: state.StateEntry) -> int:
    """A document's size as the KV store stand-in counts it (its JSON text)."""
    return kvstore.size(state.encode(entry))


def test_an_account_row_keeps_its_sources_as_far_as_its_series_leave_room() -> None:
    """Beside the widest series an account row keeps only the busy sources' sums (rare.kept);
    beside a real account's series (a row of 20-30 KB) every source of a busy account (35) as it
    is; and no row passes ``state.MAX_ACCOUNT_ROW_BYTES``, 90 % of a save batch's share."""
    budget = kvstore.Limits.of_splunk().max_size_per_batch_save_mb * MB
    budget //= kvstore.Limits.of_splunk().max_documents_per_batch_save
    assert ACCOUNT_WITHIN * budget >= state.MAX_ACCOUNT_ROW_BYTES
    row = worst_account_row()
    assert state.row_bytes(row) == kvstore.size(row) <= state.MAX_ACCOUNT_ROW_BYTES
    sources = json.loads(row["iamspike_state"])["sources"]
    assert sources["by"] == {} and len(sources["busy"]) == 25 and "busy_ids" not in sources
    entry = worst_entry(state.ACCOUNT)
    half = {start: n for start, n in entry.bins.items() if (start - entry.first) // entry.span < 360}
    real = replace(entry, bins=half, distinct_apis={}, failing_principals={}, service_actors={})
    wide = SourceHistory(entry.first, widest_sources(35))
    kept = statefold.account_row(real, wide)
    assert (
        json.loads(kept["iamspike_state"])["sources"]
        == json.loads(state.encode(replace(real, sources=wide))["iamspike_state"])["sources"]
    )
    assert 15_000 < kvstore.size(kept) <= state.MAX_ACCOUNT_ROW_BYTES


def test_a_principals_row_holds_at_most_the_capped_first_failures() -> None:
    """However many APIs a principal fails on, its row keeps FIRST_FAILURES_KEPT first failures,
    and at the widest the worst row stays well within a save batch's share of a row."""
    row = state.encode(worst_entry(state.PRINCIPAL, AWS_APIS))
    assert len(json.loads(row["iamspike_state"])["first_failures"]) == state.FIRST_FAILURES_KEPT
    budget = kvstore.Limits.of_splunk().max_size_per_batch_save_mb * MB
    budget //= kvstore.Limits.of_splunk().max_documents_per_batch_save
    assert kvstore.size(row) <= WELL_WITHIN * budget
    assert row_bytes(worst_entry(state.PRINCIPAL, ENUMERATED_APIS)) == kvstore.size(row)


def test_the_worst_state_rows_fit_every_kvstore_batch() -> None:
    account = kvstore.size(worst_account_row())
    principal = row_bytes(worst_entry(state.PRINCIPAL, AWS_APIS))
    assert principal > 35_000 and account > 40_000, "the worst case is no longer the worst"
    for version in limits.VERSIONS:
        kv = {k: int(limits.default(version, "kvstore", k)) for k in kvstore.Limits.__dataclass_fields__}
        for size, what in ((account, "account"), (principal, "enumerating principal")):
            save = kv["max_documents_per_batch_save"] * size
            assert save <= kv["max_size_per_batch_save_mb"] * MB, f"{version}: a save batch of {what} rows"
            read = kv["max_queries_per_batch"] * size
            assert read <= kv["max_size_per_batch_result_mb"] * MB, (
                f"{version}: a lookup batch of {what} rows"
            )
        # IAM Error Spike - Baseline State: every account row in one query, cut at this size.
        assert ACCOUNTS * account <= kv["max_size_per_result_mb"] * MB, version
        assert kv["max_rows_per_query"] >= ACCOUNTS, version


def test_a_save_batch_of_the_worst_rows_lands_in_one_piece() -> None:
    """Through the KV store stand-in: the worst rows are saved by count, never split by size."""
    store = kvstore.Collection(["_key", "entity_type", "account", "principal", "iamspike_state", "updated"])
    entry = worst_entry(state.PRINCIPAL, AWS_APIS)
    rows = []
    for n in range(store.limits.max_documents_per_batch_save):
        row = state.encode(entry)
        row["state_key"] = f"{n:032x}"
        rows.append(row)
    steps = list(store.upsert_steps(rows, "state_key"))
    assert steps == ["saved"] and len(store.rows) == len(rows)


def state_rows(folder: str) -> list[dict]:
    """``iamspike --show state`` on a real set, as the rows ``outputlookup`` would save."""
    path = CLOUDTRAIL / folder
    if not path.is_dir():
        pytest.skip(f"{path} not present (shared reference data, never copied)")
    out = io.StringIO()
    assert cli.main(["--show", "state", "--format", "json", str(path)], out=out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_the_real_sets_state_rows_are_within_the_worst_case() -> None:
    """The worst case's name width is PwnedLabs' own, its enumeration (465 APIs) is kept at the
    cap, and every real row stays within the share of a save batch that the worst case is checked
    at."""
    budget = kvstore.Limits.of_splunk().max_size_per_batch_save_mb * MB
    budget //= kvstore.Limits.of_splunk().max_documents_per_batch_save
    rows = state_rows("pwnedlabs_incident_3252") + state_rows("sans504_s3_ransomware_lab")
    firsts = [json.loads(r["iamspike_state"]).get("first_failures", {}) for r in rows]
    assert max(len(f) for f in firsts) == state.FIRST_FAILURES_KEPT < ENUMERATED_APIS
    assert max(len(api) for f in firsts for api in f) == LONGEST_API
    largest = max(kvstore.size(r) for r in rows)
    assert 6_000 < largest <= row_bytes(worst_entry(state.PRINCIPAL, AWS_APIS)) <= WELL_WITHIN * budget


def relative(text: str) -> int:
    """``-30d@h`` -> seconds before the snapped now (the snap taken as exact)."""
    found = re.fullmatch(r"-(\d+)([mhd])@[mh]", text)
    assert found, text
    return int(found.group(1)) * {"m": 60, "h": 3600, "d": 86400}[found.group(2)]


def test_the_shipped_windows_fit_the_kept_history() -> None:
    o = Options()
    backfill = SAVED["IAM Error Spike - Baseline Backfill"]
    length = relative(backfill["dispatch.earliest_time"]) - relative(backfill["dispatch.latest_time"])
    assert length <= o.history and length % o.span == 0, "the backfill writes more bins than show=state keeps"
    upkeep = SAVED["IAM Error Spike - Baseline Maintenance"]
    assert relative(upkeep["dispatch.earliest_time"]) - relative(upkeep["dispatch.latest_time"]) == o.span
    assert re.search(r"\bspan=1h\b", MACROS["iam_error_spike_options"]["definition"])
    for name in ("IAM Error Spike - Account Alert", "IAM Error Spike - Principal Alert"):
        alert = SAVED[name]
        assert relative(alert["dispatch.earliest_time"]) - relative(alert["dispatch.latest_time"]) <= o.span


def subsearches(spl: str) -> list[str]:
    """The bodies of ``[...]`` subsearches outside quoted strings (rex classes are quoted). An
    ``appendpipe [...]`` subpipeline is not a subsearch ("Unlike a subsearch, the subpipeline is
    not run first": Splunk's appendpipe reference): it runs on the rows that reach it."""
    plain, found, depth, start = unquoted(spl), [], 0, 0
    for i, c in enumerate(plain):
        if c == "[":
            depth, start = depth + 1, (i + 1 if depth == 0 else start)
        elif c == "]" and depth:
            depth -= 1
            if depth == 0 and not re.search(r"\bappendpipe\s*$", plain[: start - 1]):
                found.append(spl[start:i])
    return found


def test_every_subsearch_returns_fewer_rows_than_maxout() -> None:
    bodies = [b for _, spl in shipped_searches(ROOT) for b in subsearches(expand_macros(spl, MACROS))]
    assert bodies, "no subsearch found: the investigation dashboard's other alerts panel has one"
    for version in limits.VERSIONS:
        cap = min(
            limits.as_int(limits.default(version, "subsearch", "maxout")),
            limits.as_int(limits.default(version, "searchresults", "maxresultrows")),
        )
        for body in bodies:
            steps = list(walk(body))
            at = max(
                (i for i, (c, rest) in enumerate(steps) if c == "head" and rest.strip().isdigit()),
                default=None,
            )
            assert at is not None, f"subsearch without head: {body[:80]}"
            assert int(steps[at][1]) <= cap, f"{version}: head {steps[at][1]} > {cap}: {body[:80]}"
            assert {c for c, _ in steps[at + 1 :]} <= {"rename", "fields", "eval", "table"}, body[:80]


def test_every_subsearch_over_events_reads_only_the_entitys_account() -> None:
    """A subsearch is finalized at [subsearch] maxtime (60 s), silently partial: one that reads raw
    events names the entity's account as a search term before the fold, so it reads that account's
    events, not every event of its range (48 h of issue 15's organisation, 1 TB a day)."""
    for version in limits.VERSIONS:
        assert limits.default(version, "subsearch", "maxtime") == "60", version
    seen = 0
    for where, spl in shipped_searches(ROOT):
        for body in subsearches(spl):
            steps = list(walk(body))
            if "`iam_error_spike_events`" not in steps[0][1]:
                continue
            seen += 1
            assert re.search(r'(?:^|\s)"\$account\$"(?:\s|$)', steps[0][1]), f"{where}: {body[:80]}"
            assert "iam_error_spike_entity(" in steps[1][0] + steps[1][1], f"{where}: {body[:80]}"
    assert seen >= 1, "the investigation dashboard's other alerts panel reads events in a subsearch"


def test_no_shipped_search_runs_eventstats_or_mvexpand() -> None:
    """eventstats "stops adding the requested fields" past [default] max_mem_usage_mb and
    maxresultrows, silently (the same-IPs panel's join of an IP's rows did that past about
    700,000 rows); mvexpand's output "is truncated, not spilled to disk" past [mvexpand]
    max_mem_usage_mb (500 MB of whole expanded events: the EC2 inventory search expanded every
    instance event, _raw and all, once per address); stats spills to disk instead, and keeps every
    value (maxvalues 0), and a multivalue by-field gives one group per value. No list() either:
    it keeps [stats] list_maxsize (100) values."""
    for version in limits.VERSIONS:
        said = limits.spec_text(version, "limits.conf", "default", "max_mem_usage_mb")
        assert "eventstats command processor stops adding the requested fields" in said, version
        assert "If the memory limit is exceeded, output is truncated, not spilled to disk" in said, version
        assert limits.default(version, "stats", "maxvalues") == "0", version
    for where, spl in shipped_searches(ROOT) + documented_searches(ROOT):
        for command, rest in walk(expand_macros(spl, MACROS)):
            assert command not in ("eventstats", "mvexpand"), f"{where}: {command}"
            assert not (command in ("stats", "chart", "timechart") and "list(" in rest), f"{where}: list()"


# What may follow a ``sort`` that keeps its default count: steps that show rows, never ones that
# compute from all of them.
DISPLAY = {"head", "table", "fields", "rename", "convert"}


def sort_problems(spl: str, default_count: int) -> list[str]:
    """A ``sort`` without a count keeps its first ``default_count`` rows (searchbnf.conf
    [sort-command]): harmless as the last ordering before a table, a silent cut before anything
    that counts or joins (stats, lookup, outputlookup...). In every pipeline, subsearches too."""
    found = []
    bodies = [spl]
    while bodies:
        steps = pipeline(bodies.pop())
        for i, (command, rest, subsearches) in enumerate(steps):
            bodies.extend(subsearches)
            if command != "sort" or re.match(r"\s*(\d+|limit=\d+)\b", rest):
                continue
            after = [c for c, _, _ in steps[i + 1 :]]
            heads = [int(r) for c, r, _ in steps[i + 1 :] if c == "head" and r.strip().isdigit()]
            if not set(after) <= DISPLAY or any(n > default_count for n in heads):
                found.append(f"sort {rest.strip()} ({default_count} rows kept) then {after}")
    return found


def test_a_sort_without_count_only_orders_what_is_shown() -> None:
    for version in limits.VERSIONS:
        grammar = limits.SPLUNK_SPECS / "searchbnf" / version / "searchbnf.conf"
        block = re.search(r"(?ms)^\[sort-command\]\n(.*?)^\[", grammar.read_text(encoding="utf-8")).group(1)
        assert "If no number is specified, the default limit of 10000 is used" in block, version
    for where, spl in shipped_searches(ROOT) + documented_searches(ROOT):
        assert sort_problems(expand_macros(spl, MACROS), 10000) == [], where


def test_the_sort_check_on_known_shapes() -> None:
    assert sort_problems("search a | sort - n | head 25 | table n", 10000) == []
    assert sort_problems("search a | sort 0 - n | stats count", 10000) == []
    assert sort_problems("search a | sort - n | stats count", 10000) == [
        "sort - n (10000 rows kept) then ['stats']"
    ]
    assert sort_problems("search a [search b | sort - n | outputlookup x] | table a", 10000) == [
        "sort - n (10000 rows kept) then ['outputlookup']"
    ]


def test_shipped_csv_lookups_are_held_in_memory() -> None:
    files = sorted((ROOT / "lookups").glob("*.csv"))
    assert files
    for version in limits.VERSIONS:
        cap = limits.as_int(limits.default(version, "lookup", "max_memtable_bytes"))
        for path in files:
            assert path.stat().st_size <= cap, f"{version}: {path.name} is indexed on disk past {cap}"


def test_the_spec_reader_reads_what_splunk_wrote() -> None:
    """The disagreement SOURCE.txt names: spec 100, default/limits.conf 10000."""
    assert limits.spec_default("10.0", "limits.conf", "subsearch", "maxout") == "100"
    assert limits.default("10.0", "subsearch", "maxout") == "10000"
    assert limits.default("10.4", "kvstore", "max_rows_per_query") == "50000"
    assert limits.default("10.0", "inputlookup", "kv_chunk_size") is None
    assert limits.as_int("100MB") == 100 * MB
    assert json.loads(state.encode(worst_entry(state.ACCOUNT))["iamspike_state"])["type"] == "account"
