"""Argument checks shared by the Python side of quorate (Node, LocalCluster, the CLI).

Each check raises :class:`~quorate.errors.ConfigError` (a ``ValueError``) whose message names the
argument and the offending value, so a bad argument never surfaces as a ``TypeError`` deep inside,
a hang or a silent default.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

from .errors import ConfigError

__all__ = ["check_timeout"]


def check_timeout(name: str, value: object) -> Optional[float]:
    """Checks a ``timeout=`` argument: seconds to wait, or None to wait without limit.

    None is returned as None; a finite, non-negative real number (``int``, ``float``, numpy scalars,
    ``Fraction``) is returned as a ``float``. Anything else -- NaN, an infinity, a negative number,
    a ``bool``, a ``str`` -- raises ConfigError naming ``name`` and the value. (Use None, not
    ``math.inf``, to wait forever.)
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or type(value).__name__ == "bool_":
        raise ConfigError(f"{name}: expected None or a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except (OverflowError, ValueError):  # an int too large for a float
        raise ConfigError(f"{name}: must be a finite number of seconds (or None), got {value!r}") from None
    if not math.isfinite(seconds):
        raise ConfigError(f"{name}: must be a finite number of seconds (or None to wait without limit), got {value!r}")
    if seconds < 0:
        raise ConfigError(f"{name}: must not be negative, got {value!r}")
    return seconds
