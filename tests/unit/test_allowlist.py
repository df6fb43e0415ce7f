"""The allowlist: a KV store collection that survives upgrades, the old CSV still read, and a
malformed entry (bad wildcard, blank reason, unknown column) ignored, never widening what is
dropped, and named once in the search's messages.

The macro ``iam_error_spike_allowlist`` appends the entries of both lookups as rows; the scoring
``iamspike`` (``Detector``, fed rows as splunkd hands them over) drops the flagged principal rows
they match. tests/contract/test_alert_searches.py runs the principal alert with it end to end.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from iamspike.allowlist import Allowlist, Entry, problem
from iamspike.engine import Detector, Options
from standin.conf import read_conf
from standin.spl import expand_macros, first_name, pipeline

ROOT = Path(__file__).resolve().parents[2]
MACROS = read_conf(ROOT / "default" / "macros.conf")
TRANSFORMS = read_conf(ROOT / "default" / "transforms.conf")
COLLECTIONS = read_conf(ROOT / "default" / "collections.conf")
SAVED = read_conf(ROOT / "default" / "savedsearches.conf")
CSV_LOOKUP = ROOT / "lookups" / "iamspike_allowlist.csv"
COLUMNS = ["principal", "allowlist_reason"]

TERRAFORM = "arn:aws:iam::123456789012:role/terraform-apply"
SCANNER = "arn:aws:iam::210987654321:role/security-scanner"
TEMP_USER = "arn:aws:iam::123456789012:user/temp-user"


def entry(principal: str, reason: str = "known automation", **extra: str) -> dict:
    return {"principal": principal, "allowlist_reason": reason, **extra}


def result_rows(*principals: str) -> list[dict]:
    return [
        {"entity_type": "principal" if p else "account", "principal": p, "score": "90"} for p in principals
    ]


def allowlisted(results: list[dict], *lookups: list[dict]) -> tuple[list[dict], str | None]:
    """The result rows kept, and the message, for the entries of each lookup fed as Splunk rows."""
    allow = Allowlist()
    for entries in lookups:
        header = list(dict.fromkeys(k for e in entries for k in e)) or COLUMNS
        allow.add_rows(header, [[e.get(k, "") for k in header] for e in entries])
    return allow.keep(results), allow.message()


def test_the_kv_store_collection_ships_empty_with_the_lookup_s_columns() -> None:
    kv = TRANSFORMS["iamspike_allowlist_kv"]
    assert kv["external_type"] == "kvstore" and kv["collection"] == "iamspike_allowlist"
    assert [f.strip() for f in kv["fields_list"].split(",")] == ["_key", *COLUMNS]
    assert {k for k in COLLECTIONS["iamspike_allowlist"]} == {f"field.{c}" for c in COLUMNS}
    with open(CSV_LOOKUP, encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [COLUMNS]  # the CSV ships with its header only


def test_the_macro_appends_both_lookups_without_a_subsearch_before_the_scoring_step() -> None:
    steps = pipeline(expand_macros("* | `iam_error_spike_allowlist`", MACROS))[1:]
    assert [(c, r.split()[0], first_name(r)) for c, r, _ in steps] == [
        ("inputlookup", "append=true", "iamspike_allowlist"),
        ("inputlookup", "append=true", "iamspike_allowlist_kv"),
    ]
    assert not any(subsearches for _, _, subsearches in steps)
    alert = [
        c + " " + r
        for c, r, _ in pipeline(expand_macros(SAVED["IAM Error Spike - Principal Alert"]["search"], MACROS))
    ]
    scoring = next(i for i, step in enumerate(alert) if step.startswith("iamspike ") and "phase=" not in step)
    assert alert[scoring - 2 : scoring] == [
        "inputlookup append=true iamspike_allowlist",
        "inputlookup append=true iamspike_allowlist_kv",
    ], "the entries reach the scoring iamspike"  # fmt: skip


def test_both_lookups_are_read_and_account_rows_kept() -> None:
    csv_entries = [entry("arn:aws:iam::*:role/terraform-*")]
    kv_entries = [entry("arn:aws:iam::210987654321:role/security-*", _key="k1")]
    kept, message = allowlisted(result_rows(TERRAFORM, SCANNER, TEMP_USER, ""), csv_entries, kv_entries)
    assert [r["principal"] for r in kept] == [TEMP_USER, ""]
    assert message is None


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
def test_a_malformed_entry_is_ignored_never_widens_and_is_named(bad, why) -> None:
    for lookups in (([entry(bad)], []), ([], [entry(bad)])):
        kept, message = allowlisted(result_rows(TERRAFORM, TEMP_USER), *lookups)
        assert [r["principal"] for r in kept] == [TERRAFORM, TEMP_USER], why
        assert message and repr(bad) in message and "1 malformed entry ignored" in message, message


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_entry_without_a_reason_is_ignored(reason) -> None:
    kept, message = allowlisted(result_rows(TERRAFORM), [], [entry(TERRAFORM, reason)])
    assert [r["principal"] for r in kept] == [TERRAFORM]
    assert "blank allowlist_reason" in message


def test_an_entry_with_an_unknown_column_is_ignored_rather_than_read_wider() -> None:
    # An admin who adds an account column expects the entry to hold for that account only: it is
    # not read at all (the entry would otherwise drop the role in every account), and said so.
    kept, message = allowlisted(
        result_rows(TERRAFORM), [entry("arn:aws:iam::*:role/terraform-*", account="111111111111")]
    )
    assert [r["principal"] for r in kept] == [TERRAFORM]
    assert "unknown column account" in message  # fmt: skip


def test_many_malformed_entries_make_one_line() -> None:
    _, message = allowlisted([], [entry(f"bad-{n}") for n in range(7)])
    assert "\n" not in message and "7 malformed entries" in message and "and 4 more" in message


@pytest.mark.parametrize(
    "good",
    [TERRAFORM, "arn:aws:iam::*:role/terraform-*", "arn:aws:iam::123456789012:user/temp-*",
     "arn:aws-us-gov:iam::123456789012:role/terraform-apply", "arn:aws:iam::123456789012:root",
     "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_1/alice@example.com",
     "arn:aws:sts::*:federated-user/ci-*", "config.amazonaws.com", "aws-account:123456789012"],
)  # fmt: skip
def test_well_formed_entries_count(good) -> None:
    assert problem(Entry(good, "CI", ())) is None


def test_a_malformed_entry_does_not_hide_a_good_one() -> None:
    kept, message = allowlisted(
        result_rows(TERRAFORM), [entry("*")], [entry("arn:aws:iam::*:role/terraform-*")]
    )
    assert kept == [] and "'*'" in message  # fmt: skip


def test_wildcards_are_literal_otherwise_and_case_sensitive() -> None:
    dotted = "arn:aws:iam::123456789012:role/app.v2"
    kept, _ = allowlisted(result_rows(dotted, "arn:aws:iam::123456789012:role/appXv2", TERRAFORM.upper()),
                          [entry(dotted), entry(TERRAFORM)])  # fmt: skip
    assert [r["principal"] for r in kept] == ["arn:aws:iam::123456789012:role/appXv2", TERRAFORM.upper()]


def burst(role: str, n: int = 40) -> list[dict]:
    """A new role's burst of denials in one hour (flagged by default)."""
    session = role.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + "/s"
    identity = {"userIdentity.type": "AssumedRole", "userIdentity.arn": session,
                "userIdentity.sessionContext.sessionIssuer.arn": role}  # fmt: skip
    return [
        {"_time": str(1_700_000_000 + 30 * i), "eventID": f"{role}-{i}", "errorCode": "AccessDenied",
         "eventSource": "iam.amazonaws.com", "eventName": f"List{i % 12}",
         "recipientAccountId": "123456789012", "sourceIPAddress": "203.0.113.9", **identity}
        for i in range(n)
    ]  # fmt: skip


def splunk_rows(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = list(dict.fromkeys(k for r in records for k in r))
    return header, [[str(r.get(k, "")) for k in header] for r in records]


def test_the_scoring_command_drops_flagged_rows_and_says_so_once_while_the_state_keeps_learning() -> None:
    events = burst(TERRAFORM) + burst(SCANNER)
    entries = [entry("arn:aws:iam::*:role/terraform-*"), entry("*"), entry("*")]
    flagged = {}
    for show in ("spikes", "state"):
        detector = Detector(Options(show=show))
        for chunk in (
            events,
            entries,
        ):  # the entries come after the events, as inputlookup append=true puts them
            detector.add_rows(*splunk_rows(chunk))
        flagged[show] = {
            r.get("principal") for r in detector.results() if r.get("entity_type") == "principal"
        }
        said = [m for m in detector.messages() if "allowlist" in m]
        assert len(said) == 1 and "2 malformed entries" in said[0], said
    assert TERRAFORM not in flagged["spikes"] and SCANNER in flagged["spikes"]
    assert TERRAFORM in flagged["state"], "allowlisted principals keep their saved baseline"
