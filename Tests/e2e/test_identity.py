"""Who a websocket is and what it may do: signed tokens (query and cookie), allowed flags, allowed
origins, the authorization callback (ctypes, server in this process) and the HTTP auth request."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis

from e2e_helpers import (
    LocalHTTPServer,
    RedisServer,
    Server,
    assert_refused,
    close_all,
    free_port,
    open_client,
    original_publish,
    raw_handshake,
    receive_n,
    receive_one,
    run_async,
    wait_until,
)
from ws4redis import native
from ws4redis.token import mint_token

SECRET = "e2e token secret, at least 32 bytes long"
USER_FLAGS = "subscribe-user&subscribe-group&subscribe-session"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------------------------------------
# Signed tokens


def test_token_identities_get_their_messages(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """Three clients with different tokens (two in the query, one in a cookie), --prefix app: messages
    published as the original's RedisPublisher does (redis-py, PUBLISH + SETEX on app:user:alice:f,
    app:group:staff:f, app:session:s1:f, ...) reach exactly the right sockets; a new connection gets the
    stored message of each of its channels first."""
    server = server_factory(mode, "--token-secret", SECRET, "--prefix", "app")
    tokens = {
        "alice": mint_token(SECRET, user="alice", groups=["staff"], session_key="s1"),
        "bob": mint_token(SECRET, user="bob", groups=["staff"], session_key="s2"),
        "carol": mint_token(SECRET, user="carol", groups=["other"], session_key="s3"),
    }

    async def body() -> None:
        clients = {
            "alice": await open_client(server.url("f", f"{USER_FLAGS}&ws4redis-token={tokens['alice']}")),
            "bob": await open_client(server.url("f", f"ws4redis-token={tokens['bob']}&{USER_FLAGS}")),
            "carol": await open_client(server.url("f", USER_FLAGS), additional_headers={"Cookie": f"theme=dark; ws4redis_token={tokens['carol']}"}),
        }
        try:
            # user x3, group staff x2 + other, session x3: 9 subscriptions on 8 channels.
            await server.await_stats(lambda s: s["subscriptions"] == 9 and s["channels"] == 8, "9 subscriptions on 8 channels")
            deliveries = [
                (dict(users=["alice"]), "to-alice", ["alice"]),
                (dict(groups=["staff"]), "to-staff", ["alice", "bob"]),
                (dict(sessions=["s1"]), "to-s1", ["alice"]),
                (dict(groups=["other"]), "to-other", ["carol"]),
                (dict(sessions=["s3"]), "to-s3", ["carol"]),
                (dict(users=["dave"], groups=["nobody"], sessions=["s9"]), "to-nobody", []),
            ]
            for audience, message, recipients in deliveries:
                receivers = await asyncio.to_thread(original_publish, r, message, "f", prefix="app", expire=60, **audience)
                assert receivers == (1 if recipients else 0), f"PUBLISH of {message!r} to {audience} reached {receivers} subscribers"
                for who in recipients:
                    got = await receive_one(clients[who], 10, f"{message!r} ({audience}) at {who}")
                    assert got == message, f"{who} received {got!r}, expected {message!r}"
            # Nobody received anything else: each client's next message is its own sentinel.
            for who, ws in clients.items():
                r.publish(f"app:user:{who}:f", f"end-{who}")
                got = await receive_one(ws, 10, f"sentinel of {who}")
                assert got == f"end-{who}", f"{who} received {got!r}, a message meant for somebody else (expected the sentinel)"

            # A second connection of alice: the stored message of each of her channels, then live ones.
            again = await open_client(server.url("f", f"{USER_FLAGS}&ws4redis-token={tokens['alice']}"))
            try:
                got, why = await receive_n(again, 3, timeout=10)
                assert sorted(got) == ["to-alice", "to-s1", "to-staff"], f"persisted messages {got!r} ({why}), expected her 3 channels' values"
                r.publish("app:session:s1:f", "live")
                got = await receive_one(again, 10, "live message after the persisted ones")
                assert got == "live", f"got {got!r} after the persisted messages, expected 'live'"
            finally:
                await again.close()
        finally:
            await close_all(clients.values())

    run_async(body(), 60, "token identities")


def test_token_refusals(mode: str, server_factory: Callable[..., Server]) -> None:
    """Forged, tampered, expired and malformed tokens get 403 saying why (query and cookie); without a
    token, user/group/session flags get 403 naming them (missing_identity = refuse); anonymous broadcast
    and a good token pass."""
    server = server_factory(mode, "--token-secret", SECRET, "--missing-identity", "refuse")
    now = int(time.time())
    good = mint_token(SECRET, user="alice", groups=["staff"], session_key="s1")
    payload, signature = good.split(".")
    tampered = b64url(b64url_decode(payload).replace(b"alice", b"admin")) + "." + signature
    expired = mint_token(SECRET, user="alice", expires_at=now - 10)
    cases = [
        ("forged (other secret)", f"ws4redis-token={mint_token('not the secret, though just as long', user='alice')}", None, "signature"),
        ("tampered payload", f"ws4redis-token={tampered}", None, "signature"),
        ("expired", f"ws4redis-token={expired}", None, "expired"),
        ("malformed", "ws4redis-token=not-a-token", None, "malformed"),
        ("expired, in the cookie", "", {"Cookie": f"ws4redis_token={expired}"}, "expired"),
        ("forged, in the cookie", "", {"Cookie": f"a=b; ws4redis_token={mint_token('x' * 32, user='alice')}"}, "signature"),
    ]
    for label, query, headers, reason in cases:
        assert_refused(server.port, f"/ws/f?subscribe-user&{query}", 403, reason, headers=headers, what=f"{mode}, {label} token")

    # No token: anonymous; the identity flags are refused by name, broadcast is fine.
    assert_refused(server.port, "/ws/f?subscribe-broadcast&subscribe-user&publish-session", 403, ["subscribe-user", "publish-session"],
                   what=f"{mode}, anonymous with identity flags")
    for label, path, headers in [
        ("anonymous broadcast", "/ws/f?subscribe-broadcast&publish-broadcast", None),
        ("good token in the query", f"/ws/f?{USER_FLAGS}&ws4redis-token={good}", None),
        ("good token in the cookie", f"/ws/f?{USER_FLAGS}", {"Cookie": f"ws4redis_token={good}"}),
    ]:
        status, _, body = raw_handshake(server.port, path, headers)
        assert status == 101, f"{mode}, {label}: handshake answered {status} {body[:200]!r}, expected 101"


def test_allowed_flags_and_origins(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """--allowed-flags subscribe-broadcast,publish-session: a client asking publish-broadcast too is
    accepted, and its messages go to its session channel only; --allowed-origins: others get 403."""
    server = server_factory(mode, "--token-secret", SECRET, "--allowed-flags", "subscribe-broadcast,publish-session",
                            "--allowed-origins", "http://good.example, https://also.example")
    token = mint_token(SECRET, session_key="s1")

    async def body() -> None:
        writer = await open_client(server.url("af", f"subscribe-broadcast&publish-broadcast&publish-session&ws4redis-token={token}"),
                                   origin="http://good.example")
        reader = await open_client(server.url("af", "subscribe-broadcast"), origin="https://also.example")
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 2, "2 subscriptions")
            await writer.send("from the writer")
            await asyncio.to_thread(wait_until, lambda: r.get("session:s1:af") == b"from the writer", 10,
                                    "the writer's message stored on session:s1:af (publish-session allowed)")
            assert r.exists("broadcast:af") == 0, "publish-broadcast is not in allowed_flags: the message must not be stored on broadcast:af"
            r.publish("broadcast:af", "sentinel")
            got = await receive_one(reader, 10, "sentinel at the reader")
            assert got == "sentinel", f"the reader received {got!r}: the writer's publish-broadcast flag was not dropped"
        finally:
            await close_all([writer, reader])

    run_async(body(), 30, "allowed flags")
    assert_refused(server.port, "/ws/af?subscribe-broadcast", 403, (), headers={"Origin": "http://evil.example"},
                   what=f"{mode}, Origin not in allowed_origins")
    status, _, body = raw_handshake(server.port, "/ws/af?subscribe-broadcast", {"Origin": "https://also.example"})
    assert status == 101, f"{mode}: a listed Origin got {status} {body[:200]!r}"


# ---------------------------------------------------------------------------------------------
# The authorization callback, through ctypes (the server runs inside this process)


def test_authorizer_callback(library_path: Path, redis_server: RedisServer, r: redis.Redis) -> None:
    """ws4redis.native.Server with a Python authorizer: it sees the request, grants an identity and
    narrows the flags; Denied(status, reason) refuses; an exception is a 500; a stuck callback is a
    504 after authorizer_timeout and does not hold up other handshakes; a token bypasses it."""
    port = free_port()
    server = native.Server("--listen", f"127.0.0.1:{port}", "--redis-url", redis_server.url, "--threads", "1", "--missing-identity", "refuse",
                           "--authorizer-timeout", "400", "--token-secret", SECRET, library=library_path)
    release = threading.Event()
    seen: list[dict[str, Any]] = []

    def authorize(request: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(request)
        facility = request["facility"]
        if facility == "slow":
            release.wait(20)
            return None
        if facility == "deny":
            raise native.Denied(403, "members only, sorry")
        if facility == "teapot":
            raise native.Denied(418, "short and stout")
        if facility == "boom":
            raise RuntimeError("a bug in the app's callback")
        if facility == "redirect":
            raise native.Denied(302, "not an error status")
        if facility == "anonymous":
            return None
        who = request["headers"]["x-test-user"]
        return {"user": who, "groups": ["staff", "admins"], "session": f"sess-{who}",
                "allowed_flags": {"subscribe-user", "subscribe-group", "subscribe-broadcast", "publish-broadcast"}}

    server.set_authorizer(authorize)
    server.start()

    async def body() -> None:
        # A stuck callback first: 504 after ~400 ms, while it still blocks a worker thread.
        start = time.monotonic()
        await asyncio.to_thread(assert_refused, port, "/ws/slow?subscribe-broadcast", 504, (), what="callback outlasting authorizer_timeout")
        assert time.monotonic() - start < 5, f"the 504 took {time.monotonic() - start:.1f}s with authorizer_timeout 400 ms"

        flags = "subscribe-user&subscribe-group&subscribe-session&publish-user&publish-broadcast"
        alice = await open_client(f"ws://127.0.0.1:{port}/ws/f?{flags}", additional_headers={"X-Test-User": "alice", "Cookie": "a=1; b=two"})
        try:
            await asyncio.to_thread(wait_until, lambda: server.stats()["subscriptions"] == 3, 10,
                                    "3 subscriptions: user, group staff, group admins (subscribe-session dropped)")
            numsub = dict(r.pubsub_numsub("user:alice:f", "group:staff:f", "group:admins:f", "session:sess-alice:f"))
            assert numsub == {b"user:alice:f": 1, b"group:staff:f": 1, b"group:admins:f": 1, b"session:sess-alice:f": 0}, f"PUBSUB NUMSUB {numsub}"
            request = next(q for q in seen if q["facility"] == "f")
            expected = {"method": "GET", "path": "/ws/f", "facility": "f", "cookies": {"a": "1", "b": "two"},
                        "requested_flags": set(flags.split("&"))}
            got = {k: request[k] for k in expected}
            assert got == expected, f"the callback was asked {got}, expected {expected}"
            assert "subscribe-session" in (request["query"] or ""), f"query {request['query']!r}"
            assert (request["remote_address"] or "").find("127.0.0.1") >= 0, f"remote_address {request['remote_address']!r}"

            r.publish("group:admins:f", "to-admins")
            assert await receive_one(alice, 10, "message on group:admins:f") == "to-admins"
            # publish-user was narrowed away, publish-broadcast kept.
            await alice.send("from alice")
            await asyncio.to_thread(wait_until, lambda: r.get("broadcast:f") == b"from alice", 10, "alice's message stored on broadcast:f")
            assert r.exists("user:alice:f") == 0, "publish-user was not allowed by the callback: nothing may be stored on user:alice:f"
        finally:
            await alice.close()

        await asyncio.to_thread(assert_refused, port, "/ws/deny?subscribe-broadcast", 403, "members only, sorry", what="Denied(403)")
        await asyncio.to_thread(assert_refused, port, "/ws/teapot?subscribe-broadcast", 418, "short and stout", what="Denied(418)")
        await asyncio.to_thread(assert_refused, port, "/ws/boom?subscribe-broadcast", 500, (), what="callback raising RuntimeError")
        assert [type(e).__name__ for e in server.authorizer_errors] == ["RuntimeError"], f"authorizer errors {server.authorizer_errors}"
        await asyncio.to_thread(assert_refused, port, "/ws/redirect?subscribe-broadcast", 500, "302", what="Denied(302): still refused")
        # No identity from the callback: anonymous, so identity flags are refused by name (missing_identity = refuse).
        await asyncio.to_thread(assert_refused, port, "/ws/anonymous?subscribe-broadcast&subscribe-group", 403, "subscribe-group",
                                what="callback granting no identity, subscribe-group asked")

        # A valid token is the identity: the callback is not asked.
        asked = len(seen)
        token = mint_token(SECRET, user="tokenuser")
        status, _, text = await asyncio.to_thread(raw_handshake, port, f"/ws/t?subscribe-user&ws4redis-token={token}")
        assert status == 101, f"handshake with a valid token answered {status} {text[:200]!r}"
        assert len(seen) == asked, f"the callback was asked about a handshake that carried a valid token: {seen[asked:]}"

    try:
        run_async(body(), 60, "authorization callback")
    finally:
        release.set()
        server.stop(5000)
        server.close()


# ---------------------------------------------------------------------------------------------
# The HTTP auth request


class AuthApp:
    """A tiny real HTTP app answering auth requests by the `sessionid` cookie; it records each request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str | None]] = []
        self.release = threading.Event()
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                app.requests.append({"path": self.path, "cookie": self.headers.get("Cookie"),
                                     "authorization": self.headers.get("Authorization"), "uri": self.headers.get("X-Original-URI")})
                jar = SimpleCookie(self.headers.get("Cookie") or "")
                sid = jar["sessionid"].value if "sessionid" in jar else None
                headers: dict[str, str] = {}
                if sid == "alice":
                    status = 200
                    headers = {"X-WS4Redis-User": "alice", "X-WS4Redis-Groups": "staff,admins", "X-WS4Redis-Session": "s-alice",
                               "X-WS4Redis-Allow": "subscribe-user,subscribe-group,subscribe-broadcast"}
                elif sid == "banned":
                    status = 403
                elif sid == "broken":
                    status = 500
                elif sid == "slow":
                    app.release.wait(20)
                    status = 200
                else:
                    status = 401
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = LocalHTTPServer(Handler)
        self.port = self.server.port

    def close(self) -> None:
        self.release.set()
        self.server.close()


@pytest.fixture
def auth_app() -> Iterator[AuthApp]:
    app = AuthApp()
    try:
        yield app
    finally:
        app.close()


def test_auth_url(mode: str, server_factory: Callable[..., Server], auth_app: AuthApp, r: redis.Redis) -> None:
    """--auth-url: the app gets Cookie, Authorization and X-Original-URI; 2xx grants the identity of the
    X-WS4Redis-* headers (X-WS4Redis-Allow narrows the flags); 401/403 deny; 500 → 502; slow → 504;
    answers are cached for --auth-cache ms per (cookie, authorization, uri)."""
    server = server_factory(mode, "--auth-url", f"http://127.0.0.1:{auth_app.port}/auth/check", "--auth-timeout", "500",
                            "--auth-cache", "60000")
    flags = "subscribe-user&subscribe-group&subscribe-session&subscribe-broadcast"
    alice_headers = {"Cookie": "sessionid=alice; theme=dark", "Authorization": "Bearer tok-a"}

    async def body() -> None:
        alice = await open_client(server.url("f", flags), additional_headers=alice_headers)
        try:
            assert len(auth_app.requests) == 1, f"{len(auth_app.requests)} auth requests for one handshake: {auth_app.requests}"
            asked = auth_app.requests[0]
            expected = {"path": "/auth/check", "cookie": "sessionid=alice; theme=dark", "authorization": "Bearer tok-a", "uri": f"/ws/f?{flags}"}
            assert asked == expected, f"the auth request was {asked}, expected {expected}"
            # user, groups staff and admins, broadcast; subscribe-session narrowed away by X-WS4Redis-Allow.
            await server.await_stats(lambda s: s["subscriptions"] == 4, "4 subscriptions (user, 2 groups, broadcast)")
            numsub = dict(r.pubsub_numsub("user:alice:f", "group:admins:f", "session:s-alice:f"))
            assert numsub == {b"user:alice:f": 1, b"group:admins:f": 1, b"session:s-alice:f": 0}, f"PUBSUB NUMSUB {numsub}"
            r.publish("group:admins:f", "to-admins")
            assert await receive_one(alice, 10, "message on group:admins:f") == "to-admins"

            # Cached: the same cookie, authorization and URI again does not reach the app.
            second = await open_client(server.url("f", flags), additional_headers=alice_headers)
            await second.close()
            assert len(auth_app.requests) == 1, f"the second identical handshake within auth_cache reached the app: {auth_app.requests[1:]}"
            third = await open_client(server.url("g", flags), additional_headers=alice_headers)
            await third.close()
            assert len(auth_app.requests) == 2, f"another URI must be asked again: {len(auth_app.requests)} requests"
        finally:
            await alice.close()

    run_async(body(), 30, "auth request")

    for sid, status in (("nobody", 401), ("banned", 403), ("broken", 502)):
        assert_refused(server.port, f"/ws/f?{flags}", status, (), headers={"Cookie": f"sessionid={sid}"},
                       what=f"{mode}, app answering for {sid}")
    start = time.monotonic()
    assert_refused(server.port, f"/ws/f?{flags}", 504, (), headers={"Cookie": "sessionid=slow"}, what=f"{mode}, app not answering")
    took = time.monotonic() - start
    assert took < 4, f"the 504 took {took:.1f}s with --auth-timeout 500"
    auth_app.release.set()


def test_auth_url_unreachable(mode: str, server_factory: Callable[..., Server]) -> None:
    """--auth-url to a port nobody listens on: 503."""
    server = server_factory(mode, "--auth-url", f"http://127.0.0.1:{free_port()}/auth")
    assert_refused(server.port, "/ws/f?subscribe-user", 503, (), headers={"Cookie": "sessionid=x"}, what=f"{mode}, auth app down")
