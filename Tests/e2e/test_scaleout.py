"""Scaling out on Redis: a master with a replica watched by three Sentinels. The servers find the
master through the sentinels; when it is killed they follow the failover to the promoted replica,
with every websocket kept open and every subscription restored there."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis

from e2e_helpers import RedisServer, Server, free_port, open_client, open_clients, close_all, receive_one, run_async, wait_until

MASTER_NAME = "ws4redis-ha"


class Sentinel:
    """A redis-server in sentinel mode on 127.0.0.1, watching MASTER_NAME (quick failover settings)."""

    def __init__(self, directory: Path, master_port: int):
        self.port = free_port()
        directory.mkdir()
        config = directory / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
            f"sentinel failover-timeout {MASTER_NAME} 4000\n"
        )
        log = open(directory / "sentinel.log", "ab")
        self.proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", str(config), "--sentinel"],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, decode_responses=True)

    def master_port(self) -> int | None:
        try:
            answer = self.client.execute_command("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
        except redis.RedisError:
            return None
        return int(answer[1]) if answer else None

    def ready(self) -> bool:
        """Knows the replica and both other sentinels: a failover can be voted."""
        try:
            replicas = self.client.execute_command("SENTINEL", "replicas", MASTER_NAME)
            others = self.client.execute_command("SENTINEL", "sentinels", MASTER_NAME)
        except redis.RedisError:
            return False
        return len(replicas) == 1 and len(others) == 2

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, list[Sentinel]]]:
    (tmp_path / "master").mkdir()
    (tmp_path / "replica").mkdir()
    # Diskless sync without its default 5 s delay: the replica is in sync before the test starts.
    master = RedisServer(free_port(), tmp_path / "master", ["--repl-diskless-sync-delay", "0"]).start()
    replica = RedisServer(free_port(), tmp_path / "replica", ["--replicaof", "127.0.0.1", str(master.port)]).start()
    sentinels = [Sentinel(tmp_path / f"sentinel{k}", master.port) for k in range(3)]
    try:
        replica_client = replica.client()
        wait_until(lambda: replica_client.info("replication")["master_link_status"] == "up", 20, "the replica in sync", interval=0.1)
        replica_client.close()
        wait_until(lambda: all(s.ready() for s in sentinels), 20, "sentinels that know the replica and each other", interval=0.2)
        yield master, replica, sentinels
    finally:
        for s in sentinels:
            s.stop()
        replica.stop()
        master.stop()


def test_sentinel_failover_keeps_every_client(mode: str, server_factory: Callable[..., Server],
                                              sentinel_set: tuple[RedisServer, RedisServer, list[Sentinel]]) -> None:
    master, replica, sentinels = sentinel_set
    # The first sentinel is not running: the servers must go on to the next ones.
    url = "redis+sentinel://127.0.0.1:" + ",127.0.0.1:".join(str(p) for p in [free_port()] + [s.port for s in sentinels]) + f"/{MASTER_NAME}"
    master_client = master.client()
    master_client.set("broadcast:ha", "stored before")
    server = server_factory(mode, redis_url=url)

    async def body() -> None:
        listeners = await open_clients(server.url("ha"), 20)
        talker = await open_client(server.url("ha", "publish-broadcast"))
        try:
            firsts = await asyncio.gather(*(receive_one(c, 10, "the stored message") for c in listeners))
            assert firsts == ["stored before"] * 20, firsts
            await server.await_stats(lambda s: s["subscriptions"] == 20, "20 subscribed")
            assert master_client.publish("broadcast:ha", "on the first master") == 1

            assert [await receive_one(c, 10, "before the failover") for c in listeners] == ["on the first master"] * 20
            master.proc.kill()
            master.proc.wait()
            await asyncio.to_thread(wait_until, lambda: sentinels[0].master_port() == replica.port, 30, "the sentinels to promote the replica", 0.2)
            promoted = replica.client()
            await asyncio.to_thread(wait_until, lambda: promoted.pubsub_numsub("broadcast:ha") == [(b"broadcast:ha", 1)], 20,
                                    "the server subscribed on the promoted replica", 0.1)
            health = await server.await_stats(lambda s: s["status"] == "ok", "Redis connected again")
            assert health["connections"] == 21 and health["connections_total"] == 21, f"clients lost in the failover: {health}"
            assert promoted.publish("broadcast:ha", "on the new master") == 1
            assert [await receive_one(c, 10, "after the failover") for c in listeners] == ["on the new master"] * 20
            assert promoted.get("broadcast:ha") == b"stored before", "the stored message did not survive the failover"
            # The command connection (stored messages, client messages) follows on its own back-off:
            # a newcomer gets the stored message from the new master once it is there.
            await stored_message_served(server, "stored before")
            # A client's message goes to the new master too: published to everyone and stored there.
            await talker.send("from a client")
            assert [await receive_one(c, 10, "a client's message") for c in listeners] == ["from a client"] * 20
            assert promoted.get("broadcast:ha") == b"from a client"
        finally:
            await close_all([*listeners, talker])

    try:
        run_async(body(), 90, "sentinel failover")
    finally:
        master_client.close()


async def stored_message_served(server: Server, expected: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        newcomer = await open_client(server.url("ha"))
        try:
            got = await asyncio.wait_for(newcomer.recv(), 1)
            assert got == expected, f"a newcomer got {got!r}"
            return
        except TimeoutError:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no newcomer got the stored message within {timeout}s") from None
        finally:
            await newcomer.close()


def test_sentinel_url_errors_are_named(mode: str, server_factory: Callable[..., Server], sentinel_set: tuple[RedisServer, RedisServer, list[Sentinel]]) -> None:
    """A master name no sentinel monitors: the server runs degraded and says why in its log."""
    _, _, sentinels = sentinel_set
    server = server_factory(mode, redis_url=f"redis+sentinel://127.0.0.1:{sentinels[0].port}/no-such-master")
    assert server.stats()["status"] == "degraded"
    wait_until(lambda: "does not monitor a master named 'no-such-master'" in server.log_tail(), 10, "the reason in the log")
