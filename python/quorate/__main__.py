"""``python -m quorate``: the command line, which lives in `quorate.cli`."""

from __future__ import annotations

import sys

from .cli import SCENES, build_parser, demo, main, run_node

__all__ = ["main", "build_parser", "demo", "run_node", "SCENES"]

if __name__ == "__main__":
    sys.exit(main())
