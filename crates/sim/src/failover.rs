//! Failover trials (Raft paper section 9.3, Figure 16): crash the leader at a uniformly random point
//! of its heartbeat interval and measure how long until a new leader holds its lease and every live
//! node knows it.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::{SimConfig, Simulation};
use quorate_engine::seed::mix;
use quorate_engine::ConfigError;

/// How long one trial waits for a leader, in units of `election_timeout[1]`, before recording
/// that none came (as infinity).
pub const PATIENCE_TIMEOUTS: u32 = 100;

/// One value per trial, in seconds: from the crash until a new leader holds its lease and is known
/// to every live node;
/// `f64::INFINITY` when no leader came within `PATIENCE_TIMEOUTS` maximum election timeouts.
pub fn failover_trials(trials: usize, base: &SimConfig) -> Result<Vec<f64>, ConfigError> {
    Simulation::new(base.clone())?; // validate once, so errors come before any work
    if base.members.len() < 2 {
        return Err(ConfigError::new("members: failover needs at least 2 members"));
    }
    let patience = base.timing.election_timeout.1 * PATIENCE_TIMEOUTS;
    let heartbeat = base.timing.heartbeat_interval.as_nanos() as u64;
    let mut out = Vec::with_capacity(trials);
    for trial in 0..trials {
        let seed = mix(base.seed, trial as u64);
        let mut sim = Simulation::new(SimConfig { seed, ..base.clone() })?;
        let mut rng = Pcg64Mcg::seed_from_u64(mix(seed, 0xfa11));
        let Some(leader) = sim.run_until_leader(patience) else {
            out.push(f64::INFINITY);
            continue;
        };
        // Let the leadership settle, then strike at a uniformly random point of a heartbeat interval.
        sim.run_for(base.timing.heartbeat_interval * 2);
        let beat = sim.next_wake(&leader)?.map_or(sim.now(), |t| t.max(sim.now()));
        sim.run_until(beat.as_nanos() as u64, |_| false);
        sim.run_for(Duration::from_nanos(rng.random_range(0..heartbeat)));
        let victim = sim.leader().cloned().unwrap_or(leader);
        sim.crash(&victim)?;
        let crashed_at = sim.now();
        out.push(match sim.run_until_leader(patience) {
            Some(_) => (sim.now() - crashed_at).as_secs_f64(),
            None => f64::INFINITY,
        });
    }
    Ok(out)
}
