"""The CLI: flags and their errors, exit statuses, formats, pre-aggregated rows, progress, the entry
script's one line on an unsupported Python. (The installed command: tests/contract/test_cli_install.py.)"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
from iamspike import cli, formats
from iamspike.durations import parse_duration

ROOT = pathlib.Path(__file__).resolve().parents[2]
PWNED = ROOT.parent / "shared" / "data" / "cloudtrail" / "pwnedlabs_incident_3252"
T0 = 1_788_739_200  # 2026-09-07T00:00:00Z


def record(when: int, name: str, user: str, code: str = "AccessDenied") -> dict:
    return {
        "eventTime": when,
        "eventName": name,
        "eventSource": "iam.amazonaws.com",
        "errorCode": code,
        "recipientAccountId": "1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::1:user/{user}"},
    }


def write_burst(folder: pathlib.Path) -> pathlib.Path:
    """30 hours of one steady failure by ci, then a burst of 30 failures over 8 APIs by x."""
    records = [record(T0 + h * 3600, "GetUser", "ci") for h in range(30)]
    records += [record(T0 + 29 * 3600 + i, f"ListAttachedUserPolicies{i % 8}", "x") for i in range(30)]
    path = folder / "trail.json"
    path.write_text(json.dumps({"Records": records}))
    return path


def run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(args), out=out), out.getvalue()


def test_json_has_iso_time_and_every_field_epoch_on_request(tmp_path: pathlib.Path) -> None:
    path = str(write_burst(tmp_path))
    code, text = run_cli(path, "--format", "json")
    rows = [json.loads(line) for line in text.splitlines()]
    assert code == 0 and {r["principal"] for r in rows} == {"", "arn:aws:iam::1:user/x"}
    assert {r["_time"] for r in rows} == {"2026-09-08T05:00:00Z"}
    assert list(rows[0])[:4] == ["_time", "entity_type", "account", "principal"]
    assert [r["top_source_ips"] for r in rows] == ["198.51.100.7 (31)", "198.51.100.7 (30)"]
    assert [r["top_error_codes"] for r in rows] == ["AccessDenied (31)", "AccessDenied (30)"]
    assert all(r["reason"] and r["top_apis"] and r["top_user_agents"] for r in rows)
    code, text = run_cli("scan", path, "--format", "json", "--epoch", "--by", "principal")
    assert [json.loads(line)["_time"] for line in text.splitlines()] == [T0 + 29 * 3600]


def test_csv_and_table(tmp_path: pathlib.Path) -> None:
    path = str(write_burst(tmp_path))
    code, text = run_cli(path, "--format", "csv", "--by", "principal")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert code == 0 and [r["principal"] for r in rows] == ["arn:aws:iam::1:user/x"]
    assert rows[0]["_time"] == "2026-09-08T05:00:00Z" and rows[0]["top_user_agents"] == "aws-cli/2.15.0 (30)"
    code, text = run_cli(path, "--by", "principal")
    lines = text.splitlines()
    assert lines[0].split() == list(formats.SUMMARY_FIELDS)  # _time .. distinct_apis
    labels = [line.split()[0] for line in lines[3:] if line.startswith("    ") and line[4] != " "]
    assert labels == ["top_error_codes", "top_apis", "top_source_ips", "top_user_agents", "reason"]
    assert run_cli(path, "--min-failures", "100") == (0, "no spikes\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--span", "0h"], "--span 0h: "),
        (["--span", "-1h"], "--span -1h: "),
        (["--span", "2s"], "--span 2s: span must be between 5m and 1d"),
        (["--sensitivity", "0"], "--sensitivity 0: sensitivity must be between"),
        (["--show", "x"], "--show x: show must be spikes, all or state"),
        (["--by", "user"], "--by user: by must be account, principal or both"),
        (["--classes", "nosuch"], "--classes nosuch: unknown error class 'nosuch'"),
        (["--count-field", "a b"], "--count-field a b: count_field must be a field name"),
        (["--half-life", "10m"], "--half-life 10m: half_life must be at least one span"),
        (["--span", "2h", "--half-life", "1h"], "--half-life 1h: half_life must be at least one span"),
        (["--min-history", "-1h"], "--min-history -1h: "),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["--show", "state", "--report", "r.html"], "--report needs --show spikes or all"),
    ],
)
def test_errors_name_the_flag_in_one_line_exit_2(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out = run_cli(str(write_burst(tmp_path)), *args)
    err = capsys.readouterr().err
    assert (code, out) == (2, "") and err.startswith("iamspike: error: " + message) and err.count("\n") == 1


def test_paths_errors_and_empty_input(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(str(tmp_path / "missing")) == (2, "")
    assert "no such file or folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(str(empty)) == (1, "")
    assert capsys.readouterr().err == "iamspike: error: 0 CloudTrail records in 0 files: nothing to score\n"
    (empty / "a.json").write_text("")
    assert run_cli(str(empty / "a.json")) == (1, "")
    assert capsys.readouterr().err.splitlines() == [
        f"iamspike: skipped {empty / 'a.json'}: empty file (after 0 records)",
        "iamspike: error: 0 CloudTrail records in 0 files: nothing to score",
    ]


def test_skipped_files_exit_3_and_a_report_is_whole_or_left_as_it_was(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_burst(tmp_path)
    whole = run_cli(str(tmp_path), "--format", "json")
    capsys.readouterr()
    (tmp_path / "cut.json").write_text('{"Records": [')
    assert run_cli(str(tmp_path), "--format", "json") == (3, whole[1])
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"iamspike: skipped {tmp_path / 'cut.json'}: ")
    assert err[-1] == "iamspike: 60 CloudTrail records in 1 file, 2 spikes, 1 file skipped"
    report = tmp_path / "out" / "page.html"
    report.parent.mkdir()
    report.write_text("earlier")
    assert run_cli(str(tmp_path / "trail.json"), "--report", str(report))[0] == 0
    assert report.read_text().startswith("<!DOCTYPE html>") and os.listdir(report.parent) == ["page.html"]
    assert run_cli(str(tmp_path / "missing"), "--report", str(report)) == (2, "")
    assert report.read_text().startswith("<!DOCTYPE html>") and os.listdir(report.parent) == ["page.html"]


def test_help_shows_defaults_and_allowed_values_from_the_engine(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert done.value.code == 0
    for flag in ("--span", "--by", "--min-failures", "--count-field", "--event-sources", "--half-life"):
        assert flag in text
    assert "--phase" not in text
    for shown in (
        "--span DURATION width of the time bins; default 1h; allowed 5m..1d, whole minutes",
        "--sensitivity SENSITIVITY higher flags more, lower flags less; default 1; allowed 0.01..100",
        "--min-failures MIN_FAILURES fewest failures in a bin that can be flagged; default 5;"
        " allowed 1..1000000000",
        "--by account|principal|both which entities are scored; default both",
        "--show spikes|all|state",
        "default 7d; allowed 5m..400d, at least one span",
    ):
        assert shown in text
    assert "default authorization; allowed one or more of " in text and " not_found, " in text
    assert "(--min-failures is SPL min_failures=)" in text


def _help_range(text: str, name: str) -> tuple[str, str]:
    found = re.search(rf"{cli.flag(name)} [A-Z_]+ [^;]*; default [^;]*; allowed (\S+)\.\.([^,\s]+)", text)
    assert found, name
    return found[1], found[2]


def _refused(name: str, value: str, *more: str) -> str:
    """The error for ``--name=value`` ("" when the flag is accepted)."""
    args = cli.build_parser().parse_args([f"{cli.flag(name)}={value}", *more, "logs/"])
    try:
        cli.options_from_args(args, None)
    except cli.OptionError as exc:
        return str(exc)
    return ""


# Each ranged flag: just outside its range, in the flag's own unit (seconds for durations).
OUTSIDE = {
    "span": (lambda low: f"{int(low) - 60}s", lambda high: f"{int(high) + 60}s"),
    "sensitivity": (lambda low: f"{low / 2:g}", lambda high: f"{high * 1.01:g}"),
    "threshold": (lambda low: f"{low - 0.5:g}", lambda high: f"{high + 0.5:g}"),
    "min_failures": (lambda low: f"{int(low) - 1}", lambda high: f"{int(high) + 1}"),
    "history": (lambda low: f"{int(low) - 1}s", lambda high: f"{int(high) + 1}s"),
    "half_life": (lambda low: f"{int(low) - 1}s", lambda high: f"{int(high) + 1}s"),
    "min_history": (lambda low: "-1s", lambda high: f"{int(high) + 1}s"),
}


@pytest.mark.parametrize("name", sorted(OUTSIDE))
def test_the_range_help_names_is_the_range_the_flag_accepts(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    low, high = _help_range(" ".join(capsys.readouterr().out.split()), name)
    more = ("--span=5m",) if name == "half_life" else ()  # half_life is at least one span
    assert _refused(name, low, *more) == "" and _refused(name, high, *more) == ""
    duration = name in ("span", "history", "half_life", "min_history")
    low_value, high_value = (
        0 if v == "0" else parse_duration(v) if duration else float(v) for v in (low, high)
    )
    below, above = (edge(value) for edge, value in zip(OUTSIDE[name], (low_value, high_value)))
    for outside in (below, above):
        message = _refused(name, outside, *more)
        assert message.startswith(f"{cli.flag(name)} {outside}: "), message
        if outside != "-1s":  # a negative duration is refused as not a duration at all
            assert f" must be between {low} and {high}, got '{outside}'" in message, message


def test_count_field_reads_pre_aggregated_rows_csv_and_json(tmp_path: pathlib.Path) -> None:
    rows = [("2026-09-07T%02d:00:00Z" % h, "1", "arn:aws:iam::1:user/ci", 1) for h in range(24)]  # noqa: UP031
    rows += [("2026-09-08T01:00:00.000+0000", "1", "arn:aws:iam::1:user/x", 40)]
    with open(tmp_path / "counts.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["_time", "account", "principal", "n"])
        writer.writerows(rows)
    (tmp_path / "counts.jsonl").write_text(
        "\n".join(
            json.dumps({"preview": False, "result": dict(zip(("_time", "account", "principal", "n"), r))})
            for r in rows
        )
    )
    for name in ("counts.csv", "counts.jsonl"):
        args = ("--count-field", "n", "--format", "json", "--by", "principal")
        code, text = run_cli(str(tmp_path / name), *args)
        found = [json.loads(line) for line in text.splitlines()]
        assert code == 0, name
        assert [(r["_time"], r["principal"], r["failures"]) for r in found] == [
            ("2026-09-08T01:00:00Z", "arn:aws:iam::1:user/x", 40)
        ], name


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_only(tmp_path: pathlib.Path) -> None:
    reader = cli.FileReader([str(write_burst(tmp_path))])
    terminal = _Terminal()
    progress = cli.Progress(reader, terminal, after=0.0)
    assert sum(1 for _ in progress.count(reader)) == 60
    assert terminal.getvalue().startswith("\riamspike: 1 file, 60 records, ")
    assert terminal.getvalue().endswith(" records/s\n") and progress.shown
    piped = io.StringIO()
    quiet = cli.Progress(cli.FileReader([str(tmp_path)]), piped, after=0.0)
    assert sum(1 for _ in quiet.count(quiet.reader)) == 60 and piped.getvalue() == ""


def test_report_written_alongside_the_rows(tmp_path: pathlib.Path) -> None:
    path = str(write_burst(tmp_path))
    page = tmp_path / "report.html"
    code, text = run_cli(path, "--format", "json", "--report", str(page))
    assert code == 0 and [json.loads(line)["principal"] for line in text.splitlines()] == [
        "",
        "arn:aws:iam::1:user/x",
    ]
    html = page.read_text()
    assert html.count("<svg") == 2 and "is_spike" not in text
    assert run_cli(path, "--report", str(tmp_path / "missing" / "r.html"))[0] == 2


@pytest.mark.skipif(sys.version_info[:2] in ((3, 9), (3, 13)), reason="a supported Python runs the script")
def test_entry_script_says_what_to_run_on_an_unsupported_python(tmp_path: pathlib.Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "iamspike_cli.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"serve Python 3.9 and 3.13, not {sys.version_info[0]}.{sys.version_info[1]}" in done.stderr
    assert "python3.13 " in done.stderr and "pipx install" in done.stderr


@pytest.mark.skipif(not PWNED.is_dir(), reason="shared CloudTrail sets not present")
def test_pwnedlabs_temp_user_flagged() -> None:
    code, text = run_cli(str(PWNED), "--format", "json")
    rows = [json.loads(line) for line in text.splitlines()]
    assert code == 0
    assert {(r["entity_type"], r["principal"]) for r in rows} == {
        ("account", ""),
        ("principal", "arn:aws:iam::107513503799:user/temp-user"),
    }
