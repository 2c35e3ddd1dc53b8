"""Descriptors per connection, and the graceful stop on SIGTERM, in each mode."""

from __future__ import annotations

import asyncio

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
