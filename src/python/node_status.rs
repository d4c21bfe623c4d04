//! How a networked node reads in Python: the `status()` dict, its histograms and fault list, and
//! times on Python's `time.monotonic()` clock. Presentation only: every value comes from the
//! runtime's published snapshot and counters.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::event::PyEvent;
use crate::engine::Role;
use crate::runtime::monitor::Histogram;
use crate::runtime::{EventRecord, NodeConfig, Shared, Snapshot};

/// `Instant` and Python's `time.monotonic()` read together once, so that event times can be
/// given on the clock Python (and every process of the host) uses.
pub fn monotonic_origin(py: Python<'_>) -> PyResult<(Instant, f64)> {
    static ORIGIN: OnceLock<(Instant, f64)> = OnceLock::new();
    if let Some(o) = ORIGIN.get() {
        return Ok(*o);
    }
    let mono: f64 = py.import("time")?.call_method0("monotonic")?.extract()?;
    Ok(*ORIGIN.get_or_init(|| (Instant::now(), mono)))
}

pub fn monotonic(origin: (Instant, f64), t: Instant) -> f64 {
    match t.checked_duration_since(origin.0) {
        Some(d) => origin.1 + d.as_secs_f64(),
        None => origin.1 - origin.0.duration_since(t).as_secs_f64(),
    }
}

/// An event as Python's `Event`, its times on `time.monotonic()` and `time.time()`.
pub fn event_to_py(origin: (Instant, f64), node_id: &str, e: EventRecord) -> PyEvent {
    PyEvent {
        kind: e.kind.name().to_string(),
        node_id: node_id.to_string(),
        term: e.term,
        leader: e.leader,
        fencing_token: e.fencing_token,
        reason: e.reason.map(|r| r.name().to_string()),
        at: monotonic(origin, e.at),
        wall: e.wall.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
    }
}

pub fn role_name(role: Option<Role>) -> &'static str {
    role.map_or("stopped", Role::name)
}

pub fn faults_dict<'py>(py: Python<'py>, snapshot: &Snapshot) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in &snapshot.faults {
        d.set_item(k, v)?;
    }
    Ok(d)
}

/// A histogram as `{"buckets": [[upper bound, cumulative count], ..., [inf, count]], "sum", "count"}`.
fn histogram_dict<'py>(py: Python<'py>, h: &Histogram) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let mut cumulative = 0;
    let mut buckets = Vec::with_capacity(h.counts.len());
    for (i, n) in h.counts.iter().enumerate() {
        cumulative += n;
        buckets.push((h.bounds.get(i).copied().unwrap_or(f64::INFINITY), cumulative));
    }
    d.set_item("buckets", buckets)?;
    d.set_item("sum", h.sum)?;
    d.set_item("count", h.count)?;
    Ok(d)
}

/// Everything `Node.status()` reports, as a dict: the published snapshot, the counters, the
/// monitor's histograms and rates, and the warnings.
pub fn status_dict<'py>(py: Python<'py>, cfg: &NodeConfig, shared: &Shared) -> PyResult<Bound<'py, PyDict>> {
    let now = Instant::now();
    let d = PyDict::new(py);
    let s = shared.read().clone();
    d.set_item("node_id", cfg.id())?;
    d.set_item("role", role_name(s.role))?;
    d.set_item("term", s.term)?;
    d.set_item("leader", &s.leader)?;
    d.set_item("voted_for", &s.voted_for)?;
    d.set_item("is_leader", s.is_leader(now))?;
    d.set_item("fencing_token", s.fencing_token(now))?;
    d.set_item("lease_remaining", s.lease_remaining(now).map(|r| r.as_secs_f64()))?;
    d.set_item("last_heartbeat_age", s.last_heartbeat.map(|t| now.saturating_duration_since(t).as_secs_f64()))?;
    d.set_item("health", s.health.name())?;
    d.set_item("last_error", &s.last_error)?;
    let peers = PyDict::new(py);
    for (id, p) in &s.peers {
        let pd = PyDict::new(py);
        pd.set_item("address", &p.address)?;
        pd.set_item("connected", p.connected)?;
        pd.set_item("last_contact_age", p.last_contact.map(|t| now.saturating_duration_since(t).as_secs_f64()))?;
        pd.set_item("round_trip", p.round_trip.map(|r| r.smoothed.as_secs_f64()))?;
        peers.set_item(id, pd)?;
    }
    d.set_item("peers", peers)?;
    d.set_item("faults", faults_dict(py, &s)?)?;
    for (name, value) in shared.counters.values() {
        d.set_item(name, value)?;
    }
    let by_reason = PyDict::new(py);
    for (reason, n) in shared.counters.rejected_by_reason() {
        by_reason.set_item(reason, n)?;
    }
    d.set_item("rejected_by_reason", by_reason)?;
    let answered = s.votes_answered();
    let votes = PyDict::new(py);
    for (kind, pre_vote) in [("vote", false), ("pre_vote", true)] {
        let by_answer = PyDict::new(py);
        for a in crate::engine::VoteAnswer::ALL {
            by_answer.set_item(a.name(), answered.get(pre_vote, a))?;
        }
        votes.set_item(kind, by_answer)?;
    }
    d.set_item("votes", votes)?;
    let m = &s.monitor;
    let age = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t).as_secs_f64());
    d.set_item("leading_for", age(m.leading_since).filter(|_| s.leading.is_some()))?;
    d.set_item("leaderless_for", age(m.leaderless_since).filter(|_| s.role.is_some()))?;
    d.set_item("tenure_histogram", histogram_dict(py, &m.tenures)?)?;
    d.set_item("leaderless_histogram", histogram_dict(py, &m.leaderless_gaps)?)?;
    d.set_item("elections_last_minute", m.elections_in_window(now))?;
    d.set_item("leader_changes_last_minute", m.leader_changes_in_window(now))?;
    d.set_item("term_changes", m.term_changes)?;
    let mut warnings = cfg.warnings();
    if s.role.is_some() {
        warnings.extend(m.warnings(now, &cfg.engine().timing, s.clock_rate, s.peers.iter()));
    }
    d.set_item("warnings", warnings)?;
    Ok(d)
}
