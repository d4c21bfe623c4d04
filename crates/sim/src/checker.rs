//! The safety checker: watches every engine call of a simulation and records the first violation of
//! the guarantees in docs/concepts.md ("The guarantees, one by one"). It judges from outside the
//! engines, in virtual time.

use std::collections::BTreeMap;
use std::fmt;

use quorate_engine::{Algorithm, EventKind, HardState, NodeId, Term};

#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Virtual seconds.
    pub at: f64,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {:.6}s: {}", self.at, self.message)
    }
}

/// A node's current `is_leader` interval in virtual nanoseconds: `[.., end)`.
#[derive(Debug, Clone, Copy)]
struct Lease {
    term: Term,
    end: u64,
}

#[derive(Debug, Clone)]
pub struct Checker {
    ids: Vec<NodeId>,
    leaders_by_term: BTreeMap<Term, usize>,
    last_term: Vec<Term>,
    persisted: Vec<HardState>,
    leases: Vec<Option<Lease>>,
    /// Per node: an `elected` waits for its `demoted` (across crashes and restarts).
    elected_open: Vec<bool>,
    /// Highest fencing token handed out so far, and the node whose leadership holds it.
    max_token: Option<(Term, usize)>,
    /// Whether the algorithm promises one `is_leader` at a time and tokens increasing across the
    /// group over time (raft). Bully promises neither under a partition (two sides may each have a
    /// coordinator): for it, each leadership's token must be new to the group (never held by
    /// another node) and above every token the same node held before, and at most one node may
    /// win each epoch, which `on_won` checks for every algorithm.
    pub exclusive: bool,
    /// Per node, the newest token its leaderships held (the non-exclusive rule).
    own_token: Vec<Option<Term>>,
    /// Every token handed out, and by whom (the non-exclusive rule).
    token_owner: BTreeMap<Term, usize>,
    /// Off while clock rates differ by more than the drift bound, where the lease promises nothing.
    pub lease_check: bool,
    first: Option<Violation>,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

impl Checker {
    pub fn new(ids: Vec<NodeId>) -> Checker {
        Checker::for_algorithm(ids, Algorithm::Raft)
    }

    /// The rules `algorithm` promises (see `exclusive`).
    pub fn for_algorithm(ids: Vec<NodeId>, algorithm: Algorithm) -> Checker {
        let n = ids.len();
        Checker {
            ids,
            leaders_by_term: BTreeMap::new(),
            last_term: vec![0; n],
            persisted: vec![HardState::default(); n],
            leases: vec![None; n],
            elected_open: vec![false; n],
            max_token: None,
            exclusive: algorithm == Algorithm::Raft,
            own_token: vec![None; n],
            token_owner: BTreeMap::new(),
            lease_check: true,
            first: None,
        }
    }

    pub fn violation(&self) -> Option<&Violation> {
        self.first.as_ref()
    }

    fn fail(&mut self, now: u64, message: String) {
        if self.first.is_none() {
            self.first = Some(Violation { at: secs(now), message });
        }
    }

    /// Durable state: term never decreases, and a vote once cast in a term is never changed.
    pub fn on_persist(&mut self, now: u64, node: usize, hard: &HardState) {
        let prev = &self.persisted[node];
        if hard.term < prev.term {
            let m = format!("{} persisted term {} after term {}", self.ids[node], hard.term, prev.term);
            self.fail(now, m);
        } else if hard.term == prev.term && prev.voted_for.is_some() && hard.voted_for != prev.voted_for {
            let m = format!(
                "{} voted twice in term {}: for {:?}, then for {:?}",
                self.ids[node], hard.term, prev.voted_for, hard.voted_for
            );
            self.fail(now, m);
        }
        self.persisted[node] = hard.clone();
    }

    /// At most one leader per term: `node` won the vote of `term` (whether or not it then earns
    /// its lease and announces `elected`).
    pub fn on_won(&mut self, now: u64, node: usize, term: Term) {
        if let Some(&other) = self.leaders_by_term.get(&term) {
            if other != node {
                let m = format!("two leaders in term {term}: {} and {}", self.ids[other], self.ids[node]);
                self.fail(now, m);
            }
        }
        self.leaders_by_term.insert(term, node);
    }

    /// Every event of `node`'s history, in order (the simulator's `demoted` for a crash included):
    /// elected and demoted alternate, starting with elected, over the whole run.
    pub fn on_event(&mut self, now: u64, node: usize, kind: EventKind) {
        let open = self.elected_open[node];
        match kind {
            EventKind::Elected if open => {
                let m = format!("{} announced elected twice without demoted in between", self.ids[node]);
                self.fail(now, m);
            }
            EventKind::Demoted if !open => {
                let m = format!("{} announced demoted without an open elected", self.ids[node]);
                self.fail(now, m);
            }
            EventKind::Elected | EventKind::Demoted => {}
            _ => return,
        }
        self.elected_open[node] = kind == EventKind::Elected;
    }

    pub fn on_crash(&mut self, node: usize) {
        self.leases[node] = None;
    }

    /// Called after every engine call on `node`: its term, and when it `is_leader`, the virtual
    /// instant its lease ends.
    pub fn observe(&mut self, now: u64, node: usize, term: Term, lease_end: Option<u64>) {
        if term < self.last_term[node] {
            let m = format!("{} went from term {} back to term {term}", self.ids[node], self.last_term[node]);
            self.fail(now, m);
        }
        self.last_term[node] = term;

        let Some(end) = lease_end.filter(|end| *end > now) else {
            self.leases[node] = None;
            return;
        };
        if self.lease_check && self.exclusive {
            let clash = self
                .leases
                .iter()
                .enumerate()
                .find(|(other, l)| *other != node && l.is_some_and(|l| l.end > now))
                .map(|(other, l)| (other, l.expect("found only when set")));
            if let Some((other, l)) = clash {
                let m = format!(
                    "two nodes report is_leader at once: {} (term {}, lease until {:.6}s) and {} (term {term})",
                    self.ids[other],
                    l.term,
                    secs(l.end),
                    self.ids[node]
                );
                self.fail(now, m);
            }
        }
        let continuing = self.leases[node].is_some_and(|l| l.term == term && l.end > now);
        if !continuing && !self.exclusive {
            if let Some(&owner) = self.token_owner.get(&term).filter(|o| **o != node) {
                let m = format!("fencing token {term} of {} was already held by {}", self.ids[node], self.ids[owner]);
                self.fail(now, m);
            }
            if let Some(own) = self.own_token[node].filter(|own| term < *own) {
                let m = format!("fencing token {term} of {} is below its own earlier token {own}", self.ids[node]);
                self.fail(now, m);
            }
            self.token_owner.insert(term, node);
            self.own_token[node] = Some(term);
        } else if !continuing {
            // A leadership (re)starts handing out its token: it must exceed every earlier one.
            match self.max_token {
                Some((max, holder)) if term < max || (term == max && holder != node) => {
                    let m = format!(
                        "fencing token {term} of {} does not exceed token {max} already given by {}",
                        self.ids[node], self.ids[holder]
                    );
                    self.fail(now, m);
                }
                _ => self.max_token = Some((term, node)),
            }
        }
        self.leases[node] = Some(Lease { term, end });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker() -> Checker {
        Checker::new(vec!["a".into(), "b".into(), "c".into()])
    }

    fn hard(term: Term, voted_for: Option<&str>) -> HardState {
        HardState { term, voted_for: voted_for.map(Into::into) }
    }

    #[test]
    fn two_leaders_in_one_term_is_a_violation() {
        let mut c = checker();
        c.on_won(10, 0, 3);
        c.on_won(20, 0, 3);
        assert!(c.violation().is_none(), "the same node twice is one leader");
        c.on_won(30, 1, 3);
        assert!(c.violation().unwrap().message.contains("two leaders in term 3"));
    }

    #[test]
    fn elected_and_demoted_alternate_per_node_starting_with_elected() {
        let mut c = checker();
        for (at, node, kind) in [
            (1, 0, EventKind::Elected),
            (2, 1, EventKind::Elected),
            (3, 0, EventKind::LeaderChanged),
            (4, 0, EventKind::Demoted),
            (5, 0, EventKind::Elected),
            (6, 1, EventKind::Demoted),
        ] {
            c.on_event(at, node, kind);
        }
        assert!(c.violation().is_none(), "each node alternates on its own");
        c.on_event(7, 0, EventKind::Elected);
        assert!(c.violation().unwrap().message.contains("a announced elected twice"));
        let mut c = checker();
        c.on_event(1, 2, EventKind::Demoted);
        assert!(c.violation().unwrap().message.contains("c announced demoted without an open elected"));
    }

    #[test]
    fn overlapping_leases_are_a_violation_and_disjoint_ones_are_not() {
        let mut c = checker();
        c.observe(0, 0, 1, Some(100));
        c.observe(100, 1, 2, Some(200));
        assert!(c.violation().is_none(), "a lease ends where the next begins");
        c.observe(150, 2, 3, Some(300));
        assert!(c.violation().unwrap().message.contains("two nodes report is_leader at once"));
    }

    #[test]
    fn a_step_down_ends_the_lease_early() {
        let mut c = checker();
        c.observe(0, 0, 1, Some(1_000));
        c.observe(10, 0, 1, None);
        c.observe(20, 1, 2, Some(500));
        assert!(c.violation().is_none());
    }

    #[test]
    fn a_fencing_token_that_does_not_increase_is_a_violation() {
        let mut c = checker();
        c.observe(0, 0, 5, Some(100));
        c.observe(200, 1, 4, Some(300));
        assert!(c.violation().unwrap().message.contains("fencing token 4"));
    }

    #[test]
    fn one_leadership_renewing_its_lease_keeps_its_token() {
        let mut c = checker();
        c.observe(0, 0, 5, Some(100));
        c.observe(50, 0, 5, Some(150));
        c.observe(200, 0, 5, Some(300)); // lapsed and regained, still the newest leadership
        assert!(c.violation().is_none());
    }

    #[test]
    fn changing_a_vote_within_a_term_is_a_violation() {
        let mut c = checker();
        c.on_persist(0, 0, &hard(2, None));
        c.on_persist(1, 0, &hard(2, Some("b")));
        assert!(c.violation().is_none(), "a first vote in a term is fine");
        c.on_persist(2, 0, &hard(2, Some("c")));
        assert!(c.violation().unwrap().message.contains("voted twice in term 2"));
    }

    #[test]
    fn a_term_that_goes_back_is_a_violation() {
        let mut c = checker();
        c.observe(0, 2, 4, None);
        c.observe(1, 2, 3, None);
        assert!(c.violation().unwrap().message.contains("back to term 3"));
        let mut c = checker();
        c.on_persist(0, 1, &hard(4, None));
        c.on_persist(1, 1, &hard(3, None));
        assert!(c.violation().unwrap().message.contains("persisted term 3"));
    }

    #[test]
    fn bully_allows_two_coordinators_at_once_with_distinct_tokens_but_not_a_shared_or_lower_token() {
        let mut c = Checker::for_algorithm(vec!["a".into(), "b".into(), "c".into()], Algorithm::Bully);
        c.observe(0, 0, 3, Some(100));
        c.observe(10, 2, 2, Some(200)); // the other side of a partition: overlapping, lower token
        assert!(c.violation().is_none(), "bully promises neither exclusivity nor group-wide increase");
        c.observe(300, 1, 2, Some(400));
        assert!(c.violation().unwrap().message.contains("fencing token 2 of b was already held by c"));
        let mut c = Checker::for_algorithm(vec!["a".into(), "b".into()], Algorithm::Bully);
        c.observe(0, 1, 5, Some(100));
        c.observe(200, 1, 3, Some(300));
        let m = &c.violation().unwrap().message;
        assert!(m.contains("back to term 3") || m.contains("below its own earlier token 5"), "{m}");
        let mut raft = checker();
        raft.observe(0, 0, 3, Some(100));
        raft.observe(10, 2, 4, Some(200));
        assert!(raft.violation().unwrap().message.contains("two nodes report is_leader at once"), "raft stays strict");
    }

    #[test]
    fn only_the_first_violation_is_kept() {
        let mut c = checker();
        c.on_won(10, 0, 1);
        c.on_won(20, 1, 1);
        c.on_won(30, 2, 1);
        assert!(c.violation().unwrap().message.contains("a and b"));
    }
}
