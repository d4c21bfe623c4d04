//! The one fault model: what one node does to its own traffic and timers. The simulator applies it
//! at every simulated node; the networked node applies it between its engine and its transport.
//! Faults on one node never need its peers' cooperation: a cut is enforced on both send and receive.
//!
//! Two layers of cuts: the node's own (`isolate`, `partition`: what `node.faults` sets), and the
//! group partition imposed from outside (`set_group_partition`: what `LocalCluster.partition` and
//! `Simulation.partition` set), so that undoing the one never erases the other. One word per
//! meaning: `heal` undoes the group partition, `clear_links` clears every link fault (both layers,
//! drop, duplicate, delay), `clear` clears every fault. `NodeClock` is the one clock type for
//! "this node's time runs at rate r".

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::RngExt;

use crate::{ConfigError, NodeId};

/// The clock rates a node may be given: a hundred times slower to a hundred times faster. Beyond,
/// deadlines leave the range real clocks and timers can hold.
pub const CLOCK_RATES: (f64, f64) = (0.01, 100.0);

/// Most copies one send can turn into: a duplicate fault sends a message twice, never more.
pub const MAX_COPIES: usize = 2;

/// Which peers a rule applies to: all of them, or the named ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Peers {
    #[default]
    All,
    Only(BTreeSet<NodeId>),
}

impl Peers {
    pub fn contains(&self, peer: &str) -> bool {
        match self {
            Peers::All => true,
            Peers::Only(set) => set.contains(peer),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub rate: f64,
    pub peers: Peers,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delay {
    pub delay: Duration,
    pub jitter: Duration,
    pub peers: Peers,
}

/// What happens to one outgoing message: how many copies leave, and how late each one is.
#[derive(Debug, Clone, PartialEq)]
pub struct Fate {
    pub delays: Vec<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    isolated: bool,
    cut: BTreeSet<NodeId>,
    group_partition: BTreeSet<NodeId>,
    drop: Option<Rate>,
    duplicate: Option<Rate>,
    delay: Option<Delay>,
    paused: bool,
    clock_rate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            isolated: false,
            cut: BTreeSet::new(),
            group_partition: BTreeSet::new(),
            drop: None,
            duplicate: None,
            delay: None,
            paused: false,
            clock_rate: 1.0,
        }
    }
}

/// A probability in [0, 1], or a ConfigError naming `what`.
pub fn check_rate(what: &str, rate: f64) -> Result<f64, ConfigError> {
    if !(0.0..=1.0).contains(&rate) {
        return Err(ConfigError::new(format!("{what}: rate must be in [0, 1], got {rate}")));
    }
    Ok(rate)
}

impl Faults {
    /// Cut every link of this node, both ways.
    pub fn isolate(&mut self) {
        self.isolated = true;
    }

    /// Cut the links to these peers, both ways (adds to any cut already in place).
    pub fn partition<I: IntoIterator<Item = NodeId>>(&mut self, peers: I) {
        self.cut.extend(peers);
    }

    /// The peers a group partition puts on the other side (replaces the previous group partition;
    /// the node's own cuts stay).
    pub fn set_group_partition(&mut self, peers: BTreeSet<NodeId>) {
        self.group_partition = peers;
    }

    pub fn drop(&mut self, rate: f64, peers: Peers) -> Result<(), ConfigError> {
        let rate = check_rate("drop", rate)?;
        self.drop = (rate > 0.0).then_some(Rate { rate, peers });
        Ok(())
    }

    pub fn duplicate(&mut self, rate: f64, peers: Peers) -> Result<(), ConfigError> {
        let rate = check_rate("duplicate", rate)?;
        self.duplicate = (rate > 0.0).then_some(Rate { rate, peers });
        Ok(())
    }

    pub fn delay(&mut self, delay: Duration, jitter: Duration, peers: Peers) {
        self.delay = (!delay.is_zero() || !jitter.is_zero()).then_some(Delay { delay, jitter, peers });
    }

    pub fn pause(&mut self) {
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.paused = false;
    }

    pub fn set_clock_rate(&mut self, factor: f64) -> Result<(), ConfigError> {
        if !(CLOCK_RATES.0..=CLOCK_RATES.1).contains(&factor) {
            return Err(ConfigError::new(format!(
                "clock_rate: factor must be in [{}, {}], got {factor}",
                CLOCK_RATES.0, CLOCK_RATES.1
            )));
        }
        self.clock_rate = factor;
        Ok(())
    }

    /// Undoes the group partition; the node's own faults stay.
    pub fn heal(&mut self) {
        self.group_partition.clear();
    }

    /// Clears every link fault: both layers of cuts, drop, duplicate, delay. Pause and clock rate stay.
    pub fn clear_links(&mut self) {
        *self = Faults { paused: self.paused, clock_rate: self.clock_rate, ..Faults::default() };
    }

    /// Clears every fault (a crash is not a fault of this model: the driver owns it).
    pub fn clear(&mut self) {
        *self = Faults::default();
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn clock_rate(&self) -> f64 {
        self.clock_rate
    }

    /// Whether traffic with `peer` passes at all, in either direction.
    pub fn allows(&self, peer: &str) -> bool {
        !self.isolated && !self.cut.contains(peer) && !self.group_partition.contains(peer)
    }

    /// The fate of one message to `peer`: dropped (no delays), sent once, or sent twice; each copy
    /// with its extra delay. Randomness comes from the caller's seeded generator.
    pub fn fate<R: rand::Rng>(&self, peer: &str, rng: &mut R) -> Fate {
        if !self.allows(peer) || self.drop.as_ref().is_some_and(|d| d.peers.contains(peer) && rng.random_bool(d.rate)) {
            return Fate { delays: Vec::new() };
        }
        let copies = match &self.duplicate {
            Some(d) if d.peers.contains(peer) && rng.random_bool(d.rate) => MAX_COPIES,
            _ => 1,
        };
        let delays = (0..copies)
            .map(|_| match &self.delay {
                Some(d) if d.peers.contains(peer) => {
                    let jitter = d.jitter.as_nanos() as u64;
                    d.delay + Duration::from_nanos(if jitter > 0 { rng.random_range(0..=jitter) } else { 0 })
                }
                _ => Duration::ZERO,
            })
            .collect();
        Fate { delays }
    }

    /// The active faults, by name, for status displays.
    pub fn active(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.isolated {
            out.push(("isolated", "true".to_string()));
        }
        if !self.cut.is_empty() {
            out.push(("partitioned", format!("{:?}", self.cut)));
        }
        if !self.group_partition.is_empty() {
            out.push(("group_partition", format!("{:?}", self.group_partition)));
        }
        if let Some(d) = &self.drop {
            out.push(("drop", d.rate.to_string()));
        }
        if let Some(d) = &self.duplicate {
            out.push(("duplicate", d.rate.to_string()));
        }
        if let Some(d) = &self.delay {
            out.push(("delay", format!("{}+{}", d.delay.as_secs_f64(), d.jitter.as_secs_f64())));
        }
        if self.paused {
            out.push(("paused", "true".to_string()));
        }
        if self.clock_rate != 1.0 {
            out.push(("clock_rate", self.clock_rate.to_string()));
        }
        out
    }
}

/// The cuts a group partition makes at each member: `groups` cannot reach one another, and the
/// members named in no group form one more group together. One function for every partition
/// (the simulator's and LocalCluster's), so a bad grouping reads the same everywhere.
pub fn group_partition(
    members: &[NodeId],
    groups: &[Vec<NodeId>],
) -> Result<BTreeMap<NodeId, BTreeSet<NodeId>>, ConfigError> {
    let rest = groups.len();
    let mut group_of: BTreeMap<&NodeId, usize> = members.iter().map(|m| (m, rest)).collect();
    for (g, group) in groups.iter().enumerate() {
        for id in group {
            let Some(slot) = group_of.get_mut(id) else {
                return Err(ConfigError::new(format!("partition: {id:?} is not a member")));
            };
            if *slot != rest {
                return Err(ConfigError::new(format!("partition: {id:?} is named in two groups")));
            }
            *slot = g;
        }
    }
    Ok(members
        .iter()
        .map(|m| {
            let cut = members.iter().filter(|o| group_of[*o] != group_of[m]).cloned().collect();
            (m.clone(), cut)
        })
        .collect())
}

/// A node's clock: `local = base_local + (real - base_real) * rate`, with real time in nanoseconds
/// since the driver's epoch (virtual time in the simulator). A rate change keeps it continuous.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeClock {
    base_real: u64,
    base_local: f64,
    rate: f64,
}

impl Default for NodeClock {
    fn default() -> Self {
        NodeClock { base_real: 0, base_local: 0.0, rate: 1.0 }
    }
}

/// `d` in nanoseconds, `u64::MAX` for a span beyond (584 years): instants are u64 nanoseconds, and
/// a plain `as u64` would wrap a huge timeout around to a tiny one.
pub fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl NodeClock {
    /// The local time at real instant `real` (saturating at the end of u64 nanoseconds).
    pub fn local(&self, real: u64) -> Duration {
        let elapsed = real.saturating_sub(self.base_real) as f64;
        // f64 -> u64 saturates.
        Duration::from_nanos((self.base_local + elapsed * self.rate) as u64)
    }

    /// The first real instant at which the local clock reads at least `local`, or `u64::MAX` when
    /// none does. Every step saturates: a huge deadline on a slow clock must land far in the
    /// future, never wrap around into the past (which made a driver wake in a loop).
    pub fn real_at(&self, local: Duration) -> u64 {
        let ahead = (local.as_nanos() as f64 - self.base_local).max(0.0);
        let mut real = self.base_real.saturating_add(((ahead / self.rate).ceil() as u64).saturating_add(1));
        // Below 2^52 ns (52 days) f64 holds every nanosecond and the +1 above covers rounding;
        // beyond, rounding can leave local(real) a hair short of `local`: step on (doubling, so
        // at most 64 steps) until it is not. The check is skipped on the hot path below.
        const EXACT: f64 = (1u64 << 52) as f64;
        if ahead < EXACT && self.base_local < EXACT && (real as f64) < EXACT {
            return real;
        }
        let mut step = 1u64;
        while self.local(real) < local && real < u64::MAX {
            real = real.saturating_add(step);
            step = step.saturating_mul(2);
        }
        real
    }

    /// From real instant `real` on, time runs `rate` times as fast.
    pub fn set_rate(&mut self, real: u64, rate: f64) {
        self.base_local = self.local(real).as_nanos() as f64;
        self.base_real = real;
        self.rate = rate;
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn a_group_partition_and_the_nodes_own_cuts_are_separate_layers() {
        let mut f = Faults::default();
        f.partition(["b".to_string()]);
        f.set_group_partition(["c".to_string()].into_iter().collect());
        assert!(!f.allows("b") && !f.allows("c"));
        f.heal();
        assert!(!f.allows("b"), "healing the group partition keeps the node's own cut");
        assert!(f.allows("c"));
        f.drop(0.5, Peers::All).unwrap();
        f.pause();
        f.clear_links();
        assert!(f.allows("b") && f.is_paused() && f.active() == vec![("paused", "true".to_string())]);
        f.clear();
        assert!(f.active().is_empty());
    }

    #[test]
    fn group_partition_cuts_across_groups_and_refuses_bad_groupings() {
        let m: Vec<NodeId> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let cuts = group_partition(&m, &[vec!["a".into()], vec!["b".into()]]).unwrap();
        assert_eq!(cuts["a"], ["b", "c", "d"].iter().map(|s| s.to_string()).collect());
        assert_eq!(cuts["c"], ["a", "b"].iter().map(|s| s.to_string()).collect(), "unnamed members form one group");
        let twice = group_partition(&m, &[vec!["a".into()], vec!["a".into()]]).unwrap_err();
        assert!(twice.0.contains("two groups"));
        assert!(group_partition(&m, &[vec!["z".into()]]).unwrap_err().0.contains("not a member"));
    }

    #[test]
    fn the_node_clock_is_continuous_across_rate_changes() {
        let mut c = NodeClock::default();
        assert_eq!(c.local(1_000), Duration::from_nanos(1_000));
        c.set_rate(1_000, 2.0);
        assert_eq!(c.local(1_000), Duration::from_nanos(1_000));
        assert_eq!(c.local(2_000), Duration::from_nanos(3_000));
        let at = c.real_at(Duration::from_nanos(3_000));
        assert!(c.local(at) >= Duration::from_nanos(3_000) && at <= 2_001);
    }

    #[test]
    fn a_cut_blocks_both_directions_and_clear_links_clears_it() {
        let mut f = Faults::default();
        f.partition(["b".to_string()]);
        assert!(!f.allows("b") && f.allows("c"));
        f.isolate();
        assert!(!f.allows("c"));
        f.clear_links();
        assert!(f.allows("b") && f.allows("c"));
    }

    #[test]
    fn drop_rate_is_honoured_statistically_and_only_for_named_peers() {
        let mut f = Faults::default();
        f.drop(0.3, Peers::Only(["b".to_string()].into())).unwrap();
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let dropped = (0..10_000).filter(|_| f.fate("b", &mut rng).delays.is_empty()).count();
        assert!((2_500..3_500).contains(&dropped), "dropped {dropped} of 10000 at rate 0.3");
        assert!((0..1_000).all(|_| f.fate("c", &mut rng).delays.len() == 1));
    }

    #[test]
    fn duplicates_and_delays_shape_each_copy() {
        let mut f = Faults::default();
        f.duplicate(1.0, Peers::All).unwrap();
        f.delay(Duration::from_millis(10), Duration::from_millis(5), Peers::All);
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let fate = f.fate("b", &mut rng);
        assert_eq!(fate.delays.len(), MAX_COPIES);
        for d in fate.delays {
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(15));
        }
    }

    #[test]
    fn bad_rates_and_clock_factors_are_config_errors() {
        let mut f = Faults::default();
        assert!(f.drop(1.5, Peers::All).unwrap_err().0.starts_with("drop:"));
        assert!(f.duplicate(-0.1, Peers::All).is_err());
        assert!(f.set_clock_rate(0.0).unwrap_err().0.starts_with("clock_rate:"));
        assert!(f.set_clock_rate(f64::INFINITY).is_err());
        for absurd in [1e-300, f64::NAN, 1e300, -1.0] {
            assert!(f.set_clock_rate(absurd).unwrap_err().0.contains("[0.01, 100]"), "{absurd}");
        }
        assert!(f.set_clock_rate(0.01).is_ok() && f.set_clock_rate(100.0).is_ok());
    }

    #[test]
    fn a_huge_deadline_on_a_slow_clock_lands_in_the_future_never_wrapped_into_the_past() {
        let mut clock = NodeClock::default();
        clock.set_rate(1_000, CLOCK_RATES.0);
        // 1e9 s of election timeout at a hundredth of real speed: 1e20 ns of real time, beyond u64.
        let deadline = Duration::from_secs(1_000_000_000);
        assert_eq!(clock.real_at(deadline), u64::MAX);
        let mut fast = NodeClock::default();
        fast.set_rate(0, CLOCK_RATES.1);
        let at = fast.real_at(Duration::from_secs(100_000_000));
        assert!(fast.local(at) >= Duration::from_secs(100_000_000) && at > 0);
        assert_eq!(fast.local(u64::MAX), Duration::from_nanos(u64::MAX), "local time saturates");
    }

    #[test]
    fn the_local_clock_reaches_every_deadline_it_is_armed_for() {
        for rate in [CLOCK_RATES.0, 0.37, 1.0, 3.3, CLOCK_RATES.1] {
            let mut clock = NodeClock::default();
            clock.set_rate(123_456_789, rate);
            for secs in [0.001, 1.5, 86_400.0, 3.1e7, 1.0e8] {
                let deadline = Duration::from_secs_f64(secs);
                let at = clock.real_at(deadline);
                assert!(at == u64::MAX || clock.local(at) >= deadline, "rate {rate}, {secs} s");
            }
        }
    }

    #[test]
    fn saturating_nanos_never_wraps() {
        assert_eq!(saturating_nanos(Duration::from_millis(3)), 3_000_000);
        assert_eq!(saturating_nanos(Duration::from_secs(u64::MAX)), u64::MAX);
    }
}
