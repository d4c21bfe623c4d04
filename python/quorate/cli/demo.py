"""``quorate demo``: one script of scenes, told against any `quorate.Cluster`: a live
`LocalCluster` (real nodes on loopback, about 10 s) or a `Simulation` (the same engine in virtual
time, well under a second). The scenes use only the Cluster interface; the command line's
``--simulated`` chooses which cluster is made, and nothing else asks."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Set, Tuple

from .. import __version__
from .._core import Event
from ..cluster import LocalCluster
from ..protocol import Cluster
from ..sim import Simulation

__all__ = ["SCENES", "demo"]

#: The demo's scenes, in order; _run_scenes tells them against any Cluster.
SCENES = (
    "Start: the nodes elect a leader",
    "Kill the leader (abrupt: no hand-off) and time the failover",
    "Restart the killed node from its saved term and vote",
    "Cut a minority off, the leader with it, then heal",
)

_WAIT = 10.0  # seconds (of the cluster's clock) any one election may take before the demo gives up
_POLL = 0.005


class _DemoFailed(Exception):
    pass


def _describe(event: Event) -> Optional[str]:
    if event.kind == "elected":
        return f"{event.node_id} elected leader of term {event.term} (fencing token {event.fencing_token})"
    if event.kind == "demoted":
        return f"{event.node_id} stepped down from term {event.term} (reason: {event.reason})"
    return None


@dataclass
class _Story:
    """The cluster the demo tells its scenes against, and how it prints them."""

    cluster: Cluster
    title: str
    clock: str  # "real time" | "virtual time", for the closing line
    closing: Callable[[], List[str]] = lambda: []
    origin: float = 0.0
    _printed: Set[Tuple[str, str, int, float]] = field(default_factory=set)

    def line(self, text: str) -> None:
        print(f"  [{self.cluster.now - self.origin:7.3f}s] {text}", flush=True)

    def show_events(self) -> None:
        """Prints the elections and demotions not shown yet, in the order they happened."""
        for e in self.cluster.events:
            key = (e.node_id, e.kind, e.term, e.at)
            text = _describe(e)
            if text is not None and key not in self._printed:
                self._printed.add(key)
                print(f"  [{e.at - self.origin:7.3f}s] {text}", flush=True)

    def run_for(self, seconds: float) -> None:
        self.cluster.run_for(seconds)
        self.show_events()

    def wait_for_leader(self, among: Sequence[str]) -> str:
        """The leader (`Cluster.leader()`), once it is one of `among`."""
        deadline = self.cluster.now + _WAIT
        while True:
            leader = self.cluster.leader()
            if leader is not None and leader in among:
                self.show_events()
                return leader
            if self.cluster.now >= deadline:
                states = ", ".join(f"{i}: {s.role} t{s.term} -> {s.leader}" for i, s in self.cluster.statuses().items())
                raise _DemoFailed(f"no leader among {', '.join(among)} within {_WAIT:.0f} s ({states})")
            self.run_for(_POLL)

    def wait_until_all_follow(self, leader: str) -> None:
        """Runs until every member names `leader` (a healed minority catches up)."""
        deadline = self.cluster.now + _WAIT
        while not all(s.leader == leader for s in self.cluster.statuses().values()):
            if self.cluster.now >= deadline:
                raise _DemoFailed(f"not every node follows {leader} within {_WAIT:.0f} s")
            self.run_for(_POLL)


def _run_scenes(story: _Story) -> None:
    """The demo's story, told once for any cluster."""
    cluster = story.cluster
    members = cluster.members

    def heading(number: int) -> None:
        print(f"\n{number}. {SCENES[number - 1]}", flush=True)

    heading(1)
    leader = story.wait_for_leader(members)
    story.line(f"{leader} leads; a majority follows it")
    story.run_for(1.0)

    heading(2)
    story.line(f"killing {leader}")
    killed_at = cluster.now
    cluster.kill(leader)
    survivors = [i for i in members if i != leader]
    successor = story.wait_for_leader(survivors)
    failover = cluster.now - killed_at
    story.line(f"failover: {successor} leads, {1000 * failover:.0f} ms after the kill")
    story.run_for(1.0)

    heading(3)
    cluster.restart(leader)
    story.run_for(1.5)
    back = cluster.status(leader)
    story.line(f"{leader} is back: {back.role} in term {back.term}, following {back.leader}")

    heading(4)
    minority = [successor] + [i for i in survivors if i != successor][: (len(members) - 1) // 2 - 1]
    majority = [i for i in members if i not in minority]
    story.line(f"cutting {', '.join(minority)} off from {', '.join(majority)}")
    cluster.partition(minority, majority)
    replacement = story.wait_for_leader(majority)
    story.line(f"the majority elected {replacement} in term {cluster.status(replacement).term}")
    story.run_for(1.0)
    cut = cluster.status(successor)
    story.line(f"{successor}, cut off: {cut.role} in term {cut.term}, is_leader={cut.is_leader} "
               "(its lease ran out; pre-vote keeps its term from climbing)")
    cluster.heal()
    story.wait_for_leader(members)
    story.run_for(1.0)
    final = story.wait_for_leader(members)
    story.wait_until_all_follow(final)
    terms = {i: s.term for i, s in cluster.statuses().items()}
    story.line(f"healed: every node follows {final}; terms {terms}")

    history = cluster.events
    tokens = [e.fencing_token for e in history if e.kind == "elected" and e.fencing_token is not None]
    increasing = all(a < b for a, b in zip(tokens, tokens[1:]))
    print(f"\nfailover took {1000 * failover:.0f} ms ({story.clock})")
    print(f"fencing tokens of the {len(tokens)} leaderships, in order: {tokens}"
          + (" (strictly increasing)" if increasing else ""))
    if not increasing:
        raise _DemoFailed(f"fencing tokens did not strictly increase: {tokens}")
    for line in story.closing():
        print(line)


def _simulated(members: int, seed: int) -> _Story:
    sim = Simulation(members, seed=seed)

    def closing() -> List[str]:
        sim.check()  # raises SafetyViolation naming the first violation
        stats = sim.stats
        return [f"safety checker: no violations ({stats['messages_sent']} messages, "
                f"{stats['elections_started']} elections, {sim.now:.1f} s simulated)"]

    title = f"{members} simulated nodes, Raft in virtual time (deterministic, seed {seed})"
    return _Story(sim, title, "virtual time", closing, origin=sim.now)


def _live(members: int, stack: contextlib.ExitStack) -> _Story:
    cluster = stack.enter_context(LocalCluster(members))
    title = f"{members} nodes on 127.0.0.1, Raft election over TCP"
    return _Story(cluster, title, "real time", origin=cluster.now)


def demo(members: int = 3, simulated: bool = False, seed: int = 1) -> int:
    """The scenes against a live LocalCluster (about 10 s) or a Simulation (well under a second)."""
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        story = _simulated(members, seed) if simulated else _live(members, stack)
        print(f"quorate {__version__}: {story.title}")
        try:
            _run_scenes(story)  # the story ends here: the demotions of the shutdown are not shown
        except _DemoFailed as e:
            print(f"quorate demo: {e}", file=sys.stderr)
            return 1
        now = story.cluster.now
    wall = time.monotonic() - started
    print(f"\ndone: {now:.1f} s of virtual time in {wall:.2f} s" if simulated else f"\ndone in {wall:.1f} s")
    return 0
