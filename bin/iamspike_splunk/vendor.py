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


def interpreter_tag(version_info: tuple[int, ...] = tuple(sys.version_info[:2])) -> str:
    """The CPython ABI tag whose vendored tree serves this interpreter, e.g. ``cp313``."""
    return "cp%d%d" % (version_info[0], version_info[1])


def add_vendored_paths() -> list[str]:
    """Prepend ``lib/<tag>`` then ``lib/common`` to ``sys.path``; return the folders added.

    Folders that do not exist (a development checkout without a build) are skipped, so the
    interpreter's own site-packages serve instead.
    """
    added = []
    for folder in (os.path.join(LIB_DIR, interpreter_tag()), os.path.join(LIB_DIR, "common")):
        if os.path.isdir(folder) and folder not in sys.path:
            added.append(folder)
    sys.path[0:0] = added
    return added
