//! The networked node: a tokio driver around the engine, the TCP transport, the durable state
//! file, and the fault layer between engine and transport.

pub mod durable;
pub mod wire;
