//! The simulator's own rules: determinism, paused inboxes, crashes and restarts, alternation.

use super::*;
use crate::engine::Role;

fn faulty_run(seed: u64) -> (Vec<SimEvent>, Stats) {
    let mut cfg = SimConfig::numbered(5, seed);
    cfg.drop_rate = 0.1;
    cfg.duplicate_rate = 0.05;
    let mut sim = Simulation::new(cfg).unwrap();
    let leader = sim.run_until_leader(Duration::from_secs(5)).unwrap();
    sim.crash(&leader).unwrap();
    sim.set_clock_rate("n2", 1.03).unwrap();
    sim.pause("n3", Duration::from_millis(400)).unwrap();
    sim.run_for(Duration::from_secs(2));
    sim.partition(&[vec!["n1".into(), "n2".into()]]).unwrap();
    sim.run_for(Duration::from_secs(2));
    sim.heal();
    sim.restart(&leader).unwrap();
    sim.run_for(Duration::from_secs(2));
    sim.check().unwrap();
    (sim.events().to_vec(), sim.stats().clone())
}

#[test]
fn the_same_seed_and_calls_give_the_identical_event_list() {
    let (a, stats_a) = faulty_run(21);
    let (b, stats_b) = faulty_run(21);
    assert!(a.len() > 10, "a run with faults has a history: {} events", a.len());
    assert_eq!(a, b);
    assert_eq!(stats_a, stats_b);
    assert_ne!(faulty_run(22).0, a, "another seed, another history");
}

#[test]
fn a_paused_node_handles_what_queued_once_it_resumes() {
    let mut sim = Simulation::new(SimConfig::numbered(3, 4)).unwrap();
    let leader = sim.run_until_leader(Duration::from_secs(5)).unwrap();
    let follower = sim.members().iter().find(|m| **m != leader).unwrap().clone();
    sim.pause(&follower, Duration::from_millis(120)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert!(sim.status(&follower).unwrap().paused);
    sim.run_for(Duration::from_millis(100));
    let st = sim.status(&follower).unwrap();
    assert!(!st.paused);
    assert_eq!(st.leader.as_ref(), Some(&leader), "queued heartbeats were handled on resume");
}

/// Per node: elected and demoted alternate, starting with elected; every demoted has a reason.
fn assert_alternation(events: &[SimEvent]) {
    let mut open = std::collections::BTreeMap::new();
    for e in events {
        assert_eq!(e.reason.is_some(), e.kind == EventKind::Demoted, "{e:?}");
        let was_open = open.entry(e.node.clone()).or_insert(false);
        match e.kind {
            EventKind::Elected => assert!(!*was_open, "elected twice: {e:?}"),
            EventKind::Demoted => assert!(*was_open, "demoted without elected: {e:?}"),
            _ => continue,
        }
        *was_open = e.kind == EventKind::Elected;
    }
}

#[test]
fn crashing_a_leader_closes_its_leadership_with_reason_crashed() {
    let mut sim = Simulation::new(SimConfig::numbered(3, 6)).unwrap();
    let leader = sim.run_until_leader(Duration::from_secs(5)).unwrap();
    sim.run_for(Duration::from_millis(100)); // a majority has acknowledged a round by now
    assert!(sim.status(&leader).unwrap().is_leader);
    let term = sim.status(&leader).unwrap().term;
    sim.crash(&leader).unwrap();
    let last = sim.events().last().unwrap().clone();
    assert_eq!(
        (last.at, last.node.as_str(), last.kind, last.term, last.fencing_token, last.reason),
        (sim.now(), leader.as_str(), EventKind::Demoted, term, Some(term), Some(DemoteReason::Crashed))
    );
    sim.run_for(Duration::from_secs(1));
    sim.restart(&leader).unwrap();
    sim.run_for(Duration::from_secs(1));
    let next = sim.leader().unwrap().clone();
    sim.run_for(Duration::from_millis(100));
    sim.crash(&next).unwrap();
    sim.restart(&next).unwrap();
    sim.run_for(Duration::from_secs(2));
    sim.check().unwrap();
    assert_alternation(sim.events());
    let crashed = sim.events().iter().filter(|e| e.reason == Some(DemoteReason::Crashed)).count();
    assert_eq!(crashed, 2);
}

#[test]
fn a_leader_crashed_before_it_held_its_lease_records_no_demoted() {
    let mut sim = Simulation::new(SimConfig::numbered(3, 6)).unwrap();
    // Stop the moment the vote is won: the first heartbeat round is still in flight.
    let leading = |n: &SimNode| n.engine.as_ref().is_some_and(|e| e.role() == Role::Leader);
    sim.run_until(u64::MAX, |s| s.nodes.iter().any(leading));
    let leader = sim.nodes.iter().find(|n| leading(n)).unwrap().id.clone();
    assert!(!sim.status(&leader).unwrap().is_leader);
    let before = sim.events().len();
    sim.crash(&leader).unwrap();
    assert_eq!(sim.events().len(), before, "no elected, so no demoted");
    let announced = |e: &&SimEvent| matches!(e.kind, EventKind::Elected | EventKind::Demoted);
    assert!(!sim.events().iter().filter(announced).any(|e| e.node == leader));
    sim.restart(&leader).unwrap();
    sim.run_for(Duration::from_secs(2));
    sim.check().unwrap();
    assert_alternation(sim.events());
}

#[test]
fn a_faulty_run_alternates_elected_and_demoted_per_node() {
    for seed in [21, 22] {
        let events = faulty_run(seed).0;
        assert!(events.iter().any(|e| e.reason == Some(DemoteReason::Crashed)), "the leader's crash is recorded");
        assert_alternation(&events);
    }
}

#[test]
fn a_crashed_node_restarts_from_its_persisted_term_and_vote() {
    let mut sim = Simulation::new(SimConfig::numbered(3, 6)).unwrap();
    let leader = sim.run_until_leader(Duration::from_secs(5)).unwrap();
    let before = sim.status(&leader).unwrap();
    sim.crash(&leader).unwrap();
    let down = sim.status(&leader).unwrap();
    assert!(!down.up && down.role.is_none());
    assert_eq!((down.term, down.voted_for.clone()), (before.term, before.voted_for.clone()));
    sim.restart(&leader).unwrap();
    let after = sim.status(&leader).unwrap();
    assert_eq!((after.term, after.voted_for), (before.term, before.voted_for));
}
