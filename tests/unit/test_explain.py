"""Explanations: top-N strings and the one-sentence reason, in an analyst's words."""

from __future__ import annotations

import re

import pytest
from iamspike.engine import parse_options, run
from iamspike.explain import CellExplain, number, reason, top

T0 = 1_788_739_200  # 2026-09-07T00:00:00Z
ACCT = "111122223333"
ENGINE_WORDS = ("decides", "pooled", "peer", "hold-down", "held down", "min_history", "insufficient", "onset")


def test_top_ranks_by_count_then_name_and_keeps_five() -> None:
    counts = {"b": 2, "a": 2, "c": 9, "d": 1, "e": 1, "f": 1}
    assert top(counts) == "c (9), a (2), b (2), d (1), e (1)"
    assert top({}) == ""


def test_cell_explain_ignores_empty_names() -> None:
    cell = CellExplain()
    cell.add("iam.amazonaws.com", "ListUsers", "AccessDenied", "", "aws-cli", 3)
    cell.add("iam.amazonaws.com", "ListRoles", "AccessDenied", "203.0.113.1", "aws-cli", 1)
    assert cell.apis == {"ListUsers": 3, "ListRoles": 1}
    assert cell.ips == {"203.0.113.1": 1}
    assert cell.codes == {"AccessDenied": 4}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.05, "0.05"),
        (0.0504, "0.05"),
        (0.1234, "0.123"),
        (4.0, "4"),
        (9.831, "9.83"),
        (12.6, "13"),
        (0.0, "0"),
    ],
)
def test_numbers_are_the_rows_values_to_three_significant_digits(value: float, text: str) -> None:
    assert number(value) == text


def test_peers_are_named_by_kind_and_number() -> None:
    text = reason("acct", 50, "1h", 1.0, 6.0, 2, 1, False, 4, 12, 0, "account")
    assert (
        "the data has only 4 bins of 1h before it, so it is compared with what the 12 other accounts" in text
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("temp-user", 505, "1h", 0.05, 4.0, 97, 2, True, 0, 1, 0),
            "temp-user had 505 failed calls in 1h, expected 0.05 (upper 4), across 97 APIs and 2 error"
            " codes; the data has no bins of 1h before it, so it is compared with what the 1 other"
            " principal of its account usually fail; it had no failures before, so what stands out is"
            " that 97 different APIs failed.",
        ),
        (
            ("x", 9, "1h", 20.0, 40.0, 1, 1, False),
            "x had 9 failed calls in 1h, expected 20 (upper 40), across 1 API and 1 error code.",
        ),
        (
            ("bob", 30, "5m", 0.2, 3.5, 1, 1, True, 3, 0, 0),
            "bob had 30 failed calls in 5m, expected 0.2 (upper 3.5), across 1 API and 1 error code;"
            " the data has only 3 bins of 5m before it, and nothing to compare it with;"
            " it had no failures before, and they are all on 1 API.",
        ),
        (
            ("ci", 80, "1h", 11.4, 25.2, 3, 1, False, None, 0, 5),
            "ci had 80 failed calls in 1h, expected 11 (upper 25), across 3 APIs and 1 error code;"
            " compared with the same time of day on the last 5 days.",
        ),
    ],
)
def test_reason_says_why_the_bin_stands_out_in_plain_words(args: tuple, expected: str) -> None:
    text = reason(*args)
    assert text == expected
    assert "\n" not in text
    assert not [word for word in ENGINE_WORDS if word in text], text


def _numbers_agree(shown: str, field: float) -> bool:
    """A number in the reason is the row's field as rounded there: 3 significant digits below 10."""
    return float(shown) == (float(f"{field:.3g}") if field < 10 else round(field))


HEAD = re.compile(
    r"^(?P<entity>.+) had (?P<failures>\d+) failed calls in (?P<span>\w+), expected (?P<expected>[\d.]+)"
    r" \(upper (?P<upper>[\d.]+)\), across (?P<apis>\d+) APIs? and (?P<codes>\d+) error codes?[;.]"
)


def _event(t: int, api: str, arn: str, code: str = "AccessDenied") -> dict:
    return {
        "eventTime": t,
        "eventName": api,
        "eventSource": "iam.amazonaws.com",
        "errorCode": code,
        "recipientAccountId": ACCT,
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2",
        "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": ACCT},
    }


def test_every_number_in_a_reason_equals_its_field_in_the_row() -> None:
    ci = f"arn:aws:iam::{ACCT}:user/ci"
    alice = f"arn:aws:iam::{ACCT}:user/alice"
    apis = [f"List{n}" for n in range(40)]
    records = [_event(T0 + h * 3600 + 60 * i, "GetUser", ci) for h in range(72) for i in range(1 + h % 3)]
    records += [_event(T0 + 60 * 3600 + 7 * i, apis[i % len(apis)], alice) for i in range(120)]
    rows = run(records, parse_options(["show=all"]))
    assert any(row["is_spike"] for row in rows) and len(rows) > 100
    fractional = 0
    for row in rows:
        head = HEAD.match(str(row["reason"]))
        assert head, row["reason"]
        assert int(head["failures"]) == row["failures"]
        assert int(head["apis"]) == row["distinct_apis"]
        for name in ("expected", "upper"):
            assert _numbers_agree(head[name], float(row[name])), (name, row[name], row["reason"])
            fractional += 0 < float(row[name]) < 1
        assert not [word for word in ENGINE_WORDS if word in str(row["reason"])], row["reason"]
    assert fractional  # the rows include expectations below 1, where ".1f" used to disagree
