"""Event times from eventTime, run deadlines and stop requests."""

from __future__ import annotations

import pytest
from iamspike.ingest.events import Deadline, FileSummary, StopRun, event_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-08-26T20:35:12Z", 1693082112.0),
        ("2023-08-26T20:35:12.250Z", 1693082112.25),
        ("1970-01-01T00:00:00Z", 0.0),
        ("not a time at all!!", None),
        ("", None),
        (None, None),
        (1693082112, None),
    ],
)
def test_event_time(text, expected):
    assert event_time(text) == expected


def test_event_time_of_an_hour_already_seen_takes_the_cached_path_with_the_same_result():
    assert event_time("2023-08-26T21:00:00Z") == 1693083600.0  # fills the hour cache
    for text, expected in [
        ("2023-08-26T21:59:59Z", 1693087199.0),
        ("2023-08-26T21:07:05Z", 1693084025.0),
        ("2023-08-26T21:60:00Z", 1693087200.0),  # odd digits: the slow path, as before
        ("2023-08-26T21: 7:05Z", 1693084025.0),
        ("2023-08-26T21:xx:05Z", None),
    ]:
        assert event_time(text) == expected, text


def test_deadline_expires_with_its_clock():
    now = [100.0]
    deadline = Deadline(10, clock=lambda: now[0])
    assert not deadline.expired() and deadline.remaining() == 10
    now[0] = 110.0
    assert deadline.expired() and deadline.remaining() == 0


def test_stop_request_interrupts_only_inside_an_interruptible_block():
    deadline = Deadline(60)
    deadline.request_stop()  # outside a block: just the flag
    assert deadline.expired()
    with pytest.raises(StopRun), deadline.interruptible():
        pass
    other = Deadline(60)
    with pytest.raises(StopRun), other.interruptible():
        other.request_stop()


def test_sleep_returns_false_once_stopped():
    deadline = Deadline(60)
    deadline.stop.set()
    assert deadline.sleep(30) is False


def test_summary_names_events_files_and_index():
    summary = FileSummary(events=12, files=3, duplicates=2, errors=1)
    assert summary.line("aws").startswith(
        "12 events from 3 files to index aws (2 duplicates dropped, 0 files and 0 records skipped,"
        " 0 messages, 1 errors) in "
    )
    assert FileSummary().line("").startswith("0 events from 0 files to index default (")


def test_summaries_add_up_field_by_field_and_keep_their_start():
    total, part = FileSummary(events=1, files=1), FileSummary(events=5, files=2, errors=1, messages=3)
    started = total.started
    total.add(part)
    assert (total.events, total.files, total.errors, total.messages, total.started) == (6, 3, 1, 3, started)


def test_a_run_deadline_is_80_percent_of_the_interval_and_at_least_5_s():
    assert 239 < Deadline.for_interval(300).remaining() <= 240
    assert 4.9 < Deadline.for_interval(1).remaining() <= 5
