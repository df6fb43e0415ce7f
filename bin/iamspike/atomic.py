"""A file written whole or not at all: the CLI's report and the inputs' checkpoints.

Its bytes go into a temporary file beside it (``.NAME.<8 hex>.part``, in the same folder so that
the rename stays on one file system), which is then renamed onto it: a reader, or a kill at any
moment, finds the old file or the new one, never a torn one. :func:`reserve` creates the
temporary file on its own, so that a caller with long work before the write (the CLI's run) learns
before that work that the folder cannot take the file. Imports nothing of the CLI or the inputs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time

REPLACE_TRIES = 5  # os.replace attempts while Windows reports the target in use (0.75 s at most)
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)


def reserve(path: str) -> str:
    """Create the empty temporary file that :func:`finish` writes and renames onto ``path``, with
    the mode ``open`` would give ``path``; its name. OSError if the folder cannot take it
    (IsADirectoryError, "is a folder", if ``path`` is one)."""
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a folder", path)
    folder = os.path.dirname(path) or "."
    for _ in range(100):  # a name already taken: one chance in 4 billion per file there
        part = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.part")
        try:
            os.close(os.open(part, _FLAGS, 0o666))
        except FileExistsError:
            continue
        return part
    raise FileExistsError(errno.EEXIST, "no free temporary name", folder)


def finish(part: str, path: str, data: bytes, durable: bool = True) -> None:
    """Write ``data`` into ``part`` (from :func:`reserve`), fsync it unless not ``durable``, and
    rename it onto ``path``; ``part`` is removed if any step fails (``path`` is then as it was).
    On Windows a rename refused while another process (a reader, a virus scanner) holds ``path``
    open is tried again, :data:`REPLACE_TRIES` times in all."""
    try:
        with open(part, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        for attempt in range(REPLACE_TRIES):
            try:
                os.replace(part, path)
                break
            except PermissionError:
                if attempt == REPLACE_TRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise


def write(path: str, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` whole or not at all (:func:`reserve`, then :func:`finish`)."""
    finish(reserve(path), path, data, durable)
