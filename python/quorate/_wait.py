"""The slices blocking waits sleep in, shared by `Node` and `Subscription`."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Optional

# How long a blocking wait on the main thread sleeps between checks for Ctrl-C. Other threads never
# receive signals, so they sleep up to _IDLE_SLICE: an idle service should not wake 10 times a second.
_WAIT_SLICE = 0.1
_IDLE_SLICE = 1.0


def next_wait(deadline: Optional[float]) -> float:
    """Seconds the next slice of a blocking wait may sleep: one slice, or what is left before
    `deadline` (a time.monotonic() value; <= 0 once it passed)."""
    slice_ = _WAIT_SLICE if threading.current_thread() is threading.main_thread() else _IDLE_SLICE
    return slice_ if deadline is None else min(slice_, deadline - time.monotonic())


def resolve(fut: "asyncio.Future[None]") -> None:
    """Wakes an asyncio waiter (called on its loop with call_soon_threadsafe)."""
    if not fut.done():
        fut.set_result(None)
