"""The CLI: same rows as the engine, formats, one-line errors with exit status 2."""

from __future__ import annotations

import csv
import io
import json
import pathlib
import subprocess
import sys

import pytest
from iamspike import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
PWNED = ROOT.parent / "shared" / "data" / "cloudtrail" / "pwnedlabs_incident_3252"
T0 = 1_788_739_200


def write_burst(folder: pathlib.Path) -> pathlib.Path:
    records = []
    for h in range(30):
        records.append(
            {
                "eventTime": T0 + h * 3600,
                "eventName": "GetUser",
                "errorCode": "AccessDenied",
                "recipientAccountId": "1",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/ci"},
            }
        )
    for i in range(30):
        records.append(
            {
                "eventTime": T0 + 29 * 3600 + i,
                "eventName": f"List{i % 8}",
                "errorCode": "AccessDenied",
                "recipientAccountId": "1",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/x"},
            }
        )
    path = folder / "trail.json"
    path.write_text(json.dumps({"Records": records}))
    return path


def run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(args), out=out), out.getvalue()


def test_formats(tmp_path: pathlib.Path) -> None:
    path = str(write_burst(tmp_path))
    code, text = run_cli("scan", path, "--format", "json")
    rows = [json.loads(line) for line in text.splitlines()]
    assert code == 0 and {r["principal"] for r in rows} == {"", "arn:aws:iam::1:user/x"}
    code, text = run_cli(path, "--format", "csv", "--by", "principal")
    assert [r["principal"] for r in csv.DictReader(io.StringIO(text))] == ["arn:aws:iam::1:user/x"]
    code, text = run_cli(path, "--min-failures", "100")
    assert text == "no spikes\n"
    code, text = run_cli(path)
    assert text.splitlines()[0].split()[:4] == ["_time", "entity_type", "account", "principal"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--span", "2s"], "span must be between 5m and 1d"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--show", "x"], "show must be spikes, all or state"),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path: pathlib.Path, capsys, args: list[str], message: str) -> None:
    code, _ = run_cli(str(write_burst(tmp_path)), *args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_missing_path(capsys) -> None:
    assert run_cli("/nonexistent/trail")[0] == 2
    assert "no such file or folder" in capsys.readouterr().err


@pytest.mark.skipif(not PWNED.is_dir(), reason="shared CloudTrail sets not present")
def test_entry_script_on_pwnedlabs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "iamspike_cli.py"), str(PWNED), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {(r["entity_type"], r["principal"]) for r in rows} == {
        ("account", ""),
        ("principal", "arn:aws:iam::107513503799:user/temp-user"),
    }
