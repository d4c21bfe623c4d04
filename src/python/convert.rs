//! Python <-> engine conversions, and the mapping of engine errors onto the exceptions of `quorate.errors`
//! (docs/reference/errors.md).
//!
//! Every user-facing argument that is a number of seconds, a rate or a seed goes through one of
//! the `*_arg` helpers below: a bad value is a `ConfigError` naming the argument and the value's
//! `repr`, never a `TypeError` from argument extraction, a panic or a silent default.

use std::collections::BTreeMap;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::engine::config::seconds;
use crate::engine::{Algorithm, Config, ConfigError, Message, NodeId, Output, Timing};

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

// ----- argument conversion ----------------------------------------------------------------------

/// The longest span, in seconds, that any time argument may name (about 31.7 years). No election
/// needs more, and longer spans would overflow the simulator's nanosecond clock and the engine's
/// deadline arithmetic.
pub const MAX_SECONDS: f64 = 1e9;

/// How error messages spell `MAX_SECONDS`.
const MAX_SECONDS_TEXT: &str = "1e9 seconds (about 31 years)";

/// Python's `repr` of a value, for an error message; long reprs are cut to 80 characters.
pub fn py_repr(obj: &Bound<'_, PyAny>) -> String {
    let text = match obj.repr() {
        Ok(r) => r.to_string(),
        Err(_) => format!("<{} object>", type_name(obj)),
    };
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// A float as Python's `repr` spells it in the cases messages meet: `nan`, `inf`, `0.15`, `1e16`.
pub fn py_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:?}")
    }
}

/// A Python bool, or numpy's: an int to Python, but never a number of seconds, a seed or a term.
fn is_bool(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyBool>() || type_name(obj) == "bool_"
}

/// str, bytes, bytearray: sequences to Python, but never a number or a pair of numbers.
fn is_text(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>()
}

/// The value of a real number as Python users write one: an `int` or a `float` (or a type that
/// converts like them: numpy scalars, `Fraction`), never a `bool`, `str` or `bytes`. An int too
/// large for a float reads as an infinity, so that the caller's range check names it. None when
/// `obj` is not a real number.
fn real_value(obj: &Bound<'_, PyAny>) -> Option<f64> {
    if obj.is_exact_instance_of::<PyFloat>() {
        return obj.extract::<f64>().ok(); // the common case, without the checks below
    }
    if is_bool(obj) || is_text(obj) {
        return None;
    }
    match obj.extract::<f64>() {
        Ok(v) => Some(v),
        Err(_) if obj.is_instance_of::<PyInt>() => {
            let negative = obj.lt(0i64).unwrap_or(false);
            Some(if negative { f64::NEG_INFINITY } else { f64::INFINITY })
        }
        Err(_) => None,
    }
}

/// A finite real number (an int or a float; not a bool or a str): rates, ratios, factors. Range
/// rules belong to the caller (`timing()`, the simulator), which name the argument too.
pub fn number_arg(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    match real_value(obj) {
        None => Err(config_err(format!("{name}: expected a number (an int or a float), got {}", py_repr(obj)))),
        Some(v) if !v.is_finite() => Err(config_err(format!("{name}: must be a finite number, got {}", py_repr(obj)))),
        Some(v) => Ok(v),
    }
}

/// The rule every number of seconds follows, for a value already known to be a real number.
fn seconds_rule(v: f64) -> Result<(), String> {
    if !v.is_finite() {
        Err("must be a finite number of seconds".into())
    } else if v < 0.0 {
        Err("must not be negative".into())
    } else if v > MAX_SECONDS {
        Err(format!("must be at most {MAX_SECONDS_TEXT}"))
    } else {
        Ok(())
    }
}

/// A number of seconds: an int or a float, finite, `>= 0` and at most `MAX_SECONDS`. Anything
/// else (`"50ms"`, None, a bool, NaN, inf, -1) is a ConfigError naming `name` and the value.
/// Zero passes: where it is refused (`heartbeat_interval`), `timing()` refuses it.
pub fn seconds_arg(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    let v = real_value(obj).ok_or_else(|| {
        config_err(format!("{name}: expected a number of seconds (an int or a float), got {}", py_repr(obj)))
    })?;
    seconds_rule(v).map_err(|rule| config_err(format!("{name}: {rule}, got {}", py_repr(obj))))?;
    Ok(v)
}

/// A `(min, max)` pair of seconds (`election_timeout`, `latency`): a 2-item sequence (tuple, list,
/// numpy array) of ints or floats, each finite, `>= 0` and at most `MAX_SECONDS`. Anything else
/// (`"150ms"`, a 3-tuple, None, `(nan, 0.3)`) is a ConfigError naming `name` and the value.
/// Positivity and `min <= max` are left to the caller (`timing()`, the simulator).
pub fn timeout_pair_arg(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    let shape = || config_err(format!("{name}: expected a (min, max) pair of seconds, got {}", py_repr(obj)));
    if is_text(obj) {
        return Err(shape());
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else {
        match obj.len() {
            Ok(2) => vec![obj.get_item(0).map_err(|_| shape())?, obj.get_item(1).map_err(|_| shape())?],
            _ => return Err(shape()),
        }
    };
    let [lo, hi] = items.as_slice() else { return Err(shape()) };
    let (lo, hi) = (real_value(lo).ok_or_else(shape)?, real_value(hi).ok_or_else(shape)?);
    for v in [lo, hi] {
        seconds_rule(v).map_err(|rule| config_err(format!("{name}: each bound {rule}, got {}", py_repr(obj))))?;
    }
    Ok((lo, hi))
}

/// An int in `[0, 2**64)`, e.g. a term. A bool, float or str, a negative or too large int is a
/// ConfigError naming `name` and the value.
pub fn uint_arg(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    let refused = || config_err(format!("{name}: expected an int in [0, 2**64), got {}", py_repr(obj)));
    if is_bool(obj) || is_text(obj) {
        return Err(refused());
    }
    obj.extract::<u64>().map_err(|_| refused())
}

/// A seed: an int in `[0, 2**64)`; None (absent, or Python's None) is `Ok(None)`. A negative or
/// too large int, a bool, float or str is a ConfigError "seed: ..." naming the value.
pub fn seed_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => uint_arg("seed", o).map(Some),
    }
}

// Adapters for `#[pyo3(from_py_with = ...)]`: the function runs for every value the caller passes,
// None included, while the signature's default still applies when the argument is left out. So
// `election_timeout=None` is refused instead of silently meaning the default.

/// `election_timeout` (see `timeout_pair_arg`).
pub fn election_timeout_arg(obj: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    timeout_pair_arg("election_timeout", obj)
}

/// `heartbeat_interval` (see `seconds_arg`).
pub fn heartbeat_interval_arg(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    seconds_arg("heartbeat_interval", obj)
}

/// `max_clock_drift` (see `number_arg`; `timing()` checks the range [0, 0.5)).
pub fn max_clock_drift_arg(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    number_arg("max_clock_drift", obj)
}

/// A seed that must be given as an int (Core, Simulation: `seed: int = 0`); None is refused.
pub fn required_seed_arg(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    seed_arg(Some(obj))?.ok_or_else(|| config_err("seed: expected an int in [0, 2**64), got None"))
}

/// A seed that may be None (Node: `seed: int | None = None`).
pub fn optional_seed_arg(obj: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    seed_arg(Some(obj))
}

/// The timing options shared by Core, Simulation and Node, validated as the `Node` docstring
/// (docs/reference/node.md) lists. Every message names the argument and the value (NaN and
/// infinities included).
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
    let pair = format!("({}, {})", py_float(lo), py_float(hi));
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(config_err(format!("election_timeout: both bounds must be finite numbers of seconds, got {pair}")));
    }
    if !(lo > 0.0 && hi > 0.0) {
        return Err(config_err(format!("election_timeout: both bounds must be positive, got {pair}")));
    }
    if lo.max(hi) > MAX_SECONDS {
        return Err(config_err(format!("election_timeout: each bound must be at most {MAX_SECONDS_TEXT}, got {pair}")));
    }
    let hb = py_float(heartbeat_interval);
    if !heartbeat_interval.is_finite() {
        return Err(config_err(format!("heartbeat_interval: must be a finite number of seconds, got {hb}")));
    }
    if heartbeat_interval <= 0.0 {
        return Err(config_err(format!("heartbeat_interval: must be positive, got {hb}")));
    }
    if heartbeat_interval > MAX_SECONDS {
        return Err(config_err(format!("heartbeat_interval: must be at most {MAX_SECONDS_TEXT}, got {hb}")));
    }
    if !(0.0..0.5).contains(&max_clock_drift) {
        return Err(config_err(format!("max_clock_drift: must be in [0, 0.5), got {}", py_float(max_clock_drift))));
    }
    let t = Timing {
        election_timeout: (secs("election_timeout", lo)?, secs("election_timeout", hi)?),
        heartbeat_interval: secs("heartbeat_interval", heartbeat_interval)?,
        pre_vote,
        check_quorum,
        max_clock_drift,
    };
    t.validate().map_err(config_error)?;
    Ok(t)
}

/// The engine configuration of one node: its id, the group, the algorithm and its timing; every
/// rule broken is a ConfigError naming the argument.
pub fn engine_config(
    node_id: String,
    members: impl IntoIterator<Item = String>,
    algorithm: &str,
    timing: Timing,
    seed: u64,
    priority: Option<i64>,
    priorities: Option<BTreeMap<String, i64>>,
) -> PyResult<Config> {
    let algorithm = Algorithm::parse(algorithm).map_err(config_error)?;
    let cfg =
        Config::new(node_id, members, timing, seed).and_then(|c| c.with_algorithm(algorithm)).map_err(config_error)?;
    let priorities = priorities.unwrap_or_default();
    let own = priorities.get(&cfg.id).copied();
    if let (Some(own), Some(p)) = (own, priority) {
        if own != p {
            return Err(config_err(format!(
                "priorities: this node's entry ({own}) differs from priority ({p}); give one, or make them equal"
            )));
        }
    }
    let priority = priority.or(own).unwrap_or(0);
    cfg.with_priorities(priorities).map(|c| c.with_priority(priority)).map_err(config_error)
}

/// Partition groups as Python gives them: each a list of node ids (a bare string is refused: it
/// would otherwise read as a group of one-letter ids).
pub fn partition_groups(groups: &[Bound<'_, PyAny>]) -> PyResult<Vec<Vec<NodeId>>> {
    groups
        .iter()
        .map(|g| {
            if g.is_instance_of::<pyo3::types::PyString>() {
                return Err(config_err(
                    "partition: each group is a list of node ids, e.g. partition(['n1'], ['n2', 'n3'])",
                ));
            }
            g.extract::<Vec<String>>()
                .map_err(|_| config_err(format!("partition: each group is a list of node ids, got {}", py_repr(g))))
        })
        .collect()
}

pub fn secs(what: &str, value: f64) -> PyResult<Duration> {
    seconds(what, value).map_err(config_error)
}

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

/// `members` as the `Simulation` and `LocalCluster` docstrings (docs/reference/) allow it: a count (named n1..nN) or a
/// sequence of ids.
pub fn members_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Vec<NodeId>> {
    if obj.is_instance_of::<PyBool>() {
        let shown = py_repr(obj);
        return Err(PyTypeError::new_err(format!("members: expected a count or a sequence of node ids, got {shown}")));
    }
    if let Ok(count) = obj.extract::<i64>() {
        if !(1..=1024).contains(&count) {
            return Err(config_err(format!("members: a count must be between 1 and 1024, got {count}")));
        }
        return Ok((1..=count).map(|i| format!("n{i}")).collect());
    }
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("members: expected a count or a sequence of node ids, not a string"));
    }
    obj.extract::<Vec<String>>()
        .map_err(|_| PyTypeError::new_err("members: expected a count or a sequence of node-id strings"))
}
