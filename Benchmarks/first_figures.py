"""First figures of a ws4redis server (the foundation issue's closing note): RSS idle and with
N idle websockets, and fan-out deliveries/s with server CPU seconds. Not the benchmark of record
(that is `make bench`, measured against a peer); the load generator here is Python and shares the
machine's cores, so deliveries/s are a floor.

    python Benchmarks/first_figures.py --server standalone|host --prefix stage [--idle 5000]
        [--clients 1000] [--messages 1000] [--size 64]
"""
import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import redis
from websockets.asyncio.client import connect


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_figures(pid):
    with open(f"/proc/{pid}/status") as f:
        rss_kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu_seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss_kib, cpu_seconds


def health(port):
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz"))


def wait_for(predicate, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not reached")


async def open_clients(port, count, facility):
    clients = []
    for start in range(0, count, 200):
        batch = [connect(f"ws://127.0.0.1:{port}/ws/{facility}?subscribe-broadcast", max_queue=None, ping_interval=None)
                 for _ in range(min(200, count - start))]
        clients += await asyncio.gather(*batch)
    return clients


async def fanout(port, redis_client, clients, messages, size):
    payload_tail = "x" * max(0, size - 8)

    async def receive(client):
        for _ in range(messages):
            await client.recv()

    receivers = [asyncio.create_task(receive(c)) for c in clients]
    started = time.perf_counter()
    pipe = redis_client.pipeline(transaction=False)
    for index in range(messages):
        pipe.publish("broadcast:bench", f"{index:08d}{payload_tail}"[:size])
    pipe.execute()
    await asyncio.wait_for(asyncio.gather(*receivers), timeout=600)
    return time.perf_counter() - started


async def run(args, port, pid, redis_client):
    idle_rss, _ = proc_figures(pid)
    idle = await open_clients(port, args.idle, "idle")
    wait_for(lambda: health(port)["subscriptions"] >= args.idle)
    loaded_rss, _ = proc_figures(pid)
    print(f"RSS idle server: {idle_rss} KiB; with {args.idle} idle websockets: {loaded_rss} KiB "
          f"({(loaded_rss - idle_rss) / args.idle:.2f} KiB per connection)")
    for client in idle:
        await client.close()
    clients = await open_clients(port, args.clients, "bench")
    wait_for(lambda: health(port)["subscriptions"] >= args.clients)
    _, cpu_before = proc_figures(pid)
    elapsed = await fanout(port, redis_client, clients, args.messages, args.size)
    _, cpu_after = proc_figures(pid)
    deliveries = args.clients * args.messages
    cpu = cpu_after - cpu_before
    print(f"fan-out {args.clients} clients x {args.messages} messages x {args.size} B: {deliveries / elapsed:,.0f} deliveries/s, "
          f"server CPU {cpu:.2f} s ({cpu / deliveries * 1e6:.2f} us per delivery), wall {elapsed:.2f} s")
    for client in clients:
        await client.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=["standalone", "host"], default="standalone")
    parser.add_argument("--prefix", default="stage")
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    redis_port, port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as directory:
        redis_server = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", directory], stdout=subprocess.DEVNULL)
        redis_client = redis.Redis(port=redis_port)
        wait_for(lambda: _pings(redis_client))
        binary = "ws4redis-host" if args.server == "host" else "ws4redis"
        command = [os.path.join(args.prefix, "bin", binary)] + (["serve"] if binary == "ws4redis" else []) + [
            "--listen", f"127.0.0.1:{port}", "--redis", f"redis://127.0.0.1:{redis_port}/0"]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: _healthy(port))
            asyncio.run(run(args, port, server.pid, redis_client))
        finally:
            server.terminate()
            server.wait(timeout=30)
            redis_server.terminate()
            redis_server.wait(timeout=30)


def _pings(client):
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def _healthy(port):
    try:
        return health(port)["redis_connected"]
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
