"""``aws_cloudtrail_sqs``: CloudTrail log files announced on an SQS queue, to Splunk events.

The production path: S3 ObjectCreated notifications (raw, wrapped in SNS, or CloudTrail's own SNS
notification with its ``s3ObjectKey`` list) arrive on a queue; each named log file is streamed
from S3 and written record by record. A message is deleted only after every record of every file
it names has been handed to Splunk. A message that cannot be processed (unparseable body, object
missing or forbidden) is left alone: SQS redelivers it after its visibility timeout and, after
``maxReceiveCount`` receives, moves it to the queue's dead-letter queue. Redeliveries (and many
forwarders on one queue) are absorbed by eventID de-duplication.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from iamspike.ingest.aws import (
    AWS_ERRORS,
    AwsClients,
    AwsSettings,
    explain,
    int_setting,
    is_not_found,
    parse_aws_settings,
)
from iamspike.ingest.checkpoint import DEFAULT_SEEN_CAPACITY, SeenIds
from iamspike.ingest.cloudtrail_files import MAX_RECORD_BYTES, LogFilePipeline, file_kind
from iamspike.ingest.events import Deadline, EventSink, RunStats, StopRun
from iamspike.ingest.settings import check_interval, check_no_clear_secret, check_queue_url


class NotificationError(ValueError):
    """A message body that is not an S3 / SNS / CloudTrail notification."""


@dataclass(frozen=True)
class SqsSettings:
    aws: AwsSettings
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    wait_seconds: int = 20
    visibility_timeout: int = 300
    max_record_bytes: int = MAX_RECORD_BYTES
    dedup_window: int = DEFAULT_SEEN_CAPACITY


def parse_settings(params: Mapping[str, str], aws: AwsSettings | None = None) -> SqsSettings:
    """A stanza -> ``SqsSettings``; ``ValueError`` with a one-line message if anything is bad."""
    check_no_clear_secret(params)
    check_interval(params.get("interval"))
    region, queue_arn = check_queue_url(params.get("queue_url") or "")
    if aws is None:
        aws = parse_aws_settings(dict(params, region=params.get("region") or region or "us-east-1"))
    elif region and not params.get("region"):
        aws = parse_aws_settings(dict(params, region=region), aws.access_key_id, aws.secret_access_key)
    return SqsSettings(
        aws=aws,
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
    )


def parse_notification(body: str) -> list[tuple[str, str, str]]:
    """The (bucket, key, region) log files a message names; [] for ``s3:TestEvent``.

    Accepts raw S3 event notifications, the same wrapped in an SNS envelope, CloudTrail's own
    SNS notification (``{"s3Bucket": ..., "s3ObjectKey": [...]}``) and S3 events delivered by
    EventBridge (``"source": "aws.s3"``, ``"detail-type": "Object Created"``). S3 event
    notification keys are URL-encoded (decoded with unquote_plus); CloudTrail's and
    EventBridge's are not.
    """
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification" and "Message" in message:
            inner = message["Message"]
            message = json.loads(inner) if isinstance(inner, str) else inner
    except (TypeError, ValueError) as exc:
        raise NotificationError(f"body is not JSON ({exc})") from None
    if not isinstance(message, dict):
        raise NotificationError("body is not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    if message.get("source") == "aws.s3" and isinstance(message.get("detail"), dict):
        return _eventbridge_files(message)
    if "s3ObjectKey" in message and "s3Bucket" in message:
        keys = message["s3ObjectKey"]
        keys = [keys] if isinstance(keys, str) else keys
        return [(str(message["s3Bucket"]), str(key), "") for key in keys]
    records = message.get("Records")
    if isinstance(records, list):
        found = []
        for record in records:
            s3 = record.get("s3") if isinstance(record, dict) else None
            if not isinstance(s3, dict):
                raise NotificationError("a record without an s3 section")
            if not str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
                continue
            bucket = s3.get("bucket", {}).get("name")
            key = s3.get("object", {}).get("key")
            if not bucket or key is None:
                raise NotificationError("an s3 record without bucket name or object key")
            found.append((str(bucket), unquote_plus(str(key)), str(record.get("awsRegion") or "")))
        return found
    raise NotificationError("neither an S3 event, an SNS notification nor a CloudTrail notification")


def _eventbridge_files(message: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The file of an S3 event delivered by EventBridge; [] for other S3 events (deletions, ...).

    The key is used as is: AWS's "EventBridge event message structure" page (S3 user guide,
    ev-events) documents ``detail.bucket.name`` and ``detail.object.key`` without the note its
    S3 event notification page carries ("the object key name value is URL encoded"), and
    EventBridge events seen in the wild carry raw keys (``raw/x/2023-08-08T14:03:40.5.zip``,
    where a notification would have ``%3A``). Decoding here would corrupt keys holding ``+``
    or ``%``.
    """
    if message.get("detail-type") != "Object Created":
        return []
    detail = message["detail"]
    bucket = detail.get("bucket")
    item = detail.get("object")
    name = bucket.get("name") if isinstance(bucket, dict) else None
    key = item.get("key") if isinstance(item, dict) else None
    if not name or not isinstance(key, str) or not key:
        raise NotificationError("an EventBridge S3 event without detail.bucket.name or detail.object.key")
    return [(str(name), key, str(message.get("region") or ""))]


class _Visibility:
    """Keeps a message invisible while its files are read (extends before half the timeout)."""

    def __init__(self, sqs: Any, settings: SqsSettings, receipt: str, log: logging.Logger) -> None:
        self.sqs = sqs
        self.settings = settings
        self.receipt = receipt
        self.log = log
        self.last = time.monotonic()

    def keep(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.extend()
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
            self.log.warning(
                "%s", explain(exc, "sqs:ChangeMessageVisibility", self.settings.queue_arn, self.settings.aws)
            )


class SqsPipeline(LogFilePipeline):
    """One run of the SQS input: receive, read files, write events, delete, until the deadline."""

    def __init__(
        self,
        settings: SqsSettings,
        clients: AwsClients,
        sink: EventSink,
        seen: SeenIds,
        log: logging.Logger,
        deadline: Deadline,
    ) -> None:
        super().__init__(settings.max_record_bytes, sink, seen, log, deadline)
        self.settings = settings
        self.clients = clients
        self.sqs = clients.client("sqs")
        self._done: list[tuple[str, str]] = []  # (MessageId, ReceiptHandle) written, not yet deleted
        self._done_since = 0.0

    def run(self) -> RunStats:
        failures = 0
        try:
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
            self.log.error(
                "%s", explain(exc, "sqs:ReceiveMessage", self.settings.queue_arn, self.settings.aws)
            )
            return None
        return response.get("Messages", [])

    def _release(self, messages: list[dict[str, Any]]) -> None:
        """Make messages we will not process this run visible again at once."""
        for message in messages:
            _Visibility(self.sqs, self.settings, message["ReceiptHandle"], self.log).extend(True, 0)

    def handle(self, message: dict[str, Any]) -> bool:
        """Process one message; True if every file it names was written (or needs none).

        Such a message is deleted by ``delete_done`` (one DeleteMessageBatch per received batch:
        a request per message cost ~1.5 ms of CPU and an SQS request each); the others are left
        to SQS, for redelivery and the dead-letter queue.
        """
        message_id = message.get("MessageId", "?")
        receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "1")
        try:
            files = parse_notification(message.get("Body", ""))
        except NotificationError as exc:
            self.stats.errors += 1
            self.log.error(
                "message %s (received %s times) is not a notification: %s; left for the dead-letter queue",
                message_id,
                receives,
                exc,
            )
            return False
        visibility = _Visibility(self.sqs, self.settings, message["ReceiptHandle"], self.log)
        for bucket, key, region in files:
            kind = file_kind(key)
            if kind in ("digest", "other"):
                self.log.debug("skipped %s file s3://%s/%s", kind, bucket, key)
                continue
            if not self._read_file(bucket, key, region, visibility, message_id, receives):
                return False
        if not self._done:
            self._done_since = time.monotonic()
        self._done.append((message_id, message["ReceiptHandle"]))
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
                    explain(exc, "sqs:DeleteMessage", self.settings.queue_arn, self.settings.aws),
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
            self.stats.messages += len(response.get("Successful", []))

    def _read_file(
        self, bucket: str, key: str, region: str, visibility: _Visibility, message_id: str, receives: str
    ) -> bool:
        source = f"s3://{bucket}/{key}"
        arn = f"arn:aws:s3:::{bucket}/{key}"
        try:
            done = self.write_object(self.clients.client("s3", region or None), bucket, key, visibility.keep)
        except AWS_ERRORS as exc:
            self.stats.errors += 1
            why = explain(exc, "s3:GetObject", arn, self.settings.aws)
            if is_not_found(exc):
                why += "; the object was deleted after its notification"
            self.log.error(
                "%s; message %s (received %s times) left for the dead-letter queue", why, message_id, receives
            )
            return False
        if not done:
            self.log.info("deadline or stop while reading %s; its message will be retried", source)
            visibility.extend(True, 0)
        return done


def stream(ctx: Any) -> RunStats:
    """Run the input once for one stanza (``ctx``: see ``iamspike_splunk.modinput.InputContext``)."""
    settings = parse_settings(ctx.params, ctx.aws_settings())
    seen = ctx.checkpoints().seen_ids("seen", settings.dedup_window)
    try:
        pipeline = SqsPipeline(settings, AwsClients(settings.aws), ctx.sink, seen, ctx.log, ctx.deadline)
        stats = pipeline.run()
    finally:
        seen.close()
    ctx.log.info("%s", stats.summary(ctx.index))
    return stats
