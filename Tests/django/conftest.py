"""Fixtures of the Django drop-in tests: a private redis-server, the test project's database with its
users, and the project served by `manage.py runserver` or `manage.py ws4redis` in subprocesses.

WS4R_PREFIX names the installed layout to test (lib/libws4redis.so, bin/ws4redis); default the
repository's stage/. The test process itself runs Django with the same settings and database (to log
users in with the test client and to publish with RedisPublisher).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from django_helpers import HERE, PYTHONPATH, People, Served, User
from e2e_helpers import RedisServer, describe_exit, healthz, http_get
from service_fixtures import _clean_redis, prefix, r, redis_server  # noqa: F401 (fixtures, found by name)

@pytest.fixture(scope="session")
def project_env(prefix: Path, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the test project, in this process (Django set up, database migrated) and
    for its subprocesses."""
    env = {
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "TEST_REDIS_PORT": str(redis_server.port),
        "TEST_DB": str(tmp_path_factory.mktemp("db") / "db.sqlite3"),
        "WS4REDIS_LIBRARY": str(prefix / "lib" / "libws4redis.so"),
        "PYTHONPATH": os.pathsep.join(str(path) for path in PYTHONPATH),
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return {**os.environ, **env}


@pytest.fixture(scope="session")
def people(project_env: dict[str, str]) -> People:
    from django.contrib.auth.models import Group, User as DjangoUser
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import Client

    staff = Group.objects.create(name="staff")

    def logged_in(name: str, *groups: Group) -> User:
        user = DjangoUser.objects.create_user(name, password="pw")
        user.groups.add(*groups)
        client = Client()
        assert client.login(username=name, password="pw"), f"{name} could not log in"
        return User(name, client.cookies["sessionid"].value)

    anonymous = SessionStore()
    anonymous["visited"] = True
    anonymous.save()
    return People(alice=logged_in("alice", staff), bob=logged_in("bob"), dave=logged_in("dave", staff), anonymous_session=anonymous.session_key)


@pytest.fixture
def serve(request: pytest.FixtureRequest, project_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """serve("runserver" | "standalone", *options, reload=False, cwd=HERE) -> the test project, answering.

    runserver: `manage.py runserver 127.0.0.1:PORT --noreload` (or with its autoreloader), ready when
    GET / answers 200. standalone: `manage.py ws4redis --listen 127.0.0.1:PORT *options`, ready when
    /healthz answers 200; it must exit 0 on SIGTERM.
    """
    started: list[tuple[str, Served]] = []
    request.node._ws4r_served = started

    def start(mode: str, *options: str, reload: bool = False, cwd: Path = HERE) -> Served:
        log = tmp_path / f"{mode}-{len(started)}.log"
        if mode == "runserver":
            served = Served(["runserver", "127.0.0.1:{port}", *([] if reload else ["--noreload"]), *options], project_env, log, cwd)
            started.append((mode, served))
            return served.wait_ready(lambda: http_get(served.port, "/")[0] == 200, "runserver to answer GET / with 200")
        served = Served(["ws4redis", "--listen", "127.0.0.1:{port}", *options], project_env, log, cwd)
        started.append((mode, served))
        return served.wait_ready(lambda: healthz(served.port)[0] == 200, "manage.py ws4redis to answer /healthz with 200")

    yield start
    failures = []
    for mode, served in started:
        code = served.stop()
        if mode == "standalone" and code != 0:
            failures.append(f"manage.py ws4redis {describe_exit(code)} after SIGTERM, expected exit 0\n{served.log_tail()}")
    assert not failures, "\n\n".join(failures)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Attaches the tail of each served project's log to a failed test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for mode, served in getattr(item, "_ws4r_served", []):
            report.sections.append((f"{mode} log (port {served.port})", served.log_tail()))
