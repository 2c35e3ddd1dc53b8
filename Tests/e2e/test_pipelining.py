"""Pipelined HTTP requests from a client that never reads the answers: what the server buffers
stays bounded, and other clients are served all the while. The standalone listener's
HTTPFrontHandler stops reading requests once a small bound of answers is owed and reads on when
they are written; libmicrohttpd (the host) holds requests in its per-connection memory pool and,
once that is full, answers the current one with `Connection: close` and closes the connection."""

from __future__ import annotations

import select
import socket
import time
from typing import Callable

import pytest

from e2e_helpers import MEMORY_BOUNDS, Server, http_get
from robust_helpers import mib, proc_status_kib

#: What the client offers at most: without the bound a server reads all of it and owes ~40 times
#: as much in answers; with it, the kernel's socket buffers (the server's receive buffer grows to
#: net.ipv4.tcp_rmem's maximum, 32 MiB here, at most) hold what was sent when writes stop.
OFFERED_BYTES = 96 << 20
#: A stall: this long without the socket taking another byte.
STALL_SECONDS = 2.0
#: Growth of the server's resident memory that the flood may cause (the answers owed are 64 KiB).
RSS_GROWTH_BOUND_KIB = 16 << 10


def flood(port: int, path: str) -> tuple[socket.socket, int, bool]:
    """Sends pipelined GETs of `path` without reading until the socket takes no more for
    STALL_SECONDS, the server closes it, or OFFERED_BYTES went out; returns the socket, the bytes
    sent and whether the server closed the connection."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    chunk = request * (65536 // len(request))
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    s.setblocking(False)
    sent = 0
    last_progress = time.monotonic()
    while sent < OFFERED_BYTES and time.monotonic() - last_progress < STALL_SECONDS:
        _, writable, _ = select.select([], [s], [], 0.1)
        if not writable:
            continue
        try:
            sent += s.send(chunk)
            last_progress = time.monotonic()
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return s, sent, True
    return s, sent, False


def test_unread_answers_stop_the_reading(mode: str, server_factory: Callable[..., Server]) -> None:
    """A client pipelining GET /healthz without reading: its writes stop being taken long before
    OFFERED_BYTES (the server stopped reading, or closed the connection), the server's memory
    stays within a bound, and a second client is served meanwhile; a connection kept open gets
    its answers once the client reads."""
    # The handshake timeout would drop the stalled connection: a long one keeps it for the checks.
    server = server_factory(mode, "--handshake-timeout", "120000")
    assert http_get(server.port, "/healthz")[0] == 200
    rss_before = proc_status_kib(server.pid, "VmRSS")
    s, sent, closed = flood(server.port, "/healthz")
    try:
        rss_after = proc_status_kib(server.pid, "VmRSS")
        assert sent < OFFERED_BYTES, f"the server read all {mib(sent >> 10)} of pipelined requests that nobody read the answers of"
        if MEMORY_BOUNDS:
            assert rss_after - rss_before < RSS_GROWTH_BOUND_KIB, \
                f"VmRSS grew from {mib(rss_before)} to {mib(rss_after)} while {mib(sent >> 10)} of requests went unanswered"
        assert http_get(server.port, "/healthz")[0] == 200, "another client is served while one floods"
        if closed:
            return
        s.setblocking(True)
        s.settimeout(10)
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), f"the flooding client's first answer: {first[:100]!r}"
    finally:
        s.close()
    assert http_get(server.port, "/healthz")[0] == 200
