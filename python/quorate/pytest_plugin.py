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

- `assert_single_leader(cluster)` waits until exactly one node leads and the others agree, and
  fails at once if it ever sees two nodes leading at the same time.
- `wait_for_new_leader(cluster, old)` waits until a leader other than `old` is agreed.
- `faults_for(cluster, seconds)` runs faults for a bounded time: `with faults_for(cluster, 2.0):`
  (the same as `cluster.faults_for(2.0)`; also for one `Node`, and for a `Simulation` in virtual
  time).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import pytest

from ._validate import check_timeout
from .cluster import FaultWindow, LocalCluster
from .errors import ConfigError
from .node import Node
from ._core import Simulation

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

#: How often the helpers sample the nodes while they wait (seconds of wall time).
POLL_INTERVAL = 0.005
#: How far the helpers run a Simulation between two looks (virtual seconds).
SIM_STEP = 0.01

Target = Union[LocalCluster, Simulation, Mapping[str, Node], Sequence[Node]]


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


def _nodes_of(target: Any) -> Dict[str, Node]:
    if isinstance(target, LocalCluster):
        return target.nodes
    if isinstance(target, Mapping):
        return dict(target)
    if isinstance(target, (str, bytes)):
        raise ConfigError(f"cluster: expected a LocalCluster, a Simulation or nodes, got {target!r}")
    try:
        nodes = list(target)
    except TypeError:
        raise ConfigError(f"cluster: expected a LocalCluster, a Simulation or nodes, got {target!r}") from None
    if not all(isinstance(n, Node) for n in nodes):
        raise ConfigError(f"cluster: expected Node objects, got {nodes!r}")
    return {n.node_id: n for n in nodes}


def _describe(nodes: Dict[str, Node]) -> str:
    return ", ".join(
        f"{i}: {n.role} term {n.term} leader {n.leader}{' (lease held)' if n.is_leader else ''}"
        for i, n in nodes.items()
    )


def _agreed(target: Any, nodes: Dict[str, Node]) -> Optional[str]:
    """The one node holding its lease that every running node agrees on (for a LocalCluster:
    every running node of the majority side), or None. AssertionError if two nodes hold a lease
    at once: that is never allowed, not even for an instant."""
    holding = [i for i, n in nodes.items() if n.is_leader]
    if len(holding) > 1:
        # Confirm with a second read: both still report is_leader after seeing each other.
        holding = [i for i in holding if nodes[i].is_leader]
        if len(holding) > 1:
            raise AssertionError(f"two nodes lead at the same time: {holding} ({_describe(nodes)})")
    if isinstance(target, LocalCluster):
        return target.leader()
    running = {i: n for i, n in nodes.items() if n.role != "stopped"}
    leaders = {n.leader for n in running.values()}
    if len(holding) == 1 and leaders == set(holding):
        return holding[0]
    return None


def _sim_leader(sim: Simulation) -> Optional[str]:
    """The node of `sim` holding its lease that a majority of the members (itself included) name
    as leader, or None. AssertionError if two nodes hold a lease at the same instant."""
    statuses = {i: sim.status(i) for i in sim.members}
    holding = [i for i, s in statuses.items() if s["is_leader"]]
    if len(holding) > 1:
        raise AssertionError(f"two nodes lead at the same time at {sim.now:.6f} virtual s: {holding}")
    if not holding:
        return None
    followers = sum(1 for s in statuses.values() if s["up"] and s["leader"] == holding[0])
    return holding[0] if followers * 2 > len(statuses) else None


def _describe_sim(sim: Simulation) -> str:
    return ", ".join(
        f"{i}: {s['role']} term {s['term']} leader {s['leader']}{' (lease held)' if s['is_leader'] else ''}"
        for i, s in ((i, sim.status(i)) for i in sim.members)
    )


def _wait_sim(sim: Simulation, limit: float, accept: Callable[[Optional[str]], bool]) -> Optional[str]:
    """Runs `sim` in steps of `SIM_STEP` virtual seconds until `accept(leader)`, for at most
    `limit` virtual seconds; returns the leader accepted, or raises _NotYet."""
    end = sim.now + limit
    while True:
        leader = _sim_leader(sim)
        if accept(leader):
            return leader
        if sim.now >= end:
            raise _NotYet()
        sim.run_for(min(SIM_STEP, end - sim.now))


class _NotYet(Exception):
    pass


def assert_single_leader(cluster: Target, timeout: float = 10.0) -> str:
    """Waits until exactly one node leads (holds its lease) and every running node agrees on it
    (for a LocalCluster: every running node of the majority side), and returns its id.

    ``cluster`` is a `LocalCluster`, nodes (a list, or a dict by id), or a `Simulation` (there:
    one node holds its lease and a majority of the members name it). ``timeout`` is in seconds:
    wall time for nodes, virtual time for a Simulation (which it runs, in steps of 10 ms). Raises
    AssertionError, describing every node, if no single agreed leader came within ``timeout``, or
    at once if two nodes were ever seen leading at the same instant; ConfigError for a bad
    argument. ``timeout=0`` checks the present only."""
    return _wait_for_agreed(cluster, timeout, lambda leader: True, "no single agreed leader")


def wait_for_new_leader(cluster: Target, old: Optional[str], timeout: float = 10.0) -> str:
    """Waits until a leader other than ``old`` is agreed (as in `assert_single_leader`) and
    returns its id; ``old=None`` accepts any leader. Use it after killing, isolating or pausing
    the leader: ``new = wait_for_new_leader(cluster, old)``.

    ``timeout`` is seconds of wall time (virtual time for a Simulation, which it runs). Raises
    AssertionError naming every node's state if none came in time, or if two nodes were ever seen
    leading at once; ConfigError for a bad argument."""
    return _wait_for_agreed(cluster, timeout, lambda leader: leader != old, f"no leader other than {old!r}")


def _wait_for_agreed(cluster: Target, timeout: float, accept: Callable[[str], bool], what: str) -> str:
    """The one wait behind `assert_single_leader` and `wait_for_new_leader`: an agreed leader that
    `accept` takes, within `timeout` (virtual seconds for a Simulation, which it runs)."""
    limit = check_timeout("timeout", timeout)
    assert limit is not None
    if isinstance(cluster, Simulation):
        try:
            leader = _wait_sim(cluster, limit, lambda leader: leader is not None and accept(leader))
        except _NotYet:
            raise AssertionError(
                f"{what} within {limit} virtual s (at {cluster.now:.3f} s): {_describe_sim(cluster)}"
            ) from None
        assert leader is not None
        return leader
    nodes = _nodes_of(cluster)
    deadline = time.monotonic() + limit
    while True:
        leader = _agreed(cluster, nodes)
        if leader is not None and accept(leader):
            return leader
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} within {limit} s: {_describe(nodes)}")
        time.sleep(POLL_INTERVAL)


@contextlib.contextmanager
def _simulated_window(sim: Simulation, seconds: float) -> Iterator[None]:
    up_at_entry = [i for i in sim.members if sim.status(i)["up"]]
    end = sim.now + seconds
    try:
        yield
        if sim.now < end:
            sim.run_for(end - sim.now)
    finally:
        sim.heal()
        for i in sim.members:
            st = sim.status(i)
            if st["paused"]:
                sim.resume(i)
            if not st["up"] and i in up_at_entry:
                sim.restart(i)


def faults_for(
    target: Union[LocalCluster, Node, Simulation], seconds: float
) -> "contextlib.AbstractContextManager[Any]":
    """A block whose faults last `seconds` and are then healed:

    ```python
    with faults_for(cluster, 2.0):
        cluster.partition([old], [i for i in cluster.nodes if i != old])
        new = wait_for_new_leader(cluster, old)      # the majority elects meanwhile
    # here the partition is healed (after 2 s in all, however fast the body was)
    ```

    For a `LocalCluster` or a `Node` it is `FaultWindow` (``cluster.faults_for(seconds)``):
    ``seconds`` of wall time from entering; leaving early waits out the rest, a longer body sees
    the faults healed at the deadline, a body that raises heals at once. Healing clears every
    fault, resumes paused nodes and restarts nodes that ran on entry and were killed in the block.

    For a `Simulation`, ``seconds`` is virtual time: leaving the block runs the simulation to the
    end of the window, then heals partitions, resumes paused nodes and restarts crashed ones.
    Raises ConfigError for a bad ``seconds`` or target."""
    limit = check_timeout("seconds", seconds)
    if limit is None:
        raise ConfigError("seconds: a fault window needs a number of seconds, got None")
    if isinstance(target, Simulation):
        return _simulated_window(target, limit)
    return FaultWindow(target, limit)

