"""package/build.py and package/appinspect_gate.py: the parts that decide what ships.

``package/`` is not an importable package (it never ships), so the two scripts are loaded from
their files. Everything runs on small trees in tmp_path: no download, no AppInspect run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tarfile
from types import ModuleType

import pytest
from iamspike_splunk import vendor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name: str) -> ModuleType:
    path = os.path.join(REPO, "package", name + ".py")
    spec = importlib.util.spec_from_file_location(f"package_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build = load("build")
gate = load("appinspect_gate")


def write(root, rel: str, text: str = "x", mode: int = 0o644) -> str:
    path = os.path.join(str(root), *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize(
    ("filename", "key", "version", "expected"),
    [
        ("numpy-2.0.2-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "numpy", "2.0.2", True),
        ("numpy-2.2.6-cp313-cp313-manylinux_2_17_x86_64.whl", "numpy", "2.0.2", False),
        ("splunk-sdk-2.1.1.tar.gz", "splunk-sdk", "2.1.1", True),
        ("splunk_sdk-2.1.1-py3-none-any.whl", "splunk-sdk", "2.1.1", True),
        ("python_dateutil-2.9.0.post0-py2.py3-none-any.whl", "python-dateutil", "2.9.0.post0", True),
        ("charset_normalizer-3.5.2-py3-none-any.whl", "charset-normalizer", "3.5.2", True),
        ("six-1.17.0-py2.py3-none-any.whl", "six", "1.16.0", False),
        ("boto3-1.42.97-py3-none-any.whl.metadata", "boto3", "1.42.97", False),
    ],
)
def test_is_file_of(filename: str, key: str, version: str, expected: bool) -> None:
    assert build._is_file_of(filename, key, version) is expected


def test_every_lock_pins_by_version_and_hash() -> None:
    for lock in build.LOCKS:
        path = lock.lock_file
        with open(path, encoding="utf-8") as handle:
            lines = [line.split("#")[0].strip() for line in handle]
        pins = [line for line in lines if line and not line.startswith("-")]
        assert pins, path
        for line in pins:
            assert "==" in line.split()[0] and "--hash=sha256:" in line, line
        assert [p.split()[0] for p in pins] == build.read_lock(path)


def test_numpy_ships_for_each_interpreter_and_platform_in_the_tree_the_loader_picks() -> None:
    trees = {lock.name for lock in build.LOCKS}
    assert trees == {"common", "cp39", "cp313", "cp39-linux_x86_64", "cp39-win_amd64", "cp313-linux_x86_64",
                     "cp313-win_amd64"}  # fmt: skip
    for sysconfig_platform in ("linux-x86_64", "win-amd64"):  # what Splunk's Pythons report
        assert vendor.platform_tag(sysconfig_platform) in build.PLATFORMS
    for tag in ("cp39", "cp313"):
        with open(os.path.join(REPO, "package", f"requirements-numpy-{tag}.txt"), encoding="utf-8") as handle:
            (pin,) = [line for line in handle if line.startswith("numpy==")]
        assert pin.count("--hash=sha256:") == len(build.PLATFORMS)  # one wheel per platform


def test_no_lock_pins_what_nothing_imports() -> None:
    pins = {pin.split("==")[0] for lock in build.LOCKS for pin in build.read_lock(lock.lock_file)}
    assert not pins & {"boto3", "s3transfer", "requests", "charset-normalizer", "deprecation", "packaging"}


def make_libs(root) -> str:
    app = os.path.join(str(root), build.APP_ID)
    write(app, "bin/entry.py", "from helpers import run\nrun()\n")
    write(app, "bin/helpers/__init__.py", "def run():\n    from .inner import go\n    return go()\n")
    optional = "    try:\n        import used_pkg.sub\n    except ImportError:\n        pass\n"
    write(app, "bin/helpers/inner.py", "def go():\n" + optional + "    import numpy\n")
    write(app, "lib/common/used_pkg/__init__.py", "from . import sub\n")
    write(app, "lib/common/used_pkg/sub.py", "import used_single\n")
    write(app, "lib/common/used_single.py", "")
    write(app, "lib/common/unused_pkg/__init__.py", "")
    write(app, "lib/common/unused_single.py", "")
    write(app, "lib/common/unused_pkg-1.0.dist-info/METADATA", "")
    write(app, "lib/cp39/splunklib/__init__.py", "")  # imported by nothing: reported
    for tree in ("cp39-linux_x86_64", "cp39-win_amd64", "cp313-win_amd64"):
        write(app, f"lib/{tree}/numpy/__init__.py", "from numpy import core\n")
        write(app, f"lib/{tree}/numpy/core.py", "")
    write(app, "lib/cp39-win_amd64/numpy.libs/openblas.dll", "")
    return app


def test_unused_libraries_follows_imports_from_the_entry_scripts_through_every_tree(tmp_path) -> None:
    app = make_libs(tmp_path)
    assert build.unused_libraries(app) == [
        "lib/common/unused_pkg",
        "lib/common/unused_single",
        "lib/cp39/splunklib",
    ]


def test_a_build_with_an_unused_library_fails_naming_it(tmp_path, monkeypatch) -> None:
    app = make_libs(tmp_path)
    monkeypatch.setattr(build, "stage", lambda staging_root: app)
    monkeypatch.setattr(build, "LOCKS", ())
    with pytest.raises(build.BuildError, match="imported by nothing the app runs: lib/common/unused_pkg"):
        build.build(str(tmp_path / "out.tgz"), str(tmp_path / "cache"), str(tmp_path), 0)
    assert not os.path.exists(tmp_path / "out.tgz")


@pytest.mark.parametrize(
    ("rel", "entry"),
    [("bin/iamspike_command.py", True), ("bin/iamspike/engine.py", False), ("bin/run.sh", False),
     ("lib/common/six.py", False), ("bin", False)],
)  # fmt: skip
def test_is_entry_script(rel: str, entry: bool) -> None:
    assert build.is_entry_script(rel) is entry


def test_trim_removes_matches_at_any_depth_and_keeps_the_rest(tmp_path) -> None:
    for rel in ("numpy/tests/test_a.py", "numpy/_core/tests/test_b.py", "numpy/f2py/__init__.py",
                "numpy/ma/core.py", "numpy/_core/_umath_tests.cpython-39-x86_64-linux-gnu.so",
                "numpy/_core/_multiarray_tests.cpython-39-x86_64-linux-gnu.so", "certifi/tests/t.py",
                "botocore/data/s3/2006-03-01/examples-1.json", "botocore/data/s3/2006-03-01/service-2.json",
                "splunklib/ai/agent.py", "splunklib/searchcommands/__init__.py"):  # fmt: skip
        write(tmp_path, rel)
    removed = build.trim(str(tmp_path))
    assert removed == sorted([
        "botocore/data/s3/2006-03-01/examples-1.json", "certifi/tests", "numpy/_core/tests",
        "numpy/_core/_umath_tests.cpython-39-x86_64-linux-gnu.so", "numpy/f2py", "numpy/tests",
        "splunklib/ai",
    ])  # fmt: skip
    kept = sorted(
        os.path.relpath(os.path.join(root, name), str(tmp_path)).replace(os.sep, "/")
        for root, _, files in os.walk(str(tmp_path))
        for name in files
    )
    assert kept == [
        "botocore/data/s3/2006-03-01/service-2.json",
        "numpy/_core/_multiarray_tests.cpython-39-x86_64-linux-gnu.so",
        "numpy/ma/core.py",
        "splunklib/searchcommands/__init__.py",
    ]


CSM = """class Session:
    def _create_csm_monitor(self):
        if self.get_config_variable('csm_enabled'):
            handler = monitoring.Monitor(
                publisher=monitoring.SocketPublisher(
                    socket=socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
                ),
            )
            return handler
        return None

    def _get_crt_version(self):
        return 'Unknown'
"""


def test_csm_patch_removes_the_udp_socket_and_keeps_the_rest(tmp_path) -> None:
    path = write(tmp_path, "botocore/session.py", CSM)
    assert build.apply_patches(str(tmp_path)) == ["botocore/session.py"]
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    assert "SOCK_DGRAM" not in text
    assert "    def _create_csm_monitor(self):\n" in text and "        return None\n" in text
    assert "    def _get_crt_version(self):\n        return 'Unknown'\n" in text
    namespace: dict = {}
    exec(compile(text, path, "exec"), namespace)
    assert namespace["Session"]()._create_csm_monitor() is None


def test_patch_that_no_longer_matches_stops_the_build(tmp_path) -> None:
    write(tmp_path, "botocore/session.py", "class Session:\n    pass\n")
    with pytest.raises(build.BuildError, match="matched 0 times"):
        build.apply_patches(str(tmp_path))


def test_patch_skips_a_tree_without_the_file(tmp_path) -> None:
    assert build.apply_patches(str(tmp_path)) == []


def make_app(root) -> str:
    app = os.path.join(str(root), build.APP_ID)
    write(app, "bin/iamspike_command.py", "print(1)\n", 0o644)
    write(app, "bin/iamspike/engine.py", "x = 1\n", 0o755)
    write(app, "lib/cp39/numpy/_core/_m.so", "elf", 0o755)
    write(app, "lib/cp39/numpy/__pycache__/a.cpython-39.pyc", "pyc")
    write(app, "lib/common/stub.pyi", "x: int\n")
    write(app, "lib/common/bin/f2py", "#!/bin/sh\n", 0o755)
    write(app, "default/app.conf", "[id]\n")
    return app


def test_strip_tree_sets_modes_and_removes_byte_code(tmp_path) -> None:
    app = make_app(tmp_path)
    build.strip_tree(app)
    files = {
        os.path.relpath(os.path.join(root, name), app).replace(os.sep, "/"): os.stat(
            os.path.join(root, name)
        ).st_mode
        for root, _, names in os.walk(app)
        for name in names
    }  # fmt: skip
    assert sorted(files) == ["bin/iamspike/engine.py", "bin/iamspike_command.py", "default/app.conf",
                             "lib/cp39/numpy/_core/_m.so"]  # fmt: skip
    assert {rel: mode & 0o777 for rel, mode in files.items()} == {
        "bin/iamspike/engine.py": 0o644, "bin/iamspike_command.py": 0o755, "default/app.conf": 0o644,
        "lib/cp39/numpy/_core/_m.so": 0o644,
    }  # fmt: skip


def test_tgz_is_byte_for_byte_reproducible(tmp_path) -> None:
    app = make_app(tmp_path / "a")
    build.strip_tree(app)
    first, second = str(tmp_path / "1.tgz"), str(tmp_path / "2.tgz")
    build.write_tgz(app, first, 1704067200)
    os.utime(os.path.join(app, "default", "app.conf"), (1, 1))  # a touched file changes nothing
    build.write_tgz(app, second, 1704067200)
    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()
    with tarfile.open(first) as archive:
        members = archive.getmembers()
    assert [m.name for m in members][:2] == [build.APP_ID, f"{build.APP_ID}/bin"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 1704067200)}


def report(*checks: tuple[str, str], summary: dict | None = None) -> dict:
    return {
        "summary": summary or {},
        "reports": [{"groups": [{"checks": [
            {"name": name, "result": result,
             "messages": [{"message": f"{name} says so", "message_filename": "a.py", "message_line": 3}]}
            for name, result in checks
        ]}]}],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("result", "passes"),
    [("success", True), ("warning", True), ("not_applicable", True), ("failure", False), ("error", False),
     ("future_failure", False)],
)  # fmt: skip
def test_gate_fails_on_error_failure_and_future_failure(result: str, passes: bool) -> None:
    lines, passed = gate.render(report(("check_x", result), ("check_ok", "success")))
    assert passed is passes
    assert lines[0].startswith("AppInspect summary: error=")
    if not passes:
        assert f"  {result.upper()} check_x" in lines
        assert "    - check_x says so [a.py:3]" in lines


def test_gate_summary_line_uses_the_report_summary() -> None:
    lines, passed = gate.render(report(summary={"error": 0, "failure": 0, "future_failure": 0, "warning": 3,
                                                "success": 9}), 12.4)  # fmt: skip
    assert passed
    assert lines == [
        "AppInspect summary: error=0 failure=0 future_failure=0 warning=3 manual_check=0 skipped=0"
        " not_applicable=0 success=9 (12 s)"
    ]


def test_gate_fails_on_a_summary_count_even_without_check_details() -> None:
    _, passed = gate.render(report(summary={"future_failure": 1}))
    assert passed is False


def test_gate_on_a_missing_package_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    assert gate.main([str(tmp_path / "none.tgz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such package" in err
