"""The SCPv2 stand-in against reality: real splunkd recordings (tests/data/scpv2-recordings, see
its NOTICE).

1. The driver frames getinfo and execute exactly as splunkd did, byte for byte, and writes CSV
   bodies exactly as splunkd did.
2. The driver's reader parses what real commands wrote back (results, inspector messages,
   metrics).
3. The installed ``iamspike`` command, run from a bare Splunk Python, reads the recorded splunkd
   input and answers with the framing seen in the recorded outputs.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

import pytest
from standin import scpv2

pytestmark = pytest.mark.contract

RECORDINGS = Path(__file__).resolve().parent.parent / "data" / "scpv2-recordings"
INPUTS = ["countmatches", "generatehello", "pypygeneratetext", "sum.map", "sum.reduce"]
WITH_BODIES = ["countmatches", "sum.map", "sum.reduce"]
# Recorded replies: (getinfo reply, number of result rows)
OUTPUTS = {
    "countmatches.output": ({"type": "streaming"}, 500),
    "generatehello.output": ({"generating": True, "type": "stateful"}, 1000),
    "pypygeneratetext.output": ({"generating": True, "type": "streaming"}, 1000),
    "sum.map.output": ({"type": "streaming"}, 1),
    "sum.map.output.py3": ({"type": "streaming"}, 1),
    "sum.reduce.output": (
        {"streaming_preop": 'sum phase="map" total="total" value1', "type": "reporting"},
        1,
    ),
}
FRAMING = re.compile(rb"chunked 1\.0,(\d+),0\n(\{[^\n]*\})\r?\nchunked 1\.0,(\d+),(\d+)\n")


def recorded(name: str) -> bytes:
    path = RECORDINGS / name
    return gzip.open(path).read() if name.endswith(".gz") else path.read_bytes()


def recorded_chunks(name: str) -> list[scpv2.Chunk]:
    """Chunks of a recorded input; generatehello's execute chunk announces 150 body bytes the
    recorder never kept, so it stops at what is there."""
    data = recorded(name + ".input.gz")
    if name == "generatehello":
        data = data[: data.index(b"chunked 1.0,43,150")]
    return scpv2.read_chunks(data)


def ordered(raw: bytes) -> dict:
    return json.loads(raw.decode("utf-8"))


# ------------------------------------------------------------------------------- 1. framing
@pytest.mark.parametrize("name", INPUTS)
def test_driver_frames_getinfo_byte_exactly_as_recorded(name):
    getinfo = recorded_chunks(name)[0]
    assert getinfo.metadata["action"] == "getinfo"
    framed = scpv2.frame(ordered(getinfo.raw_metadata), separators=scpv2.GETINFO_SEPARATORS)
    assert recorded(name + ".input.gz").startswith(framed)


@pytest.mark.parametrize("name", WITH_BODIES)
def test_driver_frames_execute_byte_exactly_as_recorded(name):
    data = recorded(name + ".input.gz")
    getinfo, execute = recorded_chunks(name)
    framed_getinfo = scpv2.frame(ordered(getinfo.raw_metadata), separators=scpv2.GETINFO_SEPARATORS)
    framed_execute = scpv2.frame(scpv2.execute_metadata(execute.metadata["finished"]), execute.body)
    assert framed_getinfo + framed_execute == data


@pytest.mark.parametrize("name", WITH_BODIES)
def test_driver_writes_csv_bodies_byte_exactly_as_splunkd(name):
    body = recorded_chunks(name)[1].body
    header, rows = scpv2.decode_body(body)
    assert rows and any(column.startswith("__mv_") for column in header)
    assert scpv2.encode_csv(header, rows) == body
    plain = [column for column in header if not column.startswith("__mv_")]
    assert header == plain + ["__mv_" + column for column in plain]
    assert scpv2.encode_rows(scpv2.decode_rows(body), fields=plain) == body


@pytest.mark.parametrize("name", INPUTS)
def test_driver_getinfo_carries_every_key_splunkd_sent(name):
    recorded_metadata = recorded_chunks(name)[0].metadata
    ours = scpv2.getinfo_metadata(scpv2.searchinfo(["span=1h"]))
    assert set(recorded_metadata) <= set(ours)
    assert set(recorded_metadata["searchinfo"]) - {"splunk_version"} <= set(ours["searchinfo"])
    assert ours["searchinfo"]["args"] == ["span=1h"]


def test_driver_raw_args_keep_quotes_like_splunkd():
    info = recorded_chunks("countmatches")[0].metadata["searchinfo"]
    assert info["raw_args"] == ["fieldname=word_count", 'pattern="\\w+"', "text"]
    assert scpv2.searchinfo(["pattern=\\w+", "text"])["raw_args"] == ['pattern="\\w+"', "text"]
    assert scpv2.searchinfo(["by=account", "classes=authorization,throttling"])["raw_args"] == [
        "by=account",
        "classes=authorization,throttling",
    ]


# ------------------------------------------------------------------------------- 2. reading
@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_reader_parses_recorded_command_outputs(name):
    reply, rows = OUTPUTS[name]
    chunks = scpv2.read_chunks(recorded(name))
    assert [chunk.metadata for chunk in chunks] == [reply, {"finished": True}]
    assert len(scpv2.decode_rows(chunks[-1].body)) == rows


def test_reader_parses_inspector_messages_metrics_and_multivalues():
    (chunk,) = scpv2.read_chunks(recorded("record_writer.output.gz"))
    inspector = chunk.metadata["inspector"]
    assert chunk.metadata["finished"] is True
    levels = [level for level, _ in inspector["messages"]]
    assert levels and set(levels) <= {"debug", "error", "fatal", "info", "warn"}
    assert all(isinstance(text, str) for _, text in inspector["messages"])
    assert sorted(key for key in inspector if key.startswith("metric.")) == [
        "metric.metric-1",
        "metric.metric-2",
    ]
    rows = scpv2.decode_rows(chunk.body)
    assert len(rows) == 31
    assert isinstance(rows[0]["random_integers"], list) and len(rows[0]["random_integers"]) > 1


def test_reader_reports_a_cut_short_chunk():
    data = recorded("generatehello.input.gz")
    with pytest.raises(EOFError, match="body 0/150"):
        scpv2.read_chunks(data)


# --------------------------------------------------------------- 3. the installed command
def _command(splunk_home, splunk_python) -> list[str]:
    return scpv2.python_command(str(splunk_python), splunk_home.script("iamspike_command.py"))


@pytest.mark.parametrize("name", ["countmatches", "sum.map"])
def test_installed_command_answers_recorded_splunkd_input_with_recorded_framing(
    name, splunk_home, splunk_python
):
    getinfo, execute = recorded_chunks(name)
    ours = scpv2.getinfo_metadata(dict(getinfo.metadata["searchinfo"], args=[], raw_args=[]))
    data = scpv2.frame(ours, separators=scpv2.GETINFO_SEPARATORS) + scpv2.frame(
        scpv2.execute_metadata(True), execute.body
    )
    done = scpv2.replay(_command(splunk_home, splunk_python), data, env=splunk_home.env())
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    for output in (done.stdout, recorded(name + ".output")):
        match = FRAMING.match(output)
        assert match, output[:200]
        assert int(match.group(1)) == len(match.group(2))
    chunks = scpv2.read_chunks(done.stdout)
    assert chunks[0].metadata["type"] == "reporting"
    assert chunks[-1].metadata["finished"] is True
    assert "Traceback" not in json.dumps([chunk.metadata for chunk in chunks])


def test_installed_command_answers_a_foreign_getinfo_with_one_error_line(splunk_home, splunk_python):
    data = recorded("countmatches.input.gz")
    done = scpv2.replay(_command(splunk_home, splunk_python), data, env=splunk_home.env())
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    (reply,) = scpv2.read_chunks(done.stdout)
    assert reply.metadata["finished"] is True
    ((level, text),) = reply.metadata["inspector"]["messages"]
    assert level == "ERROR" and "\n" not in text and text.startswith("iamspike: ")


# ------------------------------------------------------------- 4. the driver with bad commands
ECHO = r"""
import json, sys
def chunk():
    head = sys.stdin.buffer.readline()
    if not head:
        return None
    m, b = (int(x) for x in head.split(b",")[1:])
    return json.loads(sys.stdin.buffer.read(m)), sys.stdin.buffer.read(b)
def reply(meta, body=b""):
    meta = json.dumps(meta).encode()
    sys.stdout.buffer.write(b"chunked 1.0,%d,%d\n" % (len(meta), len(body)) + meta + body)
    sys.stdout.buffer.flush()
chunk()
reply({"type": "streaming"})
n = 0
while True:
    got = chunk()
    if got is None:
        break
    n += 1
    MODE
    reply({"finished": got[0]["finished"]}, got[1])
"""


def stand_in(mode: str) -> list[str]:
    return [sys.executable, "-c", ECHO.replace("MODE", mode)]


def test_driver_runs_many_chunks_and_collects_every_reply():
    rows = [{"_time": str(t), "n": str(t)} for t in range(100)]
    session = scpv2.run(stand_in("pass"), [], scpv2.split(rows, 3), timeout=60)
    assert not session.died and session.returncode == 0
    assert len(session.replies) == 34 and session.finished
    assert [row["n"] for row in session.rows] == [str(t) for t in range(100)]


def test_driver_reports_a_command_that_dies_mid_search():
    rows = [{"_time": str(t)} for t in range(10)]
    session = scpv2.run(stand_in("if n == 2: sys.exit(3)"), [], scpv2.split(rows, 1), timeout=60)
    assert session.died and session.returncode == 3
    assert session.problem == "no reply to execute chunk 1"
    assert len(session.replies) == 1


def test_driver_reports_a_command_that_writes_garbage():
    session = scpv2.run(
        stand_in("sys.stdout.buffer.write(b'Traceback (most recent call last)\\n'); sys.stdout.flush()"),
        [],
        [[{"_time": "1"}]],
        timeout=60,
    )
    assert session.died and "not a chunk header" in session.problem


def test_driver_stops_a_command_that_hangs():
    session = scpv2.run(stand_in("import time; time.sleep(60)"), [], [[{"_time": "1"}]], timeout=2)
    assert session.timed_out and session.died


def test_installed_command_declares_its_map_phase_as_the_recorded_sum_does(splunk_home, splunk_python):
    """The reporting phase answers getinfo in the shape of the recorded ``sum`` reduce (type and
    ``streaming_preop`` naming the command with ``phase=map``); the map phase as the recorded
    ``sum`` map (streaming)."""
    recorded_reduce = scpv2.read_chunks(recorded("sum.reduce.output"))[0].metadata
    recorded_map = scpv2.read_chunks(recorded("sum.map.output"))[0].metadata
    command = _command(splunk_home, splunk_python)
    reduce = scpv2.probe_getinfo(command, ["span=1h"], env=splunk_home.env()).getinfo
    assert set(recorded_reduce) <= set(reduce) and reduce["type"] == recorded_reduce["type"]
    name, *args = reduce["streaming_preop"].split()
    assert recorded_reduce["streaming_preop"].split()[1:2] == ['phase="map"']
    assert name == "iamspike" and args[0] == "phase=map" and "span=3600" in args
    mapped = scpv2.probe_getinfo(command, args, env=splunk_home.env()).getinfo
    assert mapped == recorded_map
