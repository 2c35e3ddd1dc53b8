"""The ``ws4redis`` console command of a wheel install: runs the core's command-line program
(``ws4redis serve``, ``ws4redis token``, ...) that the wheel bundles in ``ws4redis/bin``."""

from __future__ import annotations

import os
import sys
from typing import Optional

#: Where a wheel of ws4redis-swift puts the program.
BUNDLED_EXECUTABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "ws4redis")


def bundled_executable() -> Optional[str]:
    return BUNDLED_EXECUTABLE if os.access(BUNDLED_EXECUTABLE, os.X_OK) else None


def main() -> None:
    """Replaces this process with the bundled program, so that signals (a SIGTERM's graceful stop)
    and the exit status are the program's own."""
    program = bundled_executable()
    if program is None:
        sys.exit(f"ws4redis: this install of ws4redis-swift bundles no ws4redis program ({BUNDLED_EXECUTABLE}); "
                 "install the wheel, or build it from source (make install)")
    os.execv(program, [program, *sys.argv[1:]])
