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
//! `Demoted` carries a reason; they alternate, as in raft.
//!
//! **Requests.** `campaign` starts an election. `resign`, `shut_down` and `transfer_leadership` step
//! down and keep out of elections for a while (`election_timeout.max + 2 * election_timeout.min`) so
//! the next-ranked live peer wins, and this node stops preempting until it next coordinates. Bully
//! chooses by rank: after a transfer the coordinator is the highest-ranked live peer, `to` or not.

use std::collections::VecDeque;
use std::time::Duration;

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use super::config::{Algorithm, Config, NodeId};
use super::messages::{DemoteReason, EventKind, HardState, Message, Output, Term};
use super::outbox::{random_timeout, Outbox};
use super::raft::MAX_TERM_AHEAD;
use super::{Role, State, TransferError};

/// Heartbeat rounds a coordinator remembers while waiting for acks (a backstop, as in raft).
const MAX_OPEN_ROUNDS: usize = 64;

/// What only a coordinator keeps.
#[derive(Debug, Clone)]
struct Coordination {
    next_seq: u64,
    heartbeat_deadline: Duration,
    /// Rounds not yet acknowledged: sequence number and send time.
    rounds: VecDeque<(u64, Duration)>,
    /// When this node became coordinator: without any ack for `election_timeout.min` it gives up.
    since: Duration,
    /// None until a peer acknowledged a round; once set, the coordinator steps down the moment it
    /// passes, so it is never renewed after lapsing.
    lease_expiry: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Bully {
    cfg: Config,
    rng: Pcg64Mcg,

    /// The highest epoch this node has seen (durable, as `HardState.term`); a coordinator's own.
    term: Term,

    role: Role,
    leader: Option<NodeId>,
    booted_at: Option<Duration>,
    last_now: Duration,
    /// Follower: when it gives up on its coordinator (or, after an `Ok`, on the coordinator to
    /// come) and starts an election. Candidate: when it stops waiting for `Ok` and takes over.
    deadline: Duration,
    coordination: Option<Coordination>,
    /// When this node last accepted a claim from the coordinator it follows.
    leader_contact: Option<Duration>,
    /// After resigning: no elections, no `Ok`, no preemption before this instant.
    abstain_until: Option<Duration>,
    /// After resigning: no preemption until this node coordinates again.
    yielded: bool,
    outbox: Outbox,
}

impl Bully {
    /// A node starting from `hard` (zeros for a fresh node, the persisted state on restart).
    pub fn new(cfg: Config, hard: HardState) -> Bully {
        Bully {
            rng: Pcg64Mcg::seed_from_u64(cfg.seed),
            term: hard.term,
            outbox: Outbox::new(HardState { term: hard.term, voted_for: hard.voted_for }),
            role: Role::Follower,
            leader: None,
            booted_at: None,
            last_now: Duration::ZERO,
            deadline: Duration::ZERO,
            coordination: None,
            leader_contact: None,
            abstain_until: None,
            yielded: false,
            cfg,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The highest epoch seen (the coordinator's own epoch while it coordinates).
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

    /// Coordinator and inside its lease (a peer acknowledged a recent round) at `now`.
    pub fn is_leader(&self, now: Duration) -> bool {
        self.role == Role::Leader && self.lease_expiry().is_some_and(|e| now < e)
    }

    /// The epoch, while `is_leader`: unique to this leadership and above every epoch this node saw.
    pub fn fencing_token(&self, now: Duration) -> Option<Term> {
        self.is_leader(now).then_some(self.term)
    }

    pub fn next_deadline(&self) -> Option<Duration> {
        self.booted_at?;
        Some(match &self.coordination {
            Some(c) => match c.lease_expiry {
                Some(expiry) => c.heartbeat_deadline.min(expiry),
                None => c.heartbeat_deadline.min(c.since + self.cfg.timing.election_timeout.0),
            },
            None => self.deadline,
        })
    }

    /// Bully messages only, with an epoch at most `MAX_TERM_AHEAD` beyond ours (see raft).
    pub fn plausible(&self, message: &Message) -> bool {
        message.algorithm() == Algorithm::Bully && message.term() <= self.term.saturating_add(MAX_TERM_AHEAD)
    }

    // ----- inputs -----------------------------------------------------------------------------

    pub fn tick(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        match self.role {
            Role::Leader => self.tick_coordinator(now),
            Role::Candidate => self.tick_candidate(now),
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

    /// Starts an election now (nothing on a coordinator).
    pub fn campaign(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        if self.role != Role::Leader {
            self.abstain_until = None;
            self.start_election(now);
        }
        self.take_outputs()
    }

    /// A coordinator steps down (`Resigned`) and keeps out of the next election.
    pub fn resign(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        self.step_aside(now, DemoteReason::Resigned);
        self.take_outputs()
    }

    /// A graceful stop: as `resign`, with reason `Stopped`.
    pub fn shut_down(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        self.step_aside(now, DemoteReason::Stopped);
        self.take_outputs()
    }

    /// As `resign`: Bully picks the next coordinator by rank, so `to` is only checked to be a peer.
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
            self.become_coordinator(now);
        }
    }

    fn tick_coordinator(&mut self, now: Duration) {
        let c = self.coordination.as_ref().expect("a coordinator has coordination state");
        if c.lease_expiry.is_none() && now >= c.since + self.cfg.timing.election_timeout.0 {
            // Nobody acknowledged the announcement or any heartbeat: never elected, nothing to end.
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
        let term = self.term;
        self.send(from, Message::Ok { epoch: term });
        match self.role {
            Role::Leader => self.send(from, Message::Coordinator { epoch: term }),
            Role::Candidate => {}
            _ if self.live_leader(now).is_some() => {}
            _ => self.start_election(now),
        }
    }

    /// OK from a higher-ranked node: it takes over; wait for its COORDINATOR.
    fn step_ok(&mut self, now: Duration, from: &str, epoch: Term) {
        self.observe_epoch(now, epoch);
        if self.role == Role::Candidate && self.cfg.rank(from) > self.my_rank() {
            self.role = Role::Follower;
            self.enter(self.term, None);
            self.reset_timer(now);
        }
    }

    /// COORDINATOR (seq 0) or ALIVE from `from`: follow it, challenge it, or tell it its epoch is
    /// stale.
    fn step_claim(&mut self, now: Duration, from: &str, epoch: Term, seq: u64) {
        let outranks_me = self.cfg.rank(from) > self.my_rank();
        if self.role == Role::Leader {
            if !outranks_me {
                // Two coordinators met: the higher rank stays. A higher epoch makes ours stale first.
                self.observe_epoch(now, epoch);
                let term = self.term;
                self.send(from, Message::Coordinator { epoch: term });
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
                if self.role != Role::Candidate {
                    self.start_election(now);
                }
                return;
            }
        }
        if epoch < self.term {
            // A token below one we have seen: the claimant must take a fresh epoch first.
            let term = self.term;
            self.send(from, Message::AliveAck { epoch: term, seq });
            return;
        }
        self.follow(now, from, epoch);
        self.send(from, Message::AliveAck { epoch, seq });
    }

    fn step_ack(&mut self, now: Duration, from: &str, epoch: Term, seq: u64) {
        if epoch > self.term {
            self.observe_epoch(now, epoch);
        } else if epoch == self.term && self.role == Role::Leader {
            self.record_ack(now, from, seq);
        }
    }

    fn record_ack(&mut self, now: Duration, _from: &str, seq: u64) {
        let lease = self.cfg.timing.lease_duration();
        let c = self.coordination.as_mut().expect("a coordinator has coordination state");
        // A round whose lease would already be over grants nothing (as in raft).
        let Some(&(_, sent_at)) = c.rounds.iter().find(|(s, at)| *s == seq && *at + lease > now) else { return };
        while c.rounds.front().is_some_and(|(s, _)| *s <= seq) {
            c.rounds.pop_front();
        }
        let first = c.lease_expiry.is_none();
        let expiry = sent_at + lease;
        c.lease_expiry = Some(c.lease_expiry.map_or(expiry, |e| e.max(expiry)));
        if first {
            self.emit(EventKind::Elected);
        }
    }

    // ----- transitions ------------------------------------------------------------------------

    /// ELECTION to every higher-ranked member; with none, this node coordinates at once.
    fn start_election(&mut self, now: Duration) {
        assert_ne!(self.role, Role::Leader, "a coordinator does not hold elections");
        let my_rank = self.my_rank();
        let higher: Vec<NodeId> = self.cfg.peers().filter(|p| self.cfg.rank(p) > my_rank).cloned().collect();
        self.emit(EventKind::ElectionStarted);
        if higher.is_empty() {
            self.become_coordinator(now);
            return;
        }
        self.role = Role::Candidate;
        self.enter(self.term, None);
        self.deadline = now + self.cfg.timing.election_timeout.0;
        let epoch = self.term;
        for peer in higher {
            self.send(&peer, Message::Election { epoch });
        }
    }

    /// A fresh epoch (strictly above every epoch seen, and this node's own), persisted before the
    /// COORDINATOR that announces it: the call's outputs start with the `Persist`.
    fn become_coordinator(&mut self, now: Duration) {
        assert_ne!(self.role, Role::Leader, "already coordinating");
        let Some(epoch) = self.next_epoch() else {
            // No epoch left (only a state file from elsewhere could bring this): stay a follower.
            self.become_follower(now, None, None);
            return;
        };
        assert!(epoch > self.term, "a coordinator's epoch exceeds every epoch it has seen");
        self.role = Role::Leader;
        self.yielded = false;
        self.abstain_until = None;
        self.leader_contact = None;
        self.enter(epoch, Some(self.cfg.id.clone()));
        self.coordination = Some(Coordination {
            next_seq: 0,
            heartbeat_deadline: now,
            rounds: VecDeque::new(),
            since: now,
            lease_expiry: None,
        });
        self.broadcast_round(now);
    }

    /// `why` says why a coordinator steps down; None only where it never held its lease.
    fn become_follower(&mut self, now: Duration, leader: Option<NodeId>, why: Option<DemoteReason>) {
        if self.role == Role::Leader {
            self.coordination = None;
            if self.outbox.elected_open() {
                self.emit_demoted(why.expect("a coordinator that held its lease steps down for a reason"));
            }
        }
        self.role = Role::Follower;
        self.enter(self.term, leader);
        self.reset_timer(now);
    }

    fn follow(&mut self, now: Duration, from: &str, epoch: Term) {
        debug_assert!(epoch >= self.term);
        if self.role == Role::Leader {
            // Only a higher-ranked claimant with a higher epoch gets here: our token is stale.
            self.coordination = None;
            if self.outbox.elected_open() {
                self.emit_demoted(DemoteReason::HigherTerm);
            }
        }
        self.role = Role::Follower;
        self.enter(epoch, Some(from.to_string()));
        self.leader_contact = Some(now);
        self.reset_timer(now);
    }

    /// A higher epoch than ours: remember it (persisted). A coordinator's token is then stale: it
    /// ends that leadership and takes a fresh epoch above it.
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
        self.yielded = true;
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
        while c.rounds.len() >= MAX_OPEN_ROUNDS || c.rounds.front().is_some_and(|(_, at)| *at + lease <= now) {
            c.rounds.pop_front();
        }
        let mut first = false;
        if alone {
            first = c.lease_expiry.is_none();
            c.lease_expiry = Some(now + lease);
        } else {
            c.rounds.push_back((seq, now));
        }
        if first {
            self.emit(EventKind::Elected);
        }
        let epoch = self.term;
        let message = if seq == 0 { Message::Coordinator { epoch } } else { Message::Alive { epoch, seq } };
        self.outbox.broadcast(&self.cfg.members, &self.cfg.id, &message.clone());
    }

    // ----- helpers ----------------------------------------------------------------------------

    fn my_rank(&self) -> (i64, &str) {
        self.cfg.rank(&self.cfg.id)
    }

    /// The smallest epoch above ours that belongs to this node: congruent to its index in the
    /// sorted member list, modulo the group size. None past `Term::MAX`.
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

    /// The coordinator this follower heard from within `election_timeout.min`, if any.
    fn live_leader(&self, now: Duration) -> Option<&NodeId> {
        let fresh = self.leader_contact.is_some_and(|c| now < c + self.cfg.timing.election_timeout.0);
        (self.role == Role::Follower && fresh).then_some(self.leader.as_ref()).flatten().filter(|l| **l != self.cfg.id)
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

    /// Moves to epoch `term` (never back) with `leader`, reporting the term first, then the leader.
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

    /// Drains the outputs of one call, the new hard state (if any) first: a new epoch is durable
    /// before the COORDINATOR that announces it leaves the node.
    fn take_outputs(&mut self) -> Vec<Output> {
        assert!(self.role != Role::Leader || self.leader.as_ref() == Some(&self.cfg.id), "a coordinator leads itself");
        let holds_lease = self.role == Role::Leader && self.lease_expiry().is_some();
        let hard = self.hard_state();
        self.outbox.take(hard.term, hard.voted_for.as_ref(), holds_lease)
    }
}
