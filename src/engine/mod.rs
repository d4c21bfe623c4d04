//! Sans-IO election engines: time and a seeded generator come in, ordered outputs (persist, send,
//! event) go out. No clock, no threads, no I/O, no Python.

pub mod config;
pub mod messages;
pub mod raft;

#[cfg(test)]
mod raft_tests;

pub use config::{Algorithm, Config, ConfigError, NodeId, Timing};
pub use messages::{DemoteReason, Event, EventKind, HardState, Message, Output, Term};
pub use raft::{Raft, Role, State, TransferError};
