"""Fixtures of the packaging tests: the built artifacts (WS4R_DIST, default the repository's dist/,
where `make wheel` and `make deb` put them), a private redis-server, and helpers to look at which
shared libraries a process really mapped."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "e2e"))

from service_fixtures import _clean_redis, redis_server  # noqa: E402,F401 (fixtures, found by name)

#: Libraries a program may take from the system: the C library set and the C++ runtime, which
#: every Linux has (the manylinux policies assume them, and zlib, too).
SYSTEM_LIBRARIES = re.compile(r"^(linux-vdso|ld-linux[-\w]*|libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|libz)\.so(\.|$)")


def header_define(name: str) -> str:
    match = re.search(rf"^#define {name} (\S+)", (REPO / "include" / "ws4redis.h").read_text(), re.M)
    assert match, f"include/ws4redis.h defines no {name}"
    return match.group(1).strip('"')


@pytest.fixture(scope="session")
def dist() -> Path:
    return Path(os.environ.get("WS4R_DIST") or REPO / "dist").resolve()


def artifact(dist: Path, pattern: str, target: str) -> Path:
    found = sorted(dist.glob(pattern))
    if len(found) != 1:
        pytest.fail(f"{dist}/{pattern}: {len(found)} files; run `make {target}`")
    return found[0]


def mapped_libraries(pid: int) -> set[str]:
    """The shared objects the process has mapped, as paths (what the loader really resolved)."""
    paths = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and ".so" in Path(fields[5]).name:
            paths.add(fields[5])
    return paths
