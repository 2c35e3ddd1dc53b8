"""Messages and audiences as django-websocket-redis's ``ws4redis.redis_store`` has them.

An audience (facility plus broadcast, groups, users, sessions) names the Redis channels
``{prefix:}broadcast:<facility>``, ``{prefix:}group:<name>:<facility>``, ``{prefix:}user:<name>:<facility>``
and ``{prefix:}session:<key>:<facility>``; the ``SELF`` marker in a list stands for the request's own
user, groups (from the session, see models.py) or session key.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Tuple

from . import core, settings
from .identity import own_groups, own_sessions, own_users

#: Stands for the request's own user, groups or session in an audience list: ``users=[SELF]``.
SELF = type("SELF_TYPE", (object,), {})()


class RedisMessage(bytes):
    """A message to publish: bytes (a str is encoded as UTF-8). The heartbeat string is no message:
    ``RedisMessage(WS4REDIS_HEARTBEAT)`` is None, as is anything that is not a message."""

    def __new__(cls, value: Any) -> Optional["RedisMessage"]:  # type: ignore[misc]
        heartbeat = settings.WS4REDIS_HEARTBEAT
        if isinstance(value, str):
            value = value.encode()
        if not isinstance(value, (bytes, bytearray)) or (heartbeat is not None and value == heartbeat.encode()):
            return None
        return super().__new__(cls, value)


class Audience(NamedTuple):
    """Who receives a message: the resolved names, no SELF left."""

    facility: str
    broadcast: bool = False
    groups: Tuple[str, ...] = ()
    users: Tuple[str, ...] = ()
    sessions: Tuple[str, ...] = ()

    def channels(self, prefix: str) -> List[str]:
        """The Redis channel names, in the order of publishing (broadcast, groups, users, sessions)."""
        return self._in_order(prefix, ("broadcast", "group", "user", "session"))

    def fetch_order(self, prefix: str) -> List[str]:
        """The Redis key names in the order fetch_message tries them (sessions, users, groups, broadcast)."""
        return self._in_order(prefix, ("session", "user", "group", "broadcast"))

    def _in_order(self, prefix: str, kinds: Tuple[str, ...]) -> List[str]:
        def of(kind: str) -> List[str]:
            if kind == "broadcast":
                return [f"{prefix}broadcast:{self.facility}"] if self.broadcast else []
            return [f"{prefix}{kind}:{name}:{self.facility}" for name in getattr(self, kind + "s")]

        return [name for kind in kinds for name in of(kind)]


def _names(value: Any, own: Callable[[Any], List[str]], request: Any, argument: str) -> Tuple[str, ...]:
    """The names of one audience argument: a list or tuple (SELF resolved), or the original's
    deprecated forms True (the request's own) and a single name."""
    if isinstance(value, (list, tuple)):
        names: Iterable[str] = (name for item in value for name in (own(request) if item is SELF else [str(item)]))
    elif value is True:
        warnings.warn(f"Wrap {argument}=True into a list or tuple using SELF", DeprecationWarning, stacklevel=4)
        names = own(request)
    elif isinstance(value, str):
        warnings.warn(f"Wrap a single {argument[:-1]} into a list or tuple", DeprecationWarning, stacklevel=4)
        names = [value]
    elif value is False:
        names = []
    else:
        raise ValueError(f"Argument `{argument}` must be a list or tuple")
    return tuple(dict.fromkeys(names))  # each channel once, as the original's set of channels


def resolve_audience(request: Any = None, facility: Optional[str] = None, broadcast: bool = False, groups: Any = (),
                     users: Any = (), sessions: Any = ()) -> Audience:
    if not facility:
        raise ValueError("an audience needs a facility")
    return Audience(
        facility=str(facility),
        broadcast=broadcast is True,
        groups=_names(groups, own_groups, request, "groups"),
        users=_names(users, own_users, request, "users"),
        sessions=_names(sessions, own_sessions, request, "sessions"),
    )


class RedisStore:
    """Publishes to an audience's channels: PUBLISH, and SET ... EX expire to keep the message for
    websockets that connect later. Through the ws4redis library, or through `connection` (a redis-py
    client) when one is given, as the original did."""

    def __init__(self, connection: Any = None):
        self._connection = connection
        self._audience: Optional[Audience] = None

    @staticmethod
    def get_prefix() -> str:
        return f"{settings.WS4REDIS_PREFIX}:" if settings.WS4REDIS_PREFIX else ""

    def publish_message(self, message: RedisMessage, expire: Optional[int] = None) -> int:
        """Publishes `message` to the audience and keeps it `expire` seconds (default WS4REDIS_EXPIRE;
        0: not kept). Returns the number of receivers Redis counted (the original returned None)."""
        if expire is None:
            expire = settings.WS4REDIS_EXPIRE
        if not isinstance(message, RedisMessage):
            raise ValueError("message object is not of type RedisMessage")
        audience = self._audience
        if audience is None or not audience.channels(""):
            return 0
        if self._connection is None:
            return core.publisher().publish(bytes(message), audience.facility, audience.broadcast, audience.users,
                                            audience.groups, audience.sessions, expire=int(expire))
        receivers = 0
        for channel in audience.channels(self.get_prefix()):
            receivers += self._connection.publish(channel, message)
            if expire > 0:
                self._connection.set(channel, message, ex=int(expire))
        return receivers
