"""quorate.LocalCluster: several Nodes in this process, on loopback, for notebooks and tests.

Safe to use from a notebook: a cluster's nodes are stopped before its temporary directory is
removed, whether the cluster is stopped, collected or left running at interpreter exit; and making
a new cluster with the same node ids as one still running in this process (running the same cell
twice) stops the old one, with a warning, instead of leaving it running on its ports.
"""

from __future__ import annotations

import html
import os
import shutil
import socket
import tempfile
import threading
import time
import warnings
import weakref
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Set, Union

from ._core import Event, _group_partition, member_ids
from ._core import seconds_or_none as check_timeout
from .errors import ConfigError, QuorateError, SubscriptionClosed
from .faults import FaultWindow
from .node import Node
from .protocol import leader_of
from .status import Status
from .subscription import Subscription

__all__ = ["LocalCluster", "FaultWindow", "free_ports"]


def _sides(cuts: Dict[str, List[str]]) -> List[List[str]]:
    """The groups of a partition, from the cuts each member sees."""
    sides: List[List[str]] = []
    for node_id, cut in cuts.items():
        if not any(node_id in side for side in sides):
            sides.append([i for i in cuts if i not in cut])
    return sides

# Every LocalCluster that was started and not stopped since, in this process (weakly held: a
# cluster nobody references is collected, and its finalizer stops its nodes).
_running: "weakref.WeakSet[LocalCluster]" = weakref.WeakSet()
_running_lock = threading.Lock()


def free_ports(count: int, host: str = "127.0.0.1") -> List[int]:
    """`count` TCP ports on `host` that the OS says are free right now, as ints (all held open
    together while asked, so they differ). Another process may take one before it is bound: use
    them at once. Raises OSError if the OS has no free port."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _stop_and_clean(nodes: Dict[str, Node], tmp_root: Optional[str], pid: int) -> None:
    """Stops every node, THEN removes the temporary root: the order that keeps running nodes from
    losing their data_dir. Runs from `stop()`, when the cluster is collected, and at exit (a
    `weakref.finalize`, so it never refers to the cluster itself). Does nothing in a forked child:
    the nodes and the directory are the parent's."""
    if os.getpid() != pid:
        return
    try:
        for node in list(nodes.values()):
            try:
                node.stop(graceful=False, timeout=2.0)
            except Exception:  # noqa: BLE001 - stop the others and clean up whatever happens
                pass
    finally:
        if tmp_root is not None:
            shutil.rmtree(tmp_root, ignore_errors=True)


class LocalCluster:
    """Several `Node`s in this process on 127.0.0.1, for notebooks and tests.

    `members` is a count (nodes named n1..nN) or a sequence of node ids; ports are chosen free.
    Each node gets its own data_dir: a sub-directory of `data_dir` if given (kept), else of a
    temporary directory that `stop()` removes (and that is removed, after the nodes are stopped,
    if the cluster is collected or still running at interpreter exit). `node_options` are passed
    to every `Node` (election_timeout, secret, algorithm, callbacks, ...).

    Use it as a context manager (`with LocalCluster(3) as c:`) or call `start()` and `stop()`.
    Making a LocalCluster with the same node ids as one still running in this process stops the
    older one first, with a warning (a notebook cell run twice must not leave nodes behind): give
    clusters that must run side by side different ids.

    A `quorate.Cluster`: the same verbs as `Simulation` (`kill`, `restart`, `pause`, `resume`,
    `partition`, `isolate`, `heal`, `set_clock_rate`, ...), `status(node_id)`, `events`, and the
    one `leader()` rule. Its clock (`now`, `Event.at`) is `time.monotonic()`.

    Raises ConfigError for a bad `members` or node option, as `Node` does.

    Renamed in 0.2 (the old spelling still works, with a DeprecationWarning, for one release):
    `history` is `events`."""

    def __init__(
        self,
        members: Union[int, Sequence[str]] = 3,
        *,
        data_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        **node_options: Any,
    ) -> None:
        ids = member_ids(members)
        self.nodes: Dict[str, Node] = {}
        self._tmp: Optional[str] = None
        if data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="quorate-cluster-")
            root = self._tmp
        else:
            root = os.fspath(data_dir)
        # Stops the nodes, then removes the temporary root: on stop(), when the cluster is
        # collected (even half-made, if an argument below is refused), and at exit.
        self._finalizer = weakref.finalize(self, _stop_and_clean, self.nodes, self._tmp, os.getpid())
        addresses = {i: f"127.0.0.1:{p}" for i, p in zip(ids, free_ports(len(ids)))}
        #: Each node's data_dir.
        self.data_dirs: Dict[str, str] = {i: os.path.join(root, i) for i in ids}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the even-size warning is for services; a sandbox may be even
            for i in ids:
                self.nodes[i] = Node(i, addresses, data_dir=self.data_dirs[i], **node_options)
        self._history: List[Event] = []
        self._subs: Dict[str, Subscription] = {}
        self._groups: Optional[List[List[str]]] = None
        self._isolated: Set[str] = set()
        self._pause_timers: Dict[str, threading.Timer] = {}
        # Last, once every argument was accepted: a cell run twice replaces the older cluster.
        self._replace_running(frozenset(ids))

    # ----- lifecycle ---------------------------------------------------------------------------

    @staticmethod
    def _replace_running(ids: FrozenSet[str]) -> None:
        """Stops, with a warning, every running cluster of this process with exactly these ids."""
        with _running_lock:
            older = [c for c in _running if frozenset(c.nodes) == ids]
        for c in older:
            warnings.warn(
                f"a new LocalCluster has the same node ids as one still running in this process; "
                f"stopping the older one ({c!r}). Give clusters that must run side by side different ids.",
                stacklevel=3,
            )
            c.stop()

    @property
    def running(self) -> bool:
        """True from `start()` until `stop()` (even while some nodes are killed or paused)."""
        return self in _running

    def start(self) -> "LocalCluster":
        """Starts every node (each takes and locks its data_dir); returns the cluster. Raises
        OSError if an address is busy or a data_dir unusable, QuorateError if a data_dir is
        locked by another node."""
        with _running_lock:
            _running.add(self)
        for node_id, node in self.nodes.items():
            self._subscribe(node_id)
            node.start()
        return self

    def stop(self) -> None:
        """Stops every node abruptly (no hand-off; 2 s bound each), then removes the temporary
        data directory if the cluster made one. Idempotent; returns None. The history stays
        readable. Starting the cluster again afterwards starts with fresh, empty data_dirs."""
        with _running_lock:
            _running.discard(self)
        for node_id in list(self._pause_timers):
            self._cancel_pause_timer(node_id)
        try:
            for node in self.nodes.values():
                node.stop(graceful=False, timeout=2.0)
            self._collect()
        finally:
            # The same function runs on collection and at exit; here it also removes the directory
            # (nodes already stopped: a no-op for them). Kept registered in case of a restart.
            _stop_and_clean(self.nodes, self._tmp, os.getpid())

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _subscribe(self, node_id: str) -> None:
        old = self._subs.get(node_id)
        if old is None or old.closed:
            if old is not None:
                self._drain(old)
            self._subs[node_id] = self.nodes[node_id].subscribe()

    # ----- observation -------------------------------------------------------------------------

    def _drain(self, sub: Subscription) -> None:
        while True:
            try:
                self._history.append(sub.get(timeout=0))
            except (TimeoutError, SubscriptionClosed):
                return

    def _collect(self) -> None:
        for sub in self._subs.values():
            self._drain(sub)

    @property
    def members(self) -> List[str]:
        """The node ids, in order."""
        return list(self.nodes)

    @property
    def now(self) -> float:
        """The cluster's clock: `time.monotonic()`, the clock of its events' `at`."""
        return time.monotonic()

    @property
    def virtual_time(self) -> bool:
        """False: a LocalCluster's time moves by itself (see `quorate.Cluster`)."""
        return False

    @property
    def events(self) -> List[Event]:
        """Every event of every node since `start()` (a list of `Event`), ordered by `at`
        (seconds on the monotonic clock)."""
        self._collect()
        return sorted(self._history, key=lambda e: e.at)

    @property
    def history(self) -> List[Event]:
        """Deprecated: `events`, the name every `quorate.Cluster` uses."""
        warnings.warn("LocalCluster.history is now LocalCluster.events", DeprecationWarning, stacklevel=2)
        return self.events

    def status(self, node_id: str) -> Status:
        """One node's `Node.status()` (a stopped node reports role "stopped"). ConfigError for an
        unknown id."""
        return self._node(node_id).status()

    def statuses(self) -> Dict[str, Status]:
        """Each node's `Node.status()`, by node id (a stopped node reports role "stopped")."""
        return {i: n.status() for i, n in self.nodes.items()}

    def leader(self) -> Optional[str]:
        """The node that holds its lease and that a majority of all members (itself included)
        recognise as leader, or None: the one rule of `quorate.Cluster.leader()`. Stopped nodes
        recognise nobody. Does not wait."""
        return leader_of((i, n.role != "stopped", n.is_leader, n.leader) for i, n in self.nodes.items())

    def wait_for_leader(self, timeout: Optional[float] = None) -> str:
        """Waits until `leader()` names one and returns it; TimeoutError after `timeout` seconds
        (None: no limit)."""
        timeout = check_timeout("timeout", timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            leader = self.leader()
            if leader is not None:
                return leader
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no agreed leader within {timeout} s: {self._summary()}")
            time.sleep(0.01)

    def run_for(self, seconds: float) -> None:
        """Lets the cluster run for `seconds` of wall time (sleeps: its nodes run by
        themselves). ConfigError for a negative, non-finite or non-numeric `seconds`."""
        checked = check_timeout("seconds", seconds)
        if checked is None:
            raise ConfigError("seconds: run_for needs a number of seconds, got None")
        time.sleep(checked)

    def _summary(self) -> str:
        return ", ".join(f"{i}: {n.role} t{n.term} -> {n.leader}" for i, n in self.nodes.items())

    # ----- faults ------------------------------------------------------------------------------

    def _node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise ConfigError(f"{node_id!r} is not a member of this cluster") from None

    def kill(self, node_id: str) -> None:
        """Abrupt stop (crash) of one node: no hand-off, its leadership ends with a `demoted`
        event of reason "crashed". ConfigError for an unknown id."""
        node = self._node(node_id)
        self._cancel_pause_timer(node_id)
        node.faults.crash()

    def restart(self, node_id: str) -> None:
        """Starts a killed or stopped node again from its data_dir (it rejoins the current
        partition, if any). ConfigError for an unknown id; OSError as `Node.start()`."""
        node = self._node(node_id)
        self._subscribe(node_id)
        node.start()
        if self._groups is not None or self._isolated:
            self._apply_partition(node_id)

    def faults_for(self, seconds: float) -> FaultWindow:
        """A block whose faults last `seconds` of wall time and are then healed (nodes killed in
        it are restarted, paused ones resumed): `with cluster.faults_for(2.0): cluster.partition(
        ["n1"], ["n2", "n3"])`. See `FaultWindow` for the exact rules. ConfigError for a bad
        `seconds`."""
        return FaultWindow(self, seconds)

    def pause(self, node_id: str, seconds: Optional[float] = None) -> None:
        """Freezes one node's engine, as SIGSTOP would (see `Faults.pause`), for `seconds` of wall
        time (a timer resumes it) or until `resume()` (None). ConfigError for an unknown id or a
        bad `seconds`."""
        node = self._node(node_id)
        checked = check_timeout("seconds", seconds)
        self._cancel_pause_timer(node_id)
        node.faults.pause()
        if checked is not None:
            timer = threading.Timer(checked, self._resume_after_pause, args=(node_id,))
            timer.daemon = True
            self._pause_timers[node_id] = timer
            timer.start()

    def _resume_after_pause(self, node_id: str) -> None:
        self._pause_timers.pop(node_id, None)
        node = self.nodes[node_id]
        if node.role != "stopped":
            node.faults.resume()

    def _cancel_pause_timer(self, node_id: str) -> None:
        timer = self._pause_timers.pop(node_id, None)
        if timer is not None:
            timer.cancel()

    def resume(self, node_id: str) -> None:
        """Unfreezes a paused node; the messages it queued are handled then. ConfigError for an
        unknown id."""
        node = self._node(node_id)
        self._cancel_pause_timer(node_id)
        node.faults.resume()

    def partition(self, *groups: Sequence[str]) -> None:
        """Splits the cluster into groups that cannot reach one another, e.g.
        `partition(["n1"], ["n2", "n3"])`; members named in no group form one more group.
        A new partition replaces the previous one. Faults set with `node.faults` stay as they
        are: the partition is a layer of its own, undone by `heal()`. ConfigError for an
        unknown id, an id in two groups, or a group given as a string; QuorateError if the
        cluster is not running."""
        cuts = _group_partition(list(self.nodes), list(groups))
        self._check_running("partition")
        self._groups = _sides(cuts)
        self._apply_cuts()

    def isolate(self, node_id: str) -> None:
        """Cuts one node off from every other, both directions, until `heal()` (in the same
        layer as `partition()`). ConfigError for an unknown id; QuorateError if the cluster is not
        running."""
        self._node(node_id)
        self._check_running("isolate")
        self._isolated.add(node_id)
        self._apply_cuts()

    def _check_running(self, what: str) -> None:
        if not self.running:
            raise QuorateError(f"{what}: the cluster is not running (start() it first)")

    def _cut(self, node_id: str) -> List[str]:
        """The peers `node_id` cannot reach under the partition and the isolations."""
        cut: Set[str] = set()
        if self._groups is not None:
            mine = next(g for g in self._groups if node_id in g)
            cut.update(i for i in self.nodes if i not in mine)
        cut.update(i for i in self.nodes if i != node_id and (node_id in self._isolated or i in self._isolated))
        return [i for i in self.nodes if i in cut]

    def _apply_cuts(self) -> None:
        for node_id, node in self.nodes.items():
            if node.role != "stopped":
                self._apply_partition(node_id)

    def _apply_partition(self, node_id: str) -> None:
        cut = self._cut(node_id)
        if cut:
            self.nodes[node_id]._core.fault_group_partition(cut)
        else:
            self.nodes[node_id]._core.fault_heal_group()

    def heal(self) -> None:
        """Undoes `partition()` and `isolate()`; faults set with `node.faults` (pauses, clock
        rates, drop rates) stay (clear those with `node.faults.heal()`)."""
        self._groups = None
        self._isolated.clear()
        for node in self.nodes.values():
            if node.role != "stopped":
                node._core.fault_heal_group()

    def set_clock_rate(self, node_id: str, factor: float) -> None:
        """Makes one node's timers run `factor` times as fast (1.0: normal; see
        `Faults.clock_rate`). ConfigError for an unknown id or a bad factor."""
        self._node(node_id).faults.clock_rate(factor)

    def set_drop_rate(self, rate: float, node_id: Optional[str] = None) -> None:
        """Drops each message to and from `node_id` (None: every running node) with probability
        `rate` from now on; 0 ends it (see `Faults.drop`). A killed node comes back without it.
        ConfigError for an unknown id or a rate outside [0, 1]."""
        targets = list(self.nodes) if node_id is None else [self._node(node_id).node_id]
        for i in targets:
            if self.nodes[i].role != "stopped":
                self.nodes[i].faults.drop(rate)

    def resign(self, node_id: str) -> bool:
        """The leader `node_id` steps down and hands off (`Node.resign`); False if it does not
        lead. ConfigError for an unknown id."""
        return self._node(node_id).resign()

    def transfer_leadership(self, node_id: str, to: str, timeout: float = 5.0) -> None:
        """The leader `node_id` hands leadership to `to` and waits until `to` leads
        (`Node.transfer_leadership`): NotLeaderError if `node_id` does not lead, TimeoutError
        after `timeout` seconds. ConfigError for an unknown id."""
        self._node(node_id).transfer_leadership(to, timeout)

    def _rows(self) -> List[Dict[str, Any]]:
        rows = []
        for i, n in self.nodes.items():
            try:
                s = n.status()
                rows.append({
                    "node": i, "address": n.address, "role": s.role, "term": s.term, "leader": s.leader,
                    "is_leader": s.is_leader, "health": s.health, "faults": dict(s.faults),
                })
            except Exception as e:  # noqa: BLE001 - a repr must not raise (e.g. in a forked child)
                rows.append({"node": i, "address": "?", "role": f"unavailable ({e})", "term": "", "leader": None,
                             "is_leader": False, "health": "", "faults": {}})
        return rows

    def __repr__(self) -> str:
        """One line: whether it runs, the agreed leader (or None), and each node's role and term."""
        try:
            leader = self.leader() if self.running else None
        except Exception:  # noqa: BLE001
            leader = None
        nodes = ", ".join(f"{r['node']}: {r['role']} term {r['term']}" for r in self._rows())
        state = "running" if self.running else "stopped"
        return f"<LocalCluster {state}, leader={leader!r}, nodes: {nodes}>"

    def _repr_html_(self) -> str:
        """A small HTML table for notebooks: node, address, role, term, leader, lease, health,
        faults."""
        try:
            leader = self.leader() if self.running else None
        except Exception:  # noqa: BLE001
            leader = None
        esc = html.escape
        head = "".join(f"<th>{h}</th>" for h in ("node", "address", "role", "term", "leader", "is_leader",
                                                   "health", "faults"))
        body = []
        for r in self._rows():
            faults = ", ".join(f"{k}={v}" if v else k for k, v in sorted(r["faults"].items())) or ""
            cells = (r["node"], r["address"], r["role"], r["term"], "" if r["leader"] is None else r["leader"],
                     "yes" if r["is_leader"] else "", r["health"], faults)
            style = ' style="font-weight:bold"' if r["is_leader"] else ""
            body.append(f"<tr{style}>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
        state = "running" if self.running else "stopped"
        caption = f"LocalCluster ({state}), leader: {esc(repr(leader))}"
        return (f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")
