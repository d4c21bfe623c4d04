//! Python <-> engine conversions, and the mapping of engine errors onto the exceptions of API.md.

use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::engine::config::seconds;
use crate::engine::{Algorithm, ConfigError, Message, NodeId, Output, Timing};

/// The exceptions are defined in Python (`quorate/errors.py`) so that ConfigError can derive from
/// both QuorateError and ValueError; Rust raises them by import.
mod exceptions {
    pyo3::import_exception!(quorate.errors, ConfigError);
    pyo3::import_exception!(quorate.errors, NotLeaderError);
    pyo3::import_exception!(quorate.errors, SafetyViolation);
    pyo3::import_exception!(quorate.errors, QuorateError);
}
pub use exceptions::{ConfigError as PyConfigError, NotLeaderError, QuorateError, SafetyViolation};

pub fn config_error(e: ConfigError) -> PyErr {
    PyConfigError::new_err(e.0)
}

pub fn config_err(message: impl Into<String>) -> PyErr {
    PyConfigError::new_err(message.into())
}

/// The timing options shared by Core, Simulation and Node, validated as API.md lists.
pub fn timing(
    algorithm: &str,
    election_timeout: (f64, f64),
    heartbeat_interval: f64,
    pre_vote: bool,
    check_quorum: bool,
    max_clock_drift: f64,
) -> PyResult<Timing> {
    Algorithm::parse(algorithm).and_then(Algorithm::require_implemented).map_err(config_error)?;
    let (lo, hi) = election_timeout;
    if !(lo > 0.0 && hi > 0.0) {
        return Err(config_err(format!("election_timeout: both bounds must be positive, got ({lo}, {hi})")));
    }
    if !(heartbeat_interval > 0.0) {
        return Err(config_err(format!("heartbeat_interval: must be positive, got {heartbeat_interval}")));
    }
    let t = Timing {
        election_timeout: (
            seconds("election_timeout", lo).map_err(config_error)?,
            seconds("election_timeout", hi).map_err(config_error)?,
        ),
        heartbeat_interval: seconds("heartbeat_interval", heartbeat_interval).map_err(config_error)?,
        pre_vote,
        check_quorum,
        max_clock_drift,
    };
    t.validate().map_err(config_error)?;
    Ok(t)
}

pub fn secs(what: &str, value: f64) -> PyResult<Duration> {
    seconds(what, value).map_err(config_error)
}

fn field<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str, kind: &str) -> PyResult<T> {
    let value = d
        .get_item(key)?
        .ok_or_else(|| config_err(format!("message: a {kind:?} message needs the field {key:?}")))?;
    value
        .extract::<T>()
        .map_err(|_| config_err(format!("message: field {key:?} of a {kind:?} message has the wrong type")))
}

fn term_field(d: &Bound<'_, PyDict>, kind: &str) -> PyResult<u64> {
    let term: i64 = field(d, "term", kind)?;
    u64::try_from(term).map_err(|_| config_err(format!("message: term must be >= 0, got {term}")))
}

pub fn message_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Message> {
    let d = obj
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("message: expected a dict such as {'type': 'heartbeat', 'term': 1, 'seq': 1}"))?;
    let kind: String = d
        .get_item("type")?
        .ok_or_else(|| config_err("message: missing the field \"type\""))?
        .extract()
        .map_err(|_| config_err("message: \"type\" must be a string"))?;
    let term = term_field(d, &kind);
    Ok(match kind.as_str() {
        "vote" => Message::Vote {
            term: term?,
            pre_vote: field(d, "pre_vote", &kind)?,
            transfer: field(d, "transfer", &kind)?,
        },
        "vote_response" => Message::VoteResponse {
            term: term?,
            granted: field(d, "granted", &kind)?,
            pre_vote: field(d, "pre_vote", &kind)?,
        },
        "heartbeat" => Message::Heartbeat { term: term?, seq: field(d, "seq", &kind)? },
        "heartbeat_response" => Message::HeartbeatResponse { term: term?, seq: field(d, "seq", &kind)? },
        "timeout_now" => Message::TimeoutNow { term: term? },
        other => {
            return Err(config_err(format!(
                "message: unknown type {other:?}; expected vote, vote_response, heartbeat, heartbeat_response or timeout_now"
            )))
        }
    })
}

pub fn message_to_py<'py>(py: Python<'py>, m: &Message) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("type", m.type_name())?;
    d.set_item("term", m.term())?;
    match *m {
        Message::Vote { pre_vote, transfer, .. } => {
            d.set_item("pre_vote", pre_vote)?;
            d.set_item("transfer", transfer)?;
        }
        Message::VoteResponse { granted, pre_vote, .. } => {
            d.set_item("granted", granted)?;
            d.set_item("pre_vote", pre_vote)?;
        }
        Message::Heartbeat { seq, .. } | Message::HeartbeatResponse { seq, .. } => d.set_item("seq", seq)?,
        Message::TimeoutNow { .. } => {}
    }
    Ok(d)
}

pub fn outputs_to_py<'py>(py: Python<'py>, outputs: Vec<Output>) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for o in outputs {
        let d = PyDict::new(py);
        match o {
            Output::Persist(h) => {
                d.set_item("kind", "persist")?;
                d.set_item("term", h.term)?;
                d.set_item("voted_for", h.voted_for)?;
            }
            Output::Send { to, message } => {
                d.set_item("kind", "send")?;
                d.set_item("to", to)?;
                d.set_item("message", message_to_py(py, &message)?)?;
            }
            Output::Event(e) => {
                d.set_item("kind", "event")?;
                d.set_item("event", e.kind.name())?;
                d.set_item("term", e.term)?;
                d.set_item("leader", e.leader)?;
            }
        }
        list.append(d)?;
    }
    Ok(list)
}

/// `members` as API.md allows it: a count (named n1..nN) or a sequence of ids.
pub fn members_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Vec<NodeId>> {
    if let Ok(count) = obj.extract::<i64>() {
        if !(1..=1024).contains(&count) {
            return Err(config_err(format!("members: a count must be between 1 and 1024, got {count}")));
        }
        return Ok((1..=count).map(|i| format!("n{i}")).collect());
    }
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err("members: expected a count or a sequence of node ids, not a string"));
    }
    obj.extract::<Vec<String>>()
        .map_err(|_| PyTypeError::new_err("members: expected a count or a sequence of node-id strings"))
}
