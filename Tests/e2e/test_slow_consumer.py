"""One subscriber that never reads among many that do, under a stream of 1 KiB messages: the readers
get every message in order, the slow one is dropped, and the server's memory stays bounded.

Receiving is done by lean clients (lean_ws.py) in stream mode: each compares the bytes after its
101 with the exact frames the server must send (text frames of 1024 bytes, 1028 bytes with the
header), so 10 million messages cost a memcmp per read instead of a Python call per message.

The publisher pipelines `batch` messages, then waits until every reading client has all of them:
a reader never has more than one batch (well under max_outbound_bytes) queued at the server, so
only the client that does not read can count as slow."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import pytest
import redis

from e2e_helpers import FIGURES, MEMORY_BOUNDS, Server, run_async
from lean_ws import LeanClient, open_lean, open_lean_many, close_lean_all, server_frame
from robust_helpers import ROBUST_MODES, RssSampler, mib, proc_status_kib, raise_fd_limit

PAYLOAD_SIZE = 1024


@pytest.fixture(params=ROBUST_MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def payload(i: int) -> bytes:
    return b"%08d:" % i + b"m" * (PAYLOAD_SIZE - 9)


def run_slow_consumer(mode: str, server_factory: Callable[..., Server], r: redis.Redis, subscribers: int, messages: int, batch: int,
                      max_outbound: int | None, rss_margin_mib: int, deadline: float) -> None:
    raise_fd_limit(subscribers + 1000)
    args = ["--ping-interval", "0"]  # no pings in the compared stream (and none to answer)
    if max_outbound is not None:
        args += ["--max-outbound-bytes", str(max_outbound)]
    server = server_factory(mode, *args)
    frame_size = len(server_frame(payload(0)))
    assert frame_size == PAYLOAD_SIZE + 4
    assert batch * frame_size * 2 <= (max_outbound or 4 << 20), "a batch must fit well inside max_outbound_bytes"
    expected = b"".join(server_frame(payload(i)) for i in range(messages))
    path = "/ws/slowfeed?subscribe-broadcast"
    channel = "broadcast:slowfeed"
    figures: dict[str, str] = {}

    async def body() -> None:
        readers = await open_lean_many(server.port, [path] * (subscribers - 1), expected_stream=expected)
        # The slow one: a 4 KiB receive buffer and reading paused for good (until the end).
        slow: LeanClient = await open_lean(server.port, path, rcvbuf=4096, expected_stream=expected)
        slow.transport.pause_reading()
        try:
            await server.await_stats(lambda s: s["subscriptions"] == subscribers, f"{subscribers} confirmed subscriptions", timeout=30)
            idle_kib = proc_status_kib(server.pid, "VmRSS")
            t0 = time.monotonic()
            with RssSampler(server.pid) as rss:
                for start in range(0, messages, batch):
                    end = min(messages, start + batch)
                    pipe = r.pipeline(transaction=False)
                    for i in range(start, end):
                        pipe.publish(channel, payload(i))
                    await asyncio.to_thread(pipe.execute)
                    target = end * frame_size
                    batch_deadline = time.monotonic() + 30
                    while True:
                        behind = [c for c in readers if c.matched < target]
                        if not behind:
                            break
                        broken = [c for c in readers if c.mismatch or c.lost.done()]
                        if broken or time.monotonic() > batch_deadline:
                            c = (broken or behind)[0]
                            raise AssertionError(
                                f"{len(broken)} reading clients broken, {len(behind)} behind after message {end} of {messages}; e.g. one at "
                                f"{c.matched // frame_size} messages: {c.mismatch or ''} close code {c.close_code} "
                                f"lost {c.lost.done() and c.lost.result()!r}; stats {server.stats()}"
                            )
                        await asyncio.sleep(0.002)
                delivery = time.monotonic() - t0
                stats = await server.await_stats(lambda s: s["slow_client_closes"] >= 1, "the slow client to be counted as closed", timeout=15)
            assert stats["slow_client_closes"] == 1, f"slow_client_closes {stats['slow_client_closes']}, expected exactly 1: {stats}"
            assert stats["connections"] == subscribers - 1, f"connections: {stats}"
            # The slow client reads again: what the kernel kept for it, then EOF or a reset, within a deadline.
            slow.transport.resume_reading()
            try:
                how = await asyncio.wait_for(asyncio.shield(slow.lost), 20)
            except TimeoutError:
                raise AssertionError(f"the slow client's connection was not closed within 20 s of reading again "
                                     f"({slow.matched} bytes read)") from None
            assert slow.mismatch is None, f"the slow client got wrong bytes before being dropped: {slow.mismatch}"
            assert slow.matched < len(expected), "the slow client got everything: it was not slow (the test is wrong)"
            figures.update(
                delivery=f"{delivery:.1f}s", idle=mib(idle_kib), peak=mib(rss.peak_kib), hwm=mib(rss.hwm_kib),
                slow=f"{slow.matched // frame_size} messages then {'EOF' if how is None else type(how).__name__}",
            )
            peak = max(rss.peak_kib, rss.hwm_kib)
            if MEMORY_BOUNDS:
                assert peak - idle_kib <= rss_margin_mib * 1024, (
                    f"peak RSS {mib(peak)} is {mib(peak - idle_kib)} over the {mib(idle_kib)} with {subscribers} idle clients "
                    f"(bound: +{rss_margin_mib} MiB)"
                )
                assert peak < 200 * 1024, f"peak RSS {mib(peak)}, bound 200 MiB"
        finally:
            slow.abort()
            await close_lean_all(readers)

    run_async(body(), deadline, f"slow consumer among {subscribers} subscribers, {messages} messages")
    figure = (f"slow consumer {mode}: {subscribers} subscribers x {messages} msgs of 1 KiB (batch {batch}, max_outbound_bytes "
              f"{max_outbound or 'default 4 MiB'}): delivered in {figures['delivery']}; RSS idle {figures['idle']}, peak sampled "
              f"{figures['peak']}, VmHWM {figures['hwm']}; slow client: {figures['slow']}")
    FIGURES.append(figure)
    print(figure)


def test_slow_consumer_small(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """100 subscribers, 8,000 messages of 1 KiB, max_outbound_bytes 256 KiB (batches of 100 KiB). The
    slow client is owed 8 MB: more than the kernel can hold for it (the server's send buffer grows
    to tcp_wmem's 4 MiB at most; its receive buffer is 4 KiB) plus its 256 KiB queue.
    Peak RSS bound: +32 MiB over the server with its 100 idle clients. What legitimately grows is
    the slow client's queue (at most 256 KiB plus a message), one batch of frames (framed once and
    shared by all subscribers: 100 KiB), the Redis read buffer (a batch) and allocator slack; a copy
    per subscriber would be 10 MiB per batch, an unbounded slow queue 8 MiB."""
    run_slow_consumer(mode, server_factory, r, subscribers=100, messages=8_000, batch=100, max_outbound=256 * 1024,
                      rss_margin_mib=32, deadline=90)


@pytest.mark.soak
def test_slow_consumer_full(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """500 subscribers, 20,000 messages of 1 KiB (10 GB delivered), default max_outbound_bytes (4 MiB),
    batches of 1,000. Peak RSS bound +48 MiB over the server with its 500 idle clients (and < 200 MiB):
    the slow queue (4 MiB), one shared batch (1 MiB) and the Redis read buffer, allocator slack;
    a copy per subscriber would be 500 MiB per batch."""
    run_slow_consumer(mode, server_factory, r, subscribers=500, messages=20_000, batch=1_000, max_outbound=None,
                      rss_margin_mib=48, deadline=240)
