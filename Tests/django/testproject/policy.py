"""WS4REDIS_ALLOWED_CHANNELS of the test project: signature f(request, channels) as in the original."""

from django.conf import settings
from django.core.exceptions import PermissionDenied


def allowed_channels(request, channels):
    facility = request.path_info.replace(settings.WEBSOCKET_URL, "", 1)
    if facility == "staff-only":
        groups = request.session.get("ws4redis:memberof", []) if request.session is not None else []
        if "staff" not in groups:
            raise PermissionDenied("staff only")
    if facility == "no-broadcast":
        return [channel for channel in channels if channel != "subscribe-broadcast"]
    return channels


class BearerUser:
    """The user a bearer token names (a stand-in for a JWT library)."""

    is_authenticated = True

    def __init__(self, name):
        self.name = name

    def get_username(self):
        return self.name


def bearer_identity(request):
    """A WS4REDIS_PROCESS_REQUEST: the identity from `Authorization: Bearer <user>` instead of the session."""
    request.session = None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    request.user = BearerUser(token) if scheme == "Bearer" and token else None
