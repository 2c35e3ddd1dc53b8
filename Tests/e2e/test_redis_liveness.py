"""Redis that stops answering without closing its connections: the test's own redis-server is frozen
with SIGSTOP (its kernel still accepts and acknowledges, the process answers nothing, as with a peer
gone in a partition or a failover elsewhere). The server must notice (/healthz degraded, counted in
ws4redis_redis_timeouts_total), say so about client publications it could not make, and once Redis
is thawed resubscribe for the websockets that stayed connected. Every test thaws Redis in a finally.
Durations are recorded as figures, never asserted."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Callable

import pytest
from websockets.exceptions import ConnectionClosed

from e2e_helpers import (
    FIGURES,
    MODES,
    RedisServer,
    Server,
    close_all,
    healthz,
    http_get,
    open_client,
    receive_one,
    run_async,
    wait_until,
)

#: Short, so that the tests are quick; the defaults are 1000 and 3000.
LIVENESS_ARGS = ("--redis-ping-interval", "200", "--redis-timeout", "1000")


class Frozen:
    """SIGSTOP on entry, SIGCONT on exit, whatever happened in between (also callable to thaw early)."""

    def __init__(self, redis_server: RedisServer):
        self.proc = redis_server.proc
        self.at = 0.0

    def __enter__(self) -> "Frozen":
        self.proc.send_signal(signal.SIGSTOP)
        self.at = time.monotonic()
        return self

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def __exit__(self, *exc: object) -> None:
        self.thaw()


def health(server: Server) -> dict:
    status, body = healthz(server.port)
    assert status == 200, f"/healthz answered {status}: {body}"
    return body


def timeouts(server: Server) -> float:
    status, _, body = http_get(server.port, "/metrics")
    assert status == 200, f"/metrics answered {status}"
    for line in body.decode().splitlines():
        if line.startswith("ws4redis_redis_timeouts_total "):
            return float(line.split()[1])
    return 0.0


def numsub(redis_server: RedisServer, channel: str) -> int:
    client = redis_server.client(socket_timeout=2)
    try:
        return int(dict(client.pubsub_numsub(channel))[channel.encode()])
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_frozen_redis_turns_healthz_degraded_and_delivery_resumes_after_the_thaw(
    mode: str, server_factory: Callable[..., Server], own_redis: RedisServer
) -> None:
    server = server_factory(mode, *LIVENESS_ARGS, redis_url=own_redis.url)
    timings: dict[str, float] = {}

    async def body() -> None:
        ws = await open_client(server.url("frozen"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1 and s["status"] == "ok", "a confirmed subscription")
            with Frozen(own_redis) as frozen:
                down = await asyncio.to_thread(
                    wait_until, lambda: (h := health(server)) and h["status"] == "degraded" and h, 30, '/healthz "degraded" with Redis frozen'
                )
                timings["degraded after"] = time.monotonic() - frozen.at
                assert down["redis_connected"] is False and down["connections"] == 1, f"/healthz with Redis frozen: {down}"
                assert await asyncio.to_thread(timeouts, server) >= 1, "the timeout was not counted in ws4redis_redis_timeouts_total"
                frozen.thaw()
                thawed = time.monotonic()
            await server.await_stats(lambda s: s["status"] == "ok" and s["subscriptions"] == 1, '/healthz "ok" after the thaw', timeout=30)
            timings["ok after thaw"] = time.monotonic() - thawed
            # Connections given up while frozen may still hold a SUBSCRIBE Redis reads late: wait for exactly ours.
            await asyncio.to_thread(wait_until, lambda: numsub(own_redis, "broadcast:frozen") == 1, 15, "PUBSUB NUMSUB 1 after the thaw")
            publisher = own_redis.client()
            try:
                assert publisher.publish("broadcast:frozen", "after-thaw") == 1
                assert await receive_one(ws, 10, "the websocket that stayed connected") == "after-thaw"
                fresh = await open_client(server.url("frozen"))
                try:
                    await server.await_stats(lambda s: s["subscriptions"] == 2, "the new websocket subscribed")
                    assert publisher.publish("broadcast:frozen", "to-both") == 1
                    assert await receive_one(fresh, 10, "the new websocket") == "to-both"
                    assert await receive_one(ws, 10, "the old websocket") == "to-both"
                finally:
                    await fresh.close()
            finally:
                publisher.close()
        finally:
            await ws.close()

    run_async(body(), 120, f"Redis frozen under a {mode} server")
    figure = f"redis SIGSTOP {mode} (ping 200 ms, timeout 1000 ms): " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
    FIGURES.append(figure)
    print(figure)


@pytest.mark.parametrize("mode", MODES)
def test_a_client_publication_while_redis_is_frozen_is_reported_not_lost_silently(
    mode: str, server_factory: Callable[..., Server], own_redis: RedisServer
) -> None:
    """Before redis_timeout the publication waited for a reply for as long as Redis stayed frozen (hours
    if the peer had vanished), and nothing was said. Now it fails after redis_timeout and the server
    logs it and closes the sender with 1013 (it may reconnect and send again); the command connection
    is given up and, after the thaw, publications go through again."""
    server = server_factory(mode, *LIVENESS_ARGS, redis_url=own_redis.url)
    observed: dict[str, str] = {}

    async def body() -> None:
        listener = await open_client(server.url("pubfrozen"))
        talker = await open_client(server.url("pubfrozen", "publish-broadcast"))
        senders = [talker]
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1 and s["status"] == "ok", "the listener subscribed")
            with Frozen(own_redis):
                await talker.send("while-frozen")
                line = await asyncio.to_thread(
                    wait_until,
                    lambda: next((l for l in server.log_path.read_text(errors="replace").splitlines() if "client message may not have been published" in l), None),
                    30, "the server to report the publication it could not make",
                )
                observed["report"] = line
                assert await asyncio.to_thread(timeouts, server) >= 1, "the timeout was not counted in ws4redis_redis_timeouts_total"
                await asyncio.wait_for(talker.wait_closed(), 10)
                assert talker.close_code == 1013, f"the sender was closed with {talker.close_code} {talker.close_reason!r}"
            await server.await_stats(lambda s: s["status"] == "ok", '/healthz "ok" after the thaw', timeout=30)
            got: list[str] = []

            async def publish_until_heard() -> None:
                # The command connection comes back on its own back-off: until it does, a sender is closed
                # with 1013 and reconnects, as a page would; publish until one message arrives.
                for attempt in range(60):
                    if senders[-1].close_code is not None:
                        senders.append(await open_client(server.url("pubfrozen", "publish-broadcast")))
                    try:
                        await senders[-1].send(f"after-thaw-{attempt}")
                    except ConnectionClosed:
                        continue
                    try:
                        while True:
                            got.append(await asyncio.wait_for(listener.recv(), 0.5))
                            if got[-1].startswith("after-thaw"):
                                return
                    except TimeoutError:
                        continue
                raise AssertionError(f"no publication reached the listener after the thaw; got {got}")

            await publish_until_heard()
            observed["delivered late"] = str("while-frozen" in got)
        finally:
            await close_all([listener, *senders])

    run_async(body(), 120, f"client publication with Redis frozen under a {mode} server")
    figure = f"redis SIGSTOP {mode}, client publication: {observed}"
    FIGURES.append(figure)
    print(figure)
