//! A deterministic simulator: the real engines, a virtual clock, and a seeded network that drops,
//! duplicates, delays and reorders (through latency), with partitions, crashes, pauses and clock
//! rates from the one fault model. The same seed and the same calls give the same events.

pub mod checker;
pub mod failover;
pub mod schedule;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::engine::{
    Config, ConfigError, DemoteReason, EventKind, HardState, Message, NodeId, Output, Raft, Role, Term, Timing,
};
use crate::faults::Faults;
pub use checker::{Checker, Violation};

/// Messages a paused node holds for later, like a socket buffer under SIGSTOP; beyond it they drop.
pub const MAX_PAUSED_INBOX: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub members: Vec<NodeId>,
    pub seed: u64,
    pub timing: Timing,
    /// One-way latency, drawn uniformly from `[min, max]` for every copy of every message.
    pub latency: (Duration, Duration),
    pub drop_rate: f64,
    pub duplicate_rate: f64,
}

impl SimConfig {
    pub fn new(members: Vec<NodeId>, seed: u64) -> SimConfig {
        SimConfig {
            members,
            seed,
            timing: Timing::default(),
            latency: (Duration::from_micros(500), Duration::from_millis(2)),
            drop_rate: 0.0,
            duplicate_rate: 0.0,
        }
    }

    /// Members `n1..nN`, the names the simulator uses when given a count.
    pub fn numbered(count: usize, seed: u64) -> SimConfig {
        SimConfig::new((1..=count).map(|i| format!("n{i}")).collect(), seed)
    }
}

/// Deterministically derives independent seeds (splitmix64).
pub fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn check_rate(what: &str, rate: f64) -> Result<f64, ConfigError> {
    if !(0.0..=1.0).contains(&rate) {
        return Err(ConfigError::new(format!("{what}: must be in [0, 1], got {rate}")));
    }
    Ok(rate)
}

/// One event of the history, stamped with virtual time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    pub at: Duration,
    pub node: NodeId,
    pub kind: EventKind,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub fencing_token: Option<Term>,
    /// Some exactly for `Demoted`: why the leadership ended (`Crashed` comes from the simulator).
    pub reason: Option<DemoteReason>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_dropped: u64,
    pub messages_duplicated: u64,
    pub elections_started: u64,
    pub leaders_elected: u64,
    pub crashes: u64,
    pub restarts: u64,
}

/// A node's local clock: `local = base_local + (virtual - base_virtual) * rate`, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base_virtual: u64,
    base_local: f64,
    rate: f64,
}

impl Clock {
    fn local(&self, v: u64) -> Duration {
        Duration::from_nanos((self.base_local + (v - self.base_virtual) as f64 * self.rate) as u64)
    }

    /// The first virtual instant at which the local clock reads at least `local`.
    fn virtual_at(&self, local: Duration) -> u64 {
        let ahead = (local.as_nanos() as f64 - self.base_local).max(0.0);
        self.base_virtual + (ahead / self.rate).ceil() as u64 + 1
    }

    fn rebase(&mut self, v: u64, rate: f64) {
        self.base_local = self.local(v).as_nanos() as f64;
        self.base_virtual = v;
        self.rate = rate;
    }
}

#[derive(Debug, Clone)]
struct SimNode {
    id: NodeId,
    engine: Option<Raft>,
    /// What the node persisted: all that survives a crash.
    hard: HardState,
    faults: Faults,
    clock: Clock,
    /// The wake-up currently scheduled; queued wake-ups for other instants are stale.
    timer_at: Option<u64>,
    paused_until: Option<u64>,
    inbox: VecDeque<(usize, Message)>,
    boots: u64,
    /// The term of this node's open leadership (`elected` without `demoted` yet), if any: a crash
    /// closes it with a `demoted` of its own.
    leading: Option<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Deliver { to: usize, from: usize, message: Message },
    Wake { node: usize },
    Resume { node: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Scheduled {
    at: u64,
    seq: u64,
    item: Item,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A read-only view of one simulated node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub up: bool,
    pub paused: bool,
    pub role: Option<Role>,
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub is_leader: bool,
    pub fencing_token: Option<Term>,
    pub lease_remaining: Option<Duration>,
    pub clock_rate: f64,
}

#[derive(Debug, Clone)]
pub struct Simulation {
    cfg: SimConfig,
    now: u64,
    rng: Pcg64Mcg,
    nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    events: Vec<SimEvent>,
    stats: Stats,
    checker: Checker,
}

impl Simulation {
    pub fn new(cfg: SimConfig) -> Result<Simulation, ConfigError> {
        let members = crate::engine::config::validate_members(cfg.members.clone())?;
        cfg.timing.validate()?;
        let (lo, hi) = cfg.latency;
        if lo > hi {
            return Err(ConfigError::new("latency: min must not exceed max"));
        }
        check_rate("drop_rate", cfg.drop_rate)?;
        check_rate("duplicate_rate", cfg.duplicate_rate)?;
        let cfg = SimConfig { members: members.clone(), ..cfg };
        let nodes = members
            .iter()
            .map(|id| SimNode {
                id: id.clone(),
                engine: None,
                hard: HardState::default(),
                faults: Faults::default(),
                clock: Clock { base_virtual: 0, base_local: 0.0, rate: 1.0 },
                timer_at: None,
                paused_until: None,
                inbox: VecDeque::new(),
                boots: 0,
                leading: None,
            })
            .collect();
        let mut sim = Simulation {
            rng: Pcg64Mcg::seed_from_u64(mix(cfg.seed, u64::MAX)),
            checker: Checker::new(members.clone()),
            cfg,
            now: 0,
            nodes,
            queue: BinaryHeap::new(),
            next_seq: 0,
            events: Vec::new(),
            stats: Stats::default(),
        };
        for i in 0..sim.nodes.len() {
            sim.boot(i)?;
        }
        Ok(sim)
    }

    // ----- queries ----------------------------------------------------------------------------

    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    pub fn members(&self) -> &[NodeId] {
        &self.cfg.members
    }

    pub fn events(&self) -> &[SimEvent] {
        &self.events
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn violation(&self) -> Option<&Violation> {
        self.checker.violation()
    }

    pub fn check(&self) -> Result<(), Violation> {
        self.checker.violation().map_or(Ok(()), |v| Err(v.clone()))
    }

    /// The leader every live node agrees on, if there is one and it leads with its lease held
    /// (its `elected` has happened): the moment it may act, as `LocalCluster.leader()` means it.
    pub fn leader(&self) -> Option<&NodeId> {
        let mut agreed: Option<&NodeId> = None;
        for n in &self.nodes {
            let Some(engine) = &n.engine else { continue };
            let leader = engine.leader()?;
            if agreed.is_some_and(|a| a != leader) {
                return None;
            }
            agreed = Some(leader);
        }
        let leader = agreed?;
        let node = &self.nodes[self.index(leader).ok()?];
        node.engine.as_ref()?.is_leader(node.clock.local(self.now)).then_some(leader)
    }

    pub fn status(&self, id: &str) -> Result<NodeStatus, ConfigError> {
        let n = &self.nodes[self.index(id)?];
        let local = n.clock.local(self.now);
        let hard = n.engine.as_ref().map_or_else(|| n.hard.clone(), Raft::hard_state);
        let engine = n.engine.as_ref();
        Ok(NodeStatus {
            node_id: n.id.clone(),
            up: engine.is_some(),
            paused: n.faults.is_paused(),
            role: engine.map(Raft::role),
            term: hard.term,
            voted_for: hard.voted_for,
            leader: engine.and_then(|e| e.leader().cloned()),
            is_leader: engine.is_some_and(|e| e.is_leader(local)),
            fencing_token: engine.and_then(|e| e.fencing_token(local)),
            lease_remaining: engine
                .filter(|e| e.is_leader(local))
                .and_then(Raft::lease_expiry)
                .map(|e| e.saturating_sub(local).div_f64(n.clock.rate)),
            clock_rate: n.faults.clock_rate(),
        })
    }

    /// The virtual instant of the node's next scheduled wake-up (its next timer), if any.
    pub fn next_wake(&self, id: &str) -> Result<Option<Duration>, ConfigError> {
        Ok(self.nodes[self.index(id)?].timer_at.map(Duration::from_nanos))
    }

    // ----- running ----------------------------------------------------------------------------

    pub fn run_for(&mut self, span: Duration) {
        let until = self.now + span.as_nanos() as u64;
        self.run_until(until, |_| false);
    }

    /// Runs until a leader is agreed by all live nodes, or `timeout` of virtual time has passed.
    pub fn run_until_leader(&mut self, timeout: Duration) -> Option<NodeId> {
        if let Some(l) = self.leader() {
            return Some(l.clone());
        }
        let until = self.now + timeout.as_nanos() as u64;
        self.run_until(until, |s| s.leader().is_some());
        self.leader().cloned()
    }

    /// Handles every queued item due at or before `until`, stopping early once `done` holds.
    /// Returns whether it stopped early; otherwise the clock ends at `until`.
    pub fn run_until(&mut self, until: u64, mut done: impl FnMut(&Simulation) -> bool) -> bool {
        while let Some(Reverse(top)) = self.queue.peek() {
            if top.at > until {
                break;
            }
            let Reverse(Scheduled { at, item, .. }) = self.queue.pop().expect("peeked");
            self.now = at;
            self.handle(at, item);
            if done(self) {
                return true;
            }
        }
        self.now = self.now.max(until);
        false
    }

    fn handle(&mut self, at: u64, item: Item) {
        match item {
            Item::Wake { node } => {
                let n = &mut self.nodes[node];
                if n.timer_at != Some(at) || n.engine.is_none() || n.paused_until.is_some() {
                    return; // stale, crashed, or frozen (resume ticks it)
                }
                n.timer_at = None;
                let local = n.clock.local(at);
                let outputs = n.engine.as_mut().expect("checked").tick(local);
                self.apply(node, outputs);
            }
            Item::Deliver { to, from, message } => {
                let (sender, receiver) = (&self.nodes[from], &self.nodes[to]);
                if receiver.engine.is_none() || !receiver.faults.allows(&sender.id) || !sender.faults.allows(&receiver.id) {
                    self.stats.messages_dropped += 1;
                    return;
                }
                if receiver.paused_until.is_some() {
                    if receiver.inbox.len() < MAX_PAUSED_INBOX {
                        self.nodes[to].inbox.push_back((from, message));
                    } else {
                        self.stats.messages_dropped += 1;
                    }
                    return;
                }
                self.stats.messages_delivered += 1;
                self.step(to, from, message);
            }
            Item::Resume { node } => {
                if self.nodes[node].paused_until == Some(at) {
                    self.unpause(node);
                }
            }
        }
    }

    fn step(&mut self, to: usize, from: usize, message: Message) {
        let from_id = self.nodes[from].id.clone();
        let n = &mut self.nodes[to];
        let local = n.clock.local(self.now);
        let outputs = n.engine.as_mut().expect("delivered only to live nodes").step(local, &from_id, message);
        self.apply(to, outputs);
    }

    /// Carries out an engine's outputs in order, then lets the checker look and re-arms the timer.
    fn apply(&mut self, node: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Persist(hard) => {
                    self.checker.on_persist(self.now, node, &hard);
                    self.nodes[node].hard = hard;
                }
                Output::Send { to, message } => {
                    let to = self.index(&to).expect("engines only address members");
                    self.send(node, to, message);
                }
                Output::Event(e) => {
                    match e.kind {
                        EventKind::Elected => {
                            self.stats.leaders_elected += 1;
                            self.nodes[node].leading = Some(e.term);
                        }
                        EventKind::Demoted => self.nodes[node].leading = None,
                        EventKind::ElectionStarted => self.stats.elections_started += 1,
                        // Winning the vote: the leader changes to the node itself (a follower only
                        // ever follows others). Checked here, lease or not.
                        EventKind::LeaderChanged if e.leader.as_ref() == Some(&self.nodes[node].id) => {
                            self.checker.on_won(self.now, node, e.term);
                        }
                        _ => {}
                    }
                    self.record(node, e.kind, e.term, e.leader, e.reason);
                }
            }
        }
        self.observe(node);
        self.arm_timer(node);
    }

    /// Appends one event to the history, and shows elected/demoted to the checker.
    fn record(
        &mut self,
        node: usize,
        kind: EventKind,
        term: Term,
        leader: Option<NodeId>,
        reason: Option<DemoteReason>,
    ) {
        self.checker.on_event(self.now, node, kind);
        let fencing_token = matches!(kind, EventKind::Elected | EventKind::Demoted).then_some(term);
        self.events.push(SimEvent {
            at: self.now(),
            node: self.nodes[node].id.clone(),
            kind,
            term,
            leader,
            fencing_token,
            reason,
        });
    }

    fn observe(&mut self, node: usize) {
        let n = &self.nodes[node];
        let Some(engine) = &n.engine else { return };
        let local = n.clock.local(self.now);
        let lease_end = engine
            .is_leader(local)
            .then(|| n.clock.virtual_at(engine.lease_expiry().expect("is_leader has a lease")) - 1);
        self.checker.observe(self.now, node, engine.term(), lease_end);
    }

    fn arm_timer(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        let Some(deadline) = n.engine.as_ref().and_then(Raft::next_deadline) else { return };
        let at = n.clock.virtual_at(deadline).max(self.now + 1);
        if n.timer_at != Some(at) {
            n.timer_at = Some(at);
            self.schedule(at, Item::Wake { node });
        }
    }

    fn schedule(&mut self, at: u64, item: Item) {
        self.next_seq += 1;
        self.queue.push(Reverse(Scheduled { at, seq: self.next_seq, item }));
    }

    fn send(&mut self, from: usize, to: usize, message: Message) {
        self.stats.messages_sent += 1;
        let (sender, receiver) = (&self.nodes[from], &self.nodes[to]);
        if !receiver.faults.allows(&sender.id) || (self.cfg.drop_rate > 0.0 && self.rng.random_bool(self.cfg.drop_rate)) {
            self.stats.messages_dropped += 1;
            return;
        }
        let mut delays = sender.faults.fate(&receiver.id, &mut self.rng).delays;
        if delays.is_empty() {
            self.stats.messages_dropped += 1;
            return;
        }
        if delays.len() < crate::faults::MAX_COPIES
            && self.cfg.duplicate_rate > 0.0
            && self.rng.random_bool(self.cfg.duplicate_rate)
        {
            delays.push(delays[0]);
        }
        self.stats.messages_duplicated += delays.len() as u64 - 1;
        let (lo, hi) = (self.cfg.latency.0.as_nanos() as u64, self.cfg.latency.1.as_nanos() as u64);
        for extra in delays {
            let latency = if hi > lo { self.rng.random_range(lo..=hi) } else { lo };
            let at = self.now + latency + extra.as_nanos() as u64;
            self.schedule(at, Item::Deliver { to, from, message: message.clone() });
        }
    }

    // ----- faults -----------------------------------------------------------------------------

    fn index(&self, id: &str) -> Result<usize, ConfigError> {
        self.cfg
            .members
            .binary_search_by(|m| m.as_str().cmp(id))
            .map_err(|_| ConfigError::new(format!("node {id:?} is not a member of this simulation")))
    }

    /// Starts (or restarts) a node from its persisted state; it boots at the current instant.
    fn boot(&mut self, node: usize) -> Result<(), ConfigError> {
        let n = &mut self.nodes[node];
        let seed = mix(self.cfg.seed, (node as u64) << 32 | n.boots);
        n.boots += 1;
        let cfg = Config::new(n.id.clone(), self.cfg.members.clone(), self.cfg.timing.clone(), seed)?;
        let mut engine = Raft::new(cfg, n.hard.clone());
        let outputs = engine.tick(n.clock.local(self.now));
        n.engine = Some(engine);
        self.apply(node, outputs);
        Ok(())
    }

    /// Abrupt stop: volatile state, queued messages and timers are lost; persisted state is kept.
    /// An open leadership ends here, with a `demoted` event of reason `Crashed`.
    pub fn crash(&mut self, id: &str) -> Result<(), ConfigError> {
        let node = self.index(id)?;
        let n = &mut self.nodes[node];
        let Some(engine) = n.engine.take() else {
            return Err(ConfigError::new(format!("crash: node {id:?} is already down")));
        };
        if let Some(term) = n.leading.take() {
            // What the engine's own `demoted` would carry: its term, and itself as the leader.
            debug_assert_eq!((engine.role(), engine.term()), (Role::Leader, term), "an open leadership is a leader's");
            let leader = engine.leader().cloned();
            self.record(node, EventKind::Demoted, term, leader, Some(DemoteReason::Crashed));
        }
        let n = &mut self.nodes[node];
        n.timer_at = None;
        n.paused_until = None;
        n.faults.resume();
        n.inbox.clear();
        self.stats.crashes += 1;
        self.checker.on_crash(node);
        Ok(())
    }

    pub fn restart(&mut self, id: &str) -> Result<(), ConfigError> {
        let node = self.index(id)?;
        if self.nodes[node].engine.is_some() {
            return Err(ConfigError::new(format!("restart: node {id:?} is running; crash it first")));
        }
        self.stats.restarts += 1;
        self.boot(node)
    }

    pub fn is_up(&self, id: &str) -> Result<bool, ConfigError> {
        Ok(self.nodes[self.index(id)?].engine.is_some())
    }

    /// Splits the members into groups that cannot reach one another; members named in no group
    /// form one more group together.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) -> Result<(), ConfigError> {
        let mut group_of = vec![groups.len(); self.nodes.len()];
        for (g, group) in groups.iter().enumerate() {
            for id in group {
                let i = self.index(id)?;
                if group_of[i] != groups.len() {
                    return Err(ConfigError::new(format!("partition: {id:?} is named in two groups")));
                }
                group_of[i] = g;
            }
        }
        for i in 0..self.nodes.len() {
            let cut: BTreeSet<NodeId> = (0..self.nodes.len())
                .filter(|j| group_of[*j] != group_of[i])
                .map(|j| self.nodes[j].id.clone())
                .collect();
            self.nodes[i].faults.set_cut(cut);
        }
        Ok(())
    }

    /// Heals every link fault (partitions, per-node drop, duplicate, delay). Pauses run out on their
    /// own; clock rates and the network's drop and duplicate rates stay as set.
    pub fn heal(&mut self) {
        for n in &mut self.nodes {
            n.faults.heal_links();
        }
    }

    /// This node's own faults, as the networked node exposes them (drop, delay, duplicate, cut).
    pub fn faults_mut(&mut self, id: &str) -> Result<&mut Faults, ConfigError> {
        let i = self.index(id)?;
        Ok(&mut self.nodes[i].faults)
    }

    pub fn isolate(&mut self, id: &str) -> Result<(), ConfigError> {
        self.faults_mut(id)?.isolate();
        Ok(())
    }

    /// Freezes a node for `span`: no timers, no message handling; messages queue and are handled
    /// when it resumes, as under SIGSTOP.
    pub fn pause(&mut self, id: &str, span: Duration) -> Result<(), ConfigError> {
        let node = self.index(id)?;
        let until = self.now + span.as_nanos() as u64;
        let n = &mut self.nodes[node];
        if n.engine.is_none() {
            return Err(ConfigError::new(format!("pause: node {id:?} is down")));
        }
        let until = n.paused_until.map_or(until, |u| u.max(until));
        n.paused_until = Some(until);
        n.faults.pause();
        self.schedule(until, Item::Resume { node });
        Ok(())
    }

    /// Ends a pause now, if the node is paused.
    pub fn resume(&mut self, id: &str) -> Result<(), ConfigError> {
        let node = self.index(id)?;
        if self.nodes[node].paused_until.is_some() {
            self.unpause(node);
        }
        Ok(())
    }

    fn unpause(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.paused_until = None;
        n.faults.resume();
        let inbox = std::mem::take(&mut n.inbox);
        for (from, message) in inbox {
            if self.nodes[node].engine.is_some() {
                self.stats.messages_delivered += 1;
                self.step(node, from, message);
            }
        }
        let n = &mut self.nodes[node];
        if let Some(engine) = n.engine.as_mut() {
            let outputs = engine.tick(n.clock.local(self.now));
            self.apply(node, outputs);
        }
    }

    /// This node's timers run `factor` times as fast as virtual time.
    pub fn set_clock_rate(&mut self, id: &str, factor: f64) -> Result<(), ConfigError> {
        let node = self.index(id)?;
        self.nodes[node].faults.set_clock_rate(factor)?;
        let now = self.now;
        let n = &mut self.nodes[node];
        n.clock.rebase(now, factor);
        n.timer_at = None; // the old wake-up was computed at the old rate
        let rates: Vec<f64> = self.nodes.iter().map(|n| n.faults.clock_rate()).collect();
        let (lo, hi) = rates.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        // Safe while the fastest clock runs at most 1/(1 - drift) times the slowest (see raft.rs).
        self.checker.lease_check = hi / lo <= 1.0 / (1.0 - self.cfg.timing.max_clock_drift) + 1e-9;
        self.observe(node);
        self.arm_timer(node);
        Ok(())
    }

    pub fn set_drop_rate(&mut self, rate: f64) -> Result<(), ConfigError> {
        self.cfg.drop_rate = check_rate("drop_rate", rate)?;
        Ok(())
    }

    pub fn set_duplicate_rate(&mut self, rate: f64) -> Result<(), ConfigError> {
        self.cfg.duplicate_rate = check_rate("duplicate_rate", rate)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faulty_run(seed: u64) -> (Vec<SimEvent>, Stats) {
        let mut cfg = SimConfig::numbered(5, seed);
        cfg.drop_rate = 0.1;
        cfg.duplicate_rate = 0.05;
        let mut sim = Simulation::new(cfg).unwrap();
        let leader = sim.run_until_leader(Duration::from_secs(5)).unwrap();
        sim.crash(&leader).unwrap();
        sim.set_clock_rate("n2", 1.03).unwrap();
        sim.pause("n3", Duration::from_millis(400)).unwrap();
        sim.run_for(Duration::from_secs(2));
        sim.partition(&[vec!["n1".into(), "n2".into()]]).unwrap();
        sim.run_for(Duration::from_secs(2));
        sim.heal();
        sim.restart(&leader).unwrap();
        sim.run_for(Duration::from_secs(2));
        sim.check().unwrap();
        (sim.events().to_vec(), sim.stats().clone())
    }

    #[test]
    fn the_same_seed_and_calls_give_the_identical_event_list() {
        let (a, stats_a) = faulty_run(21);
        let (b, stats_b) = faulty_run(21);
        assert!(a.len() > 10, "a run with faults has a history: {} events", a.len());
        assert_eq!(a, b);
        assert_eq!(stats_a, stats_b);
        assert_ne!(faulty_run(22).0, a, "another seed, another history");
    }

    #[test]
    fn a_paused_node_handles_what_queued_once_it_resumes() {
        let mut sim = Simulation::new(SimConfig::numbered(3, 4)).unwrap();
        let leader = sim.run_until_leader(Duration::from_secs(5)).unwrap();
        let follower = sim.members().iter().find(|m| **m != leader).unwrap().clone();
        sim.pause(&follower, Duration::from_millis(120)).unwrap();
        sim.run_for(Duration::from_millis(100));
        assert!(sim.status(&follower).unwrap().paused);
        sim.run_for(Duration::from_millis(100));
        let st = sim.status(&follower).unwrap();
        assert!(!st.paused);
        assert_eq!(st.leader.as_ref(), Some(&leader), "queued heartbeats were handled on resume");
    }

    /// Per node: elected and demoted alternate, starting with elected; every demoted has a reason.
    fn assert_alternation(events: &[SimEvent]) {
        let mut open = std::collections::BTreeMap::new();
        for e in events {
            assert_eq!(e.reason.is_some(), e.kind == EventKind::Demoted, "{e:?}");
            let was_open = open.entry(e.node.clone()).or_insert(false);
            match e.kind {
                EventKind::Elected => assert!(!*was_open, "elected twice: {e:?}"),
                EventKind::Demoted => assert!(*was_open, "demoted without elected: {e:?}"),
                _ => continue,
            }
            *was_open = e.kind == EventKind::Elected;
        }
    }

    #[test]
    fn crashing_a_leader_closes_its_leadership_with_reason_crashed() {
        let mut sim = Simulation::new(SimConfig::numbered(3, 6)).unwrap();
        let leader = sim.run_until_leader(Duration::from_secs(5)).unwrap();
        sim.run_for(Duration::from_millis(100)); // a majority has acknowledged a round by now
        assert!(sim.status(&leader).unwrap().is_leader);
        let term = sim.status(&leader).unwrap().term;
        sim.crash(&leader).unwrap();
        let last = sim.events().last().unwrap().clone();
        assert_eq!(
            (last.at, last.node.as_str(), last.kind, last.term, last.fencing_token, last.reason),
            (sim.now(), leader.as_str(), EventKind::Demoted, term, Some(term), Some(DemoteReason::Crashed))
        );
        sim.run_for(Duration::from_secs(1));
        sim.restart(&leader).unwrap();
        sim.run_for(Duration::from_secs(1));
        let next = sim.leader().unwrap().clone();
        sim.run_for(Duration::from_millis(100));
        sim.crash(&next).unwrap();
        sim.restart(&next).unwrap();
        sim.run_for(Duration::from_secs(2));
        sim.check().unwrap();
        assert_alternation(sim.events());
        let crashed = sim.events().iter().filter(|e| e.reason == Some(DemoteReason::Crashed)).count();
        assert_eq!(crashed, 2);
    }

    #[test]
    fn a_leader_crashed_before_it_held_its_lease_records_no_demoted() {
        let mut sim = Simulation::new(SimConfig::numbered(3, 6)).unwrap();
        // Stop the moment the vote is won: the first heartbeat round is still in flight.
        let leading = |n: &SimNode| n.engine.as_ref().is_some_and(|e| e.role() == Role::Leader);
        sim.run_until(u64::MAX, |s| s.nodes.iter().any(leading));
        let leader = sim.nodes.iter().find(|n| leading(n)).unwrap().id.clone();
        assert!(!sim.status(&leader).unwrap().is_leader);
        let before = sim.events().len();
        sim.crash(&leader).unwrap();
        assert_eq!(sim.events().len(), before, "no elected, so no demoted");
        let announced = |e: &&SimEvent| matches!(e.kind, EventKind::Elected | EventKind::Demoted);
        assert!(!sim.events().iter().filter(announced).any(|e| e.node == leader));
        sim.restart(&leader).unwrap();
        sim.run_for(Duration::from_secs(2));
        sim.check().unwrap();
        assert_alternation(sim.events());
    }

    #[test]
    fn a_faulty_run_alternates_elected_and_demoted_per_node() {
        for seed in [21, 22] {
            let events = faulty_run(seed).0;
            assert!(events.iter().any(|e| e.reason == Some(DemoteReason::Crashed)), "the leader's crash is recorded");
            assert_alternation(&events);
        }
    }

    #[test]
    fn a_crashed_node_restarts_from_its_persisted_term_and_vote() {
        let mut sim = Simulation::new(SimConfig::numbered(3, 6)).unwrap();
        let leader = sim.run_until_leader(Duration::from_secs(5)).unwrap();
        let before = sim.status(&leader).unwrap();
        sim.crash(&leader).unwrap();
        let down = sim.status(&leader).unwrap();
        assert!(!down.up && down.role.is_none());
        assert_eq!((down.term, down.voted_for.clone()), (before.term, before.voted_for.clone()));
        sim.restart(&leader).unwrap();
        let after = sim.status(&leader).unwrap();
        assert_eq!((after.term, after.voted_for), (before.term, before.voted_for));
    }
}
