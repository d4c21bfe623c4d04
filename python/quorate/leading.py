"""Work that must run only while this node leads: `Leadership`, the `leading()` block and
`run_while_leading`.

A `Leadership` is one term this node leads. Its `held` is read from the node's published state
(leader in that term, lease holding), so it turns False the instant the lease runs out, even if the
engine is frozen and has not stepped down yet. Losing it is final: a later leadership is another
`Leadership`, with a higher fencing token.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Type

from .errors import LeadershipLost, NodeStoppedError

if TYPE_CHECKING:  # pragma: no cover
    from types import TracebackType

    from .node import Node

__all__ = ["Leadership", "Leading", "run_while_leading"]


class Leadership:
    """One term this node leads. `term` and `fencing_token` are fixed; `held` is live.

    Hand `fencing_token` to whatever the work writes to, so that a resource can refuse a stale
    leader's late writes; check `held` (or call `check()`) before each step of the work."""

    __slots__ = ("_node", "_term", "_fencing_token")

    def __init__(self, node: "Node", term: int, fencing_token: int) -> None:
        self._node = node
        self._term = term
        self._fencing_token = fencing_token

    @property
    def term(self) -> int:
        """The term this node leads in this leadership."""
        return self._term

    @property
    def fencing_token(self) -> int:
        """The fencing token of this leadership: greater than any earlier leadership's, in the
        whole cluster. Hand it to whatever the work writes to."""
        return self._fencing_token

    @property
    def held(self) -> bool:
        """True while this node is leader in `term` and its lease holds; as cheap as
        `Node.is_leader`. Once False, it stays False."""
        return self._node._holds(self.term)

    @property
    def reason(self) -> Optional[str]:
        """Why this leadership ended ("lost_lease", "higher_term", "resigned", "stopped", "crashed",
        "storage") once its `demoted` event is published; None while held, or while a frozen
        engine has not yet stepped down after its lease ran out."""
        return self._node._core.ended_reason(self.term)

    def check(self) -> None:
        """Raises `LeadershipLost` unless the leadership still holds."""
        if not self.held:
            raise self._lost()

    def wait_lost(self, timeout: Optional[float] = None) -> bool:
        """Blocks (GIL released, Ctrl-C works) until the leadership is lost: True then, False if
        `timeout` seconds passed first. Wakes at the lease's end even if nothing is published."""
        try:
            self._node._wait_until(lambda: True if not self.held else None, timeout, "leadership still held", stop_ends=False)
        except TimeoutError:
            return False
        return True

    async def wait_lost_async(self) -> None:
        """Returns once the leadership is lost."""
        await self._node._wait_until_async(lambda: True if not self.held else None, None, "", stop_ends=False)

    def resign(self) -> bool:
        """Steps down from this leadership and hands it to the best peer; False if it was
        already lost (a later leadership of this node is never resigned by an old handle)."""
        if not self.held:
            return False
        return self._node.resign()

    def _lost(self) -> LeadershipLost:
        reason = self.reason
        why = f" ({reason})" if reason else ""
        return LeadershipLost(
            f"{self._node.node_id!r} lost its leadership of term {self.term}{why}",
            term=self.term,
            reason=reason,
        )

    def __repr__(self) -> str:
        return (
            f"Leadership(node={self._node.node_id!r}, term={self.term}, fencing_token={self.fencing_token}, "
            f"held={self.held})"
        )


class Leading:
    """What `Node.leading()` returns: a block that runs only under one leadership.

    `with node.leading(timeout) as lead:` waits until this node leads (TimeoutError after
    `timeout`), runs the body, and raises `LeadershipLost` at the end if the leadership was lost
    before the body finished (a synchronous body cannot be interrupted: check `lead.held` in it).

    `async with node.leading(timeout) as lead:` also cancels the body the moment the leadership is
    lost, and then raises `LeadershipLost` from the block, the way `asyncio.timeout()` turns its
    cancellation into TimeoutError. A cancellation from elsewhere still propagates as itself."""

    def __init__(self, node: "Node", timeout: Optional[float], lead: Optional[Leadership] = None) -> None:
        self._node = node
        self._timeout = timeout
        self._lead = lead
        self._task: Optional["asyncio.Task[Any]"] = None
        self._monitor: Optional["asyncio.Future[None]"] = None
        self._cancelling = 0
        self._lost = False
        self._exiting = False

    # ----- synchronous -------------------------------------------------------------------------

    def __enter__(self) -> Leadership:
        if self._lead is None:
            self._lead = self._node.wait_until_leading(self._timeout)
        return self._lead

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: "Optional[TracebackType]"
    ) -> None:
        assert self._lead is not None
        if exc_type is None and not self._lead.held:
            raise self._lead._lost()

    # ----- asynchronous ------------------------------------------------------------------------

    async def __aenter__(self) -> Leadership:
        if self._lead is None:
            self._lead = await self._node.wait_until_leading_async(self._timeout)
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("async with node.leading() must run inside an asyncio task")
        self._task = task
        if sys.version_info >= (3, 11):
            self._cancelling = task.cancelling()
        self._monitor = asyncio.ensure_future(self._cancel_on_loss(self._lead))
        return self._lead

    async def _cancel_on_loss(self, lead: Leadership) -> None:
        await lead.wait_lost_async()
        if not self._exiting and self._task is not None:
            self._lost = True
            self._task.cancel()

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: "Optional[TracebackType]"
    ) -> None:
        self._exiting = True
        if self._monitor is not None:
            self._monitor.cancel()
        assert self._lead is not None and self._task is not None
        if not self._lost:
            return
        ours = True
        if sys.version_info >= (3, 11):
            # Only our own cancellation becomes LeadershipLost; one from outside stays itself.
            ours = self._task.uncancel() <= self._cancelling
        if exc_type is None or (ours and issubclass(exc_type, asyncio.CancelledError)):
            raise self._lead._lost() from exc


async def run_while_leading(node: "Node", job: Callable[[Leadership], Awaitable[Any]]) -> None:
    """Each time `node` leads, runs `await job(lead)`; cancels it the moment that leadership is
    lost; then waits for the next one. Returns when the node stops.

    A job that returns while still leading is not run again in the same leadership: the loop
    waits for that leadership to end, then for the next. `LeadershipLost` raised by the job (as
    `lead.check()` raises it) ends the job's run the same way, whether or not the leadership had
    really ended: a job never runs twice under one fencing token. Any other exception from `job`
    propagates (and ends `run_while_leading`)."""
    if not node._core.running:
        raise NodeStoppedError(f"node {node.node_id!r} is not running: start() it before run_while_leading")
    while True:
        try:
            lead = await node.wait_until_leading_async()
        except NodeStoppedError:
            return
        try:
            async with Leading(node, None, lead):
                await job(lead)
        except LeadershipLost:
            pass
        await lead.wait_lost_async()
