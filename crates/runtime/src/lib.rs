//! The networked node: a tokio driver around the engine, the TCP transport, the durable state
//! file, and the fault layer between engine and transport.
//!
//! The modules form a one-way graph (tests/runtime_modules.rs keeps it so), each using only those
//! below it: `node` (start, stop, the handle) on `driver` and `transport`; those on `command`,
//! `config`, `shared`, `clock` and `durable`; `shared` on `monitor`; everything on `record`,
//! `wire` and `log_limit`.

pub mod admission;
mod clock;
pub mod command;
pub mod config;
pub mod driver;
pub mod durable;
pub mod log_limit;
pub mod monitor;
pub mod node;
pub mod record;
pub mod shared;
pub mod transport;
pub mod wire;

pub use command::{FaultCommand, TransferRefused};
pub use config::{NodeConfig, MAX_CLUSTER_BYTES, MIN_SECRET_BYTES};
pub use node::{new_shared, runtime, NodeHandle, RunningNode, StartError};
pub use record::{EventRecord, PeerInfo};
pub use shared::{Health, Shared, Snapshot, COUNTER_NAMES};
