"""Options: every refusal is one line naming the option; the map phase's options for the preop."""

from __future__ import annotations

import pytest
from iamspike.options import OptionError, Options, counting_args, parse_options, span_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["span=2s"], "span must be between 5m and 1d"),
        (["span=0"], "span: duration must be a positive"),
        (["span=abc"], "span: not a duration"),
        (["span=-1h"], "span: not a duration"),
        (["span=330s"], "span must be a whole number of minutes"),
        (["phase=shuffle"], "phase must be report, map or fold"),
        (["history=forever"], "history: not a duration"),
        (["span=1y"], "unknown time unit"),
        (["foo=1"], "unknown option 'foo'"),
        (["span"], "options are key=value"),
        (["by=role"], "by must be account, principal or both"),
        (["sensitivity=high"], "sensitivity must be a number"),
        (["sensitivity=0"], "sensitivity must be between"),
        (["min_failures=0"], "min_failures must be between"),
        (["min_failures=2.5"], "min_failures must be a whole number"),
        (["show=everything"], "show must be spikes, all or state"),
        (["classes=nope"], "unknown error class 'nope'"),
        (["classes="], "needs a value"),
        (["show=all", "show=spikes"], "given twice"),
        (["threshold=150"], "threshold must be between"),
        (["count_field=a b"], "count_field must be a field name"),
        (["half_life=5m", "span=1h"], "half_life must be at least one span"),
    ],
)
def test_bad_options_are_one_line_errors(args: list[str], message: str) -> None:
    with pytest.raises(OptionError) as info:
        parse_options(args)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_options_parse() -> None:
    options = parse_options(
        [
            "span=30m",
            "by=principal",
            'classes="authorization,throttling"',
            "event_sources=iam,s3.amazonaws.com",
        ]
    )
    assert options.span == 1800 and options.by == ("principal",)
    assert options.classes == ("authorization", "throttling")
    assert options.event_sources == ("iam.amazonaws.com", "s3.amazonaws.com")
    assert parse_options([]) == Options()
    assert parse_options(["by=both"]).by == ("account", "principal")


def test_defaults_and_values() -> None:
    assert parse_options([]) == Options()
    options = parse_options(["span=30m", "by=account", "phase=map", "event_sources=iam,sts", 'show="all"'])
    assert options.span == 1800 and options.by == ("account",) and options.phase == "map"
    assert options.event_sources == ("iam.amazonaws.com", "sts.amazonaws.com") and options.show == "all"


def test_counting_args_round_trip_to_the_same_counting() -> None:
    options = parse_options(
        ["span=15m", "classes=authorization,throttling", "event_sources=iam", "count_field=n"]
    )
    args = counting_args(options)
    assert args == [
        "span=900",
        "classes=authorization,throttling",
        "event_sources=iam.amazonaws.com",
        "count_field=n",
    ]
    again = parse_options([*args, "phase=map"])
    assert (again.span, again.classes, again.event_sources, again.count_field) == (
        options.span,
        options.classes,
        options.event_sources,
        options.count_field,
    )


def test_span_text() -> None:
    assert [span_text(s) for s in (300, 3600, 86400, 5400)] == ["5m", "1h", "1d", "90m"]


def test_option_specs_list_every_option_with_defaults_that_parse_to_the_defaults() -> None:
    from iamspike.options import _PARSERS, OPTION_SPECS

    assert [spec.name for spec in OPTION_SPECS if spec.name in _PARSERS] == [
        spec.name for spec in OPTION_SPECS
    ]
    assert {spec.name for spec in OPTION_SPECS} == set(_PARSERS)
    typed = [f"{spec.name}={spec.default}" for spec in OPTION_SPECS if not spec.default.startswith("(")]
    assert parse_options(typed) == Options()
