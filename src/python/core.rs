//! `quorate.Core`: the sans-IO engine itself, driven by hand from Python.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::convert::{
    config_err, config_error, default_election_timeout, default_heartbeat_interval, default_max_clock_drift,
    election_timeout_arg, engine_config, heartbeat_interval_arg, max_clock_drift_arg, members_from_py, message_from_py,
    outputs_to_py, priorities_arg, priority_arg, required_seed_arg, seconds_arg, timing, uint_arg, NotLeaderError,
};
use crate::engine::{Engine, HardState, TransferError};

/// The sans-IO election engine itself, driven by hand: `tick(now)`, `step(now, sender, message)`,
/// `campaign(now)`, `resign(now)` and `transfer_leadership(now, to)` return the outputs to carry
/// out, in order (`persist` before any `send` that depends on it, then `event`s). Times are
/// seconds on the caller's clock; the first `tick` starts it. No clock, thread or socket inside.
/// `algorithm` is "raft", "bully" or "ring"; bully and ring rank members by `(priority, node_id)`, from `priority`
/// (this node's) and `priorities` (every member's; not named: 0).
#[pyclass(name = "Core", module = "quorate")]
pub struct PyCore {
    engine: Engine,
    /// The latest `now` passed in: time given to the engine must never go back.
    last_now: Option<Duration>,
}

/// `now`: seconds on the caller's clock (see `seconds_arg`).
fn now_arg(now: &Bound<'_, PyAny>) -> PyResult<Duration> {
    seconds_arg("now", now)
}

fn term_arg(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    uint_arg("term", obj)
}

impl PyCore {
    fn now(&mut self, now: &Bound<'_, PyAny>) -> PyResult<Duration> {
        let now = now_arg(now)?;
        if let Some(last) = self.last_now.filter(|last| now < *last) {
            return Err(config_err(format!(
                "now: time went backwards ({} after {})",
                now.as_secs_f64(),
                last.as_secs_f64()
            )));
        }
        self.last_now = Some(now);
        Ok(now)
    }
}

#[pymethods]
impl PyCore {
    #[new]
    // The defaults are `Timing::default()`'s; the text_signature spells them out for Python
    // (tests/test_validate_once.py checks it against `_core.DEFAULT_TIMING`).
    #[pyo3(signature = (node_id, members, *, algorithm = "raft", election_timeout = default_election_timeout(),
        heartbeat_interval = default_heartbeat_interval(), pre_vote = true, check_quorum = true,
        max_clock_drift = default_max_clock_drift(), seed = 0, term = 0, voted_for = None, priority = None,
        priorities = None),
        text_signature = "(node_id, members, *, algorithm='raft', election_timeout=(0.15, 0.3), heartbeat_interval=0.05, pre_vote=True, check_quorum=True, max_clock_drift=0.05, seed=0, term=0, voted_for=None, priority=None, priorities=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        node_id: String,
        members: &Bound<'_, PyAny>,
        algorithm: &str,
        #[pyo3(from_py_with = election_timeout_arg)] election_timeout: (f64, f64),
        #[pyo3(from_py_with = heartbeat_interval_arg)] heartbeat_interval: f64,
        pre_vote: bool,
        check_quorum: bool,
        #[pyo3(from_py_with = max_clock_drift_arg)] max_clock_drift: f64,
        #[pyo3(from_py_with = required_seed_arg)] seed: u64,
        #[pyo3(from_py_with = term_arg)] term: u64,
        voted_for: Option<String>,
        #[pyo3(from_py_with = priority_arg)] priority: Option<i64>,
        #[pyo3(from_py_with = priorities_arg)] priorities: Option<std::collections::BTreeMap<String, i64>>,
    ) -> PyResult<Self> {
        let members = members_from_py(members)?;
        let (algorithm, timing) =
            timing(algorithm, election_timeout, heartbeat_interval, pre_vote, check_quorum, max_clock_drift)?;
        let cfg = engine_config(node_id, members, algorithm, timing, seed, priority, priorities)?;
        if let Some(v) = voted_for.as_ref().filter(|v| !cfg.members.contains(v)) {
            return Err(config_err(format!("voted_for: {v:?} is not one of the members")));
        }
        Ok(PyCore { engine: Engine::new(cfg, HardState { term, voted_for }), last_now: None })
    }

    /// Fires due timers; the first call starts the clock.
    fn tick<'py>(&mut self, py: Python<'py>, now: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let now = self.now(now)?;
        outputs_to_py(py, self.engine.tick(now))
    }

    /// Handles one message dict from `sender` at `now` (seconds) and returns the outputs to
    /// carry out, in order. ConfigError if `sender` is not a peer or the message is malformed.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        now: &Bound<'py, PyAny>,
        sender: &str,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        if sender == self.engine.config().id || !self.engine.config().members.iter().any(|m| m == sender) {
            return Err(config_err(format!("sender: {sender:?} is not a peer of {:?}", &self.engine.config().id)));
        }
        let message = message_from_py(message)?;
        let now = self.now(now)?;
        outputs_to_py(py, self.engine.step(now, sender, message))
    }

    /// Starts an election at `now` as if the timeout had fired (nothing on a leader, or while this
    /// node owes silence to a leader's lease); returns the outputs.
    fn campaign<'py>(&mut self, py: Python<'py>, now: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let now = self.now(now)?;
        outputs_to_py(py, self.engine.campaign(now))
    }

    /// A leader steps down at `now` and hands off to the most caught-up peer; returns the outputs
    /// (none if this node does not lead).
    fn resign<'py>(&mut self, py: Python<'py>, now: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let now = self.now(now)?;
        outputs_to_py(py, self.engine.resign(now))
    }

    /// A leader hands leadership to `to` at `now` with `timeout_now`; returns the outputs.
    /// NotLeaderError if this node does not lead, ConfigError if `to` is not a peer.
    fn transfer_leadership<'py>(
        &mut self,
        py: Python<'py>,
        now: &Bound<'py, PyAny>,
        to: &str,
    ) -> PyResult<Bound<'py, PyList>> {
        self.engine.config().transfer_target(to).map_err(config_error)?;
        let now = self.now(now)?;
        match self.engine.transfer_leadership(now, to) {
            Ok(outputs) => outputs_to_py(py, outputs),
            Err(TransferError::NotLeader) => {
                Err(NotLeaderError::new_err(format!("{:?} is not the leader", &self.engine.config().id)))
            }
            Err(e @ TransferError::UnknownPeer(_)) => Err(config_err(format!("to: {e}"))),
        }
    }

    /// The next time (seconds) `tick` has work to do, or None before the first `tick`.
    fn next_deadline(&self) -> Option<f64> {
        self.engine.next_deadline().map(|d| d.as_secs_f64())
    }

    /// Whether this node leads and holds its lease at `now` (seconds).
    fn is_leader(&self, now: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.engine.is_leader(now_arg(now)?))
    }

    /// The fencing token (the term) while `is_leader(now)`, else None.
    fn fencing_token(&self, now: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        Ok(self.engine.fencing_token(now_arg(now)?))
    }

    /// This engine's node id.
    #[getter]
    fn node_id(&self) -> String {
        self.engine.config().id.clone()
    }

    /// A dict of `role`, `term`, `voted_for`, `leader` and `lease_expiry` (seconds, or None).
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.engine.state();
        let d = PyDict::new(py);
        d.set_item("role", s.role.name())?;
        d.set_item("term", s.term)?;
        d.set_item("voted_for", s.voted_for)?;
        d.set_item("leader", s.leader)?;
        d.set_item("lease_expiry", s.lease_expiry.map(|e| e.as_secs_f64()))?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let s = self.engine.state();
        format!("Core(node_id={:?}, role={:?}, term={})", &self.engine.config().id, s.role.name(), s.term)
    }
}
