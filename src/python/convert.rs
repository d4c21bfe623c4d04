//! Python <-> engine conversions, and the mapping of engine errors onto the exceptions of `quorate.errors`
//! (docs/reference/errors.md).
//!
//! The bindings convert Python values only: an int or a float into an f64, a pair into a tuple, a
//! mapping into a map. Every rule about a value (finite, positive, ranges, heartbeat below the
//! election timeout, member counts, priorities, addresses, secrets) is the engine's or the
//! runtime's (`Timing::new`, `config::seconds`, `Config::new`, `NodeConfig::new`), so every entry
//! point gives the same message for the same bad value. A value of the wrong type is a
//! `ConfigError` naming the argument and the value's `repr`, never a `TypeError` from argument
//! extraction, a panic or a silent default.

use std::collections::BTreeMap;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};

use crate::engine::config::{numbered_members, seconds, validate_members};
use crate::engine::{Algorithm, Config, ConfigError, NodeId, Timing};

/// The exceptions are defined in Python (`quorate/errors.py`) so that ConfigError can derive from
/// both QuorateError and ValueError; Rust raises them by import.
mod exceptions {
    pyo3::import_exception!(quorate.errors, ConfigError);
    pyo3::import_exception!(quorate.errors, NotLeaderError);
    pyo3::import_exception!(quorate.errors, SafetyViolation);
    pyo3::import_exception!(quorate.errors, QuorateError);
}
pub use exceptions::{ConfigError as PyConfigError, NotLeaderError, QuorateError, SafetyViolation};
// The engine's messages and outputs as dicts live beside, in `message_dicts`.
pub use super::message_dicts::{message_from_py, message_to_py, outputs_to_py};

pub fn config_error(e: ConfigError) -> PyErr {
    PyConfigError::new_err(e.0)
}

pub fn config_err(message: impl Into<String>) -> PyErr {
    PyConfigError::new_err(message.into())
}

// ----- argument conversion ----------------------------------------------------------------------

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
/// large for a float reads as an infinity, so that the rule that follows names it. None when
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

/// A real number (an int or a float; not a bool or a str), its rules left to the engine.
pub fn real_arg(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    real_value(obj)
        .ok_or_else(|| config_err(format!("{name}: expected a number (an int or a float), got {}", py_repr(obj))))
}

/// A finite real number: rates, ratios, factors, whose range rules belong to the simulator and
/// the fault model (which name the argument too).
pub fn number_arg(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    match real_arg(name, obj)? {
        v if !v.is_finite() => Err(config_err(format!("{name}: must be a finite number, got {}", py_repr(obj)))),
        v => Ok(v),
    }
}

/// A number of seconds: an int or a float (anything else -- `"50ms"`, None, a bool -- is a
/// ConfigError naming `name` and the value), under the engine's rule for seconds
/// (`config::seconds`: finite, not negative, at most `MAX_SECONDS`).
pub fn seconds_arg(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let v = real_value(obj).ok_or_else(|| {
        config_err(format!("{name}: expected a number of seconds (an int or a float), got {}", py_repr(obj)))
    })?;
    seconds(name, v).map_err(config_error)
}

/// A `timeout=` of the Python layer: None (wait without limit) or a number of seconds under the
/// engine's rule; returned as a float. An int too large for a float is named as the caller wrote
/// it.
pub fn seconds_or_none_arg(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if obj.is_none() {
        return Ok(None);
    }
    let v = real_value(obj)
        .ok_or_else(|| config_err(format!("{name}: expected None or a number of seconds, got {}", py_repr(obj))))?;
    if v.is_infinite() && obj.is_instance_of::<PyInt>() {
        return Err(config_err(format!("{name}: must be a finite number of seconds (or None), got {}", py_repr(obj))));
    }
    seconds(name, v).map(|d| Some(d.as_secs_f64())).map_err(config_error)
}

/// A `(min, max)` pair of seconds (`election_timeout`, `latency`): a 2-item sequence (tuple, list,
/// numpy array) of ints or floats. Anything else (`"150ms"`, a 3-tuple, None, `("0.15", 0.3)`) is
/// a ConfigError naming `name` and the value. The values' rules are the engine's.
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
    Ok((real_value(lo).ok_or_else(shape)?, real_value(hi).ok_or_else(shape)?))
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

/// A priority: an int that fits 64 bits, not a bool.
fn int_value(obj: &Bound<'_, PyAny>) -> Option<i64> {
    if is_bool(obj) || !obj.is_instance_of::<PyInt>() {
        return None;
    }
    obj.extract::<i64>().ok()
}

// Adapters for `#[pyo3(from_py_with = ...)]`: the function runs for every value the caller passes,
// None included, while the signature's default still applies when the argument is left out. So
// `election_timeout=None` is refused instead of silently meaning the default.

/// `election_timeout` (see `timeout_pair_arg`).
pub fn election_timeout_arg(obj: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    timeout_pair_arg("election_timeout", obj)
}

/// `heartbeat_interval`: a real number; `Timing::new` holds its rules.
pub fn heartbeat_interval_arg(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    real_value(obj).ok_or_else(|| {
        config_err(format!(
            "heartbeat_interval: expected a number of seconds (an int or a float), got {}",
            py_repr(obj)
        ))
    })
}

/// `max_clock_drift`: a real number; `Timing::new` checks the range [0, 0.5).
pub fn max_clock_drift_arg(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    real_arg("max_clock_drift", obj)
}

/// A seed that must be given as an int (Core, Simulation: `seed: int = 0`); None is refused.
pub fn required_seed_arg(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    seed_arg(Some(obj))?.ok_or_else(|| config_err("seed: expected an int in [0, 2**64), got None"))
}

/// A seed that may be None (Node: `seed: int | None = None`).
pub fn optional_seed_arg(obj: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    seed_arg(Some(obj))
}

/// `priority`: None or an int (not a bool).
pub fn priority_arg(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if obj.is_none() {
        return Ok(None);
    }
    int_value(obj).map(Some).ok_or_else(|| config_err(format!("priority: must be an int, got {}", py_repr(obj))))
}

/// `priorities`: None or a mapping of node id (str) to int (not a bool).
pub fn priorities_arg(obj: &Bound<'_, PyAny>) -> PyResult<Option<BTreeMap<String, i64>>> {
    if obj.is_none() {
        return Ok(None);
    }
    let mapping = obj
        .cast::<PyMapping>()
        .map_err(|_| config_err(format!("priorities: expected a mapping of node id to int, got {}", py_repr(obj))))?;
    let mut out = BTreeMap::new();
    for item in mapping.items()?.iter() {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let id: String =
            key.extract().map_err(|_| config_err(format!("priorities: node ids are str, got {}", py_repr(&key))))?;
        let p = int_value(&value).ok_or_else(|| {
            config_err(format!("priorities: the priority of {} must be an int, got {}", py_repr(&key), py_repr(&value)))
        })?;
        out.insert(id, p);
    }
    Ok(Some(out))
}

/// The default `election_timeout` of the signatures, from `Timing::default()`.
pub fn default_election_timeout() -> (f64, f64) {
    Timing::default().election_timeout_seconds()
}

/// The default `heartbeat_interval` of the signatures, from `Timing::default()`.
pub fn default_heartbeat_interval() -> f64 {
    Timing::default().heartbeat_interval.as_secs_f64()
}

/// The default `max_clock_drift` of the signatures, from `Timing::default()`.
pub fn default_max_clock_drift() -> f64 {
    Timing::default().max_clock_drift
}

/// The timing options shared by Core, Simulation and Node: the algorithm's name first (as
/// before), then `Timing::new`, the one check of timing values.
pub fn timing(
    algorithm: &str,
    election_timeout: (f64, f64),
    heartbeat_interval: f64,
    pre_vote: bool,
    check_quorum: bool,
    max_clock_drift: f64,
) -> PyResult<(Algorithm, Timing)> {
    let algorithm = Algorithm::parse(algorithm).map_err(config_error)?;
    let timing = Timing::new(election_timeout, heartbeat_interval, pre_vote, check_quorum, max_clock_drift)
        .map_err(config_error)?;
    Ok((algorithm, timing))
}

/// The engine configuration of one node: `Config::new`, the algorithm and the priority rule
/// (`Config::with_ranks`); every rule broken is a ConfigError naming the argument.
pub fn engine_config(
    node_id: String,
    members: impl IntoIterator<Item = String>,
    algorithm: Algorithm,
    timing: Timing,
    seed: u64,
    priority: Option<i64>,
    priorities: Option<BTreeMap<String, i64>>,
) -> PyResult<Config> {
    Config::new(node_id, members, timing, seed)
        .and_then(|c| c.with_algorithm(algorithm).with_ranks(priority, priorities.unwrap_or_default()))
        .map_err(config_error)
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

/// The engine's rule for a number of seconds, on a value already converted.
pub fn secs(what: &str, value: f64) -> PyResult<Duration> {
    seconds(what, value).map_err(config_error)
}

/// `members` as API.md allows it: a count (named n1..nN by the engine's `numbered_members`, which
/// holds the count rule) or a sequence of ids, in the order given; the list's rule
/// (`validate_members`: 1 to 1024 members, valid ids, none twice) is applied by whoever builds the
/// group (`Config::new`, `Simulation::new`, `member_ids`). A bool is a ConfigError (an int to
/// Python, never a count); a str or a sequence of non-str a TypeError.
pub fn members_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Vec<NodeId>> {
    if is_bool(obj) {
        return Err(config_err(format!("members: expected a count or a sequence of node ids, got {}", py_repr(obj))));
    }
    let ids = if let Ok(count) = obj.extract::<i64>() {
        numbered_members(count).map_err(config_error)?
    } else if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("members: expected a count or a sequence of node ids, not a string"));
    } else {
        obj.extract::<Vec<String>>()
            .map_err(|_| PyTypeError::new_err("members: expected a count or a sequence of node-id strings"))?
    };
    Ok(ids)
}

/// The node ids `members` names (a count or a sequence), in order, under the members rule:
/// `LocalCluster` asks this before it opens a port.
#[pyfunction]
pub fn member_ids(members: &Bound<'_, PyAny>) -> PyResult<Vec<NodeId>> {
    let ids = members_from_py(members)?;
    validate_members(ids.clone()).map_err(config_error)?;
    Ok(ids)
}

/// `Node`'s members: a mapping of node id (str) to "host:port" (str).
pub fn addresses_arg(obj: &Bound<'_, PyAny>) -> PyResult<BTreeMap<String, String>> {
    let refused = || config_err(format!("members: expected a mapping of node id to 'host:port', got {}", py_repr(obj)));
    let mapping = obj.cast::<PyMapping>().map_err(|_| refused())?;
    let mut out = BTreeMap::new();
    for item in mapping.items()?.iter() {
        let (id, address): (String, String) = item.extract().map_err(|_| refused())?;
        out.insert(id, address);
    }
    Ok(out)
}
