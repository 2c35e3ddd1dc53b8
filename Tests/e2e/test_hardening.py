"""Safe by default and faithful to the original (issue 18), seen from outside in every hosting mode:
identity flags without an identity are dropped as the original drops them, facility names are
bounded, a flooding client is closed, a client is told when its message did not reach Redis, one
address cannot take every socket, the first heartbeat follows the last frame by its interval, and a
deployment that lets clients choose Redis keys is warned about at start."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis
from websockets.exceptions import ConnectionClosed

from e2e_helpers import (
    LocalHTTPServer,
    RedisServer,
    Server,
    assert_refused,
    free_port,
    http_get,
    open_client,
    original_publish,
    raw_handshake,
    raw_websocket,
    receive_one,
    run_async,
    wait_until,
)
from ws4redis import native


def metric(server: Server, name: str) -> float:
    status, _, body = http_get(server.port, "/metrics")
    assert status == 200, f"/metrics answered {status}"
    values = [float(line.split()[-1]) for line in body.decode().splitlines() if line.startswith(name + " ") or line.startswith(name + "{")]
    return sum(values)


async def closed_with(ws: Any, timeout: float, what: str) -> tuple[int, str]:
    """Reads until the server closes; returns its close code and reason."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed:
        assert ws.close_code is not None, f"{what}: closed without a close frame"
        return ws.close_code, ws.close_reason or ""
    except TimeoutError:
        raise AssertionError(f"{what}: not closed within {timeout}s") from None


# ---------------------------------------------------------------------------------------------
# Compatibility


@pytest.mark.parametrize("source", ["none", "auth request"])
def test_identity_flags_without_an_identity_are_dropped(mode: str, source: str, server_factory: Callable[..., Server], r: redis.Redis,
                                                        counting_app: CountingAuthApp) -> None:
    """A page opening ?subscribe-broadcast&subscribe-user for every visitor: an anonymous one gets the
    broadcast, and no junk channel is subscribed or published to (as with the original). Without a
    cookie the auth app grants without naming anyone."""
    args = ["--auth-url", f"http://127.0.0.1:{counting_app.port}/auth"] if source == "auth request" else []
    server = server_factory(mode, *args)

    async def body() -> None:
        visitor = await open_client(server.url("news", "subscribe-broadcast&subscribe-user&subscribe-session&publish-user&echo"))
        try:
            channels = wait_until(lambda: r.pubsub_channels(), 10, "the visitor's subscription")
            assert channels == [b"broadcast:news"], f"subscribed to {channels}: the identity flags must be dropped, not mapped to junk"
            original_publish(r, "hello visitor", "news", broadcast=True, expire=0)
            assert await receive_one(visitor, 10, "the broadcast") == "hello visitor"
            await visitor.send("from the visitor")
            wait_until(lambda: metric(server, "ws4redis_client_messages_total") >= 1, 10, "the visitor's message to be taken")
            original_publish(r, "still open", "news", broadcast=True, expire=0)
            assert await receive_one(visitor, 10, "the visitor is still served") == "still open"
        finally:
            await visitor.close()

    run_async(body(), 60, "dropped identity flags")
    assert r.keys("*") == [], f"publish-user without a user must not store anything: {r.keys('*')}"
    assert metric(server, "ws4redis_identity_flags_dropped_total") >= 1


def test_missing_identity_refuse_keeps_the_403(mode: str, server_factory: Callable[..., Server]) -> None:
    server = server_factory(mode, "--missing-identity", "refuse")
    assert_refused(server.port, "/ws/news?subscribe-broadcast&subscribe-user", 403, "subscribe-user", what=f"{mode}, refuse")
    status, _, _ = raw_handshake(server.port, "/ws/news?subscribe-broadcast")
    assert status == 101


# ---------------------------------------------------------------------------------------------
# Facility names


def test_facility_names_are_bounded_and_printable(mode: str, server_factory: Callable[..., Server]) -> None:
    server = server_factory(mode)
    assert_refused(server.port, "/ws/" + "f" * 256 + "?subscribe-broadcast", 400, "at most 255", what="256-byte facility")
    assert_refused(server.port, "/ws/x%0Aforged%20line?subscribe-broadcast", 400, "control character", what="%0A in the facility")
    assert_refused(server.port, "/ws/x%1B%5B31m?subscribe-broadcast", 400, "control character", what="ESC in the facility")
    assert_refused(server.port, "/ws/bad%FFutf8?subscribe-broadcast", 400, "UTF-8", what="invalid UTF-8")
    for path in ("/ws/" + "f" * 255, "/ws/chat:room1", "/ws/caf%C3%A9"):
        status, _, body = raw_handshake(server.port, path + "?subscribe-broadcast")
        assert status == 101, f"{path}: {status} {body!r}"
    log = server.log_path.read_text(errors="replace")
    assert not any(line.startswith("forged") for line in log.splitlines()), "a client wrote a line of its own into the log"


# ---------------------------------------------------------------------------------------------
# Flooding clients


def test_a_flooding_client_is_closed_with_1008(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    server = server_factory(mode, "--client-message-rate", "20", "--client-message-burst", "10", "--expire", "0")

    async def body() -> None:
        bystander = await open_client(server.url("flood", "subscribe-broadcast"))
        flooder = await open_client(server.url("flood", "publish-broadcast"))
        try:
            # Only what is published after Redis confirmed the bystander's SUBSCRIBE can reach it.
            await server.await_stats(lambda s: s["subscriptions"] == 1, "the bystander's confirmed subscription")
            for index in range(200):
                try:
                    await flooder.send(f"spam {index}")
                except ConnectionClosed:
                    break
            code, reason = await closed_with(flooder, 10, "the flooder")
            assert code == 1008 and "messages per second" in reason, f"closed with {code} {reason!r}"
            got = 0
            try:
                while True:
                    await asyncio.wait_for(bystander.recv(), 1.0)
                    got += 1
            except TimeoutError:
                pass
            assert 1 <= got <= 20, f"the bystander got {got} of the flood: the burst is 10 messages"
            original_publish(r, "after", "flood", broadcast=True, expire=0)
            assert await receive_one(bystander, 10, "the bystander is still served") == "after"
        finally:
            await bystander.close()

    run_async(body(), 60, "flood")
    assert metric(server, "ws4redis_rate_limited_closes_total") == 1


def test_the_default_byte_rate_stops_a_stream_of_largest_messages(mode: str, server_factory: Callable[..., Server]) -> None:
    """Defaults no real page reaches: 1 MiB/s with an 8 MiB burst; 20 MiB at once is a flood."""
    server = server_factory(mode, "--expire", "0")

    async def body() -> None:
        flooder = await open_client(server.url("bytes", "publish-broadcast"))
        payload = "x" * (1 << 20)
        for _ in range(20):
            try:
                await flooder.send(payload)
            except ConnectionClosed:
                break
        code, reason = await closed_with(flooder, 20, "the byte flooder")
        assert code == 1008 and "bytes per second" in reason, f"closed with {code} {reason!r}"

    run_async(body(), 90, "byte flood")


# ---------------------------------------------------------------------------------------------
# A message Redis did not take


def test_a_sender_is_told_when_redis_refuses_or_is_gone(mode: str, server_factory: Callable[..., Server], own_redis: RedisServer) -> None:
    server = server_factory(mode, redis_url=own_redis.url)
    control = own_redis.client()

    async def body() -> None:
        sender = await open_client(server.url("told", "subscribe-broadcast&publish-broadcast"))
        await sender.send("accepted")
        wait_until(lambda: control.get("broadcast:told") == b"accepted", 10, "the first message to be published and stored")
        control.config_set("maxmemory-policy", "noeviction")
        control.config_set("maxmemory", "1")
        try:
            await sender.send("refused by Redis")
            code, reason = await closed_with(sender, 10, "a sender whose message Redis refused")
            assert code == 1011 and "may not have been published" in reason, f"closed with {code} {reason!r}"
        finally:
            control.config_set("maxmemory", "0")

        second = await open_client(server.url("told", "subscribe-broadcast&publish-broadcast"))
        wait_until(lambda: control.pubsub_numsub("broadcast:told")[0][1] >= 1, 10, "the second sender's subscription")
        own_redis.stop()
        wait_until(lambda: server.health()[1].get("redis_connected") is False, 15, "the server to notice Redis is gone")
        try:
            await second.send("nowhere to go")
        except ConnectionClosed:
            pass
        code, reason = await closed_with(second, 10, "a sender while Redis is gone")
        assert code == 1013 and "may not have been published" in reason, f"closed with {code} {reason!r}"

    try:
        run_async(body(), 60, "told")
    finally:
        control.close()
    assert metric(server, "ws4redis_client_publish_failures_total") >= 2


# ---------------------------------------------------------------------------------------------
# Connections per address


def test_connections_per_address_are_limited(mode: str, server_factory: Callable[..., Server]) -> None:
    server = server_factory(mode, "--max-connections-per-ip", "2", "--trusted-proxies", "127.0.0.1")
    sockets: list[socket.socket] = []
    try:
        for _ in range(2):
            assert kept_open(server.port, "/ws/ip?subscribe-broadcast", sockets)
        assert_refused(server.port, "/ws/ip?subscribe-broadcast", 429, "most allowed", what="a third from 127.0.0.1")
        assert kept_open(server.port, "/ws/ip?subscribe-broadcast", sockets, {"X-Forwarded-For": "203.0.113.9"}), \
            "another client behind the trusted proxy has its own count"
        sockets.pop(0).close()
        wait_until(lambda: kept_open(server.port, "/ws/ip?subscribe-broadcast", sockets), 10,
                   "a slot to come back once a websocket of that address closed")
    finally:
        for s in sockets:
            s.close()
    assert metric(server, 'ws4redis_handshakes_total{status="429"}') >= 1


def kept_open(port: int, path: str, keep: list[socket.socket], headers: dict[str, str] | None = None) -> bool:
    """Whether a websocket of `path` was accepted; its socket stays open in `keep`."""
    try:
        keep.append(raw_websocket(port, path, headers))
        return True
    except AssertionError:
        return False


# ---------------------------------------------------------------------------------------------
# Heartbeats


def test_the_first_heartbeat_follows_the_last_frame_by_its_interval(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """The original sends its heartbeat about 4 s after the socket went quiet; a client counting missed
    heartbeats must not wait up to two intervals for the first one."""
    interval = 2.0
    server = server_factory(mode, "--heartbeat", "--heartbeat--", "--heartbeat-interval", str(int(interval * 1000)))

    async def body() -> None:
        ws = await open_client(server.url("beat", "subscribe-broadcast"))
        try:
            wait_until(lambda: r.pubsub_numsub("broadcast:beat")[0][1] >= 1, 10, "the subscription")
            await asyncio.sleep(0.7)
            original_publish(r, "last frame", "beat", broadcast=True, expire=0)
            assert await receive_one(ws, 10, "the message") == "last frame"
            sent = time.monotonic()
            assert await receive_one(ws, 3 * interval, "the heartbeat") == "--heartbeat--"
            quiet = time.monotonic() - sent
            assert quiet >= interval * 0.95, f"the heartbeat came {quiet:.2f}s after the last frame, before the interval"
            assert quiet <= interval * 1.4, f"the first heartbeat came {quiet:.2f}s after the last frame, the interval is {interval}s"
        finally:
            await ws.close()

    run_async(body(), 60, "heartbeat")


# ---------------------------------------------------------------------------------------------
# Start-up warnings


def test_client_chosen_keys_are_warned_about_at_start(mode: str, server_factory: Callable[..., Server]) -> None:
    warning = "clients may publish and no prefix is set"
    default = server_factory(mode)
    prefixed = server_factory(mode, "--prefix", "app")
    narrowed = server_factory(mode, "--allowed-flags", "subscribe-broadcast,subscribe-user")
    wait_until(lambda: warning in default.log_path.read_text(errors="replace"), 10, "the warning of a server without prefix")
    for quiet in (prefixed, narrowed):
        assert warning not in quiet.log_path.read_text(errors="replace"), f"warned with {quiet.argv}"


# ---------------------------------------------------------------------------------------------
# Identity sources


def hand_minted(secret: str, user: str, expires_at: int = 4102444800) -> str:
    """A token as an older or foreign minter would make it, with no check of the names."""
    payload = f"v1\n{user}\n\n\n{expires_at}".encode()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return b64(payload) + "." + b64(hmac.new(secret.encode(), payload, hashlib.sha256).digest())


SECRET = "hardening e2e secret of 32 bytes or more"


def test_token_names_and_lifetimes_are_checked(mode: str, server_factory: Callable[..., Server]) -> None:
    server = server_factory(mode, "--token-secret", SECRET, "--token-max-lifetime", "3600")
    now = int(time.time())
    assert_refused(server.port, f"/ws/x?subscribe-user&ws4redis-token={hand_minted(SECRET, 'alice:chat', now + 600)}", 403, "':'",
                   what="a user with ':' in a token")
    assert_refused(server.port, f"/ws/x?subscribe-user&ws4redis-token={hand_minted(SECRET, 'alice', now + 7200)}", 403, "longer than",
                   what="a token valid for 2 h with token_max_lifetime 1 h")
    good = hand_minted(SECRET, "alice", now + 600)
    assert raw_handshake(server.port, f"/ws/x?subscribe-user&ws4redis-token={good}")[0] == 101
    assert_refused(server.port, f"/ws/x?subscribe-user&ws4redis-token={good}=", 403, "malformed", what="a padded spelling of a good token")


def test_short_token_secrets_are_refused_at_start(mode: str, prefix: Path, redis_server: RedisServer, tmp_path: Path) -> None:
    server = Server(mode, prefix, redis_server.url, tmp_path / "short.log", ["--token-secret", "s3cret"])
    with pytest.raises(AssertionError):
        server.start()
    server.terminate()
    assert "at least 32" in server.log_path.read_text(errors="replace"), server.log_tail()


class CountingAuthApp:
    """An HTTP/1.1 keep-alive app that counts the connections and requests it gets. Cookie
    `who=<name>` grants that user (`who=alice:chat` too: the server must refuse it), `who=nobody`
    is 401, `who=slow` waits for `release`."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[dict[str, str | None]] = []
        self.release = threading.Event()
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                app.connections += 1
                super().setup()

            def do_GET(self) -> None:  # noqa: N802
                cookie = self.headers.get("Cookie") or ""
                who = cookie.partition("who=")[2].split(";")[0]
                app.requests.append({"who": who, "forwarded": self.headers.get("X-Forwarded-For")})
                if who == "slow":
                    app.release.wait(20)
                self.send_response(401 if who == "nobody" else 200)
                if who not in ("nobody", "slow", ""):
                    self.send_header("X-WS4Redis-User", who)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = LocalHTTPServer(Handler)
        self.port = self.server.port

    def close(self) -> None:
        self.release.set()
        self.server.close()


@pytest.fixture
def counting_app() -> Iterator[CountingAuthApp]:
    app = CountingAuthApp()
    try:
        yield app
    finally:
        app.close()


def test_auth_requests_reuse_connections_and_refuse_unusable_names(mode: str, server_factory: Callable[..., Server],
                                                                   counting_app: CountingAuthApp) -> None:
    server = server_factory(mode, "--auth-url", f"http://127.0.0.1:{counting_app.port}/auth", "--threads", "1")
    for index in range(10):
        status, _, body = raw_handshake(server.port, "/ws/a?subscribe-user", {"Cookie": f"who=user{index}"})
        assert status == 101, f"handshake {index}: {status} {body!r}"
    assert len(counting_app.requests) == 10
    assert counting_app.connections <= 2, f"{counting_app.connections} connections for 10 sequential auth requests: not kept alive"
    assert_refused(server.port, "/ws/a?subscribe-user", 502, "':'", headers={"Cookie": "who=alice:chat"}, what="an answer naming alice:chat")


def test_auth_requests_under_way_are_capped(mode: str, server_factory: Callable[..., Server], counting_app: CountingAuthApp) -> None:
    server = server_factory(mode, "--auth-url", f"http://127.0.0.1:{counting_app.port}/auth", "--auth-concurrency", "2",
                            "--auth-timeout", "15000")
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(raw_handshake(server.port, "/ws/c", {"Cookie": "who=slow"}, timeout=20)[0]))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: sum(1 for r in counting_app.requests if r["who"] == "slow") == 2, 10, "two slow auth requests under way")
        assert_refused(server.port, "/ws/c", 503, "under way", headers={"Cookie": "who=bob"}, what="a third while two are under way")
    finally:
        counting_app.release.set()
        for thread in threads:
            thread.join(20)
    assert sorted(results) == [101, 101], results


def test_the_auth_cache_keys_on_the_client_address_and_keeps_no_denials(mode: str, server_factory: Callable[..., Server],
                                                                         counting_app: CountingAuthApp) -> None:
    server = server_factory(mode, "--auth-url", f"http://127.0.0.1:{counting_app.port}/auth", "--auth-cache", "60000",
                            "--trusted-proxies", "127.0.0.1")
    for address in ("198.51.100.1", "198.51.100.1", "198.51.100.2"):
        assert raw_handshake(server.port, "/ws/k?subscribe-user", {"Cookie": "who=carol", "X-Forwarded-For": address})[0] == 101
    asked = [r["forwarded"] for r in counting_app.requests if r["who"] == "carol"]
    assert asked == ["198.51.100.1", "198.51.100.2"], f"the app was asked for {asked}: one answer per address, reused for the same one"
    for _ in range(3):
        assert_refused(server.port, "/ws/k?subscribe-user", 401, (), headers={"Cookie": "who=nobody"})
    assert sum(1 for r in counting_app.requests if r["who"] == "nobody") == 3, "a denial is asked again, never cached"


def test_authorization_callbacks_are_bounded_and_skipped_once_timed_out(library_path: Path, redis_server: RedisServer) -> None:
    """One worker thread and a queue of one: a third handshake while two wait is a 503 at once; a
    handshake that timed out while queued never reaches the callback; a ':' name is refused."""
    port = free_port()
    server = native.Server("--listen", f"127.0.0.1:{port}", "--redis-url", redis_server.url, "--threads", "1", "--authorizer-threads", "1",
                           "--authorizer-queue", "1", "--authorizer-timeout", "500", library=library_path)
    release = threading.Event()
    called: list[str] = []

    def authorize(request: dict[str, Any]) -> dict[str, Any] | None:
        called.append(request["facility"])
        if request["facility"] == "block":
            release.wait(20)
        if request["facility"] == "colon":
            return {"user": "alice:chat"}
        if request["facility"] == "anonymous":
            return None
        return {"user": "u"}

    server.set_authorizer(authorize)
    server.start()
    try:
        statuses: dict[str, int] = {}
        blocker = threading.Thread(target=lambda: statuses.setdefault("block", raw_handshake(port, "/ws/block", timeout=20)[0]))
        blocker.start()
        wait_until(lambda: called == ["block"], 10, "the first callback to hold the only worker thread")
        queued = threading.Thread(target=lambda: statuses.setdefault("queued", raw_handshake(port, "/ws/queued", timeout=20)[0]))
        queued.start()
        time.sleep(0.3)  # lets the second handshake take the queue's one place; the refusal below is what is asserted
        assert_refused(port, "/ws/third", 503, "wait", what="a third handshake while the thread and the queue are taken")
        queued.join(20)
        assert statuses.get("queued") == 504, statuses
        release.set()
        blocker.join(20)
        # The worker thread still has to pass over the timed-out handshake: until then the queue is full.
        status, _, body = wait_until(lambda: (lambda answer: answer if answer[0] != 503 else None)(raw_handshake(port, "/ws/colon")), 10,
                                     "the queue to drain")
        assert status == 500 and b"':'" in body, f"a callback naming alice:chat: {status} {body!r}"
        assert "queued" not in called, f"the callback ran for a handshake that had timed out: {called}"
        status, _, body = raw_handshake(port, "/ws/anonymous?subscribe-broadcast&subscribe-user")
        assert status == 101, f"a callback granting no identity: its identity flags are dropped, not refused ({status} {body!r})"
    finally:
        release.set()
        server.stop(5000)
        server.close()


def test_token_help_does_not_show_the_environments_secret(prefix: Path) -> None:
    secret = "a secret only the environment holds, 32+ bytes"
    env = {**os.environ, "WS4REDIS_TOKEN_SECRET": secret}
    shown = subprocess.run([str(prefix / "bin" / "ws4redis"), "token", "--help"], capture_output=True, text=True, env=env, timeout=30)
    assert shown.returncode == 0 and "--secret" in shown.stdout, shown.stdout + shown.stderr
    assert secret not in shown.stdout + shown.stderr, "ws4redis token --help printed the token secret"
    minted = subprocess.run([str(prefix / "bin" / "ws4redis"), "token", "--user", "alice"], capture_output=True, text=True, env=env, timeout=30)
    assert minted.returncode == 0 and minted.stdout.count(".") == 1, minted.stdout + minted.stderr

