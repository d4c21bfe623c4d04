"""What every picture shares: the optional imports, the role colours, the figure factory."""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Any, Dict, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

INSTALL_HINT = "pip install 'quorate[notebook]'"

#: The colour of each role in a timeline.
ROLE_COLORS: Dict[str, str] = {
    "follower": "#cfd8e3",
    "candidate": "#f4a259",
    "leader": "#2a9d8f",
    "down": "#5c636a",
}
_FAULT_COLOR = "#c0392b"
_LANE_HEIGHT = 0.5


def _require(module: str) -> Any:
    """Imports an optional dependency, or raises ImportError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        raise ImportError(
            f"quorate.viz needs {top}, which is not installed: {INSTALL_HINT}"
        ) from e


def _natural(node_id: str) -> Tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", node_id))


def _new_figure(figsize: Tuple[float, float]) -> "Figure":
    _require("matplotlib")
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")
