"""`failover_cdf`: the cumulative distribution of failover times (Raft paper, Figure 16)."""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Dict, Mapping, Optional, Sequence, Tuple, Union

from ._base import _new_figure, _require

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["failover_cdf"]


Times = Union[Sequence[float], Mapping[str, Sequence[float]]]


def failover_cdf(
    times: Times,
    *,
    ax: Optional["Axes"] = None,
    title: Optional[str] = None,
    label: Optional[str] = None,
    log_x: bool = False,
    xlim: Optional[Tuple[float, float]] = None,
    legend_loc: str = "lower right",
) -> "Figure":
    """The cumulative distribution of failover times: for each time on the x axis (ms), the
    fraction of trials that had a new leader by then. `times` is one list of seconds (as
    `quorate.sim.failover_trials` returns) or a mapping of label to list, one curve each.
    Trials that never elected a leader (`math.inf`) count in the total, so such a curve stays
    below 1. The legend gives each curve's median (infinite if half the trials had no leader)
    and maximum. `log_x` for a logarithmic time
    axis (Raft Figure 16, top); `xlim` in ms; `legend_loc` a matplotlib location, or "outside"
    (to the right of the axes). Returns the Figure. ImportError without matplotlib."""
    _require("matplotlib")
    series: Dict[str, Sequence[float]]
    if isinstance(times, Mapping):
        series = dict(times)
    else:
        series = {label or "failover": times}
    if ax is None:
        fig = _new_figure((7.0, 4.0))
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    for name, values in series.items():
        values = [float(v) for v in values]
        n = len(values)
        if n == 0:
            continue
        finite = sorted(v * 1000.0 for v in values if math.isfinite(v))
        never = n - len(finite)
        if finite:
            xs = [finite[0]] + finite
            ys = [0.0] + [(i + 1) / n for i in range(len(finite))]
            median = statistics.median(v * 1000.0 for v in values)
            text = f"{name}: median {_ms(median)}, max {_ms(finite[-1] if not never else math.inf)}"
            if never:
                text += f", {never}/{n} no leader"
            ax.step(xs, ys, where="post", label=text)
        else:
            ax.plot([], [], label=f"{name}: no leader in {n} trials")
    ax.set_xlabel("time without a leader (ms)")
    ax.set_ylabel("cumulative fraction of trials")
    ax.set_ylim(0, 1.02)
    if log_x:
        ax.set_xscale("log")
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax.grid(True, alpha=0.3)
    if legend_loc == "outside":
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=8, loc=legend_loc)  # type: ignore[call-overload]
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _ms(v: float) -> str:
    return f"{v:.0f} ms" if math.isfinite(v) else "none"
