//! What every engine does the same way with its outputs: events kept to the alternation rule
//! (`elected` and `demoted` strictly alternate, every `demoted` says why), sends, and the drain of
//! one call's outputs with the new hard state first (durable before anything that depends on it
//! leaves the node). Also the one draw of a randomized election timeout.

use std::time::Duration;

use rand::RngExt;
use rand_pcg::Pcg64Mcg;

use super::config::{NodeId, Timing};
use super::messages::{DemoteReason, Event, EventKind, HardState, Message, Output, Term};

#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    outputs: Vec<Output>,
    /// An `elected` is waiting for its `demoted`.
    elected_open: bool,
    /// The hard state last handed out as a `Persist`.
    persisted: HardState,
}

impl Outbox {
    pub(crate) fn new(persisted: HardState) -> Outbox {
        Outbox { outputs: Vec::new(), elected_open: false, persisted }
    }

    pub(crate) fn elected_open(&self) -> bool {
        self.elected_open
    }

    pub(crate) fn persisted(&self) -> &HardState {
        &self.persisted
    }

    /// Queues an event; `holds_lease` is whether the node leads with a lease right now (an
    /// `elected` without one is a bug). A `demoted` needs a reason, nothing else may carry one.
    pub(crate) fn event(
        &mut self,
        kind: EventKind,
        term: Term,
        leader: Option<NodeId>,
        reason: Option<DemoteReason>,
        holds_lease: bool,
    ) {
        assert_eq!(kind == EventKind::Demoted, reason.is_some(), "exactly a demoted carries a reason");
        match kind {
            EventKind::Elected => {
                assert!(!self.elected_open, "elected twice without demoted");
                assert!(holds_lease, "elected without a lease");
                self.elected_open = true;
            }
            EventKind::Demoted => {
                assert!(self.elected_open, "demoted without elected");
                self.elected_open = false;
            }
            _ => {}
        }
        self.outputs.push(Output::Event(Event { kind, term, leader, reason }));
    }

    pub(crate) fn send(&mut self, to: &str, message: Message) {
        self.outputs.push(Output::Send { to: to.to_string(), message });
    }

    /// The same message to every member but `me`.
    pub(crate) fn broadcast(&mut self, members: &[NodeId], me: &str, message: &Message) {
        for peer in members.iter().filter(|m| *m != me) {
            self.send(peer, message.clone());
        }
    }

    /// One call's outputs, the hard state (`term`, `voted_for`) first if it changed. It comes in
    /// borrowed and is copied only when it changed: this runs after every input, and a vote
    /// is a string. `holds_lease` as for `event`: an open `elected` is exactly a leader that
    /// holds its lease.
    pub(crate) fn take(&mut self, term: Term, voted_for: Option<&NodeId>, holds_lease: bool) -> Vec<Output> {
        assert_eq!(self.elected_open, holds_lease, "an open `elected` is exactly a leader that holds its lease");
        if term != self.persisted.term || voted_for != self.persisted.voted_for.as_ref() {
            assert!(term >= self.persisted.term, "persisted term never decreases");
            let hard = HardState { term, voted_for: voted_for.cloned() };
            self.persisted = hard.clone();
            self.outputs.insert(0, Output::Persist(hard));
        }
        std::mem::take(&mut self.outputs)
    }
}

/// An election timeout drawn uniformly from `[min, max)` (exactly `min` when they are equal).
pub(crate) fn random_timeout(timing: &Timing, rng: &mut Pcg64Mcg) -> Duration {
    let (min, max) = timing.election_timeout;
    if max > min {
        let span = (max - min).as_nanos() as u64;
        min + Duration::from_nanos(rng.random_range(0..span))
    } else {
        min
    }
}
