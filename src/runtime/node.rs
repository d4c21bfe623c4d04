//! One networked node: a driver task that owns the engine and carries out its outputs in order
//! (persist and fsync, then sends through the fault layer, then events), the TCP transport
//! (an acceptor for inbound connections and one dialer per peer), and the snapshot that Python
//! reads without waiting on the engine.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::Framed;

use super::durable::{DurableError, DurableState};
use super::wire::{self, Auth, Rejection};
use crate::engine::{Config, EventKind, HardState, Message, NodeId, Output, Raft, Role, Term, TransferError};
use crate::faults::{Faults, Peers};

/// Messages waiting for the engine; when it is paused or slow, more are dropped, as a full socket
/// buffer would.
const INBOX: usize = 1024;
/// Messages waiting for one peer's connection.
const OUTBOX: usize = 256;
/// Messages held back by a delay fault at once.
const MAX_DELAYED: u64 = 4096;
/// Events waiting for the dispatcher thread; past this they are dropped and counted.
const MAX_PENDING_EVENTS: usize = 65_536;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long a graceful stop lets the hand-off message reach the wire.
const HANDOFF_FLUSH: Duration = Duration::from_millis(200);

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

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error(transparent)]
    Durable(#[from] DurableError),
}

/// One event as the node saw it, stamped on the shared monotonic clock and the wall clock.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub kind: EventKind,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub fencing_token: Option<Term>,
    pub at: Instant,
    pub wall: SystemTime,
}

#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    pub address: String,
    pub connected: bool,
    pub last_contact: Option<Instant>,
}

/// What the node publishes on every transition; readers never wait on the engine.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub role: Option<Role>,
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
    /// The real instant the lease ends (already converted from the node's possibly scaled clock).
    pub lease_until: Option<Instant>,
    pub last_heartbeat: Option<Instant>,
    pub peers: BTreeMap<NodeId, PeerInfo>,
    pub faults: Vec<(&'static str, String)>,
}

impl Snapshot {
    pub fn is_leader(&self, now: Instant) -> bool {
        self.role == Some(Role::Leader) && self.lease_until.is_some_and(|u| now < u)
    }
}

#[derive(Debug, Default)]
pub struct Counters {
    pub elections_started: AtomicU64,
    pub elections_won: AtomicU64,
    pub leader_changes: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_rejected: AtomicU64,
    pub messages_dropped: AtomicU64,
}

impl Counters {
    /// Every counter by the name `Node.status()` and the metrics give it.
    pub fn values(&self) -> [(&'static str, u64); 7] {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("elections_started", get(&self.elections_started)),
            ("elections_won", get(&self.elections_won)),
            ("leader_changes", get(&self.leader_changes)),
            ("messages_sent", get(&self.messages_sent)),
            ("messages_received", get(&self.messages_received)),
            ("messages_rejected", get(&self.messages_rejected)),
            ("messages_dropped", get(&self.messages_dropped)),
        ]
    }
}

/// Shared between the node's tasks and its readers.
#[derive(Debug)]
pub struct Shared {
    pub snapshot: Mutex<Snapshot>,
    /// Notified whenever the snapshot changes or the node stops: blocking waits sleep on it.
    pub changed: Condvar,
    pub counters: Counters,
    pub events: Mutex<VecDeque<EventRecord>>,
    pub events_ready: Condvar,
    /// Set once the node has stopped: event waits then return as soon as the queue is empty.
    pub stopped: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn new(peers: BTreeMap<NodeId, PeerInfo>) -> Shared {
        Shared {
            snapshot: Mutex::new(Snapshot {
                role: None,
                term: 0,
                voted_for: None,
                leader: None,
                lease_until: None,
                last_heartbeat: None,
                peers,
                faults: Vec::new(),
            }),
            changed: Condvar::new(),
            counters: Counters::default(),
            events: Mutex::new(VecDeque::new()),
            events_ready: Condvar::new(),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn publish(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut s = self.snapshot.lock().expect("snapshot lock");
        f(&mut s);
        drop(s);
        self.changed.notify_all();
    }

    fn push_event(&self, e: EventRecord) {
        let mut q = self.events.lock().expect("events lock");
        if q.len() >= MAX_PENDING_EVENTS {
            log::error!("event queue full: dropping {:?} (a callback is far too slow)", e.kind);
            return;
        }
        q.push_back(e);
        drop(q);
        self.events_ready.notify_all();
    }

    /// The next event, waiting up to `timeout`; None on timeout, or at once when the node has
    /// stopped and every event has been taken.
    pub fn next_event(&self, timeout: Duration) -> Option<EventRecord> {
        let q = self.events.lock().expect("events lock");
        let (mut q, _) = self
            .events_ready
            .wait_timeout_while(q, timeout, |q| q.is_empty() && !self.stopped.load(Ordering::Acquire))
            .expect("events lock");
        q.pop_front()
    }

    fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A fault request from the outside (Python's `node.faults`).
#[derive(Debug, Clone)]
pub enum FaultCommand {
    Isolate,
    Partition(Vec<NodeId>),
    Drop { rate: f64, peers: Peers },
    Delay { delay: Duration, jitter: Duration, peers: Peers },
    Duplicate { rate: f64, peers: Peers },
    Pause,
    Resume,
    ClockRate(f64),
    Heal,
}

enum Command {
    Stop { graceful: bool, done: oneshot::Sender<()> },
    Resign { done: std::sync::mpsc::Sender<bool> },
    Transfer { to: NodeId, done: std::sync::mpsc::Sender<Result<(), TransferError>> },
    Fault { fault: FaultCommand, done: std::sync::mpsc::Sender<Result<(), crate::engine::ConfigError>> },
}

/// A started node. Dropping it without `stop` or `crash` stops it abruptly.
pub struct RunningNode {
    commands: mpsc::Sender<Command>,
    shutdown: watch::Sender<bool>,
    pub shared: Arc<Shared>,
    pub local_addr: SocketAddr,
    driver: Option<tokio::task::JoinHandle<()>>,
}

/// The process-wide runtime: created on the first start, two worker threads, only the features used.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("quorate-io")
            .enable_io()
            .enable_time()
            .build()
            .expect("the tokio runtime starts")
    })
}

/// A cheap, cloneable way to send commands to a running node; usable without holding whatever
/// owns the `RunningNode`.
#[derive(Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
}

impl NodeHandle {
    fn command<T>(&self, make: impl FnOnce(std::sync::mpsc::Sender<T>) -> Command, timeout: Duration) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.commands.try_send(make(tx)).ok()?;
        rx.recv_timeout(timeout).ok()
    }

    pub fn resign(&self) -> bool {
        self.command(|done| Command::Resign { done }, Duration::from_secs(5)).unwrap_or(false)
    }

    pub fn transfer_leadership(&self, to: &str) -> Result<(), TransferError> {
        self.command(|done| Command::Transfer { to: to.to_string(), done }, Duration::from_secs(5))
            .unwrap_or(Err(TransferError::NotLeader))
    }

    pub fn fault(&self, fault: FaultCommand) -> Result<(), crate::engine::ConfigError> {
        self.command(|done| Command::Fault { fault, done }, Duration::from_secs(5))
            .unwrap_or_else(|| Err(crate::engine::ConfigError::new("faults: the node is not running")))
    }
}

impl RunningNode {
    pub fn handle(&self) -> NodeHandle {
        NodeHandle { commands: self.commands.clone() }
    }

    /// Loads the durable state, binds the listener (a busy port fails here, at once) and starts
    /// the node's tasks on the shared runtime.
    pub fn start(cfg: NodeConfig) -> Result<RunningNode, StartError> {
        let durable = cfg.data_dir.as_ref().map(|d| DurableState::new(d, &cfg.engine.id, &cfg.cluster));
        let hard = match &durable {
            Some(d) => d.load()?,
            None => HardState::default(),
        };
        let bind_err = |source| StartError::Bind { addr: cfg.bind.clone(), source };
        let std_listener = std::net::TcpListener::bind(&cfg.bind).map_err(bind_err)?;
        std_listener.set_nonblocking(true).map_err(bind_err)?;
        let local_addr = std_listener.local_addr().map_err(bind_err)?;

        let peers = cfg
            .addresses
            .iter()
            .filter(|(id, _)| **id != cfg.engine.id)
            .map(|(id, a)| (id.clone(), PeerInfo { address: a.clone(), ..PeerInfo::default() }))
            .collect();
        let shared = Arc::new(Shared::new(peers));
        let (commands, command_rx) = mpsc::channel(64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX);
        let auth = Auth::new(cfg.secret.clone());

        let rt = runtime();
        let _guard = rt.enter();
        let listener = TcpListener::from_std(std_listener).map_err(bind_err)?;
        rt.spawn(accept_loop(listener, cfg.clone(), auth.clone(), inbox_tx, shared.clone(), shutdown_rx.clone()));
        let mut outboxes: BTreeMap<NodeId, Outbox> = BTreeMap::new();
        for (peer, address) in cfg.addresses.iter().filter(|(id, _)| **id != cfg.engine.id) {
            let (tx, rx) = mpsc::channel(OUTBOX);
            outboxes.insert(peer.clone(), tx);
            let dial = Dialer {
                me: cfg.engine.id.clone(),
                peer: peer.clone(),
                address: address.clone(),
                cluster: cfg.cluster.clone(),
                auth: auth.clone(),
                shared: shared.clone(),
                stale_after: cfg.engine.timing.election_timeout.0,
                seed: crate::sim::mix(cfg.engine.seed, outboxes.len() as u64),
            };
            rt.spawn(dial.run(rx, shutdown_rx.clone()));
        }
        let driver = Driver::new(cfg, hard, durable, shared.clone(), outboxes);
        let driver = rt.spawn(driver.run(command_rx, inbox_rx, shutdown_rx));
        Ok(RunningNode { commands, shutdown, shared, local_addr, driver: Some(driver) })
    }

    /// Stops the node: a graceful stop hands leadership off first. Blocks (up to `timeout`) until
    /// every task has ended; returns whether it ended in time.
    pub fn stop(&mut self, graceful: bool, timeout: Duration) -> bool {
        let (done, wait) = oneshot::channel();
        let asked = self.commands.try_send(Command::Stop { graceful, done }).is_ok();
        let rt = runtime();
        let finished = rt.block_on(async {
            if asked {
                let _ = tokio::time::timeout(timeout, wait).await;
            }
            let _ = self.shutdown.send(true);
            match self.driver.take() {
                Some(d) => tokio::time::timeout(timeout, d).await.is_ok(),
                None => true,
            }
        });
        self.mark_stopped();
        finished
    }

    /// Abrupt stop: no hand-off, connections reset, volatile state lost.
    pub fn crash(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(d) = self.driver.take() {
            d.abort();
            let _ = runtime().block_on(d);
        }
        self.mark_stopped();
    }

    fn mark_stopped(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        drop(self.shared.events.lock().expect("events lock"));
        self.shared.events_ready.notify_all();
        self.shared.publish(|s| {
            s.role = None;
            s.leader = None;
            s.lease_until = None;
            for p in s.peers.values_mut() {
                p.connected = false;
            }
        });
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(d) = self.driver.take() {
            d.abort();
        }
    }
}

/// A node's clock: `local = base_local + (real - base_real) * rate`; the clock-rate fault changes
/// `rate` without a jump.
#[derive(Debug, Clone, Copy)]
struct LocalClock {
    base_real: Instant,
    base_local: Duration,
    rate: f64,
}

impl LocalClock {
    fn now(&self) -> Duration {
        self.at(Instant::now())
    }

    fn at(&self, real: Instant) -> Duration {
        self.base_local + real.saturating_duration_since(self.base_real).mul_f64(self.rate)
    }

    fn real(&self, local: Duration) -> Instant {
        self.base_real + local.saturating_sub(self.base_local).div_f64(self.rate)
    }

    fn set_rate(&mut self, rate: f64) {
        let now = Instant::now();
        self.base_local = self.at(now);
        self.base_real = now;
        self.rate = rate;
    }
}

type Outbox = mpsc::Sender<(Instant, Message)>;
type Connection = Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>;

struct Driver {
    cfg: NodeConfig,
    engine: Raft,
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
}

impl Driver {
    fn new(
        cfg: NodeConfig,
        hard: HardState,
        durable: Option<DurableState>,
        shared: Arc<Shared>,
        outboxes: BTreeMap<NodeId, Outbox>,
    ) -> Driver {
        let engine = Raft::new(cfg.engine.clone(), hard.clone());
        let rng = Pcg64Mcg::seed_from_u64(crate::sim::mix(cfg.engine.seed, 0xfa17));
        Driver {
            engine,
            durable,
            durable_hard: hard,
            clock: LocalClock { base_real: Instant::now(), base_local: Duration::ZERO, rate: 1.0 },
            faults: Faults::default(),
            rng,
            shared,
            outboxes,
            delayed: Arc::new(AtomicU64::new(0)),
            boots: 0,
            cfg,
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut inbox: mpsc::Receiver<(NodeId, Message)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let outputs = self.engine.tick(self.clock.now());
        self.act(outputs);
        loop {
            let paused = self.faults.is_paused();
            let deadline = self
                .engine
                .next_deadline()
                .map(|d| tokio::time::Instant::from_std(self.clock.real(d)))
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.changed() => break,
                command = commands.recv() => match command {
                    None => break,
                    Some(Command::Stop { graceful, done }) => {
                        if graceful && self.engine.role() == Role::Leader {
                            let outputs = self.engine.resign(self.clock.now());
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
                _ = tokio::time::sleep_until(deadline), if !paused => {
                    let outputs = self.engine.tick(self.clock.now());
                    self.act(outputs);
                }
            }
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
                let result = self.engine.transfer_leadership(self.clock.now(), &to);
                let _ = done.send(result.map(|outputs| self.act(outputs)));
            }
            Command::Fault { fault, done } => {
                let result = self.apply_fault(fault, inbox);
                // A clock-rate change moves the lease's real end too, so republish all of it.
                let active = self.faults.active();
                self.publish_state(|s| s.faults = active);
                let _ = done.send(result);
            }
        }
    }

    fn apply_fault(
        &mut self,
        fault: FaultCommand,
        inbox: &mut mpsc::Receiver<(NodeId, Message)>,
    ) -> Result<(), crate::engine::ConfigError> {
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
            FaultCommand::Heal => {
                self.resume(inbox);
                self.faults.heal();
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
        let outputs = self.engine.tick(self.clock.now());
        self.act(outputs);
    }

    fn receive(&mut self, from: NodeId, message: Message) {
        if !self.faults.allows(&from) {
            self.shared.bump(&self.shared.counters.messages_dropped);
            return;
        }
        self.shared.bump(&self.shared.counters.messages_received);
        let now = Instant::now();
        let is_heartbeat = matches!(message, Message::Heartbeat { .. });
        let outputs = self.engine.step(self.clock.now(), &from, message);
        if self.carry_out(outputs) {
            self.publish_state(|s| {
                if let Some(p) = s.peers.get_mut(&from) {
                    p.last_contact = Some(now);
                }
                if is_heartbeat {
                    s.last_heartbeat = Some(now);
                }
            });
        }
    }

    /// Carries out one batch of outputs in order; the caller publishes the new state. If the state
    /// cannot be made durable, nothing of the batch is sent and the engine restarts from the last
    /// durable state (a vote it cannot remember must never leave the node); then this returns
    /// false, the restart having published already.
    #[must_use]
    fn carry_out(&mut self, outputs: Vec<Output>) -> bool {
        for output in outputs {
            match output {
                Output::Persist(hard) => {
                    if let Some(d) = &self.durable {
                        // An fsync takes milliseconds: let the runtime move other nodes' tasks
                        // off this worker meanwhile.
                        if let Err(e) = tokio::task::block_in_place(|| d.save(&hard)) {
                            log::error!("{}: cannot persist term and vote, restarting the engine from the last durable state: {e}", self.cfg.engine.id);
                            self.restart_engine();
                            return false;
                        }
                    }
                    self.durable_hard = hard;
                }
                Output::Send { to, message } => self.send(to, message),
                Output::Event(e) => self.event(e),
            }
        }
        true
    }

    /// Carries out a batch and publishes the resulting state.
    fn act(&mut self, outputs: Vec<Output>) {
        if self.carry_out(outputs) {
            self.publish_state(|_| {});
        }
    }

    fn restart_engine(&mut self) {
        self.boots += 1;
        let cfg = Config { seed: crate::sim::mix(self.cfg.engine.seed, self.boots), ..self.cfg.engine.clone() };
        self.engine = Raft::new(cfg, self.durable_hard.clone());
        let outputs = self.engine.tick(self.clock.now());
        self.act(outputs);
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

    fn event(&mut self, e: crate::engine::Event) {
        let c = &self.shared.counters;
        match e.kind {
            EventKind::ElectionStarted => self.shared.bump(&c.elections_started),
            EventKind::Elected => self.shared.bump(&c.elections_won),
            EventKind::LeaderChanged => self.shared.bump(&c.leader_changes),
            _ => {}
        }
        let fencing_token = matches!(e.kind, EventKind::Elected | EventKind::Demoted).then_some(e.term);
        self.shared.push_event(EventRecord {
            kind: e.kind,
            term: e.term,
            leader: e.leader,
            fencing_token,
            at: Instant::now(),
            wall: SystemTime::now(),
        });
    }

    /// Publishes the engine's state, and whatever `more` adds, under one lock.
    fn publish_state(&self, more: impl FnOnce(&mut Snapshot)) {
        let state = self.engine.state();
        let lease_until = state.lease_expiry.map(|e| self.clock.real(e));
        self.shared.publish(|s| {
            more(s);
            s.role = Some(state.role);
            s.term = state.term;
            s.voted_for = state.voted_for;
            s.leader = state.leader;
            s.lease_until = lease_until;
        });
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

async fn accept_loop(
    listener: TcpListener,
    cfg: NodeConfig,
    auth: Auth,
    inbox: mpsc::Sender<(NodeId, Message)>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_inbound(stream, cfg.clone(), auth.clone(), inbox.clone(), shared.clone(), shutdown.clone()));
                }
                Err(e) => {
                    log::warn!("{}: accept failed: {e}", cfg.engine.id);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// One inbound connection: handshake, then authenticated messages into the inbox. Anything that
/// fails a check is counted and ends the connection; it never reaches the engine.
async fn serve_inbound(
    stream: TcpStream,
    cfg: NodeConfig,
    auth: Auth,
    inbox: mpsc::Sender<(NodeId, Message)>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let me = cfg.engine.id.as_str();
    let reject = |why: Rejection| {
        shared.bump(&shared.counters.messages_rejected);
        log::warn!("{me}: refused a peer frame: {why}");
    };
    let mut framed = Framed::new(stream, wire::codec());
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next()).await {
        Ok(Some(Ok(bytes))) => wire::decode(&bytes),
        Ok(Some(Err(_))) => Err(Rejection::Malformed), // oversized or broken framing
        _ => return,
    };
    let (peer, dialer_nonce) = match hello.and_then(|h| auth.check_hello(h, &cfg.cluster, me, &cfg.engine.members)) {
        Ok(ok) => ok,
        Err(why) => return reject(why),
    };
    let nonce = wire::fresh_nonce();
    if framed.send(wire::encode(&auth.welcome(&peer, me, dialer_nonce, nonce))).await.is_err() {
        return;
    }
    let mut session = auth.session(&peer, me, dialer_nonce, nonce);
    loop {
        let frame = tokio::select! {
            _ = shutdown.changed() => return,
            frame = framed.next() => frame,
        };
        let message = match frame {
            None => return,
            Some(Err(_)) => return reject(Rejection::Malformed),
            Some(Ok(bytes)) => match wire::decode(&bytes).and_then(|f| session.open(f)) {
                Ok(m) => m,
                Err(why) => return reject(why),
            },
        };
        if inbox.try_send((peer.clone(), message)).is_err() {
            shared.bump(&shared.counters.messages_dropped);
        }
    }
}

struct Dialer {
    me: NodeId,
    peer: NodeId,
    address: String,
    cluster: String,
    auth: Auth,
    shared: Arc<Shared>,
    /// Messages older than this are dropped rather than sent late after a reconnect.
    stale_after: Duration,
    seed: u64,
}

impl Dialer {
    /// Keeps one outbound connection to the peer, reconnecting with capped exponential backoff and
    /// jitter, and writes the peer's outbox to it.
    async fn run(self, mut outbox: mpsc::Receiver<(Instant, Message)>, mut shutdown: watch::Receiver<bool>) {
        let mut rng = Pcg64Mcg::seed_from_u64(self.seed);
        let mut backoff = BACKOFF_MIN;
        loop {
            let connected = tokio::select! {
                _ = shutdown.changed() => return,
                c = self.connect() => c,
            };
            match connected {
                Ok((framed, session)) => {
                    backoff = BACKOFF_MIN;
                    self.set_connected(true);
                    let ended = self.pump(framed, session, &mut outbox, &mut shutdown).await;
                    self.set_connected(false);
                    if ended {
                        return;
                    }
                }
                Err(e) => log::debug!("{} -> {}: {e}", self.me, self.peer),
            }
            // While disconnected, what queued goes stale; drop it rather than deliver it late.
            while outbox.try_recv().is_ok() {
                self.shared.bump(&self.shared.counters.messages_dropped);
            }
            let jitter = backoff.mul_f64(rng.random_range(0.0..0.5));
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(backoff + jitter) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect(&self) -> Result<(Connection, wire::Session), String> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.address))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut framed = Framed::new(stream, wire::codec());
        let nonce = wire::fresh_nonce();
        let hello = self.auth.hello(&self.cluster, &self.me, &self.peer, nonce);
        framed.send(wire::encode(&hello)).await.map_err(|e| format!("hello: {e}"))?;
        let welcome = match tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next()).await {
            Ok(Some(Ok(bytes))) => wire::decode(&bytes).map_err(|e| e.to_string())?,
            _ => return Err("no welcome: the peer refused the handshake".to_string()),
        };
        let their_nonce = self.auth.check_welcome(welcome, &self.me, &self.peer, nonce).map_err(|e| {
            self.shared.bump(&self.shared.counters.messages_rejected);
            e.to_string()
        })?;
        Ok((framed, self.auth.session(&self.me, &self.peer, nonce, their_nonce)))
    }

    /// Writes messages until the connection fails (false) or the node shuts down (true).
    async fn pump(
        &self,
        mut framed: Connection,
        mut session: wire::Session,
        outbox: &mut mpsc::Receiver<(Instant, Message)>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        loop {
            let next = tokio::select! {
                _ = shutdown.changed() => return true,
                // The peer never writes on this connection: a read ending means it closed.
                _ = framed.next() => return false,
                next = outbox.recv() => next,
            };
            let Some((queued_at, message)) = next else { return true };
            if queued_at.elapsed() > self.stale_after {
                self.shared.bump(&self.shared.counters.messages_dropped);
                continue;
            }
            let frame = session.seal(message);
            if framed.send(wire::encode(&frame)).await.is_err() {
                return false;
            }
        }
    }

    fn set_connected(&self, connected: bool) {
        self.shared.publish(|s| {
            if let Some(p) = s.peers.get_mut(&self.peer) {
                p.connected = connected;
            }
        });
    }
}
