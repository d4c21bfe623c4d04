//! The `quorate._core` extension module: thin PyO3 wrappers over the engine and simulator.
//! Conversions and error mapping live in `convert`; each wrapped type has its own file.

mod convert;
mod core;
mod event;
mod logbridge;
mod node;
mod sim;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<core::PyCore>()?;
    m.add_class::<sim::PySimulation>()?;
    m.add_class::<event::PyEvent>()?;
    m.add_class::<node::PyNodeCore>()?;
    m.add_function(wrap_pyfunction!(sim::failover_trials, m)?)?;
    m.add_function(wrap_pyfunction!(logbridge::_take_log_records, m)?)?;
    m.add_function(wrap_pyfunction!(logbridge::_log_records_dropped, m)?)?;
    m.add_function(wrap_pyfunction!(_write_unraisable, m)?)?;
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
