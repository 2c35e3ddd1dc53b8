"""The message protocol of the original: persisted messages, client publishing, echo, heartbeat,
protocol pings that close dead clients, and the settings sources (environment, --config file)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from pathlib import Path
from typing import Callable

import redis

from e2e_helpers import Server, close_all, open_client, raw_websocket, receive_n, receive_one, run_async, wait_until


def test_persisted_message_once_per_connection_and_not_after_expiry(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """A stored message reaches each new connection once, first; an expired one reaches nobody."""
    server = server_factory(mode)
    r.set("broadcast:p", "stored", ex=60)
    r.set("broadcast:q", "short-lived", px=300)

    async def body() -> None:
        first = await open_client(server.url("p"))
        try:
            assert await receive_one(first, 10, "persisted message at the first client") == "stored"
            await server.await_stats(lambda s: s["subscriptions"] == 1, "1 subscription")
            second = await open_client(server.url("p"))
            try:
                assert await receive_one(second, 10, "persisted message at the second client") == "stored"
                await server.await_stats(lambda s: s["subscriptions"] == 2, "2 subscriptions")
                r.publish("broadcast:p", "live")
                for name, ws in (("first", first), ("second", second)):
                    got = await receive_one(ws, 10, f"live message at the {name} client")
                    assert got == "live", f"the {name} client got {got!r}, expected 'live' (the persisted message only once)"
            finally:
                await second.close()
        finally:
            await first.close()

        # The key expires (Redis answers PTTL -2 once it is gone); a new subscriber gets nothing stored.
        await asyncio.to_thread(wait_until, lambda: r.pttl("broadcast:q") == -2, 5, "broadcast:q to expire")
        late = await open_client(server.url("q"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1, "1 subscription on q")
            r.publish("broadcast:q", "live-q")
            got = await receive_one(late, 10, "live message on q")
            assert got == "live-q", f"after expiry the new subscriber got {got!r} first, expected 'live-q'"
        finally:
            await late.close()

    run_async(body(), 40, "persisted messages")


def test_client_publishing(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """A client's data messages (text and binary, not empty) are published to its publish-* channels
    and stored with a TTL <= --expire; other subscribers get them, a Redis subscriber too."""
    server = server_factory(mode, "--expire", "30")
    sub = r.pubsub()

    async def body() -> None:
        writer = await open_client(server.url("cp", "publish-broadcast"))
        reader = await open_client(server.url("cp", "subscribe-broadcast"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1 and s["connections"] == 2, "1 subscription, 2 connections")
            await writer.send("hello ✓")
            assert await receive_one(reader, 10, "the writer's text message") == "hello ✓"
            assert r.get("broadcast:cp") == "hello ✓".encode(), f"broadcast:cp holds {r.get('broadcast:cp')!r}"
            ttl = r.ttl("broadcast:cp")
            assert 0 < ttl <= 30, f"TTL of broadcast:cp is {ttl}, expected in (0, 30] (--expire 30)"

            await writer.send(b"\x00\xffbinary")
            got = await receive_one(reader, 10, "the writer's binary message")
            assert got == b"\x00\xffbinary", f"binary message arrived as {got!r}"
            await writer.send("")  # empty: not published
            await writer.send("after the empty one")
            got = await receive_one(reader, 10, "the message after an empty one")
            assert got == "after the empty one", f"got {got!r}: an empty client message must not be published"
            assert r.get("broadcast:cp") == b"after the empty one"

            # A plain Redis subscriber (any program) sees the client's messages as they were sent.
            await asyncio.to_thread(sub.subscribe, "broadcast:cp")
            await asyncio.to_thread(wait_until, lambda: (m := sub.get_message(timeout=0.1)) and m["type"] == "subscribe", 10, "SUBSCRIBE")
            await writer.send(iter(["frag-", "mented"]))
            m = await asyncio.to_thread(wait_until, lambda: sub.get_message(timeout=0.1), 10, "the client's message at a Redis subscriber")
            assert (m["channel"], m["data"]) == (b"broadcast:cp", b"frag-mented"), f"Redis subscriber got {m}"
        finally:
            await close_all([writer, reader])

    try:
        run_async(body(), 30, "client publishing")
    finally:
        sub.close()


def test_echo(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """Without `echo` a client does not get back a message equal to the last one it sent (whoever
    publishes it); with `echo` it does."""
    server = server_factory(mode)
    both = "subscribe-broadcast&publish-broadcast"

    async def body() -> None:
        quiet = await open_client(server.url("e", both))
        loud = await open_client(server.url("e", both + "&echo"))
        observer = await open_client(server.url("e"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 3, "3 subscriptions")
            await quiet.send("from quiet")
            assert await receive_one(observer, 10, "quiet's message at the observer") == "from quiet"
            assert await receive_one(loud, 10, "quiet's message at loud") == "from quiet"
            # The same bytes published by another program: still held back from quiet.
            r.publish("broadcast:e", "from quiet")
            assert await receive_one(observer, 10, "the Redis copy at the observer") == "from quiet"
            r.publish("broadcast:e", "sentinel 1")
            got = await receive_one(quiet, 10, "sentinel at quiet")
            assert got == "sentinel 1", f"quiet received {got!r}: its own message came back without the echo flag"
            got, why = await receive_n(loud, 2, timeout=10)
            assert got == ["from quiet", "sentinel 1"], f"loud got {got!r} ({why}), expected the Redis copy and the sentinel"
            assert await receive_one(observer, 10, "sentinel at the observer") == "sentinel 1"

            await loud.send("from loud")
            assert await receive_one(loud, 10, "loud's own message (echo flag)") == "from loud"
            assert await receive_one(quiet, 10, "loud's message at quiet") == "from loud"
            assert await receive_one(observer, 10, "loud's message at the observer") == "from loud"
        finally:
            await close_all([quiet, loud, observer])

    run_async(body(), 30, "echo")


def test_heartbeat(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """--heartbeat: an idle connection gets the string every --heartbeat-interval; a client frame equal
    to it is dropped (not published, not stored). --expire 0: client messages are not stored."""
    hb = "--heartbeat--"
    server = server_factory(mode, "--heartbeat", hb, "--heartbeat-interval", "200", "--expire", "0")
    sub = r.pubsub()

    async def body() -> None:
        ws = await open_client(server.url("hb", "subscribe-broadcast&publish-broadcast"))
        try:
            start = time.monotonic()
            got, why = await receive_n(ws, 2, timeout=5)
            assert got == [hb, hb], f"an idle connection got {got!r} ({why}), expected two heartbeats"
            took = time.monotonic() - start
            assert took >= 0.2, f"two heartbeats within {took:.3f}s with --heartbeat-interval 200"

            await asyncio.to_thread(sub.subscribe, "broadcast:hb")
            await asyncio.to_thread(wait_until, lambda: (m := sub.get_message(timeout=0.1)) and m["type"] == "subscribe", 10, "SUBSCRIBE")
            await ws.send(hb)
            await ws.send("real")
            m = await asyncio.to_thread(wait_until, lambda: sub.get_message(timeout=0.1), 10, "the client's message at a Redis subscriber")
            assert m["data"] == b"real", f"first message published by the client: {m['data']!r}, expected b'real' (the heartbeat is dropped)"
            assert r.exists("broadcast:hb") == 0, "--expire 0: the client's message must not be stored"
        finally:
            await ws.close()

    try:
        run_async(body(), 30, "heartbeat")
    finally:
        sub.close()


def read_frames_until_closed(s: socket.socket, timeout: float) -> list[int]:
    """Reads server frames (never answering) until the server closes the connection; returns opcodes."""
    deadline = time.monotonic() + timeout
    data, opcodes = b"", []
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return opcodes
        if not chunk:
            return opcodes
        data += chunk
        while len(data) >= 2:
            length, offset = data[1] & 0x7F, 2
            if length == 126:
                if len(data) < 4:
                    break
                length, offset = struct.unpack("!H", data[2:4])[0], 4
            elif length == 127:
                if len(data) < 10:
                    break
                length, offset = struct.unpack("!Q", data[2:10])[0], 10
            if len(data) < offset + length:
                break
            opcodes.append(data[0] & 0x0F)
            data = data[offset + length:]
    raise AssertionError(f"the server did not close a client that never answers pings within {timeout}s (frames seen: {opcodes})")


def test_ping_timeout_closes_dead_clients(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """--ping-interval 200: a client that never answers pings is closed and its subscription released;
    a client that answers (websockets does automatically) stays."""
    server = server_factory(mode, "--ping-interval", "200")

    async def body() -> None:
        alive = await open_client(server.url("alive"))
        dead = await asyncio.to_thread(raw_websocket, server.port, "/ws/dead?subscribe-broadcast")
        try:
            await server.await_stats(lambda s: s["connections"] == 2 and s["subscriptions"] == 2, "2 connections")
            assert r.pubsub_numsub("broadcast:dead") == [(b"broadcast:dead", 1)]
            opcodes = await asyncio.to_thread(read_frames_until_closed, dead, 10)
            assert 0x9 in opcodes, f"the server closed the silent client without pinging it first (opcodes {opcodes})"
            await server.await_stats(lambda s: s["connections"] == 1 and s["subscriptions"] == 1, "the dead client gone", timeout=10)
            await asyncio.to_thread(wait_until, lambda: r.pubsub_numsub("broadcast:dead") == [(b"broadcast:dead", 0)], 10,
                                    "PUBSUB NUMSUB broadcast:dead to reach 0")
            r.publish("broadcast:alive", "still here")
            got = await receive_one(alive, 10, "message at the client that answers pings")
            assert got == "still here", f"the answering client got {got!r}"
        finally:
            dead.close()
            await alive.close()

    run_async(body(), 40, "ping timeout")


def test_settings_from_environment_and_config_file(mode: str, server_factory: Callable[..., Server], tmp_path: Path) -> None:
    """WS4REDIS_<NAME> and `--config FILE` (`name = value`) configure a server; the file overrides the
    environment."""
    config = tmp_path / "ws4redis.conf"
    config.write_text("# ws4redis settings\nheartbeat = from-the-file\n\n")
    server = server_factory(mode, "--config", str(config), env={"WS4REDIS_HEARTBEAT": "from-the-env", "WS4REDIS_HEARTBEAT_INTERVAL": "150"})

    async def body() -> None:
        ws = await open_client(server.url("cfg"))
        try:
            # Within 2 s: the interval of 150 ms came from the environment (the default is 4 s).
            got = await receive_one(ws, 2, "a heartbeat (string from the file, interval from WS4REDIS_HEARTBEAT_INTERVAL=150)")
            assert got == "from-the-file", f"heartbeat {got!r}, expected 'from-the-file' (--config overrides WS4REDIS_HEARTBEAT)"
        finally:
            await ws.close()

    run_async(body(), 20, "settings sources")
