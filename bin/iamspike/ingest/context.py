"""What makes an input (``InputKind``) and what one run of it is given (``InputContext``).

An input is a module with its own settings (a frozen dataclass ``parse`` builds from the
stanza), one ``run`` and an ``InputKind`` naming them; its entry script in ``bin/`` declares the
scheme and hands the ``InputKind`` to ``iamspike_splunk.modinput.run``. What every input shares
(the page's account, regions, proxy and log level; the AWS settings with their secrets; the
interval and deadline) is read once per run by ``iamspike.ingest.settings`` and arrives here
ready: ``ctx.aws`` holds the key from storage/passwords and the proxy with its password.

A unit test builds an ``InputContext`` from plain objects (``AwsSettings``, a sink that records,
a ``Deadline``, a folder for checkpoints); nothing here needs splunklib.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from iamspike.ingest.aws import AwsSettings
from iamspike.ingest.checkpoint import CheckpointStore
from iamspike.ingest.events import Deadline, EventSink, RunSummary

S = TypeVar("S")


@dataclass
class InputContext:
    """Everything one run of one stanza needs."""

    name: str  # the full stanza name, e.g. aws_cloudtrail_sqs://prod
    params: Mapping[str, str]  # the stanza, with the Configuration page's settings filled in
    aws: AwsSettings  # with the static key and the proxy password, if any
    sink: EventSink
    log: logging.Logger
    deadline: Deadline
    checkpoint_dir: str = ""

    @property
    def index(self) -> str:
        return self.params.get("index") or ""

    def checkpoints(self) -> CheckpointStore:
        return CheckpointStore(self.checkpoint_dir, self.name)


def _same_keys(params: Mapping[str, str]) -> dict[str, str]:
    return dict(params)


@dataclass(frozen=True)
class InputKind(Generic[S]):
    """One kind of input: how it reads its own keys, how it runs, what it checks on validation.

    - ``parse(params)``: the stanza's own settings; ``ValueError`` with one line naming the key.
    - ``run(ctx, settings)``: one run, until done or ``ctx.deadline``; returns its summary.
    - ``aws_params(params)``: the keys the shared AWS settings read (an input may derive one,
      e.g. the region from the queue URL, or default ``retry_mode`` otherwise).
    - ``check(settings, aws)``: at ``--validate-arguments`` only, after every key parsed: what a
      short call to AWS can tell (the queue exists); ``ValueError`` with one line if not.
    - ``default_interval``: the interval (seconds) when the stanza has none or a cron schedule.
    """

    name: str
    parse: Callable[[Mapping[str, str]], S]
    run: Callable[[InputContext, S], RunSummary]
    aws_params: Callable[[Mapping[str, str]], Mapping[str, str]] = _same_keys
    check: Callable[[S, AwsSettings], None] | None = None
    default_interval: int = 300
