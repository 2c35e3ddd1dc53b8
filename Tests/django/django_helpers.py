"""Shared parts of the Django drop-in tests: where things are, the people of the test project, and
the project served in a subprocess. Importing this module makes the test project, the two client
packages and the end-to-end helpers (Tests/e2e/e2e_helpers.py) importable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, NamedTuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PYTHONPATH = [HERE, REPO / "clients" / "django", REPO / "clients" / "python"]
sys.path[:0] = [str(path) for path in [*PYTHONPATH, REPO / "Tests" / "e2e"]]

from e2e_helpers import STARTUP_TIMEOUT, STOP_TIMEOUT, ServerDied, describe_exit, free_port, wait_until  # noqa: E402

WS_URL = "/ws/"
PREFIX = "djt"  # WS4REDIS_PREFIX of testproject/settings.py
HEARTBEAT = "--heartbeat--"  # WS4REDIS_HEARTBEAT of testproject/settings.py


class User(NamedTuple):
    name: str
    session_key: str

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"sessionid={self.session_key}"}


class People(NamedTuple):
    """Logged-in users (alice and dave in group staff, bob in no group) and an anonymous session."""

    alice: User
    bob: User
    dave: User
    anonymous_session: str


class Served:
    """The test project in a subprocess of its own process group (runserver's autoreloader runs the
    server in a child process; a stop must reach both)."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path = HERE):
        self.port = free_port()
        self.argv = [sys.executable, str(cwd / "manage.py"), *[a.format(port=self.port) for a in argv]]
        self.log_path = log_path
        log = open(log_path, "ab")
        self.proc = subprocess.Popen(self.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    def ws(self, facility: str, flags: str) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_URL}{facility}?{flags}"

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise ServerDied(f"{' '.join(self.argv[1:3])} {describe_exit(self.proc.returncode)}\n{self.log_tail()}")

    def wait_ready(self, probe: Callable[[], bool], what: str) -> "Served":
        def ready() -> bool:
            self.check_alive()
            return probe()

        try:
            wait_until(ready, STARTUP_TIMEOUT, what, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- log ---\n{self.log_tail()}") from None
        return self

    def stop(self) -> int | None:
        """SIGTERM to the process group; returns the exit code of the started process."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # an autoreloader's child outliving its parent
            except ProcessLookupError:
                pass

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
