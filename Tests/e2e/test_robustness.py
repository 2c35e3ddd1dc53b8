"""A client that stops reading, and Redis going away and coming back."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Callable

import redis

from e2e_helpers import RedisServer, Server, free_port, healthz, open_client, receive_n, receive_one, run_async, websocket_key, wait_until


def raw_websocket(port: int, path: str, rcvbuf: int = 4096) -> socket.socket:
    """A websocket opened by hand on a socket with a small receive buffer, that the test never reads."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {websocket_key()}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)  # byte by byte: nothing past the response head is consumed
        assert chunk, f"connection closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), f"handshake refused: {head!r}"
    return s


def drain_until_closed(s: socket.socket, timeout: float) -> int:
    """Reads everything until the peer closed the connection (EOF or reset); returns the bytes read."""
    deadline = time.monotonic() + timeout
    total = 0
    s.settimeout(1)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return total
        if not chunk:
            return total
        total += len(chunk)
    raise AssertionError(f"the server did not close the slow client's connection within {timeout}s ({total} bytes read)")


def test_slow_client_is_closed_others_unaffected(server: Server, r: redis.Redis) -> None:
    """A client that stops reading is closed once its outbound buffer is full (4 MiB by default);
    a client that reads gets every message, in order, meanwhile."""
    batches, per_batch, size = 15, 20, 100_000  # 30 MB in all, 2 MB at a time

    def payload(i: int) -> bytes:  # invalid UTF-8: a binary frame
        return b"\xff" + b"%08d" % i + bytes(size - 9)

    async def body() -> None:
        fast = await open_client(server.url("f1"))
        slow = await asyncio.to_thread(raw_websocket, server.port, "/ws/f1?subscribe-broadcast")
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 2, "2 confirmed subscriptions")
            received: list[bytes] = []
            for b in range(batches):
                pipe = r.pipeline(transaction=False)
                for i in range(b * per_batch, (b + 1) * per_batch):
                    pipe.publish("broadcast:f1", payload(i))
                await asyncio.to_thread(pipe.execute)
                # The fast client keeps up (at most one batch queued), so only the reader-less one is slow.
                got, why = await receive_n(fast, per_batch, timeout=20)
                received += got
                assert why is None, f"the reading client got {len(received)} of {(b + 1) * per_batch}: {why}"
            bad = [i for i, m in enumerate(received) if m[:9] != payload(i)[:9] or len(m) != size]
            assert not bad, f"the reading client got wrong or misordered messages at {bad[:10]}"
            await server.await_stats(
                lambda s: s["slow_client_closes"] == 1 and s["connections"] == 1, "the slow client to be closed", timeout=10
            )
            await asyncio.to_thread(drain_until_closed, slow, 20)
            # The reading client is still served.
            r.publish("broadcast:f1", "after")
            assert await receive_one(fast, 10, "message after the slow client was closed") == "after"
        finally:
            slow.close()
            await fast.close()

    run_async(body(), 120, "slow client")


def test_redis_restart(server_factory: Callable[..., Server], tmp_path: Path) -> None:
    """Redis goes away: the server reports degraded and keeps its websockets; Redis comes back: the
    server reconnects, subscribes again, and the same websocket receives again."""
    own = RedisServer(free_port(), tmp_path).start()
    try:
        server = server_factory("standalone", redis_url=own.url)

        async def body() -> None:
            ws = await open_client(server.url("f1"))
            try:
                await server.await_stats(lambda s: s["subscriptions"] == 1, "1 confirmed subscription")
                own.client().publish("broadcast:f1", "before")
                assert await receive_one(ws, 10, "message before the restart") == "before"

                await asyncio.to_thread(own.stop)
                down = await asyncio.to_thread(
                    wait_until, lambda: (h := healthz(server.port)[1]) and not h["redis_connected"] and h, 15, "redis_connected == false"
                )
                assert down["status"] == "degraded", f"/healthz with Redis down: {down}"
                assert down["connections"] == 1, f"the websocket was dropped while Redis was down: {down}"

                await asyncio.to_thread(own.start)
                up = await asyncio.to_thread(
                    wait_until,
                    lambda: (h := healthz(server.port)[1]) and h["redis_connected"] and h["subscriptions"] == 1 and h,
                    30,
                    "reconnected and subscribed again",
                )
                assert up["status"] == "ok", f"/healthz after Redis came back: {up}"
                client = own.client()
                numsub = dict(client.pubsub_numsub("broadcast:f1"))[b"broadcast:f1"]
                assert numsub == 1, f"PUBSUB NUMSUB broadcast:f1 after the restart: {numsub}"
                assert client.publish("broadcast:f1", "after") == 1
                assert await receive_one(ws, 10, "message after the restart") == "after"
                client.close()
            finally:
                await ws.close()

        run_async(body(), 90, "redis restart")
    finally:
        own.stop()
