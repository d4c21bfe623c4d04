//! The Ring election (Chang and Roberts, "An improved algorithm for decentralized extrema-finding
//! in circular configurations of processes", CACM 1979), with the failure handling of the textbook
//! ring algorithm, behind the same Engine contract as Raft and Bully.
//!
//! **The ring.** The members ordered by rank (`(priority, node_id)`, [`Config::rank`]), ascending;
//! each member's successor is the next one, the last wrapping round to the first. Every message
//! passed along the ring is acknowledged hop by hop (`RingAck`); a successor that does not
//! acknowledge within `heartbeat_interval` is skipped, and the message goes to the one after it.
//!
//! **The rules**, named as the functions that implement them:
//! - `start_election`: a node that loses its coordinator (no `RingAlive` within its election
//!   timeout) marks itself a participant and sends `RingElection` naming itself.
//! - `step_election` (Chang and Roberts): a higher-ranked candidate is passed on; a lower-ranked one
//!   is replaced by this node if it is not yet a participant, and swallowed if it is; a node that
//!   receives its own name has gone round the ring: it is the highest-ranked live member and wins.
//!   The message also carries the highest epoch any node on its way has seen.
//! - `become_coordinator`: a fresh epoch, persisted before `RingCoordinator` announces it, which
//!   circulates once: each member follows it and passes it on, until it is back at the winner.
//! - The coordinator then sends `RingAlive` to every member directly every `heartbeat_interval`
//!   (failure detection needs no ring), acknowledged with `RingAliveAck`.
//! - A node that hears a lower-ranked coordinator (it was skipped, or recovered, or was on the
//!   other side of a partition) starts an election, so the highest-ranked live member ends up
//!   coordinating, as in Bully with preemption.
//!
//! **Epoch, fencing, lease and events** are Bully's (see `bully.rs`; the lease, events and outputs
//! are the shared `leadership` core's): `HardState.term` holds the
//! highest epoch seen (`voted_for` unused); epochs are unique to their node (congruent to its index
//! modulo the group size) and above every epoch seen; a stale claim is answered with the higher
//! epoch and the coordinator takes a fresh one; `is_leader` holds for
//! `election_timeout.min * (1 - max_clock_drift)` from the send time of the newest heartbeat round
//! that at least one peer acknowledged. No majority rule: under a partition each side can have
//! its own coordinator, and the fencing tokens order them.
//!
//! **Requests.** `campaign` starts an election; `resign`, `shut_down` and `transfer_leadership`
//! step down and keep this node from naming itself for a while, so the next-ranked live member wins.

use std::time::Duration;

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use super::config::{Algorithm, Config, NodeId};
use super::coordinator::Coordinator;
use super::leadership::{abstention, next_epoch, Leadership};
use super::limits::MAX_OPEN_HOPS;
use super::messages::{DemoteReason, EventKind, HardState, Message, Output, Term};
use super::outbox::random_timeout;
use super::Role;

/// A message passed along the ring, waiting for its successor's `RingAck`.
#[derive(Debug, Clone)]
struct Hop {
    id: u64,
    message: Message,
    /// Index into the ring (the successors, nearest first) of the member it was sent to.
    to: usize,
    deadline: Duration,
}

#[derive(Debug, Clone)]
pub struct Ring {
    cfg: Config,
    rng: Pcg64Mcg,
    /// This node's successors, nearest first: the ring as seen from here.
    successors: Vec<NodeId>,
    /// Role, epoch (`term`: the highest seen, durable; a coordinator's own), coordinator, lease
    /// and outputs.
    lead: Leadership,
    /// Follower or participant: when to (re)start an election.
    deadline: Duration,
    /// Chang and Roberts' participant flag: an election this node joined is circulating.
    participant: bool,
    hops: Vec<Hop>,
    next_hop: u64,
    abstain_until: Option<Duration>,
}

impl Ring {
    pub fn new(cfg: Config, hard: HardState) -> Ring {
        let mut order: Vec<NodeId> = cfg.members.clone();
        order.sort_by(|a, b| cfg.rank(a).cmp(&cfg.rank(b)));
        let me = order.iter().position(|m| *m == cfg.id).expect("a member");
        let successors = (1..order.len()).map(|i| order[(me + i) % order.len()].clone()).collect();
        Ring {
            rng: Pcg64Mcg::seed_from_u64(cfg.seed),
            successors,
            lead: Leadership::new(hard),
            deadline: Duration::ZERO,
            participant: false,
            hops: Vec::new(),
            next_hop: 1,
            abstain_until: None,
            cfg,
        }
    }

    pub fn next_deadline(&self) -> Option<Duration> {
        let own = self.lead.next_deadline(Some(self.cfg.timing.election_timeout.0), self.deadline)?;
        Some(self.hops.iter().map(|h| h.deadline).fold(own, Duration::min))
    }

    // ----- inputs -----------------------------------------------------------------------------

    pub fn tick(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        self.tick_hops(now);
        match self.lead.role() {
            Role::Leader => self.tick_coordinator(now),
            _ => self.tick_follower(now),
        }
        self.take_outputs()
    }

    // ----- timers -----------------------------------------------------------------------------

    /// Hops not acknowledged in time skip their silent successor; past the last, the message has
    /// found nobody: an election naming this node has gone round (alone, it wins); anything else
    /// is dropped. A message whose silent successor is the very node it names (a dead candidate,
    /// a dead coordinator) has gone round: it is dropped rather than sent round again.
    fn tick_hops(&mut self, now: Duration) {
        let due: Vec<Hop> = {
            let (due, open): (Vec<Hop>, Vec<Hop>) =
                std::mem::take(&mut self.hops).into_iter().partition(|h| now >= h.deadline);
            self.hops = open;
            due
        };
        for hop in due {
            let silent = &self.successors[hop.to];
            let named = match &hop.message {
                Message::RingElection { candidate, .. } => candidate,
                Message::RingCoordinator { leader, .. } => leader,
                _ => unreachable!("only elections and coordinators travel the ring"),
            };
            if named == silent {
                continue;
            }
            let next = hop.to + 1;
            if next < self.successors.len() {
                self.pass_to(now, hop.message, next);
            } else if let Message::RingElection { candidate, .. } = &hop.message {
                if *candidate == self.cfg.id && self.lead.role() != Role::Leader && self.participant {
                    self.become_coordinator(now, self.lead.term());
                }
            }
        }
    }

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

    fn tick_coordinator(&mut self, now: Duration) {
        if self.lead.unanswered_for(now, self.cfg.timing.election_timeout.0) {
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
            Message::RingElection { epoch, candidate, hop } => {
                self.lead.send(from, Message::RingAck { hop });
                self.step_election(now, epoch, candidate);
            }
            Message::RingCoordinator { epoch, leader, hop } => {
                self.lead.send(from, Message::RingAck { hop });
                self.step_coordinator(now, epoch, leader);
            }
            Message::RingAck { hop } => self.hops.retain(|h| h.id != hop),
            Message::RingAlive { epoch, seq } => self.step_alive(now, from, epoch, seq),
            Message::RingAliveAck { epoch, seq } => {
                if epoch > self.lead.term() {
                    self.observe_epoch(now, epoch);
                } else if epoch == self.lead.term() && self.lead.role() == Role::Leader {
                    self.lead.acknowledge(now, from, seq, &self.cfg.timing);
                }
            }
            _ => {}
        }
    }

    /// Chang and Roberts: pass a higher candidate on, replace a lower one unless already a
    /// participant, and win on receiving one's own name.
    fn step_election(&mut self, now: Duration, epoch: Term, candidate: NodeId) {
        self.observe_epoch(now, epoch);
        if candidate == self.cfg.id {
            if self.lead.role() != Role::Leader && self.participant {
                self.become_coordinator(now, self.lead.term());
            }
            return;
        }
        if self.lead.role() == Role::Leader {
            if self.cfg.rank(&candidate) > self.my_rank() {
                self.pass_on(now, Message::RingElection { epoch: self.lead.term(), candidate, hop: 0 });
            } else {
                // A live coordinator outranks the candidate: tell the ring once more.
                self.announce(now);
            }
            return;
        }
        let abstaining = self.abstaining(now);
        if self.cfg.rank(&candidate) > self.my_rank() || abstaining {
            self.join(now);
            self.pass_on(now, Message::RingElection { epoch: self.lead.term(), candidate, hop: 0 });
        } else if !self.participant {
            self.join(now);
            let me = self.cfg.id.clone();
            self.pass_on(now, Message::RingElection { epoch: self.lead.term(), candidate: me, hop: 0 });
        }
        // else: a participant swallows a lower candidate; its own higher one is circulating.
    }

    /// COORDINATOR circulating once: follow it and pass it on, unless it is back at its sender, is
    /// stale, or is outranked by this node (which then holds an election of its own).
    fn step_coordinator(&mut self, now: Duration, epoch: Term, leader: NodeId) {
        if leader == self.cfg.id {
            return; // round the ring once
        }
        if self.lead.role() == Role::Leader && self.cfg.rank(&leader) < self.my_rank() {
            self.observe_epoch(now, epoch);
            if self.lead.role() == Role::Leader {
                self.announce(now);
            }
            return;
        }
        self.observe_epoch(now, epoch);
        if epoch < self.lead.term() {
            let term = self.lead.term();
            self.lead.send(&leader, Message::RingAliveAck { epoch: term, seq: 0 });
            return;
        }
        if self.cfg.rank(&leader) < self.my_rank() && !self.abstaining(now) {
            if !self.participant {
                self.start_election(now);
            }
            return;
        }
        self.follow(now, &leader, epoch);
        self.pass_on(now, Message::RingCoordinator { epoch, leader, hop: 0 });
    }

    fn step_alive(&mut self, now: Duration, from: &str, epoch: Term, seq: u64) {
        let outranks_me = self.cfg.rank(from) > self.my_rank();
        if self.lead.role() == Role::Leader {
            if !outranks_me {
                self.observe_epoch(now, epoch);
                if self.lead.role() == Role::Leader {
                    self.announce(now);
                }
                return;
            }
        } else {
            self.observe_epoch(now, epoch);
            if let Some(l) = self.live_leader(now).filter(|l| *l != from) {
                if self.cfg.rank(l) > self.cfg.rank(from) {
                    return;
                }
            }
            if !outranks_me && !self.abstaining(now) {
                if !self.participant {
                    self.start_election(now);
                }
                return;
            }
        }
        if epoch < self.lead.term() {
            let term = self.lead.term();
            self.lead.send(from, Message::RingAliveAck { epoch: term, seq });
            return;
        }
        self.follow(now, from, epoch);
        self.lead.send(from, Message::RingAliveAck { epoch, seq });
    }

    // ----- transitions ------------------------------------------------------------------------

    fn start_election(&mut self, now: Duration) {
        assert_ne!(self.lead.role(), Role::Leader, "a coordinator does not hold elections");
        self.lead.emit(EventKind::ElectionStarted);
        if self.successors.is_empty() {
            self.participant = true;
            self.become_coordinator(now, self.lead.term());
            return;
        }
        self.participant = false;
        self.join(now);
        self.lead.enter(self.lead.term(), None);
        let me = self.cfg.id.clone();
        self.pass_on(now, Message::RingElection { epoch: self.lead.term(), candidate: me, hop: 0 });
    }

    /// Marks this node a participant (role `Candidate`) and arms the timer that restarts the
    /// election if no coordinator comes of it.
    fn join(&mut self, now: Duration) {
        self.lead.set_role(Role::Candidate);
        if !self.participant {
            self.participant = true;
            self.reset_timer(now);
            // A full circle of hops, each possibly skipping, may take a while in a large ring.
            self.deadline += self.cfg.timing.heartbeat_interval * self.cfg.members.len() as u32;
        }
    }

    /// A fresh epoch (strictly above `seen` and every epoch seen, and this node's own), persisted
    /// before the COORDINATOR that announces it.
    fn become_coordinator(&mut self, now: Duration, seen: Term) {
        assert_ne!(self.lead.role(), Role::Leader, "already coordinating");
        self.participant = false;
        let seen = seen.max(self.lead.term());
        let Some(epoch) = next_epoch(seen, &self.cfg.members, &self.cfg.id) else {
            self.lead.raise_term(seen);
            self.become_follower(now, None, None);
            return;
        };
        assert!(epoch > seen, "a coordinator's epoch exceeds every epoch it has seen");
        self.abstain_until = None;
        self.lead.forget_leader_contact();
        // Rounds are numbered from 0; one peer's ack settles one (alone, none).
        let acks_needed = usize::from(self.cfg.members.len() > 1);
        self.lead.lead(now, &self.cfg.id, epoch, 0, acks_needed);
        self.announce(now);
        self.broadcast_round(now);
    }

    fn become_follower(&mut self, now: Duration, leader: Option<&str>, why: Option<DemoteReason>) {
        self.lead.step_down(why);
        self.participant = false;
        self.lead.enter(self.lead.term(), leader);
        self.reset_timer(now);
    }

    fn follow(&mut self, now: Duration, leader: &str, epoch: Term) {
        self.lead.step_down(Some(DemoteReason::HigherTerm));
        self.participant = false;
        self.lead.enter(epoch, Some(leader));
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
        self.abstain_until = Some(now + abstention(&self.cfg.timing));
    }

    /// RING_ALIVE to every member directly.
    fn broadcast_round(&mut self, now: Duration) {
        self.lead.heartbeat(now, &self.cfg, |epoch, seq| Message::RingAlive { epoch, seq });
    }

    // ----- helpers ----------------------------------------------------------------------------

    /// A coordinator's COORDINATOR, sent round the ring.
    fn announce(&mut self, now: Duration) {
        let (epoch, leader) = (self.lead.term(), self.cfg.id.clone());
        self.pass_on(now, Message::RingCoordinator { epoch, leader, hop: 0 });
    }

    /// Sends a ring message to the nearest successor, to be skipped past if it does not answer.
    fn pass_on(&mut self, now: Duration, message: Message) {
        if self.successors.is_empty() {
            return;
        }
        self.pass_to(now, message, 0);
    }

    fn pass_to(&mut self, now: Duration, mut message: Message, to: usize) {
        let id = self.next_hop;
        self.next_hop += 1;
        match &mut message {
            Message::RingElection { hop, .. } | Message::RingCoordinator { hop, .. } => *hop = id,
            _ => unreachable!("only elections and coordinators travel the ring"),
        }
        if self.hops.len() >= MAX_OPEN_HOPS {
            self.hops.remove(0);
        }
        self.hops.push(Hop { id, message: message.clone(), to, deadline: now + self.cfg.timing.heartbeat_interval });
        self.lead.send(&self.successors[to], message);
    }

    fn my_rank(&self) -> (i64, &str) {
        self.cfg.rank(&self.cfg.id)
    }

    fn live_leader(&self, now: Duration) -> Option<&NodeId> {
        self.lead.live_leader(now, self.cfg.timing.election_timeout.0, &self.cfg.id)
    }

    fn abstaining(&self, now: Duration) -> bool {
        self.abstain_until.is_some_and(|u| now < u)
    }

    /// The start of every input: starts the clock, keeps time monotonic, and steps a coordinator
    /// whose lease lapsed down before anything else.
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

    fn take_outputs(&mut self) -> Vec<Output> {
        self.lead.take_outputs(None, &self.cfg.id)
    }
}

impl Coordinator for Ring {
    fn config(&self) -> &Config {
        &self.cfg
    }

    fn lead(&self) -> &Leadership {
        &self.lead
    }

    fn advance(&mut self, now: Duration) -> Duration {
        Ring::advance(self, now)
    }

    /// Ring messages only, naming members, with an epoch at most `MAX_TERM_AHEAD` beyond ours.
    fn plausible(&self, message: &Message) -> bool {
        let named_ok = match message {
            Message::RingElection { candidate: id, .. } | Message::RingCoordinator { leader: id, .. } => {
                self.cfg.members.contains(id)
            }
            _ => true,
        };
        message.algorithm() == Algorithm::Ring && named_ok && self.lead.plausible_term(message.term())
    }

    fn step_message(&mut self, now: Duration, from: &str, message: Message) {
        Ring::step_message(self, now, from, message)
    }

    fn start_election_now(&mut self, now: Duration) {
        self.abstain_until = None;
        self.start_election(now);
    }

    fn step_aside(&mut self, now: Duration, why: DemoteReason) {
        Ring::step_aside(self, now, why)
    }

    fn take_outputs(&mut self) -> Vec<Output> {
        Ring::take_outputs(self)
    }
}
