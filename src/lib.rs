//! quorate: leader election for Python services.
//!
//! The layers are crates, each using only those below it: `quorate-engine` (sans-IO election
//! engines, the one fault model, seeds), `quorate-sim` (deterministic simulator and safety
//! checker) and `quorate-runtime` (the networked node) on it, and this crate on top: with the
//! `python` feature, the PyO3 bindings that maturin builds as `quorate._core`. The re-exports
//! keep one path per layer (`quorate::engine`, `quorate::sim`, ...) for the tests, benches and
//! bindings.

pub use quorate_engine as engine;
pub use quorate_engine::{faults, seed};
pub use quorate_runtime as runtime;
pub use quorate_sim as sim;

#[cfg(feature = "python")]
mod python;
