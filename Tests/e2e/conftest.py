"""Fixtures of the end-to-end suite: a private redis-server, the servers under test, Redis clients.

WS4R_PREFIX names the installed layout to test (bin/ws4redis, bin/ws4redis-host, lib/libws4redis.so,
include/ws4redis.h); default: the repository's stage/ (what `make stage` fills).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from e2e_helpers import FIGURES, MODES, RedisServer, Server
from service_fixtures import REPO, _clean_redis, own_redis, prefix, r, redis_server  # noqa: F401 (fixtures, found by name)

# The Python client package (clients/python/ws4redis), importable without installing it.
sys.path.insert(0, str(REPO / "clients" / "python"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "library_path" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.in_process)


@pytest.fixture(scope="session")
def library_path(prefix: Path) -> Path:
    """lib/libws4redis.so of the layout under test (for ctypes and ws4redis.native)."""
    return prefix / "lib" / "libws4redis.so"


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def server_factory(request: pytest.FixtureRequest, prefix: Path, redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """start(mode, *extra_args, redis_url=None, env=None) -> a running Server (ready: /healthz answered
    200). `env` adds environment variables (e.g. WS4REDIS_HEARTBEAT) to the server's environment.

    At teardown every server still running gets SIGTERM and must exit 0 within 10 s.
    """
    servers: list[Server] = []
    request.node._ws4r_servers = servers

    def start(mode: str, *extra_args: str, redis_url: str | None = None, env: dict[str, str] | None = None) -> Server:
        log = tmp_path / f"server-{mode}-{len(servers)}.log"
        server = Server(mode, prefix, redis_url or redis_server.url, log, extra_args, env=env)
        servers.append(server)
        return server.start()

    yield start
    failures = []
    for server in servers:
        try:
            server.stop_and_check()
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def server(mode: str, server_factory: Callable[..., Server]) -> Server:
    """The server of the current mode with default options."""
    return server_factory(mode)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Attaches the tail of each server's log to a failed test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in getattr(item, "_ws4r_servers", []):
            report.sections.append((f"ws4redis {server.mode} log (port {server.port})", server.log_tail()))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if FIGURES:
        terminalreporter.section("ws4redis figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
