"""`Subscription`: every event of one node from the moment of `Node.subscribe()`, in order."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import TYPE_CHECKING, Deque, Iterator, List, Optional, Tuple

from ._core import Event
from ._core import seconds_or_none as check_timeout
from ._wait import next_wait, resolve
from .errors import SubscriptionClosed

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node

__all__ = ["Subscription", "MAX_SUBSCRIPTION_BACKLOG"]

# Bounds: a subscription nobody reads keeps at most this many events (the oldest are dropped).
MAX_SUBSCRIPTION_BACKLOG = 10_000


class Subscription:
    """Every event from the moment of `subscribe()`, in order: `for e in sub` blocks (GIL released,
    Ctrl-C works); `async for e in sub` awaits. Ends after `close()` or when the node stops."""

    def __init__(self, node: "Node") -> None:
        self._node = node
        self._events: Deque[Event] = collections.deque(maxlen=MAX_SUBSCRIPTION_BACKLOG)
        self._cond = threading.Condition()
        self._closed = False
        self._waiters: List[Tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def _push(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(resolve, fut)

    def close(self) -> None:
        """Ends the subscription: events already queued can still be read, then iteration stops
        and `get()` raises SubscriptionClosed. Idempotent; returns None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(resolve, fut)
        self._node._unsubscribe(self)

    @property
    def closed(self) -> bool:
        """True once `close()` was called or the node stopped (events may still be queued)."""
        return self._closed

    def get(self, timeout: Optional[float] = None) -> Event:
        """The next event; TimeoutError after `timeout` seconds; `SubscriptionClosed` once closed
        (by `close()` or the node stopping) and empty."""
        timeout = check_timeout("timeout", timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._events:
                if self._closed:
                    raise SubscriptionClosed("Subscription.get: the subscription is closed and has no event left")
                remaining = next_wait(deadline)
                if remaining <= 0:
                    raise TimeoutError("no event within the timeout")
                self._cond.wait(remaining)
            return self._events.popleft()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        try:
            return self.get()
        except SubscriptionClosed:
            raise StopIteration from None

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Event:
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if self._events:
                    return self._events.popleft()
                if self._closed:
                    raise StopAsyncIteration
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, fut))
            await fut

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
