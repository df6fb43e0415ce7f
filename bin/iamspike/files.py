"""Files and folders on disk for the CLI: CloudTrail records through the inputs' own streaming
reader, or pre-aggregated rows.

:class:`FileReader` walks folders recursively in name order and streams each file through
:func:`iamspike.ingest.cloudtrail_files.iter_file_records`, the reader the S3 and SQS inputs use
(``{"Records": [...]}``, a bare JSON array, JSON lines, gzip or not, digest files skipped), so a
2 GB export is read in bounded memory and both accept the same formats. A file that is damaged
or not CloudTrail yields the records before the damage and is named in :attr:`FileReader.skipped`;
a path that does not exist, or a file named explicitly that cannot be opened, raises
:class:`FileError` (one-line message).

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

from iamspike.ingest.cloudtrail_files import BadFile, FileReport, file_kind, iter_file_records

SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".gz", ".log")
ROW_SUFFIXES = (*SUFFIXES, ".csv", ".csv.gz")
ROW_CHUNK = 20_000


class FileError(ValueError):
    """A file or folder that cannot be read; ``str(e)`` is one line."""


class _Reader:
    """What every reader reports: ``files`` read, ``skipped`` (one line per file not read to its
    end), ``repeated`` (files and folders reached a second time, read once), ``skipped_records``
    and ``replaced_bytes``."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = list(paths)
        self.files = 0
        self.opened = 0  # files started (the progress line)
        self.skipped: list[str] = []
        self.repeated: list[str] = []
        self.skipped_records = 0
        self.replaced_bytes = 0

    def walk(self, suffixes: tuple[str, ...] = SUFFIXES) -> Iterator[tuple[str, bool]]:
        """``(file, named explicitly)`` for each path, folders walked in name order, digests skipped.

        Links to folders are followed; a file or folder reached twice (a link loop, a folder and a
        file in it both named) is read once and named in ``repeated``. A named pipe, socket or
        device in a folder is named in ``skipped`` rather than opened (a pipe would block the run
        for good)."""
        seen: dict[str, str] = {}

        def first(path: str) -> bool:
            real = os.path.realpath(path)
            if real in seen:
                self.repeated.append(f"{path} (the same as {seen[real]})")
                return False
            seen[real] = path
            return True

        for path in self.paths:
            if os.path.isdir(path):
                for root, dirs, names in os.walk(path, followlinks=True):
                    if not first(root):
                        dirs.clear()
                        continue
                    dirs.sort()
                    for name in sorted(names):
                        full = os.path.join(root, name)
                        if not name.endswith(suffixes) or file_kind(full) == "digest":
                            continue
                        if os.path.exists(full) and not os.path.isfile(full):
                            self.skipped.append(f"{full}: not a regular file (a pipe, socket or device)")
                        elif first(full):
                            yield full, False
            elif os.path.isfile(path):
                if first(path):
                    yield path, True
            elif os.path.exists(path):
                raise FileError(f"not a regular file or folder: {path}")
            else:
                raise FileError(f"no such file or folder: {path}")

    def notes(self) -> list[str]:
        """One line per file not read to its end, then one per kind of trouble met, for stderr."""
        notes = [f"skipped {line}" for line in self.skipped]  # every one: the responder fetches them again
        notes += [f"read once: {line}" for line in self.repeated]
        if self.skipped_records:
            notes.append(f"{self.skipped_records} records skipped (too large or not JSON objects)")
        if self.replaced_bytes:
            notes.append(f"{self.replaced_bytes} bytes that were not UTF-8 replaced")
        return notes


class FileReader(_Reader):
    """Records of every CloudTrail file under the given paths, streamed file by file. A file
    counts in ``files`` when it gave records or was read to its end; a damaged one or one that is
    not CloudTrail is named in ``skipped`` (its records before the damage were passed on)."""

    def __iter__(self) -> Iterator[Mapping]:
        for path, explicit in self.walk():
            report = FileReport()
            self.opened += 1
            try:
                yield from iter_file_records(path, report)
            except BadFile as exc:
                self.skipped.append(str(exc))
            except OSError as exc:
                if explicit:
                    raise FileError(f"cannot read {path}: {exc.strerror or exc}") from None
                self.skipped.append(f"cannot read {path}: {exc.strerror or exc}")
            finally:
                self.skipped_records += report.skipped_records
                self.replaced_bytes += report.replaced_bytes
            if not report.digest and (report.records or not report.damage):
                self.files += 1


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


class RowReader(_Reader):
    """Pre-aggregated rows (``count_field=``) of every CSV or JSON file under the given paths, as
    ``(header, rows)`` chunks for :meth:`iamspike.engine.Detector.add_rows`. Rows are few (one
    per bin and entity), so each file is read whole."""

    def chunks(self) -> Iterator[tuple[list[str], list[list[str]]]]:
        for path, explicit in self.walk(ROW_SUFFIXES):
            self.opened += 1
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
