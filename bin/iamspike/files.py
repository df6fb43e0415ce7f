"""CloudTrail files on disk: ``{"Records":[...]}`` JSON (optionally gzipped), JSON arrays, JSON lines.

Folders are walked recursively in name order; CloudTrail digest files are skipped. A file that is
not CloudTrail JSON is reported (:attr:`FileReader.skipped`) and skipped inside a folder; a file
named explicitly that cannot be read raises :class:`FileError` (one-line message).

:class:`RowReader` reads pre-aggregated rows instead (``count_field=``): CSV with a header, or JSON
lines / arrays of flat objects, Splunk's ``{"result": {...}}`` export lines included.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping

SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".gz", ".log")
ROW_SUFFIXES = (*SUFFIXES, ".csv", ".csv.gz")
ROW_CHUNK = 20_000


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


def walk(paths: Iterable[str], suffixes: tuple[str, ...] = SUFFIXES) -> Iterator[tuple[str, bool]]:
    """``(file, named explicitly)`` for each path, folders walked in name order, digests skipped."""
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    full = os.path.join(root, name)
                    if name.endswith(suffixes) and not is_digest(full):
                        yield full, False
        elif os.path.isfile(path):
            yield path, True
        else:
            raise FileError(f"no such file or folder: {path}")


class FileReader:
    """Records of every CloudTrail file under the given paths."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = list(paths)
        self.files = 0
        self.skipped: list[str] = []

    def __iter__(self) -> Iterator[Mapping]:
        for path, explicit in walk(self.paths):
            try:
                records = read_file(path)
            except FileError as exc:
                if explicit:
                    raise
                self.skipped.append(str(exc))
                continue
            self.files += 1
            yield from records


def _epoch(value: str) -> str:
    """``_time`` as epoch seconds: a number stays, ISO 8601 (Splunk's export) is converted."""
    try:
        float(value)
        return value
    except ValueError:
        pass
    text = value.strip().replace(" ", "T", 1).replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():  # +0000 -> +00:00
        text = text[:-2] + ":" + text[-2:]
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return value  # the engine counts it as a row without a usable _time
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return repr(when.timestamp())


def _flat_rows(path: str, text: str) -> list[dict[str, str]]:
    if path.endswith((".csv", ".csv.gz")):
        return list(csv.DictReader(io.StringIO(text)))
    try:
        value = json.loads(text)
        items = value if isinstance(value, list) else [value]
    except ValueError:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError:
                    raise FileError(f"{path} line {number}: not JSON") from None
    rows = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("result"), Mapping):
            item = item["result"]
        if isinstance(item, Mapping):
            rows.append({str(k): "" if v is None else str(v) for k, v in item.items()})
    return rows


class RowReader:
    """Pre-aggregated rows (``count_field=``) of every CSV or JSON file under the given paths, as
    ``(header, rows)`` chunks for :meth:`iamspike.engine.Detector.add_rows`."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = list(paths)
        self.files = 0
        self.skipped: list[str] = []

    def chunks(self) -> Iterator[tuple[list[str], list[list[str]]]]:
        for path, explicit in walk(self.paths, ROW_SUFFIXES):
            try:
                opener = gzip.open if path.endswith(".gz") else open
                with opener(path, "rt", encoding="utf-8", newline="") as handle:
                    rows = _flat_rows(path, handle.read())
            except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
                if explicit:
                    raise FileError(f"cannot read {path}: {exc}") from None
                self.skipped.append(f"cannot read {path}: {exc}")
                continue
            except FileError as exc:
                if explicit:
                    raise
                self.skipped.append(str(exc))
                continue
            self.files += 1
            for start in range(0, len(rows), ROW_CHUNK):
                chunk = rows[start : start + ROW_CHUNK]
                header = list(dict.fromkeys(key for row in chunk for key in row))
                if "_time" in header:
                    for row in chunk:
                        row["_time"] = _epoch(row.get("_time", ""))
                yield header, [[row.get(key, "") for key in header] for row in chunk]
