//! What goes into and comes out of an engine. Messages derive serde for the wire (postcard).

use serde::{Deserialize, Serialize};

use super::config::{Algorithm, NodeId};

pub type Term = u64;

/// Election messages of every algorithm (raft's, then bully's, then ring's). The sender travels beside the
/// message, never inside it. An engine ignores the messages of another algorithm (and `plausible`
/// says so); the handshake keeps them apart on the wire. New variants go at the end: the wire
/// encodes the variant's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// RequestVote. A pre-vote carries the term the candidate would campaign at without raising its
    /// own (thesis 9.6); `transfer` marks the campaign a `TimeoutNow` started, which voters grant
    /// despite their leader's lease because that leader gave it up.
    Vote {
        term: Term,
        pre_vote: bool,
        transfer: bool,
    },
    VoteResponse {
        term: Term,
        granted: bool,
        pre_vote: bool,
    },
    /// An empty AppendEntries: the leader's liveness signal, numbered so acks can be matched to the
    /// round (and its send time) that earns the lease.
    Heartbeat {
        term: Term,
        seq: u64,
    },
    HeartbeatResponse {
        term: Term,
        seq: u64,
    },
    /// Tells the receiver to start an election at once (leadership transfer, thesis 3.10).
    TimeoutNow {
        term: Term,
    },
    /// Bully: ELECTION, sent to every higher-ranked member by a node that lost its coordinator (or
    /// preempts a lower-ranked one). `epoch` is the highest epoch the sender has seen.
    Election {
        epoch: Term,
    },
    /// Bully: OK, a live higher-ranked member's answer to `Election`: it takes the election over,
    /// so the sender waits for a `Coordinator` instead of declaring itself. `epoch`: the answerer's.
    Ok {
        epoch: Term,
    },
    /// Bully: COORDINATOR, the winner's announcement to every member. `epoch` is its fencing token,
    /// persisted before this is sent. Acknowledged like heartbeat round 0.
    Coordinator {
        epoch: Term,
    },
    /// Bully: the coordinator's heartbeat (its liveness signal), numbered from 1 like raft's.
    Alive {
        epoch: Term,
        seq: u64,
    },
    /// Bully: a follower's acknowledgement of `Coordinator` (seq 0) or `Alive`, which extends the
    /// coordinator's lease. An `epoch` above the coordinator's says its token is stale: it takes a
    /// fresh one.
    AliveAck {
        epoch: Term,
        seq: u64,
    },
    /// Ring: ELECTION, passed to the next live member of the ring (the members ordered by rank),
    /// collecting the highest-ranked `candidate` and the highest `epoch` seen on its way. `hop`
    /// numbers this hop for its `RingAck`.
    RingElection {
        epoch: Term,
        candidate: NodeId,
        hop: u64,
    },
    /// Ring: COORDINATOR, passed once around the ring from the winner; `epoch` is its fencing
    /// token, persisted before this is sent.
    RingCoordinator {
        epoch: Term,
        leader: NodeId,
        hop: u64,
    },
    /// Ring: the receipt for one hop. A hop not acknowledged within `heartbeat_interval` is sent
    /// on to the member after the silent one: the ring skips it.
    RingAck {
        hop: u64,
    },
    /// Ring: the coordinator's heartbeat, sent to every member directly (round 0 is the first).
    RingAlive {
        epoch: Term,
        seq: u64,
    },
    /// Ring: its acknowledgement, extending the coordinator's lease; a higher `epoch` says the
    /// coordinator's token is stale.
    RingAliveAck {
        epoch: Term,
        seq: u64,
    },
}

impl Message {
    pub fn term(&self) -> Term {
        match *self {
            Message::Vote { term, .. }
            | Message::VoteResponse { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatResponse { term, .. }
            | Message::TimeoutNow { term } => term,
            Message::Election { epoch }
            | Message::Ok { epoch }
            | Message::Coordinator { epoch }
            | Message::Alive { epoch, .. }
            | Message::AliveAck { epoch, .. }
            | Message::RingElection { epoch, .. }
            | Message::RingCoordinator { epoch, .. }
            | Message::RingAlive { epoch, .. }
            | Message::RingAliveAck { epoch, .. } => epoch,
            Message::RingAck { .. } => 0,
        }
    }

    /// The algorithm whose engine speaks this message.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Message::Vote { .. }
            | Message::VoteResponse { .. }
            | Message::Heartbeat { .. }
            | Message::HeartbeatResponse { .. }
            | Message::TimeoutNow { .. } => Algorithm::Raft,
            Message::Election { .. }
            | Message::Ok { .. }
            | Message::Coordinator { .. }
            | Message::Alive { .. }
            | Message::AliveAck { .. } => Algorithm::Bully,
            Message::RingElection { .. }
            | Message::RingCoordinator { .. }
            | Message::RingAck { .. }
            | Message::RingAlive { .. }
            | Message::RingAliveAck { .. } => Algorithm::Ring,
        }
    }

    /// The name transcripts and pictures use: `type_name`, except that a pre-vote and its answer
    /// are "pre_vote" and "pre_vote_response" (on the wire they are a flag of "vote").
    pub fn kind_name(&self) -> &'static str {
        match self {
            Message::Vote { pre_vote: true, .. } => "pre_vote",
            Message::VoteResponse { pre_vote: true, .. } => "pre_vote_response",
            other => other.type_name(),
        }
    }

    /// The type as `Core`'s message dicts and the wire's decoder name it ("vote" for a pre-vote too).
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Vote { .. } => "vote",
            Message::VoteResponse { .. } => "vote_response",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HeartbeatResponse { .. } => "heartbeat_response",
            Message::TimeoutNow { .. } => "timeout_now",
            Message::Election { .. } => "election",
            Message::Ok { .. } => "ok",
            Message::Coordinator { .. } => "coordinator",
            Message::Alive { .. } => "alive",
            Message::AliveAck { .. } => "alive_ack",
            Message::RingElection { .. } => "ring_election",
            Message::RingCoordinator { .. } => "ring_coordinator",
            Message::RingAck { .. } => "ring_ack",
            Message::RingAlive { .. } => "ring_alive",
            Message::RingAliveAck { .. } => "ring_alive_ack",
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
    /// The lease lapsed: no majority acknowledged a heartbeat round in time (bully: no peer did).
    LostLease,
    /// A message carried a higher term (bully: a higher epoch, so this node's token is stale).
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
