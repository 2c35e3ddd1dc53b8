"""A lean websocket client on asyncio.Protocol, for tests with many clients or many messages.

The `websockets` library costs tens of microseconds per message; a thousand clients receiving a few
hundred messages a second each, or 500 clients receiving 20,000 messages each, would saturate the
test process long before the server. This client does the RFC 6455 handshake itself and then either
parses frames (`on_message` gets each data message) or, in stream mode, compares the raw bytes
after the 101 with an expected byte string (the exact frames the server must send), which costs one
memcmp per read. It answers pings, records the close frame's code, and tells an EOF from a reset.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from typing import Callable, Sequence

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(payload: bytes, opcode: int | None = None) -> bytes:
    """The frame the server sends for `payload` (unmasked, FIN, minimal length encoding as RFC 6455
    5.2 requires; text when valid UTF-8, else binary, unless `opcode` says otherwise)."""
    if opcode is None:
        try:
            payload.decode("utf-8")
            opcode = 0x1
        except UnicodeDecodeError:
            opcode = 0x2
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + struct.pack(">H", n)
    else:
        head = bytes([0x80 | opcode, 127]) + struct.pack(">Q", n)
    return head + payload


def client_frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, mask: bool = True,
                 claimed_length: int | None = None) -> bytes:
    """A client frame; every field can be made wrong on purpose (rsv bits, no mask, a length that
    does not match the payload)."""
    n = len(payload) if claimed_length is None else claimed_length
    b0 = (0x80 if fin else 0) | (rsv & 0x70) | (opcode & 0x0F)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    whole = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(whole, "big")).to_bytes(len(payload), "big")


def upgrade_request(port: int, path: str, key: str, extra_headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in extra_headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class LeanClient(asyncio.Protocol):
    """One websocket. Await `opened` (the 101 arrived, or an exception) and `lost` (the connection
    ended: None for a clean EOF, else the exception, e.g. ConnectionResetError)."""

    def __init__(self, port: int, path: str, on_message: Callable[[int, bytes], None] | None = None,
                 expected_stream: bytes | memoryview | None = None):
        loop = asyncio.get_running_loop()
        self.port = port
        self.path = path
        self.on_message = on_message
        self.expected = memoryview(expected_stream) if expected_stream is not None else None
        self.matched = 0  # stream mode: bytes after the 101 equal to the expected stream so far
        self.mismatch: str | None = None  # stream mode: where and how the stream diverged
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.head = b""
        self.buf = bytearray()
        self.close_code: int | None = None  # the code of the server's close frame, if one came
        self.close_reason = b""
        self.eof = False
        self.sent_close = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(upgrade_request(self.port, self.path, self.key))

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > 65536:
                    self.opened.set_exception(AssertionError(f"no end of the response head: {self.head[:200]!r}"))
                    self.transport.close()
                return
            head, data = self.head[:end], self.head[end + 4:]
            self.head = head
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(AssertionError(f"handshake of {self.path} refused: {head[:300]!r}"))
                self.transport.close()
                return
            accept = base64.b64encode(hashlib.sha1(self.key.encode() + WS_GUID).digest())
            if b"sec-websocket-accept: " + accept.lower() not in head.lower():
                self.opened.set_exception(AssertionError(f"wrong or missing Sec-WebSocket-Accept: {head!r}"))
                self.transport.close()
                return
            self.opened.set_result(None)
            if not data:
                return
        if self.expected is not None:
            self._compare(data)
        else:
            self.buf += data
            self._parse()

    def eof_received(self) -> bool:
        self.eof = True
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(AssertionError(f"connection lost during the handshake of {self.path}: {exc!r} {self.head[:200]!r}"))
        if not self.lost.done():
            self.lost.set_result(exc)

    # -- receiving

    def _compare(self, data: bytes) -> None:
        if self.mismatch is not None:
            return
        n = len(data)
        expected = self.expected[self.matched:self.matched + n]
        if expected == data:
            self.matched += n
            return
        at = next((i for i in range(min(n, len(expected))) if expected[i] != data[i]), min(n, len(expected)))
        self.mismatch = (f"stream differs at byte {self.matched + at} of {len(self.expected)}: got {bytes(data[at:at + 24])!r}, "
                         f"expected {bytes(expected[at:at + 24])!r}")
        # A close frame in place of data is the usual reason: record its code if it is one.
        tail = data[at:]
        if len(tail) >= 4 and tail[0] == 0x88:
            self.close_code = struct.unpack(">H", tail[2:4])[0]

    def _parse(self) -> None:
        buf = self.buf
        pos = 0
        while True:
            if len(buf) - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            hlen = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n = struct.unpack_from(">H", buf, pos + 2)[0]
                hlen = 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n = struct.unpack_from(">Q", buf, pos + 2)[0]
                hlen = 10
            if b1 & 0x80:
                hlen += 4  # a masked server frame is a protocol error; parse it anyway, the test sees it
            if len(buf) - pos < hlen + n:
                break
            payload = bytes(buf[pos + hlen:pos + hlen + n])
            pos += hlen + n
            opcode = b0 & 0x0F
            if opcode == 0x8:
                self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_reason = payload[2:]
                if not self.sent_close and self.transport is not None and not self.transport.is_closing():
                    self.sent_close = True
                    self.transport.write(client_frame(0x8, payload[:2]))
            elif opcode == 0x9:
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.write(client_frame(0xA, payload))
            elif opcode in (0x1, 0x2) and self.on_message is not None:
                self.on_message(opcode, payload)
        if pos:
            del buf[:pos]

    # -- sending, closing

    def send(self, opcode: int, payload: bytes) -> None:
        self.transport.write(client_frame(opcode, payload))

    def write_raw(self, data: bytes) -> None:
        self.transport.write(data)

    async def close(self, timeout: float = 5.0) -> None:
        """A close handshake (1000); the server closes the TCP connection. Aborts after `timeout`."""
        if self.transport is None:
            return
        if not self.transport.is_closing() and not self.sent_close:
            self.sent_close = True
            self.transport.write(client_frame(0x8, struct.pack(">H", 1000)))
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), timeout)
        except TimeoutError:
            self.transport.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    @property
    def is_open(self) -> bool:
        return self.opened.done() and not self.opened.exception() and not self.lost.done()


async def open_lean(port: int, path: str, timeout: float = 10.0, rcvbuf: int | None = None, **kwargs) -> LeanClient:
    loop = asyncio.get_running_loop()
    sock = None
    if rcvbuf is not None:
        import socket

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        _, client = await loop.create_connection(lambda: LeanClient(port, path, **kwargs), sock=sock)
    else:
        _, client = await loop.create_connection(lambda: LeanClient(port, path, **kwargs), "127.0.0.1", port)
    try:
        await asyncio.wait_for(asyncio.shield(client.opened), timeout)
    except BaseException:
        client.abort()
        raise
    return client


async def open_lean_many(port: int, paths: Sequence[str], batch: int = 100, **kwargs) -> list[LeanClient]:
    """One client per path, `batch` handshakes at a time; on failure every opened one is aborted."""
    clients: list[LeanClient] = []
    try:
        for start in range(0, len(paths), batch):
            clients += await asyncio.gather(*(open_lean(port, p, **kwargs) for p in paths[start:start + batch]))
    except BaseException:
        for c in clients:
            c.abort()
        raise
    return clients


async def close_lean_all(clients: Sequence[LeanClient], timeout: float = 10.0) -> None:
    await asyncio.gather(*(c.close(timeout) for c in clients), return_exceptions=True)
