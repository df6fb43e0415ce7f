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
   chunked protocol (tests/standin/scpv2.py) and print the spikes with every explanation field
   (the CLI's table) and the labelled scenario each falls in, or none; then each scenario's
   verdict and a tally: attacks found, traps quiet, alerts that match no labelled scenario.

A piece missing from the package is reported as missing; nothing is faked.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import time

from bench import generator
from iamspike import formats
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


def matches(label, row: dict, account_rows: bool = False) -> bool:
    """A spike row falls in a labelled scenario: its window, its account, and for a principal
    scenario its principal (an account scenario is hit by any row of the account). With
    ``account_rows``, an account row is also explained by a principal scenario of that account in
    its window (the account sums its principals): such a row is not an unlabelled alert."""
    return (
        label.covers(int(float(row["_time"])))
        and str(row.get("account")) == label.account
        and (
            label.entity_type == "account"
            or str(row.get("principal")) == label.principal
            or (account_rows and row.get("entity_type") == "account")
        )
    )


def show_spikes(labels, rows: list[dict]) -> None:
    """The rows as the CLI's table (every explanation field, wrapped between items), each with the
    labelled scenario it falls in, or none."""
    shown = []
    for row in rows:
        hits = [f"{label.category} {label.kind} ({label.name})" for label in labels if matches(label, row)]
        hits = hits or [
            f"{label.category} {label.kind} of {label.principal.rsplit('/', 1)[-1]} in this account"
            for label in labels
            if label.category == "attack" and matches(label, row, account_rows=True)
        ]
        shown.append({**row, "scenario": ", ".join(hits) or "NONE: matches no labelled scenario"})
    formats.write_table(shown, sys.stdout, width=shutil.get_terminal_size((120, 24)).columns)
    sys.stdout.flush()


def show_labels(labels, rows: list[dict]) -> None:
    say("\nLabelled scenarios in the data and whether a spike row falls in one of their windows:")
    for label in labels:
        hit = any(matches(label, row) for row in rows)
        verdict = (
            ("FOUND" if hit else "missed") if label.category == "attack" else ("ALERTED" if hit else "quiet")
        )
        say(f"   {label.category:<6} {label.kind:<22} {verdict:<7} {label.principal or label.account}")
    attacks = [label for label in labels if label.category == "attack"]
    traps = [label for label in labels if label.category != "attack"]
    found = sum(1 for label in attacks if any(matches(label, row) for row in rows))
    quiet = sum(1 for label in traps if not any(matches(label, row) for row in rows))
    unlabelled = [row for row in rows if not any(matches(label, row, account_rows=True) for label in attacks)]
    unlabelled = [row for row in unlabelled if not any(matches(label, row) for label in traps)]
    say(
        f"\nTally: {found} of {len(attacks)} attacks found, {quiet} of {len(traps)} traps quiet,"
        f" {len(unlabelled)} unlabelled alert{'' if len(unlabelled) == 1 else 's'}"
        + (": " + ", ".join(sorted({short(row) for row in unlabelled})) if unlabelled else "")
    )


def short(row: dict) -> str:
    principal = str(row.get("principal") or "")
    return principal.rsplit("/", 1)[-1] if principal else f"account {row.get('account')}"


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
        show_spikes(org.labels, session.rows)
        show_labels(org.labels, session.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
