"""Writing a log file's records to Splunk: small batches, de-dup, resume positions, damage."""

from __future__ import annotations

import logging

from iamspike.ingest.checkpoint import SeenIds
from iamspike.ingest.delivery import FLUSH_BYTES, FLUSH_EVENTS, FilePosition, record_id, write_file
from iamspike.ingest.events import Deadline, FileSummary
from standin.fixtures_aws import RecordingSink, log_file, make_records

LOG = logging.getLogger("test")


def test_record_id_falls_back_to_a_hash():
    assert record_id("{}", {"eventID": "abc"}) == "abc"
    assert record_id('{"a":1}', {"a": 1}).startswith("sha1:")
    assert record_id('{"a":1}', {"a": 1}) != record_id('{"a":2}', {"a": 2})


def test_write_file_drops_known_ids_and_journals_only_flushed_ones(tmp_path):
    seen = SeenIds(str(tmp_path / "seen"), 10_000)
    seen.add_all(["ev-1"])
    sink, stats = RecordingSink(), FileSummary()
    records = make_records(5000) + make_records(1)  # ev-0 twice in one file
    done = write_file([log_file(records)], "s3://b/k.json.gz", sink, seen, stats, LOG)
    assert done and stats.files == 1
    ids = sink.event_ids()
    assert len(ids) == len(set(ids)) == 4999 and "ev-1" not in ids
    assert stats.events == 4999 and stats.duplicates == 2
    assert sink.flushes >= 3  # flushed in batches, not once at the end
    assert all(event[2] == "s3://b/k.json.gz" and event[3] == "aws:cloudtrail" for event in sink.flushed)
    assert sink.flushed[0][1] == 1693080000.0
    seen.close()
    again = SeenIds(str(tmp_path / "seen"), 10_000)
    assert all(event_id in again for event_id in ids)


def test_write_file_skips_a_damaged_file_and_counts_it(tmp_path, caplog):
    seen, sink, stats = SeenIds(str(tmp_path / "seen")), RecordingSink(), FileSummary()
    assert write_file([b"not gzip"], "s3://b/bad", sink, seen, stats, LOG) is True
    assert stats.skipped_files == 1 and not sink.flushed
    assert "s3://b/bad" in caplog.text and "neither gzip nor JSON" in caplog.text


def test_a_stop_cuts_a_slow_download_short_and_keeps_what_was_read(tmp_path):
    seen, sink, stats = SeenIds(str(tmp_path / "seen")), RecordingSink(), FileSummary()
    deadline = Deadline(60)
    data = log_file(make_records(5000))

    def slow_download():
        half = len(data) // 2
        yield data[:half]
        deadline.stop.set()  # SIGTERM arrives while the rest is being downloaded
        yield data[half:]

    done = write_file(slow_download(), "s3://b/k", sink, seen, stats, LOG, deadline)
    assert done is False and 0 < len(sink.flushed) < 5000 and not sink.pending
    assert all(event_id in seen for event_id in sink.event_ids())


def test_insight_files_get_their_sourcetype(tmp_path):
    seen, sink = SeenIds(str(tmp_path / "seen")), RecordingSink()
    key = "s3://b/AWSLogs/1/CloudTrail-Insight/us-east-1/2023/08/26/1_CloudTrail-Insight_us-east-1_x.json.gz"
    write_file([log_file(make_records(2))], key, sink, seen, FileSummary(), LOG)
    assert {event[3] for event in sink.flushed} == {"aws:cloudtrail:insight"}


def test_batches_are_bounded_in_events_and_bytes(tmp_path):
    small = make_records(2 * FLUSH_EVENTS + 10, prefix="s")
    large = make_records(40, prefix="l", requestParameters={"policy": "p" * 20_000})
    seen, sink = SeenIds(str(tmp_path / "seen")), BatchSink()
    write_file([log_file(small + large)], "s3://b/k", sink, seen, FileSummary(), LOG)
    assert sum(len(batch) for batch in sink.batches) == len(small) + len(large)
    assert max(len(batch) for batch in sink.batches) <= FLUSH_EVENTS
    largest = max(len(text) for batch in sink.batches for text in batch)
    assert max(sum(len(text) for text in batch) for batch in sink.batches) < FLUSH_BYTES + largest
    assert len(sink.batches) >= 2 + 40 * 20_000 // FLUSH_BYTES


class BatchSink(RecordingSink):
    """Keeps each flush's event texts apart."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def flush(self) -> None:
        self.batches.append([event[0] for event in self.pending])
        super().flush()


def test_a_stopped_file_resumes_at_its_position_without_the_journal(tmp_path):
    data = log_file(make_records(3000))
    deadline = Deadline(60)

    def stopped_half_way():
        yield data[: len(data) // 2]
        deadline.stop.set()
        yield data[len(data) // 2 :]

    first, at = RecordingSink(), FilePosition()
    seen = SeenIds(str(tmp_path / "a"))
    assert (
        write_file(stopped_half_way(), "s3://b/k", first, seen, FileSummary(), LOG, deadline, at=at) is False
    )
    assert at.position == len(first.flushed) > 0
    # Another journal (none of the first run's ids): the position alone avoids re-sending.
    rest, stats = RecordingSink(), FileSummary()
    done = write_file([data], "s3://b/k", rest, SeenIds(str(tmp_path / "b")), stats, LOG, at=at)
    assert done and at.position == 3000 and stats.duplicates == 0
    assert first.event_ids() + rest.event_ids() == [f"ev-{n}" for n in range(3000)]


def test_a_damaged_file_keeps_its_intact_records_and_one_line_says_where(tmp_path, caplog):
    data = log_file(make_records(3000, noise=True))
    seen, sink, stats = SeenIds(str(tmp_path / "seen")), RecordingSink(), FileSummary()
    assert write_file([data[: len(data) // 2]], "s3://b/cut", sink, seen, stats, LOG) is True
    ids = sink.event_ids()
    assert ids == [f"ev-{n}" for n in range(len(ids))] and stats.skipped_files == 1
    lines = [r.getMessage() for r in caplog.records if "s3://b/cut" in r.getMessage()]
    assert len(lines) == 1
    assert f"after record {len(ids)} (eventID ev-{len(ids) - 1})" in lines[0] and "truncated gzip" in lines[0]
