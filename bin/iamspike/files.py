"""CloudTrail files on disk: ``{"Records":[...]}`` JSON (optionally gzipped), JSON arrays, JSON lines.

Folders are walked recursively in name order; CloudTrail digest files are skipped. A file that is
not CloudTrail JSON is reported (:attr:`FileReader.skipped`) and skipped inside a folder; a file
named explicitly that cannot be read raises :class:`FileError` (one-line message).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator, Mapping

SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".gz", ".log")


class FileError(ValueError):
    """A file or folder that cannot be read; ``str(e)`` is one line."""


def is_digest(path: str) -> bool:
    """CloudTrail digest files (hash chains, no records)."""
    name = os.path.basename(path)
    return "CloudTrail-Digest" in path or "_CloudTrail-Digest_" in name


def _records_of(value: object) -> list[Mapping] | None:
    if isinstance(value, Mapping):
        records = value.get("Records")
        if isinstance(records, list):
            return [r for r in records if isinstance(r, Mapping)]
        return [value] if "eventName" in value or "eventSource" in value else None
    if isinstance(value, list):
        return [r for r in value if isinstance(r, Mapping)]
    return None


def read_file(path: str) -> list[Mapping]:
    """The CloudTrail records of one file; FileError if it holds none that we can read."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise FileError(f"cannot read {path}: {exc}") from None
    try:
        records = _records_of(json.loads(text))
    except ValueError:
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                found = _records_of(json.loads(line))
            except ValueError:
                raise FileError(f"{path} line {number}: not JSON") from None
            records.extend(found or [])
    if records is None:
        raise FileError(f"{path}: not CloudTrail JSON (no Records)")
    return records


class FileReader:
    """Records of every CloudTrail file under the given paths."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = list(paths)
        self.files = 0
        self.skipped: list[str] = []

    def _files(self) -> Iterator[tuple[str, bool]]:
        for path in self.paths:
            if os.path.isdir(path):
                for root, dirs, names in os.walk(path):
                    dirs.sort()
                    for name in sorted(names):
                        full = os.path.join(root, name)
                        if name.endswith(SUFFIXES) and not is_digest(full):
                            yield full, False
            elif os.path.isfile(path):
                yield path, True
            else:
                raise FileError(f"no such file or folder: {path}")

    def __iter__(self) -> Iterator[Mapping]:
        for path, explicit in self._files():
            try:
                records = read_file(path)
            except FileError as exc:
                if explicit:
                    raise
                self.skipped.append(str(exc))
                continue
            self.files += 1
            yield from records
