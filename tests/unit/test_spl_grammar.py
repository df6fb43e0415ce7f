"""Every shipped search is SPL that Splunk 10.0, 10.2 and 10.4 can parse, as far as their grammar says.

Splunk's own grammar (etc/system/default/searchbnf.conf of each version, kept in
../shared/data/splunk-spec/searchbnf, see its SOURCE.txt) gives the built-in commands
(``[<name>-command]`` stanzas and their ``alias``), the eval functions (``[eval-function]``), the
convert functions (``[convert-function]``) and the stats functions (``[stats-func]`` and the
``[stats-*]`` stanzas it names). Every shipped search (tests/standin/spl.py: saved searches,
drilldown searches, dashboard data sources, searchbnf examples, and the searches README.md and
docs/*.md give to paste; macros expanded with their arguments) must use only those commands or
the app's own (default/commands.conf), only those functions in eval/where and in stats-like
commands, and only the options the grammar lists for the built-in commands whose arguments are
options. ``iamspike``'s options are parsed by the engine itself, and default/searchbnf.conf
documents exactly the options the engine accepts, in searchbnf.conf.spec's format.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from standin.conf import read_conf
from standin.spl import (
    calls,
    documented_searches,
    expand_macros,
    is_time_modifier,
    pcre,
    scan,
    shipped_searches,
    unquoted,
    walk,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "default"
GRAMMARS = ROOT.parent / "shared" / "data" / "splunk-spec" / "searchbnf"
VERSIONS = ("10.0", "10.2", "10.4")

SEARCHES = shipped_searches(ROOT)
DOCUMENTED = documented_searches(ROOT)  # the searches README.md and docs/*.md give to paste
MACROS = read_conf(DEFAULT / "macros.conf")
APP_COMMANDS = {name for name in read_conf(DEFAULT / "commands.conf") if name != "default"}

EVAL_COMMANDS = ("eval", "where", "fieldformat")
STATS_COMMANDS = ("stats", "eventstats", "streamstats", "timechart", "chart", "tstats", "sistats")
# Built-in commands whose key=value arguments are all options (not field comparisons).
OPTION_COMMANDS = (
    *("lookup", "inputlookup", "outputlookup", "spath", "rex", "bin", "timechart", "iplocation"),
    *("head", "tstats", "makeresults", "convert", "addinfo", "localop", "mvexpand"),
)
OPERATORS = {"AND", "OR", "NOT", "XOR", "IN", "LIKE"}


def read_lenient(text: str) -> dict[str, dict[str, str]]:
    """A conf file as splunkd reads Splunk's own searchbnf.conf: a repeated key keeps its last
    value, a line that is not ``key = value`` (stray description text) is ignored."""
    stanzas: dict[str, dict[str, str]] = {"default": {}}
    current = stanzas["default"]
    lines = iter(text.splitlines())
    for line in lines:
        header = re.fullmatch(r"\[(.*)\]\s*", line)
        if header:
            current = stanzas.setdefault(header.group(1), {})
            continue
        while line.endswith("\\"):
            line = line[:-1] + next(lines, "")
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[\w.-]+", key.strip()):
            current[key.strip()] = value.strip()
    return stanzas


class Grammar:
    """Commands, functions and command options of one Splunk version's searchbnf.conf."""

    def __init__(self, version: str) -> None:
        path = GRAMMARS / version / "searchbnf.conf"
        if not path.exists():
            pytest.skip(f"{path} not present (shared reference data, never copied)")
        self.stanzas = read_lenient(path.read_text(encoding="utf-8"))
        self.usage: dict[str, str] = {}  # command or alias -> usage (public, private, deprecated)
        for name, stanza in self.stanzas.items():
            if name.endswith("-command"):
                for command in [name[: -len("-command")], *stanza.get("alias", "").split(",")]:
                    if command.strip():
                        self.usage[command.strip()] = stanza.get("usage", "")
        self.commands = set(self.usage)
        self.eval_functions = set(self.stanzas["eval-function"]["syntax"].split("|"))
        referenced = re.findall(r"<([\w-]+)>", self.stanzas["stats-func"]["syntax"])
        self.stats_patterns = [self._syntax_regex(self.stanzas[name]["syntax"]) for name in referenced]
        convert = re.findall(r"<convert-([\w-]+)>", self.stanzas["convert-function"]["syntax"])
        self.convert_functions = {
            re.match(r"\w+", self.stanzas[f"convert-{n}"]["syntax"]).group(0) for n in convert
        }

    @staticmethod
    def _syntax_regex(syntax: str) -> re.Pattern:
        """``(perc|p|exactperc|upperperc)<num>`` -> a regex of the names it allows."""
        parts = re.split(r"(<num>|[()|])", syntax.strip())
        return re.compile(
            "".join(r"\d+(?:\.\d+)?" if p == "<num>" else p if p in "()|" else re.escape(p) for p in parts)
        )

    def is_stats_function(self, name: str) -> bool:
        return any(p.fullmatch(name) for p in self.stats_patterns)

    def options(self, command: str) -> set[str]:
        """The ``name=`` options of a command's syntax and of the stanzas it refers to."""
        seen: set[str] = set()
        found: set[str] = set()
        pending = [f"{command}-command"]
        while pending:
            name = pending.pop()
            if name in seen or name not in self.stanzas:
                continue
            seen.add(name)
            syntax = self.stanzas[name].get("syntax", "")
            found.update(re.findall(r"([A-Za-z_][\w-]*)\s*=", syntax))
            pending.extend(re.findall(r"<([\w-]+)(?::[^>]*)?>", syntax))
        return found


@cache
def grammar(version: str) -> Grammar:
    return Grammar(version)


def top_level(text: str) -> tuple[list[str], list[str]]:
    """(function names called at parenthesis depth 0, bodies of every ``eval(...)``), outside quotes."""
    blank = unquoted(text)
    names, evals = [], []
    opened: list[tuple[str, int]] = []  # (function name or "", where its arguments start)
    for match in re.finditer(r"[()]|([A-Za-z_]\w*)\s*\(", blank):
        if match.group(0) == ")":
            name, start = opened.pop()
            if name == "eval":
                evals.append(text[start : match.start()])
            continue
        if match.group(1) and not opened:
            names.append(match.group(1))
        opened.append((match.group(1) or "", match.end()))
    return names, evals


def option_keys(rest: str) -> list[str]:
    """The ``key=`` of a command's arguments outside quotes and parentheses, before a ``where``
    clause (inputlookup's filter is a search, not options)."""
    blank = re.split(r"\bwhere\b", unquoted(rest), maxsplit=1, flags=re.I)[0]
    keys, depth = [], 0
    for match in re.finditer(r"[()]|(?<![\w.'])([A-Za-z_]\w*)\s*=", blank):
        if match.group(0) == "(":
            depth += 1
        elif match.group(0) == ")":
            depth -= 1
        elif depth == 0:
            keys.append(match.group(1))
    return keys


def problems(spl: str, version: str) -> list[str]:
    """What Splunk `version`'s grammar does not know in one (expanded) search."""
    g = grammar(version)
    found = []
    for command, rest in walk(expand_macros(spl, MACROS)):
        if command not in g.commands and command not in APP_COMMANDS:
            found.append(f"unknown command {command!r}")
            continue
        if "deprecated" in g.usage.get(command, ""):
            found.append(f"deprecated command {command!r}")
        if command in EVAL_COMMANDS:
            found += [f"{command}: unknown eval function {n}()" for n in calls(rest) if _unknown_eval(g, n)]
            found += expression_problems(command, rest)
        if command in STATS_COMMANDS:
            names, evals = top_level(rest)
            found += [
                f"{command}: unknown stats function {n}()"
                for n in names
                if n != "eval" and not g.is_stats_function(n)
            ]
            for body in evals:
                found += [
                    f"{command}: unknown eval function {n}()" for n in calls(body) if _unknown_eval(g, n)
                ]
                found += expression_problems(command, body)
            found += unnamed_evals(command, rest)
        if command == "rex":
            found += rex_problems(rest)
        if command == "search":
            found += [
                f"search: {key}={value} is not a time modifier"
                for key, value in TIME_TERM.findall(rest)
                if not is_time_modifier(value.strip('"')) and not re.fullmatch(r'"?\$[\w.]+\$"?', value)
            ]
        if command == "convert":
            found += [f"convert: unknown function {n}()" for n in calls(rest) if n not in g.convert_functions]
        if command in OPTION_COMMANDS:
            allowed = g.options(command)
            found += [f"{command}: unknown option {k}=" for k in option_keys(rest) if k not in allowed]
    return found


# A field name with a dot outside single quotes, not followed by "(" (a call): in an eval
# expression "." is the concatenation operator (searchbnf.conf [eval-expression]: "When
# concatenating values with '.'"), so ``userIdentity.type`` reads the fields ``userIdentity`` and
# ``type`` (both null: null), never the field ``userIdentity.type``, which needs single quotes.
DOTTED = re.compile(r"(?<![\w.'$])([A-Za-z_]\w*(?:\.[A-Za-z_{}][\w{}]*)+)(?![\w.{}]*\s*\()")
# Time terms of a search: Splunk refuses the search when the value is not a time modifier
# ("Invalid value ... for time term"); a dashboard token stands for one.
TIME_TERM = re.compile(r'(?<![\w.])(earliest|latest|_index_earliest|_index_latest)\s*=\s*("[^"]*"|[^\s)]+)')
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def expression_problems(command: str, expression: str) -> list[str]:
    """What an eval expression means other than it says: a bare dotted field name (read as a
    concatenation), and a regex of ``match()`` / ``replace()`` that does not compile."""
    found = [
        f"{command}: {name} outside single quotes concatenates fields"
        for name in DOTTED.findall(unquoted(expression))
    ]
    for match in re.finditer(r"\b(match|replace)\(", expression):
        args = call_arguments(expression, match.end())
        if len(args) >= 2 and QUOTED.fullmatch(args[1]) and pcre(args[1][1:-1].replace('\\"', '"')) is None:
            found.append(f"{command}: {match.group(1)}() regex {args[1]} does not compile")
    return found


def call_arguments(text: str, start: int) -> list[str]:
    """The comma-separated arguments of the call whose "(" ends at ``start``, outside quotes."""
    blank = unquoted(text)
    args, depth, begin = [], 0, start
    for i in range(start, len(text)):
        c = blank[i]
        if c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif c in ",)" and depth == 0:
            args.append(text[begin:i].strip())
            begin = i + 1
            if c == ")":
                break
    return args


def unnamed_evals(command: str, rest: str) -> list[str]:
    """A stats function over ``eval(...)`` needs ``AS <name>``: Splunk refuses the search
    ("You must specify a rename for the aggregation specifier on the dynamically evaluated
    field")."""
    blank = unquoted(rest)
    found = []
    for match in re.finditer(r"\b([A-Za-z_]\w*)\(\s*eval\(", blank):
        depth, end = 0, None
        for i in range(match.end() - 1, len(blank)):
            depth += {"(": 1, ")": -1}.get(blank[i], 0)
            if depth == -1:
                end = i + 1
                break
        if end is None or not re.match(r"\s+AS\s+\w", blank[end:], re.I):
            found.append(f"{command}: {match.group(1)}(eval(...)) without AS <name>")
    return found


def rex_problems(rest: str) -> list[str]:
    """rex (field extraction, not mode=sed): its quoted regex compiles and names at least one
    group (a rex without one is refused: it would extract nothing)."""
    if re.search(r"\bmode\s*=\s*sed\b", unquoted(rest)):
        return []
    quoted = QUOTED.search(rest)
    if not quoted:
        return ["rex: no quoted regex"]
    compiled = pcre(quoted.group(1).replace('\\"', '"'))
    if compiled is None:
        return [f"rex: regex {quoted.group(0)} does not compile"]
    return [] if compiled.groupindex else [f"rex: regex {quoted.group(0)} names no group"]


def _unknown_eval(g: Grammar, name: str) -> bool:
    return name not in g.eval_functions and name not in OPERATORS


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("where, spl", SEARCHES, ids=[w for w, _ in SEARCHES])
def test_shipped_search_is_in_splunks_grammar(where: str, spl: str, version: str) -> None:
    assert problems(spl, version) == [], f"{where} (Splunk {version})"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("where, spl", DOCUMENTED, ids=[w for w, _ in DOCUMENTED])
def test_documented_search_is_in_splunks_grammar(where: str, spl: str, version: str) -> None:
    assert problems(spl, version) == [], f"{where} (Splunk {version})"


def test_every_kind_of_shipped_search_is_read() -> None:
    kinds = {where.split(" [")[0].split(" ")[0] for where, _ in SEARCHES}
    assert kinds == {"savedsearches.conf", "view", "searchbnf.conf"}
    assert any("drilldown_search" in where for where, _ in SEARCHES)
    assert {where.split(":")[0] for where, _ in DOCUMENTED} >= {"README.md", "docs/knowledge.md"}


@pytest.mark.parametrize(
    "spl, problem",
    [
        ("search a | stats count sum(x) AS s dc(eval(if(a>1, b, null()))) AS d by c", None),
        ("search a | stats p95(x) perc99.5(y) earliest_time(z)", None),
        ("search a | stats median2(x)", "stats: unknown stats function median2()"),
        ('search a | stats dc(eval(strftimex(t, "%d"))) AS n', "stats: unknown eval function strftimex()"),
        ('search a | eval b=coalesce(c, "len(")', None),
        ("search a | where b IN (1, 2) AND isnotnull(c)", None),
        ("search a | eval b=lenght(c)", "eval: unknown eval function lenght()"),
        ("search a | statz count", "unknown command 'statz'"),
        ("search a | setfields b=1", "deprecated command 'setfields'"),
        ("search a | bucket _time span=1h", None),
        ("| inputlookup append=true t", None),
        ('| inputlookup t where entity_type="account"', None),
        ("| outputlookup append=true key_field=k t", None),
        ("| outputlookup apend=true t", "outputlookup: unknown option apend="),
        ("search a | head limit=20", None),
        ("search a | head count=20", "head: unknown option count="),
        ("| tstats sumariesonly=true count where index=* by host", "tstats: unknown option sumariesonly="),
        ("| tstats prestats=true count where index=* by host", None),
        ('search a | rex field=m "x=(?<y>\\d+)"', None),
        ("search a | timechart span=1h max(x) AS x", None),
        ("search a | iamspike show=all", None),
        ("search a | convert ctime(t) AS u dur2sec(d)", None),
        ("search a | convert ctim(t)", "convert: unknown function ctim()"),
        (
            "search a | eval t='userIdentity.type', u=a.b",
            "eval: a.b outside single quotes concatenates fields",
        ),
        ('search a | eval s="x=".a', None),
        (
            'search a | where userIdentity.type="Root"',
            "where: userIdentity.type outside single quotes concatenates fields",
        ),
        ("search a | stats count(eval(x.y>1)) AS n", "stats: x.y outside single quotes concatenates fields"),
        ("search a | stats values(userIdentity.type) AS t", None),
        ('search a | eval k=replace(m, " \\(\\d+\\)$", "")', None),
        ('search a | eval k=replace(m, "(\\d+", "")', 'eval: replace() regex "(\\d+" does not compile'),
        ('search a | where match(coalesce(m, n), "[a-")', 'where: match() regex "[a-" does not compile'),
        ('search a | rex field=m "^(?<ip>\\S+)"', None),
        ('search a | rex field=m "^(\\S+) x"', 'rex: regex "^(\\S+) x" names no group'),
        ('search a | rex "(?<a>x"', 'rex: regex "(?<a>x" does not compile'),
        ('search a | rex mode=sed field=m "s/a/b/g"', None),
        ("index=a earliest=-30d@h latest=@h | stats count", None),
        ('search a | stats count(eval(x="a(b")) AS n dc(eval(y)) as m by z', None),
        ("search a | stats count(eval(x>1)) by z", "stats: count(eval(...)) without AS <name>"),
        ("search a | timechart span=1h dc(eval(y))", "timechart: dc(eval(...)) without AS <name>"),
        ("index=a earliest=$t.earliest$ latest=now", None),
        ("index=a earliest=-7days", None),
        ("index=a earliest=-7x", "search: earliest=-7x is not a time modifier"),
        ("index=a | search latest=yesterday", "search: latest=yesterday is not a time modifier"),
    ],
)
def test_grammar_check_on_known_shapes(spl: str, problem: str | None) -> None:
    assert problems(spl, VERSIONS[-1]) == ([] if problem is None else [problem])


def test_scan_sees_quotes() -> None:
    seen: list[str] = []
    scan('a "b|c" | d', lambda i, c, depth: seen.append(c) if c == "|" else None)
    assert seen == ["|"]


PROPS = read_conf(DEFAULT / "props.conf")
EVAL_WORDS = {"AND", "OR", "NOT", "XOR", "LIKE", "IN", "true", "false", "null"}


def eval_field_names(expression: str) -> set[str]:
    """Fields an eval expression reads: 'quoted' names and bare names that call nothing (a bare
    ``x.y`` is ``x . y``, two fields concatenated)."""
    quoted = set(re.findall(r"'([^']+)'", expression))
    bare = re.findall(r"(?<!\w)([A-Za-z_]\w*)(?!\w*\s*\()", unquoted(expression))
    return quoted | (set(bare) - EVAL_WORDS)


@pytest.mark.parametrize("version", VERSIONS)
def test_search_time_knowledge_is_in_splunks_grammar(version: str) -> None:
    """props.conf EVAL-<field> (calculated fields: run in parallel, props.conf.spec, so none may
    read a field another one of its stanza computes) use only Splunk's eval functions, quote
    their dotted field names and give match()/replace() regexes that compile;
    eventtypes.conf searches hold no pipe and no subsearch (eventtypes.conf.spec)."""
    g = grammar(version)
    for stanza, settings in PROPS.items():
        computed = {k[len("EVAL-") :] for k in settings if k.startswith("EVAL-")}
        for key, expression in settings.items():
            if key.startswith("EVAL-"):
                unknown = [n for n in calls(expression) if _unknown_eval(g, n)]
                assert not unknown, f"props.conf [{stanza}] {key}: unknown eval functions {unknown}"
                assert expression_problems(key, expression) == [], f"props.conf [{stanza}]"
                reads = eval_field_names(expression) & (computed - {key[len("EVAL-") :]})
                assert not reads, f"props.conf [{stanza}] {key} reads calculated fields {reads}"
    for name, stanza in read_conf(DEFAULT / "eventtypes.conf").items():
        if "search" in stanza:
            outside_quotes = unquoted(stanza["search"])
            assert not {"|", "["} & set(outside_quotes), f"eventtypes.conf [{name}]: a pipe or a subsearch"


def test_calculated_field_reads_on_known_shapes() -> None:
    expression = 'coalesce(\'userIdentity.userName\', x.y, if(status=="a b", "root", null())) AND z'
    assert eval_field_names(expression) == {"userIdentity.userName", "x", "y", "status", "z"}


def undefined_terms(stanzas: dict[str, dict[str, str]]) -> set[str]:
    """The ``<term>`` names the syntaxes of `stanzas` use without a stanza of that name."""
    used = {t for s in stanzas.values() for t in re.findall(r"<([\w-]+)(?::[^>]*)?>", s.get("syntax", ""))}
    return used - set(stanzas)


@pytest.mark.parametrize("version", VERSIONS)
def test_our_searchbnf_is_splunks_format(version: str) -> None:
    """searchbnf.conf.spec: a command stanza needs syntax, description and usage; example<n>
    comes with comment<n>; a ``<term>`` of a syntax is an options stanza ("These options must be
    defined") of the file or of Splunk's grammar, or one of the data types Splunk's own syntaxes
    use without a stanza (<int>, <string>, <field>, <bool>...); the related commands exist."""
    g = grammar(version)
    datatypes = undefined_terms(g.stanzas)
    ours = {
        name: stanza for name, stanza in read_conf(DEFAULT / "searchbnf.conf").items() if name != "default"
    }
    for name, stanza in ours.items():
        if name.endswith("-command"):
            assert {"syntax", "description", "usage"} <= set(stanza), name
            related = stanza.get("related", "").split()
            unknown = [c for c in related if c not in g.commands and c not in APP_COMMANDS]
            assert not unknown, f"[{name}] related names no command of Splunk {version}: {unknown}"
        examples = {k[len("example") :] for k in stanza if re.fullmatch(r"example\d+", k)}
        comments = {k[len("comment") :] for k in stanza if re.fullmatch(r"comment\d+", k)}
        assert examples == comments, f"[{name}] example<n> without comment<n> or the reverse"
    unknown_terms = undefined_terms(ours) - set(g.stanzas) - datatypes
    assert not unknown_terms, f"terms defined nowhere in Splunk {version}'s grammar or ours: {unknown_terms}"


# ------------------------------------------------------------------------------------ iamspike


def iamspike_calls() -> list[tuple[str, list[str]]]:
    return [
        (where, rest.split())
        for where, spl in SEARCHES
        for command, rest in walk(expand_macros(spl, MACROS))
        if command == "iamspike"
    ]


def test_every_iamspike_call_parses_with_the_engine() -> None:
    engine = pytest.importorskip("iamspike.engine")
    found = iamspike_calls()
    assert len(found) >= 8
    for where, args in found:
        assert all("=" in a for a in args), f"{where}: iamspike takes key=value options"
        engine.parse_options(args)


def test_searchbnf_documents_the_options_the_engine_accepts() -> None:
    engine = pytest.importorskip("iamspike.engine")
    syntax = read_conf(DEFAULT / "searchbnf.conf")["iamspike-command"]["syntax"]
    documented = set(re.findall(r"\((\w+)=", syntax))
    with pytest.raises(engine.OptionError) as error:
        engine.parse_options(["no_such_option=1"])
    valid = re.search(r"valid: ([\w, ]+)\)", str(error.value))
    assert valid, f"the unknown-option error names the valid options: {error.value}"
    accepted = {name.strip() for name in valid.group(1).split(",")}
    assert documented == accepted
