"""The allowlist: a KV store collection that survives upgrades, the old CSV still read, and a
malformed entry (bad wildcard, blank reason) ignored, never widening what is dropped.

The macro ``iam_error_spike_allowlist`` is expanded (standin.spl) and run step by step: each
``lookup`` as transforms.conf defines it (standin.searchtime.wildcard_lookup), ``where`` by the
eval evaluator of standin.searchtime, ``fields -`` as written.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from standin.conf import read_conf
from standin.searchtime import evaluate, wildcard_lookup
from standin.spl import expand_macros, first_name, pipeline

ROOT = Path(__file__).resolve().parents[2]
MACROS = read_conf(ROOT / "default" / "macros.conf")
TRANSFORMS = read_conf(ROOT / "default" / "transforms.conf")
COLLECTIONS = read_conf(ROOT / "default" / "collections.conf")
CSV_LOOKUP = ROOT / "lookups" / "iamspike_allowlist.csv"
COLUMNS = ["principal", "allowlist_reason"]

TERRAFORM = "arn:aws:iam::123456789012:role/terraform-apply"
SCANNER = "arn:aws:iam::210987654321:role/security-scanner"
TEMP_USER = "arn:aws:iam::123456789012:user/temp-user"


def macro_steps() -> list[tuple[str, str, list[str]]]:
    """The macro's commands, as they run after the alert's earlier steps."""
    steps = pipeline(expand_macros("* | `iam_error_spike_allowlist`", MACROS))
    assert steps[0][:2] == ("search", "*")
    return steps[1:]


def allowlisted(rows: list[dict], csv_entries: list[dict], kv_entries: list[dict]) -> list[dict]:
    """The rows the shipped macro keeps."""
    tables = {"iamspike_allowlist": csv_entries, "iamspike_allowlist_kv": kv_entries}
    for command, rest, subsearches in macro_steps():
        assert not subsearches
        if command == "lookup":
            rows = wildcard_lookup(rest, rows, TRANSFORMS, tables)
        elif command == "where":
            rows = [row for row in rows if evaluate(rest, row) == "true"]
        elif command == "fields" and rest.startswith("- "):
            rows = [{k: v for k, v in row.items() if k not in rest[2:].split()} for row in rows]
        else:
            raise AssertionError(f"{command} {rest}: not modelled here")
    return rows


def rows(*principals: str) -> list[dict]:
    return [
        {"entity_type": "principal" if p else "account", "principal": p, "score": "90"} for p in principals
    ]


def entry(principal: str, reason: str = "known automation") -> dict:
    return {"principal": principal, "allowlist_reason": reason}


def test_the_kv_store_collection_ships_empty_with_the_lookup_s_columns() -> None:
    kv = TRANSFORMS["iamspike_allowlist_kv"]
    assert kv["external_type"] == "kvstore" and kv["collection"] == "iamspike_allowlist"
    assert [f.strip() for f in kv["fields_list"].split(",")] == ["_key", *COLUMNS]
    assert {k for k in COLLECTIONS["iamspike_allowlist"]} == {f"field.{c}" for c in COLUMNS}
    with open(CSV_LOOKUP, encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [COLUMNS]  # the CSV ships with its header only


def test_both_lookups_are_read_and_account_rows_kept() -> None:
    kept = allowlisted(rows(TERRAFORM, SCANNER, TEMP_USER, ""), [entry("arn:aws:iam::*:role/terraform-*")],
                       [entry("arn:aws:iam::210987654321:role/security-*")])  # fmt: skip
    assert [r["principal"] for r in kept] == [TEMP_USER, ""]
    assert all(set(r) == {"entity_type", "principal", "score"} for r in kept)  # no helper field left


@pytest.mark.parametrize(
    ("bad", "why"),
    [("*", "bad wildcard: every principal"),
     ("arn:aws:iam::*:*", "bad wildcard: every principal of every account"),
     ("arn:aws:iam::*:role/*", "bad wildcard: every role"),
     ("arn:aws:iam::123456789012:*", "bad wildcard: a whole account"),
     ("*.amazonaws.com", "bad wildcard: every AWS service"),
     ("arn:aws:iam::.*:role/terraform.*", "a regular expression, not a wildcard"),
     ("arn:aws:iam::12345:role/terraform-*", "not an account id"),
     ("terraform", "not a principal")],
)  # fmt: skip
def test_a_malformed_entry_is_ignored_and_never_widens(bad, why) -> None:
    for csv_entries, kv_entries in (([entry(bad)], []), ([], [entry(bad)])):
        kept = allowlisted(rows(TERRAFORM, TEMP_USER), csv_entries, kv_entries)
        assert [r["principal"] for r in kept] == [TERRAFORM, TEMP_USER], why


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_entry_without_a_reason_is_ignored(reason) -> None:
    kept = allowlisted(rows(TERRAFORM), [], [entry(TERRAFORM, reason)])
    assert [r["principal"] for r in kept] == [TERRAFORM]


@pytest.mark.parametrize(
    "good",
    [TERRAFORM, "arn:aws:iam::*:role/terraform-*", "arn:aws:iam::123456789012:user/temp-*",
     "arn:aws-us-gov:iam::123456789012:role/terraform-apply", "arn:aws:iam::123456789012:root",
     "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_1/alice@example.com",
     "arn:aws:sts::*:federated-user/ci-*", "config.amazonaws.com", "aws-account:123456789012"],
)  # fmt: skip
def test_well_formed_entries_count(good) -> None:
    valid = MACROS["iam_error_spike_allowlist_valid(2)"]["definition"]
    row = {"entry": good, "reason": "CI"}
    assert evaluate(valid.replace("$entry$", "entry").replace("$reason$", "reason"), row) == "true"


def test_a_malformed_entry_does_not_hide_a_good_one_in_the_other_lookup() -> None:
    kept = allowlisted(rows(TERRAFORM), [entry("*")], [entry("arn:aws:iam::*:role/terraform-*")])
    assert kept == []


def test_the_macro_reads_each_lookup_once_and_no_subsearch() -> None:
    steps = macro_steps()
    assert not any(subsearches for _, _, subsearches in steps)
    names = [first_name(rest) for command, rest, _ in steps if command == "lookup"]
    assert names == ["iamspike_allowlist", "iamspike_allowlist_kv"]
