"""The shipped searches' KV store steps at 200,000 principals, under Splunk's ``[kvstore]`` limits.

The KV store commands (``lookup``, ``outputlookup``, ``inputlookup``) are taken from the shipped
searches, macros expanded, and run on tests/standin/kvstore.py, which applies limits.conf's
``[kvstore]`` values as the spec states them. The rows before them (count rows of the map phase,
state rows of ``show=state``) are made here with the shape docs/distributed.md fixes, so the
test covers the KV store side alone; tests/contract/test_alert_searches.py runs the whole
searches through the installed command.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from standin import kvstore
from standin.conf import read_conf
from standin.spl import expand_macros, first_name, pipeline, row_step, walk

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "default"
SAVED = read_conf(DEFAULT / "savedsearches.conf")
MACROS = read_conf(DEFAULT / "macros.conf")
TRANSFORMS = read_conf(DEFAULT / "transforms.conf")
KV_COMMANDS = ("lookup", "inputlookup", "outputlookup")

ACCOUNTS = 1_000
PRINCIPALS = 200_000
STATE_BYTES = 300  # about an hourly principal's encoded state; the size limits are tested apart


def state_key(account: str, principal: str = "") -> str:
    """docs/distributed.md: the first 32 hex digits of SHA-256 of the entity's identity."""
    text = f"principal\x1f{account}\x1f{principal}" if principal else f"account\x1f{account}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def collections(limits: kvstore.Limits | None = None) -> dict[str, kvstore.Collection]:
    return {
        name: kvstore.Collection([f.strip() for f in stanza["fields_list"].split(",")], limits)
        for name, stanza in TRANSFORMS.items()
        if stanza.get("external_type") == "kvstore"
    }


def kv_steps(saved_search: str) -> list[tuple[str, str]]:
    """The KV store commands of a shipped saved search, in order, macros expanded."""
    steps = walk(expand_macros(SAVED[saved_search]["search"], MACROS))
    allowlist = ("iamspike_allowlist", "iamspike_allowlist_kv")
    return [(c, rest) for c, rest in steps if c in KV_COMMANDS and first_name(rest) not in allowlist]


def steps(store: dict, spl: str, rows: list[dict]) -> list[dict]:
    """A pipeline of the state macros on `rows`: KV store commands on the stand-in, the others
    as tests/standin/spl.py models them, ``appendpipe``'s subpipeline on a copy of the rows."""
    for command, rest, subsearches in pipeline(spl):
        if command == "appendpipe":
            (sub,) = subsearches
            rows = rows + steps(store, "| " + sub, [dict(row) for row in rows])
        elif command in KV_COMMANDS:
            rows, writes = kvstore.run(store, command, rest, rows)
            if writes is not None:
                kvstore.run_steps(writes)
        else:
            stepped = row_step(command, rest, rows)
            assert stepped is not None, f"{command} {rest}: not modelled"
            rows = stepped
    return rows


def run(store: dict, macro: str, rows: list[dict]) -> list[dict]:
    """The state macro `macro` (iam_error_spike_baseline / _save_baseline) on `rows`."""
    return steps(store, expand_macros(f"| `{macro}`", MACROS), rows)


READ, WRITE = "iam_error_spike_baseline", "iam_error_spike_save_baseline"


def test_the_shipped_searches_use_the_state_macros() -> None:
    for name in ("IAM Error Spike - Account Alert", "IAM Error Spike - Principal Alert"):
        assert f"`{READ}`" in SAVED[name]["search"] and f"`{WRITE}`" not in SAVED[name]["search"]
    assert f"`{READ}`" in SAVED["IAM Error Spike - Baseline Maintenance"]["search"]
    for name in ("IAM Error Spike - Baseline Maintenance", "IAM Error Spike - Baseline Backfill"):
        assert SAVED[name]["search"].rstrip().endswith(f"| `{WRITE}`"), name


def entity(n: int) -> tuple[str, str]:
    account = f"{100000000000 + n % ACCOUNTS}"
    return account, f"arn:aws:iam::{account}:role/app-{n}"


def state_row(account: str, principal: str, version: str) -> dict:
    body = f"{version}:{account}:{principal}:"
    return {
        "state_key": state_key(account, principal),
        "entity_type": "principal" if principal else "account",
        "account": account,
        "principal": principal,
        "iamspike_state": body + "x" * (STATE_BYTES - len(body)),
        "updated": "1700000000",
    }


@pytest.fixture(scope="module")
def full() -> dict[str, kvstore.Collection]:
    """iamspike_baseline after a backfill: 200,000 principals and their 1,000 accounts."""
    store = collections()
    rows = [state_row(*entity(n), "v0") for n in range(PRINCIPALS)]
    rows += [state_row(f"{100000000000 + a}", "", "v0") for a in range(ACCOUNTS)]
    run(store, WRITE, rows)
    return store


def snapshot(store: dict) -> dict[str, dict]:
    return {k: dict(v) for k, v in store["iamspike_baseline"].rows.items()}


def test_the_limits_are_splunks() -> None:
    assert kvstore.Limits.of_splunk() == kvstore.Limits(50_000, 50, 1000, 100, 1000, 50)


def test_a_whole_collection_query_is_cut_where_the_spec_says(full) -> None:
    """What the old alerts did (`inputlookup append=true iamspike_baseline`): a cut state."""
    baseline = full["iamspike_baseline"]
    rows, _ = kvstore.run(full, "inputlookup", "append=true iamspike_baseline", [{"_time": "1"}])
    assert len(rows) == 1 + 50_000 and baseline.last_query_cut
    small = kvstore.Collection(["_key", "iamspike_state"])
    kvstore.run_steps(
        small.upsert_steps([{"k": str(n), "iamspike_state": "y" * 4000} for n in range(20_000)], "k")
    )
    got = small.query()
    assert small.last_query_cut and 12_000 < len(got) < 13_500, "50 MB of ~4 KB rows"


def appended_states(rows: list[dict], count_rows: list[dict]) -> list[str]:
    """The count rows pass unchanged, first; what the macro appended after them is state rows
    (``iamspike_state`` only, multivalue when an account has several): their texts, in order."""
    assert rows[: len(count_rows)] == count_rows, "the count rows pass unchanged"
    appended = rows[len(count_rows) :]
    assert all(set(row) == {"iamspike_state"} for row in appended)
    return [
        t
        for row in appended
        for t in (
            row["iamspike_state"] if isinstance(row["iamspike_state"], list) else [row["iamspike_state"]]
        )
    ]


def test_the_alerts_read_the_state_of_every_entity_in_their_window(full) -> None:
    window = [entity(n) for n in range(0, PRINCIPALS, 40)]  # 5,000 active principals
    for name in ("IAM Error Spike - Account Alert", "IAM Error Spike - Principal Alert"):
        assert [c for c, _ in kv_steps(name)] == ["lookup"], name
    baseline = full["iamspike_baseline"]
    read_before = baseline.rows_read
    count_rows = [
        {
            "_time": str(1700000000 + 3600 * hour),
            "account": account,
            "principal": principal,
            "failures": "3",
            "state_key": state_key(account, principal),
            "account_state_key": state_key(account),
        }
        for account, principal in window
        for hour in (0, 1)
    ]
    count_rows.append({"_time": "1700000000", "account": "", "principal": "", "failures": "0"})  # range row
    rows = run(full, READ, [dict(row) for row in count_rows])
    accounts = {account for account, _ in window}
    assert len(rows) == len(count_rows) + len(accounts), "one state row per account"
    texts = appended_states(rows, count_rows)
    wanted = [f"v0:{a}:{p}:" for a, p in window] + [f"v0:{a}::" for a in accounts]
    assert sorted(text[: text.rindex(":") + 1] for text in texts) == sorted(wanted), "each entity once"
    assert baseline.rows_read - read_before == len(window) + len(accounts), "the window, not the history"


def test_a_packed_rows_principals_are_each_read_once_per_search(full) -> None:
    """v5 rows (several principals of one account) carry their keys in ``state_keys``
    (space-separated); one principal counted on several indexers is in several v5 rows and may
    be in a v3 row too: its state is read once, as its account's; a key without a saved row adds
    nothing."""
    account = entity(0)[0]
    packed = [entity(n) for n in range(0, 4 * ACCOUNTS, ACCOUNTS)]  # four principals of one account
    assert {a for a, _ in packed} == {account}
    missing = state_key(account, "arn:aws:iam::none")
    keys = [state_key(a, p) for a, p in packed]

    def v5(members: list[str]) -> dict:
        return {
            "_time": "1700000000",
            "account": account,
            "principal": "",
            "state_keys": " ".join(members),
            "account_state_key": state_key(account),
        }

    v3 = {
        "_time": "1700000000",
        "account": account,
        "principal": packed[0][1],
        "state_key": keys[0],
        "account_state_key": state_key(account),
    }
    count_rows = [v3, v5([*keys[:3], missing]), v5(keys[1:]), v5(keys), v3]
    baseline = full["iamspike_baseline"]
    read_before = baseline.rows_read
    rows = run(full, READ, [dict(row) for row in count_rows])
    texts = appended_states(rows, count_rows)
    assert len(rows) == len(count_rows) + 1, "one state row for the account"
    wanted = [f"v0:{a}:{p}:" for a, p in packed] + [f"v0:{account}::"]
    assert sorted(text[: text.rindex(":") + 1] for text in texts) == sorted(wanted), "each entity once"
    assert baseline.rows_read - read_before == len(packed) + 1, "each entity once"


def test_maintenance_replaces_the_rows_it_writes_and_nothing_else(full) -> None:
    before = snapshot(full)
    active = [entity(n) for n in range(7, PRINCIPALS, 50)]
    accounts = sorted({a for a, _ in active})
    rows = [state_row(a, p, "v1") for a, p in active] + [state_row(a, "", "v1") for a in accounts]
    written = {r["state_key"] for r in rows}
    run(full, WRITE, rows)
    after = snapshot(full)
    assert set(after) == set(before), "no entry deleted, none added"
    assert all(after[k] == before[k] for k in before if k not in written)
    assert all(after[k]["iamspike_state"].startswith("v1:") for k in written)
    assert {k: after[k]["_key"] for k in written} == {k: k for k in written}


def test_a_reader_never_sees_a_half_written_collection(full) -> None:
    """A backfill of 150,000 entities written by key, read by an alert between every batch: every
    entity is there, old or new, at every step. The old full replace fails the same check."""
    baseline = full["iamspike_baseline"]
    keys = set(baseline.rows)
    rows = [state_row(*entity(n), "v2") for n in range(150_000)]
    ((command, rest),) = list(walk(expand_macros(f"| `{WRITE}`", MACROS)))
    _, steps = kvstore.run(full, command, rest, rows)
    seen_steps = 0
    for _ in steps:
        seen_steps += 1
        if seen_steps % 25 == 0:
            assert set(baseline.rows) == keys
    assert seen_steps == 150
    assert sum(v["iamspike_state"].startswith("v2:") for v in baseline.rows.values()) == 150_000
    assert len(baseline.rows) == PRINCIPALS + ACCOUNTS

    old = collections()
    kvstore.run_steps(old["iamspike_baseline"].replace_steps(rows[:5_000]))
    _, steps = kvstore.run(old, "outputlookup", "override_if_empty=false iamspike_baseline", rows[:5_000])
    next(steps)
    next(steps)
    assert 0 < len(old["iamspike_baseline"].rows) < 5_000, (
        "a full replace shows a reader a half-written state"
    )


def test_the_ec2_inventory_is_written_by_key() -> None:
    store = collections()
    name = "IAM Error Spike - EC2 Inventory Lookup"
    assert [c for c, _ in kv_steps(name)] == ["lookup", "outputlookup"]
    spl = expand_macros(SAVED[name]["search"], MACROS)
    assert 'eval inventory_key=md5(ip."|".instance_id)' in spl

    def seen(ip: str, instance: str, first: int, last: int) -> dict:
        key = hashlib.md5(f"{ip}|{instance}".encode()).hexdigest()
        return {
            "inventory_key": key,
            "ip": ip,
            "instance_id": instance,
            "first_seen": first,
            "last_seen": last,
        }

    (lookup, output) = kv_steps(name)
    assert "eval first_seen=min(first_seen, coalesce(known_first_seen, first_seen))" in spl

    def inventory_run(rows: list[dict]) -> None:
        rows, _ = kvstore.run(store, *lookup, rows)
        for row in rows:  # the search's eval between its lookup and its outputlookup
            row["first_seen"] = min(row["first_seen"], row.pop("known_first_seen") or row["first_seen"])
        kvstore.run_steps(kvstore.run(store, *output, rows)[1])

    inventory_run([seen(f"10.0.{n // 250}.{n % 250}", f"i-{n:08x}", 100, 200) for n in range(60_000)])
    inventory_run([seen("10.0.0.1", "i-00000001", 300, 400), seen("10.9.9.9", "i-new", 300, 400)])
    rows = store["aws_ec2_inventory_ips"].rows
    assert len(rows) == 60_001, "nothing dropped, one pair added"
    updated = [r for r in rows.values() if r["ip"] == "10.0.0.1"]
    assert [(r["first_seen"], r["last_seen"]) for r in updated] == [(100, 400)]
