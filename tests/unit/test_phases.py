"""The streaming phases: phase=map (count rows, pass-through, range row) and phase=fold."""

from __future__ import annotations

import json
import re

from iamspike.cloudtrail import FIELDS, record_to_row
from iamspike.counting import COUNTS_FIELD
from iamspike.options import parse_options
from iamspike.phases import FoldPhase, MapPhase

ACCT = "111122223333"
T0 = 1_788_739_200


def record(n: int, arn: str, code: str = "AccessDenied") -> dict:
    return {
        "eventTime": T0 + n,
        "eventID": f"e{n}",
        "eventName": "ListUsers",
        "eventSource": "iam.amazonaws.com",
        "errorCode": code,
        "recipientAccountId": ACCT,
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{ACCT}:assumed-role/deploy/s{n}",
            "sessionContext": {"sessionIssuer": {"arn": f"arn:aws:iam::{ACCT}:role/ci/{arn}"}},
        },
    }


def test_map_counts_once_per_cell_and_sends_its_range_and_skipped_rows() -> None:
    mapper = MapPhase(parse_options(["phase=map"]))
    rows = [record_to_row(record(n, "deploy")) for n in range(6)] + [record_to_row(record(9, "deploy", ""))]
    mapper.add_rows(list(FIELDS), rows[:3])
    assert mapper.take() == []  # counts wait for finished
    mapper.add_rows(list(FIELDS), [*rows[3:], ["junk-time", *[""] * (len(FIELDS) - 1)]])
    cell, range_row = mapper.results()
    assert (cell["account"], cell["principal"], cell["failures"]) == (
        ACCT,
        f"arn:aws:iam::{ACCT}:role/deploy",
        6,
    )
    blob = json.loads(str(range_row[COUNTS_FIELD])[2:])
    assert range_row["principal"] == "" and blob["lo"] == T0 and blob["hi"] == T0 + 9
    assert blob["skipped"] == {"with no usable _time": 1}


def test_map_sends_one_row_per_principal_over_its_bins_at_an_early_send(monkeypatch) -> None:
    from iamspike import phases

    monkeypatch.setattr(phases, "FLUSH_KEYS", 3)  # keys held before an early send
    mapper = MapPhase(parse_options(["phase=map"]))
    mapper.add_rows(list(FIELDS), [record_to_row(record(3600 * h, "deploy")) for h in (0, 2, 3)])
    (early,) = mapper.take()  # three bins of one principal: one row
    assert early["_time"] == T0 and early["failures"] == 3 and str(early[COUNTS_FIELD]).startswith("v40;0:1;")
    heads = [field for field in str(early[COUNTS_FIELD]).split(";") if re.fullmatch(r"\d+:\d+", field)]
    assert heads == ["0:1", "7200:1", "10800:1"]  # each bin's offset in seconds, and its one entry
    mapper.add_rows(list(FIELDS), [record_to_row(record(3600 * 5, "deploy"))])
    late, _range_row = mapper.results()
    assert late["_time"] == T0 + 3600 * 5 and str(late[COUNTS_FIELD]).startswith("v30;")  # one bin: v3


def test_map_passes_count_rows_and_state_rows_through_and_is_silent_on_none() -> None:
    passed = {"_time": "0", "account": ACCT, "principal": "p", COUNTS_FIELD: "v1[0,[]]", "__mv_account": ""}
    state = {"account": ACCT, "iamspike_state": '{"v":2}', "state_key": "k"}
    mapper = MapPhase(parse_options(["phase=map"]))
    for row in (passed, state):
        mapper.add_rows(list(row), [list(row.values())])
    assert mapper.take() == [passed, state]
    assert mapper.results() == []
    assert MapPhase(parse_options(["phase=map"])).results() == []


def test_fold_adds_account_and_principal_from_fields_or_raw() -> None:
    folder = FoldPhase(parse_options(["phase=fold"]))
    whole = record(1, "deploy")
    folder.add_rows(list(FIELDS), [record_to_row(whole)])
    folder.add_rows(["_time", "_raw"], [[str(T0), json.dumps(whole)]])
    extracted, raw_only = folder.results()
    for row in (extracted, raw_only):
        assert (row["account"], row["principal"]) == (ACCT, f"arn:aws:iam::{ACCT}:role/deploy")
    assert raw_only["_raw"] == json.dumps(whole)
