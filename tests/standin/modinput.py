"""Drive a modular input entry script of the installed app exactly as splunkd does.

- ``scheme(...)``: ``script --scheme``, parsed and checked as splunkd's scheme XML;
- ``validate(...)``: ``script --validate-arguments`` with the ``<items>`` XML splunkd sends;
  returns (ok, message shown in Splunk's UI);
- ``InputProcess``: a run with the ``<input>`` XML configuration on stdin (server_host,
  server_uri, session_key, checkpoint_dir, one stanza's params); the XML event stream on stdout
  is parsed as it arrives (only complete ``<event>`` elements count, as splunkd would index
  them); stopped with SIGTERM as splunkd does (or SIGKILL for crash tests).

Nothing here imports product code: the script runs in a child bare Python.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from standin.install import SplunkHome, run_entry, start_entry

SERVER_URI = "https://127.0.0.1:8089"
SESSION_KEY = "standin-session-key-0123456789"


@dataclass
class Event:
    """One ``<event>`` of the stream, as splunkd reads it."""

    stanza: str
    data: str
    time: str | None = None
    source: str | None = None
    sourcetype: str | None = None
    index: str | None = None
    host: str | None = None
    unbroken: str | None = None
    done: bool = False


@dataclass
class Scheme:
    title: str
    description: str
    use_external_validation: bool
    use_single_instance: bool
    streaming_mode: str
    args: dict[str, dict[str, str]] = field(default_factory=dict)


def _params_xml(params: Mapping[str, str]) -> str:
    return "".join(f"<param name={quoteattr(k)}>{escape(str(v))}</param>" for k, v in params.items())


def validation_xml(
    name: str, params: Mapping[str, str], checkpoint_dir: str = "/tmp", server_uri: str = SERVER_URI
) -> str:
    """The ``<items>`` document splunkd writes on stdin for ``--validate-arguments``."""
    return (
        "<?xml version='1.0' encoding='UTF-8'?><items>"
        "<server_host>standin</server_host>"
        f"<server_uri>{escape(server_uri)}</server_uri>"
        f"<session_key>{SESSION_KEY}</session_key>"
        f"<checkpoint_dir>{escape(checkpoint_dir)}</checkpoint_dir>"
        f"<item name={quoteattr(name)}>{_params_xml(params)}</item></items>"
    )


def input_xml(
    stanza: str, params: Mapping[str, str], checkpoint_dir: str, server_uri: str = SERVER_URI
) -> str:
    """The ``<input>`` document splunkd writes on stdin to run one stanza (full ``kind://name``)."""
    return (
        "<?xml version='1.0' encoding='UTF-8'?><input>"
        "<server_host>standin</server_host>"
        f"<server_uri>{escape(server_uri)}</server_uri>"
        f"<session_key>{SESSION_KEY}</session_key>"
        f"<checkpoint_dir>{escape(checkpoint_dir)}</checkpoint_dir>"
        f"<configuration><stanza name={quoteattr(stanza)}>{_params_xml(params)}</stanza></configuration>"
        "</input>"
    )


def scheme(python: str, home: SplunkHome, script: str) -> Scheme:
    """Run ``--scheme``; parse and check the XML (AssertionError with the reason if wrong)."""
    proc = run_entry(python, home.script(script), ["--scheme"], env=home.env(), stdin=b"")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    root = ET.fromstring(proc.stdout)
    assert root.tag == "scheme", root.tag
    result = Scheme(
        title=root.findtext("title") or "",
        description=root.findtext("description") or "",
        use_external_validation=(root.findtext("use_external_validation") or "").lower() == "true",
        use_single_instance=(root.findtext("use_single_instance") or "").lower() == "true",
        streaming_mode=root.findtext("streaming_mode") or "",
    )
    for arg in root.iter("arg"):
        result.args[arg.get("name") or ""] = {child.tag: child.text or "" for child in arg}
    assert result.title and result.streaming_mode == "xml", result
    return result


def validate(
    python: str,
    home: SplunkHome,
    script: str,
    params: Mapping[str, str],
    name: str = "standin",
    env: Mapping[str, str] | None = None,
    server_uri: str = SERVER_URI,
) -> tuple[bool, str]:
    """Run ``--validate-arguments`` (in splunkd's environment ``env``, with splunkd at
    ``server_uri``); (True, "") if accepted, else (False, the error message)."""
    proc = run_entry(
        python,
        home.script(script),
        ["--validate-arguments"],
        stdin=validation_xml(name, params, server_uri=server_uri),
        env=home.env(env),
    )
    if proc.returncode == 0:
        return True, ""
    message = ""
    if proc.stdout.strip():
        message = ET.fromstring(proc.stdout).findtext("message") or ""
    return False, message or proc.stderr


def event_ids(events: list[Event]) -> list[str]:
    """The CloudTrail eventID of each event (its data is one JSON record)."""
    return [json.loads(event.data)["eventID"] for event in events]


def read_log(home: SplunkHome, kind: str) -> str:
    """The input's own log file, ``$SPLUNK_HOME/var/log/splunk/ta_aws_iam_error_spike_<kind>.log``."""
    with open(os.path.join(home.log_dir, f"ta_aws_iam_error_spike_{kind}.log"), encoding="utf-8") as handle:
        return handle.read()


def assert_no_secret(run: InputProcess, *secrets: str) -> None:
    """Neither the input's log, nor its stdout (splunkd's event stream), nor its stderr
    (splunkd.log) holds any of ``secrets``."""
    texts = {"log": run.log(), "stdout": run.stdout.decode("utf-8", errors="replace"), "stderr": run.stderr}
    for secret in secrets:
        leaks = [where for where, text in texts.items() if secret in text]
        assert not leaks, f"{secret!r} in the input's {', '.join(leaks)}"


def parse_events(stream: bytes) -> list[Event]:
    """Complete ``<event>`` elements of a (possibly cut) XML event stream."""
    events = []
    text = stream.decode("utf-8", errors="strict")
    for piece in text.split("</event>")[:-1]:
        start = piece.find("<event")
        element = ET.fromstring(piece[start:] + "</event>")
        events.append(
            Event(
                stanza=element.get("stanza") or "",
                unbroken=element.get("unbroken"),
                data=element.findtext("data") or "",
                time=element.findtext("time"),
                source=element.findtext("source"),
                sourcetype=element.findtext("sourcetype"),
                index=element.findtext("index"),
                host=element.findtext("host"),
                done=element.find("done") is not None,
            )
        )
    return events


class InputProcess:
    """One run of an input stanza, as splunkd starts it; stdout read in a background thread."""

    def __init__(
        self,
        python: str,
        home: SplunkHome,
        script: str,
        stanza: str,
        params: Mapping[str, str],
        checkpoint_dir: str,
        env: Mapping[str, str] | None = None,
        server_uri: str = SERVER_URI,
    ) -> None:
        if not os.path.lexists(checkpoint_dir):  # splunkd makes it; a file in its place stays
            os.makedirs(checkpoint_dir)
        self.home = home
        self.kind = stanza.split("://", 1)[0]
        self.proc: subprocess.Popen = start_entry(python, home.script(script), env=home.env(env))
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._lock = threading.Lock()
        self._count = self._counted = 0
        readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._stderr), daemon=True),
        ]
        for reader in readers:
            reader.start()
        self._readers = readers
        assert self.proc.stdin is not None
        self.proc.stdin.write(input_xml(stanza, params, checkpoint_dir, server_uri).encode("utf-8"))
        self.proc.stdin.close()

    def _pump(self, pipe, buffer: bytearray) -> None:
        while True:
            data = pipe.read1(65536) if hasattr(pipe, "read1") else pipe.read(65536)
            if not data:
                return
            with self._lock:
                buffer.extend(data)

    @property
    def stdout(self) -> bytes:
        with self._lock:
            return bytes(self._stdout)

    @property
    def stderr(self) -> str:
        with self._lock:
            return self._stderr.decode("utf-8", errors="replace")

    def events(self) -> list[Event]:
        return parse_events(self.stdout)

    def event_count(self) -> int:
        """Complete events so far, counted without parsing (for benches on big streams)."""
        with self._lock:
            end = len(self._stdout)
            self._count += self._stdout.count(b"</event>", max(0, self._counted - 7), end)
            self._counted = end
            return self._count

    def cpu_seconds(self) -> float:
        """User + system CPU time of the running input so far (Linux ``/proc``)."""
        fields = self._stat()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _stat(self) -> list[str]:
        """The fields of ``/proc/<pid>/stat`` after the command name: state, ppid, ... (Linux)."""
        with open(f"/proc/{self.proc.pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the running input so far, MB (``VmHWM``, Linux ``/proc``)."""
        with open(f"/proc/{self.proc.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmHWM for pid {self.proc.pid}")

    def wait_until(self, condition: Callable[[], object], timeout: float = 60.0) -> bool:
        """Wait until ``condition()`` holds (or the timeout, or the input's exit); whether it held.

        For waiting on the effect a test then asserts (events, a log line, a queue emptied), never
        for a fixed time: under load the bare Python's start and imports alone can take a few
        seconds. ``timeout`` only bounds a hang."""
        end = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None or time.monotonic() >= end:
                return bool(condition())
            time.sleep(0.05)
        return True

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Event]:
        """Wait until at least ``count`` complete events arrived (or the timeout, or exit)."""
        self.wait_until(lambda: len(self.events()) >= count, timeout)
        return self.events()

    def log(self) -> str:
        """The input's own log so far ("" before its first line)."""
        try:
            return read_log(self.home, self.kind)
        except FileNotFoundError:  # not written yet
            return ""

    def wait_for_log(self, text: str, timeout: float = 60.0, count: int = 1) -> str:
        """Wait until the input's own log holds ``text`` (``count`` times), or the timeout, or
        exit; the log so far."""
        self.wait_until(lambda: self.log().count(text) >= count, timeout)
        return self.log()

    def wait_quiet(self, seconds: float = 1.0, timeout: float = 60.0) -> list[Event]:
        """Wait until the input sat blocked for ``seconds`` (in a stalled read, an idle poll): no
        new output and never seen runnable. A process starved of CPU on a loaded machine is
        runnable (state ``R``), so it does not count as quiet however long it waits for a core."""
        end = time.monotonic() + timeout
        size, since = len(self.stdout), time.monotonic()
        while time.monotonic() < end and self.proc.poll() is None:
            time.sleep(0.05)
            try:
                state = self._stat()[0]
            except FileNotFoundError:  # it just exited
                break
            if len(self.stdout) != size or state == "R":
                size, since = len(self.stdout), time.monotonic()
            elif time.monotonic() - since >= seconds:
                break
        return self.events()

    def terminate(self, timeout: float = 10.0) -> float:
        """SIGTERM as splunkd does; return the seconds the process took to exit."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return float("inf")
        finally:
            self._join()
        return time.monotonic() - start

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        self.proc.kill()
        self.proc.wait()
        self._join()

    def wait(self, timeout: float = 120.0) -> int:
        code = self.proc.wait(timeout)
        self._join()
        return code

    def _join(self) -> None:
        for reader in self._readers:
            reader.join(5)


ACCOUNT_REALM = "TA-aws-iam-error-spike-account"  # the Configuration page's realms
PROXY_REALM = "TA-aws-iam-error-spike-proxy"


def _append_local_conf(home: SplunkHome, conf: str, stanza: str, keys: Mapping[str, str]) -> None:
    folder = os.path.join(home.app_dir, "local")
    os.makedirs(folder, exist_ok=True)
    lines = [f"[{stanza}]"] + [f"{key} = {value}" for key, value in keys.items()]
    with open(os.path.join(folder, conf + ".conf"), "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n\n")


def page_account(
    home: SplunkHome, name: str, key_id: str = "", secret: str = "", **keys: str
) -> list[tuple[str, str, str]]:
    """An AWS account as the Configuration page saves it: its stanza in the app's
    ``local/aws_iam_error_spike_accounts.conf`` (``auth = static_key`` with a key, else
    ``default_chain``; ``role_arn``, ``external_id``, ``regions`` from ``keys``) and, with a key,
    the storage/passwords entry holding ``KEY_ID:SECRET`` (returned, for ``FakeSplunkd``)."""
    auth = "static_key" if key_id else "default_chain"
    _append_local_conf(home, "aws_iam_error_spike_accounts", name, {"auth": auth, **keys})
    return [(ACCOUNT_REALM, name, f"{key_id}:{secret}")] if key_id else []


def page_proxy(
    home: SplunkHome, host: str, port: int, username: str = "", password: str = ""
) -> list[tuple[str, str, str]]:
    """The Configuration page's Proxy tab, saved: ``[proxy]`` of the app's
    ``local/aws_iam_error_spike_settings.conf`` and the password's storage/passwords entry."""
    keys = {"host": host, "port": str(port), "username": username}
    _append_local_conf(home, "aws_iam_error_spike_settings", "proxy", keys)
    return [(PROXY_REALM, username, password)] if username else []


class FakeSplunkd:
    """splunkd's REST API as far as a modular input uses it: ``storage/passwords`` (Atom feed),
    on loopback HTTP, answering only requests carrying the session key of the input XML.

    ``passwords``: (realm, username, clear_password) entries; ``requests``: paths asked for.
    """

    def __init__(self, passwords: list[tuple[str, str, str]]) -> None:
        self.passwords = passwords
        self.requests: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if self.headers.get("Authorization") != f"Splunk {SESSION_KEY}":
                    self.send_response(401)
                    self.end_headers()
                    return
                feed = fake.feed(self.path)
                if feed is None:  # splunkd's answer for an entry that does not exist
                    missing = escape(urllib.parse.unquote(self.path.split("?", 1)[0].rsplit("/", 1)[-1]))
                    body = (
                        '<?xml version="1.0" encoding="UTF-8"?>\n<response><messages>'
                        f'<msg type="ERROR">Could not find object id={missing}</msg></messages></response>'
                    ).encode()
                    self.send_response(404)
                    self.send_header("Content-Type", "text/xml; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                body = feed.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def feed(self, path: str) -> str | None:
        """The Atom feed answering ``path``: the collection lists every entry; a path naming one
        entry (``.../storage/passwords/<realm>:<username>:``, percent-encoded) gets that entry
        alone, or None (HTTP 404) when there is none, as splunkd answers."""
        base = path.split("?", 1)[0].rstrip("/")
        head, _, tail = base.partition("/storage/passwords")
        asked = urllib.parse.unquote(tail.lstrip("/"))
        if asked:
            base = head + "/storage/passwords"
        entries = []
        for realm, username, password in self.passwords:
            name = f"{realm}:{username}:"
            if asked and asked != name:
                continue
            entries.append(
                f"<entry><title>{escape(name)}</title><id>{self.uri}{base}/{name}</id>"
                f'<link href="{base}/{name}" rel="alternate"/>'
                '<content type="text/xml"><s:dict>'
                f'<s:key name="clear_password">{escape(password)}</s:key>'
                f'<s:key name="realm">{escape(realm)}</s:key>'
                f'<s:key name="username">{escape(username)}</s:key>'
                "</s:dict></content></entry>"
            )
        if asked and not entries:
            return None
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:s="http://dev.splunk.com/ns/rest" '
            'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"><title>passwords</title>'
            f"<opensearch:totalResults>{len(entries)}</opensearch:totalResults>{''.join(entries)}</feed>"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeSplunkd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
