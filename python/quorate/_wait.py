"""Waiting: the slices blocking waits sleep in (shared by `Node` and `Subscription`), and the
`Node`'s waits, where one change counter wakes blocking and asyncio waiters alike."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple, TypeVar

from ._core import seconds_or_none as check_timeout
from .errors import NodeStoppedError

if TYPE_CHECKING:  # pragma: no cover
    from ._core import _NodeCore

T = TypeVar("T")
# The watcher's wait per round: a change wakes it at once, so this only bounds idle wake-ups.
DISPATCH_SLICE = 1.0

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


class Waiting:
    """The waits of a `Node` (a mixin): the node gives `_core`, `_lock`, `_async_waiters`,
    `_watcher`, `node_id` and `_check_process`."""

    _core: "_NodeCore"
    _lock: threading.Lock
    _async_waiters: List[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]", int]]
    _watcher: Optional[threading.Thread]

    @property
    def node_id(self) -> str:
        raise NotImplementedError  # the Node's

    def _check_process(self) -> None:
        raise NotImplementedError  # the Node's

    def _stopped_error(self, what: str) -> NodeStoppedError:
        return NodeStoppedError(f"node {self.node_id!r} is not running ({what})")

    def _wait_until(
        self, ready: Callable[[], Optional[T]], timeout: Optional[float], what: str, stop_ends: bool = True
    ) -> T:
        """Waits until `ready()` returns something (GIL released, in slices so Ctrl-C works).
        TimeoutError naming `what` after `timeout` seconds; NodeStoppedError if `stop_ends` and
        the node is or becomes stopped. The change counter is read before `ready()` is asked, so
        a change in between wakes the wait at once: no wakeup is missed."""
        self._check_process()
        timeout = check_timeout("timeout", timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        core = self._core
        while True:
            seen = core.version
            value = ready()
            if value is not None:
                return value
            if stop_ends and not core.running:
                raise self._stopped_error(what)
            remaining = next_wait(deadline)
            if remaining <= 0:
                raise TimeoutError(f"{what} within {timeout} s")
            core.wait_changed(seen, remaining)

    async def _wait_until_async(
        self, ready: Callable[[], Optional[T]], timeout: Optional[float], what: str, stop_ends: bool = True
    ) -> T:
        """The asyncio form of `_wait_until`: never blocks the event loop."""
        self._check_process()
        timeout = check_timeout("timeout", timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        core = self._core
        while True:
            seen = core.version
            value = ready()
            if value is not None:
                return value
            if stop_ends and not core.running:
                raise self._stopped_error(what)
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"{what} within {timeout} s")
            fut: "asyncio.Future[None]" = loop.create_future()
            self._add_async_waiter(loop, fut, seen)
            try:
                await asyncio.wait_for(fut, remaining)
            except asyncio.TimeoutError:
                pass  # the deadline check above raises the built-in TimeoutError
            finally:
                self._remove_async_waiter(fut)

    def _add_async_waiter(self, loop: asyncio.AbstractEventLoop, fut: "asyncio.Future[None]", seen: int) -> None:
        with self._lock:
            self._async_waiters.append((loop, fut, seen))
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name=f"quorate-watch-{self.node_id}", daemon=True)
                self._watcher.start()

    def _remove_async_waiter(self, fut: "asyncio.Future[None]") -> None:
        with self._lock:
            self._async_waiters = [w for w in self._async_waiters if w[1] is not fut]

    def _watch(self) -> None:
        """Wakes the asyncio waiters on every published change (and when a lease runs out); ends
        when nobody waits. Independent of the dispatcher, so a slow callback delays no waiter."""
        core = self._core
        while True:
            with self._lock:
                if not self._async_waiters:
                    self._watcher = None
                    return
                seen = min(w[2] for w in self._async_waiters)
            core.wait_changed(seen, DISPATCH_SLICE)
            with self._lock:
                waiters, self._async_waiters = self._async_waiters, []
            for loop, fut, _ in waiters:
                try:
                    loop.call_soon_threadsafe(resolve, fut)
                except RuntimeError:
                    pass  # that loop is closed
