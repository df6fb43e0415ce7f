#!/usr/bin/env python3
"""Build the installable Splunk package ``TA-aws-iam-error-spike-<version>.tgz``.

Usage: ``python package/build.py --output package/dist/TA-aws-iam-error-spike-0.1.0.tgz``

1. Download every wheel pinned (by hash) in ``package/requirements-*.txt`` into
   ``package/cache/<lock>/`` with ``pip download``; an sdist-only pin (splunk-sdk 2.1.1) is
   turned into a wheel with ``pip wheel --no-deps``. Only the package registry is needed.
2. Copy what ships into the staging folder ``package/build/TA-aws-iam-error-spike/`` and unpack
   the wheels into its ``lib/common``, ``lib/cp39`` and ``lib/cp313``.
3. Trim numpy (tests, f2py, distutils, typing stubs...) so that AppInspect stays fast, strip
   ``__pycache__``, ``*.pyc`` and ``lib/*/bin``.
4. Write a reproducible tgz: one top folder, sorted members, uid/gid 0, fixed mtimes, mode 0644
   for files and 0755 for folders, 0755 only for the entry scripts ``bin/*.py``.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(REPO, "package")
APP_ID = "TA-aws-iam-error-spike"

# What ships: everything else in the repository (tests/, package/, docs/, .venv ...) never does.
SHIPPED = ("app.manifest", "LICENSE", "README.md", "default", "metadata", "README", "bin", "lookups",
           "appserver", "static")  # fmt: skip
# Fixed mtime for every member (2024-01-01T00:00:00Z) unless SOURCE_DATE_EPOCH says otherwise.
DEFAULT_MTIME = 1704067200


@dataclass(frozen=True)
class Lock:
    """One lock file and the interpreter/platform its wheels are downloaded for."""

    name: str  # the lib/ sub-folder (and the cache folder)
    pip_target: tuple[str, ...]
    requirements: str = ""  # package/requirements-<this>.txt; the name when empty

    @property
    def lock_file(self) -> str:
        return os.path.join(PACKAGE_DIR, f"requirements-{self.requirements or self.name}.txt")


def _cpython(version: str, platform: str) -> tuple[str, ...]:
    abi = "cp" + version.replace(".", "")
    return ("--python-version", version, "--implementation", "cp", "--abi", abi, "--platform", platform)


# The platforms numpy is vendored for (Splunk Enterprise runs on both; Splunk Cloud on the
# first): lib/<interpreter>-<platform>, the tag iamspike_splunk.vendor.platform_tag() names.
PLATFORMS = {"linux_x86_64": "manylinux2014_x86_64", "win_amd64": "win_amd64"}
LOCKS = (
    Lock(
        "common", ("--python-version", "3.9", "--implementation", "py", "--abi", "none", "--platform", "any")
    ),
    Lock("cp39", _cpython("3.9", PLATFORMS["linux_x86_64"])),  # pure wheels (and an sdist) only
    Lock("cp313", _cpython("3.13", PLATFORMS["linux_x86_64"])),
    *(
        Lock(f"{tag}-{platform}", _cpython(version, pip_platform), f"numpy-{tag}")
        for tag, version in (("cp39", "3.9"), ("cp313", "3.13"))
        for platform, pip_platform in PLATFORMS.items()
    ),
)

# Paths removed from every lib/<tag>/ (fnmatch patterns relative to it, ``*`` crosses folders; a
# folder match removes the whole folder). See package/README.md for why each goes and what stays.
TRIM = (
    # botocore's API examples feed its documentation only; they hold sample IPs AppInspect flags.
    "botocore/data/*/examples-1.json",
    # splunk-sdk 3's AI agent layer: needs langchain/httpx/anyio (the [ai] extra, not shipped).
    "splunklib/ai",
    # dateutil's maintainer tool to rebuild the zoneinfo tarball (subprocess); never imported.
    "dateutil/zoneinfo/rebuild.py",
    # test suites of any library (numpy's, certifi's...): never imported at run time.
    "*/tests",
    # numpy: build tools, stubs and C headers; nothing the runtime imports.
    "numpy/f2py",
    "numpy/distutils",
    "numpy/_pyinstaller",
    "numpy/doc",
    "numpy/typing",
    "numpy/testing/_private/extbuild.py",
    "numpy/_core/include",
    "numpy/_core/lib",
    "numpy/random/lib",
    "numpy/random/_examples",
    # numpy/_core/_multiarray_tests stays: numpy 2.0 _add_newdocs imports it at import time.
    "numpy/_core/_operand_flag_tests.*",
    "numpy/_core/_rational_tests.*",
    "numpy/_core/_struct_ufunc_tests.*",
    "numpy/_core/_umath_tests.*",
    "numpy/_core/_simd.*",
    "numpy/conftest.py",
    "numpy/__init__.pxd",
    "numpy/__init__.cython-30.pxd",
    "numpy/random/*.pxd",
)
# File name patterns removed anywhere under lib/: byte code, typing stubs, Cython headers.
STRIP_FILES = ("*.pyc", "*.pyo", "*.pyi", "*.pxd", "py.typed")
STRIP_DIRS = ("__pycache__",)


@dataclass(frozen=True)
class Patch:
    """A source edit on a vendored file: ``pattern`` (regex, DOTALL) must match exactly once."""

    path: str  # relative to lib/<tag>/
    pattern: str
    replacement: str
    why: str


PATCHES = (
    Patch(
        "botocore/session.py",
        r"    def _create_csm_monitor\(self\):\n.*?\n        return None\n",
        "    def _create_csm_monitor(self):\n"
        "        # TA-aws-iam-error-spike build: client-side monitoring removed (it publishes over UDP,\n"
        "        # which Splunk Cloud forbids: AppInspect check_for_python_udp_network_communications).\n"
        "        return None\n",
        "botocore client-side monitoring opens a UDP socket when AWS_CSM_ENABLED is set",
    ),
)


class BuildError(RuntimeError):
    """A build step failed; str(e) is a one-line message."""


def read_lock(path: str) -> list[str]:
    """The ``name==version`` pins of a lock file (options and comments skipped)."""
    pins = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                pins.append(line.split()[0])
    return pins


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = [line for line in proc.stdout.splitlines() if line.strip()][-1:] or ["(no output)"]
        raise BuildError(f"{' '.join(cmd[2:5])} failed (exit {proc.returncode}): {tail[0]}")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _split_pin(pin: str) -> tuple[str, str]:
    name, version = pin.split("==", 1)
    return _normalize(name), version


def _is_file_of(filename: str, key: str, version: str) -> bool:
    """True if a wheel or sdist file name is project ``key`` (normalized) at ``version``."""
    match = re.match(r"^(.+?)-(\d[^-]*?)(-.*\.whl|\.tar\.gz)$", filename)
    return bool(match) and _normalize(match.group(1)) == key and match.group(2) == version


def fetch_wheels(lock: Lock, cache_root: str) -> list[str]:
    """Download (or reuse from the cache) the wheels of one lock; return their paths, sorted."""
    lock_path = lock.lock_file
    download_dir = os.path.join(cache_root, lock.name)
    built_dir = os.path.join(cache_root, lock.name + "-built")
    os.makedirs(download_dir, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
          "--only-binary=:all:", *lock.pip_target, "--dest", download_dir, "-r", lock_path])  # fmt: skip
    wanted = dict(_split_pin(pin) for pin in read_lock(lock_path))
    wheels = {}
    for key, version in sorted(wanted.items()):
        found = [name for name in _listdir(download_dir) if _is_file_of(name, key, version)]
        if any(name.endswith(".whl") for name in found):
            wheels[key] = os.path.join(download_dir, next(n for n in found if n.endswith(".whl")))
        elif found:  # an sdist-only pin: build its wheel once, then reuse it
            built = [n for n in _listdir(built_dir) if _is_file_of(n, key, version)]
            if not built:
                _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                      built_dir, os.path.join(download_dir, found[0])])  # fmt: skip
                built = [n for n in _listdir(built_dir) if _is_file_of(n, key, version)]
            if built:
                wheels[key] = os.path.join(built_dir, built[0])
    missing = sorted(set(wanted) - set(wheels))
    if missing:
        raise BuildError(f"lock {lock.name}: no wheel for {', '.join(missing)} in {download_dir}")
    return [wheels[key] for key in sorted(wheels)]


def _listdir(path: str) -> list[str]:
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def unpack_wheel(wheel: str, target: str) -> None:
    """Install a wheel by unpacking it: ``*.data/purelib|platlib`` go to the root, scripts,
    headers and data files are dropped (a Splunk app has no use for them)."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            parts = info.filename.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            dest = os.path.join(target, *parts)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with archive.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)


def trim(lib_dir: str, patterns: tuple[str, ...] = TRIM) -> list[str]:
    """Remove the paths under ``lib_dir`` matching ``patterns``; return them (relative, sorted)."""
    removed = []
    for root, dirs, files in os.walk(lib_dir, topdown=True):
        for name in sorted(dirs) + sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, lib_dir).replace(os.sep, "/")
            if any(fnmatch.fnmatchcase(rel, pattern) for pattern in patterns):
                removed.append(rel)
                if name in dirs:
                    shutil.rmtree(path)
                    dirs.remove(name)
                else:
                    os.remove(path)
    return sorted(removed)


def apply_patches(lib_dir: str, patches: tuple[Patch, ...] = PATCHES) -> list[str]:
    """Apply the patches whose file exists under ``lib_dir``; return the patched paths.

    A pattern that does not match exactly once (a new upstream release) stops the build."""
    patched = []
    for patch in patches:
        path = os.path.join(lib_dir, *patch.path.split("/"))
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        new_text, count = re.subn(patch.pattern, lambda _m, p=patch: p.replacement, text, flags=re.DOTALL)
        if count != 1:
            raise BuildError(f"patch for {patch.path} matched {count} times, expected 1 ({patch.why})")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(new_text)
        patched.append(patch.path)
    return patched


def top_level_modules(lib_dir: str) -> list[str]:
    """The importable top-level names a lib/ tree holds (packages and single-file modules)."""
    names = []
    for name in _listdir(lib_dir):
        path = os.path.join(lib_dir, name)
        if name.endswith(".py") and os.path.isfile(path):
            names.append(name[:-3])
        elif os.path.isfile(os.path.join(path, "__init__.py")):
            names.append(name)
    return names


def _module_file(name: str, roots: list[str]) -> tuple[str, str] | None:
    """(root, file) of module ``name`` on the search path ``roots``; None if not there."""
    parts = name.split(".")
    for root in roots:
        base = os.path.join(root, *parts)
        for candidate in (os.path.join(base, "__init__.py"), base + ".py"):
            if os.path.isfile(candidate):
                return root, candidate
    return None


def _imports(path: str, module: str) -> set[str]:
    """Every module name an import statement in ``path`` may load, wherever the statement sits
    (functions, try/except: an optional import counts as a use)."""
    with open(path, "rb") as handle:
        tree = ast.parse(handle.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)] if package else []
                base = ".".join([*anchor, base] if base else anchor)
            if base:
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def imported_top_levels(entry_scripts: list[str], roots: list[str]) -> set[tuple[str, str]]:
    """(root, top-level name) of every module the entry scripts import, followed transitively
    through the modules found under ``roots`` (statically: every import statement counts)."""
    reached: set[tuple[str, str]] = set()
    seen: set[str] = set()
    queue = [(os.path.basename(p)[:-3], p) for p in entry_scripts]
    while queue:
        module, path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path, module):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                prefix = ".".join(parts[:depth])
                hit = _module_file(prefix, roots)
                if hit is None:
                    break
                reached.add((hit[0], parts[0]))
                queue.append((prefix, hit[1]))
    return reached


def unused_libraries(app_dir: str) -> list[str]:
    """``lib/<tree>/<name>`` of every vendored top-level module that no entry script in ``bin/``
    imports, directly or through what it imports, under any interpreter's search path (the one
    ``iamspike_splunk.vendor`` builds: the platform tree, the interpreter tree, common)."""
    lib = os.path.join(app_dir, "lib")
    bin_dir = os.path.join(app_dir, "bin")
    entries = [os.path.join(bin_dir, n) for n in _listdir(bin_dir) if is_entry_script("bin/" + n)]
    trees = _listdir(lib)
    reached: set[tuple[str, str]] = set()
    for tag in sorted({tree.split("-")[0] for tree in trees if tree.startswith("cp")}):
        for platform in sorted({t.split("-", 1)[1] for t in trees if t.startswith(tag + "-")} or {""}):
            path = [bin_dir] + [
                os.path.join(lib, t) for t in (f"{tag}-{platform}", tag, "common") if t in trees
            ]
            reached |= imported_top_levels(entries, path)
    return [
        f"lib/{tree}/{name}"
        for tree in trees
        for name in top_level_modules(os.path.join(lib, tree))
        if (os.path.join(lib, tree), name) not in reached
    ]


def strip_tree(app_dir: str) -> None:
    """Remove byte code, stubs and ``lib/*/bin``; set modes 0755 (folders, bin/*.py) / 0644."""
    lib = os.path.join(app_dir, "lib")
    for tag in _listdir(lib):
        shutil.rmtree(os.path.join(lib, tag, "bin"), ignore_errors=True)
    for root, dirs, files in os.walk(app_dir, topdown=True):
        for name in list(dirs):
            if name in STRIP_DIRS:
                shutil.rmtree(os.path.join(root, name))
                dirs.remove(name)
        in_lib = os.path.relpath(root, app_dir).split(os.sep)[0] == "lib"
        for name in files:
            path = os.path.join(root, name)
            if any(fnmatch.fnmatchcase(name, p) for p in ("*.pyc", "*.pyo")) or (
                in_lib and any(fnmatch.fnmatchcase(name, p) for p in STRIP_FILES)
            ):
                os.remove(path)
            else:
                os.chmod(path, 0o755 if is_entry_script(os.path.relpath(path, app_dir)) else 0o644)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)


def is_entry_script(rel: str) -> bool:
    """True for ``bin/<name>.py`` (the only files Splunk executes), relative to the app folder."""
    parts = rel.replace(os.sep, "/").split("/")
    return len(parts) == 2 and parts[0] == "bin" and parts[1].endswith(".py")


def stage(staging_root: str) -> str:
    """Copy what ships into ``staging_root/<app id>`` (recreated); return that folder."""
    app_dir = os.path.join(staging_root, APP_ID)
    shutil.rmtree(app_dir, ignore_errors=True)
    os.makedirs(app_dir)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")
    for item in SHIPPED:
        src = os.path.join(REPO, item)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(app_dir, item), ignore=ignore)
        elif os.path.isfile(src):
            shutil.copy2(src, os.path.join(app_dir, item))
    return app_dir


def write_tgz(app_dir: str, output: str, mtime: int) -> int:
    """Write ``app_dir`` as a reproducible tgz with its folder name on top; return member count."""
    top = os.path.basename(app_dir)
    members = []
    for root, dirs, files in os.walk(app_dir):
        dirs.sort()
        members.append(root)
        members.extend(os.path.join(root, name) for name in sorted(files))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = output + ".tmp"
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(members, key=lambda p: os.path.relpath(p, app_dir).split(os.sep)):
            rel = os.path.relpath(path, app_dir)
            arcname = top if rel == "." else top + "/" + rel.replace(os.sep, "/")
            info = tar.gettarinfo(path, arcname=arcname)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = mtime
            info.pax_headers = {}
            if info.isdir():
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o755 if is_entry_script(rel) else 0o644
                with open(path, "rb") as handle:
                    tar.addfile(info, io.BufferedReader(handle))
    os.replace(tmp, output)
    return len(members)


def build(output: str, cache_root: str, staging_root: str, mtime: int) -> dict[str, object]:
    """Run every step; return a small report (trimmed paths per tag, member count)."""
    app_dir = stage(staging_root)
    report: dict[str, object] = {}
    for lock in LOCKS:
        target = os.path.join(app_dir, "lib", lock.name)
        for wheel in fetch_wheels(lock, cache_root):
            unpack_wheel(wheel, target)
        report["trimmed_" + lock.name] = trim(target)
        report["patched_" + lock.name] = apply_patches(target)
    strip_tree(app_dir)
    unused = unused_libraries(app_dir)
    if unused:
        raise BuildError(
            f"vendored but imported by nothing the app runs: {', '.join(unused)} (drop it from its lock)"
        )
    report["members"] = write_tgz(app_dir, output, mtime)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True, help="path of the tgz to write")
    parser.add_argument("--cache", default=os.path.join(PACKAGE_DIR, "cache"), help="wheel cache")
    parser.add_argument("--staging", default=os.path.join(PACKAGE_DIR, "build"), help="staging folder")
    args = parser.parse_args(argv)
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_MTIME))
    try:
        report = build(args.output, os.path.abspath(args.cache), os.path.abspath(args.staging), mtime)
    except (BuildError, OSError) as exc:
        sys.stderr.write(f"package/build.py: {exc}\n")
        return 1
    size = os.path.getsize(args.output)
    sys.stdout.write(f"built {args.output} ({report['members']} members, {size / 1e6:.1f} MB)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
