"""``aws_cloudtrail_sqs``: CloudTrail log files announced on an SQS queue, to Splunk events.

The production path: S3 ObjectCreated notifications (raw, wrapped in SNS, or CloudTrail's own SNS
notification with its ``s3ObjectKey`` list) arrive on a queue; each named log file is streamed
from S3 and written record by record. A message is deleted only after every record of every file
it names has been handed to Splunk. A message that cannot be processed (unparseable body, object
missing or forbidden) is left alone: SQS redelivers it after its visibility timeout and, after
``maxReceiveCount`` receives, moves it to the queue's dead-letter queue. Redeliveries are
absorbed by eventID de-duplication. A message stopped mid-file (SIGTERM, the run's deadline, a
kill) stays with the forwarder that began it, which resumes at the record where it stopped
(``claims``): another forwarder on the queue never reads that file from its start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
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
from iamspike.ingest.checkpoint import DEFAULT_SEEN_CAPACITY, SeenIds
from iamspike.ingest.claims import Claims
from iamspike.ingest.cloudtrail_files import MAX_RECORD_BYTES, file_kind
from iamspike.ingest.context import InputContext, InputKind
from iamspike.ingest.delivery import FilePosition, LogFilePipeline
from iamspike.ingest.events import Deadline, EventSink, FileSummary, StopRun
from iamspike.ingest.notifications import NotificationError, parse_notification
from iamspike.ingest.settings import SettingsError, check_interval, check_queue_url, interval_seconds


@dataclass(frozen=True)
class SqsSettings:
    """The input's own settings (the AWS ones are the run's ``AwsSettings``)."""

    queue_url: str
    queue_arn: str
    batch_size: int = 10
    wait_seconds: int = 20
    visibility_timeout: int = 300
    max_record_bytes: int = MAX_RECORD_BYTES
    dedup_window: int = DEFAULT_SEEN_CAPACITY
    interval: int = 300


def parse_settings(params: Mapping[str, str]) -> SqsSettings:
    """A stanza -> ``SqsSettings``; ``ValueError`` with a one-line message if anything is bad."""
    check_interval(params.get("interval"))
    _, queue_arn = check_queue_url(params.get("queue_url") or "")
    return SqsSettings(
        queue_url=(params.get("queue_url") or "").strip(),
        queue_arn=queue_arn,
        batch_size=int_setting(params.get("batch_size"), "batch_size", 10, 1, 10),
        wait_seconds=int_setting(params.get("wait_seconds"), "wait_seconds", 20, 0, 20),
        visibility_timeout=int_setting(params.get("visibility_timeout"), "visibility_timeout", 300, 5, 43200),
        max_record_bytes=int_setting(
            params.get("max_record_bytes"), "max_record_bytes", MAX_RECORD_BYTES, 10_000, 100_000_000
        ),
        dedup_window=int_setting(
            params.get("dedup_window"), "dedup_window", DEFAULT_SEEN_CAPACITY, 1000, 5_000_000
        ),
        interval=interval_seconds(params.get("interval")),
    )


def aws_params(params: Mapping[str, str]) -> dict[str, str]:
    """The AWS settings' keys: ``region`` defaults to the queue URL's region."""
    region = (params.get("region") or "").strip()
    if not region:
        try:
            region = check_queue_url(params.get("queue_url") or "")[0]
        except SettingsError:
            region = ""  # parse_settings names the malformed URL
    return dict(params, region=region or "us-east-1")


def check_queue(settings: SqsSettings, aws: AwsSettings) -> None:
    """At validation: the queue exists and its endpoint answers (sqs:GetQueueAttributes)."""
    check_reachable(
        aws,
        "sqs",
        lambda sqs: sqs.get_queue_attributes(QueueUrl=settings.queue_url, AttributeNames=["QueueArn"]),
        "queue_url",
        f"queue {settings.queue_url} does not exist in {aws.region}",
        "sqs:GetQueueAttributes",
        settings.queue_arn,
    )


# What SQS answers a receipt handle that no longer holds its message: its visibility timeout ran
# out (this forwarder was stopped, SIGSTOP, or starved for longer) and SQS handed it on.
LOST_CODES = frozenset(
    ["ReceiptHandleIsInvalid", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"]
)


class MessageLost(Exception):
    """The message being read is no longer this forwarder's: reading its file stops."""


class _Visibility:
    """Keeps a message invisible while its files are read (extends before half the timeout).

    If an extension finds the message no longer held, ``keep`` stops the read (``MessageLost``)
    before the next chunk: the forwarder that holds it now reads the file, and this one writes
    no more of it than it had before it was stopped (and the chunk in hand)."""

    def __init__(
        self, sqs: Any, settings: SqsSettings, aws: AwsSettings, receipt: str, log: logging.Logger
    ) -> None:
        self.sqs = sqs
        self.settings = settings
        self.aws = aws
        self.receipt = receipt
        self.log = log
        self.last = time.monotonic()
        self.lost = ""  # the error code, once SQS said the receipt handle no longer holds it

    def keep(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.extend()
            if self.lost:
                raise MessageLost(self.lost)
            yield chunk

    def extend(self, force: bool = False, seconds: int | None = None) -> None:
        if not force and time.monotonic() - self.last < self.settings.visibility_timeout / 3:
            return
        timeout = self.settings.visibility_timeout if seconds is None else seconds
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.settings.queue_url, ReceiptHandle=self.receipt, VisibilityTimeout=timeout
            )
            self.last = time.monotonic()
        except AWS_ERRORS as exc:
            code = error_code(exc)
            if code in LOST_CODES or (
                code == "InvalidParameterValue" and "receipt handle" in str(exc).lower()
            ):
                self.lost = code  # SQS says "The receipt handle has expired" so
            self.log.warning(
                "%s", explain(exc, "sqs:ChangeMessageVisibility", self.settings.queue_arn, self.aws)
            )


class SqsPipeline(LogFilePipeline):
    """One run of the SQS input: take back what an earlier run held, then receive, read files,
    write events, delete, until the deadline."""

    def __init__(
        self,
        settings: SqsSettings,
        clients: AwsClients,
        sink: EventSink,
        seen: SeenIds,
        log: logging.Logger,
        deadline: Deadline,
        claims: Claims,
    ) -> None:
        super().__init__(settings.max_record_bytes, sink, seen, log, deadline)
        self.settings = settings
        self.aws = clients.settings
        self.clients = clients
        self.claims = claims
        self.sqs = clients.client("sqs")
        self._done: list[tuple[str, str]] = []  # (MessageId, ReceiptHandle) written, not yet deleted
        self._done_since = 0.0
        # A message stopped mid-file stays invisible until this forwarder's next run takes it back.
        self.hold = min(43200, max(settings.visibility_timeout, settings.interval) + 60)

    def run(self) -> FileSummary:
        failures = 0
        try:
            self._reclaim()
            while not self.deadline.expired():
                messages = self._receive()
                if messages is None:
                    failures += 1
                    if not self.deadline.sleep(min(60.0, 2.0**failures)):
                        break
                    continue
                failures = 0
                for position, message in enumerate(messages):
                    if self.deadline.expired():
                        self._release(messages[position:])
                        break
                    self.handle(message)
                    if (
                        self._done
                        and time.monotonic() - self._done_since > self.settings.visibility_timeout / 3
                    ):
                        self.delete_done()  # before a long batch lets them reappear
                self.delete_done()
        finally:
            self.delete_done()
        return self.stats

    def _reclaim(self) -> None:
        """Take back the messages an earlier run stopped in the middle of, and finish them."""
        for message_id, claim in self.claims.held():
            if self.deadline.expired():
                return
            where = f"record {claim.get('position', 0)} of {claim.get('source') or 'its first file'}"
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.settings.queue_url,
                    ReceiptHandle=claim["receipt"],
                    VisibilityTimeout=self.settings.visibility_timeout,
                )
            except AWS_ERRORS as exc:
                self.log.warning(
                    "message %s, stopped at %s by an earlier run, is no longer held by this forwarder"
                    " (%s): it resumes there if SQS hands it to this forwarder again; another"
                    " forwarder would read that file from its start",
                    message_id,
                    where,
                    explain(exc, "sqs:ChangeMessageVisibility", self.settings.queue_arn, self.aws),
                )
                self.claims.stopped(message_id, [], claim.get("source", ""), claim.get("position", 0), False)
                continue
            self.log.info("resuming message %s at %s", message_id, where)
            self.handle(
                {"MessageId": message_id, "ReceiptHandle": claim["receipt"], "Body": claim.get("body", "")}
            )
        self.delete_done()

    def _receive(self) -> list[dict[str, Any]] | None:
        wait = int(min(self.settings.wait_seconds, max(0.0, self.deadline.remaining() - 1)))
        try:
            with self.deadline.interruptible():
                response = self.sqs.receive_message(
                    QueueUrl=self.settings.queue_url,
                    MaxNumberOfMessages=self.settings.batch_size,
                    WaitTimeSeconds=wait,
                    VisibilityTimeout=self.settings.visibility_timeout,
                    AttributeNames=["ApproximateReceiveCount"],
                )
        except StopRun:
            return []
        except AWS_ERRORS as exc:
            self.stats.errors += 1
            self.log.error("%s", explain(exc, "sqs:ReceiveMessage", self.settings.queue_arn, self.aws))
            return None
        return response.get("Messages", [])

    def _release(self, messages: list[dict[str, Any]]) -> None:
        """Make messages we will not process this run visible again at once."""
        for message in messages:
            _Visibility(self.sqs, self.settings, self.aws, message["ReceiptHandle"], self.log).extend(True, 0)

    def handle(self, message: dict[str, Any]) -> bool:
        """Process one message; True if every file it names was written (or needs none).

        Such a message is deleted by ``delete_done`` (one DeleteMessageBatch per received batch:
        a request per message cost ~1.5 ms of CPU and an SQS request each); the others are left
        to SQS, for redelivery and the dead-letter queue, except one stopped mid-file, which
        this forwarder keeps (see ``claims``).
        """
        message_id = message.get("MessageId", "?")
        receipt = message["ReceiptHandle"]
        receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "1")
        body = message.get("Body", "")
        try:
            files = parse_notification(body)
        except NotificationError as exc:
            self.stats.errors += 1
            self.log.error(
                "message %s (received %s times) is not a notification: %s; left for the dead-letter queue",
                message_id,
                receives,
                exc,
            )
            return False
        logs = []
        for bucket, key, region in files:
            kind = file_kind(key)
            if kind in ("digest", "other"):
                self.log.debug("skipped %s file s3://%s/%s", kind, bucket, key)
            else:
                logs.append((bucket, key, region))
        if logs:
            claim = self.claims.get(message_id)  # an earlier run's, if it stopped in this message
            done_before = set(claim.get("done", []))
            self.claims.start(message_id, receipt, body)
            visibility = _Visibility(self.sqs, self.settings, self.aws, receipt, self.log)
            done: list[str] = []
            for bucket, key, region in logs:
                source = f"s3://{bucket}/{key}"
                if source in done_before:
                    continue
                at = FilePosition(claim.get("position", 0) if claim.get("source") == source else 0)
                outcome = self._read_file(bucket, key, region, visibility, message_id, receives, at)
                if outcome == "done":
                    done.append(source)
                    continue
                stopped = outcome == "stopped"
                self.claims.stopped(message_id, done, source, at.position, held=stopped)
                if stopped:
                    visibility.extend(True, self.hold)
                    self.log.info(
                        "stopped at record %d of %s: message %s stays with this forwarder (invisible"
                        " for %d s) and its next run resumes there",
                        at.position,
                        source,
                        message_id,
                        self.hold,
                    )
                return False
        if not self._done:
            self._done_since = time.monotonic()
        self._done.append((message_id, receipt))
        return True

    def delete_done(self) -> None:
        """Delete the messages ``handle`` finished (their events are Splunk's), in batches of 10."""
        while self._done:
            batch, self._done = self._done[:10], self._done[10:]
            entries = [{"Id": str(n), "ReceiptHandle": receipt} for n, (_, receipt) in enumerate(batch)]
            try:
                response = self.sqs.delete_message_batch(QueueUrl=self.settings.queue_url, Entries=entries)
            except AWS_ERRORS as exc:
                self.stats.errors += len(batch)
                self.log.error(
                    "%s; %d messages will be redelivered (their records are de-duplicated)",
                    explain(exc, "sqs:DeleteMessage", self.settings.queue_arn, self.aws),
                    len(batch),
                )
                continue
            for failed in response.get("Failed", []):
                self.stats.errors += 1
                self.log.error(
                    "could not delete message %s: %s %s; it will be redelivered (records de-duplicated)",
                    batch[int(failed["Id"])][0],
                    failed.get("Code", "?"),
                    failed.get("Message", ""),
                )
            deleted = [batch[int(entry["Id"])][0] for entry in response.get("Successful", [])]
            self.claims.finish(deleted)
            self.stats.messages += len(deleted)

    def _read_file(
        self,
        bucket: str,
        key: str,
        region: str,
        visibility: _Visibility,
        message_id: str,
        receives: str,
        at: FilePosition,
    ) -> str:
        """``done``, ``stopped`` (deadline or stop: ``at`` says where) or ``failed`` (logged)."""
        arn = f"arn:aws:s3:::{bucket}/{key}"
        try:
            done = self.write_object(
                self.clients.client("s3", region or None), bucket, key, visibility.keep, at
            )
        except MessageLost as exc:
            self.log.warning(
                "message %s is no longer held by this forwarder (%s: its visibility timeout ran out,"
                " this process was stopped or starved): stopped at record %d of s3://%s/%s, which"
                " the forwarder that received it again reads",
                message_id,
                exc,
                at.position,
                bucket,
                key,
            )
            return "failed"
        except AWS_ERRORS as exc:
            self.stats.errors += 1
            why = explain(exc, "s3:GetObject", arn, self.aws)
            if is_not_found(exc):
                why += "; the object was deleted after its notification"
            self.log.error(
                "%s; message %s (received %s times) left for the dead-letter queue", why, message_id, receives
            )
            return "failed"
        return "done" if done else "stopped"


def run(ctx: InputContext, settings: SqsSettings) -> FileSummary:
    """One run of the input for one stanza."""
    store = ctx.checkpoints()
    seen = store.seen_ids("seen", settings.dedup_window)
    try:
        clients = AwsClients(ctx.aws)
        return SqsPipeline(settings, clients, ctx.sink, seen, ctx.log, ctx.deadline, Claims(store)).run()
    finally:
        seen.close()


INPUT = InputKind("aws_cloudtrail_sqs", parse_settings, run, aws_params, check_queue)
