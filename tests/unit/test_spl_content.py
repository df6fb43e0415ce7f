"""Static checks of every SPL string the app ships: saved searches, macros, dashboards.

With the SPL reader of tests/standin/spl.py they check that every macro (with its argument
count), lookup and saved search an SPL string references exists, that cron schedules parse,
that the alerts' result tokens name fields the search outputs, and that the Dashboard Studio
definitions resolve every reference. Commands, functions and options against Splunk's grammar:
test_spl_grammar.py.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from standin.conf import ConfError, parse_conf, read_conf
from standin.spl import (
    SplError,
    dashboards,
    documented_searches,
    expand_macros,
    first_name,
    is_time_modifier,
    pipeline,
    shipped_searches,
    table_fields,
    unquoted,
    walk,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "default"
VIEWS = DEFAULT / "data" / "ui" / "views"
APP = "TA-aws-iam-error-spike"

_BUILTIN_VIEWS = "search alerts reports dashboards datasets analytics_workspace"
BUILTIN_VIEWS = frozenset(_BUILTIN_VIEWS.split())


# ---------------------------------------------------------------------------------------------
# Splunk .conf syntax


def load_conf(name: str) -> dict[str, dict[str, str]]:
    return read_conf(DEFAULT / name)


# ---------------------------------------------------------------------------------------------
# Cron


MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec"
DAYS = "sun mon tue wed thu fri sat"
CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(MONTHS.split())}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(DAYS.split())}),
)


def cron_values(expr: str) -> list[set[int]]:
    """The five standard cron fields -> the set of values each allows; ValueError if malformed."""
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"{expr!r}: a cron schedule has 5 fields, got {len(parts)}")
    result = []
    for text, (label, low, high, names) in zip(parts, CRON_FIELDS):
        allowed: set[int] = set()
        for item in text.split(","):
            match = re.fullmatch(r"(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(\d+))?", item.lower())
            if not match:
                raise ValueError(f"{expr!r}: bad {label} item {item!r}")
            span, step = match.group(1), int(match.group(2) or 1)
            if step < 1:
                raise ValueError(f"{expr!r}: {label} step must be >= 1")

            def number(token: str, label: str = label, low: int = low, high: int = high, names=names) -> int:
                value = names[token] if token in names else int(token) if token.isdigit() else None
                if value is None or not low <= value <= high:
                    raise ValueError(f"{expr!r}: {label} {token!r} outside {low}-{high}")
                return value

            if span == "*":
                start, end = low, high
            elif "-" in span:
                start, end = (number(t) for t in span.split("-"))
                if start > end:
                    raise ValueError(f"{expr!r}: {label} range {span!r} runs backwards")
            else:
                start = number(span)
                end = high if match.group(2) else start
            allowed.update(range(start, end + 1, step))
        result.append(allowed)
    return result


def cron_period_minutes(expr: str) -> int:
    """Largest gap between two runs within a day, for schedules that run every hour of the day."""
    minutes, hours, *_ = cron_values(expr)
    if hours != set(range(24)):
        raise ValueError(f"{expr!r}: not an every-hour schedule")
    runs = sorted(h * 60 + m for h in hours for m in minutes)
    return max(b - a for a, b in zip(runs, [*runs[1:], runs[0] + 24 * 60]))


def relative_minutes(modifier: str) -> int:
    """`-75m@m` -> -75, `-2h@h` -> -120, `now` -> 0 (snapping ignored: enough for window sizes)."""
    if modifier == "now":
        return 0
    match = re.fullmatch(r"([+-]?\d+)(m|h|d)(@\w+)?", modifier)
    if not match:
        raise ValueError(modifier)
    return int(match.group(1)) * {"m": 1, "h": 60, "d": 1440}[match.group(2)]


@pytest.mark.parametrize(
    "expr, ok",
    [
        ("*/15 * * * *", True),
        ("20 * * * *", True),
        ("0 6 * * 1-5", True),
        ("0,30 8-18/2 1 jan,jul sun", True),
        ("*/15 * * *", False),
        ("60 * * * *", False),
        ("* 24 * * *", False),
        ("* * 0 * *", False),
        ("5-1 * * * *", False),
        ("*/0 * * * *", False),
        ("@hourly * * * *", False),
        ("* * * foo *", False),
    ],
)
def test_cron_validator(expr: str, ok: bool) -> None:
    if ok:
        cron_values(expr)
    else:
        with pytest.raises(ValueError):
            cron_values(expr)


def test_cron_period() -> None:
    assert cron_period_minutes("*/15 * * * *") == 15
    assert cron_period_minutes("20 * * * *") == 60
    assert cron_period_minutes("0,10 * * * *") == 50


# ---------------------------------------------------------------------------------------------
# What the app ships


def lookup_names() -> set[str]:
    names = {s for s in load_conf("transforms.conf") if s != "default"}
    names |= {p.name for p in (ROOT / "lookups").glob("*.csv")}
    return names


SPL = shipped_searches(ROOT)
MACROS = load_conf("macros.conf")


def test_every_conf_parses_and_the_content_exists() -> None:
    for name in ("macros.conf", "savedsearches.conf", "transforms.conf", "collections.conf", "commands.conf"):
        assert (DEFAULT / name).exists(), name
        load_conf(name)
    assert len(SPL) >= 15


def conf_text_problems(raw: bytes) -> list[str]:
    """What splunkd reads differently from the text a reviewer sees: a byte-order mark (part of
    the first stanza's name), a carriage return (kept in values), a ``\\`` followed by spaces
    (no continuation: the next line becomes a setting of its own), bytes that are not UTF-8."""
    found = []
    if raw.startswith(b"\xef\xbb\xbf"):
        found.append("byte-order mark")
    if b"\r" in raw:
        found.append("carriage return")
    found += [
        f"line {n}: '\\' then spaces"
        for n, line in enumerate(raw.splitlines(), 1)
        if re.search(rb"\\[ \t]+$", line)
    ]
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        found.append("not UTF-8")
    return found


def test_shipped_confs_are_plain_text_splunkd_reads_as_written() -> None:
    paths = [*DEFAULT.glob("*.conf"), *(ROOT / "metadata").glob("*.meta"), *(ROOT / "README").glob("*.spec")]
    assert len(paths) > 10
    assert {
        p.name: conf_text_problems(p.read_bytes()) for p in paths if conf_text_problems(p.read_bytes())
    } == {}
    assert conf_text_problems(b"\xef\xbb\xbf[s]\r\nsearch = a \\ \n| b\n\xff") == [
        "byte-order mark",
        "carriage return",
        "line 2: '\\' then spaces",
        "not UTF-8",
    ]


def test_conf_parser_reads_continuations_and_rejects_junk() -> None:
    parsed = parse_conf("a = 1\n[s]\nsearch = x \\\n| y\n# c\nk=v\n")
    assert parsed == {"default": {"a": "1"}, "s": {"search": "x \n| y", "k": "v"}}
    for bad in ("[s]\nno equals sign\n", "[s]\nk = 1\nk = 2\n", "[s]\n[s]\n", "[s\nk = v\n"):
        with pytest.raises(ConfError):
            parse_conf(bad)


def test_spl_reader_on_known_shapes() -> None:
    macros = {"m(2)": {"args": "a, b", "definition": 'x="$a$" y=$b$'}, "n": {"definition": '`m("1, 2", 3)`'}}
    assert expand_macros("search `n` | stats count", macros) == 'search x="1, 2" y=3 | stats count'
    with pytest.raises(SplError):
        expand_macros("`m(1)`", macros)
    assert expand_macros('search "a`n`b" `n`', macros) == 'search "a`n`b" x="1, 2" y=3'
    assert expand_macros('search "a\\"`n`"', macros) == 'search "a\\"`n`"'
    with pytest.raises(SplError):
        expand_macros("`e`", {"e": {"definition": '"search x"', "iseval": "1"}})
    steps = list(walk('search a="|" [search b | head 1] | where c="]" | inputlookup append=t t'))
    assert [c for c, _ in steps] == ["search", "search", "head", "where", "inputlookup"]
    with pytest.raises(SplError):
        pipeline("search a | | b")
    with pytest.raises(SplError):
        pipeline('search "open')


DOCUMENTED = documented_searches(ROOT)  # what README.md and docs/*.md give users to paste


@pytest.mark.parametrize("where, spl", SPL + DOCUMENTED, ids=[w for w, _ in SPL + DOCUMENTED])
def test_spl_references_resolve(where: str, spl: str) -> None:
    expanded = expand_macros(spl, MACROS)
    lookups = lookup_names()
    saved = set(load_conf("savedsearches.conf"))
    for command, rest in walk(expanded):
        if command in ("lookup", "inputlookup", "outputlookup"):
            assert first_name(rest) in lookups, f"{where}: lookup {first_name(rest)!r} is not defined"
        if command == "savedsearch":
            assert first_name(rest) in saved, f"{where}: saved search {first_name(rest)!r} does not exist"


def test_every_macro_is_used_and_declares_its_arguments() -> None:
    used: set[str] = set()
    for _, spl in SPL:
        expand_macros(spl, MACROS, used)
    for name, stanza in MACROS.items():
        if name == "default":
            continue
        assert stanza.get("definition", "").strip(), f"macro {name} has no definition"
        count = int(re.fullmatch(r".*\((\d+)\)", name).group(1)) if name.endswith(")") else 0
        names = [a.strip() for a in stanza.get("args", "").split(",") if a.strip()]
        assert len(names) == count, f"macro {name}: args = {names}"
        # macros.conf.spec: "A comma-separated list" of names of letters, digits, _ and -, none
        # repeated; read strictly, a space after a comma is part of the next name.
        raw = stanza.get("args", "").split(",") if names else []
        assert all(re.fullmatch(r"[\w-]+", a) for a in raw) and len(set(names)) == len(names), name
        for arg in names:
            assert f"${arg}$" in stanza["definition"], f"macro {name} never uses ${arg}$"
        assert name in used, f"macro {name} is defined but no search uses it"


SAVED = {k: v for k, v in load_conf("savedsearches.conf").items() if k != "default"}
# The spike alerts: tracked, and scoring with iamspike (the input-health alert is tracked too).
ALERTS = {
    k: v
    for k, v in SAVED.items()
    if v.get("alert.track") == "1"
    and any(c == "iamspike" for c, _ in walk(expand_macros(v["search"], MACROS)))
}
# Every saved search with an alert condition (savedsearches.conf.spec: `counttype` defaults to
# "always", no condition), the spike alerts and the input-health alert alike.
TRIGGERED = {k: v for k, v in SAVED.items() if v.get("counttype", "always") != "always"}
TRUE = {"1", "true"}


def test_alerts_end_in_their_own_filter_macro() -> None:
    assert len(ALERTS) == 2
    filters = []
    for name, stanza in ALERTS.items():
        last = stanza["search"].strip().split("|")[-1].strip()
        assert re.fullmatch(r"`iam_error_spike_\w+_filter`", last), f"[{name}] ends with {last!r}"
        filters.append(last)
        assert MACROS[last.strip("`")]["definition"] == "search *"
    assert len(set(filters)) == len(filters)


@pytest.mark.parametrize("name", sorted(SAVED))
def test_schedules_and_time_ranges(name: str) -> None:
    stanza = SAVED[name]
    for key in ("dispatch.earliest_time", "dispatch.latest_time"):
        if key in stanza:
            assert is_time_modifier(stanza[key]), f"[{name}] {key} = {stanza[key]!r}"
    if stanza.get("enableSched") == "1":
        minutes, hours, *_ = cron_values(stanza["cron_schedule"])
        runs = sorted(h * 60 + m for h in hours for m in minutes)
        shortest = min(b - a for a, b in zip(runs, [*runs[1:], runs[0] + 24 * 60]))
        window = stanza.get("schedule_window", "0")
        # savedsearches.conf.spec: a window "must be shorter than the period of the search" and
        # is "mutually exclusive with a non-default 'schedule_priority'".
        if window.isdigit() and int(window) > 0:
            assert int(window) < shortest, f"[{name}] schedule_window {window} >= its period"
            assert stanza.get("schedule_priority", "default") == "default", name


def test_alert_windows_leave_no_gap_and_wait_for_delivery() -> None:
    for name, stanza in ALERTS.items():
        period = cron_period_minutes(stanza["cron_schedule"])
        earliest = relative_minutes(stanza["dispatch.earliest_time"])
        latest = relative_minutes(stanza["dispatch.latest_time"])
        assert latest - earliest >= period, f"[{name}] window shorter than its schedule: minutes go unseen"
        assert latest <= -15, f"[{name}] window ends before CloudTrail's delivery lag"
        assert stanza["enableSched"] == "1" and stanza.get("disabled", "0") == "0"


def test_baseline_maintenance_adds_each_hour_once_after_the_alert_windows() -> None:
    stanza = SAVED["IAM Error Spike - Baseline Maintenance"]
    earliest = relative_minutes(stanza["dispatch.earliest_time"])
    latest = relative_minutes(stanza["dispatch.latest_time"])
    assert latest - earliest == cron_period_minutes(stanza["cron_schedule"]) == 60
    assert stanza["realtime_schedule"] == "0", "continuous scheduling: a missed hour must be caught up"
    steps = list(walk(expand_macros(stanza["search"], MACROS)))
    assert steps[-1] == ("outputlookup", "append=true key_field=state_key iamspike_baseline")
    for alert in ALERTS.values():
        assert "`iam_error_spike_baseline`" in alert["search"]


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_tokens_and_throttle_fields_are_result_fields(name: str) -> None:
    stanza = ALERTS[name]
    fields = set(table_fields(expand_macros(stanza["search"], MACROS)))
    assert {"_time", "account", "principal", "failures", "expected", "upper", "score", "severity"} <= fields
    assert stanza["alert.suppress"] == "1" and stanza["alert.digest_mode"] == "0"
    assert set(stanza["alert.suppress.fields"].split(",")) <= fields
    for key, value in stanza.items():
        if key.startswith("action.email"):
            for token in re.findall(r"\$result\.(\w+)\$", value):
                assert token in fields, f"[{name}] {key} uses $result.{token}$"
        if key.startswith(("action.notable.param.rule", "action.risk.param._risk_message")):
            for token in re.findall(r"\$(\w+)\$", value):
                assert token in fields, f"[{name}] {key} uses ${token}$"
    risk = json.loads(stanza["action.risk.param._risk"])
    assert risk and all(r.get("risk_object_field", r.get("threat_object_field")) in fields for r in risk)
    # Off by default, configured: email, webhook, ES notable and risk.
    for action in ("email", "webhook", "notable", "risk"):
        assert stanza[f"action.{action}"] == "0"
    assert not any(k.startswith("action.script") for k in stanza)


@pytest.mark.parametrize("name", sorted(TRIGGERED))
def test_every_alert_triggers_per_result_and_is_seen(name: str) -> None:
    """savedsearches.conf.spec: `alert.suppress.fields` are "fields to use when suppressing
    per-result alerts", and `alert.digest_mode` defaults to true (one action for the whole result
    set: the fields are not used, and a `$result.x$` token names the first row only). Throttled by
    fields or naming a result in its actions, an alert must set `alert.digest_mode = 0`, and name
    only fields its results have. `alert.track` defaults to auto, which tracks an alert only
    through an action whose `track_alert` is set (alert_actions.conf.spec: default false): with
    every action off, a fired alert untracked is seen nowhere."""
    stanza = TRIGGERED[name]
    fields = set(table_fields(expand_macros(stanza["search"], MACROS)))
    suppress_fields = [f.strip() for f in stanza.get("alert.suppress.fields", "").split(",") if f.strip()]
    tokens = {
        t for k, v in stanza.items() if k.startswith("action.") for t in re.findall(r"\$result\.(\w+)\$", v)
    }
    if (suppress_fields and stanza.get("alert.suppress") in TRUE) or tokens:
        assert stanza.get("alert.digest_mode", "true") not in TRUE, (
            f"[{name}] digest mode: per-result settings unused"
        )
    assert set(suppress_fields) <= fields, f"[{name}] alert.suppress.fields not in the results"
    assert tokens <= fields, f"[{name}] $result.*$ tokens not in the results: {tokens - fields}"
    actions_on = [k for k, v in stanza.items() if re.fullmatch(r"action\.\w+", k) and v in TRUE]
    assert stanza.get("alert.track") in TRUE or actions_on, f"[{name}] fires unseen: untracked, no action on"


def lookup_fields(name: str) -> set[str]:
    """The fields of a lookup: a KV store lookup's fields_list, a CSV lookup's header."""
    stanza = load_conf("transforms.conf").get(name, {"filename": name})
    if "fields_list" in stanza:
        return {f.strip() for f in stanza["fields_list"].split(",")}
    return set((ROOT / "lookups" / stanza["filename"]).read_text(encoding="utf-8").splitlines()[0].split(","))


LOOKUP_SIDE = re.compile(r"(\S+)(?:\s+AS\s+\S+)?", re.I)


def lookup_problems(command: str, rest: str) -> list[str]:
    """What a lookup-family command names that its lookup does not have: ``lookup``'s match and
    OUTPUT/OUTPUTNEW fields (the lookup's side of each ``AS``), ``inputlookup ... where``'s
    fields, and ``key_field`` (KV store lookups only, transforms.conf.spec / outputlookup)."""
    name = first_name(rest)
    fields = lookup_fields(name)
    kvstore = load_conf("transforms.conf").get(name, {}).get("external_type") == "kvstore"
    found = []
    if command == "lookup":
        clauses = re.split(
            r"\s+OUTPUT(?:NEW)?\s+", rest[rest.index(name) + len(name) :], maxsplit=1, flags=re.I
        )
        named = [m.group(1) for clause in clauses for m in LOOKUP_SIDE.finditer(clause)]
        found += [f"lookup {name}: no field {f}" for f in named if f not in fields]
    if command == "inputlookup" and re.search(r"\swhere\s", rest):
        condition = re.split(r"\swhere\s", rest, maxsplit=1)[1]
        named = re.findall(r"([A-Za-z_]\w*)\s*[!<>=]", unquoted(condition))
        found += [f"inputlookup {name} where: no field {f}" for f in named if f not in fields]
    if "key_field=" in rest and not kvstore:
        found.append(f"{command} {name}: key_field on a lookup that is not a KV store")
    return found


@pytest.mark.parametrize("where, spl", SPL + DOCUMENTED, ids=[w for w, _ in SPL + DOCUMENTED])
def test_lookup_fields_exist(where: str, spl: str) -> None:
    for command, rest in walk(expand_macros(spl, MACROS)):
        if command in ("lookup", "inputlookup", "outputlookup"):
            assert lookup_problems(command, rest) == [], where


def test_lookup_check_on_known_shapes() -> None:
    assert (
        lookup_problems("lookup", "aws_ec2_inventory_ips ip AS src OUTPUT instance_id last_seen AS t") == []
    )
    assert lookup_problems("lookup", "aws_ec2_inventory_ips ipp AS src OUTPUTNEW instance_id") == [
        "lookup aws_ec2_inventory_ips: no field ipp"
    ]
    assert lookup_problems("lookup", "iamspike_baseline _key AS k OUTPUT iamspike_stat") == [
        "lookup iamspike_baseline: no field iamspike_stat"
    ]
    assert lookup_problems("inputlookup", 'iamspike_baseline where entity_typ="account"') == [
        "inputlookup iamspike_baseline where: no field entity_typ"
    ]
    assert lookup_problems("outputlookup", "append=true key_field=principal iamspike_allowlist") == [
        "outputlookup iamspike_allowlist: key_field on a lookup that is not a KV store"
    ]


def test_lookups_and_collections_agree() -> None:
    transforms = load_conf("transforms.conf")
    collections = load_conf("collections.conf")
    for name, stanza in transforms.items():
        if stanza.get("external_type") == "kvstore":
            assert stanza["collection"] in collections, name
            assert stanza["fields_list"].split(",")[0].strip() == "_key"
            declared = {
                k[len("field.") :] for k in collections[stanza["collection"]] if k.startswith("field.")
            }
            listed = {f.strip() for f in stanza["fields_list"].split(",")} - {"_key"}
            assert listed == declared, f"{name}: fields_list and collection fields differ"
        elif "filename" in stanza:
            path = ROOT / "lookups" / stanza["filename"]
            assert path.exists(), name
        if "match_type" in stanza:
            assert match_type_problems(stanza["match_type"], lookup_fields(name)) == [], name


def match_type_problems(match_type: str, fields: set[str]) -> list[str]:
    """transforms.conf.spec ``match_type``: "A comma and space-delimited list of
    <match_type>(<field_name>)", the types WILDCARD, CIDR and EXACT; a field the lookup does not
    have matches nothing, and the lookup falls back to exact matching without a word."""
    found = []
    for item in [i for i in re.split(r"[,\s]+(?![^(]*\))", match_type.strip()) if i]:
        parsed = re.fullmatch(r"(WILDCARD|CIDR|EXACT)\(([^()]+)\)", item)
        if not parsed:
            found.append(f"not <match_type>(<field>): {item}")
        elif parsed.group(2).strip() not in fields:
            found.append(f"{parsed.group(1)}: no field {parsed.group(2).strip()}")
    return found


def test_the_match_type_check_on_known_shapes() -> None:
    assert match_type_problems("WILDCARD(principal), CIDR(ip)", {"principal", "ip"}) == []
    assert match_type_problems("WILDCARD(princpal)", {"principal"}) == ["WILDCARD: no field princpal"]
    assert match_type_problems("wildcard(principal)", {"principal"}) == [
        "not <match_type>(<field>): wildcard(principal)"
    ]


# ---------------------------------------------------------------------------------------------
# Dashboards


DASHBOARDS = dashboards(ROOT)
TOKEN = re.compile(r"\$([A-Za-z_][\w]*)(?:\.[\w.]+)?\$")


def test_the_views_are_studio_dashboards() -> None:
    assert {"iam_error_spike_investigation", "iam_error_spike_runbook"} <= set(DASHBOARDS)


@pytest.mark.parametrize("view", sorted(DASHBOARDS))
def test_dashboard_references_resolve(view: str) -> None:
    d = DASHBOARDS[view]
    viz, inputs, sources = d["visualizations"], d.get("inputs", {}), d.get("dataSources", {})
    layout = d["layout"]
    tabs = [t["layoutId"] for t in layout["tabs"]["items"]]
    assert tabs and set(tabs) <= set(layout["layoutDefinitions"])
    placed: list[str] = []
    for layout_id in tabs:
        definition = layout["layoutDefinitions"][layout_id]
        width = definition["options"]["width"]
        for item in definition["structure"]:
            assert item["item"] in viz or item["item"] in inputs, f"{view}: layout item {item['item']}"
            pos = item["position"]
            assert pos["x"] + pos["w"] <= width, f"{view}: {item['item']} overflows the canvas"
            placed.append(item["item"])
    assert len(placed) == len(set(placed))
    assert set(viz) <= set(placed), f"{view}: visualizations not in the layout: {set(viz) - set(placed)}"
    assert set(layout.get("globalInputs", [])) <= set(inputs)
    assert set(inputs) <= set(placed) | set(layout.get("globalInputs", []))
    used_sources = {ref for v in viz.values() for ref in v.get("dataSources", {}).values()}
    assert used_sources <= set(sources), f"{view}: missing data sources {used_sources - set(sources)}"
    assert set(sources) <= used_sources, f"{view}: unused data sources {set(sources) - used_sources}"
    tokens = {i["options"]["token"] for i in inputs.values()}
    for ds_id, ds in sources.items():
        text = json.dumps(ds["options"])
        for token in TOKEN.findall(text):
            assert token in tokens, f"{view} {ds_id}: token ${token}$ is set by no input"
    for viz_id, v in viz.items():
        for handler in v.get("eventHandlers", []):
            assert handler["type"] == "drilldown.setToken"
            columns = table_fields(sources[v["dataSources"]["primary"]]["options"]["query"])
            for t in handler["options"]["tokens"]:
                assert t["token"] in tokens, f"{view} {viz_id}: drilldown sets unknown token {t['token']}"
                field = re.fullmatch(r"row\.(\w+)\.value", t["key"]).group(1)
                assert field in columns, f"{view} {viz_id}: drilldown reads {field}, not a column"
        markdown = v.get("options", {}).get("markdown", "")
        for target in re.findall(rf"\(/app/{APP}/(\w+)\)", markdown):
            assert (VIEWS / f"{target}.xml").exists(), f"{view} {viz_id}: link to missing view {target}"


# Dashboard Studio's own types (Splunk's Dashboard Studio reference: visualizations, inputs, data
# sources). A type outside these renders as an empty "unknown visualization" box, with no error
# anywhere a test or AppInspect would see.
STUDIO_TYPES = {
    "visualizations": {
        *(
            f"splunk.{name}"
            for name in [
                "area",
                "bar",
                "bubble",
                "choropleth.map",
                "choropleth.svg",
                "column",
                "ellipse",
                "events",
                "fillergauge",
                "image",
                "line",
                "linkgraph",
                "map",
                "markdown",
                "markergauge",
                "parallelcoordinates",
                "pie",
                "punchcard",
                "rectangle",
                "sankey",
                "scatter",
                "singlevalue",
                "singlevalueicon",
                "singlevalueradial",
                "table",
            ]
        ),
    },
    "inputs": {
        f"input.{name}"
        for name in ["timerange", "dropdown", "multiselect", "text", "number", "checkbox", "radio"]
    },
    "dataSources": {"ds.search", "ds.chain", "ds.savedSearch", "ds.test"},
}
# A token: $name$ or $name.part$, optionally with Studio's filters ($name|s$, $name|u$, $name|h$,
# $name|n$); $$ is a literal dollar.
STUDIO_TOKEN = re.compile(r"\$(?:\$|([A-Za-z_]\w*)(?:\.[\w.]+)?(?:\|[suhn])?\$)")


def studio_problems(definition: dict, view: str) -> list[str]:
    """What Dashboard Studio would not read in one definition: an unknown type of a
    visualization, input or data source; a ``$`` in a data source or drilldown that is not part
    of a token (``$$`` for a literal one); a time range
    (``queryParameters`` earliest/latest, a timerange input's default ``earliest,latest``) that
    is not a time modifier or a token."""
    found = []
    for section, known in STUDIO_TYPES.items():
        for item_id, item in definition.get(section, {}).items():
            if item.get("type") not in known:
                found.append(f"{view} {item_id}: unknown type {item.get('type')!r}")
    # Data sources and drilldowns read every $...$ as a token (a regex's "$" anchor included: two
    # of them make a token that nothing sets, and the search waits for it forever); "$$" is "$".
    # Markdown text is shown as written (a lone $SPLUNK_HOME stays).
    text = json.dumps(
        [definition.get("dataSources", {}), definition.get("defaults", {})]
        + [v.get("eventHandlers", []) for v in definition.get("visualizations", {}).values()]
    )
    dollars = text.count("$") - sum(m.group(0).count("$") for m in STUDIO_TOKEN.finditer(text))
    if dollars:
        found.append(f"{view}: a $ that opens no token ($name$, $name.part$, $name|s$)")
    times = [
        (ds_id, ds.get("options", {}).get("queryParameters", {}))
        for ds_id, ds in definition.get("dataSources", {}).items()
    ]
    times += [
        (section, ds.get("options", {}).get("queryParameters", {}))
        for section, ds in definition.get("defaults", {}).get("dataSources", {}).items()
    ]
    for input_id, item in definition.get("inputs", {}).items():
        if item.get("type") == "input.timerange" and "defaultValue" in item.get("options", {}):
            earliest, _, latest = item["options"]["defaultValue"].partition(",")
            times.append((input_id, {"earliest": earliest, "latest": latest}))
    for where, parameters in times:
        for key, value in parameters.items():
            if not (is_time_modifier(value) or STUDIO_TOKEN.fullmatch(value)):
                found.append(f"{view} {where}: {key} {value!r} is neither a time modifier nor a token")
    return found


@pytest.mark.parametrize("view", sorted(DASHBOARDS))
def test_dashboard_types_tokens_and_times_are_studios(view: str) -> None:
    assert studio_problems(DASHBOARDS[view], view) == []


def test_the_studio_check_on_known_shapes() -> None:
    good = {
        "visualizations": {"v": {"type": "splunk.table"}},
        "inputs": {"i": {"type": "input.timerange", "options": {"token": "t", "defaultValue": "-24h@h,now"}}},
        "dataSources": {
            "d": {
                "type": "ds.search",
                "options": {"query": 'a="$a|s$" $$', "queryParameters": {"earliest": "$t.earliest$"}},
            }
        },
    }
    assert studio_problems(good, "x") == []
    bad = json.loads(json.dumps(good))
    bad["visualizations"]["v"]["type"] = "splunk.tabel"
    bad["inputs"]["i"]["options"]["defaultValue"] = "-24 hours,now"
    bad["dataSources"]["d"]["options"]["query"] = "a=$a b"
    assert studio_problems(bad, "x") == [
        "x v: unknown type 'splunk.tabel'",
        "x: a $ that opens no token ($name$, $name.part$, $name|s$)",
        "x i: earliest '-24 hours' is neither a time modifier nor a token",
    ]


def test_investigation_dashboard_covers_the_issue() -> None:
    d = DASHBOARDS["iam_error_spike_investigation"]
    queries = " ".join(ds["options"]["query"] for ds in d["dataSources"].values())
    tokens = {i["options"]["token"] for i in d["inputs"].values()}
    assert {"account", "principal", "global_time"} <= tokens
    for needle in (
        "iamspike show=all",
        "iplocation",
        "aws_ec2_inventory_ips",
        "index=risk",
        "CreateAccessKey",
        "CreateLoginProfile",
        "AttachUserPolicy",
        "ApiErrorRateInsight",
        "requestParameters",
        "sessionIssuer",
        "mfaAuthenticated",
        "AKIA",
    ):
        assert needle in queries, needle
    markdown = " ".join(v.get("options", {}).get("markdown", "") for v in d["visualizations"].values())
    assert f"/app/{APP}/iam_error_spike_runbook" in markdown
    assert any(v.get("eventHandlers") for v in d["visualizations"].values())


def test_runbook_view_is_docs_runbook() -> None:
    d = DASHBOARDS["iam_error_spike_runbook"]
    texts = [v["options"]["markdown"] for v in d["visualizations"].values() if v["type"] == "splunk.markdown"]
    runbook = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    assert runbook in texts, "run tests/dashboard/sync_runbook.py after editing docs/runbook.md"


def test_nav_points_at_existing_views() -> None:
    nav = ET.parse(DEFAULT / "data" / "ui" / "nav" / "default.xml").getroot()
    views = [v.get("name") for v in nav.iter("view")]
    assert views[0] == "iam_error_spike_investigation"
    for name in views:
        assert name in BUILTIN_VIEWS or (VIEWS / f"{name}.xml").exists(), name


# ---------------------------------------------------------------------------------------------
# One definition of a principal, the fields the engine reads, the distributed path, keyed state


# The allowlist's entries (rows of two `inputlookup append=true`) may follow the state.
ALLOWLIST = [c for c, _, _ in pipeline(expand_macros("| `iam_error_spike_allowlist`", MACROS))]


def iamspike_steps(spl: str) -> list[tuple[int, str]]:
    """(position in the top-level pipeline, arguments) of each iamspike step of a search."""
    return [
        (n, rest) for n, (c, rest, _) in enumerate(pipeline(expand_macros(spl, MACROS))) if c == "iamspike"
    ]


def phase(args: str) -> str:
    match = re.search(r"\bphase=(\w+)", args)
    return match.group(1) if match else "report"


def test_the_fields_macro_is_what_the_engine_reads_plus_raw() -> None:
    cloudtrail = pytest.importorskip("iamspike.cloudtrail")
    command, *fields = MACROS["iam_error_spike_fields"]["definition"].split()
    assert command == "fields" and len(fields) == len(set(fields))
    assert set(fields) == {*cloudtrail.FIELDS, "_raw"}


SCORING = [(where, spl) for where, spl in SPL if not where.startswith("searchbnf") and iamspike_steps(spl)]


@pytest.mark.parametrize("where, spl", SCORING, ids=[w for w, _ in SCORING])
def test_every_shipped_scoring_search_counts_on_the_indexers(where: str, spl: str) -> None:
    """Raw events -> fields -> iamspike phase=map -> (state by key) -> iamspike: only count rows
    reach the search head; panels of one entity's raw events select it with the fold macro."""
    steps = pipeline(expand_macros(spl, MACROS))
    commands = [c for c, _, _ in steps]
    scoring = [n for n, rest in iamspike_steps(spl) if phase(rest) == "report"]
    maps = [n for n, rest in iamspike_steps(spl) if phase(rest) == "map"]
    if not scoring:  # a raw-event panel: the fold phase picks the entity
        assert [phase(rest) for _, rest in iamspike_steps(spl)] == ["fold"], where
        return
    assert len(scoring) == 1 and len(maps) == 1 and maps[0] < scoring[0], where
    assert commands[maps[0] - 1] == "fields" and steps[maps[0] - 1][1] == MACROS["iam_error_spike_fields"][
        "definition"
    ].removeprefix("fields "), f"{where}: the map phase reads exactly the engine's fields"
    between = commands[maps[0] + 1 : scoring[0]]
    state = [c for c, _, _ in pipeline(expand_macros("| `iam_error_spike_baseline`", MACROS))]
    # The map phase's range row (no account, no principal) must reach the scoring: no filter here.
    assert between in ([], state, state + ALLOWLIST), f"{where}: only the state by key between the phases"
    options = expand_macros("`iam_error_spike_options`", MACROS)
    for _, rest in iamspike_steps(spl):
        if phase(rest) != "fold":
            assert options in rest, f"{where}: iamspike without the options macro"


def test_the_state_is_read_and_written_by_key_only() -> None:
    for where, spl in SPL:
        for command, rest in walk(expand_macros(spl, MACROS)):
            name = first_name(rest) if command in ("lookup", "inputlookup", "outputlookup") else ""
            if name in ("iamspike_baseline", "aws_ec2_inventory_ips"):
                if command == "outputlookup":
                    assert re.fullmatch(r"append=true key_field=\w+ \w+", rest), f"{where}: {rest}"
                if command == "lookup" and name == "iamspike_baseline":
                    assert re.match(r"iamspike_baseline _key AS \w+ OUTPUT ", rest), f"{where}: {rest}"
                if command == "inputlookup":  # one query, cut at [kvstore] max_rows_per_query
                    assert where.startswith("savedsearches.conf [IAM Error Spike - Baseline State]"), where
                    assert 'where entity_type="account"' in rest, where
    for name in ALERTS:
        steps = [
            (c, first_name(r) if "lookup" in c else "")
            for c, r in walk(expand_macros(SAVED[name]["search"], MACROS))
        ]
        assert ("lookup", "iamspike_baseline") in steps, name
        assert ("inputlookup", "iamspike_baseline") not in steps, name  # fmt: skip


ENTITY_FIELDS = re.compile(
    r"(userIdentity\.(arn|invokedBy|principalId|sessionContext\.sessionIssuer\.arn))\s*="
)


@pytest.mark.parametrize("where, spl", SPL, ids=[w for w, _ in SPL])
def test_a_principal_is_selected_only_by_the_engines_fold(where: str, spl: str) -> None:
    """No search matches identity fields itself or computes a principal: the rule lives in
    bin/iamspike/principals.py, reached through `iamspike phase=fold` (or the map phase)."""
    expanded = expand_macros(spl, MACROS)
    assert not ENTITY_FIELDS.search(expanded), where
    for command, rest in walk(expanded):
        if command == "eval":
            assert not re.search(r"principal\s*=[^,]*userIdentity", rest), f"{where}: a principal from SPL"
    if "$principal$" in spl:
        assert (
            "iam_error_spike_entity(" in spl or "iamspike phase=fold" in expanded or ("entity_type=" in spl)
        ), f"{where}: uses the principal token outside the fold"


def test_notable_drilldowns_select_the_entity_through_the_fold() -> None:
    for name, stanza in ALERTS.items():
        drilldown = stanza["action.notable.param.drilldown_search"]
        kind = "account" if "Account" in name else "principal"
        wanted = '"$account$", "*"' if kind == "account" else '"$account$", "$principal$"'
        assert f"`iam_error_spike_entity({wanted})`" in drilldown, name
        assert "principal" in table_fields(expand_macros(drilldown, MACROS)), name


def test_panels_say_what_they_show() -> None:
    d = DASHBOARDS["iam_error_spike_investigation"]
    for ds_id, ds in d["dataSources"].items():
        subsearches = [s for c, rest, subs in pipeline(ds["options"]["query"]) for s in subs]
        if subsearches:
            viz = [
                v for v in d["visualizations"].values() if v.get("dataSources", {}).get("primary") == ds_id
            ]
            assert viz and "[subsearch]" in viz[0].get("description", ""), (
                f"{ds_id}: a subsearch limit unsaid"
            )
        assert "append [" not in ds["options"]["query"], ds_id
    series = d["dataSources"]["ds_series"]["options"]["query"]
    assert "sum(upper)" not in series and "span=" not in series
    assert "`iam_error_spike_options`" in series
    same_ips = d["dataSources"]["ds_same_ips"]["options"]["query"]
    assert not [s for _, _, subs in pipeline(same_ips) for s in subs]


def test_nothing_filters_count_rows_before_the_scoring() -> None:
    """The map phase's range row (no account, no principal) must reach the reporting phase: in
    every shipped search, searchbnf examples included, only the state lookups stand between."""
    state = [c for c, _, _ in pipeline(expand_macros("| `iam_error_spike_baseline`", MACROS))]
    seen = 0
    for where, spl in SPL:
        commands = [c for c, _, _ in pipeline(expand_macros(spl, MACROS))]
        phases = [(n, phase(rest)) for n, rest in iamspike_steps(spl)]
        for (a, first), (b, second) in zip(phases, phases[1:]):
            if first == "map" and second == "report":
                seen += 1
                assert commands[a + 1 : b] in ([], state, state + ALLOWLIST), where
    assert seen >= 8


def test_every_scoring_search_reads_the_saved_baseline_between_the_phases() -> None:
    """Issue 12 item 3: an ad hoc score without the saved state has no history before its range
    (about 18 false alerts per 24 h window on the bench, 0.21 with the state). Every shipped
    search, panel and searchbnf example that scores (show=state excepted: the backfill builds the
    state) runs the map phase, then `iam_error_spike_baseline`, then the scoring phase."""
    state = [c for c, _, _ in pipeline(expand_macros("| `iam_error_spike_baseline`", MACROS))]
    scoring_searches = 0
    for where, spl in SPL:
        steps = pipeline(expand_macros(spl, MACROS))
        commands = [c for c, _, _ in steps]
        for n, rest in iamspike_steps(spl):
            if phase(rest) != "report" or re.search(r"\bshow=state\b", rest):
                continue
            scoring_searches += 1
            read = state + ALLOWLIST if commands[n - len(ALLOWLIST) : n] == ALLOWLIST else state
            before = n - len(read) - 1
            assert before >= 0 and commands[before + 1 : n] == read, f"{where}: no saved baseline read"
            map_args = steps[before][1]
            assert commands[before] == "iamspike" and phase(map_args) == "map", f"{where}: {commands[before]}"
            counting = re.compile(r"\b(?:span|classes|event_sources|count_field)=\S+")
            assert counting.findall(map_args) == counting.findall(rest), f"{where}: the phases count alike"
    assert scoring_searches >= 10
