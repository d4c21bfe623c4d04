//! Simulator speed: 5 members, 50 ms heartbeats, one hour of virtual time.
//! Run: `cargo bench --bench sim_speed`. Target (issue 2): at most 1 s of wall time.

use std::time::{Duration, Instant};

use quorate::sim::{SimConfig, Simulation};

const RUNS: usize = 5;

fn main() {
    let mut walls = Vec::new();
    let mut delivered = 0;
    for seed in 0..RUNS as u64 {
        let mut sim = Simulation::new(SimConfig::numbered(5, seed)).expect("valid config");
        let started = Instant::now();
        sim.run_for(Duration::from_secs(3600));
        walls.push(started.elapsed());
        sim.check().expect("no safety violation");
        assert!(sim.leader_known_to_all().is_some(), "a leader after an hour");
        delivered = sim.stats().messages_delivered;
    }
    walls.sort();
    let median = walls[RUNS / 2];
    println!("| scenario | runs | median wall | min | max | messages delivered per run | messages/s |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| 5 members, 50 ms heartbeats, 1 h virtual | {RUNS} | {:.3} s | {:.3} s | {:.3} s | {delivered} | {:.1} M |",
        median.as_secs_f64(),
        walls[0].as_secs_f64(),
        walls[RUNS - 1].as_secs_f64(),
        delivered as f64 / median.as_secs_f64() / 1e6
    );
}
