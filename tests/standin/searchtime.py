"""Search-time knowledge as splunkd applies it to one event, for the few constructs the app ships.

- ``json_fields``: KV_MODE=json field names (``userIdentity.arn``; arrays as ``name{}``, their
  values multivalue; a JSON null is no field, as CloudTrail omits absent fields anyway).
- ``apply_props``: FIELDALIAS-* (``a AS b ...``), then every EVAL-* computed from the event as it
  was after the aliases (calculated fields never see each other), as props.conf.spec says.
- ``evaluate`` / ``run_eval``: the eval expressions of default/props.conf and of the eval macros
  (``run_eval`` runs ``a=<expr>, b=<expr>`` in order): string and number literals,
  ``'quoted.field'`` and bare field names, ``==``/``=``/``!=``, ``AND``/``OR``/``NOT``, brackets,
  and the functions in FUNCTIONS (``split`` and ``mvfilter`` make and filter multivalue fields,
  held as lists). Null follows SPL: a comparison with a null field is null, and
  a null condition is false. Anything else raises SplEvalError, so a new construct in props.conf
  fails the tests until it is evaluated faithfully here.
- ``search_matches``: eventtype searches: ``field=value`` (case-insensitive, ``*`` wildcards),
  ``NOT``, ``field IN (a, b)``, implicit AND.
"""

from __future__ import annotations

import fnmatch
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Optional

Value = Optional[str]


class SplEvalError(ValueError):
    pass


def json_fields(record: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a decoded JSON record into Splunk's field names (multivalue fields as lists)."""
    fields: dict[str, Any] = {}

    def add(name: str, value: str) -> None:
        old = fields.get(name)
        fields[name] = value if old is None else (old if isinstance(old, list) else [old]) + [value]

    def walk(value: Any, name: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{name}.{key}" if name else key)
        elif isinstance(value, list):
            for item in value:
                walk(item, name + "{}")
        elif value is None:
            return
        elif isinstance(value, bool):
            add(name, "true" if value else "false")
        else:
            add(name, str(value))

    walk(record, prefix)
    return fields


# -- eval -----------------------------------------------------------------------------------
TOKEN = re.compile(
    r"\s*(?:(?P<string>\"(?:[^\"\\]|\\.)*\")|(?P<quoted>'[^']*')|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|<=|>=|=|<|>|\(|\)|,)|(?P<word>[A-Za-z_][\w.{}]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise SplEvalError(f"cannot read {text[pos : pos + 20]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _string(raw: str) -> str:
    # SPL string literals escape only a quote and a backslash; "\d" reaches a regex as written.
    return re.sub(r'\\([\\"])', r"\1", raw[1:-1])


def _lazy_if(args: list[Callable[[], Value]]) -> Value:
    if len(args) != 3:
        raise SplEvalError("if() takes 3 arguments")
    return args[1]() if args[0]() == "true" else args[2]()


def _lazy_case(args: list[Callable[[], Value]]) -> Value:
    if len(args) % 2:
        raise SplEvalError("case() takes condition/value pairs")
    for i in range(0, len(args), 2):
        if args[i]() == "true":
            return args[i + 1]()
    return None


def _coalesce(*values: Value) -> Value:
    return next((v for v in values if v is not None), None)


def _match(value: Value, regex: Value) -> Value:
    return None if value is None or regex is None else _bool(re.search(regex, value) is not None)


def _replace(value: Value, regex: Value, replacement: Value) -> Value:
    if value is None or regex is None or replacement is None:
        return None
    return re.sub(regex, re.sub(r"\\(\d)", r"\\g<\1>", replacement), value)


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def _round(value: Value, digits: Value = "0") -> Value:
    if value is None:
        return None
    places = int(digits or 0)
    rounded = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return str(rounded)


def _split(value: Value, separator: Value) -> Any:
    if value is None or separator is None:
        return None
    parts = value.split(separator)
    return parts if len(parts) > 1 else parts[0]


# Functions with their arguments evaluated first; LAZY ones get thunks (SPL evaluates only the
# branch taken). Every eval function props.conf uses must be here.
STRICT: dict[str, Callable[..., Value]] = {
    "coalesce": _coalesce,
    "match": _match,
    "replace": _replace,
    "isnull": lambda value: _bool(value is None),
    "isnotnull": lambda value: _bool(value is not None),
    "null": lambda: None,
    "true": lambda: "true",
    "lower": lambda value: None if value is None else value.lower(),
    "trim": lambda value: None if value is None else value.strip(" \t"),
    "round": _round,
    "split": _split,
}
LAZY: dict[str, Callable[[list[Callable[[], Value]]], Value]] = {"if": _lazy_if, "case": _lazy_case}
FUNCTIONS = frozenset(STRICT) | frozenset(LAZY) | {"mvfilter"}


class _Parser:
    def __init__(self, text: str, event: dict[str, Any]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.event = event

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1].upper() != value.upper()):
            raise SplEvalError(f"expected {value or 'more'} at token {self.pos}, got {token}")
        self.pos += 1
        return token

    def parse(self) -> Callable[[], Value]:
        node = self.or_expr()
        if self.peek() is not None:
            raise SplEvalError(f"unexpected {self.peek()}")
        return node

    def or_expr(self) -> Callable[[], Value]:
        node = self.and_expr()
        while self.peek() and self.peek()[0] == "word" and self.peek()[1] == "OR":
            self.take()
            left, right = node, self.and_expr()
            node = lambda a=left, b=right: _bool(a() == "true" or b() == "true")  # noqa: E731
        return node

    def and_expr(self) -> Callable[[], Value]:
        node = self.not_expr()
        while self.peek() and self.peek()[0] == "word" and self.peek()[1] == "AND":
            self.take()
            left, right = node, self.not_expr()
            node = lambda a=left, b=right: _bool(a() == "true" and b() == "true")  # noqa: E731
        return node

    def not_expr(self) -> Callable[[], Value]:
        if self.peek() and self.peek()[0] == "word" and self.peek()[1] == "NOT":
            self.take()
            inner = self.not_expr()
            return lambda: None if inner() is None else _bool(inner() != "true")
        return self.comparison()

    def comparison(self) -> Callable[[], Value]:
        left = self.primary()
        token = self.peek()
        if token and token[0] == "op" and token[1] in ("==", "=", "!="):
            self.take()
            right = self.primary()
            negate = token[1] == "!="

            def compare(a=left, b=right) -> Value:
                x, y = a(), b()
                return None if x is None or y is None else _bool((x == y) != negate)

            return compare
        if token and token[0] == "op" and token[1] in ("<", ">", "<=", ">="):
            raise SplEvalError(f"ordering comparison {token[1]} is not evaluated here")
        return left

    def primary(self) -> Callable[[], Value]:
        kind, text = self.take()
        if kind == "string":
            value = _string(text)
            return lambda: value
        if kind == "number":
            return lambda: text
        if kind == "quoted":
            name = text[1:-1]
            return lambda: self.field(name)
        if kind == "op" and text == "(":
            node = self.or_expr()
            self.take(")")
            return node
        if kind == "word":
            nxt = self.peek()
            if nxt and nxt == ("op", "("):
                return self.call(text)
            return lambda: self.field(text)
        raise SplEvalError(f"unexpected {text!r}")

    def call(self, name: str) -> Callable[[], Value]:
        if name not in FUNCTIONS:
            raise SplEvalError(f"eval function {name}() is not evaluated here")
        self.take("(")
        if name == "mvfilter":
            return self.mvfilter()
        args: list[Callable[[], Value]] = []
        if self.peek() != ("op", ")"):
            args.append(self.or_expr())
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.or_expr())
        self.take(")")
        if name in LAZY:
            return lambda: LAZY[name](args)
        return lambda: STRICT[name](*(arg() for arg in args))

    def mvfilter(self) -> Callable[[], Any]:
        """mvfilter(<condition on one field>): the values of that field the condition keeps."""
        start = self.pos
        condition = self.or_expr()
        self.take(")")
        inside = self.tokens[start : self.pos]
        names = {text.strip("'") for kind, text in inside if kind in ("word", "quoted")}
        names -= FUNCTIONS | {"AND", "OR", "NOT"}
        if len(names) != 1:
            raise SplEvalError(f"mvfilter() must name one field, names {sorted(names)}")
        (name,) = names

        def keep() -> Any:
            values = self.event.get(name)
            values = values if isinstance(values, list) else ([] if values is None else [values])
            outer, kept = self.event, []
            for value in values:
                self.event = dict(outer, **{name: value})
                try:
                    if condition() == "true":
                        kept.append(value)
                finally:
                    self.event = outer
            return None if not kept else kept if len(kept) > 1 else kept[0]

        return keep

    def field(self, name: str) -> Value:
        value = self.event.get(name)
        if isinstance(value, list):
            value = value[0] if value else None  # eval sees a multivalue field's first value
        return value


def evaluate(expression: str, event: dict[str, Any]) -> Value:
    """The value of an eval expression over one event's fields (None: null)."""
    return _Parser(expression, event).parse()()


ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=(?!=)(.*)$", re.S)


def run_eval(assignments: str, event: dict[str, Any]) -> dict[str, Any]:
    """The ``eval`` command: ``a=<expr>, b=<expr>`` in order, each seeing the ones before it."""
    event = dict(event)
    pieces, depth, quote, start = [], 0, False, 0
    for i, char in enumerate(assignments):
        if char == '"' and assignments[i - 1 : i] != "\\":
            quote = not quote
        elif not quote and char in "()":
            depth += 1 if char == "(" else -1
        elif not quote and depth == 0 and char == ",":
            pieces.append(assignments[start:i])
            start = i + 1
    pieces.append(assignments[start:])
    for piece in pieces:
        match = ASSIGNMENT.match(piece)
        if not match:
            raise SplEvalError(f"not an eval assignment: {piece!r}")
        value = _Parser(match.group(2), event).parse()()
        if value is None:
            event.pop(match.group(1), None)
        else:
            event[match.group(1)] = value
    return event


def functions_used(expression: str) -> set[str]:
    """The eval function names called in ``expression``."""
    names = set()
    tokens = _tokens(expression)
    for (kind, text), nxt in zip(tokens, [*tokens[1:], ("", "")]):
        if kind == "word" and nxt == ("op", "("):
            names.add(text)
    return names


def apply_props(stanza: dict[str, str], fields: dict[str, Any]) -> dict[str, Any]:
    """Aliases, then calculated fields (each from the post-alias event), as splunkd orders them."""
    event = dict(fields)
    for key in sorted(k for k in stanza if k.startswith("FIELDALIAS-")):
        words = stanza[key].split()
        if len(words) % 3 or any(w.upper() != "AS" for w in words[1::3]):
            raise SplEvalError(f"{key}: not 'source AS alias ...': {stanza[key]!r}")
        for source, alias in zip(words[0::3], words[2::3]):
            if source in fields:
                event[alias] = fields[source]
    computed = {}
    for key in sorted(k for k in stanza if k.startswith("EVAL-")):
        computed[key[len("EVAL-") :]] = evaluate(stanza[key], event)
    for name, value in computed.items():
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value
    return event


# -- lookups ----------------------------------------------------------------------------------
LOOKUP_COMMAND = re.compile(r"(\w+) (\w+) OUTPUT (.+)")


def _wildcard(pattern: str) -> re.Pattern:
    """A lookup's WILDCARD pattern: ``*`` matches any text, every other character is literal."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.S)


def wildcard_lookup(
    rest: str, rows: list[dict], transforms: dict[str, dict[str, str]], tables: dict[str, list[dict]]
) -> list[dict]:
    """``lookup <name> <field> OUTPUT <out> [AS <new>] ...`` over the rows of ``tables[name]``
    with the stanza's ``match_type = WILDCARD(<field>)`` and ``max_matches = 1``: the first entry
    whose pattern matches; an output the entry lacks (or leaves empty) is no field."""
    match = LOOKUP_COMMAND.fullmatch(rest.strip())
    if not match:
        raise SplEvalError(f"lookup {rest!r} not modelled")
    name, key, outputs = match.group(1), match.group(2), re.findall(r"(\w+)(?: AS (\w+))?", match.group(3))
    stanza = transforms[name]
    if stanza.get("match_type") != f"WILDCARD({key})" or stanza.get("max_matches") != "1":
        raise SplEvalError(f"lookup {name}: only WILDCARD({key}) with max_matches = 1 is modelled")
    out = []
    for row in rows:
        value = str(row.get(key) or "")
        entry = next((e for e in tables[name] if _wildcard(e.get(key) or "").fullmatch(value)), {})
        new = dict(row)
        for field, alias in outputs:
            if entry.get(field) not in (None, ""):
                new[alias or field] = entry[field]
            else:
                new.pop(alias or field, None)
        out.append(new)
    return out


# -- eventtype searches -----------------------------------------------------------------------
SEARCH_TERM = re.compile(r"\s*(NOT\b|[\w.{}]+\s+IN\s*\([^)]*\)|[\w.{}]+=(?:\"[^\"]*\"|\S+))")


def _value_matches(actual: Any, pattern: str) -> bool:
    values = actual if isinstance(actual, list) else [actual]
    pattern = pattern.strip().strip('"').lower()
    return any(v is not None and fnmatch.fnmatchcase(str(v).lower(), pattern) for v in values)


def search_matches(search: str, event: dict[str, Any]) -> bool:
    """True if ``event`` matches an eventtype search made of the terms named in the module doc."""
    pos, negate, result = 0, False, True
    search = search.strip()
    while pos < len(search):
        match = SEARCH_TERM.match(search, pos)
        if not match:
            raise SplEvalError(f"search term not evaluated here: {search[pos:]!r}")
        term = match.group(1)
        pos = match.end()
        if term == "NOT":
            negate = not negate
            continue
        if " IN" in term.upper() and "(" in term:
            name, _, rest = term.partition(" ")
            options = rest.strip()[2:].strip().lstrip("(").rstrip(")").split(",")
            hit = name in event and any(_value_matches(event[name], o) for o in options)
        else:
            name, _, pattern = term.partition("=")
            hit = name in event and _value_matches(event[name], pattern)
        result = result and (hit != negate)
        negate = False
    return result
