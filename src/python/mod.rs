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
    logbridge::install();
    Ok(())
}
