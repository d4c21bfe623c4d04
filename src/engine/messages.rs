//! What goes into and comes out of an engine. Messages derive serde for the wire (postcard).

use serde::{Deserialize, Serialize};

use super::config::NodeId;

pub type Term = u64;

/// Raft election messages. The sender travels beside the message, never inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// RequestVote. A pre-vote carries the term the candidate would campaign at without raising its
    /// own (thesis 9.6); `transfer` marks the campaign a `TimeoutNow` started, which voters grant
    /// despite their leader's lease because that leader gave it up.
    Vote { term: Term, pre_vote: bool, transfer: bool },
    VoteResponse { term: Term, granted: bool, pre_vote: bool },
    /// An empty AppendEntries: the leader's liveness signal, numbered so acks can be matched to the
    /// round (and its send time) that earns the lease.
    Heartbeat { term: Term, seq: u64 },
    HeartbeatResponse { term: Term, seq: u64 },
    /// Tells the receiver to start an election at once (leadership transfer, thesis 3.10).
    TimeoutNow { term: Term },
}

impl Message {
    pub fn term(&self) -> Term {
        match *self {
            Message::Vote { term, .. }
            | Message::VoteResponse { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatResponse { term, .. }
            | Message::TimeoutNow { term } => term,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Vote { .. } => "vote",
            Message::VoteResponse { .. } => "vote_response",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HeartbeatResponse { .. } => "heartbeat_response",
            Message::TimeoutNow { .. } => "timeout_now",
        }
    }
}

/// The durable part of a node: it must reach stable storage before any message that depends on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    Elected,
    Demoted,
    LeaderChanged,
    TermChanged,
    ElectionStarted,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Elected => "elected",
            EventKind::Demoted => "demoted",
            EventKind::LeaderChanged => "leader_changed",
            EventKind::TermChanged => "term_changed",
            EventKind::ElectionStarted => "election_started",
        }
    }
}

/// Why a leadership ended; every `Demoted` event carries one.
///
/// The engine itself produces `LostLease`, `HigherTerm`, `Resigned` and `Stopped`; drivers produce
/// `Crashed` (the simulator's crash, the runtime's abrupt stop) and `Storage` (the runtime could not
/// persist), for leaderships that end without the engine being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DemoteReason {
    /// The lease lapsed: no majority acknowledged a heartbeat round in time.
    LostLease,
    /// A message carried a higher term.
    HigherTerm,
    /// `resign()` or `transfer_leadership()` handed leadership to a peer.
    Resigned,
    /// A graceful stop (`shut_down`) handed leadership to a peer.
    Stopped,
    /// The node crashed or was killed while leading.
    Crashed,
    /// The node's durable state could not be written.
    Storage,
}

impl DemoteReason {
    pub fn name(self) -> &'static str {
        match self {
            DemoteReason::LostLease => "lost_lease",
            DemoteReason::HigherTerm => "higher_term",
            DemoteReason::Resigned => "resigned",
            DemoteReason::Stopped => "stopped",
            DemoteReason::Crashed => "crashed",
            DemoteReason::Storage => "storage",
        }
    }
}

/// One leadership event. `Elected` means this node may act as leader (it holds its lease);
/// `Demoted` ends that and says why. They alternate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub term: Term,
    pub leader: Option<NodeId>,
    /// Some exactly for `Demoted`.
    pub reason: Option<DemoteReason>,
}

/// One thing the driver must do, in the order the engine returned them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Persist(HardState),
    Send { to: NodeId, message: Message },
    Event(Event),
}
