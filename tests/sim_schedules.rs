//! Seeded random fault schedules checked for safety and liveness.
//!
//! `QUORATE_SIM_SCHEDULES=N` sets how many (100,000 by default, about 30 s on two cores; 1,000,000 for the long run) and
//! `QUORATE_SIM_SEED=S` replays one. Every failure prints its seed and the command that replays it.
//! The same schedules run against bully and ring (`QUORATE_BULLY_SCHEDULES`,
//! `QUORATE_RING_SCHEDULES`, 10,000 each by default; `QUORATE_BULLY_SEED=S`, `QUORATE_RING_SEED=S`
//! replay one), with their rules: two coordinators may coexist under a partition, but tokens are
//! never shared or lowered, and once healed the highest-ranked member coordinates, agreed by all,
//! with a token above every token handed out before.

use std::sync::atomic::{AtomicU64, Ordering};

use quorate::engine::Algorithm;
use quorate::sim::schedule::{run_schedule, run_schedule_for, run_schedule_traced, ScheduleOutcome};

const DEFAULT_SCHEDULES: u64 = 100_000;
const DEFAULT_BULLY_SCHEDULES: u64 = 10_000;
const DEFAULT_RING_SCHEDULES: u64 = 10_000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")))
}

fn replay_command(seed: u64) -> String {
    format!("QUORATE_SIM_SEED={seed} cargo test --test sim_schedules -- --nocapture")
}

#[test]
fn random_fault_schedules_keep_every_guarantee_and_elect_once_healed() {
    if let Some(seed) = env_u64("QUORATE_SIM_SEED") {
        let outcome = run_schedule_traced(seed, |line| println!("{line}"));
        println!("{outcome:#?}");
        assert!(outcome.failure().is_none(), "seed {seed}: {}", outcome.failure().unwrap());
        return;
    }
    let total = env_u64("QUORATE_SIM_SCHEDULES").unwrap_or(DEFAULT_SCHEDULES);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let next = AtomicU64::new(0);
    let started = std::time::Instant::now();
    let results: Vec<(Vec<ScheduleOutcome>, u64, u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let (mut failures, mut three, mut elections, mut worst_heal_ns) = (Vec::new(), 0, 0, 0u64);
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= total {
                            break;
                        }
                        let o = run_schedule(seed);
                        three += u64::from(o.members == 3);
                        elections += o.elections;
                        if let Some(h) = o.healed_leader_after {
                            worst_heal_ns = worst_heal_ns.max(h.as_nanos() as u64);
                        }
                        if o.failure().is_some() {
                            failures.push(o);
                        }
                    }
                    (failures, three, elections, worst_heal_ns)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("schedule thread")).collect()
    });
    let mut failures: Vec<ScheduleOutcome> = results.iter().flat_map(|r| r.0.clone()).collect();
    failures.sort_by_key(|o| o.seed);
    let three: u64 = results.iter().map(|r| r.1).sum();
    let elections: u64 = results.iter().map(|r| r.2).sum();
    let worst = results.iter().map(|r| r.3).max().unwrap_or(0) as f64 / 1e9;
    println!(
        "{total} schedules ({three} of 3 members, {} of 5) in {:.1?}: {elections} elections, slowest re-election after heal {worst:.3}s, {} failures",
        total - three,
        started.elapsed(),
        failures.len()
    );
    for o in failures.iter().take(10) {
        println!("seed {}: {} -- replay: {}", o.seed, o.failure().unwrap(), replay_command(o.seed));
    }
    assert!(failures.is_empty(), "{} of {total} schedules failed; first: seed {}", failures.len(), failures[0].seed);
    assert!(three > 0 && three < total.max(2), "both group sizes are exercised");
}

/// The seeded schedules for `algorithm`, `default` of them unless `QUORATE_<NAME>_SCHEDULES` says
/// otherwise; `QUORATE_<NAME>_SEED=S` replays one.
fn run_schedules_for(algorithm: Algorithm, default: u64) {
    let name = algorithm.name().to_uppercase();
    if let Some(seed) = env_u64(&format!("QUORATE_{name}_SEED")) {
        let outcome = run_schedule_for(algorithm, seed, |line| println!("{line}"));
        println!("{outcome:#?}");
        assert!(outcome.failure().is_none(), "seed {seed}: {}", outcome.failure().unwrap());
        return;
    }
    let total = env_u64(&format!("QUORATE_{name}_SCHEDULES")).unwrap_or(default);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let next = AtomicU64::new(0);
    let failures: Vec<ScheduleOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut failures = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= total {
                            break;
                        }
                        let o = run_schedule_for(algorithm, seed, |_| {});
                        if o.failure().is_some() {
                            failures.push(o);
                        }
                    }
                    failures
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("schedule thread")).collect()
    });
    for o in failures.iter().take(10) {
        println!(
            "seed {}: {} -- replay: QUORATE_{name}_SEED={} cargo test --test sim_schedules {} -- --nocapture",
            o.seed,
            o.failure().unwrap(),
            o.seed,
            algorithm.name()
        );
    }
    assert!(failures.is_empty(), "{} of {total} {} schedules failed", failures.len(), algorithm.name());
}

#[test]
fn bully_fault_schedules_keep_bullys_guarantees_and_settle_on_the_highest_rank_once_healed() {
    run_schedules_for(Algorithm::Bully, DEFAULT_BULLY_SCHEDULES);
}

#[test]
fn ring_fault_schedules_keep_rings_guarantees_and_settle_on_the_highest_rank_once_healed() {
    run_schedules_for(Algorithm::Ring, DEFAULT_RING_SCHEDULES);
}
