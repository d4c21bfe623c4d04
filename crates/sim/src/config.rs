//! What a simulation is made from and what it reports: its configuration, its events, its
//! statistics, and the read-only view of one node.

use std::collections::BTreeMap;
use std::time::Duration;

use quorate_engine::{Algorithm, DemoteReason, EventKind, Message, NodeId, Role, Term, Timing};

#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub members: Vec<NodeId>,
    pub seed: u64,
    pub timing: Timing,
    /// One-way latency, drawn uniformly from `[min, max]` for every copy of every message.
    pub latency: (Duration, Duration),
    pub drop_rate: f64,
    pub duplicate_rate: f64,
    /// The algorithm every node runs (raft by default).
    pub algorithm: Algorithm,
    /// Each member's priority (bully's rank; not listed: 0). See `Config::priorities`.
    pub priorities: BTreeMap<NodeId, i64>,
    /// Bully's preemption (`Config::bully_preempt`), on by default.
    pub bully_preempt: bool,
}

impl SimConfig {
    pub fn new(members: Vec<NodeId>, seed: u64) -> SimConfig {
        SimConfig {
            members,
            seed,
            timing: Timing::default(),
            latency: (Duration::from_micros(500), Duration::from_millis(2)),
            drop_rate: 0.0,
            duplicate_rate: 0.0,
            algorithm: Algorithm::Raft,
            priorities: BTreeMap::new(),
            bully_preempt: true,
        }
    }

    /// Members `n1..nN`, the names the simulator uses when given a count.
    pub fn numbered(count: usize, seed: u64) -> SimConfig {
        SimConfig::new((1..=count).map(|i| format!("n{i}")).collect(), seed)
    }
}

/// One event of the history, stamped with virtual time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    pub at: Duration,
    pub node: NodeId,
    pub kind: EventKind,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub fencing_token: Option<Term>,
    /// Some exactly for `Demoted`: why the leadership ended (`Crashed` comes from the simulator).
    pub reason: Option<DemoteReason>,
}

/// One copy of a message the network holds: sent, not yet arrived (`Simulation::in_flight`). A
/// read-only view, for pictures and tests; a duplicated message is two copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub from: NodeId,
    pub to: NodeId,
    pub message: Message,
    /// The virtual instant it was sent.
    pub sent_at: Duration,
    /// The virtual instant it arrives (latency, plus any delay fault of the sender's).
    pub deliver_at: Duration,
    /// Whether, as things stand now, the network drops it on arrival: the receiver is down, or a
    /// partition or isolation cuts the link. A restart or heal before `deliver_at` saves it.
    /// (Drops decided at send time, by the drop rate or a cut link, never enter the network.)
    pub doomed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_dropped: u64,
    pub messages_duplicated: u64,
    pub elections_started: u64,
    pub leaders_elected: u64,
    pub crashes: u64,
    pub restarts: u64,
}

/// A read-only view of one simulated node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub up: bool,
    pub paused: bool,
    pub role: Option<Role>,
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub is_leader: bool,
    pub fencing_token: Option<Term>,
    pub lease_remaining: Option<Duration>,
    pub clock_rate: f64,
}
