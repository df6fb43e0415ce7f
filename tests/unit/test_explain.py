"""Explanations: top-N strings and the one-sentence reason."""

from __future__ import annotations

from iamspike.explain import CellExplain, reason, top


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


def test_reason_is_one_sentence_with_the_numbers() -> None:
    text = reason("temp-user", 505, "1h", 0.05, 4.0, 97, 2, True, 0, 1, 0)
    assert text.startswith("temp-user had 505 failed calls in 1h, expected 0.1 (upper 4.0), across 97 APIs")
    assert "insufficient history (0 bins), prior pooled from 1 peer;" in text
    assert "failures started from silence" in text
    assert text.endswith(".") and "\n" not in text
    assert "across 1 API and 1 error code." in reason("x", 9, "1h", 20.0, 40.0, 1, 1, False)
