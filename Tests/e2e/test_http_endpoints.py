"""The HTTP endpoints besides websockets, and what a deployer can switch: the host's demo page and
POST /publish (off by default; when on, same-origin requests to a Host this server answers for
only), /metrics (off, or on a listener of its own, in every mode), the host reading its switches
from the core (a --config file too), NUL bytes in headers refused, and no Redis password in the
host's output."""

from __future__ import annotations

import http.client
import socket
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from e2e_helpers import Server, free_port, http_get, wait_until

HOST_MODES = ("host", "plugin")


def post(port: int, path: str, body: bytes = b"hello", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "text/plain", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def raw_request(port: int, request: bytes) -> bytes:
    """Sends `request` on a fresh socket and returns what the server answered until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), f"not an HTTP response: {answer[:200]!r}"
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("mode", HOST_MODES)
def test_demo_endpoints_are_off_by_default(mode: str, server_factory: Callable[..., Server]) -> None:
    """Without a switch the host serves neither the demo page nor POST /publish (404, from the
    core), but /ws4redis.js, /healthz and /metrics."""
    server = server_factory(mode)
    assert http_get(server.port, "/")[0] == 404, "GET / without --demo-page on"
    status, body = post(server.port, "/publish?facility=chat")
    assert status == 404, f"POST /publish without --publish-endpoint on: {status} {body!r}"
    for path in ("/ws4redis.js", "/healthz", "/metrics"):
        assert http_get(server.port, path)[0] == 200, f"GET {path}"


@pytest.mark.parametrize("mode", HOST_MODES)
def test_publish_takes_same_origin_requests_only(mode: str, server_factory: Callable[..., Server]) -> None:
    """With --publish-endpoint on: requests without Origin (curl) and from the page's own origin
    publish; another Origin, Sec-Fetch-Site cross-site or same-site get 403; a Host this server does
    not answer for (DNS rebinding) gets 421; the hosts and origins of allowed_origins are served."""
    server = server_factory(mode, "--publish-endpoint", "on", "--allowed-origins", "https://chat.example.com")
    port = server.port
    path = "/publish?facility=chat"
    own = f"http://127.0.0.1:{port}"
    for headers in ({}, {"Origin": own}, {"Origin": own, "Sec-Fetch-Site": "same-origin"}, {"Host": f"localhost:{port}"},
                    {"Host": "chat.example.com", "Origin": "https://chat.example.com"}):
        status, body = post(port, path, headers=headers)
        assert status == 200 and b'"receivers"' in body, f"POST /publish with {headers}: {status} {body!r}"
    refused = [
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": f"https://127.0.0.1:{port}"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),
        ({"Host": f"rebound.example:{port}"}, 421),
        ({"Host": f"rebound.example:{port}", "Origin": f"http://rebound.example:{port}"}, 421),
    ]
    for headers, expected in refused:
        status, body = post(port, path, headers=headers)
        assert status == expected and b"refused" in body, f"POST /publish with {headers}: {status} {body!r}, expected {expected}"


@pytest.mark.parametrize("mode", HOST_MODES)
def test_switches_come_from_the_core_config_file(mode: str, server_factory: Callable[..., Server], tmp_path: Path) -> None:
    """The host asks the core for the effective settings, so a --config file configures it as it
    configures `ws4redis serve`: the demo page and its heartbeat, POST /publish and its body limit
    (max_message_size), and the deadline of a request head on the host's own connections."""
    config = tmp_path / "ws4redis.conf"
    config.write_text("demo_page = on\npublish_endpoint = on\nheartbeat = --beat--\nmax_message_size = 100\nhandshake_timeout = 500\n")
    server = server_factory(mode, "--config", str(config))
    status, headers, page = http_get(server.port, "/")
    assert status == 200 and headers["content-type"].startswith("text/html"), f"GET /: {status} {headers}"
    assert b'"--beat--"' in page, "the page shows the heartbeat of the config file"
    assert post(server.port, "/publish?facility=chat", b"x" * 100)[0] == 200
    status, body = post(server.port, "/publish?facility=chat", b"x" * 101)
    assert status == 413, f"a body past max_message_size 100: {status} {body!r}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as silent:
        silent.sendall(b"GET / HTTP/1.1\r\nHost: x")
        # handshake_timeout 500 ms, not the default 10 s: the host's connection is dropped.
        assert silent.recv(65536) == b"", "an incomplete request head is dropped after handshake_timeout"


def test_metrics_off(mode: str, server_factory: Callable[..., Server]) -> None:
    """--metrics off: GET /metrics gets 404 while /healthz stays."""
    server = server_factory(mode, "--metrics", "off")
    assert http_get(server.port, "/metrics")[0] == 404
    assert http_get(server.port, "/healthz")[0] == 200


def test_metrics_on_a_listener_of_its_own(mode: str, server_factory: Callable[..., Server]) -> None:
    """--metrics-listen: /metrics and /healthz there (nothing else: websocket paths get 404), and
    /metrics leaves the main listener, where /healthz stays for load balancers."""
    metrics_port = free_port()
    server = server_factory(mode, "--metrics-listen", f"127.0.0.1:{metrics_port}")
    status, headers, body = wait_until(lambda: http_get(metrics_port, "/metrics"), 10, "the metrics listener to answer")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4"), f"{status} {headers}"
    assert b"ws4redis_connections" in body
    assert http_get(metrics_port, "/healthz")[0] == 200
    assert http_get(metrics_port, "/ws/chat?subscribe-broadcast")[0] == 404
    assert http_get(server.port, "/metrics")[0] == 404
    assert http_get(server.port, "/healthz")[0] == 200


def test_metrics_listen_needs_metrics(mode: str, prefix: Path, tmp_path: Path) -> None:
    """--metrics off with --metrics-listen is a configuration error, named at start."""
    argv = Server(mode, prefix, "redis://127.0.0.1:1/0", tmp_path / "server.log", ["--metrics", "off", "--metrics-listen", "127.0.0.1:0"]).argv
    result = subprocess.run(argv, capture_output=True, timeout=20)
    assert result.returncode != 0 and b"metrics_listen needs metrics on" in result.stdout + result.stderr, result


NUL_HEADERS = [
    b"X-Probe: abc\x00def\r\n",        # inside a value, a header after it
    b"X-Probe: abc\x00\r\n",           # at the end of a value
    b"X-Probe: \x00\r\n",              # the whole value
    b"X-Probe\x00: abc\r\n",           # in a name
]


@pytest.mark.parametrize("header", NUL_HEADERS, ids=["inside", "value-end", "value", "name"])
@pytest.mark.parametrize("last", [False, True], ids=["before-others", "last"])
def test_nul_in_a_header_is_refused(mode: str, server_factory: Callable[..., Server], header: bytes, last: bool) -> None:
    """A NUL byte anywhere in a header gets 400 (libmicrohttpd 0.9.75 would cut the value there)."""
    server = server_factory(mode)
    lines = [b"Host: 127.0.0.1\r\n", b"Connection: close\r\n"]
    lines.insert(len(lines) if last else 0, header)
    answer = raw_request(server.port, b"GET /healthz HTTP/1.1\r\n" + b"".join(lines) + b"\r\n")
    assert status_of(answer) == 400, f"{header!r}: {answer[:300]!r}"


@pytest.mark.parametrize("head", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Probe: trailing spaces   \r\nX-Empty:\r\nConnection: close\r\n\r\n",
    b"GET /healthz HTTP/1.0\r\n\r\n",
], ids=["spaces-and-empty", "no-headers"])
def test_heads_without_nul_are_served(mode: str, server_factory: Callable[..., Server], head: bytes) -> None:
    """The NUL checks let well-formed heads through, with empty values and trailing spaces too."""
    server = server_factory(mode)
    assert status_of(raw_request(server.port, head)) == 200


@pytest.mark.parametrize("mode", HOST_MODES)
def test_bare_lf_heads_are_served_by_the_host(mode: str, server_factory: Callable[..., Server]) -> None:
    """libmicrohttpd takes bare LF line ends (one NUL per line end in its layout, not two); the
    host's NUL check follows it. (The standalone parser wants CRLF.)"""
    server = server_factory(mode)
    assert status_of(raw_request(server.port, b"GET /healthz HTTP/1.1\nHost: x\nX-Probe: bare LF\nConnection: close\n\n")) == 200


@pytest.mark.parametrize("mode", HOST_MODES)
def test_redis_password_is_never_printed(mode: str, server_factory: Callable[..., Server]) -> None:
    """With an unreachable Redis whose URL has a password, neither the host's log nor the 502 of
    POST /publish shows the password."""
    secret = "s3cret-do-not-print"
    server = server_factory(mode, "--publish-endpoint", "on", redis_url=f"redis://:{secret}@127.0.0.1:{free_port()}/0")
    status, body = post(server.port, "/publish?facility=chat")
    assert status == 502, f"POST /publish without Redis: {status} {body!r}"
    assert secret.encode() not in body, f"the 502 shows the password: {body!r}"
    server.terminate()
    log = server.log_path.read_text()
    printed = "\n".join(line for line in log.splitlines() if not line.startswith("$ "))  # the test's own command line
    assert "127.0.0.1" in printed and secret not in printed, f"the log shows the password:\n{printed}"
