"""`Status` and `PeerStatus`: one node's state as `Node.status()` (and `Cluster.status()`) report it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

__all__ = ["Status", "PeerStatus"]


@dataclass(frozen=True)
class PeerStatus:
    """How this node sees one peer, in `Status.peers`.

    Attributes:
        address: The peer's "host:port", as given in `members`.
        connected: True while this node's outbound connection to the peer is up.
        last_contact_age: Seconds since this node last received a valid frame from the peer;
            None if it never did.
        round_trip: Seconds from this node's heartbeat to the peer's acknowledgement, smoothed
            as TCP smooths its round-trip time (each sample moves it 1/8 of the way). Only a raft
            leader measures it: None on a follower, before the peer's first acknowledgement, and
            with Bully or Ring. It includes the peer's own handling time and any injected delay.
    """

    address: str
    connected: bool
    last_contact_age: Optional[float]
    round_trip: Optional[float] = None


@dataclass(frozen=True)
class Status:
    """A consistent snapshot of one node, as `Node.status()` returns it. Times are seconds;
    counters count from the node's construction (a restart of the same `Node` keeps them).

    Attributes:
        node_id: This node's id.
        role: "follower", "pre_candidate", "candidate", "leader" or "stopped".
        term: The current term (0 before the first election).
        leader: The leader this node follows or is, or None if it knows none.
        voted_for: Whom this node voted for in `term`, or None.
        is_leader: True only while this node leads AND holds its lease.
        fencing_token: The fencing token while `is_leader`, else None.
        lease_remaining: Seconds left on this node's leader lease, or None without one.
        last_heartbeat_age: Seconds since this node last heard from a leader (on a leader, the
            time it last heard its previous leader); None if it never heard one.
        peers: Each peer's `PeerStatus`, by id.
        elections_started: Elections (campaigns) this node started.
        elections_won: Elections this node won.
        leader_changes: Times the leader known to this node changed.
        messages_sent: Messages sent to peers.
        messages_received: Messages received from peers.
        messages_rejected: Frames and handshakes refused (authentication, cluster name, version,
            size, ...); never acted on.
        messages_dropped: Messages dropped (a full queue, or an injected fault).
        faults: The injected faults in force (see `Faults.active()`), by name.
        health: "ok"; "degraded" while the node cannot persist its state (it then neither votes
            nor campaigns); "failed" if its engine task died (stop() and start() it); "stopped"
            when it does not run.
        last_error: The last storage or engine error, if any (kept after recovery, for the
            operator), else None.
        rejected_by_reason: `messages_rejected` split by reason ("bad_mac", "cluster", "version",
            "replay", ...); the values add up to `messages_rejected`.
        warnings: What is unsafe or abnormal right now, in words; empty when all is well. Named
            patterns: no secret on a non-loopback address, an election storm (more than 10
            elections started in 60 s), flapping leadership (more than 6 leader changes in
            60 s), a peer unreachable for longer than the election timeout, a clock rate near the
            max_clock_drift bound, and slow links (on a raft leader: heartbeat interval plus the
            round trip to the peers a majority needs is over 80% of the lease, so the lease will
            lapse between renewals).
        leading_for: Seconds this node has led in its current leadership; None unless it leads.
        leaderless_for: Seconds this running node has known no leader; None while it knows one.
        tenure_histogram: Lengths of this node's past leaderships, as {"buckets": [[upper bound
            in seconds, cumulative count], ..., [inf, count]], "sum": seconds, "count": n}.
        leaderless_histogram: The gaps without a known leader as this node saw them (failover
            time seen from here), in the same shape.
        elections_last_minute: Elections this node started in the last 60 s.
        leader_changes_last_minute: Leader changes this node saw in the last 60 s.
        term_changes: Times this node's term changed.
        votes: Vote requests this node answered (raft), as {"vote": {answer: count}, "pre_vote":
            {answer: count}} with every answer present: "granted"; "stale_term" (the request's
            term is older); "already_voted" (for another candidate in that term); "leader_known"
            (this node follows a leader of that term); "in_lease" (ignored: this node heard a
            live leader, or restarted, within the minimum election timeout; thesis 4.2.3). Many
            refusals with few elections won point at the cause of a cluster that cannot elect.
            All zero with Bully and Ring, which have no votes.
    """

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
    #: "ok"; "degraded" while the node cannot persist its state (it then neither votes nor
    #: campaigns); "failed" if its engine task died (stop() and start() it); "stopped" when it
    #: does not run.
    health: str = "stopped"
    #: The last storage error, if any (kept after recovery, for the operator).
    last_error: Optional[str] = None
    #: messages_rejected split by reason ("bad_mac", "cluster", "version", "replay", ...).
    rejected_by_reason: Dict[str, int] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    leading_for: Optional[float] = None
    leaderless_for: Optional[float] = None
    tenure_histogram: Dict[str, Any] = field(default_factory=dict)
    leaderless_histogram: Dict[str, Any] = field(default_factory=dict)
    elections_last_minute: int = 0
    leader_changes_last_minute: int = 0
    term_changes: int = 0
    votes: Dict[str, Dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """Every attribute as a plain dict (peers as dicts too), ready for `json.dumps`; a copy.

        Strict JSON: the histograms' last bucket bound, infinity in the attribute, is the string
        ``"+Inf"`` here (as Prometheus writes it), since JSON has no infinity and strict parsers
        refuse the ``Infinity`` that ``json.dumps`` would otherwise write."""
        d = dict(self.__dict__)
        d["peers"] = {k: dict(v.__dict__) for k, v in self.peers.items()}
        d["faults"] = dict(self.faults)
        d["rejected_by_reason"] = dict(self.rejected_by_reason)
        d["warnings"] = list(self.warnings)
        d["votes"] = {kind: dict(answers) for kind, answers in self.votes.items()}
        for h in ("tenure_histogram", "leaderless_histogram"):
            d[h] = {k: (_json_buckets(v) if k == "buckets" else v) for k, v in getattr(self, h).items()}
        return d


def _json_buckets(buckets: Any) -> List[List[Any]]:
    """Histogram buckets with an infinite bound written as Prometheus writes it."""
    return [["+Inf" if isinstance(b, float) and math.isinf(b) else b, c] for b, c in buckets]
