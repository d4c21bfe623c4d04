//! `quorate._core._NodeCore`: the networked node as Python drives it. `quorate.Node` (Python)
//! wraps it with the dispatcher thread, callbacks, subscriptions and asyncio helpers, so that no
//! Python code ever runs on the engine's threads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::convert::{
    addresses_arg, config_err, config_error, election_timeout_arg, engine_config, heartbeat_interval_arg,
    max_clock_drift_arg, optional_seed_arg, priorities_arg, priority_arg, secs, timing, NotLeaderError, QuorateError,
};
use super::event::PyEvent;
use super::node_status::{event_to_py, faults_dict, monotonic_origin, role_name, status_dict};
use crate::engine::NodeId;
use crate::faults::Peers;
use crate::runtime::durable::DurableError;
use crate::runtime::{
    new_shared, FaultCommand, NodeConfig, NodeHandle, RunningNode, Shared, Snapshot, StartError, TransferRefused,
};

/// Bumped in every child that fork() makes (Python's `os.register_at_fork` calls `_forked`): a
/// node made in another generation refuses to be read, as its runtime threads did not survive.
/// Checked here rather than in Python because `is_leader` is the call a service makes most.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

#[pyfunction]
pub fn _forked() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Frozen, with the running node behind a lock held only briefly: the dispatcher thread blocks in
/// `next_event` while another thread may call `stop`, so no method may hold a borrow while waiting.
#[pyclass(name = "_NodeCore", module = "quorate._core", frozen)]
pub struct PyNodeCore {
    cfg: NodeConfig,
    state: Mutex<CoreState>,
    /// Published state, counters and events: one for every run of this node.
    shared: Arc<Shared>,
    origin: (Instant, f64),
    /// The fork generation and process this node was made in.
    generation: u64,
    pid: u32,
    /// Every member's id as a Python string, made once: `leader` hands out a reference.
    names: BTreeMap<NodeId, Py<PyString>>,
}

#[derive(Default)]
struct CoreState {
    running: Option<RunningNode>,
    address: String,
}

impl PyNodeCore {
    fn lock(&self) -> MutexGuard<'_, CoreState> {
        self.state.lock().expect("node state lock")
    }

    /// Runs `f` with the running node's command handle, GIL released. The lock is never held while
    /// the GIL is taken back (that order would deadlock against readers holding the GIL).
    fn with_node<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&NodeHandle) -> T + Send) -> PyResult<T> {
        if let Some(why) = self.shared.failure() {
            return Err(QuorateError::new_err(format!(
                "node {:?} failed (its engine task died: {why}); stop() and start() it again",
                self.cfg.id()
            )));
        }
        let handle = self
            .lock()
            .running
            .as_ref()
            .map(RunningNode::handle)
            .ok_or_else(|| QuorateError::new_err(format!("node {:?} is not running", self.cfg.id())))?;
        Ok(py.detach(|| f(&handle)))
    }

    fn fault(&self, py: Python<'_>, fault: FaultCommand) -> PyResult<()> {
        self.with_node(py, |node| node.fault(fault))?.map_err(config_error)
    }

    fn peers_arg(&self, peers: Option<Vec<String>>) -> PyResult<Peers> {
        let Some(peers) = peers else { return Ok(Peers::All) };
        let known: BTreeSet<NodeId> = self.cfg.engine().peers().cloned().collect();
        for p in &peers {
            if !known.contains(p) {
                return Err(config_err(format!("peers: {p:?} is not a peer of {:?}", self.cfg.id())));
            }
        }
        Ok(Peers::Only(peers.into_iter().collect()))
    }

    /// Reads the published snapshot under its lock without copying it.
    fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.shared.read())
    }

    /// QuorateError in a child forked after this node was made.
    fn same_process(&self) -> PyResult<()> {
        if self.generation == FORK_GENERATION.load(Ordering::Relaxed) {
            return Ok(());
        }
        Err(QuorateError::new_err(format!(
            "node {:?} was created in process {}, before a fork(); a forked child cannot use it (its runtime \
             threads did not survive the fork): create the Node after the fork",
            self.cfg.id(),
            self.pid
        )))
    }
}

/// How a failed start reads in Python: the OS's own refusals are OSError (a busy port, a data_dir
/// that cannot be written), the rest QuorateError; every message names the path or address.
fn start_error(e: StartError) -> PyErr {
    match e {
        StartError::Bind { .. } | StartError::Durable(DurableError::Io { .. }) => PyOSError::new_err(e.to_string()),
        StartError::Durable(_) => QuorateError::new_err(e.to_string()),
    }
}

#[pymethods]
impl PyNodeCore {
    #[new]
    /// Private: `quorate.Node` passes every argument, with the defaults of `DEFAULT_TIMING`.
    #[pyo3(signature = (node_id, members, *, bind, algorithm, election_timeout, heartbeat_interval, data_dir, secret,
        cluster, pre_vote, check_quorum, max_clock_drift, seed, priority = None, priorities = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        node_id: String,
        #[pyo3(from_py_with = addresses_arg)] members: BTreeMap<String, String>,
        bind: Option<String>,
        algorithm: &str,
        #[pyo3(from_py_with = election_timeout_arg)] election_timeout: (f64, f64),
        #[pyo3(from_py_with = heartbeat_interval_arg)] heartbeat_interval: f64,
        data_dir: Option<PathBuf>,
        secret: Option<&Bound<'_, PyAny>>,
        cluster: String,
        pre_vote: bool,
        check_quorum: bool,
        #[pyo3(from_py_with = max_clock_drift_arg)] max_clock_drift: f64,
        #[pyo3(from_py_with = optional_seed_arg)] seed: Option<u64>,
        #[pyo3(from_py_with = priority_arg)] priority: Option<i64>,
        #[pyo3(from_py_with = priorities_arg)] priorities: Option<BTreeMap<String, i64>>,
    ) -> PyResult<Self> {
        let (algorithm, timing) =
            timing(algorithm, election_timeout, heartbeat_interval, pre_vote, check_quorum, max_clock_drift)?;
        let seed = match seed {
            Some(s) => s,
            None => {
                let mut b = [0u8; 8];
                getrandom::fill(&mut b).map_err(|e| PyRuntimeError::new_err(format!("no OS randomness: {e}")))?;
                u64::from_le_bytes(b)
            }
        };
        let engine = engine_config(node_id, members.keys().cloned(), algorithm, timing, seed, priority, priorities)?;
        let secrets = secrets_arg(secret)?;
        let cfg = NodeConfig::new(engine, members, bind, data_dir, secrets, cluster).map_err(config_error)?;
        let names = cfg.engine().members.iter().map(|id| (id.clone(), PyString::new(py, id).unbind())).collect();
        Ok(PyNodeCore {
            shared: new_shared(&cfg),
            cfg,
            state: Mutex::new(CoreState::default()),
            origin: monotonic_origin(py)?,
            generation: FORK_GENERATION.load(Ordering::Relaxed),
            pid: std::process::id(),
            names,
        })
    }

    /// Loads the durable state and starts the node; OSError if the address is busy.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        if self.lock().running.is_some() {
            if self.shared.failure().is_none() {
                return Ok(());
            }
            self.crash(py); // its engine task died: clear what is left of that run first
        }
        let (cfg, shared) = (self.cfg.clone(), self.shared.clone());
        let mut node = py.detach(|| RunningNode::start(cfg, shared)).map_err(start_error)?;
        for warning in self.cfg.warnings() {
            log::warn!("{}: {warning}", self.cfg.id());
        }
        let mut state = self.lock();
        if state.running.is_some() {
            drop(state);
            py.detach(move || node.crash()); // another thread started it meanwhile
            return Ok(());
        }
        state.address = node.local_addr.to_string();
        state.running = Some(node);
        Ok(())
    }

    /// Returns whether every task ended within `timeout`.
    #[pyo3(signature = (graceful = true, timeout = 5.0))]
    fn stop(&self, py: Python<'_>, graceful: bool, timeout: f64) -> PyResult<bool> {
        let timeout = secs("timeout", timeout)?;
        let Some(mut node) = self.lock().running.take() else { return Ok(true) };
        Ok(py.detach(move || node.stop(graceful, timeout)))
    }

    fn crash(&self, py: Python<'_>) {
        let taken = self.lock().running.take();
        if let Some(mut node) = taken {
            py.detach(move || node.crash());
        }
    }

    /// Started, not stopped, and its engine task alive.
    #[getter]
    fn running(&self) -> bool {
        self.lock().running.is_some() && self.shared.failure().is_none()
    }

    #[getter]
    fn node_id(&self) -> String {
        self.cfg.id().clone()
    }

    #[getter]
    fn address(&self) -> String {
        let state = self.lock();
        if state.address.is_empty() {
            self.cfg.bind().to_string()
        } else {
            state.address.clone()
        }
    }

    #[getter]
    fn members(&self) -> BTreeMap<String, String> {
        self.cfg.addresses().clone()
    }

    /// This node's priority, as the priority rule settled it (`priority`, else its entry in
    /// `priorities`, else 0).
    #[getter]
    fn priority(&self) -> i64 {
        self.cfg.engine().priority
    }

    #[getter]
    fn role(&self) -> &'static str {
        role_name(self.read(|s| s.role))
    }

    #[getter]
    fn term(&self) -> u64 {
        self.read(|s| s.term)
    }

    /// The leader this node knows, or None. QuorateError in a forked child.
    #[getter]
    fn leader(&self, py: Python<'_>) -> PyResult<Option<Py<PyString>>> {
        self.same_process()?;
        let leader = self
            .read(|s| s.leader.as_ref().map(|l| self.names.get(l).map(|n| n.clone_ref(py)).ok_or_else(|| l.clone())));
        // A leader is always a member (the engine checks), but never panic on it.
        Ok(leader.map(|l| l.unwrap_or_else(|id| PyString::new(py, &id).unbind())))
    }

    /// QuorateError if this process is a child forked after the node was made.
    fn check_process(&self) -> PyResult<()> {
        self.same_process()
    }

    /// True in a child forked after the node was made (where it cannot be used).
    #[getter]
    fn forked(&self) -> bool {
        self.same_process().is_err()
    }

    /// Leader and its lease holds. QuorateError in a forked child.
    #[getter]
    fn is_leader(&self) -> PyResult<bool> {
        self.same_process()?;
        Ok(self.read(|s| s.is_leader(Instant::now())))
    }

    /// The term while `is_leader`, else None. QuorateError in a forked child.
    #[getter]
    fn fencing_token(&self) -> PyResult<Option<u64>> {
        self.same_process()?;
        Ok(self.read(|s| s.fencing_token(Instant::now())))
    }

    /// Whether the leadership of `term` still holds: leader in that term, lease holding.
    fn holds(&self, term: u64) -> bool {
        self.read(|s| s.fencing_token(Instant::now()) == Some(term))
    }

    /// Why the leadership of `term` ended, once its `demoted` is published; None before.
    fn ended_reason(&self, term: u64) -> Option<&'static str> {
        self.read(|s| s.ended.filter(|(t, _)| *t == term).map(|(_, r)| r.name()))
    }

    /// The change counter: bumped by every published transition.
    #[getter]
    fn version(&self) -> u64 {
        self.read(|s| s.version)
    }

    /// True once the node is not running and every event has been taken: a dispatcher may end.
    fn drained(&self) -> bool {
        self.shared.drained()
    }

    /// Everything `Node.status()` reports, as a dict.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        status_dict(py, &self.cfg, &self.shared)
    }

    /// The next event, waiting up to `timeout` seconds with the GIL released; None on timeout,
    /// or at once once the node is stopped and every event was taken.
    fn next_event(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<PyEvent>> {
        let timeout = secs("timeout", timeout)?;
        let shared = self.shared.clone();
        let Some(e) = py.detach(move || shared.next_event(timeout)) else { return Ok(None) };
        Ok(Some(event_to_py(self.origin, self.cfg.id(), e)))
    }

    /// Waits (GIL released) until the change counter differs from `seen`, or a lease that holds
    /// runs out, or `timeout` passes; returns the counter.
    fn wait_changed(&self, py: Python<'_>, seen: u64, timeout: f64) -> PyResult<u64> {
        let timeout = secs("timeout", timeout)?;
        let shared = self.shared.clone();
        Ok(py.detach(move || shared.wait_changed(seen, timeout)))
    }

    fn resign(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_node(py, |node| node.resign())
    }

    /// Hands leadership to `to` (the runtime checks the transfer-target rule and that `to` is
    /// connected): ConfigError naming `to`, or NotLeaderError.
    fn transfer_leadership(&self, py: Python<'_>, to: &str) -> PyResult<()> {
        match self.with_node(py, |node| node.transfer_leadership(to))? {
            Ok(()) => Ok(()),
            Err(TransferRefused::NotLeader) => {
                Err(NotLeaderError::new_err(format!("{:?} is not the leader", self.cfg.id())))
            }
            Err(TransferRefused::Target(e)) => Err(config_error(e)),
        }
    }

    fn fault_isolate(&self, py: Python<'_>) -> PyResult<()> {
        self.fault(py, FaultCommand::Isolate)
    }

    fn fault_partition(&self, py: Python<'_>, peers: Vec<String>) -> PyResult<()> {
        let Peers::Only(set) = self.peers_arg(Some(peers))? else { unreachable!() };
        self.fault(py, FaultCommand::Partition(set.into_iter().collect()))
    }

    #[pyo3(signature = (rate, peers = None))]
    fn fault_drop(&self, py: Python<'_>, rate: f64, peers: Option<Vec<String>>) -> PyResult<()> {
        let peers = self.peers_arg(peers)?;
        self.fault(py, FaultCommand::Drop { rate, peers })
    }

    #[pyo3(signature = (rate, peers = None))]
    fn fault_duplicate(&self, py: Python<'_>, rate: f64, peers: Option<Vec<String>>) -> PyResult<()> {
        let peers = self.peers_arg(peers)?;
        self.fault(py, FaultCommand::Duplicate { rate, peers })
    }

    #[pyo3(signature = (seconds, jitter = 0.0, peers = None))]
    fn fault_delay(&self, py: Python<'_>, seconds: f64, jitter: f64, peers: Option<Vec<String>>) -> PyResult<()> {
        let (delay, jitter) = (secs("seconds", seconds)?, secs("jitter", jitter)?);
        let peers = self.peers_arg(peers)?;
        self.fault(py, FaultCommand::Delay { delay, jitter, peers })
    }

    fn fault_pause(&self, py: Python<'_>) -> PyResult<()> {
        self.fault(py, FaultCommand::Pause)
    }

    fn fault_resume(&self, py: Python<'_>) -> PyResult<()> {
        self.fault(py, FaultCommand::Resume)
    }

    fn fault_clock_rate(&self, py: Python<'_>, factor: f64) -> PyResult<()> {
        self.fault(py, FaultCommand::ClockRate(factor))
    }

    /// Clears every fault but a crash (`node.faults.heal()`).
    fn fault_clear(&self, py: Python<'_>) -> PyResult<()> {
        self.fault(py, FaultCommand::Clear)
    }

    /// Sets the cuts of a group partition (LocalCluster.partition); the node's own faults stay.
    fn fault_group_partition(&self, py: Python<'_>, peers: Vec<String>) -> PyResult<()> {
        let Peers::Only(set) = self.peers_arg(Some(peers))? else { unreachable!() };
        self.fault(py, FaultCommand::GroupPartition(set.into_iter().collect()))
    }

    /// Undoes the group partition only (LocalCluster.heal).
    fn fault_heal_group(&self, py: Python<'_>) -> PyResult<()> {
        self.fault(py, FaultCommand::Heal)
    }

    /// Makes the engine's task panic (tests of how a node reports a dead engine).
    fn _inject_engine_panic(&self, py: Python<'_>) -> PyResult<()> {
        let _ = self.with_node(py, |node| node.fault(FaultCommand::InjectPanic))?;
        Ok(())
    }

    /// Why the engine's task died, if it did in this run.
    #[getter]
    fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    fn faults_active<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        faults_dict(py, &self.shared.read())
    }

    fn __repr__(&self) -> String {
        format!("_NodeCore({:?} at {}, {})", self.cfg.id(), self.address(), self.role())
    }
}

/// `secret`: None, one secret (bytes or str), or a non-empty list of them for a rotation (the
/// first signs, every one is accepted). The length rule is the runtime's.
fn secrets_arg(secret: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Vec<u8>>> {
    fn one(s: &Bound<'_, PyAny>) -> Option<PyResult<Vec<u8>>> {
        if s.is_instance_of::<PyString>() {
            Some(s.extract::<String>().map(String::into_bytes))
        } else if s.is_instance_of::<PyBytes>() {
            Some(s.extract::<Vec<u8>>())
        } else {
            None
        }
    }
    let Some(secret) = secret.filter(|s| !s.is_none()) else { return Ok(Vec::new()) };
    if let Some(single) = one(secret) {
        return Ok(vec![single?]);
    }
    let refused = || config_err("secret: must be bytes or str, or a list of them (a rotation: the first signs)");
    let list = secret.cast::<PyList>().map(|l| l.iter().collect::<Vec<_>>());
    let list = list.or_else(|_| secret.cast::<PyTuple>().map(|t| t.iter().collect())).map_err(|_| refused())?;
    if list.is_empty() {
        return Err(config_err("secret: an empty list; pass None for no secret"));
    }
    list.iter().map(|s| one(s).unwrap_or_else(|| Err(refused()))).collect()
}
