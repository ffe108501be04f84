"""Headless Chromium driven over the Chrome DevTools protocol, for tests of HTML output (eval/report.py).

The protocol runs over a pipe (`--remote-debugging-pipe`: Chromium reads commands on fd 3 and writes replies on
fd 4, NUL-separated JSON), so no port, no websocket library and no network are needed.

    with Browser() as browser:
        page = browser.open("file:///…/index.html", width=1280, height=900)
        page.evaluate("document.title")
        png = page.screenshot()
        page.errors          # console errors, uncaught exceptions, failed loads
        page.requests        # every URL the page asked for

Chromium is the Debian package (`scripts/setup_chromium.sh` installs it); `find_chromium()` returns its path or None.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(RuntimeError):
    pass


def _high_fd(fd: int) -> int:
    """A copy of `fd` numbered >= 100 (so that the shell's `3<&N 4>&M` cannot clobber it), the original closed."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100)
    os.close(fd)
    return high


class Browser:
    def __init__(self, executable: str | None = None, timeout: float = 60.0):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise CDPError("chromium not found (bash scripts/setup_chromium.sh installs it)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="cdp-profile-")
        cmd_r, cmd_w = os.pipe()  # we write commands, Chromium reads them on fd 3
        out_r, out_w = os.pipe()  # Chromium writes replies on fd 4, we read them
        cmd_r, out_w = _high_fd(cmd_r), _high_fd(out_w)
        args = [self.executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"]
        shell = f'exec "$@" 3<&{cmd_r} 4>&{out_w} {cmd_r}<&- {out_w}>&-'
        self.proc = subprocess.Popen(["bash", "-c", shell, "bash", *args], pass_fds=(cmd_r, out_w),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(cmd_r)
        os.close(out_w)
        self._writer = os.fdopen(cmd_w, "wb")
        self._reader = out_r
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fh in (self._writer,):
            try:
                fh.close()
            except OSError:
                pass
        try:
            os.close(self._reader)
        except OSError:
            pass
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- protocol --------------------------------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("timed out waiting for Chromium")
            ready, _, _ = select.select([self._reader], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._reader, 1 << 20)
            if not chunk:
                stderr = self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.stderr else ""
                raise CDPError(f"Chromium closed the pipe (exit {self.proc.poll()}): {stderr}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._writer.write(json.dumps(message).encode() + b"\0")
        self._writer.flush()
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == ident:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, predicate, timeout: float | None = None) -> dict[str, Any]:
        """The first event (already received or arriving) for which `predicate(event)` is true."""
        for event in self.events:
            if predicate(event):
                return event
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if predicate(event):
                return event

    def open(self, url: str, width: int = 1280, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        page.navigate(url)
        return page


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def _mine(self, event: dict[str, Any]) -> bool:
        return event.get("sessionId") == self.session

    def navigate(self, url: str) -> None:
        self.browser.events = [e for e in self.browser.events if not self._mine(e)]
        self.send("Page.navigate", {"url": url})
        self.browser.wait_for(lambda e: self._mine(e) and e.get("method") == "Page.loadEventFired")

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": await_promise})
        if "exceptionDetails" in reply:
            raise CDPError(f"{expression!r}: {reply['exceptionDetails'].get('exception', reply['exceptionDetails'])}")
        return reply["result"].get("value")

    def wait(self, expression: str, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"timed out waiting for {expression!r}")
            time.sleep(0.05)

    def screenshot(self, full_page: bool = False) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        return base64.b64decode(self.send("Page.captureScreenshot", params)["data"])

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads of this page so far."""
        out = []
        for event in self.browser.events:
            if not self._mine(event):
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in
                                                  params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                out.append("exception: " + str(details.get("exception", {}).get("description") or details.get("text")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                out.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                out.append(f"network: {params.get('errorText')}")
        return out

    @property
    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.browser.events
                if self._mine(e) and e.get("method") == "Network.requestWillBeSent"]
