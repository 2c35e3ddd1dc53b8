"""``RedisPublisher``, the original's API for publishing from Django code::

    from ws4redis_django.publisher import RedisPublisher
    from ws4redis_django.redis_store import RedisMessage, SELF

    RedisPublisher(facility="chat", broadcast=True).publish_message(RedisMessage("hello"))
    RedisPublisher(facility="notify", users=[SELF, "bob"], request=request).publish_message(RedisMessage("hi"), expire=60)
"""

from __future__ import annotations

from typing import Any, Optional

from . import core
from .identity import own_groups, own_sessions, own_users
from .redis_store import Audience, RedisStore, resolve_audience

__all__ = ["RedisPublisher"]

_AUDIENCES = ("session", "user", "group", "broadcast", "any")


class RedisPublisher(RedisStore):
    def __init__(self, connection: Any = None, **kwargs: Any):
        """The channels of an audience: ``facility`` and any of ``broadcast=True``, ``groups``,
        ``users``, ``sessions`` (lists of names, ``SELF`` for the ``request``'s own)."""
        super().__init__(connection)
        self._audience = resolve_audience(**kwargs)

    def fetch_message(self, request: Any, facility: str, audience: str = "any") -> Optional[bytes]:
        """The first message kept for the `request`'s own `audience` ("session", "user", "group",
        "broadcast" or "any": in that order), or None."""
        if audience not in _AUDIENCES:
            raise ValueError(f"audience must be one of {', '.join(_AUDIENCES)}, not {audience!r}")
        wanted = Audience(
            facility=facility,
            broadcast=audience in ("broadcast", "any"),
            groups=tuple(own_groups(request)) if audience in ("group", "any") else (),
            users=tuple(own_users(request)) if audience in ("user", "any") else (),
            sessions=tuple(own_sessions(request)) if audience in ("session", "any") else (),
        )
        if not wanted.channels(""):
            return None
        if self._connection is None:
            return core.publisher().fetch(facility, wanted.broadcast, wanted.users, wanted.groups, wanted.sessions)
        return next((message for message in map(self._connection.get, wanted.fetch_order(self.get_prefix())) if message), None)
