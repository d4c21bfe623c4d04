//! `quorate.InFlight`: one message on its way between two simulated nodes.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert::message_to_py;
use crate::engine::Message;
use crate::sim::InFlight;

/// One copy of a message in flight in a `Simulation` (`Simulation.in_flight()`): sent by
/// `sender`, not yet arrived at `receiver`. Times are virtual seconds. A duplicated message is two
/// copies; a message a paused node has received but not yet handled is no longer in flight; one
/// the network dropped when it was sent (drop rate, cut link) never was.
#[pyclass(name = "InFlight", module = "quorate", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct PyInFlight {
    /// The id of the node that sent it.
    #[pyo3(get)]
    pub sender: String,
    /// The id of the node it is addressed to.
    #[pyo3(get)]
    pub receiver: String,
    /// What it is, as transcripts name it. Raft: "pre_vote", "pre_vote_response", "vote",
    /// "vote_response", "heartbeat", "heartbeat_response", "timeout_now"; bully: "election",
    /// "ok", "coordinator", "alive", "alive_ack"; ring: "ring_election", "ring_coordinator",
    /// "ring_ack", "ring_alive", "ring_alive_ack".
    #[pyo3(get)]
    pub kind: String,
    /// The term it carries (bully and ring: the epoch); None for a "ring_ack", which has none.
    #[pyo3(get)]
    pub term: Option<u64>,
    /// Virtual seconds: when it was sent.
    #[pyo3(get)]
    pub sent_at: f64,
    /// Virtual seconds: when it arrives (the latency drawn for it, plus any delay fault).
    #[pyo3(get)]
    pub deliver_at: f64,
    /// True if, as things stand now, the network drops it on arrival: its receiver is down, or
    /// a partition or isolation cuts the link. A restart or heal before `deliver_at` saves it.
    #[pyo3(get)]
    pub doomed: bool,
    message: Message,
}

impl PyInFlight {
    pub fn from_sim(m: InFlight) -> PyInFlight {
        PyInFlight {
            sender: m.from,
            receiver: m.to,
            kind: m.message.kind_name().to_string(),
            term: (!matches!(m.message, Message::RingAck { .. })).then(|| m.message.term()),
            sent_at: m.sent_at.as_secs_f64(),
            deliver_at: m.deliver_at.as_secs_f64(),
            doomed: m.doomed,
            message: m.message,
        }
    }
}

#[pymethods]
impl PyInFlight {
    /// The message itself, as a dict in the form `Core.step` takes (`type`, `term`, and its own
    /// fields such as `granted`, `seq` or `hop`); a new dict on each access.
    #[getter]
    fn message<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        message_to_py(py, &self.message)
    }

    /// How far along its way it is at virtual time `now` (seconds): `(now - sent_at) /
    /// (deliver_at - sent_at)`, clamped to [0, 1] (1 for a message that takes no time). A float.
    #[pyo3(text_signature = "($self, now)")]
    fn progress(&self, now: f64) -> f64 {
        let span = self.deliver_at - self.sent_at;
        if span <= 0.0 || now.is_nan() {
            return if now >= self.deliver_at { 1.0 } else { 0.0 };
        }
        ((now - self.sent_at) / span).clamp(0.0, 1.0)
    }

    /// The message as a plain dict: `sender`, `receiver`, `kind`, `term`, `sent_at`,
    /// `deliver_at`, `doomed` and `message` (for JSON lines and dataframes).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("sender", &self.sender)?;
        d.set_item("receiver", &self.receiver)?;
        d.set_item("kind", &self.kind)?;
        d.set_item("term", self.term)?;
        d.set_item("sent_at", self.sent_at)?;
        d.set_item("deliver_at", self.deliver_at)?;
        d.set_item("doomed", self.doomed)?;
        d.set_item("message", self.message(py)?)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "InFlight(sender={:?}, receiver={:?}, kind={:?}, term={}, sent_at={:.6}, deliver_at={:.6}, doomed={})",
            self.sender,
            self.receiver,
            self.kind,
            self.term.map_or("None".to_string(), |t| t.to_string()),
            self.sent_at,
            self.deliver_at,
            if self.doomed { "True" } else { "False" }
        )
    }
}
