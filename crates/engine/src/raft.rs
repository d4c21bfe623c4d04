//! Raft leader election (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
//! and Ongaro's thesis), with pre-vote (thesis 9.6), check-quorum (thesis 6.2), the disruptive-server
//! rule (thesis 4.2.3) and a leader lease (thesis 6.4). There is no log: any member may lead.
//!
//! The engine is sans-IO. The driver passes the time in (`now`, a `Duration` since the driver's own
//! epoch on this node's clock), and every call returns the outputs to carry out in order: a
//! `Persist` always comes before the sends that depend on it.
//!
//! Why the lease is safe: a voter that acknowledges a heartbeat at `t1` grants no vote (and casts
//! none for itself) to anybody else before `t1 + election_timeout.min` on its own clock, unless the
//! leader handed leadership off with `TimeoutNow`. That promise (`silent_until`) is a fact of its
//! own: it survives every change of term or leader, because a higher-term reply arriving in the
//! meantime must not release it (a schedule found exactly that hole; etcd keys it on knowing a
//! leader, which such a reply clears). A leader therefore holds a majority's silence until
//! `t0 + election_timeout.min` for any round it sent at `t0 <= t1` and a majority acknowledged; it
//! claims only `election_timeout.min * (1 - max_clock_drift)` of that to absorb clock-rate error.
//!
//! Leadership events mean "this node may act as leader". Winning the vote only makes a node
//! `Leader` (with a `LeaderChanged` event); `Elected` comes when it first holds its lease in that
//! term: the first heartbeat round a majority acknowledges (at once in a one-member group). Every
//! `Demoted` carries a `DemoteReason`, and a leader that never held its lease steps down without
//! one, so elected and demoted strictly alternate. A leader whose lease lapses steps down at once
//! (`LostLease`): at its deadline, and also at the start of every input (tick, message, resign...)
//! before anything else, so a late ack never revives a lapsed lease and `is_leader` never turns
//! true again within a term once it has turned false.
//!
//! `check_quorum` therefore governs only a leader that has not yet earned its lease: on, it steps
//! down once no majority has acknowledged a round for `election_timeout.min` after its win (thesis
//! 6.2); off, it stays leader, never `is_leader`, until a higher term deposes it.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use super::config::{Algorithm, Config, NodeId};
use super::limits::{MAX_OPEN_ROUNDS, MAX_TERM_AHEAD};
use super::measures::{RoundTrip, VoteAnswer, VoteCounts};
use super::messages::{DemoteReason, EventKind, HardState, Message, Output, Term};
use super::outbox::{random_timeout, Outbox};
use super::{Role, State, TransferError};

/// One heartbeat broadcast, kept until a majority acknowledges it or it is too old to matter.
#[derive(Debug, Clone)]
struct Round {
    seq: u64,
    sent_at: Duration,
    acks: Vec<NodeId>,
}

/// What only a leader keeps.
#[derive(Debug, Clone)]
struct Leadership {
    next_seq: u64,
    heartbeat_deadline: Duration,
    rounds: VecDeque<Round>,
    /// Send time of the newest round a majority acknowledged (the election itself to begin with):
    /// the base of both the lease and the check-quorum step-down.
    quorum_contact_at: Duration,
    /// None until the first round a majority acknowledged; once set, the leader steps down the
    /// moment it passes, so it is never renewed after lapsing.
    lease_expiry: Option<Duration>,
    /// Newest round each peer acknowledged: the most caught-up peer is the best hand-off target.
    last_ack: BTreeMap<NodeId, u64>,
    /// Send times of the newest rounds (at most MAX_OPEN_ROUNDS), kept after a round is settled
    /// so that every peer's ack, not only the quorum's first, yields a round-trip sample.
    sent_at: VecDeque<(u64, Duration)>,
    /// Round-trip time to each peer that acknowledged a round of this leadership.
    round_trips: BTreeMap<NodeId, RoundTrip>,
}

#[derive(Debug, Clone)]
pub struct Raft {
    cfg: Config,
    rng: Pcg64Mcg,

    // Durable: every change is handed to the driver as a `Persist` before dependent sends.
    term: Term,
    voted_for: Option<NodeId>,

    role: Role,
    leader: Option<NodeId>,
    /// The first `tick`/`step` starts the clock.
    booted_at: Option<Duration>,
    last_now: Duration,
    election_deadline: Duration,
    /// This node grants no vote (its own included) before this instant, except to a `transfer`
    /// campaign: `election_timeout.min` after the last heartbeat it acknowledged, or after it
    /// (re)started, so a lease it granted before a crash still holds.
    silent_until: Option<Duration>,
    /// Vote responses of the current (pre-)campaign: granted or not, per voter (self included).
    votes: BTreeMap<NodeId, bool>,
    leadership: Option<Leadership>,
    /// When this node last handled a heartbeat from the leader it follows.
    leader_contact: Option<Duration>,
    /// Vote requests this node answered, for monitoring only.
    vote_counts: VoteCounts,
    outbox: Outbox,
}

impl Raft {
    /// A node starting from `hard` (all zeros for a fresh node, the persisted state on restart).
    pub fn new(cfg: Config, hard: HardState) -> Raft {
        let rng = Pcg64Mcg::seed_from_u64(cfg.seed);
        Raft {
            rng,
            term: hard.term,
            voted_for: hard.voted_for.clone(),
            outbox: Outbox::new(hard),
            role: Role::Follower,
            leader: None,
            booted_at: None,
            last_now: Duration::ZERO,
            election_deadline: Duration::ZERO,
            silent_until: None,
            votes: BTreeMap::new(),
            leadership: None,
            leader_contact: None,
            vote_counts: VoteCounts::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn id(&self) -> &NodeId {
        &self.cfg.id
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
        HardState { term: self.term, voted_for: self.voted_for.clone() }
    }

    pub fn lease_expiry(&self) -> Option<Duration> {
        self.leadership.as_ref().and_then(|l| l.lease_expiry)
    }

    pub fn vote_counts(&self) -> VoteCounts {
        self.vote_counts
    }

    /// The round-trip time to `peer` measured by this leadership's heartbeats; None unless this
    /// node leads and the peer acknowledged one of its rounds.
    pub fn round_trip(&self, peer: &str) -> Option<RoundTrip> {
        self.leadership.as_ref()?.round_trips.get(peer).copied()
    }

    pub fn state(&self) -> State {
        State {
            role: self.role,
            term: self.term,
            voted_for: self.voted_for.clone(),
            leader: self.leader.clone(),
            lease_expiry: self.lease_expiry(),
            leader_contact: self.leader_contact,
        }
    }

    /// Leader and inside its lease at `now`: the only time a caller may act as the leader.
    pub fn is_leader(&self, now: Duration) -> bool {
        self.role == Role::Leader && self.lease_expiry().is_some_and(|e| now < e)
    }

    /// The term, while `is_leader`: it strictly increases from one leadership to the next.
    pub fn fencing_token(&self, now: Duration) -> Option<Term> {
        self.is_leader(now).then_some(self.term)
    }

    /// The next time `tick` has work to do, or None before the clock has started.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.booted_at?;
        Some(match &self.leadership {
            Some(l) => match l.lease_expiry {
                // Holding a lease: the next heartbeat, or the lapse, whichever comes first.
                Some(expiry) => l.heartbeat_deadline.min(expiry),
                None if self.cfg.timing.check_quorum => {
                    l.heartbeat_deadline.min(l.quorum_contact_at + self.cfg.timing.election_timeout.0)
                }
                None => l.heartbeat_deadline,
            },
            None => self.election_deadline,
        })
    }

    // ----- inputs -----------------------------------------------------------------------------

    /// Timers: a follower or candidate whose election timeout passed campaigns; a leader steps down
    /// when its lease lapsed (or, not yet holding one, with check-quorum, when a majority has been
    /// silent too long), and otherwise sends its heartbeats.
    pub fn tick(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        match self.role {
            Role::Leader => self.tick_heartbeat(now),
            _ => self.tick_election(now),
        }
        self.take_outputs()
    }

    /// Handles one message from `from`. Input from peers never panics: what does not fit is ignored.
    pub fn step(&mut self, now: Duration, from: &str, message: Message) -> Vec<Output> {
        let now = self.advance(now);
        if from != self.cfg.id && self.cfg.members.iter().any(|m| m == from) && self.plausible(&message) {
            self.step_message(now, from, message);
        }
        self.take_outputs()
    }

    /// Whether a message is raft's (another algorithm's is ignored) and its term one a peer
    /// following the rules could send: at most `MAX_TERM_AHEAD` beyond ours. A term far ahead (a forged frame, a corrupt peer) would
    /// otherwise be adopted and persisted, and a term near `Term::MAX` would leave no term to
    /// campaign at, ever: refused, and drivers count it.
    pub fn plausible(&self, message: &Message) -> bool {
        message.algorithm() == Algorithm::Raft && message.term() <= self.term.saturating_add(MAX_TERM_AHEAD)
    }

    /// Starts an election now, as if the election timeout had fired. Does nothing on a leader, and
    /// nothing while this node still owes silence to a leader's lease (it would cast its own vote).
    pub fn campaign(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        if self.role != Role::Leader && !self.in_lease(now) {
            self.start_campaign(now, false);
        }
        self.take_outputs()
    }

    /// A leader steps down (`Demoted` with reason `Resigned`) and hands off to the most caught-up
    /// peer (the one that acknowledged the newest heartbeat). A one-member leader just steps down.
    /// Not a leader: nothing. A leader whose lease has lapsed steps down with `LostLease` instead,
    /// and hands nothing off.
    pub fn resign(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        self.resign_because(now, DemoteReason::Resigned);
        self.take_outputs()
    }

    /// A graceful stop: the same hand-off as `resign`, but the `Demoted` reason is `Stopped`. The
    /// driver calls it before it stops a node; after it, the engine is not used again.
    pub fn shut_down(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        self.resign_because(now, DemoteReason::Stopped);
        self.take_outputs()
    }

    /// A leader hands leadership to `to` with `TimeoutNow`, giving up its own lease first
    /// (`Demoted` with reason `Resigned`). A leader whose lease has lapsed is no longer a leader
    /// here: `NotLeader`, and its next `tick` (due at once: `next_deadline` is the lapse) steps it
    /// down, so the error path changes nothing and loses no output.
    pub fn transfer_leadership(&mut self, now: Duration, to: &str) -> Result<Vec<Output>, TransferError> {
        if to == self.cfg.id || !self.cfg.members.iter().any(|m| m == to) {
            return Err(TransferError::UnknownPeer(to.to_string()));
        }
        if self.role != Role::Leader || self.lease_lapsed(self.last_now.max(now)) {
            return Err(TransferError::NotLeader);
        }
        let now = self.advance(now);
        debug_assert_eq!(self.role, Role::Leader, "checked above: the lease has not lapsed");
        self.hand_off(now, to.to_string(), DemoteReason::Resigned);
        Ok(self.take_outputs())
    }

    // ----- timers -----------------------------------------------------------------------------

    fn tick_election(&mut self, now: Duration) {
        if now >= self.election_deadline {
            self.start_campaign(now, false);
        }
    }

    fn tick_heartbeat(&mut self, now: Duration) {
        let l = self.leadership.as_ref().expect("a leader has leadership state");
        debug_assert!(!self.lease_lapsed(now), "advance steps a leader with a lapsed lease down first");
        let never_leased = l.lease_expiry.is_none();
        let silent_since = l.quorum_contact_at;
        let heartbeat_due = now >= l.heartbeat_deadline;
        if never_leased && self.cfg.timing.check_quorum && now >= silent_since + self.cfg.timing.election_timeout.0 {
            // Check-quorum (thesis 6.2): a majority has not answered for a whole minimum election
            // timeout since the win, so it may already follow somebody else. (A leader that held its
            // lease has stepped down already, when the lease lapsed.)
            self.become_follower(now, self.term, None, Some(DemoteReason::LostLease));
            return;
        }
        if heartbeat_due {
            self.broadcast_heartbeat(now);
        }
    }

    // ----- messages ---------------------------------------------------------------------------

    fn step_message(&mut self, now: Duration, from: &str, message: Message) {
        let term = message.term();
        if term > self.term {
            match message {
                // Pre-vote traffic never raises a term (thesis 9.6): that is its whole point.
                Message::Vote { pre_vote: true, .. } | Message::VoteResponse { pre_vote: true, granted: true, .. } => {}
                // Disruptive-server rule (thesis 4.2.3): while our leader is alive, a higher-term
                // candidate is ignored outright rather than allowed to depose it.
                Message::Vote { transfer: false, .. } if self.in_lease(now) => {
                    return self.vote_counts.record(false, VoteAnswer::InLease);
                }
                Message::Heartbeat { .. } | Message::TimeoutNow { .. } => {
                    self.become_follower(now, term, Some(from), Some(DemoteReason::HigherTerm))
                }
                _ => self.become_follower(now, term, None, Some(DemoteReason::HigherTerm)),
            }
        } else if term < self.term {
            self.step_stale(from, message);
            return;
        }

        match message {
            Message::Vote { term, pre_vote, transfer } => self.handle_vote_request(now, from, term, pre_vote, transfer),
            _ => match self.role {
                Role::Follower => self.step_follower(now, from, message),
                Role::PreCandidate | Role::Candidate => self.step_candidate(now, from, message),
                Role::Leader => self.step_leader(now, from, message),
            },
        }
    }

    /// A message from an older term (paper 5.1): answer so a stale leader or candidate learns the
    /// newer term; drop everything else.
    fn step_stale(&mut self, from: &str, message: Message) {
        match message {
            Message::Heartbeat { seq, .. } => self.send(from, Message::HeartbeatResponse { term: self.term, seq }),
            Message::Vote { pre_vote, .. } => {
                self.vote_counts.record(pre_vote, VoteAnswer::StaleTerm);
                self.send(from, Message::VoteResponse { term: self.term, granted: false, pre_vote })
            }
            _ => {}
        }
    }

    /// RequestVote in any role (paper 5.2, 5.4.1 without a log): one vote per term, first come
    /// first served; a pre-vote is granted when a real vote would be, without changing anything.
    fn handle_vote_request(&mut self, now: Duration, from: &str, term: Term, pre_vote: bool, transfer: bool) {
        let repeat = !pre_vote && self.voted_for.as_deref() == Some(from);
        let can_vote = repeat || (self.voted_for.is_none() && self.leader.is_none()) || (pre_vote && term > self.term);
        if can_vote && !repeat && !transfer && self.in_lease(now) {
            // The disruptive-server rule again: silence, not even a rejection.
            return self.vote_counts.record(pre_vote, VoteAnswer::InLease);
        }
        let answer = match (&self.voted_for, &self.leader) {
            _ if can_vote => VoteAnswer::Granted,
            (Some(_), _) => VoteAnswer::AlreadyVoted,
            (None, _) => VoteAnswer::LeaderKnown,
        };
        self.vote_counts.record(pre_vote, answer);
        if !pre_vote && can_vote {
            debug_assert_eq!(term, self.term);
            self.voted_for = Some(from.to_string());
            self.reset_election_timer(now);
        }
        // A granted pre-vote answers at the term asked for, so the pre-candidate can count it.
        let reply_term = if pre_vote && can_vote { term } else { self.term };
        self.send(from, Message::VoteResponse { term: reply_term, granted: can_vote, pre_vote });
    }

    fn step_follower(&mut self, now: Duration, from: &str, message: Message) {
        match message {
            Message::Heartbeat { seq, .. } => self.handle_heartbeat(now, from, seq),
            Message::TimeoutNow { .. } => self.start_campaign(now, true),
            _ => {}
        }
    }

    fn step_candidate(&mut self, now: Duration, from: &str, message: Message) {
        match message {
            Message::Heartbeat { seq, .. } => {
                // Somebody won this term (paper 5.2): follow it. A candidate has no leadership to end.
                self.become_follower(now, self.term, Some(from), None);
                self.handle_heartbeat(now, from, seq);
            }
            Message::VoteResponse { term, granted, pre_vote } => {
                let campaigning_term = if self.role == Role::PreCandidate { self.term + 1 } else { self.term };
                let expected_kind = pre_vote == (self.role == Role::PreCandidate);
                // A rejected pre-vote answers with the voter's own term, which may be ours.
                if expected_kind && (term == campaigning_term || !granted) {
                    self.votes.insert(from.to_string(), granted);
                    self.count_votes(now);
                }
            }
            Message::TimeoutNow { .. } => self.start_campaign(now, true),
            _ => {}
        }
    }

    fn step_leader(&mut self, now: Duration, from: &str, message: Message) {
        if let Message::HeartbeatResponse { seq, .. } = message {
            self.record_ack(now, from, seq);
        }
        // A heartbeat or TimeoutNow at our own term cannot come from a peer that follows the
        // one-leader-per-term rule; ignore it rather than trust it.
    }

    fn handle_heartbeat(&mut self, now: Duration, from: &str, seq: u64) {
        self.enter(self.term, Some(from));
        self.leader_contact = Some(now);
        self.promise_silence(now);
        self.reset_election_timer(now);
        self.send(from, Message::HeartbeatResponse { term: self.term, seq });
    }

    fn count_votes(&mut self, now: Duration) {
        let granted = self.votes.values().filter(|g| **g).count();
        let rejected = self.votes.len() - granted;
        let quorum = self.cfg.quorum();
        if granted >= quorum {
            match self.role {
                Role::PreCandidate => self.become_candidate(now, false),
                Role::Candidate => self.become_leader(now),
                _ => unreachable!("votes are counted only while campaigning"),
            }
        } else if rejected >= quorum {
            // Only a (pre-)candidate counts votes: no leadership to end.
            self.become_follower(now, self.term, None, None);
        }
    }

    fn record_ack(&mut self, now: Duration, from: &str, seq: u64) {
        let quorum = self.cfg.quorum();
        let lease = self.cfg.timing.lease_duration();
        let l = self.leadership.as_mut().expect("a leader has leadership state");
        // Looked up before inserting: the key is copied only at a peer's first ack of the term.
        match l.last_ack.get_mut(from) {
            Some(last) => *last = (*last).max(seq),
            None => {
                l.last_ack.insert(from.to_string(), seq);
            }
        }
        // Rounds are numbered consecutively, so a round's place in `sent_at` follows from its seq.
        let sent =
            l.sent_at.front().and_then(|&(first, _)| l.sent_at.get(usize::try_from(seq.checked_sub(first)?).ok()?));
        if let Some(&(_, sent_at)) = sent.filter(|(s, _)| *s == seq) {
            let sample = now.saturating_sub(sent_at);
            match l.round_trips.get_mut(from) {
                Some(r) => r.update(sample),
                None => drop(l.round_trips.insert(from.to_string(), RoundTrip::first(sample))),
            }
        }
        // A round whose lease would already be over can grant nothing (as in broadcast_heartbeat):
        // counting it would announce `elected` for a lease that is already gone.
        let Some(round) = l.rounds.iter_mut().find(|r| r.seq == seq && r.sent_at + lease > now) else { return };
        if !round.acks.iter().any(|a| a == from) {
            round.acks.push(from.to_string());
        }
        let mut first_lease = false;
        if round.acks.len() >= quorum {
            let sent_at = round.sent_at;
            // This round and every older one are settled: acks for them can no longer help.
            while l.rounds.front().is_some_and(|r| r.seq <= seq) {
                l.rounds.pop_front();
            }
            if sent_at >= l.quorum_contact_at {
                first_lease = l.lease_expiry.is_none();
                l.quorum_contact_at = sent_at;
                l.lease_expiry = Some(sent_at + lease);
            }
        }
        if first_lease {
            // The first lease of this term: from now on this node may act as leader.
            self.emit(EventKind::Elected);
        }
    }

    // ----- transitions ------------------------------------------------------------------------

    fn start_campaign(&mut self, now: Duration, transfer: bool) {
        // Election timers are always re-armed at least election_timeout.min after the last promise.
        debug_assert!(transfer || !self.in_lease(now), "campaigning inside a promised silence");
        if self.term == Term::MAX {
            // No term is left to campaign at (only a state file from elsewhere could bring this):
            // stay a follower rather than wrap around to term 0.
            self.reset_election_timer(now);
            return;
        }
        if self.cfg.timing.pre_vote && !transfer {
            self.become_pre_candidate(now);
        } else {
            self.become_candidate(now, transfer);
        }
    }

    /// `why` says why a leader steps down; it is None only where the caller cannot be a leader.
    /// A leader that never held its lease steps down without `demoted` (it never announced
    /// `elected`).
    fn become_follower(&mut self, now: Duration, term: Term, leader: Option<&str>, why: Option<DemoteReason>) {
        if self.role == Role::Leader {
            let why = why.expect("a leader steps down for a reason");
            self.leadership = None;
            if self.outbox.elected_open() {
                self.emit_demoted(why);
            }
        }
        self.role = Role::Follower;
        self.votes.clear();
        self.enter(term, leader);
        self.reset_election_timer(now);
    }

    fn become_pre_candidate(&mut self, now: Duration) {
        assert_ne!(self.role, Role::Leader, "a leader never pre-campaigns");
        self.role = Role::PreCandidate;
        self.enter(self.term, None);
        self.reset_election_timer(now);
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        let next = self.term + 1;
        self.broadcast(Message::Vote { term: next, pre_vote: true, transfer: false });
        self.count_votes(now);
    }

    fn become_candidate(&mut self, now: Duration, transfer: bool) {
        assert_ne!(self.role, Role::Leader, "a leader never campaigns");
        self.role = Role::Candidate;
        self.enter(self.term + 1, None);
        self.voted_for = Some(self.cfg.id.clone());
        self.reset_election_timer(now);
        self.emit(EventKind::ElectionStarted);
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        self.broadcast(Message::Vote { term: self.term, pre_vote: false, transfer });
        self.count_votes(now);
    }

    fn become_leader(&mut self, now: Duration) {
        assert_eq!(self.role, Role::Candidate, "only a candidate wins an election");
        assert_eq!(self.voted_for.as_ref(), Some(&self.cfg.id), "a leader's term is its own");
        self.role = Role::Leader;
        self.votes.clear();
        self.leadership = Some(Leadership {
            next_seq: 1,
            heartbeat_deadline: now,
            rounds: VecDeque::new(),
            quorum_contact_at: now,
            lease_expiry: None,
            last_ack: BTreeMap::new(),
            sent_at: VecDeque::new(),
            round_trips: BTreeMap::new(),
        });
        // Candidates know no leader, so winning changes it to us. `elected` waits for the lease.
        self.leader = Some(self.cfg.id.clone());
        self.emit(EventKind::LeaderChanged);
        // Assert leadership at once (paper 5.2) and start earning the lease (alone: earned now).
        self.broadcast_heartbeat(now);
    }

    /// `resign` and `shut_down`: hand off to the most caught-up peer, or, alone, just step down.
    fn resign_because(&mut self, now: Duration, why: DemoteReason) {
        let Some(l) = &self.leadership else { return };
        let best = self.cfg.peers().max_by_key(|p| (l.last_ack.get(*p).copied(), std::cmp::Reverse(*p))).cloned();
        match best {
            Some(peer) => self.hand_off(now, peer, why),
            None => self.become_follower(now, self.term, None, Some(why)),
        }
    }

    fn hand_off(&mut self, now: Duration, to: NodeId, why: DemoteReason) {
        // Stepping down before the target can campaign keeps `is_leader` exclusive: `transfer`
        // votes ignore our lease, so we must stop claiming it now.
        let term = self.term;
        self.become_follower(now, term, None, Some(why));
        self.send(&to, Message::TimeoutNow { term });
    }

    fn broadcast_heartbeat(&mut self, now: Duration) {
        let lease = self.cfg.timing.lease_duration();
        let heartbeat = self.cfg.timing.heartbeat_interval;
        let quorum = self.cfg.quorum();
        let l = self.leadership.as_mut().expect("a leader has leadership state");
        let seq = l.next_seq;
        l.next_seq += 1;
        l.heartbeat_deadline = now + heartbeat;
        if l.sent_at.len() >= MAX_OPEN_ROUNDS {
            l.sent_at.pop_front();
        }
        l.sent_at.push_back((seq, now));
        while l.rounds.len() >= MAX_OPEN_ROUNDS || l.rounds.front().is_some_and(|r| r.sent_at + lease <= now) {
            l.rounds.pop_front();
        }
        let mut first_lease = false;
        if quorum == 1 {
            // Alone, our own ack is a majority.
            first_lease = l.lease_expiry.is_none();
            l.quorum_contact_at = now;
            l.lease_expiry = Some(now + lease);
        } else {
            l.rounds.push_back(Round { seq, sent_at: now, acks: vec![self.cfg.id.clone()] });
        }
        if first_lease {
            self.emit(EventKind::Elected);
        }
        let term = self.term;
        self.broadcast(Message::Heartbeat { term, seq });
    }

    // ----- helpers ----------------------------------------------------------------------------

    /// Whether this node owes silence to a leader: it acknowledged a heartbeat (or (re)started)
    /// within the minimum election timeout, or, as leader, a majority answered that recently.
    fn in_lease(&self, now: Duration) -> bool {
        let promised = self.silent_until.is_some_and(|t| now < t);
        let leading =
            self.leadership.as_ref().is_some_and(|l| now < l.quorum_contact_at + self.cfg.timing.election_timeout.0);
        promised || leading
    }

    fn promise_silence(&mut self, now: Duration) {
        let until = now + self.cfg.timing.election_timeout.0;
        self.silent_until = Some(self.silent_until.map_or(until, |t| t.max(until)));
    }

    /// The start of every input. Starts the clock on the first call and keeps time monotonic (a
    /// driver's clock that steps back is treated as standing still); then, before the input is
    /// handled, a leader whose lease has lapsed steps down, so nothing can renew a lapsed lease.
    fn advance(&mut self, now: Duration) -> Duration {
        if self.booted_at.is_none() {
            self.booted_at = Some(now);
            self.last_now = now;
            self.promise_silence(now);
            self.reset_election_timer(now);
        }
        self.last_now = self.last_now.max(now);
        let now = self.last_now;
        if self.lease_lapsed(now) {
            self.become_follower(now, self.term, None, Some(DemoteReason::LostLease));
        }
        now
    }

    /// A leader that held a lease and whose lease is over at `now`.
    fn lease_lapsed(&self, now: Duration) -> bool {
        self.lease_expiry().is_some_and(|e| now >= e)
    }

    fn reset_election_timer(&mut self, now: Duration) {
        self.election_deadline = now + random_timeout(&self.cfg.timing, &mut self.rng);
    }

    /// Moves to `term` (never back) following `leader`, then reports what changed: the term first,
    /// then the leader, each event already carrying both new values. The leader is copied only
    /// when it changes: a follower enters its leader's term again at every heartbeat.
    fn enter(&mut self, term: Term, leader: Option<&str>) {
        assert!(term >= self.term, "term never decreases ({} -> {term})", self.term);
        let term_changed = term > self.term;
        let leader_changed = self.leader.as_deref() != leader;
        if term_changed {
            self.term = term;
            self.voted_for = None;
        }
        if leader_changed {
            self.leader = leader.map(str::to_string);
        }
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

    fn broadcast(&mut self, message: Message) {
        self.outbox.broadcast(&self.cfg.members, &self.cfg.id, &message);
    }

    /// Drains the outputs of one call, with the new hard state (if any) first: it must be durable
    /// before any message of this call leaves the node.
    fn take_outputs(&mut self) -> Vec<Output> {
        let persisted = self.outbox.persisted();
        assert!(
            self.term > persisted.term || persisted.voted_for.is_none() || persisted.voted_for == self.voted_for,
            "one vote per term"
        );
        let holds_lease = self.role == Role::Leader && self.lease_expiry().is_some();
        self.outbox.take(self.term, self.voted_for.as_ref(), holds_lease)
    }
}
