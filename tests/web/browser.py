"""Debian's headless Chromium driven over the DevTools protocol on a pipe (no WebDriver, no
websocket library): ``--remote-debugging-pipe`` reads JSON commands on fd 3 and writes answers
and events on fd 4, each message ended by a NUL byte.

``Page`` adds what the tests need: navigate, evaluate (promises awaited), wait for a condition,
type into React-controlled fields, click, pick an option of a Splunk UI ``Select``, screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any

BROWSERS = ("chromium", "chromium-browser")


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """Debian's chromium on PATH (or $CHROMIUM), else None."""
    chosen = os.environ.get("CHROMIUM")
    if chosen:
        return chosen if os.path.exists(chosen) else None
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_fd(fd: int) -> int:
    """A close-on-exec copy of ``fd`` numbered 10 or more (dup2 onto 3 and 4 cannot clobber it)."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)


class Chromium:
    def __init__(self, binary: str, width: int = 1400, height: int = 1000) -> None:
        self.profile = tempfile.mkdtemp(prefix="iamspike-chromium-")
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        child_in, child_out = _high_fd(to_chrome_r), _high_fd(from_chrome_w)
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)

        def wire() -> None:  # in the child, before exec: fds 3 and 4 as chromium wants them
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.proc = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            close_fds=False,  # closing would happen after wire() and take 3 and 4 away
            preexec_fn=wire,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(child_in)
        os.close(child_out)
        self._write = os.fdopen(to_chrome_w, "wb", buffering=0)
        self._read = os.fdopen(from_chrome_r, "rb", buffering=0)
        self._next = 0
        self._answers: dict[int, dict] = {}
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self.width, self.height = width, height

    def _pump(self) -> None:
        buffer = b""
        while True:
            chunk = self._read.read(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._answers[message["id"]] = message
                        self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30
    ) -> dict:
        with self._cond:
            self._next += 1
            ident = self._next
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._write.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise BrowserError(f"no answer to {method} from chromium")
                self._cond.wait(left)
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def new_page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        return page

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for handle in (self._write, self._read):
            handle.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# Helpers installed in the page: React reads a field's value from its own setter's tracker, so
# a value is set through the prototype's setter and announced with an input event.
_HELPERS = r"""
window.__t = {
  el(sel) {
    const e = document.querySelector(sel);
    if (!e) throw new Error('no element ' + sel);
    return e;
  },
  input(sel) {
    const e = this.el(sel);
    return e.matches('input,textarea') ? e : e.querySelector('input,textarea');
  },
  type(sel, value) {
    const e = this.input(sel);
    const proto = e.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, 'value').set.call(e, value);
    e.dispatchEvent(new Event('input', { bubbles: true }));
  },
  click(sel) {
    const e = this.el(sel);
    const live = 'button,a,input,[role=switch],[role=tab],[role=radio]';
    const t = e.matches(live) ? e : e.querySelector(live) || e;  // a component's wrapper
    t.scrollIntoView({ block: 'center' });
    t.click();
  },
  text(sel) { const e = document.querySelector(sel); return e ? e.innerText : ''; },
};
"""


class Page:
    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        return self.browser.send(method, params, self.session, timeout)

    def goto(self, url: str, ready: str = "document.readyState === 'complete'", timeout: float = 30) -> None:
        self.send("Page.navigate", {"url": url})
        time.sleep(0.2)
        self.wait(ready, timeout)

    def eval(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:80]}: {text}")
        return result.get("result", {}).get("value")

    def wait(self, condition: str, timeout: float = 20) -> Any:
        """Poll ``condition`` (JS) until it is truthy; BrowserError naming it if it never is."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(
                    f"(() => {{ try {{ return {condition}; }} catch (e) {{ return null; }} }})()"
                )
            except BrowserError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {condition}")
            time.sleep(0.1)

    def _helpers(self) -> None:
        if not self.eval("!!window.__t"):
            self.eval(_HELPERS)

    def type(self, selector: str, value: str) -> None:
        self._helpers()
        self.eval(f"__t.type({json.dumps(selector)}, {json.dumps(value)})")

    def click(self, selector: str) -> None:
        self._helpers()
        self.eval(f"__t.click({json.dumps(selector)})")

    def text(self, selector: str) -> str:
        self._helpers()
        return self.eval(f"__t.text({json.dumps(selector)})") or ""

    def choose(self, selector: str, label: str) -> None:
        """Open the Splunk UI ``Select`` at ``selector`` and click its option ``label``."""
        self.wait(f"!!document.querySelector({json.dumps(selector)})")
        self.click(selector)
        options = "[...document.querySelectorAll('[role=option],[role=menuitemradio],[role=menuitem]')]"
        pick = (
            f"(o => o ? (o.click(), true) : false)({options}"
            f".find(e => e.innerText.trim() === {json.dumps(label)}))"
        )
        self.wait(pick, 10)

    def screenshot(self, path: str) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(data))
