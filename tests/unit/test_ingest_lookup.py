"""iamspike.ingest.lookup against the loopback LookupEvents endpoint, through the real boto3 client."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
from iamspike.ingest import lookup
from iamspike.ingest.aws import AwsSettingError
from iamspike.ingest.context import InputContext
from iamspike.ingest.events import Deadline
from iamspike.ingest.lookup import INPUT, LOOKBACK_SECONDS, RateLimiter, RegionState, parse_settings
from iamspike.ingest.settings import read_shared
from standin.lookup_events_server import LookupEventsServer, make_records

KEY = "AKIAIOSFODNN7EXAMPLE"


class ListSink:
    """Splunk's side of the sink: events count only once flushed."""

    def __init__(self, stop_after_pages: int = 0, stop: threading.Event | None = None) -> None:
        self.events: list[dict] = []
        self.buffer: list[dict] = []
        self.flushes = 0
        self.stop_after_pages = stop_after_pages
        self.stop = stop

    def write(self, data: str, time: float | None, source: str, sourcetype: str) -> None:
        self.buffer.append({"data": data, "time": time, "source": source, "sourcetype": sourcetype})

    def flush(self) -> None:
        self.events.extend(self.buffer)
        self.buffer = []
        self.flushes += 1
        if self.stop is not None and self.flushes >= self.stop_after_pages:
            self.stop.set()  # as a SIGTERM would

    def ids(self) -> list[str]:
        return [json.loads(e["data"])["eventID"] for e in self.events]


@pytest.fixture
def server():
    with LookupEventsServer(rate=None) as running:
        yield running


def run(server, tmp_path, sink=None, deadline=None, **params):
    params.setdefault("endpoint_urls", "cloudtrail=" + server.endpoint_url)
    params.setdefault("max_attempts", "6")
    sink = sink if sink is not None else ListSink()
    shared = read_shared({**params, "index": "aws"}, "", INPUT)
    ctx = InputContext(
        name="aws_cloudtrail_lookup://test",
        params=shared.params,
        aws=replace(shared.aws, access_key_id=KEY, secret_access_key="secret"),
        sink=sink,
        log=logging.getLogger("test.lookup"),
        deadline=deadline or Deadline(60),
        checkpoint_dir=str(tmp_path / "ckpt"),
    )
    stats = lookup.run(ctx, parse_settings(shared.params))
    return sink, stats, ctx.checkpoints()


def settings_of(params):
    """What the input reads from a stanza: the shared settings, then its own."""
    shared = read_shared(params, "", INPUT)
    return shared.aws, parse_settings(shared.params)


# -- settings ------------------------------------------------------------------------------------
def test_settings_defaults():
    aws, settings = settings_of({})
    assert settings.regions == ("us-east-1",)
    assert (settings.backfill_days, settings.overlap, settings.interval) == (7, 900, 300)
    assert settings.requests_per_second < 2
    assert aws.retry_mode == "adaptive"
    assert settings_of({"retry_mode": "standard"})[0].retry_mode == "standard"
    assert parse_settings({"regions": " us-east-1, eu-west-1,us-east-1 "}).regions == (
        "us-east-1",
        "eu-west-1",
    )


@pytest.mark.parametrize(
    "params, words",
    [
        ({"regions": "us-east-1,mars-north-1"}, "unknown AWS region 'mars-north-1'"),
        ({"regions": " , "}, "regions must name at least one"),
        ({"requests_per_second": "2.5"}, "2 requests/s per account and region"),
        ({"requests_per_second": "fast"}, "must be a number"),
        ({"interval": "30"}, "interval 30 is below 60 seconds"),
        ({"backfill_days": "91"}, "backfill_days must be between 1 and 90"),
        ({"overlap": "-5"}, "overlap must be"),
        ({"role_arn": "arn:aws:iam::12:user/x"}, "is not an IAM role ARN"),
    ],
)
def test_bad_settings_are_one_line_errors(params, words):
    with pytest.raises(AwsSettingError) as error:
        settings_of(params)
    message = str(error.value)
    assert words in message
    assert "\n" not in message


# -- rate limiter --------------------------------------------------------------------------------
def test_rate_limiter_spaces_tokens_and_gives_up_at_the_deadline():
    now = [100.0]
    limiter = RateLimiter(2.0, capacity=1.0, clock=lambda: now[0])
    stopped = Deadline(60)
    stopped.stop.set()
    assert limiter.acquire(stopped)
    assert not limiter.acquire(stopped)  # no token yet, and the run must stop
    now[0] += 0.25
    assert not limiter.acquire(stopped)
    now[0] += 0.25
    assert limiter.acquire(stopped)
    now[0] += 10
    assert limiter.acquire(stopped)
    assert not limiter.acquire(stopped)  # capacity 1: a long pause gives no burst
    assert limiter.acquired == 3


# -- checkpoint state ----------------------------------------------------------------------------
def test_region_state_keeps_only_ids_that_can_come_back():
    state = RegionState(high=1000.0, pending=(100.0, 2000.0, 1500.0))
    state.seen = {"old-overlap": 950.0, "gone": 1200.0, "cursor": 1500.0, "tail": 1950.0}
    state.prune(overlap=100)
    assert set(state.seen) == {"old-overlap", "cursor", "tail"}
    state.high, state.pending = 2000.0, None
    state.prune(overlap=100)
    assert set(state.seen) == {"tail"}
    assert RegionState.from_json(json.loads(json.dumps(state.to_json()))) == (state, [])
    assert RegionState.from_json(None) == (RegionState(), [])


@pytest.mark.parametrize(
    ("saved", "kept", "unusable"),
    [
        ({"high": "noon", "pending": None, "seen": {"a": 5}}, RegionState(seen={"a": 5.0}), ["high"]),
        ({"high": 9, "pending": [1], "seen": ["a"]}, RegionState(high=9.0), ["pending", "seen"]),
        ({"high": 9, "pending": [1, 2, "x"], "seen": {"a": "x"}}, RegionState(high=9.0), ["pending", "seen"]),
        (["an", "older", "list"], RegionState(), ["a JSON list"]),
    ],
)
def test_region_state_keeps_the_fields_it_can_read(saved, kept, unusable):
    state, problems = RegionState.from_json(saved)
    assert state == kept
    assert [problem.split(" ")[0] for problem in problems] == [u.split(" ")[0] for u in unusable]


# -- runs ----------------------------------------------------------------------------------------
def test_backfill_pages_everything_once_oldest_window_first(server, tmp_path):
    end = time.time() - 120
    records = make_records(260, end, step=30)
    server.load(records)
    sink, stats, store = run(server, tmp_path)
    assert Counter(sink.ids()) == Counter(r["eventID"] for r in records)
    assert stats.events == 260 and stats.pages == 6 and stats.errors == 0
    first = sink.events[0]
    assert first["source"] == "aws:cloudtrail:lookupevents:us-east-1"
    assert first["sourcetype"] == "aws:cloudtrail"
    assert json.loads(first["data"]) == records[-1]
    assert first["time"] == pytest.approx(int(end))
    assert all(r.params["MaxResults"] == 50 for r in server.served())
    state = store.load("lookup-us-east-1")
    assert state["pending"] is None and state["high"] >= end
    assert set(state["seen"]) <= {r["eventID"] for r in records}


def test_backfill_days_bounds_the_first_window(server, tmp_path):
    now = time.time()
    server.load(make_records(3, now - 2 * 86400, prefix="old"))
    server.load(make_records(3, now - 60, prefix="new"))
    sink, _, _ = run(server, tmp_path, backfill_days="1")
    assert sorted(sink.ids()) == ["new-0", "new-1", "new-2"]
    start = server.served()[0].params["StartTime"]
    assert start == pytest.approx(now - 86400, abs=5)
    assert start > now - LOOKBACK_SECONDS


def test_overlap_picks_up_late_events_without_duplicates(server, tmp_path):
    end = time.time() - 60
    server.load(make_records(120, end, step=5, prefix="a"))
    sink = ListSink()
    run(server, tmp_path, sink=sink, overlap="900")
    assert len(sink.events) == 120
    # CloudTrail delivers late: events 5-10 minutes old appear after the first run.
    late = make_records(40, end - 300, step=5, prefix="late")
    server.load(late)
    _, stats, _ = run(server, tmp_path, sink=sink, overlap="900")
    counts = Counter(sink.ids())
    assert set(counts.values()) == {1}
    assert len(counts) == 160
    assert stats.events == 40
    assert stats.duplicates > 0  # the overlap re-read earlier events and dropped them
    assert server.served()[-1].params["StartTime"] == pytest.approx(end - 900, abs=120)


def test_stop_mid_window_resumes_from_the_cursor(server, tmp_path):
    end = time.time() - 60
    # 50 events a second: every page boundary splits a second between two pages.
    records = make_records(400, end, step=0.02)
    server.load(records)
    stop = threading.Event()
    sink = ListSink(stop_after_pages=3, stop=stop)
    _, first, store = run(server, tmp_path, sink=sink, deadline=Deadline(60, stop=stop))
    assert first.events == 150 and first.regions_done == 0
    assert store.load("lookup-us-east-1")["pending"] is not None
    sink.stop = None
    _, second, store = run(server, tmp_path, sink=sink)
    assert Counter(sink.ids()) == Counter(r["eventID"] for r in records)
    assert second.regions_done == 1
    assert store.load("lookup-us-east-1")["pending"] is None


def test_a_stop_during_the_rate_wait_sends_nothing_more(server, tmp_path, caplog):
    server.load(make_records(200, time.time() - 60))
    stop = threading.Event()
    sink = ListSink()
    original = sink.flush

    def flush_then_stop_soon() -> None:
        original()
        threading.Timer(0.3, stop.set).start()  # lands in the 2 s wait for the next token

    sink.flush = flush_then_stop_soon
    with caplog.at_level(logging.INFO, logger="iamspike.ingest.lookup"):
        _, stats, store = run(
            server, tmp_path, sink=sink, deadline=Deadline(60, stop=stop), requests_per_second="0.5"
        )
    assert len(server.requests) == 1 and len(sink.events) == 50
    assert stats.retried == 0 and "_Stopped" not in caplog.text
    assert "stopped at" in caplog.text and "the next run goes on from there" in caplog.text
    assert store.load("lookup-us-east-1")["pending"] is not None


def test_regions_are_paged_separately(server, tmp_path):
    end = time.time() - 60
    server.load(make_records(70, end, prefix="use1"), region="us-east-1")
    server.load(make_records(30, end, prefix="euw1"), region="eu-west-1")
    sink, stats, store = run(server, tmp_path, regions="us-east-1,eu-west-1")
    by_source = Counter(e["source"] for e in sink.events)
    assert by_source == {
        "aws:cloudtrail:lookupevents:us-east-1": 70,
        "aws:cloudtrail:lookupevents:eu-west-1": 30,
    }
    assert {i[:4] for e, i in zip(sink.events, sink.ids()) if e["source"].endswith("eu-west-1")} == {"euw1"}
    assert stats.regions_done == 2
    assert store.load("lookup-eu-west-1")["high"] is not None


def test_throttling_and_5xx_are_retried_and_logged(server, tmp_path, caplog):
    end = time.time() - 60
    records = make_records(150, end)
    server.load(records)
    server.inject("throttle", 2)
    sink = ListSink()
    with caplog.at_level(logging.WARNING, logger="iamspike.ingest.lookup"):
        server.inject(503, 1)
        _, stats, _ = run(server, tmp_path, sink=sink)
    assert Counter(sink.ids()) == Counter(r["eventID"] for r in records)
    assert stats.errors == 0 and stats.retried == 3
    text = caplog.text
    assert "LookupEvents in us-east-1 throttled: ThrottlingException (HTTP 400)" in text
    assert "LookupEvents in us-east-1 failed: InternalFailure (HTTP 503)" in text


def test_exhausted_retries_log_the_cause_and_keep_the_checkpoint(server, tmp_path, caplog):
    end = time.time() - 60
    records = make_records(120, end)
    server.load(records)
    sink = ListSink()
    server.inject(500, 3)
    with caplog.at_level(logging.ERROR, logger="iamspike.ingest.lookup"):
        _, stats, store = run(server, tmp_path, sink=sink, max_attempts="2")
    assert stats.errors == 1 and sink.events == []
    assert "InternalFailure (HTTP 500) from cloudtrail:LookupEvents" in caplog.text
    assert "region us-east-1 resumes from its checkpoint next run" in caplog.text
    assert store.load("lookup-us-east-1") is None
    run(server, tmp_path, sink=sink)
    assert Counter(sink.ids()) == Counter(r["eventID"] for r in records)


def test_access_denied_names_the_missing_permission(server, tmp_path, caplog):
    server.load(make_records(10, time.time() - 60))
    server.inject("AccessDeniedException")
    with caplog.at_level(logging.ERROR, logger="iamspike.ingest.lookup"):
        sink, stats, _ = run(server, tmp_path)
    assert stats.errors == 1 and sink.events == []
    assert len(server.requests) == 1  # not retried
    assert (
        "is not allowed to call cloudtrail:LookupEvents on * in region us-east-1; add "
        "cloudtrail:LookupEvents on * in region us-east-1 to the IAM user of key AKIA************MPLE"
    ) in caplog.text


def test_failed_assume_role_is_reported_once_as_sts(server, tmp_path, caplog):
    server.load(make_records(10, time.time() - 60))
    role = "arn:aws:iam::123456789012:role/reader"
    endpoints = f"cloudtrail={server.endpoint_url},sts=http://127.0.0.1:9"  # nobody listens on 9
    with caplog.at_level(logging.ERROR, logger="iamspike.ingest.lookup"):
        sink, stats, _ = run(
            server,
            tmp_path,
            role_arn=role,
            endpoint_urls=endpoints,
            regions="us-east-1,eu-west-1",
            max_attempts="1",
        )
    assert stats.errors == 1 and sink.events == [] and server.requests == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert f"calling sts:AssumeRole on {role}" in errors[0]
    assert "no region is read this run" in errors[0]


def test_a_stop_does_not_wait_for_a_slow_aws_answer(server, tmp_path, caplog):
    server.load(make_records(10, time.time() - 60))
    server.hang_seconds = 5.0
    server.inject("hang", 10)  # every attempt waits 5 s for an HTTP 500: about a minute in all
    stop = threading.Event()

    def sigterm_during_the_first_attempt() -> None:
        while not server.received:
            time.sleep(0.01)
        stop.set()

    threading.Thread(target=sigterm_during_the_first_attempt, daemon=True).start()
    with caplog.at_level(logging.WARNING, logger="iamspike.ingest.lookup"):
        sink, stats, store = run(server, tmp_path, deadline=Deadline(600, stop=stop), max_attempts="10")
    assert server.requests == []  # returned while the region thread still waited on AWS
    assert sink.events == [] and stats.regions_done == 0
    assert "stop: region(s) us-east-1 still waiting on AWS" in caplog.text
    assert store.load("lookup-us-east-1") is None


def test_client_stays_under_the_api_rate(tmp_path):
    with LookupEventsServer(rate=2.0, burst=2.0) as limited:
        records = make_records(300, time.time() - 60)
        limited.load(records)
        # One attempt only: a single throttled request would be an error.
        _, stats, _ = run(limited, tmp_path, max_attempts="1")
    assert [r.status for r in limited.requests] == [200] * 6
    assert stats.events == 300 and stats.retried == 0 and stats.errors == 0


@pytest.mark.parametrize(
    ("age", "kept"),
    [
        (0.0, True),  # inside the overlap
        (900.0, True),  # at the next window's start
        (900.6, True),  # older than the start but in its whole second: LookupEvents sends it again
        (902.0, False),  # can no longer come back
    ],
)
def test_prune_keeps_ids_the_next_window_can_return(age: float, kept: bool) -> None:
    # botocore truncates StartTime to whole seconds, so the window [high - overlap, ...] starts up to
    # a second early: ids in that second must survive the prune (or the restart duplicates them).
    high = 1_700_000_000.4
    done = RegionState(high=high, pending=None, seen={"e": high - age})
    done.prune(900)
    assert ("e" in done.seen) is kept
    pending = RegionState(high=None, pending=(high - 86400, high, high - 10), seen={"e": high - age})
    pending.prune(900)
    assert ("e" in pending.seen) is kept
