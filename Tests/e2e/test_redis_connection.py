"""WS4REDIS_CONNECTION's forms: password, ACL user, database, unix socket and TLS, each against a
redis-server started for the test, through the standalone server and the host."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis

from e2e_helpers import MODES, Server, free_port, http_get, open_client, receive_one, run_async, wait_until

CONNECTION_MODES = ["standalone", "host"]


class PrivateRedis:
    """A redis-server with extra arguments; `client()` connects the way the arguments require."""

    def __init__(self, directory: Path, args: list[str], client_kwargs: dict):
        self.directory = directory
        self.port = free_port()
        self.client_kwargs = client_kwargs
        log = open(directory / "redis.log", "ab")
        argv = [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(directory), *args]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(self._answers, 10, "the private redis-server to answer PING", interval=0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(**{"host": "127.0.0.1", "port": self.port, "socket_timeout": 10, **self.client_kwargs})

    def _answers(self) -> bool:
        assert self.proc.poll() is None, (self.directory / "redis.log").read_text()[-800:]
        try:
            return self.client().ping()
        except redis.exceptions.ConnectionError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[..., PrivateRedis]]:
    started: list[PrivateRedis] = []

    def start(args: list[str], **client_kwargs) -> PrivateRedis:
        server = PrivateRedis(tmp_path, args, client_kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def assert_degraded_after_attempts(server: Server, redis_server: PrivateRedis) -> None:
    """Redis has seen the server try (twice, so one retry after back-off), and the server says degraded, still serving."""
    client = redis_server.client()
    wait_until(lambda: client.info("stats")["total_connections_received"] >= 4, 15, "the server to try Redis repeatedly")
    body = server.stats()
    assert body["status"] == "degraded" and body["redis_connected"] is False, body


def delivered(server: Server, publisher: redis.Redis, channel: str, facility: str) -> None:
    """A websocket on the facility receives what `publisher` publishes on `channel`."""

    async def body() -> None:
        ws = await open_client(server.url(facility))
        try:
            await server.await_stats(lambda s: s["subscriptions"] == 1 and s["redis_connected"], "a confirmed subscription")
            publisher.publish(channel, "over-this-connection")
            assert await receive_one(ws, 10, f"a message on {channel}") == "over-this-connection"
        finally:
            await ws.close()

    run_async(body(), 30, f"delivery through {server.redis_url}")


@pytest.mark.parametrize("mode", CONNECTION_MODES)
def test_password_and_database(mode: str, server_factory, private_redis) -> None:
    redis_server = private_redis(["--requirepass", "s3cret pass"], password="s3cret pass", db=3)
    client = redis_server.client()
    client.set("broadcast:pw", "stored-in-db-3", ex=60)
    server = server_factory(mode, redis_url=f"redis://:s3cret%20pass@127.0.0.1:{redis_server.port}/3")

    async def body() -> None:
        ws = await open_client(server.url("pw"))
        try:
            assert await receive_one(ws, 10, "the message stored in database 3") == "stored-in-db-3"
        finally:
            await ws.close()

    run_async(body(), 30, "persisted message from database 3")
    client.delete("broadcast:pw")
    delivered(server, client, "broadcast:pw", "pw")


@pytest.mark.parametrize("mode", CONNECTION_MODES)
def test_wrong_password_leaves_the_server_degraded_not_dead(mode: str, server_factory, private_redis) -> None:
    redis_server = private_redis(["--requirepass", "right"], password="right")
    server = server_factory(mode, redis_url=f"redis://:wrong@127.0.0.1:{redis_server.port}/0")
    assert_degraded_after_attempts(server, redis_server)


@pytest.mark.parametrize("mode", CONNECTION_MODES)
def test_acl_user(mode: str, server_factory, private_redis, tmp_path: Path) -> None:
    redis_server = private_redis(["--user", "pusher", "on", ">pw", "~*", "&*", "+@all", "--user", "default", "off"], username="pusher", password="pw")
    server = server_factory(mode, redis_url=f"redis://pusher:pw@127.0.0.1:{redis_server.port}/0")
    delivered(server, redis_server.client(), "broadcast:acl", "acl")


@pytest.mark.parametrize("mode", CONNECTION_MODES)
def test_unix_socket(mode: str, server_factory, private_redis, tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    redis_server = private_redis(["--unixsocket", str(socket_path), "--unixsocketperm", "700"])
    server = server_factory(mode, redis_url=f"unix://{socket_path}?db=0")
    delivered(server, redis_server.client(), "broadcast:unix", "unix")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl, as in Redis's own test setup)."""
    ca_key, ca, key, csr, cert = (directory / name for name in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run = lambda *argv: subprocess.run(argv, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ws4redis test CA", "-keyout", ca_key, "-out", ca)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", cert)
    return ca, cert, key


@pytest.mark.parametrize("mode", CONNECTION_MODES)
def test_tls(mode: str, server_factory, private_redis, tmp_path: Path, prefix: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    tls_port = free_port()
    redis_server = private_redis(
        ["--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
         "--tls-auth-clients", "no"])
    url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}"
    server = server_factory(mode, redis_url=url)
    delivered(server, redis_server.client(), "broadcast:tls", "tls")
    published = subprocess.run([str(prefix / "bin" / "ws4redis"), "publish", "--redis", url, "--facility", "tls", "--broadcast", "--expire", "0", "x"],
                               capture_output=True, text=True, timeout=30)
    assert published.returncode == 0 and published.stdout.strip() == "0", published


def test_tls_with_an_untrusted_certificate_stays_degraded(server_factory, private_redis, tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    other_ca, _, _ = make_certificates(other)
    tls_port = free_port()
    redis_server = private_redis(["--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                                  "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"])
    server = server_factory("standalone", redis_url=f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={other_ca}")
    log = redis_server.directory / "redis.log"
    wait_until(lambda: log.read_text().count("Error accepting a client connection") >= 2, 15, "Redis to refuse two TLS handshakes")
    body = server.stats()
    assert body["status"] == "degraded" and body["redis_connected"] is False, body


SECRET = "pa55-w0rd-never-shown"


def shown_by_server(server: Server) -> str:
    """What the server wrote to its log (not the test's own `$ argv` line) and what it answers on /healthz and /metrics."""
    log = "\n".join(line for line in server.log_path.read_text(errors="replace").splitlines() if not line.startswith("$ "))
    answers = [http_get(server.port, path)[2].decode(errors="replace") for path in ("/healthz", "/metrics")]
    return "\n".join([log, *answers])


@pytest.mark.parametrize("mode", MODES)
def test_the_redis_password_is_never_shown(mode: str, server_factory, private_redis) -> None:
    """Connected, reconnected after Redis dropped the connections, refused with a wrong password: the
    log (at debug) and the HTTP answers show the endpoint with `***`, never the password."""
    redis_server = private_redis(["--requirepass", SECRET], password=SECRET)
    client = redis_server.client()
    server = server_factory(mode, "--log-level", "debug", redis_url=f"redis://:{SECRET}@127.0.0.1:{redis_server.port}/0")
    delivered(server, client, "broadcast:secret", "secret")
    reconnects_before = client.info("stats")["total_connections_received"]
    client.client_kill_filter(_type="pubsub")
    client.client_kill_filter(_type="normal", skipme=True)
    wait_until(lambda: client.info("stats")["total_connections_received"] > reconnects_before + 1, 15, "the server to reconnect")
    server.wait_stats(lambda s: s["status"] == "ok", '/healthz "ok" after the reconnect')
    wrong = server_factory(mode, "--log-level", "debug", redis_url=f"redis://:{SECRET}-wrong@127.0.0.1:{redis_server.port}/0")
    assert_degraded_after_attempts(wrong, redis_server)
    for shown in (shown_by_server(server), shown_by_server(wrong)):
        assert SECRET not in shown, shown[-3000:]
    assert f"redis://:***@127.0.0.1:{redis_server.port}/0" in shown_by_server(server), "the log does not name the endpoint, redacted"


@pytest.mark.parametrize("mode", CONNECTION_MODES)
def test_a_malformed_redis_url_is_refused_without_its_password(mode: str, prefix: Path) -> None:
    binary = [str(prefix / "bin" / "ws4redis"), "serve"] if mode == "standalone" else [str(prefix / "bin" / "ws4redis-host")]
    done = subprocess.run(binary + ["--listen", f"127.0.0.1:{free_port()}", "--redis", f"redis+sentinel://:{SECRET}@127.0.0.1"],
                          capture_output=True, text=True, timeout=30)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "redis+sentinel://:***@127.0.0.1" in output, done
    assert SECRET not in output, output


def test_publish_help_does_not_show_the_environments_redis_url(prefix: Path) -> None:
    import os

    done = subprocess.run([str(prefix / "bin" / "ws4redis"), "publish", "--help"], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "WS4REDIS_REDIS_URL": f"redis://:{SECRET}@127.0.0.1:6379/0"})
    assert done.returncode == 0 and "--redis" in done.stdout, done
    assert SECRET not in done.stdout + done.stderr, done.stdout
