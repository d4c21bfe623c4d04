"""quorate.Node: one member of an election group, networked over TCP (see API.md).

The engine and transport run in Rust on a background tokio runtime. Python sees them through a
published snapshot (properties never wait on the engine) and through events, which one dispatcher
thread per node hands to callbacks and subscriptions in order. No Python code runs on the engine's
threads, so a slow callback delays later callbacks, never an election.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import logging
import os
import sys
import threading
import time
import types
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterator, List, Mapping, Optional, Tuple, TypeVar, Union

from ._core import Event, _NodeCore, _take_log_records
from .errors import ConfigError, NotLeaderError, QuorateError

__all__ = ["Node", "Status", "PeerStatus", "Faults", "Subscription"]

logger = logging.getLogger("quorate")

Callback = Callable[[Event], None]
T = TypeVar("T")
PathLike = Union[str, "os.PathLike[str]"]

# Bounds: a subscription nobody reads keeps at most this many events (the oldest are dropped).
MAX_SUBSCRIPTION_BACKLOG = 10_000
# How long a blocking wait sleeps between checks for Ctrl-C.
_WAIT_SLICE = 0.1
# The dispatcher's wait per round: a stop wakes it at once, so this only bounds idle wake-ups.
_DISPATCH_SLICE = 1.0

_live_nodes: "weakref.WeakSet[Node]" = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    # Interpreter exit with running nodes must neither hang nor crash: stop them abruptly, briefly.
    for node in list(_live_nodes):
        try:
            node._shutdown(graceful=False, timeout=1.0)
        except Exception:  # pragma: no cover - best effort at exit
            pass


_log_forwarder: Optional[threading.Thread] = None
_log_forwarder_lock = threading.Lock()


def _forward_logs() -> None:
    """Moves the Rust side's log records into the "quorate" logger, on this one Python thread."""
    while True:
        for levelno, target, message in _take_log_records(1.0):
            name = "quorate" if target in ("quorate", "") else "quorate." + target.split("::", 1)[-1].replace("::", ".")
            logging.getLogger(name).log(levelno, "%s", message)


def _ensure_log_forwarder() -> None:
    global _log_forwarder
    with _log_forwarder_lock:
        if _log_forwarder is None or not _log_forwarder.is_alive():
            _log_forwarder = threading.Thread(target=_forward_logs, name="quorate-logs", daemon=True)
            _log_forwarder.start()


@dataclass(frozen=True)
class PeerStatus:
    address: str
    connected: bool
    last_contact_age: Optional[float]


@dataclass(frozen=True)
class Status:
    node_id: str
    role: str
    term: int
    leader: Optional[str]
    voted_for: Optional[str]
    is_leader: bool
    fencing_token: Optional[int]
    lease_remaining: Optional[float]
    last_heartbeat_age: Optional[float]
    peers: Dict[str, PeerStatus]
    elections_started: int
    elections_won: int
    leader_changes: int
    messages_sent: int
    messages_received: int
    messages_rejected: int
    messages_dropped: int = 0
    faults: Dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        d = dict(self.__dict__)
        d["peers"] = {k: dict(v.__dict__) for k, v in self.peers.items()}
        d["faults"] = dict(self.faults)
        return d


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
            loop.call_soon_threadsafe(_resolve, fut)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_resolve, fut)
        self._node._unsubscribe(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self, timeout: Optional[float] = None) -> Event:
        """The next event; TimeoutError after `timeout` seconds; StopIteration once closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._events:
                if self._closed:
                    raise StopIteration
                remaining = _WAIT_SLICE if deadline is None else min(_WAIT_SLICE, deadline - time.monotonic())
                if remaining <= 0:
                    raise TimeoutError("no event within the timeout")
                self._cond.wait(remaining)
            return self._events.popleft()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return self.get()

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


def _resolve(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


class Faults:
    """Fault injection inside this node's message layer; never needs its peers' cooperation."""

    def __init__(self, node: "Node") -> None:
        self._node = node

    def isolate(self) -> None:
        self._node._core.fault_isolate()

    def partition(self, *peer_ids: str) -> None:
        """Cut both directions between this node and these peers."""
        self._node._core.fault_partition(list(peer_ids))

    def drop(self, rate: float, *, peers: Optional[List[str]] = None) -> None:
        self._node._core.fault_drop(rate, peers)

    def delay(self, seconds: float, *, jitter: float = 0.0, peers: Optional[List[str]] = None) -> None:
        self._node._core.fault_delay(seconds, jitter, peers)

    def duplicate(self, rate: float, *, peers: Optional[List[str]] = None) -> None:
        self._node._core.fault_duplicate(rate, peers)

    def pause(self) -> None:
        """Freeze the engine: no timers, no message handling; messages queue and are handled on resume."""
        self._node._core.fault_pause()

    def resume(self) -> None:
        self._node._core.fault_resume()

    def clock_rate(self, factor: float) -> None:
        """This node's timers run `factor` times as fast."""
        self._node._core.fault_clock_rate(factor)

    def crash(self) -> None:
        """Abrupt stop: no hand-off, connections reset, volatile state lost; `start()` brings it back."""
        self._node._shutdown(graceful=False, timeout=5.0, crash=True)

    def heal(self) -> None:
        """Clear every fault but a crash."""
        if self._node._core.running:
            self._node._core.fault_heal()

    def active(self) -> Dict[str, str]:
        return dict(self._node._core.faults_active())


class Node:
    """One member of an election group, networked over TCP. See API.md for the whole contract."""

    def __init__(
        self,
        node_id: str,
        members: Mapping[str, str],
        *,
        bind: Optional[str] = None,
        algorithm: str = "raft",
        election_timeout: Tuple[float, float] = (0.15, 0.30),
        heartbeat_interval: float = 0.05,
        data_dir: Optional[PathLike] = None,
        secret: Union[bytes, str, None] = None,
        cluster: str = "quorate",
        pre_vote: bool = True,
        check_quorum: bool = True,
        max_clock_drift: float = 0.05,
        priority: int = 0,
        on_elected: Optional[Callback] = None,
        on_demoted: Optional[Callback] = None,
        on_leader_change: Optional[Callback] = None,
        seed: Optional[int] = None,
    ) -> None:
        if not isinstance(members, Mapping):
            raise ConfigError("members: expected a mapping of node id to 'host:port'")
        if not isinstance(priority, int):
            raise ConfigError("priority: must be an int")
        for name, cb in (("on_elected", on_elected), ("on_demoted", on_demoted), ("on_leader_change", on_leader_change)):
            if cb is not None and not callable(cb):
                raise ConfigError(f"{name}: must be callable")
        self._core = _NodeCore(
            node_id,
            dict(members),
            bind=bind,
            algorithm=algorithm,
            election_timeout=tuple(election_timeout),
            heartbeat_interval=heartbeat_interval,
            data_dir=None if data_dir is None else os.fspath(data_dir),
            secret=secret,
            cluster=cluster,
            pre_vote=pre_vote,
            check_quorum=check_quorum,
            max_clock_drift=max_clock_drift,
            seed=seed,
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
        self._priority = priority
        self._on_elected = on_elected
        self._on_demoted = on_demoted
        self._on_leader_change = on_leader_change
        self._subscriptions: List[Subscription] = []
        self._async_waiters: List[Tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._lock = threading.Lock()
        self._dispatcher: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._pid = os.getpid()
        self.faults = Faults(self)

    # ----- lifecycle ---------------------------------------------------------------------------

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise QuorateError(
                f"node {self.node_id!r} was created in process {self._pid}; a forked child cannot use "
                "it (its runtime threads did not survive the fork): create a new Node in the child"
            )

    def start(self) -> "Node":
        """Start (or restart from data_dir). OSError if the address is busy."""
        self._check_process()
        if self._core.running:
            return self
        _ensure_log_forwarder()
        self._core.start()
        self._stopping.clear()
        self._dispatcher = threading.Thread(
            target=self._dispatch, name=f"quorate-dispatch-{self.node_id}", daemon=True
        )
        self._dispatcher.start()
        _live_nodes.add(self)
        return self

    def stop(self, graceful: bool = True, timeout: float = 5.0) -> None:
        """Stop; a graceful stop hands leadership to a peer first. Idempotent."""
        self._check_process()
        self._shutdown(graceful=graceful, timeout=timeout)

    def _shutdown(self, graceful: bool, timeout: float, crash: bool = False) -> None:
        if crash:
            self._core.crash()
        else:
            self._core.stop(graceful, timeout)
        self._stopping.set()
        d = self._dispatcher
        if d is not None and d is not threading.current_thread():
            d.join(timeout)  # drains the events already produced, then ends
        self._dispatcher = None
        _live_nodes.discard(self)
        self._wake_async_waiters()

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
            if os.getpid() == self._pid and self._core.running:
                self._core.crash()
        except Exception:
            pass

    # ----- properties (a snapshot; never a round trip to the engine) ------------------------------

    @property
    def node_id(self) -> str:
        return self._core.node_id

    @property
    def address(self) -> str:
        return self._core.address

    @property
    def members(self) -> Dict[str, str]:
        return dict(self._core.members)

    @property
    def algorithm(self) -> str:
        return self._algorithm

    @property
    def priority(self) -> int:
        return self._priority

    @property
    def role(self) -> str:
        return self._core.role

    @property
    def term(self) -> int:
        return self._core.term

    @property
    def leader(self) -> Optional[str]:
        return self._core.leader

    @property
    def is_leader(self) -> bool:
        return self._core.is_leader

    @property
    def fencing_token(self) -> Optional[int]:
        return self._core.fencing_token

    # ----- queries ----------------------------------------------------------------------------

    def status(self) -> Status:
        d = dict(self._core.status())
        d["peers"] = {k: PeerStatus(**v) for k, v in d["peers"].items()}
        return Status(**d)

    def metrics_text(self) -> str:
        """Prometheus text exposition of the node's counters and gauges."""
        s = self.status()
        label = f'node="{_escape(self.node_id)}"'
        lines: List[str] = []

        def metric(name: str, kind: str, help_text: str, value: float) -> None:
            lines.append(f"# HELP quorate_{name} {help_text}")
            lines.append(f"# TYPE quorate_{name} {kind}")
            lines.append(f"quorate_{name}{{{label}}} {value}")

        metric("term", "gauge", "Current Raft term.", s.term)
        metric("is_leader", "gauge", "1 while this node leads and holds its lease.", int(s.is_leader))
        metric("lease_remaining_seconds", "gauge", "Seconds left on the leader lease.", s.lease_remaining or 0.0)
        for name in ("elections_started", "elections_won", "leader_changes", "messages_sent",
                     "messages_received", "messages_rejected", "messages_dropped"):
            metric(f"{name}_total", "counter", name.replace("_", " ").capitalize() + ".", getattr(s, name))
        lines.append("# HELP quorate_peer_connected 1 while the outbound connection to the peer is up.")
        lines.append("# TYPE quorate_peer_connected gauge")
        for peer, p in s.peers.items():
            lines.append(f'quorate_peer_connected{{{label},peer="{_escape(peer)}"}} {int(p.connected)}')
        return "\n".join(lines) + "\n"

    def _wait_for(self, ready: Callable[[], Optional[T]], timeout: Optional[float], what: str) -> T:
        """Waits until `ready()` returns something, waking on every published change (GIL released,
        in slices so Ctrl-C works); TimeoutError naming `what` after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            value = ready()
            if value is not None:
                return value
            remaining = _WAIT_SLICE if deadline is None else min(_WAIT_SLICE, deadline - time.monotonic())
            if remaining <= 0:
                raise TimeoutError(f"{what} within {timeout} s")
            self._core.wait_changed(remaining)

    def wait_for_leader(self, timeout: Optional[float] = None) -> str:
        """The leader's id once this node knows one; TimeoutError otherwise. Ctrl-C interrupts."""
        self._check_process()
        return self._wait_for(lambda: self.leader, timeout, f"no leader known to {self.node_id!r}")

    async def wait_for_leader_async(self, timeout: Optional[float] = None) -> str:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            leader = self.leader
            if leader is not None:
                return leader
            fut: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._async_waiters.append((loop, fut))
            leader = self.leader  # an event may have come between the check and the registration
            if leader is not None:
                return leader
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"no leader known to {self.node_id!r} within {timeout} s")
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout=min(remaining or 1.0, 1.0))
            except asyncio.TimeoutError:
                pass

    def subscribe(self) -> Subscription:
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
        self._check_process()
        if to not in self.members or to == self.node_id:
            raise ConfigError(f"to: {to!r} is not a peer of {self.node_id!r}")
        if not self._core.running:
            raise NotLeaderError(f"{self.node_id!r} is not running")
        self._core.transfer_leadership(to)
        self._wait_for(lambda: True if self.leader == to else None, timeout, f"{to!r} did not become leader")

    # ----- the dispatcher thread ------------------------------------------------------------------

    def _dispatch(self) -> None:
        core = self._core
        while True:
            event = core.next_event(_DISPATCH_SLICE)
            if event is None:
                if self._stopping.is_set():
                    break
                continue
            self._deliver(event)
        with self._lock:
            subs = list(self._subscriptions)
        for sub in subs:
            sub.close()

    def _deliver(self, event: Event) -> None:
        callback = {
            "elected": self._on_elected,
            "demoted": self._on_demoted,
            "leader_changed": self._on_leader_change,
        }.get(event.kind)
        if callback is not None:
            try:
                callback(event)
            except BaseException as exc:  # noqa: BLE001 - a callback must never kill the dispatcher
                logger.error("callback %r for %s raised", callback, event.kind, exc_info=True)
                sys.unraisablehook(
                    types.SimpleNamespace(  # type: ignore[arg-type]
                        exc_type=type(exc), exc_value=exc, exc_traceback=exc.__traceback__,
                        err_msg=f"Exception in quorate {event.kind} callback", object=callback,
                    )
                )
        with self._lock:
            subs = list(self._subscriptions)
        for sub in subs:
            sub._push(event)
        self._wake_async_waiters()

    def _wake_async_waiters(self) -> None:
        with self._lock:
            waiters, self._async_waiters = self._async_waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:
                pass  # that loop is closed

    def __repr__(self) -> str:
        return f"Node({self.node_id!r}, address={self.address!r}, role={self.role!r}, term={self.term})"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
