"""The options of ``| iamspike``: SPL ``key=value`` tokens -> :class:`Options`, validated up front.

Every refusal is an :class:`OptionError` whose text is one line naming the option and the cause
(``span must be ...``), fit for Splunk's UI and the CLI. Pure Python: the map phase reads its
options here without importing numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from iamspike import durations
from iamspike.failures import AUTHORIZATION, ErrorClasses

SHOW_VALUES = ("spikes", "all", "state")
PHASES = ("report", "map", "fold")
BY_VALUES = {"account": ("account",), "principal": ("principal",), "both": ("account", "principal")}


class OptionError(ValueError):
    """A bad option; ``str(e)`` is one line fit for Splunk's UI."""


@dataclass(frozen=True)
class Options:
    span: int = 3600
    by: tuple[str, ...] = ("account", "principal")
    sensitivity: float = 1.0
    min_failures: int = 5
    show: str = "spikes"
    classes: tuple[str, ...] = (AUTHORIZATION,)
    event_sources: tuple[str, ...] = ()
    count_field: str | None = None
    threshold: float = 50.0  # score (0..100) at or above which a bin is flagged
    history: int = 30 * 86400  # seconds of history kept by show=state
    half_life: int = 7 * 86400  # decay of old history in the level
    min_history: int = 86400  # below this much history: "insufficient history", pooled prior
    phase: str = "report"  # report (score), map (count rows), fold (account and principal added)
    lookup: str | None = field(default=None, compare=False)  # error-class CSV (default: app's)


@dataclass(frozen=True)
class OptionSpec:
    """One option as users see it (the CLI's --help reads these): SPL name, default as typed,
    allowed values, one line of help; ``cli`` False for options only the search command has."""

    name: str
    default: str
    allowed: str
    help: str
    cli: bool = True


# In SPL order; a default in parentheses is "not set". A unit test parses the defaults to Options().
OPTION_SPECS = (
    OptionSpec("span", "1h", "5m..1d, whole minutes", "width of the time bins"),
    OptionSpec("by", "both", "account, principal, both", "which entities are scored"),
    OptionSpec("sensitivity", "1", "0.01..100", "higher flags more"),
    OptionSpec("threshold", "50", "1..99", "score at or above which a bin is flagged"),
    OptionSpec("min_failures", "5", "1..1000000000", "fewest failures in a bin that can be flagged"),
    OptionSpec("show", "spikes", "spikes, all, state", "flagged bins, every bin, or the saved state"),
    OptionSpec(
        "classes", "authorization", "classes of lookups/iamspike_error_classes.csv", "errors that count"
    ),
    OptionSpec("event_sources", "(all)", "services, e.g. iam,sts", "count only these services"),
    OptionSpec(
        "count_field", "(none)", "a field name", "rows are pre-aggregated, the count is in this field"
    ),
    OptionSpec("history", "30d", "1h..400d", "history kept by show=state"),
    OptionSpec("half_life", "7d", "5m..400d, at least one span", "how fast old history fades"),
    OptionSpec("min_history", "1d", "0..90d", "below this, insufficient history: prior pooled from peers"),
    OptionSpec("phase", "(report)", "map, fold", "the search command's streaming phases", cli=False),
)


def counting_args(options: Options) -> list[str]:
    """The options the map phase needs, as SPL tokens (for ``streaming_preop``)."""
    args = [f"span={options.span}", "classes=" + ",".join(options.classes)]
    if options.event_sources:
        args.append("event_sources=" + ",".join(options.event_sources))
    if options.count_field:
        args.append(f"count_field={options.count_field}")
    return args


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _number(key: str, value: str, low: float, high: float, integer: bool = False) -> float:
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise OptionError(f"{key} must be {kind}, got '{value}'") from None
    if not (low <= number <= high) or (not integer and not math.isfinite(number)):
        raise OptionError(f"{key} must be between {low:g} and {high:g}, got '{value}'")
    return number


def _duration(key: str, value: str, low: int, high: int) -> int:
    try:
        seconds = durations.parse_duration(value)
    except ValueError as exc:
        raise OptionError(f"{key}: {exc}") from None
    if not low <= seconds <= high:
        raise OptionError(f"{key} must be between {low}s and {high}s, got '{value}'")
    return seconds


def parse_options(args: list[str], lookup: str | None = None) -> Options:
    """SPL ``key=value`` tokens -> Options; OptionError (one line) on anything bad."""
    given: dict[str, str] = {}
    for token in args:
        key, sep, value = token.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if not sep or not key:
            raise OptionError(f"unexpected argument '{token}': options are key=value ({_KEYS})")
        key = _ALIASES.get(key, key)
        if key not in _PARSERS:
            raise OptionError(f"unknown option '{key}' (valid: {_KEYS})")
        if key in given:
            raise OptionError(f"option '{key}' given twice")
        if value == "":
            raise OptionError(f"option '{key}' needs a value")
        given[key] = value
    values: dict[str, object] = {}
    for key, value in given.items():
        values[key] = _PARSERS[key](value)
    options = Options(lookup=lookup, **values)  # type: ignore[arg-type]
    known = ErrorClasses.load(lookup).classes()
    unknown = [name for name in options.classes if name not in known]
    if unknown:
        raise OptionError(f"unknown error class '{unknown[0]}' (valid: {', '.join(sorted(known))})")
    if options.half_life < options.span:
        raise OptionError("half_life must be at least one span")
    return options


def _choice(key: str, value: str, valid: tuple[str, ...]) -> str:
    if value.lower() not in valid:
        raise OptionError(f"{key} must be {', '.join(valid[:-1])} or {valid[-1]}, got '{value}'")
    return value.lower()


def _parse_span(value: str) -> int:
    try:
        return durations.parse_span(value)
    except ValueError as exc:
        text = str(exc)
        raise OptionError(text if text.startswith("span") else f"span: {text}") from None


def _parse_classes(value: str) -> tuple[str, ...]:
    names = tuple(name.lower() for name in _split_list(value))
    if not names:
        raise OptionError("classes needs at least one error class, e.g. classes=authorization")
    return names


def _parse_sources(value: str) -> tuple[str, ...]:
    names = _split_list(value)
    if not names:
        raise OptionError("event_sources needs at least one service, e.g. iam.amazonaws.com")
    return tuple(name if "." in name else name + ".amazonaws.com" for name in names)


def _parse_count_field(value: str) -> str:
    if any(ch in value for ch in " ,=\"'"):
        raise OptionError(f"count_field must be a field name, got '{value}'")
    return value


_PARSERS = {
    "span": _parse_span,
    "by": lambda v: BY_VALUES[_choice("by", v, ("account", "principal", "both"))],
    "show": lambda v: _choice("show", v, SHOW_VALUES),
    "phase": lambda v: _choice("phase", v, PHASES),
    "classes": _parse_classes,
    "event_sources": _parse_sources,
    "count_field": _parse_count_field,
    "sensitivity": lambda v: _number("sensitivity", v, 0.01, 100.0),
    "threshold": lambda v: _number("threshold", v, 1.0, 99.0),
    "min_failures": lambda v: int(_number("min_failures", v, 1, 10**9, True)),
    "history": lambda v: _duration("history", v, 3600, 400 * 86400),
    "half_life": lambda v: _duration("half_life", v, 300, 400 * 86400),
    "min_history": lambda v: _duration("min_history", v, 0, 90 * 86400),
}
# Former option names still accepted (none renamed so far: the option names are the SPL words).
_ALIASES: dict[str, str] = {}
_KEYS = ", ".join(sorted(_PARSERS))


def span_text(span: int) -> str:
    """``3600`` -> ``"1h"`` (for reasons)."""
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if span % seconds == 0:
            return f"{span // seconds}{unit}"
    return f"{span}s"
