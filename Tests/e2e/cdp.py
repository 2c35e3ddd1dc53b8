"""A headless Chromium driven through the DevTools protocol (CDP), for the browser tests.

Chromium (Debian package `chromium`) starts with `--remote-debugging-port=0` and writes the port it
took to DevToolsActivePort in its profile directory. Each page is a target with a DevTools websocket
of its own (the synchronous client of `websockets`); events that arrive while a command waits for its
answer are kept by method, so a test can look at them later (Network.webSocketFrameReceived, ...).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import itertools
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from e2e_helpers import wait_until

#: Upper bound for Chromium to start listening for DevTools.
BROWSER_START_TIMEOUT = 30.0
#: Upper bound for one DevTools command (screenshots included).
COMMAND_TIMEOUT = 15.0

# Every page counts as visible: timers of a page in the background are throttled, which would slow
# heartbeats and reconnects down arbitrarily.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the tests may run as root
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--window-size=900,900",
)


class CDPError(AssertionError):
    """A DevTools command failed, or a page script threw."""


class Session:
    """A DevTools websocket to one target (the browser, or a page)."""

    def __init__(self, websocket_url: str):
        self._closing = contextlib.ExitStack()
        self._socket: ClientConnection = self._closing.enter_context(connect(websocket_url, max_size=None, open_timeout=10))
        self._ids = itertools.count(1)
        self._events: dict[str, list[dict[str, Any]]] = {}

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Sends a command and returns its result; events arriving meanwhile are kept."""
        command_id = next(self._ids)
        self._socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=COMMAND_TIMEOUT))
            if "method" in message:
                self._events.setdefault(message["method"], []).append(message.get("params", {}))
            elif message.get("id") == command_id:
                if "error" in message:
                    raise CDPError(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def events(self, method: str) -> list[dict[str, Any]]:
        """The events of `method` received so far (enable their domain first)."""
        return self._events.get(method, [])

    def close(self) -> None:
        self._closing.close()


class Page(Session):
    """One browser window: navigate, evaluate JavaScript, wait for a condition, screenshot."""

    def __init__(self, target_id: str, websocket_url: str):
        super().__init__(websocket_url)
        self.target_id = target_id

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CDPError(f"{expression!r} threw: {details.get('exception', {}).get('description') or details.get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 15.0) -> Any:
        """Polls a JavaScript expression until it is truthy and returns its value."""
        return wait_until(lambda: self.evaluate(expression), timeout, what, interval=0.05)

    def navigate(self, url: str) -> None:
        """Opens `url` and waits until the document and its scripts are loaded."""
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise CDPError(f"cannot open {url}: {result['errorText']}")
        self.wait_for(f"document.readyState === 'complete' && location.href === {json.dumps(url)}", f"{url} to load")

    def screenshot(self, path: Path) -> None:
        """Saves a PNG of the visible part of the page."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))


class Browser:
    """A headless Chromium process with a private profile; a context manager."""

    def __init__(self, executable: str, profile: Path):
        self.executable = executable
        self.profile = profile
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._session: Session | None = None
        self._pages: list[Page] = []

    def __enter__(self) -> "Browser":
        log = open(self.profile / "chromium.log", "ab")
        argv = [self.executable, *CHROMIUM_FLAGS, "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "about:blank"]
        # A session of its own: stop() ends Chromium's helper processes with it.
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            self.port = wait_until(self._devtools_port, BROWSER_START_TIMEOUT, "Chromium to listen for DevTools", interval=0.1)
            self._session = Session(json.loads(self._request("GET", "/json/version"))["webSocketDebuggerUrl"])
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _devtools_port(self) -> int:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"Chromium exited with {self._process.returncode}: {self.log_tail()}")
        lines = (self.profile / "DevToolsActivePort").read_text().splitlines()
        return int(lines[0])

    def _request(self, method: str, path: str) -> bytes:
        """A request to the DevTools HTTP endpoint; its body."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=COMMAND_TIMEOUT)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, f"DevTools {method} {path}: {response.status} {body[:200]!r}"
            return body
        finally:
            connection.close()

    def new_page(self) -> Page:
        """A new window on about:blank, with the Page, Runtime and Network domains enabled. A window
        of its own keeps every page visible (tabs behind another one are hidden)."""
        assert self._session is not None
        target_id = self._session.call("Target.createTarget", url="about:blank", newWindow=True)["targetId"]
        page = Page(target_id, f"ws://127.0.0.1:{self.port}/devtools/page/{target_id}")
        self._pages.append(page)
        for domain in ("Page", "Runtime", "Network"):
            page.call(f"{domain}.enable")
        return page

    def close_page(self, page: Page) -> None:
        assert self._session is not None
        page.close()
        self._pages.remove(page)
        self._session.call("Target.closeTarget", targetId=page.target_id)

    def stop(self) -> None:
        for session in (*self._pages, *([self._session] if self._session else [])):
            session.close()
        self._pages.clear()
        self._session = None
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.profile / "chromium.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
