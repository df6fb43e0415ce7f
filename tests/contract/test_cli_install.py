"""The `iamspike` command as a responder installs it: the wheel that `make wheel` builds (and the
source tree, as `pipx install .` does) in a fresh venv of a Python that is neither 3.9 nor 3.13
(the machine's python3), numpy from the registry; run on the real CloudTrail sets. And the unpacked
app's bin/iamspike_cli.py: working on Splunk's Pythons, one line on any other.

Installs go through a wheel cache, ``package/cache/cli-<tag>/``: filled from the registry once
(numpy, hatchling), then every venv is made with ``pip install --no-index --find-links`` from it,
so a second run needs no network. Nothing here imports product code.
"""

from __future__ import annotations

import glob
import json
import os
import pathlib
import shutil
import struct
import subprocess
import zlib

import pytest
from standin.install import REPO, find_interpreter, install, run_entry

pytestmark = pytest.mark.contract

SHARED = pathlib.Path(REPO).parent / "shared" / "data" / "cloudtrail"
PWNED = SHARED / "pwnedlabs_incident_3252"
SANS = SHARED / "sans504_s3_ransomware_lab"
LICENSED = pathlib.Path(REPO) / "tests" / "data" / "cloudtrail"
TEMP_USER = "arn:aws:iam::107513503799:user/temp-user"
WHEEL_ENV = "IAMSPIKE_WHEEL"
CI = os.environ.get("CI", "").lower() == "true"
need_shared = pytest.mark.skipif(not PWNED.is_dir(), reason="../shared/data/cloudtrail not present")


def _missing(message: str) -> None:
    if CI:
        pytest.fail(message + " (CI=true makes it a failure)", pytrace=False)
    pytest.skip(message)


def _run(cmd: list[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_REQ"))}
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env, **kwargs
    )


def _version(python: str) -> tuple[int, int]:
    done = _run([python, "-c", "import sys; print('%d %d' % sys.version_info[:2])"])
    major, minor = done.stdout.split()
    return int(major), int(minor)


@pytest.fixture(scope="session")
def other_python() -> str:
    """The machine's python3, or another CPython >= 3.9 that is neither 3.9 nor 3.13."""
    candidates = [shutil.which("python3")] + [find_interpreter(v) for v in ("3.12", "3.11", "3.10", "3.14")]
    for python in filter(None, candidates):
        if _version(python) >= (3, 9) and _version(python) not in ((3, 9), (3, 13)):
            return python
    _missing("no Python >= 3.9 other than 3.9 and 3.13 found")
    raise AssertionError  # unreachable


@pytest.fixture(scope="session")
def cli_wheel() -> str:
    """The wheel under test: ``$IAMSPIKE_WHEEL`` or the newest package/dist build (`make wheel`)."""
    chosen = os.environ.get(WHEEL_ENV)
    found = (
        [chosen]
        if chosen
        else glob.glob(os.path.join(REPO, "package", "dist", "ta_aws_iam_error_spike-*.whl"))
    )
    found = [path for path in found if os.path.isfile(path)]
    if not found:
        pytest.fail(f"no CLI wheel ({WHEEL_ENV} or package/dist/*.whl): run `make wheel`", pytrace=False)
    return max(found, key=os.path.getmtime)


def _cache(python: str) -> str:
    major, minor = _version(python)
    return os.path.join(REPO, "package", "cache", f"cli-cp{major}{minor}")


def pip_install(python: str, venv: str, *specs: str) -> None:
    """``pip install`` into ``venv`` from the wheel cache; fill the cache from the registry once."""
    cache = _cache(python)
    pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "--disable-pip-version-check"]
    offline = [*pip, "install", "--quiet", "--no-index", "--find-links", cache, *specs]
    if os.path.isdir(cache) and _run(offline).returncode == 0:
        return
    fetch = [
        *pip,
        "download",
        "--quiet",
        "--only-binary=:all:",
        "--dest",
        cache,
        "numpy>=2.0",
        "hatchling>=1.18",
    ]
    done = _run(fetch)
    assert done.returncode == 0, "pip download from the registry failed: " + done.stderr.strip()[-300:]
    done = _run(offline)
    assert done.returncode == 0, done.stderr.strip()[-500:]


def fresh_venv(python: str, where: pathlib.Path) -> str:
    done = _run([python, "-m", "venv", str(where)])
    assert done.returncode == 0, done.stderr
    return str(where)


@pytest.fixture(scope="session")
def iamspike(other_python: str, cli_wheel: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The `iamspike` command installed from the wheel into a fresh venv of ``other_python``."""
    venv = fresh_venv(other_python, tmp_path_factory.mktemp("cli") / "venv")
    pip_install(other_python, venv, cli_wheel)
    return os.path.join(venv, "bin", "iamspike")


def test_wheel_version_is_the_apps(cli_wheel: str) -> None:
    conf = pathlib.Path(REPO, "default", "app.conf").read_text()
    version = next(line.split("=", 1)[1].strip() for line in conf.splitlines() if line.startswith("version"))
    assert os.path.basename(cli_wheel) == f"ta_aws_iam_error_spike-{version}-py3-none-any.whl"


@need_shared
def test_installed_command_flags_pwnedlabs_json(iamspike: str, other_python: str) -> None:
    assert _version(other_python) not in ((3, 9), (3, 13))
    done = _run([iamspike, str(PWNED), "--format", "json"])
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["_time"], r["entity_type"], r["principal"]) for r in rows] == [
        ("2023-08-26T20:00:00Z", "account", ""),
        ("2023-08-26T20:00:00Z", "principal", TEMP_USER),
    ]
    assert all(r["severity"] == "critical" and "AccessDenied" in r["top_error_codes"] for r in rows)
    assert "84.32.71.29" in rows[1]["top_source_ips"] and "temp-user" in rows[1]["reason"]
    assert done.stderr.strip().splitlines()[-1] == "iamspike: 638 CloudTrail records in 7 files, 2 spikes"


@need_shared
def test_installed_command_table_every_field_uncut(iamspike: str) -> None:
    env = {"COLUMNS": "100", "PATH": os.environ.get("PATH", "")}
    done = subprocess.run(
        [iamspike, str(PWNED), "--by", "principal"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:4] == ["_time", "entity_type", "account", "principal"]
    assert TEMP_USER in lines[2]
    text = "\n".join(lines)
    reason = text.split("\n    reason ", 1)[1].splitlines()
    assert len(reason) > 1 and all(len(line) <= 100 for line in reason)  # wrapped to COLUMNS
    for field in ("top_error_codes", "top_apis", "top_source_ips", "top_user_agents", "reason"):
        assert f"\n    {field} " in text
    assert "DescribeClusters (4), ListClusters (4)," in text  # whole items, never cut mid-word


@need_shared
def test_installed_command_sans_trap_is_quiet(iamspike: str) -> None:
    done = _run([iamspike, str(SANS)])
    assert (done.returncode, done.stdout) == (0, "no spikes\n"), done.stderr
    assert done.stderr == (
        "iamspike: no history before these files' 115 h, so each entity's first hours are judged "
        "without a baseline: add earlier files of the same accounts (a week or more) for fewer false "
        "alerts\niamspike: 30,477 CloudTrail records in 3,872 files, 0 spikes\n"
    )


def test_installed_command_on_licensed_copies(iamspike: str) -> None:
    done = _run([iamspike, str(LICENSED / "stratus"), "--format", "csv", "--by", "principal", "--epoch"])
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.startswith("_time,entity_type,account,principal,failures,expected,upper,score,severity")
    assert rows and all(row.split(",")[0].isdigit() for row in rows)
    assert any("stratus-red-team-ec2-get-password-data-role" in row for row in rows)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([], 2, "iamspike: error: the following arguments are required: PATH"),
        (["{data}", "--span", "0h"], 2, "iamspike: error: --span 0h: "),
        (["{data}", "--span", "-1h"], 2, "iamspike: error: --span -1h: "),
        (["{data}", "--count-field"], 2, "iamspike: error: argument --count-field: expected one argument"),
        (["{empty}"], 1, "iamspike: error: 0 CloudTrail records in 0 files: nothing to score"),
        (["{empty}/nothing-here"], 2, "iamspike: error: no such file or folder: "),
    ],
)
def test_installed_command_errors(
    iamspike: str, tmp_path: pathlib.Path, args: list[str], status: int, message: str
) -> None:
    (tmp_path / "empty").mkdir()
    paths = {"data": str(LICENSED / "stratus"), "empty": str(tmp_path / "empty")}
    done = _run([iamspike, *(arg.format(**paths) for arg in args)])
    assert (done.returncode, done.stdout) == (status, "")
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_installed_command_help(iamspike: str) -> None:
    done = _run([iamspike, "--help"])
    text = " ".join(done.stdout.split())
    assert done.returncode == 0 and "usage: iamspike " in text
    assert "--count-field COUNT_FIELD" in text and "default 1h" in text and "--show spikes|all|state" in text


# ------------------------------------------------------------------------------ HTML report


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows of an 8-bit RGB(A) PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = depth = colour = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and colour in (2, 6)
    size = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * size
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - size] if i >= size else 0
            b = previous[i]
            c = previous[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line[k] for k in range(stride) if k % size < 3))
        previous = line
    return width, height, rows


def screenshot(page: pathlib.Path, png: pathlib.Path, height: int = 1400) -> None:
    """Headless Chromium, with every network request sent to a closed port: the page must not need one."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        _missing("chromium not installed (`make chromium` installs Debian's package)")
    done = _run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--proxy-server=127.0.0.1:9",
            f"--window-size=1200,{height}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        timeout=120,
    )
    assert png.is_file(), done.stderr[-500:]


@need_shared
def test_installed_command_html_report(iamspike: str, tmp_path: pathlib.Path) -> None:
    page = tmp_path / "pwned.html"
    done = _run([iamspike, str(PWNED), "--report", str(page)])
    assert done.returncode == 0, done.stderr
    html = page.read_text(encoding="utf-8")
    external = [token for token in ("<script", "<link", "<img", "url(", "@import") if token in html]
    assert external == [] and html.count("http") == html.count('xmlns="http://www.w3.org/2000/svg"')
    assert html.count("<svg") == 2 and html.count('<h2 id="e') == 2
    assert TEMP_USER in html and "84.32.71.29" in html and "temp-user had 505 failed calls" in html
    png = tmp_path / "pwned.png"
    screenshot(page, png)
    width, height, rows = _png_pixels(png.read_bytes())
    assert (width, height) == (1200, 1400)
    spike_red = sum(row.count(b"\xc9\x2a\x2a") for row in rows)  # the spike bars (#c92a2a)
    assert spike_red > 2000


# ------------------------------------------------------------------------- the unpacked app


def test_unpacked_app_script_one_line_on_other_python(
    app_package: str, other_python: str, tmp_path: pathlib.Path
) -> None:
    home = install(app_package, str(tmp_path / "splunk"))
    done = run_entry(other_python, home.script("iamspike_cli.py"), [str(LICENSED / "stratus")])
    err = done.stderr.decode()
    major, minor = _version(other_python)
    assert (done.returncode, done.stdout) == (2, b"") and err.count("\n") == 1, err
    assert (
        f"serve Python 3.9 and 3.13, not {major}.{minor}: run 'python3.13 " in err and "pipx install" in err
    )


def test_unpacked_app_script_runs_on_splunk_python(splunk_python: str, splunk_home) -> None:
    done = run_entry(
        splunk_python, splunk_home.script("iamspike_cli.py"), [str(LICENSED / "stratus"), "--format", "json"]
    )
    assert done.returncode == 0, done.stderr.decode()[-500:]
    rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert any(r["principal"].endswith("role/stratus-red-team-ec2-get-password-data-role") for r in rows)


def test_source_tree_installs_as_pipx_does(other_python: str, tmp_path: pathlib.Path) -> None:
    """`pipx install .` is `pip install .` into a venv of its own: the same, with the cache."""
    venv = fresh_venv(other_python, tmp_path / "venv")
    pip_install(other_python, venv, REPO)
    done = _run([os.path.join(venv, "bin", "iamspike"), str(LICENSED / "stratus"), "--format", "json"])
    assert done.returncode == 0 and done.stdout.count("\n") >= 1, done.stderr
