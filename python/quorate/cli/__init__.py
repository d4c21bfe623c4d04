"""The command line: ``python -m quorate demo | node`` (also the ``quorate`` console script).

- `quorate.cli.demo`: ``quorate demo``, the scenes told against any `quorate.Cluster`.
- `quorate.cli.node`: ``quorate node``, one member as a process, with its status port.
- `quorate.cli.options`: the options of ``quorate node``, generated from ``Node(...)``'s arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .. import __version__
from ..errors import ConfigError, QuorateError
from .demo import SCENES, demo
from .node import run_node
from .options import NodeHelpFormatter, add_node_options

__all__ = ["main", "build_parser", "demo", "run_node", "SCENES"]


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``demo`` and ``node`` (whose Node options come from `quorate.cli.options`)."""
    parser = argparse.ArgumentParser(prog="quorate", description="Leader election with a Rust engine.")
    parser.add_argument("--version", action="version", version=f"quorate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    d = commands.add_parser("demo", help="a cluster electing, losing and re-electing a leader, live or simulated")
    d.add_argument("--members", type=int, default=3, help="group size, at least 3 (default 3)")
    d.add_argument("--simulated", action="store_true", help="run in the deterministic simulator instead")
    d.add_argument("--seed", type=int, default=1, help="simulation seed (with --simulated)")
    d.set_defaults(subparser=d)

    n = commands.add_parser(
        "node", help="run one member as a process; events as JSON lines on stdout",
        description="Runs one member of an election group: quorate.Node with the options below (each the "
        "constructor's argument of the same name; the defaults are the constructor's), events as JSON lines "
        "on stdout. SIGTERM or Ctrl-C stops it, a leader handing off first.",
        formatter_class=NodeHelpFormatter,
    )
    add_node_options(n)
    n.add_argument("--status-bind", default=None, metavar="HOST:PORT", help="serve GET /status and /metrics")
    n.add_argument("--quiet-warnings", action="store_true", help="do not warn about a missing data_dir etc.")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        if args.command == "demo":
            if args.members < 3:
                args.subparser.error(
                    f"--members: the demo needs at least 3 nodes (a majority must outlive the kill), got {args.members}"
                )
            return demo(args.members, simulated=args.simulated, seed=args.seed)
        if args.command == "node":
            return run_node(args)
    except (ConfigError, QuorateError, OSError) as e:
        # One line, no traceback: the message names the option (or argument) and the reason.
        print("quorate: " + " ".join(str(e).split("\n")), file=sys.stderr)
        return 2
    return 2
