"""The servers a scenario runs against. Each target starts a fresh deployment per scenario (so the
idle RSS of one scenario is not the high-water mark of the last) and says how the load generator
reaches it: the subscriber URL of a facility, how to publish to it, the echo URL, the pids whose
RSS and CPU count as the server's."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .processes import Nginx, Process, RedisServer, free_port, http_status, render, wait_until

BENCHMARKS = Path(__file__).resolve().parents[1]
REPO = BENCHMARKS.parent
# Sockets one server process holds: the hard fd limit here is 20,000 per process, minus the
# descriptors a server needs besides its websockets.
SOCKETS_PER_PROCESS = 19_500
# ws4redis runs two event loops (one per core of the 2-core benchmark machine); Nchan gets as many
# nginx workers (see peers/nchan/nginx.conf).
EVENT_LOOPS = 2
NCHAN_SOCKETS_PER_WORKER = 15_000


def processes_to_hold(sockets: int) -> int:
    return math.ceil(sockets / SOCKETS_PER_PROCESS)


@dataclass
class Deployment:
    pids: list[int]
    subscribe_url: Callable[[str], str]
    publish_args: Callable[[str], list[str]]
    echo_url: str | None
    processes: list[Process] = field(default_factory=list)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@dataclass
class Context:
    prefix: Path
    redis: RedisServer
    directory: Path  # logs and nginx prefixes of this run


def _healthy(port: int) -> bool:
    status, body = http_status(port, "/healthz")
    return status == 200 and json.loads(body).get("redis_connected") is True


def start_ws4redis(ctx: Context, binary: str, log: Path, processes: int | None = None) -> tuple[Process, int]:
    """`ws4redis serve` (binary "standalone") or `ws4redis-host`, with an echo endpoint; ready once
    /healthz says Redis is connected."""
    port = free_port()
    # Worker processes run one event loop each, as nginx's workers do.
    common = ["--listen", f"127.0.0.1:{port}", "--redis-url", f"redis://{ctx.redis.address}/0",
              "--threads", str(1 if processes else EVENT_LOOPS), "--echo-path", "/echo",
              # No line per websocket (Nchan runs with access_log off): logging is not what is measured.
              "--log-level", "warning"]
    if binary == "standalone":
        argv = [str(ctx.prefix / "bin" / "ws4redis"), "serve", *common, *(["--processes", str(processes)] if processes else [])]
    else:
        argv = [str(ctx.prefix / "bin" / "ws4redis-host"), *common]
    server = Process(argv, log)
    try:
        wait_until(lambda: server.check_alive() and _healthy(port), 30, f"{binary} to be healthy")
    except Exception:
        server.stop()
        raise
    return server, port


def redis_publisher(ctx: Context) -> Callable[[str], list[str]]:
    return lambda facility: ["--redis", ctx.redis.address, "--channel", f"broadcast:{facility}"]


@dataclass
class Ws4redisTarget:
    """ws4redis standalone or host, one node. The standalone server becomes the multi-process one
    (`ws4redis serve --processes N`) only past what one process may hold, as the peers add workers;
    `processes` sets N for every scenario. The host is one process."""

    name: str
    binary: str
    processes: int | None = None
    has_echo = True

    @property
    def grows(self) -> bool:
        return self.binary == "standalone" and self.processes is None

    def capacity(self) -> int | None:
        return None if self.grows else SOCKETS_PER_PROCESS * (self.processes or 1)

    def processes_for(self, sockets: int) -> int | None:
        return processes_to_hold(sockets) if self.grows and sockets > SOCKETS_PER_PROCESS else self.processes

    def start(self, ctx: Context, sockets: int, tag: str) -> Deployment:
        server, port = start_ws4redis(ctx, self.binary, ctx.directory / f"{tag}-{self.name}.log", self.processes_for(sockets))
        return Deployment(pids=[server.pid], subscribe_url=lambda f: f"ws://127.0.0.1:{port}/ws/{f}?subscribe-broadcast",
                          publish_args=redis_publisher(ctx), echo_url=f"ws://127.0.0.1:{port}/echo", processes=[server])


@dataclass
class NchanTarget:
    """Nchan (nginx + libnginx-mod-nchan) with Redis storage, publishing by HTTP POST."""

    name: str = "nchan"
    has_echo = False

    def capacity(self) -> int | None:
        return None  # more workers when needed

    @staticmethod
    def workers(sockets: int) -> int:
        return max(EVENT_LOOPS, math.ceil(sockets / NCHAN_SOCKETS_PER_WORKER))

    def start(self, ctx: Context, sockets: int, tag: str) -> Deployment:
        directory = ctx.directory / f"{tag}-nchan"
        directory.mkdir()
        port = free_port()
        (directory / "nginx.conf").write_text(render((BENCHMARKS / "peers" / "nchan" / "nginx.conf").read_text(), {
            "USER": Nginx.user_line(), "WORKERS": str(self.workers(sockets)), "LISTEN": f"127.0.0.1:{port}",
            "REDIS": ctx.redis.address}))
        # Ready once a publish goes through to Redis.
        nginx = Nginx(directory, port, lambda: http_status(port, "/pub/readiness", "POST", b"ready")[0] in (201, 202))
        return Deployment(pids=[nginx.pid], subscribe_url=lambda f: f"ws://127.0.0.1:{port}/sub/{f}",
                          publish_args=lambda f: ["--publish-url", f"http://127.0.0.1:{port}/pub/{f}"], echo_url=None,
                          processes=[nginx])


@dataclass
class FloorTarget:
    """peers/floor/floor.c: the least work any server can do per delivery (one write() of a frame
    built once per message) and per handshake; what is left of a figure is the kernel's."""

    binary: Path
    name: str = "C floor"
    has_echo = True

    def capacity(self) -> int | None:
        return None  # more workers when needed

    @staticmethod
    def workers(sockets: int) -> int:
        # As many event loops as the others; more only past what 2 processes may hold (the kernel
        # spreads SO_REUSEPORT connections evenly enough: ±1% at 50,000).
        return max(EVENT_LOOPS, processes_to_hold(sockets))

    def start(self, ctx: Context, sockets: int, tag: str) -> Deployment:
        port = free_port()
        server = Process([str(self.binary), "--listen", f"127.0.0.1:{port}", "--redis", ctx.redis.address,
                          "--workers", str(self.workers(sockets))], ctx.directory / f"{tag}-floor.log")
        try:
            wait_until(lambda: server.check_alive() and _healthy(port), 30, "the C floor to be healthy")
        except Exception:
            server.stop()
            raise
        # The parent's pid: the load generator sums RSS and CPU over its descendants (the workers).
        return Deployment(pids=[server.pid], subscribe_url=lambda f: f"ws://127.0.0.1:{port}/ws/{f}?subscribe-broadcast",
                          publish_args=redis_publisher(ctx), echo_url=f"ws://127.0.0.1:{port}/echo", processes=[server])


@dataclass
class NIOFloorTarget:
    """peers/nio-floor: the least a SwiftNIO server does per handshake (a 101 and a close frame, no
    Redis), on 2 event loops as ws4redis listens; measured in the handshakes scenario only, where the
    part of ws4redis's cost that is NIO's own channel machinery is the question."""

    binary: Path
    name: str = "NIO floor"
    has_echo = False

    def capacity(self) -> int:
        return SOCKETS_PER_PROCESS

    def start(self, ctx: Context, sockets: int, tag: str) -> Deployment:
        port = free_port()
        server = Process([str(self.binary), "--listen", f"127.0.0.1:{port}", "--threads", str(EVENT_LOOPS)],
                         ctx.directory / f"{tag}-nio-floor.log")
        try:
            wait_until(lambda: server.check_alive() and http_status(port, "/healthz")[0] == 200, 30, "the NIO floor to listen")
        except Exception:
            server.stop()
            raise
        return Deployment(pids=[server.pid], subscribe_url=lambda f: f"ws://127.0.0.1:{port}/ws/{f}?subscribe-broadcast",
                          publish_args=redis_publisher(ctx), echo_url=None, processes=[server])


#: The websocket location's limits per client address as nginx-conf/ships them, and as the benchmark runs them.
PER_ADDRESS_LIMITS = (
    ("limit_conn ws4redis_connections 256;", "limit_conn ws4redis_connections 60000;"),
    ("rate=10r/s;", "rate=100000r/s;"),
    ("burst=256 nodelay;", "burst=100000 nodelay;"),
)


def render_balanced_site(nodes: list[str], listen: str) -> str:
    """nginx-conf/ws4redis-balanced.conf with one `server` line per node (as its header says to do)."""
    lines = []
    for line in (REPO / "nginx-conf" / "ws4redis-balanced.conf").read_text().splitlines(keepends=True):
        if "@WS4REDIS_NODE_1@" in line:
            lines += [line.replace("@WS4REDIS_NODE_1@", node) for node in nodes]
        elif "@WS4REDIS_NODE_2@" not in line:
            lines.append(line)
    site = "".join(lines)
    # Every client of the benchmark is one address (the load generator's), which the site's limits
    # per address would refuse past 256 websockets: they are raised, and a site whose limits read
    # otherwise fails here instead of measuring 256 sockets.
    for shipped, raised in PER_ADDRESS_LIMITS:
        if shipped not in site:
            raise RuntimeError(f"nginx-conf/ws4redis-balanced.conf has no '{shipped}' to raise for the benchmark")
        site = site.replace(shipped, raised)
    # The site's app upstream is never asked in the benchmark: a closed port will do.
    return render(site, {"LISTEN": listen, "SERVER_NAME": "_", "APP": f"127.0.0.1:{free_port()}"})


@dataclass
class BalancedTarget:
    """`nodes` ws4redis standalone nodes behind nginx (nginx-conf/ws4redis-balanced.conf), one Redis."""

    name: str
    nodes: int
    has_echo = False  # what is measured through nginx is the fan-out

    def capacity(self) -> int:
        return SOCKETS_PER_PROCESS  # nginx's 2 workers hold two descriptors per websocket

    def start(self, ctx: Context, sockets: int, tag: str) -> Deployment:
        directory = ctx.directory / f"{tag}-{self.name.replace(' ', '-')}"
        directory.mkdir()
        processes: list[Process] = []
        try:
            ports = []
            for node in range(self.nodes):
                server, port = start_ws4redis(ctx, "standalone", directory / f"node-{node}.log")
                processes.append(server)
                ports.append(port)
            port = free_port()
            shutil.copytree(REPO / "nginx-conf" / "snippets", directory / "snippets")
            (directory / "site.conf").write_text(render_balanced_site([f"127.0.0.1:{p}" for p in ports], f"127.0.0.1:{port} reuseport"))
            (directory / "nginx.conf").write_text(render((BENCHMARKS / "scaleout" / "nginx.conf").read_text(), {
                "USER": Nginx.user_line(), "WORKERS": str(EVENT_LOOPS)}))
            # Ready once nginx passes a request on to a node (a plain GET of a ws URL: the node's 400).
            processes.append(Nginx(directory, port, lambda: 400 <= http_status(port, "/ws/readiness")[0] < 500))
        except Exception:
            for process in reversed(processes):
                process.stop()
            raise
        return Deployment(pids=[p.pid for p in processes], subscribe_url=lambda f: f"ws://127.0.0.1:{port}/ws/{f}?subscribe-broadcast",
                          publish_args=redis_publisher(ctx), echo_url=None, processes=processes)


Target = Ws4redisTarget | NchanTarget | FloorTarget | NIOFloorTarget | BalancedTarget


def side_by_side(standalone_processes: int | None, floor: Path, nio_floor: Path | None = None) -> list[Target]:
    """The targets of issue #8's comparison; Nchan is the reference of the ratios. The C floor comes
    last: the bound the kernel sets, against which both servers' figures can be read; the NIO floor,
    where given, just before it."""
    return [Ws4redisTarget("standalone", "standalone", standalone_processes), Ws4redisTarget("host", "host"), NchanTarget(),
            *([NIOFloorTarget(nio_floor)] if nio_floor else []), FloorTarget(floor)]


def scale_out() -> list[Target]:
    """Issue #6's comparison: 1 node and 3 nodes, both behind the same nginx."""
    return [BalancedTarget("1 node", 1), BalancedTarget("3 nodes", 3)]
