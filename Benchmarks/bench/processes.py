"""Processes the benchmark starts: a private redis-server, servers under test, nginx. Each logs to
a file in the run's directory and stops with SIGTERM (SIGKILL after a grace period)."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence

STOP_GRACE_S = 30
PLACEHOLDER = re.compile(r"@[A-Z0-9_]+@")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, http.client.HTTPException) as exc:  # not listening yet
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def http_status(port: int, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def executable(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if not found:
        raise RuntimeError(f"{name} is not installed")
    return found


class Process:
    """One child process with its output in `log`."""

    def __init__(self, argv: Sequence[str], log: Path):
        self.argv = list(argv)
        self.log = log
        with open(log, "ab") as out:
            out.write(("$ " + " ".join(self.argv) + "\n").encode())
            out.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.argv[0]} exited with {self.proc.returncode}:\n{self.log_tail()}")
        return True

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class RedisServer(Process):
    """A redis-server on a free loopback port, no persistence, enough clients for Nchan's workers."""

    def __init__(self, directory: Path):
        self.port = free_port()
        super().__init__([executable("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(directory)], directory / "redis.log")

        def pong() -> bool:
            self.check_alive()
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        wait_until(pong, 10, "redis-server")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def render(template: str, values: dict[str, str]) -> str:
    """Fills @NAME@ placeholders; every placeholder must have a value."""
    for name, value in values.items():
        template = template.replace(f"@{name}@", value)
    left = sorted(set(PLACEHOLDER.findall(template)))
    if left:
        raise RuntimeError(f"placeholders without a value: {left}")
    return template


class Nginx(Process):
    """Debian's nginx from a private prefix directory holding `nginx.conf` (and what it includes)."""

    TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

    def __init__(self, directory: Path, ready_port: int, ready: Callable[[], bool]):
        for name in self.TEMP_DIRS:
            (directory / name).mkdir(exist_ok=True)
        argv = [executable("nginx"), "-p", f"{directory}/", "-c", str(directory / "nginx.conf"), "-e", str(directory / "error.log")]
        checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{checked.stderr}")
        super().__init__([*argv, "-g", "daemon off;"], directory / "nginx.log")
        self.port = ready_port
        wait_until(lambda: self.check_alive() and ready(), 15, f"nginx on port {ready_port}")

    @staticmethod
    def user_line() -> str:
        """Workers as root when we are root: they must reach the private prefix directory."""
        return "user root;" if os.geteuid() == 0 else ""
