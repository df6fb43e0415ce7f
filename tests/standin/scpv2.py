"""splunkd's side of the chunked search command protocol (SCPv2), for tests and benches.

It frames chunks the way splunkd does (checked byte for byte against real splunkd recordings in
tests/contract/test_scpv2_recordings.py), encodes CSV bodies the way splunkd does (every field
``x`` with its ``__mv_x`` twin, fields quoted unless they are plain ASCII letters and digits,
``\\n`` line ends), spawns a search command as a child process, sends ``getinfo`` then ``execute``
chunks and reads back the command's chunks, inspector messages and result rows. A command that
dies, closes its output or hangs is reported in the :class:`Session`, never a hang of the test.

Never imports product code: it talks to the command through pipes only.
"""

from __future__ import annotations

import calendar
import contextlib
import csv
import gzip
import io
import json
import os
import re
import shlex
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Union

HEADER_RE = re.compile(rb"chunked\s+1\.0\s*,\s*(\d+)\s*,\s*(\d+)\s*\n")
MV_PREFIX = "__mv_"
PLAIN_RE = re.compile(r"[A-Za-z0-9]+")
SPLUNKD_SEPARATORS = (",", ":")
# The getinfo chunks in the recordings are spaced JSON (splunklib's recorder re-encoded them with
# json's default separators); execute metadata is compact. The driver writes both that way.
GETINFO_SEPARATORS = (", ", ": ")

# The fields of a CloudTrail event iamspike reads (Input A), besides ``_time`` and ``_raw``.
INPUT_A_FIELDS = (
    "eventID",
    "eventName",
    "eventSource",
    "errorCode",
    "errorMessage",
    "recipientAccountId",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "userIdentity.type",
    "userIdentity.arn",
    "userIdentity.accountId",
    "userIdentity.accessKeyId",
    "userIdentity.invokedBy",
    "userIdentity.sessionContext.sessionIssuer.arn",
)

Row = Mapping[str, object]
csv.field_size_limit(1 << 31)  # splunkd passes fields of any size (a large event, a busy count row)
ChunkInput = Union[bytes, Sequence[Row]]


# --------------------------------------------------------------------------------------- framing
def encode_metadata(
    metadata: Mapping[str, object] | str, separators: tuple[str, str] = SPLUNKD_SEPARATORS
) -> bytes:
    """JSON metadata as splunkd writes it (compact, ASCII-escaped); a str is taken verbatim."""
    if isinstance(metadata, str):
        return metadata.encode("utf-8")
    return json.dumps(metadata, separators=separators).encode("ascii")


def frame(
    metadata: Mapping[str, object] | str,
    body: bytes = b"",
    separators: tuple[str, str] = SPLUNKD_SEPARATORS,
) -> bytes:
    """``chunked 1.0,<metadata bytes>,<body bytes>\\n`` + metadata + body."""
    encoded = encode_metadata(metadata, separators)
    return b"chunked 1.0,%d,%d\n" % (len(encoded), len(body)) + encoded + body


@dataclass
class Chunk:
    metadata: dict
    body: bytes
    raw_metadata: bytes = b""


def read_chunk(stream: IO[bytes]) -> Chunk | None:
    """One chunk from a binary stream; ``None`` at a clean end. Blank lines between chunks (older
    splunklib writes one after its getinfo reply) are skipped. A cut-short chunk raises EOFError."""
    line = stream.readline()
    while line in (b"\n", b"\r\n"):
        line = stream.readline()
    if not line:
        return None
    match = HEADER_RE.match(line)
    if match is None:
        raise ValueError(f"not a chunk header: {line[:80]!r}")
    metadata_length, body_length = int(match.group(1)), int(match.group(2))
    raw = stream.read(metadata_length)
    body = stream.read(body_length) if body_length else b""
    if len(raw) != metadata_length or len(body) != body_length:
        raise EOFError(
            f"chunk cut short: metadata {len(raw)}/{metadata_length}, body {len(body)}/{body_length} bytes"
        )
    return Chunk(json.loads(raw.decode("utf-8")) if raw else {}, body, raw)


def read_chunks(data: bytes) -> list[Chunk]:
    """Every chunk in a recorded byte stream."""
    stream = io.BytesIO(data)
    chunks = []
    while True:
        chunk = read_chunk(stream)
        if chunk is None:
            return chunks
        chunks.append(chunk)


# ------------------------------------------------------------------------------------- CSV bodies
def _splunkd_field(value: str) -> str:
    if not value or PLAIN_RE.fullmatch(value):
        return value
    return '"' + value.replace('"', '""') + '"'


def encode_csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """CSV as splunkd writes it: a field is quoted unless it is ASCII letters and digits only,
    lines end in ``\\n``."""
    lines = [",".join(_splunkd_field(name) for name in header)]
    lines.extend(",".join(_splunkd_field(value) for value in row) for row in rows)
    return ("\n".join(lines) + "\n").encode("utf-8")


def _text(value: object) -> str:
    return "" if value is None else str(value)


def encode_rows(rows: Sequence[Row], fields: Sequence[str] | None = None) -> bytes:
    """Result rows (dicts) -> an execute body: every field, then every ``__mv_`` twin. A list
    value is multivalue: the field holds the values joined by newlines, the twin ``$a$;$b$``."""
    if not rows:
        return b""
    if fields is None:
        seen: dict[str, None] = {}
        for row in rows:
            for key in row:
                seen.setdefault(key, None)
        fields = list(seen)
    header = list(fields) + [MV_PREFIX + name for name in fields]
    table = []
    for row in rows:
        plain, twins = [], []
        for name in fields:
            value = row.get(name)
            if isinstance(value, (list, tuple)):
                texts = [_text(item) for item in value]
                plain.append("\n".join(texts))
                twins.append("$" + "$;$".join(text.replace("$", "$$") for text in texts) + "$")
            else:
                plain.append(_text(value))
                twins.append("")
        table.append(plain + twins)
    return encode_csv(header, table)


def decode_body(body: bytes) -> tuple[list[str], list[list[str]]]:
    """A CSV body -> (header, rows), all strings."""
    if not body:
        return [], []
    reader = csv.reader(io.StringIO(body.decode("utf-8", "replace"), newline=""))
    header = next(reader, [])
    return header, [row for row in reader if row]


def _mv_values(encoded: str) -> list[str]:
    return [item.replace("$$", "$") for item in re.findall(r"\$((?:\$\$|[^$])*)\$(?:;|$)", encoded)]


def decode_rows(body: bytes) -> list[dict[str, object]]:
    """A CSV body -> dict rows; a non-empty ``__mv_x`` twin turns ``x`` into a list."""
    header, rows = decode_body(body)
    out = []
    for values in rows:
        row: dict[str, object] = {}
        twins = {}
        for name, value in zip(header, values):
            if name.startswith(MV_PREFIX):
                if value:
                    twins[name[len(MV_PREFIX) :]] = _mv_values(value)
            else:
                row[name] = value
        row.update(twins)
        out.append(row)
    return out


# ------------------------------------------------------------------ CloudTrail as Splunk shows it
def load_cloudtrail(path: str) -> list[dict]:
    """CloudTrail records from a file or a folder (recursive): ``{"Records": [...]}`` JSON, JSON
    arrays or JSON lines, plain or gzip; digest files skipped. Sorted by eventTime."""
    files = [path]
    if os.path.isdir(path):
        files = sorted(
            os.path.join(folder, name)
            for folder, _, names in os.walk(path)
            for name in names
            if name.endswith((".json", ".json.gz", ".jsonl")) and "Digest" not in name
        )
    records: list[dict] = []
    for name in files:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(name, "rt", encoding="utf-8") as handle:
            text = handle.read().strip()
        if not text:
            continue
        try:
            document = json.loads(text)
        except ValueError:
            records.extend(json.loads(line) for line in text.splitlines() if line.strip())
            continue
        if isinstance(document, dict):
            records.extend(document.get("Records", [document]))
        else:
            records.extend(document)
    records.sort(key=lambda record: record.get("eventTime", ""))
    return records


def _flatten(value: object, prefix: str, out: dict[str, object]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list):
        name = prefix + "{}"
        for item in value:
            if isinstance(item, (dict, list)):
                _flatten(item, name, out)
            else:
                _add(out, name, item)
    else:
        _add(out, prefix, value)


def _add(out: dict[str, object], name: str, value: object) -> None:
    text = (
        "null" if value is None else ("true" if value is True else "false" if value is False else str(value))
    )
    if name not in out:
        out[name] = text
    elif isinstance(out[name], list):
        out[name].append(text)
    else:
        out[name] = [out[name], text]


def splunk_event(record: Mapping[str, object], fields: Sequence[str] | None = None) -> dict[str, object]:
    """A CloudTrail record as Splunk's JSON extraction presents it to a search command: nested
    keys joined with dots, arrays as ``name{}`` multivalue fields, ``_time`` in epoch seconds,
    ``_raw`` the JSON text, plus the default fields. ``fields`` keeps only those extracted fields
    (``_time``/``_raw`` and default fields always stay)."""
    extracted: dict[str, object] = {}
    _flatten(record, "", extracted)
    if fields is not None:
        extracted = {name: extracted[name] for name in fields if name in extracted}
    when = str(record.get("eventTime", ""))
    try:
        seconds = calendar.timegm(time.strptime(when, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        seconds = None
    event: dict[str, object] = {
        "_time": "" if seconds is None else str(seconds),
        "_raw": json.dumps(record, separators=(",", ":")),
        "host": "aws",
        "index": "aws",
        "source": "s3://cloudtrail/AWSLogs",
        "sourcetype": "aws:cloudtrail",
        "splunk_server": "sh1",
    }
    event.update(extracted)
    return event


# Splunk's limits.conf: automatic (JSON) extraction reads the first [spath] extraction_cutoff bytes
# of an event and makes at most [kv] limit fields.
EXTRACTION_CUTOFF = 5000
KV_LIMIT = 100


def _ordered_leaves(value: object, prefix: str, out: list[tuple[str, object, int]], offset: int) -> int:
    """Leaves of ``value`` in document order as (dotted name, value, end offset in the compact JSON
    text); returns the offset after ``value``."""
    if isinstance(value, dict):
        offset += 1
        for n, (key, item) in enumerate(value.items()):
            offset += (1 if n else 0) + len(json.dumps(key)) + 1
            offset = _ordered_leaves(item, f"{prefix}.{key}" if prefix else key, out, offset)
        return offset + 1
    if isinstance(value, list):
        offset += 1
        for n, item in enumerate(value):
            offset += 1 if n else 0
            offset = _ordered_leaves(item, prefix + "{}", out, offset)
        return offset + 1
    offset += len(json.dumps(value))
    out.append((prefix, value, offset))
    return offset


def cut_extraction(
    record: Mapping[str, object], cutoff: int = EXTRACTION_CUTOFF, limit: int = KV_LIMIT
) -> dict:
    """The event as Splunk presents it when automatic extraction respects its limits: only the
    fields whose value ends within the first ``cutoff`` bytes of ``_raw``, at most ``limit`` field
    names, plus ``_time``, ``_raw`` and the default fields."""
    leaves: list[tuple[str, object, int]] = []
    _ordered_leaves(dict(record), "", leaves, 0)
    kept: dict[str, object] = {}
    for name, value, end in leaves:
        if end > cutoff or (name not in kept and len(kept) >= limit):
            break
        _add(kept, name, value)
    event = splunk_event(record, fields=())
    event.update(kept)
    return event


def split(rows: Sequence[Row], size: int) -> list[Sequence[Row]]:
    """Rows in chunks of ``size`` (the last may be shorter)."""
    return [rows[start : start + size] for start in range(0, len(rows), size)] or [[]]


# -------------------------------------------------------------------------------------- getinfo
def searchinfo(args: Sequence[str], command: str = "iamspike", **overrides: object) -> dict[str, object]:
    """The searchinfo splunkd sends with getinfo. ``raw_args`` keep the quotes SPL had."""
    raw_args = [_raw_arg(arg) for arg in args]
    search = "search index=aws sourcetype=aws:cloudtrail | " + " ".join([command, *raw_args])
    info: dict[str, object] = {
        "args": list(args),
        "raw_args": raw_args,
        "dispatch_dir": "",
        "sid": "scheduler__admin__search__RMD5f0f0f0f0f0f0f0f0_at_1700000000_42",
        "app": "TA-aws-iam-error-spike",
        "owner": "admin",
        "username": "admin",
        "session_key": "standin-session-key",
        "splunkd_uri": "https://127.0.0.1:8089",
        "splunk_version": "9.3.2",
        "search": urllib.parse.quote(search),
        "command": command,
        "maxresultrows": 50000,
        "earliest_time": "0",
        "latest_time": "0",
    }
    info.update(overrides)
    return info


def _raw_arg(arg: str) -> str:
    name, sep, value = arg.partition("=")
    if sep and value and not PLAIN_RE.fullmatch(value.replace(",", "").replace(".", "")):
        return f'{name}="{value}"'
    return arg


def getinfo_metadata(info: Mapping[str, object]) -> dict[str, object]:
    return {
        "action": "getinfo",
        "preview": False,
        "streaming_command_will_restart": False,
        "searchinfo": info,
    }


def execute_metadata(finished: bool) -> dict[str, object]:
    return {"action": "execute", "finished": finished}


# -------------------------------------------------------------------------------------- session
@dataclass
class Session:
    """What a command answered during one run."""

    getinfo: dict = field(default_factory=dict)
    replies: list[dict] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    rows: list[dict[str, object]] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""
    died: bool = False
    timed_out: bool = False
    problem: str = ""
    cpu_seconds: float = 0.0  # the command's own user + system CPU
    peak_rss_mb: float = 0.0

    @property
    def errors(self) -> list[str]:
        return [text for level, text in self.messages if level.upper() in ("ERROR", "FATAL")]

    @property
    def warnings(self) -> list[tuple[str, str]]:
        """The messages Splunk shows as a warning or an error (every level but INFO and DEBUG)."""
        return [(level, text) for level, text in self.messages if level.upper() not in ("INFO", "DEBUG")]

    @property
    def finished(self) -> bool:
        last = self.replies[-1] if self.replies else self.getinfo
        return bool(last.get("finished"))


def _collect_messages(session: Session, metadata: Mapping[str, object]) -> None:
    inspector = metadata.get("inspector") or {}
    for level, text in inspector.get("messages", []) if isinstance(inspector, dict) else []:
        session.messages.append((str(level), str(text)))


def run(
    command: Sequence[str],
    args: Sequence[str],
    chunks: Iterable[ChunkInput],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    info: Mapping[str, object] | None = None,
    timeout: float = 300.0,
    decode: bool = True,
) -> Session:
    """Run ``command`` (argv, e.g. ``[python, .../bin/iamspike_command.py]``) as splunkd does.

    ``chunks`` are execute bodies: bytes as they are, or row dicts encoded with
    :func:`encode_rows`. The last one carries ``finished: true``. Returns a :class:`Session`; a
    command that dies or hangs is recorded there (``died``, ``timed_out``, ``problem``).
    ``decode=False`` keeps reply bodies as bytes only (benches: no parsing on splunkd's side).
    """
    with tempfile.TemporaryDirectory(prefix="dispatch-") as dispatch_dir:
        details = dict(info) if info is not None else searchinfo(args)
        details.setdefault("dispatch_dir", dispatch_dir)
        if not details.get("dispatch_dir"):
            details["dispatch_dir"] = dispatch_dir
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd or dispatch_dir,
            env=dict(env) if env is not None else None,
        )
        stderr_parts: list[bytes] = []
        drain = threading.Thread(target=lambda: stderr_parts.append(process.stderr.read()), daemon=True)
        drain.start()
        session = Session()
        timer = threading.Timer(timeout, _kill, (process, session))
        timer.start()
        sampler = threading.Thread(target=_sample_peak_rss, args=(process, session), daemon=True)
        sampler.start()
        try:
            _converse(process, session, details, chunks, decode)
        finally:
            timer.cancel()
            for stream in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    stream.close()
            _reap(process, session, 30.0)
            drain.join(timeout=30)
            session.stderr = b"".join(stderr_parts).decode("utf-8", "replace")
        return session


def _reap(process: subprocess.Popen, session: Session, grace: float) -> None:
    """Wait for the command (killing it after ``grace`` seconds) and keep its own CPU time and
    peak RSS (the benches read them; ``wait4`` gives one child's usage, not all children's)."""
    deadline = time.monotonic() + grace
    flags = os.WNOHANG
    while True:
        pid, status, usage = os.wait4(process.pid, flags)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            session.timed_out = True
            flags = 0
        time.sleep(0.01)
    process.returncode = session.returncode = os.waitstatus_to_exitcode(status)
    session.cpu_seconds = usage.ru_utime + usage.ru_stime


def _sample_peak_rss(process: subprocess.Popen, session: Session) -> None:
    """The command's peak RSS (``VmHWM``, sampled every 20 ms until it exits). ``wait4``'s
    ``ru_maxrss`` is not used: Linux carries it across exec from the forked copy of the driver."""
    path = f"/proc/{process.pid}/status"
    while process.returncode is None:
        try:
            with open(path, encoding="ascii", errors="replace") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        session.peak_rss_mb = max(session.peak_rss_mb, int(line.split()[1]) / 1024.0)
        except (OSError, ValueError, IndexError):
            return
        time.sleep(0.02)


def _kill(process: subprocess.Popen, session: Session) -> None:
    session.timed_out = True
    process.kill()


def _exchange(process: subprocess.Popen, session: Session, data: bytes, what: str) -> Chunk | None:
    """Send one chunk, read the reply; a dead or broken command is recorded in ``session``."""
    try:
        process.stdin.write(data)
        process.stdin.flush()
        reply = read_chunk(process.stdout)
    except (BrokenPipeError, EOFError, ValueError) as error:
        session.died, session.problem = True, f"during {what}: {error}"
        return None
    if reply is None:
        session.died, session.problem = True, f"no reply to {what}"
    return reply


def _converse(
    process: subprocess.Popen, session: Session, info: Mapping[str, object], chunks: Iterable, decode: bool
) -> None:
    reply = _exchange(
        process, session, frame(getinfo_metadata(info), separators=GETINFO_SEPARATORS), "getinfo"
    )
    if reply is None:
        return
    session.getinfo = reply.metadata
    _collect_messages(session, reply.metadata)
    if reply.metadata.get("finished"):
        return
    items = iter(chunks)  # read lazily (a bench's generator), one ahead to know the last
    chunk = next(items, None)
    index = -1
    while chunk is not None:
        index, following = index + 1, next(items, None)
        finished = following is None
        body = chunk if isinstance(chunk, bytes) else encode_rows(chunk)
        reply = _exchange(process, session, frame(execute_metadata(finished), body), f"execute chunk {index}")
        if reply is None:
            return
        session.replies.append(reply.metadata)
        session.bodies.append(reply.body)
        _collect_messages(session, reply.metadata)
        if decode:
            session.rows.extend(decode_rows(reply.body))
        if reply.metadata.get("finished"):
            return
        chunk = following


# ---------------------------------------------------------------------------- distributed search
@dataclass
class Distributed:
    """One distributed search: the search head's getinfo, one map session per indexer, the
    search head's reporting session over their concatenated output."""

    preop: list[str] = field(default_factory=list)  # the streaming_preop's args (after the name)
    probe: Session = field(default_factory=Session)
    maps: list[Session] = field(default_factory=list)
    report: Session = field(default_factory=Session)

    @property
    def shipped_rows(self) -> int:
        """Rows the indexers sent to the search head."""
        return sum(len(session.rows) for session in self.maps)

    @property
    def shipped_bytes(self) -> int:
        """Bytes of the indexers' result bodies (what crosses the network, before compression)."""
        return sum(len(body) for session in self.maps for body in session.bodies)


def probe_getinfo(
    command: Sequence[str],
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> Session:
    """Only the getinfo exchange, as splunkd does while it plans a search; then stdin closes."""
    return run(command, args, [], env=env, timeout=timeout)


def run_distributed(
    command: Sequence[str],
    args: Sequence[str],
    partitions: Sequence[Sequence[Row]],
    *,
    chunk_size: int = 50_000,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
) -> Distributed:
    """Run a reporting command as splunkd runs it on a distributed search: ask the search head's
    command for its getinfo, run the ``streaming_preop`` it declares over each partition (an
    indexer: getinfo, execute chunks, finished), then the command itself over every row the
    partitions returned, re-encoded as splunkd encodes rows, in chunks of ``chunk_size``."""
    result = Distributed()
    result.probe = probe_getinfo(command, args, env=env)
    preop = str(result.probe.getinfo.get("streaming_preop") or "")
    if not preop:
        raise AssertionError(f"no streaming_preop in {result.probe.getinfo}")
    name, *result.preop = shlex.split(preop)
    shipped: list[Row] = []
    for partition in partitions:
        session = run(
            command,
            result.preop,
            split(list(partition), chunk_size),
            env=env,
            info=searchinfo(result.preop, command=name),
            timeout=timeout,
        )
        result.maps.append(session)
        shipped.extend(session.rows)
    result.report = run(command, args, split(shipped, chunk_size), env=env, timeout=timeout)
    return result


def replay(
    command: Sequence[str], data: bytes, *, env: Mapping[str, str] | None = None, timeout: float = 300.0
) -> subprocess.CompletedProcess:
    """Write a whole recorded stdin to the command at once and collect all it writes back."""
    with tempfile.TemporaryDirectory(prefix="dispatch-") as dispatch_dir:
        return subprocess.run(
            list(command),
            input=data,
            capture_output=True,
            cwd=dispatch_dir,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            check=False,
        )


def python_command(python: str, script: str) -> list[str]:
    """argv splunkd uses for a Python command: the interpreter, then the script's full path."""
    return [python, os.path.abspath(script)]
