"""Put the app's vendored libraries on ``sys.path``.

The build (``package/build.py``) installs pure-Python libraries shared by every interpreter into
``lib/common`` and the interpreter-specific ones (numpy wheels, the splunk-sdk release for that
Python) into ``lib/cp39`` and ``lib/cp313``. The location is found relative to this file, never
through SPLUNK_HOME, so the app works wherever Splunk unpacks it.
"""

from __future__ import annotations

import os
import sys

APP_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_DIR = os.path.join(APP_ROOT, "lib")
COMMON = "common"


def interpreter_tag(version_info: tuple[int, ...] = tuple(sys.version_info[:2])) -> str:
    """The CPython ABI tag whose vendored tree serves this interpreter, e.g. ``cp313``."""
    return f"cp{version_info[0]}{version_info[1]}"


def vendored_paths(
    lib_dir: str = LIB_DIR, version_info: tuple[int, ...] = tuple(sys.version_info[:2])
) -> list[str]:
    """The folders to put first on ``sys.path``: ``lib/<tag>`` then ``lib/common``.

    A development checkout without a build has no ``lib/``: nothing is returned and the
    interpreter's own site-packages serve instead. A built app without a tree for this
    interpreter raises ImportError with a one-line message naming the interpreters it supports.
    """
    if not os.path.isdir(lib_dir):
        return []
    tag = interpreter_tag(version_info)
    folders = [os.path.join(lib_dir, tag), os.path.join(lib_dir, COMMON)]
    if not os.path.isdir(folders[0]):
        shipped = sorted(name for name in os.listdir(lib_dir) if name.startswith("cp"))
        supported = ", ".join(shipped) or "no interpreter"
        raise ImportError(
            f"TA-aws-iam-error-spike ships libraries for {supported}, not for Python"
            f" {version_info[0]}.{version_info[1]} (Splunk runs apps on 3.9 or 3.13)"
        )
    return [folder for folder in folders if os.path.isdir(folder)]


def add_vendored_paths(
    lib_dir: str = LIB_DIR, version_info: tuple[int, ...] = tuple(sys.version_info[:2])
) -> list[str]:
    """Prepend :func:`vendored_paths` to ``sys.path`` (once); return the folders added."""
    added = [folder for folder in vendored_paths(lib_dir, version_info) if folder not in sys.path]
    sys.path[0:0] = added
    return added
