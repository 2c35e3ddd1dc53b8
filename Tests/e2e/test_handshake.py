"""Refused websocket handshakes, in each mode; the server keeps serving afterwards."""

from __future__ import annotations

import http.client
import re
import socket
from typing import Callable

import redis
from websockets.exceptions import InvalidStatus

from e2e_helpers import Server, close_all, http_get, open_client, open_clients, receive_one, run_async, upgrade_headers, wait_until, websocket_key
from lean_ws import client_frame, upgrade_request


def request(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers={"Connection": "close", **headers})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def http10_upgrade(port: int, path: str) -> int:
    """The status of an upgrade request sent as HTTP/1.0 (http.client speaks only 1.1)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {websocket_key()}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(256)
            if not chunk:
                break
            head += chunk
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1


def test_handshake_errors(server: Server, r: redis.Redis) -> None:
    port = server.port
    problems: list[str] = []

    def expect(label: str, got: tuple[int, dict[str, str], bytes], status: int) -> dict[str, str]:
        if got[0] != status:
            problems.append(f"{label}: status {got[0]}, expected {status} (body {got[2][:120]!r})")
        return got[1]

    # A plain GET of a websocket URL (no Upgrade) is a 400, as in the original.
    expect("plain GET /ws/f1", http_get(port, "/ws/f1?subscribe-broadcast"), 400)

    # RFC 6455 4.4: an unsupported version gets 426 and the version we speak.
    headers = expect("Sec-WebSocket-Version: 8", http_get(port, "/ws/f1?subscribe-broadcast", upgrade_headers("8")), 426)
    if headers.get("sec-websocket-version", "").strip() != "13":
        problems.append(f"426 response carries Sec-WebSocket-Version {headers.get('sec-websocket-version')!r}, expected '13'")

    # No Sec-WebSocket-Key: not a valid upgrade.
    no_key = upgrade_headers()
    del no_key["Sec-WebSocket-Key"]
    expect("upgrade without Sec-WebSocket-Key", http_get(port, "/ws/f1?subscribe-broadcast", no_key), 400)

    # Non-GET upgrade.
    expect("POST upgrade", request(port, "POST", "/ws/f1?subscribe-broadcast", upgrade_headers()), 400)

    # Not HTTP/1.1.
    status = http10_upgrade(port, "/ws/f1?subscribe-broadcast")
    if status != 400:
        problems.append(f"HTTP/1.0 upgrade: status {status}, expected 400")

    # Outside the URL prefix: nothing there, with or without an upgrade.
    expect("plain GET /nope", http_get(port, "/nope"), 404)
    expect("upgrade on /nope", http_get(port, "/nope", upgrade_headers()), 404)

    assert not problems, "handshake answers:\n" + "\n".join(problems)

    # Still serving: health, and a websocket that subscribes and receives, echoing the first subprotocol.
    assert server.stats()["status"] == "ok"

    async def body() -> None:
        ws = await open_client(server.url("f1"), subprotocols=["chat", "superchat"])
        try:
            assert ws.subprotocol == "chat", f"server selected subprotocol {ws.subprotocol!r}, expected the first offered ('chat')"
            await server.await_stats(lambda s: s["subscriptions"] == 1, "1 confirmed subscription")
            r.publish("broadcast:f1", "still serving")
            assert await receive_one(ws, 10, "message after refused handshakes") == "still serving"
        finally:
            await ws.close()

    run_async(body(), 30, "serving after refused handshakes")


def test_max_connections(server_factory: Callable[..., Server]) -> None:
    """--max-connections 2: a third websocket gets 503; once one leaves, a new one is accepted."""
    server = server_factory("standalone", "--max-connections", "2")

    async def body() -> None:
        clients = await open_clients(server.url("f1"), 2)
        try:
            await server.await_stats(lambda s: s["connections"] == 2, "2 connections")
            try:
                extra = await open_client(server.url("f1"))
            except InvalidStatus as exc:
                assert exc.response.status_code == 503, f"third websocket refused with {exc.response.status_code}, expected 503"
            else:
                clients.append(extra)
                raise AssertionError("a third websocket was accepted with --max-connections 2")
            await clients.pop().close()
            await server.await_stats(lambda s: s["connections"] == 1, "1 connection after one left")
            clients.append(await open_client(server.url("f1")))
        finally:
            await close_all(clients)

    run_async(body(), 30, "max connections")


def read_until_closed(s: socket.socket, timeout: float = 5.0) -> bytes:
    s.settimeout(timeout)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_keep_alive_pipelining_and_frames_right_after_the_head(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """HTTP/1.1 keeps the connection for the next request, also one sent before the first answer;
    HTTP/1.0 closes after its answer; a frame in the same packet as the upgrade request is read."""
    server = server_factory(mode)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers = read_until_closed(s)
    statuses = re.findall(rb"HTTP/1\.[01] (\d{3}) ", answers)
    # libmicrohttpd (the hosts) may close instead of answering a pipelined request, as RFC 9112 §9.3.2 allows.
    closed_after_first = mode != "standalone" and statuses == [b"200"] and b"\r\nConnection: close\r\n" in answers
    assert statuses == [b"200", b"404"] or closed_after_first, f"two pipelined requests answered {statuses}: {answers[:300]!r}"

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = read_until_closed(s)
    assert answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n")[0], f"HTTP/1.0 request answered {answer[:120]!r}"

    pubsub = r.pubsub()
    pubsub.subscribe("broadcast:early")
    wait_until(lambda: pubsub.get_message(timeout=0.1), 5, "the test's own subscription")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(upgrade_request(server.port, "/ws/early?publish-broadcast", websocket_key()) + client_frame(0x1, b"sent with the handshake"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), f"upgrade answered {head[:120]!r}"
        message = wait_until(lambda: pubsub.get_message(timeout=0.1), 10, "the frame sent with the handshake, published")
    pubsub.close()
    assert message["data"] == b"sent with the handshake", f"published {message!r}"
