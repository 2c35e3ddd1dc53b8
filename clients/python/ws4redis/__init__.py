"""Python helpers for ws4redis (the Swift re-creation of django-websocket-redis).

- ``ws4redis.token``: mint and verify signed identity tokens (standard library only).
- ``ws4redis.native``: ctypes binding over libws4redis.so: Publisher, an in-process Server with an
  authorization callback, and the library's own token minting.
- ``ws4redis.redact``: URL passwords and secret options masked, for messages and logs.
"""

from .token import Identity, InvalidToken, mint_token, verify_token

__all__ = ["Identity", "InvalidToken", "mint_token", "verify_token"]
__version__ = "0.2.0"
