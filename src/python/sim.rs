//! `quorate.Simulation` and `failover_trials`: the deterministic simulator from Python.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::convert::{
    config_err, config_error, election_timeout_arg, heartbeat_interval_arg, max_clock_drift_arg, members_from_py,
    number_arg, required_seed_arg, seconds_arg, secs, timeout_pair_arg, timing, SafetyViolation,
};
use super::event::PyEvent;
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
    secs(name, seconds_arg(name, obj)?)
}

#[pyclass(name = "Simulation", module = "quorate")]
pub struct PySimulation {
    sim: Simulation,
}

#[pymethods]
impl PySimulation {
    #[new]
    #[pyo3(signature = (members = None, *, algorithm = "raft", seed = 0, election_timeout = (0.15, 0.30),
        heartbeat_interval = 0.05, latency = (0.0005, 0.002), drop_rate = 0.0, duplicate_rate = 0.0,
        pre_vote = true, check_quorum = true, max_clock_drift = 0.05),
        text_signature = "(members=None, *, algorithm='raft', seed=0, election_timeout=(0.15, 0.3), heartbeat_interval=0.05, latency=(0.0005, 0.002), drop_rate=0.0, duplicate_rate=0.0, pre_vote=True, check_quorum=True, max_clock_drift=0.05)")]
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
    ) -> PyResult<Self> {
        let members = match members {
            Some(m) => members_from_py(m)?,
            None => members_from_py(&5i64.into_pyobject(py)?.into_any())?,
        };
        let timing = timing(algorithm, election_timeout, heartbeat_interval, pre_vote, check_quorum, max_clock_drift)?;
        let cfg = SimConfig {
            timing,
            latency: (secs("latency", latency.0)?, secs("latency", latency.1)?),
            drop_rate,
            duplicate_rate,
            ..SimConfig::new(members, seed)
        };
        Ok(PySimulation { sim: Simulation::new(cfg).map_err(config_error)? })
    }

    /// Virtual seconds since the simulation began.
    #[getter]
    fn now(&self) -> f64 {
        self.sim.now().as_secs_f64()
    }

    #[getter]
    fn members(&self) -> Vec<String> {
        self.sim.members().to_vec()
    }

    fn run_for(&mut self, py: Python<'_>, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let span = span_arg("seconds", seconds)?;
        py.detach(|| self.sim.run_for(span));
        Ok(())
    }

    fn run_until_leader(&mut self, py: Python<'_>, timeout: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let span = span_arg("timeout", timeout)?;
        Ok(py.detach(|| self.sim.run_until_leader(span)))
    }

    /// The leader every live node agrees on, or None.
    fn leader(&self) -> Option<String> {
        self.sim.leader().cloned()
    }

    fn crash(&mut self, id: &str) -> PyResult<()> {
        self.sim.crash(id).map_err(config_error)
    }

    fn restart(&mut self, id: &str) -> PyResult<()> {
        self.sim.restart(id).map_err(config_error)
    }

    #[pyo3(signature = (*groups))]
    fn partition(&mut self, groups: &Bound<'_, PyTuple>) -> PyResult<()> {
        let mut parsed = Vec::with_capacity(groups.len());
        for g in groups.iter() {
            if g.is_instance_of::<pyo3::types::PyString>() {
                return Err(config_err("partition: each group is a list of node ids, e.g. partition(['n1'], ['n2', 'n3'])"));
            }
            parsed.push(
                g.extract::<Vec<String>>()
                    .map_err(|_| config_err("partition: each group is a list of node ids"))?,
            );
        }
        self.sim.partition(&parsed).map_err(config_error)
    }

    fn isolate(&mut self, id: &str) -> PyResult<()> {
        self.sim.isolate(id).map_err(config_error)
    }

    /// Clears partitions and per-node link faults; clock rates and network rates stay.
    fn heal(&mut self) {
        self.sim.heal();
    }

    fn pause(&mut self, id: &str, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let span = span_arg("seconds", seconds)?;
        self.sim.pause(id, span).map_err(config_error)
    }

    fn resume(&mut self, id: &str) -> PyResult<()> {
        self.sim.resume(id).map_err(config_error)
    }

    fn set_clock_rate(&mut self, id: &str, factor: &Bound<'_, PyAny>) -> PyResult<()> {
        let factor = number_arg("factor", factor)?;
        self.sim.set_clock_rate(id, factor).map_err(config_error)
    }

    fn set_drop_rate(&mut self, rate: &Bound<'_, PyAny>) -> PyResult<()> {
        let rate = number_arg("rate", rate)?;
        self.sim.set_drop_rate(rate).map_err(config_error)
    }

    fn set_duplicate_rate(&mut self, rate: &Bound<'_, PyAny>) -> PyResult<()> {
        let rate = number_arg("rate", rate)?;
        self.sim.set_duplicate_rate(rate).map_err(config_error)
    }

    fn status<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyDict>> {
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

    #[getter]
    fn events(&self) -> Vec<PyEvent> {
        self.sim.events().iter().map(PyEvent::from_sim).collect()
    }

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

    /// Raises SafetyViolation naming the first violation seen so far.
    fn check(&self) -> PyResult<()> {
        self.sim.check().map_err(|v| SafetyViolation::new_err(v.to_string()))
    }

    fn __repr__(&self) -> String {
        format!(
            "Simulation(members={:?}, now={:.3}, leader={:?})",
            self.sim.members(),
            self.sim.now().as_secs_f64(),
            self.sim.leader()
        )
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
