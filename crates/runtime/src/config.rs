//! The configuration of one networked node.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::wire::Group;
use quorate_engine::{Config, NodeId};

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub engine: Config,
    /// "host:port" of every member, this node included.
    pub addresses: BTreeMap<NodeId, String>,
    pub bind: String,
    pub data_dir: Option<PathBuf>,
    pub secret: Option<Vec<u8>>,
    pub cluster: String,
}

impl NodeConfig {
    /// What a peer must share with this node to be let in.
    pub fn group(&self) -> Group {
        Group { cluster: self.cluster.clone(), algorithm: self.engine.algorithm.name().to_string() }
    }
}
