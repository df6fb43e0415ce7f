"""SPL as splunkd reads it before running it: macros expanded, pipelines, subsearches, and every
search string the app ships (saved searches, drilldowns, dashboard data sources, searchbnf
examples). Reads the app's files only; never imports product code.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from standin.conf import read_conf
from standin.kvstore import field_values, one_or_many


class SplError(ValueError):
    pass


def scan(spl: str, on_char) -> None:
    """Walk `spl` outside quotes; call on_char(index, char, depth) for every unquoted char, depth
    counting `[...]` subsearch brackets."""
    quote = None
    depth = 0
    i = 0
    while i < len(spl):
        c = spl[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
            i += 1
            continue
        if c in "\"'":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth < 0:
                raise SplError(f"unbalanced ']' in {spl!r}")
        on_char(i, c, depth)
        i += 1
    if quote or depth:
        raise SplError(f"unbalanced quotes or brackets in {spl!r}")


def split_args(text: str) -> list[str]:
    """Macro arguments: commas outside quotes; surrounding double quotes removed as Splunk does."""
    cuts = [-1]
    scan(text, lambda i, c, depth: cuts.append(i) if c == "," and depth == 0 else None)
    cuts.append(len(text))
    args = [text[a + 1 : b].strip() for a, b in zip(cuts, cuts[1:])]
    return [a[1:-1] if len(a) >= 2 and a[0] == a[-1] == '"' else a for a in args]


def double_quoted(text: str) -> list[bool]:
    """For each character of `text`: whether it sits inside a double-quoted value."""
    inside = []
    quote = escaped = False
    for c in text:
        inside.append(quote)
        if quote and not escaped and c == '"':
            quote = False
        elif not quote and c == '"':
            quote = True
        escaped = quote and c == "\\" and not escaped
    return inside


MACRO_CALL = re.compile(r"`([A-Za-z_][\w.-]*)(?:\((.*?)\))?`", re.S)


def expand_macros(
    spl: str, macros: dict[str, dict[str, str]], used: set[str] | None = None, depth: int = 0
) -> str:
    """Replace every `macro` / `macro(a, b)` by its definition with its arguments, recursively.
    As splunkd does (macros.conf.spec), a macro inside a double-quoted value stays as it is."""
    if depth > 10:
        raise SplError("macro recursion deeper than 10")
    quoted = double_quoted(spl)

    def replace(match: re.Match) -> str:
        if quoted[match.start()]:
            return match.group(0)
        name, arg_text = match.group(1), match.group(2)
        args = split_args(arg_text) if arg_text is not None else []
        stanza_name = f"{name}({len(args)})" if args else name
        stanza = macros.get(stanza_name)
        if stanza is None:
            raise SplError(f"macro `{stanza_name}` is not defined in macros.conf")
        if used is not None:
            used.add(stanza_name)
        if stanza.get("iseval", "false").lower() in ("1", "true"):
            raise SplError(f"macro {stanza_name}: iseval (an eval expression's result) is not read here")
        definition = stanza.get("definition", "")
        names = [a.strip() for a in stanza.get("args", "").split(",") if a.strip()]
        if len(names) != len(args):
            raise SplError(f"macro {stanza_name} declares args {names}")
        for arg_name, value in zip(names, args):
            definition = definition.replace(f"${arg_name}$", value)
        return expand_macros(definition, macros, used, depth + 1)

    return MACRO_CALL.sub(replace, spl)


def pipeline(spl: str) -> list[tuple[str, str, list[str]]]:
    """Top-level pipeline -> [(command, argument text, [subsearch texts])]. The first segment of a
    search that does not start with `|` is an implicit `search`."""
    text = spl.strip()
    cuts = [-1]
    scan(text, lambda i, c, depth: cuts.append(i) if c == "|" and depth == 0 else None)
    cuts.append(len(text))
    segments = [text[a + 1 : b].strip() for a, b in zip(cuts, cuts[1:])]
    result = []
    for n, segment in enumerate(segments):
        if n == 0 and not segment:
            continue  # leading "| inputlookup ..."
        if not segment:
            raise SplError(f"empty pipeline segment in {spl!r}")
        if n == 0 and not text.startswith("|"):
            command, rest = "search", segment
        else:
            command, *more = segment.split(None, 1)
            rest = more[0].strip() if more else ""
        result.append((command.lower(), rest, subsearches_of(rest)))
    return result


def subsearches_of(text: str) -> list[str]:
    """The top-level `[...]` subsearches in one command's arguments."""
    found: list[str] = []
    starts: list[int] = []

    def collect(i: int, c: str, depth: int) -> None:
        if c == "[" and depth == 1:
            starts.append(i)
        elif c == "]" and depth == 0:
            found.append(text[starts.pop() + 1 : i])

    scan(text, collect)
    return found


def walk(spl: str) -> Iterator[tuple[str, str]]:
    """Every (command, args) of a search and of its subsearches, depth first."""
    for command, rest, subsearches in pipeline(spl):
        yield command, rest
        for sub in subsearches:
            yield from walk(sub)


def first_name(rest: str) -> str:
    """The lookup/table name of a lookup-family command: the first token without `=`."""
    for token in rest.split():
        if "=" not in token:
            return token.strip('"')
    raise SplError(f"no name in {rest!r}")


def table_fields(spl: str) -> list[str]:
    """Columns of the last top-level `table` of a search (what an alert's results carry)."""
    tables = [rest for command, rest, _ in pipeline(spl) if command == "table"]
    if not tables:
        raise SplError("no table command")
    return tables[-1].replace(",", " ").split()


def unquoted(text: str) -> str:
    """`text` with every quoted string blanked (same length), for token searches outside quotes."""
    out = list(text)
    quote = None
    for i, c in enumerate(text):
        if quote:
            out[i] = " "
            if c == quote and text[i - 1] != "\\":
                quote = None
        elif c in "\"'":
            quote = c
            out[i] = " "
    return "".join(out)


CALL = re.compile(r"(?<![\w.$])([A-Za-z_]\w*)\s*\(")


def calls(text: str) -> list[str]:
    """Names of the functions called in an expression, outside quoted strings."""
    return CALL.findall(unquoted(text))


# A time modifier (Search Manual, "Time modifiers"): now, epoch seconds, [+-]<n><unit>, a snap
# @<unit> (@w0-@w7 for a weekday), or both, and a second offset after the snap.
UNIT = (
    r"(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days"
    r"|w|week|weeks|mon|month|months|q|qtr|qtrs|quarter|quarters|y|yr|yrs|year|years)"
)
TIME_MODIFIER = re.compile(rf"now|\d+(\.\d+)?|(?=.)([+-]\d*{UNIT})?(@({UNIT}|w[0-7])([+-]\d*{UNIT})?)?")


def is_time_modifier(text: str) -> bool:
    return TIME_MODIFIER.fullmatch(text) is not None


def pcre(pattern: str) -> re.Pattern | None:
    """A regex as Splunk's PCRE2 reads it, as far as Python's re can: PCRE's ``(?<name>...)`` is
    Python's ``(?P<name>...)``; None if it does not compile."""
    try:
        return re.compile(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern))
    except re.error:
        return None


# ------------------------------------------------------------------------------ what the app ships
def dashboards(app: Path) -> dict[str, dict]:
    """Dashboard Studio definitions (version 2 views) by view name."""
    result = {}
    for path in sorted((app / "default" / "data" / "ui" / "views").glob("*.xml")):
        root = ET.parse(path).getroot()
        if root.tag == "dashboard" and root.get("version") == "2":
            result[path.stem] = json.loads(root.findtext("definition"))
    return result


def data_source_query(sources: dict[str, dict], ds_id: str) -> str:
    """A Dashboard Studio data source's whole search: a ds.chain's query after its base's."""
    ds = sources[ds_id]
    base = ds.get("options", {}).get("extend")
    own = ds["options"]["query"]
    return f"{data_source_query(sources, base)}\n{own}" if ds.get("type") == "ds.chain" and base else own


def shipped_searches(app: Path) -> list[tuple[str, str]]:
    """(where, SPL) for every search string the app ships, macros not yet expanded: saved searches
    and their drilldown searches, dashboard data sources (a chained one after its base) and the
    examples of default/searchbnf.conf."""
    found = []
    default = app / "default"
    for name, stanza in read_conf(default / "savedsearches.conf").items():
        for key, value in stanza.items():
            if key == "search" or key.endswith("drilldown_search"):
                found.append((f"savedsearches.conf [{name}] {key}", value))
    for view, definition in dashboards(app).items():
        sources = definition.get("dataSources", {})
        for ds_id, ds in sources.items():
            if ds.get("type") in ("ds.search", "ds.chain"):
                found.append((f"view {view} {ds_id}", data_source_query(sources, ds_id)))
    for name, stanza in read_conf(default / "searchbnf.conf").items():
        for key, value in stanza.items():
            if re.fullmatch(r"example\d+", key):
                found.append((f"searchbnf.conf [{name}] {key}", value))
    return found


FENCED = re.compile(r"(?ms)^```[^\n]*\n(.*?)^```")
SEARCH_START = re.compile(r"\s*(\||`|index=|search\s)")
PLACEHOLDER = re.compile(r"\.\.\.|\[\w+=")  # "| ..." or "[span=1h]" syntax notation: not pasteable


def documented_searches(app: Path) -> list[tuple[str, str]]:
    """(where, SPL) for every search a user would paste from README.md and docs/*.md: a fenced
    block that starts like a search (``|``, a macro, ``index=``, ``search``) and holds no
    placeholder (``| ...``, ``[option=value]`` syntax notation)."""
    found = []
    for path in [app / "README.md", *sorted((app / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for block in FENCED.finditer(text):
            body = block.group(1)
            if SEARCH_START.match(body) and not PLACEHOLDER.search(body):
                line = text.count("\n", 0, block.start()) + 1
                found.append((f"{path.relative_to(app)}:{line}", body.strip()))
    return found


# ------------------------------------------------------------------- search-head steps on rows
# The state macro's subpipeline (``appendpipe [...]``) as it is written, step by step:
EVAL_COALESCE = re.compile(r"(\w+)=coalesce\((\w+), (\w+)\)")
STATS_VALUES = re.compile(r"values\((\w+)\) AS (\w+) by (\w+)")
EVAL_KEYS = re.compile(r'(\w+)=mvdedup\(split\(mvappend\((\w+), (\w+)\), " "\)\)')
WHERE_NOTNULL = re.compile(r"isnotnull\((\w+)\)")


def row_step(command: str, rest: str, rows: list[dict]) -> list[dict] | None:
    """One search-head step of the state macro run on result rows, as its searchbnf.conf entry
    describes it; None for any other form (so a new form fails the tests until it is modelled):

    - ``localop``: where the rest runs, not what it does to rows;
    - ``eval f=coalesce(a, b)``: the first of ``a``, ``b`` that is not null;
    - ``stats values(a) AS f by k``: one row per distinct ``k`` (rows without ``k`` in none),
      ``f`` the distinct values of ``a`` in lexicographic order ("Order of values is
      lexigraphical");
    - ``eval f=mvdedup(split(mvappend(a, b), " "))``: the values of ``a`` then ``b``, each split
      on spaces ("Split the value(s) of field foo"), duplicates removed in order;
    - ``where isnotnull(f)``; ``fields f`` (the listed fields only).
    """
    text = rest.strip()
    if command == "localop" and not text:
        return rows
    if command == "eval" and EVAL_COALESCE.fullmatch(text):
        name, a, b = EVAL_COALESCE.fullmatch(text).groups()
        return [{**row, name: row.get(a) if field_values(row.get(a)) else row.get(b)} for row in rows]
    if command == "stats" and STATS_VALUES.fullmatch(text):
        field, name, by = STATS_VALUES.fullmatch(text).groups()
        groups: dict[str, set[str]] = {}
        for row in rows:
            for key in field_values(row.get(by)):
                groups.setdefault(key, set()).update(field_values(row.get(field)))
        return [{by: key, name: one_or_many(sorted(values))} for key, values in groups.items()]
    if command == "eval" and EVAL_KEYS.fullmatch(text):
        name, a, b = EVAL_KEYS.fullmatch(text).groups()
        out = []
        for row in rows:
            keys = [
                part
                for value in field_values(row.get(a)) + field_values(row.get(b))
                for part in value.split(" ")
            ]
            out.append({**row, name: one_or_many(list(dict.fromkeys(keys)))})
        return out
    if command == "where" and WHERE_NOTNULL.fullmatch(text):
        (name,) = WHERE_NOTNULL.fullmatch(text).groups()
        return [row for row in rows if field_values(row.get(name))]
    if command == "fields" and text and not text.startswith("-"):
        keep = text.replace(",", " ").split()
        return [{k: v for k, v in row.items() if k in keep} for row in rows]
    return None
