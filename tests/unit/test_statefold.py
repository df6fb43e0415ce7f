"""State rows without matrices (``statefold``): the same rows as the matrices of 5b4bebd gave.

The hashes below are those of the state rows the dense path (``ResultsPass._state_rows`` over
``(bins, principals)`` matrices, commit 5b4bebd) wrote for the same input: the bench
organisation's count rows (re-sent events, several indexers, an early and a late run reading the
early run's state, with and without its account rows, a history shorter than the range) and
the real PwnedLabs and SANS sets (whole, and in two halves through the saved state). The
hand-made cases check what the rows mean: SSO sessions are one actor, AWS service principals are
left out of their account, an account's saved row replaces its principals' history.

Since rule P26, an account row also carries ``service_actors`` (the most actors failing on one
event source per bin, where it differs from the failing actors), which the matrices of 5b4bebd did
not write: those hashes are now of the rows with that field taken out (every other field of every
row unchanged), and the rows as written are pinned beside them where the field appears (PwnedLabs'
first half and the Invictus set; the bench organisation fails on one event source only).

Since a principal's row keeps at most ``state.FIRST_FAILURES_KEPT`` (256) first failures,
PwnedLabs' temp-user (465 APIs, in its whole run and its second half) keeps 256 of them: those
hashes are of the rows as now written. Checked when the cap came in: that row's ``first_failures``
were ``state.kept_first_failures`` of the uncapped ones, and every other field of every row of the
four sets was unchanged.

Since rule P29, an account row also carries ``sources`` (where its event sources' rates stood),
likewise taken out for the hashes of 5b4bebd; the rows as written are pinned beside them. Since
an account row keeps every source where the row has room (``state.MAX_ACCOUNT_ROW_BYTES``, not
4,000 characters of them), PwnedLabs' account over the whole set keeps its 89 sources as they are
(45 before, 44 as busy): that row's ``sources`` alone changed (hash 9e3b7133c5d47bd0 before).

Since the bench's cells carry their event sources' minutes (P39 masks, drawn apart from the
bench's other draws), the bench organisation's hashes stand: state rows do not keep the minutes.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import pathlib
from datetime import datetime

import numpy as np
import pytest
from bench import scale_backfill
from iamspike.counttext import decode_counts
from iamspike.engine import Detector, parse_options
from iamspike.state import decode
from iamspike.statefold import Cells

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "cloudtrail"
HOUR = 3600
T0 = 1_788_739_200
ACCT = "111122223333"
SSO = f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_PowerUserAccess_0a1b"


def digest(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]


def without_service_actors(rows: list[dict], before: int | None = None) -> list[dict]:
    """The rows with the account rows' ``service_actors`` taken out (of the bins before ``before``
    only, if given), the state text written as ``state.encode`` writes it."""
    out = []
    for row in rows:
        blob = json.loads(row["iamspike_state"])
        same = blob.pop("service_actors", {})
        kept = {
            o: n
            for o, n in same.items()
            if before is not None and blob["first"] + int(o) * blob["span"] >= before
        }
        if kept:
            blob["service_actors"] = kept
        text = json.dumps(blob, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        out.append({**row, "iamspike_state": text})
    return out


def without_sources(rows: list[dict]) -> list[dict]:
    """The rows with the account rows' ``sources`` (P29) taken out."""
    out = []
    for row in rows:
        blob = json.loads(row["iamspike_state"])
        blob.pop("sources", None)
        text = json.dumps(blob, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        out.append({**row, "iamspike_state": text})
    return out


def state(chunks, options=("show=state",)) -> list[dict]:
    detector = Detector(parse_options(list(options)))
    for header, rows in chunks:
        detector.add_rows(header, rows)
    return detector.results()


def saved(rows: list[dict], entity_types=("principal", "account")) -> tuple[list[str], list[list[str]]]:
    header = sorted({key for row in rows for key in row})
    return header, [
        [str(row.get(key, "")) for key in header] for row in rows if row["entity_type"] in entity_types
    ]


def bench_hours(n_hours: int = 6) -> list[tuple[list[str], list[list[str]]]]:
    """The backfill bench's model, small: 100 accounts, 20,000 principals, 4 indexers."""
    sb = scale_backfill
    org, rng, factors = sb.Org(100, 20_000), np.random.default_rng(5), sb.diurnal(n_hours)
    out = []
    for h in range(n_hours):
        cells = sb.hour_cells(rng, org, round(300_000 * factors[h]), 4)
        rows = [row for part in sb.count_bodies(org, sb.START + HOUR * h, cells, 4, rng) for row in part]
        out.append((sb.COUNT_COLUMNS, [[str(row.get(k, "")) for k in sb.COUNT_COLUMNS] for row in rows]))
    return out


BENCH_WRITTEN = ("37bf4e809e58cb90", "547ff46a53a43c20", "d287ce0502009463")  # the rows with ``sources``


def test_bench_organisation_state_rows_are_those_of_the_matrices() -> None:
    hours = bench_hours()
    early = state(hours[:3])
    older = without_sources(early)
    assert without_service_actors(older) == older  # one event source: the field is never written
    assert (digest(older), len(older)) == ("ad7a0ceaf2059722", 15337)
    late = state([saved(early), *hours[3:]])
    assert (digest(without_sources(late)), len(late)) == ("5c6d2dec8148cdd4", 17289)
    # Principals' rows keep no sources: the accounts' rates then start at the live bins.
    assert without_sources(state([saved(early, ("principal",)), *hours[3:]])) == without_sources(late)
    short = state(hours, ("show=state", "history=2h"))
    assert (digest(without_sources(short)), len(short)) == ("8a831f2a783d81ca", 13799)
    assert state([saved(early)]) == early
    assert tuple(digest(r) for r in (early, late, short)) == BENCH_WRITTEN


def test_bench_cells_carry_the_minutes_of_their_events() -> None:
    """The bench's cells carry each event source's slots as the map phase would (P39): a slot per
    event (so no more slots than events), written in the row's text; a cell holding only re-sent
    copies has slots of its first indexer's cell (the copies' first sends)."""
    sb = scale_backfill
    org, rng = sb.Org(40, 3_000), np.random.default_rng(7)
    cells = sb.hour_cells(rng, org, 40_000, 3)
    parts = sb.count_cells(org, sb.START, cells, 3, rng)
    slots: dict[tuple[str, int], int] = {}
    used = 0
    for k, part in enumerate(parts):
        for cell in part:
            assert set(cell.masks) == {entry[0] for entry in cell.entries} == {"iam.amazonaws.com"}
            mask = cell.masks["iam.amazonaws.com"]
            assert 1 <= mask.bit_count() <= min(cell.failures, 12) and mask < 1 << 12
            assert decode_counts(cell.counts_text())[2] == cell.masks
            slots[cell.principal, k] = mask
            used |= mask
    assert used == (1 << 12) - 1
    active, own, resent_in, _ = cells
    copies_only = 0
    for i, p in enumerate(active.tolist()):
        for k in range(3):
            if own[i, k].sum() == 0 and resent_in[i, k].sum() > 0:
                copies_only += 1
                mask, first = slots[org.folded(p), k], slots[org.folded(p), (k - 1) % 3]
                assert mask & ~first == 0
    assert copies_only > 5


def load(name: str) -> list[dict]:
    records: list[dict] = []
    for path in sorted(glob.glob(str(SHARED / name / "**" / "*.json*"), recursive=True)):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as handle:
            blob = json.load(handle)
            records.extend(blob["Records"] if isinstance(blob, dict) else blob)
    return sorted(records, key=lambda record: record.get("eventTime", ""))


@pytest.mark.parametrize(
    ("name", "options", "expected", "written"),
    [
        (
            "pwnedlabs_incident_3252",
            (),
            ("7c601211030ac16c", "d8a0f85124cb2e1d", "fbb2f6fd0832e88e"),
            ("da647d6136987241", "738a28a0ba14c95c", "e4dcebf41db73e88"),
        ),
        (
            "pwnedlabs_incident_3252",
            ("span=5m", "history=1d"),
            ("5dc5dc3eb115e8e8", "feeb88065b42c4dc", "9c4733a8b8defff5"),
            ("2fd5c160eda9d451", "09bf1681282f2860", "ee50b319ec0dee88"),
        ),
        (
            "sans504_s3_ransomware_lab",
            (),
            ("675dbed0451b6ae1", "046159f89d57af5d", "7df7b5fc5ff28433"),
            ("d948604350e31fb9", "330d073e02f73bb1", "b9f1788493e5ef53"),
        ),
        (
            "invictus_aws_dataset",
            (),
            ("99d3c3eea3722fac", "c43d9d3fa47f8d5a", "521fab81d329f3b6"),
            ("22487a922f84ecf2", "2c97aa74915bbbcb", "d4edddfa156331ef"),
        ),
    ],
)
def test_real_sets_state_rows_are_those_of_the_matrices(name, options, expected, written) -> None:
    """``expected``: the matrices' rows (5b4bebd) with ``service_actors`` and ``sources`` taken
    out; ``written``: the rows as written."""
    records = load(name)
    options = ("show=state", *options)
    half = len(records) // 2

    def run(state_rows, records, entity_types=("principal", "account")):
        detector = Detector(parse_options(list(options)))
        if state_rows is not None:
            detector.add_rows(*saved(state_rows, entity_types))
        detector.add_records(records)
        return detector.results()

    early = run(None, records[:half])
    late = run(early, records[half:])
    rows = (run(None, records), early, late)
    assert tuple(digest(without_service_actors(without_sources(r))) for r in rows) == expected
    assert tuple(digest(r) for r in rows) == written
    # Principals' rows keep no event sources: read without the account rows, the account's actors
    # on one source before the live bins are its failing actors (nothing else changes).
    span = int(json.loads(late[0]["iamspike_state"])["span"])
    live_first = int(datetime.fromisoformat(records[half]["eventTime"].replace("Z", "+00:00")).timestamp())
    live_first -= live_first % span
    alone = without_sources(run(early, records[half:], ("principal",)))
    assert alone == without_sources(without_service_actors(late, live_first))


def event(t: int, arn: str, api: str = "ListUsers", **identity) -> dict:
    return {
        "eventTime": t,
        "eventName": api,
        "eventSource": "iam.amazonaws.com",
        "errorCode": "AccessDenied",
        "recipientAccountId": ACCT,
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2",
        "userIdentity": {"type": "AssumedRole", "arn": arn, "accountId": ACCT, **identity},
    }


def blobs(rows: list[dict]):
    return {(row["entity_type"], row["principal"]): decode(row["iamspike_state"]) for row in rows}


def test_sso_sessions_are_one_actor_and_service_principals_are_left_out_of_the_account() -> None:
    records = [
        event(T0 + i, f"{SSO}/{who}@example.com", api)
        for i, (who, api) in enumerate([("erin", "ListUsers"), ("erin", "ListRoles"), ("yara", "ListUsers")])
    ]
    records += [event(T0 + 10 + i, "arn:aws:iam::111122223333:user/ci", "GetUser") for i in range(2)]
    records += [
        event(T0 + 20 + i, "", "Decrypt", invokedBy="ec2.amazonaws.com", type="AWSService") for i in range(4)
    ]
    detector = Detector(parse_options(["show=state"]))
    detector.add_records(records)
    rows = blobs(detector.results())
    account = rows[("account", "")]
    # 5 failures (the service principal's 4 left out), pairs (SSO role: 2 APIs, ci: 1), 2 actors
    assert (account.bins, account.distinct_apis, account.failing_principals) == ({T0: 5}, {T0: 3}, {T0: 2})
    erin = rows[("principal", f"{SSO}/erin@example.com")]
    assert erin.bins == {T0: 2} and erin.distinct_apis == {T0: 2}
    assert erin.first_failures == {"ListRoles": T0, "ListUsers": T0}
    service = [entry for (kind, _), entry in rows.items() if kind == "principal" and entry.bins == {T0: 4}]
    assert len(service) == 1


def test_an_accounts_saved_row_replaces_its_principals_history() -> None:
    early = [event(T0 + HOUR * h, f"arn:aws:iam::{ACCT}:user/u{i}") for h in range(3) for i in range(2)]
    first = Detector(parse_options(["show=state"]))
    first.add_records(early)
    first_rows = first.results()
    header, rows = saved(first_rows)
    # The account row says 7 failures by 3 actors in the first bin (the principals' rows say 2).
    account_i = next(i for i, row in enumerate(rows) if row[header.index("entity_type")] == "account")
    blob = json.loads(rows[account_i][header.index("iamspike_state")])
    blob["bins"]["0"], blob["failing"]["0"] = 7, 3
    rows[account_i][header.index("iamspike_state")] = json.dumps(blob)
    later = Detector(parse_options(["show=state"]))
    later.add_rows(header, rows)
    later.add_records([event(T0 + HOUR * 3, f"arn:aws:iam::{ACCT}:user/u0")])
    account = blobs(later.results())[("account", "")]
    assert account.bins == {T0: 7, T0 + HOUR: 2, T0 + 2 * HOUR: 2, T0 + 3 * HOUR: 1}
    assert account.failing_principals == {T0: 3, T0 + HOUR: 2, T0 + 2 * HOUR: 2, T0 + 3 * HOUR: 1}


@pytest.mark.parametrize(
    "values",
    [
        [1, 3, 2, 7, 1, 1, 4, 9],  # counts: summed at once
        [0.5, 1.25, 3, 0.1, 7, 2.2, 1, 1e-3],  # not whole: one at a time
        [-1, 3, 2, 7, -4, 1, 4, 9],  # below 0
        [2**24 - 1, 1, 1, 3, 2**23, 2**23 + 1, 5, 2],  # a cell's sum at or above 2**24
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_summed_cells_are_those_of_add_at(values, dtype) -> None:
    """The sums of np.add.at into a matrix in the given order, to the bit, where float32 rounds."""
    rng = np.random.default_rng(len(values))
    cell = rng.integers(0, 40, 4000).astype(np.int64)
    value = np.array(values * 500, dtype=np.float64)
    unique = np.unique(cell)
    expected = np.zeros(len(unique), dtype=dtype)
    np.add.at(expected, np.searchsorted(unique, cell), value)
    got = Cells.summed(cell, value, dtype)
    assert np.array_equal(got.cell, unique)
    assert got.value.dtype == dtype
    assert got.value.tobytes() == expected.tobytes()
    empty = Cells.summed(cell[:0], value[:0], dtype)
    assert len(empty.cell) == len(empty.value) == 0
