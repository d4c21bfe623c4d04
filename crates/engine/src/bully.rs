//! The Bully election (Garcia-Molina, "Elections in a Distributed Computing System", IEEE
//! Transactions on Computers, 1982), behind the same Engine contract as Raft.
//!
//! **Rank.** Members are ranked by `(priority, node_id)` ([`Config::rank`]); the highest-ranked
//! live member is meant to be the coordinator.
//!
//! **The rules**, named as the functions that implement them:
//! - `start_election`: a node that loses its coordinator (no `Alive` within its election timeout,
//!   drawn from `election_timeout` like raft's) sends `Election` to every higher-ranked member. With
//!   none, it is the highest: it becomes coordinator at once.
//! - `step_election`: a live higher-ranked node answers `Ok` and, unless it already coordinates,
//!   campaigns, or follows a live coordinator, starts its own election.
//! - `tick_candidate`: no `Ok` within `election_timeout.min` (the answer wait): the candidate becomes
//!   coordinator. An `Ok` makes it wait up to an election timeout for a `Coordinator` (then it starts
//!   over).
//! - `become_coordinator`: takes a fresh epoch, persists it, and announces `Coordinator` to every
//!   member; then `Alive` every `heartbeat_interval`, acknowledged with `AliveAck`.
//! - `step_claim`: a `Coordinator` or `Alive` from a higher-ranked node (or, without preemption,
//!   from any node while this one has no live coordinator) is followed; one from a lower-ranked node
//!   is challenged (preemption, `Config::bully_preempt`, on by default): a recovering higher-ranked
//!   node, or the two sides of a healed partition, end with the higher rank in charge. A coordinator
//!   always answers a lower-ranked claimant with its own `Coordinator`.
//!
//! **The epoch is the fencing token.** `HardState.term` holds the highest epoch this node has seen
//! (`voted_for` is unused and always None). A coordinator's epoch is strictly greater than any epoch
//! it has seen and is persisted (the call's `Persist` comes first) before `Coordinator` announces
//! it. Epochs are also unique to their coordinator: a node takes only epochs congruent to its index
//! in the sorted member list modulo the group size, so two coordinators never share a token, even
//! on two sides of a partition. A claim whose epoch is below one a node has seen is answered with
//! that higher epoch (`AliveAck`), and a coordinator that learns of a higher epoch ends its
//! leadership (`Demoted`, reason `HigherTerm`) and takes a fresh epoch above it: so once a partition
//! heals, the surviving coordinator's token exceeds every token handed out before.
//!
//! **When the coordinator may act** (`is_leader`): Bully has no majority rule, so its lease is this:
//! the coordinator holds leadership for `election_timeout.min * (1 - max_clock_drift)` from the send
//! time of the newest heartbeat round (the announcement included) that *at least one peer*
//! acknowledged. A coordinator cut off from every peer cannot tell their crash from its own isolation,
//! so it stops claiming leadership once the lease lapses (`Demoted`, `LostLease`) and then starts a
//! new election (a fresh epoch) like any other node; a one-member group leads alone. We chose "one
//! peer" over "a majority" because a majority rule is exactly what Bully does not have: with it, Bully
//! would lose its defining property (a coordinator as long as any two members can talk), and still
//! would not be exclusive without raft's vote promises. The honest consequence: under a partition,
//! each side with two or more members can have its own coordinator, both `is_leader` at once. Their
//! fencing tokens differ and order them: the newer leadership has the higher epoch, and a store that
//! has seen it refuses the older. `Elected` comes with the first acknowledged round of an epoch; every
//! `Demoted` carries a reason; they alternate, as in raft. (Rounds, lease and events are the shared
//! `leadership` core's, raft's too; only how many acks settle a round differs.)
//!
//! **Requests.** `campaign` starts an election. `resign`, `shut_down` and `transfer_leadership` step
//! down and keep out of elections for a while (`election_timeout.max + 2 * election_timeout.min`) so
//! the next-ranked live peer wins, and this node stops preempting until it next coordinates. Bully
//! chooses by rank: after a transfer the coordinator is the highest-ranked live peer, `to` or not.

use std::time::Duration;

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use super::config::{Algorithm, Config, NodeId};
use super::coordinator::Coordinator;
use super::leadership::{abstention, next_epoch, Leadership};
use super::messages::{DemoteReason, EventKind, HardState, Message, Output, Term};
use super::outbox::random_timeout;
use super::Role;

#[derive(Debug, Clone)]
pub struct Bully {
    cfg: Config,
    rng: Pcg64Mcg,
    /// Role, epoch (`term`: the highest seen, durable; a coordinator's own), coordinator, lease
    /// and outputs.
    lead: Leadership,
    /// Follower: when it gives up on its coordinator (or, after an `Ok`, on the coordinator to
    /// come) and starts an election. Candidate: when it stops waiting for `Ok` and takes over.
    deadline: Duration,
    /// After resigning: no elections, no `Ok`, no preemption before this instant.
    abstain_until: Option<Duration>,
    /// After resigning: no preemption until this node coordinates again.
    yielded: bool,
}

impl Bully {
    /// A node starting from `hard` (zeros for a fresh node, the persisted state on restart).
    pub fn new(cfg: Config, hard: HardState) -> Bully {
        Bully {
            rng: Pcg64Mcg::seed_from_u64(cfg.seed),
            lead: Leadership::new(hard),
            deadline: Duration::ZERO,
            abstain_until: None,
            yielded: false,
            cfg,
        }
    }

    pub fn next_deadline(&self) -> Option<Duration> {
        self.lead.next_deadline(Some(self.cfg.timing.election_timeout.0), self.deadline)
    }

    // ----- inputs -----------------------------------------------------------------------------

    pub fn tick(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        match self.lead.role() {
            Role::Leader => self.tick_coordinator(now),
            Role::Candidate => self.tick_candidate(now),
            _ => self.tick_follower(now),
        }
        self.take_outputs()
    }

    // ----- timers -----------------------------------------------------------------------------

    fn tick_follower(&mut self, now: Duration) {
        if now < self.deadline {
            return;
        }
        if let Some(until) = self.abstain_until.filter(|u| now < *u) {
            self.deadline = until;
            return;
        }
        self.start_election(now);
    }

    /// No `Ok` within the answer wait: every higher-ranked node is down, so this one coordinates.
    fn tick_candidate(&mut self, now: Duration) {
        if now >= self.deadline {
            self.become_coordinator(now, self.lead.term());
        }
    }

    fn tick_coordinator(&mut self, now: Duration) {
        if self.lead.unanswered_for(now, self.cfg.timing.election_timeout.0) {
            // Nobody acknowledged the announcement or any heartbeat: never elected, nothing to end.
            self.become_follower(now, None, None);
            return;
        }
        if self.lead.heartbeat_due(now) {
            self.broadcast_round(now);
        }
    }

    // ----- messages ---------------------------------------------------------------------------

    fn step_message(&mut self, now: Duration, from: &str, message: Message) {
        match message {
            Message::Election { epoch } => self.step_election(now, from, epoch),
            Message::Ok { epoch } => self.step_ok(now, from, epoch),
            Message::Coordinator { epoch } => self.step_claim(now, from, epoch, 0),
            Message::Alive { epoch, seq } => self.step_claim(now, from, epoch, seq),
            Message::AliveAck { epoch, seq } => self.step_ack(now, from, epoch, seq),
            _ => {}
        }
    }

    /// ELECTION from a lower-ranked node: answer OK, then take the election over unless this node
    /// coordinates (it re-announces itself to the sender), is campaigning, or follows a live
    /// coordinator (which outranks the sender and answers it itself).
    fn step_election(&mut self, now: Duration, from: &str, epoch: Term) {
        self.observe_epoch(now, epoch);
        if self.cfg.rank(from) >= self.my_rank() || self.abstaining(now) {
            return;
        }
        let term = self.lead.term();
        self.lead.send(from, Message::Ok { epoch: term });
        match self.lead.role() {
            Role::Leader => self.lead.send(from, Message::Coordinator { epoch: term }),
            Role::Candidate => {}
            _ if self.live_leader(now).is_some() => {}
            _ => self.start_election(now),
        }
    }

    /// OK from a higher-ranked node: it takes over; wait for its COORDINATOR.
    fn step_ok(&mut self, now: Duration, from: &str, epoch: Term) {
        self.observe_epoch(now, epoch);
        if self.lead.role() == Role::Candidate && self.cfg.rank(from) > self.my_rank() {
            self.lead.set_role(Role::Follower);
            self.lead.enter(self.lead.term(), None);
            self.reset_timer(now);
        }
    }

    /// COORDINATOR (seq 0) or ALIVE from `from`: follow it, challenge it, or tell it its epoch is
    /// stale.
    fn step_claim(&mut self, now: Duration, from: &str, epoch: Term, seq: u64) {
        let outranks_me = self.cfg.rank(from) > self.my_rank();
        if self.lead.role() == Role::Leader {
            if !outranks_me {
                // Two coordinators met: the higher rank stays. A higher epoch makes ours stale first.
                self.observe_epoch(now, epoch);
                let term = self.lead.term();
                self.lead.send(from, Message::Coordinator { epoch: term });
                return;
            }
        } else {
            self.observe_epoch(now, epoch);
            if let Some(l) = self.live_leader(now).filter(|l| *l != from) {
                if self.cfg.rank(l) > self.cfg.rank(from) {
                    return; // we follow a live coordinator that outranks this claimant
                }
            }
            if !outranks_me && self.preempts(now) {
                // Preemption: a lower-ranked coordinator is challenged.
                if self.lead.role() != Role::Candidate {
                    self.start_election(now);
                }
                return;
            }
        }
        if epoch < self.lead.term() {
            // A token below one we have seen: the claimant must take a fresh epoch first.
            let term = self.lead.term();
            self.lead.send(from, Message::AliveAck { epoch: term, seq });
            return;
        }
        self.follow(now, from, epoch);
        self.lead.send(from, Message::AliveAck { epoch, seq });
    }

    fn step_ack(&mut self, now: Duration, from: &str, epoch: Term, seq: u64) {
        if epoch > self.lead.term() {
            self.observe_epoch(now, epoch);
        } else if epoch == self.lead.term() && self.lead.role() == Role::Leader {
            self.lead.acknowledge(now, from, seq, &self.cfg.timing);
        }
    }

    // ----- transitions ------------------------------------------------------------------------

    /// ELECTION to every higher-ranked member; with none, this node coordinates at once.
    fn start_election(&mut self, now: Duration) {
        assert_ne!(self.lead.role(), Role::Leader, "a coordinator does not hold elections");
        self.lead.emit(EventKind::ElectionStarted);
        let my_rank = self.cfg.rank(&self.cfg.id);
        if !self.cfg.peers().any(|p| self.cfg.rank(p) > my_rank) {
            self.become_coordinator(now, self.lead.term());
            return;
        }
        self.lead.set_role(Role::Candidate);
        self.lead.enter(self.lead.term(), None);
        self.deadline = now + self.cfg.timing.election_timeout.0;
        let epoch = self.lead.term();
        for peer in self.cfg.peers().filter(|p| self.cfg.rank(p) > my_rank) {
            self.lead.send(peer, Message::Election { epoch });
        }
    }

    /// A fresh epoch (strictly above `seen` and every epoch seen, and this node's own), persisted
    /// before the COORDINATOR that announces it: the call's outputs start with the `Persist`.
    fn become_coordinator(&mut self, now: Duration, seen: Term) {
        assert_ne!(self.lead.role(), Role::Leader, "already coordinating");
        let seen = seen.max(self.lead.term());
        let Some(epoch) = next_epoch(seen, &self.cfg.members, &self.cfg.id) else {
            // No epoch left (only a state file from elsewhere could bring this): stay a follower.
            self.lead.raise_term(seen);
            self.become_follower(now, None, None);
            return;
        };
        assert!(epoch > seen, "a coordinator's epoch exceeds every epoch it has seen");
        self.yielded = false;
        self.abstain_until = None;
        self.lead.forget_leader_contact();
        // Rounds are numbered from 0 (the announcement); one peer's ack settles one (alone, none).
        let acks_needed = usize::from(self.cfg.members.len() > 1);
        self.lead.lead(now, &self.cfg.id, epoch, 0, acks_needed);
        self.broadcast_round(now);
    }

    /// `why` says why a coordinator steps down; None only where it never held its lease.
    fn become_follower(&mut self, now: Duration, leader: Option<&str>, why: Option<DemoteReason>) {
        self.lead.step_down(why);
        self.lead.enter(self.lead.term(), leader);
        self.reset_timer(now);
    }

    fn follow(&mut self, now: Duration, from: &str, epoch: Term) {
        debug_assert!(epoch >= self.lead.term());
        // A coordinator gets here only from a higher-ranked claimant with a higher epoch: our
        // token is stale.
        self.lead.step_down(Some(DemoteReason::HigherTerm));
        self.lead.enter(epoch, Some(from));
        self.lead.heard_leader(now);
        self.reset_timer(now);
    }

    /// A higher epoch than ours: remember it (persisted). A coordinator's token is then stale: it
    /// ends that leadership and takes a fresh epoch above it.
    fn observe_epoch(&mut self, now: Duration, epoch: Term) {
        if epoch <= self.lead.term() {
            return;
        }
        if self.lead.role() == Role::Leader {
            self.lead.step_down(Some(DemoteReason::HigherTerm));
            self.become_coordinator(now, epoch);
        } else {
            self.lead.raise_term(epoch);
        }
    }

    fn step_aside(&mut self, now: Duration, why: DemoteReason) {
        if self.lead.role() != Role::Leader {
            return;
        }
        self.become_follower(now, None, Some(why));
        self.yielded = true;
        self.abstain_until = Some(now + abstention(&self.cfg.timing));
    }

    /// COORDINATOR (round 0) or ALIVE to every member.
    fn broadcast_round(&mut self, now: Duration) {
        self.lead.heartbeat(now, &self.cfg, |epoch, seq| match seq {
            0 => Message::Coordinator { epoch },
            _ => Message::Alive { epoch, seq },
        });
    }

    // ----- helpers ----------------------------------------------------------------------------

    fn my_rank(&self) -> (i64, &str) {
        self.cfg.rank(&self.cfg.id)
    }

    /// The coordinator this follower heard from within `election_timeout.min`, if any.
    fn live_leader(&self, now: Duration) -> Option<&NodeId> {
        self.lead.live_leader(now, self.cfg.timing.election_timeout.0, &self.cfg.id)
    }

    fn abstaining(&self, now: Duration) -> bool {
        self.abstain_until.is_some_and(|u| now < u)
    }

    fn preempts(&self, now: Duration) -> bool {
        self.cfg.bully_preempt && !self.yielded && !self.abstaining(now)
    }

    /// The start of every input: starts the clock, keeps time monotonic, and steps a coordinator
    /// whose lease lapsed down before anything else (so nothing renews a lapsed lease).
    fn advance(&mut self, now: Duration) -> Duration {
        let (now, booted) = self.lead.advance_clock(now);
        if booted {
            self.reset_timer(now);
        }
        if self.lead.lease_lapsed(now) {
            self.become_follower(now, None, Some(DemoteReason::LostLease));
        }
        now
    }

    fn reset_timer(&mut self, now: Duration) {
        self.deadline = now + random_timeout(&self.cfg.timing, &mut self.rng);
    }

    /// Drains the outputs of one call, the new epoch (if any) first: it is durable before the
    /// COORDINATOR that announces it leaves the node.
    fn take_outputs(&mut self) -> Vec<Output> {
        self.lead.take_outputs(None, &self.cfg.id)
    }
}

impl Coordinator for Bully {
    fn config(&self) -> &Config {
        &self.cfg
    }

    fn lead(&self) -> &Leadership {
        &self.lead
    }

    fn advance(&mut self, now: Duration) -> Duration {
        Bully::advance(self, now)
    }

    /// Bully messages only, with an epoch at most `MAX_TERM_AHEAD` beyond ours (see raft).
    fn plausible(&self, message: &Message) -> bool {
        message.algorithm() == Algorithm::Bully && self.lead.plausible_term(message.term())
    }

    fn step_message(&mut self, now: Duration, from: &str, message: Message) {
        Bully::step_message(self, now, from, message)
    }

    fn start_election_now(&mut self, now: Duration) {
        self.abstain_until = None;
        self.start_election(now);
    }

    fn step_aside(&mut self, now: Duration, why: DemoteReason) {
        Bully::step_aside(self, now, why)
    }

    fn take_outputs(&mut self) -> Vec<Output> {
        Bully::take_outputs(self)
    }
}
