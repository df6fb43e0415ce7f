"""State rows: keyed rows per entity, encode/decode round trips, version-1 rows, foreign values."""

from __future__ import annotations

import hashlib
import json

import pytest
from iamspike.state import (
    ACCOUNT,
    FIRST_FAILURES_KEPT,
    RANGE,
    STATE_FIELD,
    PrincipalRows,
    SourceHistory,
    StateEntry,
    account_bins,
    account_state_key,
    decode,
    encode,
    state_key,
)

FIRST = 496_872 * 3600  # 2026-09-07T00:00Z
USER = "arn:aws:iam::111:user/a"


def test_keys_are_the_documented_sha256_prefixes() -> None:
    assert state_key("111", USER) == hashlib.sha256(f"principal\x1f111\x1f{USER}".encode()).hexdigest()[:32]
    assert account_state_key("111") == hashlib.sha256(b"account\x1f111").hexdigest()[:32]
    assert state_key("111", "") != account_state_key("111")


def test_principal_round_trip() -> None:
    bins = {FIRST + 7200: 4, FIRST + 10800: 2}
    entry = StateEntry(3600, FIRST, FIRST + 36000, "111", USER, bins, {FIRST + 7200: 3}, {"GetUser": FIRST})
    row = encode(entry)
    assert set(row) == {"state_key", "entity_type", "account", "principal", STATE_FIELD, "updated"}
    assert row["state_key"] == state_key("111", USER) and row["entity_type"] == "principal"
    assert row["updated"] == entry.last
    blob = json.loads(row[STATE_FIELD])
    assert blob["v"] == 2 and blob["bins"] == {"2": 4, "3": 2} and blob["apis"] == {"2": 3}
    restored = decode(row[STATE_FIELD])
    assert restored.bins == bins and restored.distinct_apis == {FIRST + 7200: 3, FIRST + 10800: 1}
    assert restored.first_failures == {"GetUser": FIRST} and restored.principal == USER


def test_account_round_trip_keeps_total_and_failing_principals() -> None:
    entry = StateEntry(3600, FIRST, FIRST + 7200, "111", "", {FIRST: 9}, {FIRST: 5}, {}, {FIRST: 3}, ACCOUNT)
    row = encode(entry)
    assert row["state_key"] == account_state_key("111") and row["principal"] == ""
    restored = decode(row[STATE_FIELD])
    assert restored.entity_type == ACCOUNT and restored.account == "111"
    assert restored.bins == {FIRST: 9} and restored.failing_principals == {FIRST: 3}
    assert restored.distinct_apis == {FIRST: 5}


def test_account_rows_carry_the_actors_on_one_source_where_they_differ_from_the_failing() -> None:
    """``service_actors`` (rule P26) is written for the bins where it differs from the failing
    principals; a bin without it, and a row written before the field existed, gives those."""
    failing = {FIRST: 3, FIRST + 3600: 4}
    entry = StateEntry(
        3600,
        FIRST,
        FIRST + 3600,
        "111",
        "",
        {FIRST: 9, FIRST + 3600: 8},
        {},
        {},
        failing,
        ACCOUNT,
        {FIRST: 3, FIRST + 3600: 1},
    )
    text = encode(entry)[STATE_FIELD]
    assert json.loads(text)["service_actors"] == {"1": 1}
    saved = list(account_bins([decode(text)], {"111": 0}, 3600, FIRST // 3600, 2, None))
    assert [(b, failing, one) for b, _, _, _, failing, one in saved] == [(0, 3, 3), (1, 4, 1)]
    older = json.loads(text)
    del older["service_actors"]
    saved = list(account_bins([decode(json.dumps(older))], {"111": 0}, 3600, FIRST // 3600, 2, None))
    assert [(failing, one) for _, _, _, _, failing, one in saved] == [(3, 3), (4, 4)]


def test_version_1_rows_still_read() -> None:
    v1 = {"v": 1, "span": 3600, "first": FIRST, "last": FIRST + 3600, "account": "111", "principal": USER}
    entry = decode(json.dumps({**v1, "bins": {"1": 5}, "apis": {}, "seen": {"GetUser": 0}}))
    assert entry.entity_type == "principal" and entry.bins == {FIRST + 3600: 5}
    assert entry.first_failures == {"GetUser": FIRST}
    blank = decode(json.dumps({**v1, "account": "", "principal": "", "bins": {}, "apis": {}}))
    assert blank.entity_type == RANGE


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"v": 99}',
        '{"v": 1, "span": 3600}',
        '{"v":1,"span":"x","first":0,"last":0,"account":"","principal":"","bins":{}}',
        '{"v":2,"type":"region","span":3600,"first":0,"last":0,"account":"","principal":"","bins":{}}',
        "[" * 100_000,  # past json's recursion limit (RecursionError, not ValueError)
    ],
)
def test_decode_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        decode(text)


def test_state_text_is_compact_json_with_sorted_keys() -> None:
    """Written field by field, the text is what json.dumps(sort_keys=True) writes: offsets ordered
    as text ("1" before "10" before "2"), names with quotes, backslashes and non-ASCII kept."""
    bins = {FIRST + 3600 * t: t + 1 for t in (0, 2, 10, 1, 11)}
    firsts = {'Get"Us\\er': FIRST, "ListRôles": FIRST + 7200, "A": FIRST + 36000}
    for entry in (
        StateEntry(
            3600, FIRST, FIRST + 39600, '1"11', "arn:aws:iam::111:user/é\u2028", bins, {FIRST: 2}, firsts
        ),
        StateEntry(3600, FIRST, FIRST + 39600, "111", "", bins, {}, {}, {FIRST + 36000: 4}, ACCOUNT),
    ):
        text = encode(entry)[STATE_FIELD]
        assert text == json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        assert decode(text) == decode(json.dumps(json.loads(text)))
        assert list(json.loads(text)["bins"]) == ["0", "1", "10", "11", "2"]


@pytest.mark.parametrize(
    "change",
    [
        {"first": 1e300},  # an OverflowError in the fold before
        {"first": -99999999999999},  # an hourly grid from year -3 million: the search stalled
        {"first": True},  # 1970: decades of hourly bins
        {"bins": {"99999999999": 1}},
        {"first_failures": {"GetUser": 10**15}},
        {"first_failures": {"GetUser": -(10**12)}},
        {"failing": {"99999999999": 1}},
        {"service_actors": {"-99999999999": 1}},
        {"span": 0},
    ],
)
def test_decode_rejects_a_row_whose_times_no_search_reads(change: dict) -> None:
    entry = StateEntry(3600, FIRST, FIRST + 36000, "111", USER, {FIRST + 7200: 4}, {}, {"GetUser": FIRST})
    blob = {**json.loads(encode(entry)[STATE_FIELD]), **change}
    with pytest.raises(ValueError):
        decode(json.dumps(blob))


def test_a_principals_row_keeps_its_earliest_and_latest_first_failures_up_to_the_cap() -> None:
    """Past FIRST_FAILURES_KEPT APIs, the row keeps the principal's own first failure (novelty
    counts its settling time from it) and the most recent others, ties by name: the KV store's
    save batch bounds a row (docs/distributed.md). At the cap, nothing is left out."""
    extra = 10
    firsts = {f"Api{i:04d}": FIRST + 3600 * (i // 2) for i in range(FIRST_FAILURES_KEPT + extra)}
    entry = StateEntry(3600, FIRST, FIRST + 3600 * 400, "111", USER, {FIRST: 1}, {}, firsts)
    kept = decode(encode(entry)[STATE_FIELD]).first_failures
    assert len(kept) == FIRST_FAILURES_KEPT and kept["Api0000"] == FIRST
    dropped = {f"Api{i:04d}" for i in range(1, extra + 1)}  # the next oldest: Api0001 ties Api0000
    assert set(firsts) - set(kept) == dropped
    assert all(kept[api] == firsts[api] for api in kept)
    at_cap = dict(list(firsts.items())[:FIRST_FAILURES_KEPT])
    entry = StateEntry(3600, FIRST, FIRST + 3600 * 400, "111", USER, {FIRST: 1}, {}, at_cap)
    assert decode(encode(entry)[STATE_FIELD]).first_failures == at_cap


def test_account_rows_carry_their_sources_rates_and_rows_without_them_still_read() -> None:
    """``sources`` (rule P29): the account's watch start and, per event source, the level's sum
    and each hour of the day's (to 7 significant digits, trailing zero hours left out); the busier
    sources' highest sums and their names' digests."""
    history = SourceHistory(
        FIRST - 7200,
        {"ec2.amazonaws.com": (0.123456789, (0.5, 0.0, 2.0, 0.0, 0.0))},
        (9.0, (1.0,)),
        frozenset({"a1b2c3"}),
    )
    entry = StateEntry(3600, FIRST, FIRST, "111", "", {FIRST: 4}, {}, {}, {FIRST: 3}, ACCOUNT, {}, history)
    text = encode(entry)[STATE_FIELD]
    blob = json.loads(text)
    assert blob["sources"] == {
        "busy": [9, 1],
        "busy_ids": ["a1b2c3"],
        "by": {"ec2.amazonaws.com": [0.1234568, 0.5, 0, 2]},
        "since": FIRST - 7200,
    }
    restored = decode(text).sources
    assert restored.since == FIRST - 7200
    assert restored.sums == {"ec2.amazonaws.com": (0.1234568, (0.5, 0.0, 2.0))}
    assert restored.busy == (9.0, (1.0,)) and restored.busy_ids == {"a1b2c3"}
    every = json.loads(text)
    del every["sources"]["busy_ids"]  # too many to list: every source not kept is busy
    assert decode(json.dumps(every)).sources.busy_ids is None
    del blob["sources"]
    assert decode(json.dumps(blob)).sources is None  # written before P29: the rule waits a day
    for bad in ({"by": {"s3": ["x"]}, "since": FIRST}, {"by": {"s3": [-1.0]}, "since": FIRST}, {"by": {}}):
        with pytest.raises(ValueError, match="malformed state"):
            decode(json.dumps({**blob, "sources": bad}))


def _principal_rows(entries: list[StateEntry], names: list[str]) -> list[dict]:
    """``PrincipalRows.rows`` of entries sharing span, first and last, laid out as it takes them."""
    span, first, last = entries[0].span, entries[0].first, entries[0].last
    writer = PrincipalRows(span, first, last, names)
    ids = {name: at for at, name in enumerate(names)}
    text_rank = writer.text_order(max((len(e.bins) and max(e.bins)) for e in entries) // span + 1)
    name_rank = writer.name_order()
    bounds, fail_bounds, offsets, failures, widths, apis, bins = [0], [0], [], [], [], [], []
    for entry in entries:
        cells = sorted(
            ((start - first) // span, n, entry.distinct_apis[start]) for start, n in entry.bins.items()
        )
        cells.sort(key=lambda cell: text_rank[cell[0]])
        offsets += [cell[0] for cell in cells]
        failures += [cell[1] for cell in cells]
        widths += [cell[2] for cell in cells]
        bounds.append(len(offsets))
        fails = sorted(entry.first_failures.items(), key=lambda item: name_rank[ids[item[0]]])
        apis += [ids[api] for api, _ in fails]
        bins += [(start - first) // span for _, start in fails]
        fail_bounds.append(len(apis))
    labels = [((entry.account, entry.principal), at) for at, entry in enumerate(entries)]
    return writer.rows(labels, bounds, offsets, failures, widths, fail_bounds, apis, bins)


def test_principal_rows_from_columns_are_what_encode_writes_of_each_entry() -> None:
    """The state pass writes principals' rows from columns (``PrincipalRows``): byte for byte
    each entry's ``encode``, with offsets ordered as text (2, 10, 100), widths of 1 left out,
    first failures by API name (escaped names, offsets before ``first``), more first failures
    than a row keeps, a principal without any, and one without bins (no row)."""
    span = 3600
    names = ["GetUser", 'Odd"Api', "ListRoles", "Zeta\u00e9", "AssumeRole"] + [
        f"Api{i:03d}" for i in range(300)
    ]
    wide = {FIRST + span * offset: offset % 4 or 1 for offset in (0, 2, 10, 100, 11, 1)}
    entries = [
        StateEntry(
            span,
            FIRST,
            FIRST + 120 * span,
            "111",
            USER,
            {t: 5 for t in wide},
            wide,
            {"ListRoles": FIRST - 3 * span, 'Odd"Api': FIRST + 10 * span, "GetUser": FIRST},
        ),
        StateEntry(
            span,
            FIRST,
            FIRST + 120 * span,
            "111",
            'arn:aws:iam::111:user/"q"\u00fc',
            {FIRST + 7 * span: 1},
            {FIRST + 7 * span: 1},
            {},
        ),
        StateEntry(span, FIRST, FIRST + 120 * span, "111", "nobody", {}, {}, {}),
        StateEntry(
            span,
            FIRST,
            FIRST + 120 * span,
            "222\u00e9",
            USER,
            {FIRST + 99 * span: 2},
            {FIRST + 99 * span: 2},
            {f"Api{i:03d}": FIRST + (i % 50) * span for i in range(300)},
        ),
    ]
    rows = _principal_rows(entries, names)
    assert rows == [encode(entry) for entry in entries if entry.bins]
    assert len(json.loads(rows[-1][STATE_FIELD])["first_failures"]) == FIRST_FAILURES_KEPT
