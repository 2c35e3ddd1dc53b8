"""libws4redis.so through its C ABI, loaded with ctypes: the structs mirror include/ws4redis.h exactly."""

from __future__ import annotations

import asyncio
import ctypes
import re
import subprocess
import sys
from ctypes import POINTER, byref, c_char_p, c_int, c_int64, c_size_t, c_uint, c_uint32, c_uint64, c_void_p
from pathlib import Path

import pytest

from e2e_helpers import free_port, open_client, receive_one, run_async, wait_until

WS4R_OK, WS4R_EINVAL, WS4R_ECONFIG, WS4R_ESTATE, WS4R_EREDIS = 0, 1, 2, 4, 6


# The structs are the Python client's own mirrors: these tests check them against the library.
from ws4redis.native import _Audience as Audience, _Config as Config, _Setting as Setting, _Stats as Stats  # noqa: E402


API_FUNCTIONS = """strerror version_number version_string config_init stats_init request_init audience_init server_create
    server_start server_stop server_destroy server_errmsg server_stats server_check_handshake handshake_status handshake_reason
    handshake_body handshake_header_count handshake_header handshake_free server_adopt publisher_create publisher_publish
    publisher_errmsg publisher_destroy settings_help server_create_with_args server_set_authorizer auth_result_set_user
    auth_result_add_group auth_result_set_session auth_result_set_allowed_flags auth_result_deny token_mint
    server_check_handshake_async publisher_fetch server_metrics server_setting server_health lift_descriptor_limit
    server_watch_arrival arrival_head_read arrival_awaiting_head arrival_handed_over arrival_destroy""".split()


class Api(ctypes.Structure):
    """ws4r_api: every function pointer as an address."""

    _fields_ = [("struct_size", c_size_t), ("abi_version", c_uint)] + [(name, c_void_p) for name in API_FUNCTIONS]


COUNTERS = [name for name, _ in Stats._fields_ if name not in ("struct_size", "redis_connected")]


# Every test here loads libws4redis.so into this Python process (or a child Python).
pytestmark = pytest.mark.in_process

@pytest.fixture(scope="module")
def header(prefix: Path) -> str:
    return (prefix / "include" / "ws4redis.h").read_text()


@pytest.fixture(scope="module")
def lib(prefix: Path) -> ctypes.CDLL:
    so = ctypes.CDLL(str(prefix / "lib" / "libws4redis.so"))
    so.ws4r_strerror.argtypes, so.ws4r_strerror.restype = [c_int], c_char_p
    so.ws4r_version_number.argtypes, so.ws4r_version_number.restype = [], c_uint
    so.ws4r_version_string.argtypes, so.ws4r_version_string.restype = [], c_char_p
    so.ws4r_get_api.argtypes, so.ws4r_get_api.restype = [c_uint], c_void_p
    for name, struct in (("config", Config), ("stats", Stats), ("audience", Audience)):
        fn = getattr(so, f"ws4r_{name}_init")
        fn.argtypes, fn.restype = [POINTER(struct)], None
    so.ws4r_server_create.argtypes, so.ws4r_server_create.restype = [POINTER(Config), POINTER(c_void_p)], c_int
    so.ws4r_server_start.argtypes, so.ws4r_server_start.restype = [c_void_p], c_int
    so.ws4r_server_stop.argtypes, so.ws4r_server_stop.restype = [c_void_p, c_uint32], c_int
    so.ws4r_server_destroy.argtypes, so.ws4r_server_destroy.restype = [c_void_p], None
    so.ws4r_server_errmsg.argtypes, so.ws4r_server_errmsg.restype = [c_void_p], c_char_p
    so.ws4r_server_stats.argtypes, so.ws4r_server_stats.restype = [c_void_p, POINTER(Stats)], c_int
    so.ws4r_publisher_create.argtypes, so.ws4r_publisher_create.restype = [c_char_p, c_char_p, POINTER(c_void_p)], c_int
    so.ws4r_publisher_publish.argtypes = [c_void_p, POINTER(Audience), c_char_p, c_size_t, c_int64, POINTER(c_uint64)]
    so.ws4r_publisher_publish.restype = c_int
    so.ws4r_publisher_errmsg.argtypes, so.ws4r_publisher_errmsg.restype = [c_void_p], c_char_p
    so.ws4r_publisher_destroy.argtypes, so.ws4r_publisher_destroy.restype = [c_void_p], None
    return so


def define(header: str, name: str) -> str:
    m = re.search(rf"^#define {name} (.+?)\s*$", header, re.M)
    assert m, f"{name} not in ws4redis.h"
    return m.group(1)


def strings(values: list[str]):
    arr = (c_char_p * len(values))(*(v.encode() for v in values))
    return ctypes.cast(arr, POINTER(c_char_p)), arr


def audience(lib: ctypes.CDLL, facility: str, broadcast: bool, users=(), groups=(), sessions=()) -> tuple[Audience, list]:
    a = Audience()
    lib.ws4r_audience_init(byref(a))
    assert a.struct_size == ctypes.sizeof(Audience), f"ws4r_audience_init set struct_size {a.struct_size}, the mirror is {ctypes.sizeof(Audience)}"
    a.facility = facility.encode()
    a.broadcast = 1 if broadcast else 0
    keep = []
    for field, values in (("users", users), ("groups", groups), ("sessions", sessions)):
        if values:
            ptr, arr = strings(list(values))
            keep.append(arr)
            setattr(a, field, ptr)
            setattr(a, field[:-1] + "_count", len(values))
    return a, keep


# ---------------------------------------------------------------------------------------------


def test_version_matches_header(lib: ctypes.CDLL, header: str) -> None:
    expected_string = define(header, "WS4R_VERSION_STRING").strip('"')
    major, minor, patch = (int(define(header, f"WS4R_VERSION_{p}")) for p in ("MAJOR", "MINOR", "PATCH"))
    assert lib.ws4r_version_string().decode() == expected_string
    assert lib.ws4r_version_number() == (major << 16) | (minor << 8) | patch
    assert expected_string == f"{major}.{minor}.{patch}"
    abi = int(define(header, "WS4R_ABI_VERSION"))
    address = lib.ws4r_get_api(abi)
    assert address, f"ws4r_get_api({abi}) returned NULL"
    api = ctypes.cast(address, POINTER(Api)).contents
    assert api.abi_version == abi
    assert api.struct_size == ctypes.sizeof(Api), f"ws4r_api.struct_size {api.struct_size}, the header's struct is {ctypes.sizeof(Api)}"
    missing = [name for name in API_FUNCTIONS if not getattr(api, name)]
    assert not missing, f"NULL entries in the ws4r_api table: {missing}"
    assert ctypes.CFUNCTYPE(c_char_p)(api.version_string)().decode() == expected_string
    assert not lib.ws4r_get_api(abi + 1), f"ws4r_get_api({abi + 1}) must return NULL"
    for code in range(0, 11):
        assert lib.ws4r_strerror(code), f"ws4r_strerror({code}) is empty"


def test_struct_sizes_and_defaults(lib: ctypes.CDLL) -> None:
    """The *_init functions set struct_size to the size of the C struct: the mirrors match the header."""
    c = Config()
    lib.ws4r_config_init(byref(c))
    assert c.struct_size == ctypes.sizeof(Config)
    assert (c.io_threads, c.max_message_size, c.max_frame_size, c.max_connections, c.max_outbound_bytes, c.ping_interval_ms) == (
        0, 1 << 20, 1 << 20, 0, 4 << 20, 30000,
    ), "ws4r_config_init defaults differ from the documented ones"
    assert c.listen_address is None and c.echo_path is None
    assert not c.settings and c.setting_count == 0
    s = Stats()
    lib.ws4r_stats_init(byref(s))
    assert s.struct_size == ctypes.sizeof(Stats)
    a = Audience()
    lib.ws4r_audience_init(byref(a))
    assert a.struct_size == ctypes.sizeof(Audience)
    assert not a.facility and a.broadcast == 0 and a.user_count == a.group_count == a.session_count == 0


def test_publisher(lib: ctypes.CDLL, redis_server) -> None:
    """publish reaches Redis subscribers in the original's channel order; receivers is the sum; SET with EX."""
    r = redis_server.client()
    sub = r.pubsub()
    pub = c_void_p()
    try:
        channels = [b"ctp:broadcast:ct", b"ctp:group:g1:ct", b"ctp:user:alice:ct", b"ctp:session:s1:ct"]
        sub.subscribe(*channels)
        confirmed = set()
        wait_until(lambda: (m := sub.get_message(timeout=0.1)) and m["type"] == "subscribe" and confirmed.add(m["channel"]) is None
                   and len(confirmed) == len(channels), 10, "SUBSCRIBE confirmations")

        rc = lib.ws4r_publisher_create(redis_server.url.encode(), b"ctp", byref(pub))
        assert rc == WS4R_OK, f"ws4r_publisher_create: {rc} {lib.ws4r_publisher_errmsg(pub)}"
        a, keep = audience(lib, "ct", True, users=["alice"], groups=["g1"], sessions=["s1"])
        receivers = c_uint64(99)
        msg = "ctypes ✓ \x00 nul inside".encode()
        rc = lib.ws4r_publisher_publish(pub, byref(a), msg, len(msg), 30, byref(receivers))
        assert rc == WS4R_OK, f"ws4r_publisher_publish: {rc} {lib.ws4r_publisher_errmsg(pub)}"
        assert receivers.value == 4, f"receivers {receivers.value}, expected 4 (one subscriber on each of 4 channels)"

        got = []
        wait_until(lambda: (m := sub.get_message(timeout=0.1)) and got.append((m["channel"], m["data"])) is None and len(got) == 4,
                   10, "4 published messages")
        assert got == [(ch, msg) for ch in channels], f"messages {got}, expected on {channels} in that order"
        for ch in channels:
            assert r.get(ch) == msg
            assert 0 < r.ttl(ch) <= 30

        # expire 0: published, not stored; nobody on the channel: 0 receivers; NULL receivers accepted.
        b, keep2 = audience(lib, "nobody", True)
        rc = lib.ws4r_publisher_publish(pub, byref(b), b"x", 1, 0, byref(receivers))
        assert (rc, receivers.value) == (WS4R_OK, 0)
        assert r.exists(b"ctp:broadcast:nobody") == 0
        assert lib.ws4r_publisher_publish(pub, byref(b), b"x", 1, 0, None) == WS4R_OK

        # No facility: invalid argument.
        c, keep3 = audience(lib, "x", True)
        c.facility = None
        rc = lib.ws4r_publisher_publish(pub, byref(c), b"x", 1, 0, None)
        assert rc == WS4R_EINVAL, f"publish without a facility returned {rc}, expected WS4R_EINVAL"
        assert lib.ws4r_publisher_errmsg(pub), "empty errmsg after a failed publish"
    finally:
        lib.ws4r_publisher_destroy(pub)
        sub.close()
        r.close()


@pytest.mark.parametrize(
    "url, expected", [("notascheme://what", None), (f"redis://127.0.0.1:{free_port()}/0", WS4R_EREDIS)], ids=["malformed", "unreachable"]
)
def test_publisher_bad_redis(lib: ctypes.CDLL, url: str, expected: int | None) -> None:
    """A malformed URL or an unreachable Redis: a non-zero code and an explanation."""
    pub = c_void_p()
    try:
        rc = lib.ws4r_publisher_create(url.encode(), None, byref(pub))
        assert rc != WS4R_OK, f"ws4r_publisher_create({url!r}) succeeded"
        if expected is not None:
            assert rc == expected, f"ws4r_publisher_create({url!r}) returned {rc}, expected {expected}"
        assert pub.value, "no handle to read the errmsg from"
        errmsg = lib.ws4r_publisher_errmsg(pub)
        assert errmsg, f"empty errmsg for {url!r}"
    finally:
        lib.ws4r_publisher_destroy(pub)
    lib.ws4r_publisher_destroy(None)  # NULL is accepted


def server_config(lib: ctypes.CDLL, **fields) -> Config:
    c = Config()
    lib.ws4r_config_init(byref(c))
    for k, v in fields.items():
        setattr(c, k, v.encode() if isinstance(v, str) else v)
    return c


def stats_of(lib: ctypes.CDLL, server: c_void_p) -> Stats:
    s = Stats()
    lib.ws4r_stats_init(byref(s))
    assert lib.ws4r_server_stats(server, byref(s)) == WS4R_OK
    return s


def test_server_lifecycle(lib: ctypes.CDLL, redis_server) -> None:
    """A fresh server's figures are zero; start twice is a state error; stop is idempotent."""
    config = server_config(lib, redis_url=redis_server.url, io_threads=1)
    server = c_void_p()
    try:
        rc = lib.ws4r_server_create(byref(config), byref(server))
        assert rc == WS4R_OK, f"ws4r_server_create: {rc} {lib.ws4r_server_errmsg(server)}"
        s = stats_of(lib, server)
        assert {n: getattr(s, n) for n in COUNTERS} == dict.fromkeys(COUNTERS, 0), "figures of a fresh server"
        rc = lib.ws4r_server_start(server)
        assert rc == WS4R_OK, f"ws4r_server_start: {rc} {lib.ws4r_server_errmsg(server)}"
        wait_until(lambda: stats_of(lib, server).redis_connected == 1, 10, "redis_connected == 1")
        s = stats_of(lib, server)
        assert {n: getattr(s, n) for n in COUNTERS} == dict.fromkeys(COUNTERS, 0), "figures of a started server without clients"
        assert lib.ws4r_server_start(server) == WS4R_ESTATE, "a second start must be WS4R_ESTATE"
        assert lib.ws4r_server_stop(server, 2000) == WS4R_OK
        assert lib.ws4r_server_stop(server, 2000) == WS4R_OK, "stop is idempotent"
    finally:
        lib.ws4r_server_destroy(server)
    lib.ws4r_server_destroy(None)


def test_server_bad_redis_url(lib: ctypes.CDLL) -> None:
    config = server_config(lib, redis_url="notascheme://what")
    server = c_void_p()
    try:
        rc = lib.ws4r_server_create(byref(config), byref(server))
        if rc == WS4R_OK:
            rc = lib.ws4r_server_start(server)
        assert rc == WS4R_ECONFIG, f"a malformed Redis URL gave {rc}, expected WS4R_ECONFIG from create or start"
        assert lib.ws4r_server_errmsg(server), "empty errmsg"
    finally:
        lib.ws4r_server_destroy(server)


SETTING_NAMES = """redis_url prefix url_prefix listen echo_path threads max_message_size max_frame_size max_connections
    max_outbound_bytes ping_interval expire heartbeat heartbeat_interval allowed_flags allowed_origins token_secret token_parameter
    token_cookie auth_url auth_timeout auth_cache authorizer_timeout authorizer_threads log_level""".split()


def test_settings_by_name(lib: ctypes.CDLL, redis_server) -> None:
    """ws4r_config.settings: named settings are applied; an unknown name or a bad value is WS4R_ECONFIG
    naming it; ws4r_settings_help lists every setting."""
    lib.ws4r_settings_help.argtypes, lib.ws4r_settings_help.restype = [c_char_p], c_char_p
    text = lib.ws4r_settings_help(None).decode()
    markdown = lib.ws4r_settings_help(b"markdown").decode()
    missing = [n for n in SETTING_NAMES if n not in text and n.replace("_", "-") not in text]
    assert not missing, f"ws4r_settings_help(NULL) does not list {missing}"
    assert "|" in markdown and "token_secret" in markdown.replace("-", "_"), "ws4r_settings_help(\"markdown\") is not a table of the settings"

    def create(pairs: list[tuple[str, str]]) -> tuple[int, str]:
        arr = (Setting * len(pairs))(*[Setting(k.encode(), v.encode()) for k, v in pairs])
        config = server_config(lib, redis_url=redis_server.url)
        config.settings, config.setting_count = ctypes.cast(arr, POINTER(Setting)), len(pairs)
        server = c_void_p()
        try:
            rc = lib.ws4r_server_create(byref(config), byref(server))
            return rc, (lib.ws4r_server_errmsg(server) or b"").decode()
        finally:
            lib.ws4r_server_destroy(server)

    rc, msg = create([("expire", "5"), ("heartbeat", "--hb--"), ("token_secret", "s" * 32), ("allowed_flags", "subscribe-broadcast,echo")])
    assert rc == WS4R_OK, f"valid named settings refused: {rc} {msg}"
    for pairs, needle in [([("no_such_setting", "1")], "no_such_setting"), ([("expire", "soon")], "expire"),
                          ([("allowed_flags", "subscribe-everything")], "subscribe-everything")]:
        rc, msg = create(pairs)
        assert rc == WS4R_ECONFIG, f"settings {pairs} gave {rc}, expected WS4R_ECONFIG"
        assert needle in msg, f"the errmsg for {pairs} does not name {needle!r}: {msg!r}"


def test_effective_settings(lib: ctypes.CDLL, redis_server) -> None:
    """ws4r_server_setting: a named setting and a ws4r_config field as given, a default as defined,
    NULL for an unknown name."""
    lib.ws4r_server_setting.argtypes, lib.ws4r_server_setting.restype = [c_void_p, c_char_p], c_char_p
    pairs = (Setting * 1)(Setting(b"demo_page", b"on"))
    config = server_config(lib, redis_url=redis_server.url)
    config.settings, config.setting_count = ctypes.cast(pairs, POINTER(Setting)), 1
    server = c_void_p()
    try:
        assert lib.ws4r_server_create(byref(config), byref(server)) == WS4R_OK, lib.ws4r_server_errmsg(server)
        assert lib.ws4r_server_setting(server, b"demo_page") == b"on"
        assert lib.ws4r_server_setting(server, b"redis_url") == redis_server.url.encode()
        assert lib.ws4r_server_setting(server, b"publish_endpoint") == b"off"
        assert lib.ws4r_server_setting(server, b"no_such_setting") is None
    finally:
        lib.ws4r_server_destroy(server)


def test_in_process_server_delivers(lib: ctypes.CDLL, redis_server) -> None:
    """The library's own listener, in this process: a websocket gets what the ctypes publisher sends,
    and ws4r_server_stop closes it with 1001."""
    port = free_port()
    config = server_config(lib, redis_url=redis_server.url, listen_address=f"127.0.0.1:{port}", io_threads=1)
    server, pub = c_void_p(), c_void_p()
    try:
        assert lib.ws4r_server_create(byref(config), byref(server)) == WS4R_OK, lib.ws4r_server_errmsg(server)
        assert lib.ws4r_server_start(server) == WS4R_OK, lib.ws4r_server_errmsg(server)
        assert lib.ws4r_publisher_create(redis_server.url.encode(), None, byref(pub)) == WS4R_OK, lib.ws4r_publisher_errmsg(pub)

        async def body() -> None:
            ws = await open_client(f"ws://127.0.0.1:{port}/ws/inproc?subscribe-broadcast")
            try:
                await asyncio.to_thread(wait_until, lambda: stats_of(lib, server).subscriptions == 1, 10, "1 subscription")
                a, keep = audience(lib, "inproc", True)
                receivers = c_uint64()
                assert lib.ws4r_publisher_publish(pub, byref(a), b"in-process", 10, 0, byref(receivers)) == WS4R_OK
                assert receivers.value == 1
                assert await receive_one(ws, 10, "message through the in-process server") == "in-process"
                s = stats_of(lib, server)
                assert (s.connections, s.connections_total, s.channels) == (1, 1, 1)
                # Stop from another thread: this loop must stay free to answer the close handshake.
                assert await asyncio.to_thread(lib.ws4r_server_stop, server, 5000) == WS4R_OK
                await asyncio.wait_for(ws.wait_closed(), 5)
                assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1001, f"close {ws.protocol.close_rcvd}"
            finally:
                await ws.close()

        run_async(body(), 40, "in-process server")
    finally:
        lib.ws4r_publisher_destroy(pub)
        lib.ws4r_server_destroy(server)


def test_loads_without_swift_runtime(prefix: Path, header: str) -> None:
    """The .so needs no Swift runtime library: none in ldd, and it loads with a bare environment."""
    so = prefix / "lib" / "libws4redis.so"
    out = subprocess.run(["ldd", str(so)], capture_output=True, text=True, check=True).stdout
    bad = [line.strip() for line in out.splitlines() if re.search(r"libswift|libFoundation|libdispatch|libBlocksRuntime|/swift/|not found", line)]
    assert not bad, "libws4redis.so depends on the Swift runtime or misses libraries:\n" + "\n".join(bad)

    code = "import ctypes,sys; l=ctypes.CDLL(sys.argv[1]); l.ws4r_version_string.restype=ctypes.c_char_p; print(l.ws4r_version_string().decode())"
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code, str(so)], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, f"loading in a bare environment failed: {done.stderr}"
    assert done.stdout.strip() == define(header, "WS4R_VERSION_STRING").strip('"')


def test_exports_only_ws4r_symbols(prefix: Path) -> None:
    """Only ws4r_* symbols are global in the dynamic symbol table (local ones are not exported)."""
    so = str(prefix / "lib" / "libws4redis.so")
    out = subprocess.run(["nm", "-D", "--extern-only", "--defined-only", so], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    foreign = [n for n in names if not n.split("@")[0].startswith("ws4r_")]
    assert names, "no exported symbols"
    assert not foreign, f"{len(foreign)} exported symbols without the ws4r_ prefix, e.g. {foreign[:10]}"
