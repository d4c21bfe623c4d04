"""quorate: leader election for Python services, with a Rust engine.

`Node` is one member of an election group over TCP; `LocalCluster` runs several on loopback;
`Simulation` runs the same engine in deterministic virtual time (both are a `Cluster`); `Core` is
the sans-IO engine itself; `quorate.sim.failover_trials` measures failover. The guides and the reference are in
the repository's docs/ (built with mkdocs).
"""

from __future__ import annotations

from .errors import (
    ConfigError,
    LeadershipLost,
    NodeStoppedError,
    NotLeaderError,
    QuorateError,
    SafetyViolation,
    SubscriptionClosed,
)
from ._core import Core, Event, InFlight, __version__
from .leading import Leading, Leadership
from .status import PeerStatus, Status
from .subscription import Subscription
from .faults import Faults
from .node import Node
from .protocol import Cluster
from .cluster import LocalCluster
from .sim import Simulation
from .secret import read_secret
from . import sim

__all__ = [
    "Node",
    "Cluster",
    "LocalCluster",
    "Status",
    "PeerStatus",
    "Faults",
    "Subscription",
    "Leadership",
    "Leading",
    "Core",
    "Event",
    "Simulation",
    "InFlight",
    "QuorateError",
    "ConfigError",
    "NotLeaderError",
    "NodeStoppedError",
    "LeadershipLost",
    "SubscriptionClosed",
    "SafetyViolation",
    "read_secret",
    "sim",
    "__version__",
]
