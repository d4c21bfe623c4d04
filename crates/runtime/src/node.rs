//! One networked node's life: starting it (data_dir, listener, the driver, the acceptor and the
//! dialers on the shared runtime), the handle that sends it commands, and stopping it, after which
//! its open leadership, if any, is closed with a `demoted` event.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use super::command::{Command, FaultCommand, Outbox, TransferRefused};
use super::config::NodeConfig;
use super::driver::Driver;
use super::durable::{DurableError, DurableState};
use super::record::PeerInfo;
use super::shared::{Health, Shared};
use super::transport::{accept_loop, Dialer};
use super::wire::Auth;
use quorate_engine::{DemoteReason, HardState, NodeId};

/// Messages waiting for the engine; when it is paused or slow, more are dropped, as a full socket
/// buffer would.
const INBOX: usize = 1024;
/// Messages waiting for one peer's connection.
const OUTBOX: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error(transparent)]
    Durable(#[from] DurableError),
}

/// A started node. Dropping it without `stop` or `crash` stops it abruptly.
pub struct RunningNode {
    commands: mpsc::Sender<Command>,
    shutdown: watch::Sender<bool>,
    pub shared: Arc<Shared>,
    pub local_addr: SocketAddr,
    driver: Option<tokio::task::JoinHandle<()>>,
    /// Owns the listening socket: a stop waits for it, so the address is free when stop returns.
    acceptor: Option<tokio::task::JoinHandle<()>>,
}

/// The process-wide runtime: created on the first start, two worker threads, only the features used.
///
/// One per process, not one per program: a child made by fork() inherits the parent's runtime
/// without its threads (nothing would ever run on it), so a child gets a runtime of its own. The
/// parent's copy is leaked in the child: dropping it would wait for threads that do not exist.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    use std::sync::atomic::{AtomicPtr, AtomicU32};
    static OWNER: AtomicU32 = AtomicU32::new(0);
    static RUNTIME: AtomicPtr<tokio::runtime::Runtime> = AtomicPtr::new(std::ptr::null_mut());
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let pid = std::process::id();
    let current = || {
        let rt = RUNTIME.load(Ordering::Acquire);
        // SAFETY: a published runtime is leaked, so it lives for the rest of the process.
        (OWNER.load(Ordering::Acquire) == pid && !rt.is_null()).then(|| unsafe { &*rt })
    };
    if let Some(rt) = current() {
        return rt;
    }
    let _init = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = current() {
        return rt;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("quorate-io")
        .enable_io()
        .enable_time()
        .build()
        .expect("the tokio runtime starts");
    let rt: &'static tokio::runtime::Runtime = Box::leak(Box::new(rt));
    RUNTIME.store(rt as *const _ as *mut _, Ordering::Release);
    OWNER.store(pid, Ordering::Release);
    rt
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

    /// Hands leadership to `to`: `Target` if `to` breaks the transfer-target rule or is not
    /// connected, `NotLeader` if this node does not lead (or does not answer).
    pub fn transfer_leadership(&self, to: &str) -> Result<(), TransferRefused> {
        self.command(|done| Command::Transfer { to: to.to_string(), done }, Duration::from_secs(5))
            .unwrap_or(Err(TransferRefused::NotLeader))
    }

    pub fn fault(&self, fault: FaultCommand) -> Result<(), quorate_engine::ConfigError> {
        self.command(|done| Command::Fault { fault, done }, Duration::from_secs(5))
            .unwrap_or_else(|| Err(quorate_engine::ConfigError::new("faults: the node is not running")))
    }
}

impl RunningNode {
    pub fn handle(&self) -> NodeHandle {
        NodeHandle { commands: self.commands.clone() }
    }

    /// Takes the data_dir (lock, load, proven writable), binds the listener (a busy port fails
    /// here, at once) and starts the node's tasks on the shared runtime. `shared` outlives runs:
    /// the owner passes the same one to every start (see `new_shared`).
    pub fn start(cfg: NodeConfig, shared: Arc<Shared>) -> Result<RunningNode, StartError> {
        let (durable, hard) = match &cfg.data_dir {
            Some(dir) => {
                let (d, hard) = DurableState::open(dir, &cfg.engine.id, &cfg.cluster)?;
                (Some(d), hard)
            }
            None => (None, HardState::default()),
        };
        let bind_err = |source| StartError::Bind { addr: cfg.bind.clone(), source };
        let std_listener = std::net::TcpListener::bind(&cfg.bind).map_err(bind_err)?;
        std_listener.set_nonblocking(true).map_err(bind_err)?;
        let local_addr = std_listener.local_addr().map_err(bind_err)?;

        let (commands, command_rx) = mpsc::channel(64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX);
        let auth = Auth::rotating(cfg.secrets.clone());
        shared.begin_run(&hard);

        let rt = runtime();
        let _guard = rt.enter();
        let listener = TcpListener::from_std(std_listener).map_err(bind_err)?;
        let acceptor =
            rt.spawn(accept_loop(listener, cfg.clone(), auth.clone(), inbox_tx, shared.clone(), shutdown_rx.clone()));
        let mut outboxes: BTreeMap<NodeId, Outbox> = BTreeMap::new();
        for (peer, address) in cfg.addresses.iter().filter(|(id, _)| **id != cfg.engine.id) {
            let (tx, rx) = mpsc::channel(OUTBOX);
            outboxes.insert(peer.clone(), tx);
            let seed = quorate_engine::seed::mix(cfg.engine.seed, outboxes.len() as u64);
            let dial = Dialer::new(&cfg, peer, address, auth.clone(), shared.clone(), seed);
            rt.spawn(dial.run(rx, shutdown_rx.clone()));
        }
        let driver = Driver::new(cfg, hard, durable, shared.clone(), outboxes);
        let watched = shared.clone();
        let driver = rt.spawn(async move {
            // A panic is a bug of ours; the node must say so rather than look alive.
            let run = std::panic::AssertUnwindSafe(driver.run(command_rx, inbox_rx, shutdown_rx));
            if let Err(panic) = futures_util::FutureExt::catch_unwind(run).await {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_string());
                watched.fail(message);
            }
        });
        Ok(RunningNode { commands, shutdown, shared, local_addr, driver: Some(driver), acceptor: Some(acceptor) })
    }

    /// Stops the node: a graceful stop hands leadership off first. Blocks (up to `timeout`) until
    /// every task has ended; returns whether it ended in time (if not, it is ended abruptly).
    pub fn stop(&mut self, graceful: bool, timeout: Duration) -> bool {
        let (done, wait) = oneshot::channel();
        let asked = self.commands.try_send(Command::Stop { graceful, done }).is_ok();
        let rt = runtime();
        let finished = rt.block_on(async {
            if asked {
                let _ = tokio::time::timeout(timeout, wait).await;
            }
            let _ = self.shutdown.send(true);
            let mut in_time = true;
            for task in [self.driver.take(), self.acceptor.take()].into_iter().flatten() {
                in_time &= finish(task, timeout).await;
            }
            in_time
        });
        if self.shared.failure().is_none() {
            self.shared.end_run(DemoteReason::Stopped);
        } else {
            self.shared.publish(|s| s.health = Health::Stopped);
        }
        finished
    }

    /// Abrupt stop: no hand-off, connections reset, volatile state lost.
    pub fn crash(&mut self) {
        let _ = self.shutdown.send(true);
        for task in [self.driver.take(), self.acceptor.take()].into_iter().flatten() {
            task.abort();
            let _ = runtime().block_on(task);
        }
        self.shared.end_run(DemoteReason::Crashed);
    }
}

/// Waits for a task to end, at most `timeout`; then ends it. Returns whether it ended in time.
async fn finish(mut task: tokio::task::JoinHandle<()>, timeout: Duration) -> bool {
    match tokio::time::timeout(timeout, &mut task).await {
        Ok(_) => true,
        Err(_) => {
            task.abort();
            let _ = task.await;
            false
        }
    }
}

/// The state shared by every run of one node, with the peers' addresses filled in.
pub fn new_shared(cfg: &NodeConfig) -> Arc<Shared> {
    let peers = cfg
        .addresses
        .iter()
        .filter(|(id, _)| **id != cfg.engine.id)
        .map(|(id, a)| (id.clone(), PeerInfo { address: a.clone(), ..PeerInfo::default() }))
        .collect();
    Arc::new(Shared::new(peers))
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in [self.driver.take(), self.acceptor.take()].into_iter().flatten() {
            task.abort();
        }
    }
}
