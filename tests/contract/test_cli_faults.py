"""The responder's CLI under faults (the fourth matrix of docs/reliability.md): the unpacked app's
bin/iamspike_cli.py from bare Python 3.9 and 3.13, as test_cli_install.py runs it, on folders with
damaged and odd files, with its output closed or full, interrupted with SIGINT at a seeded file,
and with a report it cannot write. Every intact record is counted (the rows equal those of a
folder of the intact records alone), each bad file is one stderr line, never a traceback, and the
exit status says what happened. Nothing here imports product code; the random points are seeded.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import pathlib
import random
import signal
import subprocess
import time
import zlib

import pytest
from standin.install import CHILD_PATH, start_entry

pytestmark = pytest.mark.contract

T0 = 1_788_739_200  # 2026-09-07T00:00:00Z
SEEDS = (3, 17, 29)


def records(rng: random.Random, count: int, start: int = T0) -> list[dict]:
    """``count`` failed calls of 6 principals over 40 hours, with a burst by one of them."""
    out = []
    for i in range(count):
        user = "burst" if i % 7 == 0 and i > count // 2 else f"u{rng.randrange(5)}"
        when = start + (i * 144_000 // count if user != "burst" else 39 * 3600 + i % 3600)
        out.append(
            {
                "eventVersion": "1.08",
                "eventID": f"e-{start}-{i}",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
                "eventSource": "iam.amazonaws.com",
                "eventName": rng.choice(("GetUser", "ListRoles", "ListAttachedUserPolicies", "GetPolicy")),
                "errorCode": "AccessDenied",
                "recipientAccountId": "111122223333",
                "sourceIPAddress": "198.51.100.7",
                "userAgent": "aws-cli/2.15.0",
                "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::111122223333:user/{user}"},
            }
        )
    return out


def trail(recs: list[dict]) -> bytes:
    return json.dumps({"Records": recs}).encode()


def intact_before(cut: bytes) -> int:
    """How many whole records the gzip prefix ``cut`` of a ``{"Records": [...]}`` file holds."""
    text = zlib.decompressobj(wbits=31).decompress(cut).decode("utf-8", "replace")
    decoder, pos, count = json.JSONDecoder(), text.index("[") + 1, 0
    while True:
        try:
            _, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return count
        count += 1
        pos += 2  # ", "


def cli(
    python: str, home, args: list[str], stdout=subprocess.PIPE, stderr=subprocess.PIPE
) -> subprocess.CompletedProcess:
    """The unpacked app's CLI as a responder runs it (run_entry's, with ``stdout`` of one's own)."""
    done = subprocess.run(
        [python, home.script("iamspike_cli.py"), *args],
        stdout=stdout,
        stderr=stderr,
        env={"PATH": CHILD_PATH},
        timeout=300,
        check=False,
    )
    done.err = (done.stderr or b"").decode()  # type: ignore[attr-defined]
    assert "Traceback" not in done.err and "Exception ignored" not in done.err, done.err[-2000:]
    return done


def counted(err: str) -> str:
    """``N CloudTrail records in M files`` from the last stderr line."""
    return err.strip().splitlines()[-1].split(": ", 1)[1].split(",")[0]


def damaged_folder(root: pathlib.Path, seed: int) -> tuple[pathlib.Path, pathlib.Path, list[str]]:
    """A folder of intact, damaged and odd files; the folder of its intact records alone; the
    paths that must each be named once as skipped."""
    rng = random.Random(seed)
    damaged, clean = root / "damaged", root / "clean"
    damaged.mkdir()
    clean.mkdir()
    first = records(rng, 900)
    for folder in (damaged, clean):
        (folder / "a.json.gz").write_bytes(gzip.compress(trail(first)))
    second = records(rng, 700, start=T0 + 3600)
    whole = gzip.compress(trail(second))
    cut = whole[: rng.randrange(len(whole) // 5, len(whole) * 4 // 5)]  # a seeded cut
    (damaged / "b.json.gz").write_bytes(cut)
    (clean / "b.json").write_bytes(trail(second[: intact_before(cut)]))
    bare = json.dumps(records(rng, 50, start=T0 + 7200)).encode()  # a bare array: held as a format
    odd = trail(records(rng, 20, start=T0 + 9000)).replace(b"aws-cli/2.15.0", b"aws-cli/\xff\xfe")
    for folder in (damaged, clean):
        (folder / "f.json").write_bytes(bare)
        (folder / "i.json").write_bytes(odd)  # not UTF-8: replaced and counted
    bad = {
        "c.json.gz": gzip.compress(b"hello, not JSON\n"),
        "d.json": json.dumps({"Records": {"eventName": "x"}}).encode(),
        "e.json": json.dumps({"Records": "not a list"}).encode(),
        "g.json.gz": b"",
        "m.json": b"42",
    }
    for name, data in bad.items():
        (damaged / name).write_bytes(data)
    (damaged / "h.json.gz").mkdir()  # a folder named like a file: walked (empty)
    os.symlink("j.json", damaged / "j.json")  # a link to itself
    os.symlink(".", damaged / "k")  # a link loop
    os.mkfifo(damaged / "l.json.gz")  # opened, it would block the run for good
    named = [*bad, "j.json", "l.json.gz", "b.json.gz"]
    return damaged, clean, [str(damaged / name) for name in named]


@pytest.mark.parametrize("seed", SEEDS)
def test_damaged_folder_counts_every_intact_record(
    splunk_python: str, splunk_home, tmp_path: pathlib.Path, seed: int
) -> None:
    damaged, clean, bad = damaged_folder(tmp_path, seed)
    flags = ["--show", "all", "--format", "json", "--by", "principal"]
    want = cli(splunk_python, splunk_home, [str(clean), *flags])
    got = cli(splunk_python, splunk_home, [str(damaged), *flags])
    assert want.returncode == 0, want.err
    assert got.returncode == 3, got.err
    assert got.stdout == want.stdout and got.stdout.count(b"\n") > 40
    assert counted(got.err).split(" in ")[0] == counted(want.err).split(" in ")[0]
    lines = got.err.splitlines()
    for path in bad:
        named = [line for line in lines if line.startswith("iamspike: skipped") and path + ":" in line]
        assert len(named) == 1, (path, got.err)
    assert lines[-1].endswith(f", {len(bad)} files skipped")
    assert f"iamspike: read once: {damaged / 'k'} (the same as {damaged})" in lines
    assert any(line.endswith("bytes that were not UTF-8 replaced") for line in lines)


def test_links_and_paths_given_twice_count_each_file_once(
    splunk_python: str, splunk_home, tmp_path: pathlib.Path
) -> None:
    rng = random.Random(5)
    data = tmp_path / "data"
    (data / "2026").mkdir(parents=True)
    (data / "2026" / "a.json.gz").write_bytes(gzip.compress(trail(records(rng, 600))))
    (data / "b.json").write_bytes(trail(records(rng, 300, start=T0 + 3600)))
    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(data, linked / "export")  # a responder's link to the export
    flags = ["--format", "csv", "--by", "principal", "--show", "all"]
    plain = cli(splunk_python, splunk_home, [str(data), *flags])
    assert plain.returncode == 0 and counted(plain.err) == "900 CloudTrail records in 2 files", plain.err
    via_link = cli(splunk_python, splunk_home, [str(linked), *flags])
    assert (via_link.returncode, via_link.stdout) == (0, plain.stdout), via_link.err
    twice = cli(splunk_python, splunk_home, [str(data), str(data / "b.json"), str(linked), *flags])
    assert (twice.returncode, twice.stdout) == (0, plain.stdout), twice.err
    assert counted(twice.err) == "900 CloudTrail records in 2 files"
    assert sum(line.startswith("iamspike: read once: ") for line in twice.err.splitlines()) == 2


def test_closed_output_exits_141_without_a_traceback(
    splunk_python: str, splunk_home, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "a.json").write_bytes(trail(records(random.Random(7), 800)))
    read, write = os.pipe()
    os.close(read)  # `| head -1` gone before the first row
    try:
        done = cli(
            splunk_python, splunk_home, [str(tmp_path), "--show", "all", "--format", "csv"], stdout=write
        )
    finally:
        os.close(write)
    assert done.returncode == 141, done.err
    assert done.err.splitlines()[-1].startswith("iamspike: 800 CloudTrail records in 1 file, ")
    (tmp_path / "b.json").write_bytes(b"not CloudTrail")  # a `skipped` line first
    read, write = os.pipe()
    os.close(read)  # `2>&1 | head -1` gone: stderr too
    try:
        done = cli(splunk_python, splunk_home, [str(tmp_path), "--format", "csv"], write, stderr=write)
    finally:
        os.close(write)
    assert done.returncode == 141


def test_full_output_is_one_line_exit_2(splunk_python: str, splunk_home, tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.json").write_bytes(trail(records(random.Random(8), 800)))
    with open("/dev/full", "wb") as full:
        done = cli(
            splunk_python, splunk_home, [str(tmp_path), "--show", "all", "--format", "csv"], stdout=full
        )
    assert done.returncode == 2, done.err
    assert done.err.splitlines()[-1] == "iamspike: error: cannot write the rows: No space left on device"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/report.html", "No such file or directory"),
        (".", "is a folder"),
        ("a.json/report.html", "Not a directory"),  # a file where the folder should be, as root too
    ],
)
def test_report_it_cannot_write_fails_before_reading(
    splunk_python: str, splunk_home, tmp_path: pathlib.Path, where: str, message: str
) -> None:
    (tmp_path / "a.json").write_bytes(trail(records(random.Random(9), 100)))
    report = tmp_path / where
    done = cli(splunk_python, splunk_home, [str(tmp_path), "--report", str(report)])
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.err == f"iamspike: error: --report {report}: {message}\n"


def _open_files(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return found


def _sigint_as_on_a_terminal() -> None:
    """A shell starts a foreground command with SIGINT at its default; a test run started in the
    background (``make test &``, CI) passes SIGINT on ignored, and Python then installs no
    KeyboardInterrupt handler: the child would not be interrupted at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_sigint_at_a_seeded_file_leaves_no_report(
    splunk_python: str, splunk_home, tmp_path: pathlib.Path, seed: int
) -> None:
    """SIGINT once the run has opened the k-th of 30 files (k seeded): exit 130, one line, the
    report of an earlier run untouched and no part of the new one left beside it."""
    rng = random.Random(seed)
    data = tmp_path / "data"
    data.mkdir()
    names = [data / f"{i:02d}.json.gz" for i in range(30)]
    for i, path in enumerate(names):
        path.write_bytes(gzip.compress(trail(records(rng, 3000, start=T0 + i * 600)), compresslevel=1))
    report = tmp_path / "out" / "report.html"
    report.parent.mkdir()
    report.write_text("the report of an earlier run\n")
    at = {str(path) for path in names[rng.randrange(2, 20) :]}
    child = start_entry(
        splunk_python,
        splunk_home.script("iamspike_cli.py"),
        [str(data), "--report", str(report)],
        preexec_fn=_sigint_as_on_a_terminal,
    )
    try:
        while child.poll() is None and not at & _open_files(child.pid):
            time.sleep(0.001)
        assert child.poll() is None, "the run ended before the seeded file was opened"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    text = err.decode()
    assert (child.returncode, out) == (130, b""), text[-2000:]
    assert "Traceback" not in text and text.splitlines()[-1] == (
        "iamspike: interrupted: the run did not finish; no report written"
    )
    assert report.read_text() == "the report of an earlier run\n"
    assert sorted(os.listdir(report.parent)) == ["report.html"]
