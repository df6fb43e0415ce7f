"""``aws_cloudtrail_s3``: walk a trail bucket by prefix, from a start date, then incrementally.

Layout: ``[prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>`` and, for an
organization trail, ``[prefix/]AWSLogs/<o-org id>/<account>/CloudTrail/...``; Insights files
under ``CloudTrail-Insight/`` (sourcetype ``aws:cloudtrail:insight``), digests skipped.

Each (account, region, kind) folder is a stream with its own checkpoint (``_Cursor``): the newest
file time read, the keys read within ``overlap_minutes`` of it, and the pending files. A run first
retries the pending files whose backoff is over, then lists the stream from the day of
(newest - overlap) with a paginator and ``StartAfter``, reads the files not read yet in key order
(file names carry their delivery time), and saves the checkpoint after each file's events are
handed to Splunk. A file that fails (download cut, AccessDenied, ...) stays pending, whatever the
cursor passes, and is named in a log line at each run until it is read or an admin drops it
(``drop_pending``); a file stopped mid-way (deadline, SIGTERM) resumes at its record position. A
kill between a flush and its journal line re-sends that one batch.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from iamspike.ingest.aws import (
    AWS_ERRORS,
    AwsClients,
    AwsSettings,
    check_reachable,
    error_code,
    explain,
    int_setting,
    is_not_found,
)
from iamspike.ingest.checkpoint import DEFAULT_SEEN_CAPACITY, CheckpointStore, SeenIds
from iamspike.ingest.cloudtrail_files import MAX_RECORD_BYTES, file_kind
from iamspike.ingest.context import InputContext, InputKind
from iamspike.ingest.delivery import FilePosition, LogFilePipeline
from iamspike.ingest.events import Deadline, EventSink, FileSummary
from iamspike.ingest.settings import SettingsError, check_interval, check_start_date

KINDS = ("CloudTrail", "CloudTrail-Insight")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ACCOUNT = re.compile(r"^\d{12}$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_FILE_TIME = re.compile(r"_(\d{8}T\d{4})Z_")
_DAY = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/[^/]+$")


@dataclass(frozen=True)
class S3Settings:
    """The input's own settings (the AWS ones, ``region`` included, are the run's ``AwsSettings``)."""

    bucket: str
    prefix: str
    start_date: datetime.date
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    overlap_minutes: int = 60
    max_record_bytes: int = MAX_RECORD_BYTES
    dedup_window: int = DEFAULT_SEEN_CAPACITY
    drop_pending: tuple[str, ...] = ()


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def parse_settings(params: Mapping[str, str]) -> S3Settings:
    """A stanza -> ``S3Settings``; ``ValueError`` with a one-line message if anything is bad."""
    check_interval(params.get("interval"))
    bucket = (params.get("bucket") or "").strip()
    if not _BUCKET.match(bucket):
        raise SettingsError(f"bucket {bucket!r} is not an S3 bucket name")
    accounts = _csv(params.get("accounts"))
    for account in accounts:
        if not _ACCOUNT.match(account):
            raise SettingsError(f"accounts: {account!r} is not a 12-digit AWS account id")
    prefix = (params.get("prefix") or "").strip().strip("/")
    return S3Settings(
        bucket=bucket,
        prefix=prefix + "/" if prefix else "",
        start_date=check_start_date(params.get("start_date")),
        accounts=accounts,
        regions=_csv(params.get("regions")),
        overlap_minutes=int_setting(params.get("overlap_minutes"), "overlap_minutes", 60, 0, 7 * 24 * 60),
        max_record_bytes=int_setting(
            params.get("max_record_bytes"), "max_record_bytes", MAX_RECORD_BYTES, 10_000, 100_000_000
        ),
        dedup_window=int_setting(
            params.get("dedup_window"), "dedup_window", DEFAULT_SEEN_CAPACITY, 1000, 5_000_000
        ),
        drop_pending=_csv(params.get("drop_pending")),
    )


def check_bucket(settings: S3Settings, aws: AwsSettings) -> None:
    """At validation: the bucket exists and its endpoint answers (one s3:ListBucket of the prefix)."""
    check_reachable(
        aws,
        "s3",
        lambda s3: s3.list_objects_v2(Bucket=settings.bucket, Prefix=settings.prefix + "AWSLogs/", MaxKeys=1),
        "bucket",
        f"bucket {settings.bucket} does not exist",
        "s3:ListBucket",
        f"arn:aws:s3:::{settings.bucket}",
    )


def file_time(key: str) -> datetime.datetime | None:
    """Delivery time in a CloudTrail file name (``..._20230826T2035Z_...``), else its day folder."""
    match = _FILE_TIME.search(key)
    if match:
        return datetime.datetime.strptime(match.group(1), "%Y%m%dT%H%M").replace(tzinfo=datetime.timezone.utc)
    day = _DAY.search(key)
    if day:
        return datetime.datetime(*map(int, day.groups()), tzinfo=datetime.timezone.utc)
    return None


class S3Pipeline(LogFilePipeline):
    """One run of the S3 input over every stream of the bucket, until done or the deadline."""

    def __init__(
        self,
        settings: S3Settings,
        clients: AwsClients,
        sink: EventSink,
        store: CheckpointStore,
        seen: SeenIds,
        log: logging.Logger,
        deadline: Deadline,
    ) -> None:
        super().__init__(settings.max_record_bytes, sink, seen, log, deadline)
        self.settings = settings
        self.aws = clients.settings
        self.store = store
        self.s3 = clients.client("s3")
        self.bucket_arn = f"arn:aws:s3:::{settings.bucket}"

    def _folders(self, prefix: str) -> Iterator[str]:
        """Sub-folder names directly under ``prefix`` (paginated)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"][len(prefix) :].rstrip("/")

    def streams(self) -> list[str]:
        """Every ``.../<account>/<kind>/<region>/`` folder to read, organization trails included."""
        root = self.settings.prefix + "AWSLogs/"
        account_roots = []
        for name in self._folders(root):
            if _ACCOUNT.match(name):
                account_roots.append((name, root + name + "/"))
            elif _ORG.match(name):
                for account in self._folders(root + name + "/"):
                    if _ACCOUNT.match(account):
                        account_roots.append((account, root + name + "/" + account + "/"))
        streams = []
        for account, account_root in account_roots:
            if self.settings.accounts and account not in self.settings.accounts:
                continue
            for kind in KINDS:
                for region in self._folders(account_root + kind + "/"):
                    if not self.settings.regions or region in self.settings.regions:
                        streams.append(f"{account_root}{kind}/{region}/")
        return streams

    def run(self) -> FileSummary:
        try:
            streams = self.streams()
        except AWS_ERRORS as exc:
            self.stats.errors += 1
            self.log.error("%s", explain(exc, "s3:ListBucket", self.bucket_arn, self.aws))
            return self.stats
        if not streams:
            self.log.warning(
                "no CloudTrail folders under s3://%s/%sAWSLogs/ (check bucket, prefix, accounts, regions)",
                self.settings.bucket,
                self.settings.prefix,
            )
        for stream in streams:
            if self.deadline.expired():
                break
            try:
                self.read_stream(stream)
            except AWS_ERRORS as exc:
                self.stats.errors += 1
                self.log.error("%s", explain(exc, "s3:ListBucket", self.bucket_arn, self.aws))
        return self.stats

    def read_stream(self, stream: str) -> None:
        """Read the stream's pending files (whose backoff is over), then its new files in key
        order, saving the cursor after each file; name what is still pending in the log."""
        name = "stream-" + stream
        cursor = _Cursor(self.store.load(name, None), self.settings)
        if cursor.unusable:
            self.log.warning(
                "checkpoint %s is unreadable in part: %s; reading from %s again (records already"
                " written are dropped by eventID)",
                self.store.path(name) + ".json",
                "; ".join(cursor.unusable),
                cursor.cutoff.date().isoformat(),
            )
        try:
            if self._drop_pending(cursor):
                self.store.save(name, cursor.state())
            for key in cursor.due(_now()):
                if not self._read(key, cursor, name):
                    return
            for key in self._new_files(stream, cursor):
                if not self._read(key, cursor, name):
                    return
        finally:
            self._report_pending(stream, cursor)

    def _new_files(self, stream: str, cursor: _Cursor) -> Iterator[str]:
        """Keys of the stream not read yet, from the day of the cursor's cutoff (``StartAfter``)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        start_after = stream + cursor.cutoff.strftime("%Y/%m/%d/")
        for page in paginator.paginate(
            Bucket=self.settings.bucket, Prefix=stream, StartAfter=start_after[:-1]
        ):
            for item in page.get("Contents", []):
                key = item["Key"]
                when = file_time(key)
                if (
                    key in cursor.recent
                    or key in cursor.pending
                    or file_kind(key) in ("digest", "other")
                    or (when and when < cursor.cutoff)
                ):
                    continue
                yield key

    def _read(self, key: str, cursor: _Cursor, name: str) -> bool:
        """Read one file and save the cursor; False when the run must end (deadline or stop)."""
        if self.deadline.expired():
            return False
        at = FilePosition(cursor.position(key))
        try:
            done = self.write_object(self.s3, self.settings.bucket, key, at=at)
        except AWS_ERRORS as exc:
            self.stats.errors += 1
            arn = f"arn:aws:s3:::{self.settings.bucket}/{key}"
            why = explain(exc, "s3:GetObject", arn, self.aws)
            if is_not_found(exc):
                self.log.error("%s; the object was deleted before it was read: nothing left to read", why)
                cursor.read(key)  # gone: never listed nor tried again
            else:
                cursor.failed(key, error_code(exc), at.position)
                self.log.error(
                    "%s; the file stays pending (%d records of it read): retried at each run, with a"
                    " backoff up to 1 h, until it is read or dropped with drop_pending",
                    why,
                    at.position,
                )
            self.store.save(name, cursor.state())
            return True
        if done:
            cursor.read(key)
        else:
            cursor.stopped(key, at.position)
        self.store.save(name, cursor.state())
        return done

    def _drop_pending(self, cursor: _Cursor) -> bool:
        prefix = f"s3://{self.settings.bucket}/"
        dropped = False
        for key in list(cursor.pending):
            if key in self.settings.drop_pending or prefix + key in self.settings.drop_pending:
                self.log.warning(
                    "dropped pending file %s%s (drop_pending): its records will not be read", prefix, key
                )
                cursor.read(key)  # as if read: never listed nor tried again
                dropped = True
        return dropped

    def _report_pending(self, stream: str, cursor: _Cursor) -> None:
        if not cursor.pending:
            return
        items = sorted(cursor.pending.items())
        named = "; ".join(f"{key} ({_describe(entry)})" for key, entry in items[:PENDING_NAMED])
        more = f"; and {len(items) - PENDING_NAMED} more" if len(items) > PENDING_NAMED else ""
        self.log.warning(
            "%d files pending in s3://%s/%s, not read yet: %s%s",
            len(items),
            self.settings.bucket,
            stream,
            named,
            more,
        )


PENDING_NAMED = 10  # pending files named in the run's log line


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def retry_delay(tries: int) -> datetime.timedelta:
    """How long a file that failed ``tries`` times waits before its next try: the next run after
    one failure, then 1, 2, 4 ... minutes, at most an hour."""
    return datetime.timedelta(seconds=0 if tries <= 1 else min(3600, 60 * 2 ** (tries - 2)))


def _describe(entry: dict[str, Any]) -> str:
    tries = int(entry.get("tries") or 0)
    if not tries:
        return f"stopped at record {entry.get('position', 0)}; resumes at the next run"
    last = _parse_time(entry.get("last")) or _now()
    when = last + retry_delay(tries)
    next_try = "at the next run" if when <= _now() else "after " + when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"failing since {entry.get('since', '?')}, {tries} tries, next try {next_try},"
        f" {entry.get('position', 0)} records read; last error: {entry.get('error', '?')}"
    )


class _Cursor:
    """Where one stream stands: the newest file time read, the keys read within the overlap of
    it (``recent``), and the ``pending`` files: failed (retried with a backoff until read or
    dropped) or stopped mid-file (resumed at their record position)."""

    def __init__(self, state: Any, settings: S3Settings) -> None:
        # What a saved state holds that this version cannot use (an older version's or a damaged
        # file's): the run logs it and reads again from ``start_date`` what it can no longer
        # tell apart (the eventID journal drops what was written before), never skips a file.
        self.unusable: list[str] = []
        if state is not None and not isinstance(state, dict):
            self.unusable.append(f"a JSON {type(state).__name__}, not an object")
        state = state if isinstance(state, dict) else {}
        start = datetime.datetime.combine(settings.start_date, datetime.time(), tzinfo=datetime.timezone.utc)
        self.overlap = datetime.timedelta(minutes=settings.overlap_minutes)
        newest = _parse_time(state.get("newest"))
        if state and newest is None:
            self.unusable.append(f"newest {state.get('newest')!r}")
        self.newest = newest or start
        recent = state.get("recent", [])
        if not isinstance(recent, list) or not all(isinstance(key, str) for key in recent):
            self.unusable.append(f"recent (a JSON {type(recent).__name__})")
            recent = [key for key in recent if isinstance(key, str)] if isinstance(recent, list) else []
        self.recent = set(recent)
        pending = state.get("pending", {})
        self.pending: dict[str, dict[str, Any]] = {}
        if isinstance(pending, dict):
            for key, entry in pending.items():
                self.pending[key] = self._pending_entry(key, entry)
        else:
            self.unusable.append(f"pending (a JSON {type(pending).__name__})")
        readable = bool(state) and not any(u.startswith(("newest", "pending (")) for u in self.unusable)
        self.cutoff = max(start, self.newest - self.overlap) if readable else start

    def _pending_entry(self, key: str, entry: Any) -> dict[str, Any]:
        """A pending file's entry as this version writes it; a value it cannot use is reset (the
        file is read again from its start), never the file dropped."""
        fixed = dict(entry) if isinstance(entry, dict) else {}
        bad = [] if isinstance(entry, dict) else ["entry"]
        for name in ("tries", "position"):
            try:
                fixed[name] = int(fixed.get(name) or 0)
            except (TypeError, ValueError):
                fixed[name] = 0
                bad.append(name)
        for name in ("since", "last", "error"):
            if name in fixed and not isinstance(fixed[name], str):
                del fixed[name]
                bad.append(name)
        if bad:
            fixed["position"] = 0
            self.unusable.append(f"pending {key}: {', '.join(bad)}")
        fixed.setdefault("since", _now().isoformat())
        return fixed

    def state(self) -> dict[str, Any]:
        return {"newest": self.newest.isoformat(), "recent": sorted(self.recent), "pending": self.pending}

    def due(self, now: datetime.datetime) -> list[str]:
        """Pending keys to try now (stopped ones first, then by key)."""
        due = []
        for key, entry in self.pending.items():
            tries = int(entry.get("tries") or 0)
            last = _parse_time(entry.get("last"))
            if not tries or last is None or now >= last + retry_delay(tries):
                due.append((tries > 0, key))
        return [key for _, key in sorted(due)]

    def position(self, key: str) -> int:
        return int(self.pending.get(key, {}).get("position") or 0)

    def read(self, key: str) -> None:
        self.pending.pop(key, None)
        self.recent.add(key)
        when = file_time(key)
        if when and when > self.newest:
            self.newest = when
        floor = self.newest - self.overlap
        self.recent = {k for k in self.recent if (file_time(k) or self.newest) >= floor}

    def failed(self, key: str, error: str, position: int) -> None:
        now = _now().isoformat()
        entry = self.pending.setdefault(key, {"since": now, "tries": 0})
        entry.update(tries=int(entry.get("tries") or 0) + 1, last=now, error=error, position=position)

    def stopped(self, key: str, position: int) -> None:
        entry = self.pending.setdefault(key, {"since": _now().isoformat(), "tries": 0})
        entry["position"] = position


def _parse_time(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None  # this version writes UTC times


def run(ctx: InputContext, settings: S3Settings) -> FileSummary:
    """One run of the input for one stanza."""
    store = ctx.checkpoints()
    seen = store.seen_ids("seen", settings.dedup_window)
    try:
        clients = AwsClients(ctx.aws)
        return S3Pipeline(settings, clients, ctx.sink, store, seen, ctx.log, ctx.deadline).run()
    finally:
        seen.close()


INPUT = InputKind("aws_cloudtrail_s3", parse_settings, run, check=check_bucket)
