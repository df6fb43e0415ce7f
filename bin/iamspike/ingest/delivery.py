"""Writing the records of one log file to Splunk: small batches, de-duplication, resume points.

Events reach splunkd through a pipe, and no process can write to a pipe and to its checkpoint in
one atomic step: a batch is written first, then its eventIDs are journaled (``SeenIds``). A
kill -9 between the two re-sends that batch after the restart, so batches are small: a flush
comes after ``FLUSH_EVENTS`` events or ``FLUSH_BYTES`` bytes of event text, whichever comes
first (a batch is at most 500 events and at most 256 KiB plus its last record). Nothing is lost.

A file can be resumed where an earlier run stopped: ``FilePosition.position`` is the number of
records of the file handled (written, or dropped as already seen) through the last flush; a run
given that position skips those records without writing them.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Callable

from iamspike.ingest.checkpoint import SeenIds
from iamspike.ingest.cloudtrail_files import (
    CHUNK_BYTES,
    MAX_RECORD_BYTES,
    BadFile,
    CloudTrailFile,
    sourcetype_for,
)
from iamspike.ingest.events import Deadline, EventSink, FileSummary, StopRun, event_time

FLUSH_EVENTS = 500  # events per batch handed to Splunk (and journaled) at most ...
FLUSH_BYTES = 256 * 1024  # ... and bytes of event text, plus the record that crossed it


@dataclass
class FilePosition:
    """Where a file is: records handled through the last flush (see the module docstring)."""

    position: int = 0


def record_id(text: str, record: dict[str, Any]) -> str:
    """The de-duplication key of a record: its eventID, else a hash of its text."""
    event_id = record.get("eventID")
    if isinstance(event_id, str) and event_id:
        return event_id
    return "sha1:" + hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()


def write_file(
    chunks: Iterable[bytes],
    source: str,
    sink: EventSink,
    seen: SeenIds,
    stats: FileSummary,
    log: logging.Logger,
    deadline: Deadline | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
    sourcetype: str | None = None,
    at: FilePosition | None = None,
) -> bool:
    """Write every record of one log file to ``sink``, dropping ids already in ``seen``.

    With ``at``, the first ``at.position`` records are skipped (an earlier run handled them) and
    ``at.position`` follows every flush. Returns True when the file was read to its end or is
    damaged (every intact record before the damage written, one log line saying where it
    starts, ``stats.skipped_files`` counted: retrying would not help); False when the deadline
    or a stop cut it short (what was written is flushed and journaled, ``at`` says where).
    """
    sourcetype = sourcetype or sourcetype_for(source)
    at = at if at is not None else FilePosition()
    if deadline is not None:
        chunks = _interruptible(chunks, deadline)
    reader = CloudTrailFile(chunks, source, max_record_bytes, log)
    records = iter(reader)
    pending: dict[str, None] = {}  # ids written since the last flush, in order (a file repeating
    # a record writes it once)
    write = sink.write
    seen_ids = seen.ids  # ``in`` on the view: no method call per record
    completed = True
    handled = 0  # records of the file handled so far
    size = 0  # bytes of event text written since the last flush
    key = None
    try:
        if at.position:
            handled = sum(1 for _ in itertools.islice(records, at.position))
        for text, record in records:
            handled += 1
            key = record.get("eventID")  # record_id's common case, inlined
            if key.__class__ is not str or not key:
                key = record_id(text, record)
            if key in pending or key in seen_ids:
                stats.duplicates += 1
                continue
            write(text, event_time(record.get("eventTime")), source, sourcetype)
            pending[key] = None
            size += len(text)
            if size >= FLUSH_BYTES or len(pending) >= FLUSH_EVENTS:
                _commit(sink, seen, pending, stats)
                at.position, size = handled, 0
                if deadline is not None and deadline.expired():
                    completed = False
                    break
    except BadFile as exc:
        stats.skipped_files += 1
        where = f"after record {handled} (eventID {key})" if handled else "before its first record"
        log.error(
            "damaged file %s: the damage starts %s: %s; the %d records before it were read, the rest skipped",
            source,
            where,
            exc,
            handled,
        )
    except StopRun:
        completed = False
    finally:
        _commit(sink, seen, pending, stats)
        at.position = handled
        seen.sync()
        stats.skipped_records += reader.skipped_records
    if reader.replaced_bytes:
        log.warning("%d bytes that are not UTF-8 replaced by U+FFFD in %s", reader.replaced_bytes, source)
    if completed:
        stats.files += 1
    return completed


def _interruptible(chunks: Iterable[bytes], deadline: Deadline) -> Iterator[bytes]:
    """The chunks of a download; a stop request cuts a slow read short (``StopRun``)."""
    iterator = iter(chunks)
    while True:
        with deadline.interruptible():
            chunk = next(iterator, None)
        if chunk is None:
            return
        yield chunk


def _commit(sink: EventSink, seen: SeenIds, pending: dict[str, None], stats: FileSummary) -> None:
    if not pending:
        return
    sink.flush()
    seen.add_all(pending)
    stats.events += len(pending)
    pending.clear()


class LogFilePipeline:
    """What the inputs reading log files from S3 share: one run's sink, seen ids, stats, logger
    and deadline, and writing one S3 object's records."""

    def __init__(
        self,
        max_record_bytes: int,
        sink: EventSink,
        seen: SeenIds,
        log: logging.Logger,
        deadline: Deadline,
    ) -> None:
        self.max_record_bytes = max_record_bytes
        self.sink = sink
        self.seen = seen
        self.log = log
        self.deadline = deadline
        self.stats = FileSummary()

    def write_object(
        self,
        s3: Any,
        bucket: str,
        key: str,
        wrap: Callable[[Iterable[bytes]], Iterable[bytes]] | None = None,
        at: FilePosition | None = None,
    ) -> bool:
        """``write_file`` on ``s3://bucket/key`` streamed from S3 (``wrap`` sees every chunk).

        AWS errors propagate (``at`` then says how far the file was written): what they mean
        (retry, dead-letter queue) is the caller's call.
        """
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            chunks = body.iter_chunks(CHUNK_BYTES)
            return write_file(
                wrap(chunks) if wrap else chunks,
                f"s3://{bucket}/{key}",
                self.sink,
                self.seen,
                self.stats,
                self.log,
                self.deadline,
                self.max_record_bytes,
                at=at,
            )
        finally:
            body.close()
