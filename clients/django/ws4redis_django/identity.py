"""Who a websocket is, the way django-websocket-redis decided it, for the core's identity sources.

The session comes from the SESSION_COOKIE_NAME cookie through SESSION_ENGINE, the user from
``django.contrib.auth.get_user``, the groups from the session entry ``ws4redis:memberof`` (filled at
login, see models.py: no database query for groups per handshake). WS4REDIS_PROCESS_REQUEST replaces
that step; WS4REDIS_ALLOWED_CHANNELS(request, channels) then narrows the channels or raises
PermissionDenied. The same decision serves the core's authorization callback (``authorize``, for
runserver and ``manage.py ws4redis``) and the auth request view (views.py).
"""

from __future__ import annotations

import io
import logging
import sys
from importlib import import_module
from typing import Any, Callable, Dict, List, Mapping, Optional

from django.conf import settings as django_settings
from django.contrib.auth import get_user
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections
from django.utils.functional import SimpleLazyObject
from django.utils.module_loading import import_string

from ws4redis import native
from ws4redis.token import check_names

from . import settings

#: The channel flags the original hands to WS4REDIS_ALLOWED_CHANNELS, and which identity each needs.
CHANNELS = {
    "subscribe-session": "session", "subscribe-group": "groups", "subscribe-user": "user", "subscribe-broadcast": None,
    "publish-session": "session", "publish-group": "groups", "publish-user": "user", "publish-broadcast": None,
}  # fmt: skip
MEMBEROF_KEY = "ws4redis:memberof"

logger = logging.getLogger("ws4redis_django")


def is_authenticated(request: Any) -> bool:
    return bool(request and getattr(request, "user", None) and request.user.is_authenticated)


def process_request(request: WSGIRequest) -> None:
    """The original's default: session and lazy user from the session cookie, else both None."""
    request.session = None
    request.user = None
    session_key = request.COOKIES.get(django_settings.SESSION_COOKIE_NAME)
    if session_key is not None:
        request.session = import_module(django_settings.SESSION_ENGINE).SessionStore(session_key)
        request.user = SimpleLazyObject(lambda: get_user(request))


def _callback(name: str) -> Optional[Callable[..., Any]]:
    value = getattr(settings, name)
    if value is None or callable(value):
        return value
    try:
        function = import_string(value)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{name} = {value!r} cannot be imported: {exc}") from exc
    if not callable(function):
        raise ImproperlyConfigured(f"{name} = {value!r} is not callable")
    return function


def check_callbacks() -> None:
    """Fails early (ImproperlyConfigured) on a dotted path that does not name a function; the original
    ignored it silently, which would let a misspelt channel policy allow everything."""
    _callback("WS4REDIS_PROCESS_REQUEST")
    _callback("WS4REDIS_ALLOWED_CHANNELS")


def requested_channels(request: WSGIRequest) -> List[str]:
    """The channel flags of the query, in order, as the original's process_subscriptions (without echo)."""
    names = (parameter.strip().lower() for parameter in request.GET)
    return list(dict.fromkeys(name for name in names if name in CHANNELS))


def own_users(request: Any) -> List[str]:
    """The request's own user name (what SELF stands for in ``users``), if logged in."""
    return [request.user.get_username()] if is_authenticated(request) else []


def own_groups(request: Any) -> List[str]:
    """The request's own groups (SELF in ``groups``): the session's ws4redis:memberof, if logged in."""
    session = getattr(request, "session", None) if is_authenticated(request) else None
    return [str(group) for group in session.get(MEMBEROF_KEY, ())] if session is not None else []


def own_sessions(request: Any) -> List[str]:
    """The request's own session key (SELF in ``sessions``), if it has a session."""
    session = getattr(request, "session", None) if request else None
    return [session.session_key] if session is not None and session.session_key else []


def identify(environ: Dict[str, Any]) -> Dict[str, Any]:
    """The identity and allowed flags of the websocket request `environ`, as the core's authorization
    callback answers. Raises PermissionDenied when WS4REDIS_ALLOWED_CHANNELS refuses.

    Flags whose identity is missing (subscribe-user without a logged-in user, subscribe-group for a
    user in no group) are dropped: the original subscribed to channels nobody publishes to. An
    identity with an empty name or a ':' in one is refused (PermissionDenied, and a warning in the
    log): its channel names would be ambiguous (user ``alice:chat`` on facility ``x`` would share
    ``user:alice:chat:x`` with user ``alice`` on facility ``chat:x``)."""
    request = WSGIRequest(environ)
    (_callback("WS4REDIS_PROCESS_REQUEST") or process_request)(request)
    channels = requested_channels(request)
    allowed_channels = _callback("WS4REDIS_ALLOWED_CHANNELS")
    if allowed_channels is not None:
        channels = list(allowed_channels(request, channels))
    if getattr(request, "session", None) is not None:
        request.session.keys()  # loads it: the session backends forget the key of a session that does not exist (expired, forged)
    identity = {
        "user": next(iter(own_users(request)), None),
        "groups": own_groups(request),
        "session": next(iter(own_sessions(request)), None),
    }
    try:
        check_names(identity["user"], identity["groups"], identity["session"])
    except ValueError as problem:
        logger.warning("websocket identity refused for %r: %s", request.path, problem)
        raise PermissionDenied("this identity cannot use websockets: its names do not make unambiguous channel names") from None
    granted = [name for name in channels if name in CHANNELS and (CHANNELS[name] is None or identity[CHANNELS[name]])]
    return {**identity, "allowed_flags": granted + ["echo"]}


def websocket_environ(handshake: Mapping[str, Any]) -> Dict[str, Any]:
    """A WSGI environ for the websocket request the core asks about (method, path, query, headers,
    remote_address of ws4redis.native's authorizer request)."""
    environ: Dict[str, Any] = {
        "REQUEST_METHOD": handshake.get("method") or "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": (handshake.get("path") or "/").encode("utf-8").decode("latin-1"),  # WSGI: bytes as latin-1
        "QUERY_STRING": handshake.get("query") or "",
        "REMOTE_ADDR": handshake.get("remote_address") or "",
        "SERVER_NAME": "ws4redis",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in handshake.get("header_list") or ():
        if "_" in name:  # as Django's runserver and nginx: no spoofing through the '_'/'-' ambiguity
            continue
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def authorize(handshake: Dict[str, Any]) -> Dict[str, Any]:
    """The core's authorization callback. Runs on a worker thread of the core, like a request of its
    own: database connections are recycled before and after as Django does per request."""
    close_old_connections()
    try:
        return identify(websocket_environ(handshake))
    except PermissionDenied as denied:
        raise native.Denied(403, str(denied) or "permission denied") from None
    except Exception:
        logger.exception("websocket authorization of %s failed", handshake.get("path"))
        raise
    finally:
        close_old_connections()
