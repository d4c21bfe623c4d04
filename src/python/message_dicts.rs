//! The engine's messages and outputs as the dicts `Core` takes and returns (API.md's Core
//! section): one dict shape per message variant, both ways.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::convert::config_err;
use crate::engine::{Message, Output};

fn field<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str, kind: &str) -> PyResult<T> {
    let value =
        d.get_item(key)?.ok_or_else(|| config_err(format!("message: a {kind:?} message needs the field {key:?}")))?;
    value
        .extract::<T>()
        .map_err(|_| config_err(format!("message: field {key:?} of a {kind:?} message has the wrong type")))
}

fn term_field(d: &Bound<'_, PyDict>, kind: &str) -> PyResult<u64> {
    let term: i64 = field(d, "term", kind)?;
    u64::try_from(term).map_err(|_| config_err(format!("message: term must be >= 0, got {term}")))
}

pub fn message_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Message> {
    let d = obj.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err("message: expected a dict such as {'type': 'heartbeat', 'term': 1, 'seq': 1}")
    })?;
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
        // Bully: "term" carries the epoch.
        "election" => Message::Election { epoch: term? },
        "ok" => Message::Ok { epoch: term? },
        "coordinator" => Message::Coordinator { epoch: term? },
        "alive" => Message::Alive { epoch: term?, seq: field(d, "seq", &kind)? },
        "alive_ack" => Message::AliveAck { epoch: term?, seq: field(d, "seq", &kind)? },
        // Ring: "term" carries the epoch too; "hop" numbers a hop along the ring.
        "ring_election" => Message::RingElection {
            epoch: term?,
            candidate: field(d, "candidate", &kind)?,
            hop: field(d, "hop", &kind)?,
        },
        "ring_coordinator" => {
            Message::RingCoordinator { epoch: term?, leader: field(d, "leader", &kind)?, hop: field(d, "hop", &kind)? }
        }
        "ring_ack" => Message::RingAck { hop: field(d, "hop", &kind)? },
        "ring_alive" => Message::RingAlive { epoch: term?, seq: field(d, "seq", &kind)? },
        "ring_alive_ack" => Message::RingAliveAck { epoch: term?, seq: field(d, "seq", &kind)? },
        other => {
            return Err(config_err(format!(
                "message: unknown type {other:?}; expected vote, vote_response, heartbeat, heartbeat_response, \
                 timeout_now (raft), election, ok, coordinator, alive, alive_ack (bully) or ring_election, \
                 ring_coordinator, ring_ack, ring_alive, ring_alive_ack (ring)"
            )))
        }
    })
}

pub fn message_to_py<'py>(py: Python<'py>, m: &Message) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("type", m.type_name())?;
    d.set_item("term", m.term())?;
    match m {
        Message::Vote { pre_vote, transfer, .. } => {
            d.set_item("pre_vote", pre_vote)?;
            d.set_item("transfer", transfer)?;
        }
        Message::VoteResponse { granted, pre_vote, .. } => {
            d.set_item("granted", granted)?;
            d.set_item("pre_vote", pre_vote)?;
        }
        Message::Heartbeat { seq, .. }
        | Message::HeartbeatResponse { seq, .. }
        | Message::Alive { seq, .. }
        | Message::AliveAck { seq, .. } => d.set_item("seq", seq)?,
        Message::TimeoutNow { .. } | Message::Election { .. } | Message::Ok { .. } | Message::Coordinator { .. } => {}
        Message::RingElection { candidate, hop, .. } => {
            d.set_item("candidate", candidate)?;
            d.set_item("hop", hop)?;
        }
        Message::RingCoordinator { leader, hop, .. } => {
            d.set_item("leader", leader)?;
            d.set_item("hop", hop)?;
        }
        Message::RingAck { hop } => d.set_item("hop", hop)?,
        Message::RingAlive { seq, .. } | Message::RingAliveAck { seq, .. } => d.set_item("seq", seq)?,
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
