"""iamspike_splunk.chunked: the command-side SCPv2 loop, with small sinks (not the engine)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
from iamspike_splunk import chunked
from standin import scpv2

RECORDINGS = Path(__file__).resolve().parent.parent / "data" / "scpv2-recordings"
GETINFO = scpv2.frame(scpv2.getinfo_metadata(scpv2.searchinfo(["span=1h"])))


class Collect:
    """Accumulates every row it is given; results() reports what it saw."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.headers: list[list[str]] = []
        self.rows: list[list[str]] = []
        self.calls = 0

    def add_rows(self, header, rows):
        self.calls += 1
        self.headers.append(list(header))
        self.rows.extend(list(row[: len(header)]) for row in rows)

    def results(self):
        return [
            {"calls": self.calls, "rows": len(self.rows), "first": self.rows[0][0] if self.rows else None}
        ]


def serve(data: bytes, factory=Collect, **kwargs) -> tuple[int, list[scpv2.Chunk], bytes]:
    out = io.BytesIO()
    status = chunked.serve(factory, io.BytesIO(data), out, **kwargs)
    return status, scpv2.read_chunks(out.getvalue()), out.getvalue()


def execute(rows: list[dict], finished: bool) -> bytes:
    return scpv2.frame(scpv2.execute_metadata(finished), scpv2.encode_rows(rows))


# ------------------------------------------------------------------------------------ framing
def test_read_chunk_reads_header_metadata_and_body_and_skips_blank_lines():
    data = b"\n" + scpv2.frame({"action": "execute", "finished": True}, "a\n\xe9\n".encode())
    metadata, body = chunked.read_chunk(io.BytesIO(data))
    assert metadata == {"action": "execute", "finished": True}
    assert body == "a\n\xe9\n".encode()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"chunked 2.0,2,0\n{}", "bad transport header"),
        (b"chunked 1.0,2,10\n{}abc", "body cut short: 3 of 10 bytes"),
        (b"chunked 1.0,20,0\n{}", "metadata cut short"),
        (b"chunked 1.0,3,0\n{x}", "metadata is not JSON"),
        (b"chunked 1.0,2,0\n[]", "not a JSON object"),
    ],
)
def test_read_chunk_rejects_broken_chunks(data, message):
    with pytest.raises(chunked.ProtocolError, match=re.escape(message)):
        chunked.read_chunk(io.BytesIO(data))


def test_frame_counts_bytes_and_escapes_metadata_to_ascii():
    body = "é\n".encode()
    data = chunked.frame({"finished": True, "inspector": {"messages": [["WARN", "café"]]}}, body)
    head, rest = data.split(b"\n", 1)
    metadata_length, body_length = (int(part) for part in head.split(b",")[1:])
    assert body_length == 3 and rest[metadata_length:] == body
    assert rest[:metadata_length] == b'{"finished":true,"inspector":{"messages":[["WARN","caf\\u00e9"]]}}'


def test_encode_results_adds_mv_twins_only_for_list_values():
    body = chunked.encode_results(
        [
            {"_time": 3600, "score": 97.5, "ok": True, "note": None, "codes": ["A$1", "B"]},
            {"_time": 7200, "score": 1.0, "ok": False, "late": "x,y"},
        ]
    )
    assert body.decode() == (
        "_time,score,ok,note,codes,__mv_codes,late\r\n"
        '3600,97.5,1,,"A$1\nB",$A$$1$;$B$,\r\n'
        '7200,1.0,0,,,,"x,y"\r\n'
    )
    assert scpv2.decode_rows(body)[0]["codes"] == ["A$1", "B"]


def test_encode_results_of_nothing_is_an_empty_body():
    assert chunked.encode_results([]) == b""


# -------------------------------------------------------------------------------- the loop
def test_getinfo_reply_is_a_reporting_command_and_each_chunk_is_acknowledged_until_finished():
    rows = [{"_time": str(i), "eventName": f"Call{i}"} for i in range(10)]
    data = GETINFO + execute(rows[:3], False) + execute(rows[3:9], False) + execute(rows[9:], True)
    status, replies, raw = serve(data)
    assert status == 0
    assert replies[0].metadata == {"type": "reporting", "run_in_preview": False}
    assert raw.startswith(b'chunked 1.0,43,0\n{"type":"reporting","run_in_preview":false}\n')
    assert [chunk.metadata for chunk in replies[1:]] == [
        {"finished": False},
        {"finished": False},
        {"finished": True},
    ]
    assert [chunk.body for chunk in replies[1:3]] == [b"", b""]
    assert scpv2.decode_rows(replies[3].body) == [{"calls": "3", "rows": "10", "first": "0"}]


def test_rows_reach_the_sink_untouched_as_header_and_lists():
    sinks = []

    def factory(args):
        sinks.append(Collect(args))
        return sinks[-1]

    rows = [{"_time": "1", "userIdentity.arn": "arn:aws:iam::1:user/a", "errorCode": ["AccessDenied", "x"]}]
    serve(GETINFO + execute(rows, True), factory)
    assert sinks[0].args == ["span=1h"]
    header = ["_time", "userIdentity.arn", "errorCode"]
    assert sinks[0].headers == [header + ["__mv_" + name for name in header]]
    assert sinks[0].rows == [["1", "arn:aws:iam::1:user/a", "AccessDenied\nx", "", "", "$AccessDenied$;$x$"]]


def test_an_empty_final_chunk_still_gives_results():
    data = GETINFO + execute([{"_time": "5"}], False) + scpv2.frame(scpv2.execute_metadata(True))
    _, replies, _ = serve(data)
    assert scpv2.decode_rows(replies[-1].body) == [{"calls": "1", "rows": "1", "first": "5"}]


ROWS_OUT = [{"n": str(i), "text": f'a,"b"\n{i}', "x": i % 3} for i in range(chunked.STREAM_ROWS * 2 + 7)]


@pytest.mark.parametrize("n", [0, 1, len(ROWS_OUT)])
def test_streamed_results_are_the_bytes_of_listed_ones(tmp_path, monkeypatch, n):
    """A sink may give its results as an iterator (``show=state`` does): the same reply bytes."""

    class Listed(Collect):
        def results(self):
            return ROWS_OUT[:n]

    class Streams(Collect):
        def results(self):
            return iter(ROWS_OUT[:n])

    monkeypatch.chdir(tmp_path)  # the spool file's folder (splunkd: the dispatch directory)
    data = GETINFO + execute([{"_time": "5"}], True)
    assert serve(data, Streams)[2] == serve(data, Listed)[2]
    assert list(tmp_path.iterdir()) == []


def test_bad_option_is_one_error_line_in_the_getinfo_reply_and_nothing_more_is_read():
    def factory(args):
        raise ValueError("unknown option 'spam' (known: span, by)\n  see docs")

    status, replies, _ = serve(GETINFO + b"this is never read", factory)
    assert status == 0
    assert len(replies) == 1
    assert replies[0].metadata["finished"] is True
    assert replies[0].metadata["type"] == "reporting"
    assert replies[0].metadata["inspector"] == {
        "messages": [["ERROR", "iamspike: unknown option 'spam' (known: span, by) see docs"]]
    }


def test_only_the_declared_user_errors_are_shown_as_option_errors(caplog):
    class OptionError(ValueError):
        pass

    def factory(args):
        raise OptionError("span must be between 5m and 1d")

    _, replies, _ = serve(GETINFO, factory, user_errors=(OptionError,))
    assert replies[0].metadata["inspector"]["messages"] == [
        ["ERROR", "iamspike: span must be between 5m and 1d"]
    ]


def test_unexpected_error_is_one_line_in_the_ui_and_the_traceback_goes_to_the_log(caplog):
    class Broken(Collect):
        def add_rows(self, header, rows):
            raise KeyError("userIdentity")

    caplog.set_level(logging.ERROR, logger="iamspike.command")
    data = GETINFO + execute([{"_time": "1"}], False) + execute([{"_time": "2"}], True)
    status, replies, _ = serve(data, Broken, user_errors=())
    assert status == 0
    assert replies[-1].metadata == {
        "finished": True,
        "inspector": {
            "messages": [["ERROR", "iamspike failed: KeyError: 'userIdentity' (details in search.log)"]]
        },
    }
    assert "Traceback" in caplog.text and "add_rows" in caplog.text
    assert "Traceback" not in json.dumps(replies[-1].metadata)


def test_error_in_the_factory_that_is_not_an_option_error_is_reported_in_getinfo():
    def factory(args):
        raise ImportError("No module named 'numpy'")

    _, replies, _ = serve(GETINFO, factory, user_errors=())
    assert replies[0].metadata["finished"] is True
    assert replies[0].metadata["inspector"]["messages"][0][1].startswith("iamspike failed: ImportError:")


def test_input_closed_before_finished_ends_quietly_without_results():
    status, replies, _ = serve(GETINFO + execute([{"_time": "1"}], False))
    assert status == 0
    assert [chunk.metadata for chunk in replies] == [GETINFO_REPLY, {"finished": False}]


GETINFO_REPLY = {"type": "reporting", "run_in_preview": False}


def test_execute_before_getinfo_is_a_protocol_error():
    _, replies, _ = serve(execute([{"_time": "1"}], True), user_errors=())
    assert "expected getinfo, got 'execute'" in replies[0].metadata["inspector"]["messages"][0][1]


def test_no_input_at_all_exits_with_status_1():
    status, replies, _ = serve(b"")
    assert status == 1 and replies == []


def test_sink_messages_are_passed_on_as_inspector_messages():
    class Warns(Collect):
        def messages(self):
            return ["3 rows without _time were skipped\n", ("INFO", "state restored")]

    _, replies, _ = serve(GETINFO + execute([{"_time": "1"}], True), Warns)
    assert replies[-1].metadata["inspector"] == {
        "messages": [["WARN", "3 rows without _time were skipped"], ["INFO", "state restored"]]
    }


# ---------------------------------------------------------------- the real splunkd recordings
def recorded(name: str) -> bytes:
    path = RECORDINGS / name
    return gzip.open(path).read() if name.endswith(".gz") else path.read_bytes()


class WordCount(Collect):
    """countmatches fieldname=word_count pattern=\\w+ text, as recorded."""

    def results(self):
        header = self.headers[0]
        text = header.index("text")
        return [
            {**dict(zip(header, row)), "word_count": len(re.findall(r"\w+", row[text], re.ASCII))}
            for row in self.rows
        ]


class Total(Collect):
    """sum total=total value1 (map phase: value1; reduce phase: the map totals), as recorded."""

    def results(self):
        header = self.headers[0]
        column = header.index("value1" if "value1" in header else "total")
        total = 0.0
        for row in self.rows:
            total += float(row[column])
        return [{"total": total}]


@pytest.mark.parametrize(
    "recording, sink, output",
    [
        ("countmatches", WordCount, "countmatches.output"),
        ("sum.map", Total, "sum.map.output.py3"),
        ("sum.reduce", Total, "sum.reduce.output"),
    ],
)
def test_recorded_splunkd_input_is_read_and_answered_as_recorded(recording, sink, output):
    status, replies, raw = serve(recorded(recording + ".input.gz"), sink)
    expected = scpv2.read_chunks(recorded(output))
    assert status == 0
    # framing: a getinfo reply, a newline after it, then one finished chunk with the rows
    assert re.fullmatch(
        rb"chunked 1\.0,\d+,0\n\{[^\n]*\}\nchunked 1\.0,17,\d+\n\{\"finished\":true\}.*", raw, re.S
    )
    assert [chunk.metadata for chunk in replies][1:] == [chunk.metadata for chunk in expected][1:]
    assert replies[-1].body.endswith(b"\r\n") and expected[-1].body.endswith(b"\r\n")
    got, want = scpv2.decode_rows(replies[-1].body), scpv2.decode_rows(expected[-1].body)
    assert len(got) == len(want) and got == want


def test_output_pipe_closed_by_splunkd_ends_with_status_1():
    class Closed(io.BytesIO):
        def write(self, data):
            raise BrokenPipeError(32, "Broken pipe")

    assert chunked.serve(Collect, io.BytesIO(GETINFO), Closed()) == 1


def test_getinfo_reply_and_its_newline_go_out_in_one_write():
    class Writes(io.BytesIO):
        def __init__(self):
            super().__init__()
            self.calls = []

        def write(self, data):
            self.calls.append(bytes(data))
            return super().write(data)

    out = Writes()
    chunked.serve(Collect, io.BytesIO(GETINFO), out)
    assert out.calls[0].endswith(b'"run_in_preview":false}\n')


def test_error_that_cannot_be_shown_because_splunkd_left_ends_with_status_1():
    class ClosedAfterGetinfo(io.BytesIO):
        def write(self, data):
            if self.getvalue():
                raise BrokenPipeError(32, "Broken pipe")
            return super().write(data)

    class Broken(Collect):
        def add_rows(self, header, rows):
            raise RuntimeError("boom")

    data = GETINFO + execute([{"_time": "1"}], True)
    assert chunked.serve(Broken, io.BytesIO(data), ClosedAfterGetinfo(), user_errors=()) == 1


# ------------------------------------------------------------------------------ streaming sinks
class Echo(Collect):
    """A streaming sink: answers every chunk with its rows, plus a last row at finished."""

    def __init__(self, args: list[str]) -> None:
        super().__init__(args)
        self.ready: list[dict] = []

    def getinfo(self):
        return {"type": "streaming"}

    def add_rows(self, header, rows):
        super().add_rows(header, rows)
        self.ready.extend(dict(zip(header, row)) for row in self.rows[-1:])

    def take(self):
        out, self.ready = self.ready, []
        return out

    def results(self):
        return [*self.take(), {"n": "last"}]


def test_a_streaming_sink_answers_each_chunk_with_what_it_has_ready():
    data = GETINFO + execute([{"_time": "1"}, {"_time": "2"}], False) + execute([{"_time": "3"}], True)
    status, replies, _ = serve(data, Echo)
    assert status == 0
    assert [chunk.metadata for chunk in replies] == [
        {"type": "streaming"},
        {"finished": False},
        {"finished": True},
    ]
    assert [row["_time"] for row in scpv2.decode_rows(replies[1].body)] == ["2"]
    assert [row.get("_time") or row["n"] for row in scpv2.decode_rows(replies[2].body)] == ["3", "last"]


def test_a_field_past_csvs_default_limit_and_nul_are_read():
    big, nul = "x" * 300_000, "a\x00b"
    _, replies, _ = serve(GETINFO + execute([{"_time": "1", "f": big}, {"_time": "2", "f": nul}], True), Echo)
    values = [row["f"] for row in scpv2.decode_rows(replies[-1].body)[:-1]]
    assert values == [nul.replace("\x00", "\ufffd")]  # Echo keeps the last row of each chunk
    header, rows = chunked.read_body(scpv2.encode_rows([{"f": big}, {"f": nul}]))
    assert [row[header.index("f")] for row in rows] == [big, "a\ufffdb"]


@pytest.mark.parametrize("large", [False, True], ids=["whole", "in-pieces"])
def test_short_and_blank_lines_inside_a_body_are_skipped_in_one_warning(large):
    """A damaged chunk that still ends with a line break, with a short row and a blank line in
    its middle (csv gives ``[]`` for a blank line): those two are skipped and counted, the others
    read. (Every sink indexes a row by the header's columns: a short row failed the search with an
    IndexError.)"""
    rows = _big_rows() if large else [{"_time": str(n), "f": f"v{n}"} for n in range(10)]
    lines = scpv2.encode_rows(rows).split(b"\n")
    body = b"\n".join([*lines[:4], b"1,2", b"", *lines[4:]])
    assert body.endswith(b"\n") and (len(body) > chunked.BODY_IN_PIECES) == large
    status, replies, _ = serve(GETINFO + scpv2.frame(scpv2.execute_metadata(True), body))
    assert status == 0 and scpv2.decode_rows(replies[-1].body)[0]["rows"] == str(len(rows))
    assert replies[-1].metadata["inspector"]["messages"] == [
        ["WARN", "skipped 2 rows cut short (a chunk from splunkd was damaged)"]
    ]


@pytest.mark.parametrize(
    ("earliest", "latest", "bounds"),
    [
        ("1443150000.000000000", "1443153600.000000000", (1443150000.0, 1443153600.0)),
        ("0", "0", (-math.inf, math.inf)),  # all time, as the recordings' searches
        ("", None, (-math.inf, math.inf)),
        ("rt-5m", "rt", (-math.inf, math.inf)),
        ("nan", "inf", (-math.inf, math.inf)),
    ],
)
def test_the_search_range_is_getinfos_window_unbounded_where_zero_or_unread(earliest, latest, bounds):
    assert chunked.search_range({"earliest_time": earliest, "latest_time": latest}) == bounds


# ------------------------------------------------------------------------- bodies read in pieces
def _big_rows(n: int = 140_000) -> list[dict]:
    """About 70 MB of rows (over BODY_IN_PIECES), a NUL, a quoted line break and non-ASCII text
    among them; the values straddle the reader's 1 MiB pieces."""
    rows = [{"_time": str(i), "f": f"{i:07d}" + "x" * 480, "g": "é"} for i in range(n)]
    rows[1234]["f"], rows[99_999]["f"], rows[-1]["g"] = "a\x00b", 'two\r\nlines, "quoted"', "ü" * 3
    return rows


class Keep(Collect):
    """Keeps every row's fields (Collect keeps them too, but compares only counts)."""

    def results(self):
        return [{"rows": len(self.rows), "digest": hash(tuple(map(tuple, self.rows)))}]


def test_a_large_body_is_read_in_pieces_as_the_whole_body_is_read():
    rows = _big_rows()
    body = scpv2.encode_rows(rows)
    assert len(body) > chunked.BODY_IN_PIECES
    header, whole = chunked.read_body(body)
    want = [r[: len(header)] for r in whole]
    sink = Keep([])
    out = io.BytesIO()
    data = GETINFO + scpv2.frame(scpv2.execute_metadata(True), body)
    assert chunked.serve(lambda args: sink, io.BytesIO(data), out) == 0
    assert sink.headers == [header] and sink.rows == want
    f = header.index("f")
    assert want[1234][f] == "a\ufffdb" and want[99_999][f].startswith("two\r\n")


def test_a_large_body_cut_mid_row_skips_that_row_in_one_warning():
    body = scpv2.encode_rows(_big_rows())
    cut = body[: body.rindex(b"\n", 0, len(body) - 2) + 40]  # 40 bytes into the last row
    data = GETINFO + scpv2.frame(scpv2.execute_metadata(True), cut)
    status, replies, _ = serve(data)
    assert status == 0 and scpv2.decode_rows(replies[-1].body)[0]["rows"] == str(len(_big_rows()) - 1)
    assert replies[-1].metadata["inspector"]["messages"] == [
        ["WARN", "skipped 1 row cut short (a chunk from splunkd was damaged)"]
    ]


def test_a_large_body_longer_than_the_input_is_one_error_line():
    body = scpv2.encode_rows(_big_rows())
    meta = scpv2.encode_metadata(scpv2.execute_metadata(True))
    data = GETINFO + b"chunked 1.0,%d,%d\n" % (len(meta), len(body) + 1000) + meta + body
    status, replies, _ = serve(data)
    assert status == 0
    ((level, text),) = replies[-1].metadata["inspector"]["messages"]
    assert level == "ERROR" and f"body cut short: {len(body)} of {len(body) + 1000} bytes" in text


class Head(Collect):
    """Takes only a chunk's first rows (what the loop does with the rest is its business)."""

    def add_rows(self, header, rows):
        super().add_rows(header, [next(iter(rows))])


def test_what_a_sink_leaves_of_a_large_body_is_skipped_to_the_next_chunk():
    big = scpv2.frame(scpv2.execute_metadata(False), scpv2.encode_rows(_big_rows()))
    data = GETINFO + big + execute([{"_time": "last"}], True)
    status, replies, _ = serve(data, Head)
    assert status == 0 and scpv2.decode_rows(replies[-1].body) == [{"calls": "2", "rows": "2", "first": "0"}]


# ------------------------------------------------------------------------- bodies of long lines
def _csv_reader_rows(body: bytes) -> list[list[str]]:
    """What csv.reader gives of a body (NUL replaced as the loop replaces it)."""
    body = body.replace(b"\x00", chunked.NUL_REPLACEMENT)
    text = io.TextIOWrapper(io.BytesIO(body), encoding="utf-8", errors="replace", newline="")
    return list(csv.reader(text))


def _loop_rows(body: bytes) -> list[list[str]]:
    header, rows = chunked.read_body(body)
    return [header, *rows] if header or body else []


LONG = "v6;" + "|".join(["v40"] * 3000)  # a long field, as a packed count row's


@pytest.mark.parametrize(
    "body",
    [
        f"_time,account,principal,iamspike_counts\n1,111,,{LONG}\n2,111,,{LONG}\n".encode(),
        f'"_time",account,"iamspike_counts"\r\n1,111,"{LONG}"\r\n2,,"{LONG}"\r\n'.encode(),  # splunkd quotes
        f'a,b\n"x,y",{LONG}\n"two\nlines",{LONG}\n"say ""hi""",z\n'.encode(),  # csv.reader's lines
        f'a,b\r\n"two\r\nlines",{LONG}\rbare,cr\n\n,\nx"y,"z"\n""\n'.encode(),  # CR, blank, a quote inside
        b"a,b\n\xff\xe2\x82,\xc3\xa9\x00\n" + LONG.encode() + b",\xe2\x82",  # bad UTF-8, NUL, no last LF
        b'a\n"open quote, never closed\n',
    ],
    ids=["plain", "splunkd-quoted", "quoted-commas-and-breaks", "cr-and-blanks", "bytes", "open-quote"],
)
def test_a_body_of_long_lines_reads_as_csv_reader_reads_it(body):
    """A body of few lines is split on commas where csv.reader would give the same (fields
    unquoted, or quoted whole with nothing to unquote inside), and read by csv.reader elsewhere:
    the rows are csv.reader's, and its error where it has one."""
    try:
        want = _csv_reader_rows(body)
    except csv.Error as error:
        with pytest.raises(csv.Error, match=re.escape(str(error))):
            _loop_rows(body)
        return
    assert _loop_rows(body) == want


def test_random_bodies_read_as_csv_reader_reads_them():
    """Bodies drawn from quotes, commas, CR, LF, bad UTF-8, NUL and long runs: the same rows as
    csv.reader's (or the same error), read whole and in pieces (a line split over pieces)."""
    rng = np.random.default_rng(15)
    alphabet = [
        b"a",
        b",",
        b'"',
        b"\n",
        b"\r",
        b"\r\n",
        b"x" * 40,
        "\u00e9".encode(),
        b"\xe2\x82",
        b"\xff",
        b'""',
        b"\x00",
    ]
    compared = 0
    for _ in range(3000):
        body = b"".join(alphabet[i] for i in rng.integers(0, len(alphabet), int(rng.integers(1, 50))))
        try:
            want = _csv_reader_rows(body)
        except csv.Error:
            with pytest.raises(csv.Error):
                _loop_rows(body)
            continue
        assert _loop_rows(body) == want, body
        compared += 1
    assert compared > 1000


def test_a_long_line_over_several_pieces_reads_whole(monkeypatch):
    """Lines longer than a piece (a count row over 1 MiB) read as csv.reader reads them, in pieces."""
    monkeypatch.setattr(chunked, "PIECE", 1000)
    body = ("a,b\n" + f'1,"{LONG}"\n' + f"2,{LONG}x\n" + '3,"q""q"\n').encode()
    sink = Keep([])
    data = GETINFO + scpv2.frame(scpv2.execute_metadata(True), body)
    monkeypatch.setattr(chunked, "BODY_IN_PIECES", 100)
    assert chunked.serve(lambda args: sink, io.BytesIO(data), io.BytesIO()) == 0
    want = _csv_reader_rows(body)
    assert sink.headers == [want[0]] and sink.rows == want[1:]
