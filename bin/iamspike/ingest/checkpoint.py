"""Checkpoints in the ``checkpoint_dir`` splunkd passes: JSON state and a bounded set of seen ids.

Every write is atomic (:func:`iamspike.atomic.write`: a temporary file in the same folder, fsync,
``os.replace``), so a kill at any moment leaves either the old or the new checkpoint, never a torn
one. ``SeenIds`` is the shared de-duplication of event ids: a bounded set (oldest forgotten first)
persisted as an append-only journal that is compacted when it grows to twice its capacity.

A kill -9 ends the process, not the kernel: what was ``write``-n to a file survives it without
fsync. fsync only matters for a machine that loses power, where splunkd's own queues lose more;
so the journal is written at each batch (the kill -9 window stays one small batch) and fsynced
at the end of each file, not at each batch.

File names are safe on Linux and Windows (heavy forwarders run on both): ``safe_name`` of the
input's name, a dot, ``safe_name`` of the key (a readable, cleaned, length-capped part and a
digest of the exact key), at most 151 characters with the extension. Files written under the
names of earlier versions (the cleaned key, no digest) are copied to the new name on first use.
The journal is bytes (``\n`` on every platform; a ``\r\n`` journal is read too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Iterable, KeysView
from typing import Any

from iamspike import atomic

DEFAULT_SEEN_CAPACITY = 200_000

log = logging.getLogger(__name__)


# Device names Windows reserves, with or without an extension ("NUL.json" is the device too).
RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{port}{n}" for port in ("COM", "LPT") for n in range(10)]
)
KEY_LENGTH = 40  # readable characters of a key in a file name (the input's name keeps 80)


def safe_name(name: str, length: int = 80) -> str:
    """A file-name-safe, collision-free form of ``name`` on Linux and Windows: up to ``length``
    of its letters, digits and ``_.-`` (any other run as ``_``; never a reserved device name),
    then ``-`` and 10 hex digits of the sha1 of the exact ``name``."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:length]
    if readable.split(".", 1)[0].upper() in RESERVED_NAMES:
        readable = "_" + readable
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]
    return f"{readable or '_'}-{digest}"


class CheckpointError(Exception):
    """A checkpoint folder or file the input cannot write, found before the run reads anything;
    its message is one line naming it, the cause and the fix."""


def _unwritable(what: str, exc: OSError) -> CheckpointError:
    return CheckpointError(
        f"{what} cannot be written ({exc.strerror or exc}): nothing read this run; give the user"
        " splunkd runs as write access to it"
    )


class CheckpointStore:
    """JSON values by key for one input stanza, one file per key under ``directory``.

    Opening it makes ``directory`` if missing and creates and removes a file in it, so that a
    folder the input cannot write (owned by another user, a file in its place) is a
    :class:`CheckpointError` before the run hands Splunk an event it could not checkpoint (and
    would send again at every run)."""

    def __init__(self, directory: str, input_name: str) -> None:
        self.directory = directory
        self.prefix = safe_name(input_name)
        try:
            if not os.path.lexists(directory):
                os.makedirs(directory, exist_ok=True)
            os.unlink(atomic.reserve(os.path.join(directory, self.prefix)))
        except OSError as exc:
            raise _unwritable(f"checkpoint folder {directory}", exc) from exc

    def path(self, key: str) -> str:
        """The file of ``key``, without its extension (``.json`` or ``.journal``)."""
        return os.path.join(self.directory, f"{self.prefix}.{safe_name(key, KEY_LENGTH)}")

    def _file(self, key: str, extension: str) -> str:
        """``path(key) + extension``, first copied from the name earlier versions gave it (the
        cleaned key, no digest) if only that one exists. The old file stays: keys that differed
        only in punctuation shared it, and each gets its copy."""
        path = self.path(key) + extension
        if os.path.exists(path):
            return path
        old = os.path.join(self.directory, f"{self.prefix}.{re.sub(r'[^A-Za-z0-9_-]+', '_', key)}{extension}")
        try:
            with open(old, "rb") as handle:
                data = handle.read()
        except OSError:  # none (or a name too long to have ever been written)
            return path
        atomic.write(path, data)
        log.info("checkpoint %s copied to %s (the name this version gives it)", old, path)
        return path

    def load(self, key: str, default: Any = None) -> Any:
        """The value saved under ``key``, or ``default`` if none (or unreadable: logged)."""
        path = self._file(key, ".json")
        try:
            with open(path, "rb") as handle:
                return json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as exc:
            log.warning("checkpoint %s is unreadable (%s); starting from the default", path, exc)
            return default

    def save(self, key: str, value: Any, durable: bool = True) -> None:
        """Save ``value`` (JSON-serialisable) under ``key`` atomically (fsynced if ``durable``)."""
        data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")
        atomic.write(self.path(key) + ".json", data, durable)

    def seen_ids(self, key: str = "seen", capacity: int = DEFAULT_SEEN_CAPACITY) -> SeenIds:
        """The persisted bounded set of ids under ``key``."""
        path = self._file(key, ".journal")
        try:
            return SeenIds(path, capacity)
        except OSError as exc:
            raise _unwritable(f"checkpoint {path}", exc) from exc


class SeenIds:
    """A bounded set of ids (the ``capacity`` most recent), persisted as an append-only journal.

    ``add_all`` appends one line per id (written to the kernel, safe from a kill -9): call it
    right after the events carrying those ids were handed to Splunk; ``sync`` fsyncs. Loading
    keeps the last ``capacity`` ids of the journal. The journal is UTF-8 bytes, one id and
    ``\n`` a line on every platform (an id's own ``\r`` or ``\n`` is journaled as a space).
    """

    def __init__(self, path: str, capacity: int = DEFAULT_SEEN_CAPACITY) -> None:
        self.path = path
        self.capacity = max(1, capacity)
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._journal_lines = 0
        self._unsynced = False
        self._load()
        self._handle = open(path, "ab")  # noqa: SIM115 - kept open for appends

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return
        # A line cut by a kill has no newline: drop it (its batch was not acknowledged), from the
        # file too, or the next append would extend it. A journal written in text mode on Windows
        # (earlier versions) ends its lines with \r\n.
        whole = data.rfind(b"\n") + 1
        if whole < len(data):
            os.truncate(self.path, whole)
        text = data[:whole].decode("utf-8", errors="replace").replace("\r\n", "\n")
        for line in text.split("\n")[:-1]:
            if line:
                self._remember(line)
                self._journal_lines += 1
        if self._journal_lines > 2 * self.capacity:
            self._compact()

    def _remember(self, item: str) -> None:
        ids = self._ids
        if item in ids:
            ids.move_to_end(item)
        else:
            ids[item] = None
            if len(ids) > self.capacity:
                ids.popitem(last=False)

    def _compact(self) -> None:
        atomic.write(self.path, "".join(item + "\n" for item in self._ids).encode("utf-8"))
        self._journal_lines = len(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> KeysView[str]:
        """A live read-only view of the ids: ``key in seen.ids`` costs no Python call (hot loops)."""
        return self._ids.keys()

    def add_all(self, items: Iterable[str]) -> None:
        """Remember ``items`` and journal them (written to the kernel; ``sync`` fsyncs)."""
        ids = self._ids
        lines = list(items)
        if not lines:
            return
        text = "\n".join(lines)
        fresh = dict.fromkeys(lines)
        if (
            len(fresh) == len(lines)
            and text.count("\n") == len(lines) - 1
            and "\r" not in text
            and ids.keys().isdisjoint(fresh)
        ):
            # The usual batch: distinct new ids without a line break; one C-level update, same order.
            ids.update(fresh)
        else:
            lines = [item.replace("\r", " ").replace("\n", " ") for item in lines]
            text = "\n".join(lines)
            for item in lines:
                self._remember(item)
        while len(ids) > self.capacity:
            ids.popitem(last=False)
        self._handle.write((text + "\n").encode("utf-8", errors="replace"))
        self._handle.flush()
        self._unsynced = True
        self._journal_lines += len(lines)
        if self._journal_lines > 2 * self.capacity:
            self._handle.close()
            self._compact()  # fsynced
            self._unsynced = False
            self._handle = open(self.path, "ab")  # noqa: SIM115

    def sync(self) -> None:
        """fsync what ``add_all`` journaled since the last sync."""
        if self._unsynced:
            os.fsync(self._handle.fileno())
            self._unsynced = False

    def close(self) -> None:
        self.sync()
        self._handle.close()
