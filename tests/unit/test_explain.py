"""Explanations: top-N strings and the one-sentence reason, in an analyst's words."""

from __future__ import annotations

import pathlib
import re

import pytest
from iamspike.engine import parse_options, run
from iamspike.explain import CellExplain, number, reason, top
from iamspike.files import FileReader

SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data" / "cloudtrail"
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
            " codes; it is in the first 1h of the data, so it is compared with what the 1 other"
            " principal of its account usually fails; it had no failures before, so what stands out is"
            " that 97 different APIs failed.",
        ),
        (
            ("x", 9, "1h", 20.0, 40.0, 1, 1, False),
            "x had 9 failed calls in 1h, expected 20 (upper 40), across 1 API and 1 error code.",
        ),
        (
            ("bob", 30, "5m", 0.2, 3.5, 1, 1, True, 3, 0, 0),
            "bob had 30 failed calls in 5m, expected 0.2 (upper 3.5), across 1 API and 1 error code;"
            " the data has only 3 bins of 5m before it, with nothing to compare it with;"
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


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/cloudtrail not present")
@pytest.mark.parametrize("name", ["pwnedlabs_incident_3252", "invictus_aws_dataset"])
def test_every_number_in_a_reason_equals_its_field_in_the_row(name: str) -> None:
    rows = run(FileReader([str(SHARED / name)]), parse_options(["show=all"]))
    assert any(row["is_spike"] for row in rows)
    fractional = 0
    for row in rows:
        head = HEAD.match(str(row["reason"]))
        assert head, row["reason"]
        assert int(head["failures"]) == row["failures"]
        assert int(head["apis"]) == row["distinct_apis"]
        for field in ("expected", "upper"):
            assert _numbers_agree(head[field], float(row[field])), (field, row[field], row["reason"])
            fractional += 0 < float(row[field]) < 1
        assert not [word for word in ENGINE_WORDS if word in str(row["reason"])], row["reason"]
        if "different APIs failed" in str(row["reason"]):
            assert f"that {row['distinct_apis']} different APIs failed" in str(row["reason"])
    assert fractional  # expectations below 1, where ".1f" wrote 0.05 as 0.1


def test_cell_explain_counts_deferred_keys_once_per_table_on_top_of_added_ones() -> None:
    keys = [
        (0, "1", "p", "iam.amazonaws.com", "ListUsers", "AccessDenied", "203.0.113.1", "aws-cli"),
        (0, "1", "p", "s3.amazonaws.com", "GetObject", "AccessDenied", "", "aws-cli"),
        (0, "1", "p", "iam.amazonaws.com", "ListUsers", "Throttling", "203.0.113.1", ""),
    ]
    cell = CellExplain()
    cell.add("iam.amazonaws.com", "ListUsers", "AccessDenied", "", "console", 1)  # a count row's
    cell.defer(keys, [3, 2, 5], [0, 2])  # the second key is another cell's
    assert cell.apis == {"ListUsers": 9}
    assert cell.apis == {"ListUsers": 9}  # read again: not counted twice
    assert cell.codes == {"AccessDenied": 4, "Throttling": 5}
    assert cell.ips == {"203.0.113.1": 8}
    assert cell.user_agents == {"console": 1, "aws-cli": 3}
    assert cell.services == {"iam.amazonaws.com": 9}
