//! The `quorate._core` extension module: thin PyO3 wrappers over the engine and simulator.
//! Conversions and error mapping live in `convert`; each wrapped type has its own file.

mod convert;
mod core;
mod event;
mod in_flight;
mod logbridge;
mod message_dicts;
mod node;
mod node_status;
mod sim;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<core::PyCore>()?;
    m.add_class::<sim::PySimulation>()?;
    m.add_class::<event::PyEvent>()?;
    m.add_class::<in_flight::PyInFlight>()?;
    m.add_class::<node::PyNodeCore>()?;
    m.add_function(wrap_pyfunction!(sim::failover_trials, m)?)?;
    m.add_function(wrap_pyfunction!(logbridge::_take_log_records, m)?)?;
    m.add_function(wrap_pyfunction!(node::_forked, m)?)?;
    m.add_function(wrap_pyfunction!(logbridge::_log_records_dropped, m)?)?;
    m.add_function(wrap_pyfunction!(_write_unraisable, m)?)?;
    m.add_function(wrap_pyfunction!(_group_partition, m)?)?;
    m.add_function(wrap_pyfunction!(_recognised_leader, m)?)?;
    m.add_function(wrap_pyfunction!(convert::member_ids, m)?)?;
    m.add_function(wrap_pyfunction!(seconds_or_none, m)?)?;
    m.add("DEFAULT_TIMING", default_timing(m.py())?)?;
    m.add("MIN_SECRET_BYTES", crate::runtime::MIN_SECRET_BYTES)?;
    m.add("MAX_MEMBERS", crate::engine::config::MAX_MEMBERS)?;
    m.add("MAX_SECONDS", crate::engine::config::MAX_SECONDS)?;
    m.add("REJECTION_REASONS", crate::runtime::wire::REJECTION_REASONS.to_vec())?;
    m.add("VOTE_ANSWERS", crate::engine::VoteAnswer::ALL.map(|a| a.name()).to_vec())?;
    logbridge::install();
    Ok(())
}

/// Reports `exc` through `sys.unraisablehook` the way CPython reports its own unraisable errors
/// (a real `UnraisableHookArgs`, which the default hook and pytest's both accept); `obj` is what
/// raised it, e.g. the callback.
#[pyfunction]
fn _write_unraisable(py: Python<'_>, exc: Bound<'_, pyo3::exceptions::PyBaseException>, obj: Bound<'_, PyAny>) {
    PyErr::from_value(exc.into_any()).write_unraisable(py, Some(&obj));
}

/// The cuts of a group partition at each member (see `faults::group_partition`): one validation
/// for LocalCluster and the simulator. A group given as a string is refused (a common slip).
#[pyfunction]
fn _group_partition(
    members: Vec<String>,
    groups: Vec<Bound<'_, PyAny>>,
) -> PyResult<std::collections::BTreeMap<String, Vec<String>>> {
    let parsed = convert::partition_groups(&groups)?;
    let cuts = crate::faults::group_partition(&members, &parsed).map_err(convert::config_error)?;
    Ok(cuts.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect())
}

/// `quorate_sim::leader::recognised_leader` for a group the Python layer reads itself (LocalCluster): `members`
/// holds one `(node_id, up, holds_lease, leader)` per member.
#[pyfunction]
fn _recognised_leader(members: Vec<(String, bool, bool, Option<String>)>) -> Option<String> {
    let views: Vec<quorate_sim::leader::MemberView<'_>> = members
        .iter()
        .map(|(id, up, holds_lease, leader)| quorate_sim::leader::MemberView {
            id,
            up: *up,
            holds_lease: *holds_lease,
            leader: leader.as_deref(),
        })
        .collect();
    quorate_sim::leader::recognised_leader(&views).map(str::to_string)
}

/// A `timeout=` argument of the Python layer, by the engine's rule for seconds: None (no limit)
/// or a finite, non-negative number of seconds (at most `MAX_SECONDS`), returned as a float;
/// anything else is a ConfigError naming `name` and the value.
#[pyfunction]
fn seconds_or_none(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    convert::seconds_or_none_arg(name, value)
}

/// The one place the timing defaults live (`Timing::default()`), for the Python layer's signatures.
fn default_timing(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let t = crate::engine::Timing::default();
    let d = pyo3::types::PyDict::new(py);
    d.set_item("election_timeout", (t.election_timeout.0.as_secs_f64(), t.election_timeout.1.as_secs_f64()))?;
    d.set_item("heartbeat_interval", t.heartbeat_interval.as_secs_f64())?;
    d.set_item("pre_vote", t.pre_vote)?;
    d.set_item("check_quorum", t.check_quorum)?;
    d.set_item("max_clock_drift", t.max_clock_drift)?;
    Ok(d)
}
