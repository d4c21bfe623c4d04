"""The fault API: `Faults` (`node.faults`, inside one node's message layer) and `FaultLog`, which
injects faults into any `quorate.Cluster` and records when, for `quorate.viz.timeline`.

`FaultWindow` bounds faults in wall time (`LocalCluster.faults_for`, or one `Node`).

A cluster's own fault verbs (`kill`, `restart`, `pause`, `resume`, `partition`, `isolate`,
`heal`, `set_clock_rate`, `set_drop_rate`) are those of the `quorate.Cluster` protocol.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from ._core import seconds_or_none as check_timeout
from .errors import ConfigError
from .protocol import Cluster

if TYPE_CHECKING:  # pragma: no cover
    from .cluster import LocalCluster
    from .node import Node

__all__ = ["Faults", "Fault", "FaultLog", "FaultWindow"]


class Faults:
    """Fault injection inside this node's message layer (`node.faults`); never needs its peers'
    cooperation. Every method returns None; each but `crash()`, `heal()` and `active()` raises
    QuorateError if the node is not running, and ConfigError for a bad argument (naming it).
    Faults last until `heal()` (or a restart: a crashed node comes back without them)."""

    def __init__(self, node: "Node") -> None:
        self._node = node

    def isolate(self) -> None:
        """Cut this node off from every peer, both directions, until `heal()`. Returns None."""
        self._node._core.fault_isolate()

    def partition(self, *peer_ids: str) -> None:
        """Cut both directions between this node and these peers (ids). ConfigError for an
        unknown id."""
        self._node._core.fault_partition(list(peer_ids))

    def drop(self, rate: float, *, peers: Optional[List[str]] = None) -> None:
        """Drop each message to and from `peers` (default: every peer) with probability `rate`
        in [0, 1]. ConfigError for a rate outside [0, 1] or an unknown peer."""
        self._node._core.fault_drop(rate, peers)

    def delay(self, seconds: float, *, jitter: float = 0.0, peers: Optional[List[str]] = None) -> None:
        """Delay each message to `peers` (default: every peer) by `seconds`, plus a random extra
        of up to `jitter` seconds. ConfigError for a negative or non-finite time or an unknown
        peer."""
        self._node._core.fault_delay(seconds, jitter, peers)

    def duplicate(self, rate: float, *, peers: Optional[List[str]] = None) -> None:
        """Send each message to `peers` (default: every peer) twice with probability `rate` in
        [0, 1]. ConfigError for a rate outside [0, 1] or an unknown peer."""
        self._node._core.fault_duplicate(rate, peers)

    def pause(self) -> None:
        """Freeze the engine, as SIGSTOP would: no timers, no message handling; messages queue
        and are handled on `resume()`. The lease runs out meanwhile, so `is_leader` turns False."""
        self._node._core.fault_pause()

    def resume(self) -> None:
        """Unfreeze the engine after `pause()`; the messages queued meanwhile are handled now."""
        self._node._core.fault_resume()

    def clock_rate(self, factor: float) -> None:
        """This node's timers run `factor` times as fast (1.0: normal). ConfigError outside
        [0.01, 100]. Beyond `1 +- max_clock_drift` the lease's guarantee no longer holds: that is
        what the fault is for."""
        self._node._core.fault_clock_rate(factor)

    def crash(self) -> None:
        """Abrupt stop: no hand-off, connections reset, volatile state lost; `start()` brings it back."""
        self._node._shutdown(graceful=False, timeout=5.0, crash=True)

    def heal(self) -> None:
        """Clear every fault but a crash (a LocalCluster's partition included)."""
        if self._node._core.running:
            self._node._core.fault_clear()

    def active(self) -> Dict[str, str]:
        """The faults in force, as a dict of fault name to its setting in words, e.g.
        `{"drop": "0.1", "paused": "true"}`; empty when none is."""
        return dict(self._node._core.faults_active())


class FaultWindow:
    """A bounded time for faults: `with cluster.faults_for(2.0):` (or
    `quorate.pytest_plugin.faults_for(node_or_cluster, 2.0)`).

    Inject faults inside the block (`cluster.partition(...)`, `cluster.kill(...)`,
    `node.faults.drop(0.3)`, ...). They last `seconds` of wall time from entering the block, then
    everything is healed: partitions and every `Faults` fault cleared (`heal()`), paused nodes
    resumed, and nodes that were running on entry but are stopped (killed) restarted from their
    data_dir.

    - A body shorter than `seconds`: leaving the block waits out the rest, then heals, so the
      fault lasts the whole window.
    - A body longer than `seconds`: a timer heals at the deadline while the body still runs (the
      fault never outlasts the window); leaving the block then just returns.
    - A body that raises: heals at once and lets the exception through.

    After the block, the faults are healed; waiting for a leader again is the caller's (e.g.
    `cluster.wait_for_leader(10)`). `healed` (bool) says whether healing happened yet,
    `remaining` is the seconds left, `wait_healed(timeout)` blocks until healed. ConfigError for a
    negative, non-finite or non-numeric `seconds`."""

    def __init__(self, target: Union["LocalCluster", "Node"], seconds: float) -> None:
        from .node import Node  # here: node.py imports this module

        checked = check_timeout("seconds", seconds)
        if checked is None:
            raise ConfigError("seconds: a fault window needs a number of seconds, got None")
        # A cluster of live nodes (a LocalCluster: a Cluster with `nodes`), or one Node.
        self._cluster: Any = target if isinstance(target, Cluster) and hasattr(target, "nodes") else None
        if self._cluster is None and not isinstance(target, Node):
            raise ConfigError(f"target: expected a LocalCluster or a Node, got {target!r}")
        self.seconds: float = checked
        self._target = target
        self._running_at_entry: List[str] = []
        self._deadline = 0.0
        self._healed = threading.Event()
        self._heal_lock = threading.Lock()
        self._timer: Optional[threading.Timer] = None
        self.heal_error: Optional[BaseException] = None

    def _nodes(self) -> Dict[str, "Node"]:
        if self._cluster is not None:
            return dict(self._cluster.nodes)
        node: Any = self._target
        return {node.node_id: node}

    @property
    def healed(self) -> bool:
        """True once the faults were healed (at the deadline, or early because the body raised)."""
        return self._healed.is_set()

    @property
    def remaining(self) -> float:
        """Seconds left until the faults are healed (0 once the deadline passed)."""
        return max(0.0, self._deadline - time.monotonic())

    def wait_healed(self, timeout: Optional[float] = None) -> bool:
        """Blocks until healed: True then, False if `timeout` seconds passed first."""
        return self._healed.wait(check_timeout("timeout", timeout))

    def heal(self) -> None:
        """Heals now (once; later calls do nothing): clears every fault, resumes paused nodes and
        restarts the nodes that ran on entry and are stopped. Errors of a restart are kept in
        `heal_error` and raised when the block ends."""
        with self._heal_lock:
            if self._healed.is_set():
                return
            try:
                cluster = self._cluster
                if cluster is not None:
                    cluster.heal()
                for node_id, node in self._nodes().items():
                    if node.role == "stopped":
                        if node_id in self._running_at_entry:
                            if cluster is not None:
                                cluster.restart(node_id)  # it rejoins the cluster's bookkeeping
                            else:
                                node.start()
                    else:
                        node.faults.heal()
            except BaseException as e:  # noqa: BLE001 - reported when the block ends
                self.heal_error = e
            finally:
                self._healed.set()

    def __enter__(self) -> "FaultWindow":
        self._running_at_entry = [i for i, n in self._nodes().items() if n.role != "stopped"]
        self._deadline = time.monotonic() + self.seconds
        self._timer = threading.Timer(self.seconds, self.heal)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException], tb: object) -> None:
        assert self._timer is not None
        if exc_type is not None:
            self._timer.cancel()
            self.heal()
            return
        # Wait out the window (the timer heals at the deadline), bounded in case the timer could
        # not run; then heal here if it has not.
        self._healed.wait(self.remaining + 5.0)
        self._timer.cancel()
        self.heal()
        if self.heal_error is not None:
            raise self.heal_error

    def __repr__(self) -> str:
        state = "healed" if self.healed else f"{self.remaining:.3f} s left"
        return f"<FaultWindow {self.seconds} s, {state}>"


@dataclass(frozen=True)
class Fault:
    """One injected fault: on `node` (None: the whole group) from `start` to `end` (None: still in
    force; equal to `start`: an instant, such as a resign). `kind` is "down", "paused",
    "isolated", "partition", "drop", "clock" or "note"."""

    start: float
    end: Optional[float]
    node: Optional[str]
    text: str
    kind: str = "note"


class FaultLog:
    """Injects faults into a `quorate.Cluster` (a `LocalCluster` or a `Simulation`) and records
    each one with its time, for `quorate.viz.timeline(source, faults=log)`. Times are the
    cluster's own clock (`Cluster.now`): `time.monotonic()` for a LocalCluster (the clock of its
    events' `at`), virtual seconds for a Simulation.

    Each method does what the cluster's verb of the same name does (`kill` is `Cluster.kill`, ...)
    and opens a span that the matching undo closes: `restart` ends "down", `resume` ends
    "paused", `heal` ends what it clears. `entries` lists them all."""

    def __init__(self, target: Cluster) -> None:
        if not isinstance(target, Cluster):
            raise ConfigError(f"target: expected a LocalCluster or a Simulation, got {type(target).__name__}")
        self.target = target
        self._entries: List[Fault] = []
        self._open: Dict[Tuple[Optional[str], str], int] = {}  # (node, kind) -> index of the open span
        self._lock = threading.Lock()

    @property
    def simulated(self) -> bool:
        """True for a cluster in virtual time (a Simulation), False for a LocalCluster."""
        return self.target.virtual_time

    def now(self) -> float:
        """The target's clock (`Cluster.now`)."""
        return self.target.now

    @property
    def entries(self) -> List[Fault]:
        """Every fault recorded so far (open ones have `end` None)."""
        with self._lock:
            return list(self._entries)

    @property
    def members(self) -> List[str]:
        """The target's node ids, in its order."""
        return list(self.target.members)

    def _check(self, node: str) -> str:
        if node not in self.members:
            raise ConfigError(f"{node!r} is not a member (members: {self.members})")
        return node

    def _begin(
        self, node: Optional[str], kind: str, text: str, at: Optional[float] = None, end: Optional[float] = None
    ) -> None:
        with self._lock:
            self._end_locked(node, kind, at)
            self._entries.append(Fault(self.now() if at is None else at, end, node, text, kind))
            if end is None:
                self._open[(node, kind)] = len(self._entries) - 1

    def _end_locked(self, node: Optional[str], kind: str, at: Optional[float] = None) -> None:
        i = self._open.pop((node, kind), None)
        if i is not None:
            f = self._entries[i]
            self._entries[i] = Fault(f.start, self.now() if at is None else at, f.node, f.text, f.kind)

    def _end(self, node: Optional[str], *kinds: str) -> None:
        with self._lock:
            for kind in kinds:
                self._end_locked(node, kind)

    def is_open(self, node: Optional[str], kind: str) -> bool:
        """Whether a fault of `kind` on `node` is in force (as far as this log knows)."""
        with self._lock:
            return (node, kind) in self._open

    def note(self, text: str, node: Optional[str] = None, at: Optional[float] = None,
             until: Optional[float] = None) -> None:
        """Records a moment (a red line on the timeline; `at` defaults to now), or the interval
        `at` .. `until` (a hatched span), on `node`'s lane (None: every lane), without injecting
        anything."""
        with self._lock:
            t = self.now() if at is None else at
            self._entries.append(Fault(t, t if until is None else until, node, text, "note"))

    # -- the faults --

    def kill(self, node: str) -> None:
        """Crashes `node` (no hand-off); "down" until `restart`."""
        self._check(node)
        self._begin(node, "down", "killed")
        self.target.kill(node)

    def restart(self, node: str) -> None:
        """Restarts a killed node from its kept term and vote."""
        self._check(node)
        self._end(node, "down")
        self.target.restart(node)

    def pause(self, node: str, seconds: Optional[float] = None) -> None:
        """Freezes `node`'s engine, as SIGSTOP would, for `seconds` of the target's clock, or
        until `resume` (None)."""
        self._check(node)
        now = self.now()
        self.target.pause(node, seconds)
        self._begin(node, "paused", "paused", at=now, end=None if seconds is None else now + seconds)

    def resume(self, node: str) -> None:
        """Ends a pause."""
        self._check(node)
        self._end(node, "paused")
        self.target.resume(node)

    def isolate(self, node: str) -> None:
        """Cuts `node` off from every other node until `heal`."""
        self._check(node)
        self._begin(node, "isolated", "isolated")
        self.target.isolate(node)

    def partition(self, *groups: Sequence[str]) -> None:
        """Splits the group (`partition(["n1"], ["n2", "n3"])`) until `heal()`."""
        at = self.now()
        self.target.partition(*groups)
        named = [list(g) for g in groups]
        rest = [m for m in self.members if not any(m in g for g in named)]
        sides = named + ([rest] if rest else [])
        text = "partition " + " | ".join(" ".join(g) for g in sides)
        # Drawn on the nodes cut off from the majority (every node if no side has one).
        total = len(self.members)
        cut = [m for g in sides if 2 * len(g) <= total for m in g]
        if len(cut) == total or not cut:
            cut = list(self.members)
        for m in self.members:
            if m in cut:
                self._begin(m, "partition", text, at=at)
            else:
                self._end(m, "partition")

    def drop(self, rate: float, node: Optional[str] = None) -> None:
        """Drops a fraction `rate` of messages (`Cluster.set_drop_rate`): every node's, or (on a
        LocalCluster) those `node` sends and receives; a Simulation's rate is global and refuses a
        node. A rate of 0 ends it."""
        if node is not None:
            self._check(node)
        self.target.set_drop_rate(rate, node)
        if rate > 0:
            self._begin(node, "drop", f"drop {rate:.0%}")
        else:
            self._end(node, "drop")

    def clock_rate(self, node: str, factor: float) -> None:
        """Makes `node`'s clock run `factor` times as fast; 1.0 ends it."""
        self._check(node)
        self.target.set_clock_rate(node, factor)
        if factor == 1.0:
            self._end(node, "clock")
        else:
            self._begin(node, "clock", f"clock x{factor:g}")

    def heal(self, node: Optional[str] = None) -> None:
        """Undoes the faults this log injected (a killed node stays down: `restart` it).

        - `heal()`: all of them: partitions, isolation, drops, clock rates and pauses, on every
          node.
        - `heal(node)`: that node's pause, clock rate, drop and isolation. The cluster heals links
          only as a whole (`Cluster.heal`), so an isolation or partition is lifted for every node."""
        members = self.members if node is None else [self._check(node)]
        for n in members:
            if self.is_open(n, "paused"):
                self.resume(n)
            if self.is_open(n, "clock"):
                self.clock_rate(n, 1.0)
            if self.is_open(n, "drop"):
                self.drop(0.0, n)
        if node is None and self.is_open(None, "drop"):
            self.drop(0.0)
        if node is None or self.is_open(node, "isolated") or self.is_open(node, "partition"):
            self.target.heal()
            for m in self.members:
                self._end(m, "isolated", "partition")

    def resign(self, node: str) -> bool:
        """A leader steps down and hands off (`Cluster.resign`); False if it did not lead."""
        self._check(node)
        done = self.target.resign(node)
        if done:
            self.note("resigned", node)
        return done

    def force_timeout(self, node: str) -> str:
        """Makes `node`'s election timeout fire now, as far as the algorithm allows; returns what
        was done, in words:

        - `node` leads: it resigns (`resign`): it steps down and hands leadership to the best
          peer, which starts an election at once.
        - another node leads: that leader's `transfer_leadership(leader, node)`, Raft's
          TimeoutNow: it gives up its lease and `node` times out at once and campaigns (and wins,
          as the old leader stays silent). Under bully and ring the leader steps aside instead,
          and the best-ranked live member takes over.
        - no leader: in virtual time, `Simulation.campaign(node)`: its timeout fires and it
          campaigns now (unless, under raft, it promised silence to a leader it heard from less
          than a minimum election timeout ago). A LocalCluster's live node has no campaign call:
          nothing is done, its own timer fires soon enough."""
        self._check(node)
        target = self.target
        if target.status(node).role == "leader":
            self.note("timeout: resign", node)
            target.resign(node)
            return f"{node} resigned"
        leader = target.leader()
        if leader is not None and leader != node:
            self.note(f"timeout (TimeoutNow from {leader})", node)
            target.transfer_leadership(leader, node)
            return f"{leader} handed leadership to {node}"
        if not target.virtual_time:
            return "no leader to hand off from"
        sim: Any = target  # in virtual time a cluster shows its messages and can campaign
        before = {(m.sender, m.receiver, m.kind, m.sent_at) for m in sim.in_flight()}
        sim.campaign(node)
        asked = [m for m in sim.in_flight() if m.sender == node and (m.sender, m.receiver, m.kind, m.sent_at) not in before]
        if not asked:
            return f"{node}'s timeout fired, but it does not campaign (it promised a recent leader silence)"
        self.note("timeout (campaign)", node)
        return f"{node}'s timeout fired: {asked[0].kind} to " + ", ".join(m.receiver for m in asked)
