"""The shipped searches, as Splunk schedules and distributes them, through the installed ``iamspike``.

Each saved search's own SPL is read from ``default/savedsearches.conf`` with its macros expanded
(tests/standin/spl.py) and run step by step as splunkd would run it:

- the base search picks the failed calls of the dispatch window from real CloudTrail
  (``../shared/data/cloudtrail``, read at test time, never copied), as Splunk's JSON extraction
  presents them;
- ``fields`` keeps what the macro names; ``iamspike phase=map`` runs once per indexer (the events
  dealt out to three partitions), and only its count rows go on, as from indexers to the search
  head; ``iamspike phase=fold`` likewise. (scpv2.run_distributed plays the implicit
  ``streaming_preop`` of a bare ``| iamspike``; the shipped searches call the map phase
  explicitly and join the state between the phases, so they are played step by step here.)
- ``lookup`` / ``outputlookup`` of the KV store collections run on tests/standin/kvstore.py, which
  keeps only the collection's fields and applies Splunk's ``[kvstore]`` limits;
- ``iamspike`` (the reporting phase) runs once over everything that reached the search head;
- ``where``, ``search``, the allow-list lookup, ``table`` are applied as written; a command this
  runner does not know fails the test, so a change in the SPL is a change here.

The life of the state is played as the scheduler plays it: the backfill writes every entity's
row by key, hourly maintenance adds one hour, the alerts read only their window's entities.
Never imports product code.
"""

from __future__ import annotations

import calendar
import csv
import fnmatch
import hashlib
import json
import re
import time
from pathlib import Path

import pytest
from standin import kvstore, scpv2
from standin.conf import read_conf
from standin.spl import dashboards, expand_macros, first_name, pipeline, row_step

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "default"
CLOUDTRAIL = REPO.parent / "shared" / "data" / "cloudtrail"
HOUR = 3600
INDEXERS = 3

SAVED = read_conf(DEFAULT / "savedsearches.conf")
MACROS = read_conf(DEFAULT / "macros.conf")
TRANSFORMS = read_conf(DEFAULT / "transforms.conf")
FAILED_CALLS = "sourcetype=aws:cloudtrail (errorCode=* OR eventName=ConsoleLogin)"
ACCOUNT_ALERT = "IAM Error Spike - Account Alert"
PRINCIPAL_ALERT = "IAM Error Spike - Principal Alert"


def relative(modifier: str, now: int) -> int:
    """A saved search's ``-75m@m`` / ``-2h@h`` / ``-30d@h`` / ``now`` at epoch ``now``."""
    if modifier == "now":
        return now
    match = re.fullmatch(r"([+-]?\d+)([mhd])(?:@([mhd]))?", modifier)
    assert match, modifier
    seconds = {"m": 60, "h": HOUR, "d": 86400}
    at = now + int(match.group(1)) * seconds[match.group(2)]
    return at - at % seconds[match.group(3)] if match.group(3) else at


def is_failed_call(record: dict) -> bool:
    return bool(record.get("errorCode")) or record.get("eventName") == "ConsoleLogin"


def search_filter(rest: str, row: dict) -> bool:
    """``search`` after a command: ``*`` or ``field="value"`` terms (``*`` wildcards), ANDed."""
    if rest.strip() == "*":
        return True
    terms = re.findall(r'(\w+)="([^"]*)"', rest)
    assert terms and re.sub(r'\w+="[^"]*"', "", rest).strip() == "", f"search {rest!r} not modelled"
    # A field that is absent or empty matches no term, not even "*" (Splunk's field=*).
    return all(row.get(f) not in (None, "") and fnmatch.fnmatchcase(str(row[f]), v) for f, v in terms)


def where_filter(rest: str, row: dict) -> bool:
    match = re.fullmatch(r'entity_type="(\w+)" AND score >= ([\d.]+)', rest)
    if match:
        return row.get("entity_type") == match.group(1) and float(row["score"]) >= float(match.group(2))
    match = re.fullmatch(
        r'\("([^"]*)"="\*" AND entity_type="account"\) OR \(entity_type="principal" AND principal="\1"\)',
        rest,
    )
    if match:  # the dashboard's "account rows for *, else the principal's rows"
        if match.group(1) == "*":
            return row.get("entity_type") == "account"
        return row.get("entity_type") == "principal" and row.get("principal") == match.group(1)
    raise AssertionError(f"where {rest!r} not modelled")


def csv_lookup(name: str) -> list[dict]:
    """The rows of a shipped CSV lookup (transforms.conf's filename under lookups/)."""
    with open(REPO / "lookups" / TRANSFORMS[name]["filename"], encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def round_robin(events: list[dict]) -> list[list[dict]]:
    return [events[n::INDEXERS] for n in range(INDEXERS)]


class Splunk:
    """splunkd with the package installed, three indexers and the app's KV store collections."""

    def __init__(self, splunk_home, splunk_python) -> None:
        self.home = splunk_home
        self.command = scpv2.python_command(str(splunk_python), splunk_home.script("iamspike_command.py"))
        self.kv = {
            name: kvstore.Collection([f.strip() for f in stanza["fields_list"].split(",")])
            for name, stanza in TRANSFORMS.items()
            if stanza.get("external_type") == "kvstore"
        }
        self.shipped_rows = 0  # rows the indexers sent to the search head
        self.messages: list[tuple[str, str]] = []  # the search-head iamspike's inspector messages

    def iamspike(self, args: list[str], rows: list[dict]) -> list[dict]:
        session = scpv2.run(self.command, args, scpv2.split(rows, 50_000), env=self.home.env())
        assert not session.died and not session.timed_out, (session.problem, session.stderr[-3000:])
        assert session.errors == [], session.errors
        assert session.finished
        if not any(a in ("phase=map", "phase=fold") for a in args):
            self.messages.extend(session.messages)
        return session.rows

    def on_indexers(self, args: list[str], events: list[dict], deal=None) -> list[dict]:
        """A streaming iamspike phase on each indexer's share of the events (`deal`: events ->
        partitions, round robin by default); the rows they return, together."""
        parts = (deal or round_robin)(events)
        rows = [row for part in parts if part for row in self.iamspike(args, part)]
        self.shipped_rows += len(rows)
        return rows

    def search(
        self,
        spl: str,
        records: list[dict],
        start: int,
        end: int,
        deal=None,
        present=scpv2.splunk_event,
    ) -> list[dict]:
        """One shipped search over `records` whose eventTime is in [start, end), each record an
        event as `present` makes it (Splunk's JSON extraction, by default without its limits)."""
        steps = pipeline(expand_macros(spl, MACROS))
        command, base, subsearches = steps[0]
        assert command == "search" and base.strip() == FAILED_CALLS and not subsearches, base
        rows = [
            e for e in (present(r) for r in records if is_failed_call(r)) if start <= int(e["_time"]) < end
        ]
        distributed = True  # streaming commands run on the indexers until the first reporting one
        for command, rest, subsearches in steps[1:]:
            if command in ("localop", "appendpipe"):  # the state macro: on the search head
                distributed = False
            if command == "appendpipe":  # its subpipeline's rows, appended
                (sub,) = subsearches
                rows = rows + self.subpipeline(sub, rows)
                continue
            assert not subsearches, f"{command}: a subsearch in a shipped scheduled search"
            args = rest.split()
            if command == "fields" and args[:1] == ["-"]:
                rows = [{k: v for k, v in row.items() if k not in args[1:]} for row in rows]
            elif command == "fields":
                keep = {"_time", "_raw", *args}
                rows = [{k: v for k, v in row.items() if k in keep} for row in rows]
            elif command == "iamspike" and any(a in ("phase=map", "phase=fold") for a in args):
                assert distributed, "the map phase runs before the first reporting step"
                rows = self.on_indexers(args, rows, deal)
            elif command == "iamspike":
                distributed = False
                rows = self.iamspike(args, rows)
            elif command in ("lookup", "outputlookup", "inputlookup") and first_name(rest) in self.kv:
                distributed = False
                rows, steps_ = kvstore.run(self.kv, command, rest, rows)
                if steps_ is not None:
                    kvstore.run_steps(steps_)
            elif command == "inputlookup" and first_name(rest) in TRANSFORMS:  # a CSV lookup
                assert rest.split()[0] == "append=true", rest
                distributed = False
                rows = rows + csv_lookup(first_name(rest))
            elif command == "search":
                rows = [row for row in rows if search_filter(rest, row)]
            elif command == "where":
                rows = [row for row in rows if where_filter(rest, row)]
            elif row_step(command, rest, rows) is not None:  # localop
                rows = row_step(command, rest, rows)
            elif command == "eval":
                pass  # severity fields for ES, display columns: not what these tests assert
            elif command == "sort":
                assert rest in ("- score", "- _time"), rest  # order: not what these tests assert
            elif command == "table":
                rows = [{k: row.get(k) for k in args} for row in rows]
            else:
                raise AssertionError(f"{command} {rest}: not modelled by this runner")
        return rows

    def subpipeline(self, spl: str, rows: list[dict]) -> list[dict]:
        """``appendpipe [spl]``'s subpipeline on a copy of `rows`: the state macro's steps
        (tests/standin/spl.py ``row_step``) and its KV store lookup; the rows it gives."""
        out = [dict(row) for row in rows]
        for command, rest, subsearches in pipeline("| " + spl):
            assert not subsearches, f"{command}: a subsearch in a subpipeline"
            if command == "lookup" and first_name(rest) in self.kv:
                out, _ = kvstore.run(self.kv, command, rest, out)
                continue
            stepped = row_step(command, rest, out)
            assert stepped is not None, f"{command} {rest}: not modelled by this runner"
            out = stepped
        return out

    def saved(self, name: str, records: list[dict], now: int, **kwargs) -> list[dict]:
        """Saved search `name` dispatched at `now` over its own time range."""
        stanza = SAVED[name]
        start = relative(stanza["dispatch.earliest_time"], now)
        end = relative(stanza["dispatch.latest_time"], now)
        return self.search(stanza["search"], records, start, end, **kwargs)


def records(folder: str) -> list[dict]:
    path = CLOUDTRAIL / folder
    if not path.is_dir():
        pytest.skip(f"{path} is not on this machine (shared data, never copied into the repo)")
    return scpv2.load_cloudtrail(str(path))


def event_time(record: dict) -> int:
    return calendar.timegm(time.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ"))


def scheduled(splunk: Splunk, data: list[dict], alert_at: int) -> dict[str, list[dict]]:
    """Backfill by hand (at :30, ending where maintenance starts), hourly maintenance up to the
    alert run at `alert_at`, then both alerts. Returns {"account": rows, "principal": rows}."""
    maintained_to = relative(
        SAVED["IAM Error Spike - Baseline Maintenance"]["dispatch.latest_time"], alert_at
    )
    backfill_at = maintained_to - 2 * HOUR + 30 * 60  # latest -1h@h: it ends one hour before
    splunk.saved("IAM Error Spike - Baseline Backfill", data, backfill_at)
    run = backfill_at - backfill_at % HOUR + HOUR + 20 * 60
    while run <= alert_at:
        splunk.saved("IAM Error Spike - Baseline Maintenance", data, run)
        run += HOUR
    return {
        "account": splunk.saved(ACCOUNT_ALERT, data, alert_at),
        "principal": splunk.saved(PRINCIPAL_ALERT, data, alert_at),
    }


# The PwnedLabs burst: 2023-08-26 20:35-20:48Z; the alert run at 21:30 scans 20:15-21:15.
PWNED_ALERT_AT = calendar.timegm((2023, 8, 26, 21, 30, 0))


def test_scheduled_alerts_flag_the_pwnedlabs_burst(splunk_home, splunk_python):
    splunk = Splunk(splunk_home, splunk_python)
    data = records("pwnedlabs_incident_3252")
    alerts = scheduled(splunk, data, PWNED_ALERT_AT)
    assert [r["principal"] for r in alerts["principal"]] == ["arn:aws:iam::107513503799:user/temp-user"]
    assert [r["account"] for r in alerts["account"]] == ["107513503799"]
    for row in alerts["principal"] + alerts["account"]:
        assert int(row["failures"]) >= 500
        assert row["severity"] in ("high", "critical")
    failed = sum(1 for r in data if is_failed_call(r))
    assert splunk.shipped_rows < failed / 20, "count rows, not events, reach the search head"


def test_the_allowlist_drops_known_automation_and_names_a_malformed_entry(splunk_home, splunk_python):
    splunk = Splunk(splunk_home, splunk_python)
    data = records("pwnedlabs_incident_3252")
    kv = splunk.kv["iamspike_allowlist_kv"]
    bad = {"principal": "arn:aws:iam::*:*", "allowlist_reason": "everything (too wide)"}
    kvstore.run_steps(kv.upsert_steps([bad], None))
    alerts = scheduled(splunk, data, PWNED_ALERT_AT)
    # The malformed entry neither drops the principal nor goes unsaid: one line names it.
    assert [r["principal"] for r in alerts["principal"]] == ["arn:aws:iam::107513503799:user/temp-user"]
    said = [text for level, text in splunk.messages if "allowlist" in text]
    assert said and all("arn:aws:iam::*:*" in text and "malformed" in text for text in said), said
    assert len(said) == 1, "named once by the principal alert, the only search that reads the allowlist"
    good = {"principal": "arn:aws:iam::*:user/temp-*", "allowlist_reason": "lab user (test)"}
    kvstore.run_steps(kv.upsert_steps([good], None))
    splunk.messages.clear()
    alerts = {
        "principal": splunk.saved(PRINCIPAL_ALERT, data, PWNED_ALERT_AT),
        "account": splunk.saved(ACCOUNT_ALERT, data, PWNED_ALERT_AT),
    }
    assert alerts["principal"] == [], "a well-formed wildcard entry drops the principal's alert"
    assert [r["account"] for r in alerts["account"]] == ["107513503799"], "account rows never drop"


def test_scheduled_alerts_stay_quiet_on_the_sans_log_delivery_denials(splunk_home, splunk_python):
    # The steady ~125/h AccessDenied of the log-delivery service principal, a day into it.
    sans = records("sans504_s3_ransomware_lab")
    alert_at = calendar.timegm((2021, 7, 31, 13, 30, 0))
    window = [
        r for r in sans if is_failed_call(r) and alert_at - 75 * 60 <= event_time(r) < alert_at - 15 * 60
    ]
    denials = [r for r in window if "delivery.logs" in json.dumps(r.get("userIdentity"))]
    assert len(denials) >= 50, "the window must hold the steady denials, or the test proves nothing"
    assert scheduled(Splunk(splunk_home, splunk_python), sans, alert_at) == {"account": [], "principal": []}


def pwned_in_sans() -> tuple[list[dict], int]:
    """The SANS lab's four days with the PwnedLabs burst moved to three hours before its end, and
    the first alert run whose window holds the burst's hour."""
    sans = records("sans504_s3_ransomware_lab")
    pwned = records("pwnedlabs_incident_3252")
    burst_at = max(event_time(r) for r in sans) - 3 * HOUR
    shift = burst_at - min(event_time(r) for r in pwned if r.get("errorCode"))
    moved = [
        {**r, "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event_time(r) + shift))}
        for r in pwned
    ]
    return sans + moved, burst_at - burst_at % 900 + HOUR


def test_incremental_alerts_read_their_state_by_key_and_equal_a_scan_of_the_whole_history(
    splunk_home, splunk_python
):
    """Backfill, hourly maintenance, then the alerts over their hour with the state of only that
    hour's entities: the burst is flagged with the same failures, expected, upper and score as
    the alert's search over the whole history without any state; the SANS denials are not."""
    data, alert_at = pwned_in_sans()
    splunk = Splunk(splunk_home, splunk_python)
    alerts = scheduled(splunk, data, alert_at)
    baseline = splunk.kv["iamspike_baseline"]
    assert len(baseline.rows) >= 3 and all(row["iamspike_state"] for row in baseline.rows.values())
    for key, row in baseline.rows.items():  # docs/distributed.md's key scheme
        entity = (
            f"principal\x1f{row['account']}\x1f{row['principal']}"
            if row["entity_type"] == "principal"
            else f"account\x1f{row['account']}"
        )
        assert key == hashlib.sha256(entity.encode()).hexdigest()[:32], row
    assert not baseline.last_query_cut and baseline.rows_read > 0

    def scored(rows: list[dict]) -> dict:
        return {
            (r["account"], r["principal"]): (r["failures"], r["expected"], r["upper"], r["score"])
            for r in rows
        }

    assert set(scored(alerts["principal"])) == {("107513503799", "arn:aws:iam::107513503799:user/temp-user")}
    assert set(scored(alerts["account"])) == {("107513503799", "")}
    window_start = relative(SAVED[ACCOUNT_ALERT]["dispatch.earliest_time"], alert_at)
    first = min(event_time(r) for r in data)
    for kind, name in (("account", ACCOUNT_ALERT), ("principal", PRINCIPAL_ALERT)):
        end = relative(SAVED[name]["dispatch.latest_time"], alert_at)
        whole = Splunk(splunk_home, splunk_python).search(SAVED[name]["search"], data, first, end)
        recent = [r for r in whole if int(r["_time"]) >= window_start - window_start % HOUR]
        assert scored(alerts[kind]) == scored(recent), kind
        without_state = Splunk(splunk_home, splunk_python).saved(name, data, alert_at)
        assert scored(without_state) != scored(alerts[kind]), f"{kind}: the state must matter"


def test_hourly_maintenance_saves_what_one_backfill_over_the_same_hours_saves(splunk_home, splunk_python):
    """The Baseline Backfill, then Baseline Maintenance hour by hour (each reading the saved state
    of its entities through `iam_error_spike_baseline`): every entity's saved state equals what one
    Backfill ending at the same hour saves. The SANS log-delivery stream is active in the
    maintained hours, so its saved history is read back and carried on. (Before 2026-12-07's fix,
    `show=state` took the macro's row of an account's states for one unreadable state and wrote
    the entities back with their maintained hours alone.)"""
    data, alert_at = pwned_in_sans()
    chained = Splunk(splunk_home, splunk_python)
    scheduled(chained, data, alert_at)
    maintained_to = relative(
        SAVED["IAM Error Spike - Baseline Maintenance"]["dispatch.latest_time"], alert_at
    )
    once = Splunk(splunk_home, splunk_python)
    once.saved("IAM Error Spike - Baseline Backfill", data, maintained_to + HOUR + 30 * 60)

    def states(splunk: Splunk) -> dict:
        return {key: row["iamspike_state"] for key, row in splunk.kv["iamspike_baseline"].rows.items()}

    def comparable(text: str):
        """A saved state without `last` (the end of the search that last wrote it: maintenance
        writes only the entities active in its hour) and with floats to 5 places (a state
        written again re-rounds its rates)."""

        def rounded(value):
            if isinstance(value, float):
                return round(value, 5)
            if isinstance(value, dict):
                return {k: rounded(v) for k, v in value.items()}
            if isinstance(value, list):
                return [rounded(v) for v in value]
            return value

        return rounded({k: v for k, v in json.loads(text).items() if k != "last"})

    chained_states, once_states = states(chained), states(once)
    assert len(once_states) >= 3 and set(chained_states) == set(once_states)
    for key, text in once_states.items():
        assert comparable(chained_states[key]) == comparable(text), key


def test_an_ad_hoc_report_reads_the_state_before_its_range(splunk_home, splunk_python):
    """Issue 12 item 3: the Flagged Spikes report run over the last 24 h, with the state the
    backfill and maintenance saved (it ends two hours back, inside the range), gives what a scan
    of the whole history gives for those 24 h: the state's hours before the range are the history,
    the range's own rows win where both hold a bin. Without the state it is scored alone (here
    the SANS log-delivery stream is then flagged in the range's first hour)."""
    data, alert_at = pwned_in_sans()
    splunk = Splunk(splunk_home, splunk_python)
    scheduled(splunk, data, alert_at)
    report = SAVED["IAM Error Spike - Flagged Spikes"]["search"]
    start = alert_at - 24 * HOUR
    first = min(event_time(r) for r in data)

    def scored(rows: list[dict]) -> dict:
        return {
            (r["_time"], r["account"], r["principal"]): (r["failures"], r["expected"], r["upper"], r["score"])
            for r in rows
        }

    ad_hoc = scored(splunk.search(report, data, start, alert_at))
    whole = Splunk(splunk_home, splunk_python).search(report, data, first, alert_at)
    assert ad_hoc == scored([r for r in whole if int(r["_time"]) >= start - start % HOUR])
    assert ("107513503799", "arn:aws:iam::107513503799:user/temp-user") in {k[1:] for k in ad_hoc}
    alone = scored(Splunk(splunk_home, splunk_python).search(report, data, start, alert_at))
    assert alone != ad_hoc, "the state must matter"


def test_a_duplicated_batch_gives_the_same_alert_rows(splunk_home, splunk_python):
    """Issue 16 item 3: a batch of events indexed twice (an SQS redelivery) lands on another
    indexer; the alert's pipeline counts each eventID once and returns the same rows."""
    data = records("pwnedlabs_incident_3252")
    dealt: list[int] = []

    def with_copies(events: list[dict]) -> list[list[dict]]:
        parts = round_robin(events)
        again = [dict(e) for e in events[: len(events) // 2]]
        dealt.append(len(again))
        return [parts[0], parts[1] + again, parts[2]]

    for name in (ACCOUNT_ALERT, PRINCIPAL_ALERT):
        once = Splunk(splunk_home, splunk_python).saved(name, data, PWNED_ALERT_AT)
        twice = Splunk(splunk_home, splunk_python).saved(name, data, PWNED_ALERT_AT, deal=with_copies)
        assert dealt[-1] >= 250, "the copied batch must matter"
        assert once and twice == once, name


def synthetic(account: str, identity: dict, hour: int, count: int, code: str = "AccessDenied") -> list[dict]:
    at = hour * HOUR
    return [
        {
            "eventVersion": "1.08",
            "userIdentity": identity,
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at + 60 * (n % 50) + n // 50)),
            "eventSource": "iam.amazonaws.com" if n % 2 else "s3.amazonaws.com",
            "eventName": f"List{n % 17}Things",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.7",
            "userAgent": "aws-cli/2.15.0",
            "errorCode": code,
            "errorMessage": "denied",
            "eventID": hashlib.md5(f"{account}{json.dumps(identity)}{at}{n}".encode()).hexdigest(),
            "recipientAccountId": account,
        }
        for n in range(count)
    ]


SSO_ROLE = "AWSReservedSSO_Admin_0123"


def test_the_drilldowns_find_what_was_counted(splunk_home, splunk_python):
    """One definition of a principal: for a role with a path, an SSO session and an identity with
    none of the usual fields, the notable's drill-down (iamspike phase=fold) selects exactly the
    failed calls the reported principal was counted for."""
    account = "111122223333"
    identities = {
        "role with a path": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:fn",
            "arn": f"arn:aws:sts::{account}:assumed-role/my-fn-role/fn",
            "accountId": account,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{account}:role/service-role/my-fn-role",
                }
            },
        },
        "SSO session": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{account}:assumed-role/{SSO_ROLE}/alice@example.com",
            "accountId": account,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/" + SSO_ROLE,
                }
            },
        },
        "no usual fields": {"type": "Unknown"},
    }
    quiet_hours = range(480_000, 480_000 + 72)
    data = [
        r
        for name, identity in identities.items()
        for h in quiet_hours
        for r in synthetic(account, identity, h, 1)
    ]
    burst_hour = quiet_hours[-1] + 1
    for identity in identities.values():
        data += synthetic(account, identity, burst_hour, 60)
        data += synthetic(account, identity, burst_hour, 7, code="ThrottlingException")  # not counted
    splunk = Splunk(splunk_home, splunk_python)
    flagged = splunk.search(SAVED["IAM Error Spike - Flagged Spikes"]["search"], data, 0, 2**31)
    principals = {r["principal"]: r for r in flagged if r["entity_type"] == "principal"}
    assert len(principals) == len(identities), principals
    assert f"arn:aws:iam::{account}:role/my-fn-role" in principals
    drilldown = SAVED[PRINCIPAL_ALERT]["action.notable.param.drilldown_search"]
    for principal, row in principals.items():
        spl = drilldown.replace("$account$", row["account"]).replace("$principal$", principal)
        found = splunk.search(spl, data, int(row["_time"]), int(row["_time"]) + HOUR)
        assert {r["principal"] for r in found} == {principal}
        counted = [r for r in found if r["errorCode"] == "AccessDenied"]
        assert len(counted) == int(row["failures"]) == 60, principal
        assert len(found) == 67, "the drill-down lists every failed call of the principal"


def test_records_past_the_extraction_limits_still_count_under_their_account(splunk_home, splunk_python):
    """Issue 14 item 5 through the shipped SPL: the burst's records padded past [spath]
    extraction_cutoff (5,000 bytes) and [kv] limit (100 fields) before recipientAccountId, as a
    failed RunInstances carries its request; Splunk's extraction stops early (scpv2.cut_extraction),
    `iam_error_spike_fields` keeps _raw and the map phase reads it: the same alert rows."""
    data = records("pwnedlabs_incident_3252")
    padded = []
    for record in data:
        fields = {f"blockDeviceMapping{n}": {"deviceName": f"/dev/sd{n}", "ebs": "x" * 40} for n in range(60)}
        head = {k: v for k, v in record.items() if k not in ("recipientAccountId", "eventID")}
        padded.append(
            {**head, "requestParameters": fields}
            | {k: record[k] for k in ("recipientAccountId", "eventID") if k in record}
        )
    cut = scpv2.cut_extraction(padded[-1])
    assert "recipientAccountId" not in cut and len(cut["_raw"]) > 5000, "the padding must defeat extraction"
    for name in (ACCOUNT_ALERT, PRINCIPAL_ALERT):
        plain = Splunk(splunk_home, splunk_python).saved(name, data, PWNED_ALERT_AT)
        limited = Splunk(splunk_home, splunk_python).saved(
            name, padded, PWNED_ALERT_AT, present=scpv2.cut_extraction
        )
        assert plain and limited == plain, name


def test_the_dashboards_scoring_panels_run_on_the_distributed_path(splunk_home, splunk_python):
    """Flagged spikes (account and principal *) and History (the burst's principal): map phase on
    the indexers, count rows filtered to the account, scored on the search head."""
    sources = dashboards(REPO)["iam_error_spike_investigation"]["dataSources"]
    data = records("pwnedlabs_incident_3252")
    principal = "arn:aws:iam::107513503799:user/temp-user"

    def panel(ds_id: str, account: str, who: str) -> list[dict]:
        spl = sources[ds_id]["options"]["query"].replace("$account$", account).replace("$principal$", who)
        return Splunk(splunk_home, splunk_python).search(spl, data, 0, 2**31)

    spikes = panel("ds_spikes", "*", "*")
    assert {(r["entity_type"], r["account"]) for r in spikes} >= {("account", "107513503799")}
    assert principal in {r["principal"] for r in spikes}
    history = panel("ds_history", "107513503799", principal)
    assert history and {r["entity_type"] for r in history} == {"principal"}
    assert panel("ds_spikes", "999999999999", "*") == []
