"""The deterministic simulator: the real election engine in virtual time."""

from __future__ import annotations

from typing import Any, List, Sequence, Union

from ._core import InFlight, Simulation
from ._core import failover_trials as _failover_trials

__all__ = ["Simulation", "InFlight", "failover_trials"]


def failover_trials(
    trials: int,
    members: Union[int, Sequence[str]] = 5,
    seed: int = 0,
    **simulation_options: Any,
) -> List[float]:
    """Crash the leader at a uniformly random point of its heartbeat interval, ``trials`` times.

    Each value is the time in seconds from the crash until a new leader holds its lease and is
    known to every live node (``math.inf`` for a trial in which none came within 100 maximum election timeouts).
    ``simulation_options`` are those of :class:`Simulation` (``election_timeout``, ``latency``, ...).
    Trial ``i`` uses a seed derived from ``(seed, i)``, so the list is reproducible.
    """
    template = Simulation(members, seed=seed, **simulation_options)
    return _failover_trials(trials, template)
