"""Fan-out from Redis to many websockets, in each of the three modes (standalone, host, plugin)."""

from __future__ import annotations

import asyncio
import re
from typing import Callable

import redis

from e2e_helpers import (
    Server,
    assert_all_received,
    async_wait_until,
    close_all,
    http_get,
    loop_connections,
    open_client,
    open_clients,
    receive_n,
    receive_one,
    run_async,
    sequence_problem,
    wait_until,
)


def publish_sequence(r: redis.Redis, channel: str, first: int, last: int) -> list[int]:
    """PUBLISH channel "<seq>" for seq in first..last, one command at a time; returns the replies."""
    return [r.publish(channel, str(seq)) for seq in range(first, last + 1)]


def test_fanout_100_clients_in_order(server: Server, r: redis.Redis) -> None:
    """100 clients on f1 each get 1..1000 exactly and in order; a client on `other` gets none of it."""
    n_clients, n_messages = 100, 1000
    expected = [str(i) for i in range(1, n_messages + 1)]

    async def body() -> None:
        clients = await open_clients(server.url("f1"), n_clients)
        other = await open_client(server.url("other"))
        try:
            await server.await_stats(
                lambda s: s["subscriptions"] == n_clients + 1 and s["connections"] == n_clients + 1,
                f"{n_clients + 1} confirmed subscriptions",
            )
            receivers = [asyncio.create_task(receive_n(c, n_messages, timeout=30)) for c in clients]
            replies = await asyncio.to_thread(publish_sequence, r, "broadcast:f1", 1, n_messages)
            assert set(replies) == {1}, f"PUBLISH broadcast:f1 reached {set(replies)} subscribers, expected 1 (the server)"
            assert_all_received(await asyncio.gather(*receivers), expected)

            # Nothing after the 1000th either: the next message each f1 client gets is this sentinel.
            r.publish("broadcast:f1", "end-f1")
            nexts = await asyncio.gather(*(receive_one(c, 10, "sentinel on f1") for c in clients))
            assert nexts == ["end-f1"] * n_clients, f"unexpected extra messages on f1: {[m for m in nexts if m != 'end-f1'][:5]!r}"

            # The `other` client got nothing of f1: its first message is the sentinel of its own channel.
            r.publish("broadcast:other", "sentinel-other")
            first = await receive_one(other, 10, "sentinel on other")
            assert first == "sentinel-other", f"the client on facility `other` received {first!r} from another facility"

            await server.await_stats(
                lambda s: s["messages_in"] == n_messages + 2
                and s["messages_out"] == n_clients * (n_messages + 1) + 1
                and s["connections_total"] == n_clients + 1,
                f"messages_in == {n_messages + 2}, messages_out == {n_clients * (n_messages + 1) + 1}, connections_total == {n_clients + 1}",
                timeout=5,
            )
        finally:
            await close_all([*clients, other])
        await server.await_stats(lambda s: s["connections"] == 0, "connections == 0 after every client closed")

    run_async(body(), 120, "100-client fan-out")


def test_disconnect_mid_stream_does_not_disturb_others(server: Server, r: redis.Redis) -> None:
    """Of 10 clients, one closes cleanly after 100 messages and one drops its TCP connection after 50,
    while messages are still queued for them; the other 8 get all 500, in order."""
    total, half = 500, 250
    expected = [str(i) for i in range(1, total + 1)]

    async def leave_after(ws, count: int, abrupt: bool) -> list:
        got, why = await receive_n(ws, count, timeout=20)
        assert why is None, f"leaving client got {len(got)} of {count} before leaving: {why}"
        if abrupt:
            ws.transport.abort()  # no close frame: the server sees a reset / EOF
        else:
            await ws.close()
        return got

    async def body() -> None:
        # The leavers buffer without limit, so that their closing handshake is not stuck behind the
        # messages they did not read (the client library stops reading when its queue is full).
        clients = await open_clients(server.url("f1"), 2, max_queue=None)
        try:
            clients += await open_clients(server.url("f1"), 8)
            await server.await_stats(lambda s: s["subscriptions"] == 10, "10 confirmed subscriptions")
            stayers = clients[2:]
            receivers = [asyncio.create_task(receive_n(c, total, timeout=30)) for c in stayers]
            leavers = [
                asyncio.create_task(leave_after(clients[0], 100, abrupt=False)),
                asyncio.create_task(leave_after(clients[1], 50, abrupt=True)),
            ]
            # Phase 1: more than the leavers read, so the server still has data queued for them.
            await asyncio.to_thread(publish_sequence, r, "broadcast:f1", 1, half)
            await asyncio.gather(*leavers)
            await server.await_stats(
                lambda s: s["connections"] == 8 and s["subscriptions"] == 8, "the 2 leavers to be gone (connections == 8)"
            )
            # Phase 2: after they left.
            await asyncio.to_thread(publish_sequence, r, "broadcast:f1", half + 1, total)
            assert_all_received(await asyncio.gather(*receivers), expected, label="remaining client")
        finally:
            await close_all(clients)

    run_async(body(), 90, "disconnect mid-stream")


def test_one_redis_subscription_per_channel(server: Server, r: redis.Redis) -> None:
    """Many sockets on one channel share ONE Redis subscription, released when the last one leaves."""

    def numsub(channel: str) -> int:
        return dict(r.pubsub_numsub(channel))[channel.encode()]

    async def body() -> None:
        clients = await open_clients(server.url("f1"), 5)
        try:
            stats = await server.await_stats(lambda s: s["subscriptions"] == 5, "5 confirmed subscriptions")
            assert stats["channels"] == 1, f"healthz channels == {stats['channels']}, expected 1"
            assert numsub("broadcast:f1") == 1, "PUBSUB NUMSUB broadcast:f1 with 5 clients connected"

            for c in clients[:4]:
                await c.close()
            await server.await_stats(lambda s: s["subscriptions"] == 1 and s["connections"] == 1, "1 remaining subscription")
            assert numsub("broadcast:f1") == 1, "PUBSUB NUMSUB broadcast:f1 with 1 client left"

            await clients[4].close()
            await server.await_stats(lambda s: s["channels"] == 0 and s["subscriptions"] == 0, "channels == 0 after the last client left")
            await asyncio.to_thread(wait_until, lambda: numsub("broadcast:f1") == 0, 10, "PUBSUB NUMSUB broadcast:f1 to drop to 0")

            # A new client subscribes again (the channel was released, not leaked in a half state).
            again = await open_client(server.url("f1"))
            clients.append(again)
            await server.await_stats(lambda s: s["subscriptions"] == 1, "re-subscription")
            assert numsub("broadcast:f1") == 1
            r.publish("broadcast:f1", "again")
            assert await receive_one(again, 10, "message after re-subscribing") == "again"
        finally:
            await close_all(clients)

    run_async(body(), 60, "one subscription per channel")


def test_pipelined_burst_reaches_everyone(server: Server, r: redis.Redis) -> None:
    """1000 PUBLISHes in one pipeline (one write, one burst of replies) all reach each of 20 clients."""
    n_clients, n_messages = 20, 1000
    expected = [str(i) for i in range(1, n_messages + 1)]

    def burst() -> list[int]:
        pipe = r.pipeline(transaction=False)
        for i in range(1, n_messages + 1):
            pipe.publish("broadcast:f1", str(i))
        return pipe.execute()

    async def body() -> None:
        clients = await open_clients(server.url("f1"), n_clients)
        try:
            await server.await_stats(lambda s: s["subscriptions"] == n_clients, f"{n_clients} confirmed subscriptions")
            receivers = [asyncio.create_task(receive_n(c, n_messages, timeout=30)) for c in clients]
            replies = await asyncio.to_thread(burst)
            assert set(replies) == {1}, f"pipelined PUBLISH replies {set(replies)}, expected all 1"
            assert_all_received(await asyncio.gather(*receivers), expected)
        finally:
            await close_all(clients)

    run_async(body(), 90, "pipelined burst")


def test_binary_and_text_frames(server: Server, r: redis.Redis) -> None:
    """Invalid UTF-8 arrives as a binary frame with the same bytes; valid UTF-8 arrives as text."""
    small_binary = b"\x00\xff\xfe\x80binary\xc3"
    big_binary = bytes((i * 7 + 0x80) % 256 for i in range(70_000))  # > 65535: 64-bit frame length
    text = "héllo wörld ✓ 🚀"
    big_text = "x" * 100_000
    payloads: list[str | bytes] = [small_binary, text, big_binary, big_text, "plain ascii"]

    async def body() -> None:
        ws = await open_client(server.url("f1"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1, "1 confirmed subscription")
            for p in payloads:
                r.publish("broadcast:f1", p.encode() if isinstance(p, str) else p)
            got, why = await receive_n(ws, len(payloads), timeout=15)
            assert why is None, f"received {len(got)} of {len(payloads)}: {why}"
            for sent, received in zip(payloads, got):
                kind = "text (str)" if isinstance(sent, str) else "binary (bytes)"
                assert type(received) is type(sent), (
                    f"payload {sent[:20]!r}... should arrive as {kind}, got {type(received).__name__}"
                )
                assert received == sent, f"payload changed: sent {sent[:20]!r}... ({len(sent)}), got {received[:20]!r}... ({len(received)})"
            problem = sequence_problem(got, payloads)
            assert problem is None, problem
        finally:
            await ws.close()

    run_async(body(), 45, "binary and text frames")


def test_facilities_and_flags(server: Server, r: redis.Redis) -> None:
    """Facility = rest of the path (slashes kept, `/ws/` is the empty one); flags are query names,
    case-insensitive, values and unknown names ignored; no subscribe flag: no subscription. 30 more
    facilities each get only their own message (one Redis channel each)."""

    async def body() -> None:
        named = {
            "a/b": await open_client(f"{server.ws_base}/ws/a/b?subscribe-broadcast"),
            "x upper": await open_client(f"{server.ws_base}/ws/x?SUBSCRIBE-Broadcast"),
            "x valued": await open_client(f"{server.ws_base}/ws/x?foo=1&subscribe-broadcast=yes"),
            "empty": await open_client(f"{server.ws_base}/ws/?subscribe-broadcast"),
        }
        silent = await open_client(f"{server.ws_base}/ws/x")
        many = [await open_client(server.url(f"m{i}")) for i in range(30)]
        try:
            await server.await_stats(
                lambda s: s["connections"] == 35 and s["subscriptions"] == 34 and s["channels"] == 33,
                "35 connections, 34 subscriptions on 33 channels (the flag-less client subscribes to nothing)",
            )
            numsub = dict(r.pubsub_numsub(*[f"broadcast:m{i}" for i in range(30)], "broadcast:a/b", "broadcast:x", "broadcast:"))
            assert set(numsub.values()) == {1}, f"PUBSUB NUMSUB: {numsub}"
            for i in reversed(range(30)):
                r.publish(f"broadcast:m{i}", f"to-m{i}")
            for channel, message in (("broadcast:a/b", "to-ab"), ("broadcast:x", "to-x"), ("broadcast:", "to-empty")):
                assert r.publish(channel, message) == 1
            expected = {"a/b": "to-ab", "x upper": "to-x", "x valued": "to-x", "empty": "to-empty"}
            for name, ws in named.items():
                got = await receive_one(ws, 10, f"message for {name}")
                assert got == expected[name], f"client {name} got {got!r}, expected {expected[name]!r}"
            firsts = await asyncio.gather(*(receive_one(ws, 10, f"message for m{i}") for i, ws in enumerate(many)))
            wrong = [(i, m) for i, m in enumerate(firsts) if m != f"to-m{i}"]
            assert not wrong, f"clients of facility m<i> got other facilities' messages: {wrong[:5]}"
        finally:
            await close_all([*named.values(), silent, *many])

    run_async(body(), 60, "facilities and flags")


def test_websockets_land_on_every_event_loop(server: Server) -> None:
    """With two event loops (--threads 2) the websockets are spread over both: a host once gave
    every adopted socket the same loop, because the handshake's decision and the adoption each took
    the next loop of the round robin."""
    n_clients = 20

    async def body() -> None:
        clients = await open_clients(server.url("loops"), n_clients)
        try:
            await server.await_stats(lambda s: s["connections"] == n_clients, f"{n_clients} connections")
            by_loop = loop_connections(server)
            assert sorted(by_loop) == ["0", "1"] and sum(by_loop.values()) == n_clients, f"connections by loop: {by_loop}"
            assert min(by_loop.values()) >= n_clients // 4, f"one loop holds nearly every websocket: {by_loop}"
        finally:
            await close_all(clients)

    run_async(body(), 60, "websockets on every loop")


def numsub(r: redis.Redis, channel: str) -> int:
    return int(r.pubsub_numsub(channel)[0][1])


def test_a_channel_lingers_after_its_last_subscriber(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """--subscription-linger 1500: the channel of a socket that left stays subscribed, a socket that
    comes back within the linger gets live messages without a new SUBSCRIBE, nothing reaches the one
    that left, and PUBSUB NUMSUB drops to 0 once the linger passed. Off by default: at once then."""
    server = server_factory(mode, "--subscription-linger", "1500")
    default = server_factory(mode)
    channel = "broadcast:linger"

    async def body() -> None:
        for target, lingers in ((server, True), (default, False)):
            first = await open_client(target.url("linger"))
            await target.await_stats(lambda s: s["subscriptions"] == 1, "the first socket's subscription")
            await first.close()
            await target.await_stats(lambda s: s["connections"] == 0, "the first socket gone")
            if not lingers:
                await async_wait_until(lambda: numsub(r, channel) == 0, 5, "the default unsubscribes at once")
                continue
            assert numsub(r, channel) == 1, "still subscribed while it lingers"
            assert r.publish(channel, "to nobody") == 1
            reload = await open_client(target.url("linger"))
            await target.await_stats(lambda s: s["subscriptions"] == 1, "the reload's subscription")
            r.publish(channel, "live")
            assert await receive_one(reload, 10, "the reload") == "live", "the reload gets live messages, not the earlier one"
            _, _, metrics = http_get(target.port, "/metrics")
            assert re.search(rb"^ws4redis_lingering_channels_taken_total 1\b", metrics, re.MULTILINE), metrics[-2000:]
            await reload.close()
            await target.await_stats(lambda s: s["connections"] == 0, "the reload gone")
            await async_wait_until(lambda: numsub(r, channel) == 0, 10, "UNSUBSCRIBE once the linger passed")

    run_async(body(), 60, "linger")
