//! The configuration of one networked node, and its rules: every address a "host:port", no two
//! members at one address, a secret of at least `MIN_SECRET_BYTES`, a cluster name of 1 to
//! `MAX_CLUSTER_BYTES` bytes, a data_dir that is a directory if it exists. `NodeConfig::new` is
//! the only way to make one, so every caller (the Python bindings, Rust tests) meets the same
//! rules with the same messages.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::wire::Group;
use quorate_engine::{Config, ConfigError, NodeId};

/// The shortest shared secret a node accepts, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;
/// The longest cluster name, in bytes (the name travels in every handshake).
pub const MAX_CLUSTER_BYTES: usize = 255;

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub(crate) engine: Config,
    /// "host:port" of every member, this node included.
    pub(crate) addresses: BTreeMap<NodeId, String>,
    pub(crate) bind: String,
    pub(crate) data_dir: Option<PathBuf>,
    /// The shared secrets: the first signs, every one is accepted (rotation); empty: none.
    pub(crate) secrets: Vec<Vec<u8>>,
    pub(crate) cluster: String,
}

impl NodeConfig {
    /// Checks and builds a node's configuration. `addresses` names every member of `engine` (and
    /// no one else); `bind` defaults to this node's own address. The rules are checked in the order
    /// of `quorate.Node`'s arguments: addresses, bind, secret, cluster, data_dir.
    pub fn new(
        engine: Config,
        addresses: BTreeMap<NodeId, String>,
        bind: Option<String>,
        data_dir: Option<PathBuf>,
        secrets: Vec<Vec<u8>>,
        cluster: impl Into<String>,
    ) -> Result<NodeConfig, ConfigError> {
        if !addresses.keys().eq(engine.members.iter()) {
            return Err(ConfigError::new(format!(
                "members: the addresses name {:?}, the group {:?}",
                addresses.keys().collect::<Vec<_>>(),
                engine.members
            )));
        }
        check_addresses(&addresses)?;
        let bind = match bind {
            Some(b) => {
                check_address("bind", &b)?;
                b
            }
            None => addresses[&engine.id].clone(),
        };
        for (i, s) in secrets.iter().enumerate() {
            if s.len() < MIN_SECRET_BYTES {
                // One secret is `secret`; in a rotation list, name which.
                let which = if secrets.len() == 1 { "secret".to_string() } else { format!("secret[{i}]") };
                return Err(ConfigError::new(format!(
                    "{which}: must be at least {MIN_SECRET_BYTES} bytes, got {}",
                    s.len()
                )));
            }
        }
        let cluster = cluster.into();
        if cluster.is_empty() || cluster.len() > MAX_CLUSTER_BYTES {
            return Err(ConfigError::new(format!(
                "cluster: must be 1 to {MAX_CLUSTER_BYTES} bytes, got {}",
                cluster.len()
            )));
        }
        if let Some(dir) = data_dir.as_ref().filter(|d| d.exists() && !d.is_dir()) {
            return Err(ConfigError::new(format!("data_dir: {} exists and is not a directory", dir.display())));
        }
        Ok(NodeConfig { engine, addresses, bind, data_dir, secrets, cluster })
    }

    /// The engine's configuration: id, members, timing, algorithm, priorities.
    pub fn engine(&self) -> &Config {
        &self.engine
    }

    pub fn id(&self) -> &NodeId {
        &self.engine.id
    }

    /// "host:port" of every member, this node included.
    pub fn addresses(&self) -> &BTreeMap<NodeId, String> {
        &self.addresses
    }

    /// The address this node listens on.
    pub fn bind(&self) -> &str {
        &self.bind
    }

    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// The secrets, the signing one first; empty when frames are not authenticated.
    pub fn secrets(&self) -> &[Vec<u8>] {
        &self.secrets
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// What a peer must share with this node to be let in.
    pub fn group(&self) -> Group {
        Group { cluster: self.cluster.clone(), algorithm: self.engine.algorithm.name().to_string() }
    }

    /// What is unsafe in how this node is set up, for the log at start and for `status().warnings`.
    pub fn warnings(&self) -> Vec<String> {
        let host = self.bind.rsplit_once(':').map_or(self.bind.as_str(), |(h, _)| h);
        let bare = unbracketed(host);
        let loopback =
            bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let mut out = Vec::new();
        if self.secrets.is_empty() && !loopback {
            out.push(format!(
                "listening on {} without a secret: anyone who can reach it can forge votes and heartbeats; set secret=",
                self.bind
            ));
        }
        out
    }
}

fn unbracketed(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// Checks a "host:port" address: a host (name, IPv4, or [IPv6]) and a port number.
pub fn check_address(what: &str, address: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::new(format!("{what}: {address:?} is not a host:port address"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host = unbracketed(host);
    if host.is_empty()
        || host.contains(char::is_whitespace)
        || (host.contains(':') && host.parse::<Ipv6Addr>().is_err())
    {
        return Err(bad());
    }
    Ok(())
}

/// Every member's address parses, and no two members are at one place.
fn check_addresses(addresses: &BTreeMap<NodeId, String>) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<(String, String), (&NodeId, &String)> = BTreeMap::new();
    for (id, address) in addresses {
        check_address("members", address)?;
        for place in same_place(address) {
            if let Some((other, theirs)) = seen.insert(place, (id, address)) {
                return Err(ConfigError::new(format!(
                    "members: {other:?} at {theirs:?} and {id:?} at {address:?} are the same address"
                )));
            }
        }
    }
    Ok(())
}

/// The (host, port) pairs an address may reach, for spotting two members at one place: IP
/// literals in canonical form, and "localhost" as both loopback addresses. Other names are
/// compared as written (resolving them here could block on DNS).
fn same_place(address: &str) -> Vec<(String, String)> {
    let Some((host, port)) = address.rsplit_once(':') else { return Vec::new() };
    let bare = unbracketed(host);
    let hosts = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![ip.to_canonical().to_string()],
        Err(_) if bare.eq_ignore_ascii_case("localhost") => vec!["127.0.0.1".to_string(), "::1".to_string()],
        Err(_) => vec![bare.to_ascii_lowercase()],
    };
    let port = port.parse::<u16>().map_or_else(|_| port.to_string(), |p| p.to_string());
    hosts.into_iter().map(|h| (h, port.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_engine::Timing;

    fn addresses(pairs: &[(&str, &str)]) -> BTreeMap<NodeId, String> {
        pairs.iter().map(|(id, a)| (id.to_string(), a.to_string())).collect()
    }

    fn engine(ids: &[&str]) -> Config {
        Config::new(ids[0], ids.iter().copied(), Timing::default(), 0).unwrap()
    }

    fn make(secret: Option<&[u8]>, cluster: &str) -> Result<NodeConfig, ConfigError> {
        let a = addresses(&[("a", "127.0.0.1:1"), ("b", "127.0.0.1:2")]);
        NodeConfig::new(engine(&["a", "b"]), a, None, None, secret.map(<[u8]>::to_vec).into_iter().collect(), cluster)
    }

    fn message(r: Result<NodeConfig, ConfigError>) -> String {
        r.unwrap_err().0
    }

    #[test]
    fn secret_must_be_at_least_min_secret_bytes() {
        assert_eq!(message(make(Some(b""), "c")), "secret: must be at least 16 bytes, got 0");
        assert_eq!(message(make(Some(b"0123456789abcde"), "c")), "secret: must be at least 16 bytes, got 15");
        assert!(make(Some(b"0123456789abcdef"), "c").is_ok());
        assert!(make(None, "c").is_ok(), "no secret: frames are not authenticated");
        let rotation = |keys: &[&[u8]]| {
            let a = addresses(&[("a", "127.0.0.1:1"), ("b", "127.0.0.1:2")]);
            NodeConfig::new(engine(&["a", "b"]), a, None, None, keys.iter().map(|k| k.to_vec()).collect(), "c")
        };
        assert!(rotation(&[b"0123456789abcdef", b"fedcba9876543210"]).is_ok(), "a rotation list");
        assert_eq!(message(rotation(&[b"0123456789abcdef", b"short"])), "secret[1]: must be at least 16 bytes, got 5");
    }

    #[test]
    fn cluster_name_is_one_to_max_cluster_bytes() {
        assert_eq!(message(make(None, "")), "cluster: must be 1 to 255 bytes, got 0");
        assert_eq!(message(make(None, &"c".repeat(256))), "cluster: must be 1 to 255 bytes, got 256");
        assert!(make(None, &"c".repeat(255)).is_ok());
    }

    #[test]
    fn addresses_are_host_port() {
        for bad in ["not-an-address", "127.0.0.1:99999", ":1", "[::zz]:1", "a b:1"] {
            let a = addresses(&[("a", bad)]);
            let m = message(NodeConfig::new(engine(&["a"]), a, None, None, vec![], "c"));
            assert!(m.starts_with("members:") && m.contains("not a host:port address"), "{bad}: {m}");
        }
        for good in ["127.0.0.1:1", "[::1]:1", "localhost:0", "example.org:7400"] {
            assert!(
                NodeConfig::new(engine(&["a"]), addresses(&[("a", good)]), None, None, vec![], "c").is_ok(),
                "{good}"
            );
        }
        let bad_bind = NodeConfig::new(
            engine(&["a"]),
            addresses(&[("a", "127.0.0.1:1")]),
            Some("nowhere".into()),
            None,
            vec![],
            "c",
        );
        assert_eq!(message(bad_bind), "bind: \"nowhere\" is not a host:port address");
    }

    #[test]
    fn no_two_members_share_an_address() {
        let a = addresses(&[("a", "127.0.0.1:1"), ("b", "localhost:1")]);
        let m = message(NodeConfig::new(engine(&["a", "b"]), a, None, None, vec![], "c"));
        assert!(m.contains("same address"), "{m}");
        let a = addresses(&[("a", "[::ffff:127.0.0.1]:1"), ("b", "127.0.0.1:01")]);
        assert!(message(NodeConfig::new(engine(&["a", "b"]), a, None, None, vec![], "c")).contains("same address"));
    }

    #[test]
    fn addresses_name_exactly_the_members() {
        let a = addresses(&[("a", "127.0.0.1:1")]);
        assert!(message(NodeConfig::new(engine(&["a", "b"]), a, None, None, vec![], "c")).starts_with("members:"));
    }

    #[test]
    fn data_dir_is_a_directory_if_it_exists() {
        let file = std::env::temp_dir().join(format!("quorate-config-test-{}", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        let a = addresses(&[("a", "127.0.0.1:1")]);
        let m = message(NodeConfig::new(engine(&["a"]), a.clone(), None, Some(file.clone()), vec![], "c"));
        std::fs::remove_file(&file).unwrap();
        assert!(m.starts_with("data_dir:") && m.contains("not a directory"), "{m}");
        assert!(
            NodeConfig::new(engine(&["a"]), a, None, Some(file), vec![], "c").is_ok(),
            "a missing one is made at start"
        );
    }

    #[test]
    fn bind_defaults_to_this_nodes_address_and_a_public_one_without_a_secret_warns() {
        let cfg = make(None, "c").unwrap();
        assert_eq!((cfg.bind(), cfg.warnings().len()), ("127.0.0.1:1", 0));
        let a = addresses(&[("a", "10.0.0.1:1")]);
        let open = NodeConfig::new(engine(&["a"]), a, None, None, vec![], "c").unwrap();
        assert!(open.warnings()[0].contains("without a secret"));
    }
}
