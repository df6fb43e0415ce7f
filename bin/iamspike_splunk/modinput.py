"""Modular input plumbing shared by every input of the add-on (splunklib ``modularinput``).

An entry script declares its scheme's arguments and hands the input's ``InputKind`` to ``run``::

    from iamspike_splunk import vendor
    vendor.add_vendored_paths()
    from iamspike_splunk import modinput
    from iamspike.ingest import sqs

    sys.exit(modinput.run(sys.argv, sqs.INPUT, TITLE, DESCRIPTION, ARGUMENTS))

``--validate-arguments`` reads the stanza as a run does (``iamspike.ingest.settings``), then
runs the input's ``check`` (a short call to AWS, with the stanza's secrets read by name); its
one-line message is what splunkd shows. A run of one stanza gets an ``InputContext``: its
params, the AWS settings with the static key and proxy password from storage/passwords, an
``XmlEventSink`` writing splunkd's XML event stream, a logger writing
``$SPLUNK_HOME/var/log/splunk/ta_aws_iam_error_spike_<kind>.log``, a ``Deadline`` shorter than
the interval whose stop flag SIGTERM sets, and the checkpoint_dir; its summary line ends it.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

from iamspike.ingest.aws import redact
from iamspike.ingest.checkpoint import CheckpointError
from iamspike.ingest.context import InputContext, InputKind
from iamspike.ingest.events import Deadline, StopRun
from iamspike.ingest.settings import interval_seconds as seconds_of_interval
from iamspike.ingest.settings import read_shared, with_secrets

from iamspike_splunk import secrets

APP = "TA-aws-iam-error-spike"
LOG_PREFIX = "ta_aws_iam_error_spike_"
APP_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Argument:
    """One scheme argument (a key of the input's stanza)."""

    name: str
    title: str
    description: str = ""
    required: bool = False
    data_type: str = "string"  # string | number | boolean


AWS_ARGUMENTS = [
    Argument("aws_account", "AWS account", "Account of the Configuration page (optional)"),
    Argument("role_arn", "Role ARN", "IAM role to assume through STS (optional)"),
    Argument("external_id", "External ID", "ExternalId for the role (optional)"),
    Argument(
        "credential", "Credential", "storage/passwords entry (realm TA-aws-iam-error-spike) with a static key"
    ),
    Argument("endpoint_urls", "Endpoint URLs", "service=URL,... or one URL (VPC endpoints; optional)"),
    Argument("proxy", "Proxy", "http(s)://host:port (optional)"),
    Argument("retry_mode", "Retry mode", "standard or adaptive (default standard; LookupEvents adaptive)"),
    Argument("max_attempts", "Max attempts", "Attempts per AWS call, 1-20 (default 5)", data_type="number"),
    Argument("connect_timeout", "Connect timeout", "Seconds (default 10)", data_type="number"),
    Argument("read_timeout", "Read timeout", "Seconds (default 60)", data_type="number"),
    Argument("log_level", "Log level", "DEBUG, INFO, WARNING, ERROR (default INFO)"),
]
"""Arguments every AWS input of the add-on accepts (see ``iamspike.ingest.aws.parse_aws_settings``)."""


# -- the XML event stream ---------------------------------------------------------------------
def _escape(text: str) -> str:
    # ``in`` is a fast memchr-like scan; most records have none of these characters.
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if not text.isascii() and ("\ufffe" in text or "\uffff" in text):  # not allowed in XML 1.0
        text = text.replace("\ufffe", "\ufffd").replace("\uffff", "\ufffd")
    return text


def _attr(text: str) -> str:
    return _escape(text).replace('"', "&quot;")


_CLOSE = "</data><done/></event>"


class XmlEventSink:
    """``EventSink`` writing splunkd's modular input XML stream (``<stream><event>...``).

    Events are buffered and written with one ``write`` + ``flush`` per ``flush()``: what a
    pipeline has flushed is splunkd's. The framing is splunklib's ``Event.write_to`` one. An
    event is buffered as its pieces (framing, time, data), joined once per flush: formatting
    each event into a string of its own first copied every record once more.
    """

    def __init__(self, stanza: str, out: BinaryIO, index: str = "", host: str = "") -> None:
        self._out = out
        self._open = f'<event stanza="{_attr(stanza)}" unbroken="1">'
        self._open_time = self._open + "<time>"
        self._tail = ""
        if index:
            self._tail += f"<index>{_escape(index)}</index>"
        if host:
            self._tail += f"<host>{_escape(host)}</host>"
        self._parts: list[str] = []
        self._events = 0  # buffered
        self._heads: dict[tuple[str, str], str] = {}
        self._source = self._sourcetype = self._head = ""  # the last event's, and its framing
        self._timed = ""  # "</time>" + self._head: the framing after a time
        self._started = False
        self.written = 0

    def write(self, data: str, time: float | None, source: str, sourcetype: str) -> None:
        if source != self._source or sourcetype != self._sourcetype or not self._head:
            head = self._heads.get((source, sourcetype))
            if head is None:
                head = (
                    f"<source>{_escape(source)}</source>"
                    f"<sourcetype>{_escape(sourcetype)}</sourcetype>{self._tail}<data>"
                )
                self._heads[(source, sourcetype)] = head
            self._source, self._sourcetype, self._head = source, sourcetype, head
            self._timed = "</time>" + head
        # _escape's test inlined: most records are ASCII without &, < or >.
        if "&" in data or "<" in data or ">" in data or not data.isascii():
            data = _escape(data)
        if time is None:
            self._parts.extend((self._open, self._head, data, _CLOSE))
        else:
            self._parts.extend((self._open_time, f"{time:.3f}", self._timed, data, _CLOSE))
        self._events += 1

    def flush(self) -> None:
        if not self._parts:
            return
        self.written += self._events
        self._events = 0
        if not self._started:
            self._parts.insert(0, "<stream>")
            self._started = True
        self._out.write("".join(self._parts).encode("utf-8"))
        self._parts = []
        self._out.flush()

    def close(self) -> None:
        self.flush()
        if self._started:
            self._out.write(b"</stream>")
            self._out.flush()


PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux; the name exists from Python 3.10)


def widen_pipe(out: BinaryIO, size: int = PIPE_BYTES) -> int:
    """Grow the pipe to splunkd to ``size`` bytes (Linux); return its size, 0 if unchanged.

    A flush hands splunkd ~2 MB of events; through the default 64 KiB pipe the input blocks
    and is woken some 40 times per flush (kernel time and context switches: ~8 % of the input's
    CPU in the ingestion bench). Not a pipe, another OS, or over ``/proc/sys/fs/pipe-max-size``
    for an unprivileged user: nothing changes.
    """
    try:
        import fcntl
        import stat

        fd = out.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return 0
        return fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", _F_SETPIPE_SZ), size)
    except (ImportError, OSError, ValueError, AttributeError):
        return 0


# -- logging ----------------------------------------------------------------------------------
class _RedactingFilter(logging.Filter):
    def __init__(self, input_name: str) -> None:
        super().__init__()
        self.input_name = input_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.input = self.input_name
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def log_path(kind: str) -> str | None:
    """``$SPLUNK_HOME/var/log/splunk/ta_aws_iam_error_spike_<kind>.log`` (None without SPLUNK_HOME)."""
    home = os.environ.get("SPLUNK_HOME")
    if not home:
        return None
    return os.path.join(home, "var", "log", "splunk", f"{LOG_PREFIX}{kind}.log")


def setup_logging(kind: str, input_name: str, level: str = "INFO") -> logging.Logger:
    """The logger of one input run: its log file (rotated) and WARNING+ to stderr (splunkd.log).

    Core modules log under ``iamspike.*``: the handlers sit on the ``iamspike`` logger so their
    lines land in the same file. Every line names the input and has AWS key ids redacted.
    """
    root = logging.getLogger("iamspike")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    root.propagate = False
    redacting = _RedactingFilter(input_name)
    fmt = logging.Formatter("%(asctime)s %(levelname)s pid=%(process)d input=%(input)s %(message)s")
    path = log_path(kind)
    if path:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            handler: logging.Handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=25 * 1024 * 1024, backupCount=5, encoding="utf-8"
            )
            handler.setFormatter(fmt)
            handler.addFilter(redacting)
            root.addHandler(handler)
        except OSError as exc:
            sys.stderr.write(f"WARN cannot open log file {path}: {exc}\n")
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter("%(levelname)s input=%(input)s %(message)s"))
    stderr.addFilter(redacting)
    root.addHandler(stderr)
    return logging.getLogger(f"iamspike.input.{kind}")


# -- the entry point --------------------------------------------------------------------------
def run(
    argv: list[str], kind: InputKind[Any], title: str, description: str, arguments: list[Argument]
) -> int:
    """Serve splunkd for one modular input kind: ``--scheme``, ``--validate-arguments`` or a run."""
    from splunklib.modularinput import Argument as SplunkArgument
    from splunklib.modularinput import Scheme, Script

    types = {
        "string": SplunkArgument.data_type_string,
        "number": SplunkArgument.data_type_number,
        "boolean": SplunkArgument.data_type_boolean,
    }

    class _Input(Script):
        def get_scheme(self) -> Scheme:
            scheme = Scheme(title)
            scheme.description = description
            scheme.use_external_validation = True
            scheme.use_single_instance = False
            scheme.streaming_mode = Scheme.streaming_mode_xml
            for arg in arguments:
                scheme.add_argument(
                    SplunkArgument(
                        arg.name,
                        title=arg.title,
                        description=arg.description,
                        data_type=types[arg.data_type],
                        required_on_create=arg.required,
                        required_on_edit=arg.required,
                    )
                )
            return scheme

        def validate_input(self, definition: Any) -> None:
            params = {k: "" if v is None else str(v) for k, v in definition.parameters.items()}
            metadata = definition.metadata
            try:
                validate_stanza(
                    kind,
                    params,
                    str(metadata.get("server_uri") or ""),
                    str(metadata.get("session_key") or ""),
                )
            except ValueError as exc:
                raise ValueError(redact(str(exc)).replace("\n", " ")) from None

        def stream_events(self, inputs: Any, ew: Any) -> None:
            for name, raw in inputs.inputs.items():
                params = {k: "" if v is None else str(v) for k, v in raw.items()}
                run_stanza(kind, name, params, inputs.metadata)

    return _Input().run(argv)


def validate_stanza(kind: InputKind[Any], params: dict[str, str], server_uri: str, session_key: str) -> None:
    """What ``--validate-arguments`` checks: every key (no network), then the input's ``check``
    with the secrets read by name (a short call to AWS). ``ValueError`` in one line."""
    shared = read_shared(params, APP_DIR, kind)
    settings = kind.parse(shared.params)
    if kind.check is not None:
        kind.check(settings, with_secrets(shared, secrets.Fetcher(server_uri, session_key)))


def run_stanza(kind: InputKind[Any], name: str, params: dict[str, str], metadata: dict[str, Any]) -> None:
    """One run of one stanza: its log, deadline and SIGTERM handler, its settings read once, then
    ``kind.run``; a bad setting or an error ends the run with one log line, never a traceback
    on splunkd's side."""
    bad_setting: ValueError | None = None
    shared = None
    try:
        shared = read_shared(params, APP_DIR, kind)
    except (ValueError, OSError) as exc:  # OSError: an unreadable conf file of the app
        bad_setting = ValueError(str(exc))
    log = setup_logging(kind.name, name, shared.log_level if shared else params.get("log_level") or "INFO")
    interval = (
        shared.interval if shared else seconds_of_interval(params.get("interval"), kind.default_interval)
    )
    deadline = Deadline.for_interval(interval)

    def on_sigterm(signum: int, frame: Any) -> None:
        deadline.request_stop()

    signal.signal(signal.SIGTERM, on_sigterm)
    widen_pipe(sys.stdout.buffer)
    sink = XmlEventSink(
        name, sys.stdout.buffer, index=params.get("index") or "", host=params.get("host") or ""
    )
    proxy = ((shared.params if shared else params).get("proxy") or "").strip()
    log.info(
        "start: interval=%ss deadline=%.0fs%s",
        interval,
        deadline.remaining(),
        f" proxy={proxy}" if proxy else "",  # its password is masked by the log filter
    )
    try:
        if shared is None:
            raise bad_setting or ValueError("no settings")
        settings = kind.parse(shared.params)
        fetch = secrets.Fetcher(str(metadata.get("server_uri") or ""), str(metadata.get("session_key") or ""))
        ctx = InputContext(
            name=name,
            params=shared.params,
            aws=with_secrets(shared, fetch),
            sink=sink,
            log=log,
            deadline=deadline,
            checkpoint_dir=str(metadata.get("checkpoint_dir") or ""),
        )
        summary = kind.run(ctx, settings)
        log.info("%s", summary.line(ctx.index))
    except StopRun:
        log.info("stop requested during a wait")
    except ValueError as exc:
        log.error("bad setting: %s", exc)
    except CheckpointError as exc:
        log.error("%s", exc)
    except Exception:
        log.exception("stopped by an unexpected error")
    finally:
        sink.close()
        log.info(
            "end: %d events written%s",
            sink.written,
            " (stopped by SIGTERM)" if deadline.stop.is_set() else "",
        )
