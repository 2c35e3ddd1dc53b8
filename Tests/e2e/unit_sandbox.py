"""Runs a command under the kernel restrictions that the systemd unit's sandbox options ask for,
without systemd: a seccomp allow-list (SystemCallFilter=; any other system call kills the process
with SIGSYS, as systemd's default) and PR_SET_MDWE (MemoryDenyWriteExecute=: no mapping may be
writable and executable, none may become executable; newer systemd sets the same flag, older
ones an equivalent seccomp filter). Both survive execve and apply to every thread the command
starts, as under systemd.

    python unit_sandbox.py --allow read,write,... -- /usr/local/bin/ws4redis serve

Exit 77 (and nothing run) when this kernel or libseccomp cannot do it.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import sys

PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1  # linux/prctl.h, kernel 6.3+
SCMP_ACT_KILL_PROCESS, SCMP_ACT_ALLOW = 0x80000000, 0x7FFF0000  # seccomp.h
UNSUPPORTED = 77


def unsupported(what: str) -> None:
    print(f"unit_sandbox: {what}", file=sys.stderr)
    sys.exit(UNSUPPORTED)


def deny_write_execute() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        unsupported(f"prctl(PR_SET_MDWE): {os.strerror(ctypes.get_errno())} (needs Linux 6.3+)")


def allow_only(names: list[str]) -> None:
    """Loads a seccomp filter that allows `names` (those this architecture has) and kills the
    process on any other system call. libseccomp sets no_new_privs first (NoNewPrivileges=yes)."""
    path = ctypes.util.find_library("seccomp")
    if path is None:
        unsupported("libseccomp is not installed")
    seccomp = ctypes.CDLL(path)
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    context = seccomp.seccomp_init(SCMP_ACT_KILL_PROCESS)
    if not context:
        unsupported("seccomp_init failed")
    for name in names:
        number = seccomp.seccomp_syscall_resolve_name(name.encode())
        if number != -1 and seccomp.seccomp_rule_add(context, SCMP_ACT_ALLOW, number, 0) != 0:
            sys.exit(f"unit_sandbox: seccomp_rule_add({name}) failed")
    if seccomp.seccomp_load(context) != 0:
        unsupported("seccomp_load failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allow", required=True, help="comma-separated system call names")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("no command")
    deny_write_execute()
    allow_only([name for name in options.allow.split(",") if name])
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
