"""The HTML report: one page, no network, per flagged entity a chart of failures against expected and
upper over every bin, the flagged bins explained, top lists merged over them."""

from __future__ import annotations

import re

from iamspike import report
from iamspike.options import Options

SPAN = 3600
T0 = 1_788_739_200


def series(principal: str, failures: list[int], spikes: set[int]) -> list[dict]:
    return [
        {
            "_time": T0 + i * SPAN,
            "entity_type": "principal",
            "account": "1",
            "principal": principal,
            "failures": count,
            "expected": 1.5,
            "upper": 6.0,
            "score": 90.0 if i in spikes else 1.0,
            "severity": "high" if i in spikes else "none",
            "top_apis": "ListUsers (3), GetUser (1)" if i in spikes else "",
            "top_error_codes": "AccessDenied (4)" if i in spikes else "",
            "top_source_ips": "198.51.100.7 (4)" if i in spikes else "",
            "top_user_agents": "Mozilla/5.0 (KHTML, like Gecko) (4)" if i in spikes else "",
            "reason": "<b>x</b> had many failures" if i in spikes else "",
            "is_spike": int(i in spikes),
        }
        for i, count in enumerate(failures)
    ]


def test_page_per_flagged_entity_offline() -> None:
    rows = series("arn:aws:iam::1:user/x", [1, 2, 40, 1, 30], {2, 4}) + series(
        "arn:aws:iam::1:user/q", [1] * 5, set()
    )
    page = report.render(rows, Options(), "10 CloudTrail records in 1 file", generated=T0)
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1 and "user/q" not in page
    assert re.findall(r"<(script|link|img|iframe)\b", page) == [] and "url(" not in page
    assert "&lt;b&gt;x&lt;/b&gt; had many failures" in page  # engine text escaped
    assert "2 flagged bins in 1 entity" in page and "span=1h by=both" in page
    assert page.count('fill="#c92a2a"><title>') == 2  # one marker per spike, with its numbers
    assert "ListUsers (6), GetUser (2)" in page and "Mozilla/5.0 (KHTML, like Gecko) (8)" in page


def test_long_window_bucketed_and_zoomed() -> None:
    bins = 3 * report.MAX_COLUMNS + 5
    rows = series("arn:aws:iam::1:user/x", [1] * bins, {bins - 3})
    page = report.render(rows, Options(), "read", generated=T0)
    assert page.count("<svg") == 2 and "one bar = max of 4 bins" in page
    assert f"zoom: {report.ZOOM_BINS + 3} bins around" in page


def test_no_spikes() -> None:
    page = report.render(series("p", [0, 0], set()), Options(), "read", generated=T0)
    assert "<p>No spikes.</p>" in page and "<svg" not in page


def test_merge_top_keeps_items_with_commas() -> None:
    merged = report.merge_top(["a (2), Mozilla (KHTML, like Gecko) (3)", "a (5)"])
    assert merged == [("a", 7), ("Mozilla (KHTML, like Gecko)", 3)]
