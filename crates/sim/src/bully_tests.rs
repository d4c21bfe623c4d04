//! Bully in the simulator: rank, failover, preemption, and what a partition does.

use std::time::Duration;

use super::tests::numbered_sim;
use super::*;
use quorate_engine::test_support::ms;
use quorate_engine::Algorithm;

#[test]
fn the_top_priority_coordinates_whatever_its_id() {
    let mut sc = SimConfig::numbered(5, 3);
    sc.algorithm = Algorithm::Bully;
    sc.priorities.insert("n2".into(), 9);
    let mut sim = Simulation::new(sc).unwrap();
    assert_eq!(sim.run_until_known_to_all(Duration::from_secs(5)).as_deref(), Some("n2"));
}

#[test]
fn the_highest_live_rank_coordinates_after_a_crash_and_takes_over_when_it_recovers() {
    let mut sim = numbered_sim(Algorithm::Bully, 5, 11);
    assert_eq!(sim.run_until_known_to_all(Duration::from_secs(5)).as_deref(), Some("n5"));
    sim.run_for(ms(100));
    let first = sim.status("n5").unwrap().fencing_token.unwrap();
    sim.crash("n5").unwrap();
    assert_eq!(sim.run_until_known_to_all(Duration::from_secs(5)).as_deref(), Some("n4"));
    sim.run_for(ms(100));
    let second = sim.status("n4").unwrap().fencing_token.unwrap();
    sim.restart("n5").unwrap();
    sim.run_for(ms(300));
    assert_eq!(
        sim.leader_known_to_all().map(String::as_str),
        Some("n5"),
        "preemption: the recovered top rank takes over"
    );
    let third = sim.status("n5").unwrap().fencing_token.unwrap();
    assert!(first < second && second < third, "{first} < {second} < {third}");
    sim.check().unwrap();
}

/// Bully has no majority rule: under a partition each side of two or more members elects its own
/// coordinator, and both may act at once. The fencing tokens still order them: the newer
/// coordinator's epoch is higher, so a store that has seen it refuses the stale coordinator.
#[test]
fn a_partition_gives_two_coordinators_at_once_and_fencing_tokens_order_them() {
    let mut sim = numbered_sim(Algorithm::Bully, 5, 2);
    assert_eq!(sim.run_until_known_to_all(Duration::from_secs(5)).as_deref(), Some("n5"));
    sim.run_for(ms(100));
    let stale = sim.status("n5").unwrap().fencing_token.unwrap();
    sim.partition(&[vec!["n1".into(), "n2".into()], vec!["n3".into(), "n4".into(), "n5".into()]]).unwrap();
    sim.run_for(Duration::from_secs(2));
    let (old, new) = (sim.status("n5").unwrap(), sim.status("n2").unwrap());
    assert!(old.is_leader && new.is_leader, "two coordinators at once: {old:?} {new:?}");
    assert_eq!(old.fencing_token, Some(stale), "the majority side kept its coordinator");
    let fresh = new.fencing_token.unwrap();
    assert!(fresh > stale, "the newer coordinator's token is higher: {fresh} > {stale}");
    sim.check().expect("two coordinators are allowed for bully; shared or lower tokens are not");

    // A store that accepts a write only with a token at least the highest it has seen.
    let mut store_max = 0;
    let mut write = |token: u64| -> bool {
        let ok = token >= store_max;
        store_max = store_max.max(token);
        ok
    };
    assert!(write(stale), "before the new coordinator writes, the old one may");
    assert!(write(fresh));
    assert!(!write(stale), "the stale coordinator's token is refused");

    sim.heal();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.leader_known_to_all().map(String::as_str), Some("n5"), "healed: the top rank, agreed by all");
    let last = sim.status("n5").unwrap().fencing_token.unwrap();
    assert!(last > fresh, "its new token exceeds both: {last} > {fresh}");
    assert!(!sim.status("n2").unwrap().is_leader);
    sim.check().unwrap();
}
