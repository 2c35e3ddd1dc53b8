"""Where the original kept its login receiver (Django imports every installed app's models module)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from .identity import MEMBEROF_KEY


@receiver(user_logged_in)
def store_groups_in_session(sender: Any, user: Any, request: Any, **kwargs: Any) -> None:
    """Stores the names of the user's groups in the session at login, so that a websocket handshake
    learns them without a database query (as django-websocket-redis does)."""
    if hasattr(user, "groups") and request is not None and hasattr(request, "session"):
        request.session[MEMBEROF_KEY] = [group.name for group in user.groups.all()]
