"""Shared helpers of the end-to-end suite: ports, polling, the servers under test, websocket clients.

Everything here drives real processes and real sockets. Waiting is always bounded polling on a
condition with a deadline; a sleep never stands in for an assertion.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

MODES = ("standalone", "host", "plugin")

#: Figures the suite measures rather than asserts exactly (fds per connection): printed at the end.
FIGURES: list[str] = []

#: Upper bound for a server to answer /healthz after it was spawned.
STARTUP_TIMEOUT = 20.0
#: The contract: SIGTERM makes the server exit 0 within this many seconds.
STOP_TIMEOUT = 10.0


# Under a sanitizer (make sanitize) RSS measures its shadow memory and quarantine, not the server:
# memory bounds are reported but not asserted there.
MEMORY_BOUNDS = not os.environ.get("WS4R_SANITIZER")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerDied(AssertionError):
    """A server under test exited: polling for a condition on it stops at once."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Polls `predicate` until it returns a truthy value, which is returned; fails after `timeout` s.

    `what` describes the awaited condition for the failure message. The last value or exception the
    predicate produced is shown too.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except ServerDied:
            raise
        except Exception as exc:  # the condition may raise until it holds (e.g. connection refused)
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


async def async_wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """wait_until for coroutines: the blocking predicate runs in a thread so the loop keeps serving."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await asyncio.to_thread(predicate)
            if last:
                return last
        except ServerDied:
            raise
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)


# ---------------------------------------------------------------------------------------------
# HTTP


def http_get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection (closed afterwards): (status, headers lower-cased, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Connection": "close"}
        hdrs.update(headers or {})
        conn.request("GET", path, headers=hdrs)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    status, _, body = http_get(port, "/healthz", timeout=3.0)
    return status, json.loads(body) if body else {}


def loop_connections(server: Server) -> dict[str, int]:
    """ws4redis_loop_connections by loop, from /metrics."""
    status, _, body = http_get(server.port, "/metrics")
    assert status == 200, f"GET /metrics: {status}"
    found = re.findall(rb'^ws4redis_loop_connections\{loop="(\d+)"\} (\d+)', body, re.MULTILINE)
    return {loop.decode(): int(count) for loop, count in found}


def websocket_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_headers(version: str = "13") -> dict[str, str]:
    return {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": websocket_key(),
        "Sec-WebSocket-Version": version,
    }


# ---------------------------------------------------------------------------------------------
# Redis


class RedisServer:
    """A private redis-server process on 127.0.0.1:port, without persistence. start() waits for PING."""

    def __init__(self, port: int, directory: Path, extra_args: Sequence[str] = ()):
        self.port = port
        self.directory = directory
        self.extra_args = list(extra_args)
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def client(self, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 10)
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, **kwargs)

    def start(self) -> "RedisServer":
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed (make deps)"
        log = open(self.directory / "redis.log", "ab")
        argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.directory), *self.extra_args]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        client = self.client(socket_timeout=1)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise ServerDied(f"redis-server exited with {self.proc.returncode}: {(self.directory / 'redis.log').read_text()[-500:]}")
            return client.ping()

        try:
            wait_until(up, 10, f"redis-server on port {self.port} to answer PING", interval=0.05)
        finally:
            client.close()
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------------------------------------
# Apps the servers talk to


class LocalHTTPServer:
    """A real HTTP/1.1 server on a free loopback port that serves `handler` (a BaseHTTPRequestHandler
    class) on a thread per connection, in the background until close()."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------------------------
# The servers under test


def describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


class Server:
    """One server process under test: `ws4redis serve`, `ws4redis-host` or `ws4redis-host --plugin`."""

    def __init__(self, mode: str, prefix: Path, redis_url: str, log_path: Path, extra_args: Sequence[str] = (),
                 env: dict[str, str] | None = None):
        assert mode in MODES, mode
        self.extra_env = dict(env or {})
        self.env = {**os.environ, **env} if env else None
        self.mode = mode
        self.prefix = prefix
        self.redis_url = redis_url
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.timed_out = False
        self.exited_early = False
        bin_dir = prefix / "bin"
        common = ["--listen", f"127.0.0.1:{self.port}", "--redis", redis_url, "--threads", "2", *extra_args]
        if mode == "standalone":
            self.argv = [str(bin_dir / "ws4redis"), "serve", *common]
        elif mode == "host":
            self.argv = [str(bin_dir / "ws4redis-host"), *common]
        else:
            self.argv = [str(bin_dir / "ws4redis-host"), "--plugin", str(prefix / "lib" / "libws4redis.so"), *common]

    # -- life cycle

    def start(self) -> "Server":
        for path in (self.argv[0], *([self.argv[2]] if self.mode == "plugin" else [])):
            if not os.path.exists(path):
                raise AssertionError(f"{path} does not exist: run `make stage` (WS4R_PREFIX={self.prefix})")
        self._log = open(self.log_path, "ab")
        shown_env = "".join(f"{k}={v} " for k, v in self.extra_env.items())
        self._log.write(("$ " + shown_env + " ".join(self.argv) + "\n").encode())
        self._log.flush()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)

        def ready() -> bool:
            self.check_alive()
            return self.health()[0] == 200

        try:
            wait_until(ready, STARTUP_TIMEOUT, f"{self.mode} server to answer GET /healthz with 200", interval=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- server log ---\n{self.log_tail()}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def url(self, facility: str, flags: str = "subscribe-broadcast") -> str:
        return f"{self.ws_base}/ws/{facility}" + (f"?{flags}" if flags else "")

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Sends SIGTERM and waits for the exit. Returns the exit code, None if it did not exit in time
        (then it is killed). Idempotent: later calls return the first outcome."""
        if self.proc is None or self.returncode is not None or self.timed_out:
            return self.returncode
        if self.proc.poll() is not None:
            self.exited_early = True
        else:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.proc.kill()
            self.proc.wait()
        finally:
            self._log.close()
        return self.returncode

    def stop_and_check(self) -> None:
        """SIGTERM; asserts the process exits 0 within STOP_TIMEOUT."""
        code = self.terminate()
        assert not self.exited_early, f"{self.mode} server had exited by itself before SIGTERM: {describe_exit(code)}\n{self.log_tail()}"
        assert not self.timed_out, f"{self.mode} server did not exit within {STOP_TIMEOUT}s of SIGTERM (killed)\n{self.log_tail()}"
        assert code == 0, f"{self.mode} server {describe_exit(code)} after SIGTERM, expected exit 0\n{self.log_tail()}"

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerDied(f"{self.mode} server died: {describe_exit(self.proc.returncode)}\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- observation

    def health(self) -> tuple[int, dict[str, Any]]:
        """GET /healthz: status and JSON body (subclasses serving HTTPS override this)."""
        return healthz(self.port)

    def stats(self) -> dict[str, Any]:
        self.check_alive()
        status, body = self.health()
        assert status == 200, f"/healthz answered {status}: {body}"
        return body

    def wait_stats(self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 15.0) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> bool:
            nonlocal last
            last = self.stats()
            return predicate(last)

        try:
            wait_until(check, timeout, what, interval=0.03)
        except ServerDied:
            raise
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last /healthz: {last}") from None
        return last

    async def await_stats(self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 15.0) -> dict[str, Any]:
        return await asyncio.to_thread(self.wait_stats, predicate, what, timeout)

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


# ---------------------------------------------------------------------------------------------
# Websocket clients


async def open_client(url: str, **kwargs: Any) -> ClientConnection:
    """One websocket client. No client pings (they would only add noise); default permessage-deflate
    offer kept, as browsers send it."""
    kwargs.setdefault("open_timeout", 10)
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("close_timeout", 5)
    kwargs.setdefault("max_size", 16 * 1024 * 1024)
    return await connect(url, **kwargs)


async def open_clients(url: str, n: int, batch: int = 50, **kwargs: Any) -> list[ClientConnection]:
    """n clients on `url`, opened `batch` at a time (a 2-core server shares the machine with us)."""
    clients: list[ClientConnection] = []
    try:
        for start in range(0, n, batch):
            clients += await asyncio.gather(*(open_client(url, **kwargs) for _ in range(min(batch, n - start))))
    except BaseException:
        await close_all(clients)
        raise
    return clients


async def close_all(clients: Iterable[ClientConnection]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def receive_n(ws: ClientConnection, n: int, timeout: float) -> tuple[list[str | bytes], str | None]:
    """Receives up to n messages within `timeout` s. Returns (messages, why it stopped early or None)."""
    got: list[str | bytes] = []

    async def run() -> None:
        while len(got) < n:
            got.append(await ws.recv())

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        return got, f"timeout after {timeout}s"
    except ConnectionClosed as exc:
        return got, f"connection closed: {exc}"
    return got, None


async def receive_one(ws: ClientConnection, timeout: float, what: str) -> str | bytes:
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except TimeoutError:
        raise AssertionError(f"no message within {timeout}s: {what}") from None


def sequence_problem(got: Sequence[Any], expected: Sequence[Any]) -> str | None:
    """None when got == expected, else a short description (first divergence, missing, duplicates)."""
    if list(got) == list(expected):
        return None
    first = next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e), min(len(got), len(expected)))
    seen: set[Any] = set()
    dups = {g for g in got if g in seen or seen.add(g)}  # type: ignore[func-returns-value]
    missing = [e for e in expected if e not in seen]
    return (
        f"got {len(got)} messages, expected {len(expected)}; first difference at index {first}: "
        f"got {got[first:first + 3]!r}, expected {expected[first:first + 3]!r}; "
        f"{len(missing)} missing (first: {missing[:5]!r}); {len(dups)} duplicated (e.g. {sorted(dups, key=str)[:5]!r})"
    )


def assert_all_received(results: Sequence[tuple[list[Any], str | None]], expected: Sequence[Any], label: str = "client") -> None:
    problems = []
    for i, (got, why) in enumerate(results):
        problem = sequence_problem(got, expected)
        if problem:
            problems.append(f"{label} {i}: {problem}" + (f" ({why})" if why else ""))
    assert not problems, f"{len(problems)} of {len(results)} clients did not get exactly the expected messages:\n" + "\n".join(problems[:10])


def run_async(coro: Any, timeout: float, what: str) -> Any:
    """Runs a coroutine to completion in a fresh event loop, failing clearly after `timeout` s."""

    async def guarded() -> Any:
        try:
            return await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            raise AssertionError(f"test body timed out after {timeout}s: {what}") from None

    return asyncio.run(guarded())


# ---------------------------------------------------------------------------------------------
# Handshakes by hand (refusals with their bodies), identity


def raw_handshake(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Sends one websocket upgrade request for `path` (with the query) and reads the response head and,
    for a refusal, its body (Content-Length, else until EOF). Returns (status, headers lower-cased,
    body); the connection is closed afterwards (an accepted websocket just goes away)."""
    request_headers = {"Host": f"127.0.0.1:{port}", **upgrade_headers(), **(headers or {})}
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall((f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in request_headers.items()) + "\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, f"connection closed during the handshake of {path}: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        response_headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if status != 101:
            length = int(response_headers.get("content-length", "-1"))
            while length < 0 or len(body) < length:
                try:
                    chunk = s.recv(4096)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                body += chunk
        return status, response_headers, body


def assert_refused(port: int, path: str, status: int, body_contains: str | Sequence[str] = (), headers: dict[str, str] | None = None,
                   what: str = "") -> bytes:
    """The handshake of `path` is refused with `status` and a body mentioning each of `body_contains`
    (case-insensitive). Returns the body."""
    got, _, body = raw_handshake(port, path, headers)
    label = what or path
    assert got == status, f"{label}: handshake answered {got} (body {body[:200]!r}), expected {status}"
    needles = [body_contains] if isinstance(body_contains, str) else list(body_contains)
    missing = [n for n in needles if n.lower() not in body.decode(errors="replace").lower()]
    assert not missing, f"{label}: the {status} body {body[:300]!r} does not mention {missing}"
    return body


def raw_websocket(port: int, path: str, headers: dict[str, str] | None = None) -> socket.socket:
    """An accepted websocket opened by hand; the test decides what (if anything) it reads or answers.
    Nothing past the 101 response head is consumed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    request_headers = {"Host": f"127.0.0.1:{port}", **upgrade_headers(), **(headers or {})}
    s.sendall((f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in request_headers.items()) + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            s.close()
            raise AssertionError(f"connection closed during the handshake of {path}: {head!r}")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        s.close()
        raise AssertionError(f"handshake of {path} refused: {head!r}")
    return s


def original_publish(r: redis.Redis, message: str | bytes, facility: str, broadcast: bool = False, users: Sequence[str] = (),
                     groups: Sequence[str] = (), sessions: Sequence[str] = (), expire: int = 3600, prefix: str = "") -> int:
    """What django-websocket-redis's RedisPublisher.publish_message does, with redis-py: channels in the
    order broadcast, groups, users, sessions; PUBLISH, then SETEX when expire > 0. Returns receivers."""
    p = f"{prefix}:" if prefix else ""
    channels = ([f"{p}broadcast:{facility}"] if broadcast else []) + [f"{p}group:{g}:{facility}" for g in groups] + [
        f"{p}user:{u}:{facility}" for u in users] + [f"{p}session:{s}:{facility}" for s in sessions]
    receivers = 0
    for channel in channels:
        receivers += r.publish(channel, message)
        if expire > 0:
            r.execute_command("SETEX", channel, expire, message)  # the original's command (redis-py deprecates setex())
    return receivers
