"""The ws4redis core (libws4redis.so through ``ws4redis.native``), configured from the Django settings."""

from __future__ import annotations

import os
import threading
from typing import Any, List, Mapping, Optional, Tuple
from urllib.parse import quote, urlencode

from ws4redis import native

from . import identity, settings

_CERT_REQS = {0: "none", 1: "optional", 2: "required"}  # ssl.CERT_* values, as redis-py accepts them


def redis_url(connection: Mapping[str, Any]) -> str:
    """WS4REDIS_CONNECTION (redis-py's connection arguments) as the core's Redis URL. Arguments that
    do not say where Redis is (socket_timeout, ...) do not apply to the core."""
    db = int(connection.get("db") or 0)
    username, password = connection.get("username"), connection.get("password")
    socket_path = connection.get("unix_socket_path") or connection.get("path")
    if socket_path:
        credentials = {name: value for name, value in (("username", username), ("password", password)) if value}
        return f"unix://{socket_path}?{urlencode({'db': db, **credentials})}"
    host = str(connection.get("host") or "localhost")
    host = f"[{host}]" if ":" in host else host
    userinfo = f"{quote(username or '', safe='')}:{quote(str(password), safe='')}@" if password else ""
    scheme, tls = ("rediss", _tls_query(connection)) if connection.get("ssl") else ("redis", "")
    return f"{scheme}://{userinfo}{host}:{int(connection.get('port') or 6379)}/{db}{tls}"


def _tls_query(connection: Mapping[str, Any]) -> str:
    options = {}
    if connection.get("ssl_ca_certs"):
        options["ssl_ca_certs"] = str(connection["ssl_ca_certs"])
    requirement = connection.get("ssl_cert_reqs")
    if requirement is not None:
        options["ssl_cert_reqs"] = _CERT_REQS.get(requirement, str(requirement).lower())
    return f"?{urlencode(options)}" if options else ""


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(item) for item in value)
    return str(value)


def core_arguments() -> List[str]:
    """The core's settings, as command-line options, from the original's Django settings, then
    WS4REDIS_SERVER_SETTINGS. Each mapped setting is given even when unset, so that a WS4REDIS_*
    environment variable cannot make the server disagree with the app's publisher."""
    arguments = [
        "--redis-url", redis_url(settings.WS4REDIS_CONNECTION),
        "--url-prefix", settings.WEBSOCKET_URL,
        "--prefix", settings.WS4REDIS_PREFIX or "",
        "--expire", str(int(settings.WS4REDIS_EXPIRE)),
        "--heartbeat", settings.WS4REDIS_HEARTBEAT or "",
    ]  # fmt: skip
    for name, value in settings.WS4REDIS_SERVER_SETTINGS.items():
        arguments += ["--" + name.replace("_", "-"), _setting_text(value)]
    return arguments


def create_server(*extra_arguments: str) -> native.Server:
    """A core server (not started) with the Django settings and the Django identity callback;
    `extra_arguments` are further command-line options (e.g. "--listen", "127.0.0.1:8001")."""
    identity.check_callbacks()
    server = native.Server(*core_arguments(), *extra_arguments, library=settings.WS4REDIS_LIBRARY)
    server.set_authorizer(identity.authorize)
    return server


_publisher_lock = threading.Lock()
_publisher: Optional[Tuple[Tuple[int, str, str], native.Publisher]] = None
# Publishers made before a fork: their connection thread lives only in the parent, so destroying them
# in a child would wait for it forever; the child keeps them unused instead.
_inherited_publishers: List[native.Publisher] = []


def publisher() -> native.Publisher:
    """The process's publisher for the current settings: one Redis connection, shared by all threads
    (the library serializes calls; a publish is one pipelined round trip)."""
    global _publisher
    key = (os.getpid(), redis_url(settings.WS4REDIS_CONNECTION), settings.WS4REDIS_PREFIX or "")
    with _publisher_lock:
        if _publisher is None or _publisher[0] != key:
            if _publisher is not None and _publisher[0][0] != key[0]:
                _inherited_publishers.append(_publisher[1])
            elif _publisher is not None:
                _publisher[1].close()
            _publisher = (key, native.Publisher(key[1], key[2] or None, library=settings.WS4REDIS_LIBRARY))
        return _publisher[1]
