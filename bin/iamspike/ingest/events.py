"""What every input pipeline hands its events to, how long it may run, and what it says it did.

``EventSink`` is the one thing the core knows about Splunk: ``write`` buffers an event,
``flush`` hands everything written so far to splunkd. Checkpoints (and SQS deletions) happen only
after a ``flush``. ``Deadline`` bounds a run (shorter than the input's interval) and carries the
stop flag a SIGTERM sets. ``RunSummary`` is what a run did, said in one line at its end.
"""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Callable, ClassVar, Protocol

SOURCETYPE = "aws:cloudtrail"
SOURCETYPE_INSIGHT = "aws:cloudtrail:insight"


class EventSink(Protocol):
    def write(self, data: str, time: float | None, source: str, sourcetype: str) -> None:
        """Buffer one event: ``data`` is its text (one JSON record), ``time`` epoch seconds."""

    def flush(self) -> None:
        """Hand every buffered event to Splunk (after this returns they are Splunk's)."""


class StopRun(BaseException):
    """Raised inside a ``Deadline.interruptible()`` block when a stop is requested."""


class Deadline:
    """A run's time budget plus its stop flag (set by SIGTERM): ``expired()`` checks both.

    ``request_stop()`` (called from a signal handler) sets the flag; if the run is inside an
    ``interruptible()`` block (a long poll, a sleep) it also raises ``StopRun`` there, so a
    20-second long poll does not delay the stop.
    """

    def __init__(
        self,
        seconds: float,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._end = clock() + seconds
        self.stop = stop if stop is not None else threading.Event()
        self._interruptible = 0

    @classmethod
    def for_interval(cls, interval: float) -> Deadline:
        """A run's deadline: 80 % of the input's interval (at least 5 s), so that a run ends
        before splunkd starts the next one."""
        return cls(max(5.0, 0.8 * interval))

    def request_stop(self) -> None:
        self.stop.set()
        if self._interruptible:
            raise StopRun()

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block a stop request may cut short by raising ``StopRun`` (nothing half-written)."""
        if self.stop.is_set():
            raise StopRun()
        self._interruptible += 1
        try:
            yield
        finally:
            self._interruptible -= 1

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        return self.stop.is_set() or self._clock() >= self._end

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (less if the deadline or a stop comes first); False if expired."""
        try:
            with self.interruptible():
                time.sleep(min(seconds, self.remaining()))
        except StopRun:
            return False
        return not self.expired()


@dataclass
class RunSummary:
    """What one run of an input did, and the line that says so at its end (read by the Input
    Health view's macro ``iam_error_spike_input_log``):

    ``<events> <noun> from <what was read> to index <index> (<details>, <errors> errors) in <s> s``

    An input adds its own counters as fields of a subclass and says them in ``read`` and
    ``details``; ``add`` sums two summaries field by field (a run over several regions).
    """

    events: int = 0
    errors: int = 0
    started: float = field(default_factory=time.time)

    noun: ClassVar[str] = "events"

    def read(self) -> str:
        """What the events came from ("3 files")."""
        raise NotImplementedError

    def details(self) -> list[str]:
        """The input's own counters, in words, before the errors."""
        return []

    def add(self, other: RunSummary) -> None:
        for item in fields(self):
            if item.name != "started":
                setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def line(self, index: str) -> str:
        details = ", ".join([*self.details(), f"{self.errors} errors"])
        return (
            f"{self.events} {self.noun} from {self.read()} to index {index or 'default'} ({details}) "
            f"in {time.time() - self.started:.1f} s"
        )


@dataclass
class FileSummary(RunSummary):
    """A run of an input reading CloudTrail log files (``aws_cloudtrail_sqs``, ``aws_cloudtrail_s3``)."""

    files: int = 0
    duplicates: int = 0
    skipped_files: int = 0
    skipped_records: int = 0
    messages: int = 0

    def read(self) -> str:
        return f"{self.files} files"

    def details(self) -> list[str]:
        return [
            f"{self.duplicates} duplicates dropped",
            f"{self.skipped_files} files and {self.skipped_records} records skipped",
            f"{self.messages} messages",
        ]


_HOURS: dict[str, int] = {}


def _hour(prefix: str) -> int:
    """Epoch seconds of ``YYYY-MM-DDTHH`` (cached: a log file spans a few hours)."""
    seconds = _HOURS.get(prefix)
    if seconds is None:
        if len(_HOURS) > 10_000:
            _HOURS.clear()
        seconds = calendar.timegm(
            (int(prefix[0:4]), int(prefix[5:7]), int(prefix[8:10]), int(prefix[11:13]), 0, 0, 0, 0, 0)
        )
        _HOURS[prefix] = seconds
    return seconds


_HOURS_COLON: dict[str, int] = {}  # ``YYYY-MM-DDTHH:`` -> epoch seconds, filled by _event_time
# Two-digit minutes and seconds by dict look-up: about half the cost of int() on a slice.
_MINUTES = {f"{minute:02d}": minute * 60 for minute in range(60)}
_SECONDS = {f"{second:02d}": second for second in range(61)}


def event_time(value: object) -> float | None:
    """CloudTrail ``eventTime`` (``2023-08-26T20:35:12Z``, optional fraction) -> epoch seconds."""
    # Fast path for the usual ``YYYY-MM-DDTHH:MM:SSZ`` of an hour already seen; anything
    # else (a new hour, odd digits, a fraction) takes _event_time.
    if type(value) is str and len(value) == 20 and value[16] == ":":
        hour = _HOURS_COLON.get(value[:14])
        if hour is not None:
            try:
                return float(hour + _MINUTES[value[14:16]] + _SECONDS[value[17:19]])
            except KeyError:
                pass
    return _event_time(value)


def _event_time(value: object) -> float | None:
    if not isinstance(value, str) or len(value) < 19 or value[13] != ":" or value[16] != ":":
        return None
    try:
        hour = _hour(value[:13])
        if len(_HOURS_COLON) > 10_000:
            _HOURS_COLON.clear()
        _HOURS_COLON[value[:14]] = hour
        seconds = hour + int(value[14:16]) * 60 + int(value[17:19])
    except ValueError:
        return None
    if len(value) > 20 and value[19] == ".":
        digits = value[20:].rstrip("Z")
        if digits.isdigit():
            return seconds + float("0." + digits)
    return float(seconds)
