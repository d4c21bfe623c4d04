//! The networked node: a tokio driver around the engine, the TCP transport, the durable state
//! file, and the fault layer between engine and transport.

pub mod durable;
pub mod wire;
pub mod node;

pub use node::{runtime, EventRecord, FaultCommand, NodeConfig, NodeHandle, RunningNode, Shared, Snapshot, StartError};
