"""The auth request view: ws4redis (``ws4redis serve`` or ``ws4redis-host`` with
``--auth-url http://APP/ws4redis/auth/``) asks it about each handshake, forwarding the handshake's
Cookie and Authorization headers, X-Original-URI, X-Original-Method and X-Forwarded-For. It answers
as the Django identity decides (identity.py): 200 with X-WS4Redis-User, X-WS4Redis-Groups,
X-WS4Redis-Session and X-WS4Redis-Allow; 403 when WS4REDIS_ALLOWED_CHANNELS raises PermissionDenied,
or when a name of the identity is empty or has a ':' (logged as a warning).

    urlpatterns += [path("ws4redis/auth/", ws4redis_django.views.auth_request)]

Route it where only ws4redis reaches it (an internal address, or deny it in the proxy): it tells a
caller the identity its own cookies carry.
"""

from __future__ import annotations

from typing import Any, Dict

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .identity import identify

FORWARDED = ("HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_HOST")


def websocket_environ(request: HttpRequest) -> Dict[str, Any]:
    """The websocket request the auth request describes, as a WSGI environ."""
    path, _, query = request.headers.get("X-Original-URI", "/").partition("?")
    environ = {name: value for name, value in request.META.items() if not name.startswith("HTTP_") or name in FORWARDED}
    forwarded_for = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
    environ.update(
        REQUEST_METHOD=request.headers.get("X-Original-Method", "GET"),
        PATH_INFO=path.encode("utf-8").decode("latin-1"),
        QUERY_STRING=query,
        REMOTE_ADDR=forwarded_for or request.META.get("REMOTE_ADDR", ""),
    )
    return environ


@never_cache
@require_GET
def auth_request(request: HttpRequest) -> HttpResponse:
    answer = identify(websocket_environ(request))  # PermissionDenied: Django answers 403
    response = HttpResponse(status=200)
    if answer["user"]:
        response["X-WS4Redis-User"] = answer["user"]
    if answer["groups"]:
        response["X-WS4Redis-Groups"] = ",".join(answer["groups"])
    if answer["session"]:
        response["X-WS4Redis-Session"] = answer["session"]
    response["X-WS4Redis-Allow"] = ",".join(answer["allowed_flags"])
    return response
