"""Rule P25 (sensitive.py, flags.py): a machine principal's denied reads of secrets from silence are
not held down as an onset: the Stratus Red Team role denied ``DescribeInstanceAttribute`` (user
data) 15 times in seconds is flagged, with and without history; the same count on another API, or
from a person, or below 2 x min_failures, is not (docs/engine.md section 5, P25)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from iamspike.engine import Detector, parse_options, run
from iamspike.options import OptionError
from iamspike.secretapis import LOOKUP_NAME, SECRET_APIS, read_secret_apis, secret_apis
from iamspike.sensitive import reads_note, secret_reads
from test_spread import ACCT, HOUR, SPIKE_HOUR, T0, event, quiet_account, user

ROLE = f"arn:aws:iam::{ACCT}:role/stratus-red-team-get-usr-data-role"
REPO = Path(__file__).resolve().parents[2]


def test_secret_reads_count_the_apis_that_read_secrets() -> None:
    apis = {"DescribeInstanceAttribute": 12, "GetPasswordData": 3, "DescribeInstances": 9}
    assert secret_reads(apis) == 15
    assert secret_reads({"DescribeInstances": 20, "ListSecrets": 4}) == 0
    assert reads_note(apis) == (
        "15 of them are denied reads of secrets (DescribeInstanceAttribute, GetPasswordData)"
    )


def burst(arn: str, n: int, api: str = "DescribeInstanceAttribute", at: int = SPIKE_HOUR) -> list[dict]:
    """``n`` denials of ``arn`` on ``api`` within seconds, in hour ``at`` of the window."""
    return [event(T0 + at * HOUR + 600 + i / 3, arn, api) for i in range(n)]


def rows_of(records: list[dict], principal: str) -> list[dict]:
    rows = run(sorted(records, key=lambda r: r["eventTime"]))
    return [r for r in rows if r["principal"] == principal]


def test_a_roles_15_denied_reads_of_user_data_after_history_are_flagged() -> None:
    (row,) = rows_of(quiet_account(11) + burst(ROLE, 15), ROLE)
    assert (row["_time"] - T0) // HOUR == SPIKE_HOUR
    assert row["score"] >= 90
    assert "15 of them are denied reads of secrets (DescribeInstanceAttribute)" in row["reason"]


def test_the_same_count_on_another_api_from_a_person_or_below_the_floor_is_not() -> None:
    history = quiet_account(11)
    assert rows_of(history + burst(ROLE, 15, "DescribeInstances"), ROLE) == []
    assert rows_of(history + burst(user("judy"), 15), user("judy")) == []
    assert rows_of(history + burst(ROLE, 9), ROLE) == []
    assert rows_of(history + burst(ROLE, 9, "GetPasswordData"), ROLE) == []


def test_as_delivered_a_detonation_in_its_first_hours_is_flagged() -> None:
    # The Stratus file: the role's burst is the data's first hour, beside a user's 2 denials.
    first = burst(ROLE, 15, at=0) + burst(user("christophe"), 2, "AssumeRole", at=0)
    assert len(rows_of(first, ROLE)) == 1
    # The Invictus set: another detonation's 29 denials an hour before make the prior of the
    # account's principals high (expected 1, upper 21); the reads are flagged all the same.
    other = f"arn:aws:iam::{ACCT}:role/stratus-red-team-ec2-get-password-data-role"
    both = burst(other, 29, "GetPasswordData", at=0) + burst(user("bert"), 13, "AssumeRole", at=0)
    (row,) = rows_of(both + burst(ROLE, 15, at=1), ROLE)
    assert row["score"] >= 50


def test_count_rows_give_the_same_answer() -> None:
    records = sorted(quiet_account(11) + burst(ROLE, 15), key=lambda r: r["eventTime"])
    per_hour = Counter(
        (int(r["eventTime"]) // HOUR * HOUR, r["userIdentity"]["arn"], r["eventName"])
        for r in records
        if r["errorCode"]
    )
    detector = Detector(parse_options(["count_field=count"]))
    detector.add_rows(
        ["_time", "account", "principal", "eventName", "count"],
        [[str(t), ACCT, arn, api, str(n)] for (t, arn, api), n in sorted(per_hour.items())],
    )
    via_rows = [(r["_time"], r["score"]) for r in detector.results() if r["principal"] == ROLE]
    assert via_rows == [(r["_time"], r["score"]) for r in rows_of(records, ROLE)]
    assert len(via_rows) == 1


# ---- the admin's list: lookups/iamspike_sensitive_apis.csv (secretapis.py) ----------------------


def lookups_with(tmp_path, sensitive: str | None) -> str:
    """A lookups folder holding the shipped error classes and ``sensitive`` as the sensitive-API
    lookup (none when None); returns the error-class lookup's path, as ``lookup=`` takes it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    classes = tmp_path / "iamspike_error_classes.csv"
    classes.write_text((REPO / "lookups" / "iamspike_error_classes.csv").read_text(encoding="utf-8"))
    if sensitive is not None:
        (tmp_path / LOOKUP_NAME).write_text(sensitive, encoding="utf-8")
    return str(classes)


def flagged_with(lookup: str, records: list[dict], principal: str) -> list[dict]:
    detector = Detector(parse_options([], lookup=lookup))
    detector.add_records(sorted(records, key=lambda r: r["eventTime"]))
    return [r for r in detector.results() if r["principal"] == principal]


def test_the_shipped_lookup_lists_the_built_in_apis() -> None:
    assert read_secret_apis(str(REPO / "lookups" / LOOKUP_NAME)) == SECRET_APIS
    assert secret_apis() == SECRET_APIS


def test_an_api_the_admin_adds_is_read_as_a_secret(tmp_path) -> None:
    shipped = (REPO / "lookups" / LOOKUP_NAME).read_text(encoding="utf-8")
    lookup = lookups_with(tmp_path, shipped + "GetCredentials,our vault's credentials\n")
    records = quiet_account(11) + burst(ROLE, 15, "GetCredentials")
    (row,) = flagged_with(lookup, records, ROLE)
    assert "15 of them are denied reads of secrets (GetCredentials)" in row["reason"]
    assert rows_of(records, ROLE) == []  # the shipped list does not have it
    # The shipped APIs are still read: the admin's rows extend the list.
    assert len(flagged_with(lookup, quiet_account(11) + burst(ROLE, 15), ROLE)) == 1


def test_an_empty_list_turns_the_rule_off_and_a_missing_file_keeps_the_built_in_apis(tmp_path) -> None:
    records = quiet_account(11) + burst(ROLE, 15)
    assert flagged_with(lookups_with(tmp_path / "empty", "eventName,description\n"), records, ROLE) == []
    assert len(flagged_with(lookups_with(tmp_path / "none", None), records, ROLE)) == 1


def test_a_bad_lookup_is_a_one_line_error_naming_the_file(tmp_path) -> None:
    for i, (text, cause) in enumerate(
        (
            ("api,description\nGetSecretValue,x\n", "needs an eventName column (found: api, description)"),
            (
                "eventName\nGetSecretValue\nGet Secret Value\n",
                "line 3: 'Get Secret Value' is not an API name",
            ),
            (b"eventName\n\xff\xfe\n", "cannot be read"),
        )
    ):
        folder = tmp_path / str(i)
        lookup = lookups_with(folder, "")
        (folder / LOOKUP_NAME).write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(OptionError) as caught:
            parse_options([], lookup=lookup)
        message = str(caught.value)
        assert message.startswith(f"lookups/{LOOKUP_NAME}")
        assert cause in message
        assert "\n" not in message
