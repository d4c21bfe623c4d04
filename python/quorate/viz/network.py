"""`network`: a simulation now, as RaftScope draws it: the nodes on a circle and the messages in
flight between them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple

from ..errors import ConfigError
from ..protocol import Cluster
from ._base import _FAULT_COLOR, ROLE_COLORS, _new_figure, _require

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["network", "MESSAGE_COLORS"]


#: The colour of each kind of message in flight (`network`, `LiveView`): votes in the
#: candidate's colours, heartbeats in the leader's, announcements of a winner in dark green.
MESSAGE_COLORS: Dict[str, str] = {
    "pre_vote": "#f4a259",
    "pre_vote_response": "#f4a259",
    "vote": "#e76f51",
    "vote_response": "#e76f51",
    "heartbeat": "#2a9d8f",
    "heartbeat_response": "#2a9d8f",
    "timeout_now": "#8e44ad",
    "election": "#e76f51",
    "ok": "#e76f51",
    "coordinator": "#1d6f65",
    "alive": "#2a9d8f",
    "alive_ack": "#2a9d8f",
    "ring_election": "#e76f51",
    "ring_coordinator": "#1d6f65",
    "ring_ack": "#7f8c8d",
    "ring_alive": "#2a9d8f",
    "ring_alive_ack": "#2a9d8f",
}
# Answers are drawn hollow, requests filled.
_ANSWERS = {"pre_vote_response", "vote_response", "heartbeat_response", "ok", "alive_ack", "ring_ack", "ring_alive_ack"}
_NODE_RADIUS = 0.2


def _ring_positions(members: Sequence[str]) -> Dict[str, Tuple[float, float]]:
    """The nodes on a circle of radius 1, the first at the top, then clockwise (as RaftScope)."""
    n = max(len(members), 1)
    return {
        m: (math.cos(math.pi / 2 - 2 * math.pi * i / n), math.sin(math.pi / 2 - 2 * math.pi * i / n))
        for i, m in enumerate(members)
    }


def _message_xy(
    start: Tuple[float, float], end: Tuple[float, float], progress: float
) -> Tuple[float, float, float]:
    """Where a message `progress` of the way from `start` to `end` is drawn, edge to edge of the
    two nodes' circles and a little to the right of the line (so that a request and its answer
    pass side by side), and the direction it travels in degrees."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    travel = max(length - 2 * _NODE_RADIUS, 0.0)
    along = _NODE_RADIUS + progress * travel
    side = 0.045
    x = start[0] + ux * along + uy * side
    y = start[1] + uy * along - ux * side
    return x, y, math.degrees(math.atan2(uy, ux))


@dataclass(frozen=True)
class _NodeLook:
    role: str  # a ROLE_COLORS key
    term: int
    paused: bool = False


def _draw_network(
    ax: "Axes",
    members: Sequence[str],
    looks: Mapping[str, _NodeLook],
    messages: Sequence[Any],
    now: float,
    title: Optional[str],
) -> None:
    """The nodes on a circle, coloured by role, and each message in flight as a triangle between
    its sender and receiver, placed by its progress at `now` and pointing the way it goes.
    Every message is one artist with the gid "msg|sender|receiver|kind"; every node a circle
    with the gid "node|id"."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    pos = _ring_positions(members)
    for m in members:
        look = looks.get(m, _NodeLook("follower", 0))
        x, y = pos[m]
        c = Circle((x, y), _NODE_RADIUS, facecolor=ROLE_COLORS.get(look.role, "#dddddd"),
                   edgecolor="#1d3557" if look.role == "leader" else "#555555",
                   linewidth=2.5 if look.role == "leader" else 1.0,
                   linestyle="--" if look.paused else "-", zorder=2)
        c.set_gid(f"node|{m}")
        ax.add_patch(c)
        dark = look.role in ("leader", "down")
        label = m if look.role == "down" else f"{m}\nterm {look.term}"
        ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=3,
                color="white" if dark else "black")
        if look.paused or look.role == "down":
            ax.text(x, y - _NODE_RADIUS - 0.04, "paused" if look.paused else "down", ha="center", va="top",
                    fontsize=7, color=_FAULT_COLOR, zorder=3)
    kinds: Dict[str, bool] = {}
    for msg in messages:
        if msg.sender not in pos or msg.receiver not in pos:
            continue
        x, y, angle = _message_xy(pos[msg.sender], pos[msg.receiver], msg.progress(now))
        color = MESSAGE_COLORS.get(msg.kind, "#333333")
        answer = msg.kind in _ANSWERS
        # A triangle marker points up at angle 0: turn it to point the way the message goes.
        ax.plot([x], [y], linestyle="none", marker=(3, 0, angle - 90), markersize=9,
                markerfacecolor="white" if answer else color, markeredgecolor=color, markeredgewidth=1.5,
                alpha=0.35 if msg.doomed else 1.0, zorder=4, gid=f"msg|{msg.sender}|{msg.receiver}|{msg.kind}")
        kinds.setdefault(msg.kind, answer)
    if kinds:
        handles = [
            Line2D([], [], linestyle="none", marker="^", markersize=7, markeredgecolor=MESSAGE_COLORS.get(k, "#333"),
                   markerfacecolor="white" if answer else MESSAGE_COLORS.get(k, "#333"), label=k.replace("_", " "))
            for k, answer in sorted(kinds.items())
        ]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False,
                  fontsize=7)
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)


def _present_looks(cluster: Cluster) -> Dict[str, _NodeLook]:
    looks = {}
    for m, st in cluster.statuses().items():
        role = "down" if st.role == "stopped" else "candidate" if st.role == "pre_candidate" else st.role
        looks[m] = _NodeLook(role, int(st.term), "paused" in st.faults)
    return looks


def network(sim: Cluster, *, ax: Optional["Axes"] = None, title: Optional[str] = None) -> "Figure":
    """The simulation now, as RaftScope draws it: the nodes on a circle, coloured by role
    (`ROLE_COLORS`; a pre-candidate counts as candidate, a crashed node is "down", a paused one
    has a dashed border) with their terms, and every message in flight (`Simulation.in_flight()`)
    as a triangle on its way from sender to receiver, placed by its progress (now - sent_at) /
    (deliver_at - sent_at) and pointing the way it goes: filled for a request, hollow for an
    answer, coloured by kind (`MESSAGE_COLORS`), faded if it is doomed (the link is cut or the
    receiver down). Returns the Figure.

    Only a Simulation has this view: a `LocalCluster`'s messages travel over real sockets, where
    nothing records them, so this raises ConfigError for one rather than draw a guess.
    ImportError without matplotlib."""
    _require("matplotlib")
    if not isinstance(sim, Cluster) or not sim.virtual_time:
        raise ConfigError(
            f"sim: expected a Simulation, got {type(sim).__name__} (only the simulator knows its messages in flight)"
        )
    if ax is None:
        fig = _new_figure((4.2, 4.4))
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    messages = sim.in_flight()  # type: ignore[attr-defined]  # a cluster in virtual time has it
    _draw_network(ax, sim.members, _present_looks(sim), messages, sim.now,
                  title if title is not None else f"{sim.now:.4f} s: {len(messages)} in flight")
    return fig
