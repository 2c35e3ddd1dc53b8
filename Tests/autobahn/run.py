#!/usr/bin/env python3
"""Autobahn|Testsuite conformance run against the echo endpoint of both servers.

    python3 Tests/autobahn/run.py --profile quick     # all cases but 9.* (performance) and the large deflate cases
    python3 Tests/autobahn/run.py --profile full      # every case (about 20 minutes on 2 cores)
    python3 Tests/autobahn/run.py --cases 5.19 7.5.1  # just these (patterns as in a wstest spec)

What it does, from a bare machine that has pyenv's CPython 2.7.18 (autobahntestsuite runs only on
Python 2):
 1. Creates (once; cached in .venv-autobahn/, rebuilt when the pins change) a Python 3 venv holding
    virtualenv<20.22, and with it a Python 2.7 env holding the pins of requirements-py27.txt.
 2. Starts a private redis-server, `ws4redis serve` and `ws4redis-host` (core linked), each with
    `--echo-path /echo` on a free loopback port.
 3. Runs `wstest -m fuzzingclient` with a generated spec, reports in out/autobahn/<profile>/.
 4. Prints per agent the count of each result and every case that is not OK or INFORMATIONAL,
    and exits 1 if any case FAILED, is NON-STRICT, or is UNIMPLEMENTED outside the deflate groups
    (or a server died, or an agent misses results).
Every process it started is stopped at the end, whatever the outcome.

WS4R_PREFIX names the installed layout to test (bin/ws4redis, bin/ws4redis-host); default: stage/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-py27.txt"
VENV = REPO / ".venv-autobahn"
PYTHON2_VERSION = "2.7.18"
VIRTUALENV_PIN = "virtualenv<20.22"  # the last releases that still create Python 2.7 envs

# Group 9 (limits and performance: messages of up to 16 MiB, whole or in frames from 64 bytes up)
# takes half the run's time; the quick profile leaves it out.
PERFORMANCE_CASES = ["9.*"]
# Groups 12 and 13 (permessage-deflate) repeat each parameter set with messages from 16 bytes to
# 256 KiB; cases 7 to 18 of each subgroup (the large ones) take about 12 minutes per server in
# Autobahn's Python 2.7 client. The quick profile keeps cases 1 to 6: every parameter set, small sizes.
LARGE_DEFLATE_CASES = [f"{group}.*.{case}" for group in ("12", "13") for case in range(7, 19)]

PROFILES = {
    "quick": {"cases": ["*"], "exclude": PERFORMANCE_CASES + LARGE_DEFLATE_CASES},
    "full": {"cases": ["*"], "exclude": []},
}

# Server settings for the run. The defaults (1 MiB messages and frames, 4 MiB of queued output)
# are policy, not protocol: group 9 echoes messages of up to 16 MiB, so the limits are raised
# above that. Protocol pings are off so that no ping of ours lands inside a case's observed frames.
SERVER_SETTINGS = [
    "--max-message-size", str(64 << 20),
    "--max-frame-size", str(64 << 20),
    "--max-outbound-bytes", str(64 << 20),
    "--ping-interval", "0",
    "--log-level", "warning",
]

ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
SEVERITY = {"OK": 0, "INFORMATIONAL": 1, "UNIMPLEMENTED": 2, "NON-STRICT": 3, "FAILED": 4}


def log(message: str) -> None:
    print(f"autobahn: {message}", flush=True)


def die(message: str) -> None:
    print(f"autobahn: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


# --- the Python 2.7 environment ------------------------------------------------------------------


def find_python2() -> Path:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
        if (root / "bin" / "pyenv").exists():
            pyenv = str(root / "bin" / "pyenv")
    if pyenv is None:
        die(
            "pyenv not found (not on PATH, nor in $PYENV_ROOT/bin or ~/.pyenv/bin). autobahntestsuite runs only "
            f"on Python 2.7: this needs pyenv's CPython {PYTHON2_VERSION}, which the machine image provides."
        )
    try:
        prefix = subprocess.run([pyenv, "prefix", PYTHON2_VERSION], check=True, capture_output=True, text=True).stdout.strip()
    except subprocess.CalledProcessError as error:
        die(f"pyenv ({pyenv}) has no Python {PYTHON2_VERSION}: {error.stderr.strip()} (it is part of the machine image)")
    python2 = Path(prefix) / "bin" / "python"
    if not python2.exists():
        die(f"pyenv's Python {PYTHON2_VERSION} has no {python2}")
    return python2


def ensure_env() -> Path:
    """The wstest of the cached Python 2.7 env, (re)built when the pins or the interpreter change."""
    python2 = find_python2()
    stamp = VENV / ".ready"
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + f"\n{python2}\n{VIRTUALENV_PIN}\n".encode()).hexdigest()
    wstest = VENV / "py27" / "bin" / "wstest"
    if stamp.exists() and stamp.read_text().strip() == key and wstest.exists():
        return wstest
    log(f"creating the Python 2.7 env in {VENV} (once)")
    started = time.monotonic()
    shutil.rmtree(VENV, ignore_errors=True)
    tools = VENV / "tools"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
    except subprocess.CalledProcessError:
        die("python3 -m venv failed: install python3-venv (`make deps`)")
    quiet = ["-q", "--disable-pip-version-check"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")  # pip 20 on 2.7 warns about Python 2's end of life
    steps = [
        [str(tools / "bin" / "pip"), "install", *quiet, VIRTUALENV_PIN],
        [str(tools / "bin" / "virtualenv"), "-q", "-p", str(python2), str(VENV / "py27")],
        [str(VENV / "py27" / "bin" / "pip"), "install", *quiet, "--no-python-version-warning", "-r", str(REQUIREMENTS)],
    ]
    for step in steps:
        if subprocess.run(step, env=env).returncode != 0:
            die(f"creating the Python 2.7 env failed at: {' '.join(step)}")
    if not wstest.exists():
        die(f"{wstest} missing after installing {REQUIREMENTS}")
    stamp.write_text(key + "\n")
    log(f"env ready in {time.monotonic() - started:.0f} s")
    return wstest


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Every process this run started; `stop_all` ends each by its own pid."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], log_path: Path, cwd: Path | None = None) -> subprocess.Popen:
        with open(log_path, "wb") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd)
        self.running.append((name, process))
        return process

    def stop_all(self) -> None:
        """Last started first (the servers before their Redis), each given 10 s to exit on SIGTERM."""
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        while self.running:
            name, process = self.running.pop()
            if process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                log(f"{name} (pid {process.pid}) ignored SIGTERM: killing it")
                process.kill()
                process.wait()


def wait_for(what: str, ready, process: subprocess.Popen, log_path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            die(f"{what} exited with {process.returncode} while starting; its log ({log_path}):\n{log_path.read_text(errors='replace')}")
        if ready():
            return
        time.sleep(0.1)
    die(f"{what} not ready after {timeout:.0f} s; its log ({log_path}):\n{log_path.read_text(errors='replace')}")


def redis_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def http_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


# --- the report ----------------------------------------------------------------------------------


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


def outcome(result: dict) -> str:
    """The worse of a case's behavior and its closing behavior."""
    return max(result.get("behavior", "FAILED"), result.get("behaviorClose", "OK"), key=lambda b: SEVERITY.get(b, 4))


def passes(result: dict) -> bool:
    """OK and INFORMATIONAL pass; NON-STRICT, UNIMPLEMENTED and FAILED do not."""
    return outcome(result) in ("OK", "INFORMATIONAL")


def counts_of(results: dict) -> dict[str, int]:
    counts = {b: 0 for b in ORDER}
    for result in results.values():
        counts[outcome(result)] += 1
    return counts


def case_line(case_id: str, result: dict) -> str:
    return (f"{case_id} behavior={result.get('behavior')} close={result.get('behaviorClose')} "
            f"remoteCloseCode={result.get('remoteCloseCode')} {result.get('duration')} ms ({result.get('reportfile')})")


def summarize(index: dict, agents: list[str], expected: int | None, durations: dict[str, float], dead: list[str]) -> bool:
    """Prints the table and the cases that need a look; whether the run passes."""
    passed = not dead
    total_passed = total_failed = 0
    width = max(len(a) for a in agents)
    print()
    print(f"{'agent':<{width}}  " + "  ".join(f"{b:>13}" for b in ORDER) + f"  {'cases':>5}  {'time':>7}")
    for agent in agents:
        results = index.get(agent, {})
        counts = counts_of(results)
        print(f"{agent:<{width}}  " + "  ".join(f"{counts[b]:>13}" for b in ORDER) + f"  {len(results):>5}  {durations.get(agent, 0):>6.1f}s")
    for agent in agents:
        results = index.get(agent, {})
        if not results or (expected is not None and len(results) != expected):
            print(f"\n{agent}: {len(results)} results for {expected} cases")
            passed = False
        bad = [case_id for case_id in sorted(results, key=case_key) if not passes(results[case_id])]
        total_failed += len(bad)
        total_passed += len(results) - len(bad)
        if bad:
            passed = False
            print(f"\n{agent}: {len(bad)} case(s) not OK/INFORMATIONAL:")
            for case_id in bad:
                print("  " + case_line(case_id, results[case_id]))
    for name in dead:
        print(f"\n{name} died during the run (see its log)")
    # A plain closing line, as test runners print.
    print(f"\nautobahn: {total_passed} passed, {total_failed} failed")
    return passed


def markdown(index: dict, agents: list[str], spec: dict, command: str, durations: dict[str, float], binary: Path) -> str:
    """The run's summary as Markdown, for docs/conformance.md."""
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(binary.stat().st_mtime))
    head = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"Run {date}: `{command}`, cases {', '.join(spec['cases'])} except {', '.join(spec['exclude-cases']) or 'none'}; "
        f"binaries built {built}, tree at {head or 'unknown'}.",
        "",
        "| agent | " + " | ".join(ORDER) + " | cases | time |",
        "|---|" + "---:|" * (len(ORDER) + 2),
    ]
    for agent in agents:
        results = index.get(agent, {})
        counts = counts_of(results)
        lines.append(f"| {agent} | " + " | ".join(str(counts[b]) for b in ORDER) + f" | {len(results)} | {durations.get(agent, 0):.1f} s |")
    lines.append("")
    for agent in agents:
        results = index.get(agent, {})
        bad = [case_id for case_id in sorted(results, key=case_key) if outcome(results[case_id]) != "OK"]
        lines.append(f"{agent}, cases not OK: " + (", ".join(f"{c} ({outcome(results[c])})" for c in bad) or "none") + ".")
        lines.append("")
    return "\n".join(lines)


def agent_durations(index: dict, outdir: Path) -> dict[str, float]:
    """Seconds from an agent's first case start to its last case end, from the case reports."""
    from datetime import datetime

    def parse(stamp: str) -> float:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()

    durations = {}
    for agent, results in index.items():
        first = last = None
        for result in results.values():
            try:
                report = json.loads((outdir / result["reportfile"]).read_text())
                start = parse(report["started"])
            except (OSError, KeyError, ValueError):
                continue
            end = start + (report.get("duration") or 0) / 1000
            first = start if first is None else min(first, start)
            last = end if last is None else max(last, end)
        if first is not None:
            durations[agent] = last - first
    return durations


# --- the run -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--cases", nargs="+", help="case patterns to run instead of the profile's (its exclusions still apply)")
    parser.add_argument("--agent", choices=["standalone", "host"], action="append", help="test only this server (repeatable)")
    parser.add_argument("--server-defaults", action="store_true",
                        help="run the servers with their default limits instead of SERVER_SETTINGS (group 9 then meets them)")
    parser.add_argument("--out", type=Path, help="report directory (default: out/autobahn/<profile>, or out/autobahn/cases with --cases)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds wstest may take in all (default: 3600)")
    args = parser.parse_args()

    prefix = Path(os.environ.get("WS4R_PREFIX") or REPO / "stage").resolve()
    binaries = {"standalone": prefix / "bin" / "ws4redis", "host": prefix / "bin" / "ws4redis-host"}
    kinds = args.agent or ["standalone", "host"]
    for kind in kinds:
        if not os.access(binaries[kind], os.X_OK):
            die(f"{binaries[kind]} missing: run `make stage` or set WS4R_PREFIX")
    if shutil.which("redis-server") is None:
        die("redis-server not found: run `make deps`")
    wstest = ensure_env()

    profile = PROFILES[args.profile]
    outdir = (args.out or REPO / "out" / "autobahn" / ("cases" if args.cases else args.profile)).resolve()
    shutil.rmtree(outdir / "reports", ignore_errors=True)
    (outdir / "logs").mkdir(parents=True, exist_ok=True)

    processes = Processes()

    def on_signal(signum, _frame):
        log(f"signal {signum}: stopping")
        sys.exit(128 + signum)  # the `finally` below stops the processes

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    redis_dir = Path(tempfile.mkdtemp(prefix="ws4r-autobahn-redis."))
    try:
        redis_port = free_port()
        redis_log = outdir / "logs" / "redis.log"
        redis = processes.start("redis-server", [
            "redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(redis_dir), "--daemonize", "no",
        ], redis_log)
        wait_for("redis-server", lambda: redis_ready(redis_port), redis, redis_log)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"

        servers = []  # (agent, port, process, log)
        for kind in kinds:
            port = free_port()
            agent = f"ws4redis-{kind}"
            argv = [str(binaries[kind])] + (["serve"] if kind == "standalone" else [])
            argv += ["--listen", f"127.0.0.1:{port}", "--redis-url", redis_url, "--echo-path", "/echo"]
            argv += ["--log-level", "warning"] if args.server_defaults else SERVER_SETTINGS
            server_log = outdir / "logs" / f"{agent}.log"
            process = processes.start(agent, argv, server_log)
            wait_for(agent, lambda port=port: http_ready(port), process, server_log)
            log(f"{agent} on 127.0.0.1:{port} (pid {process.pid}): {' '.join(argv[1:])}")
            servers.append((agent, port, process, server_log))

        spec = {
            "options": {"failByDrop": False},
            "outdir": str(outdir / "reports"),
            "servers": [{"agent": agent, "url": f"ws://127.0.0.1:{port}/echo"} for agent, port, _, _ in servers],
            "cases": args.cases or profile["cases"],
            "exclude-cases": profile["exclude"],
            "exclude-agent-cases": {},
        }
        spec_path = outdir / "fuzzingclient.json"
        spec_path.write_text(json.dumps(spec, indent=2) + "\n")
        log(f"profile {args.profile}: cases {spec['cases']} except {spec['exclude-cases']}; reports in {outdir / 'reports'}")

        wstest_log = outdir / "logs" / "wstest.log"
        started = time.monotonic()
        fuzzer = processes.start("wstest", [str(wstest), "-m", "fuzzingclient", "-s", str(spec_path)], wstest_log, cwd=outdir)
        try:
            fuzzer.wait(args.timeout)
        except subprocess.TimeoutExpired:
            die(f"wstest did not finish within {args.timeout:.0f} s (log: {wstest_log})")
        elapsed = time.monotonic() - started
        if fuzzer.returncode != 0:
            die(f"wstest exited with {fuzzer.returncode}; its log ({wstest_log}):\n{wstest_log.read_text(errors='replace')[-4000:]}")
        log(f"wstest took {elapsed:.1f} s")

        dead = [f"{agent} (exit {process.returncode})" for agent, _, process, _ in servers if process.poll() is not None]
        index_path = outdir / "reports" / "index.json"
        if not index_path.exists():
            die(f"{index_path} missing; wstest log: {wstest_log}")
        index = json.loads(index_path.read_text())
        agents = [agent for agent, _, _, _ in servers]
        durations = agent_durations(index, outdir / "reports")
        announced = re.search(r"will run (\d+) test cases", wstest_log.read_text(errors="replace"))
        passed = summarize(index, agents, int(announced.group(1)) if announced else None, durations, dead)
        (outdir / "summary.json").write_text(json.dumps({
            "profile": args.profile, "spec": spec, "seconds": round(elapsed, 1),
            "agents": {a: {"seconds": round(durations.get(a, 0), 1), "counts": counts_of(index.get(a, {}))} for a in agents},
        }, indent=2) + "\n")
        command = "python3 Tests/autobahn/run.py " + " ".join(sys.argv[1:])
        (outdir / "summary.md").write_text(markdown(index, agents, spec, command.strip(), durations, binaries[kinds[0]]))
        log(f"HTML report: {outdir / 'reports' / 'index.html'}")
        return 0 if passed else 1
    finally:
        processes.stop_all()
        shutil.rmtree(redis_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
