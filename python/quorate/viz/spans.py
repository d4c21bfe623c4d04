"""The data behind a timeline: each node's role spans, replayed from the events (and the faults)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from .._core import Event
from ..errors import ConfigError
from ..faults import Fault, FaultLog
from ..protocol import Cluster
from ._base import _natural

__all__ = ["Span", "role_spans", "FaultsArg"]


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


class _SimAt:
    """A cluster in virtual time seen up to a moment (the LiveView's replay): its events until then."""

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
    if isinstance(source, Cluster):
        # Virtual time is shown from 0, like the simulation itself; a cluster on the host's clock
        # from its first event. A running cluster is drawn up to its present.
        virtual = source.virtual_time
        end = source.now if source.running else None
        return _Source(list(source.events), list(source.members), 0.0 if virtual else None, end, virtual)
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
