"""aws_cloudtrail_sqs core: notifications parsed, files written, messages deleted only when done."""

from __future__ import annotations

import json
import logging

import pytest
from iamspike.ingest.aws import AwsClients, AwsSettings
from iamspike.ingest.checkpoint import CheckpointStore
from iamspike.ingest.claims import Claims
from iamspike.ingest.events import Deadline
from iamspike.ingest.notifications import NotificationError, parse_notification
from iamspike.ingest.settings import SettingsError, read_shared
from iamspike.ingest.sqs import INPUT, SqsPipeline, check_queue, parse_settings
from standin.fixtures_aws import RecordingSink, log_file, log_key, make_queue, make_records

LOG = logging.getLogger("test.sqs")


def s3_event(bucket: str, key: str, name: str = "ObjectCreated:Put") -> dict:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": name,
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}},
            }
        ]
    }


def test_raw_s3_event_keys_are_url_decoded():
    body = json.dumps(s3_event("trail", "AWSLogs/1/a+b%3Dc%2Bd.json.gz"))
    assert parse_notification(body) == [("trail", "AWSLogs/1/a b=c+d.json.gz", "us-east-1")]


def test_sns_wrapped_s3_event():
    body = json.dumps(
        {"Type": "Notification", "MessageId": "m", "Message": json.dumps(s3_event("t", "k%20x"))}
    )
    assert parse_notification(body) == [("t", "k x", "us-east-1")]


def test_cloudtrail_sns_notification_lists_keys_unencoded():
    message = {"s3Bucket": "trail", "s3ObjectKey": ["AWSLogs/1/a+b.json.gz", "AWSLogs/1/c.json.gz"]}
    body = json.dumps({"Type": "Notification", "Message": json.dumps(message)})
    assert parse_notification(body) == [
        ("trail", "AWSLogs/1/a+b.json.gz", ""),
        ("trail", "AWSLogs/1/c.json.gz", ""),
    ]


def eventbridge_event(bucket: str, key: str, detail_type: str = "Object Created") -> dict:
    """An S3 event as EventBridge delivers it to an SQS target (the shape of AWS's S3 user guide)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2023-08-26T20:35:00Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "cloudtrail.amazonaws.com",
            "reason": "PutObject",
        },
    }


def test_eventbridge_object_created_keys_are_taken_as_they_are():
    key = "AWSLogs/1/a+b%3D c.json.gz"  # '+' and '%' stay: EventBridge keys are not URL-encoded
    assert parse_notification(json.dumps(eventbridge_event("trail", key))) == [("trail", key, "eu-west-1")]
    sns = {"Type": "Notification", "Message": json.dumps(eventbridge_event("t", "k.json.gz"))}
    assert parse_notification(json.dumps(sns)) == [("t", "k.json.gz", "eu-west-1")]


def test_other_eventbridge_s3_events_name_no_file():
    for detail_type in ("Object Deleted", "Object Restore Completed", "Object Tags Added"):
        assert parse_notification(json.dumps(eventbridge_event("b", "k", detail_type))) == []


def test_an_eventbridge_object_created_event_without_a_key_is_not_a_notification():
    event = eventbridge_event("b", "k")
    del event["detail"]["object"]
    with pytest.raises(NotificationError, match=r"detail\.object\.key"):
        parse_notification(json.dumps(event))


def test_test_events_and_deletions_name_no_file():
    assert (
        parse_notification(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})) == []
    )
    assert parse_notification(json.dumps(s3_event("b", "k", "ObjectRemoved:Delete"))) == []


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"hello": "world"}', '{"Records": [{"x": 1}]}'])
def test_other_bodies_are_not_notifications(body):
    with pytest.raises(NotificationError):
        parse_notification(body)


def test_settings_take_the_region_from_the_queue_url():
    params = {"queue_url": "https://sqs.eu-west-3.amazonaws.com/123456789012/q"}
    settings = parse_settings(params)
    assert settings.queue_arn == "arn:aws:sqs:eu-west-3:123456789012:q"
    assert read_shared(params, "", INPUT).aws.region == "eu-west-3"
    assert read_shared({**params, "region": "eu-west-1"}, "", INPUT).aws.region == "eu-west-1"
    with pytest.raises(ValueError, match="batch_size"):
        parse_settings(
            {"queue_url": "https://sqs.eu-west-3.amazonaws.com/123456789012/q", "batch_size": "11"}
        )


def test_the_validation_check_accepts_a_queue_that_exists_and_names_one_that_does_not(
    aws_clients, unique_name, moto_server
):
    queue = make_queue(aws_clients, unique_name)
    aws = AwsSettings(endpoint_urls={"default": moto_server}, access_key_id="AKIAIOSFODNN7EXAMPLE")
    check_queue(parse_settings({"queue_url": queue}), aws)
    missing = queue + "-gone"
    with pytest.raises(SettingsError) as info:
        check_queue(parse_settings({"queue_url": missing}), aws)
    assert str(info.value).startswith(f"queue_url: queue {missing} does not exist in us-east-1 (")


@pytest.mark.parametrize(
    ("status", "code", "refused"),
    [
        (403, "AccessDenied", ""),  # the check's own permission, not one the input needs
        (400, "ThrottlingException", ""),
        (500, "InternalError", ""),
        (403, "InvalidClientTokenId", "queue_url: InvalidClientTokenId: AWS rejected the credentials"),
        (400, "InvalidAddress", "queue_url: InvalidAddress (HTTP 400) from sqs:GetQueueAttributes"),
    ],
)
def test_the_validation_check_refuses_only_what_stops_the_input(
    aws_clients, unique_name, fault_proxy, status, code, refused
):
    queue = make_queue(aws_clients, unique_name)
    fault_proxy.add(target="GetQueueAttributes", status=status, code=code)
    aws = AwsSettings(endpoint_urls={"default": fault_proxy.url}, access_key_id="AKIAIOSFODNN7EXAMPLE")
    if not refused:
        check_queue(parse_settings({"queue_url": queue}), aws)
        return
    with pytest.raises(SettingsError) as info:
        check_queue(parse_settings({"queue_url": queue}), aws)
    assert str(info.value).startswith(refused) and "\n" not in str(info.value)


@pytest.fixture
def trail(aws_clients, unique_name, moto_server, tmp_path):
    """A bucket notifying a queue (with a DLQ after 2 receives) and a pipeline factory on them."""
    s3 = aws_clients("s3")
    s3.create_bucket(Bucket=unique_name)
    queue = make_queue(aws_clients, unique_name, bucket=unique_name, dlq_after=2)

    def pipeline(
        seconds: float = 3.0, forwarder: str = "a", sink: RecordingSink | None = None, **params
    ) -> tuple[SqsPipeline, RecordingSink]:
        params = {"queue_url": queue, "wait_seconds": "1", "visibility_timeout": "30", **params}
        settings = parse_settings(params)
        aws = AwsSettings(
            endpoint_urls={"default": moto_server},
            access_key_id="AKIAIOSFODNN7EXAMPLE",
            secret_access_key="x",
        )
        sink = sink or RecordingSink()
        store = CheckpointStore(str(tmp_path / forwarder), "aws_cloudtrail_sqs://t")
        seen = store.seen_ids()
        deadline = getattr(sink, "deadline", None) or Deadline(seconds)
        clients = AwsClients(aws)
        return SqsPipeline(settings, clients, sink, seen, LOG, deadline, Claims(store)), sink

    return {"bucket": unique_name, "queue": queue, "s3": s3, "sqs": aws_clients("sqs"), "pipeline": pipeline}


def queue_depth(trail, queue=None) -> int:
    attributes = trail["sqs"].get_queue_attributes(QueueUrl=queue or trail["queue"], AttributeNames=["All"])
    values = attributes["Attributes"]
    return int(values["ApproximateNumberOfMessages"]) + int(values["ApproximateNumberOfMessagesNotVisible"])


def test_files_are_written_and_their_messages_deleted(trail):
    trail["s3"].put_object(
        Bucket=trail["bucket"], Key=log_key("20230826T2035Z", "a"), Body=log_file(make_records(50))
    )
    trail["s3"].put_object(
        Bucket=trail["bucket"],
        Key=log_key("20230826T2040Z", "b"),
        Body=log_file(make_records(30, prefix="b")),
    )
    digest = (
        "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2023/08/26/x_CloudTrail-Digest_us-east-1_x.json.gz"
    )
    trail["s3"].put_object(Bucket=trail["bucket"], Key=digest, Body=b"{}")
    pipeline, sink = trail["pipeline"]()
    stats = pipeline.run()
    assert sorted(sink.event_ids()) == sorted([f"ev-{n}" for n in range(50)] + [f"b-{n}" for n in range(30)])
    assert stats.files == 2 and stats.messages == 4  # TestEvent + 2 logs + digest, all deleted
    assert queue_depth(trail) == 0


def test_a_redelivered_file_is_not_written_twice(trail):
    key = log_key("20230826T2035Z", "a")
    trail["s3"].put_object(Bucket=trail["bucket"], Key=key, Body=log_file(make_records(20)))
    pipeline, sink = trail["pipeline"]()
    pipeline.run()
    body = json.dumps(s3_event(trail["bucket"], key))
    trail["sqs"].send_message(QueueUrl=trail["queue"], MessageBody=body)
    again, sink2 = trail["pipeline"]()
    stats = again.run()
    assert len(sink.event_ids()) == 20 and sink2.event_ids() == [] and stats.duplicates == 20
    assert queue_depth(trail) == 0


def test_poison_and_missing_object_messages_are_left_for_the_dlq(trail, caplog):
    trail["sqs"].send_message(QueueUrl=trail["queue"], MessageBody="this is not a notification")
    trail["sqs"].send_message(
        QueueUrl=trail["queue"], MessageBody=json.dumps(s3_event(trail["bucket"], "gone.json.gz"))
    )
    pipeline, _ = trail["pipeline"](visibility_timeout="30")
    stats = pipeline.run()
    assert stats.messages == 1 and stats.errors == 2  # only the TestEvent was deleted
    assert queue_depth(trail) == 2
    assert "not a notification" in caplog.text and "left for the dead-letter queue" in caplog.text
    assert "NoSuchKey" in caplog.text and "deleted after its notification" in caplog.text


def test_finished_messages_are_deleted_in_one_batch_and_a_failed_deletion_is_logged(trail, caplog):
    for name in ("a", "b", "c"):
        trail["s3"].put_object(
            Bucket=trail["bucket"],
            Key=log_key("20230826T2035Z", name),
            Body=log_file(make_records(3, prefix=name)),
        )
    pipeline, sink = trail["pipeline"]()
    calls = []
    delete_batch = pipeline.sqs.delete_message_batch
    pipeline.sqs.delete_message_batch = lambda **kwargs: calls.append(kwargs) or delete_batch(**kwargs)
    stats = pipeline.run()
    assert len(sink.event_ids()) == 9 and queue_depth(trail) == 0
    assert stats.messages == 4  # the TestEvent and three log files
    assert sum(len(call["Entries"]) for call in calls) == 4 and len(calls) < 4  # batched
    pipeline._done.append(("m-bogus", "not-a-receipt-handle"))
    pipeline.delete_done()
    assert stats.errors == 1 and "could not delete message m-bogus" in caplog.text


class StoppingSink(RecordingSink):
    """Sets its run's stop flag (SIGTERM, or the deadline) after ``flushes`` flushes."""

    def __init__(self, flushes: int) -> None:
        super().__init__()
        self.deadline = Deadline(60)
        self.stop_after = flushes

    def flush(self) -> None:
        super().flush()
        if self.flushes == self.stop_after:
            self.deadline.stop.set()


def test_a_stop_mid_file_keeps_the_message_and_the_next_run_resumes_at_the_record(trail, caplog):
    caplog.set_level(logging.INFO)
    key = log_key("20230826T2035Z", "big")
    trail["s3"].put_object(Bucket=trail["bucket"], Key=key, Body=log_file(make_records(3000, noise=True)))
    first, stopped = trail["pipeline"](sink=StoppingSink(2))
    first.run()
    written = stopped.event_ids()
    assert 0 < len(written) < 3000 and "stays with this forwarder" in caplog.text
    other, other_sink = trail["pipeline"](forwarder="b", seconds=2)  # a second forwarder on the queue
    other.run()
    assert other_sink.event_ids() == []  # the message stays invisible to it
    again, rest = trail["pipeline"]()  # the first forwarder's next run
    again.run()
    assert written + rest.event_ids() == [f"ev-{n}" for n in range(3000)]
    assert "resuming message" in caplog.text and again.stats.duplicates == 0  # from the position
    assert queue_depth(trail) == 0 and again.claims.items == {}


def test_a_claim_no_longer_held_is_resumed_if_the_message_comes_back(trail, caplog):
    key = log_key("20230826T2035Z", "big")
    trail["s3"].put_object(Bucket=trail["bucket"], Key=key, Body=log_file(make_records(3000, noise=True)))
    first, stopped = trail["pipeline"](sink=StoppingSink(1))
    first.run()
    ((message_id, claim),) = first.claims.held()
    trail["sqs"].change_message_visibility(
        QueueUrl=trail["queue"], ReceiptHandle=claim["receipt"], VisibilityTimeout=0
    )  # the hold ran out before the restart
    first.claims.items[message_id]["receipt"] = "no-longer-valid"
    first.claims._save()
    again, rest = trail["pipeline"]()
    again.run()
    assert "is no longer held by this forwarder" in caplog.text
    assert stopped.event_ids() + rest.event_ids() == [f"ev-{n}" for n in range(3000)]
    assert queue_depth(trail) == 0
