"""What ships as an example, run for real: examples/push_server.c compiled against the installed
layout with nothing but `pkg-config --cflags --libs ws4redis`, and the systemd unit of
packaging/systemd (verified by systemd-analyze, its command line and environment file run as is,
also under its system call filter and write-execute ban)."""

from __future__ import annotations

import asyncio
import configparser
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from e2e_helpers import (STOP_TIMEOUT, RedisServer, ServerDied, assert_refused, close_all, describe_exit, free_port, healthz,
                         open_client, raw_handshake, receive_one, run_async, wait_until)
from unit_sandbox import UNSUPPORTED

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "packaging" / "systemd" / "ws4redis.service"
UNIT_ENVIRONMENT = REPO / "packaging" / "systemd" / "ws4redis.env"
#: The prefix the unit's ExecStart names (make install's default).
UNIT_PREFIX = "/usr/local"


def pkg_config(prefix: Path, *args: str) -> list[str]:
    env = {**os.environ, "PKG_CONFIG_PATH": str(prefix / "lib" / "pkgconfig")}
    result = subprocess.run(["pkg-config", *args, "ws4redis"], env=env, capture_output=True, text=True, check=True)
    return shlex.split(result.stdout)


@pytest.fixture(scope="module")
def push_server(prefix: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/push_server.c built with the installed layout's ws4redis.pc only."""
    assert shutil.which("pkg-config"), "pkg-config is not installed"
    include_dir = Path(pkg_config(prefix, "--variable=includedir")[0]).resolve()
    assert include_dir == prefix / "include", \
        f"{prefix}/lib/pkgconfig/ws4redis.pc points to {include_dir}: not the installed layout under test"
    binary = tmp_path_factory.mktemp("examples") / "push_server"
    libdir = pkg_config(prefix, "--variable=libdir")[0]
    command = [os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-o", str(binary),
               str(REPO / "examples" / "push_server.c"), *pkg_config(prefix, "--cflags", "--libs"), f"-Wl,-rpath,{libdir}"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{shlex.join(command)}\n{result.stderr}"
    return binary


class PushServer:
    """The example program running on a free port, fed on standard input."""

    def __init__(self, binary: Path, redis_url: str):
        self.port = free_port()
        self.proc = subprocess.Popen([str(binary), "--listen", f"127.0.0.1:{self.port}", "--redis-url", redis_url, "--threads", "2"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)

    def read_line(self, what: str) -> str:
        line = self.proc.stdout.readline()
        assert line, f"push_server ended while waiting for {what} (exit {self.proc.poll()})"
        return line.rstrip("\n")

    def read_until(self, prefix: str) -> str:
        while not (line := self.read_line(f"a line starting {prefix!r}")).startswith(prefix):
            continue
        return line

    def publish(self, recipient: str, message: str) -> tuple[str, str]:
        """Writes one input line; returns the program's answer and the figures it printed after it."""
        self.proc.stdin.write(f"{recipient} {message}\n")
        self.proc.stdin.flush()
        return self.read_until("published to"), self.read_until("stats:")

    def url(self, flags: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/notifications?{flags}"


@pytest.fixture
def running_push_server(push_server: Path, redis_server: RedisServer) -> Iterator[PushServer]:
    program = PushServer(push_server, redis_server.url)
    try:
        assert program.read_until("push_server ready").startswith("push_server ready")
        yield program
    finally:
        if program.proc.poll() is None:
            program.proc.kill()
            program.proc.wait()


def test_push_server_example(running_push_server: PushServer) -> None:
    """The authorization callback admits the session cookies it knows (403 otherwise); lines on stdin
    reach one user or everyone; the figures follow; SIGINT closes the websockets with 1001 and exits 0."""
    program = running_push_server
    assert_refused(program.port, "/ws/notifications?subscribe-user", 403, "no valid session", what="no session cookie")
    assert_refused(program.port, "/ws/notifications?subscribe-user", 403, "no valid session",
                   headers={"Cookie": "sessionid=forged"}, what="unknown session")

    async def body() -> None:
        flags = "subscribe-user&subscribe-broadcast"
        alice = await open_client(program.url(flags), additional_headers={"Cookie": "sessionid=alice-session"})
        bob = await open_client(program.url(flags), additional_headers={"Cookie": "sessionid=bob-session"})
        try:
            await asyncio.to_thread(wait_until, lambda: healthz(program.port)[1]["subscriptions"] == 4, 15,
                                    "both clients subscribed to their user channel and the broadcast")
            answer, stats = await asyncio.to_thread(program.publish, "alice", "your order has shipped")
            assert answer == "published to alice: 1 receiving server(s)", answer
            assert "connections=2 subscriptions=4" in stats, f"two clients with two channels each: {stats!r}"
            assert await receive_one(alice, 10, "alice's notification") == "your order has shipped"
            await asyncio.to_thread(program.publish, "*", "the shop closes at 6 pm")
            for name, client in (("alice", alice), ("bob", bob)):
                assert await receive_one(client, 10, f"{name}: the broadcast") == "the shop closes at 6 pm"
            program.proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(asyncio.gather(alice.wait_closed(), bob.wait_closed()), STOP_TIMEOUT)
            codes = [c.protocol.close_rcvd.code if c.protocol.close_rcvd else None for c in (alice, bob)]
            assert codes == [1001, 1001], f"close codes after SIGINT: {codes}"
        finally:
            await close_all([alice, bob])

    run_async(body(), 60, "push_server example")
    final = program.read_until("stats:")
    assert final.startswith("stats: connections=0 subscriptions=0 messages_out=3 "), f"figures after the stop: {final!r}"
    assert program.proc.wait(STOP_TIMEOUT) == 0


# ---------------------------------------------------------------------------------------------
# packaging/systemd


def unit_service_section() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def unit_for(prefix: Path, directory: Path) -> Path:
    """The unit with ExecStart pointing into the installed layout under test."""
    unit = directory / UNIT.name
    unit.write_text(UNIT.read_text().replace(UNIT_PREFIX, str(prefix)))
    return unit


def test_systemd_unit_verifies(prefix: Path, tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit without a warning (unknown or malformed options)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    result = subprocess.run([analyze, "verify", str(unit_for(prefix, tmp_path))], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), \
        f"systemd-analyze verify: exit {result.returncode}\n{result.stdout}{result.stderr}"


def unit_environment() -> dict[str, str]:
    """The settings of the shipped environment file (NAME=value lines; '#' starts a comment line)."""
    lines = [line for line in UNIT_ENVIRONMENT.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_every_setting_of_the_environment_template_exists(prefix: Path) -> None:
    """The server ignores WS4REDIS_* variables it does not know: a misspelt production setting in
    the template would be silently off. Every name, commented-out ones too, must be a setting."""
    names = {line.lstrip("#").split("=", 1)[0].strip() for line in UNIT_ENVIRONMENT.read_text().splitlines()
             if line.lstrip("#").startswith("WS4REDIS_")}
    listed = subprocess.run([str(prefix / "bin" / "ws4redis"), "settings", "--markdown"], capture_output=True, text=True, timeout=30, check=True).stdout
    unknown = sorted(name for name in names if f"`{name}`" not in listed)
    assert names and not unknown, f"not settings of the core: {unknown}"


def system_call_group(analyze: str, name: str) -> set[str]:
    """The system calls of a systemd group (@system-service), its nested groups expanded."""
    listing = subprocess.run([analyze, "syscall-filter", name], capture_output=True, text=True, check=True).stdout.splitlines()
    calls: set[str] = set()
    for entry in (line.strip() for line in listing[1:]):
        if entry.startswith("@"):
            calls |= system_call_group(analyze, entry)
        elif entry and not entry.startswith("#"):
            calls.add(entry)
    return calls


def unit_system_calls(analyze: str) -> set[str]:
    """What the unit's SystemCallFilter= lines allow: the union of the allow lines, less the ~ lines."""
    allowed: set[str] = set()
    denied: set[str] = set()
    for line in UNIT.read_text().splitlines():
        if line.startswith("SystemCallFilter="):
            value = line.split("=", 1)[1]
            target, names = (denied, value[1:]) if value.startswith("~") else (allowed, value)
            for name in names.split():
                target |= system_call_group(analyze, name) if name.startswith("@") else {name}
    assert allowed, f"{UNIT} has no SystemCallFilter= allow list"
    return allowed - denied


def serve_as_the_unit(prefix: Path, redis_server: RedisServer, tmp_path: Path, wrapper: list[str]) -> None:
    """The unit's ExecStart, with the shipped environment file (its listen addresses and Redis moved
    to the test's), run under `wrapper`: the template's origin check refuses a handshake without
    the site's Origin; a page of the site gets what the app publishes under the template's prefix;
    the unit's KillSignal closes the websocket with 1001 and the command exits 0 within TimeoutStopSec."""
    service = unit_service_section()
    assert service["EnvironmentFile"].lstrip("-") == "/etc/ws4redis/ws4redis.env"
    argv = shlex.split(service["ExecStart"].replace(UNIT_PREFIX, str(prefix)))
    environment = unit_environment()
    expected = {"WS4REDIS_LISTEN", "WS4REDIS_REDIS_URL", "WS4REDIS_PREFIX", "WS4REDIS_ALLOWED_ORIGINS", "WS4REDIS_ALLOWED_FLAGS"}
    assert expected <= environment.keys(), f"the environment file sets {sorted(environment)}, not all of {sorted(expected)}"
    assert "publish" not in environment["WS4REDIS_ALLOWED_FLAGS"], "the template lets browsers publish"
    port = free_port()
    environment.update(WS4REDIS_LISTEN=f"127.0.0.1:{port}", WS4REDIS_REDIS_URL=redis_server.url,
                       WS4REDIS_METRICS_LISTEN=f"127.0.0.1:{free_port()}")
    origin = {"Origin": environment["WS4REDIS_ALLOWED_ORIGINS"].split(",")[0]}
    channel = f"{environment['WS4REDIS_PREFIX']}:broadcast:unit"
    stop_signal = signal.Signals[service["KillSignal"]]
    stop_timeout = float(service["TimeoutStopSec"])
    log = tmp_path / "service.log"
    r = redis_server.client()
    with open(log, "wb") as output:
        proc = subprocess.Popen([*wrapper, *argv], env={"PATH": os.environ["PATH"], **environment}, stdin=subprocess.DEVNULL,
                                stdout=output, stderr=subprocess.STDOUT)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise ServerDied(f"{shlex.join(argv)} {describe_exit(proc.returncode)}:\n{log.read_text()}")
            try:
                return raw_handshake(port, "/ws/unit?subscribe-broadcast", origin)[0] == 101
            except OSError:
                return False

        wait_until(ready, 20, "the unit's command to accept a websocket", interval=0.1)
        assert_refused(port, "/ws/unit?subscribe-broadcast", 403, "origin", what="a handshake without the site's Origin")

        async def body() -> None:
            client = await open_client(f"ws://127.0.0.1:{port}/ws/unit?subscribe-broadcast", additional_headers=origin)
            try:
                await asyncio.to_thread(wait_until, lambda: r.pubsub_numsub(channel)[0][1] > 0, 20,
                                        f"the subscription to {channel}")
                r.publish(channel, "from the app")
                assert await receive_one(client, 10, "the app's message") == "from the app"
                proc.send_signal(stop_signal)
                await asyncio.wait_for(client.wait_closed(), stop_timeout)
                assert client.protocol.close_rcvd and client.protocol.close_rcvd.code == 1001, \
                    f"close after {stop_signal.name}: {client.protocol.close_rcvd}"
            finally:
                await close_all([client])

        run_async(body(), stop_timeout + 30, "the unit's websocket and graceful stop")
        code = proc.wait(stop_timeout)
        assert code == 0, f"{describe_exit(code)} after {stop_signal.name}:\n{log.read_text()}"
    finally:
        r.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_systemd_unit_command_serves_and_stops(prefix: Path, redis_server: RedisServer, tmp_path: Path) -> None:
    """The unit's command with the shipped environment file, as serve_as_the_unit describes."""
    serve_as_the_unit(prefix, redis_server, tmp_path, [])


def test_systemd_unit_sandbox_lets_the_command_work(prefix: Path, redis_server: RedisServer, tmp_path: Path) -> None:
    """Under the kernel restrictions of the unit's SystemCallFilter= (seccomp: only the calls it
    allows, any other kills with SIGSYS) and MemoryDenyWriteExecute= (PR_SET_MDWE), the unit's
    command serves, delivers and stops as without them. First a control, so that the test cannot
    pass on a sandbox that does nothing: in it a writable and executable mapping is refused and a
    call outside the list (setuid, in @privileged) kills the process."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    assert "MemoryDenyWriteExecute=yes" in UNIT.read_text().splitlines()
    wrapper = [sys.executable, str(Path(__file__).with_name("unit_sandbox.py")), "--allow", ",".join(sorted(unit_system_calls(analyze))), "--"]
    control = subprocess.run([*wrapper, sys.executable, "-c", SANDBOX_CONTROL], capture_output=True, text=True, timeout=60)
    if control.returncode == UNSUPPORTED:
        pytest.skip(control.stderr.strip())
    assert (control.returncode, control.stdout) == (-signal.SIGSYS, "write+execute refused\nsetuid next\n"), \
        f"the sandbox does not hold: {describe_exit(control.returncode)}\n{control.stdout}{control.stderr}"
    serve_as_the_unit(prefix, redis_server, tmp_path, wrapper)


SANDBOX_CONTROL = """
import mmap, os
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("write+execute allowed", flush=True)
except PermissionError:
    print("write+execute refused", flush=True)
print("setuid next", flush=True)
os.setuid(os.getuid())
print("setuid allowed", flush=True)
"""


def test_sysctl_settings_exist() -> None:
    """Every key of packaging/sysctl.d/60-ws4redis.conf names a kernel setting of this machine, with
    as many fields as the value given (a typo would be skipped by `sysctl --system` with a warning)."""
    path = REPO / "packaging" / "sysctl.d" / "60-ws4redis.conf"
    settings = [line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert settings, f"{path} sets nothing"
    for key, value in settings:
        current = Path("/proc/sys", *key.strip().split("."))
        assert current.exists(), f"{key.strip()}: no such kernel setting ({current})"
        assert len(current.read_text().split()) == len(value.split()), f"{key.strip()}: {value.strip()!r} vs now {current.read_text()!r}"
