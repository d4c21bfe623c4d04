//! Rust `log` records to Python `logging` ("quorate") without running Python on engine threads:
//! records go into a bounded buffer, and one Python thread (`quorate.node._forward_logs`) takes
//! them out and logs them. pyo3-log would take the GIL on whichever thread logs, tokio's included.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use pyo3::prelude::*;

use super::convert::secs;

/// Records waiting for the Python thread; when it cannot keep up the oldest are dropped and counted.
const MAX_BUFFERED: usize = 10_000;

struct Buffer {
    records: Mutex<VecDeque<(u32, String, String)>>,
    ready: Condvar,
    dropped: AtomicU64,
}

static BUFFER: Buffer =
    Buffer { records: Mutex::new(VecDeque::new()), ready: Condvar::new(), dropped: AtomicU64::new(0) };

struct BufferedLogger;

/// Python's level numbers.
fn levelno(level: log::Level) -> u32 {
    match level {
        log::Level::Error => 40,
        log::Level::Warn => 30,
        log::Level::Info => 20,
        log::Level::Debug => 10,
        log::Level::Trace => 5,
    }
}

impl log::Log for BufferedLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("quorate")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut q = BUFFER.records.lock().expect("log buffer lock");
        if q.len() >= MAX_BUFFERED {
            q.pop_front();
            BUFFER.dropped.fetch_add(1, Ordering::Relaxed);
        }
        q.push_back((levelno(record.level()), record.target().to_string(), record.args().to_string()));
        drop(q);
        BUFFER.ready.notify_one();
    }

    fn flush(&self) {}
}

pub fn install() {
    // Another extension may have installed a logger first; then ours stays out of the way.
    if log::set_logger(&BufferedLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// Waits up to `timeout` (GIL released) for log records; returns (levelno, target, message) tuples.
#[pyfunction]
pub fn _take_log_records(py: Python<'_>, timeout: f64) -> PyResult<Vec<(u32, String, String)>> {
    let timeout = secs("timeout", timeout)?;
    Ok(py.detach(|| {
        let q = BUFFER.records.lock().expect("log buffer lock");
        let (mut q, _) = BUFFER.ready.wait_timeout_while(q, timeout, |q| q.is_empty()).expect("log buffer lock");
        q.drain(..).collect()
    }))
}

/// How many records were dropped because the buffer was full.
#[pyfunction]
pub fn _log_records_dropped() -> u64 {
    BUFFER.dropped.load(Ordering::Relaxed)
}
