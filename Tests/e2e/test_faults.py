"""Redis faults with many clients: Redis killed (SIGKILL) and restarted under 1000 websockets, and a
server started while Redis is not there yet. Each test has its own redis-server: the session's must
not be killed."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from websockets.protocol import State

from e2e_helpers import (
    FIGURES,
    RedisServer,
    Server,
    close_all,
    free_port,
    healthz,
    open_clients,
    receive_one,
    run_async,
    wait_until,
)
from robust_helpers import ROBUST_MODES, raise_fd_limit

N_CLIENTS = 1000
N_FACILITIES = 10


@pytest.fixture(params=ROBUST_MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def facility(i: int) -> str:
    return f"restart{i % N_FACILITIES}"


def health(port: int) -> dict[str, Any]:
    status, body = healthz(port)
    assert status == 200, f"/healthz answered {status}: {body}"
    return body


def numsubs(own: RedisServer, channels: list[str]) -> dict[str, int]:
    client = own.client(socket_timeout=2)
    try:
        return {k.decode(): int(v) for k, v in client.pubsub_numsub(*channels)}
    finally:
        client.close()


def test_redis_killed_and_restarted_under_1000_clients(mode: str, server_factory: Callable[..., Server], tmp_path: Path) -> None:
    """1000 websockets on 10 facilities; redis-server gets SIGKILL and comes back on the same port.
    No websocket is dropped, /healthz says degraded meanwhile and ok afterwards, every channel is
    subscribed again exactly once (PUBSUB NUMSUB 1), and a message published afterwards on each
    facility reaches every one of its clients."""
    raise_fd_limit(N_CLIENTS + 1000)
    own = RedisServer(free_port(), tmp_path).start()
    channels = [f"broadcast:{facility(i)}" for i in range(N_FACILITIES)]
    timings: dict[str, float] = {}
    try:
        server = server_factory(mode, redis_url=own.url)

        async def body() -> None:
            t0 = time.monotonic()
            clients = []
            for i in range(N_FACILITIES):
                clients += await open_clients(server.url(facility(i)), N_CLIENTS // N_FACILITIES, batch=100)
            try:
                await server.await_stats(
                    lambda s: s["connections"] == N_CLIENTS and s["subscriptions"] == N_CLIENTS and s["channels"] == N_FACILITIES,
                    f"{N_CLIENTS} connections subscribed on {N_FACILITIES} channels", timeout=30,
                )
                timings["open"] = time.monotonic() - t0
                before = numsubs(own, channels)
                assert all(n == 1 for n in before.values()), f"PUBSUB NUMSUB before the restart: {before}"

                # SIGKILL: no FIN from a graceful shutdown, the server finds out from the dead socket.
                t1 = time.monotonic()
                own.proc.send_signal(signal.SIGKILL)
                own.proc.wait(10)
                own.proc = None
                down = await asyncio.to_thread(
                    wait_until, lambda: (h := health(server.port))["status"] == "degraded" and h, 15, '/healthz status "degraded"'
                )
                timings["degraded after"] = time.monotonic() - t1
                assert down["redis_connected"] is False, f"/healthz while Redis is dead: {down}"
                assert down["connections"] == N_CLIENTS, f"websockets dropped while Redis was dead: {down}"

                await asyncio.to_thread(own.start)  # same port, empty (no persistence)
                t2 = time.monotonic()
                up = await asyncio.to_thread(
                    wait_until,
                    lambda: (h := health(server.port))["status"] == "ok" and h["subscriptions"] == N_CLIENTS and h,
                    30, '/healthz status "ok" with every subscription',
                )
                timings["ok after restart"] = time.monotonic() - t2
                assert up["redis_connected"] is True and up["channels"] == N_FACILITIES, f"/healthz after the restart: {up}"
                after = await asyncio.to_thread(
                    wait_until, lambda: (n := numsubs(own, channels)) and all(v == 1 for v in n.values()) and n, 15,
                    "PUBSUB NUMSUB 1 on every channel after the restart",
                )
                timings["resubscribed after restart"] = time.monotonic() - t2
                assert after == {c: 1 for c in channels}

                closed = [i for i, c in enumerate(clients) if c.state is not State.OPEN]
                assert not closed, f"{len(closed)} of {N_CLIENTS} websockets were closed by the restart (e.g. {closed[:5]}): " + str(
                    [(clients[i].close_code, clients[i].close_reason) for i in closed[:5]])
                assert health(server.port)["connections"] == N_CLIENTS

                # Every client gets the message of its facility, published after the recovery.
                publisher = own.client()
                try:
                    for i in range(N_FACILITIES):
                        receivers = publisher.publish(channels[i], f"after-{i}")
                        assert receivers == 1, f"PUBLISH {channels[i]} reached {receivers} subscribers, expected the server's one"
                finally:
                    publisher.close()
                t3 = time.monotonic()
                results = await asyncio.gather(
                    *(receive_one(c, 20, f"client {k} on {facility(k // (N_CLIENTS // N_FACILITIES))}") for k, c in enumerate(clients)),
                    return_exceptions=True,
                )
                timings["delivered"] = time.monotonic() - t3
                wrong = [(k, r) for k, r in enumerate(results) if r != f"after-{k // (N_CLIENTS // N_FACILITIES)}"]
                assert not wrong, f"{len(wrong)} of {N_CLIENTS} clients did not get their facility's message after the restart: {wrong[:5]}"
            finally:
                await close_all(clients)

        run_async(body(), 150, f"redis restart under {N_CLIENTS} clients")
    finally:
        own.stop()
    figure = f"redis SIGKILL+restart {mode}, {N_CLIENTS} clients: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
    FIGURES.append(figure)
    print(figure)


def test_redis_unreachable_at_start(mode: str, server_factory: Callable[..., Server], tmp_path: Path) -> None:
    """The server starts with Redis not there: /healthz answers 200 "degraded", clients of broadcast
    facilities are accepted; Redis appears on that port: "ok", subscribed, a publish reaches them."""
    port = free_port()
    own = RedisServer(port, tmp_path)
    try:
        server = server_factory(mode, redis_url=own.url)
        status, h = healthz(server.port)
        assert status == 200 and h["status"] == "degraded" and h["redis_connected"] is False, f"/healthz without Redis: {status} {h}"

        async def body() -> None:
            clients = await open_clients(server.url("early1"), 3) + await open_clients(server.url("early2"), 2)
            try:
                # The 101 reaches a client just before its server counts the connection.
                h = await server.await_stats(lambda h: h["connections"] == 5, "5 clients counted")
                assert h["status"] == "degraded", f"/healthz with 5 clients, Redis still away: {h}"
                await asyncio.to_thread(own.start)
                up = await asyncio.to_thread(
                    wait_until, lambda: (h := health(server.port))["status"] == "ok" and h["subscriptions"] == 5 and h, 20,
                    '/healthz "ok" with 5 subscriptions once Redis is up',
                )
                assert up["channels"] == 2 and up["connections"] == 5, f"/healthz: {up}"
                numsub = await asyncio.to_thread(numsubs, own, ["broadcast:early1", "broadcast:early2"])
                assert numsub == {"broadcast:early1": 1, "broadcast:early2": 1}, f"PUBSUB NUMSUB: {numsub}"
                publisher = own.client()
                try:
                    assert publisher.publish("broadcast:early1", "one") == 1
                    assert publisher.publish("broadcast:early2", "two") == 1
                finally:
                    publisher.close()
                got = await asyncio.gather(*(receive_one(c, 10, f"client {k}") for k, c in enumerate(clients)))
                assert got == ["one"] * 3 + ["two"] * 2, f"messages after Redis came up: {got}"
            finally:
                await close_all(clients)

        run_async(body(), 60, "redis unreachable at start")
    finally:
        own.stop()


@pytest.mark.parametrize("mode", ROBUST_MODES)
def test_require_redis_fails_fast_with_a_clear_message(mode: str, prefix: Path) -> None:
    """With require_redis on, a server whose Redis is unreachable exits at once, non-zero, saying why."""
    import subprocess

    from e2e_helpers import free_port

    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    binary = [str(prefix / "bin" / "ws4redis"), "serve"] if mode == "standalone" else [str(prefix / "bin" / "ws4redis-host")]
    done = subprocess.run(binary + ["--listen", f"127.0.0.1:{free_port()}", "--redis", redis_url, "--require-redis", "on"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0, f"started without Redis: {done}"
    assert "require_redis" in done.stdout + done.stderr and "refused" in (done.stdout + done.stderr).lower(), done
