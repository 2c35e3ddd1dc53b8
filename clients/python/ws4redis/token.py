"""Signed identity tokens for ws4redis (standard library only).

A token tells the websocket server who a browser is: user name, groups and session key, until an
expiry time, signed with a secret the app shares with the server (setting ``token_secret``)::

    token = base64url(payload) + "." + base64url(HMAC-SHA256(secret, payload))
    payload = "v1\\n" + user + "\\n" + ",".join(groups) + "\\n" + session_key + "\\n" + str(expires_at)

base64url without '=' padding; absent user or session key are empty strings; expires_at is in Unix
seconds. Names may not be empty or contain ':' (channel names ``user:<name>:<facility>`` would be
ambiguous: user ``alice:chat`` on facility ``x`` and user ``alice`` on ``chat:x`` would share one),
and the secret has at least 32 bytes (MIN_SECRET_BYTES; the server refuses shorter ones at start). The browser presents the token in the query parameter ``ws4redis-token`` or in the cookie
``ws4redis_token`` (settings ``token_parameter`` and ``token_cookie``).

From a Django view::

    from ws4redis.token import mint_token
    token = mint_token(settings.WS4REDIS_TOKEN_SECRET, user=request.user.get_username() or None,
                       groups=[g.name for g in request.user.groups.all()],
                       session_key=request.session.session_key)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from typing import Iterable, NamedTuple, Optional, Union

__all__ = ["MIN_SECRET_BYTES", "TOKEN_VERSION", "Identity", "InvalidToken", "check_names", "mint_token", "secret_key",
           "token_payload", "verify_token"]

TOKEN_VERSION = "v1"
#: The shortest token secret: 32 bytes, the HMAC-SHA256 output length (RFC 2104 section 3 advises
#: no shorter key); the server refuses shorter ones at start.
MIN_SECRET_BYTES = 32


class Identity(NamedTuple):
    """What a verified token says."""

    user: Optional[str]
    groups: tuple
    session_key: Optional[str]
    expires_at: int


class InvalidToken(ValueError):
    """A token that is malformed, badly signed or expired. `reason` is one of "malformed",
    "signature", "expired"."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def secret_key(secret: Union[str, bytes]) -> bytes:
    """The HMAC key of a token secret (str as UTF-8). ValueError when shorter than MIN_SECRET_BYTES."""
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"the token secret has {len(key)} bytes, at least {MIN_SECRET_BYTES} are needed "
                         f"(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise ValueError("not base64url")
    if len(text) % 4 == 1:
        raise ValueError("bad base64url length")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_names(user: Optional[str], groups: Iterable[str], session_key: Optional[str]) -> None:
    """Raises ValueError (TypeError for a name that is no str) unless the identity can be a token's
    and names unambiguous channels: user and session key are None or a name, each group a name; a
    name is not empty and has no ':' or newline, a group name also no ','."""
    named = [("user name", user), ("session key", session_key), *(("group name", group) for group in groups)]
    for what, name in named:
        if name is None and what != "group name":
            continue
        if not isinstance(name, str):
            raise TypeError(f"the {what} is a str, not {type(name).__name__}")
        if not name:
            raise ValueError(f"the {what} is empty" + ("" if what == "group name" else f" (None means no {what.split()[0]})"))
        shown = what if what == "session key" else f"{what} {name!r}"  # a session key is a credential: never in a message
        if ":" in name:
            raise ValueError(f"the {shown} contains ':', which would make its channel names ambiguous")
        if "\n" in name:
            raise ValueError(f"the {shown} contains a newline, the token's field separator")
        if what == "group name" and "," in name:
            raise ValueError(f"the {shown} contains ',', the token's group separator")


def token_payload(user: Optional[str], groups: Iterable[str], session_key: Optional[str], expires_at: int) -> bytes:
    """The signed bytes of a token, for names that pass check_names."""
    groups = list(groups)
    check_names(user, groups, session_key)
    fields = [TOKEN_VERSION, user or "", ",".join(groups), session_key or "", str(int(expires_at))]
    return "\n".join(fields).encode("utf-8")


def mint_token(
    secret: Union[str, bytes],
    user: Optional[str] = None,
    groups: Iterable[str] = (),
    session_key: Optional[str] = None,
    expires_in: int = 3600,
    expires_at: Optional[int] = None,
) -> str:
    """A token for `user`, `groups` and `session_key`, valid until `expires_at` (Unix seconds) or,
    when that is None, for `expires_in` seconds from now."""
    key = secret_key(secret)
    if expires_at is None:
        expires_at = int(time.time()) + int(expires_in)
    payload = token_payload(user, groups, session_key, expires_at)
    signature = hmac.new(key, payload, hashlib.sha256).digest()
    return _b64url(payload) + "." + _b64url(signature)


def verify_token(token: str, secret: Union[str, bytes], now: Optional[float] = None) -> Identity:
    """The identity a token carries, as the server checks it. Raises InvalidToken, and ValueError for
    a secret shorter than MIN_SECRET_BYTES."""
    key = secret_key(secret)
    parts = token.split(".")
    try:
        if len(parts) != 2:
            raise ValueError("not two parts")
        payload, signature = _b64url_decode(parts[0]), _b64url_decode(parts[1])
    except (ValueError, binascii.Error):
        raise InvalidToken("malformed", "malformed identity token") from None
    if not hmac.compare_digest(signature, hmac.new(key, payload, hashlib.sha256).digest()):
        raise InvalidToken("signature", "identity token signature does not match (tampered, or signed with another secret)")
    try:
        fields = payload.decode("utf-8").split("\n")
        if len(fields) != 5 or fields[0] != TOKEN_VERSION or not re.fullmatch(r"-?[0-9]+", fields[4]):
            raise ValueError("bad fields")
        expires_at = int(fields[4])
    except ValueError:
        raise InvalidToken("malformed", "malformed identity token") from None
    groups = [group for group in fields[2].split(",") if group]
    try:
        check_names(fields[1] or None, groups, fields[3] or None)  # a minter that does not check, or signed elsewhere
    except ValueError as problem:
        raise InvalidToken("malformed", f"identity token refused: {problem}") from None
    now = time.time() if now is None else now
    if expires_at <= now:
        raise InvalidToken("expired", f"identity token expired at {expires_at} (now {int(now)})")
    return Identity(
        user=fields[1] or None,
        groups=tuple(groups),
        session_key=fields[3] or None,
        expires_at=expires_at,
    )
