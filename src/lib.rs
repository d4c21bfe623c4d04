//! quorate: leader election for Python services.
//!
//! Layers, each using only those below it: `engine` (sans-IO Raft election), `faults` (the one
//! fault model), `sim` (deterministic simulator and safety checker), and, with the `python`
//! feature, `python` (the PyO3 bindings that maturin builds as `quorate._core`).

pub mod engine;
pub mod faults;
pub mod runtime;
pub mod seed;
pub mod sim;

#[cfg(feature = "python")]
mod python;
