"""quorate.viz: pictures of elections, for notebooks.

Every function takes a `quorate.Cluster` (a `LocalCluster` or a `Simulation`) and asks it only
what the protocol offers; the modules: `viz.spans` (the data), `viz.timeline`, `viz.failover`,
`viz.network` and `viz.live`.

- `timeline(source)`: one swimlane per node showing when it was follower, candidate, leader or
  down, each leadership labelled with its term and fencing token, every leader change and
  demotion (with its reason), and the faults injected meanwhile. `source` is a `LocalCluster`
  (its `events`, on the host's monotonic clock), a `Simulation` (its `events`, in virtual
  seconds) or a list of `Event`.
- `failover_cdf(times)`: the cumulative distribution of failover times, one curve per series
  (e.g. `quorate.sim.failover_trials`).
- `FaultLog(target)`: injects faults into a `quorate.Cluster` (a `LocalCluster` or a
  `Simulation`) and remembers when, so that `timeline(source, faults=log)` can draw them (neither
  records its faults itself). It lives beside the fault API, in `quorate.faults`.
- `network(sim)`: a Simulation now, as RaftScope draws it: the nodes on a circle coloured by
  role, and the messages in flight (`Simulation.in_flight()`) on their way between them.
- `LiveView(target)`: an ipywidgets view whose timeline redraws as a LocalCluster runs, with
  buttons per node (kill, restart, pause, isolate, heal, timeout); on a Simulation it also plays,
  pauses and steps virtual time, replays the past with a time slider, and draws the messages in
  flight beside the timeline (the `network` picture).
- `role_spans(source)`: the spans `timeline` draws, as data (needs no matplotlib).

Every drawing function returns the matplotlib `Figure` (made with `matplotlib.figure.Figure`,
not pyplot, so a figure shows once: as the cell's value, or with `display(fig)`).

matplotlib and ipywidgets are optional: `pip install 'quorate[notebook]'`. Importing this module
needs neither; the functions that draw raise ImportError naming that command.
"""

from __future__ import annotations

from ..faults import Fault, FaultLog
from ._base import INSTALL_HINT, ROLE_COLORS
from .failover import failover_cdf
from .live import LiveView
from .network import MESSAGE_COLORS, network
from .spans import Span, role_spans
from .timeline import timeline

__all__ = [
    "timeline",
    "failover_cdf",
    "role_spans",
    "Span",
    "Fault",
    "FaultLog",
    "LiveView",
    "network",
    "ROLE_COLORS",
    "MESSAGE_COLORS",
    "INSTALL_HINT",
]
