"""Issue #20's targets, checked against this run's figures: each goal is a ratio (or a bound) over
the representative outcomes of the tables, and says what limited it where it was profiled."""

from __future__ import annotations

from dataclasses import dataclass

from .report import Outcome, markdown_rows, metric_value
from .scenarios import Metric


@dataclass(frozen=True)
class Goal:
    section: str  # the section
    scenario: str  # Scenario.key
    metric: str  # Metric.label
    target: str
    against: str | None  # the denominator's target; None: an absolute bound
    bound: float  # a floor where the metric is better higher, else a ceiling
    limit: str  # what limits the figure where the goal is missed, from the profile in the note; "" if unprofiled

    def describe(self, higher_is_better: bool) -> str:
        relation = "≥" if higher_is_better else "≤"
        if self.against is None:
            return f"{self.metric}, {self.target}, {self.scenario}: {relation} {self.bound:g}"
        return f"{self.metric}, {self.target} / {self.against}, {self.scenario}: {relation} {self.bound:g}×"


HOST_HANDSHAKE = (
    "the host's HTTP thread: libmicrohttpd accepts, reads, answers and hands over every socket (about 90k of the "
    "host's 257k instructions per handshake, callgrind; 26.6 syscalls per handshake against the standalone server's "
    "14.9, strace -c), and the adopted socket then costs the event loops about what a whole standalone handshake does "
    "(ClientBootstrap.withConnectedSocket builds the same channel and pipeline)")
NIO_HANDSHAKE = (
    "NIO's channel machinery: the NIO floor (a 101 and a close, nothing else) is itself only at Nchan's rate and above "
    "its CPU per handshake (101k instructions per handshake; ws4redis 181k, of which its own parsing, decision, "
    "subscription and close are the rest)")
IDLE_MEMORY = (
    "NIO's objects per channel: 1.82 KiB of heap per idle websocket at 10k (heaptrack: pending-writes pool 544 B, "
    "SocketChannel 393 B, socket 129 B, pipeline and 3 contexts 270 B, channel state 225 B, two cached addresses 96 B, "
    "receive buffer 64 B, description 64 B) against 0.23 KiB of ws4redis's own (its connection handler, which keeps its frame parser and message assembler only while a client is inside a frame or sends data)")
NOT_PROFILED = "not profiled in this round"
CONNECT_AT_SCALE = (
    "not profiled; the p99 grows with the sockets a process holds while 2 cores run 7 server processes and 6 load "
    "generator workers (ad hoc, loadgen idle at 5000/s: 7 processes 11 ms at 19k, 18 ms at 60k, 29 ms at 100k), and "
    "ws4redis spends about twice Nchan's CPU per opened socket (the idle scenarios' server CPU)")

GOALS = [
    *[Goal("1", key, "deliveries/s", "host", "standalone", 0.9, "") for key in
      ("fanout-1k-1k", "fanout-10k-100", "fanout-10k-100-4k")],
    *[Goal("1", key, "server CPU µs per delivery", "host", "standalone", 1.1, "") for key in
      ("fanout-1k-1k", "fanout-10k-100", "fanout-10k-100-4k")],
    Goal("1", "steady-10k", "latency p99 ms", "host", "standalone", 1.1, ""),
    Goal("1", "handshakes", "handshakes/s", "host", "standalone", 0.9, HOST_HANDSHAKE),
    Goal("2", "handshakes", "handshakes/s", "standalone", "nchan", 1.0, NIO_HANDSHAKE),
    Goal("2", "handshakes", "server CPU µs per handshake", "standalone", "nchan", 1.0, NIO_HANDSHAKE),
    Goal("2", "handshakes", "handshakes/s", "host", "nchan", 0.9, HOST_HANDSHAKE),
    Goal("2", "idle-10k", "connect p99 ms", "standalone", "nchan", 1.0, ""),
    Goal("2", "idle-100k", "connect p99 ms", "standalone", "nchan", 1.0, CONNECT_AT_SCALE),
    *[Goal("3", key, "server RSS KiB per connection", "standalone", None, 2.0, IDLE_MEMORY) for key in
      ("idle-10k", "idle-50k", "idle-100k")],
]


def _measured(outcomes: dict[tuple[str, str], Outcome], scenario: str, target: str, label: str) -> tuple[Metric, float] | None:
    outcome = outcomes.get((scenario, target))
    if outcome is None or outcome.skipped:
        return None
    metric = next((m for m in outcome.scenario.metrics if m.label == label), None)
    value = metric_value(metric, outcome.result) if metric else None
    return (metric, value) if metric and isinstance(value, (int, float)) else None


def _row(goal: Goal, outcomes: dict[tuple[str, str], Outcome]) -> list[str] | None:
    measured = _measured(outcomes, goal.scenario, goal.target, goal.metric)
    if goal.against is not None and measured:
        reference = _measured(outcomes, goal.scenario, goal.against, goal.metric)
        measured = (measured[0], measured[1] / reference[1]) if reference and reference[1] else None
    if measured is None:
        return None
    metric, value = measured
    higher = metric.better == "higher"
    met = value >= goal.bound if higher else value <= goal.bound
    shown = f"{value:.2f}×" if goal.against else f"{value:.2f}"
    return [goal.section, goal.describe(higher), shown, "met" if met else "**not met**", "" if met else goal.limit or NOT_PROFILED]


def goals_section(outcomes: dict[tuple[str, str], Outcome]) -> str | None:
    """The goals table, or None when this run measured none of them (e.g. --only)."""
    rows = [row for row in (_row(goal, outcomes) for goal in GOALS) if row]
    if not rows:
        return None
    header = [["§", "goal", "this run", "", "what limits it (as profiled for the issue)"], ["---"] * 5]
    return f"## Goals of issue #20, against this run\n\n{markdown_rows(header + rows)}\n"
