#!/usr/bin/env python3
"""The benchmarks of record (issues #8 and #6): every scenario against ws4redis standalone, ws4redis
host, Nchan and the C floor (Benchmarks/peers/floor: the least work any server can do, so the part
of a figure that is the kernel's shows) one after another in the same run, then ws4redis scaled out
(3 nodes behind nginx against 1). Prints a table per scenario and writes Benchmarks/RESULTS.md.

    python3 Benchmarks/run.py [--prefix STAGE] [--loadgen PATH] [--floor PATH] [--nio-floor PATH] [--smoke] [--only KEY ...]
                              [--standalone-processes N] [--results FILE] [--note TEXT]

--smoke runs every scenario in a small size (seconds) and fails unless each produced its figures
and each fan-out delivered every message exactly once, in order (what CI checks; no timing is
judged). Needs: the load generator and the floors (`make loadgen floor nio-floor`), redis-server, nginx with
libnginx-mod-nchan.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import scenarios as scenario_sets  # noqa: E402
from bench.goals import goals_section  # noqa: E402
from bench.processes import RedisServer  # noqa: E402
from bench.report import Outcome, machine_facts, markdown_report, table  # noqa: E402
from bench.scenarios import GROUP_TITLES, Scenario, median_round, smoke_problems  # noqa: E402
from bench.targets import REPO, Context, Target, scale_out, side_by_side  # noqa: E402

REFERENCE = {"side by side": "nchan", "scale out": "1 node"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", type=Path, default=Path(os.environ.get("WS4R_PREFIX", REPO / "stage")),
                        help="install prefix of ws4redis (bin/ws4redis, bin/ws4redis-host); default $WS4R_PREFIX or stage/")
    parser.add_argument("--loadgen", type=Path, default=REPO / ".build-bench" / "loadgen", help="the load generator (make loadgen)")
    parser.add_argument("--floor", type=Path, default=REPO / ".build-bench" / "floor",
                        help="the C floor server, measured last in the side-by-side scenarios (make floor)")
    parser.add_argument("--nio-floor", type=Path, default=REPO / ".build" / "release" / "nio-floor",
                        help="the plain-SwiftNIO handshake server, measured in the handshakes scenario (make nio-floor)")
    parser.add_argument("--smoke", action="store_true", help="small sizes; check that every scenario runs and counts right")
    parser.add_argument("--only", action="append", metavar="KEY", help="run only these scenarios (repeatable)")
    parser.add_argument("--standalone-processes", type=int, metavar="N",
                        help="run the standalone server as `ws4redis serve --processes N` (the multi-process server)")
    parser.add_argument("--results", type=Path, help="where to write the markdown report (default: Benchmarks/RESULTS.md, "
                                                     "none with --smoke)")
    parser.add_argument("--note", help="a remark for the report, e.g. that the machine was shared")
    return parser.parse_args()


def targets_of(scenario: Scenario, args: argparse.Namespace) -> list[Target]:
    if scenario.group != "side by side":
        return scale_out()
    return side_by_side(args.standalone_processes, args.floor.resolve(), args.nio_floor.resolve() if scenario.mode == "connect" else None)


def skip_reason(scenario: Scenario, target: Target) -> str | None:
    capacity = target.capacity()
    if capacity is not None and scenario.server_sockets > capacity:
        return "server process fd limit"
    if scenario.mode == "echo" and not target.has_echo:
        return "no echo endpoint"
    return None


def run_one(ctx: Context, loadgen: Path, scenario: Scenario, target: Target, tag: str, round: int | None) -> Outcome:
    outcome = Outcome(scenario, target.name, round=round)
    outcome.skipped = skip_reason(scenario, target)
    if outcome.skipped:
        return outcome
    try:
        deployment = target.start(ctx, scenario.server_sockets, tag)
    except Exception as exc:  # a server that does not start is a result of the run, not its end
        outcome.failure = f"{target.name} did not start: {exc}"
        return outcome
    try:
        facility = f"{tag}-{target.name.replace(' ', '-')}"
        url = deployment.echo_url if scenario.mode == "echo" else deployment.subscribe_url(facility)
        argv = [str(loadgen), scenario.mode, "--url", url, *scenario.loadgen_args(),
                *(deployment.publish_args(facility) if scenario.mode == "fanout" else []),
                *[arg for pid in deployment.pids for arg in ("--server-pid", str(pid))]]
        outcome.argv = tuple(argv)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=scenario.timeout_s())
        lines = done.stdout.strip().splitlines()
        if lines and lines[-1].startswith("{"):
            outcome.result = json.loads(lines[-1])
            outcome.line = lines[0] if len(lines) > 1 else ""
        if done.returncode != 0:
            outcome.failure = (outcome.result or {}).get("error") or f"loadgen exited {done.returncode}: {done.stderr.strip()[-500:]}"
    except subprocess.TimeoutExpired:
        outcome.failure = f"the load generator took more than {scenario.timeout_s():.0f} s"
    finally:
        deployment.stop()
    return outcome


def representative(scenario: Scenario, rounds: list[Outcome]) -> Outcome:
    """A target's outcome in the table: its only round, or its median round among those that
    produced figures (a failed or skipped round stands only when no round produced any)."""
    measured = [o for o in rounds if o.result and not o.failure]
    if len(rounds) == 1 or not measured:
        return rounds[0]
    median = median_round(scenario, [o.result for o in measured])
    return next(o for o in measured if o.result is median)


def problems_of(outcome: Outcome, smoke: bool) -> list[str]:
    """A failed run is a problem; with --smoke, so is any figure or count that is not as it must be."""
    if outcome.skipped:
        return []
    if smoke and outcome.result:
        found = smoke_problems(outcome.scenario, outcome.result)
    else:
        found = [outcome.failure] if outcome.failure else []
        failed = ((outcome.result or {}).get("connections") or {}).get("failed")
        if failed and outcome.scenario.mode != "connect":
            # Figures measured on fewer sockets than the scenario names are not its figures.
            found.append(f"{failed:,} of {outcome.scenario.sockets:,} sockets failed to open")
    return [f"{outcome.scenario.key} · {outcome.target}: {problem}" for problem in found]


def run_all(ctx: Context, chosen: list[Scenario], args: argparse.Namespace) -> tuple[list[Outcome], list[str], list[str]]:
    """Runs every scenario against each of its targets; returns the outcomes, the report's sections
    (the goals, then group headings and tables, also printed as they come) and the problems."""
    outcomes: list[Outcome] = []
    sections: list[str] = []
    problems: list[str] = []
    shown: dict[tuple[str, str], Outcome] = {}
    for index, scenario in enumerate(chosen):
        if index == 0 or chosen[index - 1].group != scenario.group:
            sections.append(f"## {GROUP_TITLES[scenario.group]}\n")
            print(f"\n{sections[-1]}", flush=True)
        targets = targets_of(scenario, args)
        rounds: dict[str, list[Outcome]] = {target.name: [] for target in targets}
        for round in range(1, scenario.rounds + 1):
            for target in targets:
                outcome = run_one(ctx, args.loadgen, scenario, target, f"{scenario.key}-{len(outcomes)}",
                                  round if scenario.rounds > 1 else None)
                print(f"{outcome.label} {outcome.summary()}", flush=True)
                problems += problems_of(outcome, args.smoke)
                rounds[target.name].append(outcome)
                outcomes.append(outcome)
        group = [representative(scenario, rounds[target.name]) for target in targets]
        shown.update({(scenario.key, outcome.target): outcome for outcome in group})
        sections.append(f"### {scenario.title}\n\n{table(scenario, group, REFERENCE[scenario.group])}\n")
        print("\n" + sections[-1], flush=True)
    goals = goals_section(shown)  # in smoke runs too, so that CI runs the code
    if goals and not args.smoke:  # a smoke run reuses the scenarios' keys at a few sockets: no test of the goals
        print("\n" + goals, flush=True)
        sections.insert(0, goals)
    return outcomes, sections, problems


def main() -> int:
    args = parse_args()
    if not args.loadgen.exists():
        sys.exit(f"{args.loadgen} does not exist: run `make loadgen`")
    if not args.floor.exists():
        sys.exit(f"{args.floor} does not exist: run `make floor`")
    if not args.nio_floor.exists():
        sys.exit(f"{args.nio_floor} does not exist: run `make nio-floor`")
    for binary in ("ws4redis", "ws4redis-host"):
        if not (args.prefix / "bin" / binary).exists():
            sys.exit(f"{args.prefix}/bin/{binary} does not exist: run `make stage` or pass --prefix")
    chosen = scenario_sets.smoke() if args.smoke else scenario_sets.full()
    if args.only:
        unknown = set(args.only) - {s.key for s in chosen}
        if unknown:
            sys.exit(f"unknown scenarios {sorted(unknown)}; known: {[s.key for s in chosen]}")
        chosen = [s for s in chosen if s.key in args.only]
    command = shlex.join(["python3", "Benchmarks/run.py", *sys.argv[1:]])
    started, clock = time.strftime("%Y-%m-%d %H:%M %Z"), time.monotonic()
    facts = machine_facts(args.prefix, REPO)
    directory = Path(tempfile.mkdtemp(prefix="ws4redis-bench-"))
    print(f"$ {command}\nlogs in {directory}", flush=True)
    redis = RedisServer(directory)
    try:
        outcomes, sections, problems = run_all(Context(prefix=args.prefix.resolve(), redis=redis, directory=directory), chosen, args)
    finally:
        redis.stop()
    results = args.results or (None if args.smoke else REPO / "Benchmarks" / "RESULTS.md")
    facts.append(("load average at the end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    if results:
        results.write_text(markdown_report(command, started, args.note, facts, sections, outcomes, time.monotonic() - clock))
        print(f"wrote {results}")
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems), file=sys.stderr)
        print(f"logs kept in {directory}", file=sys.stderr)
        return 1
    if args.smoke:
        shutil.rmtree(directory, ignore_errors=True)
    else:
        print(f"logs in {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
