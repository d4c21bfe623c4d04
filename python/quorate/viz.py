"""quorate.viz: pictures of elections, for notebooks.

- `timeline(source)`: one swimlane per node showing when it was follower, candidate, leader or
  down, each leadership labelled with its term and fencing token, every leader change and
  demotion (with its reason), and the faults injected meanwhile. `source` is a `LocalCluster`
  (its `history`, on the host's monotonic clock), a `Simulation` (its `events`, in virtual
  seconds) or a list of `Event`.
- `failover_cdf(times)`: the cumulative distribution of failover times, one curve per series
  (e.g. `quorate.sim.failover_trials`).
- `FaultLog(target)`: injects faults into a `LocalCluster` or a `Simulation` and remembers when,
  so that `timeline(source, faults=log)` can draw them (neither records its faults itself).
- `network(sim)`: a Simulation now, as RaftScope draws it: the nodes on a circle coloured by
  role, and the messages in flight (`Simulation.in_flight()`) on their way between them.
- `LiveView(target)`: an ipywidgets view whose timeline redraws as a LocalCluster runs, with
  buttons per node (kill, restart, pause, isolate, heal, timeout); on a Simulation it also plays,
  pauses and steps virtual time, replays the past with a time slider, and draws the messages in
  flight beside the timeline (the `network` picture).
- `role_spans(source)`: the spans `timeline` draws, as data (needs no matplotlib).

Every drawing function returns the matplotlib `Figure` (made with `matplotlib.figure.Figure`,
not pyplot, so a figure shows once: as the cell's value, or with `display(fig)`).

matplotlib and ipywidgets are optional: `pip install 'quorate[notebook]'`. Importing this module
needs neither; the functions that draw raise ImportError naming that command.
"""

from __future__ import annotations

import html
import importlib
import io
import math
import re
import statistics
import threading
import time
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from ._core import Event, InFlight, Simulation
from .cluster import LocalCluster
from .errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "timeline",
    "failover_cdf",
    "role_spans",
    "Span",
    "Fault",
    "FaultLog",
    "LiveView",
    "network",
    "ROLE_COLORS",
    "MESSAGE_COLORS",
]

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


# ----- data: spans and faults ----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One stretch of one node's timeline: `role` ("follower", "candidate", "leader" or "down")
    from `start` to `end` (seconds on the source's clock). `term` is the node's term at the start;
    a leader span has its `fencing_token`, and `reason` is why it ended (a demotion's reason),
    if it ended with a demotion."""

    node: str
    role: str
    start: float
    end: float
    term: int
    fencing_token: Optional[int] = None
    reason: Optional[str] = None


@dataclass(frozen=True)
class Fault:
    """One injected fault: on `node` (None: the whole group) from `start` to `end` (None: still in
    force; equal to `start`: an instant, such as a resign). `kind` is "down", "paused",
    "isolated", "partition", "drop", "clock" or "note"."""

    start: float
    end: Optional[float]
    node: Optional[str]
    text: str
    kind: str = "note"


FaultsArg = Union["FaultLog", Iterable[Union[Fault, Tuple[Any, ...]]], None]


def _as_faults(faults: FaultsArg) -> List[Fault]:
    """Accepts a FaultLog, Fault objects, (at, node, text) instants and (start, end, node, text)
    spans."""
    if faults is None:
        return []
    if isinstance(faults, FaultLog):
        return faults.entries
    out: List[Fault] = []
    for f in faults:
        if isinstance(f, Fault):
            out.append(f)
        elif isinstance(f, tuple) and len(f) == 3:
            at, node, text = f
            out.append(Fault(float(at), float(at), node, str(text)))
        elif isinstance(f, tuple) and len(f) == 4:
            start, end, node, text = f
            out.append(Fault(float(start), None if end is None else float(end), node, str(text), "fault"))
        else:
            raise ConfigError(
                f"faults: expected Fault, (at, node, text) or (start, end, node, text), got {f!r}"
            )
    return out


def _natural(node_id: str) -> Tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", node_id))


class _SimAt:
    """A Simulation seen up to a moment (the LiveView's replay): its events until then."""

    def __init__(self, events: List[Event], members: List[str], now: float) -> None:
        self.events = events
        self.members = members
        self.now = now


@dataclass
class _Source:
    events: List[Event]
    nodes: List[str]
    origin: Optional[float]  # None: the earliest time seen
    end: Optional[float]  # None: the latest time seen
    virtual: bool


def _read(source: Any) -> _Source:
    if isinstance(source, _SimAt):
        return _Source(list(source.events), list(source.members), 0.0, source.now, True)
    if isinstance(source, Simulation):
        return _Source(list(source.events), list(source.members), 0.0, source.now, True)
    if isinstance(source, LocalCluster):
        events = source.history
        end = time.monotonic() if source.running else None
        return _Source(events, list(source.nodes), None, end, False)
    if isinstance(source, (list, tuple)):
        events = list(source)
        for e in events:
            if not isinstance(e, Event):
                raise ConfigError(f"source: expected a LocalCluster, a Simulation or a list of Event, got {e!r} in the list")
        nodes = sorted({e.node_id for e in events}, key=_natural)
        # A simulation's events have at == wall (both virtual seconds): shown from 0, like the
        # simulation itself.
        virtual = bool(events) and all(e.at == e.wall for e in events)
        return _Source(sorted(events, key=lambda e: e.at), nodes, 0.0 if virtual else None, None, virtual)
    raise ConfigError(f"source: expected a LocalCluster, a Simulation or a list of Event, got {type(source).__name__}")


def _bounds(src: _Source, faults: List[Fault], start: Optional[float], end: Optional[float]) -> Tuple[float, float]:
    times = [e.at for e in src.events]
    times += [f.start for f in faults] + [f.end for f in faults if f.end is not None]
    origin = start if start is not None else src.origin if src.origin is not None else min(times, default=0.0)
    stop = end if end is not None else src.end if src.end is not None else max(times, default=origin)
    return origin, max(stop, origin)


def _spans_from(src: _Source, faults: List[Fault], origin: float, end: float) -> Dict[str, List[Span]]:
    """Each node's roles, replayed from its events (and from the "down" faults, if any)."""
    # Items: (at, order, node, kind, payload); explicit downs sort before events at the same
    # instant, ups before them too (a restart is logged just before its node's first events).
    items: List[Tuple[float, int, str, str, Any]] = []
    for f in faults:
        if f.kind == "down" and f.node is not None:
            items.append((f.start, 0, f.node, "_down", None))
            if f.end is not None:
                items.append((f.end, 0, f.node, "_up", None))
    for e in src.events:
        items.append((e.at, 1, e.node_id, e.kind, e))
    items.sort(key=lambda i: (i[0], i[1]))

    nodes = list(src.nodes)
    for i in items:
        if i[2] not in nodes:
            nodes.append(i[2])
    # Per node: the role, since when, the term at the span's start and now, the leader's token,
    # and whether a recorded kill (rather than a crash seen in its events) keeps it down.
    state: Dict[str, Dict[str, Any]] = {
        n: {"role": "follower", "since": origin, "span_term": 0, "term": 0, "token": None, "killed": False}
        for n in nodes
    }
    spans: Dict[str, List[Span]] = {n: [] for n in nodes}

    def switch(node: str, role: str, at: float, reason: Optional[str] = None, token: Optional[int] = None,
               again: bool = False) -> None:
        s = state[node]
        if role == s["role"] and not again:
            return
        at = min(max(at, origin), end)
        if at > s["since"]:
            spans[node].append(Span(node, s["role"], s["since"], at, s["span_term"], s["token"], reason))
        s.update(role=role, since=max(at, s["since"]), span_term=s["term"], token=token)

    for at, _, node, kind, e in items:
        s = state[node]
        if kind == "_down":
            s["killed"] = True
            switch(node, "down", at)
            continue
        if kind == "_up":
            s["killed"] = False
            switch(node, "follower", at)
            continue
        s["term"] = max(s["term"], e.term)
        if s["role"] == "down":
            if kind == "demoted" or s["killed"]:
                # The crash's own demotion (after a recorded kill: it names the leadership's end),
                # or events of a node known to be down.
                last = spans[node][-1] if spans[node] else None
                if kind == "demoted" and last is not None and last.role == "leader" and last.reason is None:
                    spans[node][-1] = Span(last.node, last.role, last.start, last.end, last.term,
                                           last.fencing_token, e.reason or "demoted")
                continue
            switch(node, "follower", at)  # heard from again after a crash or stop
        if kind == "demoted":
            # A crash or stop leaves the node down until it is heard from again (or restarted).
            role = "down" if e.reason in ("crashed", "stopped") else "follower"
            switch(node, role, at, reason=e.reason or "demoted")
        elif kind == "elected":
            switch(node, "leader", at, token=e.fencing_token)
        elif kind == "election_started":
            switch(node, "candidate", at, again=True)  # each election is a span of its own term
        elif kind == "term_changed" and s["role"] == "candidate" and e.term != s["span_term"]:
            switch(node, "follower", at)
        elif kind == "leader_changed" and s["role"] == "candidate" and e.leader not in (None, node):
            switch(node, "follower", at)

    for node in nodes:
        s = state[node]
        if end > s["since"]:
            spans[node].append(Span(node, s["role"], s["since"], end, s["span_term"], s["token"], None))
    return spans


def role_spans(
    source: Any,
    *,
    faults: FaultsArg = None,
    start: Optional[float] = None,
    end: Optional[float] = None,
) -> Dict[str, List[Span]]:
    """Each node's timeline as data: a list of `Span` per node id, in time order, covering
    `start` .. `end` (defaults: 0 for a Simulation, else the first event or fault; the
    simulation's `now`, a running cluster's present, else the last event or fault).

    The roles are replayed from the events: `election_started` makes a node candidate, `elected`
    leader (holding its lease), `demoted` follower again, or "down" for a demotion of reason
    "crashed" or "stopped" (until the node's next event); `term_changed` to a new term or
    `leader_changed` to another node ends a candidacy. A node that wins the vote is shown as
    candidate until it holds its lease (`elected`). Events do not say when a follower was killed
    or a node restarted; pass `faults` (a `FaultLog`) for those. Needs no matplotlib."""
    src = _read(source)
    flist = _as_faults(faults)
    origin, stop = _bounds(src, flist, start, end)
    return _spans_from(src, flist, origin, stop)


# ----- fault injection with a record -----------------------------------------------------------------


class FaultLog:
    """Injects faults into a `LocalCluster` or a `Simulation` and records each one with its time,
    for `timeline(source, faults=log)`. Times are the target's own: `time.monotonic()` for a
    cluster (the clock of its events' `at`), virtual seconds for a simulation.

    Each method does what the target does (`kill` is `LocalCluster.kill` or `Simulation.crash`,
    ...) and opens a span that the matching undo closes: `restart` ends "down", `resume` ends
    "paused", `heal` ends what it clears. `entries` lists them all."""

    def __init__(self, target: Union[LocalCluster, Simulation]) -> None:
        if not isinstance(target, (LocalCluster, Simulation)):
            raise ConfigError(f"target: expected a LocalCluster or a Simulation, got {type(target).__name__}")
        self.target = target
        self._entries: List[Fault] = []
        self._open: Dict[Tuple[Optional[str], str], int] = {}  # (node, kind) -> index of the open span
        self._lock = threading.Lock()

    @property
    def simulated(self) -> bool:
        """True for a Simulation (virtual time), False for a LocalCluster."""
        return isinstance(self.target, Simulation)

    def now(self) -> float:
        """The target's clock: `Simulation.now`, or `time.monotonic()` for a cluster."""
        if isinstance(self.target, Simulation):
            return self.target.now
        return time.monotonic()

    @property
    def entries(self) -> List[Fault]:
        """Every fault recorded so far (open ones have `end` None)."""
        with self._lock:
            return list(self._entries)

    @property
    def members(self) -> List[str]:
        """The target's node ids, in its order."""
        if isinstance(self.target, Simulation):
            return list(self.target.members)
        return list(self.target.nodes)

    def _check(self, node: str) -> str:
        if node not in self.members:
            raise ConfigError(f"{node!r} is not a member (members: {self.members})")
        return node

    def _begin(self, node: Optional[str], kind: str, text: str, at: Optional[float] = None, end: Optional[float] = None) -> None:
        with self._lock:
            self._end_locked(node, kind, at)
            self._entries.append(Fault(self.now() if at is None else at, end, node, text, kind))
            if end is None:
                self._open[(node, kind)] = len(self._entries) - 1

    def _end_locked(self, node: Optional[str], kind: str, at: Optional[float] = None) -> None:
        i = self._open.pop((node, kind), None)
        if i is not None:
            f = self._entries[i]
            self._entries[i] = Fault(f.start, self.now() if at is None else at, f.node, f.text, f.kind)

    def _end(self, node: Optional[str], *kinds: str) -> None:
        with self._lock:
            for kind in kinds:
                self._end_locked(node, kind)

    def is_open(self, node: Optional[str], kind: str) -> bool:
        """Whether a fault of `kind` on `node` is in force (as far as this log knows)."""
        with self._lock:
            return (node, kind) in self._open

    def note(self, text: str, node: Optional[str] = None, at: Optional[float] = None,
             until: Optional[float] = None) -> None:
        """Records a moment (a red line on the timeline; `at` defaults to now), or the interval
        `at` .. `until` (a hatched span), on `node`'s lane (None: every lane), without injecting
        anything."""
        with self._lock:
            t = self.now() if at is None else at
            self._entries.append(Fault(t, t if until is None else until, node, text, "note"))

    # -- the faults --

    def kill(self, node: str) -> None:
        """Crashes `node` (no hand-off); "down" until `restart`."""
        self._check(node)
        self._begin(node, "down", "killed")
        if isinstance(self.target, Simulation):
            self.target.crash(node)
        else:
            self.target.kill(node)

    def restart(self, node: str) -> None:
        """Restarts a killed node from its kept term and vote."""
        self._check(node)
        self._end(node, "down")
        if isinstance(self.target, Simulation):
            self.target.restart(node)
        else:
            self.target.restart(node)

    def pause(self, node: str, seconds: Optional[float] = None) -> None:
        """Freezes `node`'s engine, as SIGSTOP would, until `resume` (or for `seconds` of virtual
        time on a Simulation, which needs a length: None pauses it until `resume`)."""
        self._check(node)
        if isinstance(self.target, Simulation):
            now = self.target.now
            self.target.pause(node, 1e9 if seconds is None else seconds)
            self._begin(node, "paused", "paused", at=now, end=None if seconds is None else now + seconds)
        else:
            if seconds is not None:
                raise ConfigError("seconds: a LocalCluster node stays paused until resume(); pass no seconds")
            self._begin(node, "paused", "paused")
            self.target.pause(node)

    def resume(self, node: str) -> None:
        """Ends a pause."""
        self._check(node)
        self._end(node, "paused")
        self.target.resume(node)

    def isolate(self, node: str) -> None:
        """Cuts `node` off from every other node until `heal`."""
        self._check(node)
        self._begin(node, "isolated", "isolated")
        if isinstance(self.target, Simulation):
            self.target.isolate(node)
        else:
            self.target.nodes[node].faults.isolate()

    def partition(self, *groups: Sequence[str]) -> None:
        """Splits the group (`partition(["n1"], ["n2", "n3"])`) until `heal()`."""
        at = self.now()
        self.target.partition(*groups)
        named = [list(g) for g in groups]
        rest = [m for m in self.members if not any(m in g for g in named)]
        sides = named + ([rest] if rest else [])
        text = "partition " + " | ".join(" ".join(g) for g in sides)
        # Drawn on the nodes cut off from the majority (every node if no side has one).
        total = len(self.members)
        cut = [m for g in sides if 2 * len(g) <= total for m in g]
        if len(cut) == total or not cut:
            cut = list(self.members)
        for m in self.members:
            if m in cut:
                self._begin(m, "partition", text, at=at)
            else:
                self._end(m, "partition")

    def drop(self, rate: float, node: Optional[str] = None) -> None:
        """Drops a fraction `rate` of messages: those `node` sends and receives on a cluster
        (every node's if None); every message on a Simulation, whose drop rate is global (pass
        no node). A rate of 0 ends it."""
        nodes: List[Optional[str]]
        if isinstance(self.target, Simulation):
            if node is not None:
                raise ConfigError("node: a Simulation's drop rate is global; call drop(rate) without a node")
            self.target.set_drop_rate(rate)
            nodes = [None]
        else:
            targets = self.members if node is None else [self._check(node)]
            for n in targets:
                if self.target.nodes[n].role != "stopped":
                    self.target.nodes[n].faults.drop(rate)
            nodes = list(targets)
        for one in nodes:
            if rate > 0:
                self._begin(one, "drop", f"drop {rate:.0%}")
            else:
                self._end(one, "drop")

    def clock_rate(self, node: str, factor: float) -> None:
        """Makes `node`'s clock run `factor` times as fast; 1.0 ends it."""
        self._check(node)
        if isinstance(self.target, Simulation):
            self.target.set_clock_rate(node, factor)
        else:
            self.target.nodes[node].faults.clock_rate(factor)
        if factor == 1.0:
            self._end(node, "clock")
        else:
            self._begin(node, "clock", f"clock x{factor:g}")

    def heal(self, node: Optional[str] = None) -> None:
        """Undoes faults (a killed node stays down: `restart` it).

        - `heal()`: everything this log injected: partitions, isolation, drop, clock rates and
          pauses, on every node.
        - `heal(node)`: that node's pause, isolation, drop and clock rate. On a Simulation, which
          heals links only as a whole, an isolation or partition is lifted for every node."""
        members = self.members if node is None else [self._check(node)]
        sim = self.target if isinstance(self.target, Simulation) else None
        for n in members:
            if self.is_open(n, "paused"):
                self.resume(n)
            if self.is_open(n, "clock"):
                self.clock_rate(n, 1.0)
        if sim is not None:
            if self.is_open(None, "drop") and node is None:
                self.drop(0.0)
            if node is None or self.is_open(node, "isolated") or self.is_open(node, "partition"):
                sim.heal()
                for m in self.members:
                    self._end(m, "isolated", "partition")
            return
        cluster = self.target
        assert isinstance(cluster, LocalCluster)
        if node is None:
            cluster.heal()
        for n in members:
            if cluster.nodes[n].role != "stopped":
                cluster.nodes[n].faults.heal()
            self._end(n, "isolated", "partition", "drop")

    def resign(self, node: str) -> bool:
        """A leader steps down and hands off (`Node.resign`, `Simulation.resign`); False if it did
        not lead."""
        self._check(node)
        if isinstance(self.target, Simulation):
            done = self.target.resign(node)
        else:
            done = self.target.nodes[node].resign()
        if done:
            self.note("resigned", node)
        return done

    def force_timeout(self, node: str) -> str:
        """Makes `node`'s election timeout fire now, as far as the algorithm allows; returns what
        was done, in words. The same on a LocalCluster and a Simulation:

        - `node` leads: it resigns (`resign`): it steps down and hands leadership to the best
          peer, which starts an election at once.
        - another node leads: that leader's `transfer_leadership(node)`, Raft's TimeoutNow: it
          gives up its lease and `node` times out at once and campaigns (and wins, as the old
          leader stays silent). Under bully and ring the leader steps aside instead, and the
          best-ranked live member takes over.
        - no leader: on a Simulation, `Simulation.campaign(node)`: its timeout fires and it
          campaigns now (unless, under raft, it promised silence to a leader it heard from less
          than a minimum election timeout ago). On a LocalCluster nothing is done (a live node has
          no campaign call); its own timer fires soon enough."""
        self._check(node)
        if isinstance(self.target, Simulation):
            return self._force_timeout_simulated(self.target, node)
        cluster = self.target
        if cluster.nodes[node].is_leader:
            self.note("timeout: resign", node)
            cluster.nodes[node].resign()
            return f"{node} resigned"
        leader = cluster.leader()
        if leader is None:
            return "no leader to hand off from"
        self.note(f"timeout (TimeoutNow from {leader})", node)
        cluster.nodes[leader].transfer_leadership(node, timeout=2.0)
        return f"{leader} handed leadership to {node}"

    def _force_timeout_simulated(self, sim: Simulation, node: str) -> str:
        if sim.status(node)["role"] == "leader":
            self.note("timeout: resign", node)
            sim.resign(node)
            return f"{node} resigned"
        leader = sim.leader()
        if leader is not None and leader != node:
            self.note(f"timeout (TimeoutNow from {leader})", node)
            sim.transfer_leadership(leader, node)
            return f"{leader} handed leadership to {node}"
        before = {(m.sender, m.receiver, m.kind, m.sent_at) for m in sim.in_flight()}
        sim.campaign(node)
        asked = [m for m in sim.in_flight() if m.sender == node and (m.sender, m.receiver, m.kind, m.sent_at) not in before]
        if not asked:
            return f"{node}'s timeout fired, but it does not campaign (it promised a recent leader silence)"
        self.note("timeout (campaign)", node)
        return f"{node}'s timeout fired: {asked[0].kind} to " + ", ".join(m.receiver for m in asked)


# ----- drawing -----------------------------------------------------------------------------------


def _new_figure(figsize: Tuple[float, float]) -> "Figure":
    _require("matplotlib")
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def timeline(
    source: Any,
    *,
    faults: FaultsArg = None,
    start: Optional[float] = None,
    end: Optional[float] = None,
    window: Optional[float] = None,
    title: Optional[str] = None,
    ax: Optional["Axes"] = None,
    annotate: bool = True,
) -> "Figure":
    """A swimlane per node: follower, candidate, leader and down as coloured spans (see
    `role_spans` for how they are replayed from the events), each leadership labelled with its
    term and fencing token, a dotted line and the new leader's name at each `elected`, a cross
    with the reason at each demotion, and the injected faults (hatched spans and red marks,
    labelled).

    `source`: a `LocalCluster` (times on the monotonic clock, shown from the first event or
    fault), a `Simulation` (virtual seconds from 0) or a list of `Event`. `faults`: a `FaultLog`,
    or `Fault`s, `(at, node, text)` instants and `(start, end, node, text)` spans (node None:
    every lane). `start`/`end` bound the time shown (on the source's clock); `window` shows only
    the last `window` seconds. `ax`: draw into these axes instead of a new figure. `annotate`:
    False leaves out the text labels. Returns the Figure. ImportError without matplotlib."""
    _require("matplotlib")
    from matplotlib.patches import Patch, Rectangle

    src = _read(source)
    flist = _as_faults(faults)
    origin, stop = _bounds(src, flist, start, end)
    spans = _spans_from(src, flist, origin, stop)
    nodes = list(spans)
    lane = {n: len(nodes) - 1 - i for i, n in enumerate(nodes)}  # the first node on top

    if ax is None:
        fig = _new_figure((10.0, 1.4 + 0.6 * max(len(nodes), 1)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    shift = 0.0 if src.virtual else origin
    lo = (max(origin, stop - window) if window is not None else origin) - shift
    if window is None and start is None and not src.virtual:
        lo -= 0.02 * (stop - origin)  # a margin, so that the first election shows
    hi = stop - shift
    if hi <= lo:
        hi = lo + 1.0
    width = hi - lo

    for node, node_spans in spans.items():
        y = lane[node]
        for s in node_spans:
            if s.end <= lo + shift:
                continue
            drawn = s.end - s.start
            if s.role == "candidate":
                drawn = max(drawn, 0.004 * width)  # an election of a few ms stays visible
            r = Rectangle(
                (s.start - shift, y - _LANE_HEIGHT / 2), drawn, _LANE_HEIGHT,
                facecolor=ROLE_COLORS.get(s.role, "#dddddd"), edgecolor="none", zorder=1,
            )
            r.set_gid(f"{node}|{s.role}|{s.term}")
            ax.add_patch(r)
            if annotate and s.role == "leader" and (s.end - s.start) > 0.06 * width:
                label = f"term {s.term}" + (f", token {s.fencing_token}" if s.fencing_token is not None else "")
                ax.text(max(s.start - shift, lo) + 0.005 * width, y, label, va="center", ha="left",
                        fontsize=8, color="white", zorder=4, clip_on=True)
            elif annotate and s.role == "candidate" and (s.end - s.start) > 0.05 * width:
                ax.text(max(s.start - shift, lo) + 0.005 * width, y, f"t{s.term}", va="center", ha="left",
                        fontsize=7, color="black", zorder=4, clip_on=True)
            if s.reason is not None:
                ax.plot([s.end - shift], [y + _LANE_HEIGHT / 2], marker="x", color="black", markersize=5,
                        zorder=5, clip_on=True)
                if annotate:
                    near_end = s.end - shift > hi - 0.08 * width
                    ax.text(s.end - shift + (-0.004 if near_end else 0.004) * width, y + _LANE_HEIGHT / 2 + 0.03,
                            s.reason, fontsize=7, ha="right" if near_end else "left", va="bottom", zorder=5,
                            clip_on=True)

    # Leader changes: a dotted line across every lane and the new leader's name at the top.
    top = len(nodes) - 1 + _LANE_HEIGHT / 2
    for e in src.events:
        if e.kind == "elected" and lo + shift <= e.at <= stop:
            x = e.at - shift
            ax.axvline(x, color=ROLE_COLORS["leader"], linestyle=":", linewidth=1, zorder=2)
            if annotate:
                ax.text(x, top + 0.3, f"{e.node_id} leads", fontsize=7, ha="center", va="bottom",
                        color="#1d6f65", clip_on=False)

    # Faults: hatched spans, marks for instants, labels in red.
    def lanes_of(f: Fault) -> List[str]:
        return nodes if f.node is None else ([f.node] if f.node in lane else [])

    labelled: Set[Tuple[float, str]] = set()
    last_label: Dict[str, Tuple[float, int]] = {}  # per lane: x and level of the last label
    for f in sorted(flist, key=lambda f: f.start):
        f_end = stop if f.end is None else f.end
        if f_end < lo + shift or f.start > stop:
            continue
        for node in lanes_of(f):
            y = lane[node]
            if f_end > f.start:
                if f.kind != "down":  # a down span is the grey role already
                    h = Rectangle(
                        (f.start - shift, y - _LANE_HEIGHT / 2), f_end - f.start, _LANE_HEIGHT,
                        facecolor="none", edgecolor=_FAULT_COLOR, hatch="///", linewidth=0.8, zorder=3,
                    )
                    h.set_gid(f"fault|{node}|{f.kind}")
                    ax.add_patch(h)
            else:
                ax.plot([f.start - shift] * 2, [y - _LANE_HEIGHT / 2, y + _LANE_HEIGHT / 2],
                        color=_FAULT_COLOR, linewidth=1.5, zorder=5, gid=f"fault|{node}|{f.kind}")
            key = (f.start, f.text)  # a fault of several lanes (a partition) is labelled once
            if annotate and key not in labelled:
                labelled.add(key)
                x = max(f.start - shift, lo)
                # Labels close together on one lane alternate between two heights.
                prev = last_label.get(node)
                level = 1 - prev[1] if prev is not None and x - prev[0] < 0.12 * width else 0
                last_label[node] = (x, level)
                ax.text(x, y - _LANE_HEIGHT / 2 - 0.03 - 0.16 * level, f.text, fontsize=7,
                        color=_FAULT_COLOR, ha="left", va="top", zorder=5, clip_on=True)

    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.75, len(nodes) - 1 + _LANE_HEIGHT / 2 + 0.55)
    ax.set_yticks([lane[n] for n in nodes])
    ax.set_yticklabels(nodes)
    if src.virtual:
        ax.set_xlabel("virtual seconds")
    else:
        ax.set_xlabel("seconds since " + ("start" if start is not None else "the first event or fault"))
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    handles = [Patch(facecolor=ROLE_COLORS[r], label=r) for r in ("follower", "candidate", "leader", "down")]
    handles.append(Patch(facecolor="none", edgecolor=_FAULT_COLOR, hatch="///", label="fault"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(nodes) < 4 else -0.15),
              ncol=len(handles), frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10, pad=14)
    return fig


#: The colour of each kind of message in flight (`network`, `LiveView`): votes in the
#: candidate's colours, heartbeats in the leader's, announcements of a winner in dark green.
MESSAGE_COLORS: Dict[str, str] = {
    "pre_vote": "#f4a259",
    "pre_vote_response": "#f4a259",
    "vote": "#e76f51",
    "vote_response": "#e76f51",
    "heartbeat": "#2a9d8f",
    "heartbeat_response": "#2a9d8f",
    "timeout_now": "#8e44ad",
    "election": "#e76f51",
    "ok": "#e76f51",
    "coordinator": "#1d6f65",
    "alive": "#2a9d8f",
    "alive_ack": "#2a9d8f",
    "ring_election": "#e76f51",
    "ring_coordinator": "#1d6f65",
    "ring_ack": "#7f8c8d",
    "ring_alive": "#2a9d8f",
    "ring_alive_ack": "#2a9d8f",
}
# Answers are drawn hollow, requests filled.
_ANSWERS = {"pre_vote_response", "vote_response", "heartbeat_response", "ok", "alive_ack", "ring_ack", "ring_alive_ack"}
_NODE_RADIUS = 0.2


def _ring_positions(members: Sequence[str]) -> Dict[str, Tuple[float, float]]:
    """The nodes on a circle of radius 1, the first at the top, then clockwise (as RaftScope)."""
    n = max(len(members), 1)
    return {
        m: (math.cos(math.pi / 2 - 2 * math.pi * i / n), math.sin(math.pi / 2 - 2 * math.pi * i / n))
        for i, m in enumerate(members)
    }


def _message_xy(
    start: Tuple[float, float], end: Tuple[float, float], progress: float
) -> Tuple[float, float, float]:
    """Where a message `progress` of the way from `start` to `end` is drawn, edge to edge of the
    two nodes' circles and a little to the right of the line (so that a request and its answer
    pass side by side), and the direction it travels in degrees."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    travel = max(length - 2 * _NODE_RADIUS, 0.0)
    along = _NODE_RADIUS + progress * travel
    side = 0.045
    x = start[0] + ux * along + uy * side
    y = start[1] + uy * along - ux * side
    return x, y, math.degrees(math.atan2(uy, ux))


@dataclass(frozen=True)
class _NodeLook:
    role: str  # a ROLE_COLORS key
    term: int
    paused: bool = False


def _draw_network(
    ax: "Axes",
    members: Sequence[str],
    looks: Mapping[str, _NodeLook],
    messages: Sequence[Any],
    now: float,
    title: Optional[str],
) -> None:
    """The nodes on a circle, coloured by role, and each message in flight as a triangle between
    its sender and receiver, placed by its progress at `now` and pointing the way it goes.
    Every message is one artist with the gid "msg|sender|receiver|kind"; every node a circle
    with the gid "node|id"."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    pos = _ring_positions(members)
    for m in members:
        look = looks.get(m, _NodeLook("follower", 0))
        x, y = pos[m]
        c = Circle((x, y), _NODE_RADIUS, facecolor=ROLE_COLORS.get(look.role, "#dddddd"),
                   edgecolor="#1d3557" if look.role == "leader" else "#555555",
                   linewidth=2.5 if look.role == "leader" else 1.0,
                   linestyle="--" if look.paused else "-", zorder=2)
        c.set_gid(f"node|{m}")
        ax.add_patch(c)
        dark = look.role in ("leader", "down")
        label = m if look.role == "down" else f"{m}\nterm {look.term}"
        ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=3,
                color="white" if dark else "black")
        if look.paused or look.role == "down":
            ax.text(x, y - _NODE_RADIUS - 0.04, "paused" if look.paused else "down", ha="center", va="top",
                    fontsize=7, color=_FAULT_COLOR, zorder=3)
    kinds: Dict[str, bool] = {}
    for msg in messages:
        if msg.sender not in pos or msg.receiver not in pos:
            continue
        x, y, angle = _message_xy(pos[msg.sender], pos[msg.receiver], msg.progress(now))
        color = MESSAGE_COLORS.get(msg.kind, "#333333")
        answer = msg.kind in _ANSWERS
        # A triangle marker points up at angle 0: turn it to point the way the message goes.
        ax.plot([x], [y], linestyle="none", marker=(3, 0, angle - 90), markersize=9,
                markerfacecolor="white" if answer else color, markeredgecolor=color, markeredgewidth=1.5,
                alpha=0.35 if msg.doomed else 1.0, zorder=4, gid=f"msg|{msg.sender}|{msg.receiver}|{msg.kind}")
        kinds.setdefault(msg.kind, answer)
    if kinds:
        handles = [
            Line2D([], [], linestyle="none", marker="^", markersize=7, markeredgecolor=MESSAGE_COLORS.get(k, "#333"),
                   markerfacecolor="white" if answer else MESSAGE_COLORS.get(k, "#333"), label=k.replace("_", " "))
            for k, answer in sorted(kinds.items())
        ]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False,
                  fontsize=7)
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)


def _present_looks(sim: Simulation) -> Dict[str, _NodeLook]:
    looks = {}
    for m in sim.members:
        st = sim.status(m)
        role = st["role"]
        role = "down" if role == "stopped" else "candidate" if role == "pre_candidate" else role
        looks[m] = _NodeLook(role, int(st["term"]), bool(st["paused"]))
    return looks


def network(sim: Simulation, *, ax: Optional["Axes"] = None, title: Optional[str] = None) -> "Figure":
    """The simulation now, as RaftScope draws it: the nodes on a circle, coloured by role
    (`ROLE_COLORS`; a pre-candidate counts as candidate, a crashed node is "down", a paused one
    has a dashed border) with their terms, and every message in flight (`Simulation.in_flight()`)
    as a triangle on its way from sender to receiver, placed by its progress (now - sent_at) /
    (deliver_at - sent_at) and pointing the way it goes: filled for a request, hollow for an
    answer, coloured by kind (`MESSAGE_COLORS`), faded if it is doomed (the link is cut or the
    receiver down). Returns the Figure.

    Only a Simulation has this view: a `LocalCluster`'s messages travel over real sockets, where
    nothing records them, so this raises ConfigError for one rather than draw a guess.
    ImportError without matplotlib."""
    _require("matplotlib")
    if not isinstance(sim, Simulation):
        raise ConfigError(
            f"sim: expected a Simulation, got {type(sim).__name__} (only the simulator knows its messages in flight)"
        )
    if ax is None:
        fig = _new_figure((4.2, 4.4))
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    messages = sim.in_flight()
    _draw_network(ax, sim.members, _present_looks(sim), messages, sim.now,
                  title if title is not None else f"{sim.now:.4f} s: {len(messages)} in flight")
    return fig


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


# ----- the live view ---------------------------------------------------------------------------------


class LiveView:
    """An ipywidgets view of a running `LocalCluster` or a `Simulation`: the timeline, each
    node's role, and buttons per node.

    The buttons, one row per node (each also a method, e.g. `view.kill("n1")`):

    - kill, restart: crash the node, start it again from its kept state;
    - pause: freeze its engine (as SIGSTOP); heal resumes it;
    - isolate: cut it off from every other node; heal rejoins it (on a Simulation, heal lifts
      every isolation and partition: the simulator heals links only as a whole);
    - heal: undo the node's pause, isolation, drop and clock rate;
    - timeout: force its election timeout, as `FaultLog.force_timeout` does: a leader resigns
      and hands off, a follower gets the leader's TimeoutNow (`transfer_leadership`), so it
      campaigns at once; with no leader, a simulated node campaigns now (`Simulation.campaign`).

    On a LocalCluster the picture redraws every `interval` seconds once displayed (every 2 s when
    nothing changed for a while; the "live" toggle stops it), showing the last `window` seconds.
    On a Simulation, play runs virtual time at `speed` virtual seconds per wall second (the
    slider), pause stops, step advances `step_seconds`; the time slider replays: it moves a
    cursor through the past and the roles shown are those at the cursor.

    On a Simulation the picture also has a second panel, drawn as `network` draws it (RaftScope's
    picture): the nodes on a circle coloured by role, and every message in flight
    (`Simulation.in_flight()`) as a triangle moving from sender to receiver, placed by its
    progress and coloured by kind. Messages move visibly when the latency is a fair part of the
    election timeout and time runs slowly: e.g. `Simulation(5, latency=(0.01, 0.02))` with
    `speed=0.02` and `step_seconds=0.002`. While replaying the past the panel shows the roles at
    the cursor but no messages: the simulator keeps no record of past messages, and the view does
    not make one up. A LocalCluster has no such panel: its messages travel over real sockets and
    nothing records them in flight.

    `view.faults` is the `FaultLog` of everything the buttons did (pass your own `faults=` to
    share one with your code). `view.widget` is the widget to display (showing `view` in a
    notebook does that); `view.figure` is the matplotlib Figure drawn last, and
    `view.shown_messages` the `InFlight` messages it shows (empty for a LocalCluster and during a
    replay). `close()` stops its threads. ImportError without ipywidgets or matplotlib."""

    ACTIONS: Tuple[str, ...] = ("kill", "restart", "pause", "isolate", "heal", "timeout")

    def __init__(
        self,
        target: Union[LocalCluster, Simulation],
        *,
        faults: Optional[FaultLog] = None,
        interval: float = 0.3,
        window: Optional[float] = 20.0,
        speed: float = 0.5,
        step_seconds: float = 0.05,
    ) -> None:
        widgets = _require("ipywidgets")
        _require("matplotlib")
        if not isinstance(target, (LocalCluster, Simulation)):
            raise ConfigError(f"target: expected a LocalCluster or a Simulation, got {type(target).__name__}")
        self.target = target
        self.faults = faults if faults is not None else FaultLog(target)
        self.interval = float(interval)
        self.window = window
        self.step_seconds = float(step_seconds)
        self.simulated = isinstance(target, Simulation)
        # One lock for the target (a Simulation must not run and take a fault at once) and the drawing.
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._playing = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._cursor: Optional[float] = None  # replay: the time shown, None for the present
        self._setting_slider = False
        self._last_change = time.monotonic()
        self._last_seen: Tuple[int, int] = (-1, -1)
        self.draws = 0
        self.errors: List[str] = []
        self.figure: Optional["Figure"] = None
        self.shown_messages: List[InFlight] = []

        members = self.faults.members
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%"))
        self.roles = widgets.HTML()
        self.message = widgets.HTML()
        self.buttons: Dict[str, Dict[str, Any]] = {}
        rows = []
        for node in members:
            row: Dict[str, Any] = {}
            for action in self.ACTIONS:
                b = widgets.Button(description=action, layout=widgets.Layout(width="auto"),
                                   tooltip=f"{action} {node}")
                b.on_click(self._clicker(action, node))
                row[action] = b
            self.buttons[node] = row
            rows.append(widgets.HBox([widgets.Label(node, layout=widgets.Layout(width="3em"))] + list(row.values())))
        controls: List[Any] = []
        if self.simulated:
            self.play_button = widgets.Button(description="play", icon="play")
            self.pause_button = widgets.Button(description="pause", icon="pause")
            self.step_button = widgets.Button(description=f"step {self.step_seconds:g} s", icon="step-forward")
            self.speed_slider = widgets.FloatLogSlider(value=speed, base=10, min=-3, max=1, step=0.1,
                                                       description="speed", readout_format=".3f")
            self.time_slider = widgets.FloatSlider(value=self._now(), min=0.0, max=max(self._now(), 1e-3),
                                                   step=0.001, description="time", readout_format=".3f",
                                                   continuous_update=True, layout=widgets.Layout(width="60%"))
            self.play_button.on_click(lambda _: self.play())
            self.pause_button.on_click(lambda _: self.pause_time())
            self.step_button.on_click(lambda _: self.step())
            self.time_slider.observe(self._on_time, names="value")
            controls = [widgets.HBox([self.play_button, self.pause_button, self.step_button, self.speed_slider]),
                        self.time_slider]
        else:
            self.live_toggle = widgets.ToggleButton(value=True, description="live", icon="refresh")
            controls = [self.live_toggle]
        self.widget = widgets.VBox(controls + [self.image, self.roles] + rows + [self.message])
        self.refresh()

    # ----- the button actions (each is also what a click does) -----

    def _clicker(self, action: str, node: str) -> Callable[[Any], None]:
        return lambda _button: self.act(action, node)

    def act(self, action: str, node: str) -> None:
        """Does one button's action on `node` (the same as clicking it); errors are shown in the
        view's message line and kept in `errors`, never raised into the notebook's event loop."""
        if action not in self.ACTIONS:
            raise ConfigError(f"action: one of {self.ACTIONS}, got {action!r}")
        try:
            with self._lock:
                text = getattr(self, action)(node)
            self._say(text or f"{action} {node}")
        except Exception as e:  # noqa: BLE001 - a widget callback must not raise into the kernel
            self.errors.append(f"{action} {node}: {e}")
            self._say(f"{action} {node} failed: {e}", error=True)
        self._last_change = time.monotonic()
        self.refresh()

    def kill(self, node: str) -> None:
        """The kill button: crashes `node` (`FaultLog.kill`)."""
        with self._lock:
            self.faults.kill(node)

    def restart(self, node: str) -> None:
        """The restart button: starts a killed `node` again from its kept state."""
        with self._lock:
            self.faults.restart(node)

    def pause(self, node: str) -> None:
        """The pause button: freezes `node`'s engine until heal."""
        with self._lock:
            self.faults.pause(node)

    def isolate(self, node: str) -> None:
        """The isolate button: cuts `node` off from every other node until heal."""
        with self._lock:
            self.faults.isolate(node)

    def heal(self, node: str) -> None:
        """The heal button: undoes `node`'s pause, isolation, drop and clock rate
        (`FaultLog.heal(node)`)."""
        with self._lock:
            self.faults.heal(node)

    def timeout(self, node: str) -> str:
        """The timeout button: fires `node`'s election timeout now (`FaultLog.force_timeout`);
        returns what was done."""
        with self._lock:
            return self.faults.force_timeout(node)

    # ----- virtual time (Simulation) -----

    def _sim(self) -> Simulation:
        if not isinstance(self.target, Simulation):
            raise ConfigError("this view watches a LocalCluster: virtual time is for a Simulation")
        return self.target

    def step(self, seconds: Optional[float] = None) -> None:
        """Advances the simulation by `seconds` (default `step_seconds`) of virtual time."""
        sim = self._sim()
        with self._lock:
            sim.run_for(self.step_seconds if seconds is None else seconds)
        self._cursor = None
        self._last_change = time.monotonic()
        self.refresh()

    def play(self) -> None:
        """Runs virtual time at the speed slider's rate until `pause_time()`."""
        self._sim()
        self._cursor = None
        self._playing.set()
        self.start()

    def pause_time(self) -> None:
        """Stops playing (the simulation keeps its state)."""
        self._playing.clear()

    @property
    def playing(self) -> bool:
        """True while virtual time plays in the background."""
        return self._playing.is_set()

    def show_time(self, at: Optional[float]) -> None:
        """Replay: shows the timeline up to `at` (virtual seconds) and the roles then; None
        returns to the present."""
        self._cursor = None if at is None else float(at)
        self.refresh()

    def _on_time(self, change: Dict[str, Any]) -> None:
        if self._setting_slider:
            return
        self.pause_time()
        value = float(change["new"])
        self.show_time(None if value >= self._now() - 1e-9 else value)

    # ----- drawing -----

    def _now(self) -> float:
        return self.faults.now()

    def _say(self, text: str, error: bool = False) -> None:
        color = _FAULT_COLOR if error else "#333"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _roles_html(self, spans: Dict[str, List[Span]], at: float) -> str:
        cells = []
        for node, node_spans in spans.items():
            role = next((s for s in node_spans if s.start <= at < s.end), node_spans[-1] if node_spans else None)
            name = role.role if role is not None else "?"
            term = role.term if role is not None else 0
            cells.append(
                f'<span style="background:{ROLE_COLORS.get(name, "#ddd")};padding:2px 6px;margin-right:6px;'
                f'border-radius:3px">{html.escape(node)}: {name}, term {term}</span>'
            )
        return "".join(cells)

    def refresh(self) -> None:
        """Redraws the timeline now (the background thread calls this a few times a second)."""
        with self._lock:
            try:
                if self.simulated:
                    sim = self._sim()
                    now = sim.now
                    at = now if self._cursor is None else min(self._cursor, now)
                    events = [e for e in sim.events if e.at <= at]
                    faults = [f for f in self.faults.entries if f.start <= at]
                    faults = [Fault(f.start, f.end if f.end is not None and f.end <= at else None, f.node, f.text, f.kind)
                              for f in faults]
                    src: Any = _SimAt(events, sim.members, at)
                    end = at
                    title = f"virtual time {now:.3f} s" + (f", replaying {at:.3f} s" if self._cursor is not None else "")
                else:
                    src = self.target
                    faults = self.faults.entries
                    end = None
                    title = "LocalCluster" + ("" if self.target.running else " (stopped)")  # type: ignore[union-attr]
                spans = role_spans(src, faults=faults, end=end)
                if self.simulated:
                    fig = _new_figure((13.0, 1.4 + 0.6 * max(len(spans), 3)))
                    grid = fig.add_gridspec(1, 2, width_ratios=[3.0, 1.1])
                    timeline(src, faults=faults, end=end, window=self.window, title=title,
                             ax=fig.add_subplot(grid[0]))
                    self._draw_messages(fig.add_subplot(grid[1]), spans, at)
                else:
                    fig = timeline(src, faults=faults, end=end, window=self.window, title=title)
                self.figure = fig
                buf = io.BytesIO()
                fig.savefig(buf, format="png", dpi=72)
                self.image.value = buf.getvalue()
                last = max((s[-1].end for s in spans.values() if s), default=0.0)
                self.roles.value = self._roles_html(spans, last - 1e-9)
                if self.simulated:
                    self._setting_slider = True
                    try:
                        self.time_slider.max = max(self._now(), 1e-3)
                        if self._cursor is None:
                            self.time_slider.value = self._now()
                    finally:
                        self._setting_slider = False
                self.draws += 1
            except Exception as e:  # noqa: BLE001 - a redraw must never kill the view
                self.errors.append(f"refresh: {e}")
                self._say(f"redraw failed: {e}", error=True)

    def _draw_messages(self, ax: "Axes", spans: Dict[str, List[Span]], at: float) -> None:
        """The network panel: the present with its messages in flight, or the roles at a replayed
        moment (with no messages: none are recorded)."""
        sim = self._sim()
        if self._cursor is None or at >= sim.now:
            messages = sim.in_flight()
            looks = _present_looks(sim)
            title = f"{len(messages)} message{'' if len(messages) == 1 else 's'} in flight"
        else:
            messages = []
            looks = {}
            for node, node_spans in spans.items():
                span = next((x for x in node_spans if x.start <= at < x.end), node_spans[-1] if node_spans else None)
                if span is not None:
                    looks[node] = _NodeLook(span.role, span.term)
            title = "replay: messages in flight are\nshown only at the present"
        self.shown_messages = list(messages)
        _draw_network(ax, sim.members, looks, messages, sim.now, title)

    # ----- the background thread -----

    def start(self) -> None:
        """Starts the background thread (redraws a running cluster; plays a simulation). Showing
        the view in a notebook starts it."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="quorate-liveview", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops the background thread (waits at most 2 s) and stops playing; the widgets stay."""
        self._playing.clear()
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(2.0)

    def _changed(self) -> bool:
        if isinstance(self.target, LocalCluster):
            seen = (len(self.target.history), len(self.faults.entries))
        else:
            seen = (len(self.target.events), len(self.faults.entries))
        if seen != self._last_seen:
            self._last_seen = seen
            self._last_change = time.monotonic()
        return time.monotonic() - self._last_change < 5.0

    def _run(self) -> None:
        last_draw = 0.0
        while not self._stop.wait(self.interval):
            if self.simulated:
                if not self._playing.is_set():
                    continue
                with self._lock:
                    self._sim().run_for(self.interval * float(self.speed_slider.value))
                self.refresh()
                continue
            if not self.target.running:  # type: ignore[union-attr]
                self.refresh()
                return
            if not self.live_toggle.value:
                continue
            now = time.monotonic()
            if self._changed() or now - last_draw >= 2.0:
                self.refresh()
                last_draw = now

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]
        if not self.simulated:
            self.start()

    def __repr__(self) -> str:
        kind = "Simulation" if self.simulated else "LocalCluster"
        return f"<LiveView of a {kind}, {len(self.buttons)} nodes, {self.draws} draws>"
