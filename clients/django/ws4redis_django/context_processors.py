"""Template context: ``WEBSOCKET_URI`` and ``WS4REDIS_HEARTBEAT``, as the original's context processor.

TEMPLATES[...]["OPTIONS"]["context_processors"] += ["ws4redis_django.context_processors.default"]
"""

from __future__ import annotations

import json
from typing import Any, Dict

from django.utils.safestring import mark_safe

from . import settings


def default(request: Any) -> Dict[str, Any]:
    host = settings.WEBSOCKET_HOST or request.get_host()
    protocol = "wss://" if request.is_secure() else "ws://"
    heartbeat = settings.WS4REDIS_HEARTBEAT
    return {
        "WEBSOCKET_URI": protocol + host + settings.WEBSOCKET_URL,
        # A JavaScript literal for ws4redis.js's heartbeat_msg option: the quoted string, or null.
        "WS4REDIS_HEARTBEAT": mark_safe(json.dumps(heartbeat) if heartbeat else "null"),
    }
