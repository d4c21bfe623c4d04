"""Prometheus metrics for quorate nodes, through the official `prometheus_client` library.

Needs the `prometheus` extra: `pip install 'quorate[prometheus]'`. Importing this module without
`prometheus_client` raises ImportError saying so.

Add a node's metrics to the `/metrics` a service already serves:

```python
from prometheus_client import REGISTRY
from quorate.metrics import QuorateCollector

REGISTRY.register(QuorateCollector(node))
```

or serve them alone with `exposition(node)` (what `Node.metrics_text()` returns, and what the
CLI's `--status-bind` serves on `/metrics`). Every value is read from `Node.status()` at scrape
time: the collector keeps no state of its own, so it is always as fresh as the node.

Names follow the Prometheus conventions: a `quorate_` prefix, `_total` on counters, `_seconds`
on durations (base units: seconds, never milliseconds), and a `node` label on every sample, so
that the nodes of a `LocalCluster` (or several nodes given together) are told apart.

| name | type | labels besides `node`; meaning |
| --- | --- | --- |
| `quorate_node_info` | gauge | `address`, `algorithm`; always 1 |
| `quorate_term` | gauge | the node's current term |
| `quorate_is_leader` | gauge | 1 while it leads AND holds its lease |
| `quorate_role` | gauge | `role`; 1 for the current role, 0 for the others |
| `quorate_healthy` | gauge | 1 while `status().health == "ok"` |
| `quorate_health` | gauge | `state` (ok, degraded, failed, stopped); 1 for the current one |
| `quorate_lease_remaining_seconds` | gauge | seconds left on the leader's lease (0 without one) |
| `quorate_last_heartbeat_age_seconds` | gauge | seconds since a leader was last heard (absent before) |
| `quorate_elections_started_total` | counter | elections (campaigns) this node started |
| `quorate_elections_won_total` | counter | elections this node won |
| `quorate_leader_changes_total` | counter | times the leader this node knows changed |
| `quorate_messages_sent_total` | counter | messages sent to peers |
| `quorate_messages_received_total` | counter | messages received from peers |
| `quorate_messages_dropped_total` | counter | messages dropped (full queues, injected faults) |
| `quorate_messages_rejected_total` | counter | `reason`; frames and handshakes refused, by reason |
| `quorate_peer_connected` | gauge | `peer`; 1 while the connection to the peer is up |
| `quorate_peer_last_contact_age_seconds` | gauge | `peer`; seconds since the peer was last heard |
| `quorate_peer_round_trip_seconds` | gauge | `peer`; smoothed heartbeat round trip, measured by a raft leader (absent otherwise) |
| `quorate_votes_total` | counter | `kind` (vote, pre_vote), `answer` (granted, stale_term, already_voted, leader_known, in_lease); vote requests this node answered |
| `quorate_fault_active` | gauge | `fault`; 1 for each injected fault in force |
| `quorate_warnings` | gauge | how many `status().warnings` the node reports now |
| `quorate_leadership_tenure_seconds` | histogram | lengths of this node's past leaderships |
| `quorate_leaderless_seconds` | histogram | gaps without a known leader as this node saw them (failover time) |
| `quorate_leading_for_seconds` | gauge | length of the current leadership (0 unless leading) |
| `quorate_elections_last_minute` | gauge | elections this node started in the last 60 s |
| `quorate_term_changes_total` | counter | times this node's term changed |

Counters count from the node's construction (a restart of the same `Node` object keeps them; a
new process starts again at 0, which Prometheus's `rate()` handles as a counter reset).
`quorate_messages_rejected_total` carries a sample for every known reason (`REJECTION_REASONS`),
0 until it happens, so that `rate()` and alerts work from the first scrape; summed over `reason`
it equals `status().messages_rejected`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Sequence, Tuple, Union

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as _missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "quorate.metrics needs prometheus_client, an optional dependency: pip install 'quorate[prometheus]' "
        f"({_missing})"
    ) from _missing

from . import _core

if TYPE_CHECKING:  # pragma: no cover
    from .cluster import LocalCluster
    from .node import Node, Status

__all__ = ["QuorateCollector", "exposition", "CONTENT_TYPE", "REJECTION_REASONS", "VOTE_ANSWERS"]

#: The Content-Type header to serve `exposition()`'s bytes with (prometheus_client's own).
CONTENT_TYPE: str = CONTENT_TYPE_LATEST

#: Every reason a node counts in `status().rejected_by_reason`: exported at 0 until seen.
REJECTION_REASONS: Tuple[str, ...] = tuple(_core.REJECTION_REASONS)

#: Every answer a node counts in `status().votes`: exported at 0 until seen.
VOTE_ANSWERS: Tuple[str, ...] = tuple(_core.VOTE_ANSWERS)

_ROLES = ("follower", "pre_candidate", "candidate", "leader", "stopped")
_HEALTH = ("ok", "degraded", "failed", "stopped")

# The plain counters of Status: (attribute, metric name without _total, help text).
_COUNTERS: Tuple[Tuple[str, str, str], ...] = (
    ("elections_started", "quorate_elections_started", "Elections (campaigns) this node started."),
    ("elections_won", "quorate_elections_won", "Elections this node won."),
    ("leader_changes", "quorate_leader_changes", "Times the leader known to this node changed."),
    ("messages_sent", "quorate_messages_sent", "Messages this node sent to its peers."),
    ("messages_received", "quorate_messages_received", "Messages this node received from its peers."),
    ("messages_dropped", "quorate_messages_dropped", "Messages dropped (full queues or injected faults)."),
)

NodeSource = Union["Node", "LocalCluster", Iterable["Node"]]


def _nodes_of(source: Any) -> Callable[[], List["Node"]]:
    """How to list the nodes of `source` at scrape time (a cluster's nodes are read each time)."""
    from .cluster import LocalCluster
    from .node import Node

    if isinstance(source, Node):
        return lambda: [source]
    if isinstance(source, LocalCluster):
        return lambda: list(source.nodes.values())
    if isinstance(source, (str, bytes)) or not isinstance(source, Iterable):
        raise TypeError(f"QuorateCollector: expected a Node, a LocalCluster or nodes, got {source!r}")
    if isinstance(source, dict):
        source = source.values()
    nodes = list(source)
    for n in nodes:
        if not isinstance(n, Node):
            raise TypeError(f"QuorateCollector: expected Node objects, got {n!r}")
    return lambda: nodes


class QuorateCollector(Collector):
    """A `prometheus_client` collector of quorate metrics, registrable with any registry.

    `source` is a `Node`, a `LocalCluster` (one label set per node, `node="n1"` ...; its nodes are
    listed at every scrape) or an iterable of nodes. Each scrape calls `status()` on every node once
    (cheap: no round trip to the engine) and yields the families listed in the module
    documentation; a stopped node still reports, with `role="stopped"` and `health="stopped"`.

    `describe()` names the families, so registering two collectors of quorate metrics in one
    registry raises `ValueError` (prometheus_client's duplicate check): to cover several nodes in
    one process, give them to one collector.

    Raises TypeError for a `source` that is none of the above.
    """

    def __init__(self, source: NodeSource) -> None:
        self._nodes = _nodes_of(source)

    def describe(self) -> Iterable[Metric]:
        """The metric families this collector yields, as a list of `Metric` without samples (for
        the registry's duplicate check; calls no node)."""
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        """A list of `Metric` families, each with its samples for every node (see the module
        documentation). Raises whatever `Node.status()` raises (QuorateError in a forked child)."""
        statuses: List[Tuple["Node", "Status"]] = [(n, n.status()) for n in self._nodes()]
        return list(self._families(statuses))

    def _families(self, statuses: Sequence[Tuple["Node", "Status"]] = ()) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "quorate_node_info", "Constant 1, labelled with the node's address and algorithm.",
            labels=["node", "address", "algorithm"],
        )
        term = GaugeMetricFamily("quorate_term", "The node's current term.", labels=["node"])
        is_leader = GaugeMetricFamily(
            "quorate_is_leader", "1 while this node leads and holds its lease, else 0.", labels=["node"]
        )
        role = GaugeMetricFamily(
            "quorate_role", "1 for the node's current role, 0 for the others.", labels=["node", "role"]
        )
        healthy = GaugeMetricFamily(
            "quorate_healthy", "1 while health is ok; 0 while degraded (cannot persist), failed or stopped.",
            labels=["node"],
        )
        health = GaugeMetricFamily(
            "quorate_health", "1 for the node's current health state, 0 for the others.", labels=["node", "state"]
        )
        lease = GaugeMetricFamily(
            "quorate_lease_remaining_seconds", "Seconds left on this node's leader lease (0 without one).",
            labels=["node"],
        )
        heartbeat = GaugeMetricFamily(
            "quorate_last_heartbeat_age_seconds", "Seconds since this node last heard a leader's heartbeat.",
            labels=["node"],
        )
        counters = [(attr, CounterMetricFamily(name, text, labels=["node"])) for attr, name, text in _COUNTERS]
        rejected = CounterMetricFamily(
            "quorate_messages_rejected",
            "Frames and handshakes refused (authentication, cluster name, version, size, ...), by reason.",
            labels=["node", "reason"],
        )
        connected = GaugeMetricFamily(
            "quorate_peer_connected", "1 while the connection to the peer is up.", labels=["node", "peer"]
        )
        contact = GaugeMetricFamily(
            "quorate_peer_last_contact_age_seconds", "Seconds since this node last heard from the peer.",
            labels=["node", "peer"],
        )
        round_trip = GaugeMetricFamily(
            "quorate_peer_round_trip_seconds",
            "Smoothed round trip from this node's heartbeat to the peer's ack (raft leaders only).",
            labels=["node", "peer"],
        )
        votes = CounterMetricFamily(
            "quorate_votes",
            "Vote requests this node answered, by kind (vote, pre_vote) and answer (granted or why not).",
            labels=["node", "kind", "answer"],
        )
        faults = GaugeMetricFamily(
            "quorate_fault_active", "1 for each fault injected into this node that is in force.",
            labels=["node", "fault"],
        )
        warnings = GaugeMetricFamily(
            "quorate_warnings", "How many warnings the node reports in status().warnings (read them there).",
            labels=["node"],
        )
        tenure = HistogramMetricFamily(
            "quorate_leadership_tenure_seconds", "Lengths of this node's past leaderships.", labels=["node"]
        )
        leaderless = HistogramMetricFamily(
            "quorate_leaderless_seconds",
            "Gaps without a known leader as this node saw them: failover time seen from here.",
            labels=["node"],
        )
        leading_for = GaugeMetricFamily(
            "quorate_leading_for_seconds", "Length of the current leadership (0 unless leading).", labels=["node"]
        )
        elections_minute = GaugeMetricFamily(
            "quorate_elections_last_minute", "Elections this node started in the last 60 s.", labels=["node"]
        )
        term_changes = CounterMetricFamily(
            "quorate_term_changes_total", "Times this node's term changed.", labels=["node"]
        )
        for node, s in statuses:
            nid = s.node_id
            for histogram, shape in ((tenure, s.tenure_histogram), (leaderless, s.leaderless_histogram)):
                if shape:
                    buckets = [(_bound(b), n) for b, n in shape["buckets"]]
                    histogram.add_metric([nid], buckets, shape["sum"])
            leading_for.add_metric([nid], s.leading_for or 0.0)
            elections_minute.add_metric([nid], s.elections_last_minute)
            term_changes.add_metric([nid], s.term_changes)
            info.add_metric([nid, node.address, node.algorithm], 1)
            term.add_metric([nid], s.term)
            is_leader.add_metric([nid], int(s.is_leader))
            for r in _ROLES if s.role in _ROLES else (*_ROLES, s.role):
                role.add_metric([nid, r], int(s.role == r))
            healthy.add_metric([nid], int(s.health == "ok"))
            for h in _HEALTH if s.health in _HEALTH else (*_HEALTH, s.health):
                health.add_metric([nid, h], int(s.health == h))
            lease.add_metric([nid], s.lease_remaining or 0.0)
            if s.last_heartbeat_age is not None:
                heartbeat.add_metric([nid], s.last_heartbeat_age)
            for attr, family in counters:
                family.add_metric([nid], getattr(s, attr))
            by_reason: Dict[str, int] = {r: 0 for r in REJECTION_REASONS}
            by_reason.update(s.rejected_by_reason)
            for reason, n in sorted(by_reason.items()):
                rejected.add_metric([nid, reason], n)
            for peer, p in sorted(s.peers.items()):
                connected.add_metric([nid, peer], int(p.connected))
                if p.last_contact_age is not None:
                    contact.add_metric([nid, peer], p.last_contact_age)
                if p.round_trip is not None:
                    round_trip.add_metric([nid, peer], p.round_trip)
            for kind in ("vote", "pre_vote"):
                answered = s.votes.get(kind, {})
                for answer in VOTE_ANSWERS:
                    votes.add_metric([nid, kind, answer], answered.get(answer, 0))
            for fault in sorted(s.faults):
                faults.add_metric([nid, fault], 1)
            warnings.add_metric([nid], len(getattr(s, "warnings", ())))
        yield info
        yield term
        yield is_leader
        yield role
        yield healthy
        yield health
        yield lease
        yield heartbeat
        for _, family in counters:
            yield family
        yield rejected
        yield connected
        yield contact
        yield round_trip
        yield votes
        yield faults
        yield warnings
        yield tenure
        yield leaderless
        yield leading_for
        yield elections_minute
        yield term_changes

    def __repr__(self) -> str:
        """`QuorateCollector(nodes=['n1', ...])`."""
        return f"QuorateCollector(nodes={[n.node_id for n in self._nodes()]!r})"


def _bound(upper: float) -> str:
    """A bucket's upper bound as Prometheus writes it ("+Inf" for the last)."""
    return "+Inf" if upper == float("inf") else repr(float(upper))


def exposition(source: NodeSource) -> bytes:
    """The Prometheus text exposition of `source`'s metrics (a Node, a LocalCluster or nodes), as
    `prometheus_client.generate_latest` writes it for a private registry holding one
    `QuorateCollector`: the body to serve on `/metrics`, with the header
    `Content-Type: CONTENT_TYPE`.

    Returns bytes (UTF-8 text). Raises TypeError for a bad `source`, and whatever `Node.status()`
    raises."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QuorateCollector(source))
    return generate_latest(registry)
