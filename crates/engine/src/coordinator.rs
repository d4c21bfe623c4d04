//! What bully and ring answer alike. Both elect a coordinator in epochs without votes, on the
//! shared leadership core, so every read of their state and every request (a message, campaign,
//! resign, a graceful stop, a transfer) goes the same way; each module supplies only its own
//! election rules (`step_message`, `start_election`, `step_aside`) and its clock (`advance`).

use std::time::Duration;

use super::config::{Config, NodeId};
use super::leadership::Leadership;
use super::messages::{DemoteReason, HardState, Message, Output, Term};
use super::{Role, State, TransferError};

pub(crate) trait Coordinator {
    // ----- what each algorithm supplies ---------------------------------------------------------

    fn config(&self) -> &Config;
    /// Role, epoch, coordinator, lease and outputs.
    fn lead(&self) -> &Leadership;
    /// The start of every input: starts the clock, keeps time monotonic, and steps a coordinator
    /// whose lease lapsed down before anything else.
    fn advance(&mut self, now: Duration) -> Duration;
    /// This algorithm's messages only, naming members, with an epoch not absurdly far ahead.
    fn plausible(&self, message: &Message) -> bool;
    /// A message from a member, already found plausible.
    fn step_message(&mut self, now: Duration, from: &str, message: Message);
    /// An election started by request: any abstention after a resign is forgotten.
    fn start_election_now(&mut self, now: Duration);
    /// A coordinator steps down for `why` and keeps out of the next election.
    fn step_aside(&mut self, now: Duration, why: DemoteReason);
    /// Drains the outputs of one call, the new epoch (if any) first.
    fn take_outputs(&mut self) -> Vec<Output>;

    // ----- state ------------------------------------------------------------------------------

    fn role(&self) -> Role {
        self.lead().role()
    }

    /// The highest epoch seen (the coordinator's own epoch while it coordinates).
    fn term(&self) -> Term {
        self.lead().term()
    }

    fn leader(&self) -> Option<&NodeId> {
        self.lead().leader()
    }

    /// The epoch alone: there are no votes to remember.
    fn hard_state(&self) -> HardState {
        HardState { term: self.lead().term(), voted_for: None }
    }

    fn lease_expiry(&self) -> Option<Duration> {
        self.lead().lease_expiry()
    }

    fn state(&self) -> State {
        self.lead().state(None)
    }

    /// Coordinator and inside its lease (a peer acknowledged a recent round) at `now`.
    fn is_leader(&self, now: Duration) -> bool {
        self.lead().is_leader(now)
    }

    /// The epoch, while `is_leader`: unique to this leadership and above every epoch this node saw.
    fn fencing_token(&self, now: Duration) -> Option<Term> {
        self.lead().fencing_token(now)
    }

    // ----- requests ---------------------------------------------------------------------------

    fn step(&mut self, now: Duration, from: &str, message: Message) -> Vec<Output> {
        let now = self.advance(now);
        let cfg = self.config();
        if from != cfg.id && cfg.members.iter().any(|m| m == from) && self.plausible(&message) {
            self.step_message(now, from, message);
        }
        self.take_outputs()
    }

    /// Starts an election now (nothing on a coordinator).
    fn campaign(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        if self.lead().role() != Role::Leader {
            self.start_election_now(now);
        }
        self.take_outputs()
    }

    /// A coordinator steps down (`Resigned`) and keeps out of the next election.
    fn resign(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        self.step_aside(now, DemoteReason::Resigned);
        self.take_outputs()
    }

    /// A graceful stop: as `resign`, with reason `Stopped`.
    fn shut_down(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        self.step_aside(now, DemoteReason::Stopped);
        self.take_outputs()
    }

    /// As `resign`: both pick the next coordinator by rank, so `to` is only checked to be a peer.
    fn transfer_leadership(&mut self, now: Duration, to: &str) -> Result<Vec<Output>, TransferError> {
        let cfg = self.config();
        if to == cfg.id || !cfg.members.iter().any(|m| m == to) {
            return Err(TransferError::UnknownPeer(to.to_string()));
        }
        if !self.lead().leads(now) {
            return Err(TransferError::NotLeader);
        }
        let now = self.advance(now);
        self.step_aside(now, DemoteReason::Resigned);
        Ok(self.take_outputs())
    }
}
