//! Unit tests of the Bully engine, named after its rules.

use std::collections::BTreeMap;
use std::time::Duration;

use super::test_support::{booted, config, ms, sends};
use super::*;

fn cfg(id: &str, members: &[&str]) -> Config {
    config(Algorithm::Bully, id, members)
}

fn node(id: &str, members: &[&str]) -> Engine {
    booted(Algorithm::Bully, id, members)
}

fn events(outputs: &[Output]) -> Vec<(EventKind, Option<DemoteReason>)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some((e.kind, e.reason)),
            _ => None,
        })
        .collect()
}

/// Fires the node's timer: the time it fired at, and the outputs.
fn fire(e: &mut Engine) -> (Duration, Vec<Output>) {
    let at = e.next_deadline().unwrap();
    (at, e.tick(at))
}

const ABC: [&str; 3] = ["a", "b", "c"];

#[test]
fn election_goes_to_every_higher_ranked_member_only() {
    let mut a = node("a", &ABC);
    let (_, out) = fire(&mut a);
    assert_eq!(a.role(), Role::Candidate);
    assert_eq!(
        sends(&out),
        vec![("b".into(), Message::Election { epoch: 0 }), ("c".into(), Message::Election { epoch: 0 })]
    );
    let mut b = node("b", &ABC);
    let (_, out) = fire(&mut b);
    assert_eq!(sends(&out), vec![("c".into(), Message::Election { epoch: 0 })]);
}

#[test]
fn the_highest_rank_becomes_coordinator_at_once_and_persists_its_epoch_before_announcing_it() {
    let mut c = node("c", &ABC);
    let (_, out) = fire(&mut c);
    assert_eq!(out[0], Output::Persist(HardState { term: 2, voted_for: None }), "persist first: {out:?}");
    assert_eq!(
        sends(&out),
        vec![("a".into(), Message::Coordinator { epoch: 2 }), ("b".into(), Message::Coordinator { epoch: 2 })]
    );
    assert_eq!((c.role(), c.leader().map(String::as_str)), (Role::Leader, Some("c")));
    assert!(!events(&out).iter().any(|(k, _)| *k == EventKind::Elected), "elected waits for a peer's ack");
}

#[test]
fn no_ok_within_the_answer_wait_makes_the_candidate_coordinator() {
    let mut b = node("b", &ABC);
    let (at, _) = fire(&mut b);
    assert_eq!(b.next_deadline(), Some(at + Timing::default().election_timeout.0), "the answer wait");
    let (_, out) = fire(&mut b);
    assert_eq!(b.role(), Role::Leader);
    assert_eq!(b.term(), 1, "b's epochs are 1 mod 3, and above 0");
    assert!(matches!(out[0], Output::Persist(HardState { term: 1, .. })));
}

#[test]
fn an_ok_makes_the_candidate_wait_for_a_coordinator_then_start_over() {
    let mut a = node("a", &ABC);
    let (at, _) = fire(&mut a);
    a.step(at, "c", Message::Ok { epoch: 0 });
    assert_eq!((a.role(), a.leader()), (Role::Follower, None));
    let (_, out) = fire(&mut a);
    assert_eq!(a.role(), Role::Candidate, "no coordinator came: a new election");
    assert_eq!(sends(&out).len(), 2);
}

#[test]
fn a_live_higher_rank_answers_election_with_ok_and_takes_the_election_over() {
    let mut b = node("b", &ABC);
    let out = b.step(ms(10), "a", Message::Election { epoch: 0 });
    assert_eq!(sends(&out), vec![("a".into(), Message::Ok { epoch: 0 }), ("c".into(), Message::Election { epoch: 0 })]);
    assert_eq!(b.role(), Role::Candidate);
    // A lower rank's ELECTION to a node that does not outrank it is not answered.
    let mut a = node("a", &ABC);
    assert!(sends(&a.step(ms(10), "b", Message::Election { epoch: 0 })).is_empty());
}

#[test]
fn a_coordinator_answers_election_with_ok_and_its_coordinator_message() {
    let mut c = node("c", &ABC);
    let (at, _) = fire(&mut c);
    let out = c.step(at, "a", Message::Election { epoch: 0 });
    assert_eq!(
        sends(&out),
        vec![("a".into(), Message::Ok { epoch: 2 }), ("a".into(), Message::Coordinator { epoch: 2 })]
    );
}

#[test]
fn elected_comes_with_the_first_ack_and_the_lease_lapses_once_no_peer_answers() {
    let mut c = node("c", &ABC);
    let (at, _) = fire(&mut c);
    assert!(!c.is_leader(at));
    let out = c.step(at + ms(1), "a", Message::AliveAck { epoch: 2, seq: 0 });
    assert_eq!(events(&out), vec![(EventKind::Elected, None)]);
    let lease = Timing::default().lease_duration();
    assert_eq!(c.lease_expiry(), Some(at + lease), "the lease runs from the round's send time");
    assert!(c.is_leader(at + ms(1)) && c.fencing_token(at + ms(1)) == Some(2));
    // Nobody answers the heartbeats: at the lapse the coordinator steps down.
    let mut demoted = Vec::new();
    while c.role() == Role::Leader {
        let (_, out) = fire(&mut c);
        demoted.extend(events(&out));
    }
    assert_eq!(demoted, vec![(EventKind::Demoted, Some(DemoteReason::LostLease)), (EventKind::LeaderChanged, None)]);
    assert!(!c.is_leader(at + lease));
}

#[test]
fn a_coordinator_nobody_acknowledges_gives_up_without_a_demoted() {
    let mut c = node("c", &ABC);
    fire(&mut c);
    let (_, mut out) = fire(&mut c);
    while c.role() == Role::Leader {
        out.extend(fire(&mut c).1);
    }
    assert!(!events(&out).iter().any(|(k, _)| matches!(k, EventKind::Elected | EventKind::Demoted)));
}

#[test]
fn a_lone_member_leads_alone() {
    let mut a = node("a", &["a"]);
    let (at, out) = fire(&mut a);
    assert!(events(&out).contains(&(EventKind::Elected, None)));
    assert!(a.is_leader(at));
    for _ in 0..10 {
        fire(&mut a);
    }
    assert!(a.is_leader(a.next_deadline().unwrap() - ms(1)), "its own rounds renew its lease");
}

#[test]
fn epochs_are_unique_to_their_node_and_exceed_every_epoch_seen() {
    let members = ["a", "b", "c", "d", "e"];
    for seen in [0u64, 1, 4, 5, 9, 12, 1000] {
        let mut epochs = Vec::new();
        for (i, id) in members.iter().enumerate() {
            let mut e = Engine::new(cfg(id, &members), HardState { term: seen, voted_for: None });
            e.tick(Duration::ZERO);
            if *id != "e" {
                // Only the highest rank declares itself at once; the others after the answer wait.
                fire(&mut e);
            }
            fire(&mut e);
            assert_eq!(e.role(), Role::Leader);
            let epoch = e.term();
            assert!(epoch > seen && epoch <= seen + 5 && epoch % 5 == i as u64, "{id} after {seen}: {epoch}");
            epochs.push(epoch);
        }
        epochs.sort();
        epochs.dedup();
        assert_eq!(epochs.len(), 5, "no two nodes ever share an epoch");
    }
}

#[test]
fn a_stale_claim_is_answered_with_the_higher_epoch_and_the_coordinator_takes_a_fresh_one() {
    // a has seen epoch 7; c (restarted at epoch 2) announces itself.
    let mut a = Engine::new(cfg("a", &ABC), HardState { term: 7, voted_for: None });
    a.tick(Duration::ZERO);
    let out = a.step(ms(1), "c", Message::Coordinator { epoch: 2 });
    assert_eq!(sends(&out), vec![("c".into(), Message::AliveAck { epoch: 7, seq: 0 })]);
    assert_eq!(a.leader(), None, "a stale token is not followed");
    let mut c = node("c", &ABC);
    let (at, _) = fire(&mut c);
    c.step(at, "b", Message::AliveAck { epoch: 2, seq: 0 });
    assert!(c.is_leader(at));
    let out = c.step(at + ms(1), "a", Message::AliveAck { epoch: 7, seq: 0 });
    assert_eq!(out[0], Output::Persist(HardState { term: 8, voted_for: None }), "a fresh epoch above 7, c's own");
    assert_eq!(events(&out)[0], (EventKind::Demoted, Some(DemoteReason::HigherTerm)), "token 2 is stale now");
    assert!(sends(&out).iter().all(|(_, m)| *m == Message::Coordinator { epoch: 8 }));
    let out = a.step(ms(2), "c", Message::Coordinator { epoch: 8 });
    assert_eq!(sends(&out), vec![("c".into(), Message::AliveAck { epoch: 8, seq: 0 })]);
    assert_eq!(a.leader().map(String::as_str), Some("c"));
}

#[test]
fn preemption_a_higher_rank_that_hears_a_lower_coordinator_takes_over() {
    let mut c = node("c", &ABC);
    let out = c.step(ms(5), "b", Message::Alive { epoch: 4, seq: 3 });
    assert_eq!(c.role(), Role::Leader, "c outranks everybody: it takes over at once");
    assert_eq!(c.term(), 5, "above b's epoch 4");
    assert!(sends(&out).contains(&("b".into(), Message::Coordinator { epoch: 5 })));
}

#[test]
fn without_preemption_a_recovering_higher_rank_follows_the_live_coordinator() {
    let mut c = Engine::new(cfg("c", &ABC).with_bully_preempt(false), HardState::default());
    c.tick(Duration::ZERO);
    let out = c.step(ms(5), "b", Message::Alive { epoch: 4, seq: 3 });
    assert_eq!((c.role(), c.leader().map(String::as_str)), (Role::Follower, Some("b")));
    assert_eq!(sends(&out), vec![("b".into(), Message::AliveAck { epoch: 4, seq: 3 })]);
    // Two coordinators that meet still settle on the higher rank, preemption or not.
    let mut lead = Engine::new(cfg("c", &ABC).with_bully_preempt(false), HardState::default());
    lead.tick(Duration::ZERO);
    fire(&mut lead);
    let out = lead.step(ms(300), "b", Message::Alive { epoch: 4, seq: 3 });
    assert_eq!(lead.role(), Role::Leader);
    assert!(sends(&out).iter().any(|(to, m)| to == "b" && matches!(m, Message::Coordinator { .. })));
}

#[test]
fn a_follower_ignores_a_claim_below_its_live_coordinators_rank() {
    let mut a = node("a", &ABC);
    a.step(ms(1), "c", Message::Coordinator { epoch: 2 });
    let out = a.step(ms(2), "b", Message::Alive { epoch: 4, seq: 1 });
    assert_eq!(a.leader().map(String::as_str), Some("c"));
    assert!(sends(&out).is_empty());
}

#[test]
fn messages_of_another_algorithm_are_implausible_and_ignored() {
    let mut a = node("a", &ABC);
    let vote = Message::Vote { term: 1, pre_vote: false, transfer: false };
    assert!(!a.plausible(&vote));
    assert!(a.step(ms(1), "b", vote).is_empty());
    let raft = Engine::new(Config::new("a", ABC, Timing::default(), 1).unwrap(), HardState::default());
    assert!(!raft.plausible(&Message::Coordinator { epoch: 1 }));
    assert!(!a.plausible(&Message::Coordinator { epoch: u64::MAX }), "an epoch absurdly far ahead");
}

#[test]
fn rank_is_priority_then_node_id() {
    let prios = BTreeMap::from([("a".to_string(), 5), ("b".to_string(), 5)]);
    let c = cfg("c", &ABC).with_priorities(prios.clone()).unwrap();
    assert!(c.rank("b") > c.rank("a") && c.rank("a") > c.rank("c"));
    assert_eq!(c.priority, 0);
    let a = cfg("a", &ABC).with_priorities(prios).unwrap();
    assert_eq!(a.priority, 5);
    assert_eq!(cfg("a", &ABC).with_priority(3).priorities.get("a"), Some(&3));
    assert!(cfg("a", &ABC).with_priorities(BTreeMap::from([("z".to_string(), 1)])).is_err());
}

#[test]
fn resign_steps_aside_and_the_next_rank_coordinates() {
    let mut e = node("c", &ABC);
    let (at, _) = fire(&mut e);
    e.step(at, "a", Message::AliveAck { epoch: 2, seq: 0 });
    let out = e.resign(at + ms(1));
    assert_eq!(events(&out)[0], (EventKind::Demoted, Some(DemoteReason::Resigned)));
    assert!(
        sends(&e.step(at + ms(100), "b", Message::Election { epoch: 2 })).is_empty(),
        "it keeps out of the election"
    );
    let out = e.step(at + ms(200), "b", Message::Coordinator { epoch: 4 });
    assert_eq!(e.leader().map(String::as_str), Some("b"), "and follows the next rank, preemption suspended");
    assert_eq!(sends(&out), vec![("b".into(), Message::AliveAck { epoch: 4, seq: 0 })]);
}
