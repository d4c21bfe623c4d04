"""A process's running nodes: stopped at interpreter exit, and disowned by a forked child.

After `fork()` the child must not use (or stop) the parent's nodes: their runtime threads did not
survive the fork. The fork generation is kept in Rust, so a Node made in another generation
refuses to be used, in Python calls and Rust getters alike.
"""

from __future__ import annotations

import atexit
import os
import weakref
from typing import TYPE_CHECKING

from ._core import _forked
from ._logs import forget_log_forwarder

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node

#: Every started, not yet stopped Node of this process (weakly held).
live_nodes: "weakref.WeakSet[Node]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    _forked()
    live_nodes.clear()  # the parent's nodes are the parent's: never stop them from here
    forget_log_forwarder()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _stop_all_at_exit() -> None:
    # Interpreter exit with running nodes must neither hang nor crash: stop them abruptly, briefly.
    for node in list(live_nodes):
        try:
            node._shutdown(graceful=False, timeout=1.0)
        except Exception:  # pragma: no cover - best effort at exit
            pass
