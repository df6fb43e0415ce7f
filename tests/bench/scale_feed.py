"""The backfill's search head, captured once and fed again: ``iamspike show=state`` over the map
phase's count rows of the scale bench, as splunkd sends them.

    python tests/bench/scale.py --backfill --days 1 --sh-hours 24 --capture /tmp/weekday.cap
    python tests/bench/scale.py --feed /tmp/weekday.cap [--package TGZ] [--runs 2]
    python tests/bench/scale.py --feed /tmp/weekday.cap --source /path/to/other/worktree

``--capture`` runs the backfill's synthesis (:func:`scale_backfill.backfill`) and writes the
execute bodies the search head would receive (each indexer's sends packed as the map phase packs
them, then the indexers' range rows) instead of running the command: about 7 minutes and 1.1 GB
for a weekday. ``--feed`` drives the installed command (the package unpacked as Splunk installs
it, run by a bare Python as splunkd runs it) over SCPv2 with those bodies and prints one JSON line
a run: the command's CPU seconds (user + system), its peak RSS, the state rows and the sha256 of
the state rows (the reply bodies' rows, each body's header line left out). ``--source DIR`` runs
``DIR/bin/iamspike_command.py`` from a source tree with this Python instead (two worktrees
compared on one capture, the venv's numpy).

A file holds the bodies as ``<length>\\n<body>`` one after the other after a one-line magic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MAGIC = b"iamspike-capture 1\n"


def write_chunks(path: str, chunks: list[bytes]) -> None:
    with open(path, "wb") as handle:
        handle.write(MAGIC)
        for chunk in chunks:
            handle.write(b"%d\n" % len(chunk))
            handle.write(chunk)


def read_chunks(path: str) -> list[bytes]:
    chunks = []
    with open(path, "rb") as handle:
        if handle.readline() != MAGIC:
            raise SystemExit(f"{path}: not a capture of scale_feed (no {MAGIC.strip().decode()!r} line)")
        while True:
            size = handle.readline()
            if not size:
                return chunks
            chunk = handle.read(int(size))
            if len(chunk) != int(size):
                raise SystemExit(f"{path}: truncated ({len(chunks)} whole bodies)")
            chunks.append(chunk)


def state_digest(bodies: list[bytes]) -> tuple[int, str]:
    """The state rows out (every reply body's lines but its header) and their sha256."""
    digest, rows = hashlib.sha256(), 0
    for body in bodies:
        if not body:
            continue
        head = body.find(b"\n") + 1
        digest.update(body[head:])
        rows += body.count(b"\n", head)
    return rows, digest.hexdigest()


def feed(command: list[str], chunks: list[bytes], env: dict | None = None) -> dict:
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from standin import scpv2

    session = scpv2.run(command, ["show=state"], chunks, env=env, decode=False, timeout=7200)
    if session.returncode != 0 or session.errors:
        raise SystemExit(f"the command failed: {session.errors} {session.stderr[-2000:]}")
    rows, sha = state_digest(session.bodies)
    return {
        "cpu_s": round(session.cpu_seconds, 2),
        "peak_rss_mb": round(session.peak_rss_mb),
        "state_rows": rows,
        "state_mb": round(sum(len(body) for body in session.bodies) / 1e6, 1),
        "sha256": sha,
        "body_sha256": hashlib.sha256(b"".join(session.bodies)).hexdigest(),  # header lines too
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feed", required=True, help="a file written by --capture")
    parser.add_argument("--package", help="the built tgz (default: newest in package/dist)")
    parser.add_argument("--python", default="3.13", help="the bare Python that runs the installed command")
    parser.add_argument("--source", help="run DIR/bin/iamspike_command.py with this Python instead")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    return run(args)


def run(args) -> int:
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from standin import install

    chunks = read_chunks(args.feed)
    meta = {"capture": args.feed, "bodies": len(chunks), "mb_in": round(sum(map(len, chunks)) / 1e6, 1)}
    with tempfile.TemporaryDirectory(prefix="iamspike-feed-") as work:
        if args.source:
            source = os.path.abspath(args.source)
            command = [sys.executable, os.path.join(source, "bin", "iamspike_command.py")]
            env, meta["source"] = None, source
        else:
            package = args.package or install.find_package()
            if not package:
                print("scale_feed: no package; `make package` or pass --package", file=sys.stderr)
                return 2
            home = install.install(package, os.path.join(work, "splunk"))
            python = install.bare_python(args.python, os.path.join(work, "py"))
            if python is None:
                print(f"scale_feed: no Python {args.python}", file=sys.stderr)
                return 2
            command, env = [python, home.script("iamspike_command.py")], home.env()
            meta["package"], meta["python"] = os.path.basename(package), args.python
        for _ in range(args.runs):
            print(json.dumps({**meta, **feed(command, chunks, env)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
