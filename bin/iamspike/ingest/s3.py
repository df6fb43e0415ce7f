"""``aws_cloudtrail_s3``: walk a trail bucket by prefix, from a start date, then incrementally.

Layout: ``[prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>`` and, for an
organization trail, ``[prefix/]AWSLogs/<o-org id>/<account>/CloudTrail/...``; Insights files
under ``CloudTrail-Insight/`` (sourcetype ``aws:cloudtrail:insight``), digests skipped.

Each (account, region, kind) folder is a stream with its own checkpoint: the newest file time
read and the keys read within ``overlap_minutes`` of it. A run lists each stream from the day of
(newest - overlap) with a paginator and ``StartAfter``, reads the files not read yet in key order
(file names carry their delivery time), and saves the checkpoint after each file's events are
handed to Splunk. A kill between a flush and the checkpoint re-reads one file next run; its
records are dropped by the eventID de-duplication.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from iamspike.ingest.aws import AWS_ERRORS, AwsClients, AwsSettings, explain, int_setting, parse_aws_settings
from iamspike.ingest.checkpoint import DEFAULT_SEEN_CAPACITY, CheckpointStore, SeenIds
from iamspike.ingest.cloudtrail_files import MAX_RECORD_BYTES, LogFilePipeline, file_kind
from iamspike.ingest.events import Deadline, EventSink, RunStats
from iamspike.ingest.settings import SettingsError, check_interval, check_no_clear_secret, check_start_date

KINDS = ("CloudTrail", "CloudTrail-Insight")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ACCOUNT = re.compile(r"^\d{12}$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_FILE_TIME = re.compile(r"_(\d{8}T\d{4})Z_")
_DAY = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/[^/]+$")


@dataclass(frozen=True)
class S3Settings:
    aws: AwsSettings
    bucket: str
    prefix: str
    start_date: datetime.date
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    overlap_minutes: int = 60
    max_record_bytes: int = MAX_RECORD_BYTES
    dedup_window: int = DEFAULT_SEEN_CAPACITY


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def parse_settings(params: Mapping[str, str], aws: AwsSettings | None = None) -> S3Settings:
    """A stanza -> ``S3Settings``; ``ValueError`` with a one-line message if anything is bad."""
    check_no_clear_secret(params)
    check_interval(params.get("interval"))
    bucket = (params.get("bucket") or "").strip()
    if not _BUCKET.match(bucket):
        raise SettingsError(f"bucket {bucket!r} is not an S3 bucket name")
    accounts = _csv(params.get("accounts"))
    for account in accounts:
        if not _ACCOUNT.match(account):
            raise SettingsError(f"accounts: {account!r} is not a 12-digit AWS account id")
    aws = aws or parse_aws_settings(params)
    prefix = (params.get("prefix") or "").strip().strip("/")
    return S3Settings(
        aws=aws,
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

    def run(self) -> RunStats:
        try:
            streams = self.streams()
        except AWS_ERRORS as exc:
            self.stats.errors += 1
            self.log.error("%s", explain(exc, "s3:ListBucket", self.bucket_arn, self.settings.aws))
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
                self.log.error("%s", explain(exc, "s3:ListBucket", self.bucket_arn, self.settings.aws))
        return self.stats

    def read_stream(self, stream: str) -> None:
        state = self.store.load("stream-" + stream, None) or {}
        start = datetime.datetime.combine(
            self.settings.start_date, datetime.time(), tzinfo=datetime.timezone.utc
        )
        overlap = datetime.timedelta(minutes=self.settings.overlap_minutes)
        newest = _parse_time(state.get("newest")) or start
        recent = set(state.get("recent", []))
        cutoff = max(start, newest - overlap) if state else start
        paginator = self.s3.get_paginator("list_objects_v2")
        start_after = stream + cutoff.strftime("%Y/%m/%d/")
        for page in paginator.paginate(
            Bucket=self.settings.bucket, Prefix=stream, StartAfter=start_after[:-1]
        ):
            for item in page.get("Contents", []):
                key = item["Key"]
                when = file_time(key)
                if key in recent or file_kind(key) in ("digest", "other") or (when and when < cutoff):
                    continue
                if self.deadline.expired():
                    return
                if not self.read_file(key):
                    continue
                recent.add(key)
                if when and when > newest:
                    newest = when
                floor = newest - overlap
                recent = {k for k in recent if (file_time(k) or newest) >= floor}
                self.store.save("stream-" + stream, {"newest": newest.isoformat(), "recent": sorted(recent)})

    def read_file(self, key: str) -> bool:
        try:
            return self.write_object(self.s3, self.settings.bucket, key)
        except AWS_ERRORS as exc:
            self.stats.errors += 1
            arn = f"arn:aws:s3:::{self.settings.bucket}/{key}"
            self.log.error("%s; will retry next run", explain(exc, "s3:GetObject", arn, self.settings.aws))
            return False


def _parse_time(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def stream(ctx: Any) -> RunStats:
    """Run the input once for one stanza (``ctx``: see ``iamspike_splunk.modinput.InputContext``)."""
    settings = parse_settings(ctx.params, ctx.aws_settings())
    store = ctx.checkpoints()
    seen = store.seen_ids("seen", settings.dedup_window)
    try:
        pipeline = S3Pipeline(
            settings, AwsClients(settings.aws), ctx.sink, store, seen, ctx.log, ctx.deadline
        )
        stats = pipeline.run()
    finally:
        seen.close()
    ctx.log.info("%s", stats.summary(ctx.index))
    return stats
