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
from iamspike.secretapis import SensitiveApisError, secret_apis

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


# The ranges the parsers check (low, high; durations in seconds); --help shows them from here.
RANGES: dict[str, tuple[float, float]] = {
    "span": (durations.MIN_SPAN, durations.MAX_SPAN),
    "sensitivity": (0.01, 100.0),
    "threshold": (1.0, 99.0),
    "min_failures": (1, 10**9),
    "history": (3600, 400 * 86400),
    "half_life": (300, 400 * 86400),
    "min_history": (0, 90 * 86400),
}
DURATIONS = ("span", "history", "half_life", "min_history")  # options given as 5m, 1h, 7d...


@dataclass(frozen=True)
class OptionSpec:
    """One option as users see it (the CLI's --help reads these): SPL name, default as typed,
    allowed values (for an option in RANGES: what it needs besides its range), one line of help;
    ``cli`` False for options only the search command has."""

    name: str
    default: str
    allowed: str
    help: str
    cli: bool = True

    @property
    def allowed_values(self) -> str:
        """``"5m..1d, whole minutes"``: the range from RANGES, then ``allowed``."""
        if self.name not in RANGES:
            return self.allowed
        low, high = (_value_text(self.name, v) for v in RANGES[self.name])
        return f"{low}..{high}" + (f", {self.allowed}" if self.allowed else "")


def _value_text(key: str, value: float) -> str:
    if key in DURATIONS:
        return span_text(int(value)) if value else "0"
    return str(int(value)) if value == int(value) else f"{value:g}"


# In SPL order; a default in parentheses is "not set". A unit test parses the defaults to Options().
OPTION_SPECS = (
    OptionSpec("span", "1h", "whole minutes", "width of the time bins"),
    OptionSpec("by", "both", "account, principal, both", "which entities are scored"),
    OptionSpec("sensitivity", "1", "", "higher flags more, lower flags less"),
    OptionSpec("threshold", "50", "", "score at or above which a bin is flagged"),
    OptionSpec("min_failures", "5", "", "fewest failures in a bin that can be flagged"),
    OptionSpec(
        "show", "spikes", "spikes, all, state", "flagged bins, every bin, or the baselines (state rows)"
    ),
    OptionSpec(
        "classes",
        "authorization",
        "classes of lookups/iamspike_error_classes.csv, comma-separated",
        "errors that count as failures",
    ),
    OptionSpec(
        "event_sources",
        "(all)",
        "services, comma-separated (iam means iam.amazonaws.com)",
        "count only these services",
    ),
    OptionSpec(
        "count_field",
        "(none)",
        "a field name",
        "rows are pre-aggregated (CSV or JSON lines with _time, account, principal), the count in this field",
    ),
    OptionSpec("history", "30d", "", "history kept by show=state"),
    OptionSpec("half_life", "7d", "at least one span", "how fast old history fades"),
    OptionSpec("min_history", "1d", "", "below this much history, an entity is compared with its peers"),
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
        raise OptionError(
            f"{key} must be between {_value_text(key, low)} and {_value_text(key, high)}, got '{value}'"
        )
    return number


def _duration(key: str, value: str, low: float, high: float) -> int:
    if low == 0 and value == "0":  # the one duration that is not positive, where the range has it
        return 0
    try:
        seconds = durations.parse_duration(value)
    except ValueError as exc:
        raise OptionError(f"{key}: {exc}") from None
    if not low <= seconds <= high:
        raise OptionError(
            f"{key} must be between {_value_text(key, low)} and {_value_text(key, high)}, got '{value}'"
        )
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
    try:  # the APIs that read secrets (rule P25), from the lookup beside the error classes
        secret_apis(lookup)
    except SensitiveApisError as exc:
        raise OptionError(str(exc)) from None
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
    "sensitivity": lambda v: _number("sensitivity", v, *RANGES["sensitivity"]),
    "threshold": lambda v: _number("threshold", v, *RANGES["threshold"]),
    "min_failures": lambda v: int(_number("min_failures", v, *RANGES["min_failures"], True)),
    "history": lambda v: _duration("history", v, *RANGES["history"]),
    "half_life": lambda v: _duration("half_life", v, *RANGES["half_life"]),
    "min_history": lambda v: _duration("min_history", v, *RANGES["min_history"]),
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
