"""Install the built package as Splunk does and run its scripts from a bare Splunk Python.

Plain functions, usable from any fixture or bench:

- :func:`find_package` -- the tgz under test (env ``IAMSPIKE_PACKAGE`` or the newest build);
- :func:`install` -- unpack it into ``<home>/etc/apps/`` of a fake ``SPLUNK_HOME``;
- :func:`find_interpreter` / :func:`bare_python` -- pyenv's python3.9 / python3.13 and a venv
  made from it with ``--without-pip`` (no site-packages: only the app's vendored ``lib/``);
- :func:`child_env` -- the minimal environment splunkd-like children get;
- :func:`run_entry` / :func:`start_entry` -- run ``python <app>/bin/<script>.py`` as splunkd does.

Nothing here imports product code: the installed package is driven as a child process only.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP_ID = "TA-aws-iam-error-spike"
PACKAGE_ENV = "IAMSPIKE_PACKAGE"
SPLUNK_PYTHONS = ("3.9", "3.13")
# What a child sees on PATH: enough for a shell-less Python, nothing from the dev venv.
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"


class StandinError(RuntimeError):
    """The stand-in cannot do what was asked (no package, bad archive...); one-line message."""


@dataclass(frozen=True)
class SplunkHome:
    """A fake ``SPLUNK_HOME`` holding one installed app.

    ``home``: the SPLUNK_HOME folder; ``app_dir``: ``<home>/etc/apps/<app id>``; ``bin``: the
    app's ``bin/`` (entry scripts); ``log_dir``: ``<home>/var/log/splunk``.
    """

    home: str
    app_dir: str
    bin: str
    log_dir: str

    def script(self, name: str) -> str:
        """Full path of an entry script, e.g. ``script("iamspike_command.py")``."""
        return os.path.join(self.bin, name)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """:func:`child_env` for this home."""
        return child_env(self.home, extra)


def find_package(repo: str = REPO, environ: Mapping[str, str] | None = None) -> str | None:
    """The tgz to test: ``$IAMSPIKE_PACKAGE`` if set, else the newest
    ``package/dist/TA-aws-iam-error-spike-*.tgz``; None when there is none."""
    environ = os.environ if environ is None else environ
    chosen = environ.get(PACKAGE_ENV)
    if chosen:
        return os.path.abspath(chosen) if os.path.isfile(chosen) else None
    builds = glob.glob(os.path.join(repo, "package", "dist", APP_ID + "-*.tgz"))
    return max(builds, key=os.path.getmtime) if builds else None


def install(package: str, home: str) -> SplunkHome:
    """Unpack ``package`` into ``<home>/etc/apps/`` as Splunk installs an app (the archive's
    single top folder becomes the app folder) and create ``<home>/var/log/splunk``."""
    apps = os.path.join(home, "etc", "apps")
    log_dir = os.path.join(home, "var", "log", "splunk")
    os.makedirs(apps, exist_ok=True)
    os.makedirs(log_dir, exist_ok=True)
    with tarfile.open(package, "r:gz") as archive:
        tops = {member.name.split("/", 1)[0] for member in archive.getmembers()}
        if len(tops) != 1:
            raise StandinError(f"{package}: expected one top folder, found {sorted(tops)}")
        if hasattr(tarfile, "tar_filter"):  # keeps modes as they are, refuses paths outside
            archive.extractall(apps, filter="tar")
        else:  # pragma: no cover - Python without extraction filters
            archive.extractall(apps)
    app_dir = os.path.join(apps, tops.pop())
    return SplunkHome(home=home, app_dir=app_dir, bin=os.path.join(app_dir, "bin"), log_dir=log_dir)


def _pyenv_root() -> str | None:
    if os.environ.get("PYENV_ROOT"):
        return os.environ["PYENV_ROOT"]
    if shutil.which("pyenv"):
        proc = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    default = os.path.expanduser("~/.pyenv")
    return default if os.path.isdir(default) else None


def _version_key(path: str) -> list[int]:
    """``.../versions/3.9.18/bin/python3.9`` -> [3, 9, 18] (non-numeric parts count as 0)."""
    release = path.split("/versions/")[1].split("/")[0]
    return [int(part) if part.isdigit() else 0 for part in release.split(".")]


def find_interpreter(version: str) -> str | None:
    """A real ``python<version>`` (e.g. "3.9"): pyenv's newest ``versions/<version>.*`` first,
    then one on PATH that is not a pyenv shim; None when there is none."""
    root = _pyenv_root()
    if root:
        found = glob.glob(os.path.join(root, "versions", version + ".*", "bin", "python" + version))
        found = [path for path in found if os.access(path, os.X_OK)]
        if found:
            return max(
                found, key=lambda p: [int(x) for x in p.split("/versions/")[1].split("/")[0].split(".")]
            )
    on_path = shutil.which("python" + version)
    if on_path and "/shims/" not in on_path:
        return on_path
    return None


def bare_python(version: str, dest: str) -> str | None:
    """Create ``dest`` as ``python<version> -m venv --without-pip`` and return its python, or
    None when the interpreter is missing. The venv has no site-packages of its own beyond the
    empty default one, so only what the app puts on ``sys.path`` is importable."""
    interpreter = find_interpreter(version)
    if interpreter is None:
        return None
    python = os.path.join(dest, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([interpreter, "-m", "venv", "--without-pip", dest], check=True, capture_output=True)
    return python


def child_env(home: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a splunkd child: ``PATH``, ``HOME`` and ``SPLUNK_HOME`` (both the fake
    home, so no ``~/.aws`` or user site leaks in), ``LANG``; no PYTHONPATH. ``extra`` is added
    last (e.g. the AWS endpoint variables from ``standin.fixtures_aws.aws_env``)."""
    env = {"PATH": CHILD_PATH, "HOME": home, "SPLUNK_HOME": home, "LANG": "C.UTF-8"}
    env.update(extra or {})
    return env


def run_entry(
    python: str,
    script: str,
    args: Sequence[str] = (),
    stdin: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    cwd: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python script *args`` to completion, as splunkd does for a modular input
    (``--scheme``, ``--validate-arguments``) or a one-shot script. ``stdin`` is fed whole;
    stdout/stderr are captured (text when ``stdin`` is str, else bytes). ``env`` should come
    from :func:`child_env` (default: an empty-ish env with PATH only)."""
    return subprocess.run(
        [python, os.path.abspath(script), *args],
        input=stdin,
        capture_output=True,
        text=isinstance(stdin, str),
        env=dict(env) if env is not None else {"PATH": CHILD_PATH},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def start_entry(
    python: str,
    script: str,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    **popen_kwargs: Any,
) -> subprocess.Popen:
    """Start ``python script *args`` with pipes on stdin/stdout/stderr and return the Popen
    (for long runs: feed stdin, read events, then ``send_signal(SIGTERM)`` as splunkd does).
    ``popen_kwargs`` override the defaults (e.g. ``cwd``, ``text=True``)."""
    options: dict[str, Any] = {
        "stdin": subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "env": dict(env) if env is not None else {"PATH": CHILD_PATH},
    }
    options.update(popen_kwargs)
    return subprocess.Popen([python, os.path.abspath(script), *args], **options)
