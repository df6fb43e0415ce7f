"""The search head's reading of count rows (iamspike.countrows): summaries at intake, digests
compared only where a cell came in several rows, older texts read whole, and the answer always the
one-process answer."""

from __future__ import annotations

import base64
import binascii
import json
import random
import re

import pytest
from iamspike.cloudtrail import FIELDS, record_to_row
from iamspike.countcolumns import read_columns as numpy_read_columns
from iamspike.counting import COUNTS_FIELD, Tally
from iamspike.countpacked import encode_columns, encode_members, split_members
from iamspike.countpacked import read_columns as counttext_read_columns
from iamspike.countrows import CountRows
from iamspike.counttext import (
    decode_counts,
    read_profile,
    split_parts,
    unescape,
)
from iamspike.engine import Detector, parse_options, run
from iamspike.failures import AUTHORIZATION, ErrorClasses
from iamspike.phases import MapPhase
from iamspike.state import state_key

HOUR = 3600
T0 = 1_788_739_200
ACCT = "111122223333"
APIS = ["ListUsers", "ListRoles", "GetUser", "ListKeys"]
IAM = "iam.amazonaws.com"
ENTRY = f"{IAM}|GetUser|AccessDenied|198.51.100.9|aws-cli/2|1|0"  # one failure, no eventID


def event(n: int, hour: int, user: str, api: str, code: str = "AccessDenied") -> dict:
    return {
        "eventTime": T0 + hour * HOUR + n % 3000,
        "eventID": f"{user}-{hour}-{n}",
        "eventName": api,
        "eventSource": "iam.amazonaws.com",
        "errorCode": code,
        "recipientAccountId": ACCT,
        "sourceIPAddress": f"198.51.100.{n % 3}",
        "userAgent": "aws-cli/2" if n % 5 else 'Boto3/1.34 "quoted", with; odd|chars',
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/{user}", "accountId": ACCT},
    }


def organisation() -> list[dict]:
    """Six users over 48 hours, a few failures an hour each, and a burst on new APIs at hour 40."""
    events = []
    for hour in range(48):
        for u in range(6):
            for n in range(1 + (u + hour) % 4):
                events.append(event(n, hour, f"u{u}", APIS[n % 2]))
    events += [event(n, 40, "u1", APIS[n % 4]) for n in range(100, 160)]
    events += [event(n, 41, "u2", APIS[0], "ThrottlingException") for n in range(200, 210)]
    return events


def as_rows(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    return list(FIELDS), [record_to_row(record) for record in records]


def table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = sorted({key for row in rows for key in row})
    return header, [[str(row.get(name, "")) for name in header] for row in rows]


def mapped(parts: list[list[dict]], args: list[str] = ()) -> list[dict]:
    out = []
    for part in parts:
        mapper = MapPhase(parse_options(list(args)))
        mapper.add_rows(*as_rows(part))
        out += mapper.results()
    return out


def unpacked(shipped: list[dict]) -> list[dict]:
    """Count rows with each ``v5``/``v6`` row replaced by its members, the ``v3``/``v4`` rows they
    were."""
    out = []
    for row in shipped:
        if str(row[COUNTS_FIELD])[:2] not in ("v5", "v6"):
            out.append(row)
            continue
        for offset, principal, text in split_members(str(row[COUNTS_FIELD])):
            member = {k: v for k, v in row.items() if k != "state_keys"}
            member.update({"_time": int(row["_time"]) + offset, "principal": principal, COUNTS_FIELD: text})
            member["state_key"] = state_key(str(row["account"]), principal)
            out.append(member)
    return out


def as_v5(shipped: list[dict]) -> list[dict]:
    """The rows with each ``v6`` row as the ``v5`` row an indexer before ``v6`` sent."""
    return [
        {**row, COUNTS_FIELD: encode_members(split_members(str(row[COUNTS_FIELD])))}
        if str(row[COUNTS_FIELD])[:2] == "v6"
        else row
        for row in shipped
    ]


def mapped_cells(parts: list[list[dict]]) -> list[dict]:
    """The map phases' counts as one v3 row per (bin, account, principal), as a v3 indexer sent them."""
    out = []
    for part in parts:
        mapper = MapPhase(parse_options([]))
        mapper.add_rows(*as_rows(part))
        out += [cell.to_row() for cell in mapper.tally.count_rows()] + [mapper.tally.range_row()]
    return out


def deal(events: list[dict], n: int, seed: int = 1) -> list[list[dict]]:
    rng = random.Random(seed)
    parts: list[list[dict]] = [[] for _ in range(n)]
    for record in events:
        parts[rng.randrange(n)].append(record)
    return parts


def reported(rows: list[dict], args: list[str] = ()) -> tuple[Detector, list[dict]]:
    detector = Detector(parse_options(["show=all", *args]))
    detector.add_rows(*table(rows))
    return detector, detector.results()


def test_a_cell_split_over_indexers_with_a_resent_event_gives_the_one_process_answer() -> None:
    events = organisation()
    parts = deal(events, 3)
    resent = [
        e
        for e in parts[0]
        if e["userIdentity"]["arn"].endswith("/u1") and e["eventTime"] // HOUR == (T0 // HOUR) + 40
    ]
    parts[1] += resent[:5]  # a forwarder re-sent part of a batch to another indexer
    no_id = [dict(event(n, 40, "u1", "GetUser"), eventID="") for n in range(300, 303)]
    parts[2] += no_id  # counted, never de-duplicated (no eventID)
    events = events + no_id
    detector, got = reported(mapped(parts))
    assert got == run(events, parse_options(["show=all"]))
    assert detector.results() == got  # asked twice: nothing moved or counted twice
    rows = detector.count_rows
    assert len(rows) > 0 and not rows.fast.all() and rows.fast.sum() > len(rows) / 2
    assert any(r["principal"].endswith("/u1") and r["is_spike"] for r in got)


def test_state_rows_take_copies_off_without_reading_entries() -> None:
    """show=state keeps a cell whose rows share digests as rows (copies taken off its failures);
    its state rows are the one-process ones, with and without a cell the Tally also holds."""
    events = organisation()
    parts = deal(events, 3)
    resent = [e for e in parts[0] if e["eventTime"] // HOUR == (T0 // HOUR) + 40]
    parts[1] += resent[:7]
    expected = run(events, parse_options(["show=state"]))
    detector = Detector(parse_options(["show=state"]))
    detector.add_rows(*table(mapped(parts)))
    assert detector.results() == expected
    assert detector.count_rows.fast.all() and detector.tally.counts == {}
    older = mapped_cells(parts[:1])
    for row in older:
        row[COUNTS_FIELD] = _v2(row[COUNTS_FIELD]) if row["failures"] else row[COUNTS_FIELD]
    mixed = Detector(parse_options(["show=state"]))
    mixed.add_rows(*table(older + mapped(parts[1:])))
    assert mixed.results() == expected and not mixed.count_rows.fast.all()


def test_v3_rows_are_counted_from_their_summaries_without_a_key_per_entry() -> None:
    detector = Detector()
    detector.add_rows(*table(mapped(deal(organisation(), 2))))
    rows = detector.count_rows
    assert len(rows) > 100 and detector.tally.counts == {}  # no per-key dict entry
    assert sum(rows.failures) == len(organisation()) - 10  # the throttled calls are not counted


def test_a_copy_counted_after_an_early_send_counts_once() -> None:
    events = organisation()
    mapper = MapPhase(parse_options([]))
    mapper.add_rows(*as_rows(events[: len(events) // 2]))
    early = [row.to_row() for row in mapper.tally.count_rows()]
    mapper.tally.clear_counts()  # what take() does past FLUSH_KEYS
    mapper.add_rows(*as_rows(events[len(events) // 2 - 40 :]))  # 40 events re-sent after the send
    _, got = reported(early + mapper.results())
    assert got == run(events, parse_options(["show=all"]))


def _v2(text: str) -> str:
    """A v3 text as an indexer on v2 wrote it (docs/distributed.md, written out here)."""
    head, _failures, _console, _profile, digests, *parts = text.split(";")
    packed, at, out = base64.b64decode(digests), 0, []
    for part in parts:
        *fields, count, n = part.split("|")
        end = at + 8 * int(n or count)
        out.append("|".join([*fields, count, base64.urlsafe_b64encode(packed[at:end]).decode()]))
        at = end
    return ";".join([f"v2{head[2:]}", *out])


def _v1(text: str) -> str:
    head, *parts = _v2(text).split(";")
    entries, previous = [], [""] * 5
    for part in parts:
        *fields, count, digests = part.split("|")
        fields = [previous[i] if value == "^" else value for i, value in enumerate(fields)]
        previous = fields
        unescaped = [re.sub("%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), f) for f in fields]
        entries.append([*unescaped, int(count), base64.urlsafe_b64decode(digests).hex()])
    return "v1" + json.dumps([int(head[2:]), entries])


def test_v1_v2_and_v3_rows_of_one_cell_are_merged_and_deduplicated() -> None:
    events = organisation()
    parts = deal(events, 3, seed=2)
    parts[2] += parts[0][::7]  # re-sent to the v1 indexer
    parts[1] += parts[0][1::9]  # and to the v2 indexer
    shipped = []
    for n, part in enumerate(parts):
        for row in mapped_cells([part]):
            text = str(row[COUNTS_FIELD])
            if n and text[2:3] != "{":
                text = _v2(text) if n == 1 else _v1(text)
            elif n:
                text = f"v{3 - n}" + text[2:]
            shipped.append({**row, COUNTS_FIELD: text})
    assert {str(r[COUNTS_FIELD])[:2] for r in shipped} == {"v1", "v2", "v3"}
    detector, got = reported(shipped)
    assert got == run(events, parse_options(["show=all"])) and detector.messages() == []


@pytest.mark.parametrize(
    "text",
    [
        "v30;1;0;a^b^c;AAAA;a|b|c|d|e|1|",  # 3 bytes of digests
        "v30;x;0;a^b^c;;a|b|c|d|e|1|",  # failures not a number
        "v30;0;0;a^b^c;;a|b|c|d|e|1|",  # no failures
        "v30;1;2;a^b^c;;a|b|c|d|e|1|",  # more console sign-ins than failures
        "v30;2147483648;0;a^b^c;;a|b|c|d|e|1|",  # more failures than a row can carry
        "v30;1;0;a^b;;a|b|c|d|e|1|",  # a profile of two lists
        "v30;1;0",
        "v39;1;0;a^b^c;;a|b|c|d|e|1|",
        "v30;1;0;a^b^c;;a|b|c|d|e\n|1|",
        "v42;0:1;1;0;a^b^c;;a|b|c|d|e|1|",  # no such service flag
        "v40;3600:1;1;0;a^b^c;;a|b|c|d|e|1|",  # the first part is not at _time
        "v40;0:1;1;0;a^b^c;;a|b|c|d|e|1|;0:1;1;0;a^b^c;;a|b|c|d|e|1|",  # a bin twice
        "v40;0:2;1;0;a^b^c;;a|b|c|d|e|1|",  # more entries than the text has
        "v40;0:1;1;0;a^b^c;;a|b|c|d|e|1|;3600:2;1;0;a^b^c;;a|b|c|d|e|1|",  # so has a later part
        "v40;0:1;1;0;a^b^c;;a|b|c|d|e|1|;3600:1;1;0;a^b^c;;a|b|c|d|e|1|;x",  # text after the parts
        "v40;0:1;1;0;a^b^c;;a|b|c|d|e|1|;1800:1;1;0;a^b^c;;a|b|c|d|e|1|;900:1",  # offsets not ascending
        "v40;0:0;1;0;a^b^c;;",  # a part without entries
        "v40;0-1;1;0;a^b^c;;a|b|c|d|e|1|",  # no entry count
        "v40",
        "v40;0:1;x;0;a^b^c;;a|b|c|d|e|1|",  # a part that is no v3 text
        "v30;1;0;a^b^c^001|002;;a|b|c|d|e|1|",  # masks for two sources, one source
        "v30;1;0;a^b^c^1000;;a|b|c|d|e|1|",  # minutes wider than a bin
        "v5",  # no member
        "v5;2:0:p",  # a member without its text
        "v5;x:0:p;v30;1",  # no field count
        "v5;2:-1:p;v30;1",  # a member before the row's _time
        "v5;3:0:p;v30;1",  # more fields than the text has
        "v5;1:0:p;v30",  # a member of one field
        "v5;2:0:p;v99;1",  # a member that is no v3/v4 text
        "v5;2:0:p%zz;v30;1",  # a principal that does not unescape
        "v5;2:0:p;v30;1",  # a member whose v3 text is not ours
        "v5;2:0:p;v40;0:1",  # a member whose v4 text is not ours
        # masks (a source's 5-minute slots) other than 3 hex digits a source, in a text read from
        # its summary: a negative one beside a good one was read as every slot of the bin
        f"v30;1;0;{IAM}|sts.amazonaws.com^GetUser^AccessDenied^801|-01;;{ENTRY}",
        f"v30;1;0;{IAM}^GetUser^AccessDenied^0x1;;{ENTRY}",
        f"v30;1;0;{IAM}^GetUser^AccessDenied^8;;{ENTRY}",
        f"v30;1;0;{IAM}^GetUser^AccessDenied^00g;;{ENTRY}",
        f"v30;1;0;{IAM}^GetUser^AccessDenied^001^001;;{ENTRY}",
    ],
)
def test_malformed_count_rows_are_skipped_and_named_in_one_line(text) -> None:
    events = organisation()
    good = mapped([events])
    bad = {**good[0], COUNTS_FIELD: text}
    detector, got = reported([*good, bad])
    assert got == run(events, parse_options(["show=all"]))
    assert detector.messages() == ["skipped 1 row with unreadable iamspike_counts"]


@pytest.mark.parametrize("version", ["v5", "v6"])
def test_a_packed_row_with_an_unreadable_member_reads_its_other_members(version) -> None:
    shipped = mapped([organisation()]) if version == "v6" else as_v5(mapped([organisation()]))
    at = next(i for i, row in enumerate(shipped) if str(row[COUNTS_FIELD])[:2] == version)
    members = split_members(str(shipped[at][COUNTS_FIELD]))
    offset, principal, text = members[1]
    fields = text.split(";")
    fields[3 if text[:2] == "v3" else 4] = "-1"  # a negative console count
    members[1] = (offset, principal, ";".join(fields))
    encode = encode_columns if version == "v6" else encode_members
    broken = {**shipped[at], COUNTS_FIELD: encode(members)}
    damaged = [*shipped[:at], broken, *shipped[at + 1 :]]
    detector_v5, got_v5 = reported(damaged)
    detector_v4, got_v4 = reported(unpacked(damaged))
    assert got_v5 == got_v4 and got_v5 != reported(shipped)[1]
    assert detector_v5.messages() == detector_v4.messages()
    assert detector_v5.messages()[0].startswith("skipped 1 row with unreadable iamspike_counts")


def test_a_v5_row_cut_at_a_members_end_is_skipped_whole_and_named() -> None:
    """A ``v5`` text cut where a member ends still splits into whole members: its members are
    fewer than its ``state_keys``, so the row is skipped and named (it was read as the members
    left, the others lost without a word). Without ``state_keys`` nothing tells."""
    shipped = as_v5(mapped([organisation()]))
    at = next(i for i, row in enumerate(shipped) if str(row[COUNTS_FIELD])[:2] == "v5")
    text = str(shipped[at][COUNTS_FIELD])
    members = split_members(text)
    assert len(members) > 2
    cut = {**shipped[at], COUNTS_FIELD: encode_members(members[:2])}  # where the 2nd member ends
    assert text.startswith(cut[COUNTS_FIELD] + ";")
    detector, got = reported([*shipped[:at], cut, *shipped[at + 1 :]])
    assert got == reported([*shipped[:at], *shipped[at + 1 :]])[1]
    assert detector.messages() == ["skipped 1 row with unreadable iamspike_counts"]
    keyless = {k: v for k, v in cut.items() if k != "state_keys"}
    detector, _ = reported([*shipped[:at], keyless, *shipped[at + 1 :]])
    assert detector.messages() == []


def test_the_states_attached_to_an_unreadable_v5_row_are_still_read() -> None:
    """The old state macro (still working from a local/macros.conf copy) attached to a ``v5`` row
    its principals' states (``iamspike_state``, multivalue) and its account's: a damaged text costs
    the row's counts, not those states (they were dropped with it, and the account's history with
    them)."""
    events = organisation()
    early = [e for e in events if e["eventTime"] < T0 + 40 * HOUR]
    saved = {row["state_key"]: row["iamspike_state"] for row in run(early, parse_options(["show=state"]))}
    shipped = mapped([[e for e in events if e["eventTime"] >= T0 + 40 * HOUR]])
    at = next(i for i, row in enumerate(shipped) if str(row[COUNTS_FIELD])[:2] == "v6")
    row = shipped[at]
    keys = str(row["state_keys"]).split()
    attached = {
        **row,
        COUNTS_FIELD: "v5;x",
        "iamspike_state": "\n".join(saved[key] for key in keys if key in saved),
        "iamspike_account_state": saved[str(row["account_state_key"])],
    }
    states = [{"iamspike_state": saved[key]} for key in [*keys, row["account_state_key"]] if key in saved]
    others = [*shipped[:at], *shipped[at + 1 :]]
    detector, got = reported([*others, attached])
    assert got == reported([*others, *states])[1] != reported(others)[1]
    assert detector.messages() == ["skipped 1 row with unreadable iamspike_counts"]


@pytest.mark.parametrize("version", ["v5", "v6"])
def test_an_accounts_principals_travel_in_packed_rows_read_as_their_v3_and_v4_rows(version) -> None:
    events = organisation()
    parts = deal(events, 3, seed=6)
    parts[2] += parts[0][::9]  # re-sent to another indexer
    shipped = mapped(parts) if version == "v6" else as_v5(mapped(parts))
    assert any(str(r[COUNTS_FIELD])[:2] == version for r in shipped)
    members = unpacked(shipped)
    assert {str(r[COUNTS_FIELD])[:2] for r in members} == {"v3", "v4"}
    detector_v5, got_v5 = reported(shipped)
    detector_v4, got_v4 = reported(members)
    assert got_v5 == got_v4 == run(events, parse_options(["show=all"]))
    assert detector_v5.messages() == detector_v4.messages() == []
    assert len(detector_v5.count_rows) == len(detector_v4.count_rows)
    states = []
    for rows in (shipped, members):
        detector = Detector(parse_options(["show=state"]))
        detector.add_rows(*table(rows))
        states.append(detector.results())
    assert states[0] == states[1] == run(events, parse_options(["show=state"]))


def test_entries_the_search_head_leaves_out_are_not_counted() -> None:
    events = organisation()
    shipped = mapped(deal(events, 2), ["classes=authorization,throttling"])
    _, got = reported(shipped)  # the search head counts authorization only
    assert got == run(events, parse_options(["show=all"]))
    _, both = reported(shipped, ["classes=authorization,throttling"])
    assert both == run(events, parse_options(["show=all", "classes=authorization,throttling"]))
    assert both != got


def test_raw_events_and_count_rows_in_one_search_add_up() -> None:
    events = organisation()
    half = len(events) // 2
    detector = Detector(parse_options(["show=all"]))
    detector.add_rows(*table(mapped([events[:half]])))
    detector.add_rows(*as_rows(events[half:]))
    assert detector.results() == run(events, parse_options(["show=all"]))


def test_entries_read_back_from_compressed_blocks_are_the_rows_entries() -> None:
    shipped = [row for row in mapped_cells(deal(organisation(), 3)) if row["account"]]
    rows = CountRows(Tally(HOUR, ErrorClasses.load().counter((AUTHORIZATION,))), block_rows=7)
    header, body = table(shipped)
    index = {name: i for i, name in enumerate(header)}
    for lo in range(0, len(body), 10):  # chunks that do not line up with the blocks
        rows.add(index, body[lo : lo + 10])
    assert len(rows) == len(shipped) and len(rows.blocks.blocks) == len(shipped) // 7
    back = dict(rows.entries(reversed(range(len(rows)))))
    assert [back[r] for r in range(len(rows))] == [
        decode_counts(str(row[COUNTS_FIELD]))[1] for row in shipped
    ]


def test_a_principal_over_many_bins_travels_in_one_v4_text_per_send() -> None:
    events = organisation()
    parts = deal(events, 3, seed=3)
    parts[1] += parts[0][::11]  # re-sent to another indexer
    shipped = mapped(parts)
    packed = [r for r in shipped if r["account"]]
    assert [str(r[COUNTS_FIELD])[:2] for r in packed] == ["v6"] * 3  # one row per (indexer, account)
    members = [m for r in packed for m in split_members(str(r[COUNTS_FIELD]))]
    assert {text[:2] for _, _, text in members} == {"v4"} and len(members) == 3 * 6  # (indexer, principal)
    assert len({(r["account"], key) for r in packed for key in str(r["state_keys"]).split(" ")}) == 6
    detector, got = reported(shipped)
    assert got == run(events, parse_options(["show=all"])) and detector.messages() == []
    assert len(detector.count_rows) == len(mapped_cells(parts)) - 3  # one row of columns per part


def test_v4_v3_and_v2_rows_of_one_cell_are_merged_and_deduplicated() -> None:
    events = organisation()
    parts = deal(events, 3, seed=4)
    parts[1] += parts[0][::5]
    parts[2] += parts[0][1::6]
    shipped = unpacked(mapped([parts[0]]))
    shipped += mapped_cells([parts[1]])
    shipped += [
        {**row, COUNTS_FIELD: _v2(str(row[COUNTS_FIELD]))} if row["account"] else row
        for row in mapped_cells([parts[2]])
    ]
    assert {str(r[COUNTS_FIELD])[:2] for r in shipped if r["account"]} == {"v2", "v3", "v4"}
    detector, got = reported(shipped)
    assert got == run(events, parse_options(["show=all"])) and detector.messages() == []


def test_a_search_head_with_a_longer_span_places_each_part_in_its_bin() -> None:
    events = organisation()
    shipped = mapped(deal(events, 2))  # hourly parts
    _, got = reported(shipped, ["span=1d"])
    assert got == run(events, parse_options(["show=all", "span=1d"]))


def test_a_v4_row_with_an_unreadable_part_reads_as_its_parts_in_v3_rows() -> None:
    shipped = mapped([organisation()])
    v4_rows = [i for i, row in enumerate(shipped) if str(row[COUNTS_FIELD])[:2] == "v4"]
    at = next(i for i in v4_rows if len(split_parts(str(shipped[i][COUNTS_FIELD]))[1]) > 2)
    row = shipped[at]
    service, parts = split_parts(str(row[COUNTS_FIELD]))
    texts = [text for _, text in parts]
    fields = texts[1].split(";")
    fields[2] = str(int(fields[1]) + 1)  # more console sign-ins than failures
    texts[1] = ";".join(fields)
    v4 = f"v4{int(service)};" + ";".join(
        f"{offset}:{len(text.split(';')) - 5};{text.split(';', 1)[1]}"
        for (offset, _), text in zip(parts, texts)
    )
    as_v4 = [*shipped[:at], {**row, COUNTS_FIELD: v4}, *shipped[at + 1 :]]
    as_v3 = [
        *shipped[:at],
        *(
            {**row, "_time": int(row["_time"]) + offset, COUNTS_FIELD: text}
            for (offset, _), text in zip(parts, texts)
        ),
        *shipped[at + 1 :],
    ]
    detector_v4, got_v4 = reported(as_v4)
    detector_v3, got_v3 = reported(as_v3)
    assert got_v4 == got_v3 and got_v4 != reported(shipped)[1]
    assert (
        detector_v4.messages() == detector_v3.messages() == ["skipped 1 row with unreadable iamspike_counts"]
    )


def test_state_from_v4_rows_with_parts_of_a_class_left_out_is_the_one_process_state() -> None:
    events = organisation()
    parts = deal(events, 3, seed=5)
    parts[2] += parts[1][::7]  # re-sent to another indexer
    shipped = unpacked(mapped(parts, ["classes=authorization,throttling"]))  # u2's hour 41 part: whole
    assert any("ThrottlingException" in str(r[COUNTS_FIELD]) for r in shipped if r["account"])
    assert {str(r[COUNTS_FIELD])[:2] for r in shipped if r["account"]} == {"v4"}
    for args in ([], ["classes=authorization,throttling"]):
        detector = Detector(parse_options(["show=state", *args]))
        detector.add_rows(*table(shipped))
        assert detector.results() == run(events, parse_options(["show=state", *args]))
        assert detector.messages() == []


@pytest.mark.parametrize("when", ["1e300", "-1e300", "9.3e18"])
@pytest.mark.parametrize("version", ["v3", "v4"])
def test_a_count_row_whose_time_is_beyond_any_bin_is_skipped_not_a_crash(version, when) -> None:
    good = mapped([organisation()]) if version == "v4" else mapped_cells([organisation()])
    row = next(row for row in good if row[COUNTS_FIELD][:2] == version and "{" not in row[COUNTS_FIELD])
    bad = {**row, "_time": when}
    detector, _ = reported([*good, bad])
    assert detector.messages() == ["skipped 1 row with unreadable iamspike_counts"]


@pytest.mark.parametrize("low, high", [(-1e300, 1e300), (0, 1e12), (1_788_739_200, 253402300799)])
def test_a_range_row_beyond_the_times_a_search_reads_widens_nothing(low, high) -> None:
    events = organisation()
    good = mapped([events])
    at = next(i for i, row in enumerate(good) if row[COUNTS_FIELD].startswith("v3{"))
    blob = json.loads(good[at][COUNTS_FIELD][2:])
    bad = {**good[at], COUNTS_FIELD: "v3" + json.dumps({**blob, "lo": low, "hi": high})}
    _, got = reported([*good[:at], bad, *good[at + 1 :]])
    assert got == reported(good)[1]


def test_profiles_of_one_base_with_other_masks_keep_their_own_minutes() -> None:
    """The search head remembers a profile without its masks group and the masks groups apart:
    each row still gets its own sources' minutes, and masks that do not match a remembered
    profile's sources make the row unreadable."""
    events = organisation()
    for i, record in enumerate(events):  # spread over the hour's minutes (each hour's 3,000 s)
        record["eventTime"] += i * 613 % 3000
    shipped = mapped(deal(events, 2))
    detector = Detector(parse_options(["show=all"]))
    detector.add_rows(*table(shipped))
    profiles = []
    for row in unpacked(shipped):
        text = str(row[COUNTS_FIELD])
        parts = (
            split_parts(text)[1] if text[:2] == "v4" else [(0, text)] if text[:3] in ("v30", "v31") else []
        )
        profiles += [part.split(";")[3] for _, part in parts]
    assert list(detector.count_rows.masks) == [m for p in profiles for m in read_profile(p)[3]]
    bases = {p.rpartition("^")[0] for p in profiles}
    assert len(bases) < len(set(profiles)) and all(p.count("^") == 3 for p in profiles)
    # the profiles with masks are read from the two, not remembered whole (most come once)
    assert not detector.count_rows.profiles.texts and len(detector.count_rows.profiles.bases) == len(bases)
    assert detector.messages() == []
    good = next(row for row in unpacked(shipped) if str(row[COUNTS_FIELD])[:2] == "v4")
    part = split_parts(str(good[COUNTS_FIELD]))[1][0][1]  # its first bin, as a v3 text
    profile = part.split(";")[3]
    wrong = {**good, COUNTS_FIELD: part.replace(profile, profile + "|001")}
    detector.add_rows(*table([wrong]))
    assert detector.messages() == ["skipped 1 row with unreadable iamspike_counts"]


def test_a_v6_rows_entries_read_back_part_by_part_from_its_one_region() -> None:
    """A ``v6`` row read whole keeps its parts' entries as one text: each part's entries read back
    (as ``resolve`` and explanations read them) are that part's, across blocks and other rows."""
    shipped = [row for row in mapped(deal(organisation(), 2)) if str(row[COUNTS_FIELD])[:2] == "v6"]
    assert len(shipped) > 1
    rows = CountRows(Tally(HOUR, ErrorClasses.load().counter((AUTHORIZATION,))), block_rows=5)
    rows.tally.bound(0, 2**40)
    expected = []
    for row in shipped:
        text = str(row[COUNTS_FIELD])
        assert rows.add_members(text, int(row["_time"]), str(row["account"])) is not None
        for _offset, _principal, member in split_members(text):
            parts = split_parts(member)[1] if member[:2] == "v4" else [(0, member)]
            expected += [decode_counts(part)[1] for _, part in parts]
    assert len(rows) == len(expected) > len(shipped) and len(rows.blocks.blocks) > 1
    back = dict(rows.entries(reversed(range(len(rows)))))
    assert [back[r] for r in range(len(rows))] == expected


def test_rows_of_their_own_regions_and_v6_rows_read_back_their_entries_in_any_mix() -> None:
    """Rows whose entries are their own (``v3``/``v4``: no offsets held for them) and ``v6`` rows
    (offsets in one region) in one CountRows, in either order, and moved to another by ``take``
    and ``add_taken`` (rows of either kind there before): each row's entries read back are its own."""
    shipped = mapped(deal(organisation(), 2))
    packed = [row for row in shipped if str(row[COUNTS_FIELD])[:2] == "v6"]
    own = [row for row in unpacked(shipped) if row["account"]]
    header, body = table(own)
    index = {name: i for i, name in enumerate(header)}
    counter = ErrorClasses.load().counter((AUTHORIZATION,))

    def filled(rows: CountRows, kinds: str) -> list:
        expected = []
        for kind in kinds:
            if kind == "own":
                rows.add(index, body)
                for row in own:
                    text = str(row[COUNTS_FIELD])
                    parts = split_parts(text)[1] if text[:2] == "v4" else [(0, text)]
                    expected += [decode_counts(part)[1] for _, part in parts]
                continue
            for row in packed:
                text = str(row[COUNTS_FIELD])
                assert rows.add_members(text, int(row["_time"]), str(row["account"])) is not None
                for _offset, _principal, member in split_members(text):
                    parts = split_parts(member)[1] if member[:2] == "v4" else [(0, member)]
                    expected += [decode_counts(part)[1] for _, part in parts]
        return expected

    def read_back(rows: CountRows) -> list:
        back = dict(rows.entries(range(len(rows))))
        return [back[r] for r in range(len(rows))]

    assert packed and own
    for kinds in (["own", "v6", "own"], ["v6", "own"], ["own"]):
        for before in ([], ["own"], ["v6"]):
            source = CountRows(Tally(HOUR, counter), block_rows=5)
            source.tally.bound(0, 2**40)
            expected = filled(source, kinds)
            assert read_back(source) == expected
            target = CountRows(source.tally, block_rows=5, names=source)
            held = filled(target, before)
            target.add_taken(source.take())
            assert read_back(target) == held + expected
            assert len(target.entry_at) in (0, len(target)) and (len(target.entry_at) > 0) == (
                "v6" in kinds + before
            )


def test_a_profile_wider_than_the_columns_hold_is_counted_by_the_tally() -> None:
    """A count row naming more APIs than the columns hold a row's count of (no map phase of ours
    sends one) is counted entry by entry, as any row the columns do not take."""
    from iamspike.countprofiles import WIDEST
    from iamspike.counttext import encode_counts

    entries = [
        (IAM, f"Api{n}", "AccessDenied", "198.51.100.9", "aws-cli/2", 1, b"") for n in range(WIDEST + 1)
    ]
    wide = {"_time": T0, "account": ACCT, "principal": "wide", COUNTS_FIELD: encode_counts(False, entries)}
    narrow = {
        "_time": T0,
        "account": ACCT,
        "principal": "narrow",
        COUNTS_FIELD: encode_counts(False, entries[:3]),
    }
    rows = CountRows(Tally(HOUR, ErrorClasses.load().counter((AUTHORIZATION,))))
    header, body = table([wide, narrow])
    rows.add({name: i for i, name in enumerate(header)}, body)
    assert len(rows) == 1 and list(rows.entities) == [(ACCT, "narrow")]
    counted = {}
    for key, count in rows.tally.counts.items():
        counted[key[2]] = counted.get(key[2], 0) + count
    assert counted == {"wide": WIDEST + 1}


def test_both_v6_readers_refuse_the_same_texts_and_read_the_same_columns() -> None:
    """The map phase's pure-Python ``countpacked.read_columns`` and the search head's numpy
    ``countcolumns.read_columns`` check a ``v6`` text's layout in one place
    (``countpacked.check_columns``): over texts damaged at random (characters cut, replaced or
    added among the numbers, masks and counts) both refuse the same ones and read the others
    into the same columns. (The numpy reader leaves the principals escaped: ``add_columns``
    unescapes them, and refuses the row there when one does not unescape.)"""

    def numpy_read(text: str):
        got = numpy_read_columns(text)
        return got, [unescape(principal) for principal in got.principals]

    texts = [str(row[COUNTS_FIELD]) for row in mapped(deal(organisation(), 2))]
    texts = [text for text in texts if text[:2] == "v6"]
    assert texts
    rng = random.Random(15)
    refused = read = 0
    for _ in range(3000):
        text = list(rng.choice(texts))
        for _ in range(rng.choice((1, 1, 2, 3))):
            at = rng.randrange(min(len(text), 400))
            kind = rng.random()
            if kind < 0.3:
                del text[at]
            elif kind < 0.7:
                text[at] = rng.choice("0123456789|;^v%aF ")
            else:
                text.insert(at, rng.choice("0123456789|;^"))
        text = "".join(text)
        try:
            members, columns, profiles, packed, entries = counttext_read_columns(text)
        except ValueError:
            with pytest.raises((ValueError, binascii.Error)):
                numpy_read(text)
            refused += 1
            continue
        got, principals = numpy_read(text)
        shifts, totals, consoles, index, _masks, n_digests, n_entries = columns
        assert [(head, n) for _, _, head, n in members] == list(zip(got.heads, got.n_parts.tolist()))
        assert [(offset, principal) for offset, principal, _, _ in members] == list(
            zip(got.offsets.tolist(), principals)
        )
        for mine, theirs in zip(
            (shifts, totals, consoles, index, n_digests, n_entries),
            (got.shifts, got.totals, got.consoles, got.index, got.n_digests, got.n_entries),
        ):
            assert mine == theirs.tolist()
        assert (profiles, packed, entries) == (got.profiles, got.packed, got.entries)
        read += 1
    assert refused > 300 and read > 300
