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

from e2e_helpers import RedisServer, Server, close_all, free_port, open_client, open_clients, receive_one, run_async, wait_until

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


# ---------------------------------------------------------------------------------------------
# Redis Cluster: sharded pub/sub


def slot_owners(node: RedisServer) -> list[tuple[int, int, int]]:
    """(first slot, last slot, master port) of each range, as `node` sees the cluster."""
    client = node.client(socket_timeout=2)
    try:
        return [(int(r[0]), int(r[1]), int(r[2][1])) for r in client.execute_command("CLUSTER", "SLOTS")]
    finally:
        client.close()


def master_of(node: RedisServer, key: str) -> int:
    client = node.client(socket_timeout=2)
    try:
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
    finally:
        client.close()
    return next(port for first, last, port in slot_owners(node) if first <= slot <= last)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[RedisServer]]:
    """Three masters with a replica each, quick failover (node timeout 1 s)."""
    nodes: list[RedisServer] = []
    try:
        for k in range(6):
            directory = tmp_path / f"node{k}"
            directory.mkdir()
            nodes.append(RedisServer(free_port(), directory, ["--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                                                              "--cluster-config-file", str(directory / "nodes.conf"),
                                                              "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0"]).start())
        created = subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes), "--cluster-replicas", "1",
                                  "--cluster-yes"], capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stdout + created.stderr
        clients = [n.client(socket_timeout=2, decode_responses=True) for n in nodes]

        def settled() -> bool:
            if any(c.execute_command("CLUSTER", "INFO").count("cluster_state:ok") != 1 for c in clients):
                return False
            replicas = [c.info("replication") for c in clients]
            return sum(1 for i in replicas if i["role"] == "slave" and i.get("master_link_status") == "up") == 3
        wait_until(settled, 30, "the cluster ok with 3 replicas in sync", interval=0.2)
        for c in clients:
            c.close()
        yield nodes
    finally:
        for n in nodes:
            n.stop()


def test_cluster_sharded_pubsub_follows_a_failover(mode: str, server_factory: Callable[..., Server], cluster: list[RedisServer], prefix: Path) -> None:
    by_port = {n.port: n for n in cluster}
    # One facility per shard: their broadcast channels hash to slots of three different masters.
    facilities: dict[int, str] = {}
    for k in range(200):
        facilities.setdefault(master_of(cluster[0], f"broadcast:f{k}"), f"f{k}")
    assert len(facilities) == 3, facilities
    for port, facility in facilities.items():
        by_port[port].client().set(f"broadcast:{facility}", f"stored in {facility}")
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in cluster)
    server = server_factory(mode, redis_url=url)

    def spublish(facility: str, message: str) -> int:
        channel = f"broadcast:{facility}"
        client = by_port[master_of(next(n for n in cluster if n.proc), channel)].client()
        try:
            return client.execute_command("SPUBLISH", channel, message)
        finally:
            client.close()

    async def body() -> None:
        listeners = {f: await open_clients(server.url(f), 5) for f in facilities.values()}
        talker = await open_client(server.url(facilities[min(facilities)], "publish-broadcast"))
        everyone = [c for group in listeners.values() for c in group]
        try:
            for f, group in listeners.items():
                assert [await receive_one(c, 10, f"{f}: stored") for c in group] == [f"stored in {f}"] * 5
            await server.await_stats(lambda s: s["subscriptions"] == 15 and s["status"] == "ok", "15 subscribed on 3 shards")
            for f, group in listeners.items():
                assert await asyncio.to_thread(spublish, f, f"hello {f}") == 1
                assert [await receive_one(c, 10, f"{f}: live") for c in group] == [f"hello {f}"] * 5
            # A client's message: SPUBLISH and SET on its channel's shard.
            first = facilities[min(facilities)]
            await talker.send("from a client")
            assert [await receive_one(c, 10, "a client's message") for c in listeners[first]] == ["from a client"] * 5
            assert by_port[min(facilities)].client().get(f"broadcast:{first}") == b"from a client"
            # The publisher (CLI, C, Python) routes by slot too.
            last = facilities[max(facilities)]
            published = await asyncio.to_thread(subprocess.run, [str(prefix / "bin" / "ws4redis"), "publish", "--redis", url, "--facility", last,
                                                                 "--broadcast", "--expire", "60", "from the publisher"], capture_output=True, text=True, timeout=20)
            assert published.returncode == 0 and published.stdout.split()[0] == "1", (published.stdout, published.stderr)
            assert [await receive_one(c, 10, "the publisher's message") for c in listeners[last]] == ["from the publisher"] * 5
            assert by_port[max(facilities)].client().get(f"broadcast:{last}") == b"from the publisher"

            victim_port = max(facilities)
            victim_facility = facilities[victim_port]
            by_port[victim_port].proc.kill()
            by_port[victim_port].proc.wait()
            by_port[victim_port].proc = None
            survivor = next(n for n in cluster if n.proc)
            await asyncio.to_thread(wait_until, lambda: master_of(survivor, f"broadcast:{victim_facility}") != victim_port, 30,
                                    "the cluster to promote the victim's replica", 0.2)
            promoted = by_port[master_of(survivor, f"broadcast:{victim_facility}")].client()
            await asyncio.to_thread(wait_until, lambda: promoted.execute_command("PUBSUB", "SHARDNUMSUB", f"broadcast:{victim_facility}")[1] == 1,
                                    20, "the server subscribed on the promoted replica", 0.1)
            health = await server.await_stats(lambda s: s["status"] == "ok", "every shard connected again")
            assert health["connections"] == 16 and health["connections_total"] == 16, f"clients lost in the failover: {health}"
            for f, group in listeners.items():
                assert await asyncio.to_thread(spublish, f, f"after {f}") == 1
                assert [await receive_one(c, 10, f"{f}: after the failover") for c in group] == [f"after {f}"] * 5
        finally:
            await close_all([*everyone, talker])

    run_async(body(), 120, "cluster failover")
