//! What the outside asks of a running node (stop, resign, transfer, faults), as the driver
//! receives it, and the channel type of a peer's outgoing messages.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use quorate_engine::faults::Peers;
use quorate_engine::{ConfigError, Message, NodeId};

/// A fault request from the outside (Python's `node.faults`).
#[derive(Debug, Clone)]
pub enum FaultCommand {
    /// Cut every link of this node (its own layer of cuts).
    Isolate,
    Partition(Vec<NodeId>),
    Drop {
        rate: f64,
        peers: Peers,
    },
    Delay {
        delay: Duration,
        jitter: Duration,
        peers: Peers,
    },
    Duplicate {
        rate: f64,
        peers: Peers,
    },
    Pause,
    Resume,
    ClockRate(f64),
    /// Makes the engine's task panic: only for tests of what a node does when that happens.
    InjectPanic,
    /// The peers a group partition puts on the other side (LocalCluster.partition).
    GroupPartition(Vec<NodeId>),
    /// Undo the group partition only.
    Heal,
    /// Clear every fault (`node.faults.heal()` in Python).
    Clear,
}

/// Why a node did not hand its leadership over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferRefused {
    #[error("this node is not the leader")]
    NotLeader,
    /// The target breaks the transfer-target rule (`Config::transfer_target`) or could not take
    /// over (not connected); the message names `to`.
    #[error("{0}")]
    Target(ConfigError),
}

pub(crate) enum Command {
    Stop { graceful: bool, done: oneshot::Sender<()> },
    Resign { done: std::sync::mpsc::Sender<bool> },
    Transfer { to: NodeId, done: std::sync::mpsc::Sender<Result<(), TransferRefused>> },
    Fault { fault: FaultCommand, done: std::sync::mpsc::Sender<Result<(), ConfigError>> },
}

/// Messages waiting for one peer's connection, stamped with when they were sent.
pub(crate) type Outbox = mpsc::Sender<(Instant, Message)>;
