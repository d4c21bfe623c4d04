//! Ring (Chang and Roberts) in the simulator: rank, failover, recovery, and what a partition does.

use std::time::Duration;

use super::tests::numbered_sim;
use super::*;
use quorate_engine::test_support::ms;
use quorate_engine::Algorithm;

#[test]
fn the_highest_live_rank_coordinates_fails_over_and_takes_over_again_when_it_recovers() {
    let mut sim = numbered_sim(Algorithm::Ring, 5, 11);
    assert_eq!(sim.run_until_known_to_all(Duration::from_secs(5)).as_deref(), Some("n5"));
    sim.run_for(ms(100));
    let first = sim.status("n5").unwrap().fencing_token.unwrap();
    sim.crash("n5").unwrap();
    assert_eq!(sim.run_until_known_to_all(Duration::from_secs(5)).as_deref(), Some("n4"), "the ring skips the dead n5");
    sim.run_for(ms(100));
    let second = sim.status("n4").unwrap().fencing_token.unwrap();
    sim.restart("n5").unwrap();
    sim.run_for(ms(500));
    assert_eq!(sim.leader_known_to_all().map(String::as_str), Some("n5"));
    let third = sim.status("n5").unwrap().fencing_token.unwrap();
    assert!(first < second && second < third, "{first} < {second} < {third}");
    sim.check().unwrap();
}

#[test]
fn the_top_priority_coordinates_whatever_its_id() {
    let mut sc = SimConfig::numbered(5, 3);
    sc.algorithm = Algorithm::Ring;
    sc.priorities.insert("n1".into(), 4);
    let mut sim = Simulation::new(sc).unwrap();
    assert_eq!(sim.run_until_known_to_all(Duration::from_secs(5)).as_deref(), Some("n1"));
}

/// Like Bully, Ring has no majority rule: each side of a partition closes its own ring and elects
/// its own coordinator; the fencing tokens order them.
#[test]
fn a_partition_gives_two_coordinators_at_once_and_fencing_tokens_order_them() {
    let mut sim = numbered_sim(Algorithm::Ring, 5, 2);
    assert_eq!(sim.run_until_known_to_all(Duration::from_secs(5)).as_deref(), Some("n5"));
    sim.run_for(ms(100));
    let stale = sim.status("n5").unwrap().fencing_token.unwrap();
    sim.partition(&[vec!["n1".into(), "n2".into()], vec!["n3".into(), "n4".into(), "n5".into()]]).unwrap();
    sim.run_for(Duration::from_secs(2));
    let (old, new) = (sim.status("n5").unwrap(), sim.status("n2").unwrap());
    assert!(old.is_leader && new.is_leader, "two coordinators at once: {old:?} {new:?}");
    let fresh = new.fencing_token.unwrap();
    assert!(fresh > stale, "the newer coordinator's token is higher: {fresh} > {stale}");
    sim.check().unwrap();
    sim.heal();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.leader_known_to_all().map(String::as_str), Some("n5"));
    assert!(sim.status("n5").unwrap().fencing_token.unwrap() > fresh);
    sim.check().unwrap();
}

/// A coordinator that dies while its COORDINATOR is still going round: the message stops where the
/// dead coordinator would have been, instead of circling (and refreshing everyone) for ever.
#[test]
fn a_coordinator_crashed_at_once_is_replaced() {
    for seed in 0..20 {
        let mut sim = numbered_sim(Algorithm::Ring, 5, seed);
        let leader = sim.run_until_known_to_all(Duration::from_secs(5)).unwrap();
        sim.crash(&leader).unwrap();
        let next = sim.run_until_known_to_all(Duration::from_secs(5));
        assert_eq!(next.as_deref(), Some("n4"), "seed {seed}");
        sim.check().unwrap();
    }
}
