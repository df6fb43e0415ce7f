"""The shipped alerts, as Splunk schedules them, through the installed ``iamspike`` command.

The ``iamspike`` arguments, the score floor and the filters are read from the app's own
``default/savedsearches.conf`` and ``default/macros.conf``, so a change there is what runs here.
A saved search's life is played as splunkd plays it: the Baseline Backfill search writes state
rows (``show=state``), the KV store keeps only the fields ``transforms.conf`` lists, the next
Baseline Maintenance run adds one hour to them, and the alert scans only its own window with the
baseline appended (``inputlookup append=true``). Real CloudTrail sets are read at test time from
``../shared/data/cloudtrail`` and never copied. Never imports product code.
"""

from __future__ import annotations

import calendar
import re
from pathlib import Path

import pytest
from standin import scpv2
from standin.conf import read_conf

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "default"
CLOUDTRAIL = REPO.parent / "shared" / "data" / "cloudtrail"
HOUR = 3600

SAVED = read_conf(DEFAULT / "savedsearches.conf")
MACROS = read_conf(DEFAULT / "macros.conf")
TRANSFORMS = read_conf(DEFAULT / "transforms.conf")
MACRO_CALL = re.compile(r"`([A-Za-z_][\w.-]*)`")


def expand(spl: str) -> str:
    """Argument-less macros replaced by their definitions, as splunkd expands them."""
    for _ in range(10):
        spl, count = MACRO_CALL.subn(lambda m: MACROS[m.group(1)]["definition"], spl)
        if not count:
            return spl
    raise AssertionError(f"macros nest too deep in {spl!r}")


def iamspike_args(saved_search: str) -> list[str]:
    """The arguments the saved search gives ``iamspike``."""
    spl = expand(SAVED[saved_search]["search"])
    match = re.search(r"\|\s*iamspike\b([^|]*)", spl)
    assert match, f"{saved_search} does not run iamspike"
    return match.group(1).split()


def alert_filter(saved_search: str) -> tuple[str, float]:
    """(entity_type, minimum score) of the alert's ``where`` right after ``iamspike``."""
    spl = expand(SAVED[saved_search]["search"])
    match = re.search(r'where entity_type="(\w+)" AND score >= ([\d.]+)', spl)
    assert match, f"{saved_search}: no entity_type/score filter"
    return match.group(1), float(match.group(2))


def event_fields() -> list[str]:
    """The fields ``iam_error_spike_fields`` keeps (``| fields ...``)."""
    return expand("`iam_error_spike_fields`").split()[1:]


def failed_calls(record: dict) -> bool:
    """``iam_error_spike_failed_calls``: (errorCode=* OR eventName=ConsoleLogin)."""
    assert expand("`iam_error_spike_failed_calls`") == "(errorCode=* OR eventName=ConsoleLogin)"
    return bool(record.get("errorCode")) or record.get("eventName") == "ConsoleLogin"


def kv_store(rows: list[dict]) -> list[dict]:
    """What outputlookup into the KV store lookup keeps, and inputlookup gives back."""
    fields = [f.strip() for f in TRANSFORMS["iamspike_baseline"]["fields_list"].split(",")]
    return [{name: row[name] for name in fields if name in row} for row in rows]


def window(records: list[dict], start: int, end: int) -> list[dict]:
    """The search's events in [start, end): failed calls, the alert's fields, time order."""
    keep = event_fields()
    events = [scpv2.splunk_event(r, keep) for r in records if failed_calls(r)]
    return [e for e in events if e["_time"] and start <= int(e["_time"]) < end]


def iamspike(splunk_home, splunk_python, args: list[str], rows: list[dict]) -> list[dict]:
    command = scpv2.python_command(str(splunk_python), splunk_home.script("iamspike_command.py"))
    session = scpv2.run(command, args, scpv2.split(rows, 50_000), env=splunk_home.env())
    assert not session.died and not session.timed_out, (session.problem, session.stderr[-3000:])
    assert session.errors == [], session.errors
    assert session.finished
    return session.rows


def scheduled_alerts(splunk_home, splunk_python, records: list[dict], alert_start: int) -> dict:
    """Backfill up to two hours before the alert window, one maintenance hour, then both alerts
    over [alert_start, alert_start + 1h). Returns {"account": rows, "principal": rows}."""
    first = min(int(e["_time"]) for e in window(records, 0, 2**31))
    maintained = alert_start // HOUR * HOUR - HOUR  # the hour the last maintenance run added
    backfill = window(records, first, maintained)
    state = kv_store(
        iamspike(splunk_home, splunk_python, iamspike_args("IAM Error Spike - Baseline Backfill"), backfill)
    )
    hour = window(records, maintained, maintained + HOUR)
    maintenance = iamspike_args("IAM Error Spike - Baseline Maintenance")
    state = kv_store(iamspike(splunk_home, splunk_python, maintenance, hour + state))
    assert state or not (backfill or hour), "history went in, no baseline rows came out"
    alerts = {}
    for name in ("IAM Error Spike - Account Alert", "IAM Error Spike - Principal Alert"):
        entity_type, min_score = alert_filter(name)
        rows = iamspike(
            splunk_home,
            splunk_python,
            iamspike_args(name),
            window(records, alert_start, alert_start + HOUR) + state,
        )
        alerts[entity_type] = [
            r for r in rows if r["entity_type"] == entity_type and float(r["score"]) >= min_score
        ]
    return alerts


def records(folder: str) -> list[dict]:
    path = CLOUDTRAIL / folder
    if not path.is_dir():
        pytest.skip(f"{path} is not on this machine (shared data, never copied into the repo)")
    return scpv2.load_cloudtrail(str(path))


def test_the_alerts_run_iamspike_with_the_shipped_options():
    for name in ("IAM Error Spike - Account Alert", "IAM Error Spike - Principal Alert"):
        assert "show=state" not in iamspike_args(name)
    for name in ("IAM Error Spike - Baseline Backfill", "IAM Error Spike - Baseline Maintenance"):
        assert "show=state" in iamspike_args(name)


def test_scheduled_alerts_flag_the_pwnedlabs_burst(splunk_home, splunk_python):
    # The burst: 2023-08-26 20:35-20:48Z; the alert run at 21:30 scans 20:15-21:15.
    alerts = scheduled_alerts(
        splunk_home,
        splunk_python,
        records("pwnedlabs_incident_3252"),
        calendar.timegm((2023, 8, 26, 20, 15, 0)),
    )
    assert [r["principal"] for r in alerts["principal"]] == ["arn:aws:iam::107513503799:user/temp-user"]
    assert [r["account"] for r in alerts["account"]] == ["107513503799"]
    for row in alerts["principal"] + alerts["account"]:
        assert int(row["failures"]) >= 500
        assert row["severity"] in ("high", "critical")


def test_scheduled_alerts_stay_quiet_on_the_sans_log_delivery_denials(splunk_home, splunk_python):
    # The steady ~125/h AccessDenied of the log-delivery service principal, a day into it.
    sans = records("sans504_s3_ransomware_lab")
    start = calendar.timegm((2021, 7, 31, 12, 15, 0))
    denials = [
        e
        for e in window(sans, start, start + HOUR)
        if "delivery.logs" in str(e.get("userIdentity.invokedBy"))
    ]
    assert len(denials) >= 50, "the window must hold the steady denials, or the test proves nothing"
    alerts = scheduled_alerts(splunk_home, splunk_python, sans, start)
    assert alerts == {"account": [], "principal": []}
