//! Unit tests of the Ring engine (Chang and Roberts), named after its rules.

use std::collections::BTreeMap;
use std::time::Duration;

use super::test_support::{booted, config, ms, sends};
use super::*;

fn cfg(id: &str, members: &[&str]) -> Config {
    config(Algorithm::Ring, id, members)
}

fn node(id: &str, members: &[&str]) -> Engine {
    booted(Algorithm::Ring, id, members)
}

fn fire(e: &mut Engine) -> (Duration, Vec<Output>) {
    let at = e.next_deadline().unwrap();
    (at, e.tick(at))
}

fn election(epoch: Term, candidate: &str, hop: u64) -> Message {
    Message::RingElection { epoch, candidate: candidate.into(), hop }
}

const ABCD: [&str; 4] = ["a", "b", "c", "d"];

#[test]
fn the_ring_is_ordered_by_rank_and_an_election_names_its_initiator() {
    let mut b = node("b", &ABCD);
    let (_, out) = fire(&mut b);
    assert_eq!(sends(&out), vec![("c".into(), election(0, "b", 1))], "b's successor is c");
    assert_eq!(b.role(), Role::Candidate, "a participant");
    let mut d = node("d", &ABCD);
    assert_eq!(sends(&fire(&mut d).1), vec![("a".into(), election(0, "d", 1))], "the ring wraps round");
    // Priorities reorder the ring: with a ranked highest, d's successor is b.
    let ranked = cfg("d", &ABCD).with_priorities(BTreeMap::from([("a".to_string(), 1)])).unwrap();
    let mut d = Engine::new(ranked, HardState::default());
    d.tick(Duration::ZERO);
    assert_eq!(sends(&fire(&mut d).1)[0].0, "a");
    let ranked = cfg("a", &ABCD).with_priorities(BTreeMap::from([("a".to_string(), 1)])).unwrap();
    let mut a = Engine::new(ranked, HardState::default());
    a.tick(Duration::ZERO);
    assert_eq!(sends(&fire(&mut a).1)[0].0, "b", "the highest rank's successor is the lowest");
}

#[test]
fn every_hop_is_acknowledged() {
    let mut c = node("c", &ABCD);
    let out = c.step(ms(1), "b", election(0, "b", 9));
    assert_eq!(sends(&out)[0], ("b".into(), Message::RingAck { hop: 9 }));
}

#[test]
fn chang_roberts_a_higher_candidate_is_passed_on() {
    let mut b = node("b", &ABCD);
    let out = b.step(ms(1), "a", election(0, "d", 3));
    assert_eq!(sends(&out)[1], ("c".into(), election(0, "d", 1)));
}

#[test]
fn chang_roberts_a_lower_candidate_is_replaced_unless_already_participating() {
    let mut c = node("c", &ABCD);
    let out = c.step(ms(1), "b", election(0, "a", 3));
    assert_eq!(sends(&out)[1], ("d".into(), election(0, "c", 1)), "c names itself");
    let out = c.step(ms(2), "b", election(0, "b", 4));
    assert_eq!(sends(&out), vec![("b".into(), Message::RingAck { hop: 4 })], "a participant swallows a lower one");
}

#[test]
fn chang_roberts_ones_own_name_back_wins_and_coordinator_circulates_once() {
    let mut d = node("d", &ABCD);
    fire(&mut d);
    let out = d.step(ms(400), "c", election(0, "d", 5));
    assert_eq!(
        out[0],
        Output::Persist(HardState { term: 3, voted_for: None }),
        "d's epochs are 3 mod 4: persisted first"
    );
    let s = sends(&out);
    assert!(s.contains(&("a".into(), Message::RingCoordinator { epoch: 3, leader: "d".into(), hop: 2 })));
    assert_eq!(d.role(), Role::Leader);
    // The coordinator message travels on, and stops once it is back at d.
    let mut a = node("a", &ABCD);
    let out = a.step(ms(401), "d", Message::RingCoordinator { epoch: 3, leader: "d".into(), hop: 2 });
    assert_eq!(a.leader().map(String::as_str), Some("d"));
    assert!(sends(&out).contains(&("b".into(), Message::RingCoordinator { epoch: 3, leader: "d".into(), hop: 1 })));
    let out = d.step(ms(402), "c", Message::RingCoordinator { epoch: 3, leader: "d".into(), hop: 7 });
    assert_eq!(sends(&out), vec![("c".into(), Message::RingAck { hop: 7 })], "round the ring once");
}

#[test]
fn a_successor_that_does_not_answer_in_time_is_skipped() {
    let mut b = node("b", &ABCD);
    let (at, _) = fire(&mut b);
    assert_eq!(b.next_deadline(), Some(at + Timing::default().heartbeat_interval), "the hop's wait");
    let (_, out) = fire(&mut b);
    assert_eq!(sends(&out), vec![("d".into(), election(0, "b", 2))], "c is silent: on to d");
    b.step(at + ms(60), "d", Message::RingAck { hop: 2 });
    assert!(b.next_deadline().unwrap() > at + ms(100), "acknowledged: no more skipping");
}

#[test]
fn alone_on_the_ring_an_election_comes_back_and_wins() {
    let mut a = node("a", &["a", "b"]);
    fire(&mut a); // election to b
    let (_, out) = fire(&mut a); // b never answers: nobody left to pass it to
    assert_eq!(a.role(), Role::Leader);
    assert!(matches!(out[0], Output::Persist(_)));
    let mut solo = node("a", &["a"]);
    let (at, _) = fire(&mut solo);
    assert!(solo.is_leader(at), "a one-member group leads alone");
}

#[test]
fn elected_comes_with_the_first_heartbeat_ack_and_a_stale_token_is_renewed() {
    let mut d = node("d", &ABCD);
    fire(&mut d);
    let out = d.step(ms(400), "c", election(0, "d", 5));
    assert!(!d.is_leader(ms(400)));
    let round0 = sends(&out).into_iter().find(|(_, m)| matches!(m, Message::RingAlive { .. })).unwrap().1;
    assert_eq!(round0, Message::RingAlive { epoch: 3, seq: 0 });
    let out = d.step(ms(401), "a", Message::RingAliveAck { epoch: 3, seq: 0 });
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event { kind: EventKind::Elected, .. }))));
    assert!(d.is_leader(ms(401)) && d.fencing_token(ms(401)) == Some(3));
    let out = d.step(ms(402), "b", Message::RingAliveAck { epoch: 9, seq: 1 });
    assert_eq!(out[0], Output::Persist(HardState { term: 11, voted_for: None }), "above 9, and d's own");
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event { reason: Some(DemoteReason::HigherTerm), .. }))));
}

#[test]
fn a_node_that_hears_a_lower_coordinator_holds_an_election() {
    let mut d = node("d", &ABCD);
    let out = d.step(ms(5), "c", Message::RingAlive { epoch: 2, seq: 4 });
    assert_eq!(d.role(), Role::Candidate);
    assert_eq!(sends(&out), vec![("a".into(), election(2, "d", 1))]);
}

#[test]
fn ring_messages_only() {
    let mut a = node("a", &ABCD);
    assert!(!a.plausible(&Message::Coordinator { epoch: 1 }));
    assert!(!a.plausible(&election(0, "stranger", 1)), "a candidate must be a member");
    assert!(a.step(ms(1), "b", election(0, "stranger", 1)).is_empty());
}
