"""Fixtures both suites (Tests/e2e, Tests/django) share: the installed layout under test and a
private redis-server whose keyspace is emptied before each test that uses it. A conftest imports
them by name."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Iterator

import pytest
import redis

from e2e_helpers import RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prefix() -> Path:
    """WS4R_PREFIX, the installed layout to test (default: the repository's stage/)."""
    p = Path(os.environ.get("WS4R_PREFIX") or REPO / "stage").resolve()
    if not (p / "lib" / "libws4redis.so").exists():
        pytest.fail(f"WS4R_PREFIX={p} holds no lib/libws4redis.so: run `make stage` or set WS4R_PREFIX")
    return p


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, for the whole session."""
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A redis-py client on the test Redis (bytes replies)."""
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _clean_redis(request: pytest.FixtureRequest) -> None:
    """Empties the keyspace before each test that uses Redis (directly or through another fixture):
    stored messages of one test must not reach the clients of the next (a subscribe GETs the
    channel's key)."""
    if "redis_server" in request.fixturenames:
        client = request.getfixturevalue("redis_server").client()
        client.flushall()
        client.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop, freeze (the session's must never
    be frozen) or make refuse writes; thawed and stopped at the end."""
    server = RedisServer(free_port(), tmp_path).start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.proc.send_signal(signal.SIGCONT)
        server.stop()
