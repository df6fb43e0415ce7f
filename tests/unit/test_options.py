"""Options: every refusal is one line naming the option; the map phase's options for the preop."""

from __future__ import annotations

import pytest
from iamspike.options import OptionError, Options, counting_args, parse_options, span_text


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["span=0"], "span"),
        (["span=abc"], "span"),
        (["span=-1h"], "span"),
        (["span=1s"], "span"),
        (["span=90s"], "span"),
        (["by=region"], "by"),
        (["show=everything"], "show"),
        (["phase=shuffle"], "phase"),
        (["min_failures=lots"], "min_failures"),
        (["min_failures=-3"], "min_failures"),
        (["sensitivity=nan"], "sensitivity"),
        (["history=forever"], "history"),
        (["half_life=10m", "span=1h"], "half_life"),
        (["count_field=a b"], "count_field"),
        (["classes=nonsense"], "nonsense"),
        (["spam=1"], "spam"),
        (["span=1h", "span=2h"], "span"),
        (["span="], "span"),
    ],
)
def test_refusals_name_the_option_in_one_line(args, named) -> None:
    with pytest.raises(OptionError) as caught:
        parse_options(args)
    text = str(caught.value)
    assert named in text and "\n" not in text and len(text) < 400


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
