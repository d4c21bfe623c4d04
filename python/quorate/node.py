"""quorate.Node: one member of an election group, networked over TCP.

The engine and transport run in Rust on a background tokio runtime. Python sees them through a
published snapshot (properties never wait on the engine) and through events, which one dispatcher
thread per node hands to callbacks and subscriptions in order. No Python code runs on the engine's
threads, so a slow callback delays later callbacks, never an election.

The node's parts live beside it: `quorate.status` (Status, PeerStatus), `quorate.subscription`
(Subscription), `quorate.faults` (Faults, the fault API), `quorate._logs` (log forwarding) and
`quorate._process` (exit and fork handling). Their names stay importable from here.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import operator
import os
import threading
import warnings
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from ._core import DEFAULT_TIMING, Event, _NodeCore, _write_unraisable
from ._core import seconds_or_none as check_timeout
from ._logs import ensure_log_forwarder
from ._process import live_nodes
from ._wait import Waiting
from .errors import ConfigError, NotLeaderError
from .faults import Faults
from .leading import Leadership, Leading, run_while_leading
from .status import PeerStatus, Status
from .subscription import MAX_SUBSCRIPTION_BACKLOG, Subscription

__all__ = ["Node", "Status", "PeerStatus", "Faults", "Subscription", "MAX_SUBSCRIPTION_BACKLOG"]

logger = logging.getLogger("quorate")

Callback = Callable[[Event], None]
T = TypeVar("T")
PathLike = Union[str, "os.PathLike[str]"]

# What "no limit" is for the engine's own stop, which takes a number: about 31 years.
_UNBOUNDED = 1e9
# The dispatcher's wait per round: a stop wakes it at once, so this only bounds idle wake-ups.
_DISPATCH_SLICE = 1.0


class Node(Waiting):
    """One member of an election group, networked over TCP.

    Create it with the id and "host:port" of every member (itself included), `start()` it (or use
    it as a context manager), and learn who leads through the properties, `status()`, callbacks,
    `subscribe()`, and the leader-work API: `wait_until_leading()`, `leading()`,
    `run_while_leading()`. Properties read a snapshot the engine publishes on every transition:
    they never wait on the engine, and a transition is published before any callback, event or
    waiter hears of it. Callbacks run on one dispatcher thread per node, in event order.

    Args:
        node_id: This node's id: a non-empty str of at most 64 bytes, one of `members`.
        members: The id and "host:port" of EVERY member, this node included.
        bind: The address to listen on; default `members[node_id]`. Port 0 picks a free port
            (`address` tells which, after `start()`).
        algorithm: The election algorithm: "raft", "bully" or "ring" (every member must run the
            same one; a peer running another is refused at the handshake).
        election_timeout: The (min, max) seconds a follower waits without hearing a leader before
            it campaigns, drawn at random in that range.
        heartbeat_interval: Seconds between a leader's heartbeats; below `election_timeout[0]`.
        data_dir: Directory for the durable term and vote (created and locked by `start()`).
            None keeps them in memory only, which is unsafe across restarts, and warns.
        secret: The shared cluster secret (at least 16 bytes; see `quorate.read_secret`): every
            frame is then authenticated. None: frames are not authenticated. A list of secrets
            rotates without downtime: the first signs, every one is accepted; give every member
            `[old, new]`, then `[new, old]`, then `[new]`, one member at a time.
        cluster: The cluster's name; frames of another cluster are refused.
        pre_vote: Campaign only after a majority said it would vote (keeps a node that was cut
            off from disrupting the group when it returns).
        check_quorum: A leader steps down when a majority stops answering.
        max_clock_drift: The assumed bound on the clock-rate difference between nodes, in
            [0, 0.5); the lease is shortened by it.
        priority: This node's priority. Bully and ring rank members by (priority, node_id) and
            the highest-ranked live member coordinates; raft ignores it. None: this node's entry in
            `priorities`, or 0.
        priorities: Every member's priority, as a mapping of node id to int (members not named:
            0). Bully and ring need every member to know every rank, so give every node the same mapping.
            This node's entry, if given, must equal `priority` (if that is given too).
        on_elected: Called with the `Event` each time this node becomes leader (lease held).
        on_demoted: Called with the `Event` each time a leadership of this node ends.
        on_leader_change: Called with the `Event` each time the leader this node knows changes.
        seed: Fixes this node's timeout randomness (tests, notebooks); None: random.

    Raises ConfigError (a ValueError naming the argument and the rule) for a bad argument. Warns
    for an even number of members and for a missing `data_dir`."""

    def __init__(
        self,
        node_id: str,
        members: Mapping[str, str],
        *,
        bind: Optional[str] = None,
        algorithm: str = "raft",
        election_timeout: Tuple[float, float] = DEFAULT_TIMING["election_timeout"],
        heartbeat_interval: float = DEFAULT_TIMING["heartbeat_interval"],
        data_dir: Optional[PathLike] = None,
        secret: Union[bytes, str, Sequence[Union[bytes, str]], None] = None,
        cluster: str = "quorate",
        pre_vote: bool = DEFAULT_TIMING["pre_vote"],
        check_quorum: bool = DEFAULT_TIMING["check_quorum"],
        max_clock_drift: float = DEFAULT_TIMING["max_clock_drift"],
        priority: Optional[int] = None,
        priorities: Optional[Mapping[str, int]] = None,
        on_elected: Optional[Callback] = None,
        on_demoted: Optional[Callback] = None,
        on_leader_change: Optional[Callback] = None,
        seed: Optional[int] = None,
    ) -> None:
        for name, cb in (("on_elected", on_elected), ("on_demoted", on_demoted), ("on_leader_change", on_leader_change)):
            _check_callback(name, cb)
        self._core = _NodeCore(
            node_id,
            members,
            bind=bind,
            algorithm=algorithm,
            election_timeout=election_timeout,
            heartbeat_interval=heartbeat_interval,
            data_dir=None if data_dir is None else os.fspath(data_dir),
            secret=secret,
            cluster=cluster,
            pre_vote=pre_vote,
            check_quorum=check_quorum,
            max_clock_drift=max_clock_drift,
            seed=seed,
            priority=priority,
            priorities=priorities,
        )
        if len(members) % 2 == 0:
            warnings.warn(
                f"{len(members)} members: an even group tolerates no more failures than one member fewer",
                stacklevel=2,
            )
        if data_dir is None:
            warnings.warn(
                f"node {node_id!r} has no data_dir: its term and vote live in memory only, which is "
                "unsafe across restarts (it could vote twice in one term)",
                stacklevel=2,
            )
        self._algorithm = algorithm
        self._on_elected = on_elected
        self._on_demoted = on_demoted
        self._on_leader_change = on_leader_change
        self._subscriptions: List[Subscription] = []
        # Async waiters: (loop, future, the change counter they saw). One watcher thread wakes
        # them on any change; it runs only while somebody waits.
        self._async_waiters: List[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]", int]] = []
        self._watcher: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        # Serialises start, stop and the dispatcher's decision to end.
        self._lifecycle = threading.RLock()
        self._dispatcher: Optional[threading.Thread] = None
        self._leadership: Optional[Leadership] = None
        self.faults = Faults(self)

    # ----- lifecycle ---------------------------------------------------------------------------

    def _check_process(self) -> None:
        self._core.check_process()

    def start(self) -> "Node":
        """Starts the node (or restarts it from data_dir after `stop()`/`crash()`).

        Takes the data_dir: creates it, locks it (a second process or Node on it raises
        QuorateError naming the holder's pid), and writes and fsyncs the state file, so an
        unwritable directory raises OSError naming the path and the reason here, not later.
        A busy address raises OSError. Returns the node."""
        self._check_process()
        with self._lifecycle:
            if self._core.running:
                return self
            ensure_log_forwarder()
            self._core.start()
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(
                    target=self._dispatch, name=f"quorate-dispatch-{self.node_id}", daemon=True
                )
                self._dispatcher.start()
        live_nodes.add(self)
        return self

    def stop(self, graceful: bool = True, timeout: Optional[float] = 5.0) -> None:
        """Stops the node; idempotent. A graceful stop of a leader hands leadership to a peer first
        (its `demoted` has reason "stopped"). Waits up to `timeout` seconds for the node's tasks and
        then for the callbacks of events already produced (its `on_demoted` among them); `None`
        waits with no limit, as everywhere else in quorate (a callback that never returns then
        holds `stop()` up for good). ConfigError for a negative or non-finite `timeout`."""
        self._check_process()
        self._shutdown(graceful=graceful, timeout=check_timeout("timeout", timeout))

    def _shutdown(self, graceful: bool, timeout: Optional[float], crash: bool = False) -> None:
        with self._lifecycle:
            if crash:
                self._core.crash()
            else:
                self._core.stop(graceful, _UNBOUNDED if timeout is None else timeout)
            d = self._dispatcher
        live_nodes.discard(self)
        # A crash does not wait for callbacks: a callback that blocks must not hold up a kill.
        if not crash and d is not None and d is not threading.current_thread():
            d.join(timeout)

    def __enter__(self) -> "Node":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> "Node":
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop)

    def __del__(self) -> None:
        try:
            if not self._core.forked and self._core.running:
                self._core.crash()
        except Exception:
            pass

    # ----- properties (a snapshot; never a round trip to the engine) ------------------------------

    @property
    def node_id(self) -> str:
        """This node's id."""
        return self._core.node_id

    @property
    def address(self) -> str:
        """The bound "host:port" (the real port when bound to port 0), or the configured one before start."""
        return self._core.address

    @property
    def members(self) -> Dict[str, str]:
        """Every member's id and "host:port", this node included."""
        return dict(self._core.members)

    @property
    def algorithm(self) -> str:
        """The election algorithm ("raft", "bully" or "ring")."""
        return self._algorithm

    @property
    def priority(self) -> int:
        """This node's priority: the bully and ring rank is (priority, node_id); raft ignores it."""
        return self._core.priority

    @property
    def role(self) -> str:
        """"follower", "pre_candidate", "candidate", "leader" or "stopped"."""
        self._check_process()
        return self._core.role

    @property
    def term(self) -> int:
        """The current term (0 before the first election)."""
        self._check_process()
        return self._core.term

    # The hot queries are C-level properties: operator.attrgetter reaches the Rust getter (which
    # makes the fork check too) without a Python frame, about half the cost of a Python property
    # (the leader-query row of BENCHMARKS.md). Type checkers read the declarations just below.
    if TYPE_CHECKING:

        @property
        def leader(self) -> Optional[str]: ...

        @property
        def is_leader(self) -> bool: ...

        @property
        def fencing_token(self) -> Optional[int]: ...

    else:
        leader = property(
            operator.attrgetter("_core.leader"),
            doc="""The leader this node follows or is, if it knows one. QuorateError in a child
            forked after the Node was made.""",
        )
        is_leader = property(
            operator.attrgetter("_core.is_leader"),
            doc="""True only while this node leads AND its lease holds (a majority acknowledged a
            heartbeat recently enough): the only time to act as the leader. QuorateError in a child
            forked after the Node was made.""",
        )
        fencing_token = property(
            operator.attrgetter("_core.fencing_token"),
            doc="""While `is_leader`: a number that strictly increases from one leadership to the next
            across the cluster (the term). None otherwise. QuorateError in a child forked after the
            Node was made.""",
        )

    def _holds(self, term: int) -> bool:
        self._check_process()
        return self._core.holds(term)

    # ----- queries ----------------------------------------------------------------------------

    def status(self) -> Status:
        """A consistent view of the node: role, term, lease, peers, counters, health."""
        self._check_process()
        d = dict(self._core.status())
        d["peers"] = {k: PeerStatus(**v) for k, v in d["peers"].items()}
        return Status(**d)

    def metrics_text(self) -> str:
        """This node's metrics in the Prometheus text exposition format, as a str: the output of
        ``prometheus_client.generate_latest`` for a private registry holding one
        `quorate.metrics.QuorateCollector` of this node (the families are listed in
        `quorate.metrics`). To add them to a service's own registry, register the collector
        there instead.

        Raises ImportError, saying to ``pip install 'quorate[prometheus]'``, if prometheus_client
        is not installed."""
        from .metrics import exposition  # the optional dependency, imported only when asked

        return exposition(self).decode("utf-8")

    def wait_for_leader(self, timeout: Optional[float] = None) -> str:
        """The id of the leader once this node knows one (any node, maybe itself, maybe one whose
        lease has not started yet): it does NOT mean this node may act as leader; for that use
        `wait_until_leading`. TimeoutError after `timeout` seconds; Ctrl-C interrupts."""
        return self._wait_until(lambda: self.leader, timeout, f"no leader known to {self.node_id!r}", stop_ends=False)

    async def wait_for_leader_async(self, timeout: Optional[float] = None) -> str:
        """The asyncio form of `wait_for_leader`."""
        return await self._wait_until_async(
            lambda: self._core.leader, timeout, f"no leader known to {self.node_id!r}", stop_ends=False
        )

    def _current_leadership(self) -> Optional[Leadership]:
        token = self._core.fencing_token
        if token is None:
            return None
        lead = self._leadership
        if lead is None or lead.term != token:
            lead = self._leadership = Leadership(self, token, token)
        return lead

    def wait_until_leading(self, timeout: Optional[float] = None) -> Leadership:
        """Blocks until this node is leader AND holds its lease, and returns that `Leadership`
        (the same object for the whole term). TimeoutError after `timeout` seconds;
        NodeStoppedError if the node is not running or stops meanwhile."""
        return self._wait_until(self._current_leadership, timeout, f"{self.node_id!r} did not lead")

    async def wait_until_leading_async(self, timeout: Optional[float] = None) -> Leadership:
        """The asyncio form of `wait_until_leading`."""
        return await self._wait_until_async(self._current_leadership, timeout, f"{self.node_id!r} did not lead")

    def leading(self, timeout: Optional[float] = None) -> Leading:
        """A block that runs under one leadership: `with node.leading() as lead:` or
        `async with node.leading() as lead:` (see `quorate.leading.Leading`). It waits until this
        node leads; the async form cancels the body the moment the leadership is lost and raises
        `LeadershipLost`."""
        self._check_process()
        return Leading(self, check_timeout("timeout", timeout))

    async def run_while_leading(self, job: Callable[[Leadership], Awaitable[Any]]) -> None:
        """Runs `await job(lead)` each time this node leads and cancels it the moment that
        leadership is lost, until the node stops. The one-line loop most services want."""
        if not callable(job):
            raise ConfigError(f"job: must be a coroutine function taking the Leadership, got {job!r}")
        _check_callback("job", job)
        self._check_process()
        await run_while_leading(self, job)

    def subscribe(self) -> Subscription:
        """Every event from now on, in order (see `Subscription`)."""
        self._check_process()
        sub = Subscription(self)
        with self._lock:
            self._subscriptions.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)

    # ----- control ----------------------------------------------------------------------------

    def resign(self) -> bool:
        """A leader steps down and hands off to the most suitable peer; False if not leader."""
        self._check_process()
        if not self._core.running:
            return False
        return self._core.resign()

    def transfer_leadership(self, to: str, timeout: float = 5.0) -> None:
        """Hands leadership to `to` and waits until it leads. ConfigError if `to` is unknown, this
        node, or not connected; NotLeaderError if this node does not lead; TimeoutError if `to`
        did not become leader within `timeout` seconds."""
        self._check_process()
        check_timeout("timeout", timeout)
        if not self._core.running:
            raise NotLeaderError(f"{self.node_id!r} is not running")
        self._core.transfer_leadership(to)
        self._wait_until(lambda: True if self.leader == to else None, timeout, f"{to!r} did not become leader")

    # ----- the dispatcher thread ------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Delivers events in order until the node is stopped and every event was delivered.
        Whatever a callback does, the loop goes on."""
        core = self._core
        while True:
            event = core.next_event(_DISPATCH_SLICE)
            if event is not None:
                self._deliver(event)
                continue
            with self._lifecycle:
                if core.drained():
                    self._dispatcher = None
                    break
        with self._lock:
            subs = list(self._subscriptions)
        for sub in subs:
            sub.close()

    def _deliver(self, event: Event) -> None:
        # Subscribers first: a callback that blocks must not hold back an event a subscriber (or
        # LocalCluster.history) could already have.
        with self._lock:
            subs = list(self._subscriptions)
        for sub in subs:
            sub._push(event)
        callback = {
            "elected": self._on_elected,
            "demoted": self._on_demoted,
            "leader_changed": self._on_leader_change,
        }.get(event.kind)
        if callback is not None:
            try:
                callback(event)
            except BaseException as exc:  # noqa: BLE001 - a callback must never kill the dispatcher
                try:
                    logger.error("%s callback %r raised on %r", event.kind, callback, event, exc_info=exc)
                    _write_unraisable(exc, callback)
                except BaseException:  # pragma: no cover - a hook that raises must not stop us either
                    pass

    def __repr__(self) -> str:
        return f"Node({self.node_id!r}, address={self.address!r}, role={self._core.role!r}, term={self._core.term})"


def _check_callback(name: str, cb: Optional[Callable[..., Any]]) -> None:
    """A callback must be callable with one argument (the Event, or the Leadership): checked when
    the Node is made, not when the first event would find out."""
    if cb is None:
        return
    if not callable(cb):
        raise ConfigError(f"{name}: must be callable, got {cb!r}")
    try:
        sig = inspect.signature(cb)
    except (TypeError, ValueError):
        return  # some builtins have no signature to check
    try:
        sig.bind(None)
    except TypeError as e:
        raise ConfigError(f"{name}: {cb!r} cannot be called with one argument ({e})") from None
