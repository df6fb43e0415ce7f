"""``make demo``: the whole path on embedded defaults, from a trail bucket to printed spikes.

1. start a local AWS (moto server on loopback) and create a trail bucket whose ObjectCreated
   notifications go to an SQS queue;
2. upload CloudTrail log files: 14 days of a generated two-account organisation (seeded, from
   tests/bench/generator.py) with labelled attacks (discovery burst, low-and-slow, ...) and
   benign traps (log delivery denials, throttling, a nightly batch...);
3. install the package into a stand-in SPLUNK_HOME and run ``aws_cloudtrail_sqs`` from a bare
   Splunk Python exactly as splunkd runs it (XML config on stdin, XML events on stdout,
   SIGTERM at the end);
4. feed its events, as Splunk's JSON extraction presents them, to ``| iamspike`` over the
   chunked protocol (tests/standin/scpv2.py) and print the spikes, then which labelled
   scenarios they hit.

A piece missing from the package is reported as missing; nothing is faked.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import sys
import tempfile
import time

from bench import generator
from standin import modinput, scpv2
from standin.fixtures_aws import REGION, aws_env, client_factory, log_file, make_queue, running_moto
from standin.install import SPLUNK_PYTHONS, bare_python, find_package, install

BUCKET = "demo-org-cloudtrail"
QUEUE = "demo-cloudtrail-notifications"


def say(text: str) -> None:
    print(text, flush=True)


def log_files(records: list[dict]) -> dict[str, bytes]:
    """Records grouped into one gzipped log file per account, region and day (CloudTrail keys)."""
    groups: dict[tuple[str, str, str], list[dict]] = collections.defaultdict(list)
    for record in records:
        groups[
            (record["recipientAccountId"], record.get("awsRegion", REGION), record["eventTime"][:10])
        ].append(record)
    files = {}
    for (account, region, day), group in sorted(groups.items()):
        stamp = day.replace("-", "") + "T2355Z"
        key = (
            f"AWSLogs/{account}/CloudTrail/{region}/{day.replace('-', '/')}/"
            f"{account}_CloudTrail_{region}_{stamp}_demo{len(files):04d}.json.gz"
        )
        files[key] = log_file(group)
    return files


def seed_aws(endpoint: str, files: dict[str, bytes]) -> str:
    clients = client_factory(endpoint)
    s3 = clients("s3")
    s3.create_bucket(Bucket=BUCKET)
    queue = make_queue(clients, QUEUE, bucket=BUCKET)
    for key, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return queue


def pick_python(workdir: str) -> tuple[str, str]:
    for version in reversed(SPLUNK_PYTHONS):
        python = bare_python(version, os.path.join(workdir, "python" + version))
        if python:
            return version, python
    raise SystemExit("demo: neither python3.13 nor python3.9 found (pyenv versions or PATH)")


def ingest(python: str, home, queue: str, endpoint: str, expected: int, workdir: str) -> list[modinput.Event]:
    params = {"queue_url": queue, "interval": "300", "index": "aws", "wait_seconds": "2"}
    run = modinput.InputProcess(
        python,
        home,
        "aws_cloudtrail_sqs.py",
        "aws_cloudtrail_sqs://demo",
        params,
        os.path.join(workdir, "checkpoints"),
        aws_env(endpoint),
    )
    started = time.monotonic()
    events = run.wait_for(expected, timeout=300)
    seconds = time.monotonic() - started
    stop = run.terminate()
    say(
        f"   {len(events)} events in {seconds:.1f} s (process start included), "
        f"stopped {stop:.2f} s after SIGTERM"
    )
    for line in modinput.read_log(home, "aws_cloudtrail_sqs").splitlines():
        if " events from " in line:
            say("   input log: " + line.split(" input=", 1)[1].strip())
    if run.stderr.strip():
        say("   input stderr: " + run.stderr.strip()[:500])
    return run.events()


def detect(python: str, home, events: list[modinput.Event]) -> scpv2.Session | None:
    script = home.script("iamspike_command.py")
    if not os.path.exists(script):
        say("   the package has no bin/iamspike_command.py yet: detection skipped")
        return None
    rows = [scpv2.splunk_event(json.loads(event.data)) for event in events]
    rows.sort(key=lambda row: float(row["_time"] or 0))
    return scpv2.run(
        scpv2.python_command(python, script), ["span=1h"], scpv2.split(rows, 50_000), env=home.env()
    )


def show_spikes(rows: list[dict]) -> None:
    header = (
        f"{'_time (UTC)':<17} {'entity':<9} {'account':<12} {'principal':<52} {'fail':>5} {'exp':>6} "
        f"{'upper':>6} {'score':>5} {'severity':<8} top_apis"
    )
    say(header)
    say("-" * len(header))
    for row in rows:
        when = datetime.datetime.fromtimestamp(int(float(row["_time"])), datetime.timezone.utc)
        principal = str(row.get("principal") or "")
        principal = principal if len(principal) <= 52 else "..." + principal[-49:]
        say(
            f"{when:%Y-%m-%d %H:%M} {row.get('entity_type', ''):<9} {row.get('account', ''):<12} "
            f"{principal:<52} {int(float(row.get('failures') or 0)):>5} "
            f"{float(row.get('expected') or 0):>6.1f} {float(row.get('upper') or 0):>6.1f} "
            f"{float(row.get('score') or 0):>5.0f} {row.get('severity', ''):<8} "
            f"{str(row.get('top_apis', ''))[:60]}"
        )


def show_labels(labels, rows: list[dict]) -> None:
    say("\nLabelled scenarios in the data and whether a spike row falls in one of their windows:")
    for label in labels:
        hit = any(
            label.covers(int(float(row["_time"])))
            and str(row.get("account")) == label.account
            and (label.entity_type == "account" or str(row.get("principal")) == label.principal)
            for row in rows
        )
        verdict = (
            ("FOUND" if hit else "missed") if label.category == "attack" else ("ALERTED" if hit else "quiet")
        )
        say(f"   {label.category:<6} {label.kind:<22} {verdict:<7} {label.principal or label.account}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", help="the built tgz (default: the newest package/dist build)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args(argv)
    package = args.package or find_package()
    if not package or not os.path.isfile(package):
        say("demo: no package: run `make package` first (or pass --package)")
        return 2
    with tempfile.TemporaryDirectory(prefix="iamspike-demo-") as workdir:
        say(f"1. Generating {args.days} days of CloudTrail for a two-account organisation (seed {args.seed})")
        org = generator.generate(args.seed, days=args.days, accounts=2, scenarios_per_kind=1)
        files = log_files(org.records)
        say(f"   {len(org.records)} records in {len(files)} log files, {len(org.labels)} labelled scenarios")
        with running_moto() as endpoint:
            say(f"2. Local AWS (moto) at {endpoint}: bucket {BUCKET} -> S3 notifications -> SQS {QUEUE}")
            queue = seed_aws(endpoint, files)
            version, python = pick_python(workdir)
            home = install(package, os.path.join(workdir, "splunk"))
            say(
                f"3. aws_cloudtrail_sqs from {os.path.basename(package)} on a bare Python {version}, "
                "as splunkd runs it"
            )
            events = ingest(python, home, queue, endpoint, len(org.records), workdir)
        say(f"4. | iamspike span=1h over the chunked protocol ({len(events)} events)")
        session = detect(python, home, events)
        if session is None:
            return 0
        if session.died or session.timed_out or session.errors:
            say(f"   iamspike failed: {session.problem or session.errors} {session.stderr[-500:]}")
            return 1
        for level, text in session.messages:
            say(f"   [{level}] {text}")
        say(f"\n{len(session.rows)} spikes:\n")
        show_spikes(session.rows)
        show_labels(org.labels, session.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
