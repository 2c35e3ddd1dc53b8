"""The Python package clients/python/ws4redis: token minting (pure Python, and the library's
ws4r_token_mint through ws4redis.native: the same bytes), the ctypes Publisher against real Redis, and
hosting websockets from Python (check_handshake, adopt)."""

from __future__ import annotations

import base64
import ctypes
import hashlib
import hmac
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from e2e_helpers import RedisServer, free_port, wait_until, websocket_key
from service_fixtures import REPO
from ws4redis import native
from ws4redis.redact import redact_argv, redact_url
from ws4redis.token import InvalidToken, mint_token, verify_token

# The known vector: secret VECTOR_SECRET, user "alice", groups staff and admins, session "sess1", 2100-01-01.
VECTOR_SECRET = "known-vector-secret-of-32-bytes!"
VECTOR = dict(user="alice", groups=["staff", "admins"], session_key="sess1", expires_at=4102444800)
VECTOR_TOKEN = "djEKYWxpY2UKc3RhZmYsYWRtaW5zCnNlc3MxCjQxMDI0NDQ4MDA.ZiRo-R0LfI-hLMbiKdsNWhbRWhrp0QkmaYriLZMvbEc"
# Another secret of the minimum length (32 bytes), with a NUL byte.
KEY = b"another-32-byte-secret\x00with-NUL!"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---------------------------------------------------------------------------------------------
# Pure Python (no library needed)


def test_token_known_vector() -> None:
    """The documented format, computed here by hand with hmac/hashlib, equals mint_token's output."""
    payload = b"v1\nalice\nstaff,admins\nsess1\n4102444800"
    by_hand = b64url(payload) + "." + b64url(hmac.new(VECTOR_SECRET.encode(), payload, hashlib.sha256).digest())
    assert by_hand == VECTOR_TOKEN
    assert mint_token(VECTOR_SECRET, **VECTOR) == VECTOR_TOKEN
    assert mint_token(VECTOR_SECRET.encode(), **VECTOR) == VECTOR_TOKEN, "a bytes secret mints the same token"
    assert "=" not in VECTOR_TOKEN


def test_token_absent_fields_and_expiry_default() -> None:
    """Absent user/session are empty strings; no groups an empty line; expires_in counts from now."""
    payload = b"v1\n\n\n\n4102444800"
    assert mint_token(KEY, expires_at=4102444800) == b64url(payload) + "." + b64url(hmac.new(KEY, payload, hashlib.sha256).digest())
    before = int(time.time())
    identity = verify_token(mint_token(KEY, user="u"), KEY)
    assert before + 3600 <= identity.expires_at <= int(time.time()) + 3600, f"default expiry {identity.expires_at}, expected now + 3600"
    assert verify_token(mint_token(KEY, user="u", expires_in=60), KEY).expires_at <= int(time.time()) + 60


def test_token_verify_round_trip_and_errors() -> None:
    identity = verify_token(VECTOR_TOKEN, VECTOR_SECRET, now=4102444799)
    assert (identity.user, identity.groups, identity.session_key, identity.expires_at) == ("alice", ("staff", "admins"), "sess1", 4102444800)
    anonymous = verify_token(mint_token(KEY, session_key="only-session"), KEY)
    assert (anonymous.user, anonymous.groups, anonymous.session_key) == (None, (), "only-session")

    cases = {
        "signature": [
            (VECTOR_TOKEN, KEY),
            # payload changed (bob instead of alice), signature kept
            (b64url(b"v1\nbob\nstaff,admins\nsess1\n4102444800") + "." + VECTOR_TOKEN.split(".")[1], VECTOR_SECRET),
        ],
        "malformed": [("", KEY), ("no-dot-at-all", KEY), ("a.b.c", KEY), ("!!!.???", KEY),
                      # well signed but not a v1 payload
                      (b64url(b"v2\na\n\n\n1") + "." + b64url(hmac.new(KEY, b"v2\na\n\n\n1", hashlib.sha256).digest()), KEY)],
    }
    for reason, tokens in cases.items():
        for token, secret in tokens:
            with pytest.raises(InvalidToken) as info:
                verify_token(token, secret)
            assert info.value.reason == reason, f"verify_token({token!r}) failed for {info.value.reason!r}, expected {reason!r}"
    with pytest.raises(InvalidToken) as info:
        verify_token(VECTOR_TOKEN, VECTOR_SECRET, now=4102444800)
    assert info.value.reason == "expired" and "expired" in str(info.value)


def signed_by_hand(payload: bytes, key: bytes = KEY) -> str:
    """A token for any payload, as a minter that checks nothing would make it."""
    return b64url(payload) + "." + b64url(hmac.new(key, payload, hashlib.sha256).digest())


def test_token_refuses_ambiguous_or_unencodable_names_and_short_secrets() -> None:
    """Names that are empty or hold ':' (user alice:chat on facility x and user alice on chat:x
    would share the channel user:alice:chat:x), or a token separator, are refused with a ValueError
    naming the problem, when minting and when verifying; so are secrets under 32 bytes."""
    refused = {
        "contains ':'": [dict(user="alice:chat"), dict(groups=["staff", "ops:eu"]), dict(session_key="s:1")],
        "is empty": [dict(user=""), dict(groups=[""]), dict(session_key="")],
        "newline": [dict(user="a\nb"), dict(session_key="x\ny")],
        "','": [dict(groups=["a,b"])],
    }
    for problem, cases in refused.items():
        for kwargs in cases:
            with pytest.raises(ValueError) as info:
                mint_token(KEY, **kwargs)
            assert problem in str(info.value), f"mint_token({kwargs}): {info.value}"
    with pytest.raises(ValueError) as info:
        mint_token(KEY, session_key="secret-session:key")
    assert "secret-session" not in str(info.value), f"a session key is a credential, not for messages: {info.value}"
    assert verify_token(mint_token(KEY, user="alice", groups=["staff"]), KEY).user == "alice", "plain names still work"
    for name, payload in (("user", b"v1\nalice:chat\n\n\n4102444800"), ("group", b"v1\nalice\nstaff,ops:eu\n\n4102444800"),
                          ("session", b"v1\n\n\ns:1\n4102444800")):
        with pytest.raises(InvalidToken) as invalid:
            verify_token(signed_by_hand(payload), KEY)
        assert (invalid.value.reason, "contains ':'" in str(invalid.value)) == ("malformed", True), f"{name}: {invalid.value}"
    for short in ("", "s3cret", b"x" * 31):
        with pytest.raises(ValueError, match="at least 32"):
            mint_token(short, user="a")
        with pytest.raises(ValueError, match="at least 32"):
            verify_token(VECTOR_TOKEN, short)
    assert verify_token(mint_token(b"x" * 32, user="a"), b"x" * 32).user == "a", "32 bytes are enough"


# ---------------------------------------------------------------------------------------------
# Through libws4redis.so


def test_native_token_mint_matches(library_path: Path) -> None:
    """ws4r_token_mint (the server's own code) and the pure-Python minting give the same token."""
    lib = native.load_library(library_path)
    assert native.mint_token(VECTOR_SECRET, library=lib, **VECTOR) == VECTOR_TOKEN, "ws4r_token_mint differs on the known vector"
    variants = [
        dict(expires_at=1),
        dict(user="ünïcødé ✓", expires_at=4102444800),
        dict(groups=["g" * 300, "h"], session_key="s" * 500, expires_at=2000000000),  # longer than the first buffer
        dict(user="u", groups=["only"], expires_at=-5),
    ]
    for kwargs in variants:
        ours, theirs = mint_token(KEY, **kwargs), native.mint_token(KEY, library=lib, **kwargs)
        assert ours == theirs, f"tokens differ for {kwargs} (secret with a NUL byte):\n python  {ours}\n library {theirs}"
    for kwargs, problem in ((dict(user="alice:chat"), "contains ':'"), (dict(groups=[""]), "is empty")):
        with pytest.raises(ValueError, match=problem):
            native.mint_token(KEY, library=lib, **kwargs)
    with pytest.raises(ValueError, match="at least 32"):
        native.mint_token("s3cret", library=lib, user="a")


def test_publisher_publish_order_and_fetch(library_path: Path, redis_server: RedisServer, r: redis.Redis) -> None:
    """Publisher.publish: channels in the original's order (broadcast, groups, users, sessions), SET
    with EX; fetch: the stored value of the session, else user, else groups, else broadcast."""
    channels = [b"pp:broadcast:f", b"pp:group:g1:f", b"pp:group:g2:f", b"pp:user:alice:f", b"pp:session:s1:f"]
    sub = r.pubsub()
    try:
        sub.subscribe(*channels)
        confirmed: set[bytes] = set()
        wait_until(lambda: (m := sub.get_message(timeout=0.1)) and m["type"] == "subscribe" and confirmed.add(m["channel"]) is None
                   and len(confirmed) == len(channels), 10, "SUBSCRIBE confirmations")
        with native.Publisher(redis_server.url, "pp", library=library_path) as pub:
            message = "ordered ✓ \x00 with a NUL"
            receivers = pub.publish(message, "f", broadcast=True, users=["alice"], groups=["g1", "g2"], sessions=["s1"], expire=30)
            assert receivers == len(channels), f"receivers {receivers}, expected {len(channels)} (one pubsub client per channel)"
            got: list[bytes] = []
            wait_until(lambda: (m := sub.get_message(timeout=0.1)) and got.append(m["channel"]) is None and len(got) == len(channels),
                       10, f"{len(channels)} published messages")
            assert got == channels, f"publish order {got}, expected {channels}"
            for ch in channels:
                assert r.get(ch) == message.encode(), f"{ch!r} holds {r.get(ch)!r}"
                assert 0 < r.ttl(ch) <= 30, f"TTL of {ch!r} is {r.ttl(ch)}, expected in (0, 30]"

            # fetch order: session, user, groups (in order), broadcast; a different value on each key.
            for ch in channels:
                r.set(ch, b"value of " + ch)
            audience = dict(broadcast=True, users=["alice"], groups=["g1", "g2"], sessions=["s1"])
            for ch in [b"pp:session:s1:f", b"pp:user:alice:f", b"pp:group:g1:f", b"pp:group:g2:f", b"pp:broadcast:f"]:
                fetched = pub.fetch("f", **audience)
                assert fetched == b"value of " + ch, f"fetch gave {fetched!r}, expected the value of {ch!r}"
                r.delete(ch)
            assert pub.fetch("f", **audience) is None, "fetch with nothing stored must give None"

            big = bytes(range(256)) * 1000  # larger than the first fetch buffer
            pub.publish(big, "big", broadcast=True, expire=30)
            assert pub.fetch("big", broadcast=True) == big
            assert pub.fetch("big", users=["nobody"]) is None, "an audience without broadcast must not read the broadcast key"
            with pytest.raises(native.Ws4redisError):
                pub.fetch("big")  # an audience naming no channel is an invalid argument

            # expire 0: published, not stored.
            assert pub.publish(b"x", "f", sessions=["s1"], expire=0) == 1
            assert r.exists("pp:session:s1:f") == 0, "expire=0 must not store the message"
    finally:
        sub.close()


def test_native_errors(library_path: Path) -> None:
    """Failures become Ws4redisError with the library's explanation."""
    with pytest.raises(native.Ws4redisError) as info:
        native.Server("--no-such-setting", "1", library=library_path)
    assert "no-such-setting" in str(info.value), f"the error does not name the unknown option: {info.value}"
    with pytest.raises(native.Ws4redisError) as info:
        native.Publisher("notascheme://what", library=library_path)
    assert info.value.code != 0 and str(info.value)


def test_redaction_forms() -> None:
    """URL passwords (with or without a user, raw '@' in them, in a message) and secret options in
    both forms are masked; what says which server and which setting stays."""
    assert redact_url("redis://:pw@redis.internal:6379/0") == "redis://:***@redis.internal:6379/0"
    assert redact_url("rediss://app:p@ss:w@[::1]:6380/2") == "rediss://app:***@[::1]:6380/2"
    assert redact_url("redis://pw@host/0") == "redis://***@host/0", "a userinfo without ':' may be a bare password"
    assert redact_url("unix:///run/redis.sock?db=3&password=p+w%26x") == "unix:///run/redis.sock?db=3&password=***"
    assert redact_url("Redis at 'redis://u:pw@h:1/0' unavailable") == "Redis at 'redis://u:***@h:1/0' unavailable"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_argv(["--token-secret", "s", "--token-secret=s", "--redis-url", "redis://:pw@h/0", "--threads", "2"]) == [
        "--token-secret", "***", "--token-secret=***", "--redis-url", "redis://:***@h/0", "--threads", "2"]


def test_errors_and_logs_never_show_secrets(library_path: Path, tmp_path: Path) -> None:
    """Failures of a Server and a Publisher whose options carry a Redis password (redis:// and
    unix:// URLs) and a token secret: the raised errors, their repr, the objects' repr and all the
    process prints (the core's log lines included) show the secrets masked, never the secrets."""
    password, secret = "redis-pw-never-shown", "token-secret-never-shown-0123456789"
    closed = free_port()
    script = f"""
import sys
sys.path.insert(0, {str(REPO / "clients" / "python")!r})
from ws4redis import native
lib = {str(library_path)!r}
try:
    native.Server("--redis-url", "redis://app:{password}@127.0.0.1:{closed}/0", "--token-secret", {secret!r},
                  "--auth-url=http://u:{password}@127.0.0.1:{closed}/auth", "--no-such-setting", "1", library=lib)
except native.Ws4redisError as exc:
    print("create:", exc, repr(exc))
server = native.Server("--redis-url", "unix:///nonexistent/redis.sock?db=0&password={password}", "--require-redis", "on",
                       token_secret={secret!r}, library=lib)
print("server:", repr(server))
try:
    server.start()
except native.Ws4redisError as exc:
    print("start:", exc, repr(exc))
server.close()
try:
    native.Publisher("redis://:{password}@127.0.0.1:{closed}/0", library=lib)
except native.Ws4redisError as exc:
    print("publisher:", exc, repr(exc))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    leaks = [name for name, value in (("the Redis password", password), ("the token secret", secret)) if value in output]
    assert not leaks, f"{' and '.join(leaks)} shown:\n{output}"
    lines = {line.partition(":")[0]: line for line in done.stdout.splitlines()}
    assert set(lines) == {"create", "server", "start", "publisher"}, f"a call did not fail as expected:\n{output}"
    for where, masked in (("create", "redis://app:***@127.0.0.1"), ("create", "'--token-secret', '***'"), ("create", "http://u:***@"),
                          ("server", "password=***"), ("server", "'--token-secret', '***'"), ("publisher", "redis://:***@127.0.0.1")):
        assert masked in lines[where], f"{where}: {masked!r} not in {lines[where]!r}"


# ---------------------------------------------------------------------------------------------
# Hosting websockets from Python: check_handshake, the 101, adopt (what the Django dev server does)


def masked_text_frame(text: str) -> bytes:
    """One final client text frame (masked, as RFC 6455 requires of clients); payload under 126 bytes."""
    payload = text.encode()
    assert len(payload) < 126
    mask = b"\x01\x02\x03\x04"
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_check_handshake_refusals(library_path: Path, redis_server: RedisServer) -> None:
    """A refused upgrade comes back as a Handshake with the status, reason, headers and body to send;
    the rendered response carries them with the body's length."""
    with native.Server("--redis-url", redis_server.url, "--threads", "1", "--missing-identity", "refuse", library=library_path) as server:
        server.start()
        base = {"Host": "h", "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        with server.check_handshake("GET", "/ws/f", "subscribe-broadcast", {**base, "Sec-WebSocket-Version": "12"}) as old:
            assert (old.status, old.accepted) == (426, False), f"version 12 answered {old.status}"
            assert ("Sec-WebSocket-Version", "13") in old.headers, f"426 headers {old.headers}"
            response = old.response()
            assert response.startswith(b"HTTP/1.1 426 ") and b"\r\nSec-WebSocket-Version: 13\r\n" in response
            body = old.body.encode()
            assert body and response.endswith(b"\r\n\r\n" + body) and f"Content-Length: {len(body)}".encode() in response
        with server.check_handshake("GET", "/elsewhere", None, [*base.items(), ("Sec-WebSocket-Version", "13")]) as outside:
            assert outside.status == 404 and "/elsewhere" in outside.body, f"outside the URL prefix: {outside.status} {outside.body!r}"
        with server.check_handshake("GET", "/ws/f", "subscribe-user", {**base, "Sec-WebSocket-Version": "13"}) as anonymous:
            assert anonymous.status == 403 and "subscribe-user" in anonymous.body, f"{anonymous.status} {anonymous.body!r}"
        with server.check_handshake("GET", "/ws/f", "subscribe-broadcast", {**base, "Sec-WebSocket-Version": "13"}) as accepted:
            assert accepted.accepted and ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") in accepted.headers, accepted.headers
            assert accepted.response().endswith(b"\r\n\r\n") and b"Content-Length" not in accepted.response()


def test_adopt_with_preface(library_path: Path, redis_server: RedisServer, r: redis.Redis) -> None:
    """A Python listener reads the upgrade and the client's first frame in the same bytes, answers
    with the core's 101 and adopts the socket (detached, so Python can no longer shut it down) with
    the frame as preface: the core publishes that frame, then serves the socket until it closes.
    (Publish only: a client that also subscribes could get its early message back as the stored one.)"""
    server = native.Server("--redis-url", redis_server.url, "--threads", "1", library=library_path)
    listener = socket.create_server(("127.0.0.1", 0))
    request = (f"GET /ws/pre?publish-broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {websocket_key()}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    early = masked_text_frame("early bird")
    adopted: list[native.Handshake] = []

    def host_one_connection() -> None:
        conn, address = listener.accept()
        data = b""
        while len(data) < len(request) + len(early):  # the test wants the frame in the preface, not left in the kernel
            data += conn.recv(4096)
        head, _, preface = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        path, _, query = target.partition("?")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
        handshake = server.check_handshake(method, path, query, headers, version, address[0])
        conn.sendall(handshake.response())
        server.adopt(handshake, conn.detach(), preface)
        adopted.append(handshake)

    try:
        server.start()
        wait_until(lambda: server.stats()["redis_connected"], 10, "the in-process server to connect to Redis")
        host = threading.Thread(target=host_one_connection, daemon=True)
        host.start()
        with socket.create_connection(listener.getsockname(), timeout=10) as client:
            client.sendall(request + early)
            status_line = client.recv(12, socket.MSG_WAITALL)
            assert status_line == b"HTTP/1.1 101", f"handshake answered {status_line!r}"
            while not status_line.endswith(b"\r\n\r\n"):
                status_line += client.recv(1)
            host.join(10)
            assert len(adopted) == 1, "the listener thread did not adopt the connection"
            wait_until(lambda: r.get("broadcast:pre") == b"early bird", 10, "the preface frame to be published and stored")
            assert server.stats()["connections"] == 1
            assert 'ws4redis_handshakes_total{status="101"} 1' in server.metrics().splitlines()
            client.sendall(masked_text_frame("second"))
            wait_until(lambda: r.get("broadcast:pre") == b"second", 10, "a frame sent after the adoption to be published")
        wait_until(lambda: server.stats()["connections"] == 0, 10, "the core to notice the closed client")
        spare = socket.socket().detach()
        with pytest.raises(native.Ws4redisError) as info:
            server.adopt(adopted[0], spare)
        assert "already adopted" in str(info.value), "a consumed handshake must be refused before reaching C"
        with pytest.raises(OSError):
            os.fstat(spare)  # adopt() owns the descriptor even when it refuses: closed, not leaked
    finally:
        listener.close()
        server.close()


def test_request_mirror_size(library_path: Path) -> None:
    """ws4r_request_init sets struct_size to the C struct's size: the client's mirror matches the header."""
    lib = native.load_library(library_path)
    request = native._Request()
    lib.ws4r_request_init(ctypes.byref(request))
    assert request.struct_size == ctypes.sizeof(native._Request)
