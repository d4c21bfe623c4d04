//! Configuration of one engine, and its validation. Every rule here is one a user can break from
//! Python, so each failure names the argument and the rule.

use std::collections::BTreeMap;
use std::time::Duration;

pub type NodeId = String;

/// Node ids travel in every frame and name metrics; the `Node` docstring (docs/reference/node.md) caps them.
pub const MAX_NODE_ID_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError(message.into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Raft,
    Bully,
    Ring,
}

impl Algorithm {
    pub fn parse(name: &str) -> Result<Self, ConfigError> {
        match name {
            "raft" => Ok(Algorithm::Raft),
            "bully" => Ok(Algorithm::Bully),
            "ring" => Ok(Algorithm::Ring),
            other => Err(ConfigError::new(format!(
                "algorithm: unknown algorithm {other:?}; expected \"raft\", \"bully\" or \"ring\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Raft => "raft",
            Algorithm::Bully => "bully",
            Algorithm::Ring => "ring",
        }
    }

    /// Every algorithm of the contract has an engine now; kept so that a name added to the
    /// contract before its engine is refused loudly rather than silently run as another.
    pub fn require_implemented(self) -> Result<Self, ConfigError> {
        match self {
            Algorithm::Raft | Algorithm::Bully | Algorithm::Ring => Ok(self),
        }
    }
}

/// Timing and feature switches shared by every member of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// `[min, max)`: each election timeout is drawn uniformly from this range.
    pub election_timeout: (Duration, Duration),
    pub heartbeat_interval: Duration,
    pub pre_vote: bool,
    /// Check-quorum (thesis 6.2) for a leader that has not yet earned its lease: it steps down once
    /// no majority has acknowledged a heartbeat round for `election_timeout.0` since it won. Off, such a
    /// leader stays leader (never `is_leader`) until a higher term deposes it. A leader that has held
    /// its lease steps down the moment the lease lapses, whatever this says.
    pub check_quorum: bool,
    /// Assumed bound on how much faster one clock runs than another (0.05 = 5%).
    pub max_clock_drift: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
            heartbeat_interval: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            max_clock_drift: 0.05,
        }
    }
}

impl Timing {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (min, max) = self.election_timeout;
        if min.is_zero() {
            return Err(ConfigError::new("election_timeout: the minimum must be positive"));
        }
        if min > max {
            return Err(ConfigError::new(format!(
                "election_timeout: min ({}) must not exceed max ({})",
                min.as_secs_f64(),
                max.as_secs_f64()
            )));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(ConfigError::new("heartbeat_interval: must be positive"));
        }
        if self.heartbeat_interval >= min {
            return Err(ConfigError::new(format!(
                "heartbeat_interval: must be below election_timeout[0] ({} >= {})",
                self.heartbeat_interval.as_secs_f64(),
                min.as_secs_f64()
            )));
        }
        if !(0.0..0.5).contains(&self.max_clock_drift) {
            return Err(ConfigError::new(format!(
                "max_clock_drift: must be in [0, 0.5), got {}",
                self.max_clock_drift
            )));
        }
        Ok(())
    }

    /// How long a lease lasts from the moment its heartbeat round was sent: the shortest time any
    /// voter that acknowledged the round will refuse other candidates, shortened for clock drift.
    pub fn lease_duration(&self) -> Duration {
        self.election_timeout.0.mul_f64(1.0 - self.max_clock_drift)
    }
}

/// Everything one engine needs to know about itself and its group.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub id: NodeId,
    /// Every member, this node included, sorted and unique.
    pub members: Vec<NodeId>,
    pub timing: Timing,
    /// Seeds this node's timeout randomness; the same seed gives the same timeouts.
    pub seed: u64,
    /// The election algorithm the whole group runs (peers of another are refused at handshake).
    pub algorithm: Algorithm,
    /// This node's priority (default 0). Bully and Ring rank members by `(priority, node_id)`: the
    /// highest-ranked live member becomes coordinator (Ring orders its ring by rank). Raft ignores it.
    pub priority: i64,
    /// Every member's priority, as every member must know every rank (a member not listed has
    /// priority 0). Kept consistent with `priority` by `with_priority` and `with_priorities`: this
    /// node's entry, when present, equals `priority`. Every member should be given the same map.
    pub priorities: BTreeMap<NodeId, i64>,
    /// Bully only (default true): a node that hears a lower-ranked coordinator (a higher-ranked
    /// node recovering, or two sides of a healed partition meeting) starts an election and takes
    /// over. Off, a follower keeps a live lower-ranked coordinator until it fails; two
    /// coordinators that meet still settle on the higher rank.
    pub bully_preempt: bool,
}

impl Config {
    pub fn new(
        id: impl Into<NodeId>,
        members: impl IntoIterator<Item = impl Into<NodeId>>,
        timing: Timing,
        seed: u64,
    ) -> Result<Config, ConfigError> {
        let id = id.into();
        validate_node_id("node_id", &id)?;
        let members = validate_members(members.into_iter().map(Into::into).collect())?;
        if !members.contains(&id) {
            return Err(ConfigError::new(format!("node_id: {id:?} is not one of the members")));
        }
        timing.validate()?;
        Ok(Config {
            id,
            members,
            timing,
            seed,
            algorithm: Algorithm::Raft,
            priority: 0,
            priorities: BTreeMap::new(),
            bully_preempt: true,
        })
    }

    /// The same configuration with this node's priority set (its entry in `priorities` too).
    pub fn with_priority(mut self, priority: i64) -> Config {
        self.priority = priority;
        self.priorities.insert(self.id.clone(), priority);
        self
    }

    /// The same configuration with every member's priority (members not named: 0). Refuses a name
    /// that is not a member; this node's own entry, if given, sets `priority`.
    pub fn with_priorities(mut self, priorities: BTreeMap<NodeId, i64>) -> Result<Config, ConfigError> {
        if let Some(stranger) = priorities.keys().find(|k| !self.members.contains(k)) {
            return Err(ConfigError::new(format!("priorities: {stranger:?} is not one of the members")));
        }
        let own = priorities.get(&self.id).copied().unwrap_or(self.priority);
        self.priorities = priorities;
        Ok(self.with_priority(own))
    }

    /// The same configuration with Bully's preemption on or off (see `bully_preempt`).
    pub fn with_bully_preempt(self, bully_preempt: bool) -> Config {
        Config { bully_preempt, ..self }
    }

    /// A member's Bully rank: `(priority, node_id)`, compared as a tuple (ties go to the greater id).
    pub fn rank<'a>(&self, id: &'a str) -> (i64, &'a str) {
        let priority = if id == self.id { self.priority } else { self.priorities.get(id).copied().unwrap_or(0) };
        (priority, id)
    }

    /// The same configuration for another algorithm; one this version cannot run is refused.
    pub fn with_algorithm(self, algorithm: Algorithm) -> Result<Config, ConfigError> {
        Ok(Config { algorithm: algorithm.require_implemented()?, ..self })
    }

    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    pub fn peers(&self) -> impl Iterator<Item = &NodeId> {
        self.members.iter().filter(move |m| **m != self.id)
    }
}

pub fn validate_node_id(what: &str, id: &str) -> Result<(), ConfigError> {
    if id.is_empty() {
        return Err(ConfigError::new(format!("{what}: node ids must be non-empty")));
    }
    if id.len() > MAX_NODE_ID_BYTES {
        return Err(ConfigError::new(format!(
            "{what}: node id {id:?} is {} bytes; the limit is {MAX_NODE_ID_BYTES}",
            id.len()
        )));
    }
    // Ids name log lines, metrics labels and JSON event lines: a newline or control character
    // would forge lines in each of them.
    if id.chars().any(char::is_control) {
        return Err(ConfigError::new(format!("{what}: node id {id:?} contains a control character")));
    }
    Ok(())
}

/// Checks and sorts a member list: at least one member, every id valid, no id twice.
pub fn validate_members(mut members: Vec<NodeId>) -> Result<Vec<NodeId>, ConfigError> {
    if members.is_empty() {
        return Err(ConfigError::new("members: a group needs at least one member"));
    }
    for m in &members {
        validate_node_id("members", m)?;
    }
    members.sort();
    if let Some(w) = members.windows(2).find(|w| w[0] == w[1]) {
        return Err(ConfigError::new(format!("members: {:?} is listed twice", w[0])));
    }
    Ok(members)
}

/// Converts a user's float seconds into a Duration, refusing NaN, infinities and negatives.
pub fn seconds(what: &str, value: f64) -> Result<Duration, ConfigError> {
    if !value.is_finite() || value < 0.0 {
        return Err(ConfigError::new(format!("{what}: must be a finite, non-negative number of seconds, got {value}")));
    }
    Duration::try_from_secs_f64(value).map_err(|_| ConfigError::new(format!("{what}: {value} seconds is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(min_ms: u64, max_ms: u64, hb_ms: u64) -> Timing {
        Timing {
            election_timeout: (Duration::from_millis(min_ms), Duration::from_millis(max_ms)),
            heartbeat_interval: Duration::from_millis(hb_ms),
            ..Timing::default()
        }
    }

    #[test]
    fn config_errors_name_the_argument() {
        let err = |r: Result<Config, ConfigError>| r.unwrap_err().0;
        assert!(err(Config::new("x", ["a", "b"], Timing::default(), 0)).starts_with("node_id:"));
        assert!(err(Config::new("a", Vec::<String>::new(), Timing::default(), 0)).starts_with("members:"));
        assert!(err(Config::new("a", ["a", "a"], Timing::default(), 0)).contains("listed twice"));
        assert!(err(Config::new("", [""], Timing::default(), 0)).contains("non-empty"));
        assert!(err(Config::new("a", ["a"], timing(300, 150, 50), 0)).starts_with("election_timeout:"));
        assert!(err(Config::new("a", ["a"], timing(0, 150, 50), 0)).starts_with("election_timeout:"));
        assert!(err(Config::new("a", ["a"], timing(150, 300, 150), 0)).starts_with("heartbeat_interval:"));
        let drift = Timing { max_clock_drift: 0.5, ..Timing::default() };
        assert!(err(Config::new("a", ["a"], drift, 0)).starts_with("max_clock_drift:"));
        assert!(Algorithm::parse("paxos").unwrap_err().0.starts_with("algorithm:"));
        assert!(seconds("now", f64::NAN).is_err() && seconds("now", -1.0).is_err());
    }

    #[test]
    fn equal_timeout_bounds_are_allowed() {
        // Figure 16 of the Raft paper has a 150-150 ms row.
        assert!(Config::new("a", ["a"], timing(150, 150, 75), 0).is_ok());
    }

    #[test]
    fn long_node_ids_are_refused() {
        let long = "n".repeat(MAX_NODE_ID_BYTES + 1);
        assert!(Config::new(long.clone(), [long], Timing::default(), 0).is_err());
    }
}
