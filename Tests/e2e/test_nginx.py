"""The configurations of nginx-conf/ with a real nginx (Debian's) in front of real ws4redis servers
and a real web application: "/" reaches the app with the forwarding headers, websockets work both
ways through nginx, several nodes share the load and survive one of them dying, TLS ends in nginx
(https:// and wss://, http:// redirected), the Django auth view is denied to outside clients, and
the per-address limits of the websocket location refuse what is over them.

nginx runs from a private prefix: `nginx -p DIR -c DIR/nginx.conf -e DIR/error.log -g 'daemon off;'`.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytest
import redis
from websockets.asyncio.client import ClientConnection

from e2e_helpers import (STOP_TIMEOUT, RedisServer, Server, assert_all_received, close_all, free_port, http_get, loop_connections,
                         open_client, open_clients, raw_handshake, receive_n, receive_one, run_async, wait_until)
from tls_helpers import Certificate, https_get, self_signed_certificate

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "nginx-conf"
SITES = ("ws4redis.conf", "ws4redis-balanced.conf", "ws4redis-tls.conf")
PLACEHOLDER = re.compile(r"@[A-Z0-9_]+@")
#: The path of the Django auth request view (ws4redis_django.views, clients/django/README.md).
AUTH_VIEW = "/ws4redis/auth/"
#: The limits of each site's websocket location, as shipped.
CONNECTION_LIMIT = "limit_conn ws4redis_connections 256;"
HANDSHAKE_RATE = "zone=ws4redis_handshakes:10m rate=10r/s;"
HANDSHAKE_BURST = "limit_req zone=ws4redis_handshakes burst=256 nodelay;"


@pytest.fixture(params=("standalone", "host"))
def mode(request: pytest.FixtureRequest) -> str:
    """nginx in front of the standalone server and of the host (the plugin mode is the host's code)."""
    return request.param


# ---------------------------------------------------------------------------------------------
# The web application behind "/"


class App:
    """An HTTP application on a free loopback port answering every GET with the path and the
    request headers it got, as JSON."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # nginx keeps its upstream connections alive

            def do_GET(self) -> None:
                body = json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "App":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app() -> Iterator[App]:
    with App() as running:
        yield running


# ---------------------------------------------------------------------------------------------
# nginx


class Nginx:
    """One site of nginx-conf/ rendered with `values` for its placeholders into `directory`, and the
    nginx process serving it. `edits`: (shipped text, replacement) pairs applied first, each of
    which must occur in the site."""

    def __init__(self, directory: Path, site: str, values: dict[str, str], edits: Sequence[tuple[str, str]] = ()):
        self.directory = directory
        self.executable = shutil.which("nginx") or "/usr/sbin/nginx"
        assert os.path.exists(self.executable), "nginx is not installed (apt-get install nginx)"
        shutil.copytree(NGINX_CONF / "snippets", directory / "snippets")
        text = (NGINX_CONF / site).read_text()
        for shipped, replacement in edits:
            assert shipped in text, f"{site} does not have {shipped!r}"
            text = text.replace(shipped, replacement)
        for name, value in values.items():
            text = text.replace(f"@{name}@", value)
        left = set(PLACEHOLDER.findall(text))
        assert not left, f"{site}: placeholders the test does not fill: {sorted(left)}"
        (directory / "site.conf").write_text(text)
        temp = {name: directory / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir()
        (directory / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")  # workers as root: they reach the test's private directories
            + f"worker_processes 1;\npid {directory}/nginx.pid;\nevents {{ worker_connections 1024; }}\n"
            "http {\n"
            f"    access_log {directory}/access.log;\n"
            + "".join(f"    {name}_temp_path {path};\n" for name, path in temp.items())
            + "    include site.conf;\n}\n"
        )
        self.argv = [self.executable, "-p", f"{directory}/", "-c", str(directory / "nginx.conf"), "-e", str(directory / "error.log")]
        self.proc: subprocess.Popen[bytes] | None = None

    def test_config(self) -> str:
        """`nginx -T`: checks the configuration and returns it as nginx read it (includes expanded)."""
        result = subprocess.run([*self.argv, "-T"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"nginx -t failed:\n{result.stderr}"
        return result.stdout

    def start(self, port: int) -> "Nginx":
        """Starts nginx in the foreground; ready once `port` answers HTTP."""
        self.test_config()
        self.proc = subprocess.Popen([*self.argv, "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def up() -> bool:
            assert self.proc.poll() is None, f"nginx exited with {self.proc.returncode}:\n{self.log_tail()}"
            return http_get(port, "/nginx-readiness", timeout=2)[0] in (200, 301)

        wait_until(up, 10, f"nginx to answer on port {port}", interval=0.05)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # fast shutdown: open websockets are cut
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"nginx did not stop within {STOP_TIMEOUT}s of SIGTERM:\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 40) -> str:
        path = self.directory / "error.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no error log)"


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[Callable[..., Nginx]]:
    """make(site, values, edits=()) -> an Nginx (not started), stopped at teardown."""
    made: list[Nginx] = []

    def make(site: str, values: dict[str, str], edits: Sequence[tuple[str, str]] = ()) -> Nginx:
        directory = tmp_path / f"nginx-{len(made)}"
        directory.mkdir()
        made.append(Nginx(directory, site, values, edits))
        return made[-1]

    yield make
    for nginx in made:
        nginx.stop()


# ---------------------------------------------------------------------------------------------
# Helpers


def app_request(nginx_port: int, path: str, get: Callable[..., tuple[int, bytes]] | None = None) -> dict[str, Any]:
    """GET `path` through nginx, which the app answers with what it received."""
    if get is None:
        status, _, body = http_get(nginx_port, path)
    else:
        status, body = get(nginx_port, path)
    assert status == 200, f"GET {path} through nginx: {status} {body[:300]!r}"
    return json.loads(body)


def assert_forwarded(seen: dict[str, Any], path: str, proto: str, host: str) -> None:
    headers = seen["headers"]
    assert seen["path"] == path, f"the app got {seen['path']!r} for {path!r}"
    expected = {"x-real-ip": "127.0.0.1", "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": proto, "host": host}
    got = {name: headers.get(name) for name in expected}
    assert got == expected, f"forwarding headers the app got: {got}, expected {expected}"


def configuration_default_ms(setting: str) -> int:
    """The default of a ws4redis setting in milliseconds, from docs/configuration.md's table."""
    row = next(line for line in (REPO / "docs" / "configuration.md").read_text().splitlines() if line.startswith(f"| `{setting}` |"))
    return int(row.split("|")[4].strip().strip("`"))


def seconds(value: str) -> int:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value).groups()
    return int(int(number) * units[unit or "s"])


async def round_trip(nginx_url: Callable[[str, str], str], server: Server, r: redis.Redis, facility: str,
                     **client_kwargs: Any) -> None:
    """Through nginx: two clients subscribe and publish with echo; a message published to Redis and
    one sent by a client each reach both, and a binary message crosses unchanged."""
    flags = "subscribe-broadcast&publish-broadcast&echo"
    clients = [await open_client(nginx_url(facility, flags), **client_kwargs) for _ in range(2)]
    try:
        await server.await_stats(lambda st: st["subscriptions"] == 2, "both clients subscribed through nginx")
        assert r.publish(f"broadcast:{facility}", "from redis") == 1
        for i, client in enumerate(clients):
            assert await receive_one(client, 10, f"client {i}: the Redis message through nginx") == "from redis"
        # One message at a time: two clients' messages reach Redis in no fixed order.
        await clients[0].send("from client 0")
        assert_all_received(await asyncio.gather(*(receive_n(c, 1, 10) for c in clients)), ["from client 0"])
        binary = bytes(range(256)) * 64
        await clients[1].send(binary)
        assert_all_received(await asyncio.gather(*(receive_n(c, 1, 10) for c in clients)), [binary])
    finally:
        await close_all(clients)


# ---------------------------------------------------------------------------------------------
# Tests


def site_values(certificate: Certificate, app: str = "127.0.0.1:8000", **ports: int) -> dict[str, str]:
    """Placeholder values for any site: loopback addresses (`ports` by placeholder name override them)."""
    values = {"LISTEN": 8081, "HTTP_LISTEN": 8082, "HTTPS_LISTEN": 8443, "WS4REDIS": 8080, "WS4REDIS_NODE_1": 8090, "WS4REDIS_NODE_2": 8091}
    values.update(ports)
    return {**{name: f"127.0.0.1:{port}" for name, port in values.items()}, "SERVER_NAME": "_", "APP": app,
            "CERTIFICATE": str(certificate.certificate), "KEY": str(certificate.key)}


def test_configurations_are_valid_and_outlast_pings(tmp_path: Path) -> None:
    """Each site passes `nginx -t`, and its websocket location keeps a silent connection longer than
    ws4redis's ping and heartbeat intervals (nginx's default of 60 s would not outlast a ping
    interval raised to 60 s or more); each denies the auth view and limits its websocket location."""
    values = site_values(self_signed_certificate(tmp_path))
    longest_silence_s = max(configuration_default_ms("ping_interval"), configuration_default_ms("heartbeat_interval")) / 1000
    for site in SITES:
        directory = tmp_path / site
        directory.mkdir()
        config = Nginx(directory, site, values).test_config()
        for directive in ("proxy_read_timeout", "proxy_send_timeout"):
            found = [seconds(v) for v in re.findall(rf"^\s*{directive}\s+(\S+);", config, re.M)]
            assert found and min(found) > 2 * longest_silence_s, \
                f"{site}: {directive} {found} s, wanted over twice ws4redis's longest silence ({longest_silence_s} s)"
        assert re.search(r"^\s*proxy_buffering\s+off;", config, re.M), f"{site}: proxy_buffering is not off"
        assert re.search(r"location \^~ /ws4redis/auth \{\s*deny all;\s*\}", config), f"{site}: the auth view is not denied"
        websocket_location = re.search(r"location /ws/ \{(.*?)\n    \}", config, re.S)
        assert websocket_location, f"{site}: no /ws/ location"
        for limit in (CONNECTION_LIMIT, HANDSHAKE_BURST):
            assert limit in websocket_location.group(1), f"{site}: the websocket location lacks {limit!r}"
        assert HANDSHAKE_RATE in config, f"{site}: no handshake rate {HANDSHAKE_RATE!r}"


def test_site(mode: str, server_factory: Callable[..., Server], nginx_factory: Callable[..., Nginx], app: App,
              r: redis.Redis) -> None:
    """ws4redis.conf: "/" reaches the app with Host and X-Real-IP / X-Forwarded-For / -Proto; websockets
    under /ws/ reach ws4redis and carry messages both ways; ws4redis, trusting nginx, logs the client
    address nginx forwarded (here the hop before nginx that a client's own X-Forwarded-For names)."""
    server = server_factory(mode, "--trusted-proxies", "127.0.0.1", "--log-format", "json")
    port = free_port()
    nginx_factory("ws4redis.conf", {"LISTEN": f"127.0.0.1:{port}", "SERVER_NAME": "_", "APP": app.address,
                                    "WS4REDIS": f"127.0.0.1:{server.port}"}).start(port)
    assert_forwarded(app_request(port, "/some/page?x=1"), "/some/page?x=1", "http", "127.0.0.1")
    run_async(round_trip(lambda f, flags: f"ws://127.0.0.1:{port}/ws/{f}?{flags}", server, r, "through-nginx",
                         additional_headers={"X-Forwarded-For": "198.51.100.9"}), 60, "websockets through nginx")
    opened = [json.loads(line) for line in server.log_path.read_text().splitlines() if '"websocket opened"' in line]
    # nginx appends 127.0.0.1 (the test client): trusted, so the hop before it is the client.
    assert [o["address"] for o in opened] == ["198.51.100.9", "198.51.100.9"], opened


def test_websockets_through_nginx_land_on_every_event_loop(mode: str, server_factory: Callable[..., Server],
                                                         nginx_factory: Callable[..., Nginx], app: App) -> None:
    """Behind nginx every websocket arrives from nginx's address: the server's two event loops
    (--threads 2) still share them."""
    server = server_factory(mode)
    port = free_port()
    nginx_factory("ws4redis.conf", {"LISTEN": f"127.0.0.1:{port}", "SERVER_NAME": "_", "APP": app.address,
                                    "WS4REDIS": f"127.0.0.1:{server.port}"}).start(port)
    n_clients = 20

    async def body() -> None:
        clients = await open_clients(f"ws://127.0.0.1:{port}/ws/loops?subscribe-broadcast", n_clients)
        try:
            await server.await_stats(lambda s: s["connections"] == n_clients, f"{n_clients} connections")
            by_loop = loop_connections(server)
            assert sorted(by_loop) == ["0", "1"] and min(by_loop.values()) >= n_clients // 4, f"connections by loop: {by_loop}"
        finally:
            await close_all(clients)

    run_async(body(), 60, "websockets through nginx on every loop")


def test_tls_termination(mode: str, server_factory: Callable[..., Server], nginx_factory: Callable[..., Nginx], app: App,
                         r: redis.Redis, tmp_path: Path) -> None:
    """ws4redis-tls.conf with a self-signed certificate: http:// is redirected to https://, "/" reaches
    the app with X-Forwarded-Proto https, and wss:// carries messages both ways to plain ws4redis."""
    certificate: Certificate = self_signed_certificate(tmp_path)
    server = server_factory(mode)
    http_port, https_port = free_port(), free_port()
    nginx_factory("ws4redis-tls.conf", {
        "HTTP_LISTEN": f"127.0.0.1:{http_port}", "HTTPS_LISTEN": f"127.0.0.1:{https_port}", "SERVER_NAME": "_",
        "APP": app.address, "WS4REDIS": f"127.0.0.1:{server.port}",
        "CERTIFICATE": str(certificate.certificate), "KEY": str(certificate.key)}).start(http_port)
    status, headers, _ = http_get(http_port, "/ws/chat?subscribe-broadcast")
    assert (status, headers.get("location")) == (301, "https://127.0.0.1/ws/chat?subscribe-broadcast"), \
        f"http:// answered {status} with Location {headers.get('location')!r}"
    context = certificate.client_context()
    seen = app_request(https_port, "/page", lambda p, path: https_get(p, path, context))
    assert_forwarded(seen, "/page", "https", "127.0.0.1")
    run_async(round_trip(lambda f, flags: f"wss://127.0.0.1:{https_port}/ws/{f}?{flags}", server, r, "tls-termination",
                         ssl=context), 60, "wss through nginx")


@pytest.fixture
def nodes(request: pytest.FixtureRequest, mode: str, prefix: Path, redis_server: RedisServer, tmp_path: Path) -> Iterator[list[Server]]:
    """Two ws4redis nodes on one Redis. A test may kill one (SIGKILL): the others must exit 0 on SIGTERM."""
    started: list[Server] = []
    request.node._ws4r_servers = started  # their logs go into a failed test's report (conftest.py)
    try:
        for i in range(2):
            started.append(Server(mode, prefix, redis_server.url, tmp_path / f"node-{i}.log").start())
        yield started
    finally:
        failures = []
        for node in started:
            if node.proc is not None and node.proc.returncode == -signal.SIGKILL:
                node.terminate()  # only collects it
                continue
            try:
                node.stop_and_check()
            except AssertionError as exc:
                failures.append(str(exc))
        assert not failures, "\n\n".join(failures)


def test_balanced_nodes(nodes: list[Server], nginx_factory: Callable[..., Nginx], app: App, r: redis.Redis) -> None:
    """ws4redis-balanced.conf with two nodes: clients land on both; a message published once reaches
    every client exactly once, in order; a client's message reaches the clients of the other node;
    after one node is SIGKILLed its clients reconnect through nginx (to the survivor) and receive
    what is published afterwards, exactly once."""
    port = free_port()
    nginx_factory("ws4redis-balanced.conf", {
        "LISTEN": f"127.0.0.1:{port}", "SERVER_NAME": "_", "APP": app.address,
        "WS4REDIS_NODE_1": f"127.0.0.1:{nodes[0].port}", "WS4REDIS_NODE_2": f"127.0.0.1:{nodes[1].port}"}).start(port)
    url = f"ws://127.0.0.1:{port}/ws/scale?subscribe-broadcast&publish-broadcast"
    n = 20

    async def connected(count: int, on: list[Server]) -> list[int]:
        def spread() -> list[int] | None:
            figures = [node.stats() for node in on]
            return [f["subscriptions"] for f in figures] if sum(f["subscriptions"] for f in figures) == count else None

        return await asyncio.to_thread(wait_until, spread, 15, f"{count} subscriptions over the nodes")

    async def everyone_gets(groups: list[tuple[list[ClientConnection], list[str]]], messages: list[str]) -> None:
        """Publishes `messages` once; each client of a group gets that group's list of the messages it
        got on connecting, then exactly `messages`."""
        for message in messages:
            r.publish("broadcast:scale", message)
        # The closing marker proves that nothing arrived twice in between.
        r.publish("broadcast:scale", "end")
        for clients, first in groups:
            results = await asyncio.gather(*(receive_n(c, len(first) + len(messages) + 1, 15) for c in clients))
            assert_all_received(results, [*first, *messages, "end"])

    async def body() -> None:
        clients = await open_clients(url, n, batch=5)
        try:
            spread = await connected(n, nodes)
            assert all(count > 0 for count in spread), f"clients per node {spread}: nginx did not balance"
            await everyone_gets([(clients, [])], [f"m{i}" for i in range(10)])

            on_first = spread[0]
            await clients[0].send("from a client")  # whichever node holds it: every other client gets it
            results = await asyncio.gather(*(receive_n(c, 1, 10) for c in clients[1:]))
            assert_all_received(results, ["from a client"])

            nodes[0].proc.send_signal(signal.SIGKILL)
            nodes[0].proc.wait(STOP_TIMEOUT)

            async def until_cut() -> None:
                while sum(c.state.name == "CLOSED" for c in clients) < on_first:
                    await asyncio.sleep(0.02)

            try:
                await asyncio.wait_for(until_cut(), 10)
            except TimeoutError:
                raise AssertionError(f"the node with {on_first} clients died, but nginx cut only "
                                     f"{sum(c.state.name == 'CLOSED' for c in clients)} of them") from None
            survivors = [c for c in clients if c.state.name != "CLOSED"]
            lost = n - len(survivors)
            assert lost == on_first, f"{lost} clients lost their connection, but the dead node held {on_first}"
            reconnected = await open_clients(url, lost, batch=5)
            clients = survivors + reconnected
            await connected(n, nodes[1:])
            # A client's message is stored (expire): a client that connects gets it first.
            await everyone_gets([(survivors, []), (reconnected, ["from a client"])], [f"after{i}" for i in range(10)])
        finally:
            await close_all(clients)

    run_async(body(), 90, "balanced nodes")


@pytest.mark.parametrize("site", SITES)
def test_auth_view_is_denied(site: str, nginx_factory: Callable[..., Nginx], app: App, tmp_path: Path) -> None:
    """A client that asks nginx for the Django auth request view gets 403, in the spellings nginx
    and Django take for the same path (no slash, percent-encoded, doubled slashes, dot segments);
    the app's other pages, a neighbour of the path included, are still the app's."""
    certificate = self_signed_certificate(tmp_path)
    port, https_port = free_port(), free_port()
    nginx_factory(site, site_values(certificate, app.address, LISTEN=port, HTTP_LISTEN=port, HTTPS_LISTEN=https_port)).start(port)
    context = certificate.client_context()

    def get(path: str) -> tuple[int, bytes]:
        if site == "ws4redis-tls.conf":
            return https_get(https_port, path, context)
        status, _, body = http_get(port, path)
        return status, body

    for path in (AUTH_VIEW, AUTH_VIEW.rstrip("/"), f"{AUTH_VIEW}?x=1", "/ws4redis/%61uth/", "//ws4redis//auth/", "/ws/../ws4redis/auth/"):
        status, body = get(path)
        assert status == 403, f"{site}: GET {path} through nginx answered {status} {body[:200]!r}, expected 403"
    assert json.loads(get("/ws4redis/other/")[1])["path"] == "/ws4redis/other/", f"{site}: the app's neighbouring page"


def test_websocket_limits_refuse_with_503(server_factory: Callable[..., Server], nginx_factory: Callable[..., Nginx], app: App) -> None:
    """The shipped limits of the websocket location, lowered: with 2 websockets per address a third
    handshake gets 503 until one of the two closes; with a burst of 1 handshake (and 1 a minute) the
    third handshake in a row gets 503. The rest of the site is not limited."""
    server = server_factory("standalone")
    values = {"SERVER_NAME": "_", "APP": app.address, "WS4REDIS": f"127.0.0.1:{server.port}"}
    connections_port, handshakes_port = free_port(), free_port()
    nginx_factory("ws4redis.conf", {**values, "LISTEN": f"127.0.0.1:{connections_port}"},
                  [(CONNECTION_LIMIT, "limit_conn ws4redis_connections 2;")]).start(connections_port)
    nginx_factory("ws4redis.conf", {**values, "LISTEN": f"127.0.0.1:{handshakes_port}"},
                  [(HANDSHAKE_RATE, "zone=ws4redis_handshakes:10m rate=1r/m;"),
                   (HANDSHAKE_BURST, "limit_req zone=ws4redis_handshakes burst=1 nodelay;")]).start(handshakes_port)
    path = "/ws/limits?subscribe-broadcast"

    async def body() -> None:
        clients = [await open_client(f"ws://127.0.0.1:{connections_port}{path}") for _ in range(2)]
        try:
            status, _, refusal = await asyncio.to_thread(raw_handshake, connections_port, path)
            assert status == 503, f"a third websocket from one address: {status} {refusal[:200]!r}, expected 503"
            assert app_request(connections_port, "/page")["path"] == "/page", "the app's pages are not limited"
            await clients.pop().close()
            await asyncio.to_thread(wait_until, lambda: raw_handshake(connections_port, path)[0] == 101, 10,
                                    "a handshake once one of the two websockets closed")
        finally:
            await close_all(clients)

    run_async(body(), 60, "the connection limit")
    statuses = [raw_handshake(handshakes_port, path)[0] for _ in range(3)]
    assert statuses == [101, 101, 503], f"three handshakes in a row with a burst of 1: {statuses}"
