#!/usr/bin/env python3
"""AppInspect gate: run splunk-appinspect (cloud tags) on a built package and fail on any
error, failure or future failure.

Usage: ``python package/appinspect_gate.py package/dist/TA-aws-iam-error-spike-0.1.0.tgz
[--report FILE]``

Prints one summary line (``AppInspect summary: error=0 failure=0 future_failure=0 warning=..``),
then every error/failure/future_failure check with its messages, then the warnings (one line
per check). Exit status: 0 clean, 1 any error/failure/future_failure, 2 AppInspect itself could
not run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any

BLOCKING = ("error", "failure", "future_failure")
SUMMARY_KEYS = ("error", "failure", "future_failure", "warning", "manual_check", "skipped",
                "not_applicable", "success")  # fmt: skip


def appinspect_command(package: str, report: str) -> list[str]:
    """The splunk-appinspect command line, from the interpreter running this gate (the .venv)."""
    exe = os.path.join(os.path.dirname(sys.executable), "splunk-appinspect")
    return [exe, "inspect", package, "--mode", "precert", "--included-tags", "cloud",
            "--data-format", "json", "--output-file", report, "--skip-trusted-libraries-update"]  # fmt: skip


def iter_checks(report: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every check result of an AppInspect JSON report (all reports, all groups)."""
    for app_report in report.get("reports", []):
        for group in app_report.get("groups", []):
            yield from group.get("checks", [])


def summarize(report: Mapping[str, Any]) -> dict[str, int]:
    """The report's summary counts (recounted from the checks when the summary is missing)."""
    summary = dict(report.get("summary") or {})
    if not summary:
        for check in iter_checks(report):
            summary[check.get("result", "")] = summary.get(check.get("result", ""), 0) + 1
    return {key: int(summary.get(key, 0)) for key in SUMMARY_KEYS}


def _message_line(message: Mapping[str, Any]) -> str:
    text = " ".join(str(message.get("message", "")).split())
    where = str(message.get("message_filename") or "")
    if where and where in text:  # AppInspect already says "File: ... Line Number: ..."
        where = ""
    elif where and message.get("message_line"):
        where = f"{where}:{message['message_line']}"
    return f"    - {text}" + (f" [{where}]" if where else "")


def render(report: Mapping[str, Any], seconds: float | None = None) -> tuple[list[str], bool]:
    """Lines to print and whether the gate passes."""
    counts = summarize(report)
    line = "AppInspect summary: " + " ".join(f"{key}={counts[key]}" for key in SUMMARY_KEYS)
    lines = [line + (f" ({seconds:.0f} s)" if seconds is not None else "")]
    blocking = [check for check in iter_checks(report) if check.get("result") in BLOCKING]
    for check in blocking:
        lines.append(f"  {check.get('result').upper()} {check.get('name')}")
        lines.extend(_message_line(message) for message in check.get("messages", []))
    for check in iter_checks(report):
        if check.get("result") == "warning":
            count = len(check.get("messages", []))
            lines.append(f"  warning {check.get('name')} ({count} message{'s' if count != 1 else ''})")
    passed = not blocking and all(counts[key] == 0 for key in BLOCKING)
    return lines, passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("package", help="the built .tgz")
    parser.add_argument("--report", help="where to keep the JSON report (default: a temp file)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.package):
        sys.stderr.write(f"appinspect_gate: no such package: {args.package} (run `make package`)\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="appinspect-") as tmp:
        report_path = args.report or os.path.join(tmp, "appinspect.json")
        started = time.monotonic()
        try:
            proc = subprocess.run(
                appinspect_command(args.package, report_path), capture_output=True, text=True
            )
        except OSError as exc:
            sys.stderr.write(f"appinspect_gate: cannot run splunk-appinspect: {exc}\n")
            return 2
        seconds = time.monotonic() - started
        try:
            with open(report_path, encoding="utf-8") as handle:
                report = json.load(handle)
        except (OSError, ValueError) as exc:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            sys.stderr.write(f"appinspect_gate: no JSON report (exit {proc.returncode}, {exc}): {tail[0]}\n")
            return 2
    lines, passed = render(report, seconds)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
