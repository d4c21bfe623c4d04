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
}

/// The longest span, in seconds, that any time argument may name (about 31.7 years). No election
/// needs more, and longer spans would overflow the simulator's nanosecond clock and the engine's
/// deadline arithmetic.
pub const MAX_SECONDS: f64 = 1e9;

/// How error messages spell `MAX_SECONDS`.
const MAX_SECONDS_TEXT: &str = "1e9 seconds (about 31 years)";

/// Timing and feature switches shared by every member of a group. Build one with `Timing::new`
/// (every rule checked, messages naming the argument) or take `Timing::default()`: the one place
/// the defaults live.
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
    /// The one check of timing values, in the units users write them (seconds as floats): each
    /// election timeout bound finite, positive and at most `MAX_SECONDS`, min <= max; the heartbeat
    /// interval finite, positive and below the minimum election timeout; the clock drift in
    /// [0, 0.5). Every message names the argument and shows the value as Python writes it.
    pub fn new(
        election_timeout: (f64, f64),
        heartbeat_interval: f64,
        pre_vote: bool,
        check_quorum: bool,
        max_clock_drift: f64,
    ) -> Result<Timing, ConfigError> {
        let (lo, hi) = election_timeout;
        let pair = format!("({}, {})", py_float(lo), py_float(hi));
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(ConfigError::new(format!(
                "election_timeout: both bounds must be finite numbers of seconds, got {pair}"
            )));
        }
        if !(lo > 0.0 && hi > 0.0) {
            return Err(ConfigError::new(format!("election_timeout: both bounds must be positive, got {pair}")));
        }
        if lo.max(hi) > MAX_SECONDS {
            return Err(ConfigError::new(format!(
                "election_timeout: each bound must be at most {MAX_SECONDS_TEXT}, got {pair}"
            )));
        }
        if lo > hi {
            return Err(ConfigError::new(format!(
                "election_timeout: min ({}) must not exceed max ({})",
                py_float(lo),
                py_float(hi)
            )));
        }
        let hb = py_float(heartbeat_interval);
        if !heartbeat_interval.is_finite() {
            return Err(ConfigError::new(format!("heartbeat_interval: must be a finite number of seconds, got {hb}")));
        }
        if heartbeat_interval <= 0.0 {
            return Err(ConfigError::new(format!("heartbeat_interval: must be positive, got {hb}")));
        }
        if heartbeat_interval >= lo {
            return Err(ConfigError::new(format!(
                "heartbeat_interval: must be below election_timeout[0] ({hb} >= {})",
                py_float(lo)
            )));
        }
        if !(0.0..0.5).contains(&max_clock_drift) {
            return Err(ConfigError::new(format!(
                "max_clock_drift: must be in [0, 0.5), got {}",
                py_float(max_clock_drift)
            )));
        }
        Ok(Timing {
            election_timeout: (Duration::from_secs_f64(lo), Duration::from_secs_f64(hi)),
            heartbeat_interval: Duration::from_secs_f64(heartbeat_interval),
            pre_vote,
            check_quorum,
            max_clock_drift,
        })
    }

    /// Checks a Timing built field by field (Rust tests, benchmarks, the simulator's random
    /// schedules) by the rules of `Timing::new`: there is no second set of rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (lo, hi) = self.election_timeout_seconds();
        Timing::new(
            (lo, hi),
            self.heartbeat_interval.as_secs_f64(),
            self.pre_vote,
            self.check_quorum,
            self.max_clock_drift,
        )
        .map(drop)
    }

    /// `election_timeout` in seconds, as Python gives and shows it.
    pub fn election_timeout_seconds(&self) -> (f64, f64) {
        (self.election_timeout.0.as_secs_f64(), self.election_timeout.1.as_secs_f64())
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

    /// The same configuration for another algorithm.
    pub fn with_algorithm(self, algorithm: Algorithm) -> Config {
        Config { algorithm, ..self }
    }

    /// The priority rule, as every entry point states it: `priority` is this node's priority,
    /// `priorities` every member's (a member not named: 0). Given both, this node's entry must equal
    /// `priority`; given neither, this node's priority is 0. A name that is not a member is refused.
    pub fn with_ranks(self, priority: Option<i64>, priorities: BTreeMap<NodeId, i64>) -> Result<Config, ConfigError> {
        let own = priorities.get(&self.id).copied();
        if let (Some(own), Some(p)) = (own, priority) {
            if own != p {
                return Err(ConfigError::new(format!(
                    "priorities: this node's entry ({own}) differs from priority ({p}); give one, or make them equal"
                )));
            }
        }
        let priority = priority.or(own).unwrap_or(0);
        self.with_priorities(priorities).map(|c| c.with_priority(priority))
    }

    /// The transfer-target rule: leadership can be handed only to another member. The messages
    /// quote ids as Python does, since Python users read them.
    pub fn transfer_target(&self, to: &str) -> Result<(), ConfigError> {
        if to == self.id {
            return Err(ConfigError::new(format!("to: {} is this node itself; name a peer", py_str(to))));
        }
        if !self.members.iter().any(|m| m == to) {
            let members: Vec<String> = self.members.iter().map(|m| py_str(m)).collect();
            return Err(ConfigError::new(format!(
                "to: {} is not a member (members: [{}])",
                py_str(to),
                members.join(", ")
            )));
        }
        Ok(())
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
    // would forge lines in each of them, a line or paragraph separator splits lines in many
    // readers, and a format character (bidi overrides, zero-width) makes two ids look alike.
    if let Some(c) = id.chars().find(|&c| hidden_char(c)) {
        return Err(ConfigError::new(format!(
            "{what}: node id {id:?} contains a control character or an invisible format or separator \
             character (U+{:04X})",
            c as u32
        )));
    }
    Ok(())
}

/// Unicode's control (Cc), format (Cf), line (Zl) and paragraph (Zp) separator characters.
fn hidden_char(c: char) -> bool {
    // The format characters (general category Cf, Unicode 15), as ranges.
    const FORMAT: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let u = c as u32;
    c.is_control() || u == 0x2028 || u == 0x2029 || FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&u))
}

/// The most members a group may have, however they are given (a count or a list of ids).
pub const MAX_MEMBERS: usize = 1024;

/// Checks and sorts a member list: 1 to `MAX_MEMBERS` members, every id valid, no id twice.
pub fn validate_members(mut members: Vec<NodeId>) -> Result<Vec<NodeId>, ConfigError> {
    if members.is_empty() {
        return Err(ConfigError::new("members: a group needs at least one member"));
    }
    if members.len() > MAX_MEMBERS {
        return Err(ConfigError::new(format!(
            "members: a group has at most {MAX_MEMBERS} members, got {}",
            members.len()
        )));
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

/// The members rule for a group given as a count: 1 to `MAX_MEMBERS` members, named n1..nN (the
/// names LocalCluster, Simulation and Core give them).
pub fn numbered_members(count: i64) -> Result<Vec<NodeId>, ConfigError> {
    if count < 1 {
        return Err(ConfigError::new(format!("members: a group needs at least one member, got {count}")));
    }
    if count > MAX_MEMBERS as i64 {
        return Err(ConfigError::new(format!("members: a group has at most {MAX_MEMBERS} members, got {count}")));
    }
    Ok((1..=count).map(|i| format!("n{i}")).collect())
}

/// The rule every number of seconds follows (timeouts, spans of time, `now`): finite, not
/// negative, at most `MAX_SECONDS`. Returns the Duration; the message names `what` and the value.
pub fn seconds(what: &str, value: f64) -> Result<Duration, ConfigError> {
    let rule = if !value.is_finite() {
        "must be a finite number of seconds".to_string()
    } else if value < 0.0 {
        "must not be negative".to_string()
    } else if value > MAX_SECONDS {
        format!("must be at most {MAX_SECONDS_TEXT}")
    } else {
        return Ok(Duration::from_secs_f64(value));
    };
    Err(ConfigError::new(format!("{what}: {rule}, got {}", py_float(value))))
}

/// A float as Python's `repr` writes it (`nan`, `inf`, `0.15`, `1e+300`, `1e-05`), so that a
/// message shows a Python user the value they passed.
pub fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's Debug writes the shortest digits that read back, switching to an exponent where
    // Python does (below 1e-4, from 1e16); only the exponent's spelling differs ("e16", "e+16").
    let text = format!("{v:?}");
    match text.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

/// A str as Python's `repr` writes it (`'n1'`), for messages about ids a Python user typed.
pub fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x100 && c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
