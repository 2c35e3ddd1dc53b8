"""The scenarios: issue #8's side-by-side list and issue #6's scale-out comparison, each in a full
and a smoke size (the smoke size checks that everything still runs and counts right, not timings)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .targets import processes_to_hold

Result = dict[str, Any]


def _get(result: Result, *path: str) -> Any:
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


@dataclass(frozen=True)
class Metric:
    label: str
    value: Callable[[Result], Any]
    format: str = "{:,.0f}"
    better: str | None = None  # "higher" or "lower": shown as a ratio to the reference target
    # A figure only some targets have, or that a short run may lack: a smoke run does not ask for it.
    optional: bool = False


def field_metric(label: str, *path: str, format: str = "{:,.0f}", better: str | None = None) -> Metric:
    return Metric(label, lambda r: _get(r, *path), format, better)


def errors_metric() -> Metric:
    return Metric("lost / duplicated / reordered", lambda r: f"{r['lost']} / {r['duplicated']} / {r['reordered']}", "{}")


def loop_split(result: Result) -> str | None:
    """Each event loop's share of the loops' CPU, by process and thread name ("NIO-ELT-0-#0" ...),
    e.g. "51 / 49 %", with " | " between processes: a target whose work lands on one loop shows it.
    None for targets without NIO loops."""
    loops = sorted(_get(result, "server", "event_loops") or [], key=lambda loop: (loop["pid"], loop["thread"]))
    total = sum(loop["cpu_s"] for loop in loops)
    if len(loops) < 2 or total <= 0:
        return None
    shares: dict[int, list[str]] = {}
    for loop in loops:
        shares.setdefault(loop["pid"], []).append(f"{100 * loop['cpu_s'] / total:.0f}")
    return " | ".join(" / ".join(process) for process in shares.values()) + " %"


LOOP_SPLIT = Metric("event-loop CPU split", loop_split, "{}", optional=True)
OPENED = Metric("opened / failed", lambda r: f"{r['connections']['opened']:,} / {r['connections']['failed']:,}", "{}")
LOADGEN_CPU = field_metric("load generator CPU s", "loadgen_cpu_s", format="{:.2f}")
FANOUT = (
    OPENED,
    field_metric("deliveries/s", "deliveries_per_s", better="higher"),
    field_metric("latency p50 ms", "latency_ms", "p50", format="{:.1f}", better="lower"),
    field_metric("latency p99 ms", "latency_ms", "p99", format="{:.1f}", better="lower"),
    field_metric("server CPU µs per delivery", "server_cpu_us_per_delivery", format="{:.2f}", better="lower"),
    LOOP_SPLIT,
    LOADGEN_CPU,
    errors_metric(),
)
STEADY = (
    OPENED,
    field_metric("latency p50 ms", "latency_ms", "p50", format="{:.1f}", better="lower"),
    field_metric("latency p99 ms", "latency_ms", "p99", format="{:.1f}", better="lower"),
    field_metric("latency max ms", "latency_ms", "max", format="{:.1f}", better="lower"),
    field_metric("server CPU µs per delivery", "server_cpu_us_per_delivery", format="{:.2f}", better="lower"),
    LOOP_SPLIT,
    LOADGEN_CPU,
    errors_metric(),
)
IDLE = (
    OPENED,
    field_metric("server RSS KiB per connection", "rss_kib_per_connection", format="{:.2f}", better="lower"),
    Metric("server RSS MiB held", lambda r: _get(r, "server", "rss_kib_held") / 1024, "{:,.1f}", "lower"),
    field_metric("connect p50 ms", "connect_ms", "p50", format="{:.1f}", better="lower"),
    field_metric("connect p99 ms", "connect_ms", "p99", format="{:.1f}", better="lower"),
    LOADGEN_CPU,
)
CONNECT = (
    field_metric("handshakes/s", "handshakes_per_s", better="higher"),
    field_metric("handshake p99 ms", "connect_ms", "p99", format="{:.1f}", better="lower"),
    field_metric("server CPU µs per handshake", "server_cpu_us_per_handshake", format="{:.1f}", better="lower"),
    LOOP_SPLIT,
    LOADGEN_CPU,
)
ECHO = (
    field_metric("round trips/s", "round_trips_per_s", better="higher"),
    field_metric("round trip p50 ms", "latency_ms", "p50", format="{:.2f}", better="lower"),
    field_metric("round trip p99 ms", "latency_ms", "p99", format="{:.2f}", better="lower"),
    field_metric("server CPU µs per round trip", "server_cpu_us_per_round_trip", format="{:.2f}", better="lower"),
    LOOP_SPLIT,
    LOADGEN_CPU,
)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    group: str  # "side by side" (issue #8) or "scale out" (issue #6)
    mode: str
    sockets: int
    options: dict[str, Any] = field(default_factory=dict)  # loadgen options besides --connections
    # The servers get as many processes as this many sockets need (a smoke opens few sockets but checks
    # the multi-process servers of the 50,000-socket scenario); default: `sockets`.
    sized_like: int | None = None
    # Rounds over all targets in turn, so that a drift in the machine's speed (large on a shared one)
    # reaches every target alike; a target's figures are those of its median round (`median_round`).
    rounds: int = 1

    @property
    def server_sockets(self) -> int:
        return self.sized_like or self.sockets

    @property
    def metrics(self) -> tuple[Metric, ...]:
        if self.mode == "fanout":
            return STEADY if "publish-rate" in self.options else FANOUT
        return {"idle": IDLE, "connect": CONNECT, "echo": ECHO}[self.mode]

    def loadgen_args(self) -> list[str]:
        args = ["--connections", str(self.sockets)]
        for name, value in self.options.items():
            args += [f"--{name}", str(value)]
        return args

    def timeout_s(self) -> float:
        """How long the load generator may take before the runner gives up on it."""
        seconds = self.options.get("duration", 0) + self.sockets / self.options.get("rate", 2000) + 120
        if "publish-rate" in self.options:
            seconds += self.options["messages"] / self.options["publish-rate"]
        return seconds + (600 if self.mode == "fanout" else 0)


GROUP_TITLES = {
    "side by side": "Side by side: ws4redis standalone, ws4redis host, Nchan (issue #8)",
    "scale out": "Scale out: ws4redis standalone nodes behind nginx, one Redis, 3 nodes against 1 (issue #6)",
}

OPEN_RATE = 5000  # sockets per second: fast, without overflowing the servers' accept queues


def _fanout(key: str, group: str, subscribers: int, messages: int, size: int, rounds: int = 1, **extra: Any) -> Scenario:
    title = f"fan-out: {subscribers:,} subscribers × {messages:,} messages × {_size(size)}"
    if rounds > 1:
        title += f", {rounds} rounds over all targets in turn (each target's median round)"
    return Scenario(key, title, group, "fanout", subscribers, {"messages": messages, "size": size, "rate": OPEN_RATE, **extra},
                    rounds=rounds)


def _steady(key: str, group: str, subscribers: int, per_s: float, seconds: float, **extra: Any) -> Scenario:
    return Scenario(key, f"steady fan-out: {subscribers:,} subscribers, {per_s:g} messages/s for {seconds:g} s (latency)", group,
                    "fanout", subscribers,
                    {"messages": math.ceil(per_s * seconds), "size": 64, "publish-rate": per_s, "rate": OPEN_RATE, **extra})


def _size(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def _idle(key: str, sockets: int, sized_like: int | None = None, **extra: Any) -> Scenario:
    return Scenario(key, f"idle: {sockets:,} websockets (server RSS per connection)", "side by side", "idle", sockets,
                    {"rate": OPEN_RATE, "settle": 3, **extra}, sized_like)


def full() -> list[Scenario]:
    return [
        # A burst is over in about a second: one round's CPU and rate vary by a third from run to run
        # (host / standalone CPU per delivery 0.82×, 0.97×, 1.38× in three runs of fanout-1k-1k).
        _fanout("fanout-1k-1k", "side by side", 1000, 1000, 64, rounds=3),
        _fanout("fanout-10k-100", "side by side", 10000, 100, 64, rounds=3),
        _fanout("fanout-10k-100-4k", "side by side", 10000, 100, 4096, rounds=3),
        _idle("idle-10k", 10000),
        _idle("idle-50k", 50000),
        _idle("idle-100k", 100000),
        _steady("steady-10k", "side by side", 10000, 5, 20),
        Scenario("handshakes", "handshakes: 64 concurrent open+close cycles, 3 rounds of 5 s over all targets in turn "
                 "(each target's median round)", "side by side", "connect", 64, {"duration": 5}, rounds=3),
        Scenario("echo", "echo: 50 websockets, one 64 B message in flight each, for 10 s", "side by side", "echo", 50,
                 {"duration": 10, "size": 64}),
        _fanout("scaleout-10k-100", "scale out", 10000, 100, 64),
        _steady("scaleout-steady-10k", "scale out", 10000, 5, 20),
    ]


def smoke() -> list[Scenario]:
    """Every scenario in a few seconds. Small per-worker limits make the load generator fork several
    workers, and `sized_like` the servers (as the 50,000-socket scenario does), so that their
    aggregation is checked too."""
    return [
        _fanout("fanout-1k-1k", "side by side", 40, 50, 64, **{"per-worker": 25}),
        _fanout("fanout-10k-100", "side by side", 60, 20, 64),
        _fanout("fanout-10k-100-4k", "side by side", 60, 20, 4096),
        _idle("idle-10k", 100, settle=0.5),
        _idle("idle-50k", 300, sized_like=50000, settle=0.5, **{"per-worker": 100}),
        _steady("steady-10k", "side by side", 50, 20, 0.5),
        Scenario("handshakes", "handshakes: 4 concurrent open+close cycles, 2 rounds of 1 s", "side by side", "connect", 4,
                 {"duration": 1, "per-worker": 2}, rounds=2),
        Scenario("echo", "echo: 4 websockets for 1 s", "side by side", "echo", 4, {"duration": 1, "size": 64}),
        _fanout("scaleout-10k-100", "scale out", 60, 20, 64),
        _steady("scaleout-steady-10k", "scale out", 50, 20, 0.5),
    ]


def median_round(scenario: Scenario, results: list[Result]) -> Result:
    """The round whose headline figure (the scenario's first ranked metric) is the median: all of a
    target's figures then come from one run, as measured together."""
    headline = next(m for m in scenario.metrics if m.better)
    ranked = sorted(results, key=lambda r: headline.value(r) or 0)
    return ranked[(len(ranked) - 1) // 2]


def smoke_problems(scenario: Scenario, result: Result) -> list[str]:
    """What must hold of a smoke run whatever the machine's speed: it ran, every socket opened, every
    figure is a number, a fan-out delivered each message exactly once, in order, and a server sized
    past one process was measured over all of its processes."""
    problems = []
    if result.get("error"):
        problems.append(f"error: {result['error']}")
    connections = result.get("connections", {})
    if connections.get("opened") != scenario.sockets and scenario.mode != "connect":
        problems.append(f"opened {connections.get('opened')} of {scenario.sockets} sockets")
    if connections.get("failed"):
        problems.append(f"{connections['failed']} sockets failed: {connections.get('failures')}")
    for metric in scenario.metrics:
        if metric.optional:
            continue
        value = metric.value(result)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            problems.append(f"{metric.label}: no number")
    if scenario.mode == "fanout":
        if result.get("deliveries") != result.get("expected"):
            problems.append(f"{result.get('deliveries')} deliveries, expected {result.get('expected')}")
        for count in ("lost", "duplicated", "reordered"):
            if result.get(count):
                problems.append(f"{count}: {result[count]}")
    if scenario.sized_like:
        least = processes_to_hold(scenario.sized_like) + 1  # the workers and their parent
        counted = _get(result, "server", "processes") or 0
        if counted < least:
            problems.append(f"{counted} server processes measured, sized like {scenario.sized_like:,} sockets: at least {least}")
    if scenario.mode == "connect" and not result.get("handshakes"):
        problems.append("no handshake completed")
    if scenario.mode == "echo" and not result.get("round_trips"):
        problems.append("no round trip completed")
    return problems
