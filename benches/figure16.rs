//! Figure 16 of the Raft paper (section 9.3): time to elect a new leader after the leader crashes
//! at a random point of its heartbeat interval, for several election-timeout ranges.
//! Run: `cargo bench --bench figure16`. Target (issue 2): 1000 trials of one row in at most 2 s.
//!
//! The paper's setup: 5 servers, broadcast time about 15 ms (so one-way latency about 7.5 ms),
//! heartbeat half the minimum timeout, and neither pre-vote nor check-quorum (they came later, in the
//! thesis). One more row shows quorate's defaults (pre-vote and check-quorum on) at 150-300 ms.

use std::time::{Duration, Instant};

use quorate::sim::failover::failover_trials;
use quorate::sim::SimConfig;

const TRIALS: usize = 1000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(s: f64) -> String {
    if s.is_finite() {
        format!("{:.0}", s * 1000.0)
    } else {
        "none".to_string()
    }
}

fn row(label: &str, min_ms: u64, max_ms: u64, paper_setup: bool) {
    let mut cfg = SimConfig::numbered(5, 16);
    cfg.timing.election_timeout = (Duration::from_millis(min_ms), Duration::from_millis(max_ms));
    cfg.timing.heartbeat_interval = Duration::from_micros(min_ms * 500);
    cfg.latency = (Duration::from_micros(7_000), Duration::from_micros(8_000));
    cfg.timing.pre_vote = !paper_setup;
    cfg.timing.check_quorum = !paper_setup;
    let started = Instant::now();
    let mut times = failover_trials(TRIALS, &cfg).expect("valid config");
    let wall = started.elapsed();
    times.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let unfinished = times.iter().filter(|t| !t.is_finite()).count();
    let mean = times.iter().filter(|t| t.is_finite()).sum::<f64>() / (TRIALS - unfinished).max(1) as f64;
    println!(
        "| {label} | {} | {} | {} | {} | {} | {} | {unfinished} | {:.2} s |",
        ms(mean),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(percentile(&times, 0.99)),
        ms(times[TRIALS - 1]),
        TRIALS,
        wall.as_secs_f64()
    );
}

fn main() {
    println!("| election timeout (ms) | mean | median | p90 | p99 | max | trials | no leader | wall |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (lo, hi) in [
        (150, 150),
        (150, 151),
        (150, 155),
        (150, 175),
        (150, 200),
        (150, 300),
        (12, 24),
        (25, 50),
        (50, 100),
        (100, 200),
    ] {
        row(&format!("{lo}-{hi}"), lo, hi, true);
    }
    row("150-300, pre-vote + check-quorum", 150, 300, false);
}
