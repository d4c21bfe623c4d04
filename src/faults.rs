//! The one fault model: what one node does to its own traffic and timers. The simulator applies it
//! at every simulated node; the networked node applies it between its engine and its transport.
//! Faults on one node never need its peers' cooperation: a cut is enforced on both send and receive.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::RngExt;

use crate::engine::{ConfigError, NodeId};

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
            drop: None,
            duplicate: None,
            delay: None,
            paused: false,
            clock_rate: 1.0,
        }
    }
}

fn check_rate(what: &str, rate: f64) -> Result<f64, ConfigError> {
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

    /// Replace the set of cut peers.
    pub fn set_cut(&mut self, peers: BTreeSet<NodeId>) {
        self.cut = peers;
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
        if !factor.is_finite() || factor <= 0.0 {
            return Err(ConfigError::new(format!(
                "clock_rate: factor must be a positive finite number, got {factor}"
            )));
        }
        self.clock_rate = factor;
        Ok(())
    }

    /// Clears every fault (a crash is not a fault of this model: the driver owns it).
    pub fn heal(&mut self) {
        *self = Faults::default();
    }

    /// Clears the link faults (cuts, drop, duplicate, delay); pause and clock rate stay.
    pub fn heal_links(&mut self) {
        *self = Faults { paused: self.paused, clock_rate: self.clock_rate, ..Faults::default() };
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn clock_rate(&self) -> f64 {
        self.clock_rate
    }

    /// Whether traffic with `peer` passes at all, in either direction.
    pub fn allows(&self, peer: &str) -> bool {
        !self.isolated && !self.cut.contains(peer)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn a_cut_blocks_both_directions_and_heal_clears_it() {
        let mut f = Faults::default();
        f.partition(["b".to_string()]);
        assert!(!f.allows("b") && f.allows("c"));
        f.isolate();
        assert!(!f.allows("c"));
        f.heal();
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
    }
}
