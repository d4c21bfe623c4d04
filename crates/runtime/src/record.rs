//! The records a node publishes about what it saw: events, stamped on the monotonic and the wall
//! clock, and what it knows of each peer. Plain data, read by the snapshot (`shared`) and the
//! monitor alike.

use std::time::{Instant, SystemTime};

use quorate_engine::{DemoteReason, EventKind, NodeId, RoundTrip, Term};

/// One event as the node saw it, stamped on the shared monotonic clock and the wall clock.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub kind: EventKind,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub fencing_token: Option<Term>,
    pub reason: Option<DemoteReason>,
    pub at: Instant,
    pub wall: SystemTime,
}

impl EventRecord {
    pub fn new(kind: EventKind, term: Term, leader: Option<NodeId>, reason: Option<DemoteReason>) -> EventRecord {
        let fencing_token = matches!(kind, EventKind::Elected | EventKind::Demoted).then_some(term);
        EventRecord { kind, term, leader, fencing_token, reason, at: Instant::now(), wall: SystemTime::now() }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    pub address: String,
    pub connected: bool,
    pub last_contact: Option<Instant>,
    /// Round-trip time while this node leads (raft), in real seconds; None otherwise.
    pub round_trip: Option<RoundTrip>,
}
