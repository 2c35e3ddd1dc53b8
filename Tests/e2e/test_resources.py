"""Descriptors per connection, and the graceful stop on SIGTERM, in each mode."""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path
from typing import Callable

import pytest

from e2e_helpers import FIGURES, STOP_TIMEOUT, Server, close_all, open_clients, run_async, wait_until
from robust_helpers import settled_fd_count

N_IDLE = 200
SLACK = 5  # fds the server may open for itself meanwhile (e.g. a transient /healthz connection)


def test_fds_per_connection(mode: str, server: Server) -> None:
    """standalone: one fd per websocket. host/plugin: at most two (the host may keep its own copy)."""
    server.wait_stats(lambda s: s["redis_connected"], "redis_connected")
    before = settled_fd_count(server)
    allowed_per_client = 1 if mode == "standalone" else 2

    async def body() -> tuple[int, int]:
        clients = await open_clients(server.url("f1"), N_IDLE)
        try:
            await server.await_stats(
                lambda s: s["connections"] == N_IDLE and s["subscriptions"] == N_IDLE, f"{N_IDLE} connections subscribed"
            )
            during = await asyncio.to_thread(settled_fd_count, server)
        finally:
            await close_all(clients)
        await server.await_stats(lambda s: s["connections"] == 0, "connections == 0 after closing every client")
        after = await asyncio.to_thread(
            wait_until, lambda: (n := server.fd_count()) <= before + SLACK and n, 10, f"fds back to at most {before} + {SLACK}"
        )
        return during, after

    during, after = run_async(body(), 90, "fds per connection")
    increase = during - before
    figure = f"fds {mode}: {before} idle, {during} with {N_IDLE} websockets (+{increase}, {increase / N_IDLE:.2f} per client), {after} after they closed"
    FIGURES.append(figure)
    print(figure)
    assert increase >= N_IDLE, f"{figure}: fewer fds than websockets? the measurement is wrong"
    assert increase <= allowed_per_client * N_IDLE + SLACK, f"{figure}: more than {allowed_per_client} fd per websocket"


def test_graceful_stop(server: Server) -> None:
    """SIGTERM: every websocket is closed with 1001 (going away), then the process exits 0."""

    async def body() -> None:
        clients = await open_clients(server.url("f1"), 5)
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 5, "5 confirmed subscriptions")
            stopping = asyncio.create_task(asyncio.to_thread(server.terminate))
            try:
                await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in clients)), STOP_TIMEOUT + 2)
            except TimeoutError:
                pytest.fail(f"{sum(c.state.name != 'CLOSED' for c in clients)} of 5 clients still open after SIGTERM")
            code = await stopping
        finally:
            await close_all(clients)
        codes = [(c.close_code, c.protocol.close_rcvd.code if c.protocol.close_rcvd else None) for c in clients]
        assert all(rcvd == 1001 for _, rcvd in codes), f"close codes (seen, received in a close frame): {codes}, expected 1001 each"
        assert code == 0, f"exit code {code} after SIGTERM (None: did not exit within {STOP_TIMEOUT}s)"

    run_async(body(), 40, "graceful stop")


def test_descriptor_limit_lifted_and_table_sized_at_start(mode: str, server_factory: Callable[..., Server]) -> None:
    """Started with a soft descriptor limit of 1,024 (a common default) under a higher hard one, the server lifts the soft
    limit to the hard one and sizes its descriptor table for it before serving (FDSize in
    /proc/PID/status), so that no accept() waits for the table to grow."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip(f"the hard descriptor limit ({hard}) leaves nothing to lift")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        server = server_factory(mode)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    limits = Path(f"/proc/{server.pid}/limits").read_text()
    open_files = next(line for line in limits.splitlines() if line.startswith("Max open files")).split()
    assert open_files[3] == open_files[4], f"soft limit {open_files[3]}, hard {open_files[4]}: the soft one was not lifted"
    status = Path(f"/proc/{server.pid}/status").read_text()
    table = int(next(line for line in status.splitlines() if line.startswith("FDSize:")).split()[1])
    wanted = 1 << 17 if hard == resource.RLIM_INFINITY else min(hard, 1 << 17)  # DescriptorTable.largestReserved
    assert table >= wanted, f"descriptor table of {table} slots at start, expected at least {wanted}"
