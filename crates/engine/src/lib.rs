//! Sans-IO election engines: time and a seeded generator come in, ordered outputs (persist, send,
//! event) go out. No clock, no threads, no I/O, no Python.
//!
//! # The Engine contract
//!
//! Every algorithm is one module here, and everything outside this module (the simulator, the
//! networked runtime, the Python bindings, the wire) speaks only to [`Engine`]:
//!
//! - inputs: `tick(now)` when `next_deadline()` has passed, `step(now, from, message)` for each
//!   message, and the requests `campaign`, `resign`, `shut_down` (a graceful stop) and
//!   `transfer_leadership`. `now` is this node's own clock, a `Duration` since the driver's epoch;
//!   a clock that steps back is treated as standing still.
//! - outputs, in the order the driver must carry them out: `Persist` (durable before anything
//!   after it leaves the node), `Send`, `Event`. `Elected` means the node may act as leader (its
//!   lease holds); every `Demoted` says why; they alternate.
//! - state, read at any time: [`State`] (role, term, vote, leader, lease expiry, and when the
//!   leader was last heard from), `is_leader(now)`, `fencing_token(now)`, `hard_state()`.
//! - measures, for monitoring only ([`measures`]): `vote_counts()`, `round_trip(peer)`.
//!
//! `Engine` is an enum over the algorithms rather than a trait object: the set is closed and
//! small, calls are statically dispatched in the simulator's hot loop (millions of steps a
//! second), and a match shows in one place which algorithms exist. Adding one is a module, a
//! variant here, and a name in [`Algorithm`].
//!
//! What every algorithm does the same way lives beside them, so an algorithm's module holds only
//! its election rules: `leadership` (role, term, leader, the lease a leader earns from acknowledged
//! heartbeat rounds, the elected/demoted bookkeeping, events and the drain of outputs, on
//! `outbox`), and [`limits`] (every bound, defined once).

pub mod bully;
pub mod config;
mod coordinator;
pub mod faults;
mod leadership;
pub mod limits;
pub mod measures;
pub mod messages;
mod outbox;
pub mod raft;
pub mod ring;
pub mod seed;

#[cfg(test)]
mod bully_tests;
#[cfg(test)]
mod raft_tests;
#[cfg(test)]
mod ring_tests;
/// Helpers the engine's own tests and the simulator's per-algorithm tests share (the
/// `test-support` feature exposes them to the simulator crate's tests).
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

use coordinator::Coordinator;
use std::time::Duration;

pub use bully::Bully;
pub use config::{Algorithm, Config, ConfigError, NodeId, Timing};
pub use limits::MAX_TERM_AHEAD;
pub use measures::{RoundTrip, VoteAnswer, VoteCounts};
pub use messages::{DemoteReason, Event, EventKind, HardState, Message, Output, Term};
pub use raft::Raft;
pub use ring::Ring;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre_candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("this node is not the leader")]
    NotLeader,
    #[error("{0:?} is not a peer of this node")]
    UnknownPeer(NodeId),
}

/// Read-only view of an engine, for drivers and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub role: Role,
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub lease_expiry: Option<Duration>,
    /// When this node last heard from the leader it follows (on its own clock): the engine's
    /// word for "the leader is alive", so drivers never match on an algorithm's messages.
    pub leader_contact: Option<Duration>,
}

/// One election engine, whichever the algorithm.
#[derive(Debug, Clone)]
pub enum Engine {
    Raft(Raft),
    Bully(Bully),
    Ring(Ring),
}

/// Calls the same method on whichever algorithm this engine runs.
macro_rules! each {
    ($self:expr, $e:ident => $body:expr) => {
        match $self {
            Engine::Raft($e) => $body,
            Engine::Bully($e) => $body,
            Engine::Ring($e) => $body,
        }
    };
}

impl Engine {
    /// A node of `cfg.algorithm` starting from `hard` (zeros for a fresh node, the persisted
    /// state on restart).
    pub fn new(cfg: Config, hard: HardState) -> Engine {
        match cfg.algorithm {
            Algorithm::Raft => Engine::Raft(Raft::new(cfg, hard)),
            Algorithm::Bully => Engine::Bully(Bully::new(cfg, hard)),
            Algorithm::Ring => Engine::Ring(Ring::new(cfg, hard)),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.config().algorithm
    }

    pub fn config(&self) -> &Config {
        each!(self, e => e.config())
    }

    pub fn role(&self) -> Role {
        each!(self, e => e.role())
    }

    pub fn term(&self) -> Term {
        each!(self, e => e.term())
    }

    pub fn leader(&self) -> Option<&NodeId> {
        each!(self, e => e.leader())
    }

    pub fn hard_state(&self) -> HardState {
        each!(self, e => e.hard_state())
    }

    pub fn lease_expiry(&self) -> Option<Duration> {
        each!(self, e => e.lease_expiry())
    }

    pub fn state(&self) -> State {
        each!(self, e => e.state())
    }

    /// Vote requests this engine answered, by kind and answer. Only raft votes; Bully and Ring
    /// have no votes, so theirs stay zero.
    pub fn vote_counts(&self) -> VoteCounts {
        match self {
            Engine::Raft(r) => r.vote_counts(),
            Engine::Bully(_) | Engine::Ring(_) => VoteCounts::default(),
        }
    }

    /// The round-trip time to `peer` as this node's leadership measures it with heartbeats (raft);
    /// None for a follower, before the peer's first ack, and for Bully and Ring.
    pub fn round_trip(&self, peer: &str) -> Option<RoundTrip> {
        match self {
            Engine::Raft(r) => r.round_trip(peer),
            Engine::Bully(_) | Engine::Ring(_) => None,
        }
    }

    /// Leader and inside its lease at `now`: the only time a caller may act as the leader.
    pub fn is_leader(&self, now: Duration) -> bool {
        each!(self, e => e.is_leader(now))
    }

    /// While `is_leader`: a number that strictly increases from one leadership to the next.
    pub fn fencing_token(&self, now: Duration) -> Option<Term> {
        each!(self, e => e.fencing_token(now))
    }

    /// The next time `tick` has work to do, or None before the clock has started.
    pub fn next_deadline(&self) -> Option<Duration> {
        each!(self, e => e.next_deadline())
    }

    pub fn tick(&mut self, now: Duration) -> Vec<Output> {
        each!(self, e => e.tick(now))
    }

    /// Whether `message` is one a peer following the rules could send (its term is not absurdly
    /// far ahead); `step` ignores the others, and drivers count them as rejected.
    pub fn plausible(&self, message: &Message) -> bool {
        each!(self, e => e.plausible(message))
    }

    /// Handles one message from `from`; input from peers never panics.
    pub fn step(&mut self, now: Duration, from: &str, message: Message) -> Vec<Output> {
        each!(self, e => e.step(now, from, message))
    }

    pub fn campaign(&mut self, now: Duration) -> Vec<Output> {
        each!(self, e => e.campaign(now))
    }

    pub fn resign(&mut self, now: Duration) -> Vec<Output> {
        each!(self, e => e.resign(now))
    }

    /// A graceful stop: a leader hands off first (its `Demoted` says "stopped").
    pub fn shut_down(&mut self, now: Duration) -> Vec<Output> {
        each!(self, e => e.shut_down(now))
    }

    pub fn transfer_leadership(&mut self, now: Duration, to: &str) -> Result<Vec<Output>, TransferError> {
        each!(self, e => e.transfer_leadership(now, to))
    }
}
