"""``show=state`` a few accounts at a time (``spill``): the rows of one pass, byte for byte.

Small ``pass_bytes`` force many passes over few buckets, so accounts share a pass and some buckets
stay empty; every case compares the partitioned rows (and their order) with one ``Detector``
over the same chunks.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections import Counter

import numpy as np
import pytest
from iamspike import state
from iamspike.counting import COUNTS_FIELD, STATE_KEYS, packed_rows, unpack_rows, wire_rows
from iamspike.countpacked import encode_members, split_members
from iamspike.engine import Detector, Window, parse_options
from iamspike.phases import MapPhase
from iamspike.spill import StateSpill, _last_offset
from test_statefold import BENCH_WRITTEN, HOUR, bench_hours, digest, load, saved, scale_backfill

COLUMNS = ["_time", "account", "principal", "failures", "state_key", "account_state_key", "iamspike_counts"]


def one_pass(chunks, options=("show=state",)) -> list[dict]:
    detector = Detector(parse_options(list(options)))
    for header, rows in chunks:
        detector.add_rows(header, rows)
    return detector.results()


def by_parts(chunks, folder, options=("show=state",), pass_bytes=200_000, buckets=16):
    spill = StateSpill(parse_options(list(options)), str(folder), buckets, pass_bytes)
    for header, rows in chunks:
        spill.add_rows(header, rows)
    return list(spill.results()), spill


def attached(chunks, state_rows):
    """Count rows with their principal's and account's state joined by key (the shipped macro)."""
    table = {row["state_key"]: row[state.STATE_FIELD] for row in state_rows}
    out = []
    for header, rows in chunks:
        p, a = header.index("state_key"), header.index("account_state_key")
        head = [*header, state.STATE_FIELD, state.ACCOUNT_STATE_FIELD]
        out.append((head, [[*row, table.get(row[p], ""), table.get(row[a], "")] for row in rows]))
    return out


def test_bench_organisation_by_parts_is_one_pass(tmp_path) -> None:
    hours = bench_hours()
    early, spill = by_parts(hours[:3], tmp_path)
    assert spill.passes > 5
    assert early == one_pass(hours[:3])
    assert (digest(early), len(early)) == (BENCH_WRITTEN[0], 15337)  # test_statefold's
    late, spill = by_parts([saved(early), *hours[3:]], tmp_path)
    assert (digest(late), len(late)) == (BENCH_WRITTEN[1], 17289)
    assert by_parts(attached(hours[3:], early), tmp_path)[0] == one_pass(attached(hours[3:], early))
    short = by_parts(hours, tmp_path, ("show=state", "history=2h"))[0]
    assert (digest(short), len(short)) == (BENCH_WRITTEN[2], 13799)
    assert os.listdir(tmp_path) == []  # each run's folder is gone


def count_chunks(records, options=()) -> list[tuple[list[str], list[list[str]]]]:
    """The map phase's count rows of ``records`` (two indexers: halves), as chunks."""
    out = []
    for part in (records[::2], records[1::2]):
        phase = MapPhase(parse_options(["phase=map", *options]))
        phase.tally.add_records(part)
        rows = phase.results()
        out.append((COLUMNS, [[str(row.get(name, "")) for name in COLUMNS] for row in rows]))
    return out


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("pwnedlabs_incident_3252", ()),
        ("pwnedlabs_incident_3252", ("span=5m", "history=1d")),
        ("sans504_s3_ransomware_lab", ()),
        ("invictus_aws_dataset", ()),
    ],
)
def test_real_sets_by_parts_are_one_pass(tmp_path, name, options) -> None:
    records = load(name)
    half = len(records) // 2
    opts = ("show=state", *options)
    whole = count_chunks(records, options)
    rows, spill = by_parts(whole, tmp_path, opts, pass_bytes=2_000)
    assert rows == one_pass(whole, opts) and rows
    assert spill.passes == len({row["account"] for row in rows}) > 0  # an account a pass here
    early = one_pass(count_chunks(records[:half], options), opts)
    later = attached(count_chunks(records[half:], options), early)
    assert by_parts(later, tmp_path, opts, pass_bytes=2_000)[0] == one_pass(later, opts)
    standalone = [saved(early), *count_chunks(records[half:], options)]
    assert by_parts(standalone, tmp_path, opts, pass_bytes=2_000)[0] == one_pass(standalone, opts)


@pytest.mark.parametrize(
    ("name", "source"),
    [("sans504_s3_ransomware_lab", "s3.amazonaws.com"), ("invictus_aws_dataset", "ec2.amazonaws.com")],
)
def test_rows_read_as_they_come_and_rows_read_in_the_pass_mix_in_one_bucket(tmp_path, name, source) -> None:
    """A count row the spill reads as it comes (its columns spilled) and one it leaves to the pass
    (a profile with a source this search leaves out: the Tally reads it entry by entry) share one
    file in the order they came; where both kinds hold one cell, the pass reads the first kind's
    entries again (moved into the Tally), and a re-sent copy counts once."""
    whole = count_chunks(load(name))
    header, first = whole[0]
    # The first indexer's rows sent twice, the second time with a source left out in the profile.
    again = [
        [*row[:-1], row[-1].replace(";" + source + "^", ";aaa.amazonaws.com|" + source + "^")]
        for row in first
    ]
    chunks = [*whole, (header, again)]
    opts = ("show=state", "event_sources=" + source)
    texts = [row[-1] for row in first]
    assert any(source + "^" in text for text in texts) and any(source + "^" not in text for text in texts)
    rows, spill = by_parts(chunks, tmp_path, opts, buckets=1)
    assert rows == one_pass(chunks, opts) and rows
    detector = Detector(parse_options(list(opts)))
    for header, part in chunks:
        detector.add_rows(header, part)
    detector.results()
    assert spill.messages() == detector.messages()


def test_a_pass_that_receives_no_rows_gives_none() -> None:
    detector = Detector(parse_options(["show=state"]))
    assert detector.results(Window(1_788_739_200, 1_788_742_800, 1_788_000_000, 1_788_739_200)) == []
    assert detector.window == Window()


def test_no_rows_at_all(tmp_path) -> None:
    rows, spill = by_parts([], tmp_path)
    assert rows == [] and spill.passes == 0 and spill.messages() == []
    assert os.listdir(tmp_path) == []


def test_an_unreadable_row_at_the_edge_runs_the_passes_again(tmp_path) -> None:
    hours = bench_hours(2)
    header, rows = hours[0]
    late = list(rows[0])
    late[0], late[-1] = str(int(late[0]) + 7200), "v30;1;0;iam^X^Y;!!;x"  # unreadable, 2 h later
    chunks = [*hours, (header, [late])]
    rows, spill = by_parts(chunks, tmp_path, pass_bytes=400_000)
    assert rows == one_pass(chunks)
    groups = len(spill._groups())
    assert groups > 1 and spill.passes == 2 * groups  # the noted window was too wide: run again
    assert spill.messages() == one_pass_messages(chunks)


def test_fields_with_line_ends_and_separators_come_back_whole(tmp_path) -> None:
    header, rows = bench_hours(1)[0]
    odd = [list(row) for row in rows[:50]]
    for n, row in enumerate(odd):
        row[2] = ["a\nb", "c\x1fd", "\x1ee", 'f\r\ng,"h'][n % 4] + row[2]
    chunks = [(header, rows), (header, odd)]
    assert by_parts(chunks, tmp_path, pass_bytes=100_000)[0] == one_pass(chunks)


def one_pass_messages(chunks) -> list[str]:
    detector = Detector(parse_options(["show=state"]))
    for header, rows in chunks:
        detector.add_rows(header, rows)
    detector.results()
    return detector.messages()


def test_raw_events_turn_the_spill_off(tmp_path) -> None:
    records = load("pwnedlabs_incident_3252")
    from iamspike.cloudtrail import FIELDS, record_to_row

    raw = (list(FIELDS), [record_to_row(record) for record in records[: len(records) // 2]])
    chunks = [*count_chunks(records[len(records) // 2 :]), raw]
    rows, spill = by_parts(chunks, tmp_path, pass_bytes=2_000)
    assert rows == one_pass(chunks) and spill.passes == 0


def test_the_folder_goes_with_the_spill_when_results_never_come(tmp_path) -> None:
    spill = StateSpill(parse_options(["show=state"]), str(tmp_path))
    spill.add_rows(*bench_hours(1)[0])
    assert len(os.listdir(tmp_path)) == 1
    del spill
    gc.collect()
    assert os.listdir(tmp_path) == []


def test_last_offset_of_a_v4_text() -> None:
    text = (
        "v40;0:1;2;0;iam^A^B;;iam|A|B|2001:db8::1|ua:x|2|;3600:2;1;0;iam^A^B;;iam|A|B|::1|u|1|;^|^|^|^|^|1|"
    )
    assert _last_offset(text) == 3600
    assert _last_offset("v40;0:1;2;0;iam^A^B;;iam|A|B|1:2|u|2|") == 0


FULL_DISK = """import os, resource, runpy, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
sys.argv = [sys.argv[1]]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_disk_that_fills_up_is_one_error_line_and_the_folder_goes(tmp_path) -> None:
    """The real command over SCPv2 with its files limited to 4 KB by the kernel (RLIMIT_FSIZE):
    the first compressed block that does not fit fails the search with one line naming the folder
    and the cause, no traceback, and the spill's folder is gone."""
    from standin import scpv2

    header, rows = bench_hours(1)[0]
    body = scpv2.encode_rows([dict(zip(header, row)) for row in rows[:5000]])
    script = os.path.join(os.path.dirname(__file__), "..", "..", "bin", "iamspike_command.py")
    command = [sys.executable, "-c", FULL_DISK, os.path.abspath(script)]
    session = scpv2.run(command, ["show=state"], [body], cwd=str(tmp_path))
    assert session.errors == [
        f"iamspike: show=state could not write its spilled rows to {tmp_path} (File too large):"
        " free disk space there, or run the backfill over fewer days"
    ]
    assert "Traceback" not in session.stderr and session.returncode == 0
    assert os.listdir(tmp_path) == []


def test_the_spilled_rows_take_under_half_their_bytes_on_disk(tmp_path) -> None:
    hours = bench_hours(2)
    spill = StateSpill(parse_options(["show=state"]), str(tmp_path), 16, 400_000)
    for header, rows in hours:
        spill.add_rows(header, rows)
    out = spill.results()
    (folder,) = os.listdir(tmp_path)
    files = [os.path.join(tmp_path, folder, name) for name in os.listdir(tmp_path / folder)]
    on_disk = sum(os.path.getsize(path) for path in files if path.endswith(".rows"))
    assert on_disk == spill.disk_bytes < spill.spilled_bytes / 2
    assert list(out) == one_pass(hours)


@pytest.mark.parametrize("name", ["pwnedlabs_incident_3252", "invictus_aws_dataset"])
def test_the_state_macros_rows_of_several_states_are_read_state_by_state(tmp_path, name) -> None:
    """The state macro appends one row per account whose ``iamspike_state`` holds the account's
    states joined by newlines (docs/distributed.md "State join"): each state goes to its
    account's pass as a row of one state does; among them a damaged state is named once in the
    warning line and an older version's state is read. (The spill took such a row for one
    unreadable state and left it out of every pass: the maintenance search wrote its rows back
    without their saved history, and said nothing.)"""
    records = load(name)
    half = len(records) // 2
    early = one_pass(count_chunks(records[:half]))
    late = count_chunks(records[half:])
    expected = one_pass([saved(early), *late])
    assert expected != one_pass(late)  # the saved history matters here
    texts: dict[str, list[str]] = {}
    for row in early:
        texts.setdefault(row["account"], []).append(row[state.STATE_FIELD])
    macro = (["iamspike_state"], [["\n".join(states)] for states in texts.values()])
    assert by_parts([*late, macro], tmp_path, pass_bytes=2_000)[0] == expected
    assert one_pass([*late, macro]) == expected
    states = next(iter(texts.values()))
    principal = next(i for i, text in enumerate(states) if '"type":"principal"' in text)
    older = json.loads(states[principal])
    older = {**older, "v": 1, "seen": older.pop("first_failures", {})}
    older.pop("type")
    states[principal] = json.dumps(older)
    states += [states[0][:40], "[" * 100_000, ""]  # cut, nested past json's recursion limit, empty
    damaged = (["iamspike_state"], [["\n".join(states)] for states in texts.values()])
    rows, spill = by_parts([*late, damaged], tmp_path, pass_bytes=2_000)
    assert rows == expected
    assert spill.messages() == [
        "skipped 2 rows with an iamspike_state that is unreadable or of another span;"
        " run 'IAM Error Spike - Baseline Backfill' to rebuild the saved state"
    ]


def bench_v5(
    n_hours: int = 4, masks: bool = True, version: str = "v5"
) -> list[tuple[list[str], list[list[str]]]]:
    """The bench organisation's hours as the map phase packs a send: per indexer one chunk of
    ``v6`` rows (or, ``version`` ``v5``, the ``v5`` rows an indexer before ``v6`` sent: ``v3``/``v4``
    members; an account with one principal a ``v3``/``v4`` row), the cells' event sources with
    minutes (``masks``) or without (written before P39)."""
    sb = scale_backfill
    org, rng, factors = sb.Org(40, 3_000), np.random.default_rng(7), sb.diurnal(n_hours)
    held: list[list] = [[] for _ in range(3)]
    for h in range(n_hours):
        cells = sb.hour_cells(rng, org, round(20_000 * factors[h]), 3)
        for k, part in enumerate(sb.count_cells(org, sb.START + HOUR * h, cells, 3, rng)):
            for cell in part:
                if not masks:
                    cell.masks = {}
            held[k].extend(part)
    header = [*sb.COUNT_COLUMNS, STATE_KEYS]
    chunks = []
    for part in held:
        rows = packed_rows(wire_rows(part))
        if version == "v5":
            for row in rows:
                if str(row[COUNTS_FIELD])[:2] == "v6":
                    row[COUNTS_FIELD] = encode_members(split_members(str(row[COUNTS_FIELD])))
        chunks.append((header, [[str(row.get(name, "")) for name in header] for row in rows]))
    return chunks


def members_unpacked(chunks) -> list[tuple[list[str], list[list[str]]]]:
    """The chunks with each ``v5``/``v6`` row as the rows of its members (``unpack_rows``)."""
    return [(header, list(unpack_rows(header, rows, Counter()))) for header, rows in chunks]


@pytest.mark.parametrize("version", ["v5", "v6"])
@pytest.mark.parametrize("masks", [True, False])
def test_packed_rows_read_whole_give_what_their_members_give(tmp_path, masks, version) -> None:
    """A ``v5`` or ``v6`` row read whole (``CountRows.add_members``) adds what its members,
    unpacked and read one by one, add: the same rows and the same window (a ``v5`` row the same
    characters spilled; a ``v6`` row counts its own text, shorter than its members')."""
    chunks = bench_v5(masks=masks, version=version)
    assert sum(row[-2][:2] == version for _, rows in chunks for row in rows) > 10
    members_chunks = members_unpacked(chunks)
    assert any(row[-2][:3] == "v40" for _, rows in members_chunks for row in rows)
    assert any(row[-2][:3] == "v30" for _, rows in members_chunks for row in rows)
    whole, spill = by_parts(chunks, tmp_path)
    members, spill_members = by_parts(members_chunks, tmp_path)
    assert whole == members == one_pass(chunks) and whole
    assert spill.passes > 1 and spill_members.passes > 1
    assert spill.window == spill_members.window
    if version == "v5":
        assert spill.spilled_bytes == spill_members.spilled_bytes and spill.passes == spill_members.passes
    else:
        assert 0.7 < spill.spilled_bytes / spill_members.spilled_bytes < 1.1
    assert spill.messages() == spill_members.messages() == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace(";v40;", ";v40;x", 1),  # a v4 member that is not ours
        lambda text: text.replace("^", "^^", 1),  # a profile of five groups
        lambda text: text.replace("=;", ";", 1),  # digests that do not decode
        lambda text: text.replace(";v30;", ";v30;x", 1),  # failures that are no number
    ],
)
def test_a_damaged_v5_row_is_read_as_its_members_are(tmp_path, damage) -> None:
    chunks = bench_v5()
    header, rows = chunks[0]
    at = next(
        i for i, row in enumerate(rows) if row[-2][:2] == "v5" and ";v40;" in row[-2] and ";v30;" in row[-2]
    )
    broken = list(rows[at])
    broken[-2] = damage(broken[-2])
    assert broken[-2] != rows[at][-2]
    damaged = [(header, [*rows[:at], broken, *rows[at + 1 :]]), *chunks[1:]]
    got, spill = by_parts(damaged, tmp_path)
    members, spill_members = by_parts(members_unpacked(damaged), tmp_path)
    assert got == members == one_pass(damaged) and got
    assert spill.messages() == spill_members.messages()
    assert len(spill.messages()) == 1 and spill.messages()[0].startswith("skipped 1 row with unreadable")


def _cut(row: list[str]) -> None:
    row[-2] = row[-2][: len(row[-2]) * 2 // 3]


def _fewer_keys(row: list[str]) -> None:
    row[-1] = row[-1].rpartition(" ")[0]  # a state key fewer than the members


def _field(at: int, value: str):
    def damage(row: list[str]) -> None:
        fields = row[-2].split(";")
        fields[at] = value
        row[-2] = ";".join(fields)

    return damage


def _part_shift(zero: bool):
    """A member's third or later part at the time of the part before it, or (``zero``) at the
    member's own ``_time``: its parts not ascending from its first."""

    def damage(row: list[str]) -> None:
        fields = row[-2].split(";")
        shifts = fields[5].split("|")
        at = next(i for i in range(2, len(shifts)) if "0" not in (shifts[i - 1], shifts[i]))
        shifts[at] = "0" if zero else shifts[at - 1]
        fields[5] = "|".join(shifts)
        row[-2] = ";".join(fields)

    return damage


def _masks_boundary_lost(row: list[str]) -> None:
    """Two parts' masks groups joined as one (the right characters, a group fewer)."""
    fields = row[-2].split(";")
    fields[10] = fields[10].replace("^", "|", 1)
    row[-2] = ";".join(fields)


@pytest.mark.parametrize(
    "damage",
    [
        _cut,  # entries (and their count) cut short
        _part_shift(False),  # a member's two parts at one time
        _part_shift(True),  # a zero shift where no member starts
        _masks_boundary_lost,
        _fewer_keys,
        _field(6, "x|1"),  # failures that are no number
        _field(6, "-1"),
        _field(2, "0|99999999999999999999"),  # an offset past int64 (numpy saturates it)
        _field(2, "0|1e3"),  # a member's offset that is no whole number
        _field(4, "1"),  # members' parts fewer than the parts
        _field(5, "7"),  # the first part not at its member's _time
        _field(8, "0"),  # no profile
        _field(10, "fff"),  # masks for one part
        _field(12, "QUJD"),  # digests other than the parts'
        _field(13, "1"),  # entries other than the parts'
    ],
)
def test_a_damaged_v6_row_is_skipped_and_named_once(tmp_path, damage) -> None:
    """A ``v6`` row that is not one of ours (cut, its members not as many as its ``state_keys``,
    a column of other numbers than its parts', a number that is none) is one row skipped and named
    in one line, read or not in passes; the other rows give what they give without it."""
    chunks = bench_v5(version="v6")
    header, rows = chunks[0]
    at = next(i for i, row in enumerate(rows) if row[-2][:2] == "v6" and "v40" in row[-2].split(";")[1])
    broken = list(rows[at])
    damage(broken)
    assert broken != rows[at]
    damaged = [(header, [*rows[:at], broken, *rows[at + 1 :]]), *chunks[1:]]
    got, spill = by_parts(damaged, tmp_path)
    without = [(header, [*rows[:at], *rows[at + 1 :]]), *chunks[1:]]
    assert got == one_pass(damaged) == one_pass(without) and got
    assert spill.messages() == ["skipped 1 row with unreadable iamspike_counts"]


def _as_splunkd_writes(header: list[str], rows: list[list[str]]) -> bytes:
    """A chunk's CSV body as splunkd writes it (the recordings: a field of anything but letters
    and digits quoted, its quotes doubled)."""

    def field(text: str) -> str:
        return text if text.isalnum() or not text else '"' + text.replace('"', '""') + '"'

    return "".join(",".join(map(field, row)) + "\n" for row in [header, *rows]).encode()


@pytest.mark.parametrize("damage", [_cut, _field(6, "x|1"), _field(12, "QUJD")])
def test_v6_rows_read_from_splunkds_csv_and_one_damaged_is_skipped_once(tmp_path, damage) -> None:
    """``v6`` rows as splunkd sends them (quoted CSV of long lines, read by the command loop's
    ``chunked.read_body``): the rows given as lists, and a damaged one skipped and named once."""
    from iamspike_splunk import chunked

    chunks = bench_v5(n_hours=2, version="v6")
    header, rows = chunks[0]
    at = next(i for i, row in enumerate(rows) if row[-2][:2] == "v6")
    broken = list(rows[at])
    damage(broken)
    damaged = [*rows[:at], broken, *rows[at + 1 :]]
    for given, skipped in (((header, rows), 0), ((header, damaged), 1)):
        read = [chunked.read_body(_as_splunkd_writes(*chunk)) for chunk in [given, *chunks[1:]]]
        read = [(head, list(body)) for head, body in read]
        assert read == [given, *chunks[1:]]
        got, spill = by_parts(read, tmp_path)
        assert got == by_parts([given, *chunks[1:]], tmp_path)[0] and got
        assert spill.messages() == ["skipped 1 row with unreadable iamspike_counts"] * skipped
