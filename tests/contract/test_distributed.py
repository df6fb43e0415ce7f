"""``| iamspike`` on a distributed search: map phase on each indexer, reporting on the search head.

Through the installed package, from each bare Splunk Python, the stand-in runs what splunkd runs
(``standin.scpv2.run_distributed``): the search head's getinfo gives the ``streaming_preop``;
each partition (an indexer) runs it (getinfo, execute chunks, finished); the search head's
reporting phase reads every row they returned. The answer must equal the one-process answer row
for row, every explanation field included (``top_*`` rank ties by name, so their order is fixed
and the lists are compared whole). Events are dealt to the partitions at random and a batch is
sent twice (to two indexers), as a forwarder re-sending after a restart does. Real sets are read
from ``../shared/data/cloudtrail``, never copied. Never imports product code.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from urllib.parse import unquote

import pytest
from bench import generator
from standin import scpv2

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
CLOUDTRAIL = REPO.parent / "shared" / "data" / "cloudtrail"
PARTITIONS = 4
TEMP_USER = "arn:aws:iam::107513503799:user/temp-user"


def real_events(name: str) -> list[dict]:
    folder = CLOUDTRAIL / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is not on this machine (shared data, never copied into the repo)")
    return [scpv2.splunk_event(record) for record in scpv2.load_cloudtrail(str(folder))]


def bench_events() -> list[dict]:
    org = generator.generate(7, days=14, accounts=2, scenarios_per_kind=1)
    return [scpv2.splunk_event(record) for record in org.records]


DATASETS = {
    "pwnedlabs": lambda: real_events("pwnedlabs_incident_3252"),
    "sans": lambda: real_events("sans504_s3_ransomware_lab"),
    "bench": bench_events,
}


def with_a_resent_batch(events: list[dict], seed: int) -> tuple[list[dict], list[list[dict]]]:
    """All events plus one batch sent twice; and the same dealt to PARTITIONS indexers (the
    re-sent copy landing on another indexer than the first)."""
    rng = random.Random(seed)
    start = rng.randrange(max(len(events) - 200, 1))
    batch = events[start : start + 200]
    parts: list[list[dict]] = [[] for _ in range(PARTITIONS)]
    home = {}
    for n, event in enumerate(events):
        home[n] = rng.randrange(PARTITIONS)
        parts[home[n]].append(event)
    for offset, event in enumerate(batch):
        parts[(home[start + offset] + 1) % PARTITIONS].append(event)
    return events + batch, parts


def command(splunk_home, splunk_python) -> list[str]:
    return scpv2.python_command(str(splunk_python), splunk_home.script("iamspike_command.py"))


def one_process(splunk_home, splunk_python, args, events) -> list[dict]:
    session = scpv2.run(
        command(splunk_home, splunk_python), args, scpv2.split(events, 50_000), env=splunk_home.env()
    )
    assert session.returncode == 0 and not session.died, session.stderr[-2000:]
    assert session.errors == []
    return session.rows


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("show", ["all", "spikes", "state"])
def test_distributed_equals_one_process(splunk_home, splunk_python, dataset, show):
    events = DATASETS[dataset]()
    everything, parts = with_a_resent_batch(events, seed=len(dataset))
    args = [f"show={show}"]
    expected = one_process(splunk_home, splunk_python, args, everything)
    assert expected == one_process(splunk_home, splunk_python, args, events)  # the re-sent batch adds nothing
    run = scpv2.run_distributed(command(splunk_home, splunk_python), args, parts, env=splunk_home.env())
    assert run.probe.getinfo["type"] == "reporting"
    assert run.preop[0] == "phase=map" and "span=3600" in run.preop
    for session in run.maps:
        assert session.returncode == 0 and not session.died, session.stderr[-2000:]
        assert session.getinfo == {"type": "streaming"} and session.errors == []
        assert all("_raw" not in row for row in session.rows)
    assert run.report.returncode == 0 and run.report.errors == [], run.report.stderr[-2000:]
    # SANS's steady log-delivery denial must not alert: its spikes are none either way
    assert expected or (dataset, show) == ("sans", "spikes"), "no rows: the comparison proves nothing"
    assert run.report.rows == expected
    raw_failed = sum(1 for event in everything if event.get("errorCode"))
    assert run.shipped_rows < raw_failed
    if dataset == "pwnedlabs" and show == "spikes":
        assert any(row["principal"] == TEMP_USER for row in run.report.rows)


def test_map_phase_is_idempotent_and_silent_on_no_rows(splunk_home, splunk_python):
    events = real_events("pwnedlabs_incident_3252")
    argv = command(splunk_home, splunk_python)
    args = ["phase=map", "span=3600"]
    env = splunk_home.env()
    first = scpv2.run(argv, args, scpv2.split(events, 100), env=env)
    assert first.returncode == 0 and first.errors == [] and first.rows
    again = scpv2.run(argv, args, scpv2.split(first.rows, 7), env=env)
    assert again.rows == first.rows
    empty = scpv2.run(argv, args, [[]], env=env)
    assert empty.returncode == 0 and empty.finished and empty.rows == [] and empty.warnings == []


def test_fold_adds_the_engines_account_and_principal(splunk_home, splunk_python):
    events = real_events("pwnedlabs_incident_3252")
    session = scpv2.run(
        command(splunk_home, splunk_python), ["phase=fold"], scpv2.split(events, 200), env=splunk_home.env()
    )
    assert session.returncode == 0 and session.errors == [] and session.getinfo == {"type": "streaming"}
    assert len(session.rows) == len(events)
    for event, row in zip(events, session.rows):
        assert row["eventID"] == event["eventID"] and row["account"] == "107513503799"
    burst = [row for row in session.rows if row.get("userIdentity.arn") == TEMP_USER]
    assert burst and all(row["principal"] == TEMP_USER for row in burst)


def test_records_past_splunks_extraction_limits_count_under_their_account(splunk_home, splunk_python):
    """Every failed call of PwnedLabs, made by a caller of another account, padded past
    ``[spath] extraction_cutoff`` and ``[kv] limit`` (``eventID`` and ``recipientAccountId`` then
    never extracted) and presented as Splunk would, some sent twice: the map phase reads those
    rows' ``_raw``, so each counts once and in the account called, as on the whole records."""
    folder = CLOUDTRAIL / "pwnedlabs_incident_3252"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not on this machine")
    records = scpv2.load_cloudtrail(str(folder))
    padded = []
    for record in records:
        if record.get("errorCode"):
            caller = dict(record["userIdentity"], accountId="999999999999")  # a cross-account caller
            pad = {f"filter{n:03d}": "x" * 40 for n in range(120)}
            record = dict(record, userIdentity=caller, requestParameters=pad)
        padded.append(record)
    whole = [scpv2.splunk_event(record) for record in padded]
    cut = [scpv2.cut_extraction(record) for record in padded]
    assert sum(1 for event in cut if "eventID" not in event) == sum(1 for r in padded if r.get("errorCode"))
    argv = command(splunk_home, splunk_python)
    expected = one_process(splunk_home, splunk_python, ["show=all"], whole)
    resent = cut[:100]  # sent again to the other indexer: counted once only if eventID is read
    run = scpv2.run_distributed(argv, ["show=all"], [cut[0::2], cut[1::2] + resent], env=splunk_home.env())
    assert run.report.errors == [] and run.report.warnings == []
    assert run.report.rows == expected and any(row["principal"] == TEMP_USER for row in expected)


def entries_of_v3(text: str) -> tuple[int, list[list]]:
    """(service, entries ``[source, api, code, ip, user_agent, count, digests bytes]``) of a v3
    ``iamspike_counts``: the wire format of docs/distributed.md, written out here, not imported."""
    head, _failures, _console, _profile, digests, *parts = text.split(";")
    packed = base64.b64decode(digests)
    entries, previous, at = [], [""] * 5, 0
    for part in parts:
        *texts, count, n = part.split("|")
        texts = [previous[i] if value == "^" else unquote(value) for i, value in enumerate(texts)]
        previous = texts
        end = at + 8 * int(n or count)
        entries.append([*texts, int(count), packed[at:end]])
        at = end
    return int(head[2:]), entries


def as_v3_rows(row: dict) -> list[dict]:
    """A ``v4`` count row as one ``v3`` row per part, as an indexer on v3 sent them: parts
    ``<offset>:<n>`` then the bin's ``v3`` text without its head (docs/distributed.md, written
    out here); any other row as it is."""
    text = str(row["iamspike_counts"])
    if not text.startswith("v4"):
        return [row]
    head, *fields = text.split(";")
    out, at = [], 0
    while at < len(fields):
        offset, n = (int(x) for x in fields[at].split(":"))
        body = ";".join([f"v3{head[2:]}", *fields[at + 1 : at + 5 + n]])
        out.append(dict(row, _time=str(int(float(row["_time"])) + offset), iamspike_counts=body))
        at += 5 + n
    return out


def v6_as_v5(text: str) -> str:
    """A ``v6`` text as the ``v5`` text of the same members, as an indexer before ``v6`` sent it:
    per member its head, ``_time`` offset, escaped principal and parts, per part its columns, the
    row's profiles, digests and entries (docs/distributed.md "Columns", written out here)."""
    fields = text.split(";", 14)
    heads, offsets, principals, n_parts, shifts, totals, consoles = (f.split("|") for f in fields[1:8])
    index, n_digests, n_entries = (f.split("|") for f in (fields[9], fields[11], fields[13]))
    masks, packed, k = fields[10].split("^"), base64.b64decode(fields[12]), int(fields[8])
    tail = fields[14].split(";", k)
    profiles, entries = tail[:k], tail[k].split(";")
    out, part, at, digest = ["v5"], 0, 0, 0
    for head, offset, principal, n in zip(heads, offsets, principals, map(int, n_parts)):
        member = [head]
        for i in range(part, part + n):
            e, end = int(n_entries[i]), digest + 8 * int(n_digests[i])
            if head.startswith("v4"):
                member.append(f"{shifts[i]}:{e}")
            profile = profiles[int(index[i])] + (f"^{masks[i]}" if masks[i] else "")
            digests = base64.b64encode(packed[digest:end]).decode()
            member += [totals[i], consoles[i], profile, digests, *entries[at : at + e]]
            at, digest = at + e, end
        part += n
        out += [f"{len(member)}:{offset}:{principal}", *member]
    return ";".join(out)


def as_members(row: dict) -> list[dict]:
    """A ``v5`` (or ``v6``) count row as the ``v3``/``v4`` rows of its principals, as an indexer
    before ``v5`` sent them: per member ``<k>:<offset>:<principal>`` then its own text as ``k``
    fields, the principal escaped ``%XX`` (docs/distributed.md, written out here); any other row
    as it is."""
    text = str(row["iamspike_counts"])
    if text.startswith("v6;"):
        text = v6_as_v5(text)
    if not text.startswith("v5;"):
        return [row]
    fields = text.split(";")[1:]
    out, at = [], 0
    while at < len(fields):
        k, offset, principal = fields[at].split(":", 2)
        body = ";".join(fields[at + 1 : at + 1 + int(k)])
        member = {name: value for name, value in row.items() if name != "state_keys"}
        member.update(_time=str(int(float(row["_time"])) + int(offset)), iamspike_counts=body)
        member["principal"] = unquote(principal)
        out.append(member)
        at += 1 + int(k)
    return out


def as_older(text: str, version: str) -> str:
    """A v3 ``iamspike_counts`` rewritten as an indexer still on ``version`` sent it: ``v2``
    (per-entry base64url digests) or ``v1`` (JSON entries, hex digests)."""
    if text[2:3] == "{":
        return version + text[2:]
    service, entries = entries_of_v3(text)
    if version == "v1":
        entries = [[*entry[:6], entry[6].hex()] for entry in entries]
        return "v1" + json.dumps([service, entries], separators=(",", ":"))
    special = '%|;^,"\r\n'
    written = [
        "|".join(
            [
                *("".join(f"%{ord(c):02X}" if c in special else c for c in value) for value in entry[:5]),
                str(entry[5]),
                base64.urlsafe_b64encode(entry[6]).decode(),
            ]
        )
        for entry in entries
    ]
    return ";".join([f"v2{service}", *written])


@pytest.mark.parametrize("dataset", ["pwnedlabs", "bench"])
def test_a_search_head_upgraded_before_its_indexers_reads_v1_v2_v3_and_v4_count_rows(
    splunk_home, splunk_python, dataset
):
    events = DATASETS[dataset]()
    everything, parts = with_a_resent_batch(events, seed=3)
    argv, env = command(splunk_home, splunk_python), splunk_home.env()
    expected = one_process(splunk_home, splunk_python, ["show=all"], everything)
    preop = scpv2.probe_getinfo(argv, ["show=all"], env=env).getinfo["streaming_preop"].split()[1:]
    shipped = []
    for n, part in enumerate(parts):
        session = scpv2.run(argv, preop, scpv2.split(part, 500), env=env, info=scpv2.searchinfo(preop))
        assert session.returncode == 0 and session.errors == [], session.stderr[-2000:]
        for row in session.rows:
            assert str(row["iamspike_counts"])[:2] in ("v3", "v4", "v6")
            if n == 2:  # indexer 2 is still on v3, 1 and 3 on v1 and v2
                shipped += [cell for member in as_members(row) for cell in as_v3_rows(member)]
            elif n % 2:
                shipped += [
                    dict(cell, iamspike_counts=as_older(str(cell["iamspike_counts"]), f"v{n % 4}"))
                    for member in as_members(row)
                    for cell in as_v3_rows(member)
                ]
            else:
                shipped.append(row)
    assert any(str(row["iamspike_counts"]).startswith("v6;") for row in shipped)
    assert any(str(row["iamspike_counts"]).startswith("v1[") for row in shipped)
    assert any(str(row["iamspike_counts"]).startswith("v20;") for row in shipped)
    if dataset == "bench":  # principals failing over many hours: one v4 text each per indexer
        members = [member for row in shipped for member in as_members(row)]
        assert any(str(row["iamspike_counts"]).startswith("v40;") for row in members)
    report = scpv2.run(argv, ["show=all"], scpv2.split(shipped, 50_000), env=env)
    assert report.returncode == 0 and report.errors == [] and report.warnings == [], report.stderr[-2000:]
    assert report.rows == expected
    assert dataset != "pwnedlabs" or any(row["principal"] == TEMP_USER for row in expected)
