"""`timeline`: one swimlane per node, its roles, leaderships, demotions and the faults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from ..faults import Fault
from ._base import _FAULT_COLOR, _LANE_HEIGHT, ROLE_COLORS, _new_figure, _require
from .spans import FaultsArg, _as_faults, _bounds, _read, _spans_from

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["timeline"]


def timeline(
    source: Any,
    *,
    faults: FaultsArg = None,
    start: Optional[float] = None,
    end: Optional[float] = None,
    window: Optional[float] = None,
    title: Optional[str] = None,
    ax: Optional["Axes"] = None,
    annotate: bool = True,
) -> "Figure":
    """A swimlane per node: follower, candidate, leader and down as coloured spans (see
    `role_spans` for how they are replayed from the events), each leadership labelled with its
    term and fencing token, a dotted line and the new leader's name at each `elected`, a cross
    with the reason at each demotion, and the injected faults (hatched spans and red marks,
    labelled).

    `source`: a `LocalCluster` (times on the monotonic clock, shown from the first event or
    fault), a `Simulation` (virtual seconds from 0) or a list of `Event`. `faults`: a `FaultLog`,
    or `Fault`s, `(at, node, text)` instants and `(start, end, node, text)` spans (node None:
    every lane). `start`/`end` bound the time shown (on the source's clock); `window` shows only
    the last `window` seconds. `ax`: draw into these axes instead of a new figure. `annotate`:
    False leaves out the text labels. Returns the Figure. ImportError without matplotlib."""
    _require("matplotlib")
    from matplotlib.patches import Patch, Rectangle

    src = _read(source)
    flist = _as_faults(faults)
    origin, stop = _bounds(src, flist, start, end)
    spans = _spans_from(src, flist, origin, stop)
    nodes = list(spans)
    lane = {n: len(nodes) - 1 - i for i, n in enumerate(nodes)}  # the first node on top

    if ax is None:
        fig = _new_figure((10.0, 1.4 + 0.6 * max(len(nodes), 1)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    shift = 0.0 if src.virtual else origin
    lo = (max(origin, stop - window) if window is not None else origin) - shift
    if window is None and start is None and not src.virtual:
        lo -= 0.02 * (stop - origin)  # a margin, so that the first election shows
    hi = stop - shift
    if hi <= lo:
        hi = lo + 1.0
    width = hi - lo

    for node, node_spans in spans.items():
        y = lane[node]
        for s in node_spans:
            if s.end <= lo + shift:
                continue
            drawn = s.end - s.start
            if s.role == "candidate":
                drawn = max(drawn, 0.004 * width)  # an election of a few ms stays visible
            r = Rectangle(
                (s.start - shift, y - _LANE_HEIGHT / 2), drawn, _LANE_HEIGHT,
                facecolor=ROLE_COLORS.get(s.role, "#dddddd"), edgecolor="none", zorder=1,
            )
            r.set_gid(f"{node}|{s.role}|{s.term}")
            ax.add_patch(r)
            if annotate and s.role == "leader" and (s.end - s.start) > 0.06 * width:
                label = f"term {s.term}" + (f", token {s.fencing_token}" if s.fencing_token is not None else "")
                ax.text(max(s.start - shift, lo) + 0.005 * width, y, label, va="center", ha="left",
                        fontsize=8, color="white", zorder=4, clip_on=True)
            elif annotate and s.role == "candidate" and (s.end - s.start) > 0.05 * width:
                ax.text(max(s.start - shift, lo) + 0.005 * width, y, f"t{s.term}", va="center", ha="left",
                        fontsize=7, color="black", zorder=4, clip_on=True)
            if s.reason is not None:
                ax.plot([s.end - shift], [y + _LANE_HEIGHT / 2], marker="x", color="black", markersize=5,
                        zorder=5, clip_on=True)
                if annotate:
                    near_end = s.end - shift > hi - 0.08 * width
                    ax.text(s.end - shift + (-0.004 if near_end else 0.004) * width, y + _LANE_HEIGHT / 2 + 0.03,
                            s.reason, fontsize=7, ha="right" if near_end else "left", va="bottom", zorder=5,
                            clip_on=True)

    # Leader changes: a dotted line across every lane and the new leader's name at the top.
    top = len(nodes) - 1 + _LANE_HEIGHT / 2
    for e in src.events:
        if e.kind == "elected" and lo + shift <= e.at <= stop:
            x = e.at - shift
            ax.axvline(x, color=ROLE_COLORS["leader"], linestyle=":", linewidth=1, zorder=2)
            if annotate:
                ax.text(x, top + 0.3, f"{e.node_id} leads", fontsize=7, ha="center", va="bottom",
                        color="#1d6f65", clip_on=False)

    # Faults: hatched spans, marks for instants, labels in red.
    def lanes_of(f: Fault) -> List[str]:
        return nodes if f.node is None else ([f.node] if f.node in lane else [])

    labelled: Set[Tuple[float, str]] = set()
    last_label: Dict[str, Tuple[float, int]] = {}  # per lane: x and level of the last label
    for f in sorted(flist, key=lambda f: f.start):
        f_end = stop if f.end is None else f.end
        if f_end < lo + shift or f.start > stop:
            continue
        for node in lanes_of(f):
            y = lane[node]
            if f_end > f.start:
                if f.kind != "down":  # a down span is the grey role already
                    h = Rectangle(
                        (f.start - shift, y - _LANE_HEIGHT / 2), f_end - f.start, _LANE_HEIGHT,
                        facecolor="none", edgecolor=_FAULT_COLOR, hatch="///", linewidth=0.8, zorder=3,
                    )
                    h.set_gid(f"fault|{node}|{f.kind}")
                    ax.add_patch(h)
            else:
                ax.plot([f.start - shift] * 2, [y - _LANE_HEIGHT / 2, y + _LANE_HEIGHT / 2],
                        color=_FAULT_COLOR, linewidth=1.5, zorder=5, gid=f"fault|{node}|{f.kind}")
            key = (f.start, f.text)  # a fault of several lanes (a partition) is labelled once
            if annotate and key not in labelled:
                labelled.add(key)
                x = max(f.start - shift, lo)
                # Labels close together on one lane alternate between two heights.
                prev = last_label.get(node)
                level = 1 - prev[1] if prev is not None and x - prev[0] < 0.12 * width else 0
                last_label[node] = (x, level)
                ax.text(x, y - _LANE_HEIGHT / 2 - 0.03 - 0.16 * level, f.text, fontsize=7,
                        color=_FAULT_COLOR, ha="left", va="top", zorder=5, clip_on=True)

    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.75, len(nodes) - 1 + _LANE_HEIGHT / 2 + 0.55)
    ax.set_yticks([lane[n] for n in nodes])
    ax.set_yticklabels(nodes)
    if src.virtual:
        ax.set_xlabel("virtual seconds")
    else:
        ax.set_xlabel("seconds since " + ("start" if start is not None else "the first event or fault"))
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    handles = [Patch(facecolor=ROLE_COLORS[r], label=r) for r in ("follower", "candidate", "leader", "down")]
    handles.append(Patch(facecolor="none", edgecolor=_FAULT_COLOR, hatch="///", label="fault"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(nodes) < 4 else -0.15),
              ncol=len(handles), frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10, pad=14)
    return fig
