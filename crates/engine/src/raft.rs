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
use super::leadership::Leadership;
use super::limits::MAX_OPEN_ROUNDS;
use super::measures::{RoundTrip, VoteAnswer, VoteCounts};
use super::messages::{DemoteReason, EventKind, HardState, Message, Output, Term};
use super::outbox::random_timeout;
use super::{Role, State, TransferError};

/// What a leader learns from its followers' acks besides its lease: how far each is caught up
/// and how far away it is. Empty unless this node leads (cleared when its leadership ends).
#[derive(Debug, Clone, Default)]
struct PeerAcks {
    /// Newest round each peer acknowledged: the most caught-up peer is the best hand-off target.
    last_ack: BTreeMap<NodeId, u64>,
    /// Send times of the newest rounds (at most MAX_OPEN_ROUNDS), kept after a round is settled
    /// so that every peer's ack, not only the quorum's first, yields a round-trip sample.
    sent_at: VecDeque<(u64, Duration)>,
    /// Round-trip time to each peer that acknowledged a round of this leadership.
    round_trips: BTreeMap<NodeId, RoundTrip>,
}

impl PeerAcks {
    fn sent(&mut self, seq: u64, now: Duration) {
        if self.sent_at.len() >= MAX_OPEN_ROUNDS {
            self.sent_at.pop_front();
        }
        self.sent_at.push_back((seq, now));
    }

    fn acked(&mut self, now: Duration, from: &str, seq: u64) {
        // Looked up before inserting: the key is copied only at a peer's first ack of the term.
        match self.last_ack.get_mut(from) {
            Some(last) => *last = (*last).max(seq),
            None => drop(self.last_ack.insert(from.to_string(), seq)),
        }
        // Rounds are numbered consecutively, so a round's place in `sent_at` follows from its seq.
        let sent = self
            .sent_at
            .front()
            .and_then(|&(first, _)| self.sent_at.get(usize::try_from(seq.checked_sub(first)?).ok()?));
        if let Some(&(_, sent_at)) = sent.filter(|(s, _)| *s == seq) {
            let sample = now.saturating_sub(sent_at);
            match self.round_trips.get_mut(from) {
                Some(r) => r.update(sample),
                None => drop(self.round_trips.insert(from.to_string(), RoundTrip::first(sample))),
            }
        }
    }

    fn clear(&mut self) {
        self.last_ack.clear();
        self.sent_at.clear();
        self.round_trips.clear();
    }
}

#[derive(Debug, Clone)]
pub struct Raft {
    cfg: Config,
    rng: Pcg64Mcg,
    /// Role, term (durable), leader, the lease and its rounds, events and outputs.
    lead: Leadership,
    /// Durable with the term: every change is handed to the driver as a `Persist` before
    /// dependent sends.
    voted_for: Option<NodeId>,
    election_deadline: Duration,
    /// This node grants no vote (its own included) before this instant, except to a `transfer`
    /// campaign: `election_timeout.min` after the last heartbeat it acknowledged, or after it
    /// (re)started, so a lease it granted before a crash still holds.
    silent_until: Option<Duration>,
    /// Vote responses of the current (pre-)campaign: granted or not, per voter (self included).
    votes: BTreeMap<NodeId, bool>,
    acks: PeerAcks,
    /// Vote requests this node answered, for monitoring only.
    vote_counts: VoteCounts,
}

impl Raft {
    /// A node starting from `hard` (all zeros for a fresh node, the persisted state on restart).
    pub fn new(cfg: Config, hard: HardState) -> Raft {
        Raft {
            rng: Pcg64Mcg::seed_from_u64(cfg.seed),
            voted_for: hard.voted_for.clone(),
            lead: Leadership::new(hard),
            election_deadline: Duration::ZERO,
            silent_until: None,
            votes: BTreeMap::new(),
            acks: PeerAcks::default(),
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
        self.lead.role()
    }

    pub fn term(&self) -> Term {
        self.lead.term()
    }

    pub fn leader(&self) -> Option<&NodeId> {
        self.lead.leader()
    }

    pub fn hard_state(&self) -> HardState {
        HardState { term: self.lead.term(), voted_for: self.voted_for.clone() }
    }

    pub fn lease_expiry(&self) -> Option<Duration> {
        self.lead.lease_expiry()
    }

    pub fn vote_counts(&self) -> VoteCounts {
        self.vote_counts
    }

    /// The round-trip time to `peer` measured by this leadership's heartbeats; None unless this
    /// node leads and the peer acknowledged one of its rounds.
    pub fn round_trip(&self, peer: &str) -> Option<RoundTrip> {
        self.acks.round_trips.get(peer).copied()
    }

    pub fn state(&self) -> State {
        self.lead.state(self.voted_for.as_ref())
    }

    /// Leader and inside its lease at `now`: the only time a caller may act as the leader.
    pub fn is_leader(&self, now: Duration) -> bool {
        self.lead.is_leader(now)
    }

    /// The term, while `is_leader`: it strictly increases from one leadership to the next.
    pub fn fencing_token(&self, now: Duration) -> Option<Term> {
        self.lead.fencing_token(now)
    }

    /// The next time `tick` has work to do, or None before the clock has started. A leader: the
    /// next heartbeat, or the lapse of its lease, whichever comes first (not yet holding one, with
    /// check-quorum: the check instead of the lapse).
    pub fn next_deadline(&self) -> Option<Duration> {
        let check_quorum = self.cfg.timing.check_quorum.then_some(self.cfg.timing.election_timeout.0);
        self.lead.next_deadline(check_quorum, self.election_deadline)
    }

    // ----- inputs -----------------------------------------------------------------------------

    /// Timers: a follower or candidate whose election timeout passed campaigns; a leader steps down
    /// when its lease lapsed (or, not yet holding one, with check-quorum, when a majority has been
    /// silent too long), and otherwise sends its heartbeats.
    pub fn tick(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        match self.lead.role() {
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
    /// following the rules could send: at most `MAX_TERM_AHEAD` beyond ours (see `limits`): refused,
    /// and drivers count it.
    pub fn plausible(&self, message: &Message) -> bool {
        message.algorithm() == Algorithm::Raft && self.lead.plausible_term(message.term())
    }

    /// Starts an election now, as if the election timeout had fired. Does nothing on a leader, and
    /// nothing while this node still owes silence to a leader's lease (it would cast its own vote).
    pub fn campaign(&mut self, now: Duration) -> Vec<Output> {
        let now = self.advance(now);
        if self.lead.role() != Role::Leader && !self.in_lease(now) {
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
        if !self.lead.leads(now) {
            return Err(TransferError::NotLeader);
        }
        let now = self.advance(now);
        debug_assert_eq!(self.lead.role(), Role::Leader, "checked above: the lease has not lapsed");
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
        debug_assert!(!self.lead.lease_lapsed(now), "advance steps a leader with a lapsed lease down first");
        if self.cfg.timing.check_quorum && self.lead.unanswered_for(now, self.cfg.timing.election_timeout.0) {
            // Check-quorum (thesis 6.2): a majority has not answered for a whole minimum election
            // timeout since the win, so it may already follow somebody else. (A leader that held its
            // lease has stepped down already, when the lease lapsed.)
            self.become_follower(now, self.lead.term(), None, Some(DemoteReason::LostLease));
            return;
        }
        if self.lead.heartbeat_due(now) {
            self.broadcast_heartbeat(now);
        }
    }

    // ----- messages ---------------------------------------------------------------------------

    fn step_message(&mut self, now: Duration, from: &str, message: Message) {
        let term = message.term();
        if term > self.lead.term() {
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
        } else if term < self.lead.term() {
            self.step_stale(from, message);
            return;
        }

        match message {
            Message::Vote { term, pre_vote, transfer } => self.handle_vote_request(now, from, term, pre_vote, transfer),
            _ => match self.lead.role() {
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
            Message::Heartbeat { seq, .. } => {
                self.lead.send(from, Message::HeartbeatResponse { term: self.lead.term(), seq })
            }
            Message::Vote { pre_vote, .. } => {
                self.vote_counts.record(pre_vote, VoteAnswer::StaleTerm);
                self.lead.send(from, Message::VoteResponse { term: self.lead.term(), granted: false, pre_vote })
            }
            _ => {}
        }
    }

    /// RequestVote in any role (paper 5.2, 5.4.1 without a log): one vote per term, first come
    /// first served; a pre-vote is granted when a real vote would be, without changing anything.
    fn handle_vote_request(&mut self, now: Duration, from: &str, term: Term, pre_vote: bool, transfer: bool) {
        let repeat = !pre_vote && self.voted_for.as_deref() == Some(from);
        let can_vote = repeat
            || (self.voted_for.is_none() && self.lead.leader().is_none())
            || (pre_vote && term > self.lead.term());
        if can_vote && !repeat && !transfer && self.in_lease(now) {
            // The disruptive-server rule again: silence, not even a rejection.
            return self.vote_counts.record(pre_vote, VoteAnswer::InLease);
        }
        let answer = match (&self.voted_for, self.lead.leader()) {
            _ if can_vote => VoteAnswer::Granted,
            (Some(_), _) => VoteAnswer::AlreadyVoted,
            (None, _) => VoteAnswer::LeaderKnown,
        };
        self.vote_counts.record(pre_vote, answer);
        if !pre_vote && can_vote {
            debug_assert_eq!(term, self.lead.term());
            self.voted_for = Some(from.to_string());
            self.reset_election_timer(now);
        }
        // A granted pre-vote answers at the term asked for, so the pre-candidate can count it.
        let reply_term = if pre_vote && can_vote { term } else { self.lead.term() };
        self.lead.send(from, Message::VoteResponse { term: reply_term, granted: can_vote, pre_vote });
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
                self.become_follower(now, self.lead.term(), Some(from), None);
                self.handle_heartbeat(now, from, seq);
            }
            Message::VoteResponse { term, granted, pre_vote } => {
                let campaigning_term =
                    if self.lead.role() == Role::PreCandidate { self.lead.term() + 1 } else { self.lead.term() };
                let expected_kind = pre_vote == (self.lead.role() == Role::PreCandidate);
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
        self.enter(self.lead.term(), Some(from));
        self.lead.heard_leader(now);
        self.promise_silence(now);
        self.reset_election_timer(now);
        self.lead.send(from, Message::HeartbeatResponse { term: self.lead.term(), seq });
    }

    fn count_votes(&mut self, now: Duration) {
        let granted = self.votes.values().filter(|g| **g).count();
        let rejected = self.votes.len() - granted;
        let quorum = self.cfg.quorum();
        if granted >= quorum {
            match self.lead.role() {
                Role::PreCandidate => self.become_candidate(now, false),
                Role::Candidate => self.become_leader(now),
                _ => unreachable!("votes are counted only while campaigning"),
            }
        } else if rejected >= quorum {
            // Only a (pre-)candidate counts votes: no leadership to end.
            self.become_follower(now, self.lead.term(), None, None);
        }
    }

    fn record_ack(&mut self, now: Duration, from: &str, seq: u64) {
        self.acks.acked(now, from, seq);
        self.lead.acknowledge(now, from, seq, &self.cfg.timing);
    }

    // ----- transitions ------------------------------------------------------------------------

    fn start_campaign(&mut self, now: Duration, transfer: bool) {
        // Election timers are always re-armed at least election_timeout.min after the last promise.
        debug_assert!(transfer || !self.in_lease(now), "campaigning inside a promised silence");
        if self.lead.term() == Term::MAX {
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
        if self.lead.role() == Role::Leader {
            assert!(why.is_some(), "a leader steps down for a reason");
            self.acks.clear();
        }
        self.lead.step_down(why);
        self.votes.clear();
        self.enter(term, leader);
        self.reset_election_timer(now);
    }

    fn become_pre_candidate(&mut self, now: Duration) {
        self.lead.set_role(Role::PreCandidate);
        self.enter(self.lead.term(), None);
        self.reset_election_timer(now);
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        let next = self.lead.term() + 1;
        self.broadcast(Message::Vote { term: next, pre_vote: true, transfer: false });
        self.count_votes(now);
    }

    fn become_candidate(&mut self, now: Duration, transfer: bool) {
        self.lead.set_role(Role::Candidate);
        self.enter(self.lead.term() + 1, None);
        self.voted_for = Some(self.cfg.id.clone());
        self.reset_election_timer(now);
        self.lead.emit(EventKind::ElectionStarted);
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        self.broadcast(Message::Vote { term: self.lead.term(), pre_vote: false, transfer });
        self.count_votes(now);
    }

    fn become_leader(&mut self, now: Duration) {
        assert_eq!(self.lead.role(), Role::Candidate, "only a candidate wins an election");
        assert_eq!(self.voted_for.as_ref(), Some(&self.cfg.id), "a leader's term is its own");
        self.votes.clear();
        // Candidates know no leader, so winning changes it to us. `elected` waits for the lease:
        // rounds are numbered from 1, and a majority with this node settles one.
        let term = self.lead.term();
        self.lead.lead(now, &self.cfg.id, term, 1, self.cfg.quorum() - 1);
        // Assert leadership at once (paper 5.2) and start earning the lease (alone: earned now).
        self.broadcast_heartbeat(now);
    }

    /// `resign` and `shut_down`: hand off to the most caught-up peer, or, alone, just step down.
    fn resign_because(&mut self, now: Duration, why: DemoteReason) {
        if self.lead.role() != Role::Leader {
            return;
        }
        let last_ack = &self.acks.last_ack;
        let best = self.cfg.peers().max_by_key(|p| (last_ack.get(*p).copied(), std::cmp::Reverse(*p))).cloned();
        match best {
            Some(peer) => self.hand_off(now, peer, why),
            None => self.become_follower(now, self.lead.term(), None, Some(why)),
        }
    }

    fn hand_off(&mut self, now: Duration, to: NodeId, why: DemoteReason) {
        // Stepping down before the target can campaign keeps `is_leader` exclusive: `transfer`
        // votes ignore our lease, so we must stop claiming it now.
        let term = self.lead.term();
        self.become_follower(now, term, None, Some(why));
        self.lead.send(&to, Message::TimeoutNow { term });
    }

    fn broadcast_heartbeat(&mut self, now: Duration) {
        let seq = self.lead.heartbeat(now, &self.cfg, |term, seq| Message::Heartbeat { term, seq });
        self.acks.sent(seq, now);
    }

    // ----- helpers ----------------------------------------------------------------------------

    /// Whether this node owes silence to a leader: it acknowledged a heartbeat (or (re)started)
    /// within the minimum election timeout, or, as leader, a majority answered that recently.
    fn in_lease(&self, now: Duration) -> bool {
        let promised = self.silent_until.is_some_and(|t| now < t);
        promised || self.lead.answered_within(now, self.cfg.timing.election_timeout.0)
    }

    fn promise_silence(&mut self, now: Duration) {
        let until = now + self.cfg.timing.election_timeout.0;
        self.silent_until = Some(self.silent_until.map_or(until, |t| t.max(until)));
    }

    /// The start of every input. Starts the clock on the first call and keeps time monotonic (a
    /// driver's clock that steps back is treated as standing still); then, before the input is
    /// handled, a leader whose lease has lapsed steps down, so nothing can renew a lapsed lease.
    fn advance(&mut self, now: Duration) -> Duration {
        let (now, booted) = self.lead.advance_clock(now);
        if booted {
            self.promise_silence(now);
            self.reset_election_timer(now);
        }
        if self.lead.lease_lapsed(now) {
            self.become_follower(now, self.lead.term(), None, Some(DemoteReason::LostLease));
        }
        now
    }

    fn reset_election_timer(&mut self, now: Duration) {
        self.election_deadline = now + random_timeout(&self.cfg.timing, &mut self.rng);
    }

    /// Moves to `term` (never back) following `leader` (see `Leadership::enter`); a new term has
    /// no vote yet.
    fn enter(&mut self, term: Term, leader: Option<&str>) {
        if self.lead.enter(term, leader) {
            self.voted_for = None;
        }
    }

    fn broadcast(&mut self, message: Message) {
        self.lead.broadcast(&self.cfg, &message);
    }

    /// Drains the outputs of one call, with the new hard state (if any) first: it must be durable
    /// before any message of this call leaves the node.
    fn take_outputs(&mut self) -> Vec<Output> {
        let persisted = self.lead.persisted();
        assert!(
            self.lead.term() > persisted.term || persisted.voted_for.is_none() || persisted.voted_for == self.voted_for,
            "one vote per term"
        );
        self.lead.take_outputs(self.voted_for.as_ref(), &self.cfg.id)
    }
}
