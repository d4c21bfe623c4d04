//! What raft, bully and ring do the same way around their own election rules, so that an
//! algorithm's module holds only those rules. Each embeds one [`Leadership`]:
//!
//! - the node's standing: its role, its term (it never decreases), the leader it follows and when
//!   it last heard from it, and the clock every input advances (a clock that steps back is treated
//!   as standing still);
//! - a leader's heartbeat rounds and the lease they earn (below);
//! - the events, kept to their rules: `TermChanged` before `LeaderChanged`, `Elected` and `Demoted`
//!   strictly alternating, an `Elected` only with a lease, every `Demoted` with its reason;
//! - the drain of one call's outputs, the new hard state first (on `Outbox`).
//!
//! **The lease from acknowledged rounds.** A leader sends a numbered heartbeat round every
//! `heartbeat_interval`. A round is settled once enough peers acknowledge it (raft: enough for a
//! majority with the leader itself; bully and ring, which have no majority rule: one peer), and a
//! round sent at `t` that settles gives the leader its lease until `t + lease_duration`. Settling
//! drops the round and every older one; a round whose lease would already be over grants nothing,
//! and at most `MAX_OPEN_ROUNDS` wait. Alone, a round settles as it is sent. The first lease of a
//! leadership is its `Elected`. A lease is never renewed once lapsed: each algorithm's `advance`
//! steps a leader whose lease lapsed down (`LostLease`) before it handles any input.
//!
//! Each algorithm keeps its own: how a node wins (votes, rank, the ring), what its heartbeat says,
//! how many acks settle a round, what a leader nobody answers does, and its own promises (raft's
//! silence after an ack).

use std::collections::VecDeque;
use std::time::Duration;

use super::config::{Config, NodeId, Timing};
use super::limits::{MAX_OPEN_ROUNDS, MAX_TERM_AHEAD};
use super::messages::{DemoteReason, EventKind, HardState, Message, Output, Term};
use super::outbox::Outbox;
use super::{Role, State};

/// One node's standing in its group, its lease while it leads, and the outputs of the call in
/// progress. The role is `Leader` exactly while the rounds exist: entered only by [`lead`], left
/// only by [`step_down`].
///
/// [`lead`]: Leadership::lead
/// [`step_down`]: Leadership::step_down
#[derive(Debug, Clone)]
pub(crate) struct Leadership {
    role: Role,
    /// The durable term (bully and ring: the highest epoch seen; a coordinator's own).
    term: Term,
    leader: Option<NodeId>,
    /// When this node last heard from the leader it follows (its own clock).
    leader_contact: Option<Duration>,
    /// The first input starts the clock.
    booted_at: Option<Duration>,
    last_now: Duration,
    /// What only a leader keeps.
    rounds: Option<Rounds>,
    outbox: Outbox,
}

/// A leader's heartbeat rounds and the lease they earned.
#[derive(Debug, Clone)]
struct Rounds {
    next_seq: u64,
    heartbeat_deadline: Duration,
    /// Peer acks that settle a round; 0 alone.
    acks_needed: usize,
    /// Send time of the newest settled round (the start of this leadership to begin with): the base
    /// of the lease, and of giving up when nobody answers.
    contact_at: Duration,
    /// None until the first round settles; once set, the leader steps down the moment it passes.
    lease_expiry: Option<Duration>,
    /// Rounds waiting for acks, oldest first; their numbers are consecutive.
    open: VecDeque<Round>,
}

#[derive(Debug, Clone)]
struct Round {
    seq: u64,
    sent_at: Duration,
    /// The peers that acknowledged it so far (the ack that settles it is not kept).
    acks: Vec<NodeId>,
}

impl Leadership {
    /// A follower knowing no leader, at `hard.term`; `hard` counts as persisted.
    pub(crate) fn new(hard: HardState) -> Leadership {
        Leadership {
            role: Role::Follower,
            term: hard.term,
            leader: None,
            leader_contact: None,
            booted_at: None,
            last_now: Duration::ZERO,
            rounds: None,
            outbox: Outbox::new(hard),
        }
    }

    // ----- reading --------------------------------------------------------------------------------

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn term(&self) -> Term {
        self.term
    }

    pub(crate) fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }

    pub(crate) fn lease_expiry(&self) -> Option<Duration> {
        self.rounds.as_ref().and_then(|r| r.lease_expiry)
    }

    /// Leader and inside its lease at `now`: the only time a caller may act as the leader.
    pub(crate) fn is_leader(&self, now: Duration) -> bool {
        self.role == Role::Leader && self.lease_expiry().is_some_and(|e| now < e)
    }

    /// The term, while `is_leader`: it strictly increases from one leadership to the next.
    pub(crate) fn fencing_token(&self, now: Duration) -> Option<Term> {
        self.is_leader(now).then_some(self.term)
    }

    pub(crate) fn state(&self, voted_for: Option<&NodeId>) -> State {
        State {
            role: self.role,
            term: self.term,
            voted_for: voted_for.cloned(),
            leader: self.leader.clone(),
            lease_expiry: self.lease_expiry(),
            leader_contact: self.leader_contact,
        }
    }

    /// The hard state last handed out as a `Persist`.
    pub(crate) fn persisted(&self) -> &HardState {
        self.outbox.persisted()
    }

    /// Whether `term` is one a peer following the rules could send: at most `MAX_TERM_AHEAD`
    /// beyond ours.
    pub(crate) fn plausible_term(&self, term: Term) -> bool {
        term <= self.term.saturating_add(MAX_TERM_AHEAD)
    }

    /// A leader that held a lease and whose lease is over at `now`.
    pub(crate) fn lease_lapsed(&self, now: Duration) -> bool {
        self.lease_expiry().is_some_and(|e| now >= e)
    }

    /// Leader, and its lease (if it has earned one) has not lapsed at `now`: what a leader must be
    /// to hand leadership off. Read before `advance`, so `now` may still be behind the clock.
    pub(crate) fn leads(&self, now: Duration) -> bool {
        self.role == Role::Leader && !self.lease_lapsed(self.last_now.max(now))
    }

    /// A leader that has not earned its lease and whose rounds nobody acknowledged for `window`
    /// since its leadership began.
    pub(crate) fn unanswered_for(&self, now: Duration, window: Duration) -> bool {
        self.rounds.as_ref().is_some_and(|r| r.lease_expiry.is_none() && now >= r.contact_at + window)
    }

    /// A leader whose newest settled round (or, before any, whose leadership) is less than `window`
    /// old at `now`.
    pub(crate) fn answered_within(&self, now: Duration, window: Duration) -> bool {
        self.rounds.as_ref().is_some_and(|r| now < r.contact_at + window)
    }

    /// A leader whose next heartbeat round is due.
    pub(crate) fn heartbeat_due(&self, now: Duration) -> bool {
        self.rounds.as_ref().is_some_and(|r| now >= r.heartbeat_deadline)
    }

    /// The next time `tick` has work to do, or None before the clock has started. A leader: its
    /// next heartbeat, the lapse of its lease, or (not yet holding one, when `give_up_after` is set)
    /// the moment it gives up on being answered; anybody else: `otherwise`.
    pub(crate) fn next_deadline(&self, give_up_after: Option<Duration>, otherwise: Duration) -> Option<Duration> {
        self.booted_at?;
        Some(match &self.rounds {
            Some(r) => match (r.lease_expiry, give_up_after) {
                (Some(expiry), _) => r.heartbeat_deadline.min(expiry),
                (None, Some(window)) => r.heartbeat_deadline.min(r.contact_at + window),
                (None, None) => r.heartbeat_deadline,
            },
            None => otherwise,
        })
    }

    /// The leader this follower heard from within `window`, if any (never `me`).
    pub(crate) fn live_leader(&self, now: Duration, window: Duration, me: &str) -> Option<&NodeId> {
        let fresh = self.leader_contact.is_some_and(|c| now < c + window);
        (self.role == Role::Follower && fresh).then_some(self.leader.as_ref()).flatten().filter(|l| *l != me)
    }

    // ----- the standing ---------------------------------------------------------------------------

    /// Starts the clock at the first input (then the flag is true) and keeps it monotonic. Returns
    /// the time to handle the input at.
    pub(crate) fn advance_clock(&mut self, now: Duration) -> (Duration, bool) {
        let first = self.booted_at.is_none();
        if first {
            self.booted_at = Some(now);
            self.last_now = now;
        }
        self.last_now = self.last_now.max(now);
        (self.last_now, first)
    }

    /// Moves to `term` (never back) following `leader`, then reports what changed: the term first,
    /// then the leader, each event carrying both new values. The leader is copied only when it
    /// changes (a follower enters its leader's term again at every heartbeat). Returns whether the
    /// term changed.
    pub(crate) fn enter(&mut self, term: Term, leader: Option<&str>) -> bool {
        assert!(term >= self.term, "term never decreases ({} -> {term})", self.term);
        let term_changed = term > self.term;
        let leader_changed = self.leader.as_deref() != leader;
        self.term = term;
        if leader_changed {
            self.leader = leader.map(str::to_string);
        }
        if term_changed {
            self.emit(EventKind::TermChanged);
        }
        if leader_changed {
            self.emit(EventKind::LeaderChanged);
        }
        term_changed
    }

    /// Moves to a higher `term` (or stays), keeping the leader: `TermChanged` if it changed.
    pub(crate) fn raise_term(&mut self, term: Term) {
        assert!(term >= self.term, "term never decreases ({} -> {term})", self.term);
        if term > self.term {
            self.term = term;
            self.emit(EventKind::TermChanged);
        }
    }

    /// A message from the leader this node follows, at `now`.
    pub(crate) fn heard_leader(&mut self, now: Duration) {
        self.leader_contact = Some(now);
    }

    pub(crate) fn forget_leader_contact(&mut self) {
        self.leader_contact = None;
    }

    /// Any role but `Leader`, from any role but `Leader` (those go through `lead` and `step_down`).
    pub(crate) fn set_role(&mut self, role: Role) {
        assert!(role != Role::Leader && self.role != Role::Leader, "leadership begins in `lead`, ends in `step_down`");
        self.role = role;
    }

    /// Becomes leader at `term` (its own: the caller asserts how) and leads itself, `me`. Its
    /// rounds are numbered from `first_seq`; `acks_needed` peer acks settle one (0 alone). No
    /// round is sent yet, and `Elected` waits for the lease.
    pub(crate) fn lead(&mut self, now: Duration, me: &str, term: Term, first_seq: u64, acks_needed: usize) {
        assert_ne!(self.role, Role::Leader, "already leading");
        self.role = Role::Leader;
        self.rounds = Some(Rounds {
            next_seq: first_seq,
            heartbeat_deadline: now,
            acks_needed,
            contact_at: now,
            lease_expiry: None,
            open: VecDeque::new(),
        });
        self.enter(term, Some(me));
    }

    /// Becomes a follower, from any role. A leader's rounds end here, and a leader that announced
    /// `Elected` announces `Demoted` with `why` (which it must then give); one that never held its
    /// lease steps down without a word.
    pub(crate) fn step_down(&mut self, why: Option<DemoteReason>) {
        if self.role == Role::Leader {
            self.rounds = None;
            if self.outbox.elected_open() {
                let why = why.expect("a leader that held its lease steps down for a reason");
                self.outbox.event(EventKind::Demoted, self.term, self.leader.clone(), Some(why), false);
            }
        }
        self.role = Role::Follower;
    }

    // ----- the lease ------------------------------------------------------------------------------

    /// A leader's next heartbeat round: numbers it, arms the next, and broadcasts `message(term,
    /// seq)` to every member but this node (after `Elected`, alone, when this round is the first
    /// lease). Returns the round's number.
    pub(crate) fn heartbeat(&mut self, now: Duration, cfg: &Config, message: impl FnOnce(Term, u64) -> Message) -> u64 {
        let lease = cfg.timing.lease_duration();
        let r = self.rounds.as_mut().expect("only a leader sends heartbeat rounds");
        let seq = r.next_seq;
        r.next_seq += 1;
        r.heartbeat_deadline = now + cfg.timing.heartbeat_interval;
        while r.open.len() >= MAX_OPEN_ROUNDS || r.open.front().is_some_and(|o| o.sent_at + lease <= now) {
            r.open.pop_front();
        }
        let first_lease = if r.acks_needed == 0 {
            // Alone: our own ack is enough.
            r.settle(now, lease)
        } else {
            r.open.push_back(Round { seq, sent_at: now, acks: Vec::new() });
            false
        };
        if first_lease {
            self.emit(EventKind::Elected);
        }
        let message = message(self.term, seq);
        self.outbox.broadcast(&cfg.members, &cfg.id, &message);
        seq
    }

    /// `from` acknowledged round `seq` of this leadership, at `now`. The round that settles first
    /// brings `Elected`.
    pub(crate) fn acknowledge(&mut self, now: Duration, from: &str, seq: u64, timing: &Timing) {
        let r = self.rounds.as_mut().expect("only a leader counts acks");
        if r.ack(now, from, seq, timing.lease_duration()) {
            self.emit(EventKind::Elected);
        }
    }

    // ----- outputs --------------------------------------------------------------------------------

    /// Any event but `Demoted` (which only `step_down` announces, with its reason).
    pub(crate) fn emit(&mut self, kind: EventKind) {
        assert_ne!(kind, EventKind::Demoted, "demoted always carries a reason");
        let holds_lease = self.lease_expiry().is_some();
        self.outbox.event(kind, self.term, self.leader.clone(), None, holds_lease);
    }

    pub(crate) fn send(&mut self, to: &str, message: Message) {
        self.outbox.send(to, message);
    }

    /// The same message to every member but this node.
    pub(crate) fn broadcast(&mut self, cfg: &Config, message: &Message) {
        self.outbox.broadcast(&cfg.members, &cfg.id, message);
    }

    /// Drains the outputs of one call, the new hard state (`term`, `voted_for`) first if it changed:
    /// it must be durable before any message of this call leaves the node.
    pub(crate) fn take_outputs(&mut self, voted_for: Option<&NodeId>, me: &str) -> Vec<Output> {
        assert_eq!(self.role == Role::Leader, self.rounds.is_some(), "a leader, and only a leader, has rounds");
        assert!(self.role != Role::Leader || self.leader.as_deref() == Some(me), "a leader leads itself");
        let holds_lease = self.lease_expiry().is_some();
        self.outbox.take(self.term, voted_for, holds_lease)
    }
}

impl Rounds {
    /// Counts `from`'s ack of round `seq`; true when it settles the first lease of this leadership.
    fn ack(&mut self, now: Duration, from: &str, seq: u64, lease: Duration) -> bool {
        // Rounds are numbered consecutively, so a round's place follows from its number.
        let Some(first) = self.open.front().map(|o| o.seq) else { return false };
        let Some(round) =
            seq.checked_sub(first).and_then(|i| usize::try_from(i).ok()).and_then(|i| self.open.get_mut(i))
        else {
            return false;
        };
        debug_assert_eq!(round.seq, seq, "open rounds are numbered consecutively");
        // A round whose lease would already be over grants nothing: counting it would announce
        // `elected` for a lease that is already gone.
        if round.sent_at + lease <= now || round.acks.iter().any(|a| a == from) {
            return false;
        }
        if round.acks.len() + 1 < self.acks_needed {
            round.acks.push(from.to_string());
            return false;
        }
        let sent_at = round.sent_at;
        // This round and every older one are settled: acks for them can no longer help.
        while self.open.front().is_some_and(|o| o.seq <= seq) {
            self.open.pop_front();
        }
        self.settle(sent_at, lease)
    }

    /// The round sent at `sent_at` settled: the lease runs from it. True for the first lease.
    fn settle(&mut self, sent_at: Duration, lease: Duration) -> bool {
        debug_assert!(sent_at >= self.contact_at, "rounds settle in the order they were sent");
        let first = self.lease_expiry.is_none();
        self.contact_at = sent_at;
        self.lease_expiry = Some(sent_at + lease);
        first
    }
}

// ----- what bully and ring share: coordinators ranked, with epochs of their own --------------------

/// The smallest epoch above `seen` that belongs to `me`: congruent to its index in `members` (the
/// sorted member list) modulo the group size, so no two coordinators ever share one. None past
/// `Term::MAX`.
pub(crate) fn next_epoch(seen: Term, members: &[NodeId], me: &str) -> Option<Term> {
    let n = members.len() as Term;
    let i = members.iter().position(|m| m == me).expect("a member") as Term;
    let base = (seen - seen % n).checked_add(i)?;
    if base > seen {
        Some(base)
    } else {
        base.checked_add(n)
    }
}

/// How long a coordinator that stepped aside (resign, shut down, transfer) keeps out of elections:
/// long enough for the next-ranked live member to win (`election_timeout.max + 2 * min`).
pub(crate) fn abstention(timing: &Timing) -> Duration {
    let (min, max) = timing.election_timeout;
    max + min * 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{config, ms};
    use crate::Algorithm;

    const FIVE: [&str; 5] = ["a", "b", "c", "d", "e"];

    /// `a` leading five members at term 1 from time 0, a majority with itself settling a round (two
    /// peer acks), its first round sent.
    fn leading() -> (Leadership, Config) {
        let cfg = config(Algorithm::Raft, "a", &FIVE);
        let mut l = Leadership::new(HardState::default());
        l.advance_clock(ms(0));
        l.lead(ms(0), "a", 1, 1, 2);
        l.heartbeat(ms(0), &cfg, |term, seq| Message::Heartbeat { term, seq });
        (l, cfg)
    }

    fn elected(outputs: &[Output]) -> usize {
        outputs.iter().filter(|o| matches!(o, Output::Event(e) if e.kind == EventKind::Elected)).count()
    }

    #[test]
    fn a_round_settles_with_enough_distinct_peers_and_the_lease_runs_from_its_send_time() {
        let (mut l, cfg) = leading();
        l.acknowledge(ms(5), "b", 1, &cfg.timing);
        l.acknowledge(ms(6), "b", 1, &cfg.timing);
        assert_eq!(l.lease_expiry(), None, "the same peer twice is one ack");
        l.acknowledge(ms(7), "c", 1, &cfg.timing);
        assert_eq!(l.lease_expiry(), Some(cfg.timing.lease_duration()), "from the round's send time");
        l.acknowledge(ms(8), "d", 1, &cfg.timing);
        assert_eq!(elected(&l.take_outputs(None, "a")), 1, "elected once, with the first lease");
        assert!(l.is_leader(ms(8)) && l.fencing_token(ms(8)) == Some(1));
    }

    #[test]
    fn acks_for_unknown_or_stale_rounds_grant_nothing() {
        let (mut l, cfg) = leading();
        for seq in [0, 2, u64::MAX] {
            l.acknowledge(ms(1), "b", seq, &cfg.timing);
            l.acknowledge(ms(1), "c", seq, &cfg.timing);
        }
        assert_eq!(l.lease_expiry(), None);
        let late = cfg.timing.lease_duration();
        l.acknowledge(late, "b", 1, &cfg.timing);
        l.acknowledge(late, "c", 1, &cfg.timing);
        assert_eq!(l.lease_expiry(), None, "a round whose lease would be over grants nothing");
        assert!(l.unanswered_for(cfg.timing.election_timeout.0, cfg.timing.election_timeout.0));
    }

    #[test]
    fn at_most_max_open_rounds_wait_and_settling_one_drops_the_older() {
        let (mut l, mut cfg) = leading();
        cfg.timing.heartbeat_interval = Duration::from_nanos(1);
        for i in 1..=MAX_OPEN_ROUNDS as u64 {
            l.heartbeat(Duration::from_nanos(i), &cfg, |term, seq| Message::Heartbeat { term, seq });
        }
        let r = l.rounds.as_ref().unwrap();
        assert_eq!((r.open.len(), r.open.front().unwrap().seq), (MAX_OPEN_ROUNDS, 2), "round 1 forgotten");
        l.acknowledge(ms(1), "b", 1, &cfg.timing);
        l.acknowledge(ms(1), "c", 1, &cfg.timing);
        assert_eq!(l.lease_expiry(), None, "a forgotten round grants nothing");
        l.acknowledge(ms(1), "b", 10, &cfg.timing);
        l.acknowledge(ms(1), "c", 10, &cfg.timing);
        let r = l.rounds.as_ref().unwrap();
        assert_eq!(r.open.front().unwrap().seq, 11, "round 10 and the older ones are settled");
        assert_eq!(l.lease_expiry(), Some(Duration::from_nanos(9) + cfg.timing.lease_duration()));
    }

    #[test]
    fn alone_every_round_settles_as_it_is_sent_and_stepping_down_announces_demoted() {
        let cfg = config(Algorithm::Bully, "a", &["a"]);
        let mut l = Leadership::new(HardState::default());
        l.advance_clock(ms(0));
        l.lead(ms(0), "a", 3, 0, 0);
        l.heartbeat(ms(0), &cfg, |epoch, _| Message::Coordinator { epoch });
        assert_eq!(l.lease_expiry(), Some(cfg.timing.lease_duration()));
        l.step_down(Some(DemoteReason::Resigned));
        let out = l.take_outputs(None, "a");
        let kinds: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e.kind),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, [EventKind::TermChanged, EventKind::LeaderChanged, EventKind::Elected, EventKind::Demoted]);
        assert_eq!(out[0], Output::Persist(HardState { term: 3, voted_for: None }), "the term first");
        assert_eq!((l.role(), l.lease_expiry()), (Role::Follower, None));
    }

    #[test]
    fn epochs_are_each_members_own_and_above_the_one_seen() {
        let members: Vec<NodeId> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(next_epoch(0, &members, "a"), Some(3));
        assert_eq!(next_epoch(0, &members, "c"), Some(2));
        assert_eq!(next_epoch(4, &members, "b"), Some(7));
        assert_eq!(next_epoch(Term::MAX - 1, &members, "c"), None);
    }
}
