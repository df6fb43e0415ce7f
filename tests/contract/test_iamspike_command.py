"""``| iamspike`` through the installed package, from each bare Splunk Python, over SCPv2.

The events are fed as Splunk's JSON extraction presents them (dotted field names, ``_time`` in
epoch seconds, ``_raw``, default fields; see ``standin.scpv2.splunk_event``). Real CloudTrail
sets are read at test time from ``../shared/data/cloudtrail`` (relative to the repository) and
never copied. Never imports product code.
"""

from __future__ import annotations

import calendar
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from bench import generator
from standin import scpv2
from test_distributed import v6_as_v5

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
CLOUDTRAIL = REPO.parent / "shared" / "data" / "cloudtrail"
PWNED = CLOUDTRAIL / "pwnedlabs_incident_3252"
SANS = CLOUDTRAIL / "sans504_s3_ransomware_lab"
INVICTUS = CLOUDTRAIL / "invictus_aws_dataset"
TEMP_USER = "arn:aws:iam::107513503799:user/temp-user"
PWNED_ACCOUNT = "107513503799"
BURST_HOUR = calendar.timegm((2023, 8, 26, 20, 0, 0))
SPIKE_KEYS = {
    "_time",
    "entity_type",
    "account",
    "principal",
    "failures",
    "expected",
    "upper",
    "score",
    "severity",
    "distinct_apis",
    "top_error_codes",
    "top_apis",
    "top_source_ips",
    "top_user_agents",
    "reason",
}


def records(folder: Path) -> list[dict]:
    if not folder.is_dir():
        pytest.skip(f"{folder} is not on this machine (shared data, never copied into the repo)")
    return scpv2.load_cloudtrail(str(folder))


def events(folder: Path) -> list[dict]:
    return [scpv2.splunk_event(record) for record in records(folder)]


def iamspike(splunk_home, splunk_python, args: list[str], chunks, info=None) -> scpv2.Session:
    command = scpv2.python_command(str(splunk_python), splunk_home.script("iamspike_command.py"))
    session = scpv2.run(command, args, chunks, env=splunk_home.env(), info=info)
    assert not session.died and not session.timed_out, (session.problem, session.stderr[-3000:])
    assert session.returncode == 0, session.stderr[-3000:]
    return session


def ok(session: scpv2.Session) -> list[dict]:
    assert session.errors == [], session.errors
    assert session.finished
    assert session.getinfo.get("type") == "reporting"
    return session.rows


def key(row: dict) -> tuple:
    return (int(float(row["_time"])), row["entity_type"], row["account"], row["principal"])


# ---------------------------------------------------------------------------------- chunking
@pytest.fixture(scope="module")
def mixed_events() -> list[dict]:
    """PwnedLabs + Invictus events interleaved by time: two accounts, many principals."""
    rows = events(PWNED) + events(INVICTUS)
    rows.sort(key=lambda row: row["_time"])
    return rows


@pytest.mark.parametrize("show", ["all", "spikes", "state"])
def test_many_chunks_give_the_one_chunk_answer(splunk_home, splunk_python, mixed_events, show):
    answers = {}
    for size in (50_000, 7, 1):
        session = iamspike(splunk_home, splunk_python, [f"show={show}"], scpv2.split(mixed_events, size))
        answers[size] = ok(session)
        assert len(session.replies) == -(-len(mixed_events) // size)
        assert all(reply == {"finished": False} for reply in session.replies[:-1])
    assert answers[50_000], "the one-chunk run gave no rows at all"
    assert answers[7] == answers[50_000]
    assert answers[1] == answers[50_000]


def test_only_raw_gives_the_same_answer_as_extracted_fields(splunk_home, splunk_python, mixed_events):
    raw_only = [{"_time": row["_time"], "_raw": row["_raw"]} for row in mixed_events]
    full = ok(iamspike(splunk_home, splunk_python, ["show=all"], scpv2.split(mixed_events, 50_000)))
    raw = ok(iamspike(splunk_home, splunk_python, ["show=all"], scpv2.split(raw_only, 500)))
    assert raw == full


# ------------------------------------------------------------------------------ real incidents
def test_pwnedlabs_burst_is_flagged_for_the_principal_and_the_account(splunk_home, splunk_python):
    rows = ok(iamspike(splunk_home, splunk_python, [], [events(PWNED)]))
    assert rows and all(set(row) == SPIKE_KEYS for row in rows)
    principal = [r for r in rows if r["entity_type"] == "principal" and r["principal"] == TEMP_USER]
    account = [r for r in rows if r["entity_type"] == "account" and r["account"] == PWNED_ACCOUNT]
    assert [int(r["_time"]) for r in principal] == [BURST_HOUR]
    assert [int(r["_time"]) for r in account] == [BURST_HOUR]
    (flag,) = principal
    assert int(flag["failures"]) >= 500
    assert float(flag["upper"]) < int(flag["failures"])
    assert 0 <= float(flag["score"]) <= 100
    assert flag["severity"] in ("high", "critical")
    assert int(flag["distinct_apis"]) >= 50
    assert "AccessDenied (" in flag["top_error_codes"]
    assert "84.32.71." in flag["top_source_ips"]
    assert account[0]["principal"] == ""


def test_sans_steady_log_delivery_denial_is_not_flagged(splunk_home, splunk_python):
    rows = ok(iamspike(splunk_home, splunk_python, [], scpv2.split(events(SANS), 50_000)))
    delivery = [r for r in rows if "delivery.logs" in r["principal"]]
    assert delivery == []
    steady_from = calendar.timegm((2021, 7, 30, 1, 0, 0))  # one hour after the denials began
    steady_to = calendar.timegm((2021, 8, 2, 10, 0, 0))
    account = [
        r for r in rows if r["entity_type"] == "account" and steady_from <= int(r["_time"]) < steady_to
    ]
    assert account == []


# --------------------------------------------------------------------------------- bad options
@pytest.mark.parametrize(
    "args",
    [
        ["spam=1"],
        ["span=7x"],
        ["span=1s"],
        ["by=region"],
        ["min_failures=-3"],
        ["min_failures=lots"],
        ["show=everything"],
        ["sensitivity=high!"],
        ["account"],
    ],
)
def test_bad_option_is_one_error_line_and_a_clean_exit(splunk_home, splunk_python, args):
    session = iamspike(splunk_home, splunk_python, args, [[{"_time": "1", "eventName": "x"}]])
    assert session.getinfo.get("finished") is True
    assert session.replies == []
    ((level, text),) = session.warnings
    assert level == "ERROR"
    assert text.startswith("iamspike: ") and "\n" not in text and len(text) < 400
    assert "Traceback" not in text and "iamspike failed" not in text
    assert "Traceback" not in session.stderr


def test_junk_rows_are_counted_in_one_message_not_a_crash(splunk_home, splunk_python):
    good = events(PWNED)
    junk = [{"_time": "yesterday", "eventName": "GetUser"}, {"eventName": "GetUser"}, {"_raw": "{not json"}]
    session = iamspike(splunk_home, splunk_python, [], [junk + good[:300], good[300:]])
    rows = ok(session)
    assert any(r["principal"] == TEMP_USER for r in rows)
    assert [level for level, _ in session.warnings] == ["WARN"]
    ((_, text),) = session.warnings
    assert text == "skipped 3 rows with no usable _time"
    # an ad hoc search of a few hours without the saved baseline is told so, as a note, not a warning
    ((level, note),) = [message for message in session.messages if message not in session.warnings]
    assert level == "INFO" and note.startswith("no saved baseline reached iamspike") and "\n" not in note


# ---------------------------------------------------------------------------------- Input B
def aggregate(rows: list[dict]) -> list[dict]:
    """What `errorCode=* | bin _time span=1h | stats count by _time account principal errorCode
    eventName` gives (principal: the user ARN; enough for IAM users and root)."""
    counts: Counter = Counter()
    for row in rows:
        if not row.get("errorCode"):
            continue
        hour = int(row["_time"]) // 3600 * 3600
        principal = row.get("userIdentity.arn") or row.get("userIdentity.invokedBy") or ""
        counts[(hour, row["recipientAccountId"], principal, row["errorCode"], row["eventName"])] += 1
    return [
        {
            "_time": str(hour),
            "account": account,
            "principal": principal,
            "errorCode": code,
            "eventName": api,
            "count": str(n),
        }
        for (hour, account, principal, code, api), n in sorted(counts.items())
    ]


def test_input_b_pre_aggregated_counts_flag_the_same_burst(splunk_home, splunk_python):
    raw = events(PWNED)
    from_events = ok(iamspike(splunk_home, splunk_python, [], [raw]))
    table = aggregate(raw)
    from_counts = ok(iamspike(splunk_home, splunk_python, ["count_field=count"], scpv2.split(table, 13)))
    flagged = {key(r) for r in from_counts}
    assert (BURST_HOUR, "principal", PWNED_ACCOUNT, TEMP_USER) in flagged
    assert (BURST_HOUR, "account", PWNED_ACCOUNT, "") in flagged
    by_key = {key(r): r for r in from_events}
    for row in from_counts:
        if key(row) in by_key and row["entity_type"] == "principal":
            assert int(row["failures"]) == int(by_key[key(row)]["failures"])


def test_input_b_without_the_count_field_is_one_message_not_a_crash(splunk_home, splunk_python):
    session = iamspike(splunk_home, splunk_python, ["count_field=hits"], [aggregate(events(PWNED))])
    assert session.finished and session.rows == []
    assert len(session.warnings) >= 1
    assert all("\n" not in text and "iamspike failed" not in text for _, text in session.warnings)
    assert any("hits" in text for _, text in session.warnings)


# ------------------------------------------------------------------------------ state round trip
@pytest.fixture(scope="module")
def organisation():
    org = generator.generate(7, days=14, accounts=2, scenarios_per_kind=1)
    fields = ("_time", *scpv2.INPUT_A_FIELDS)
    rows = []
    for record in org.records:
        event = scpv2.splunk_event(record, fields=fields)
        rows.append({name: value for name, value in event.items() if name in fields})
    return org, rows


def test_state_saved_and_fed_back_gives_the_flags_of_one_long_run(splunk_home, splunk_python, organisation):
    org, rows = organisation
    cut = org.start + 10 * 86400
    early = [row for row in rows if int(row["_time"]) < cut]
    late = [row for row in rows if int(row["_time"]) >= cut]
    one_run = ok(iamspike(splunk_home, splunk_python, [], scpv2.split(rows, 50_000)))
    state = ok(iamspike(splunk_home, splunk_python, ["show=state"], scpv2.split(early, 50_000)))
    assert state and all(row.get("iamspike_state") for row in state)
    resumed = ok(iamspike(splunk_home, splunk_python, [], scpv2.split(state + late, 50_000)))
    expected = sorted(key(r) for r in one_run if int(float(r["_time"])) >= cut)
    assert expected, "the long run flags nothing in the later window: the test proves nothing"
    assert sorted(key(r) for r in resumed) == expected


# ------------------------------------------------------------------------------ rows that hurt
def test_no_row_can_fail_the_search(splunk_home, splunk_python):
    """A field far past csv's default 128 KB limit, NUL and other control characters (Python
    3.9's csv refuses NUL): every failed call is still counted, the search answers."""
    good = events(PWNED)
    hurt = [dict(row) for row in good[:40] if row.get("errorCode")]
    hurt[0]["userAgent"] = "x" * 300_000
    hurt[1]["_raw"] = hurt[1]["_raw"] + " " * 2_000_000
    hurt[2]["userAgent"] = "curl\x00/8"
    hurt[3]["eventName"] = "List\x01Users\x1b[0m\r"
    hurt[4]["requestParameters.policy"] = "\x00" * 10
    totals = {}
    for show in ("all", "state"):
        plain = ok(iamspike(splunk_home, splunk_python, [f"show={show}"], [good]))
        session = iamspike(splunk_home, splunk_python, [f"show={show}"], [hurt + good[40:], good[:40]])
        rows = ok(session)
        assert session.warnings == []
        assert len(rows) == len(plain) > 0
        totals[show] = [
            sum(int(r.get("failures") or 0) for r in answer if r["entity_type"] == "principal")
            for answer in (plain, rows)
        ]
    # the hurt rows are copies of failed calls also sent whole: each eventID counts once
    assert totals["all"][0] == totals["all"][1] > 0


def test_numeric_junk_in_count_field_is_one_warning_line(splunk_home, splunk_python):
    table = aggregate(events(PWNED))
    junk = ["abc", "nan", "inf", "-3", "0", "1e300", "1e309"]
    for row, value in zip([row for row in table if row["errorCode"] == "AccessDenied"], junk):
        row["count"] = value
    session = iamspike(splunk_home, splunk_python, ["count_field=count", "show=all"], [table])
    rows = ok(session)
    assert rows
    ((level, text),) = session.warnings
    assert level == "WARN"
    assert (
        text
        == "skipped 4 rows with an absurd count, 2 with a zero or negative count, 1 with a non-numeric count"
    )


# ------------------------------------------------------------------------------ damaged chunks
def test_chunks_with_zero_rows_change_nothing(splunk_home, splunk_python):
    good = events(PWNED)
    plain = ok(iamspike(splunk_home, splunk_python, [], [good]))
    header_only = scpv2.encode_rows(good[:1]).split(b"\n", 1)[0] + b"\n"
    session = iamspike(splunk_home, splunk_python, [], [b"", header_only, good, b""])
    assert sorted(map(key, ok(session))) == sorted(map(key, plain)) and plain
    assert session.warnings == []


def test_a_body_cut_short_skips_its_cut_row_in_one_warning(splunk_home, splunk_python):
    """A chunk whose body ends in the middle of a row (its header tells the truth about the cut
    body): the whole rows before the cut are read, the cut one skipped and counted."""
    good = events(PWNED)
    whole = ok(iamspike(splunk_home, splunk_python, [], [good]))
    body = scpv2.encode_rows(good)
    cut = body[: body.rindex(b"\n", 0, len(body) - 2) + 40]  # 40 bytes into the last row
    session = iamspike(splunk_home, splunk_python, [], [cut, good[-1:]])
    assert sorted(map(key, ok(session))) == sorted(map(key, whole)) and whole
    assert session.warnings == [("WARN", "skipped 1 row cut short (a chunk from splunkd was damaged)")]
    assert "Traceback" not in session.stderr


@pytest.mark.parametrize(
    ("lie", "level", "text"),
    [
        (+1000, "ERROR", "iamspike: unreadable data from splunkd (0 chunks read): body cut short: "),
        (-1000, "WARN", "skipped 1 row cut short (a chunk from splunkd was damaged)"),
    ],
    ids=["longer-than-sent", "shorter-than-sent"],
)
def test_a_chunk_header_that_lies_about_its_length_is_one_line(
    splunk_home, splunk_python, tmp_path, lie, level, text
):
    """The last chunk's header claims 1000 bytes more than splunkd sends (the command waits for
    them until stdin closes), or 1000 fewer (its last row is cut; what follows is never read):
    the search gets one line naming the damage, never a traceback."""
    body = scpv2.encode_rows(events(PWNED)[:50])
    meta = scpv2.encode_metadata(scpv2.execute_metadata(True))
    info = scpv2.getinfo_metadata(scpv2.searchinfo([], dispatch_dir=str(tmp_path)))
    getinfo = scpv2.frame(info, separators=scpv2.GETINFO_SEPARATORS)
    lying = b"chunked 1.0,%d,%d\n" % (len(meta), len(body) + lie) + meta + body
    command = scpv2.python_command(str(splunk_python), splunk_home.script("iamspike_command.py"))
    done = scpv2.replay(command, getinfo + lying, env=splunk_home.env())
    assert done.returncode == 0
    replies = scpv2.read_chunks(done.stdout)
    shown = replies[-1].metadata["inspector"]["messages"]
    ((said_level, said),) = [message for message in shown if message[0] != "INFO"]  # the note of no baseline
    assert (said_level, said[: len(text)]) == (level, text) and "\n" not in said
    assert "Traceback" not in done.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("years", [-3, 3], ids=["lo-years-earlier", "hi-years-later"])
def test_a_range_row_years_off_is_clamped_to_the_search_range(splunk_home, splunk_python, years):
    """The map phase's range row (``v3{"lo": .., "hi": ..}``) damaged into a plausible far time:
    the search head scores no more than the search's time range (getinfo's ``earliest_time`` and
    ``latest_time``), so the same rows are flagged, and says so once."""
    good = events(PWNED)
    times = [float(row["_time"]) for row in good]
    earliest, latest = min(times) // 3600 * 3600, max(times) // 3600 * 3600 + 3600
    window = {"earliest_time": f"{earliest:.9f}", "latest_time": f"{latest:.9f}"}
    command = scpv2.python_command(str(splunk_python), splunk_home.script("iamspike_command.py"))
    mapped = scpv2.run(
        command, ["phase=map"], [good], env=splunk_home.env(), info=scpv2.searchinfo(["phase=map"], **window)
    )
    assert mapped.errors == [] and mapped.finished
    (range_row,) = [row for row in mapped.rows if str(row["iamspike_counts"]).startswith("v3{")]
    blob = json.loads(str(range_row["iamspike_counts"])[2:])
    end = "lo" if years < 0 else "hi"
    far = dict(range_row, iamspike_counts="v3" + json.dumps({**blob, end: blob[end] + years * 365 * 86400}))
    damaged = [far if row is range_row else row for row in mapped.rows]
    for args in ([], ["show=all"]):
        runs = [
            iamspike(splunk_home, splunk_python, args, [rows], info=scpv2.searchinfo(args, **window))
            for rows in (mapped.rows, damaged)
        ]
        plain, clamped = (ok(session) for session in runs)
        assert sorted(clamped, key=key) == sorted(plain, key=key)
        assert (BURST_HOUR, "principal", PWNED_ACCOUNT, TEMP_USER) in set(map(key, plain))
        assert [earliest <= int(float(r["_time"])) < latest for r in clamped] == [True] * len(clamped)
        assert runs[0].warnings == []
        assert runs[1].warnings == [("WARN", "range rows outside the search's time range: clamped to it")]


# ----------------------------------------------------- damaged rows on the distributed path
# Packed count rows (`v5`), the profile's 5-minute masks, the state macro's rows of several
# states: each damage costs its own row (one WARN line names it), never the search.
MEMBER_HEAD = re.compile(r";\d+:\d+:")  # a v5 member's head `;<fields>:<offset>:<principal>`
MASKS = re.compile(r"\^([0-9a-f]{3}(?:\|[0-9a-f]{3})*);")  # a profile's masks group
PROFILE = re.compile(r";([^;^]+)\^([^;^]*)\^([^;^]*)\^([0-9a-f|]+);")


def map_phase(splunk_home, splunk_python, parts: list[list[dict]], info=None) -> list[dict]:
    """What each indexer's `iamspike phase=map` sends, together."""
    command = scpv2.python_command(str(splunk_python), splunk_home.script("iamspike_command.py"))
    shipped = []
    for part in parts:
        session = scpv2.run(command, ["phase=map"], [part], env=splunk_home.env(), info=info)
        assert session.returncode == 0 and session.errors == [] and session.finished, session.stderr[-2000:]
        shipped += session.rows
    return shipped


@pytest.fixture(scope="module")
def shipped_v6(splunk_home, splunk_python, mixed_events) -> list[dict]:
    """PwnedLabs and Invictus counted by two indexers: packed (`v6`) rows among them."""
    rows = map_phase(splunk_home, splunk_python, [mixed_events[::2], mixed_events[1::2]])
    assert any(str(row["iamspike_counts"]).startswith("v6;") for row in rows)
    return rows


@pytest.fixture(scope="module")
def shipped(shipped_v6) -> list[dict]:
    """The same rows as indexers before `v6` sent them: packed (`v5`) rows among them."""
    return [
        dict(row, iamspike_counts=v6_as_v5(str(row["iamspike_counts"])))
        if str(row["iamspike_counts"]).startswith("v6;")
        else row
        for row in shipped_v6
    ]


def cut_at_a_member(text: str) -> tuple[str, int]:
    return text[: [m.start() for m in MEMBER_HEAD.finditer(text)][-1]], 1


def cut_mid_member(text: str) -> tuple[str, int]:
    heads = [m.start() for m in MEMBER_HEAD.finditer(text)]
    return text[: (heads[-2] + heads[-1]) // 2], 1


def masks_not_hex(text: str) -> tuple[str, int]:
    return MASKS.subn(lambda m: "^" + re.sub("[0-9a-f]{3}", "zzz", m.group(1)) + ";", text)


def a_negative_mask(text: str) -> tuple[str, int]:
    """Each profile gains a second source whose mask is ``-01`` (int() reads it as -1)."""
    return PROFILE.subn(r";\1|zzz.amazonaws.com^\2^\3^\4|-01;", text)


def masks_twice(text: str) -> tuple[str, int]:
    return MASKS.subn(r"^\1^\1;", text)


def nul(text: str) -> tuple[str, int]:
    return text.replace(";", "\x00", 2), 1


@pytest.mark.parametrize("show", ["all", "state"])
@pytest.mark.parametrize(
    "damage",
    [cut_at_a_member, cut_mid_member, masks_not_hex, a_negative_mask, masks_twice, nul, "non-utf-8", "deep"],
    ids=lambda d: d if isinstance(d, str) else d.__name__,
)
def test_a_damaged_packed_row_costs_itself_in_one_line(splunk_home, splunk_python, shipped, show, damage):
    """One `v5` row damaged on its way to the search head (cut where a member ends or within one,
    its masks not 3 hex digits, negative or doubled, NUL or bytes that are not UTF-8 in its text)
    or the range row nested past json's recursion limit: the answer is the one without that row,
    with one WARN line counting what was skipped, on the alert path and on `show=state`'s spill."""
    packed = max(
        (i for i, row in enumerate(shipped) if str(row["iamspike_counts"]).startswith("v5;")),
        key=lambda i: len(MEMBER_HEAD.findall(str(shipped[i]["iamspike_counts"]))),
    )
    at, text = packed, str(shipped[packed]["iamspike_counts"])
    if damage == "deep":
        at = next(i for i, row in enumerate(shipped) if str(row["iamspike_counts"]).startswith("v3{"))
        damaged, skipped = 'v3{"lo":' + "[" * 100_000, 1
    elif damage == "non-utf-8":
        damaged, skipped = "v5;\x01" + text[3:], 1  # \x01 becomes bytes \xff\xfe in the body
    else:
        damaged, skipped = damage(text)
    assert damaged != text and skipped > 0
    rows = [dict(row, iamspike_counts=damaged) if i == at else row for i, row in enumerate(shipped)]
    body = scpv2.encode_rows(rows).replace(b"v5;\x01", b"v5;\xff\xfe")
    args = [f"show={show}"]
    without = ok(iamspike(splunk_home, splunk_python, args, [shipped[:at] + shipped[at + 1 :]]))
    session = iamspike(splunk_home, splunk_python, args, [body])
    assert ok(session) == without and without
    ((level, said),) = session.warnings
    assert (
        level == "WARN"
        and said
        == f"skipped {'1 row' if skipped == 1 else f'{skipped} rows'} with unreadable iamspike_counts"
    )
    assert "Traceback" not in session.stderr


def v6_column(at: int, value: str):
    def damage(text: str) -> tuple[str, int]:
        fields = text.split(";")
        return ";".join([*fields[:at], value, *fields[at + 1 :]]), 1

    damage.__name__ = f"column_{at}_{value}"
    return damage


@pytest.mark.parametrize("show", ["all", "state"])
@pytest.mark.parametrize(
    "damage",
    [
        lambda text: (text[: len(text) * 2 // 3], 1),  # cut
        lambda text: (text[: text.rfind(";") + 3], 1),  # cut within the last entry
        v6_column(6, "x"),  # failures that are no number
        v6_column(6, "-1"),
        v6_column(5, "1"),  # parts' offsets fewer than the parts
        v6_column(12, "QUJD"),  # digests other than the parts'
        "fewer state_keys",
    ],
    ids=lambda d: d if isinstance(d, str) else d.__name__,
)
def test_a_damaged_v6_row_costs_itself_in_one_line(splunk_home, splunk_python, shipped_v6, show, damage):
    """One `v6` row damaged on its way (cut, a column that is no number or not the parts', its
    members more than its `state_keys`): the answer is the one without that row, with one WARN
    line, on the alert path and on `show=state`'s spill."""
    at = max(
        (i for i, row in enumerate(shipped_v6) if str(row["iamspike_counts"]).startswith("v6;")),
        key=lambda i: len(str(shipped_v6[i]["iamspike_counts"])),
    )
    row = dict(shipped_v6[at])
    if damage == "fewer state_keys":
        row["state_keys"] = str(row["state_keys"]).rpartition(" ")[0]
    else:
        row["iamspike_counts"], _ = damage(str(row["iamspike_counts"]))
    assert row != shipped_v6[at]
    rows = [row if i == at else other for i, other in enumerate(shipped_v6)]
    args = [f"show={show}"]
    without = ok(iamspike(splunk_home, splunk_python, args, [shipped_v6[:at] + shipped_v6[at + 1 :]]))
    session = iamspike(splunk_home, splunk_python, args, [rows])
    assert ok(session) == without and without
    assert session.messages == [("WARN", "skipped 1 row with unreadable iamspike_counts")]
    assert "Traceback" not in session.stderr


def as_version_1(text: str) -> str:
    """A principal's saved state as version 1 wrote it (`seen`, no `type`)."""
    blob = json.loads(text)
    blob = {**blob, "v": 1, "seen": blob.pop("first_failures", {})}
    blob.pop("type")
    return json.dumps(blob)


@pytest.mark.parametrize("show", ["all", "state"])
def test_the_state_macros_rows_of_several_states_are_read_state_by_state(
    splunk_home, splunk_python, mixed_events, show
):
    """`iam_error_spike_baseline` appends one row per account whose `iamspike_state` is multivalue
    (the account's states, joined by newlines on the wire): the scoring (`show=all`) and the
    Baseline Maintenance's `show=state` read them as rows of one state each. Among them a cut
    state and one nested past json's recursion limit are named in one WARN line (what to re-run),
    a version-1 state is read. (`show=state` read such a row as one unreadable state and wrote
    its entities back without their saved history, silently.)"""
    half = len(mixed_events) // 2
    saved = ok(iamspike(splunk_home, splunk_python, ["show=state"], [mixed_events[:half]]))
    late = map_phase(splunk_home, splunk_python, [mixed_events[half::2], mixed_events[half + 1 :: 2]])
    args = [f"show={show}"]
    one_a_row = ok(
        iamspike(
            splunk_home,
            splunk_python,
            args,
            [late + [{"iamspike_state": r["iamspike_state"]} for r in saved]],
        )
    )
    assert one_a_row != ok(iamspike(splunk_home, splunk_python, args, [late]))  # the state matters
    states: dict[str, list[str]] = {}
    for row in saved:
        states.setdefault(str(row["account"]), []).append(str(row["iamspike_state"]))
    macro = [{"iamspike_state": texts} for texts in states.values()]
    session = iamspike(splunk_home, splunk_python, args, [late + macro])
    assert ok(session) == one_a_row and session.warnings == []
    texts = next(texts for texts in states.values() if len(texts) > 2)
    principal = next(i for i, text in enumerate(texts) if '"type":"principal"' in text)
    texts[principal] = as_version_1(texts[principal])
    texts += [texts[0][:60], "[" * 100_000]
    session = iamspike(splunk_home, splunk_python, args, [late + macro])
    assert ok(session) == one_a_row
    assert session.warnings == [
        (
            "WARN",
            "skipped 2 rows with an iamspike_state that is unreadable or of another span;"
            " run 'IAM Error Spike - Baseline Backfill' to rebuild the saved state",
        )
    ]


@pytest.mark.parametrize("phase", ["map", "reporting"])
def test_short_and_blank_lines_in_a_chunk_are_skipped_in_one_line(splunk_home, splunk_python, shipped, phase):
    """A chunk that still ends with a line break but holds a row of two fields and a blank line
    in its middle: those are skipped and counted, the rest read. (An IndexError failed the
    search.)"""
    rows = events(PWNED) if phase == "map" else shipped
    args = ["phase=map"] if phase == "map" else ["show=all"]
    lines = scpv2.encode_rows(rows).split(b"\n")
    body = b"\n".join([*lines[:3], b"1,2", b"", *lines[3:]])
    plain = iamspike(splunk_home, splunk_python, args, [rows])
    session = iamspike(splunk_home, splunk_python, args, [body])
    assert session.rows == plain.rows and plain.rows and session.errors == []
    assert session.warnings == [("WARN", "skipped 2 rows cut short (a chunk from splunkd was damaged)")]


def test_a_map_phase_given_only_bad_rows_sends_its_range_row_and_the_search_head_names_them(
    splunk_home, splunk_python
):
    """Raw rows none of which can be counted (no usable `_time`, no fields, `_raw` that is not a
    record or is nested past json's recursion limit): the map phase sends only its range row, the
    search head answers nothing and names them in one WARN line."""
    when = str(BURST_HOUR)
    junk = [
        {"_time": "yesterday", "eventName": "GetUser"},
        {"_time": when, "_raw": "{not json"},
        {"_time": when, "_raw": '{"a":' + "[" * 100_000},
    ]
    mapped = map_phase(splunk_home, splunk_python, [junk])
    assert [str(row["iamspike_counts"])[:3] for row in mapped] == ["v3{"]
    session = iamspike(splunk_home, splunk_python, ["show=all"], [mapped])
    assert ok(session) == []
    assert session.warnings == [
        ("WARN", "skipped 2 rows without the fields iamspike needs, 1 with no usable _time")
    ]


def test_a_large_chunk_whose_header_claims_more_than_is_sent_is_one_error_line(splunk_home, splunk_python):
    """A body over 64 MiB (read from stdin in 1 MiB pieces as the rows are taken) whose header
    claims 1,000 bytes more than splunkd sends before closing the pipe: one ERROR line naming
    the short body, no traceback."""
    good = events(PWNED)
    body = scpv2.encode_rows(good * (64 * 2**20 // len(scpv2.encode_rows(good)) + 1))
    assert len(body) > 64 * 2**20
    meta = scpv2.encode_metadata(scpv2.execute_metadata(True))
    getinfo = scpv2.frame(scpv2.getinfo_metadata(scpv2.searchinfo([])), separators=scpv2.GETINFO_SEPARATORS)
    lying = b"chunked 1.0,%d,%d\n" % (len(meta), len(body) + 1000) + meta + body
    command = scpv2.python_command(str(splunk_python), splunk_home.script("iamspike_command.py"))
    done = scpv2.replay(command, getinfo + lying, env=splunk_home.env())
    assert done.returncode == 0
    ((level, said),) = scpv2.read_chunks(done.stdout)[-1].metadata["inspector"]["messages"]
    assert level == "ERROR" and "\n" not in said
    assert said == (
        "iamspike: unreadable data from splunkd (0 chunks read):"
        f" body cut short: {len(body)} of {len(body) + 1000} bytes"
    )
    assert "Traceback" not in done.stderr.decode("utf-8", "replace")
