"""The built package: what the tgz holds, and that a bare Splunk Python imports and runs the
vendored libraries through the entry scripts' path setup.

Never imports product code: the archive is read with tarfile, the installed app is driven by a
child process of a bare ``python3.9`` / ``python3.13`` (see ``standin.install``).
"""

from __future__ import annotations

import configparser
import json
import os
import stat
import tarfile
import textwrap

import pytest
from standin.install import APP_ID, SplunkHome, run_entry

pytestmark = pytest.mark.contract

NEVER_SHIPPED = ("tests", "package", "docs", ".venv", ".git", ".ci", ".github", "node_modules", "out")
LIB_TREES = (
    "common",
    "cp39",
    "cp313",
    "cp39-linux_x86_64",
    "cp39-win_amd64",
    "cp313-linux_x86_64",
    "cp313-win_amd64",
)
NUMPY_TREES = LIB_TREES[3:]
# The libraries each interpreter must get, and the tree each one must come from.
EXPECTED = {
    "3.9": {"numpy": ("cp39-linux_x86_64", "2.0.2"), "splunklib": ("cp39", "2.1.1")},
    "3.13": {"numpy": ("cp313-linux_x86_64", "2.2.6"), "splunklib": ("cp313", "3.0.1")},
}
COMMON_MODULES = ("botocore", "urllib3", "certifi", "idna", "dateutil", "jmespath", "six")


@pytest.fixture(scope="module")
def members(app_package: str) -> list[tarfile.TarInfo]:
    with tarfile.open(app_package, "r:gz") as archive:
        return archive.getmembers()


def inner(member: tarfile.TarInfo) -> str:
    """Member path below the top folder ('' for the top folder itself)."""
    return member.name.split("/", 1)[1] if "/" in member.name else ""


def is_entry_script(path: str) -> bool:
    return path.startswith("bin/") and path.count("/") == 1 and path.endswith(".py")


def test_single_top_folder_named_after_the_app(members: list[tarfile.TarInfo]) -> None:
    assert {member.name.split("/", 1)[0] for member in members} == {APP_ID}
    assert any(member.name == APP_ID and member.isdir() for member in members)


def test_app_conf_id_matches_the_folder(app_package: str) -> None:
    with tarfile.open(app_package, "r:gz") as archive:
        text = archive.extractfile(f"{APP_ID}/default/app.conf").read().decode("utf-8")
    conf = configparser.ConfigParser()
    conf.read_string(text)
    assert conf["package"]["id"] == APP_ID
    assert conf["id"]["name"] == APP_ID


def test_nothing_from_the_development_tree(members: list[tarfile.TarInfo]) -> None:
    leaked = [m.name for m in members if inner(m).split("/")[0] in NEVER_SHIPPED]
    assert leaked == []


def test_no_byte_code(members: list[tarfile.TarInfo]) -> None:
    compiled = [m.name for m in members if m.name.endswith((".pyc", ".pyo")) or "/__pycache__" in m.name]
    assert compiled == []


def test_execute_bits_only_on_entry_scripts(members: list[tarfile.TarInfo]) -> None:
    executable = sorted(inner(m) for m in members if m.isfile() and m.mode & 0o111)
    entry_scripts = sorted(inner(m) for m in members if m.isfile() and is_entry_script(inner(m)))
    assert executable == entry_scripts


def test_only_regular_files_and_folders(members: list[tarfile.TarInfo]) -> None:
    odd = [m.name for m in members if not (m.isfile() or m.isdir())]
    assert odd == []
    assert all(not (m.mode & (stat.S_ISUID | stat.S_ISGID | 0o022)) for m in members)


def test_reproducible_metadata(members: list[tarfile.TarInfo]) -> None:
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert len({m.mtime for m in members}) == 1
    names = [m.name for m in members]
    assert len(names) == len(set(names))


def test_vendored_trees_present_and_clean(members: list[tarfile.TarInfo]) -> None:
    names = {inner(m) for m in members}
    for tree in LIB_TREES:
        assert f"lib/{tree}" in names
    numpy = {f"lib/{tree}/numpy/__init__.py" for tree in NUMPY_TREES}
    assert {"lib/common/botocore/__init__.py", "lib/cp39/splunklib/__init__.py",
            "lib/cp313/splunklib/__init__.py", *numpy} <= names  # fmt: skip
    assert not [n for n in names if n.split("/")[2:3] in (["boto3"], ["s3transfer"], ["requests"])]
    assert not [n for n in names if n.split("/")[:1] == ["lib"] and n.split("/")[2:3] == ["bin"]]
    assert not [n for n in names if n.startswith("lib/") and n.endswith((".pyi", ".pxd"))]
    assert not [n for n in names if n.startswith("lib/") and "/tests/" in n]


def test_numpy_is_trimmed(members: list[tarfile.TarInfo]) -> None:
    names = {inner(m) for m in members}
    for tree in NUMPY_TREES:
        for gone in ("f2py", "distutils", "typing", "_pyinstaller", "tests", "_core/tests"):
            assert f"lib/{tree}/numpy/{gone}" not in names
        for kept in ("ma", "lib", "linalg", "fft", "random", "_core", "polynomial", "matrixlib"):
            assert f"lib/{tree}/numpy/{kept}/__init__.py" in names


# The probe does what every entry script in bin/ does (bin/ first on sys.path, then
# iamspike_splunk.vendor.add_vendored_paths()), then reports where each library came from and
# runs the numpy a statistics engine uses. Output: one JSON object on stdout.
PROBE = textwrap.dedent(
    """
    import importlib, json, os, sys, warnings
    warnings.simplefilter("ignore")
    bin_dir = sys.argv[1]
    sys.path.insert(0, bin_dir)
    from iamspike_splunk import vendor
    out = {"added": vendor.add_vendored_paths(), "version": list(sys.version_info[:2])}
    names = sys.argv[2].split(",")
    out["files"] = {name: importlib.import_module(name).__file__ for name in names}
    import numpy as np, splunklib
    import splunklib.client, splunklib.searchcommands, splunklib.modularinput
    out["numpy"] = np.__version__
    import importlib.metadata
    out["splunklib"] = importlib.metadata.version("splunk-sdk")  # needs the kept dist-info
    try:
        import pytest
        out["pytest"] = pytest.__file__
    except ImportError:
        out["pytest"] = None
    a = np.array([3.0, 1.0, 2.0, 10.0])
    x = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    counts = np.array([0, 0, 1, 0, 0, 12, 0, 1, 0, 0])
    windows = np.lib.stride_tricks.sliding_window_view(np.arange(6.0), 3)
    out["math"] = {
        "median": float(np.median(a)),
        "median_even_int": float(np.median(np.array([1, 2, 3, 4]))),
        "nanmedian": float(np.nanmedian(np.array([1.0, np.nan, 3.0]))),
        "percentile90": float(np.percentile(a, 90)),
        "quantile": np.quantile(x, [0.25, 0.5, 0.75]).tolist(),
        "nanpercentile": float(np.nanpercentile(np.array([1.0, np.nan, 3.0, 5.0]), 50)),
        "mean_std": [float(x.mean()), float(x.std()), float(x.std(ddof=1) ** 2)],
        "bincount": np.bincount(np.array([1, 1, 3]), minlength=5).tolist(),
        "weighted_bincount": np.bincount(np.array([0, 2, 2]), weights=np.array([1.5, 2.0, 0.5])).tolist(),
        "fancy": a[np.array([3, 0])].tolist(),
        "mask": a[a > 2.0].tolist(),
        "where": np.where(counts > 0)[0].tolist(),
        "argsort": np.argsort(a, kind="stable").tolist(),
        "log_exp": [float(np.log(np.e)), float(np.log1p(0.0)), float(np.exp(0.0)), float(np.expm1(0.0))],
        "sqrt_abs": [float(np.sqrt(16.0)), float(np.abs(-2.5))],
        "windows": windows.sum(axis=1).tolist(),
        "as_strided": np.lib.stride_tricks.as_strided(np.arange(4), shape=(2, 2), strides=(8, 8)).tolist(),
        "cumsum_diff": [np.cumsum(counts).tolist()[-1], np.diff(np.array([1, 4, 9])).tolist()],
        "maximum_accumulate": np.maximum.accumulate(np.array([1, 3, 2, 5])).tolist(),
        "unique": [v.tolist() for v in np.unique(np.array([3, 1, 3, 2]), return_counts=True)],
        "searchsorted": np.searchsorted(
            np.array([0, 3600, 7200]), np.array([0, 3599, 3600, 9000]), side="right"
        ).tolist(),
        "histogram": np.histogram(np.array([0.5, 1.5, 1.7, 2.5]), bins=[0, 1, 2, 3])[0].tolist(),
        "masked_mean": float(np.ma.masked_invalid(np.array([1.0, np.nan, 3.0])).mean()),
        "nan_funcs": [
            float(np.nanmean(np.array([1.0, np.nan, 5.0]))),
            float(np.nanmax(np.array([np.nan, 2.0]))),
        ],
        "isclose": bool(np.isclose(0.1 + 0.2, 0.3)),
        "clip_round": np.round(np.clip(np.array([-1.0, 0.456, 2.0]), 0.0, 1.0), 2).tolist(),
        "average": float(np.average(np.array([1.0, 3.0]), weights=np.array([3.0, 1.0]))),
        "polyfit": np.round(np.polyfit(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0]), 1), 6).tolist(),
        "norm": float(np.linalg.norm(np.array([3.0, 4.0]))),
        "convolve": np.convolve(np.array([1.0, 2.0, 3.0]), np.ones(2), mode="valid").tolist(),
        "reshape_sum": np.arange(6).reshape(2, 3).sum(axis=0).tolist(),
        "lexsort": np.lexsort((np.array([2, 1, 2]), np.array([1, 1, 0]))).tolist(),
        "float32": float(np.float32(0.5) * 2),
        "datetime64": str(np.datetime64(0, "s") + np.timedelta64(3600, "s")),
        "rng": np.random.default_rng(7).poisson(4.0, 3).shape[0],
    }
    print(json.dumps(out))
    """
)

EXPECTED_MATH = {
    "median": 2.5,
    "median_even_int": 2.5,
    "nanmedian": 2.0,
    "percentile90": 7.9,
    "quantile": [4.0, 4.5, 5.5],
    "nanpercentile": 3.0,
    "mean_std": [5.0, 2.0, 32.0 / 7.0],
    "bincount": [0, 2, 0, 1, 0],
    "weighted_bincount": [1.5, 0.0, 2.5],
    "fancy": [10.0, 3.0],
    "mask": [3.0, 10.0],
    "where": [2, 5, 7],
    "argsort": [1, 2, 0, 3],
    "log_exp": [1.0, 0.0, 1.0, 0.0],
    "sqrt_abs": [4.0, 2.5],
    "windows": [3.0, 6.0, 9.0, 12.0],
    "as_strided": [[0, 1], [1, 2]],
    "cumsum_diff": [14, [3, 5]],
    "maximum_accumulate": [1, 3, 3, 5],
    "unique": [[1, 2, 3], [1, 1, 2]],
    "searchsorted": [1, 1, 2, 3],
    "histogram": [1, 2, 1],
    "masked_mean": 2.0,
    "nan_funcs": [3.0, 2.0],
    "isclose": True,
    "clip_round": [0.0, 0.46, 1.0],
    "average": 1.5,
    "polyfit": [2.0, 1.0],
    "norm": 5.0,
    "convolve": [3.0, 5.0],
    "reshape_sum": [3, 5, 7],
    "lexsort": [2, 1, 0],
    "float32": 1.0,
    "datetime64": "1970-01-01T01:00:00",
    "rng": 3,
}


def same(got: object, expected: object) -> bool:
    """Equal, floats within 1e-9 relative, lists element by element."""
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(same, got, expected))
    if isinstance(expected, float):
        return isinstance(got, (int, float)) and got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    return type(got) is type(expected) and got == expected


@pytest.fixture(scope="module")
def probe_script(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("probe") / "probe.py"
    path.write_text(PROBE, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def probe(splunk_python: str, splunk_home: SplunkHome, probe_script: str) -> dict:
    names = ",".join(COMMON_MODULES)
    proc = run_entry(splunk_python, probe_script, [splunk_home.bin, names], env=splunk_home.env())
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-3000:]
    return json.loads(proc.stdout.decode("utf-8").strip().splitlines()[-1])


def version_of(probe: dict) -> str:
    major, minor = probe["version"]
    return f"{major}.{minor}"


def test_vendored_trees_go_first(probe: dict, splunk_home: SplunkHome) -> None:
    tag = "cp" + version_of(probe).replace(".", "")
    lib = os.path.join(splunk_home.app_dir, "lib")
    assert probe["added"] == [
        os.path.join(lib, tag + "-linux_x86_64"),
        os.path.join(lib, tag),
        os.path.join(lib, "common"),
    ]


def test_bare_interpreter_sees_no_site_packages(probe: dict) -> None:
    assert probe["pytest"] is None


def test_interpreter_specific_libraries_come_from_their_tree(probe: dict, splunk_home: SplunkHome) -> None:
    expected = EXPECTED[version_of(probe)]
    assert probe["numpy"] == expected["numpy"][1]
    assert probe["splunklib"] == expected["splunklib"][1]


def test_shared_libraries_come_from_lib_common(probe: dict, splunk_home: SplunkHome) -> None:
    common = os.path.join(splunk_home.app_dir, "lib", "common") + os.sep
    outside = {name: path for name, path in probe["files"].items() if not path.startswith(common)}
    assert outside == {}


def test_numpy_functions_kept_work(probe: dict) -> None:
    got = probe["math"]
    assert sorted(got) == sorted(EXPECTED_MATH)
    wrong = {name: got[name] for name, expected in EXPECTED_MATH.items() if not same(got[name], expected)}
    assert wrong == {}


CHILD_IMPORTS = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from iamspike_splunk import vendor
    vendor.add_vendored_paths()
    import numpy, splunklib, botocore
    from botocore.session import Session
    session = Session()
    print(json.dumps({
        "numpy": numpy.__file__, "splunklib": splunklib.__file__, "botocore": botocore.__file__,
        "csm_off": session._get_internal_component("monitor") is None,
    }))
    """
)


def test_libraries_load_from_the_app_and_csm_udp_is_off(
    splunk_python: str, splunk_home: SplunkHome, tmp_path
) -> None:
    script = tmp_path / "imports.py"
    script.write_text(CHILD_IMPORTS, encoding="utf-8")
    env = splunk_home.env({"AWS_CSM_ENABLED": "true"})
    proc = run_entry(splunk_python, str(script), [splunk_home.bin], env=env)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-3000:]
    found = json.loads(proc.stdout.decode("utf-8").strip().splitlines()[-1])
    lib = os.path.join(splunk_home.app_dir, "lib") + os.sep
    assert all(found[name].startswith(lib) for name in ("numpy", "splunklib", "botocore"))
    assert found["csm_off"] is True
