"""Checkpoints in the ``checkpoint_dir`` splunkd passes: JSON state and a bounded set of seen ids.

Every write is atomic (a temporary file in the same folder, fsync, ``os.replace``), so a kill at
any moment leaves either the old or the new checkpoint, never a torn one. ``SeenIds`` is the
shared de-duplication of event ids: a bounded set (oldest forgotten first) persisted as an
append-only journal that is compacted when it grows to twice its capacity.

A kill -9 ends the process, not the kernel: what was ``write``-n to a file survives it without
fsync. fsync only matters for a machine that loses power, where splunkd's own queues lose more;
so the journal is written at each batch (the kill -9 window stays one small batch) and fsynced
at the end of each file, not at each batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, KeysView
from typing import Any

DEFAULT_SEEN_CAPACITY = 200_000

log = logging.getLogger(__name__)


def safe_name(name: str) -> str:
    """A file-name-safe, collision-free form of an input's full name (``kind://stanza``)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:80]
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]
    return "{}-{}".format(readable or "input", digest)


def atomic_write(path: str, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (tmp file in the same folder, fsync unless not
    ``durable``, os.replace)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class CheckpointStore:
    """JSON values by key for one input stanza, one file per key under ``directory``."""

    def __init__(self, directory: str, input_name: str) -> None:
        self.directory = directory
        self.prefix = safe_name(input_name)
        os.makedirs(directory, exist_ok=True)

    def path(self, key: str) -> str:
        return os.path.join(self.directory, "{}.{}".format(self.prefix, re.sub(r"[^A-Za-z0-9_-]+", "_", key)))

    def load(self, key: str, default: Any = None) -> Any:
        """The value saved under ``key``, or ``default`` if none (or unreadable: logged)."""
        path = self.path(key) + ".json"
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
        atomic_write(self.path(key) + ".json", data, durable)

    def seen_ids(self, key: str = "seen", capacity: int = DEFAULT_SEEN_CAPACITY) -> SeenIds:
        """The persisted bounded set of ids under ``key``."""
        return SeenIds(self.path(key) + ".journal", capacity)


class SeenIds:
    """A bounded set of ids (the ``capacity`` most recent), persisted as an append-only journal.

    ``add_all`` appends one line per id (written to the kernel, safe from a kill -9): call it
    right after the events carrying those ids were handed to Splunk; ``sync`` fsyncs. Loading
    keeps the last ``capacity`` ids of the journal.
    """

    def __init__(self, path: str, capacity: int = DEFAULT_SEEN_CAPACITY) -> None:
        self.path = path
        self.capacity = max(1, capacity)
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._journal_lines = 0
        self._unsynced = False
        self._load()
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for appends

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    # A line cut by a kill has no newline: ignore it (its batch was not acknowledged).
                    if line.endswith("\n") and len(line) > 1:
                        self._remember(line[:-1])
                        self._journal_lines += 1
        except FileNotFoundError:
            return
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
        atomic_write(self.path, "".join(item + "\n" for item in self._ids).encode("utf-8"))
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
        if len(fresh) == len(lines) and text.count("\n") == len(lines) - 1 and ids.keys().isdisjoint(fresh):
            # The usual batch: distinct new ids without a newline; one C-level update, same order.
            ids.update(fresh)
        else:
            lines = [item.replace("\n", " ") for item in lines]
            text = "\n".join(lines)
            for item in lines:
                if item in ids:
                    ids.move_to_end(item)
                else:
                    ids[item] = None
        while len(ids) > self.capacity:
            ids.popitem(last=False)
        self._handle.write(text + "\n")
        self._handle.flush()
        self._unsynced = True
        self._journal_lines += len(lines)
        if self._journal_lines > 2 * self.capacity:
            self._handle.close()
            self._compact()  # fsynced
            self._unsynced = False
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def sync(self) -> None:
        """fsync what ``add_all`` journaled since the last sync."""
        if self._unsynced:
            os.fsync(self._handle.fileno())
            self._unsynced = False

    def close(self) -> None:
        self.sync()
        self._handle.close()
