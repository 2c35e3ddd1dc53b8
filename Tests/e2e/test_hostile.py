"""Hostile input on raw sockets: broken HTTP, oversized headers, wrong methods, bad keys, and broken
websocket frames; and slowloris. Each case names the answer it expects (status or close code); the
server must close every such connection, its fd count must come back to the baseline, and a
websocket opened before (the bystander) and one opened after must be served normally."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import pytest
import redis

from e2e_helpers import MEMORY_BOUNDS, Server, ServerDied, open_client, raw_websocket, receive_one, run_async
from lean_ws import client_frame
from robust_helpers import (
    ROBUST_MODES,
    RssSampler,
    first_close_frame,
    mib,
    proc_status_kib,
    read_until_closed,
    settled_fd_count,
    wait_fds_at_most,
)

MAX_MESSAGE = 64 * 1024  # --max-message-size of these servers; max_frame_size stays 1 MiB
ANSWER_TIMEOUT = 5.0  # a hostile request must be answered or closed within this many seconds
WS_PATH = "/ws/hostile"  # no subscribe flags: the server sends nothing on its own


@pytest.fixture(params=ROBUST_MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def upgrade(method: str = "GET", path: str = "/ws/f1?subscribe-broadcast", version: str = "HTTP/1.1", key_lines: str | None = None,
            extra: str = "") -> bytes:
    keys = key_lines if key_lines is not None else f"Sec-WebSocket-Key: {key()}\r\n"
    return (f"{method} {path} {version}\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{keys}"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def filler_headers(total: int) -> str:
    line = "X-Filler-%05d: " + "a" * 1000 + "\r\n"
    return "".join(line % i for i in range(total // 1000 + 1))


@dataclass
class HttpCase:
    name: str
    request: bytes
    statuses: tuple[int, ...]  # acceptable statuses; a close without any response is accepted when close_ok
    close_ok: bool = True
    no_body: bool = False  # HEAD: the response has no body
    outcome: str = ""
    problem: str | None = None


def http_cases() -> list[HttpCase]:
    cases = [
        HttpCase("malformed request line", b"GARBAGE\r\n\r\n", (400,)),
        HttpCase("request line with junk after the version", b"GET /ws/f1?subscribe-broadcast HTTP/1.1 junk\r\nHost: x\r\n\r\n", (400,)),
        HttpCase("unknown HTTP version", upgrade(version="HTTP/9.9"), (400, 505)),
        HttpCase("NUL in the request target", upgrade(path="/ws/f\x001?subscribe-broadcast"), (400,)),
        HttpCase("header line without a colon", upgrade(extra="ThisIsNotAHeader\r\n"), (400,)),
        HttpCase("unknown method token FOO", upgrade(method="FOO"), (400, 405, 501)),
        HttpCase("lower-case method get", upgrade(method="get"), (400, 405, 501)),
        HttpCase("header section of 70 KiB (a valid upgrade otherwise)", upgrade(extra=filler_headers(70 * 1024)), (431, 400)),
        HttpCase("header section of 1 MiB (a valid upgrade otherwise)", upgrade(extra=filler_headers(1 << 20)), (431, 400)),
        # A wrong key: RFC 6455 4.2.1 wants 16 bytes in base64.
        HttpCase("Sec-WebSocket-Key 'short'", upgrade(key_lines="Sec-WebSocket-Key: short\r\n"), (400,), close_ok=False),
        HttpCase("Sec-WebSocket-Key not base64", upgrade(key_lines="Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n"), (400,), close_ok=False),
        HttpCase("Sec-WebSocket-Key of 15 bytes", upgrade(key_lines=f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(15)).decode()}\r\n"),
                 (400,), close_ok=False),
        HttpCase("Sec-WebSocket-Key of 17 bytes", upgrade(key_lines=f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(17)).decode()}\r\n"),
                 (400,), close_ok=False),
        HttpCase("empty Sec-WebSocket-Key", upgrade(key_lines="Sec-WebSocket-Key: \r\n"), (400,), close_ok=False),
        HttpCase("two Sec-WebSocket-Key headers", upgrade(key_lines=f"Sec-WebSocket-Key: {key()}\r\nSec-WebSocket-Key: {key()}\r\n"),
                 (400,), close_ok=False),
    ]
    # Wrong methods on a websocket URL, with valid upgrade headers: 400, as the original (protocol 4.1).
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
        extra = "Content-Length: 0\r\n" if method in ("POST", "PUT", "PATCH") else ""
        cases.append(HttpCase(f"{method} upgrade on a websocket URL", upgrade(method=method, extra=extra), (400,), close_ok=False,
                              no_body=method == "HEAD"))
    return cases


def run_http_case(port: int, case: HttpCase) -> None:
    """Sends the request (a send error counts as the server closing) and reads until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT) as s:
        send_error = None
        try:
            s.sendall(case.request)
        except OSError as exc:  # the server closed while we were still sending (e.g. 1 MiB of headers)
            send_error = exc
        data, how = read_until_closed(s, ANSWER_TIMEOUT)
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    case.outcome = f"{status if status is not None else 'no response'}, connection {how}" + (f" (send: {send_error!r})" if send_error else "")
    if how == "open":
        case.problem = (f"neither answered nor closed within {ANSWER_TIMEOUT}s "
                        f"({'got ' + repr(data[:80]) if data else 'nothing received'})")
    elif status is None:
        if not case.close_ok:
            case.problem = f"closed without a response ({data[:80]!r}), expected {case.statuses}"
    elif status not in case.statuses:
        case.problem = f"answered {status} ({data[:120]!r}), expected {case.statuses}" + (" or a close" if case.close_ok else "")
    elif case.no_body and body:
        case.problem = f"the response to HEAD carries a body ({body[:60]!r}): RFC 9110 9.3.2 forbids it"


@dataclass
class FrameCase:
    name: str
    frames: list[bytes]
    codes: tuple[int, ...]  # acceptable close codes
    close_ok: bool = False  # a close without a close frame is accepted
    shutdown_after: bool = False  # half-close our side after sending
    outcome: str = ""
    problem: str | None = None


def masked_text(payload: bytes, fin: bool = True, opcode: int = 0x1) -> bytes:
    return client_frame(opcode, payload, fin=fin)


def frame_cases() -> list[FrameCase]:
    big = b"a" * (MAX_MESSAGE + 16 * 1024)  # 80 KiB: over max_message_size, under max_frame_size
    half = b"b" * (MAX_MESSAGE // 2 + 8 * 1024)  # two of these: 80 KiB in two fragments
    return [
        FrameCase("frame header claiming 2^63 bytes", [bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 63) + os.urandom(4)], (1009, 1002),
                  close_ok=True),
        FrameCase("frame header claiming 2^63-1 bytes", [bytes([0x82, 0xFF]) + struct.pack(">Q", (1 << 63) - 1) + os.urandom(4)], (1009,),
                  close_ok=True),
        FrameCase("frame header claiming 2 MiB (over max_frame_size)", [bytes([0x82, 0xFF]) + struct.pack(">Q", 2 << 20) + os.urandom(4)],
                  (1009,)),
        FrameCase("truncated frame, then our side half-closed", [masked_text(b"hello there")[:7]], (1000, 1001, 1002, 1006, 1011),
                  close_ok=True, shutdown_after=True),
        FrameCase("reserved data opcode 0x3", [client_frame(0x3, b"x")], (1002,)),
        FrameCase("reserved control opcode 0xB", [client_frame(0xB, b"x")], (1002,)),
        FrameCase("RSV1 set without an extension", [client_frame(0x1, b"x", rsv=0x40)], (1002,)),
        FrameCase("RSV2 set", [client_frame(0x1, b"x", rsv=0x20)], (1002,)),
        FrameCase("RSV3 set", [client_frame(0x1, b"x", rsv=0x10)], (1002,)),
        FrameCase("unmasked client frame", [client_frame(0x1, b"hello", mask=False)], (1002,)),
        FrameCase("text frame with invalid UTF-8", [masked_text(b"ok \xff\xfe")], (1007,)),
        FrameCase("text with an overlong encoding", [masked_text(b"\xc0\xaf")], (1007,)),
        FrameCase("text with a UTF-16 surrogate", [masked_text(b"\xed\xa0\x80")], (1007,)),
        FrameCase("text whose fragments end inside a code point", [masked_text(b"caf\xc3", fin=False), client_frame(0x0, b"", fin=True)],
                  (1007,)),
        FrameCase("ping with a 126-byte payload", [client_frame(0x9, b"p" * 126)], (1002,)),
        FrameCase("fragmented ping", [client_frame(0x9, b"p", fin=False)], (1002,)),
        FrameCase("continuation without a message", [client_frame(0x0, b"x")], (1002,)),
        FrameCase("new text frame inside a fragmented message", [masked_text(b"a", fin=False), masked_text(b"b")], (1002,)),
        FrameCase("close frame with a 1-byte payload", [client_frame(0x8, b"\x03")], (1002,)),
        FrameCase("close frame with code 1005 (reserved)", [client_frame(0x8, struct.pack(">H", 1005))], (1002,)),
        FrameCase("close frame with code 999", [client_frame(0x8, struct.pack(">H", 999))], (1002,)),
        FrameCase("close frame with invalid UTF-8 reason", [client_frame(0x8, struct.pack(">H", 1000) + b"\xff")], (1002, 1007)),
        FrameCase(f"message of {len(big)} bytes in one frame (max_message_size {MAX_MESSAGE})", [client_frame(0x2, big)], (1009,)),
        FrameCase(f"message of {2 * len(half)} bytes in two fragments (max_message_size {MAX_MESSAGE})",
                  [client_frame(0x2, half, fin=False), client_frame(0x0, half)], (1009,)),
    ]


def run_frame_case(port: int, case: FrameCase) -> None:
    s = raw_websocket(port, WS_PATH)
    try:
        send_error = None
        try:
            for f in case.frames:
                s.sendall(f)
            if case.shutdown_after:
                s.shutdown(socket.SHUT_WR)
        except OSError as exc:
            send_error = exc
        data, how = read_until_closed(s, ANSWER_TIMEOUT)
    finally:
        s.close()
    code, reason, before = first_close_frame(data)
    case.outcome = (f"close {code} {reason[:60]!r}" if code is not None else "no close frame") + f", connection {how}" + (
        f" (send: {send_error!r})" if send_error else "")
    if how == "open":
        case.problem = f"not closed within {ANSWER_TIMEOUT}s ({case.outcome}; frames: {before or 'none'})"
    elif code is None:
        if not case.close_ok:
            case.problem = f"closed without a close frame (expected {case.codes}; received {data[:60]!r})"
    elif code not in case.codes:
        case.problem = f"close code {code} ({reason[:80]!r}), expected {case.codes}"
    elif before:
        case.problem = f"frames before the close: {before}"


async def still_serving(server: Server, r: redis.Redis, bystander, label: str, seq: list[int]) -> None:
    """The bystander gets a message; a new websocket opens, subscribes and gets one."""
    await server.await_stats(lambda s: s["subscriptions"] == 1 and s["connections"] == 1, f"the bystander alone (after {label})", timeout=10)
    seq[0] += 1
    text = f"bystander-{seq[0]}"
    r.publish("broadcast:bystand", text)
    got = await receive_one(bystander, 10, f"bystander message after {label}")
    assert got == text, f"after {label}: the bystander got {got!r}, expected {text!r}"
    fresh = await open_client(server.url("fresh"))
    try:
        await server.await_stats(lambda s: s["subscriptions"] == 2, f"the fresh client subscribed (after {label})", timeout=10)
        r.publish("broadcast:fresh", text)
        got = await receive_one(fresh, 10, f"fresh client's message after {label}")
        assert got == text, f"after {label}: a fresh client got {got!r}"
    finally:
        await fresh.close()
    await server.await_stats(lambda s: s["subscriptions"] == 1 and s["connections"] == 1, f"back to the bystander alone ({label})", timeout=10)


def test_hostile_http(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """Broken requests, oversized header sections, wrong methods and bad keys, all at once on
    separate sockets: each gets its status (or, where listed, a close), none is left hanging."""
    server = server_factory(mode, "--max-message-size", str(MAX_MESSAGE))
    cases = http_cases()

    async def body() -> None:
        bystander = await open_client(server.url("bystand"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1, "the bystander subscribed")
            baseline = await asyncio.to_thread(settled_fd_count, server)
            await asyncio.gather(*(asyncio.to_thread(run_http_case, server.port, c) for c in cases))
            await asyncio.to_thread(wait_fds_at_most, server, baseline, 10, "after the hostile HTTP requests closed")
            await still_serving(server, r, bystander, "the hostile HTTP requests", [0])
            await asyncio.to_thread(wait_fds_at_most, server, baseline, 10, "after the fresh client closed")
        finally:
            await bystander.close()

    run_async(body(), 60, "hostile HTTP")
    for c in cases:
        print(f"{mode}: {c.name}: {c.outcome}")
    problems = [f"{c.name}: {c.problem}" for c in cases if c.problem]
    assert not problems, f"{len(problems)} of {len(cases)} hostile HTTP requests were mishandled by the {mode} server:\n" + "\n".join(problems)


def test_hostile_frames(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """Broken websocket frames, one websocket each, one after the other: the close code each needs,
    the TCP connection closed, the fd count back to its baseline after each, others served."""
    server = server_factory(mode, "--max-message-size", str(MAX_MESSAGE))
    cases = frame_cases()
    leaks: list[str] = []

    async def body() -> None:
        bystander = await open_client(server.url("bystand"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1, "the bystander subscribed")
            baseline = await asyncio.to_thread(settled_fd_count, server)
            seq = [0]
            for c in cases:
                await asyncio.to_thread(run_frame_case, server.port, c)
                try:
                    await asyncio.to_thread(wait_fds_at_most, server, baseline, 5, f"after '{c.name}'")
                except ServerDied:
                    raise
                except AssertionError as exc:
                    leaks.append(f"{c.name}: {exc}")
                await server.await_stats(lambda s: s["connections"] == 1, f"the hostile websocket gone ({c.name})", timeout=10)
                await still_serving(server, r, bystander, repr(c.name), seq)
        finally:
            await bystander.close()

    run_async(body(), 120, "hostile frames")
    for c in cases:
        print(f"{mode}: {c.name}: {c.outcome}")
    problems = [f"{c.name}: {c.problem}" for c in cases if c.problem] + [f"fd leak: {x}" for x in leaks]
    assert not problems, f"{len(problems)} problems with hostile frames on the {mode} server:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Slowloris

HANDSHAKE_TIMEOUT_MS = 1000
DROP_DEADLINE = HANDSHAKE_TIMEOUT_MS / 1000 + 3.0  # the timeout plus slack for a busy 2-core machine


@dataclass
class Loris:
    name: str
    first: bytes  # sent at once after connecting
    drip: bytes = b""  # then one byte per second
    dropped_after: float | None = None
    how: str = ""
    received: bytes = field(default=b"")

    def run(self, port: int, stop: threading.Event) -> None:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        t0 = time.monotonic()
        try:
            if self.first:
                s.sendall(self.first)
            drip = iter(self.drip or b"x" * 1000)
            next_byte = t0 + 1.0
            while not stop.is_set() and time.monotonic() - t0 < DROP_DEADLINE + 2:
                s.settimeout(max(0.01, min(0.2, next_byte - time.monotonic())))
                try:
                    chunk = s.recv(4096)
                    if not chunk:
                        self.how = "EOF"
                        break
                    self.received += chunk
                    continue
                except socket.timeout:
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    self.how = "reset"
                    break
                if self.drip and time.monotonic() >= next_byte:
                    next_byte += 1.0
                    try:
                        s.sendall(bytes([next(drip, ord("x"))]))
                    except (ConnectionResetError, BrokenPipeError):
                        self.how = "reset (on send)"
                        break
            if self.how:
                self.dropped_after = time.monotonic() - t0
        finally:
            s.close()

    def describe(self) -> str:
        if self.dropped_after is None:
            return f"{self.name}: still connected after {DROP_DEADLINE + 2:.0f}s"
        return f"{self.name}: dropped after {self.dropped_after:.2f}s ({self.how}; response {self.received[:60]!r})"


def test_slowloris(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """With --handshake-timeout 1000: a client that sends the request line and then one header byte
    per second, one that sends nothing, and one that stops after the request line are all dropped
    within the timeout (plus slack); a complete handshake sent in pieces within the timeout succeeds,
    an idle websocket outlives the timeout, and the fds come back."""
    try:
        server = server_factory(mode, "--handshake-timeout", str(HANDSHAKE_TIMEOUT_MS))
    except AssertionError as exc:  # ServerDied: the option is refused
        pytest.fail(f"the {mode} server does not start with --handshake-timeout {HANDSHAKE_TIMEOUT_MS}: {str(exc)[:600]}")
    request_line = b"GET /ws/f1?subscribe-broadcast HTTP/1.1\r\n"
    lorises = [
        Loris("request line, then one header byte per second", request_line,
              drip=f"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key()}\r\n".encode()),
        Loris("connected, nothing sent", b""),
        Loris("request line only", request_line),
    ]

    async def body() -> None:
        bystander = await open_client(server.url("bystand"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1, "the bystander subscribed")
            baseline = await asyncio.to_thread(settled_fd_count, server)
            stop = threading.Event()

            async def legit_in_pieces() -> str:
                """A full handshake in three pieces 0.2 s apart: slow but within the timeout."""
                def go() -> str:
                    req = upgrade(path="/ws/legit?subscribe-broadcast")
                    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                        for i in range(3):
                            s.sendall(req[i * len(req) // 3:(i + 1) * len(req) // 3])
                            time.sleep(0.2)  # pacing the client, not an assertion
                        head = b""
                        while b"\r\n\r\n" not in head:
                            chunk = s.recv(1024)
                            if not chunk:
                                break
                            head += chunk
                        return head.split(b"\r\n", 1)[0].decode(errors="replace")
                return await asyncio.to_thread(go)

            try:
                results = await asyncio.gather(*(asyncio.to_thread(lo.run, server.port, stop) for lo in lorises), legit_in_pieces())
            finally:
                stop.set()
            legit = results[-1]
            assert legit.startswith("HTTP/1.1 101"), f"a handshake sent in pieces over 0.4 s was refused: {legit!r}"
            slow = [lo.describe() for lo in lorises if lo.dropped_after is None or lo.dropped_after > DROP_DEADLINE]
            assert not slow, (f"the {mode} server did not drop slow handshakes within {DROP_DEADLINE:.1f}s "
                              f"(--handshake-timeout {HANDSHAKE_TIMEOUT_MS}):\n" + "\n".join(lo.describe() for lo in lorises))
            # The bystander has been idle for longer than the handshake timeout: still served.
            await still_serving(server, r, bystander, "the slowloris clients", [0])
            await asyncio.to_thread(wait_fds_at_most, server, baseline, 10, "after the slowloris clients were dropped")
        finally:
            await bystander.close()

    run_async(body(), 60, "slowloris")
    for lo in lorises:
        print(f"{mode}: {lo.describe()}")


# ---------------------------------------------------------------------------------------------
# permessage-deflate: client messages are inflated by the server, under max_message_size


def deflate_websocket(port: int, path: str) -> tuple[socket.socket, str]:
    """A raw websocket that offers permessage-deflate; returns it and the negotiated extension."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(upgrade(path=path, extra="Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, f"connection closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), f"handshake refused: {head!r}"
    ext = next((line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n") if line.lower().startswith(b"sec-websocket-extensions:")), "")
    return s, ext


def deflated(chunks, count: int) -> bytes:
    """Raw deflate of `count` repetitions of `chunks` (a bytes), ending as RFC 7692 7.2.1 wants (the
    trailing 00 00 ff ff of a sync flush removed)."""
    import zlib

    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = b"".join(c.compress(chunks) for _ in range(count)) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def test_deflate_bombs(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """permessage-deflate negotiated: a 256 MiB message compressed into a few hundred KiB (a deflate
    bomb) closes with 1009 without the server inflating it (RSS +64 MiB at most), a corrupt deflate
    stream closes with 1007 or 1002, RSV1 on a continuation or a control frame with 1002; a normal
    compressed message is published. The fds come back and other clients are served."""
    server = server_factory(mode, "--max-message-size", str(MAX_MESSAGE))
    bomb = deflated(b"\0" * (1 << 20), 256)
    assert len(bomb) < 1 << 20, "the bomb must fit in one frame under max_frame_size"
    cases = [
        FrameCase(f"256 MiB of zeros deflated into {len(bomb) // 1024} KiB", [client_frame(0x2, bomb, rsv=0x40)], (1009,)),
        FrameCase("corrupt deflate data", [client_frame(0x2, b"\xff\xfe\xfd\xfc not deflate at all", rsv=0x40)], (1007, 1002)),
        FrameCase("RSV1 on a continuation frame", [client_frame(0x1, deflated(b"abc", 1), rsv=0x40, fin=False),
                                                   client_frame(0x0, deflated(b"def", 1), rsv=0x40)], (1002,)),
        FrameCase("RSV1 on a ping", [client_frame(0x9, b"p", rsv=0x40)], (1002,)),
    ]
    figures: list[str] = []

    async def body() -> None:
        bystander = await open_client(server.url("bomb"))  # subscribed where the bombs would be published
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1, "the bystander subscribed")
            baseline = await asyncio.to_thread(settled_fd_count, server)

            # A normal compressed message is inflated and published: the extension really is in use.
            s, ext = await asyncio.to_thread(deflate_websocket, server.port, "/ws/bomb?publish-broadcast")
            try:
                assert ext.startswith("permessage-deflate"), f"permessage-deflate not negotiated: {ext!r}"
                text = "compressed hello " * 20
                await asyncio.to_thread(s.sendall, client_frame(0x1, deflated(text.encode(), 1), rsv=0x40))
                got = await receive_one(bystander, 10, "the compressed message, published")
                assert got == text, f"the bystander got {got!r}"
            finally:
                s.close()

            idle = proc_status_kib(server.pid, "VmRSS")
            for c in cases:
                def run(c: FrameCase = c) -> None:
                    sock, ext = deflate_websocket(server.port, "/ws/bomb?publish-broadcast")
                    try:
                        assert ext.startswith("permessage-deflate"), f"permessage-deflate not negotiated: {ext!r}"
                        for f in c.frames:
                            try:
                                sock.sendall(f)
                            except OSError:
                                break
                        data, how = read_until_closed(sock, ANSWER_TIMEOUT)
                    finally:
                        sock.close()
                    code, reason, before = first_close_frame(data)
                    c.outcome = (f"close {code} {reason[:60]!r}" if code is not None else "no close frame") + f", connection {how}"
                    if how == "open":
                        c.problem = f"not closed within {ANSWER_TIMEOUT}s ({c.outcome})"
                    elif code not in c.codes:
                        c.problem = f"{c.outcome}, expected close {c.codes}" + (f" (frames before: {before})" if before else "")

                with RssSampler(server.pid) as rss:
                    await asyncio.to_thread(run)
                figures.append(f"{c.name}: peak RSS {mib(rss.peak_kib)} (idle {mib(idle)})")
                if MEMORY_BOUNDS and rss.peak_kib - idle > 64 * 1024:
                    c.problem = (c.problem or "") + f"; peak RSS {mib(rss.peak_kib)}, {mib(rss.peak_kib - idle)} over idle (bound +64 MiB)"
                try:
                    await asyncio.to_thread(wait_fds_at_most, server, baseline, 5, f"after '{c.name}'")
                except ServerDied:
                    raise
                except AssertionError as exc:
                    c.problem = (c.problem or "") + f"; fd leak: {exc}"
            # The count drops just after the descriptor is closed.
            await server.await_stats(lambda s: s["connections"] == 1, "only the bystander still counted")
            # Nothing of the bombs was published: the bystander's next message is a fresh one.
            r.publish("broadcast:bomb", "after the bombs")
            got = await receive_one(bystander, 10, "a message after the bombs")
            assert got == "after the bombs", f"the bystander got {got!r} (part of a bomb was published?)"
        finally:
            await bystander.close()

    run_async(body(), 60, "deflate bombs")
    for c in cases:
        print(f"{mode}: {c.name}: {c.outcome}")
    for f in figures:
        print(f"{mode}: {f}")
    problems = [f"{c.name}: {c.problem}" for c in cases if c.problem]
    assert not problems, f"{len(problems)} problems with compressed frames on the {mode} server:\n" + "\n".join(problems)
