//! A deterministic simulator: the real engines, a virtual clock, and a seeded network that drops,
//! duplicates, delays and reorders (through latency), with partitions, crashes, pauses and clock
//! rates from the one fault model. The same seed and the same calls give the same events.

#[cfg(test)]
mod bully_tests;
pub mod checker;
mod config;
mod control;
pub mod failover;
pub mod leader;
#[cfg(test)]
mod ring_tests;
pub mod schedule;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

pub use checker::{Checker, Violation};
pub use config::{InFlight, NodeStatus, SimConfig, SimEvent, Stats};
use quorate_engine::faults::{check_rate, saturating_nanos, Faults, NodeClock};
use quorate_engine::seed::mix;
use quorate_engine::{Config, ConfigError, DemoteReason, Engine, EventKind, HardState, Message, NodeId, Output, Term};

/// Messages a paused node holds for later, like a socket buffer under SIGSTOP; beyond it they drop.
pub const MAX_PAUSED_INBOX: usize = 4096;

#[derive(Debug, Clone)]
struct SimNode {
    id: NodeId,
    engine: Option<Engine>,
    /// What the node persisted: all that survives a crash.
    hard: HardState,
    faults: Faults,
    clock: NodeClock,
    /// The wake-up currently scheduled; queued wake-ups for other instants are stale.
    timer_at: Option<u64>,
    paused_until: Option<u64>,
    inbox: VecDeque<(usize, Message)>,
    boots: u64,
    /// The term of this node's open leadership (`elected` without `demoted` yet), if any: a crash
    /// closes it with a `demoted` of its own.
    leading: Option<Term>,
}

/// What the queue holds, kept small because every push and pop moves entries up and down the
/// heap: a delivery names its message's slot in `Simulation::parked` rather than carrying the
/// message (48 bytes since Ring's messages carry a member's name), and its fields are u32 (no
/// simulation has 2^32 members or messages in flight), so an entry is 32 bytes instead of 80.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Deliver { to: u32, from: u32, slot: u32 },
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

#[derive(Debug, Clone)]
pub struct Simulation {
    cfg: SimConfig,
    now: u64,
    rng: Pcg64Mcg,
    nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    /// The messages of queued deliveries and when each was sent, by slot (see `Item`); None
    /// where a slot is free.
    parked: Vec<Option<(Message, u64)>>,
    free_slots: Vec<usize>,
    next_seq: u64,
    events: Vec<SimEvent>,
    stats: Stats,
    checker: Checker,
}

impl Simulation {
    pub fn new(cfg: SimConfig) -> Result<Simulation, ConfigError> {
        // Timing is checked once, by `Config::new` as each node boots below.
        let members = quorate_engine::config::validate_members(cfg.members.clone())?;
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
                clock: NodeClock::default(),
                timer_at: None,
                paused_until: None,
                inbox: VecDeque::new(),
                boots: 0,
                leading: None,
            })
            .collect();
        let mut sim = Simulation {
            rng: Pcg64Mcg::seed_from_u64(mix(cfg.seed, u64::MAX)),
            checker: Checker::for_algorithm(members.clone(), cfg.algorithm),
            cfg,
            now: 0,
            nodes,
            queue: BinaryHeap::new(),
            parked: Vec::new(),
            free_slots: Vec::new(),
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

    pub fn status(&self, id: &str) -> Result<NodeStatus, ConfigError> {
        let n = &self.nodes[self.index(id)?];
        let local = n.clock.local(self.now);
        let hard = n.engine.as_ref().map_or_else(|| n.hard.clone(), Engine::hard_state);
        let engine = n.engine.as_ref();
        Ok(NodeStatus {
            node_id: n.id.clone(),
            up: engine.is_some(),
            paused: n.faults.is_paused(),
            role: engine.map(Engine::role),
            term: hard.term,
            voted_for: hard.voted_for,
            leader: engine.and_then(|e| e.leader().cloned()),
            is_leader: engine.is_some_and(|e| e.is_leader(local)),
            fencing_token: engine.and_then(|e| e.fencing_token(local)),
            lease_remaining: engine
                .filter(|e| e.is_leader(local))
                .and_then(Engine::lease_expiry)
                .map(|e| e.saturating_sub(local).div_f64(n.clock.rate())),
            clock_rate: n.faults.clock_rate(),
        })
    }

    /// Every copy of a message the network holds now (sent, not yet arrived), in the order they
    /// will arrive. Messages a paused node has received but not yet handled are not in flight.
    pub fn in_flight(&self) -> Vec<InFlight> {
        let mut queued: Vec<&Scheduled> = self.queue.iter().map(|Reverse(s)| s).collect();
        queued.sort();
        queued
            .into_iter()
            .filter_map(|s| match s.item {
                Item::Deliver { to, from, slot } => {
                    let (message, sent) =
                        self.parked[slot as usize].as_ref().expect("a queued delivery holds its message");
                    let (to, from) = (to as usize, from as usize);
                    Some(InFlight {
                        from: self.nodes[from].id.clone(),
                        to: self.nodes[to].id.clone(),
                        message: message.clone(),
                        sent_at: Duration::from_nanos(*sent),
                        deliver_at: Duration::from_nanos(s.at),
                        doomed: self.dropped_on_arrival(from, to),
                    })
                }
                Item::Wake { .. } | Item::Resume { .. } => None,
            })
            .collect()
    }

    /// Whether a message from `from` arriving at `to` now is dropped: `to` is down, or either end
    /// cuts the link.
    fn dropped_on_arrival(&self, from: usize, to: usize) -> bool {
        let (sender, receiver) = (&self.nodes[from], &self.nodes[to]);
        receiver.engine.is_none() || !receiver.faults.allows(&sender.id) || !sender.faults.allows(&receiver.id)
    }

    /// The virtual instant of the node's next scheduled wake-up (its next timer), if any.
    pub fn next_wake(&self, id: &str) -> Result<Option<Duration>, ConfigError> {
        Ok(self.nodes[self.index(id)?].timer_at.map(Duration::from_nanos))
    }

    // ----- running ----------------------------------------------------------------------------

    pub fn run_for(&mut self, span: Duration) {
        let until = self.now.saturating_add(saturating_nanos(span));
        self.run_until(until, |_| false);
    }

    /// Runs until a leader is agreed by all live nodes, or `timeout` of virtual time has passed.
    pub fn run_until_known_to_all(&mut self, timeout: Duration) -> Option<NodeId> {
        if let Some(l) = self.leader_known_to_all() {
            return Some(l.clone());
        }
        let until = self.now.saturating_add(saturating_nanos(timeout));
        self.run_until(until, |s| s.leader_known_to_all().is_some());
        self.leader_known_to_all().cloned()
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
            Item::Deliver { to, from, slot } => {
                let (to, from) = (to as usize, from as usize);
                let message = self.unpark(slot as usize);
                if self.dropped_on_arrival(from, to) {
                    self.stats.messages_dropped += 1;
                    return;
                }
                let receiver = &self.nodes[to];
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
        // Node `i` is `members[i]` (as `index` relies on): borrowing the sender's id from there
        // rather than from `nodes` spares a copy of it per message.
        let from_id = &self.cfg.members[from];
        let n = &mut self.nodes[to];
        let local = n.clock.local(self.now);
        let outputs = n.engine.as_mut().expect("delivered only to live nodes").step(local, from_id, message);
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
        let lease_end =
            engine.is_leader(local).then(|| n.clock.real_at(engine.lease_expiry().expect("is_leader has a lease")) - 1);
        self.checker.observe(self.now, node, engine.term(), lease_end);
    }

    fn arm_timer(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        let Some(deadline) = n.engine.as_ref().and_then(Engine::next_deadline) else { return };
        let at = n.clock.real_at(deadline).max(self.now.saturating_add(1));
        if at == u64::MAX {
            // The end of the simulator's time is never reached: a timer there would fire at the
            // same instant for ever once the clock stood at it.
            n.timer_at = None;
            return;
        }
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
        if !receiver.faults.allows(&sender.id) || (self.cfg.drop_rate > 0.0 && self.rng.random_bool(self.cfg.drop_rate))
        {
            self.stats.messages_dropped += 1;
            return;
        }
        let mut delays = sender.faults.fate(&receiver.id, &mut self.rng).delays;
        if delays.is_empty() {
            self.stats.messages_dropped += 1;
            return;
        }
        if delays.len() < quorate_engine::faults::MAX_COPIES
            && self.cfg.duplicate_rate > 0.0
            && self.rng.random_bool(self.cfg.duplicate_rate)
        {
            delays.push(delays[0]);
        }
        self.stats.messages_duplicated += delays.len() as u64 - 1;
        let (lo, hi) = (self.cfg.latency.0.as_nanos() as u64, self.cfg.latency.1.as_nanos() as u64);
        for extra in delays {
            let latency = if hi > lo { self.rng.random_range(lo..=hi) } else { lo };
            let at = self.now.saturating_add(latency).saturating_add(saturating_nanos(extra));
            let slot = self.park(message.clone());
            self.schedule(at, Item::Deliver { to: to as u32, from: from as u32, slot: slot as u32 });
        }
    }

    /// Keeps a message (and its send time, for `in_flight`) in `parked` until its delivery;
    /// returns its slot.
    fn park(&mut self, message: Message) -> usize {
        let entry = Some((message, self.now));
        match self.free_slots.pop() {
            Some(slot) => {
                self.parked[slot] = entry;
                slot
            }
            None => {
                self.parked.push(entry);
                self.parked.len() - 1
            }
        }
    }

    /// Takes a delivery's message out of `parked`, freeing its slot.
    fn unpark(&mut self, slot: usize) -> Message {
        self.free_slots.push(slot);
        self.parked[slot].take().expect("a queued delivery holds its message").0
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
        let cfg = Config::new(n.id.clone(), self.cfg.members.clone(), self.cfg.timing.clone(), seed)?
            .with_algorithm(self.cfg.algorithm)
            .with_priorities(self.cfg.priorities.clone())?
            .with_bully_preempt(self.cfg.bully_preempt);
        let mut engine = Engine::new(cfg, n.hard.clone());
        let outputs = engine.tick(n.clock.local(self.now));
        n.engine = Some(engine);
        self.apply(node, outputs);
        Ok(())
    }
}
