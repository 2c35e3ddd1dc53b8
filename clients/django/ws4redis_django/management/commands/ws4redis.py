"""``./manage.py ws4redis --listen HOST:PORT``: the ws4redis core on its own listener, for production.

It takes the Django settings (WEBSOCKET_URL, WS4REDIS_CONNECTION, WS4REDIS_PREFIX, WS4REDIS_EXPIRE,
WS4REDIS_HEARTBEAT, WS4REDIS_SERVER_SETTINGS) and answers each handshake with the Django identity
(session cookie, user, groups, WS4REDIS_PROCESS_REQUEST, WS4REDIS_ALLOWED_CHANNELS), queried on the
core's worker threads. Put it behind nginx next to the app (see nginx-conf/ of ws4redis). SIGTERM or
SIGINT closes every websocket with 1001 and exits 0.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ws4redis import native, redact

from ... import core

STOP_TIMEOUT_MS = 10000


class Command(BaseCommand):
    help = "Serves websockets with the ws4redis core, the Django settings and the Django session identity."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--listen", default="127.0.0.1:8001", help="host:port to listen on (default 127.0.0.1:8001)")
        parser.add_argument(
            "--setting", action="append", default=[], metavar="NAME=VALUE",
            help="a further core setting, e.g. --setting threads=4 (`ws4redis settings` lists them); repeatable",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        extra = ["--listen", options["listen"]]
        for setting in options["setting"]:
            name, equals, value = setting.partition("=")
            if not equals or not name.strip():
                shown = f"{name}={redact.MASK}" if equals else setting  # a value may be a secret
                raise CommandError(f"--setting takes NAME=VALUE, got {shown!r}")
            extra += ["--" + name.strip().replace("_", "-"), value]
        try:
            server = core.create_server(*extra)
        except native.Ws4redisError as exc:
            raise CommandError(str(exc)) from None
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        try:
            server.start()
            self.stdout.write(f"ws4redis: websockets on {options['listen']} (stop with SIGTERM or Ctrl-C)")
            self.stdout.flush()
            while not stop.wait(3600):
                pass
        except native.Ws4redisError as exc:
            raise CommandError(str(exc)) from None
        finally:
            server.stop(STOP_TIMEOUT_MS)
            server.close()
