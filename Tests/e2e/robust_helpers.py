"""Helpers of the robustness tests (test_faults, test_slow_consumer, test_hostile, test_soak): the
server's memory and descriptors, raw sockets that read until the server closes, the fd limit of
this process."""

from __future__ import annotations

import resource
import socket
import struct
import threading
import time
from typing import Any

from e2e_helpers import Server, wait_until

#: The modes the robustness tests run in (the plugin mode is the host with the same core loaded
#: differently: the default suite covers it; these tests are expensive).
ROBUST_MODES = ("standalone", "host")


def raise_fd_limit(wanted: int) -> None:
    """Raises this process's soft RLIMIT_NOFILE to at least `wanted` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def proc_status_kib(pid: int, field: str) -> int:
    """A figure of /proc/PID/status in KiB (VmRSS: resident now, VmHWM: the peak resident size)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


class RssSampler:
    """Samples a process's VmRSS every `interval` s in a thread; `peak_kib` is the largest sample.
    VmHWM (the kernel's own peak, which sees spikes between samples) is read at stop()."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self.hwm_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
                self.samples += 1
            except (OSError, AssertionError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(5)
            try:
                self.hwm_kib = proc_status_kib(self.pid, "VmHWM")
            except (OSError, AssertionError):
                pass


def settled_fd_count(server: Server) -> int:
    """The server's fd count once two readings 50 ms apart agree (transient health-check sockets gone)."""
    previous = [-1]

    def stable() -> int | None:
        now = server.fd_count()
        same = now == previous[0]
        previous[0] = now
        return now if same else None

    return wait_until(stable, 10, "a stable fd count", interval=0.05)


def wait_fds_at_most(server: Server, limit: int, timeout: float, what: str) -> int:
    """Polls until the server holds at most `limit` fds; returns the count."""
    last = [0]

    def low() -> bool:
        last[0] = server.fd_count()
        return last[0] <= limit

    try:
        wait_until(low, timeout, f"the server's fds back to at most {limit} ({what})", interval=0.05)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the server holds {last[0]} fds") from None
    return last[0]


def read_until_closed(s: socket.socket, timeout: float, limit: int = 1 << 20) -> tuple[bytes, str]:
    """Reads what the server sends until it closes the connection. Returns (bytes, how it ended):
    "eof", "reset", or "open" when the server neither closed nor reset within `timeout` s."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, "open"
        s.settimeout(min(left, 1.0))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data, "reset"
        if not chunk:
            return data, "eof"
        if len(data) < limit:
            data += chunk


def first_close_frame(data: bytes) -> tuple[int | None, bytes, str]:
    """Parses server frames (unmasked) from `data` and returns the first close frame's (code, reason,
    description of the frames before it). (None, b"", ...) when there is no complete close frame."""
    pos = 0
    before = []
    while len(data) - pos >= 2:
        b0, b1 = data[pos], data[pos + 1]
        n, hlen = b1 & 0x7F, 2
        if n == 126:
            if len(data) - pos < 4:
                break
            n, hlen = struct.unpack_from(">H", data, pos + 2)[0], 4
        elif n == 127:
            if len(data) - pos < 10:
                break
            n, hlen = struct.unpack_from(">Q", data, pos + 2)[0], 10
        if b1 & 0x80:
            hlen += 4
        if len(data) - pos < hlen + n:
            break
        payload = data[pos + hlen:pos + hlen + n]
        pos += hlen + n
        if b0 & 0x0F == 0x8:
            code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
            return code, payload[2:], ", ".join(before)
        before.append(f"opcode {b0 & 0x0F} ({n} bytes)")
    return None, b"", ", ".join(before) + (f"; {len(data) - pos} unparsed bytes" if pos < len(data) else "")
