//! Seeded random fault schedules: the long-running safety and liveness check of the engine.
//! Everything about a schedule follows from its seed, so a failure replays from the seed alone.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::{SimConfig, Simulation, Violation};
use quorate_engine::seed::mix;
use quorate_engine::{Algorithm, EventKind};

/// How long the faulty part of every schedule runs, in virtual time.
pub const FAULTY_SPAN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleOutcome {
    pub seed: u64,
    pub algorithm: Algorithm,
    pub members: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub faults_applied: u64,
    pub elections: u64,
    /// Virtual time from the heal until a leader was agreed, or None if none was within the bound.
    pub healed_leader_after: Option<Duration>,
    pub violation: Option<Violation>,
    /// Bully and ring: what was wrong once healed (the agreed coordinator is not the highest-ranked member,
    /// or its token is not above every token handed out before), if anything.
    pub healed_problem: Option<String>,
}

impl ScheduleOutcome {
    pub fn failure(&self) -> Option<String> {
        if let Some(v) = &self.violation {
            return Some(format!("safety violation {v}"));
        }
        if self.healed_leader_after.is_none() {
            return Some("no leader within 10 x election_timeout[1] after every fault healed".into());
        }
        self.healed_problem.clone()
    }
}

/// Runs schedule `seed`: 3 or 5 members, `FAULTY_SPAN` of random partitions, crashes, restarts,
/// pauses, drops, duplicates and clock rates (within the drift bound), then everything healed and a
/// leader required within 10 x `election_timeout[1]`.
pub fn run_schedule(seed: u64) -> ScheduleOutcome {
    run_schedule_traced(seed, |_| {})
}

/// `run_schedule`, telling `trace` each fault as it is applied (for replaying a failure).
pub fn run_schedule_traced(seed: u64, trace: impl FnMut(String)) -> ScheduleOutcome {
    run_schedule_for(Algorithm::Raft, seed, trace)
}

/// The same schedules for another algorithm. For bully and ring, members also get random priorities (some
/// tied, so the id breaks ties), and once healed the agreed coordinator must be the highest-ranked
/// member (all are up again then) and hold a token above every token handed out before it.
pub fn run_schedule_for(algorithm: Algorithm, seed: u64, mut trace: impl FnMut(String)) -> ScheduleOutcome {
    let mut rng = Pcg64Mcg::seed_from_u64(mix(seed, 0x5c4e_d01e));
    let members = if rng.random_bool(0.5) { 3 } else { 5 };
    let mut cfg = SimConfig::numbered(members, seed);
    cfg.timing.pre_vote = rng.random_bool(0.75);
    cfg.timing.check_quorum = rng.random_bool(0.75);
    cfg.algorithm = algorithm;
    if algorithm != Algorithm::Raft {
        for id in &cfg.members {
            cfg.priorities.insert(id.clone(), rng.random_range(0..3));
        }
    }
    let lo = rng.random_range(100_000..2_000_000u64);
    cfg.latency = (Duration::from_nanos(lo), Duration::from_nanos(lo + rng.random_range(0..10_000_000u64)));
    let drift = cfg.timing.max_clock_drift;
    let et_max = cfg.timing.election_timeout.1;
    let (pre_vote, check_quorum) = (cfg.timing.pre_vote, cfg.timing.check_quorum);
    let ids = cfg.members.clone();
    let highest = ids.iter().max_by_key(|id| (cfg.priorities.get(*id).copied().unwrap_or(0), (*id).clone())).cloned();
    let mut sim = Simulation::new(cfg).expect("schedule configs are valid");

    let mut faults_applied = 0;
    let pick = |rng: &mut Pcg64Mcg| ids[rng.random_range(0..ids.len())].clone();
    while sim.now() < FAULTY_SPAN {
        let wait = Duration::from_millis(rng.random_range(50..2_000));
        sim.run_for(wait);
        faults_applied += 1;
        let id = pick(&mut rng);
        let up = sim.is_up(&id).expect("member");
        let action = rng.random_range(0..12);
        trace(format!("{:.6}s fault {action} on {id} (up: {up}); leader {:?}", sim.now().as_secs_f64(), sim.leader()));
        match action {
            0 => {
                let mut groups = vec![Vec::new(), Vec::new()];
                for m in &ids {
                    groups[rng.random_range(0..2)].push(m.clone());
                }
                sim.partition(&groups).expect("valid groups");
            }
            1 => sim.heal(),
            2 if up => sim.crash(&id).expect("up"),
            3 if !up => sim.restart(&id).expect("down"),
            4 if up => {
                let span = Duration::from_millis(rng.random_range(10..1_000));
                sim.pause(&id, span).expect("up");
            }
            5 => sim.set_drop_rate(rng.random_range(0.0..0.4)).expect("rate"),
            6 => sim.set_duplicate_rate(rng.random_range(0.0..0.3)).expect("rate"),
            7 => sim.set_clock_rate(&id, rng.random_range(1.0..1.0 + drift)).expect("rate"),
            8 => sim.isolate(&id).expect("member"),
            10 => {
                // One link cut, the others kept: partitions need not be transitive.
                let other = pick(&mut rng);
                if other != id {
                    sim.faults_mut(&id).expect("member").partition([other]);
                }
            }
            9 if up => {
                // A process restart: back at once, inside any lease it had granted.
                sim.crash(&id).expect("up");
                sim.restart(&id).expect("down");
            }
            _ => {
                // Faults may come back to back: a leader may fall just as another is elected.
                let leader = sim.leader().cloned();
                if let Some(l) = leader.filter(|_| rng.random_bool(0.5)) {
                    sim.crash(&l).expect("leaders are up");
                }
            }
        }
    }

    sim.heal();
    sim.set_drop_rate(0.0).expect("rate");
    sim.set_duplicate_rate(0.0).expect("rate");
    for id in &ids {
        if sim.is_up(id).expect("member") {
            sim.resume(id).expect("member");
        } else {
            sim.restart(id).expect("down");
        }
    }
    let healed_at = sim.now();
    let healed_leader_after = sim.run_until_leader(et_max * 10).map(|_| sim.now() - healed_at);
    // A little more time, so that a leadership just won must also earn and keep its lease safely.
    sim.run_for(et_max * 2);
    let mut healed_problem = None;
    if algorithm != Algorithm::Raft && healed_leader_after.is_some() {
        let leader = sim.leader().cloned();
        let top_token =
            sim.events().iter().filter(|e| e.kind == EventKind::Elected).filter_map(|e| e.fencing_token).max();
        let token = leader.as_ref().and_then(|l| sim.status(l).ok()).and_then(|s| s.fencing_token);
        if leader != highest {
            healed_problem =
                Some(format!("healed: coordinator {leader:?}, but the highest-ranked member is {highest:?}"));
        } else if token.is_none() || token != top_token {
            healed_problem = Some(format!(
                "healed: the coordinator's token {token:?} is not the highest handed out ({top_token:?})"
            ));
        }
    }
    ScheduleOutcome {
        seed,
        algorithm,
        members,
        pre_vote,
        check_quorum,
        faults_applied,
        elections: sim.stats().elections_started,
        healed_leader_after,
        violation: sim.violation().cloned(),
        healed_problem,
    }
}
