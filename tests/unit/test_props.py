"""default/props.conf as splunkd merges and applies it.

- The effective index-time settings of every sourcetype the inputs write, read the way splunkd
  merges default/ and local/ of the apps side by side (standin.conf.effective_conf).
- Installing the Splunk Add-on for AWS beside this app changes none of them: a stand-in
  Splunk_TA_aws/default/props.conf with the keys that add-on sets for aws:cloudtrail
  (docs/knowledge.md cites them) merges to the same effective values.
- A 200 KB record built from a real one (panther-analysis, licensed, tests/data/cloudtrail) is
  read and written as the S3 and SQS inputs do (CloudTrailFile, event_time, XmlEventSink: the
  bytes splunkd reads),
  then line-broken, truncated and timestamped with the shipped settings: one event, every field.
"""

from __future__ import annotations

import calendar
import io
import json
import logging
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from iamspike.ingest.cloudtrail_files import MAX_RECORD_BYTES, CloudTrailFile, sourcetype_for
from iamspike.ingest.events import SOURCETYPE, SOURCETYPE_INSIGHT, event_time
from iamspike_splunk.modinput import LOG_PREFIX, XmlEventSink
from standin.conf import effective_conf
from standin.searchtime import json_fields

ROOT = Path(__file__).resolve().parents[2]
APP = "TA-aws-iam-error-spike"
PANTHER = ROOT / "tests" / "data" / "cloudtrail" / "panther" / "panther_cloudtrail_test_events.jsonl"
PUT_USER_POLICY = "1c2a53d1-58cc-41b3-85b8-bd7565370e0d"
RECORD_SOURCETYPES = (SOURCETYPE, SOURCETYPE_INSIGHT)

# The index-time keys the Splunk Add-on for AWS sets for aws:cloudtrail (docs/knowledge.md).
SPLUNK_TA_AWS = """
[aws:cloudtrail]
SHOULD_LINEMERGE = false
TRUNCATE = 8388608
TIME_PREFIX = \\"eventTime\\"\\s*\\:\\s*\\"
TIME_FORMAT = %Y-%m-%dT%H:%M:%S%Z
MAX_TIMESTAMP_LOOKAHEAD = 28
KV_MODE = json
"""
INDEX_TIME = ("SHOULD_LINEMERGE", "LINE_BREAKER", "TRUNCATE", "TIME_PREFIX", "TIME_FORMAT",
              "MAX_TIMESTAMP_LOOKAHEAD", "DATETIME_CONFIG", "KV_MODE")  # fmt: skip


def app_with(root: Path, name: str, default: str | None = None, local: str | None = None) -> Path:
    app = root / name
    for folder, text in (("default", default), ("local", local)):
        if text is not None:
            (app / folder).mkdir(parents=True, exist_ok=True)
            (app / folder / "props.conf").write_text(text, encoding="utf-8")
    return app


@pytest.fixture
def ours(tmp_path) -> Path:
    return app_with(tmp_path, APP, (ROOT / "default" / "props.conf").read_text(encoding="utf-8"))


# -- index time: what splunkd does with the bytes an input writes -----------------------------
_FORMAT = {"%Y": r"(?P<Y>\d{4})", "%m": r"(?P<m>\d{2})", "%d": r"(?P<d>\d{2})", "%H": r"(?P<H>\d{2})",
           "%M": r"(?P<M>\d{2})", "%S": r"(?P<S>\d{2})", "%Z": r"(?P<Z>Z|UTC|GMT)",
           "%3N": r"(?P<N>\d{3})"}  # fmt: skip


def parse_time(text: str, stanza: dict[str, str]) -> float | None:
    """TIME_PREFIX, then TIME_FORMAT over at most MAX_TIMESTAMP_LOOKAHEAD characters (UTC)."""
    prefix = re.search(stanza["TIME_PREFIX"], text, re.M)
    if not prefix:
        return None
    window = text[prefix.end() : prefix.end() + int(stanza["MAX_TIMESTAMP_LOOKAHEAD"])]
    pattern = re.sub(r"%3N|%[A-Za-z]", lambda m: _FORMAT[m.group(0)], re.escape(stanza["TIME_FORMAT"]))
    match = re.match(pattern, window)
    if not match:
        return None
    parts = {k: int(v) for k, v in match.groupdict().items() if k != "Z"}
    seconds = calendar.timegm(
        (parts["Y"], parts["m"], parts["d"], parts["H"], parts["M"], parts["S"], 0, 0, 0)
    )
    return seconds + parts.get("N", 0) / 1000


def break_lines(data: bytes, stanza: dict[str, str]) -> list[bytes]:
    """LINE_BREAKER (its first group is the break, dropped) then TRUNCATE (bytes); no merging."""
    assert stanza["SHOULD_LINEMERGE"] == "false"
    breaker = re.compile(stanza["LINE_BREAKER"].encode())
    events, start = [], 0
    for match in breaker.finditer(data):
        events.append(data[start : match.start(1)])
        start = match.end(1)
    events.append(data[start:])
    limit = int(stanza["TRUNCATE"])
    return [event[:limit] for event in events if event]


def stream_events(stream: bytes) -> list[dict[str, str]]:
    """The <event>s of a modular input XML stream, as splunkd reads them."""
    return [
        {child.tag: child.text or "" for child in event} | {"unbroken": event.get("unbroken", "0")}
        for event in ET.fromstring(stream).iter("event")
    ]


def big_record(size: int) -> dict:
    """A real PutUserPolicy record whose policy document repeats its statement up to ``size``."""
    with open(PANTHER, encoding="utf-8") as handle:
        record = next(r for r in map(json.loads, handle) if r.get("eventID") == PUT_USER_POLICY)
    policy = json.loads(record["requestParameters"]["policyDocument"])
    statement = policy["Statement"][0]
    while len(json.dumps(record)) < size:
        policy["Statement"].append(dict(statement, Sid=f"Stmt{len(policy['Statement'])}"))
        record["requestParameters"]["policyDocument"] = json.dumps(policy, separators=(",", ":"))
    return record


# -- the effective settings --------------------------------------------------------------------
@pytest.mark.parametrize("sourcetype", RECORD_SOURCETYPES)
def test_one_event_per_record_never_cut_below_max_record_bytes(ours, sourcetype) -> None:
    props = effective_conf([ours], "props.conf")[sourcetype]
    assert props["SHOULD_LINEMERGE"] == "false"
    assert props["LINE_BREAKER"] == "([\\r\\n]+)"
    assert int(props["TRUNCATE"]) >= MAX_RECORD_BYTES
    assert props["KV_MODE"] == "json"
    assert parse_time('{"eventVersion":"1.08","eventTime":"2023-08-26T20:35:12Z"}', props) == 1693082112


def test_ec2_inventory_time_is_when_it_was_seen_not_launch_time(ours) -> None:
    props = effective_conf([ours], "props.conf")["aws:ec2:inventory"]
    assert props["DATETIME_CONFIG"] == "CURRENT" and "TIME_PREFIX" not in props
    assert props["SHOULD_LINEMERGE"] == "false" and int(props["TRUNCATE"]) >= MAX_RECORD_BYTES
    assert props["KV_MODE"] == "json"


def test_the_inputs_log_files_get_their_sourcetype_and_time(ours) -> None:
    props = effective_conf([ours], "props.conf")
    source = next(s for s in props if s.startswith("source::"))
    pattern = source[len("source::") :].replace(".", r"\.").replace(r"\.\.\.", ".*").replace("*", ".*")
    assert re.fullmatch(pattern, f"/opt/splunk/var/log/splunk/{LOG_PREFIX}sqs.log")
    assert re.fullmatch(pattern, f"C:\\Program Files\\Splunk\\var\\log\\splunk\\{LOG_PREFIX}s3.log.1")
    log = props[props[source]["sourcetype"]]
    record = logging.LogRecord("iamspike", logging.INFO, __file__, 1, "started", None, None)
    record.created, record.msecs = 1764959953.25, 250.0
    line = logging.Formatter("%(asctime)s %(levelname)s %(message)s").format(record)  # modinput's format
    assert parse_time(line, log) == pytest.approx(calendar.timegm(time.localtime(1764959953)) + 0.25)


def test_splunk_ta_aws_beside_this_app_changes_no_index_time_setting(ours, tmp_path) -> None:
    alone = effective_conf([ours], "props.conf")
    ta = app_with(tmp_path, "Splunk_TA_aws", SPLUNK_TA_AWS)
    both = effective_conf([ours, ta], "props.conf")
    for sourcetype in ("aws:cloudtrail", "aws:cloudtrail:insight", "aws:ec2:inventory"):
        assert {k: both[sourcetype].get(k) for k in INDEX_TIME} == {
            k: alone[sourcetype].get(k) for k in INDEX_TIME
        }


def test_merge_follows_splunk_precedence(ours, tmp_path) -> None:
    # Splunk_TA_aws sorts first (upper-case S), so its default/ beats ours; any local/ beats
    # every default/. A merge that got this wrong would make the test above meaningless.
    ta = app_with(tmp_path, "Splunk_TA_aws", "[aws:cloudtrail]\nTRUNCATE = 500000\n")
    assert effective_conf([ours, ta], "props.conf")["aws:cloudtrail"]["TRUNCATE"] == "500000"
    app_with(tmp_path, APP, local="[aws:cloudtrail]\nTRUNCATE = 2000000\n")
    assert effective_conf([ours, ta], "props.conf")["aws:cloudtrail"]["TRUNCATE"] == "2000000"
    assert effective_conf([ours, ta], "props.conf")["aws:cloudtrail"]["KV_MODE"] == "json"


# -- the proof: a 200 KB record written by the input and parsed with the shipped props --------
def test_a_200kb_record_written_by_the_input_keeps_every_field(ours) -> None:
    record = big_record(200_000)
    log_file = json.dumps({"Records": [record]}).encode("utf-8")
    out = io.BytesIO()
    sink = XmlEventSink("aws_cloudtrail_s3://test", out)
    source = "s3://bucket/AWSLogs/123456789012/CloudTrail/us-east-1/2020/04/10/f.json"
    for text, decoded in CloudTrailFile([log_file], source):  # what the S3 and SQS inputs write
        sink.write(text, event_time(decoded.get("eventTime")), source, sourcetype_for(source))
    sink.close()
    (event,) = stream_events(out.getvalue())
    assert event["sourcetype"] == SOURCETYPE and event["unbroken"] == "1"
    props = effective_conf([ours], "props.conf")[event["sourcetype"]]
    data = event["data"].encode("utf-8")
    assert len(data) > 200_000
    (raw,) = break_lines(data, props)  # one event, whole
    assert parse_time(raw.decode("utf-8"), props) == float(event["time"]) == 1586499728
    assert json_fields(json.loads(raw)) == json_fields(record)


def test_a_record_over_the_default_truncate_would_have_been_cut(ours) -> None:
    # Splunk's own default TRUNCATE (10000) cuts the same record into invalid JSON: the setting
    # is what keeps the fields.
    data = json.dumps(big_record(200_000)).encode("utf-8")
    props = dict(effective_conf([ours], "props.conf")[SOURCETYPE], TRUNCATE="10000")
    (raw,) = break_lines(data, props)
    with pytest.raises(ValueError):
        json.loads(raw)
