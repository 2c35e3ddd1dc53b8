"""wss:// and https:// served by ws4redis-host itself (--tls-cert, --tls-key: libmicrohttpd with
GnuTLS), with a self-signed certificate made by the test and clients that trust only it."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis
from websockets.asyncio.client import ClientConnection

from e2e_helpers import (FIGURES, STOP_TIMEOUT, RedisServer, Server, close_all, open_client, open_clients,
                         receive_n, receive_one, run_async, wait_until)
from robust_helpers import settled_fd_count
from tls_helpers import Certificate, https_get, https_healthz, self_signed_certificate

HOST_MODES = ("host", "plugin")
#: Descriptors a TLS websocket costs the host: the TCP socket, both ends of MHD's socketpair, the core's dup.
FDS_PER_TLS_WEBSOCKET = 4
SLACK = 5  # fds the server may open for itself meanwhile (a transient /healthz connection)


class TlsHost(Server):
    """ws4redis-host serving HTTPS with `certificate`; ready when https://.../healthz answers 200."""

    def __init__(self, mode: str, prefix: Path, redis_url: str, log_path: Path, certificate: Certificate, *extra_args: str):
        super().__init__(mode, prefix, redis_url, log_path,
                         ("--tls-cert", str(certificate.certificate), "--tls-key", str(certificate.key), *extra_args))
        self.context = certificate.client_context()

    def health(self) -> tuple[int, dict[str, Any]]:
        return https_healthz(self.port, self.context)

    @property
    def ws_base(self) -> str:
        return f"wss://127.0.0.1:{self.port}"

    async def client(self, facility: str, flags: str = "subscribe-broadcast", **kwargs: Any) -> ClientConnection:
        return await open_client(self.url(facility, flags), ssl=self.context, **kwargs)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=HOST_MODES)
def tls_factory(request: pytest.FixtureRequest, prefix: Path, redis_server: RedisServer, certificate: Certificate,
                tmp_path: Path) -> Iterator[Callable[..., TlsHost]]:
    """start(*extra_args) -> a running TlsHost; each must exit 0 within 10 s of SIGTERM at teardown."""
    hosts: list[TlsHost] = []
    request.node._ws4r_servers = hosts

    def start(*extra_args: str) -> TlsHost:
        host = TlsHost(request.param, prefix, redis_server.url, tmp_path / f"tls-{len(hosts)}.log", certificate, *extra_args)
        hosts.append(host)
        return host.start()

    yield start
    failures = []
    for host in hosts:
        try:
            host.stop_and_check()
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n\n".join(failures)


def test_https_and_wss_traffic(tls_factory: Callable[..., TlsHost], r: redis.Redis) -> None:
    """https /healthz; over wss: a message published to Redis reaches every subscriber, a client's
    message is published (echo on), large binary messages cross the relay intact; a client that does
    not trust the certificate is refused by TLS."""
    host = tls_factory()
    status, body = https_get(host.port, "/healthz", host.context)
    assert status == 200 and b'"status":"ok"' in body, f"https /healthz: {status} {body!r}"

    async def body_() -> None:
        flags = "subscribe-broadcast&publish-broadcast&echo"
        clients = [await host.client("secure", flags) for _ in range(3)]
        try:
            await host.await_stats(lambda s: s["subscriptions"] == 3, "3 confirmed subscriptions over wss")
            assert r.publish("broadcast:secure", "from redis") == 1, "one Redis subscription for the facility"
            for i, client in enumerate(clients):
                assert await receive_one(client, 10, f"client {i}: the message published to Redis") == "from redis"
            await clients[0].send("from a client")
            for i, client in enumerate(clients):
                assert await receive_one(client, 10, f"client {i}: client 0's message") == "from a client"
            large = os.urandom(256 * 1024)
            await clients[1].send(large)
            results = await asyncio.gather(*(receive_n(c, 1, 15) for c in clients))
            assert all(got == [large] for got, _ in results), \
                f"256 KiB binary message: {[(len(got), [len(m) for m in got], why) for got, why in results]}"
        finally:
            await close_all(clients)
        with pytest.raises(ssl.SSLCertVerificationError):
            await open_client(host.url("secure"), ssl=ssl.create_default_context())

    run_async(body_(), 60, "wss traffic")


def test_fds_back_after_clients_leave(tls_factory: Callable[..., TlsHost]) -> None:
    """Clients leaving with a close handshake, a bare FIN or a RST: the host ends up with the
    descriptors it had before. libmicrohttpd's TLS relay does not pass a client's hang-up on to the
    core, so the ones without a close handshake go at the core's next protocol ping."""
    host = tls_factory("--ping-interval", "500")
    host.wait_stats(lambda s: s["redis_connected"], "redis_connected")
    before = settled_fd_count(host)
    n = 30

    async def body() -> tuple[int, int]:
        clients = await open_clients(host.url("fds"), n, ssl=host.context)
        await host.await_stats(lambda s: s["subscriptions"] == n, f"{n} confirmed subscriptions")
        during = await asyncio.to_thread(settled_fd_count, host)
        for i, client in enumerate(clients):
            if i % 3 == 1:
                client.transport.close()  # FIN without a close frame
            elif i % 3 == 2:
                client.transport.abort()  # RST
        await close_all(clients[0::3])
        await host.await_stats(lambda s: s["connections"] == 0, "connections == 0 after every client left")
        after = await asyncio.to_thread(
            wait_until, lambda: (count := host.fd_count()) <= before + SLACK and count, 10, f"fds back to at most {before} + {SLACK}")
        return during, after

    during, after = run_async(body(), 60, "fds of TLS websockets")
    figure = f"fds TLS {host.mode}: {before} idle, {during} with {n} wss clients ({(during - before) / n:.2f} per client), {after} after they left"
    FIGURES.append(figure)
    assert during - before >= n, f"{figure}: fewer fds than websockets? the measurement is wrong"
    assert during - before <= FDS_PER_TLS_WEBSOCKET * n + SLACK, f"{figure}: more than {FDS_PER_TLS_WEBSOCKET} fds per TLS websocket"


def test_clean_shutdown_with_open_websockets(tls_factory: Callable[..., TlsHost]) -> None:
    """SIGTERM with wss clients open: each gets 1001 through the TLS relay, the host exits 0 and
    libmicrohttpd finds no upgraded connection left open by the application."""
    host = tls_factory()

    async def body() -> int | None:
        clients = [await host.client("stop") for _ in range(5)]
        try:
            await host.await_stats(lambda s: s["subscriptions"] == 5, "5 confirmed subscriptions")
            code = await asyncio.to_thread(host.terminate)
            await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in clients)), 5)
        finally:
            await close_all(clients)
        received = [c.protocol.close_rcvd.code if c.protocol.close_rcvd else None for c in clients]
        assert received == [1001] * 5, f"close codes received: {received}"
        return code

    code = run_async(body(), STOP_TIMEOUT + 20, "shutdown with wss clients")
    assert code == 0, f"exit code {code} after SIGTERM (None: not within {STOP_TIMEOUT}s)\n{host.log_tail()}"
    assert "upgraded" not in host.log_tail(), f"libmicrohttpd complained about an upgraded connection:\n{host.log_tail()}"


@pytest.mark.parametrize(
    "args, env, status, message",
    [
        (["--tls-cert", "{cert}"], {}, 2, "--tls-cert and --tls-key go together"),
        ([], {"WS4REDIS_TLS_KEY": "{key}"}, 2, "--tls-cert and --tls-key go together"),
        (["--tls-cert", "{missing}", "--tls-key", "{key}"], {}, 1, "cannot open the TLS certificate"),
        (["--tls-cert", "{key}", "--tls-key", "{cert}"], {}, 1, "with the TLS certificate and key given"),
    ],
    ids=["cert-without-key", "key-from-env-without-cert", "missing-file", "swapped-files"],
)
def test_tls_options_refused(prefix: Path, certificate: Certificate, redis_server: RedisServer, tmp_path: Path,
                             args: list[str], env: dict[str, str], status: int, message: str) -> None:
    """Wrong TLS options stop the host at start-up with a message naming the problem."""
    names = {"cert": str(certificate.certificate), "key": str(certificate.key), "missing": str(tmp_path / "none.pem")}
    argv = [str(prefix / "bin" / "ws4redis-host"), "--listen", "127.0.0.1:0", "--redis", redis_server.url,
            *(a.format(**names) for a in args)]
    environment = {**os.environ, **{k: v.format(**names) for k, v in env.items()}}
    result = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=STOP_TIMEOUT)
    assert result.returncode == status and message in result.stderr, \
        f"exit {result.returncode} (expected {status}), stderr {result.stderr!r} (expected to mention {message!r})"
