"""Put the app's vendored libraries on ``sys.path``.

The build (``package/build.py``) installs pure-Python libraries shared by every interpreter into
``lib/common``, the interpreter-specific pure ones (the splunk-sdk release for that Python) into
``lib/cp39`` and ``lib/cp313``, and the compiled ones (numpy) into one tree per interpreter and
platform: ``lib/cp39-linux_x86_64``, ``lib/cp39-win_amd64``, ``lib/cp313-linux_x86_64``,
``lib/cp313-win_amd64``. The location is found relative to this file, never through
SPLUNK_HOME, so the app works wherever Splunk unpacks it.
"""

from __future__ import annotations

import os
import sys
import sysconfig

APP_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_DIR = os.path.join(APP_ROOT, "lib")
COMMON = "common"


def interpreter_tag(version_info: tuple[int, ...] = tuple(sys.version_info[:2])) -> str:
    """The CPython ABI tag whose vendored tree serves this interpreter, e.g. ``cp313``."""
    return f"cp{version_info[0]}{version_info[1]}"


def platform_tag(platform: str = sysconfig.get_platform()) -> str:
    """The wheel platform tag of ``sysconfig.get_platform()``: ``linux-x86_64`` ->
    ``linux_x86_64``, ``win-amd64`` -> ``win_amd64``, ``macosx-11.0-arm64`` -> ``macosx_11_0_arm64``."""
    return platform.replace("-", "_").replace(".", "_").replace(" ", "_")


def vendored_paths(
    lib_dir: str = LIB_DIR,
    version_info: tuple[int, ...] = tuple(sys.version_info[:2]),
    platform: str = sysconfig.get_platform(),
) -> list[str]:
    """The folders to put first on ``sys.path``: ``lib/<tag>-<platform>``, ``lib/<tag>``, ``lib/common``.

    A development checkout without a build has no ``lib/``: nothing is returned and the
    interpreter's own site-packages serve instead. A built app without a tree for this
    interpreter raises ImportError with a one-line message naming the interpreters it supports.
    A platform without its tree (numpy is built for Linux x86_64 and Windows x64) still gets the
    pure trees: the inputs run; ``import numpy`` is what fails there.
    """
    if not os.path.isdir(lib_dir):
        return []
    tag = interpreter_tag(version_info)
    shipped = sorted(name for name in os.listdir(lib_dir) if name.startswith("cp"))
    if not any(name == tag or name.startswith(tag + "-") for name in shipped):
        supported = ", ".join(sorted({name.split("-")[0] for name in shipped})) or "no interpreter"
        raise ImportError(
            f"TA-aws-iam-error-spike ships libraries for {supported}, not for Python"
            f" {version_info[0]}.{version_info[1]} (Splunk runs apps on 3.9 or 3.13)"
        )
    folders = (f"{tag}-{platform_tag(platform)}", tag, COMMON)
    return [os.path.join(lib_dir, name) for name in folders if os.path.isdir(os.path.join(lib_dir, name))]


def add_vendored_paths(
    lib_dir: str = LIB_DIR,
    version_info: tuple[int, ...] = tuple(sys.version_info[:2]),
    platform: str = sysconfig.get_platform(),
) -> list[str]:
    """Prepend :func:`vendored_paths` to ``sys.path`` (once); return the folders added."""
    added = [folder for folder in vendored_paths(lib_dir, version_info, platform) if folder not in sys.path]
    sys.path[0:0] = added
    return added
