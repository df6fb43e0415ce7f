"""CIM mappings of default/props.conf, eventtypes.conf and tags.conf on real CloudTrail records.

Each record goes through what splunkd does at search time for sourcetype=aws:cloudtrail:
KV_MODE=json fields, the FIELDALIAS-* and EVAL-* of the shipped props.conf (evaluated by
standin.searchtime, which refuses any eval construct it does not evaluate faithfully), then the
eventtypes whose search matches and their tags. Sets: panther-analysis and Stratus Red Team
(licensed copies in tests/data/cloudtrail), grycap's account (../shared/data/cloudtrail).
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from standin.conf import read_conf
from standin.searchtime import FUNCTIONS, apply_props, functions_used, json_fields, search_matches

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "cloudtrail"
SHARED = ROOT.parent / "shared" / "data" / "cloudtrail"
PROPS = read_conf(ROOT / "default" / "props.conf")["aws:cloudtrail"]
EVENTTYPES = read_conf(ROOT / "default" / "eventtypes.conf")
TAGS = read_conf(ROOT / "default" / "tags.conf")


def records(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    if path.suffix == ".jsonl":
        yield from (json.loads(line) for line in text.splitlines() if line.strip())
        return
    try:
        doc = json.loads(text)
    except ValueError:  # JSON lines under another name
        yield from (json.loads(line) for line in text.splitlines() if line.strip())
        return
    yield from doc["Records"] if isinstance(doc, dict) else doc


def find(folder: Path, pattern: str, **wanted: str) -> dict:
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here")
    for path in sorted(folder.glob(pattern)):
        for record in records(path):
            if all(record.get(k) == v for k, v in wanted.items()):
                return record
    raise AssertionError(f"no record with {wanted} in {folder}")


def search_time(record: dict) -> dict:
    """The event's fields after props, plus ``eventtype`` and ``tag`` (lists) as Splunk adds them."""
    event = apply_props(PROPS, dict(json_fields(record), sourcetype="aws:cloudtrail"))
    eventtypes = sorted(
        name for name, s in EVENTTYPES.items() if name != "default" and search_matches(s["search"], event)
    )
    tags = sorted(
        {tag for et in eventtypes for tag, on in TAGS.get(f"eventtype={et}", {}).items() if on == "enabled"}
    )
    return dict(event, eventtype=eventtypes, tag=tags)


PANTHER = DATA / "panther"
CIM_ACTIONS = ("success", "failure", "created", "deleted", "modified", "read", "stopped")
GRYCAP = SHARED / "grycap_cloudtrail_tracker_974349055189"


def test_a_failed_console_sign_in_is_an_authentication_failure() -> None:
    # A real failed sign-in of an IAM user in grycap's account (AWS omits errorCode; the outcome
    # is responseElements.ConsoleLogin and errorMessage).
    record = find(GRYCAP, "*.json.gz", eventName="ConsoleLogin", errorMessage="Failed authentication")
    event = search_time(record)
    assert event["tag"] == ["authentication"]
    assert (event["action"], event["status"]) == ("failure", "failure")
    assert event["user"] == record["userIdentity"]["userName"]
    assert event["src"] == record["sourceIPAddress"]
    assert event["dest"] == "signin.amazonaws.com" and event["signature"] == "ConsoleLogin"
    assert event["reason"] == "Failed authentication"
    assert (
        event["vendor_account"] == record.get("recipientAccountId", record["userIdentity"]["accountId"])
        and event["vendor_product"] == "AWS CloudTrail"
    )


@pytest.mark.parametrize(
    ("wanted", "action"),
    [({"eventName": "ConsoleLogin", "eventID": "d38ce1b3-4575-4cb8-a632-611b8243bfc3"}, "failure"),
     ({"eventName": "ConsoleLogin", "eventTime": "2019-01-01T00:00:00Z", "userIdentity": None}, None)],
)  # fmt: skip
def test_console_sign_ins_of_panther(wanted, action) -> None:
    wanted = {k: v for k, v in wanted.items() if v is not None}
    for record in records(PANTHER / "panther_cloudtrail_test_events.jsonl"):
        if all(record.get(k) == v for k, v in wanted.items()):
            outcome = (record.get("responseElements") or {}).get("ConsoleLogin")
            event = search_time(record)
            assert event["tag"] == ["authentication"]
            assert event["action"] == (action or outcome.lower())
            assert event["status"] == event["action"]


def test_a_successful_console_sign_in_is_an_authentication_success() -> None:
    record = find(GRYCAP, "*.json.gz", eventName="ConsoleLogin", responseElements={"ConsoleLogin": "Success"})
    event = search_time(record)
    assert event["tag"] == ["authentication"] and (event["action"], event["status"]) == ("success", "success")
    assert event["user_arn"] == record["userIdentity"]["arn"]


def test_an_access_denied_delete_user_is_a_failed_change() -> None:
    # grycap's real DeleteUser, as the same caller would have recorded it without iam:DeleteUser
    # (no set has a denied DeleteUser: AWS writes errorCode and errorMessage and nothing else).
    record = copy.deepcopy(find(GRYCAP, "*.json.gz", eventName="DeleteUser"))
    record["errorCode"] = "AccessDenied"
    record["errorMessage"] = (
        f"User: {record['userIdentity']['arn']} is not authorized to perform: iam:DeleteUser"
        f" on resource: user {record['requestParameters']['userName']}"
    )
    record["responseElements"] = None
    event = search_time(record)
    assert event["tag"] == ["account", "change"]
    assert (event["action"], event["status"], event["result"]) == ("deleted", "failure", "AccessDenied")
    assert (event["object"], event["object_category"]) == (record["requestParameters"]["userName"], "user")
    assert (
        event["user"] == record["userIdentity"]["userName"]
        and event["src_user"] == record["userIdentity"]["arn"]
    )
    assert event["change_type"] == "iam" and event["command"] == "DeleteUser"


def test_the_real_delete_user_is_a_successful_account_change() -> None:
    record = find(GRYCAP, "*.json.gz", eventName="DeleteUser")
    event = search_time(record)
    assert event["tag"] == ["account", "change"]
    assert (event["action"], event["status"]) == ("deleted", "success") and "result" not in event


@pytest.mark.parametrize(
    ("folder", "pattern", "wanted", "tags", "action", "category"),
    [(GRYCAP, "*.json.gz", {"eventName": "DeleteHostedZone", "errorCode": "AccessDenied"}, ["change"],
      "deleted", None),
     (PANTHER, "*.jsonl", {"eventName": "DeleteDBInstance", "errorCode": "AccessDenied"}, ["change"],
      "deleted", None),
     (DATA / "stratus", "*.json", {"eventName": "GetPasswordData"}, ["change"], "read", "instance"),
     (PANTHER, "*.jsonl", {"eventName": "PutUserPolicy", "eventTime": "2020-04-10T06:22:08Z"},
      ["account", "change"], "modified", "user")],
)  # fmt: skip
def test_other_calls_are_changes_failed_when_aws_said_so(
    folder, pattern, wanted, tags, action, category
) -> None:
    record = find(folder, pattern, **wanted)
    event = search_time(record)
    assert event["tag"] == tags
    assert event["action"] == action
    assert event["status"] == ("failure" if "errorCode" in record else "success")
    assert event.get("object_category") == category
    assert event["src"] == record["sourceIPAddress"] and event["user_agent"] == record["userAgent"]


def test_every_real_record_maps_without_an_eval_error_and_to_one_data_model() -> None:
    count = 0
    for path in sorted(DATA.rglob("*.json*")):
        if path.name.startswith("LABELS"):
            continue
        for record in records(path):
            event = search_time(record)
            if "eventName" not in record:
                assert event["tag"] == []
                continue
            count += 1
            assert ("authentication" in event["tag"]) != ("change" in event["tag"]), record.get("eventID")
            assert event["status"] in ("success", "failure")
            assert event["action"] in CIM_ACTIONS
    assert count > 400


def test_props_uses_only_eval_functions_this_test_evaluates() -> None:
    used = set().union(*(functions_used(v) for k, v in PROPS.items() if k.startswith("EVAL-")))
    assert used and used <= FUNCTIONS, used - FUNCTIONS
