"""The .deb of `make deb` as an operator gets it: `apt-get install ./ws4redis_*.deb` on this
machine (root), then the installed files only: the unit's command as the package's system user with
the conffile's settings, examples/push_server.c built with the installed ws4redis.pc, the unit
verified by systemd-analyze; last, `apt-get purge` leaves none of the files `dpkg -L` listed.
Tests run in file order: the purge is the last one."""

from __future__ import annotations

import asyncio
import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO, artifact, header_define
from e2e_helpers import RedisServer, close_all, free_port, open_client, raw_handshake, receive_one, run_async, wait_until

MULTIARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True, text=True).stdout.strip() \
    if shutil.which("dpkg-architecture") else "x86_64-linux-gnu"
LIBDIR = Path("/usr/lib") / MULTIARCH
UNIT = Path("/lib/systemd/system/ws4redis.service")
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("apt-get") is None, reason="installs a .deb: needs root and apt-get")


def resolved_by_ldd(binary: Path, soname: str) -> str:
    """Where the loader finds `soname` for `binary` (a real path: /lib is /usr/lib on a merged /usr)."""
    listing = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    targets = [line.split(" => ", 1)[1].split(" (")[0] for line in listing.splitlines() if line.strip().startswith(f"{soname} => ")]
    assert len(targets) == 1, listing
    return os.path.realpath(targets[0])


def dpkg_installed() -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status}", "ws4redis"], capture_output=True, text=True)
    return result.stdout == "installed"


def apt_get(*args: str) -> None:
    result = subprocess.run(["apt-get", "-y", "-q", *args], env=APT_ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"apt-get {' '.join(args)}: exit {result.returncode}\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def installed(dist: Path) -> Iterator[list[Path]]:
    """The package installed with apt; the paths `dpkg -L` lists for it."""
    deb = artifact(dist, "ws4redis_*.deb", "deb")
    assert not dpkg_installed(), "ws4redis is installed already: apt-get purge ws4redis first (the purge test checks what it removes)"
    apt_get("install", str(deb))
    try:
        yield [Path(line) for line in subprocess.run(["dpkg", "-L", "ws4redis"], capture_output=True, text=True, check=True).stdout.splitlines()
               if line.startswith("/")]
    finally:
        if dpkg_installed():
            apt_get("purge", "ws4redis")


def test_installed_layout(installed: list[Path]) -> None:
    """The files an operator and a C programmer need, the library under its soname (the header's ABI
    major), the computed dependencies, and the system user."""
    soname = f"libws4redis.so.{header_define('WS4R_ABI_VERSION')}"
    expected = {Path("/usr/bin/ws4redis"), Path("/usr/bin/ws4redis-host"), LIBDIR / soname, LIBDIR / "libws4redis.so",
                LIBDIR / "pkgconfig" / "ws4redis.pc", Path("/usr/include/ws4redis.h"), UNIT, Path("/etc/default/ws4redis"),
                Path("/usr/lib/sysctl.d/60-ws4redis.conf"), Path("/usr/share/doc/ws4redis/nginx/snippets/ws4redis-websocket.conf")}
    assert expected <= set(installed), f"missing: {sorted(map(str, expected - set(installed)))}"
    assert os.readlink(LIBDIR / "libws4redis.so") == soname
    dynamic = subprocess.run(["readelf", "-d", str(LIBDIR / soname)], capture_output=True, text=True, check=True).stdout
    assert f"Library soname: [{soname}]" in dynamic, dynamic
    depends = subprocess.run(["dpkg-query", "-W", "-f", "${Depends}", "ws4redis"], capture_output=True, text=True, check=True).stdout
    assert all(name in depends for name in ("libhiredis", "libmicrohttpd", "zlib1g", "adduser")), depends
    conffiles = subprocess.run(["dpkg-query", "-W", "-f", "${Conffiles}", "ws4redis"], capture_output=True, text=True, check=True).stdout
    assert "/etc/default/ws4redis " in conffiles, conffiles
    user = pwd.getpwnam("ws4redis")
    assert user.pw_uid < 1000 and user.pw_shell.endswith("nologin"), user
    assert resolved_by_ldd(Path("/usr/bin/ws4redis-host"), soname) == str(LIBDIR / soname)


def test_systemd_unit_verifies(installed: list[Path]) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    result = subprocess.run([analyze, "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def unit_value(key: str) -> str:
    values = [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(f"{key}=")]
    assert len(values) == 1, f"{UNIT}: {key}= {values}"
    return values[0]


def test_unit_command_serves_as_the_package_user(installed: list[Path], redis_server: RedisServer, tmp_path: Path) -> None:
    """The installed unit's ExecStart, as its User= with its EnvironmentFile= (listen address and
    Redis moved to the test's): a page of the configured origin gets what the app publishes."""
    argv = shlex.split(unit_value("ExecStart"))
    assert argv[0] == "/usr/bin/ws4redis", argv
    user = unit_value("User")
    lines = Path(unit_value("EnvironmentFile")).read_text().splitlines()
    environment = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    port = free_port()
    environment.update(WS4REDIS_LISTEN=f"127.0.0.1:{port}", WS4REDIS_REDIS_URL=redis_server.url, WS4REDIS_METRICS_LISTEN=f"127.0.0.1:{free_port()}")
    origin = {"Origin": environment["WS4REDIS_ALLOWED_ORIGINS"].split(",")[0]}
    channel = f"{environment['WS4REDIS_PREFIX']}:broadcast:deb"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *argv], cwd="/",
                                env={"PATH": "/usr/bin:/bin", **environment}, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    r = redis_server.client()
    try:
        def ready() -> bool:
            assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text()}"
            try:
                return raw_handshake(port, "/ws/deb?subscribe-broadcast", origin)[0] == 101
            except OSError:
                return False

        wait_until(ready, 30, "the installed ws4redis serve to accept a websocket", interval=0.1)
        assert Path(f"/proc/{proc.pid}/status").read_text().count(f"\t{pwd.getpwnam(user).pw_uid}\t") >= 1

        async def body() -> None:
            client = await open_client(f"ws://127.0.0.1:{port}/ws/deb?subscribe-broadcast", additional_headers=origin)
            try:
                await asyncio.to_thread(wait_until, lambda: r.pubsub_numsub(channel)[0][1] > 0, 20, f"the subscription to {channel}")
                r.publish(channel, "from the package")
                assert await receive_one(client, 10, "the app's message") == "from the package"
            finally:
                await close_all([client])

        run_async(body(), 60, "round trip through the installed server")
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()
    finally:
        r.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_example_builds_with_the_installed_pkg_config(installed: list[Path], redis_server: RedisServer, tmp_path: Path) -> None:
    """examples/push_server.c with `pkg-config --cflags --libs ws4redis` alone (the system's search
    path, no PKG_CONFIG_PATH, no rpath) links and runs against the installed library."""
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "ws4redis"], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert flags.returncode == 0, flags.stderr
    binary = tmp_path / "push_server"
    command = [os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-o", str(binary),
               str(REPO / "examples" / "push_server.c"), *shlex.split(flags.stdout)]
    built = subprocess.run(command, capture_output=True, text=True)
    assert built.returncode == 0, f"{shlex.join(command)}\n{built.stderr}"
    soname = f"libws4redis.so.{header_define('WS4R_ABI_VERSION')}"
    assert resolved_by_ldd(binary, soname) == str(LIBDIR / soname)
    proc = subprocess.Popen([str(binary), "--listen", f"127.0.0.1:{free_port()}", "--redis-url", redis_server.url, "--threads", "1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={"PATH": "/usr/bin:/bin"})
    try:
        def read_until(prefix: str) -> str:
            output = []
            while (line := proc.stdout.readline()) and not line.startswith(prefix):
                output.append(line)
            assert line.startswith(prefix), f"no line {prefix!r}; the example wrote:\n{''.join(output)}"
            return line

        read_until(f"push_server ready (libws4redis {header_define('WS4R_VERSION_STRING')})")
        proc.stdin.write("* from the installed library\n")
        proc.stdin.flush()
        read_until("published to *: ")
    finally:
        proc.kill()
        proc.wait()


def test_purge_leaves_nothing(installed: list[Path]) -> None:
    """apt-get purge removes every file and link dpkg listed (the conffile too); a listed directory
    remains only when something else is in it."""
    apt_get("purge", "ws4redis")
    assert not dpkg_installed()
    # A directory reached through a link (/lib on a merged /usr) is the system's, not the package's.
    left = [path for path in installed if path.is_file() or (path.is_symlink() and not path.is_dir())
            or (path.is_dir() and not any(path.iterdir()))]
    assert not left, f"left behind: {sorted(map(str, left))}"
