"""ctypes binding over libws4redis.so (the C ABI of include/ws4redis.h).

The library is the `library` argument when one is given; otherwise the first of these that loads:
the copy bundled in this package (the ws4redis-swift wheel carries it), the environment variable
WS4REDIS_LIBRARY, or the system's (``ctypes.util.find_library("ws4redis")``). ``python -m ws4redis``
tells which one it is; when none loads, the error lists each place and why it failed.

    from ws4redis.native import Publisher
    with Publisher("redis://127.0.0.1:6379/0") as pub:
        pub.publish("hello", facility="chat", broadcast=True)

    from ws4redis.native import Server, Denied
    server = Server("--listen", "127.0.0.1:8080", "--redis-url", "redis://127.0.0.1:6379/0")
    server.set_authorizer(lambda request: {"user": "alice", "groups": ["staff"]})
    server.start()

A Python HTTP server can host websockets itself (no --listen): it asks the core about an upgrade
with Server.check_handshake(), sends the response the Handshake describes and, for a 101, hands
the socket to the core with Server.adopt(handshake, fd, preface).
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import os
import threading
from ctypes import POINTER, byref, c_char_p, c_int, c_int64, c_size_t, c_uint, c_uint32, c_uint64, c_void_p
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, Mapping, Optional, Tuple, Union

from .redact import redact_argv, redact_url
from .token import check_names, secret_key

__all__ = [
    "FLAGS",
    "Denied",
    "Handshake",
    "Publisher",
    "Server",
    "Ws4redisError",
    "flag_names",
    "flags_value",
    "load_library",
    "mint_token",
]

WS4R_OK, WS4R_EINVAL, WS4R_ESTATE, WS4R_EHANDSHAKE, WS4R_ELIMIT = 0, 1, 4, 7, 10
ABI_VERSION = 1
#: Where a wheel of ws4redis-swift puts the library: next to this module, named by its soname.
BUNDLED_LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"libws4redis.so.{ABI_VERSION}")

#: Connection flags (query names of a websocket URL) and their WS4R_FLAG_* bits.
FLAGS: Dict[str, int] = {
    "subscribe-broadcast": 1 << 0,
    "subscribe-user": 1 << 1,
    "subscribe-group": 1 << 2,
    "subscribe-session": 1 << 3,
    "publish-broadcast": 1 << 4,
    "publish-user": 1 << 5,
    "publish-group": 1 << 6,
    "publish-session": 1 << 7,
    "echo": 1 << 8,
}
FLAGS_ALL = 0x1FF


def flag_names(bits: int) -> set:
    """The flag names of a WS4R_FLAG_* bit set."""
    return {name for name, bit in FLAGS.items() if bits & bit}


def flags_value(flags: Union[int, str, Iterable[str]]) -> int:
    """WS4R_FLAG_* bits of a set of names (or 'all', or bits already)."""
    if isinstance(flags, int):
        return flags & FLAGS_ALL
    if isinstance(flags, str):
        flags = [] if not flags.strip() else flags.split(",")
    bits = 0
    for name in flags:
        name = name.strip().lower()
        if name == "all":
            bits |= FLAGS_ALL
        elif name in FLAGS:
            bits |= FLAGS[name]
        else:
            raise ValueError(f"unknown flag {name!r}; known: {', '.join(FLAGS)}, all")
    return bits


class Ws4redisError(RuntimeError):
    """A ws4r_* call failed: `code` is the WS4R_E* status, the message carries the library's errmsg."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class Denied(Exception):
    """Raised by an authorizer to refuse a handshake with an HTTP status (4xx/5xx) and a reason (the body)."""

    def __init__(self, status: int = 403, reason: str = "forbidden"):
        super().__init__(status, reason)
        self.status = int(status)
        self.reason = str(reason)


# ---------------------------------------------------------------------------------------------
# Structs (mirrors of include/ws4redis.h; fields are only ever appended there)


class _Setting(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("value", c_char_p)]


_Header = _Setting  # ws4r_header has the same layout: name, value


class _Config(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("redis_url", c_char_p),
        ("key_prefix", c_char_p),
        ("url_prefix", c_char_p),
        ("listen_address", c_char_p),
        ("echo_path", c_char_p),
        ("io_threads", c_uint32),
        ("max_message_size", c_uint32),
        ("max_frame_size", c_uint32),
        ("max_connections", c_uint32),
        ("max_outbound_bytes", c_uint32),
        ("ping_interval_ms", c_uint32),
        ("settings", POINTER(_Setting)),
        ("setting_count", c_size_t),
    ]


class _Stats(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("connections", c_uint64),
        ("connections_total", c_uint64),
        ("subscriptions", c_uint64),
        ("channels", c_uint64),
        ("messages_in", c_uint64),
        ("messages_out", c_uint64),
        ("client_messages_in", c_uint64),
        ("slow_client_closes", c_uint64),
        ("redis_connected", c_uint32),
        ("messages_dropped", c_uint64),
    ]


class _Audience(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("facility", c_char_p),
        ("broadcast", c_int),
        ("users", POINTER(c_char_p)),
        ("user_count", c_size_t),
        ("groups", POINTER(c_char_p)),
        ("group_count", c_size_t),
        ("sessions", POINTER(c_char_p)),
        ("session_count", c_size_t),
    ]


class _AuthRequest(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("method", c_char_p),
        ("path", c_char_p),
        ("facility", c_char_p),
        ("query", c_char_p),
        ("headers", POINTER(_Header)),
        ("header_count", c_size_t),
        ("cookies", POINTER(_Header)),
        ("cookie_count", c_size_t),
        ("remote_address", c_char_p),
        ("requested_flags", c_uint),
    ]


class _Request(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("method", c_char_p),
        ("path", c_char_p),
        ("query", c_char_p),
        ("http_version", c_char_p),
        ("headers", POINTER(_Header)),
        ("header_count", c_size_t),
        ("remote_address", c_char_p),
    ]


_AUTHORIZE_FN = ctypes.CFUNCTYPE(None, c_void_p, POINTER(_AuthRequest), c_void_p)

# name: (restype, argtypes)
_PROTOTYPES: Dict[str, tuple] = {
    "ws4r_strerror": (c_char_p, [c_int]),
    "ws4r_version_string": (c_char_p, []),
    "ws4r_version_number": (c_uint, []),
    "ws4r_config_init": (None, [POINTER(_Config)]),
    "ws4r_stats_init": (None, [POINTER(_Stats)]),
    "ws4r_audience_init": (None, [POINTER(_Audience)]),
    "ws4r_server_create": (c_int, [POINTER(_Config), POINTER(c_void_p)]),
    "ws4r_server_create_with_args": (c_int, [POINTER(_Config), c_int, POINTER(c_char_p), POINTER(c_void_p)]),
    "ws4r_server_set_authorizer": (c_int, [c_void_p, _AUTHORIZE_FN, c_void_p]),
    "ws4r_server_start": (c_int, [c_void_p]),
    "ws4r_server_stop": (c_int, [c_void_p, c_uint32]),
    "ws4r_server_destroy": (None, [c_void_p]),
    "ws4r_server_errmsg": (c_char_p, [c_void_p]),
    "ws4r_server_stats": (c_int, [c_void_p, POINTER(_Stats)]),
    "ws4r_server_metrics": (c_int, [c_void_p, c_char_p, c_size_t, POINTER(c_size_t)]),
    "ws4r_server_setting": (c_char_p, [c_void_p, c_char_p]),
    "ws4r_auth_result_set_user": (c_int, [c_void_p, c_char_p]),
    "ws4r_auth_result_add_group": (c_int, [c_void_p, c_char_p]),
    "ws4r_auth_result_set_session": (c_int, [c_void_p, c_char_p]),
    "ws4r_auth_result_set_allowed_flags": (c_int, [c_void_p, c_uint]),
    "ws4r_auth_result_deny": (c_int, [c_void_p, c_int, c_char_p]),
    "ws4r_token_mint": (
        c_int,
        [c_void_p, c_size_t, c_char_p, POINTER(c_char_p), c_size_t, c_char_p, c_int64, c_char_p, c_size_t, POINTER(c_size_t)],
    ),
    "ws4r_publisher_create": (c_int, [c_char_p, c_char_p, POINTER(c_void_p)]),
    "ws4r_publisher_publish": (c_int, [c_void_p, POINTER(_Audience), c_char_p, c_size_t, c_int64, POINTER(c_uint64)]),
    "ws4r_publisher_fetch": (c_int, [c_void_p, POINTER(_Audience), c_void_p, c_size_t, POINTER(c_size_t), POINTER(c_int)]),
    "ws4r_publisher_errmsg": (c_char_p, [c_void_p]),
    "ws4r_publisher_destroy": (None, [c_void_p]),
    "ws4r_request_init": (None, [POINTER(_Request)]),
    "ws4r_server_check_handshake": (c_int, [c_void_p, POINTER(_Request), POINTER(c_void_p)]),
    "ws4r_handshake_status": (c_int, [c_void_p]),
    "ws4r_handshake_reason": (c_char_p, [c_void_p]),
    "ws4r_handshake_body": (c_char_p, [c_void_p]),
    "ws4r_handshake_header_count": (c_size_t, [c_void_p]),
    "ws4r_handshake_header": (c_int, [c_void_p, c_size_t, POINTER(c_char_p), POINTER(c_char_p)]),
    "ws4r_handshake_free": (None, [c_void_p]),
    # The release callback is not bound (always NULL): Python keeps nothing the core must give back.
    "ws4r_server_adopt": (c_int, [c_void_p, c_void_p, c_int, c_char_p, c_size_t, c_void_p, c_void_p]),
}

_libraries: Dict[str, "_Library"] = {}
_libraries_lock = threading.Lock()


class _Library:
    """A loaded libws4redis with its prototypes declared. Functions the library lacks (an older
    version) raise a clear error when called."""

    def __init__(self, path: str, origin: str):
        self.path = path
        #: Why this library was chosen (the argument, the bundled copy, WS4REDIS_LIBRARY, the system's).
        self.origin = origin
        self.cdll = ctypes.CDLL(path)
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                fn = getattr(self.cdll, name)
            except AttributeError:
                continue
            fn.restype, fn.argtypes = restype, argtypes

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self.cdll, name)
        except AttributeError:
            raise AttributeError(f"{self.path} has no {name} (version {self.version}); a newer libws4redis is needed") from None

    @property
    def version(self) -> str:
        return self.cdll.ws4r_version_string().decode()

    def strerror(self, code: int) -> str:
        return self.cdll.ws4r_strerror(code).decode(errors="replace")


def library_candidates() -> Iterator[Tuple[str, Optional[str], str]]:
    """(origin, path, or why that place has none) in the order load_library tries them; lazily, so
    that the system's search (ctypes.util.find_library runs ldconfig) happens only when needed."""
    bundled = os.path.exists(BUNDLED_LIBRARY)
    yield "bundled in the ws4redis package", BUNDLED_LIBRARY if bundled else None, f"no {BUNDLED_LIBRARY} (not a wheel install)"
    yield "WS4REDIS_LIBRARY", os.environ.get("WS4REDIS_LIBRARY") or None, "not set"
    yield "the system's (ctypes.util.find_library)", ctypes.util.find_library("ws4redis"), "none found"


def _load_once(path: str, origin: str) -> _Library:
    with _libraries_lock:
        lib = _libraries.get(path)
        if lib is None:
            lib = _libraries[path] = _Library(path, origin)
        return lib


def load_library(library: Union[None, str, os.PathLike, "_Library"] = None) -> _Library:
    """The library at `library`, else the first of library_candidates() that loads. Loaded once per
    path; its `origin` says which place it came from."""
    if isinstance(library, _Library):
        return library
    candidates = [("the library argument", os.fspath(library), "")] if library is not None else library_candidates()
    failures = []
    for origin, path, absence in candidates:
        if path is None:
            failures.append(f"{origin}: {absence}")
            continue
        try:
            return _load_once(path, origin)
        except OSError as error:
            failures.append(f"{origin}: {path}: {error}")
    raise OSError("libws4redis could not be loaded: pass library=PATH, set WS4REDIS_LIBRARY, or install it "
                  "(pip install ws4redis-swift, or make install). Tried:\n  " + "\n  ".join(failures))


def _encode(value: Union[str, bytes, None]) -> Optional[bytes]:
    if value is None:
        return None
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _decode(value: Optional[bytes]) -> Optional[str]:
    return None if value is None else value.decode("utf-8", errors="replace")


def _error_text(lib: "_Library", rc: int, errmsg: Optional[bytes]) -> str:
    """The text of a failed call: the status, then the library's explanation, with any URL password
    in it masked (the library masks its own, this holds for every version of it)."""
    detail = _decode(errmsg)
    return lib.strerror(rc) + (f": {redact_url(detail)}" if detail else "")


def _string_array(values: Iterable[Union[str, bytes]]):
    """(pointer, count, keep-alive) for a `const char *const *` argument."""
    encoded = [_encode(v) for v in values]
    if not encoded:
        return None, 0, None
    array = (c_char_p * len(encoded))(*encoded)
    return ctypes.cast(array, POINTER(c_char_p)), len(encoded), array


# ---------------------------------------------------------------------------------------------
# Tokens


def mint_token(
    secret: Union[str, bytes],
    user: Optional[str] = None,
    groups: Iterable[str] = (),
    session_key: Optional[str] = None,
    expires_in: int = 3600,
    expires_at: Optional[int] = None,
    library: Any = None,
) -> str:
    """ws4redis.token.mint_token done by the library (ws4r_token_mint): the same token, and the same
    ValueError for a short secret or a name that would make channel names ambiguous."""
    import time

    lib = load_library(library)
    key = secret_key(secret)
    groups = list(groups)
    check_names(user, groups, session_key)
    if expires_at is None:
        expires_at = int(time.time()) + int(expires_in)
    group_ptr, group_count, keep = _string_array(groups)
    length = c_size_t(0)
    capacity = 256
    while True:
        out = ctypes.create_string_buffer(capacity)
        rc = lib.ws4r_token_mint(key, len(key), _encode(user), group_ptr, group_count, _encode(session_key), int(expires_at), out, capacity, byref(length))
        if rc == WS4R_ELIMIT and length.value + 1 > capacity:
            capacity = length.value + 1
            continue
        if rc != WS4R_OK:
            raise Ws4redisError(rc, f"ws4r_token_mint: {lib.strerror(rc)}")
        del keep
        return out.value.decode("ascii")


# ---------------------------------------------------------------------------------------------
# Publisher


class _Closing:
    """A handle that frees its C object on close() (which subclasses define), at the end of a with
    block, or when collected."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Publisher(_Closing):
    """What django-websocket-redis's RedisPublisher does, in the library: PUBLISH to every channel of
    an audience (broadcast, groups, users, sessions) and SET channel message EX expire."""

    def __init__(self, redis_url: Optional[str] = None, prefix: Optional[str] = None, library: Any = None):
        self._lib = load_library(library)
        self._lock = threading.Lock()
        # Shown in errors and repr() with its password masked.
        self._shown_url = redact_url(redis_url) if redis_url is not None else None
        handle = c_void_p()
        rc = self._lib.ws4r_publisher_create(_encode(redis_url), _encode(prefix), byref(handle))
        if rc != WS4R_OK:
            message = self._errmsg(handle, rc)
            self._lib.ws4r_publisher_destroy(handle)
            raise Ws4redisError(rc, f"ws4r_publisher_create({self._shown_url!r}): {message}")
        self._handle: Optional[c_void_p] = handle

    def __repr__(self) -> str:
        state = "" if getattr(self, "_handle", None) is not None else " closed"
        return f"<ws4redis.native.Publisher {self._shown_url!r}{state}>"

    def _errmsg(self, handle: c_void_p, rc: int) -> str:
        return _error_text(self._lib, rc, self._lib.ws4r_publisher_errmsg(handle) if handle else None)

    def _audience(self, facility: str, broadcast: bool, users, groups, sessions):
        if isinstance(users, (str, bytes)) or isinstance(groups, (str, bytes)) or isinstance(sessions, (str, bytes)):
            raise TypeError("users, groups and sessions are lists of names, not a single string")
        a = _Audience()
        self._lib.ws4r_audience_init(byref(a))
        a.facility = _encode(facility)
        a.broadcast = 1 if broadcast else 0
        keep = []
        for field, values in (("users", users), ("groups", groups), ("sessions", sessions)):
            ptr, count, array = _string_array(values)
            if count:
                keep.append(array)
                setattr(a, field, ptr)
                setattr(a, field[:-1] + "_count", count)
        return a, keep

    def _live(self) -> c_void_p:
        if self._handle is None:
            raise Ws4redisError(WS4R_ESTATE, "the publisher is closed")
        return self._handle

    def publish(
        self,
        message: Union[bytes, str],
        facility: str,
        broadcast: bool = False,
        users: Iterable[str] = (),
        groups: Iterable[str] = (),
        sessions: Iterable[str] = (),
        expire: int = 3600,
    ) -> int:
        """Publishes `message` (str is sent as UTF-8) and returns the number of receivers (the sum of
        PUBLISH replies: one per subscribed server, not per websocket)."""
        data = _encode(message) or b""
        a, keep = self._audience(facility, broadcast, users, groups, sessions)
        receivers = c_uint64(0)
        with self._lock:
            handle = self._live()
            rc = self._lib.ws4r_publisher_publish(handle, byref(a), data, len(data), int(expire), byref(receivers))
            if rc != WS4R_OK:
                raise Ws4redisError(rc, f"ws4r_publisher_publish: {self._errmsg(handle, rc)}")
        del keep
        return receivers.value

    def fetch(
        self,
        facility: str,
        broadcast: bool = False,
        users: Iterable[str] = (),
        groups: Iterable[str] = (),
        sessions: Iterable[str] = (),
    ) -> Optional[bytes]:
        """The persisted message of an audience as the original's fetch_message: the first stored
        value of its sessions, users, groups, then the broadcast channel; None when none is stored."""
        a, keep = self._audience(facility, broadcast, users, groups, sessions)
        capacity = 4096
        length, found = c_size_t(0), c_int(0)
        with self._lock:
            handle = self._live()
            while True:
                buffer = ctypes.create_string_buffer(capacity)
                rc = self._lib.ws4r_publisher_fetch(handle, byref(a), buffer, capacity, byref(length), byref(found))
                if rc == WS4R_ELIMIT and length.value > capacity:
                    capacity = length.value
                    continue
                if rc != WS4R_OK:
                    raise Ws4redisError(rc, f"ws4r_publisher_fetch: {self._errmsg(handle, rc)}")
                break
        del keep
        return buffer.raw[: length.value] if found.value else None

    def close(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.ws4r_publisher_destroy(handle)


# ---------------------------------------------------------------------------------------------
# Server


def _header_list(pointer, count: int) -> list:
    return [(_decode(pointer[i].name) or "", _decode(pointer[i].value) or "") for i in range(count)] if pointer and count else []


def _request_dict(request: _AuthRequest) -> Dict[str, Any]:
    """The authorization request as a dict (fields the library's struct_size does not cover are None)."""
    size = request.struct_size

    def present(field: str) -> bool:
        return getattr(_AuthRequest, field).offset + getattr(_AuthRequest, field).size <= size

    headers = _header_list(request.headers, request.header_count) if present("header_count") else []
    cookies = _header_list(request.cookies, request.cookie_count) if present("cookie_count") else []
    merged: Dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    bits = request.requested_flags if present("requested_flags") else 0
    return {
        "method": _decode(request.method) if present("method") else None,
        "path": _decode(request.path) if present("path") else None,
        "facility": _decode(request.facility) if present("facility") else None,
        "query": _decode(request.query) if present("query") else None,
        "headers": merged,
        "header_list": headers,
        "cookies": dict(cookies),
        "remote_address": _decode(request.remote_address) if present("remote_address") else None,
        "requested_flags": flag_names(bits),
    }


class Server(_Closing):
    """A ws4redis server inside this process (ws4r_server_create_with_args).

    `args` are command-line options (`"--listen", "127.0.0.1:8080", "--redis-url", URL`); keyword
    arguments add more (`token_secret="x"` is `--token-secret x`). The environment (WS4REDIS_*) and
    `--config FILE` apply as for `ws4redis serve`.
    """

    def __init__(self, *args: str, library: Any = None, **settings: Any):
        self._lib = load_library(library)
        argv = [str(a) for a in args]
        for name, value in settings.items():
            argv += ["--" + name.replace("_", "-"), str(value)]
        self.argv = argv
        encoded = [a.encode("utf-8") for a in argv]
        array = (c_char_p * (len(encoded) + 1))(*encoded, None)
        handle = c_void_p()
        rc = self._lib.ws4r_server_create_with_args(None, len(encoded), array, byref(handle))
        if rc != WS4R_OK:
            message = self._errmsg(handle, rc)
            self._lib.ws4r_server_destroy(handle)
            raise Ws4redisError(rc, f"ws4r_server_create_with_args({redact_argv(argv)}): {message}")
        self._handle: Optional[c_void_p] = handle
        self._authorizer = None  # the ctypes callback object: alive as long as the server may call it
        self._authorizer_fn: Optional[Callable] = None
        # The latest exceptions raised by the authorizer (each became a 500); bounded for long-running servers.
        self.authorizer_errors: Deque[BaseException] = collections.deque(maxlen=100)

    def __repr__(self) -> str:
        state = "" if getattr(self, "_handle", None) is not None else " closed"
        return f"<ws4redis.native.Server {redact_argv(self.argv)}{state}>"

    def _errmsg(self, handle: c_void_p, rc: int) -> str:
        return _error_text(self._lib, rc, self._lib.ws4r_server_errmsg(handle) if handle else None)

    def _live(self) -> c_void_p:
        if self._handle is None:
            raise Ws4redisError(WS4R_ESTATE, "the server is destroyed")
        return self._handle

    def _check(self, rc: int, what: str) -> None:
        if rc != WS4R_OK:
            raise Ws4redisError(rc, f"{what}: {self._errmsg(self._handle, rc)}")

    def set_authorizer(self, fn: Optional[Callable[[Dict[str, Any]], Optional[Mapping[str, Any]]]]) -> None:
        """Registers `fn(request) -> dict | None` (before start()). `request` has method, path,
        facility, query, headers (lower-cased names), header_list, cookies, remote_address and
        requested_flags (a set of names). The answer may set "user", "groups", "session" and
        "allowed_flags" (names or bits; requested flags outside it are dropped). Raise Denied(status,
        reason) to refuse; any other exception refuses with 500. Runs on a worker thread of the core
        and may block (up to the `authorizer_timeout` setting, then the handshake gets 504)."""
        handle = self._live()
        if fn is None:
            self._check(self._lib.ws4r_server_set_authorizer(handle, _AUTHORIZE_FN(), None), "ws4r_server_set_authorizer")
            self._authorizer = self._authorizer_fn = None
            return
        lib = self._lib
        errors = self.authorizer_errors

        def deny(result: int, status: int, reason: str) -> None:
            text = reason.encode("utf-8", errors="replace")
            if lib.ws4r_auth_result_deny(result, int(status), text) != WS4R_OK:  # not a 4xx/5xx: still a refusal
                lib.ws4r_auth_result_deny(result, 500, b"authorizer denied with an invalid status %d: %s" % (int(status), text))

        def trampoline(_context: Any, request: Any, result: int) -> None:
            # Nothing may escape into C: every exception becomes a denial.
            try:
                try:
                    answer = fn(_request_dict(request.contents))
                    _apply_answer(lib, result, answer)
                except Denied as denied:
                    deny(result, denied.status, denied.reason)
                except BaseException as exc:  # noqa: B902 (SystemExit and KeyboardInterrupt too: C must not see them)
                    errors.append(exc)
                    deny(result, 500, f"authorizer failed: {type(exc).__name__}")
            except BaseException:
                pass

        callback = _AUTHORIZE_FN(trampoline)
        self._check(lib.ws4r_server_set_authorizer(handle, callback, None), "ws4r_server_set_authorizer")
        self._authorizer, self._authorizer_fn = callback, fn

    def start(self) -> "Server":
        self._check(self._lib.ws4r_server_start(self._live()), "ws4r_server_start")
        return self

    def stop(self, timeout_ms: int = 5000) -> None:
        if self._handle is not None:
            self._check(self._lib.ws4r_server_stop(self._handle, int(timeout_ms)), "ws4r_server_stop")

    def stats(self) -> Dict[str, int]:
        s = _Stats()
        self._lib.ws4r_stats_init(byref(s))
        self._check(self._lib.ws4r_server_stats(self._live(), byref(s)), "ws4r_server_stats")
        return {name: getattr(s, name) for name, _ in _Stats._fields_ if name != "struct_size"}

    def metrics(self) -> str:
        """The server's figures in the Prometheus text format (what /metrics serves)."""
        length = c_size_t(0)
        while True:  # a new series may lengthen the text between two calls
            buffer = ctypes.create_string_buffer(length.value + 1)
            rc = self._lib.ws4r_server_metrics(self._live(), buffer, len(buffer), byref(length))
            if rc != WS4R_ELIMIT:
                break
        self._check(rc, "ws4r_server_metrics")
        return buffer.value.decode()

    def check_handshake(
        self,
        method: str,
        path: str,
        query: Optional[str] = None,
        headers: Union[Mapping[str, str], Iterable[tuple]] = (),
        http_version: str = "HTTP/1.1",
        remote_address: Optional[str] = None,
    ) -> "Handshake":
        """Asks the core about a websocket upgrade request (ws4r_server_check_handshake): RFC 6455,
        the URL prefix, limits and the identity sources, the authorizer included (this call blocks
        while it runs). `path` is decoded and without the query; `query` is raw, without '?'.
        Returns the Handshake to answer with, accepted or refused; the server must be running."""
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        header_array = (_Header * max(1, len(pairs)))(*[_Header(_encode(n), _encode(v)) for n, v in pairs])
        request = _Request()
        self._lib.ws4r_request_init(byref(request))
        request.method, request.path, request.query = _encode(method), _encode(path), _encode(query)
        request.http_version, request.remote_address = _encode(http_version), _encode(remote_address)
        request.headers, request.header_count = header_array, len(pairs)
        handle = c_void_p()
        rc = self._lib.ws4r_server_check_handshake(self._live(), byref(request), byref(handle))
        if rc not in (WS4R_OK, WS4R_EHANDSHAKE):
            self._lib.ws4r_handshake_free(handle)
            raise Ws4redisError(rc, f"ws4r_server_check_handshake: {self._errmsg(self._handle, rc)}")
        return Handshake(self._lib, handle)

    def adopt(self, handshake: "Handshake", fd: int, preface: bytes = b"") -> None:
        """Hands an upgraded connection to the core after its 101 response was sent
        (ws4r_server_adopt). The core owns `fd` from this call on, also when it fails: it closes the
        descriptor when the websocket ends, so pass one nobody else closes or shuts down (a dup(),
        or socket.detach()). `preface`: bytes already read past the request headers. Consumes the
        handshake."""
        data = bytes(preface)
        try:
            server, taken = self._live(), handshake._take()
        except Ws4redisError:
            if fd >= 0:
                os.close(fd)  # refused before reaching the core: the descriptor is still ours to close
            raise
        self._check(self._lib.ws4r_server_adopt(server, taken, int(fd), data, len(data), None, None), "ws4r_server_adopt")

    def close(self) -> None:
        """Stops (if running) and destroys the server; the authorizer is released afterwards."""
        handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.ws4r_server_destroy(handle)
        self._authorizer = None


class Handshake(_Closing):
    """The core's answer to a websocket upgrade request (a ws4r_handshake): accepted (status 101,
    then pass it to Server.adopt(), which consumes it) or refused (a 4xx/5xx with a plain-text
    body). close() frees one that is not adopted; so does garbage collection."""

    def __init__(self, lib: _Library, handle: c_void_p):
        self._lib = lib
        self._handle: Optional[c_void_p] = handle
        self.status: int = lib.ws4r_handshake_status(handle)
        self.reason: str = _decode(lib.ws4r_handshake_reason(handle)) or ""
        self.body: str = _decode(lib.ws4r_handshake_body(handle)) or ""
        self.headers: list = []
        name, value = c_char_p(), c_char_p()
        for index in range(lib.ws4r_handshake_header_count(handle)):
            if lib.ws4r_handshake_header(handle, index, byref(name), byref(value)) == WS4R_OK:
                self.headers.append((_decode(name.value) or "", _decode(value.value) or ""))

    @property
    def accepted(self) -> bool:
        return self.status == 101

    def response(self) -> bytes:
        """The whole HTTP/1.1 response to send: status line and headers, and for a refusal a
        plain-text body with its length (the connection closes after a refusal)."""
        lines = [f"HTTP/1.1 {self.status} {self.reason}"] + [f"{n}: {v}" for n, v in self.headers]
        body = b""
        if not self.accepted:
            body = self.body.encode("utf-8")
            lines += ["Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}", "Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _take(self) -> c_void_p:
        handle, self._handle = self._handle, None
        if handle is None:
            raise Ws4redisError(WS4R_ESTATE, "the handshake was already adopted or freed")
        return handle

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.ws4r_handshake_free(handle)


def _apply_answer(lib: _Library, result: int, answer: Optional[Mapping[str, Any]]) -> None:
    if answer is None:
        return
    if not isinstance(answer, Mapping):
        raise TypeError(f"an authorizer returns a dict or None, not {type(answer).__name__}")
    unknown = set(answer) - {"user", "groups", "session", "session_key", "allowed_flags"}
    if unknown:
        raise ValueError(f"unknown keys in the authorizer's answer: {sorted(unknown)}")

    def check(rc: int, what: str) -> None:
        if rc != WS4R_OK:
            raise Ws4redisError(rc, f"{what}: {lib.strerror(rc)}")

    if answer.get("user") is not None:
        check(lib.ws4r_auth_result_set_user(result, _encode(answer["user"])), "ws4r_auth_result_set_user")
    groups = answer.get("groups") or ()
    if isinstance(groups, (str, bytes)):
        raise TypeError("groups is a list of names, not a single string")
    for group in groups:
        check(lib.ws4r_auth_result_add_group(result, _encode(group)), "ws4r_auth_result_add_group")
    session = answer.get("session", answer.get("session_key"))
    if session is not None:
        check(lib.ws4r_auth_result_set_session(result, _encode(session)), "ws4r_auth_result_set_session")
    if answer.get("allowed_flags") is not None:
        check(lib.ws4r_auth_result_set_allowed_flags(result, flags_value(answer["allowed_flags"])), "ws4r_auth_result_set_allowed_flags")
