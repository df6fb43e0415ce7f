"""Fixtures for the built package: install into etc/apps, bare Splunk Pythons.

- ``app_package`` (session): path of the tgz under test (env ``IAMSPIKE_PACKAGE``, else the
  newest ``package/dist/TA-aws-iam-error-spike-*.tgz``); FAILS when there is none.
- ``splunk_home`` (session): the package unpacked into ``<tmp>/etc/apps/`` with
  ``var/log/splunk/``; a :class:`standin.install.SplunkHome` (``.home``, ``.app_dir``, ``.bin``).
  Shared by the session: a test that writes into the app (``local/``, checkpoints) should use
  ``fresh_splunk_home`` instead.
- ``fresh_splunk_home`` (function): the same, unpacked anew for one test and removed after it
  (an unpacked app is ~210 MB: kept, the ~80 of a session fill a CI machine's disk).
- ``splunk_python`` (session, parametrized "3.9" / "3.13"): the python of a bare venv made with
  ``python3.X -m venv --without-pip``; skipped when the interpreter is missing, failed if CI=true.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from standin.install import PACKAGE_ENV, SPLUNK_PYTHONS, SplunkHome, bare_python, find_package, install


@pytest.fixture(scope="session")
def app_package() -> str:
    """The built tgz; a missing package is a failure, never a skip."""
    package = find_package()
    if package is None:
        chosen = os.environ.get(PACKAGE_ENV)
        where = f"{PACKAGE_ENV}={chosen} is not a file" if chosen else "package/dist/ has no tgz"
        pytest.fail(f"no package to test ({where}): run `make package` or set {PACKAGE_ENV}", pytrace=False)
    return package


@pytest.fixture(scope="session")
def splunk_home(app_package: str, tmp_path_factory: pytest.TempPathFactory) -> SplunkHome:
    """A fake SPLUNK_HOME with the package installed, shared by the whole session."""
    return install(app_package, str(tmp_path_factory.mktemp("splunk_home")))


@pytest.fixture
def fresh_splunk_home(app_package: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SplunkHome]:
    """A fake SPLUNK_HOME with the package installed for this test only, removed after it."""
    home = tmp_path_factory.mktemp("splunk_home")
    try:
        yield install(app_package, str(home))
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session", params=SPLUNK_PYTHONS, ids=["py" + v for v in SPLUNK_PYTHONS])
def splunk_python(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a bare ``python3.X`` (no pip, no site-packages) for each Splunk interpreter."""
    version = request.param
    python = bare_python(version, str(tmp_path_factory.mktemp("bare-py" + version) / "venv"))
    if python is None:
        message = f"python{version} not found (pyenv versions/{version}.* or PATH)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true makes a missing Splunk Python a failure", pytrace=False)
        pytest.skip(message)
    return python
