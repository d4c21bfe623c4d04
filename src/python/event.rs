//! `quorate.Event`: one leadership event, from a simulation or (later) a live node.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::sim::SimEvent;

/// One leadership event of one node: `kind` is "elected" (the node may act as leader: it holds its
/// lease), "demoted" (that ended; `reason` says why), "leader_changed", "term_changed" or
/// "election_started". `at` is `time.monotonic()` seconds for a live node, virtual seconds in a
/// simulation; `wall` is `time.time()` (virtual seconds in a simulation).
#[pyclass(name = "Event", module = "quorate", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct PyEvent {
    /// "elected", "demoted", "leader_changed", "term_changed" or "election_started".
    #[pyo3(get)]
    pub kind: String,
    /// The node the event happened on.
    #[pyo3(get)]
    pub node_id: String,
    /// That node's term after the event.
    #[pyo3(get)]
    pub term: u64,
    /// The leader that node follows (or is) after the event, if it knows one.
    #[pyo3(get)]
    pub leader: Option<String>,
    /// For "elected" and "demoted": the fencing token of that leadership (the term); else None.
    #[pyo3(get)]
    pub fencing_token: Option<u64>,
    /// Why a leadership ended, for `demoted` events: "lost_lease", "higher_term", "resigned",
    /// "stopped", "crashed" or "storage"; None for every other kind.
    #[pyo3(get)]
    pub reason: Option<String>,
    /// Seconds: virtual time in a simulation, `time.monotonic()` for a live node.
    #[pyo3(get)]
    pub at: f64,
    /// Seconds: virtual time in a simulation, `time.time()` for a live node.
    #[pyo3(get)]
    pub wall: f64,
}

impl PyEvent {
    pub fn from_sim(e: &SimEvent) -> PyEvent {
        let at = e.at.as_secs_f64();
        PyEvent {
            kind: e.kind.name().to_string(),
            node_id: e.node.clone(),
            term: e.term,
            leader: e.leader.clone(),
            fencing_token: e.fencing_token,
            reason: e.reason.map(|r| r.name().to_string()),
            at,
            wall: at,
        }
    }
}

#[pymethods]
impl PyEvent {
    /// The event as a plain dict (for JSON lines and dataframes).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("kind", &self.kind)?;
        d.set_item("node_id", &self.node_id)?;
        d.set_item("term", self.term)?;
        d.set_item("leader", &self.leader)?;
        d.set_item("fencing_token", self.fencing_token)?;
        d.set_item("reason", &self.reason)?;
        d.set_item("at", self.at)?;
        d.set_item("wall", self.wall)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Event(kind={:?}, node_id={:?}, term={}, leader={}, fencing_token={}, reason={}, at={:.6})",
            self.kind,
            self.node_id,
            self.term,
            self.leader.as_ref().map_or("None".to_string(), |l| format!("{l:?}")),
            self.fencing_token.map_or("None".to_string(), |t| t.to_string()),
            self.reason.as_ref().map_or("None".to_string(), |r| format!("{r:?}")),
            self.at
        )
    }
}
