//! The deterministic simulator from Python: `quorate._core._Simulation`, the base of the Python
//! class `quorate.Simulation` (python/quorate/sim.py, which adds the `quorate.Cluster` interface
//! and the presentation: the progress bar, `repr` and the notebook table), and `failover_trials`.
//! "The leader" is the sim crate's one rule (`quorate_sim::leader`).

use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::convert::{
    config_err, config_error, default_election_timeout, default_heartbeat_interval, default_max_clock_drift,
    election_timeout_arg, heartbeat_interval_arg, max_clock_drift_arg, members_from_py, number_arg, priorities_arg,
    required_seed_arg, seconds_arg, secs, timeout_pair_arg, timing, NotLeaderError, SafetyViolation,
};
use super::event::PyEvent;
use super::in_flight::PyInFlight;
use crate::sim::{self, SimConfig, Simulation};

fn latency_arg(obj: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    timeout_pair_arg("latency", obj)
}

fn drop_rate_arg(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    number_arg("drop_rate", obj)
}

fn duplicate_rate_arg(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    number_arg("duplicate_rate", obj)
}

/// A span of virtual time (see `seconds_arg`).
fn span_arg(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<std::time::Duration> {
    seconds_arg(name, obj)
}

/// Simulated items handled between two looks at the wall clock (a look costs ~25 ns).
const ITEMS_PER_CLOCK_LOOK: u32 = 256;

/// The same election engine in virtual time: deterministic for a given seed and sequence of calls.
///
/// `members` is a count (nodes n1..nN, default 5) or a sequence of ids. Times are seconds of
/// virtual time (`now`, `Event.at`); nothing waits on the wall clock. `latency` is the (min, max)
/// one-way message delay, `drop_rate` and `duplicate_rate` probabilities in [0, 1]; `algorithm` is
/// "raft", "bully" or "ring"; `priorities` maps member ids to their bully/ring priority (others:
/// 0); the other options are those of `quorate.Node`. Under bully and ring the safety check allows
/// two coordinators at once (a partition), but never a shared or lowered fencing token. Raises
/// ConfigError (a ValueError) for a bad argument, naming it. This is the base of
/// `quorate.Simulation`, which adds the `quorate.Cluster` interface and the presentation.
#[pyclass(subclass, name = "_Simulation", module = "quorate._core")]
pub struct PySimulation {
    sim: Simulation,
}

impl PySimulation {
    /// The leader by the one rule (`quorate_sim::leader::recognised_leader`), now.
    fn agreed_leader(sim: &Simulation) -> Option<String> {
        sim.recognised_leader().cloned()
    }
}

#[pymethods]
impl PySimulation {
    #[new]
    // The timing defaults are `Timing::default()`'s; the text_signature spells them out for Python
    // (tests/test_validate_once.py checks it against `_core.DEFAULT_TIMING`).
    #[pyo3(signature = (members = None, *, algorithm = "raft", seed = 0, election_timeout = default_election_timeout(),
        heartbeat_interval = default_heartbeat_interval(), latency = (0.0005, 0.002), drop_rate = 0.0,
        duplicate_rate = 0.0, pre_vote = true, check_quorum = true, max_clock_drift = default_max_clock_drift(),
        priorities = None),
        text_signature = "(members=None, *, algorithm='raft', seed=0, election_timeout=(0.15, 0.3), heartbeat_interval=0.05, latency=(0.0005, 0.002), drop_rate=0.0, duplicate_rate=0.0, pre_vote=True, check_quorum=True, max_clock_drift=0.05, priorities=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        members: Option<&Bound<'_, PyAny>>,
        algorithm: &str,
        #[pyo3(from_py_with = required_seed_arg)] seed: u64,
        #[pyo3(from_py_with = election_timeout_arg)] election_timeout: (f64, f64),
        #[pyo3(from_py_with = heartbeat_interval_arg)] heartbeat_interval: f64,
        #[pyo3(from_py_with = latency_arg)] latency: (f64, f64),
        #[pyo3(from_py_with = drop_rate_arg)] drop_rate: f64,
        #[pyo3(from_py_with = duplicate_rate_arg)] duplicate_rate: f64,
        pre_vote: bool,
        check_quorum: bool,
        #[pyo3(from_py_with = max_clock_drift_arg)] max_clock_drift: f64,
        #[pyo3(from_py_with = priorities_arg)] priorities: Option<std::collections::BTreeMap<String, i64>>,
    ) -> PyResult<Self> {
        let members = match members {
            Some(m) => members_from_py(m)?,
            None => members_from_py(&5i64.into_pyobject(py)?.into_any())?,
        };
        let (algorithm, timing) =
            timing(algorithm, election_timeout, heartbeat_interval, pre_vote, check_quorum, max_clock_drift)?;
        let cfg = SimConfig {
            timing,
            latency: (secs("latency", latency.0)?, secs("latency", latency.1)?),
            drop_rate,
            duplicate_rate,
            algorithm,
            priorities: priorities.unwrap_or_default(),
            ..SimConfig::new(members, seed)
        };
        Ok(PySimulation { sim: Simulation::new(cfg).map_err(config_error)? })
    }

    /// Virtual seconds since the simulation began.
    #[getter]
    fn now(&self) -> f64 {
        self.sim.now().as_secs_f64()
    }

    /// The node ids, in order (a list of str).
    #[getter]
    fn members(&self) -> Vec<String> {
        self.sim.members().to_vec()
    }

    /// The virtual instant `seconds` from now, in nanoseconds (for `_run_slice`). With
    /// `none_is_no_limit`, None is the far end of virtual time (about 292 years). ConfigError naming
    /// `name` for a negative, non-finite or non-numeric value (None included, unless allowed).
    #[pyo3(signature = (name, seconds, none_is_no_limit = false))]
    fn _deadline(&self, name: &str, seconds: &Bound<'_, PyAny>, none_is_no_limit: bool) -> PyResult<u64> {
        let now = u64::try_from(self.sim.now().as_nanos()).unwrap_or(u64::MAX);
        if none_is_no_limit && seconds.is_none() {
            return Ok((u64::MAX / 2).max(now));
        }
        let span = u64::try_from(span_arg(name, seconds)?.as_nanos()).unwrap_or(u64::MAX);
        Ok(now.saturating_add(span))
    }

    /// Runs towards the virtual instant `until` (nanoseconds, from `_deadline`) for at most
    /// `budget` seconds of wall time, with the GIL released; with `until_leader`, stops as soon
    /// as `leader()` names one. Returns True when done (`until` reached, or the leader found),
    /// False when the budget ran out first: the caller checks for Ctrl-C and shows progress
    /// between slices. Slicing does not change the result: items are handled in the same order.
    fn _run_slice(&mut self, py: Python<'_>, until: u64, until_leader: bool, budget: f64) -> PyResult<bool> {
        if until_leader && Self::agreed_leader(&self.sim).is_some() {
            return Ok(true);
        }
        let slice_end = Instant::now() + secs("budget", budget)?;
        let sim = &mut self.sim;
        let stopped_early = py.detach(|| {
            let mut items = 0u32;
            sim.run_until(until, |s| {
                if until_leader && Self::agreed_leader(s).is_some() {
                    return true;
                }
                items = items.wrapping_add(1);
                items.is_multiple_of(ITEMS_PER_CLOCK_LOOK) && Instant::now() >= slice_end
            })
        });
        Ok(!stopped_early || (until_leader && Self::agreed_leader(&self.sim).is_some()))
    }

    /// The member that holds its lease and that a majority of all members (itself included)
    /// recognise as leader, counting only members that are up; None if there is none. The rule of
    /// `quorate.Cluster.leader()`, the same for a `LocalCluster`.
    fn leader(&self) -> Option<String> {
        Self::agreed_leader(&self.sim)
    }

    /// Crashes node `id` now: it loses its volatile state and its messages in flight are lost;
    /// its term and vote are kept for `restart`. ConfigError for an unknown id.
    fn kill(&mut self, id: &str) -> PyResult<()> {
        self.sim.crash(id).map_err(config_error)
    }

    /// Restarts a crashed node from its kept term and vote. ConfigError for an unknown id.
    fn restart(&mut self, id: &str) -> PyResult<()> {
        self.sim.restart(id).map_err(config_error)
    }

    /// Makes node `id`'s election timeout fire now: it starts an election (raft: a pre-vote
    /// first, when `pre_vote` is on; bully: ELECTION to every higher-ranked member; ring: ELECTION
    /// to its successor), unless the algorithm's own rules hold it back: a leader does not
    /// campaign, nor does a raft follower that has promised a live leader not to (it acknowledged
    /// a heartbeat less than a minimum election timeout ago: the leader's lease rests on that
    /// promise). Returns None. ConfigError for an unknown id or a node that is down or paused.
    fn campaign(&mut self, id: &str) -> PyResult<()> {
        self.sim.campaign(id).map_err(config_error)
    }

    /// The leader `id` steps down now and hands off, as `Node.resign` does (raft: `TimeoutNow`
    /// to the peer that acknowledged its newest heartbeat). Returns True if `id` was the leader,
    /// False (doing nothing) otherwise. ConfigError for an unknown id or a node that is down or
    /// paused.
    fn resign(&mut self, id: &str) -> PyResult<bool> {
        self.sim.resign(id).map_err(config_error)
    }

    /// The leader `id` hands leadership to `to` now, giving up its lease first (raft: `TimeoutNow`,
    /// so `to` campaigns at once and wins; bully and ring: it steps aside and the best-ranked live
    /// member takes over). Returns None without waiting: run the simulation to see it happen.
    /// NotLeaderError if `id` does not lead (or its lease has lapsed); ConfigError for an unknown
    /// id, `to` equal to `id`, or a leader that is down or paused.
    #[pyo3(text_signature = "($self, id, to)")]
    fn transfer_leadership(&mut self, id: &str, to: &str) -> PyResult<()> {
        if self.sim.transfer_leadership(id, to).map_err(config_error)? {
            Ok(())
        } else {
            Err(NotLeaderError::new_err(format!("{id:?} is not the leader")))
        }
    }

    /// Every copy of a message the network holds now, sent and not yet arrived, as a list of
    /// `InFlight` in the order they will arrive (times in virtual seconds). A read-only view: it
    /// changes nothing, and the same seed and calls give the same list. Empty when nothing is on
    /// the way; a message a paused node has received but not yet handled is not listed.
    fn in_flight(&self) -> Vec<PyInFlight> {
        self.sim.in_flight().into_iter().map(PyInFlight::from_sim).collect()
    }

    /// Splits the nodes into groups that cannot reach one another, e.g.
    /// `partition(["n1", "n2"], ["n3", "n4", "n5"])`; unnamed nodes form one more group. Returns
    /// None. ConfigError for an unknown id, an id in two groups, or a str given as a group.
    #[pyo3(signature = (*groups))]
    fn partition(&mut self, groups: &Bound<'_, PyTuple>) -> PyResult<()> {
        let groups: Vec<Bound<'_, PyAny>> = groups.iter().collect();
        let parsed = super::convert::partition_groups(&groups)?;
        self.sim.partition(&parsed).map_err(config_error)
    }

    /// Cuts node `id` off from every other node (both directions) until `heal()`. ConfigError for
    /// an unknown id.
    fn isolate(&mut self, id: &str) -> PyResult<()> {
        self.sim.isolate(id).map_err(config_error)
    }

    /// Clears partitions and per-node link faults; clock rates and network rates stay.
    fn heal(&mut self) {
        self.sim.heal();
    }

    /// Freezes node `id` for `seconds` of virtual time, or until `resume(id)` if None (no timers,
    /// no message handling; messages queue and are handled when it resumes), as SIGSTOP would.
    /// ConfigError for an unknown id, a node that is down, or a bad `seconds`.
    #[pyo3(signature = (id, seconds = None))]
    fn pause(&mut self, id: &str, seconds: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let span = match seconds {
            Some(s) => span_arg("seconds", s)?,
            // Until resume(): a wake-up past any run (the far end of virtual time is u64::MAX / 2).
            None => Duration::from_nanos(u64::MAX / 4),
        };
        self.sim.pause(id, span).map_err(config_error)
    }

    /// Ends a pause of node `id` early. ConfigError for an unknown id.
    fn resume(&mut self, id: &str) -> PyResult<()> {
        self.sim.resume(id).map_err(config_error)
    }

    /// Makes node `id`'s clock run `factor` times as fast as virtual time (1.0 is exact; within
    /// `1 +- max_clock_drift` the lease stays safe). ConfigError for an unknown id or a factor
    /// that is not a positive finite number.
    fn set_clock_rate(&mut self, id: &str, factor: &Bound<'_, PyAny>) -> PyResult<()> {
        let factor = number_arg("factor", factor)?;
        self.sim.set_clock_rate(id, factor).map_err(config_error)
    }

    /// The probability in [0, 1] that the network drops each message from now on. ConfigError
    /// outside [0, 1].
    fn set_drop_rate(&mut self, rate: &Bound<'_, PyAny>) -> PyResult<()> {
        let rate = number_arg("rate", rate)?;
        self.sim.set_drop_rate(rate).map_err(config_error)
    }

    /// The probability in [0, 1] that the network delivers each message twice from now on.
    /// ConfigError outside [0, 1].
    fn set_duplicate_rate(&mut self, rate: &Bound<'_, PyAny>) -> PyResult<()> {
        let rate = number_arg("rate", rate)?;
        self.sim.set_duplicate_rate(rate).map_err(config_error)
    }

    /// Node `id` now, as a dict (`quorate.Simulation.status` makes it a `quorate.Status`):
    /// `node_id`, `role` ("stopped" while crashed), `term`, `voted_for`, `leader`, `is_leader`,
    /// `fencing_token`, `lease_remaining` (virtual seconds or None), `up`, `paused`, `clock_rate`.
    /// ConfigError for an unknown id.
    fn _status<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyDict>> {
        let s = self.sim.status(id).map_err(config_error)?;
        let d = PyDict::new(py);
        d.set_item("node_id", s.node_id)?;
        d.set_item("role", s.role.map_or("stopped", |r| r.name()))?;
        d.set_item("term", s.term)?;
        d.set_item("voted_for", s.voted_for)?;
        d.set_item("leader", s.leader)?;
        d.set_item("is_leader", s.is_leader)?;
        d.set_item("fencing_token", s.fencing_token)?;
        d.set_item("lease_remaining", s.lease_remaining.map(|r| r.as_secs_f64()))?;
        d.set_item("up", s.up)?;
        d.set_item("paused", s.paused)?;
        d.set_item("clock_rate", s.clock_rate)?;
        Ok(d)
    }

    /// Every event so far, in order, as a list of `Event` (`at` in virtual seconds). The same seed
    /// and the same calls give the identical list.
    #[getter]
    fn events(&self) -> Vec<PyEvent> {
        self.sim.events().iter().map(PyEvent::from_sim).collect()
    }

    /// Counters so far, as a dict of ints: `messages_sent`, `messages_delivered`,
    /// `messages_dropped`, `messages_duplicated`, `elections_started`, `leaders_elected`,
    /// `crashes`, `restarts`.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.sim.stats();
        let d = PyDict::new(py);
        d.set_item("messages_sent", s.messages_sent)?;
        d.set_item("messages_delivered", s.messages_delivered)?;
        d.set_item("messages_dropped", s.messages_dropped)?;
        d.set_item("messages_duplicated", s.messages_duplicated)?;
        d.set_item("elections_started", s.elections_started)?;
        d.set_item("leaders_elected", s.leaders_elected)?;
        d.set_item("crashes", s.crashes)?;
        d.set_item("restarts", s.restarts)?;
        Ok(d)
    }

    /// Returns None if every guarantee held so far (at most one leader per term, no two nodes
    /// leading at one instant, terms never going down, ...); raises SafetyViolation (an
    /// AssertionError) naming the first violation otherwise.
    fn check(&self) -> PyResult<()> {
        self.sim.check().map_err(|v| SafetyViolation::new_err(v.to_string()))
    }
}

/// Crash the leader at a uniformly random point of its heartbeat interval, `trials` times, in
/// simulations configured like `template` (trial i seeded from the template's seed and i); each
/// value is seconds from the crash until every live node knows a new leader (inf if none came).
/// `quorate.sim.failover_trials` builds the template from its keyword options.
#[pyfunction]
pub fn failover_trials(py: Python<'_>, trials: i64, template: PyRef<'_, PySimulation>) -> PyResult<Vec<f64>> {
    let trials = usize::try_from(trials).map_err(|_| config_err(format!("trials: must be >= 0, got {trials}")))?;
    let cfg = template.sim.config().clone();
    drop(template);
    py.detach(|| sim::failover::failover_trials(trials, &cfg)).map_err(config_error)
}
