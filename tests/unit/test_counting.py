"""Counting: once per eventID, count rows that round-trip and merge across partitions, _raw read
when Splunk's extraction stopped early, junk counts named in one line, and no numpy."""

from __future__ import annotations

import ast
import base64
import copy
import csv
import io
import json
import os
import pathlib

import pytest
from iamspike import counting, countpacked, counttext, intake
from iamspike.cloudtrail import FIELDS, record_to_row
from iamspike.counting import COUNTS_FIELD, Tally
from iamspike.failures import AUTHORIZATION, ErrorClasses
from iamspike.state import account_state_key, state_key
from standin import scpv2

BIN = pathlib.Path(__file__).resolve().parents[2] / "bin"
PWNED = BIN.parent.parent / "shared" / "data" / "cloudtrail" / "pwnedlabs_incident_3252"
ACCT = "111122223333"
USER = f"arn:aws:iam::{ACCT}:user/alice"
T0 = 1_700_000_000 // 3600 * 3600


def tally(keep_ids: bool = False, count_field: str | None = None) -> Tally:
    counted = ErrorClasses.load().counter((AUTHORIZATION,))
    return Tally(3600, counted, (), count_field, keep_ids)


def event(n: int, api: str = "ListUsers", code: str = "AccessDenied", at: int = 0) -> dict:
    return {
        "eventTime": T0 + at,
        "eventID": f"id-{n}",
        "eventName": api,
        "eventSource": "iam.amazonaws.com",
        "errorCode": code,
        "recipientAccountId": ACCT,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2",
        "userIdentity": {"type": "IAMUser", "arn": USER, "accountId": ACCT},
    }


def rows_of(records: list[dict]) -> list[list[str]]:
    return [record_to_row(record) for record in records]


def encoded(t: Tally) -> tuple[list[str], list[list[str]]]:
    """The tally's count rows and range row as a chunk header and rows (as Splunk carries them)."""
    out = [row.to_row() for row in t.count_rows()] + [t.range_row()]
    header = sorted({key for row in out for key in row})
    return header, [[str(row.get(name, "")) for name in header] for row in out]


def index_of(header: list[str]) -> dict[str, int]:
    return {name: i for i, name in enumerate(header)}


# ------------------------------------------------------------------------------ the boundary
def _imports(module: str) -> set[str]:
    path = BIN / (module.replace(".", os.sep) + ".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    "start", ["iamspike.counting", "iamspike.intake", "iamspike.phases", "iamspike.options"]
)
def test_the_map_phase_imports_neither_numpy_nor_the_scorer(start) -> None:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in _imports(module):
            top = name.split(".")[0]
            assert top != "numpy", f"{module} imports {name}"
            if top == "iamspike" and name != "iamspike":
                todo.append(name)
    assert not seen & {"iamspike.scoring", "iamspike.baseline", "iamspike.results", "iamspike.engine"}


# ---------------------------------------------------------------------------- eventID de-dup
def test_a_resent_batch_cannot_raise_a_bin() -> None:
    batch = rows_of([event(n) for n in range(30)])
    once, twice = tally(), tally()
    once.add_rows(list(FIELDS), batch)
    twice.add_rows(list(FIELDS), batch)
    twice.add_rows(list(FIELDS), batch[:10])
    assert twice.counts == once.counts and sum(once.counts.values()) == 30


def test_events_without_an_eventid_are_each_counted() -> None:
    records = [dict(event(n), eventID="") for n in range(3)]
    t = tally()
    t.add_rows(list(FIELDS), rows_of(records + records))
    assert sum(t.counts.values()) == 6


# One chunk of raw events as a search passes them: fields missing from the header (no principalId,
# sessionIssuer, invokedBy or ConsoleLogin column), a quoted newline in a field, a row sent twice,
# an empty and an ISO _time, a success, a failure of another class, a failed console sign-in without
# an errorCode, a row without any identity.
ODD_HEADER = [
    "_time", "eventID", "eventName", "eventSource", "errorCode", "errorMessage", "recipientAccountId",
    "sourceIPAddress", "userAgent", "userIdentity.type", "userIdentity.arn", "userIdentity.accountId",
    "__mv_errorMessage",
]  # fmt: skip
IP, AGENT, IAM = "198.51.100.7", "aws-cli/2", "iam.amazonaws.com"


def _odd(when: str, event_id: str, api: str, code: str, message: str = "") -> list[str]:
    identity = ["IAMUser", USER, ACCT]
    return [when, event_id, api, IAM, code, message, ACCT, IP, AGENT, *identity, ""]


SIGN_IN = [ACCT, "203.0.113.9", "Mozilla/5.0", "IAMUser", USER, ACCT, ""]
ODD_ROWS = [
    _odd(str(T0 + 30), "id-1", "ListUsers", "AccessDenied", 'no "iam:ListUsers",\nsee'),
    _odd(str(T0 + 40), "id-1", "ListUsers", "AccessDenied"),  # sent twice
    _odd("", "id-2", "ListUsers", "AccessDenied"),
    _odd("2023-11-14T22:13:20Z", "id-3", "ListUsers", "AccessDenied"),
    _odd(str(T0 - 10), "id-4", "GetUser", ""),  # a success: widens the range, not counted
    _odd(str(T0 + 3700.5), "id-5", "GetUser", "AccessDenied"),
    _odd(str(T0 + 60), "id-6", "GetUser", "ThrottlingException"),  # not an authorization failure
    [str(T0 + 1200), "id-7", "ConsoleLogin", "signin.amazonaws.com", "", "Failed authentication", *SIGN_IN],
    [str(T0 + 1300), "", "ListRoles", IAM, "AccessDenied"] + [""] * 8,
]


def _state(t: Tally) -> tuple:
    return (
        list(t.counts.items()),
        list(t.slots.items()),
        list(t.services.items()),
        t.lo,
        t.hi,
        dict(t.skipped),
        t.rows,
        len(t.seen),
    )


def test_raw_events_are_counted_as_read_the_same_however_they_come() -> None:
    """The rows of an encoded chunk counted straight from the CSV reader, as a list, and one row per
    chunk give the same tally, and it is the hand-checked one."""
    body = scpv2.encode_csv(ODD_HEADER, ODD_ROWS).decode("utf-8")
    streamed, listed, one_by_one = tally(), tally(), tally()
    reader = csv.reader(io.StringIO(body, newline=""))
    header = next(reader)
    streamed.add_rows(header, reader)
    listed.add_rows(ODD_HEADER, [list(row) for row in ODD_ROWS])
    for row in ODD_ROWS:
        one_by_one.add_rows(ODD_HEADER, iter([list(row)]))
    assert _state(streamed) == _state(listed) == _state(one_by_one)
    console = ("signin.amazonaws.com", "ConsoleLogin", "ConsoleLoginFailure", "203.0.113.9", "Mozilla/5.0")
    assert list(streamed.counts.items()) == [
        ((T0, ACCT, USER, IAM, "ListUsers", "AccessDenied", IP, AGENT), 1),
        ((T0 + 3600, ACCT, USER, IAM, "GetUser", "AccessDenied", IP, AGENT), 1),
        ((T0, ACCT, USER, *console), 1),
        ((T0, "unknown", "unknown", IAM, "ListRoles", "AccessDenied", "", ""), 1),
    ]
    assert streamed.slots[(T0, ACCT, USER, IAM)] == 1  # minute 0 of 5-minute slots
    assert streamed.slots[(T0, ACCT, USER, "signin.amazonaws.com")] == 1 << 4  # 20 minutes in
    assert (streamed.lo, streamed.hi) == (T0 - 10, T0 + 3700.5)  # the success's time too
    assert dict(streamed.skipped) == {intake.NO_TIME: 2} and streamed.rows == len(ODD_ROWS)


def test_raw_events_without_a_time_column_are_each_named() -> None:
    t = tally()
    header = [name for name in ODD_HEADER if name != "_time"]
    t.add_rows(header, iter([row[1:] for row in ODD_ROWS]))
    assert not t.counts and dict(t.skipped) == {intake.NO_TIME: len(ODD_ROWS)} and t.rows == len(ODD_ROWS)


# --------------------------------------------------------------------------------- count rows
def test_count_rows_carry_keys_and_round_trip() -> None:
    records = [event(n, api=f"Api{n % 3}") for n in range(12)] + [event(99, code="ThrottlingException")]
    mapped = tally(keep_ids=True)
    mapped.add_rows(list(FIELDS), rows_of(records))
    (cell,) = mapped.count_rows()
    row = cell.to_row()
    assert (row["_time"], row["account"], row["principal"], row["failures"]) == (T0, ACCT, USER, 12)
    assert row["state_key"] == state_key(ACCT, USER)
    assert row["account_state_key"] == account_state_key(ACCT)
    assert str(row[COUNTS_FIELD]).startswith("v3")
    header, rows = encoded(mapped)
    reduced = tally()
    reduced.add_count_rows(index_of(header), rows)
    direct = tally()
    direct.add_rows(list(FIELDS), rows_of(records))
    assert reduced.counts == direct.counts and reduced.services == direct.services
    assert (reduced.lo, reduced.hi) == (direct.lo, direct.hi)


def test_a_principal_over_several_bins_round_trips_in_one_v4_row() -> None:
    records = [event(n, api=f"Api{n % 3}", at=3600 * (n % 4) * 5) for n in range(12)]  # bins 0, 5, 10, 15
    records += [
        dict(event(50, at=3600 * 5), userIdentity={"type": "AWSService", "invokedBy": "x.amazonaws.com"})
    ]
    first, second = tally(keep_ids=True), tally(keep_ids=True)
    first.add_rows(list(FIELDS), rows_of(records[:9]))
    second.add_rows(list(FIELDS), rows_of(records[6:]))  # 6..8 re-sent to another indexer
    out = []
    for part in (first, second):
        out += [*counting.wire_rows(part.count_rows()), part.range_row()]
    user_rows = [row for row in out if row["principal"] == USER]
    assert [str(row[COUNTS_FIELD])[:2] for row in user_rows] == ["v4", "v4"]
    assert [row["_time"] for row in user_rows] == [T0, T0]  # each send's first bin
    assert sum(row["failures"] for row in user_rows) == 15 and user_rows[0]["state_key"] == state_key(
        ACCT, USER
    )
    service, parts = counttext.split_parts(str(user_rows[0][COUNTS_FIELD]))
    assert not service and [offset for offset, _ in parts] == [0, 18000, 36000, 54000]
    header = sorted({key for row in out for key in row})
    reduced = tally()
    reduced.add_count_rows(index_of(header), [[str(row.get(name, "")) for name in header] for row in out])
    reduced.drop_duplicates()
    direct = tally()
    direct.add_rows(list(FIELDS), rows_of(records))
    assert reduced.counts == direct.counts and reduced.services == direct.services
    assert (reduced.lo, reduced.hi) == (direct.lo, direct.hi) and not reduced.skipped


def test_an_event_counted_by_two_partitions_counts_once() -> None:
    records = [event(n) for n in range(20)]
    first, second = tally(keep_ids=True), tally(keep_ids=True)
    first.add_rows(list(FIELDS), rows_of(records[:12]))
    second.add_rows(list(FIELDS), rows_of(records[8:]))  # 8..11 were re-sent to another indexer
    reduced = tally()
    for part in (first, second, first):
        header, rows = encoded(part)
        reduced.add_count_rows(index_of(header), rows)
    reduced.drop_duplicates()
    assert sum(reduced.counts.values()) == 20
    header, rows = encoded(second)  # a fourth copy after the first settlement
    reduced.add_count_rows(index_of(header), rows)
    reduced.drop_duplicates()
    assert sum(reduced.counts.values()) == 20


def test_a_copy_counted_after_the_counts_were_sent_still_counts_once() -> None:
    records = [event(n) for n in range(10)]
    mapped = tally(keep_ids=True)
    mapped.add_rows(list(FIELDS), rows_of(records[:6]))
    header, rows = encoded(mapped)
    mapped.clear_counts()  # sent early (a large partition), eventIDs forgotten
    assert not mapped.seen
    mapped.add_rows(list(FIELDS), rows_of(records[3:]))  # 3..5 re-sent to this indexer
    later_header, later_rows = encoded(mapped)
    reduced = tally()
    reduced.add_count_rows(index_of(header), rows)
    reduced.add_count_rows(index_of(later_header), later_rows)
    reduced.drop_duplicates()
    assert sum(reduced.counts.values()) == 10


def test_unreadable_count_rows_are_skipped_and_named() -> None:
    t = tally()
    t.add_count_rows(
        index_of(["_time", "account", "principal", COUNTS_FIELD]), [[str(T0), ACCT, USER, "v9[]"]]
    )
    assert t.counts == {} and t.warning() == "skipped 1 row with unreadable iamspike_counts"


# ------------------------------------------------------------------------ extraction cut short
@pytest.mark.skipif(not PWNED.is_dir(), reason="shared CloudTrail sets not present")
def test_a_record_past_splunks_extraction_limits_counts_under_its_account_and_principal() -> None:
    records = scpv2.load_cloudtrail(str(PWNED))
    temp_user = "arn:aws:iam::107513503799:user/temp-user"
    chosen = (
        r
        for r in records
        if r.get("errorCode") == "AccessDenied" and r["userIdentity"].get("arn") == temp_user
    )
    record = copy.deepcopy(next(chosen))
    record["requestParameters"] = {f"filter{n:03d}": "x" * 40 for n in range(120)}  # > 5,000 B, > 100
    record["userIdentity"]["accountId"] = "999999999999"  # a caller from another account
    event = scpv2.cut_extraction(record)
    assert len(event["_raw"]) > scpv2.EXTRACTION_CUTOFF
    assert "eventID" not in event and "recipientAccountId" not in event and event.get("errorCode")
    header = sorted(event)
    expected = tally()
    expected.add_records([record])
    got = tally()
    got.add_rows(header, [[str(event[name]) for name in header]] * 2)  # sent twice
    assert got.counts == expected.counts
    ((_, account, principal, *_),) = got.counts
    assert (account, principal) == ("107513503799", temp_user)


# ------------------------------------------------------------------------- pre-aggregated rows
def test_numeric_junk_in_count_field_is_counted_or_skipped_in_one_line() -> None:
    header = ["_time", "account", "principal", "eventName", "n"]
    values = ["3", "abc", "", "nan", "inf", "-inf", "-2", "0", "1e300", "2.0"]
    t = tally(count_field="n")
    t.add_rows(header, [[str(T0), ACCT, USER, f"Api{i}", v] for i, v in enumerate(values)])
    assert sum(t.counts.values()) == 5
    assert t.warning() == (
        "skipped 4 rows with an absurd count, 2 with a non-numeric count, 2 with a zero or negative count"
    )


def test_aggregated_rows_are_counted_as_read_and_every_time_widens_the_range() -> None:
    """One pass over a one-shot iterator: a row whose code is not counted still widens the range,
    a row without a usable _time is named first (before the count problems, on a tie), and the
    rows read are the rows given."""
    header = ["_time", "account", "principal", "errorCode", "count"]
    rows = [
        [str(T0 + 10), ACCT, USER, "AccessDenied", "2"],
        [str(T0 - 7200), ACCT, USER, "ThrottlingException", "5"],  # not counted, still a time
        ["", ACCT, USER, "AccessDenied", "1"],
        ["1e300", ACCT, USER, "AccessDenied", "1"],
        [str(T0 + 20), ACCT, USER, "AccessDenied", "x"],
        [str(T0 + 30), ACCT, USER, "AccessDenied", "-1"],
        [str(T0 + 3600), ACCT, USER, "AccessDenied", "3"],
    ]
    t = tally(count_field="count")
    t.add_rows(header, iter(rows))
    assert t.rows == len(rows)
    assert (t.lo, t.hi) == (T0 - 7200, T0 + 3600)
    assert sorted((start, n) for (start, *_), n in t.counts.items()) == [(T0, 2), (T0 + 3600, 3)]
    assert t.warning() == (
        "skipped 2 rows with no usable _time, 1 with a non-numeric count, 1 with a zero or negative count"
    )
    assert t.services == {(ACCT, USER): False}


def test_aggregated_rows_repeating_a_time_or_count_text_are_each_read_alike() -> None:
    """The intake keeps what a _time or count text gave (a guard on that cache: every repeat of
    a text, usable or not, counts or is skipped as its first did)."""
    header = ["_time", "account", "principal", "eventName", "count"]
    rows = [[str(T0 + 5), ACCT, USER, "GetObject", "2"], ["", ACCT, USER, "GetObject", "2"]] * 3
    rows += [[str(T0 + 5), ACCT, USER, "GetObject", "x"], [str(T0 + 5), ACCT, USER, "GetObject", "1.6"]] * 2
    t = tally(count_field="count")
    t.add_rows(header, rows)
    assert t.counts == {(T0, ACCT, USER, "", "GetObject", "", "", ""): 6 + 2 * 2}
    assert t.warning() == "skipped 3 rows with no usable _time, 2 with a non-numeric count"


def test_aggregated_rows_without_the_count_field_name_it() -> None:
    t = tally(count_field="hits")
    t.add_rows(["_time", "account", "principal", "count"], [[str(T0), ACCT, USER, "4"]])
    assert t.counts == {}
    (message,) = t.messages
    assert "count_field=hits" in message and "missing: hits" in message


def test_count_row_text_v3_sums_up_the_cell_then_names_each_field_once() -> None:
    """... and the profile ends with the minutes of each event source (P39): IAM's failures at
    :00, :07 and :59 of the hour set the bits of its 5-minute slots 0, 1 and 11 (``803``)."""
    mapped = tally(keep_ids=True)
    records = [event(1), event(2, at=420), event(3, api="GetUser", at=3599), dict(event(4), eventID="")]
    mapped.add_rows(list(FIELDS), rows_of(records))
    (cell,) = mapped.count_rows()
    text = str(cell.to_row()[COUNTS_FIELD])
    digests = base64.b64encode(b"".join(counttext.digest(f"id-{n}") for n in (1, 2, 3))).decode()
    assert text == (
        f"v30;4;0;iam.amazonaws.com^GetUser|ListUsers^AccessDenied^803;{digests};"
        "iam.amazonaws.com|ListUsers|AccessDenied|198.51.100.7|aws-cli/2|3|2;^|GetUser|^|^|^|1|"
    )
    assert counttext.decode_counts(text)[2] == {"iam.amazonaws.com": 0x803}
    assert len(digests) == 32  # 3 x 64 bits: 10.7 characters an event (v1: 16 hex digits)


def test_an_empty_field_stays_empty_rather_than_same_as_before() -> None:
    entries = [
        ("iam.amazonaws.com", "A", "AccessDenied", "", "", 1, ""),
        ("iam.amazonaws.com", "B", "", "", "", 2, ""),
    ]
    entries = [(*entry[:6], b"") for entry in entries]
    text = counting.CountRow(T0, ACCT, USER, False, entries).counts_text()
    assert (
        text
        == "v30;3;0;iam.amazonaws.com^A|B^|AccessDenied;;iam.amazonaws.com|A|AccessDenied|||1|0;^|B||||2|0"
    )
    assert counttext.decode_counts(text) == (False, entries, {})


def test_each_event_source_has_its_minutes_in_the_profile_and_rows_without_them_still_read() -> None:
    """Masks follow the sources' order in the profile (sorted as written, escaped); a profile
    written before the masks group (three groups) reads as no minutes; a masks group that does
    not match the sources is no profile of ours."""
    entries = [
        ("s3.amazonaws.com", "GetObject", "AccessDenied", "", "", 1, b""),
        ("a^b", "X", "AccessDenied", "", "", 2, b""),
    ]
    text = counting.CountRow(
        T0, ACCT, USER, False, entries, {"s3.amazonaws.com": 0x400, "a^b": 3}
    ).counts_text()
    assert text.split(";")[3] == "a%5Eb|s3.amazonaws.com^GetObject|X^AccessDenied^003|400"
    assert counttext.decode_counts(text) == (False, entries, {"a^b": 3, "s3.amazonaws.com": 0x400})
    old = counting.CountRow(T0, ACCT, USER, False, entries).counts_text()  # no masks: three groups
    assert old.split(";")[3] == "a%5Eb|s3.amazonaws.com^GetObject|X^AccessDenied"
    assert counttext.read_profile(old.split(";")[3])[3] == () and counttext.decode_counts(old)[2] == {}
    for bad in ("003", "003|400|001", "003|1000", "003|"):
        with pytest.raises(ValueError):
            counttext.read_profile(f"a%5Eb|s3.amazonaws.com^GetObject|X^AccessDenied^{bad}")


AWKWARD = ["", "^", "%", "%41", "a|b;c", 'say "hi", then\r\nleave', "Ünïcødé ✓", "^^|%;", " "]


@pytest.mark.parametrize("value", AWKWARD)
def test_count_rows_round_trip_any_text_in_any_field(value) -> None:
    packed = counttext.digest("id-1") + counttext.digest("id-2")
    base = ["iam.amazonaws.com", "ListUsers", "AccessDenied", "198.51.100.7", "aws-cli/2", 2]
    for field_at in range(5):
        entry = list(base)
        entry[field_at] = value
        sent = [(*entry, packed)] * 2 + [(value,) * 5 + (1, b"")]
        text = counting.CountRow(T0, ACCT, USER, True, sent).counts_text()
        assert '"' not in text and "," not in text and "\n" not in text  # no CSV quoting needed
        assert counttext.decode_counts(text) == (True, [(*entry, packed)] * 2 + [(value,) * 5 + (1, b"")], {})


def as_v2(cell: counting.CountRow) -> str:
    """The cell's text as an indexer on v2 wrote it (per-entry base64url digests, no summary)."""
    special = '%|;^,"\r\n'
    entries = [
        "|".join(
            [
                *("".join(f"%{ord(c):02X}" if c in special else c for c in text) for text in entry[:5]),
                str(entry[5]),
                base64.urlsafe_b64encode(entry[6]).decode(),
            ]
        )
        for entry in cell.entries
    ]
    return ";".join([f"v2{int(cell.service)}", *entries])


def as_v1(cell: counting.CountRow) -> str:
    entries = [[*entry[:6], entry[6].hex()] for entry in cell.entries]
    return "v1" + json.dumps([int(cell.service), entries], separators=(",", ":"))


@pytest.mark.parametrize("older", [as_v1, as_v2])
def test_older_count_rows_are_read_and_deduplicated_with_v3(older) -> None:
    records = [event(n, api=f"Api{n % 2}") for n in range(10)]
    newer = tally(keep_ids=True)
    newer.add_rows(list(FIELDS), rows_of(records[:6]))
    header, rows = encoded(newer)
    old = tally(keep_ids=True)  # an indexer still on an older text: 4..9, so 4 and 5 were sent twice
    old.add_rows(list(FIELDS), rows_of(records[4:]))
    old_rows = [{**cell.to_row(), COUNTS_FIELD: older(cell)} for cell in old.count_rows()]
    version = str(old_rows[0][COUNTS_FIELD])[:2]
    old_range = {**old.range_row(), COUNTS_FIELD: version + str(old.range_row()[COUNTS_FIELD])[2:]}
    reduced = tally()
    reduced.add_count_rows(index_of(header), rows)
    reduced.add_count_rows(
        index_of(header), [[str(row.get(name, "")) for name in header] for row in old_rows]
    )
    reduced.add_count_rows(index_of(header), [[str(old_range.get(name, "")) for name in header]])
    reduced.drop_duplicates()
    direct = tally()
    direct.add_rows(list(FIELDS), rows_of(records))
    assert reduced.counts == direct.counts and sum(reduced.counts.values()) == 10
    assert (reduced.lo, reduced.hi) == (direct.lo, direct.hi) and not reduced.skipped


@pytest.mark.parametrize(
    "text",
    [
        "v2",
        "v20",
        "v20;a|b|c|d|e|1",
        "v20;a|b|c|d|e|x|",
        "v29;a|b|c|d|e|1|",
        "v20;a|b|c|d|e|1|AAAA",  # 3 bytes: not a whole 64-bit digest
        "v30;1;0;a^b^c;AAAA;a|b|c|d|e|1|",  # the same in v3
        "v30;2;0;a^b^c;;a|b|c|d|e|1|0",  # failures other than the entries'
        "v30;1;0;a^b^c;;a|b|c|d|e|1",
        "v31",
        "v1[0,[[1]]]",
        'v1[0,[["a","b","c","d","e",1,"zz"]]]',
        "v2{]",
        'v3{"lo":' + "[" * 100_000,  # a range row nested past json's recursion limit
        "v1" + "[" * 100_000,
        # a profile's masks (a source's 5-minute slots) other than 3 hex digits a source
        "v30;1;0;a^b^c^zzz;;a|b|c|d|e|1|0",
        "v30;1;0;a^b^c^8;;a|b|c|d|e|1|0",
        "v30;1;0;a^b^c^0801;;a|b|c|d|e|1|0",
        "v30;1;0;a^b^c^0x1;;a|b|c|d|e|1|0",
        "v30;1;0;a^b^c^ 01;;a|b|c|d|e|1|0",
        "v30;1;0;a^b^c^;;a|b|c|d|e|1|0",
        "v30;1;0;a^b^c^001^002;;a|b|c|d|e|1|0",
        "v30;1;0;a^b^c^001|002;;a|b|c|d|e|1|0",
        "v30;1;0;a|s^b^c^801|-01;;a|b|c|d|e|1|0",  # a negative mask: every slot, read as is before
    ],
)
def test_broken_count_texts_are_skipped_whole_and_named(text) -> None:
    t = tally()
    t.add_count_rows(index_of(["_time", "account", "principal", COUNTS_FIELD]), [[str(T0), ACCT, USER, text]])
    assert t.counts == {} and t.warning() == "skipped 1 row with unreadable iamspike_counts"


def test_count_row_texts_are_kept_once_per_value() -> None:
    mapped = tally(keep_ids=True)
    mapped.add_rows(
        list(FIELDS), rows_of([event(n, api=f"Api{n % 4}", at=3600 * (n % 3)) for n in range(24)])
    )
    header, rows = encoded(mapped)
    reduced = tally()
    reduced.add_count_rows(index_of(header), rows)
    keys = list(reduced.counts)
    assert len(keys) == 12
    for at in range(1, 8):  # account, principal, source, API, code, IP, agent: one object each
        assert len({id(key[at]) for key in keys}) == len({key[at] for key in keys})


def test_an_accounts_principals_are_packed_in_bounded_v6_rows_that_split_back() -> None:
    """One send: 40 principals of one account (names with the text's separators in them) go in
    two v6 rows (32 and 8), each member splitting back into its own v3/v4 text; a principal whose
    text alone passes MEMBER_BYTES and another account's one principal keep their own rows."""
    t = tally(keep_ids=True)
    records = []
    for n in range(40):
        arn = f"arn:aws:iam::{ACCT}:user/u{n};%:^|,x"
        for k in range(1 + n % 3):  # 1-3 bins
            records.append(
                dict(event(100 * n + k, at=3600 * k), userIdentity={"type": "IAMUser", "arn": arn})
            )
    big = f"arn:aws:iam::{ACCT}:user/big"
    records += [
        dict(
            event(10_000 + k, at=1800),
            sourceIPAddress=f"10.0.{k // 256}.{k % 256}",
            userAgent=f"agent-{k}-" + "a" * 60,
        )
        | {"userIdentity": {"type": "IAMUser", "arn": big}}
        for k in range(1_000)
    ]
    other = "444455556666"
    records.append(
        dict(
            event(20_000),
            recipientAccountId=other,
            userIdentity={"type": "Root", "arn": f"arn:aws:iam::{other}:root", "accountId": other},
        )
    )
    t.add_rows(list(FIELDS), rows_of(records))
    single = counting.wire_rows(t.count_rows())
    assert len(single) == 42
    packed = counting.packed_rows(single)
    v5 = [row for row in packed if str(row[COUNTS_FIELD]).startswith("v6")]
    assert [len(countpacked.split_members(str(row[COUNTS_FIELD]))) for row in v5] == [32, 8]
    alone = [row for row in packed if row not in v5]
    assert sorted(row["principal"] for row in alone) == sorted([big, f"arn:aws:iam::{other}:root"])
    assert len(str(next(r for r in alone if r["principal"] == big)[COUNTS_FIELD])) > counting.MEMBER_BYTES
    assert all(row["state_key"] == state_key(row["account"], row["principal"]) for row in alone)
    members = [
        (row["_time"] + offset, row["account"], principal, text)
        for row in v5
        for offset, principal, text in countpacked.split_members(str(row[COUNTS_FIELD]))
    ]
    assert members == [
        (row["_time"], row["account"], row["principal"], row[COUNTS_FIELD])
        for row in single
        if row not in alone
    ]
    assert {text[:2] for *_, text in members} == {"v3", "v4"}
    for row in v5:
        names = [principal for _, principal, _ in countpacked.split_members(str(row[COUNTS_FIELD]))]
        assert row["state_keys"] == " ".join(state_key(ACCT, name) for name in names)
        assert row["account_state_key"] == account_state_key(ACCT) and row["principal"] == ""
        assert row["_time"] == min(r["_time"] for r in single if r["principal"] in names)
        assert row["failures"] == sum(r["failures"] for r in single if r["principal"] in names)
        assert len(str(row[COUNTS_FIELD])) <= counting.MEMBER_BYTES + 100


def three_members() -> list[counting.CountRow]:
    """Cells of three principals of one account (two over two bins, one with a name holding the
    texts' separators; masks or none)."""
    entries = [("iam.amazonaws.com", "GetUser", "AccessDenied", "1.2.3.4", "a;b", 2, b"\x01" * 16)]
    cells = [
        counting.CountRow(T0 + 3600 * h, ACCT, principal, service, entries, masks)
        for h, principal, service, masks in [
            (0, USER, False, {"iam.amazonaws.com": 5}),
            (2, USER, False, {}),
            (1, "odd|name;with^%", True, {"iam.amazonaws.com": 0xFFF}),
            (3, "third", False, {}),
            (5, "third", False, {"iam.amazonaws.com": 1}),
        ]
    ]
    return cells


def test_a_v5_texts_member_columns_are_its_members_parts() -> None:
    """``member_columns`` reads from one split what ``split_members``, then ``part_columns`` (a
    ``v4`` member) or ``split(";", 5)`` (a ``v3`` member) read; a text either refuses, it
    refuses."""
    cells = three_members()
    (row,) = counting.packed_rows(counting.wire_rows(cells))
    text = countpacked.encode_members(countpacked.split_members(str(row[COUNTS_FIELD])))  # as v5
    members, columns, length = countpacked.member_columns(text)
    expected_members, expected_parts = [], []
    for offset, principal, member in countpacked.split_members(text):
        if member[:2] == "v4":
            _head, offsets, *fields = counttext.part_columns(member)
            expected_parts += [(offset + shift, *part) for shift, *part in zip(offsets, *fields)]
        else:
            expected_parts.append((offset, *member.split(";", 5)[1:]))
        expected_members.append((offset, principal, member[:3]))
    assert [member[:3] for member in members] == expected_members
    assert [member[3] for member in members] == [2, 1, 2]
    assert length == sum(len(member) for _, _, member in countpacked.split_members(text))
    assert list(zip(*columns)) == expected_parts
    assert members[1][1] == "odd|name;with^%" and members[1][2] == "v31"
    for bad in (
        "v5",
        "v5;2:0:p",
        "v5;x:0:p;v30;1",
        "v5;2:-1:p;v30;1",
        "v5;3:0:p;v30;1",
        "v5;2:0:p;v99;1",
        "v5;2:0:p%zz;v30;1;0;a^b^c;;a|b|c|d|e|1|",
        "v5;5:0:p;v30;1;0;a^b^c;",  # a v3 member of five fields
        "v5;2:0:p;v40;0:1",
        "v5;9:0:p;v40;3600:1;1;0;a^b^c;;a|b|c|d|e|1|",  # the first part is not at the member's time
        "v5;15:0:p;v40;0:1;1;0;a^b^c;;a|b|c|d|e|1|;0:1;1;0;a^b^c;;a|b|c|d|e|1|",  # a bin twice
        "v5;9:0:p;v40;0:2;1;0;a^b^c;;a|b|c|d|e|1|",  # more entries than the member has
    ):
        with pytest.raises((ValueError, IndexError)):
            countpacked.member_columns(bad)


def test_a_v6_text_splits_back_into_its_members_texts_and_refuses_damage() -> None:
    """``encode_columns`` then ``split_members`` gives the members' ``v3``/``v4`` texts back (masks
    or none, names with the text's separators); a text cut or with a column of other numbers than
    its parts' is refused."""
    single = counting.wire_rows(three_members())
    (row,) = counting.packed_rows(single)
    text = str(row[COUNTS_FIELD])
    assert text[:3] == "v6;"
    first = min(r["_time"] for r in single)
    assert [(first + o, p, t) for o, p, t in countpacked.split_members(text)] == [
        (r["_time"], r["principal"], r[COUNTS_FIELD]) for r in single
    ]
    fields = text.split(";")
    damages = [(1, "v30"), (3, "x"), (4, "1|1|1"), (5, "0|0|1|3600"), (6, "2|2|2"), (7, "0|0|-1|0"), (8, "2")]
    for at, value in damages:
        damaged = ";".join([*fields[:at], value, *fields[at + 1 :]])
        with pytest.raises(ValueError):
            countpacked.split_members(damaged)
    for cut in range(3, len(text) - 1, 7):
        with pytest.raises(ValueError):
            countpacked.split_members(text[:cut])
