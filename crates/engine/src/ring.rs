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
//! **Epoch, fencing, lease and events** are Bully's (see `bully.rs`): `HardState.term` holds the
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
use super::limits::{MAX_OPEN_HOPS, MAX_OPEN_ROUNDS, MAX_TERM_AHEAD};
use super::messages::{DemoteReason, EventKind, HardState, Message, Output, Term};
use super::outbox::{random_timeout, Outbox};
use super::{Role, State, TransferError};

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
struct Coordination {
    next_seq: u64,
    heartbeat_deadline: Duration,
    rounds: Vec<(u64, Duration)>,
    since: Duration,
    lease_expiry: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Ring {
    cfg: Config,
    rng: Pcg64Mcg,
    /// This node's successors, nearest first: the ring as seen from here.
    successors: Vec<NodeId>,
    term: Term,
    role: Role,
    leader: Option<NodeId>,
    booted_at: Option<Duration>,
    last_now: Duration,
    /// Follower or participant: when to (re)start an election.
    deadline: Duration,
    /// Chang and Roberts' participant flag: an election this node joined is circulating.
    participant: bool,
    hops: Vec<Hop>,
    next_hop: u64,
    coordination: Option<Coordination>,
    leader_contact: Option<Duration>,
    abstain_until: Option<Duration>,
    outbox: Outbox,
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
            term: hard.term,
            outbox: Outbox::new(HardState { term: hard.term, voted_for: hard.voted_for }),
            role: Role::Follower,
            leader: None,
            booted_at: None,
            last_now: Duration::ZERO,
            deadline: Duration::ZERO,
            participant: false,
            hops: Vec::new(),
            next_hop: 1,
            coordination: None,
            leader_contact: None,
            abstain_until: None,
            cfg,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn term(&self) -> Term {
        self.term
    }

    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }

    pub fn hard_state(&self) -> HardState {
        HardState { term: self.term, voted_for: None }
    }

    pub fn lease_expiry(&self) -> Option<Duration> {
        self.coordination.as_ref().and_then(|c| c.lease_expiry)
    }

    pub fn state(&self) -> State {
        State {
            role: self.role,
            term: self.term,
            voted_for: None,
            leader: self.leader.clone(),
            lease_expiry: self.lease_expiry(),
            leader_contact: self.leader_contact,
        }
    }

    pub fn is_leader(&self, now: Duration) -> bool {
        self.role == Role::Leader && self.lease_expiry().is_some_and(|e| now < e)
    }

    pub fn fencing_token(&self, now: Duration) -> Option<Term> {
        self.is_leader(now).then_some(self.term)
    }

    pub fn next_deadline(&self) -> Option<Duration> {
        self.booted_at?;
        let own = match &self.coordination {
            Some(c) => match c.lease_expiry {
                Some(expiry) => c.heartbeat_deadline.min(expiry),
                None => c.heartbeat_deadline.min(c.since + self.cfg.timing.election_timeout.0),
            },
            None => self.deadline,
        };
        Some(self.hops.iter().map(|h| h.deadline).fold(own, Duration::min))
    }

    /// Ring messages only, naming members, with an epoch at most `MAX_TERM_AHEAD` beyond ours.
    pub fn plausible(&self, message: &Message) -> bool {
        let named_ok = match message {
            Message::RingElection { candidate: id, .. } | Message::RingCoordinator { leader: id, .. } => {
                self.cfg.members.contains(id)
            }
            _ => true,
        };
        message.algorithm() == Algorithm::Ring && named_ok && message.term() <= self.term.saturating_add(MAX_TERM_AHEAD)
    }

    // ----- inputs -----------------------------------------------------------------------------

    pub fn tick(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        self.tick_hops(now);
        match self.role {
            Role::Leader => self.tick_coordinator(now),
            _ => self.tick_follower(now),
        }
        self.take_outputs()
    }

    pub fn step(&mut self, now: Duration, from: &str, message: Message) -> Vec<Output> {
        let now = self.advance(now);
        if from != self.cfg.id && self.cfg.members.iter().any(|m| m == from) && self.plausible(&message) {
            self.step_message(now, from, message);
        }
        self.take_outputs()
    }

    pub fn campaign(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        if self.role != Role::Leader {
            self.abstain_until = None;
            self.start_election(now);
        }
        self.take_outputs()
    }

    pub fn resign(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        self.step_aside(now, DemoteReason::Resigned);
        self.take_outputs()
    }

    pub fn shut_down(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        self.step_aside(now, DemoteReason::Stopped);
        self.take_outputs()
    }

    /// As `resign`: the ring picks the next coordinator by rank, `to` or not.
    pub fn transfer_leadership(&mut self, now: Duration, to: &str) -> Result<Vec<Output>, TransferError> {
        if to == self.cfg.id || !self.cfg.members.iter().any(|m| m == to) {
            return Err(TransferError::UnknownPeer(to.to_string()));
        }
        if self.role != Role::Leader || self.lease_lapsed(self.last_now.max(now)) {
            return Err(TransferError::NotLeader);
        }
        let now = self.advance(now);
        self.step_aside(now, DemoteReason::Resigned);
        Ok(self.take_outputs())
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
                if *candidate == self.cfg.id && self.role != Role::Leader && self.participant {
                    self.become_coordinator(now);
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
        let c = self.coordination.as_ref().expect("a coordinator has coordination state");
        if c.lease_expiry.is_none() && now >= c.since + self.cfg.timing.election_timeout.0 {
            self.become_follower(now, None, None);
            return;
        }
        if now >= c.heartbeat_deadline {
            self.broadcast_round(now);
        }
    }

    // ----- messages ---------------------------------------------------------------------------

    fn step_message(&mut self, now: Duration, from: &str, message: Message) {
        match message {
            Message::RingElection { epoch, candidate, hop } => {
                self.send(from, Message::RingAck { hop });
                self.step_election(now, epoch, candidate);
            }
            Message::RingCoordinator { epoch, leader, hop } => {
                self.send(from, Message::RingAck { hop });
                self.step_coordinator(now, epoch, leader);
            }
            Message::RingAck { hop } => self.hops.retain(|h| h.id != hop),
            Message::RingAlive { epoch, seq } => self.step_alive(now, from, epoch, seq),
            Message::RingAliveAck { epoch, seq } => {
                if epoch > self.term {
                    self.observe_epoch(now, epoch);
                } else if epoch == self.term && self.role == Role::Leader {
                    self.record_ack(now, seq);
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
            if self.role != Role::Leader && self.participant {
                self.become_coordinator(now);
            }
            return;
        }
        if self.role == Role::Leader {
            if self.cfg.rank(&candidate) > self.my_rank() {
                self.pass_on(now, Message::RingElection { epoch: self.term, candidate, hop: 0 });
            } else {
                // A live coordinator outranks the candidate: tell the ring once more.
                self.pass_on(now, Message::RingCoordinator { epoch: self.term, leader: self.cfg.id.clone(), hop: 0 });
            }
            return;
        }
        let abstaining = self.abstaining(now);
        if self.cfg.rank(&candidate) > self.my_rank() || abstaining {
            self.join(now);
            self.pass_on(now, Message::RingElection { epoch: self.term, candidate, hop: 0 });
        } else if !self.participant {
            self.join(now);
            let me = self.cfg.id.clone();
            self.pass_on(now, Message::RingElection { epoch: self.term, candidate: me, hop: 0 });
        }
        // else: a participant swallows a lower candidate; its own higher one is circulating.
    }

    /// COORDINATOR circulating once: follow it and pass it on, unless it is back at its sender, is
    /// stale, or is outranked by this node (which then holds an election of its own).
    fn step_coordinator(&mut self, now: Duration, epoch: Term, leader: NodeId) {
        if leader == self.cfg.id {
            return; // round the ring once
        }
        if self.role == Role::Leader && self.cfg.rank(&leader) < self.my_rank() {
            self.observe_epoch(now, epoch);
            if self.role == Role::Leader {
                self.pass_on(now, Message::RingCoordinator { epoch: self.term, leader: self.cfg.id.clone(), hop: 0 });
            }
            return;
        }
        self.observe_epoch(now, epoch);
        if epoch < self.term {
            let term = self.term;
            self.send(&leader, Message::RingAliveAck { epoch: term, seq: 0 });
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
        if self.role == Role::Leader {
            if !outranks_me {
                self.observe_epoch(now, epoch);
                if self.role == Role::Leader {
                    let term = self.term;
                    self.pass_on(now, Message::RingCoordinator { epoch: term, leader: self.cfg.id.clone(), hop: 0 });
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
        if epoch < self.term {
            let term = self.term;
            self.send(from, Message::RingAliveAck { epoch: term, seq });
            return;
        }
        self.follow(now, from, epoch);
        self.send(from, Message::RingAliveAck { epoch, seq });
    }

    fn record_ack(&mut self, now: Duration, seq: u64) {
        let lease = self.cfg.timing.lease_duration();
        let c = self.coordination.as_mut().expect("a coordinator has coordination state");
        let Some(&(_, sent_at)) = c.rounds.iter().find(|(s, at)| *s == seq && *at + lease > now) else { return };
        c.rounds.retain(|(s, _)| *s > seq);
        let first = c.lease_expiry.is_none();
        let expiry = sent_at + lease;
        c.lease_expiry = Some(c.lease_expiry.map_or(expiry, |e| e.max(expiry)));
        if first {
            self.emit(EventKind::Elected);
        }
    }

    // ----- transitions ------------------------------------------------------------------------

    fn start_election(&mut self, now: Duration) {
        assert_ne!(self.role, Role::Leader, "a coordinator does not hold elections");
        self.emit(EventKind::ElectionStarted);
        if self.successors.is_empty() {
            self.participant = true;
            self.become_coordinator(now);
            return;
        }
        self.participant = false;
        self.join(now);
        self.enter(self.term, None);
        let me = self.cfg.id.clone();
        self.pass_on(now, Message::RingElection { epoch: self.term, candidate: me, hop: 0 });
    }

    /// Marks this node a participant (role `Candidate`) and arms the timer that restarts the
    /// election if no coordinator comes of it.
    fn join(&mut self, now: Duration) {
        self.role = Role::Candidate;
        if !self.participant {
            self.participant = true;
            self.reset_timer(now);
            // A full circle of hops, each possibly skipping, may take a while in a large ring.
            self.deadline += self.cfg.timing.heartbeat_interval * self.cfg.members.len() as u32;
        }
    }

    fn become_coordinator(&mut self, now: Duration) {
        assert_ne!(self.role, Role::Leader, "already coordinating");
        self.participant = false;
        let Some(epoch) = self.next_epoch() else {
            self.become_follower(now, None, None);
            return;
        };
        assert!(epoch > self.term, "a coordinator's epoch exceeds every epoch it has seen");
        self.role = Role::Leader;
        self.abstain_until = None;
        self.leader_contact = None;
        self.enter(epoch, Some(self.cfg.id.clone()));
        self.coordination = Some(Coordination {
            next_seq: 0,
            heartbeat_deadline: now,
            rounds: Vec::new(),
            since: now,
            lease_expiry: None,
        });
        let me = self.cfg.id.clone();
        self.pass_on(now, Message::RingCoordinator { epoch, leader: me, hop: 0 });
        self.broadcast_round(now);
    }

    fn become_follower(&mut self, now: Duration, leader: Option<NodeId>, why: Option<DemoteReason>) {
        if self.role == Role::Leader {
            self.coordination = None;
            if self.outbox.elected_open() {
                self.emit_demoted(why.expect("a coordinator that held its lease steps down for a reason"));
            }
        }
        self.role = Role::Follower;
        self.participant = false;
        self.enter(self.term, leader);
        self.reset_timer(now);
    }

    fn follow(&mut self, now: Duration, leader: &str, epoch: Term) {
        if self.role == Role::Leader {
            self.coordination = None;
            if self.outbox.elected_open() {
                self.emit_demoted(DemoteReason::HigherTerm);
            }
        }
        self.role = Role::Follower;
        self.participant = false;
        self.enter(epoch, Some(leader.to_string()));
        self.leader_contact = Some(now);
        self.reset_timer(now);
    }

    fn observe_epoch(&mut self, now: Duration, epoch: Term) {
        if epoch <= self.term {
            return;
        }
        if self.role == Role::Leader {
            self.coordination = None;
            if self.outbox.elected_open() {
                self.emit_demoted(DemoteReason::HigherTerm);
            }
            self.role = Role::Follower;
            self.term = epoch;
            self.become_coordinator(now);
        } else {
            let leader = self.leader.clone();
            self.enter(epoch, leader);
        }
    }

    fn step_aside(&mut self, now: Duration, why: DemoteReason) {
        if self.role != Role::Leader {
            return;
        }
        let (min, max) = self.cfg.timing.election_timeout;
        self.become_follower(now, None, Some(why));
        self.abstain_until = Some(now + max + min * 2);
    }

    fn broadcast_round(&mut self, now: Duration) {
        let lease = self.cfg.timing.lease_duration();
        let heartbeat = self.cfg.timing.heartbeat_interval;
        let alone = self.cfg.members.len() == 1;
        let c = self.coordination.as_mut().expect("a coordinator has coordination state");
        let seq = c.next_seq;
        c.next_seq += 1;
        c.heartbeat_deadline = now + heartbeat;
        c.rounds.retain(|(_, at)| *at + lease > now);
        if c.rounds.len() >= MAX_OPEN_ROUNDS {
            c.rounds.remove(0);
        }
        let mut first = false;
        if alone {
            first = c.lease_expiry.is_none();
            c.lease_expiry = Some(now + lease);
        } else {
            c.rounds.push((seq, now));
        }
        if first {
            self.emit(EventKind::Elected);
        }
        let epoch = self.term;
        self.outbox.broadcast(&self.cfg.members, &self.cfg.id, &Message::RingAlive { epoch, seq });
    }

    // ----- helpers ----------------------------------------------------------------------------

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
        let target = self.successors[to].clone();
        self.hops.push(Hop { id, message: message.clone(), to, deadline: now + self.cfg.timing.heartbeat_interval });
        self.send(&target, message);
    }

    fn my_rank(&self) -> (i64, &str) {
        self.cfg.rank(&self.cfg.id)
    }

    fn next_epoch(&self) -> Option<Term> {
        let n = self.cfg.members.len() as Term;
        let i = self.cfg.members.iter().position(|m| *m == self.cfg.id).expect("a member") as Term;
        let base = (self.term - self.term % n).checked_add(i)?;
        if base > self.term {
            Some(base)
        } else {
            base.checked_add(n)
        }
    }

    fn live_leader(&self, now: Duration) -> Option<&NodeId> {
        let fresh = self.leader_contact.is_some_and(|c| now < c + self.cfg.timing.election_timeout.0);
        (self.role == Role::Follower && fresh).then_some(self.leader.as_ref()).flatten().filter(|l| **l != self.cfg.id)
    }

    fn abstaining(&self, now: Duration) -> bool {
        self.abstain_until.is_some_and(|u| now < u)
    }

    fn advance(&mut self, now: Duration) -> Duration {
        if self.booted_at.is_none() {
            self.booted_at = Some(now);
            self.last_now = now;
            self.reset_timer(now);
        }
        self.last_now = self.last_now.max(now);
        let now = self.last_now;
        if self.lease_lapsed(now) {
            self.become_follower(now, None, Some(DemoteReason::LostLease));
        }
        now
    }

    fn lease_lapsed(&self, now: Duration) -> bool {
        self.lease_expiry().is_some_and(|e| now >= e)
    }

    fn reset_timer(&mut self, now: Duration) {
        self.deadline = now + random_timeout(&self.cfg.timing, &mut self.rng);
    }

    fn enter(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term, "epoch never decreases ({} -> {term})", self.term);
        let term_changed = term > self.term;
        let leader_changed = self.leader != leader;
        self.term = term;
        self.leader = leader;
        if term_changed {
            self.emit(EventKind::TermChanged);
        }
        if leader_changed {
            self.emit(EventKind::LeaderChanged);
        }
    }

    fn emit(&mut self, kind: EventKind) {
        assert_ne!(kind, EventKind::Demoted, "demoted always carries a reason");
        self.push_event(kind, None);
    }

    fn emit_demoted(&mut self, why: DemoteReason) {
        self.push_event(EventKind::Demoted, Some(why));
    }

    fn push_event(&mut self, kind: EventKind, reason: Option<DemoteReason>) {
        let holds_lease = self.role == Role::Leader && self.lease_expiry().is_some();
        self.outbox.event(kind, self.term, self.leader.clone(), reason, holds_lease);
    }

    fn send(&mut self, to: &str, message: Message) {
        self.outbox.send(to, message);
    }

    fn take_outputs(&mut self) -> Vec<Output> {
        let holds_lease = self.role == Role::Leader && self.lease_expiry().is_some();
        let hard = self.hard_state();
        self.outbox.take(hard.term, hard.voted_for.as_ref(), holds_lease)
    }
}
