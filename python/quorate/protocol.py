"""`quorate.Cluster`: the one interface of a group of nodes you can watch and break.

`LocalCluster` (real nodes on loopback, wall time) and `Simulation` (the same engine in virtual
time) both satisfy it, with the same verb for the same action, so that `quorate.viz`, the pytest
plugin and the demo (`python -m quorate demo`) take either and never ask which one they have.

The leader rule is written once (`leader_of`, in Rust beside the simulator): the member that
holds its lease and that a majority of ALL members, itself included, recognise as leader; members
that are down do not count as recognising anyone, and do not lower the bar. This is what an etcd
or Kubernetes user expects "the leader" to mean: under a partition the majority side's leader is
the leader, even while the minority still names its old one (or none).
"""

from __future__ import annotations

from typing import Any, ContextManager, Dict, Iterable, List, Optional, Sequence, Tuple

from ._core import Event, _recognised_leader
from .status import Status

try:  # Python >= 3.8
    from typing import Protocol, runtime_checkable
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol, runtime_checkable  # type: ignore[assignment]

__all__ = ["Cluster", "leader_of"]


def leader_of(members: Iterable[Tuple[str, bool, bool, Optional[str]]]) -> Optional[str]:
    """The leader of a group by the one rule (see the module's docstring), from one
    `(node_id, up, holds_lease, leader)` per member: `up` is False for a killed or stopped member
    (a paused one is up), `holds_lease` is its `is_leader`, `leader` the leader it names. Returns
    the leader's id or None."""
    return _recognised_leader(list(members))


@runtime_checkable
class Cluster(Protocol):
    """A group of election nodes that can be observed, run and broken: `LocalCluster` and
    `Simulation` satisfy it (`isinstance(x, quorate.Cluster)` is True for both).

    Times are seconds on the cluster's own clock, `now`: `time.monotonic()` for a LocalCluster
    (the clock of its events' `at`), virtual seconds for a Simulation. Every method raises
    ConfigError for an unknown node id or a bad argument, naming it.
    """

    @property
    def members(self) -> List[str]:
        """The node ids, in order."""
        ...

    @property
    def now(self) -> float:
        """The cluster's clock, in seconds: the clock of `Event.at`."""
        ...

    @property
    def virtual_time(self) -> bool:
        """True if time moves only in `run_for` (a Simulation: its `in_flight()` messages,
        `campaign()` and replay exist); False if it moves by itself (a LocalCluster)."""
        ...

    @property
    def running(self) -> bool:
        """True while the cluster's present is live: a LocalCluster from `start()` to `stop()`;
        a Simulation always."""
        ...

    @property
    def events(self) -> List[Event]:
        """Every event of every node so far, ordered by `at`."""
        ...

    def status(self, node_id: str) -> Status:
        """One node's `Status` now (a stopped or crashed node reports role "stopped")."""
        ...

    def statuses(self) -> Dict[str, Status]:
        """Every node's `Status`, by id."""
        ...

    def leader(self) -> Optional[str]:
        """The member that holds its lease and that a majority of all members (itself included)
        recognise as leader, or None. Does not wait, does not run."""
        ...

    def wait_for_leader(self, timeout: Optional[float] = None) -> str:
        """Waits (LocalCluster) or runs (Simulation) until `leader()` names one, and returns it;
        TimeoutError after `timeout` seconds of the cluster's clock (None: no limit)."""
        ...

    def run_for(self, seconds: float) -> None:
        """Lets `seconds` of the cluster's clock pass: sleeps for a LocalCluster, runs the
        simulation for a Simulation."""
        ...

    def kill(self, node_id: str) -> None:
        """Crashes a node: no hand-off, volatile state lost; `restart` brings it back."""
        ...

    def restart(self, node_id: str) -> None:
        """Starts a killed node again from its kept term and vote."""
        ...

    def pause(self, node_id: str, seconds: Optional[float] = None) -> None:
        """Freezes a node's engine as SIGSTOP would, for `seconds` or until `resume` (None)."""
        ...

    def resume(self, node_id: str) -> None:
        """Ends a pause now; the messages queued meanwhile are handled."""
        ...

    def partition(self, *groups: Sequence[str]) -> None:
        """Splits the members into groups that cannot reach one another (members named in no
        group form one more group) until `heal()`; replaces an earlier partition."""
        ...

    def isolate(self, node_id: str) -> None:
        """Cuts one node off from every other, both directions, until `heal()`."""
        ...

    def heal(self) -> None:
        """Undoes `partition()` and `isolate()`; pauses, clock rates and drop rates stay."""
        ...

    def set_clock_rate(self, node_id: str, factor: float) -> None:
        """Makes a node's timers run `factor` times as fast (1.0: normal)."""
        ...

    def set_drop_rate(self, rate: float, node_id: Optional[str] = None) -> None:
        """Drops each message with probability `rate` from now on (0 ends it): on every node, or
        only to and from `node_id` where the cluster can (a Simulation's rate is global: a node
        id is refused)."""
        ...

    def resign(self, node_id: str) -> bool:
        """A leader steps down and hands off; False (doing nothing) if it does not lead."""
        ...

    def transfer_leadership(self, node_id: str, to: str) -> None:
        """The leader `node_id` hands leadership to `to` (NotLeaderError if it does not lead)."""
        ...

    def faults_for(self, seconds: float) -> ContextManager[Any]:
        """A block whose faults last `seconds` of the cluster's clock and are then healed."""
        ...
