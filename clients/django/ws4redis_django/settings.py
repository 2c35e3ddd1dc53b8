"""The original's settings (django-websocket-redis's ``ws4redis.settings``) with their defaults.

Read from the Django settings on every access, so that ``override_settings`` and settings configured
late apply: ``from ws4redis_django import settings; settings.WS4REDIS_EXPIRE``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

DEFAULTS = {
    # The original's settings.
    "WEBSOCKET_URL": "/ws/",
    "WEBSOCKET_HOST": None,
    "WS4REDIS_CONNECTION": {"host": "localhost", "port": 6379, "db": 0, "password": None},
    "WS4REDIS_PREFIX": None,
    "WS4REDIS_EXPIRE": 3600,
    "WS4REDIS_HEARTBEAT": None,
    "WS4REDIS_ALLOWED_CHANNELS": None,
    "WS4REDIS_PROCESS_REQUEST": None,
    # Ours: further settings of the core by name ({"heartbeat_interval": 4000, "threads": 2, ...}; see
    # `ws4redis settings`), and the path of libws4redis.so when the dynamic linker does not find it.
    "WS4REDIS_SERVER_SETTINGS": {},
    "WS4REDIS_LIBRARY": None,
}


def __getattr__(name: str) -> Any:
    if name not in DEFAULTS:
        raise AttributeError(f"ws4redis_django.settings has no {name}")
    return getattr(django_settings, name, DEFAULTS[name])
