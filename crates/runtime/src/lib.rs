//! The networked node: a tokio driver around the engine, the TCP transport, the durable state
//! file, and the fault layer between engine and transport.

pub mod admission;
pub mod driver;
pub mod durable;
pub mod log_limit;
pub mod monitor;
pub mod node;
pub mod shared;
pub mod transport;
pub mod wire;

pub use node::{new_shared, runtime, FaultCommand, NodeConfig, NodeHandle, RunningNode, StartError};
pub use shared::{EventRecord, Health, Shared, Snapshot, COUNTER_NAMES};
