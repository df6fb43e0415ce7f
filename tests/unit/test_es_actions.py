"""The alerts' Enterprise Security actions, field by field against the documentation they follow.

Sources (docs/alerting.md, "Enterprise Security", cites each):
- Risk: a risk modifier is an event with risk_score, risk_object and risk_object_type (ES
  "How risk modifiers impact risk scores"); the risk action's ``_risk`` list holds risk objects
  ``{"risk_object_field", "risk_object_type", "risk_score"}`` and threat objects
  ``{"threat_object_field", "threat_object_type"}``, the types and the 1-100 score range as
  Splunk's contentctl (splunk/contentctl, contentctl/objects/rba.py) validates them for ESCU.
- Notable: ``drilldown_earliest_offset`` / ``drilldown_latest_offset`` (``$info_min_time$`` /
  ``$info_max_time$``: the search's own window), ``next_steps`` (``{"version": 1, "data": ...}``
  with ``[[action|<name>]]`` links) and ``recommended_actions`` (adaptive response action
  names), as the splunk.es collection's adaptive_response_notable_event module documents them.

The macro that makes the result fields (``iam_error_spike_severity``) is run by the evaluator of
standin.searchtime on rows shaped by iamspike's own explanation code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from iamspike.explain import top
from standin.conf import read_conf
from standin.searchtime import run_eval

ROOT = Path(__file__).resolve().parents[2]
SEARCHES = read_conf(ROOT / "default" / "savedsearches.conf")
MACROS = read_conf(ROOT / "default" / "macros.conf")
VIEWS = {p.stem for p in (ROOT / "default" / "data" / "ui" / "views").glob("*.xml")}
APP = "TA-aws-iam-error-spike"
ALERTS = {"IAM Error Spike - Account Alert": "account", "IAM Error Spike - Principal Alert": "principal"}

# splunk/contentctl contentctl/objects/rba.py: RiskObjectType, ThreatObjectType, 1 <= score <= 100.
RISK_OBJECT_TYPES = {"system", "user", "other"}
THREAT_OBJECT_TYPES = {
    "certificate_common_name", "certificate_organization", "certificate_serial", "certificate_unit",
    "command", "domain", "email_address", "email_subject", "file_hash", "file_name", "file_path",
    "http_user_agent", "ip_address", "process", "process_name", "parent_process", "parent_process_name",
    "process_hash", "registry_path", "registry_value_name", "registry_value_text", "service", "signature",
    "system", "tls_hash", "url",
}  # fmt: skip
UAS = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0": 7,
    "aws-cli/2.15.0 Python/3.11.6 Linux/6.5 exe/x86_64.ubuntu.22 prompt/off command/iam.list-users": 40,
    "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.5 md/arch#x86_64 lang/python#3.11.6 (5)": 2,
}


def result_fields(name: str) -> list[str]:
    """The fields the alert hands its actions: its last ``table`` command."""
    tables = re.findall(r"\|\s*table\s+([^|`]+)", SEARCHES[name]["search"].replace("\\\n", " "))
    return tables[-1].split()


def spike_row(entity_type: str, score: float, severity: str) -> dict:
    return {
        "entity_type": entity_type, "account": "123456789012", "score": str(score), "severity": severity,
        "principal": "arn:aws:iam::123456789012:user/temp-user" if entity_type == "principal" else "",
        "top_source_ips": top({"203.0.113.7": 480, "2001:db8::1": 20, "198.51.100.2": 5}),
        "top_user_agents": top(UAS),
    }  # fmt: skip


def severity_macro(row: dict) -> dict:
    definition = MACROS["iam_error_spike_severity"]["definition"]
    assert definition.startswith("eval ")
    return run_eval(definition[len("eval ") :], row)


@pytest.mark.parametrize("name", ALERTS)
def test_actions_stay_off_by_default(name) -> None:
    assert SEARCHES[name]["action.risk"] == "0" and SEARCHES[name]["action.notable"] == "0"


@pytest.mark.parametrize(("name", "entity_type"), ALERTS.items())
def test_risk_object_is_the_entity_and_threat_objects_its_ips_and_user_agents(name, entity_type) -> None:
    risk = json.loads(SEARCHES[name]["action.risk.param._risk"])
    objects = [r for r in risk if "risk_object_field" in r]
    threats = [r for r in risk if "threat_object_field" in r]
    assert len(objects) + len(threats) == len(risk)
    assert all(set(r) == {"risk_object_field", "risk_object_type", "risk_score"} for r in objects)
    assert all(set(r) == {"threat_object_field", "threat_object_type"} for r in threats)
    (obj,) = objects
    assert obj["risk_object_type"] in RISK_OBJECT_TYPES and 1 <= obj["risk_score"] <= 100
    assert {(t["threat_object_field"], t["threat_object_type"]) for t in threats} == {
        ("src", "ip_address"), ("http_user_agent", "http_user_agent")}  # fmt: skip
    assert all(t["threat_object_type"] in THREAT_OBJECT_TYPES for t in threats)
    fields = result_fields(name)
    for field in [obj["risk_object_field"], "risk_score", *(t["threat_object_field"] for t in threats)]:
        assert field in fields, f"{name}: the actions read {field}, the search does not output it"
    row = severity_macro(spike_row(entity_type, 81.6, "high"))
    assert row["risk_object"] == (row["principal"] if entity_type == "principal" else row["account"])
    assert row["risk_object_type"] == obj["risk_object_type"]  # the static type says the same


def test_risk_score_is_iamspikes_score_per_result() -> None:
    # ES writes the result's own risk_score into the risk event (the field a risk modifier
    # carries); the _risk list's score is the fallback for a result without one.
    for score, expected in ((81.6, "82"), (50.5, "51"), (99.4, "99"), (0.0, "0")):
        assert severity_macro(spike_row("principal", score, "high"))["risk_score"] == expected


def test_threat_objects_are_the_bare_ips_and_user_agents() -> None:
    row = severity_macro(spike_row("account", 90, "critical"))
    assert row["src"] == ["203.0.113.7", "2001:db8::1", "198.51.100.2"]
    assert row["http_user_agent"] == sorted(UAS, key=lambda ua: -UAS[ua])  # commas and brackets kept
    single = severity_macro(
        dict(spike_row("account", 90, "critical"), top_source_ips=top({"203.0.113.7": 3}))
    )
    assert single["src"] == "203.0.113.7"
    empty = severity_macro(dict(spike_row("account", 90, "critical"), top_user_agents=""))
    assert "http_user_agent" not in empty


@pytest.mark.parametrize(
    ("severity", "urgency"), [("critical", "critical"), ("high", "high"), ("low", "low")]
)
def test_urgency_follows_iamspikes_severity(severity, urgency) -> None:
    assert severity_macro(spike_row("principal", 70, severity))["urgency"] == urgency


@pytest.mark.parametrize("name", ALERTS)
def test_notable_drills_down_over_the_alerts_window(name) -> None:
    stanza = SEARCHES[name]
    assert stanza["action.notable.param.drilldown_earliest_offset"] == "$info_min_time$"
    assert stanza["action.notable.param.drilldown_latest_offset"] == "$info_max_time$"


@pytest.mark.parametrize("name", ALERTS)
def test_notable_next_steps_lead_to_the_runbook(name) -> None:
    stanza = SEARCHES[name]
    steps = json.loads(stanza["action.notable.param.next_steps"])
    assert set(steps) == {"version", "data"} and steps["version"] == 1
    links = re.findall(r"/app/([\w-]+)/(\w+)", steps["data"])
    assert ("TA-aws-iam-error-spike", "iam_error_spike_runbook") in links
    assert all(app == APP and view in VIEWS for app, view in links)
    actions = stanza["action.notable.param.recommended_actions"].split(",")
    assert set(re.findall(r"\[\[action\|(\w+)\]\]", steps["data"])) <= set(actions)
    assert all(re.fullmatch(r"[a-z_]+", a) for a in actions)


# ES's built-in annotation frameworks of a correlation search (the correlation search editor's
# "Annotations": CIS, Kill Chain, MITRE ATT&CK, NIST; ESCU adds analytic_story). Any other key is a
# custom framework ES shows as it is: a misspelled "mitre" would map no technique, silently.
ANNOTATION_FRAMEWORKS = {"cis20", "kill_chain_phases", "mitre_attack", "nist", "analytic_story"}


def annotation_problems(text: str) -> list[str]:
    """``action.correlationsearch.annotations`` as ES reads it: a JSON object of known frameworks,
    each a list of strings; MITRE ATT&CK entries are technique IDs (T1234 or T1234.001)."""
    try:
        annotations = json.loads(text)
    except ValueError:
        return ["not JSON"]
    if not isinstance(annotations, dict):
        return ["not a JSON object"]
    found = [f"unknown framework {k}" for k in annotations if k not in ANNOTATION_FRAMEWORKS]
    for key, values in annotations.items():
        if not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
            found.append(f"{key}: not a list of strings")
        elif key == "mitre_attack":
            found += [f"mitre_attack: {v}" for v in values if not re.fullmatch(r"T\d{4}(\.\d{3})?", v)]
    return found


@pytest.mark.parametrize("name", ALERTS)
def test_correlation_search_annotations_are_es_frameworks(name) -> None:
    stanza = SEARCHES[name]
    assert annotation_problems(stanza["action.correlationsearch.annotations"]) == []
    assert stanza["action.correlationsearch.label"] == name


def test_the_annotation_check_on_known_shapes() -> None:
    assert annotation_problems('{"mitre_attack": ["T1580", "T1087.004"]}') == []
    assert annotation_problems("{mitre_attack: [T1580]}") == ["not JSON"]
    assert annotation_problems('{"mitre": ["T1580"]}') == ["unknown framework mitre"]
    assert annotation_problems('{"mitre_attack": ["T1580.4", "1078"]}') == [
        "mitre_attack: T1580.4",
        "mitre_attack: 1078",
    ]
