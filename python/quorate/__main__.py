"""Command line: ``python -m quorate demo`` (or the ``quorate`` console script)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

from . import __version__
from .sim import Simulation


def _print_new_events(sim: Simulation, seen: int) -> int:
    events = sim.events
    for e in events[seen:]:
        if e.kind == "elected":
            print(f"  t={e.at:7.3f}s  {e.node_id} elected leader of term {e.term} (fencing token {e.fencing_token})")
        elif e.kind == "demoted":
            print(f"  t={e.at:7.3f}s  {e.node_id} stepped down (term {e.term})")
    return len(events)


def demo(members: int = 3, seed: int = 1) -> int:
    """A simulated group electing, losing and re-electing a leader, in virtual time."""
    print(f"quorate {__version__}: a simulated group of {members} (deterministic, seed {seed})")
    sim = Simulation(members, seed=seed)
    seen = 0

    print("\n1. Start: the nodes elect a leader")
    leader = sim.run_until_leader(5.0)
    seen = _print_new_events(sim, seen)
    if leader is None:
        print("no leader elected", file=sys.stderr)
        return 1
    sim.run_for(1.0)

    print(f"\n2. Crash the leader {leader}")
    sim.crash(leader)
    crashed_at = sim.now
    new_leader = sim.run_until_leader(5.0)
    seen = _print_new_events(sim, seen)
    if new_leader is None:
        print("no new leader after the crash", file=sys.stderr)
        return 1
    print(f"  failover took {1000 * (sim.now - crashed_at):.0f} ms of simulated time")
    sim.restart(leader)
    sim.run_for(1.0)

    print(f"\n3. Cut the leader {new_leader} off from the majority, then heal")
    others = [m for m in sim.members if m != new_leader]
    sim.partition([new_leader], others)
    sim.run_for(1.0)
    seen = _print_new_events(sim, seen)
    print(f"  {new_leader} while cut off: {sim.status(new_leader)['role']}, is_leader={sim.status(new_leader)['is_leader']}")
    sim.heal()
    final = sim.run_until_leader(5.0)
    sim.run_for(0.5)
    seen = _print_new_events(sim, seen)
    if final is None:
        print("no leader after healing", file=sys.stderr)
        return 1
    terms = {m: sim.status(m)["term"] for m in sim.members}
    print(f"  healed: every node follows {final}; terms {terms}")

    sim.check()
    stats = sim.stats
    print(
        f"\nsafety checker: no violations ({stats['messages_sent']} messages, "
        f"{stats['elections_started']} elections, {sim.now:.1f} s simulated)"
    )
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="quorate", description="Leader election with a Rust engine.")
    parser.add_argument("--version", action="version", version=f"quorate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    d = commands.add_parser("demo", help="a group electing, losing and re-electing a leader")
    d.add_argument("--members", type=int, default=3, help="group size (default 3)")
    d.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command == "demo":
        if args.members < 1:
            parser.error("--members must be at least 1")
        return demo(args.members, args.seed)
    return 2


if __name__ == "__main__":
    sys.exit(main())
