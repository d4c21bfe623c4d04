"""quorate: leader election for Python services, with a Rust engine.

`Simulation` runs the real engine in deterministic virtual time; `Core` is the sans-IO engine itself;
`quorate.sim.failover_trials` measures failover. See API.md for the whole contract.
"""

from __future__ import annotations

from .errors import ConfigError, NotLeaderError, QuorateError, SafetyViolation
from ._core import Core, Event, Simulation, __version__
from . import sim

__all__ = [
    "Core",
    "Event",
    "Simulation",
    "QuorateError",
    "ConfigError",
    "NotLeaderError",
    "SafetyViolation",
    "sim",
    "__version__",
]
