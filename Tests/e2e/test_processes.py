"""`ws4redis serve --processes N`: N workers share the port (SO_REUSEPORT), each with its own Redis
subscriber connection; the supervisor restarts a worker that dies and stops them all on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Callable

import redis
from websockets.exceptions import ConnectionClosed

from e2e_helpers import Server, close_all, open_clients, receive_one, run_async, wait_until

WORKERS = 3


def children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def subscriber_connections(r: redis.Redis) -> int:
    return sum(1 for c in r.client_list() if c.get("flags") == "P")


def test_workers_share_the_port_and_are_restarted(server_factory: Callable[..., Server], r: redis.Redis) -> None:
    server = server_factory("standalone", "--processes", str(WORKERS), "--threads", "1")
    workers = wait_until(lambda: len(w := children(server.pid)) == WORKERS and w, 20, f"{WORKERS} workers")

    async def body() -> set[int]:
        clients = await open_clients(server.url("multi"), 60)
        try:
            # Every worker took some of the 60 connections: one subscription per worker in Redis.
            await asyncio.to_thread(wait_until, lambda: r.pubsub_numsub("broadcast:multi") == [(b"broadcast:multi", WORKERS)], 15,
                                    "one Redis subscription per worker")
            assert subscriber_connections(r) == WORKERS
            assert r.publish("broadcast:multi", "to all") == WORKERS
            assert await asyncio.gather(*(receive_one(c, 10, "the broadcast") for c in clients)) == ["to all"] * 60

            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            replaced = await asyncio.to_thread(wait_until, lambda: len(w := children(server.pid)) == WORKERS and victim not in w and w, 20,
                                               "the supervisor to restart the killed worker")
            assert len(replaced & workers) == WORKERS - 1, (workers, replaced)
            assert r.publish("broadcast:multi", "after the restart") >= WORKERS - 1
            survivors, lost = [], 0
            for c in clients:
                try:
                    assert await receive_one(c, 10, "after the restart") == "after the restart"
                    survivors.append(c)
                except (ConnectionClosed, AssertionError):
                    lost += 1
            assert 0 < lost < 60 and len(survivors) == 60 - lost, f"{lost} clients lost with one of {WORKERS} workers"
            # The lost clients reconnect (to any worker, the new one included); the stored message
            # tells that each one is subscribed.
            r.set("broadcast:multi", "stored")
            again = await open_clients(server.url("multi"), lost)
            assert await asyncio.gather(*(receive_one(c, 20, "the stored message") for c in again)) == ["stored"] * lost
            clients = survivors + again
            r.publish("broadcast:multi", "everyone again")
            assert await asyncio.gather(*(receive_one(c, 10, "everyone again") for c in clients)) == ["everyone again"] * 60
            return replaced
        finally:
            await close_all(clients)

    final_workers = run_async(body(), 90, "worker processes")
    # SIGTERM to the supervisor: it forwards it, and exits 0 once every worker exited 0.
    server.stop_and_check()
    assert not [pid for pid in final_workers if Path(f"/proc/{pid}").exists()], "workers outlived their supervisor"


def test_a_second_server_on_a_taken_port_exits_with_the_reason(server_factory: Callable[..., Server], prefix: Path) -> None:
    """The listeners share their port among the event loops (SO_REUSEPORT); a server without
    --reuse-port on must still be refused a port another server listens on, and exit cleanly
    (a Redis connection still being made when it gave up once crashed it)."""
    first = server_factory("standalone")
    for _ in range(5):
        second = subprocess.run([str(prefix / "bin" / "ws4redis"), "serve", "--listen", f"127.0.0.1:{first.port}", "--redis", first.redis_url,
                                 "--threads", "2"], capture_output=True, text=True, timeout=30)
        assert second.returncode == 1, second
        assert f"cannot listen on 127.0.0.1:{first.port}" in second.stderr and "Address already in use" in second.stderr, second.stderr
    assert first.health()[0] == 200
