//! The simulator's own rules: determinism, paused inboxes, crashes and restarts, alternation.

use super::*;
use quorate_engine::{Algorithm, Role};

/// A simulation of `members` nodes n1..nN running `algorithm`, default timing, seeded.
pub(super) fn numbered_sim(algorithm: Algorithm, members: usize, seed: u64) -> Simulation {
    let mut sc = SimConfig::numbered(members, seed);
    sc.algorithm = algorithm;
    Simulation::new(sc).unwrap()
}

fn faulty_run(seed: u64) -> (Vec<SimEvent>, Stats) {
    let mut cfg = SimConfig::numbered(5, seed);
    cfg.drop_rate = 0.1;
    cfg.duplicate_rate = 0.05;
    let mut sim = Simulation::new(cfg).unwrap();
    let leader = sim.run_until_known_to_all(Duration::from_secs(5)).unwrap();
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
    let leader = sim.run_until_known_to_all(Duration::from_secs(5)).unwrap();
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
    let leader = sim.run_until_known_to_all(Duration::from_secs(5)).unwrap();
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
    let next = sim.leader_known_to_all().unwrap().clone();
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
    let leader = sim.run_until_known_to_all(Duration::from_secs(5)).unwrap();
    let before = sim.status(&leader).unwrap();
    sim.crash(&leader).unwrap();
    let down = sim.status(&leader).unwrap();
    assert!(!down.up && down.role.is_none());
    assert_eq!((down.term, down.voted_for.clone()), (before.term, before.voted_for.clone()));
    sim.restart(&leader).unwrap();
    let after = sim.status(&leader).unwrap();
    assert_eq!((after.term, after.voted_for), (before.term, before.voted_for));
}

/// A simulation whose every message takes exactly `latency_ms`.
fn fixed_latency(count: usize, seed: u64, latency_ms: u64, algorithm: Algorithm) -> Simulation {
    let mut cfg = SimConfig::numbered(count, seed);
    cfg.latency = (Duration::from_millis(latency_ms), Duration::from_millis(latency_ms));
    cfg.algorithm = algorithm;
    Simulation::new(cfg).unwrap()
}

/// Runs to the end of the silence every raft node promises at boot (`election_timeout.min`: until
/// then `campaign` does nothing), checking that no election timer fires in the next 20 ms.
fn past_boot_promise(sim: &mut Simulation) -> Duration {
    let until = sim.config().timing.election_timeout.0;
    sim.run_for(until);
    for id in sim.members().to_vec() {
        let wake = sim.next_wake(&id).unwrap().unwrap();
        assert!(wake > until + Duration::from_millis(20), "{id} times out at {wake:?}: pick another seed");
    }
    assert!(sim.in_flight().is_empty(), "nothing is sent before the first timeout");
    until
}

fn flights(sim: &Simulation) -> Vec<(String, String, &'static str, Duration, Duration, bool)> {
    sim.in_flight()
        .into_iter()
        .map(|m| (m.from, m.to, m.message.kind_name(), m.sent_at, m.deliver_at, m.doomed))
        .collect()
}

#[test]
fn in_flight_lists_each_copy_from_its_send_until_it_arrives() {
    let mut sim = fixed_latency(3, 1, 2, quorate_engine::Algorithm::Raft);
    let t0 = past_boot_promise(&mut sim);
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    sim.campaign("n2").unwrap(); // the election timeout fires at t0: a pre-vote to each peer
    let term = sim.status("n2").unwrap().term + 1; // a pre-vote asks for the next term without taking it
    let sent = sim.in_flight();
    assert!(sent.iter().all(|m| m.message == Message::Vote { term, pre_vote: true, transfer: false }), "{sent:?}");
    assert_eq!(
        flights(&sim),
        [
            ("n2".into(), "n1".into(), "pre_vote", at(0), at(2), false),
            ("n2".into(), "n3".into(), "pre_vote", at(0), at(2), false),
        ]
    );
    sim.run_for(Duration::from_millis(1));
    assert_eq!(flights(&sim).len(), 2, "still on the way 1 ms later");
    sim.crash("n3").unwrap();
    assert_eq!(flights(&sim)[1], ("n2".into(), "n3".into(), "pre_vote", at(0), at(2), true), "n3 is down: doomed");
    let dropped = sim.stats().messages_dropped;
    sim.run_for(Duration::from_millis(1)); // both arrive; n1 answers, n3's copy is dropped
    assert_eq!(sim.stats().messages_dropped, dropped + 1);
    assert_eq!(flights(&sim), [("n1".into(), "n2".into(), "pre_vote_response", at(2), at(4), false)]);
    sim.run_for(Duration::from_millis(2)); // granted: n2 campaigns for real, to n1 and to n3 (down)
    assert_eq!(
        flights(&sim),
        [
            ("n2".into(), "n1".into(), "vote", at(4), at(6), false),
            ("n2".into(), "n3".into(), "vote", at(4), at(6), true),
        ]
    );
    sim.restart("n3").unwrap();
    assert!(flights(&sim).iter().all(|f| !f.5), "restarted in time: nothing doomed");
    sim.check().unwrap();
}

#[test]
fn in_flight_shows_duplicates_and_cut_links_and_never_what_was_dropped_at_send() {
    let mut sim = fixed_latency(3, 9, 2, quorate_engine::Algorithm::Raft);
    past_boot_promise(&mut sim);
    sim.set_duplicate_rate(1.0).unwrap();
    sim.campaign("n1").unwrap();
    let pairs: Vec<(String, String)> = sim.in_flight().into_iter().map(|m| (m.from, m.to)).collect();
    assert_eq!(pairs, [("n1", "n2"), ("n1", "n2"), ("n1", "n3"), ("n1", "n3")].map(|(a, b)| (a.into(), b.into())));
    sim.isolate("n3").unwrap(); // after the send: the copies to n3 will be dropped on arrival
    let doomed: Vec<bool> = sim.in_flight().iter().map(|m| m.doomed).collect();
    assert_eq!(doomed, [false, false, true, true]);
    sim.heal();
    assert!(sim.in_flight().iter().all(|m| !m.doomed));

    let mut sim = fixed_latency(3, 9, 2, quorate_engine::Algorithm::Raft);
    past_boot_promise(&mut sim);
    sim.set_drop_rate(1.0).unwrap();
    sim.campaign("n1").unwrap();
    assert!(sim.in_flight().is_empty(), "dropped at send: never in flight");
    assert_eq!(sim.stats().messages_dropped, 2);
}

#[test]
fn in_flight_is_a_read_only_view() {
    let run = |look: bool| {
        let mut cfg = SimConfig::numbered(5, 31);
        cfg.duplicate_rate = 0.1;
        let mut sim = Simulation::new(cfg).unwrap();
        let mut seen = 0;
        for _ in 0..400 {
            sim.run_for(Duration::from_millis(3));
            if look {
                seen += sim.in_flight().len();
            }
        }
        (sim.events().to_vec(), sim.stats().clone(), seen)
    };
    let (events, stats, seen) = run(true);
    assert!(seen > 0, "messages were seen in flight");
    let (quiet_events, quiet_stats, _) = run(false);
    assert_eq!((events, stats), (quiet_events, quiet_stats), "looking changes nothing");
}

#[test]
fn in_flight_names_bully_and_ring_messages() {
    use quorate_engine::Algorithm;
    let mut sim = fixed_latency(3, 4, 2, Algorithm::Bully);
    sim.campaign("n1").unwrap(); // ELECTION to every higher-ranked member
    let kinds: Vec<_> = flights(&sim).into_iter().map(|f| (f.1, f.2)).collect();
    assert_eq!(kinds, [("n2".to_string(), "election"), ("n3".to_string(), "election")]);
    sim.run_for(Duration::from_millis(2));
    let kinds: Vec<_> = flights(&sim).into_iter().map(|f| (f.0, f.2)).collect();
    assert!(kinds.contains(&("n2".to_string(), "ok")) && kinds.contains(&("n3".to_string(), "ok")), "{kinds:?}");

    let mut sim = fixed_latency(3, 4, 2, Algorithm::Ring);
    sim.campaign("n1").unwrap(); // ELECTION to the next member of the ring
    let sent = sim.in_flight();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].message.kind_name(), "ring_election");
    let leader = sim.run_until_known_to_all(Duration::from_secs(5)).unwrap();
    sim.run_for(Duration::from_millis(30));
    let kinds: std::collections::BTreeSet<_> = sim.in_flight().iter().map(|m| m.message.kind_name()).collect();
    assert!(
        kinds.is_subset(&["ring_alive", "ring_alive_ack", "ring_coordinator", "ring_ack"].into()),
        "{kinds:?} ({leader})"
    );
}

#[test]
fn a_followers_forced_timeout_is_held_back_by_its_promise_but_a_transfer_is_not() {
    let mut sim = Simulation::new(SimConfig::numbered(3, 12)).unwrap();
    let leader = sim.run_until_known_to_all(Duration::from_secs(5)).unwrap();
    sim.run_for(Duration::from_millis(100));
    let follower = sim.members().iter().find(|m| **m != leader).unwrap().clone();
    let term = sim.status(&leader).unwrap().term;
    sim.campaign(&follower).unwrap();
    assert!(sim.in_flight().iter().all(|m| m.from != follower || m.message.kind_name() != "pre_vote"));
    assert_eq!(sim.status(&follower).unwrap().term, term, "it promised the leader silence");

    assert!(!sim.resign(&follower).unwrap(), "a follower does not resign");
    assert!(!sim.transfer_leadership(&follower, &leader).unwrap(), "nor transfer");
    assert!(sim.transfer_leadership(&leader, &leader).is_err());
    assert!(sim.transfer_leadership(&leader, &follower).unwrap());
    assert!(sim
        .in_flight()
        .iter()
        .any(|m| m.from == leader && m.to == follower && m.message.kind_name() == "timeout_now"));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.leader_known_to_all(), Some(&follower));
    assert!(sim.resign(&follower).unwrap());
    let last_demoted = sim.events().iter().rev().find(|e| e.kind == EventKind::Demoted).unwrap();
    assert_eq!((last_demoted.node.as_str(), last_demoted.reason), (follower.as_str(), Some(DemoteReason::Resigned)));
    sim.run_until_known_to_all(Duration::from_secs(5)).unwrap();

    sim.crash(&leader).unwrap();
    assert!(sim.campaign(&leader).unwrap_err().to_string().contains("is down"));
    sim.pause(&follower, Duration::from_secs(1)).unwrap();
    assert!(sim.resign(&follower).unwrap_err().to_string().contains("is paused"));
    sim.check().unwrap();
    assert_alternation(sim.events());
}

/// Issue 21: `election_timeout=(5e8, 1e9)` s with a node's clock at a hundredth of real speed put
/// its deadline past the end of u64 nanoseconds; the wrapped instant landed in the past and the
/// node woke at every nanosecond, so `run_for(10 s)` never returned.
#[test]
fn a_huge_timeout_on_a_slow_clock_neither_spins_nor_hangs_the_simulator() {
    let mut cfg = SimConfig::numbered(3, 1);
    cfg.timing.election_timeout = (Duration::from_secs(500_000_000), Duration::from_secs(1_000_000_000));
    cfg.timing.heartbeat_interval = Duration::from_secs(100_000_000);
    let mut sim = Simulation::new(cfg).expect("a valid config");
    sim.set_clock_rate("n1", quorate_engine::faults::CLOCK_RATES.0).unwrap();
    sim.set_clock_rate("n2", quorate_engine::faults::CLOCK_RATES.1).unwrap();
    let started = std::time::Instant::now();
    sim.run_for(Duration::from_secs(10));
    sim.run_for(Duration::from_secs(3_000_000_000));
    assert!(sim.stats().messages_sent < 10_000, "idle nodes stay idle: {:?}", sim.stats());
    assert!(started.elapsed() < Duration::from_secs(60), "virtual time passes without spinning");
    sim.run_for(Duration::MAX);
    assert_eq!(sim.now(), Duration::from_nanos(u64::MAX), "time runs to its end and stops there");
    sim.check().expect("no violation");
}
