"""Key prefix, the persisted message on subscribe, the `ws4redis publish` CLI and the echo endpoint."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from pathlib import Path
from typing import Callable

import redis

from e2e_helpers import Server, open_client, receive_n, receive_one, run_async, wait_until, websocket_key
from lean_ws import client_frame, server_frame, upgrade_request


def test_key_prefix(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """With --prefix pfx the server listens on pfx:broadcast:f1 and not on broadcast:f1."""
    server = server_factory(mode, "--prefix", "pfx")

    async def body() -> None:
        ws = await open_client(server.url("f1"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1, "1 confirmed subscription")
            unprefixed = r.publish("broadcast:f1", "unprefixed")
            prefixed = r.publish("pfx:broadcast:f1", "prefixed")
            assert (unprefixed, prefixed) == (0, 1), (
                f"PUBLISH receivers: broadcast:f1 -> {unprefixed} (expected 0), pfx:broadcast:f1 -> {prefixed} (expected 1)"
            )
            first = await receive_one(ws, 10, "message on pfx:broadcast:f1")
            assert first == "prefixed", f"first message {first!r}, expected 'prefixed'"
        finally:
            await ws.close()

    run_async(body(), 30, "key prefix")


def receiver_count(output: str) -> int:
    """The receiver count `ws4redis publish` printed: the whole output, or the number next to "receiver"."""
    text = output.strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    m = re.search(r"(\d+)\s+receivers?\b", text, re.I) or re.search(r"\breceivers?\b\D{0,3}(\d+)", text, re.I)
    assert m, f"no receiver count in the output of ws4redis publish: {output!r}"
    return int(m.group(1))


def test_publish_cli(prefix: Path, redis_server, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """`ws4redis publish --expire 5` publishes, stores the message with a TTL and prints the receivers."""
    server = server_factory("standalone")
    cli = str(prefix / "bin" / "ws4redis")
    message = "hello from the cli ✓"

    async def body() -> None:
        ws = await open_client(server.url("cli"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1, "1 confirmed subscription")
            argv = [cli, "publish", "--redis", redis_server.url, "--facility", "cli", "--broadcast", "--expire", "5", message]
            done = subprocess.run(argv, capture_output=True, timeout=20)
            out = done.stdout.decode(errors="replace")
            assert done.returncode == 0, f"{argv} exited {done.returncode}: {out} {done.stderr.decode(errors='replace')}"
            assert receiver_count(out) >= 1, f"printed receiver count in {out!r}, expected >= 1"
            ttl = r.ttl("broadcast:cli")
            assert 0 < ttl <= 5, f"TTL of broadcast:cli is {ttl}, expected in (0, 5]"
            assert r.get("broadcast:cli") == message.encode()
            assert await receive_one(ws, 10, "message published by the CLI") == message
        finally:
            await ws.close()

    run_async(body(), 40, "publish CLI")

    # --prefix and --expire 0: the prefixed channel, nothing stored; a plain Redis subscriber counts.
    sub = redis_server.client().pubsub()
    try:
        sub.subscribe("pfx:broadcast:cli")
        wait_until(lambda: (m := sub.get_message(timeout=0.1)) and m["type"] == "subscribe", 10, "SUBSCRIBE confirmation")
        argv = [cli, "publish", "--redis", redis_server.url, "--prefix", "pfx", "--facility", "cli", "--broadcast", "--expire", "0", "p2"]
        done = subprocess.run(argv, capture_output=True, timeout=20)
        out = done.stdout.decode(errors="replace")
        assert done.returncode == 0, f"{argv} exited {done.returncode}: {out} {done.stderr.decode(errors='replace')}"
        assert receiver_count(out) == 1, f"printed receiver count in {out!r}, expected 1"
        m = wait_until(lambda: sub.get_message(timeout=0.1), 10, "the message on pfx:broadcast:cli")
        assert (m["channel"], m["data"]) == (b"pfx:broadcast:cli", b"p2")
        assert r.exists("pfx:broadcast:cli") == 0, "--expire 0 must not store the message"
    finally:
        sub.close()


def test_echo_endpoint(mode: str, server_factory: Callable[..., Server]) -> None:
    """--echo-path /echo: every text and binary message comes back with its type; fragments reassembled."""
    server = server_factory(mode, "--echo-path", "/echo")

    async def body() -> None:
        ws = await open_client(f"{server.ws_base}/echo")
        try:
            cases: list[str | bytes] = ["hello", "ünïcödé ✓", b"\x00\xff\x80binary", bytes(range(256)) * 400, "t" * 70_000]
            for sent in cases:
                await ws.send(sent)
                got = await receive_one(ws, 10, f"echo of {sent[:16]!r}")
                assert type(got) is type(sent), f"echo of {type(sent).__name__} {sent[:16]!r} came back as {type(got).__name__}"
                assert got == sent, f"echo of {sent[:16]!r} ({len(sent)}) came back as {got[:16]!r} ({len(got)})"
            await ws.send(iter(["frag1-", "frag2-", "frag3"]))  # one message in three frames
            got = await receive_one(ws, 10, "echo of a fragmented message")
            assert got == "frag1-frag2-frag3", f"fragmented message echoed as {got!r}"
        finally:
            await ws.close()

    run_async(body(), 30, "echo endpoint")


def test_persisted_message_sent_first(server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """A subscribe GETs the channel's key (prefixed) and sends its value before any live message."""
    server = server_factory("standalone", "--prefix", "pfx")
    r.set("pfx:broadcast:f2", "stored", ex=60)
    r.set("broadcast:f2", "wrong key: unprefixed", ex=60)

    async def body() -> None:
        ws = await open_client(server.url("f2"))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1, "1 confirmed subscription")
            r.publish("pfx:broadcast:f2", "live")
            got, why = await receive_n(ws, 2, timeout=10)
            assert got == ["stored", "live"], f"got {got!r} ({why}), expected the persisted message then the live one"
        finally:
            await ws.close()

    run_async(body(), 30, "persisted message")


def test_stored_messages_of_a_burst_of_handshakes(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """Handshakes that arrive together share their GETs (one per channel): each socket still gets
    exactly the stored messages of its own channels, first, and nothing where nothing is stored."""
    server = server_factory(mode)
    facilities = [f"burst{i}" for i in range(6)]
    for i, facility in enumerate(facilities[:4]):
        r.set(f"broadcast:{facility}", f"stored {i}", ex=60)
    sockets_per_facility = 6

    async def body() -> None:
        clients = await asyncio.gather(*(open_client(server.url(f)) for f in facilities for _ in range(sockets_per_facility)))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == len(clients), f"{len(clients)} confirmed subscriptions")
            for facility in facilities:
                r.publish(f"broadcast:{facility}", f"live {facility}")
            for index, ws in enumerate(clients):
                number = index // sockets_per_facility
                expected = ([f"stored {number}"] if number < 4 else []) + [f"live {facilities[number]}"]
                got, why = await receive_n(ws, len(expected), timeout=10)
                assert got == expected, f"socket {index} on {facilities[number]}: got {got!r} ({why}), expected {expected!r}"
        finally:
            await asyncio.gather(*(ws.close() for ws in clients))

    run_async(body(), 60, "stored messages of a burst of handshakes")


def test_own_message_sent_before_the_stored_ones_arrives_once(mode: str, server_factory: Callable[..., Server], r: redis.Redis) -> None:
    """A message sent with the handshake is published and stored while the client's stored messages
    are still being fetched: the fetch finds it, but the client gets it once (live, with echo)."""
    server = server_factory(mode)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        path = "/ws/own?subscribe-broadcast&publish-broadcast&echo"
        s.sendall(upgrade_request(server.port, path, websocket_key()) + client_frame(0x1, b"mine"))
        reader = s.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 101"), "handshake refused"
        while reader.readline() not in (b"\r\n", b""):
            pass
        assert reader.read(len(server_frame(b"mine"))) == server_frame(b"mine")
        wait_until(lambda: r.get("broadcast:own") == b"mine", 5, "the message stored")
        assert r.publish("broadcast:own", "marker") == 1
        assert reader.read(len(server_frame(b"marker"))) == server_frame(b"marker"), "the client got its own message twice"
