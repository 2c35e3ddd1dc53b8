"""``python -m ws4redis --version``: the core's version, the library this install loads and why it
was chosen, and the ws4redis command this package runs."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import __version__
from ._command import bundled_executable
from .native import load_library


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ws4redis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="store_true", help="print the versions and paths and exit")
    parser.add_argument("--library", help="load this libws4redis instead of looking for one")
    args = parser.parse_args(argv)
    if not args.version:
        parser.print_help()
        return 2
    try:
        lib = load_library(args.library)
    except OSError as error:
        print(error, file=sys.stderr)
        return 1
    command = bundled_executable()
    print(f"ws4redis core {lib.version} (Python package ws4redis-swift {__version__})")
    print(f"library: {lib.path} ({lib.origin})")
    print(f"command: {command if command else 'none bundled (a source install: use make install)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
