"""quorate's pytest plugin: fixtures and helpers for testing a service built on quorate.

pytest loads it by itself wherever quorate is installed (the `pytest11` entry point
`quorate = "quorate.pytest_plugin"`); `pytest -p no:quorate` turns it off. The guide "Testing
your service with quorate" (docs/testing.md) shows it at work.

Fixtures:

- `quorate_cluster`: a `ClusterFactory`; `quorate_cluster(size=3, *, algorithm="raft",
  start=True, **node_options)` returns a `LocalCluster`. Every cluster it made is stopped, and its
  temporary directory removed, when the test ends, whether the test passed, failed or errored.
- `quorate_simulation`: a `SimulationFactory`; `quorate_simulation(members=5, *, check=True,
  **options)` returns a `Simulation`. At teardown each simulation made with `check=True` runs
  `Simulation.check()`, so a safety violation fails the test even if it never checked.

Helpers (import them: `from quorate.pytest_plugin import assert_single_leader, ...`):

- `assert_single_leader(cluster)` waits until one node holds its lease and a majority of the
  members recognise it (the rule of `quorate.Cluster.leader()`), and fails at once if it ever
  sees two nodes leading at the same time.
- `wait_for_new_leader(cluster, old)` waits until a leader other than `old` is agreed.
- `faults_for(cluster, seconds)` runs faults for a bounded time: `with faults_for(cluster, 2.0):`
  (the same as `cluster.faults_for(2.0)`, for any `quorate.Cluster`; also for one `Node`).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import pytest

from . import protocol
from ._core import seconds_or_none as check_timeout
from .cluster import FaultWindow, LocalCluster
from .errors import ConfigError
from .node import Node
from .protocol import leader_of
from .sim import Simulation
from .status import Status

__all__ = [
    "ClusterFactory",
    "SimulationFactory",
    "assert_single_leader",
    "wait_for_new_leader",
    "faults_for",
    "quorate_cluster",
    "quorate_simulation",
    "POLL_INTERVAL",
    "SIM_STEP",
]

#: How far the helpers let a cluster run between two looks: seconds of its clock (wall time for
#: nodes and a LocalCluster, virtual time for a Simulation, which they run).
POLL_INTERVAL = 0.005
#: Kept for code that imports it; the helpers step a Simulation by `POLL_INTERVAL` too.
SIM_STEP = POLL_INTERVAL

Target = Union["protocol.Cluster", Mapping[str, Node], Sequence[Node]]


# ----- fixtures ------------------------------------------------------------------------------------


class ClusterFactory:
    """What the ``quorate_cluster`` fixture gives a test: call it to make a `LocalCluster`.

    ``factory(size=3, *, algorithm="raft", start=True, **node_options)``: ``size`` is a member
    count (nodes n1..nN) or a sequence of ids; ``node_options`` go to every `Node`
    (``election_timeout``, ``secret``, callbacks, ...). Returns the cluster, started unless
    ``start=False``. Raises ConfigError for a bad option (as `LocalCluster`). Two clusters made in
    one test that must run side by side need different ids (a cluster with the same ids as a
    running one stops it, with a warning). ``clusters`` lists every cluster made so far."""

    def __init__(self) -> None:
        self.clusters: List[LocalCluster] = []

    def __call__(
        self,
        size: Union[int, Sequence[str]] = 3,
        *,
        algorithm: str = "raft",
        start: bool = True,
        **node_options: Any,
    ) -> LocalCluster:
        cluster = LocalCluster(size, algorithm=algorithm, **node_options)
        self.clusters.append(cluster)
        if start:
            cluster.start()
        return cluster

    def close(self) -> None:
        """Stops every cluster made (each removes its temporary directory), even if stopping one
        of them fails; then raises the first such error, if any."""
        errors: List[BaseException] = []
        for cluster in reversed(self.clusters):
            try:
                cluster.stop()
            except BaseException as e:  # noqa: BLE001 - stop the others first
                errors.append(e)
        self.clusters.clear()
        if errors:
            raise errors[0]


class SimulationFactory:
    """What the ``quorate_simulation`` fixture gives a test: call it to make a `Simulation`.

    ``factory(members=5, *, check=True, **options)`` takes `Simulation`'s arguments (``seed``,
    ``election_timeout``, ``latency``, ``drop_rate``, ...) and returns the simulation. With
    ``check=True`` the fixture calls ``check()`` on it at teardown, so a SafetyViolation is
    reported even if the test never checked; pass ``check=False`` for a simulation that is meant to
    break a guarantee. ConfigError for a bad option."""

    def __init__(self) -> None:
        self.simulations: List[Simulation] = []
        self._checked: List[Simulation] = []

    def __call__(self, members: Union[int, Sequence[str]] = 5, *, check: bool = True, **options: Any) -> Simulation:
        sim = Simulation(members, **options)
        self.simulations.append(sim)
        if check:
            self._checked.append(sim)
        return sim

    def close(self) -> None:
        """Checks every simulation made with ``check=True``; raises the first SafetyViolation."""
        checked, self._checked = self._checked, []
        for sim in checked:
            sim.check()


@pytest.fixture
def quorate_cluster() -> Iterator[ClusterFactory]:
    """A factory of started `LocalCluster`s, all stopped and cleaned up at teardown, even when the
    test fails: ``cluster = quorate_cluster(3, election_timeout=(0.1, 0.2))``."""
    factory = ClusterFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def quorate_simulation() -> Iterator[SimulationFactory]:
    """A factory of `Simulation`s, each safety-checked at teardown unless made with
    ``check=False``: ``sim = quorate_simulation(5, seed=7)``."""
    factory = SimulationFactory()
    yield factory
    factory.close()


# ----- helpers -------------------------------------------------------------------------------------


class _Nodes:
    """Nodes given as a list or a dict, seen as much of a `quorate.Cluster` as the helpers use."""

    virtual_time = False

    def __init__(self, nodes: Dict[str, Node]) -> None:
        self.nodes = nodes

    @property
    def members(self) -> List[str]:
        return list(self.nodes)

    @property
    def now(self) -> float:
        return time.monotonic()

    def status(self, node_id: str) -> Status:
        return self.nodes[node_id].status()

    def statuses(self) -> Dict[str, Status]:
        return {i: n.status() for i, n in self.nodes.items()}

    def leader(self) -> Optional[str]:
        return leader_of((i, n.role != "stopped", n.is_leader, n.leader) for i, n in self.nodes.items())

    def run_for(self, seconds: float) -> None:
        time.sleep(seconds)


def _as_cluster(target: Any) -> Any:
    """A `Cluster` as it is; nodes (a list, or a dict by id) as a `_Nodes` view."""
    if isinstance(target, protocol.Cluster):
        return target
    if isinstance(target, Mapping):
        return _Nodes(dict(target))
    if isinstance(target, (str, bytes)):
        raise ConfigError(f"cluster: expected a LocalCluster, a Simulation or nodes, got {target!r}")
    try:
        nodes = list(target)
    except TypeError:
        raise ConfigError(f"cluster: expected a LocalCluster, a Simulation or nodes, got {target!r}") from None
    if not all(isinstance(n, Node) for n in nodes):
        raise ConfigError(f"cluster: expected Node objects, got {nodes!r}")
    return _Nodes({n.node_id: n for n in nodes})


def _describe(statuses: Dict[str, Status]) -> str:
    return ", ".join(
        f"{i}: {s.role} term {s.term} leader {s.leader}{' (lease held)' if s.is_leader else ''}"
        for i, s in statuses.items()
    )


def _check_one_lease(cluster: Any) -> None:
    """AssertionError if two nodes hold a lease at once: that is never allowed, not even for an
    instant (confirmed with a second read of those nodes, after seeing each other)."""
    statuses = cluster.statuses()
    holding = [i for i, s in statuses.items() if s.is_leader]
    if len(holding) > 1:
        holding = [i for i in holding if cluster.status(i).is_leader]
        if len(holding) > 1:
            raise AssertionError(
                f"two nodes lead at the same time at {cluster.now:.6f} s: {holding} ({_describe(statuses)})"
            )


def assert_single_leader(cluster: Target, timeout: float = 10.0) -> str:
    """Waits until one node holds its lease and a majority of the members (itself included)
    recognise it, the rule of `quorate.Cluster.leader()`, and returns its id.

    ``cluster`` is a `quorate.Cluster` (a `LocalCluster` or a `Simulation`) or nodes (a list, or
    a dict by id). ``timeout`` is seconds of the cluster's clock: wall time for nodes and a
    LocalCluster, virtual time for a Simulation (which it runs). It looks every `POLL_INTERVAL`.
    Raises AssertionError, describing every node, if no leader came within ``timeout``, or at once
    if two nodes were ever seen leading at the same instant; ConfigError for a bad argument.
    ``timeout=0`` checks the present only."""
    return _wait_for_agreed(cluster, timeout, lambda leader: True, "no single agreed leader")


def wait_for_new_leader(cluster: Target, old: Optional[str], timeout: float = 10.0) -> str:
    """Waits until a leader other than ``old`` is agreed (as in `assert_single_leader`) and
    returns its id; ``old=None`` accepts any leader. Use it after killing, isolating or pausing
    the leader: ``new = wait_for_new_leader(cluster, old)``.

    ``timeout`` is seconds of the cluster's clock (virtual time for a Simulation, which it runs).
    Raises AssertionError naming every node's state if none came in time, or if two nodes were
    ever seen leading at once; ConfigError for a bad argument."""
    return _wait_for_agreed(cluster, timeout, lambda leader: leader != old, f"no leader other than {old!r}")


def _wait_for_agreed(target: Target, timeout: float, accept: Callable[[str], bool], what: str) -> str:
    """The one wait behind `assert_single_leader` and `wait_for_new_leader`: a leader that
    `accept` takes, within `timeout` seconds of the cluster's clock, letting the cluster run
    `POLL_INTERVAL` between two looks."""
    limit = check_timeout("timeout", timeout)
    assert limit is not None
    cluster = _as_cluster(target)
    end = cluster.now + limit
    while True:
        _check_one_lease(cluster)
        leader: Optional[str] = cluster.leader()
        if leader is not None and accept(leader):
            return leader
        now = cluster.now
        if now >= end:
            clock = f"virtual s (at {now:.3f} s)" if cluster.virtual_time else "s"
            raise AssertionError(f"{what} within {limit} {clock}: {_describe(cluster.statuses())}")
        cluster.run_for(min(POLL_INTERVAL, end - now))


def faults_for(target: Union["protocol.Cluster", Node], seconds: float) -> "contextlib.AbstractContextManager[Any]":
    """A block whose faults last `seconds` and are then healed:

    ```python
    with faults_for(cluster, 2.0):
        cluster.partition([old], [i for i in cluster.members if i != old])
        new = wait_for_new_leader(cluster, old)      # the majority elects meanwhile
    # here the partition is healed (after 2 s in all, however fast the body was)
    ```

    For a `quorate.Cluster` it is the cluster's own `faults_for(seconds)`: on a `LocalCluster`
    `FaultWindow`, ``seconds`` of wall time from entering (leaving early waits out the rest, a
    longer body sees the faults healed at the deadline, a body that raises heals at once; healing
    clears every fault, resumes paused nodes and restarts nodes that ran on entry and were killed
    in the block); on a `Simulation`, ``seconds`` of virtual time (leaving the block runs the
    simulation to the end of the window, then heals partitions, resumes paused nodes and restarts
    crashed ones). For one `Node`, a `FaultWindow` of that node. Raises ConfigError for a bad
    ``seconds`` or target."""
    limit = check_timeout("seconds", seconds)
    if limit is None:
        raise ConfigError("seconds: a fault window needs a number of seconds, got None")
    if isinstance(target, protocol.Cluster):
        return target.faults_for(limit)
    return FaultWindow(target, limit)
