"""The browser client (clients/js/ws4redis.js) and the host's demo page in a real headless Chromium,
driven through the DevTools protocol (cdp.py): two pages chatting, messages published through Redis
and POST /publish, reconnecting after the host restarts on the same port, heartbeats (never shown,
and a silent server given up and reconnected), per-user notifications with a signed token, and no
reconnect after close(). The host only: it serves the page and the client. Screenshots go to
out/browser/ (chat.png, notifications.png)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis

from cdp import Browser, Page
from e2e_helpers import Server, http_get, original_publish, wait_until
from ws4redis.token import mint_token

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "out" / "browser"
HEARTBEAT = "--heartbeat--"
#: The demo page and POST /publish are off unless switched on (as `make run` does).
DEMO = ("--demo-page", "on", "--publish-endpoint", "on")

CHAT_LINES = "[...document.querySelectorAll('#log li:not(.system)')].map((item) => item.textContent)"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "chromium is not installed (apt-get install chromium)"
    with Browser(executable, tmp_path_factory.mktemp("chromium")) as started:
        yield started


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[[str], Page]]:
    """open_page(url) -> a page showing `url` in a window of its own, closed at teardown, where no
    script may have thrown."""
    pages: list[Page] = []

    def open_at(url: str) -> Page:
        page = browser.new_page()
        pages.append(page)
        page.navigate(url)
        return page

    yield open_at
    thrown = []
    for page in pages:
        page.evaluate("0")  # collects the events that arrived meanwhile
        thrown += [event["exceptionDetails"] for event in page.events("Runtime.exceptionThrown")]
        browser.close_page(page)
    assert not thrown, f"uncaught exceptions in the pages: {thrown}"


def demo_url(server: Server, query: str = "") -> str:
    return f"http://127.0.0.1:{server.port}/" + (f"?{query}" if query else "")


def wait_connected(page: Page) -> None:
    page.wait_for("document.getElementById('status').textContent === 'connected'", "the chat to connect")


def send_chat(page: Page, text: str) -> None:
    """Types `text` into the chat form and submits it as a user would."""
    page.evaluate(f"document.getElementById('text').value = {json.dumps(text)}; "
                  "document.getElementById('send').requestSubmit()")


def wait_chat_line(page: Page, text: str, who: str) -> None:
    page.wait_for(f"{CHAT_LINES}.includes({json.dumps(text)})", f"{text!r} in the chat of {who}")


def post_publish(server: Server, facility: str, text: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", f"/publish?facility={facility}", body=text.encode())
        response = connection.getresponse()
        assert response.status == 200, f"POST /publish: {response.status} {response.read()!r}"
    finally:
        connection.close()


def restart_on_same_port(server: Server) -> None:
    """Stops the host (SIGTERM, exit 0) and starts the same command again: same port, same log."""
    code = server.terminate()
    assert code == 0, f"the host exited with {code} on SIGTERM\n{server.log_tail()}"
    server.returncode = None
    server.start()


def test_client_is_served_from_the_binary(server_factory: Callable[..., Server]) -> None:
    """GET /ws4redis.js answers clients/js/ws4redis.js byte for byte (built into the binary), as
    JavaScript; other methods get 405."""
    server = server_factory("host")
    status, headers, body = http_get(server.port, "/ws4redis.js")
    assert status == 200, f"GET /ws4redis.js answered {status}"
    assert headers["content-type"].startswith("application/javascript"), headers
    assert body == (REPO / "clients" / "js" / "ws4redis.js").read_bytes(), "the served client differs from clients/js/ws4redis.js"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", "/ws4redis.js", body=b"x")
        assert connection.getresponse().status == 405
    finally:
        connection.close()


def test_two_pages_chat_and_see_published_messages(server_factory: Callable[..., Server], open_page: Callable[[str], Page],
                                                   r: redis.Redis) -> None:
    """Each page sees the other's message (and its own: echo), then what an app publishes with the
    original's RedisPublisher commands and with POST /publish. Saves the screenshot."""
    server = server_factory("host", *DEMO)
    alice, bob = open_page(demo_url(server)), open_page(demo_url(server))
    for page in (alice, bob):
        wait_connected(page)
    server.wait_stats(lambda s: s["subscriptions"] == 2, "both pages subscribed")

    send_chat(alice, "hello from alice")
    for page, who in ((bob, "bob"), (alice, "alice")):
        wait_chat_line(page, "hello from alice", who)
    send_chat(bob, "hi alice, bob here")
    for page, who in ((alice, "alice"), (bob, "bob")):
        wait_chat_line(page, "hi alice, bob here", who)

    assert original_publish(r, "published through Redis", "chat", broadcast=True) == 1, "one Redis subscriber: the host"
    post_publish(server, "chat", "published with POST /publish")
    for page, who in ((alice, "alice"), (bob, "bob")):
        wait_chat_line(page, "published with POST /publish", who)
        assert page.evaluate(CHAT_LINES) == ["hello from alice", "hi alice, bob here", "published through Redis",
                                             "published with POST /publish"], f"the chat of {who}"
    alice.screenshot(SCREENSHOTS / "chat.png")


def test_page_reconnects_after_the_host_restarts(server_factory: Callable[..., Server], open_page: Callable[[str], Page]) -> None:
    """The host stops (the page sees 1001 and retries with back-off) and starts again on the same
    port: the page reconnects by itself and gets what is published afterwards."""
    server = server_factory("host", *DEMO)
    page = open_page(demo_url(server))
    wait_connected(page)
    server.wait_stats(lambda s: s["subscriptions"] == 1, "the page subscribed")

    restart_on_same_port(server)
    page.wait_for("[...document.querySelectorAll('#log li.system')].some((item) => item.textContent === 'reconnected')",
                  "the page to reconnect")
    server.wait_stats(lambda s: s["subscriptions"] == 1, "the page subscribed to the restarted host")
    post_publish(server, "chat", "after the restart")
    wait_chat_line(page, "after the restart", "the reconnected page")


def test_heartbeats_are_hidden_and_a_silent_server_is_given_up(server_factory: Callable[..., Server], open_page: Callable[[str], Page]) -> None:
    """With --heartbeat the page gets heartbeats (seen on the wire) but never shows one. When the host
    freezes (SIGSTOP: the TCP connection stays open, nothing arrives), the client gives the
    connection up after the missed heartbeats and reconnects once the host runs again."""
    server = server_factory("host", *DEMO, "--heartbeat", HEARTBEAT, "--heartbeat-interval", "300")
    page = open_page(demo_url(server))
    wait_connected(page)

    def heartbeats_received() -> int:
        page.evaluate("0")  # collects the events that arrived meanwhile
        frames = page.events("Network.webSocketFrameReceived")
        return sum(1 for frame in frames if frame["response"]["payloadData"] == HEARTBEAT)

    wait_until(lambda: heartbeats_received() >= 3, 10, "three heartbeats at the page")
    post_publish(server, "chat", "a real message")
    wait_chat_line(page, "a real message", "the page")
    assert page.evaluate(CHAT_LINES) == ["a real message"], "heartbeats must not show up as messages"

    os.kill(server.pid, signal.SIGSTOP)
    try:
        page.wait_for("document.getElementById('status').textContent.includes('missed heartbeats')",
                      "the client to give the silent connection up")
    finally:
        os.kill(server.pid, signal.SIGCONT)
    wait_connected(page)
    server.wait_stats(lambda s: s["connections_total"] >= 2 and s["connections"] == 1 and s["subscriptions"] == 1,
                      "the given-up connection gone and the new one subscribed")
    post_publish(server, "chat", "after the freeze")
    wait_chat_line(page, "after the freeze", "the reconnected page")
    assert HEARTBEAT not in page.evaluate(CHAT_LINES)


def test_notifications_reach_only_their_user(server_factory: Callable[..., Server], open_page: Callable[[str], Page],
                                              r: redis.Redis) -> None:
    """A page opened with alice's token shows what is published to user alice on "notifications";
    a page without a token explains how to get one and shows nothing of it."""
    secret = "browser-test-secret, 32 bytes or more"
    server = server_factory("host", *DEMO, "--token-secret", secret)
    token = mint_token(secret, user="alice")
    alice = open_page(demo_url(server, f"ws4redis-token={token}"))
    anonymous = open_page(demo_url(server))
    alice.wait_for("document.getElementById('notify-status').textContent === 'Notifications for alice'",
                   "alice's notifications to connect")
    assert "ws4redis-token" in anonymous.evaluate("document.getElementById('notify-status').textContent")
    for page in (alice, anonymous):
        wait_connected(page)
    server.wait_stats(lambda s: s["subscriptions"] == 3, "two chats and alice's notifications subscribed")

    assert original_publish(r, "your report is ready", "notifications", users=["alice"]) == 1
    original_publish(r, "for everyone", "chat", broadcast=True)
    notifications = "[...document.querySelectorAll('#notify-log li')].map((item) => item.textContent)"
    alice.wait_for(f"{notifications}.includes('your report is ready')", "the notification at alice's page")
    wait_chat_line(anonymous, "for everyone", "the anonymous page")
    assert anonymous.evaluate(notifications) == []
    assert alice.evaluate(CHAT_LINES) == anonymous.evaluate(CHAT_LINES) == ["for everyone"]
    alice.screenshot(SCREENSHOTS / "notifications.png")


def test_client_sends_and_close_is_for_good(server_factory: Callable[..., Server], open_page: Callable[[str], Page]) -> None:
    """A second client in the page publishes to the chat; close() is for good: though it would
    retry within 10 ms, it opens no further connection."""
    server = server_factory("host", *DEMO)
    page = open_page(demo_url(server))
    wait_connected(page)
    page.evaluate(f"""window.probe = {{ events: [] }};
        window.probe.client = WS4Redis({{
          uri: "ws://127.0.0.1:{server.port}/ws/chat?publish-broadcast",
          reconnect_delay: 10, max_reconnect_delay: 10,
          connecting: () => window.probe.events.push("connecting"),
          connected: () => window.probe.events.push("connected"),
          disconnected: (event) => window.probe.events.push("disconnected " + event.code),
        }});""")
    page.wait_for("window.probe.events.includes('connected')", "the second client to connect")
    opened = server.wait_stats(lambda s: s["connections"] == 2, "both clients connected")["connections_total"]
    page.evaluate("window.probe.client.send_message('sent by the probe')")
    wait_chat_line(page, "sent by the probe", "the page's chat")
    page.evaluate("window.probe.client.close()")
    page.wait_for("window.probe.events.includes('disconnected 1000')", "the close to complete")
    server.wait_stats(lambda s: s["connections"] == 1, "the closed client gone")
    # 50 retry delays later: still closed, and no connection was opened meanwhile.
    time.sleep(0.5)
    assert page.evaluate("window.probe.client.get_state()") == 3, "the websocket is CLOSED"
    assert page.evaluate("window.probe.events") == ["connecting", "connected", "disconnected 1000"]
    assert server.stats()["connections_total"] == opened
