"""quorate: leader election for Python services, with a Rust engine.

`Node` is one member of an election group over TCP; `LocalCluster` runs several on loopback;
`Simulation` runs the same engine in deterministic virtual time (both are a `Cluster`); `Core` is
the sans-IO engine itself; `quorate.sim.failover_trials` measures failover. The guides and the reference are in
the repository's docs/ (built with mkdocs).
"""

from __future__ import annotations

from . import sim
from ._core import Core, Event, InFlight, __version__
from .cluster import LocalCluster
from .errors import (
    ConfigError,
    LeadershipLost,
    NodeStoppedError,
    NotLeaderError,
    QuorateError,
    SafetyViolation,
    SubscriptionClosed,
)
from .faults import Faults
from .leading import Leadership, Leading
from .node import Node
from .protocol import Cluster
from .secret import read_secret, read_secrets
from .sim import Simulation
from .status import PeerStatus, Status
from .subscription import Subscription

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
    "read_secrets",
    "sim",
    "__version__",
]
