//! Raft beside Bully beside Ring in the simulator (issue 9): messages to elect the first leader
//! from a cold start, and failover time after the leader crashes at a random point of its
//! heartbeat interval, for n = 3, 5, 9, 17 with the default timing and latency.
//! Run: `cargo bench --bench algorithms`.

use std::time::Duration;

use quorate::engine::Algorithm;
use quorate::sim::failover::failover_trials;
use quorate::sim::{SimConfig, Simulation};

const SEEDS: u64 = 20;
const TRIALS: usize = 200;

fn config(algorithm: Algorithm, n: usize, seed: u64) -> SimConfig {
    SimConfig { algorithm, ..SimConfig::numbered(n, seed) }
}

/// Messages sent until every node agrees on a leader holding its lease, median over `SEEDS` runs.
fn messages_to_elect(algorithm: Algorithm, n: usize) -> u64 {
    let mut counts: Vec<u64> = (0..SEEDS)
        .map(|seed| {
            let mut sim = Simulation::new(config(algorithm, n, seed)).expect("valid config");
            sim.run_until_known_to_all(Duration::from_secs(10)).expect("a first leader");
            sim.stats().messages_sent
        })
        .collect();
    counts.sort_unstable();
    counts[counts.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    println!("| n | algorithm | messages to elect (median of {SEEDS}) | failover p50 | p95 | max ({TRIALS} trials) |");
    println!("|---|---|---|---|---|---|");
    for n in [3, 5, 9, 17] {
        for algorithm in [Algorithm::Raft, Algorithm::Bully, Algorithm::Ring] {
            let messages = messages_to_elect(algorithm, n);
            let mut times = failover_trials(TRIALS, &config(algorithm, n, 7)).expect("valid config");
            times.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
            let ms = |s: f64| if s.is_finite() { format!("{:.0} ms", s * 1000.0) } else { "none".into() };
            println!(
                "| {n} | {} | {messages} | {} | {} | {} |",
                algorithm.name(),
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.95)),
                ms(*times.last().expect("trials"))
            );
        }
    }
}
