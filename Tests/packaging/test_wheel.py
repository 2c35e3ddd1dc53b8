"""The wheels of `make wheel` as a Django user gets them: a fresh virtualenv, `pip install
ws4redis-django` from the built files (Django itself from the index), no Swift toolchain on PATH
or in LD_LIBRARY_PATH, no `make install`, no PYTHONPATH into this repository. The small project
of Tests/django, copied elsewhere, then runs `manage.py ws4redis` and `runserver`; a websocket
gets what RedisPublisher publishes; the processes' mapped libraries show the core and hiredis
loaded from the wheel, the rest from the C library set. As root, every process of the install runs
in a mount namespace of its own where the system's hiredis is an empty file: loading it would fail."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO, SYSTEM_LIBRARIES, artifact, header_define, mapped_libraries
from e2e_helpers import RedisServer, close_all, free_port, healthz, http_get, open_client, receive_one, run_async, wait_until

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def system_hiredis() -> list[str]:
    """The system's hiredis libraries, as the loader's cache lists them (real files)."""
    listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout.splitlines()
    paths = {os.path.realpath(line.split(" => ")[1]) for line in listing if "libhiredis" in line and " => " in line}
    return sorted(paths)


def hiding_system_hiredis() -> list[str]:
    """A command prefix that runs the command with the system's hiredis replaced by /dev/null (a
    private mount namespace), or nothing where that needs privileges this test lacks."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or not system_hiredis():
        return []
    mounts = " && ".join(f"mount --bind /dev/null {shlex.quote(path)}" for path in system_hiredis())
    return ["unshare", "-m", "sh", "-c", f'{mounts} && exec "$@"', "sh"]


HIDE = hiding_system_hiredis()


class Install(tuple):
    """(venv, site-packages, env): the fresh virtualenv and the environment of its processes."""

    venv: Path
    site: Path
    env: dict[str, str]

    def __new__(cls, venv: Path, site: Path, env: dict[str, str]) -> "Install":
        self = super().__new__(cls, (venv, site, env))
        self.venv, self.site, self.env = venv, site, env
        return self

    def run(self, *argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*HIDE, *argv], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{' '.join(argv)}: exit {result.returncode}\n{result.stdout}{result.stderr}"
        return result


@pytest.fixture(scope="module")
def install(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    artifact(dist, "ws4redis_swift-*-manylinux_*.whl", "wheel")
    artifact(dist, "ws4redis_django-*-none-any.whl", "wheel")
    home = tmp_path_factory.mktemp("home")
    venv = home / "venv"
    python3 = shutil.which("python3", path=SYSTEM_PATH)
    assert python3, f"no python3 on {SYSTEM_PATH}"
    env = {"PATH": f"{venv}/bin:{SYSTEM_PATH}", "HOME": str(home), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
    assert shutil.which("swift", path=env["PATH"]) is None, f"a Swift toolchain is on {env['PATH']}"
    subprocess.run([python3, "-m", "venv", str(venv)], env=env, check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    result = subprocess.run([*pip, "--find-links", str(dist), "ws4redis-django"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"pip install ws4redis-django: {result.stdout}{result.stderr}"
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               env=env, capture_output=True, text=True, check=True).stdout.strip())
    return Install(venv, site, env)


def test_the_system_hiredis_is_hidden(install: Install, tmp_path: Path) -> None:
    """The control of the hiding: in its namespace the system's hiredis does not load."""
    if not HIDE:
        pytest.skip("hiding the system's hiredis needs root, unshare and a system hiredis; the mapped-library checks remain")
    code = f"import ctypes; ctypes.CDLL({system_hiredis()[0]!r})"
    result = subprocess.run([*HIDE, str(install.venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=install.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "file too short" in result.stderr, f"exit {result.returncode}\n{result.stderr}"


def test_version_names_the_bundled_library(install: Install, tmp_path: Path) -> None:
    """`python -m ws4redis --version`: the core's version (include/ws4redis.h's) and the library
    loaded, the wheel's own copy, with the reason it was chosen."""
    out = install.run(str(install.venv / "bin" / "python"), "-m", "ws4redis", "--version", cwd=tmp_path).stdout
    library = install.site / "ws4redis" / f"libws4redis.so.{header_define('WS4R_ABI_VERSION')}"
    assert f"ws4redis core {header_define('WS4R_VERSION_STRING')} " in out, out
    assert f"library: {library} (bundled in the ws4redis package)" in out, out
    assert f"command: {install.site / 'ws4redis' / 'bin' / 'ws4redis'}" in out, out


def test_an_unloadable_library_is_explained(install: Install, tmp_path: Path) -> None:
    """When no library loads, the error lists each place tried, in order, and the loader's reason:
    here the package of the source tree (nothing bundled) and a WS4REDIS_LIBRARY that is no ELF file."""
    broken = tmp_path / "libws4redis.so.1"
    broken.write_text("not an ELF file\n" * 100)
    env = {**install.env, "PYTHONPATH": str(REPO / "clients" / "python"), "WS4REDIS_LIBRARY": str(broken)}
    result = subprocess.run([str(install.venv / "bin" / "python"), "-m", "ws4redis", "--version"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    bundled = REPO / "clients" / "python" / "ws4redis" / "libws4redis.so.1"
    expected = [f"bundled in the ws4redis package: no {bundled} (not a wheel install)", f"WS4REDIS_LIBRARY: {broken}: {broken}: invalid ELF header"]
    tried = [line.strip() for line in result.stderr.splitlines()[1:3]]
    assert result.returncode == 1 and tried == expected, result.stderr


def test_bundled_library_resolves_from_the_wheel(install: Install, tmp_path: Path) -> None:
    """ldd of the installed library: hiredis from the wheel's ws4redis_swift.libs, everything else
    from the C library set (nothing from /usr/lib's hiredis, nothing missing)."""
    library = install.site / "ws4redis" / f"libws4redis.so.{header_define('WS4R_ABI_VERSION')}"
    listing = install.run("ldd", str(library), cwd=tmp_path).stdout
    resolved = {}
    for line in listing.splitlines():
        name, _, target = line.strip().partition(" => ")
        resolved[name.split()[0]] = os.path.realpath(target.split(" (")[0]) if target else name.split()[0]
    outside = {name: path for name, path in resolved.items()
               if not path.startswith(str(install.site)) and not SYSTEM_LIBRARIES.match(Path(name).name)}
    assert not outside and "not found" not in listing, f"ldd {library}:\n{listing}"
    hiredis = [path for name, path in resolved.items() if "hiredis" in name]
    assert hiredis and all(path.startswith(str(install.site / "ws4redis_swift.libs")) for path in hiredis), listing


class Process:
    """A process of the installed project, in its own process group, logging to a file."""

    def __init__(self, argv: list[str], install: Install, cwd: Path, env: dict[str, str], log: Path):
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([*HIDE, *argv], cwd=cwd, env={**install.env, **env}, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def check_alive(self) -> None:
        assert self.proc.poll() is None, f"exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def project(install: Install, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Tests/django's project copied out of the repository, its database migrated."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "Tests" / "django" / "manage.py", root)
    shutil.copytree(REPO / "Tests" / "django" / "testproject", root / "testproject", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"TEST_REDIS_PORT": str(redis_server.port), "TEST_DB": str(root / "db.sqlite3")}
    install.run(str(install.venv / "bin" / "python"), "manage.py", "migrate", "-v", "0", cwd=root, timeout=120).stdout
    return root, {**install.env, **env}


@pytest.fixture
def served(request: pytest.FixtureRequest, install: Install, project: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[tuple[Process, int]]:
    root, env = project
    port = free_port()
    command = {"standalone": ["ws4redis", "--listen", f"127.0.0.1:{port}"], "runserver": ["runserver", f"127.0.0.1:{port}", "--noreload"]}
    process = Process([str(install.venv / "bin" / "python"), "manage.py", *command[request.param]], install, root, env, tmp_path / "served.log")
    try:
        ready = (lambda: healthz(port)[0] == 200) if request.param == "standalone" else (lambda: http_get(port, "/")[0] == 200)

        def answering() -> bool:
            process.check_alive()
            try:
                return ready()
            except OSError:
                return False

        wait_until(answering, 60, f"manage.py {request.param} to answer", interval=0.1)
        yield process, port
    finally:
        code = process.stop()
    if request.param == "standalone":
        assert code == 0, f"manage.py ws4redis exited {code} after SIGTERM:\n{process.log.read_text()[-3000:]}"


def publish_with_redis_publisher(install: Install, project: tuple[Path, dict[str, str]], message: str) -> None:
    """RedisPublisher of the installed ws4redis_django, from a Django shell of the project."""
    root, env = project
    code = ("from ws4redis_django.publisher import RedisPublisher; from ws4redis_django.redis_store import RedisMessage; "
            f"RedisPublisher(facility='installed', broadcast=True).publish_message(RedisMessage({message!r}))")
    result = subprocess.run([*HIDE, str(install.venv / "bin" / "python"), "manage.py", "shell", "-c", code], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("served", ["standalone", "runserver"], indirect=True)
def test_installed_project_round_trip(served: tuple[Process, int], install: Install, project: tuple[Path, dict[str, str]],
                                      redis_server: RedisServer) -> None:
    """A websocket of the installed project gets what RedisPublisher publishes; the serving process
    mapped the wheel's libws4redis and hiredis, and no other hiredis."""
    process, port = served
    r = redis_server.client()

    async def body() -> None:
        client = await open_client(f"ws://127.0.0.1:{port}/ws/installed?subscribe-broadcast")
        try:
            await asyncio.to_thread(wait_until, lambda: r.pubsub_numsub("djt:broadcast:installed")[0][1] > 0, 20, "the subscription")
            await asyncio.to_thread(publish_with_redis_publisher, install, project, "from the wheel")
            assert await receive_one(client, 15, "the published message") == "from the wheel"
        finally:
            await close_all([client])

    try:
        run_async(body(), 120, "round trip through the installed project")
    finally:
        r.close()
    core = {path for path in mapped_libraries(process.proc.pid) if "ws4redis" in Path(path).name or "hiredis" in Path(path).name}
    assert core and all(path.startswith(str(install.site)) for path in core), f"core libraries mapped: {sorted(core)}"
    assert any(Path(path).name.startswith("libhiredis") for path in core), f"no hiredis mapped: {sorted(core)}"


def test_console_command_serves_from_the_wheel(install: Install, redis_server: RedisServer, tmp_path: Path) -> None:
    """The `ws4redis` console command (the bundled program) serves a websocket round trip; every
    library it mapped is the wheel's or of the C library set."""
    port = free_port()
    process = Process(["ws4redis", "serve", "--listen", f"127.0.0.1:{port}", "--redis-url", redis_server.url], install, tmp_path, {},
                      tmp_path / "serve.log")
    r = redis_server.client()
    try:
        def answering() -> bool:
            process.check_alive()
            try:
                return healthz(port)[0] == 200
            except OSError:
                return False

        wait_until(answering, 30, "ws4redis serve to answer /healthz", interval=0.1)

        async def body() -> None:
            client = await open_client(f"ws://127.0.0.1:{port}/ws/cmd?subscribe-broadcast")
            try:
                await asyncio.to_thread(wait_until, lambda: r.pubsub_numsub("broadcast:cmd")[0][1] > 0, 20, "the subscription")
                r.publish("broadcast:cmd", "hello")
                assert await receive_one(client, 10, "the message") == "hello"
            finally:
                await close_all([client])

        run_async(body(), 60, "round trip through the console command")
        mapped = mapped_libraries(process.proc.pid)
        outside = sorted(path for path in mapped if not path.startswith(str(install.site)) and not SYSTEM_LIBRARIES.match(Path(path).name))
        assert not outside, f"libraries from outside the wheel: {outside}"
        assert any("ws4redis_swift.libs/libhiredis" in path for path in mapped), sorted(mapped)
    finally:
        r.close()
        assert process.stop() == 0, process.log.read_text()[-3000:]
