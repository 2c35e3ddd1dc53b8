"""ws4redis_django, the drop-in for django-websocket-redis, in a Django project (testproject/):
identity from the Django session, the original's settings and publisher API, websockets inside
`manage.py runserver` and from `manage.py ws4redis`, the auth request view."""

from __future__ import annotations

import asyncio
import http.client
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import redis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidHandshake

from django_helpers import HEARTBEAT, HERE, PREFIX, People, Served, User
from e2e_helpers import Server, assert_refused, free_port, wait_until, async_wait_until, http_get, open_client, raw_handshake, run_async, upgrade_headers

ALL_SUBSCRIPTIONS = "subscribe-broadcast&subscribe-user&subscribe-group&subscribe-session"


def publish(message: str, expire: int | None = None, **audience: Any) -> int:
    """Publishes as Django code does, with the original's API (in this process, same settings)."""
    from ws4redis_django.publisher import RedisPublisher
    from ws4redis_django.redis_store import RedisMessage

    return RedisPublisher(**audience).publish_message(RedisMessage(message), expire=expire)


async def subscribed(r: redis.Redis, *channels: str) -> None:
    """Waits until the server subscribed each channel (PUBSUB NUMSUB), so that live messages reach it."""
    names = [f"{PREFIX}:{channel}" for channel in channels]
    await async_wait_until(lambda: all(count > 0 for _, count in r.pubsub_numsub(*names)), 10, f"subscriptions to {names}")


async def next_message(ws: ClientConnection, deadline: float) -> str:
    """The next message that is not a heartbeat, arriving before `deadline` (time.monotonic())."""
    while True:
        try:
            message = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError("no message before the deadline") from None
        if message != HEARTBEAT:
            return message


async def first_message(ws: ClientConnection, timeout: float = 10) -> str:
    return await next_message(ws, time.monotonic() + timeout)


async def received_until(ws: ClientConnection, marker: str, timeout: float = 10) -> list[str]:
    """The messages before `marker`, which must arrive within `timeout` s."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while (message := await next_message(ws, deadline)) != marker:
            got.append(message)
    except AssertionError:
        raise AssertionError(f"no {marker!r} within {timeout}s; received {got}") from None
    return got


async def open_when_served(url: str, timeout: float) -> ClientConnection:
    """A websocket on `url` once a server accepts it (refused, or closed by a process exiting, until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await open_client(url)
        except (OSError, InvalidHandshake) as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(f"no websocket at {url} within {timeout}s: {exc!r}") from None
            await asyncio.sleep(0.2)


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["runserver", "standalone"])
def test_audiences_reach_exactly_their_sockets(mode: str, serve: Callable[..., Served], people: People, r: redis.Redis) -> None:
    """User, group (from ws4redis:memberof, stored at login), session and broadcast messages published
    with RedisPublisher reach exactly the right websockets, identified by the Django session cookie.
    Identity flags without the identity are dropped, as the original in effect did (bob is in no
    group; the anonymous session has no user; without a cookie only broadcast remains)."""
    served = serve(mode)
    url = served.ws("news", ALL_SUBSCRIPTIONS)
    anonymous = {"Cookie": f"sessionid={people.anonymous_session}"}

    async def body() -> None:
        sockets = {
            "alice": await open_client(url, additional_headers=people.alice.cookie),
            "bob": await open_client(url, additional_headers=people.bob.cookie),
            "dave": await open_client(url, additional_headers=people.dave.cookie),
            "anonymous": await open_client(url, additional_headers=anonymous),
            "no cookie": await open_client(url),
        }
        try:
            await subscribed(r, "broadcast:news", "user:alice:news", "user:bob:news", "user:dave:news", "group:staff:news",
                             f"session:{people.bob.session_key}:news", f"session:{people.anonymous_session}:news")
            publish("to alice", facility="news", users=["alice"])
            publish("to staff", facility="news", groups=["staff"])
            publish("to bob's session", facility="news", sessions=[people.bob.session_key])
            publish("to the anonymous session", facility="news", sessions=[people.anonymous_session])
            publish("end", facility="news", broadcast=True)
            got = {name: await received_until(ws, "end") for name, ws in sockets.items()}
            assert got == {
                "alice": ["to alice", "to staff"],
                "bob": ["to bob's session"],
                "dave": ["to staff"],
                "anonymous": ["to the anonymous session"],
                "no cookie": [],
            }, f"messages per websocket ({mode})"
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets.values()))

    run_async(body(), 60, f"audiences through {mode}")


@pytest.mark.parametrize("mode", ["runserver", "standalone"])
def test_no_upgrade_under_the_websocket_url_is_a_400(mode: str, serve: Callable[..., Served]) -> None:
    """A request under WEBSOCKET_URL that is no websocket upgrade (a plain GET, another Upgrade, a
    POST) gets 400 with the reason as body, as from the original, in runserver as from `manage.py
    ws4redis` (not Django's 404); the rest of the site stays Django's."""
    served = serve(mode)
    cases = {
        "a plain GET": ("GET", {}, "Upgrade: websocket"),
        "Upgrade: h2c": ("GET", {"Upgrade": "h2c", "Connection": "Upgrade"}, "Upgrade: websocket"),
        "a POST": ("POST", upgrade_headers(), "use GET"),
    }
    for what, (method, headers, reason) in cases.items():
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        try:
            conn.request(method, "/ws/news?subscribe-broadcast", headers=headers)
            response = conn.getresponse()
            status, body = response.status, response.read().decode(errors="replace")
        finally:
            conn.close()
        assert (status, reason.lower() in body.lower()) == (400, True), f"{what} under /ws/ ({mode}): {status} {body[:300]!r}"
    if mode == "runserver":
        status, _, page = http_get(served.port, "/")
        assert (status, b"ws://" in page) == (200, True), "pages outside WEBSOCKET_URL are Django's"


def test_self_publishing_from_a_view(serve: Callable[..., Served], people: People, r: redis.Redis) -> None:
    """A view publishes with users=[SELF], groups=[SELF], sessions=[SELF] and request=request: the
    request's own user, groups and session get the message, nobody else."""
    served = serve("runserver")
    url = served.ws("notify", ALL_SUBSCRIPTIONS)

    async def body() -> None:
        sockets = {name: await open_client(url, additional_headers=getattr(people, name).cookie) for name in ("alice", "bob", "dave")}
        try:
            await subscribed(r, "broadcast:notify", "user:alice:notify", "group:staff:notify", f"session:{people.alice.session_key}:notify")
            for audience in ("users", "groups", "sessions"):
                status, _, text = await asyncio.to_thread(http_get, served.port, f"/notify-self/?audience={audience}&message=self-{audience}",
                                                          people.alice.cookie)
                assert status == 200, f"notify-self ({audience}) answered {status}: {text[:300]!r}"
            publish("end", facility="notify", broadcast=True)
            got = {name: await received_until(ws, "end") for name, ws in sockets.items()}
            assert got == {"alice": ["self-users", "self-groups", "self-sessions"], "bob": [], "dave": ["self-groups"]}
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets.values()))

    run_async(body(), 60, "SELF publishing")


def test_allowed_channels_deny_and_narrow(serve: Callable[..., Served], people: People, r: redis.Redis) -> None:
    """WS4REDIS_ALLOWED_CHANNELS (a dotted path, f(request, channels)): PermissionDenied refuses the
    handshake with 403; a narrower list drops the other flags."""
    served = serve("runserver")
    assert_refused(served.port, "/ws/staff-only?subscribe-broadcast", 403, "staff only", what="no session")
    assert_refused(served.port, "/ws/staff-only?subscribe-broadcast", 403, "staff only", headers=people.bob.cookie, what="bob, no staff")

    async def body() -> None:
        staff = await open_client(served.ws("staff-only", "subscribe-broadcast"), additional_headers=people.alice.cookie)
        narrowed = await open_client(served.ws("no-broadcast", "subscribe-broadcast&subscribe-user"), additional_headers=people.alice.cookie)
        try:
            await subscribed(r, "broadcast:staff-only", "user:alice:no-broadcast")
            publish("for staff", facility="staff-only", broadcast=True)
            assert await first_message(staff) == "for staff"
            # Published in this order on one connection: had subscribe-broadcast survived, "broadcast" would come first.
            publish("broadcast", facility="no-broadcast", broadcast=True)
            publish("user", facility="no-broadcast", users=["alice"])
            assert await first_message(narrowed) == "user", "subscribe-broadcast was not dropped by WS4REDIS_ALLOWED_CHANNELS"
        finally:
            await asyncio.gather(staff.close(), narrowed.close())

    run_async(body(), 60, "WS4REDIS_ALLOWED_CHANNELS")


def test_kept_messages_and_fetch_message(serve: Callable[..., Served], people: People, r: redis.Redis) -> None:
    """publish_message keeps a message WS4REDIS_EXPIRE seconds by default (expire=0: not at all); a
    websocket gets it on connect; fetch_message finds the request's own message (session, user,
    group, then broadcast)."""
    from django.test import Client

    assert publish("kept", facility="kept", broadcast=True) == 0, "nobody subscribed yet"
    assert 0 < r.ttl(f"{PREFIX}:broadcast:kept") <= 120, "WS4REDIS_EXPIRE (120) is the default expiry"
    publish("not kept", expire=0, facility="kept", users=["bob"])
    assert r.exists(f"{PREFIX}:user:bob:kept") == 0, "expire=0 must not keep the message"

    client = Client()
    client.cookies["sessionid"] = people.alice.session_key
    assert client.get("/fetch/?facility=kept").content == b"kept", "fetch_message: the broadcast message"
    publish("for staff", facility="kept", groups=["staff"])
    assert client.get("/fetch/?facility=kept").content == b"for staff", "fetch_message: a group message before the broadcast one"
    publish("for alice", facility="kept", users=["alice"])
    assert client.get("/fetch/?facility=kept").content == b"for alice", "fetch_message: the user's message before the group's"
    assert client.get("/fetch/?facility=kept&audience=broadcast").content == b"kept"
    assert client.get("/fetch/?facility=kept&audience=session").status_code == 404, "nothing kept for alice's session"

    served = serve("runserver")

    async def body() -> None:
        ws = await open_client(served.ws("kept", "subscribe-broadcast"))
        try:
            assert await first_message(ws) == "kept", "the kept message on connect"
        finally:
            await ws.close()

    run_async(body(), 30, "kept message on connect")


def test_heartbeat_template_and_static_client(serve: Callable[..., Served], people: People, r: redis.Redis) -> None:
    """WS4REDIS_HEARTBEAT: sent to idle websockets, dropped when a client sends it; the context
    processor gives templates WEBSOCKET_URI and WS4REDIS_HEARTBEAT; runserver serves ws4redis.js
    as the app's static file."""
    served = serve("runserver")
    status, _, page = http_get(served.port, "/")
    assert status == 200
    assert f'uri: "ws://127.0.0.1:{served.port}/ws/news?subscribe-broadcast"'.encode() in page, page
    assert f'heartbeat_msg: "{HEARTBEAT}"'.encode() in page, page
    script = (Path(__file__).resolve().parents[2] / "clients" / "js" / "ws4redis.js").read_bytes()
    for path in ("/static/ws4redis/ws4redis.js", "/static/js/ws4redis.js"):
        status, _, served_script = http_get(served.port, path)
        assert (status, served_script) == (200, script), f"{path} answered {status}"

    async def body() -> None:
        ws = await open_client(served.ws("beat", "subscribe-broadcast&publish-broadcast"))
        listener = r.pubsub()
        try:
            assert await asyncio.wait_for(ws.recv(), 10) == HEARTBEAT, "an idle websocket gets the heartbeat"
            listener.subscribe(f"{PREFIX}:broadcast:beat")
            await async_wait_until(lambda: (m := listener.get_message(timeout=0.1)) and m["type"] == "subscribe", 10, "SUBSCRIBE confirmation")
            await ws.send(HEARTBEAT)
            await ws.send("after the heartbeat")
            message = await async_wait_until(lambda: listener.get_message(timeout=0.1), 10, "the client's message on Redis")
            assert message["data"] == b"after the heartbeat", f"the client's heartbeat was published: {message}"
        finally:
            listener.close()
            await ws.close()

    run_async(body(), 30, "heartbeat")


def test_auth_request_view(serve: Callable[..., Served], people: People, prefix: Path, redis_server: Any, r: redis.Redis,
                           tmp_path: Path) -> None:
    """The auth request view answers with the X-WS4Redis-* headers of the Django identity (403 when
    WS4REDIS_ALLOWED_CHANNELS refuses), and `ws4redis serve --auth-url` in front identifies the
    websockets of Django sessions with it."""
    from django.test import Client

    client = Client()
    client.cookies["sessionid"] = people.alice.session_key
    response = client.get("/ws4redis/auth/", HTTP_X_ORIGINAL_URI="/ws/news?subscribe-user&subscribe-group&publish-broadcast&echo")
    assert response.status_code == 200
    assert {name: response.headers.get(name) for name in ("X-WS4Redis-User", "X-WS4Redis-Groups", "X-WS4Redis-Session", "X-WS4Redis-Allow")} == {
        "X-WS4Redis-User": "alice", "X-WS4Redis-Groups": "staff", "X-WS4Redis-Session": people.alice.session_key,
        "X-WS4Redis-Allow": "subscribe-user,subscribe-group,publish-broadcast,echo",
    }  # fmt: skip
    assert "no-cache" in response.headers.get("Cache-Control", ""), "identity answers must not be cached by proxies"
    anonymous = Client().get("/ws4redis/auth/", HTTP_X_ORIGINAL_URI="/ws/news?subscribe-user&subscribe-broadcast")
    assert anonymous.status_code == 200 and "X-WS4Redis-User" not in anonymous.headers
    assert anonymous.headers["X-WS4Redis-Allow"] == "subscribe-broadcast,echo", "identity flags without the identity are dropped"
    assert Client().get("/ws4redis/auth/", HTTP_X_ORIGINAL_URI="/ws/staff-only?subscribe-broadcast").status_code == 403

    app = serve("runserver")
    front = Server("standalone", prefix, redis_server.url, tmp_path / "front.log",
                   ["--auth-url", f"http://127.0.0.1:{app.port}/ws4redis/auth/", "--prefix", PREFIX]).start()
    try:
        assert_refused(front.port, "/ws/staff-only?subscribe-broadcast", 403, "auth request", headers=people.bob.cookie)

        async def body() -> None:
            ws = await open_client(front.url("news", "subscribe-user&subscribe-session"), additional_headers=people.alice.cookie)
            try:
                await subscribed(r, "user:alice:news", f"session:{people.alice.session_key}:news")
                publish("via auth request", facility="news", sessions=[people.alice.session_key])
                assert await first_message(ws) == "via auth request"
            finally:
                await ws.close()

        run_async(body(), 30, "websocket identified by the auth request")
    finally:
        front.stop_and_check()


def test_identity_names_with_a_colon_are_refused(serve: Callable[..., Served], people: People, caplog: pytest.LogCaptureFixture) -> None:
    """An identity with a ':' in a name (group ops:eu from the session, user carol:chat from
    WS4REDIS_PROCESS_REQUEST) would make channel names ambiguous: the auth request view answers
    403 without identity headers, runserver's handshake gets 403, and each refusal is a warning
    in the log naming the name."""
    from django.contrib.auth.models import Group, User as DjangoUser
    from django.test import Client, override_settings

    erin = DjangoUser.objects.create_user("erin", password="pw")
    erin.groups.add(Group.objects.create(name="ops:eu"))
    client = Client()
    assert client.login(username="erin", password="pw")
    with caplog.at_level(logging.WARNING, logger="ws4redis_django"):
        response = client.get("/ws4redis/auth/", HTTP_X_ORIGINAL_URI="/ws/news?subscribe-broadcast&subscribe-group")
        assert (response.status_code, response.headers.get("X-WS4Redis-Allow")) == (403, None)
        assert "'ops:eu'" in caplog.text, f"no warning naming the group: {caplog.text!r}"
        with override_settings(WS4REDIS_PROCESS_REQUEST="testproject.policy.bearer_identity"):
            bearer = Client().get("/ws4redis/auth/", HTTP_X_ORIGINAL_URI="/ws/news?subscribe-user", HTTP_AUTHORIZATION="Bearer carol:chat")
            assert (bearer.status_code, bearer.headers.get("X-WS4Redis-User")) == (403, None)
            assert "'carol:chat'" in caplog.text, f"no warning naming the user: {caplog.text!r}"

    served = serve("runserver")
    assert_refused(served.port, "/ws/news?subscribe-broadcast", 403, "unambiguous channel names",
                   headers=User("erin", client.cookies["sessionid"].value).cookie)
    wait_until(lambda: "'ops:eu'" in served.log_path.read_text(errors="replace"), 10, "the warning in runserver's log")
    assert raw_handshake(served.port, "/ws/news?subscribe-group", people.alice.cookie)[0] == 101, "plain names are still accepted"


def test_runserver_autoreload_restarts_cleanly(serve: Callable[..., Served], people: People, r: redis.Redis, tmp_path: Path) -> None:
    """With the autoreloader, a code change restarts the dev server process: its core closes the
    websockets with 1001 (going away) and the new process serves websockets again on the same port."""
    project = tmp_path / "project"
    shutil.copytree(HERE / "testproject", project / "testproject")
    shutil.copy(HERE / "manage.py", project / "manage.py")
    served = serve("runserver", reload=True, cwd=project)
    url = served.ws("reload", "subscribe-broadcast")

    async def body() -> None:
        before = await open_client(url)
        await subscribed(r, "broadcast:reload")
        publish("before", facility="reload", broadcast=True, expire=0)
        assert await first_message(before) == "before"

        def closed_after_touch() -> bool:
            (project / "testproject" / "views.py").touch()
            return before.state.name == "CLOSED"

        await async_wait_until(closed_after_touch, 30, "the websocket to close after a code change", interval=0.5)
        assert before.close_code == 1001, f"close code {before.close_code}, expected 1001 (going away)"

        after = await open_when_served(url, 30)
        try:
            await subscribed(r, "broadcast:reload")
            publish("after", facility="reload", broadcast=True, expire=0)
            assert await first_message(after) == "after", "the restarted dev server does not deliver"
        finally:
            await after.close()

    run_async(body(), 90, "autoreload")


def test_settings_map_onto_the_core(project_env: dict[str, str], redis_server: Any) -> None:
    """The original's settings become the core's: Redis connection forms, prefix, URL, expiry,
    heartbeat, WS4REDIS_SERVER_SETTINGS; the core accepts them; a misspelt dotted path fails early."""
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from ws4redis_django import core

    assert core.core_arguments() == [
        "--redis-url", f"redis://127.0.0.1:{redis_server.port}/0", "--url-prefix", "/ws/", "--prefix", PREFIX, "--expire", "120",
        "--heartbeat", HEARTBEAT, "--heartbeat-interval", "500", "--threads", "1",
    ]  # fmt: skip
    core.create_server().close()  # the core accepts every option
    assert core.redis_url({"unix_socket_path": "/run/redis.sock", "db": 3, "password": "p w&x"}) == "unix:///run/redis.sock?db=3&password=p+w%26x"
    assert core.redis_url({"host": "redis.internal", "port": 6380, "db": 1, "username": "app", "password": "s:e/c@"}) == (
        "redis://app:s%3Ae%2Fc%40@redis.internal:6380/1")
    assert core.redis_url({"host": "::1", "ssl": True, "ssl_ca_certs": "/etc/ca.pem", "ssl_cert_reqs": "none"}) == (
        "rediss://[::1]:6379/0?ssl_ca_certs=%2Fetc%2Fca.pem&ssl_cert_reqs=none")
    with override_settings(WS4REDIS_PREFIX=None, WS4REDIS_HEARTBEAT=None, WS4REDIS_SERVER_SETTINGS={"compression": False}):
        arguments = core.core_arguments()
        assert arguments[arguments.index("--prefix") + 1] == "" and arguments[arguments.index("--heartbeat") + 1] == ""
        assert arguments[-2:] == ["--compression", "off"]
    with override_settings(WS4REDIS_ALLOWED_CHANNELS="testproject.policy.no_such_function"), pytest.raises(ImproperlyConfigured):
        core.create_server()


def test_process_request_replaces_the_session_identity(project_env: dict[str, str], people: People) -> None:
    """WS4REDIS_PROCESS_REQUEST (a dotted path) decides the identity instead of the session cookie;
    WS4REDIS_ALLOWED_CHANNELS still applies after it."""
    from django.test import Client, override_settings

    with override_settings(WS4REDIS_PROCESS_REQUEST="testproject.policy.bearer_identity"):
        client = Client()
        client.cookies["sessionid"] = people.alice.session_key  # ignored: the bearer token decides
        response = client.get("/ws4redis/auth/", HTTP_X_ORIGINAL_URI="/ws/news?subscribe-user&subscribe-session", HTTP_AUTHORIZATION="Bearer carol")
        assert (response.status_code, response.headers.get("X-WS4Redis-User"), response.headers.get("X-WS4Redis-Session")) == (200, "carol", None)
        assert response.headers["X-WS4Redis-Allow"] == "subscribe-user,echo"
        denied = Client().get("/ws4redis/auth/", HTTP_X_ORIGINAL_URI="/ws/staff-only?subscribe-broadcast", HTTP_AUTHORIZATION="Bearer carol")
        assert denied.status_code == 403


def test_publisher_audience_forms(project_env: dict[str, str], people: People, r: redis.Redis) -> None:
    """RedisPublisher's arguments as the original takes them: SELF resolved from the request, the
    deprecated True and single-name forms (with a DeprecationWarning), a ValueError otherwise; and a
    redis-py `connection` publishes through that connection."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.auth import get_user
    from django.test import RequestFactory

    from ws4redis_django.publisher import RedisPublisher
    from ws4redis_django.redis_store import SELF, RedisMessage, resolve_audience

    request = RequestFactory().get("/")
    request.session = SessionStore(people.alice.session_key)
    request.user = get_user(request)
    audience = resolve_audience(request, "f", broadcast=True, users=[SELF, "bob"], groups=[SELF], sessions=[SELF])
    assert audience.channels("p:") == ["p:broadcast:f", "p:group:staff:f", "p:user:alice:f", "p:user:bob:f", f"p:session:{people.alice.session_key}:f"]
    with pytest.warns(DeprecationWarning):
        assert resolve_audience(request, "f", users=True).users == ("alice",)
    with pytest.warns(DeprecationWarning):
        assert resolve_audience(request, "f", groups="admins").groups == ("admins",)
    with pytest.raises(ValueError):
        resolve_audience(request, "f", users={"alice": 1})
    assert RedisMessage(HEARTBEAT) is None and RedisMessage("x") == b"x"
    with pytest.raises(ValueError):
        RedisPublisher(facility="f", broadcast=True).publish_message("not a RedisMessage")  # type: ignore[arg-type]

    through_redis_py = RedisPublisher(connection=r, facility="own", users=[SELF], request=request)
    through_redis_py.publish_message(RedisMessage("via redis-py"))
    assert r.get(f"{PREFIX}:user:alice:own") == b"via redis-py" and 0 < r.ttl(f"{PREFIX}:user:alice:own") <= 120
    assert through_redis_py.fetch_message(request, "own") == b"via redis-py"
    assert RedisPublisher(facility="own").fetch_message(request, "own") == b"via redis-py", "the library reads what redis-py stored"


def test_standalone_passes_further_core_settings(serve: Callable[..., Served]) -> None:
    """`manage.py ws4redis --setting NAME=VALUE` sets any further setting of the core."""
    served = serve("standalone", "--setting", "allowed_origins=http://app.example")
    assert_refused(served.port, "/ws/news?subscribe-broadcast", 403, "origin", headers={"Origin": "http://elsewhere.example"})
    status, _, _ = raw_handshake(served.port, "/ws/news?subscribe-broadcast", {"Origin": "http://app.example"})
    assert status == 101


def test_command_errors_never_show_secrets(project_env: dict[str, str]) -> None:
    """`manage.py ws4redis` failing on a bad setting, with a Redis password in WS4REDIS_CONNECTION and
    a token secret among the settings: its output names the problem and shows both masked, never
    the secrets (nor does a NAME=VALUE without a name show its value)."""
    password, secret = "django-redis-pw-never-shown", "django-token-secret-never-shown-0123"
    env = {**project_env, "TEST_REDIS_PASSWORD": password}
    runs = {
        "an unknown setting": (["--setting", f"token_secret={secret}", "--setting", "no_such_setting=1"], ["no-such-setting", ":***@127.0.0.1"]),
        "a setting without a name": (["--setting", f"={secret}"], ["NAME=VALUE", "'=***'"]),
    }
    for what, (options, expected) in runs.items():
        done = subprocess.run([sys.executable, str(HERE / "manage.py"), "ws4redis", "--listen", f"127.0.0.1:{free_port()}", *options],
                              cwd=HERE, env=env, capture_output=True, text=True, timeout=60)
        output = done.stdout + done.stderr
        assert done.returncode != 0, f"{what}: manage.py ws4redis did not fail\n{output}"
        assert password not in output and secret not in output, f"{what}: a secret is shown\n{output}"
        missing = [text for text in expected if text not in output]
        assert not missing, f"{what}: {missing} not in the output\n{output}"
