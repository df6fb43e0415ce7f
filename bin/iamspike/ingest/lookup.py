"""CloudTrail ``LookupEvents`` -> events: the core of the ``aws_cloudtrail_lookup`` input.

LookupEvents serves the last 90 days of management events of one account and region, newest
first, 50 a page, at 2 requests a second per account and region. Per configured region this
module pages a time window with botocore's paginator, hands each page to the ``EventSink``,
flushes, and only then saves the region's checkpoint. Every HTTP attempt (retries included) first
takes a token from the region's ``RateLimiter``; throttling and 5xx answers are retried by
botocore's retry mode (adaptive by default) and logged one line each.

A region's checkpoint (JSON) holds
- ``high``: the end of the last completed window (every event up to it was written);
- ``pending``: ``[start, end, cursor]`` of an unfinished window: events in ``[cursor, end]`` were
  written, ``[start, cursor]`` is still to do (a run stopped by its deadline, SIGTERM or a kill);
- ``seen``: ``{eventID: time}`` of written events that can come back: those in the overlap
  before ``end`` (the next window starts ``overlap`` seconds before it, for CloudTrail's late
  delivery), at the cursor (a second's events may straddle two pages) and, while a window is
  pending, those in the previous overlap.
A new window is ``[high - overlap, now]`` (the first one ``[now - backfill_days, now]``); events
whose eventID is in ``seen`` are dropped, so the overlap and a restart add nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from iamspike.ingest.aws import (
    AWS_ERRORS,
    THROTTLING_CODES,
    AwsClients,
    AwsSettingError,
    AwsSettings,
    check_region,
    explain,
    int_setting,
    redact,
)
from iamspike.ingest.checkpoint import CheckpointStore
from iamspike.ingest.context import InputContext, InputKind
from iamspike.ingest.events import SOURCETYPE, Deadline, EventSink, RunSummary
from iamspike.ingest.settings import check_interval

SOURCE_PREFIX = "aws:cloudtrail:lookupevents:"
PAGE_SIZE = 50
API_REQUESTS_PER_SECOND = 2.0
LOOKBACK_SECONDS = 90 * 86400
LOOKBACK_MARGIN = 600  # keep StartTime safely inside the 90 days the API serves
TIME_SLACK = 1.0  # seconds: LookupEvents times travel truncated to whole seconds
MIN_INTERVAL = 60
ACTION = "cloudtrail:LookupEvents"
STOP_GRACE = 2.0  # seconds region threads get to finish after the deadline or a SIGTERM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LookupSettings:
    """The input's own settings (the AWS ones are ``AwsSettings``)."""

    regions: tuple[str, ...] = ("us-east-1",)
    backfill_days: int = 7
    overlap: int = 900
    requests_per_second: float = 1.9
    interval: int = 300


def parse_settings(params: Mapping[str, str]) -> LookupSettings:
    """The stanza's keys -> ``LookupSettings``; ``AwsSettingError`` (one line) on a bad value.

    Keys: ``regions`` (comma-separated, default us-east-1, where IAM events land),
    ``backfill_days`` (1-90), ``overlap`` (seconds, 0-3600), ``requests_per_second`` (per region,
    at most the API's 2), ``interval`` (seconds, at least 60).
    """
    text = params.get("regions") or "us-east-1"
    regions = tuple(dict.fromkeys(check_region(r) for r in text.split(",") if r.strip()))
    if not regions:
        raise AwsSettingError("regions must name at least one AWS region (for example us-east-1)")
    rate_text = str(params.get("requests_per_second") or "").strip() or "1.9"
    try:
        rate = float(rate_text)
    except ValueError:
        raise AwsSettingError(f"requests_per_second must be a number, not {rate_text!r}") from None
    if not 0.05 <= rate <= API_REQUESTS_PER_SECOND:
        raise AwsSettingError(
            "requests_per_second must be between 0.05 and 2 (LookupEvents allows 2 requests/s per "
            f"account and region), not {rate_text}"
        )
    interval_text = str(params.get("interval") or "").strip()
    if interval_text.isdigit() and int(interval_text) < MIN_INTERVAL:
        raise AwsSettingError(
            f"interval {interval_text} is below {MIN_INTERVAL} seconds: CloudTrail delivers events "
            "minutes late and LookupEvents allows 2 requests/s per account and region"
        )
    check_interval(interval_text)
    return LookupSettings(
        regions=regions,
        backfill_days=int_setting(params.get("backfill_days"), "backfill_days", 7, 1, 90),
        overlap=int_setting(params.get("overlap"), "overlap", 900, 0, 3600),
        requests_per_second=rate,
        interval=int(interval_text) if interval_text.isdigit() else 300,
    )


def aws_params(params: Mapping[str, str]) -> dict[str, str]:
    """The AWS settings' keys: retries default to botocore's adaptive mode for this input."""
    return dict(params, retry_mode=(params.get("retry_mode") or "").strip() or "adaptive")


class RateLimiter:
    """A token bucket: at most ``rate`` acquisitions a second, ``capacity`` at once.

    ``acquire`` sleeps on the deadline's stop flag, so a SIGTERM wakes it at once.
    """

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()
        self._lock = threading.Lock()
        self.acquired = 0
        self.waited = 0.0

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, deadline: Deadline | None = None) -> bool:
        """Take one token, waiting for it; False (no token taken) if the deadline expired first."""
        while True:
            with self._lock:
                now = self._clock()
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    self.acquired += 1
                    return True
                wait = (1.0 - self._tokens) / self.rate
            self.waited += wait
            if deadline is None:
                time.sleep(wait)
            elif deadline.stop.wait(wait) or deadline.expired():
                return False


@dataclass
class RegionState:
    """A region's checkpoint (see the module docstring)."""

    high: float | None = None
    pending: tuple[float, float, float] | None = None
    seen: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any) -> tuple[RegionState, list[str]]:
        """The state saved as ``value``, and the fields it could not use (an older version's or
        a damaged file's), each left at its default: no ``high`` backfills again, no ``pending``
        is covered by the window from ``high``, no ``seen`` may re-send the overlap's events."""
        state, unusable = cls(), []
        if value is None:
            return state, unusable
        if not isinstance(value, dict):
            return state, [f"a JSON {type(value).__name__}, not an object"]
        readers: dict[str, Callable[[Any], Any]] = {
            "high": lambda v: None if v is None else float(v),
            "pending": lambda v: None if not v else (float(v[0]), float(v[1]), float(v[2])),
            "seen": lambda v: {str(k): float(t) for k, t in (v or {}).items()},
        }
        for name, reader in readers.items():
            try:
                setattr(state, name, reader(value.get(name)))
            except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
                unusable.append(f"{name} ({type(exc).__name__}: {exc})")
        return state, unusable

    def to_json(self) -> dict[str, Any]:
        return {"high": self.high, "pending": list(self.pending) if self.pending else None, "seen": self.seen}

    def prune(self, overlap: float) -> None:
        """Forget the ids that can no longer come back.

        The next window starts at ``end - overlap``, but botocore sends LookupEvents times in whole
        seconds (truncated), so events up to a second older than that start come back too: their
        ids are kept for ``TIME_SLACK`` longer.
        """
        if self.pending is None:
            if self.high is not None:
                floor = self.high - overlap - TIME_SLACK
                self.seen = {k: t for k, t in self.seen.items() if t >= floor}
            return
        _, end, cursor = self.pending
        high = float("-inf") if self.high is None else self.high
        floor = end - overlap - TIME_SLACK
        self.seen = {k: t for k, t in self.seen.items() if t >= floor or t <= high or t == cursor}


@dataclass
class LookupSummary(RunSummary):
    """What one run did (or one region's part of it)."""

    pages: int = 0
    regions: int = 0
    duplicates: int = 0
    retried: int = 0
    regions_done: int = 0

    def read(self) -> str:
        return f"{self.pages} pages in {self.regions} regions"

    def details(self) -> list[str]:
        return [
            f"{self.duplicates} duplicates dropped",
            f"{self.retried} attempts throttled or failed and retried by botocore",
            f"{self.regions_done} of {self.regions} regions caught up",
        ]


class _Stopped(Exception):
    """Raised from the rate limiter's hook when the run's deadline (or SIGTERM) came first."""


class _RegionRun:
    """One region's work in one run."""

    def __init__(self, job: LookupRun, region: str) -> None:
        self.job = job
        self.region = region
        self.source = SOURCE_PREFIX + region
        self.key = "lookup-" + region
        self.stats = LookupSummary(regions=1)
        self.limiter = RateLimiter(job.settings.requests_per_second)
        self.state, unusable = RegionState.from_json(job.checkpoints.load(self.key))
        if unusable:
            log.warning(
                "region %s: checkpoint %s is unreadable in part: %s; those fields start from their defaults",
                region,
                job.checkpoints.path(self.key) + ".json",
                "; ".join(unusable),
            )
        # Built here, in the calling thread: botocore sessions are not safe to share while creating clients.
        self.client = job.clients.client("cloudtrail", region)

    # botocore event hooks --------------------------------------------------------------------
    def _before_send(self, **kwargs: Any) -> None:
        if not self.limiter.acquire(self.job.deadline):
            raise _Stopped()

    def _response_received(self, response_dict: Any = None, exception: Any = None, **kwargs: Any) -> None:
        if isinstance(exception, _Stopped):
            return  # our own stop, raised before sending: nothing went to AWS
        if exception is not None:
            self.stats.retried += 1
            log.warning(
                "LookupEvents in %s: %s (%s); botocore retries it while attempts remain",
                self.region,
                type(exception).__name__,
                redact(str(exception)),
            )
            return
        status = (response_dict or {}).get("status_code") or 0
        if status >= 400:
            parsed = kwargs.get("parsed_response") or {}
            code = str((parsed.get("Error") or {}).get("Code") or status)
            self.stats.retried += 1
            kind = "throttled" if code in THROTTLING_CODES else "failed"
            log.warning(
                "LookupEvents in %s %s: %s (HTTP %s); botocore backs off and retries (%s mode) while "
                "attempts remain",
                self.region,
                kind,
                code,
                status,
                self.job.aws.retry_mode,
            )

    # the work --------------------------------------------------------------------------------
    def run_logged(self) -> None:
        """``run`` for a thread: an unexpected error is logged, never lost with the thread."""
        try:
            self.run()
        except Exception:
            self.stats.errors += 1
            log.exception("region %s stopped by an unexpected error", self.region)

    def run(self) -> LookupSummary:
        client = self.client
        client.meta.events.register("before-send.cloudtrail.LookupEvents", self._before_send)
        client.meta.events.register("response-received.cloudtrail.LookupEvents", self._response_received)
        try:
            self._run(client)
        except _Stopped:
            self._report()
        except AWS_ERRORS as exc:
            self.stats.errors += 1
            log.error(
                "%s; region %s resumes from its checkpoint next run",
                explain(exc, ACTION, f"* in region {self.region}", self.job.aws),
                self.region,
            )
        finally:
            client.meta.events.unregister("before-send.cloudtrail.LookupEvents", self._before_send)
            client.meta.events.unregister(
                "response-received.cloudtrail.LookupEvents", self._response_received
            )
        return self.stats

    def _run(self, client: Any) -> None:
        settings, deadline, state = self.job.settings, self.job.deadline, self.state
        opened_new = False
        while not deadline.expired():
            if state.pending is None:
                if opened_new:
                    break
                now = self.job.clock()
                floor = now - LOOKBACK_SECONDS + LOOKBACK_MARGIN
                start = (
                    now - settings.backfill_days * 86400
                    if state.high is None
                    else state.high - settings.overlap
                )
                start = max(start, floor)
                state.pending = (start, now, now)
                opened_new = True
                log.info("region %s: window %s .. %s", self.region, _iso(start), _iso(now))
            start, end, cursor = state.pending
            paginator = client.get_paginator("lookup_events")
            pages = paginator.paginate(
                StartTime=start, EndTime=cursor, PaginationConfig={"PageSize": PAGE_SIZE}
            )
            finished = True
            for page in pages:
                self._write_page(page.get("Events") or [])
                if deadline.expired():
                    finished = False
                    break
            if finished:
                state.high, state.pending = end, None
                state.prune(settings.overlap)
                self.job.checkpoints.save(self.key, state.to_json())
        self._report()

    def _report(self) -> None:
        state = self.state
        if state.pending is None:
            self.stats.regions_done += 1
        else:
            log.info(
                "region %s: stopped at %s by the run deadline or a stop; the next run goes on from there",
                self.region,
                _iso(state.pending[2]),
            )

    def _write_page(self, events: list[dict[str, Any]]) -> None:
        state = self.state
        assert state.pending is not None
        start, end, cursor = state.pending
        fresh: list[tuple[str, float, str]] = []
        for event in events:
            event_id = str(event.get("EventId") or "")
            moment = _epoch(event.get("EventTime"))
            body = event.get("CloudTrailEvent")
            if not body or moment is None:
                log.warning(
                    "region %s: skipped event %s without CloudTrailEvent or EventTime", self.region, event_id
                )
                continue
            cursor = min(cursor, moment)
            if event_id in state.seen:
                self.stats.duplicates += 1
                continue
            fresh.append((event_id, moment, body))
        with self.job.sink_lock:
            for _, moment, body in fresh:
                self.job.sink.write(body, moment, self.source, SOURCETYPE)
            self.job.sink.flush()
        for event_id, moment, _ in fresh:
            state.seen[event_id] = moment
        state.pending = (start, end, cursor)
        state.prune(self.job.settings.overlap)
        self.job.checkpoints.save(self.key, state.to_json())
        self.stats.pages += 1
        self.stats.events += len(fresh)


@dataclass
class LookupRun:
    """Everything one run needs; ``run()`` pages every region in its own thread."""

    aws: AwsSettings
    settings: LookupSettings
    clients: AwsClients
    checkpoints: CheckpointStore
    sink: EventSink
    deadline: Deadline
    clock: Callable[[], float] = time.time
    sink_lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> LookupSummary:
        regions = self.settings.regions
        total = LookupSummary()
        log.info(
            "LookupEvents run starts: regions %s, as %s, %.2f requests/s per region, deadline %.0f s",
            ",".join(regions),
            self.aws.principal(),
            self.settings.requests_per_second,
            self.deadline.remaining(),
        )
        if not self._credentials_ok():
            total.errors += 1
            total.regions = len(regions)
            return total
        runs = [_RegionRun(self, region) for region in regions]
        threads = [
            threading.Thread(target=one.run_logged, name="lookup-" + one.region, daemon=True) for one in runs
        ]
        for thread in threads:
            thread.start()
        self._wait(threads, runs)
        for one in runs:
            total.add(one.stats)
        return total

    def _wait(self, threads: list[threading.Thread], runs: list[_RegionRun]) -> None:
        """Join the region threads. Once the deadline or a stop came, wait at most ``STOP_GRACE``
        more: a thread still waiting on AWS (a slow answer, botocore's retry backoff) is left
        behind (a daemon, it dies with the process) after taking the sink lock, so no page is
        half-written and none follows. Its checkpoint already holds its last written page."""
        grace_end: float | None = None
        while any(thread.is_alive() for thread in threads):
            if grace_end is None and self.deadline.expired():
                grace_end = time.monotonic() + STOP_GRACE
            if grace_end is not None and time.monotonic() >= grace_end:
                self.sink_lock.acquire()  # held until the process exits
                waiting = [one.region for one, thread in zip(runs, threads) if thread.is_alive()]
                log.warning(
                    "stop: region(s) %s still waiting on AWS (slow answer or retry backoff); left at "
                    "their last checkpoint",
                    ",".join(waiting),
                )
                return
            for thread in threads:
                thread.join(0.1)

    def _credentials_ok(self) -> bool:
        """Assume ``role_arn`` once up front, so a failure is reported as what it is (sts:AssumeRole
        by the base identity), not as a LookupEvents error in every region."""
        if not self.aws.role_arn:
            return True
        try:
            self.clients.session.get_credentials().get_frozen_credentials()
        except AWS_ERRORS as exc:
            base = replace(self.aws, role_arn="")
            log.error(
                "%s (check the role's trust policy too); no region is read this run",
                explain(exc, "sts:AssumeRole", self.aws.role_arn, base),
            )
            return False
        return True


def run(ctx: InputContext, settings: LookupSettings) -> LookupSummary:
    """One run of the input for one stanza."""
    job = LookupRun(
        aws=ctx.aws,
        settings=settings,
        clients=AwsClients(ctx.aws),
        checkpoints=ctx.checkpoints(),
        sink=ctx.sink,
        deadline=ctx.deadline,
    )
    return job.run()


INPUT = InputKind("aws_cloudtrail_lookup", parse_settings, run, aws_params)


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
