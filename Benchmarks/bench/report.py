"""The results as tables (absolute figures, and ratios to the reference target) and RESULTS.md with
the command and the machine facts."""

from __future__ import annotations

import math
import os
import platform
import re
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scenarios import Metric, Result, Scenario


@dataclass
class Outcome:
    scenario: Scenario
    target: str
    result: Result | None = None
    skipped: str | None = None  # why the scenario does not apply to the target
    failure: str | None = None  # why it did not produce figures
    line: str = ""  # the load generator's human line
    argv: tuple[str, ...] = ()
    round: int | None = None  # of the scenario's rounds, when it has several

    def summary(self) -> str:
        return f"skipped: {self.skipped}" if self.skipped else self.failure or self.line

    @property
    def label(self) -> str:
        rounds = f" · round {self.round}/{self.scenario.rounds}" if self.round else ""
        return f"[{self.scenario.key} · {self.target}{rounds}]"


def metric_value(metric: Metric, result: Result | None) -> Any:
    if result is None:
        return None
    try:
        value = metric.value(result)
    except (KeyError, TypeError):
        return None
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _cell(outcome: Outcome, metric: Metric) -> str:
    if outcome.skipped:
        return f"— ({outcome.skipped})"
    value = metric_value(metric, outcome.result)
    if value is None:
        return "failed" if outcome.failure or not outcome.result else "—"
    return metric.format.format(value)


def _ratio(value: Any, reference: Any) -> str:
    if not isinstance(value, (int, float)) or not isinstance(reference, (int, float)) or reference == 0:
        return "—"
    return f"{value / reference:.2f}×"


def table(scenario: Scenario, outcomes: list[Outcome], reference: str) -> str:
    """A markdown table: one row per metric, one column per target, then target/reference ratios."""
    others = [o for o in outcomes if o.target != reference]
    base = next((o for o in outcomes if o.target == reference), None)
    header = ["metric", *[o.target for o in outcomes], *([f"{o.target} / {reference}" for o in others] if base else [])]
    rows = [header, ["---"] * len(header)]
    for metric in scenario.metrics:
        row = [metric.label, *[_cell(o, metric) for o in outcomes]]
        if base:
            reference_value = metric_value(metric, base.result)
            row += [_ratio(metric_value(metric, o.result), reference_value) if metric.better else "" for o in others]
        rows.append(row)
    return markdown_rows(rows)


def markdown_rows(rows: list[list[str]]) -> str:
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else "?"


def _cpu_model() -> str:
    text = Path("/proc/cpuinfo").read_text()
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return found.group(1) if found else platform.processor() or "?"


def _memory() -> str:
    found = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return f"{int(found.group(1)) / 1024 / 1024:.1f} GiB" if found else "?"


def machine_facts(prefix: Path, repo: Path) -> list[tuple[str, str]]:
    header = prefix / "include" / "ws4redis.h"
    version = re.search(r'WS4R_VERSION_STRING "([^"]+)"', header.read_text()) if header.exists() else None
    commit = _run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    return [
        ("cores (nproc)", str(os.cpu_count())),
        ("CPU", _cpu_model()),
        ("memory", _memory()),
        ("kernel", platform.release()),
        ("fd limit per process (ulimit -Hn)", str(resource.getrlimit(resource.RLIMIT_NOFILE)[1])),
        ("load average at the start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("ws4redis", f"{version.group(1) if version else '?'} ({prefix}), tree at {commit}{' with local changes' if dirty not in ('', '?') else ''}"),
        ("nginx", _run(["nginx", "-v"]).replace("nginx version: ", "")),
        ("Nchan", _run(["dpkg-query", "-W", "-f=${Version}", "libnginx-mod-nchan"])),
        ("Redis", _run(["redis-server", "--version"])),
        ("C compiler", _run(["cc", "--version"])),
        ("hiredis", _run(["dpkg-query", "-W", "-f=${Version}", "libhiredis-dev"])),
    ]


def markdown_report(command: str, started: str, note: str | None, facts: list[tuple[str, str]], sections: list[str],
                    lines: list[Outcome], elapsed_s: float) -> str:
    parts = [
        "# Benchmarks: ws4redis and Nchan side by side, and ws4redis scaled out",
        "",
        "Generated by `Benchmarks/run.py`; every figure below comes from this one command:",
        "",
        f"```sh\n{command}\n```",
        "",
        f"Run started {started}, took {elapsed_s / 60:.1f} minutes." + (f" **{note}**" if note else ""),
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in facts],
        "",
        "## How to read this",
        "",
        "- Each scenario starts a fresh server per target (so an idle RSS is not the previous scenario's high-water mark) and "
        "a private redis-server is shared by the run. ws4redis runs with `--threads 2`, Nchan with 2 nginx workers "
        "(one event loop each; more only where 2 cannot hold the sockets under the per-process fd limit: see "
        "`Benchmarks/peers/nchan/nginx.conf`). Ratios are target / Nchan (scale out: / 1 node).",
        "- \"C floor\" (`Benchmarks/peers/floor/floor.c`, 2 forked workers on epoll, one hiredis subscriber each) does the "
        "least work any server can: a frame built once per message and one write() per socket, a 101 with nothing else. "
        "It is no peer to beat but the bound the kernel sets when every delivery is its own write (steady fan-out, "
        "handshakes, echo): where a server's figure is close to the floor's, the rest of that figure is the kernel's, not "
        "the server's. In a burst (full-speed fan-out) a server that puts several frames into one write per socket can go "
        "below it.",
        "- \"NIO floor\" (`Benchmarks/peers/nio-floor`, handshakes only) is the least a SwiftNIO server does per handshake: "
        "ws4redis's listener set-up (a ServerBootstrap per event loop on one SO_REUSEPORT port, 2 loops, its socket options) "
        "and one handler that answers the head with a 101 and a close frame with a close frame; no parsing beyond the key, "
        "no Redis. Between it and the C floor is the cost of NIO's channel machinery (accept, channel and pipeline, "
        "futures, registration, close); between ws4redis and it, what ws4redis does itself.",
        "- The load generator (`Benchmarks/loadgen`, C on epoll) shares the cores with the server: its CPU seconds are "
        "shown; where they approach the server's, the figure is partly the load generator's limit.",
        "- Fan-out: ws4redis gets each message by Redis `PUBLISH`, Nchan by HTTP `POST` to its publisher (stored in Redis "
        "and fanned out by Nchan). deliveries/s = deliveries / (last delivery − first publish). Latency: the publisher's "
        "send time (in the message) to the frame's arrival, CLOCK_MONOTONIC on one machine; at full speed it includes the "
        "queue of the burst, the steady scenarios show latency without a backlog.",
        "- Server CPU and RSS: utime+stime and VmRSS from /proc, summed over the server's processes (nginx: master and "
        "workers; scale out: nginx and every node). RSS per connection = (RSS holding N − RSS before) / N.",
        "- Event-loop CPU split: each SwiftNIO event-loop thread's (NIO-ELT-*) share of their CPU over the run, from "
        "/proc/PID/task, by thread name; an imbalance (every socket on one loop) shows as e.g. 98 / 2 %.",
        "- \"server process fd limit\": one server process holds at most ~19,500 sockets here (hard limit 20,000). Past "
        "that the standalone server runs as `ws4redis serve --processes ceil(sockets / 19,500) --threads 1` (worker "
        "processes sharing the port, one event loop each; `run.py --standalone-processes N` sets N for every scenario); "
        "the host is one process.",
        "- Scale out runs every node on the same 2 cores: it shows what the tier costs (the nginx hop, one Redis "
        "subscription per node) and that delivery stays exactly-once and in order across nodes, not the capacity that "
        "nodes on machines of their own add.",
        "",
        *sections,
        "## Load generator lines",
        "",
        "```",
        *[f"{o.label} {o.summary()}" for o in lines],
        "```",
        "",
    ]
    return "\n".join(parts)
