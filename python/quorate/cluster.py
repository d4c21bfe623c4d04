"""quorate.LocalCluster: several Nodes in this process, on loopback, for notebooks and tests."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Union

from ._core import Event
from ._validate import check_timeout
from .errors import ConfigError, SubscriptionClosed
from .node import Node, Status, Subscription

__all__ = ["LocalCluster", "free_ports"]


def free_ports(count: int, host: str = "127.0.0.1") -> List[int]:
    """Ports the OS says are free right now (all held open together, so they differ)."""
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


class LocalCluster:
    """`members` nodes on 127.0.0.1 (a count, named n1..nN, or a list of ids), each with its own
    temporary data_dir unless `data_dir` is given (one sub-directory per node)."""

    def __init__(
        self,
        members: Union[int, Sequence[str]] = 3,
        *,
        data_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        **node_options: Any,
    ) -> None:
        if isinstance(members, int):
            if members < 1:
                raise ConfigError(f"members: a cluster needs at least 1 member, got {members}")
            ids = [f"n{i}" for i in range(1, members + 1)]
        elif isinstance(members, str):
            raise ConfigError("members: a count or a sequence of node ids, not a string")
        else:
            ids = list(members)
        self._tmp: Optional[tempfile.TemporaryDirectory[str]] = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="quorate-cluster-")
            root = self._tmp.name
        else:
            root = os.fspath(data_dir)
        addresses = {i: f"127.0.0.1:{p}" for i, p in zip(ids, free_ports(len(ids)))}
        self.nodes: Dict[str, Node] = {}
        #: Each node's data_dir.
        self.data_dirs: Dict[str, str] = {i: os.path.join(root, i) for i in ids}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the even-size warning is for services; a sandbox may be even
            for i in ids:
                self.nodes[i] = Node(i, addresses, data_dir=self.data_dirs[i], **node_options)
        self._history: List[Event] = []
        self._subs: Dict[str, Subscription] = {}
        self._groups: Optional[List[List[str]]] = None

    # ----- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "LocalCluster":
        for node_id, node in self.nodes.items():
            self._subscribe(node_id)
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop(graceful=False, timeout=2.0)
        self._collect()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

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
    def history(self) -> List[Event]:
        """Every event of every node so far, ordered by `at`."""
        self._collect()
        return sorted(self._history, key=lambda e: e.at)

    def statuses(self) -> Dict[str, Status]:
        return {i: n.status() for i, n in self.nodes.items()}

    def _reachable(self, node_id: str) -> bool:
        if self._groups is None:
            return True
        return any(node_id in g for g in self._groups if len(g) * 2 > len(self.nodes))

    def leader(self) -> Optional[str]:
        """The leader every running node in the majority side agrees on and that holds its lease."""
        running = {i: n for i, n in self.nodes.items() if n.role != "stopped" and self._reachable(i)}
        leaders = {n.leader for n in running.values()}
        if len(leaders) != 1:
            return None
        (leader,) = leaders
        if leader not in running or not running[leader].is_leader:
            return None
        return leader

    def wait_for_leader(self, timeout: Optional[float] = None) -> str:
        """The leader every running node of the majority side agrees on and that holds its lease;
        TimeoutError after `timeout` seconds (None: no limit)."""
        timeout = check_timeout("timeout", timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            leader = self.leader()
            if leader is not None:
                return leader
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no agreed leader within {timeout} s: {self._summary()}")
            time.sleep(0.01)

    def _summary(self) -> str:
        return ", ".join(f"{i}: {n.role} t{n.term} -> {n.leader}" for i, n in self.nodes.items())

    # ----- faults ------------------------------------------------------------------------------

    def _node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise ConfigError(f"{node_id!r} is not a member of this cluster") from None

    def kill(self, node_id: str) -> None:
        """Abrupt stop (crash) of one node."""
        self._node(node_id).faults.crash()

    def restart(self, node_id: str) -> None:
        node = self._node(node_id)
        self._subscribe(node_id)
        node.start()
        if self._groups is not None:
            self._apply_partition(node_id)

    def pause(self, node_id: str) -> None:
        self._node(node_id).faults.pause()

    def resume(self, node_id: str) -> None:
        self._node(node_id).faults.resume()

    def partition(self, *groups: Sequence[str]) -> None:
        """Split into groups that cannot reach one another; unnamed members form one more group."""
        named: List[str] = []
        parsed: List[List[str]] = []
        for g in groups:
            if isinstance(g, str):
                raise ConfigError("partition: each group is a list of node ids, e.g. partition(['n1'], ['n2', 'n3'])")
            g = list(g)
            for i in g:
                self._node(i)
                if i in named:
                    raise ConfigError(f"partition: {i!r} is named in two groups")
                named.append(i)
            parsed.append(g)
        rest = [i for i in self.nodes if i not in named]
        if rest:
            parsed.append(rest)
        self._groups = parsed
        for node_id, node in self.nodes.items():
            if node.role != "stopped":
                node.faults.heal()
                self._apply_partition(node_id)

    def _apply_partition(self, node_id: str) -> None:
        assert self._groups is not None
        mine = next(g for g in self._groups if node_id in g)
        others = [i for i in self.nodes if i not in mine]
        if others:
            self.nodes[node_id].faults.partition(*others)

    def heal(self) -> None:
        self._groups = None
        for node in self.nodes.values():
            node.faults.heal()

    def __repr__(self) -> str:
        return f"LocalCluster({self._summary()})"
