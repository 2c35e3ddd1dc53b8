"""Secrets out of what the Python client shows: exception messages, reprs and logs.

A Redis URL may carry a password (``redis://user:pw@host``, ``unix:///run/redis.sock?password=pw``),
an option list a token secret (``--token-secret s``). Messages show them masked, with the rest kept
so that they still say which server and which setting::

    redact_url("redis://:pw@redis.internal:6379/0")       -> "redis://:***@redis.internal:6379/0"
    redact_url("unix:///run/redis.sock?db=0&password=pw") -> "unix:///run/redis.sock?db=0&password=***"
    redact_argv(["--token-secret", "s", "--threads", "2"]) -> ["--token-secret", "***", "--threads", "2"]
"""

from __future__ import annotations

import re
from typing import Iterable, List

__all__ = ["MASK", "redact_argv", "redact_url", "secret_setting"]

MASK = "***"

# The userinfo of any URL in a text: "scheme://" then everything up to the last '@' before the path
# (a password may hold a raw '@').
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s'\"]*)@")
# A query or key=value pair whose name says it holds a secret (password=, token_secret=, ...).
_SECRET_PAIR = re.compile(r"(?P<name>\b[\w-]*(?:password|secret)[\w-]*=)[^&\s'\"]*", re.IGNORECASE)


def secret_setting(name: str) -> bool:
    """Whether the value of the setting or option `name` (``token_secret``, ``--token-secret``,
    ``redis_password``) is a secret as a whole."""
    normalized = name.lstrip("-").lower().replace("-", "_")
    return "secret" in normalized or "password" in normalized


def _masked_userinfo(match: re.Match) -> str:
    # "user:password" keeps the user; a userinfo without ':' may be a password alone (redis://pw@host).
    user, colon, _ = match.group("userinfo").partition(":")
    return match.group("scheme") + (f"{user}:{MASK}" if colon else MASK) + "@"


def redact_url(text: str) -> str:
    """`text` (a URL, or a message holding URLs) with URL passwords and secret query values masked."""
    text = _USERINFO.sub(_masked_userinfo, text)
    return _SECRET_PAIR.sub(lambda match: match.group("name") + MASK, text)


def redact_argv(argv: Iterable[str]) -> List[str]:
    """Command-line options with the values of secret options masked (``--token-secret s`` and
    ``--token-secret=s``) and the passwords of URLs in any value."""
    redacted: List[str] = []
    secret_value_next = False
    for argument in argv:
        if secret_value_next:
            redacted.append(MASK)
            secret_value_next = False
            continue
        name, equals, _ = argument.partition("=")
        if argument.startswith("--") and secret_setting(name):
            redacted.append(f"{name}={MASK}" if equals else argument)
            secret_value_next = not equals
        else:
            redacted.append(redact_url(argument))
    return redacted
