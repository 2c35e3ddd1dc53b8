"""Observability: /metrics in the Prometheus text format, one log line per websocket opened and
closed (text and JSON), the client's address behind a trusted proxy, and `ws4redis stats`."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

import redis

from e2e_helpers import Server, assert_all_received, free_port, http_get, open_client, open_clients, close_all, raw_handshake, receive_n, run_async, wait_until


def metrics(port: int) -> dict[str, float]:
    status, headers, body = http_get(port, "/metrics")
    assert status == 200, f"GET /metrics: {status} {body[:200]!r}"
    assert headers.get("content-type", "").startswith("text/plain; version=0.0.4"), f"/metrics content type: {headers}"
    figures: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            figures[name] = float(value)
    return figures


def log_records(server: Server) -> list[dict[str, Any]]:
    """The JSON log lines the server wrote so far."""
    return [json.loads(line) for line in server.log_path.read_text(errors="replace").splitlines() if line.startswith("{")]


def test_metrics_count_what_happened(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    server = server_factory(mode)
    assert raw_handshake(server.port, "/ws/metered?subscribe-broadcast", {"Sec-WebSocket-Version": "8"})[0] == 426

    async def body() -> dict[str, float]:
        clients = await open_clients(server.url("metered"), 3)
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 3, "3 subscribed")
            for k in range(5):
                assert await asyncio.to_thread(r.publish, "broadcast:metered", f"m{k}") == 1
            assert_all_received(await asyncio.gather(*(receive_n(c, 5, 10) for c in clients)), [f"m{k}" for k in range(5)])
            # Counters are added once a loop has written its batch: right after the clients read it.
            return await asyncio.to_thread(
                wait_until, lambda: (m := metrics(server.port))["ws4redis_deliveries_total"] == 15 and m, 10, "15 deliveries counted")
        finally:
            await close_all(clients)

    m = run_async(body(), 60, "metrics")
    assert m["ws4redis_connections"] == 3 and m["ws4redis_connections_opened_total"] == 3, m
    assert m['ws4redis_handshakes_total{status="101"}'] == 3 and m['ws4redis_handshakes_total{status="426"}'] == 1, m
    assert m["ws4redis_subscriptions"] == 3 and m["ws4redis_channels"] == 1 and m["ws4redis_redis_connected"] == 1, m
    assert m["ws4redis_redis_messages_total"] == 5 and m["ws4redis_redis_message_bytes_total"] == 10, m
    # Each "mK" goes out as a 4-byte frame (2 header bytes): 15 deliveries, 60 bytes.
    assert m["ws4redis_delivered_bytes_total"] == 60, m
    # One observation per message per event loop that had subscribers of it (2 loops here).
    assert 5 <= m["ws4redis_delivery_latency_seconds_count"] <= 10, m
    assert m['ws4redis_delivery_latency_seconds_bucket{le="+Inf"}'] == m["ws4redis_delivery_latency_seconds_count"], m
    assert m["ws4redis_slow_client_closes_total"] == 0 and m["ws4redis_redis_reconnects_total"] == 0, m


def test_json_log_lines_name_each_websocket(mode: str, server_factory: Callable[..., Server]) -> None:
    """Behind a trusted proxy the client's address comes from X-Forwarded-For; each websocket gets an
    "opened" and a "closed" line with the same id, its facility, flags, duration and close code."""
    server = server_factory(mode, "--log-format", "json", "--trusted-proxies", "127.0.0.1, ::1")

    async def body() -> None:
        ws = await open_client(server.url("logged", "subscribe-broadcast&echo"), additional_headers={"X-Forwarded-For": "198.51.100.23"})
        await server.await_stats(lambda s: s["subscriptions"] == 1, "subscribed")
        await ws.close(1000)
        await server.await_stats(lambda s: s["connections"] == 0, "closed")

    run_async(body(), 30, "json logs")
    records = wait_until(lambda: (rs := log_records(server)) and any(r["message"] == "websocket closed" for r in rs) and rs, 5, "the closing line")
    opened = [r for r in records if r["message"] == "websocket opened"]
    closed = [r for r in records if r["message"] == "websocket closed"]
    assert len(opened) == 1 and len(closed) == 1, records
    assert opened[0] | {"time": "", "id": ""} == {
        "time": "", "id": "", "level": "info", "logger": "ws4redis", "message": "websocket opened",
        "address": "198.51.100.23", "facility": "logged", "flags": "subscribe-broadcast,echo",
    }, opened[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", opened[0]["time"]), opened[0]
    assert closed[0]["id"] == opened[0]["id"] and closed[0]["address"] == "198.51.100.23", closed[0]
    assert closed[0]["close-code"] == "1000" and closed[0]["cause"] == "-" and int(closed[0]["duration-ms"]) >= 0, closed[0]


def test_forwarded_headers_of_untrusted_peers_are_ignored(mode: str, server_factory: Callable[..., Server]) -> None:
    server = server_factory(mode)

    async def body() -> None:
        ws = await open_client(server.url("spoofed"), additional_headers={"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"})
        await server.await_stats(lambda s: s["subscriptions"] == 1, "subscribed")
        ws.transport.abort()
        await server.await_stats(lambda s: s["connections"] == 0, "gone")

    run_async(body(), 30, "untrusted forwarded headers")
    log = wait_until(lambda: (text := server.log_path.read_text(errors="replace")) and "websocket closed" in text and text, 5, "the closing line")
    lines = [line for line in log.splitlines() if "websocket opened" in line or "websocket closed" in line]
    assert len(lines) == 2 and all("address=127.0.0.1" in line and "6.6.6.6" not in line for line in lines), lines
    assert "close-code=1006" in lines[1], lines[1]


def test_stats_command_prints_the_live_figures(mode: str, server_factory: Callable[..., Server], prefix: Path, r: redis.Redis) -> None:
    server = server_factory(mode)

    def stats(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(prefix / "bin" / "ws4redis"), "stats", "--url", url], capture_output=True, text=True, timeout=20)

    async def body() -> str:
        clients = await open_clients(server.url("counted"), 2)
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 2, "2 subscribed")
            assert await asyncio.to_thread(r.publish, "broadcast:counted", "hello") == 1
            assert_all_received(await asyncio.gather(*(receive_n(c, 1, 10) for c in clients)), ["hello"])
            await server.await_stats(lambda s: s["messages_out"] == 2, "2 deliveries")
            done = await asyncio.to_thread(stats, f"http://127.0.0.1:{server.port}")
            assert done.returncode == 0, done.stderr
            return done.stdout
        finally:
            await close_all(clients)

    out = run_async(body(), 60, "ws4redis stats")
    for pattern in [r"redis\s+connected, reconnects 0", r"connections\s+2 open, 2 opened", r"handshakes\s+101: 2",
                    r"subscriptions\s+2 on 1 channels", r"delivered\s+2 messages, 14 bytes", r"latency\s+p50 <= \d+ ms, p99 <= \d+ ms"]:
        assert re.search(pattern, out), f"{pattern!r} not in:\n{out}"
    nobody = stats(f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode != 0 and "Error" in nobody.stderr, (nobody.returncode, nobody.stderr)
