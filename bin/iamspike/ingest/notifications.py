"""What an SQS message of the ``aws_cloudtrail_sqs`` input names: the S3 log files to read.

Raw S3 event notifications, the same wrapped in SNS, CloudTrail's own SNS notification and S3
events routed by EventBridge; ``s3:TestEvent`` and S3 events other than object creation name
nothing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus


class NotificationError(ValueError):
    """A message body that is not an S3 / SNS / CloudTrail notification."""


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
