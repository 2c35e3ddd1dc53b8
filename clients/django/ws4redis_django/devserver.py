"""Websockets inside ``./manage.py runserver``, on the same port as Django.

The dev server's request handler takes every request under WEBSOCKET_URL away from Django, lets the
core check it (RFC 6455, the identity callback, WS4REDIS_ALLOWED_CHANNELS), writes the core's
response and, for a 101, hands the socket with any bytes already read to the core, which serves it
on its own threads from then on: a websocket does not hold a dev-server thread. A request there that
is no websocket upgrade (a plain GET, another Upgrade, another method) gets the core's 400 with the
reason as body, as from the original and `manage.py ws4redis`, not Django's 404. Every other request
goes to Django. The core server lives as long as the dev server's process: an autoreload restart
stops it (its websockets close with 1001 and reconnect to the new process).
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import unquote

from ws4redis import native

from . import core, settings

if TYPE_CHECKING:
    from django.core.servers.basehttp import WSGIRequestHandler as _HandlerBase, WSGIServer as _ServerBase
else:
    _HandlerBase = _ServerBase = object


class WebsocketRequestHandlerMixin(_HandlerBase):
    """For a WSGIRequestHandler: takes the requests under WEBSOCKET_URL away from Django."""

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if not self.path.startswith(settings.WEBSOCKET_URL):
            return True
        self._hand_over_to_core()
        self.close_connection = True
        # False tells WSGIRequestHandler.handle_one_request() that the request is answered: Django must not run.
        return False

    def _hand_over_to_core(self) -> None:
        server: native.Server = self.server.ws4redis_core
        path, _, query = self.path.partition("?")
        handshake = server.check_handshake(self.command, unquote(path), query or None, self.headers.items(), self.request_version,
                                           self.client_address[0])
        self.wfile.write(handshake.response())
        self.log_request(handshake.status)
        if not handshake.accepted:
            handshake.close()
            return
        preface = self._read_ahead()
        # detach(): the descriptor becomes the core's, and this socket object forgets it, so the
        # shutdown(SHUT_WR) that the handler and socketserver apply to every finished connection
        # cannot reach the websocket (see WebsocketServerMixin.shutdown_request).
        server.adopt(handshake, self.connection.detach(), preface)

    def _read_ahead(self) -> bytes:
        """The bytes past the request that the handler's buffered reader already holds, without
        waiting for more (what the client sends later stays in the socket for the core)."""
        self.connection.setblocking(False)
        return self.rfile.read1(1 << 16) or b""


class WebsocketServerMixin(_ServerBase):
    """For runserver's server class: owns this process's core server and hosts websockets through it."""

    ws4redis_core: native.Server

    def __init__(self, server_address: Any, RequestHandlerClass: Any, *args: Any, **kwargs: Any):
        handler = type(f"Websocket{RequestHandlerClass.__name__}", (WebsocketRequestHandlerMixin, RequestHandlerClass), {})
        super().__init__(server_address, handler, *args, **kwargs)
        self.ws4redis_core = development_core()

    def shutdown_request(self, request: Any) -> None:
        if request.fileno() == -1:  # adopted by the core: nothing of it is ours to shut down or close
            return
        super().shutdown_request(request)


_core: Optional[native.Server] = None
#: How long a stopping core waits for its websockets' closing handshakes (an autoreload waits for it).
STOP_TIMEOUT_MS = 2000


def development_core() -> native.Server:
    """This process's core server, started on first use and stopped when the process exits (an
    autoreload restart exits the process)."""
    global _core
    if _core is None:
        server = core.create_server()
        server.start()
        atexit.register(stop_core, server)
        _core = server
    return _core


def stop_core(server: native.Server) -> None:
    """Closes the core's websockets with 1001 (going away: clients reconnect), then frees it."""
    server.stop(STOP_TIMEOUT_MS)
    server.close()


def install() -> None:
    """Makes runserver's server class (also the one of staticfiles' runserver, a subclass) host websockets."""
    from django.core.management.commands import runserver

    if not issubclass(runserver.Command.server_cls, WebsocketServerMixin):
        base = runserver.Command.server_cls
        runserver.Command.server_cls = type(f"Websocket{base.__name__}", (WebsocketServerMixin, base), {})
