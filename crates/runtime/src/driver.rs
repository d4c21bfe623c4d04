//! The driver: one task per running node that owns the engine and carries out its outputs in
//! order (persist and fsync, then sends through the fault layer), then publishes the new state,
//! and only then queues the events that describe it.
//!
//! A node that cannot make its state durable is degraded: it steps down if it leads (reason
//! "storage"), neither votes nor campaigns (messages are dropped, timers do not run), and retries
//! the write every second; once the disk takes it, the engine restarts from the last durable state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use tokio::sync::{mpsc, watch};

use super::clock::LocalClock;
use super::command::{Command, FaultCommand, Outbox, TransferRefused};
use super::config::NodeConfig;
use super::durable::DurableState;
use super::log_limit::{suppressed_note, LogLimiter};
use super::record::EventRecord;
use super::shared::{Health, Shared, Snapshot};
use super::wire::Rejection;
use quorate_engine::config::py_str;
use quorate_engine::faults::Faults;
use quorate_engine::{
    Config, DemoteReason, Engine, EventKind, HardState, Message, NodeId, Output, Role, RoundTrip, Term, TransferError,
};

/// Messages held back by a delay fault at once.
const MAX_DELAYED: u64 = 4096;
/// How often a node that cannot write its state tries again.
const STORAGE_RETRY: Duration = Duration::from_secs(1);
/// How long a graceful stop lets the hand-off message reach the wire.
const HANDOFF_FLUSH: Duration = Duration::from_millis(200);

pub(super) struct Driver {
    cfg: NodeConfig,
    engine: Engine,
    durable: Option<DurableState>,
    /// The last hard state known to be durable: the engine restarts from it if a write fails.
    durable_hard: HardState,
    clock: LocalClock,
    faults: Faults,
    rng: Pcg64Mcg,
    shared: Arc<Shared>,
    outboxes: BTreeMap<NodeId, Outbox>,
    delayed: Arc<AtomicU64>,
    boots: u64,
    /// Events of the batch being carried out; queued once its state is published.
    pending: Vec<EventRecord>,
    /// The term of the leadership announced with `elected` and not yet closed by `demoted`.
    leading: Option<Term>,
    /// Why the state cannot be made durable, while it cannot: the node is degraded.
    storage_error: Option<String>,
    /// When a degraded node next tries to write its state.
    storage_retry_at: tokio::time::Instant,
    storage_log: LogLimiter,
}

impl Driver {
    pub(super) fn new(
        cfg: NodeConfig,
        hard: HardState,
        durable: Option<DurableState>,
        shared: Arc<Shared>,
        outboxes: BTreeMap<NodeId, Outbox>,
    ) -> Driver {
        let engine = Engine::new(cfg.engine.clone(), hard.clone());
        let rng = Pcg64Mcg::seed_from_u64(quorate_engine::seed::mix(cfg.engine.seed, 0xfa17));
        Driver {
            engine,
            durable,
            durable_hard: hard,
            clock: LocalClock::new(),
            faults: Faults::default(),
            rng,
            shared,
            outboxes,
            delayed: Arc::new(AtomicU64::new(0)),
            boots: 0,
            pending: Vec::new(),
            leading: None,
            storage_error: None,
            storage_retry_at: tokio::time::Instant::now(),
            storage_log: LogLimiter::default(),
            cfg,
        }
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut inbox: mpsc::Receiver<(NodeId, Message)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let outputs = self.engine.tick(self.clock.now());
        self.act(outputs);
        loop {
            let paused = self.faults.is_paused();
            let deadline = self.next_deadline();
            tokio::select! {
                _ = shutdown.changed() => break,
                command = commands.recv() => match command {
                    None => break,
                    Some(Command::Stop { graceful, done }) => {
                        if graceful && self.engine.role() == Role::Leader {
                            let outputs = self.engine.shut_down(self.clock.now());
                            self.act(outputs);
                            self.flush(HANDOFF_FLUSH).await;
                        }
                        let _ = done.send(());
                        break;
                    }
                    Some(command) => self.command(command, &mut inbox),
                },
                // Paused: neither messages nor timers, as under SIGSTOP; the inbox fills and then drops.
                Some((from, message)) = inbox.recv(), if !paused => self.receive(from, message),
                _ = tokio::time::sleep_until(deadline), if !paused => self.on_deadline(),
            }
        }
    }

    fn next_deadline(&self) -> tokio::time::Instant {
        if self.storage_error.is_some() {
            return self.storage_retry_at;
        }
        self.engine
            .next_deadline()
            .map(|d| tokio::time::Instant::from_std(self.clock.real(d)))
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600))
    }

    fn on_deadline(&mut self) {
        if self.storage_error.is_some() {
            self.retry_storage();
        } else {
            let outputs = self.engine.tick(self.clock.now());
            self.act(outputs);
        }
    }

    fn command(&mut self, command: Command, inbox: &mut mpsc::Receiver<(NodeId, Message)>) {
        match command {
            Command::Stop { .. } => unreachable!("handled by run"),
            Command::Resign { done } => {
                let was_leader = self.engine.role() == Role::Leader;
                let outputs = self.engine.resign(self.clock.now());
                self.act(outputs);
                let _ = done.send(was_leader);
            }
            Command::Transfer { to, done } => {
                let _ = done.send(self.transfer(&to));
            }
            Command::Fault { fault, done } => {
                let result = self.apply_fault(fault, inbox);
                // A clock-rate change moves the lease's real end too, so republish all of it.
                let (active, rate) = (self.faults.active(), self.faults.clock_rate());
                self.publish_state(|s| {
                    s.faults = active;
                    s.clock_rate = rate;
                });
                let _ = done.send(result);
            }
        }
    }

    /// Hands leadership to `to`, which must follow the transfer-target rule and be connected
    /// (a peer that cannot hear the `TimeoutNow` could not take over).
    fn transfer(&mut self, to: &str) -> Result<(), TransferRefused> {
        self.cfg.engine.transfer_target(to).map_err(TransferRefused::Target)?;
        if self.shared.read().peers.get(to).is_some_and(|p| !p.connected) {
            return Err(TransferRefused::Target(quorate_engine::ConfigError::new(format!(
                "to: {} is not connected to {}; it could not take over",
                py_str(to),
                py_str(&self.cfg.engine.id)
            ))));
        }
        match self.engine.transfer_leadership(self.clock.now(), to) {
            Ok(outputs) => {
                self.act(outputs);
                Ok(())
            }
            Err(TransferError::NotLeader) => Err(TransferRefused::NotLeader),
            Err(e @ TransferError::UnknownPeer(_)) => {
                Err(TransferRefused::Target(quorate_engine::ConfigError::new(format!("to: {e}"))))
            }
        }
    }

    fn apply_fault(
        &mut self,
        fault: FaultCommand,
        inbox: &mut mpsc::Receiver<(NodeId, Message)>,
    ) -> Result<(), quorate_engine::ConfigError> {
        match fault {
            FaultCommand::Isolate => self.faults.isolate(),
            FaultCommand::Partition(peers) => self.faults.partition(peers),
            FaultCommand::Drop { rate, peers } => self.faults.drop(rate, peers)?,
            FaultCommand::Delay { delay, jitter, peers } => self.faults.delay(delay, jitter, peers),
            FaultCommand::Duplicate { rate, peers } => self.faults.duplicate(rate, peers)?,
            FaultCommand::Pause => self.faults.pause(),
            FaultCommand::Resume => self.resume(inbox),
            FaultCommand::ClockRate(rate) => {
                self.faults.set_clock_rate(rate)?;
                self.clock.set_rate(rate);
            }
            FaultCommand::GroupPartition(peers) => self.faults.set_group_partition(peers.into_iter().collect()),
            FaultCommand::Heal => self.faults.heal(),
            FaultCommand::InjectPanic => panic!("injected by a test (InjectPanic)"),
            FaultCommand::Clear => {
                self.resume(inbox);
                self.faults.clear();
                self.clock.set_rate(1.0);
            }
        }
        Ok(())
    }

    /// Handles what queued while paused, in order, then lets overdue timers fire.
    fn resume(&mut self, inbox: &mut mpsc::Receiver<(NodeId, Message)>) {
        if !self.faults.is_paused() {
            return;
        }
        self.faults.resume();
        while let Ok((from, message)) = inbox.try_recv() {
            self.receive(from, message);
        }
        self.on_deadline();
    }

    fn receive(&mut self, from: NodeId, message: Message) {
        if !self.faults.allows(&from) || self.storage_error.is_some() {
            // A degraded node must not vote: it could not remember the vote.
            self.shared.bump(&self.shared.counters.messages_dropped);
            return;
        }
        if !self.engine.plausible(&message) {
            let why = Rejection::ImplausibleTerm { ours: self.engine.term(), theirs: message.term() };
            return self.shared.refuse(&self.cfg.engine.id, &from, &why);
        }
        self.shared.bump(&self.shared.counters.messages_received);
        let now = Instant::now();
        let outputs = self.engine.step(self.clock.now(), &from, message);
        self.carry_out(outputs);
        self.publish_state(|s| {
            if let Some(p) = s.peers.get_mut(&from) {
                p.last_contact = Some(now);
            }
        });
    }

    /// Carries out one batch of outputs in order; the caller publishes the new state (which also
    /// queues the batch's events). If the state cannot be made durable, nothing more of the batch
    /// is carried out: a vote the node cannot remember must never leave it.
    fn carry_out(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Persist(hard) => {
                    if let Err(e) = self.save(&hard) {
                        return self.storage_failed(e);
                    }
                    self.durable_hard = hard;
                }
                Output::Send { to, message } => self.send(to, message),
                Output::Event(e) => self.event(e),
            }
        }
    }

    fn save(&self, hard: &HardState) -> Result<(), super::durable::DurableError> {
        match &self.durable {
            // An fsync takes milliseconds: let the runtime move other nodes' tasks off this worker.
            Some(d) => tokio::task::block_in_place(|| d.save(hard)),
            None => Ok(()),
        }
    }

    /// Carries out a batch and publishes the resulting state.
    fn act(&mut self, outputs: Vec<Output>) {
        self.carry_out(outputs);
        self.publish_state(|_| {});
    }

    /// The disk refused a write: close any leadership (reason "storage"), forget the volatile
    /// state the engine built on the lost write, and wait for the disk (see `retry_storage`).
    fn storage_failed(&mut self, e: super::durable::DurableError) {
        let message = e.to_string();
        if let Some(suppressed) = self.storage_log.admit("storage", Instant::now()) {
            log::error!(
                "{}: cannot persist term and vote, not voting or campaigning until the disk takes it: {message}{}",
                self.cfg.engine.id,
                suppressed_note(suppressed)
            );
        }
        if let Some(term) = self.leading.take() {
            self.pending.push(EventRecord::new(EventKind::Demoted, term, None, Some(DemoteReason::Storage)));
        }
        self.storage_error = Some(message);
        self.storage_retry_at = tokio::time::Instant::now() + STORAGE_RETRY;
        self.engine = self.fresh_engine();
    }

    /// Writes the last durable state again; once the disk takes it, the node starts over from it.
    fn retry_storage(&mut self) {
        let hard = self.durable_hard.clone();
        if let Err(e) = self.save(&hard) {
            let message = e.to_string();
            if let Some(suppressed) = self.storage_log.admit("storage", Instant::now()) {
                log::error!("{}: still cannot persist: {message}{}", self.cfg.engine.id, suppressed_note(suppressed));
            }
            self.storage_error = Some(message);
            self.storage_retry_at = tokio::time::Instant::now() + STORAGE_RETRY;
            self.publish_state(|_| {});
            return;
        }
        log::warn!("{}: the state can be persisted again; the node takes part in elections again", self.cfg.engine.id);
        self.storage_log.clear("storage");
        self.storage_error = None;
        self.engine = self.fresh_engine();
        let outputs = self.engine.tick(self.clock.now());
        self.act(outputs);
    }

    /// An engine restarted from the last durable state: as after a crash, it grants no vote for
    /// a minimum election timeout.
    fn fresh_engine(&mut self) -> Engine {
        self.boots += 1;
        let cfg =
            Config { seed: quorate_engine::seed::mix(self.cfg.engine.seed, self.boots), ..self.cfg.engine.clone() };
        Engine::new(cfg, self.durable_hard.clone())
    }

    fn send(&mut self, to: NodeId, message: Message) {
        let fate = self.faults.fate(&to, &mut self.rng);
        let Some(outbox) = self.outboxes.get(&to) else { return };
        if fate.delays.is_empty() {
            self.shared.bump(&self.shared.counters.messages_dropped);
            return;
        }
        for delay in fate.delays {
            self.shared.bump(&self.shared.counters.messages_sent);
            if delay.is_zero() {
                if outbox.try_send((Instant::now(), message.clone())).is_err() {
                    self.shared.bump(&self.shared.counters.messages_dropped);
                }
            } else if self.delayed.fetch_add(1, Ordering::Relaxed) < MAX_DELAYED {
                let (outbox, delayed, message) = (outbox.clone(), self.delayed.clone(), message.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = outbox.try_send((Instant::now(), message));
                    delayed.fetch_sub(1, Ordering::Relaxed);
                });
            } else {
                self.delayed.fetch_sub(1, Ordering::Relaxed);
                self.shared.bump(&self.shared.counters.messages_dropped);
            }
        }
    }

    fn event(&mut self, e: quorate_engine::Event) {
        let c = &self.shared.counters;
        match e.kind {
            EventKind::ElectionStarted => self.shared.bump(&c.elections_started),
            EventKind::Elected => {
                self.shared.bump(&c.elections_won);
                self.leading = Some(e.term);
            }
            EventKind::Demoted => self.leading = None,
            EventKind::LeaderChanged => self.shared.bump(&c.leader_changes),
            EventKind::TermChanged => {}
        }
        self.pending.push(EventRecord::new(e.kind, e.term, e.leader, e.reason));
    }

    /// Publishes the engine's state, and whatever `more` adds, under one lock; then queues the
    /// events of the batch.
    fn publish_state(&mut self, more: impl FnOnce(&mut Snapshot)) {
        let state = self.engine.state();
        let lease_until = state.lease_expiry.map(|e| self.clock.real(e));
        let last_heartbeat = state.leader_contact.map(|c| self.clock.real(c));
        let (health, last_error) = match &self.storage_error {
            Some(e) => (Health::Degraded, Some(e.clone())),
            None => (Health::Ok, None),
        };
        let events = std::mem::take(&mut self.pending);
        let (engine, rate) = (&self.engine, self.faults.clock_rate());
        self.shared.publish_with_events(
            |s| {
                more(s);
                s.votes = engine.vote_counts();
                for (id, p) in s.peers.iter_mut() {
                    // Measured on this node's clock: a clock running at `rate` reads rate x real time.
                    p.round_trip = engine
                        .round_trip(id)
                        .map(|r| RoundTrip { smoothed: r.smoothed.div_f64(rate), last: r.last.div_f64(rate) });
                }
                s.role = Some(state.role);
                s.term = state.term;
                s.voted_for = state.voted_for;
                s.leader = state.leader;
                s.lease_until = lease_until;
                s.last_heartbeat = last_heartbeat;
                s.health = health;
                if last_error.is_some() {
                    s.last_error = last_error;
                }
            },
            events,
        );
    }

    /// Waits until every outbox is empty (the dialers took the messages), at most `limit`.
    async fn flush(&self, limit: Duration) {
        let until = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < until {
            if self.outboxes.values().all(|o| o.capacity() == o.max_capacity()) {
                tokio::time::sleep(Duration::from_millis(10)).await; // let the last write finish
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
