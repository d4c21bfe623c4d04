//! What a node publishes for its readers: the state snapshot, the counters and the event queue.
//!
//! One `Shared` lives as long as the Python `Node` that owns it, across stops and restarts, so that
//! counters never go back, events of two runs queue in order for one dispatcher, and a waiter's
//! change counter stays meaningful. The order rule of the leadership contract lives here: a batch
//! of events is queued only after the state it describes has been published, so whoever hears of
//! a transition can already read it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::log_limit::{suppressed_note, LogLimiter};
use super::monitor::Monitor;
use super::record::{EventRecord, PeerInfo};
use super::wire::Rejection;
use quorate_engine::{DemoteReason, EventKind, HardState, NodeId, Role, Term, VoteCounts};

/// Events waiting for the dispatcher thread; past this they are dropped and counted.
const MAX_PENDING_EVENTS: usize = 65_536;

/// Whether the node can do its job: `Degraded` while it cannot make its state durable (it then
/// neither votes nor campaigns), `Stopped` when it does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    Degraded,
    Stopped,
    /// The engine's task died (a bug of ours): the node does nothing until stopped and started.
    Failed,
}

impl Health {
    pub fn name(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Degraded => "degraded",
            Health::Stopped => "stopped",
            Health::Failed => "failed",
        }
    }
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
    pub health: Health,
    pub last_error: Option<String>,
    /// The term of the leadership that an `elected` event opened and no `demoted` closed yet.
    pub leading: Option<Term>,
    /// The last leadership that ended: its term and why.
    pub ended: Option<(Term, DemoteReason)>,
    /// Bumped by every publish: a waiter that saw version v sleeps until it differs.
    pub version: u64,
    /// This node's clock rate (a fault), for the drift warning.
    pub clock_rate: f64,
    /// Tenures, leaderless gaps, election and leader-change rates.
    pub monitor: Monitor,
    /// Vote requests answered in earlier runs of this node, and in the current one.
    pub votes_before: VoteCounts,
    pub votes: VoteCounts,
}

impl Snapshot {
    fn new(peers: BTreeMap<NodeId, PeerInfo>) -> Snapshot {
        Snapshot {
            role: None,
            term: 0,
            voted_for: None,
            leader: None,
            lease_until: None,
            last_heartbeat: None,
            peers,
            faults: Vec::new(),
            health: Health::Stopped,
            last_error: None,
            leading: None,
            ended: None,
            version: 0,
            clock_rate: 1.0,
            monitor: Monitor::default(),
            votes_before: VoteCounts::default(),
            votes: VoteCounts::default(),
        }
    }

    /// Leader of an announced leadership, inside its lease: the only time to act as the leader.
    pub fn is_leader(&self, now: Instant) -> bool {
        self.role == Some(Role::Leader) && self.leading == Some(self.term) && self.lease_until.is_some_and(|u| now < u)
    }

    pub fn fencing_token(&self, now: Instant) -> Option<Term> {
        self.is_leader(now).then_some(self.term)
    }

    /// Vote requests this node answered since it was constructed (every run).
    pub fn votes_answered(&self) -> VoteCounts {
        self.votes_before.plus(&self.votes)
    }

    /// Time left on a lease that still holds.
    pub fn lease_remaining(&self, now: Instant) -> Option<Duration> {
        self.is_leader(now).then(|| self.lease_until.map(|u| u.saturating_duration_since(now))).flatten()
    }
}

/// Every counter by the name `Node.status()` and the metrics give it.
pub const COUNTER_NAMES: [&str; 7] = [
    "elections_started",
    "elections_won",
    "leader_changes",
    "messages_sent",
    "messages_received",
    "messages_rejected",
    "messages_dropped",
];

#[derive(Debug, Default)]
pub struct Counters {
    pub elections_started: AtomicU64,
    pub elections_won: AtomicU64,
    pub leader_changes: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_rejected: AtomicU64,
    pub messages_dropped: AtomicU64,
    /// `messages_rejected` split by why (wire::Rejection::reason).
    rejected_by_reason: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counters {
    pub fn values(&self) -> [(&'static str, u64); 7] {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let v = [
            get(&self.elections_started),
            get(&self.elections_won),
            get(&self.leader_changes),
            get(&self.messages_sent),
            get(&self.messages_received),
            get(&self.messages_rejected),
            get(&self.messages_dropped),
        ];
        std::array::from_fn(|i| (COUNTER_NAMES[i], v[i]))
    }

    pub fn rejected_by_reason(&self) -> BTreeMap<&'static str, u64> {
        self.rejected_by_reason.lock().expect("counters lock").clone()
    }

    pub fn reject(&self, reason: &'static str) {
        self.messages_rejected.fetch_add(1, Ordering::Relaxed);
        *self.rejected_by_reason.lock().expect("counters lock").entry(reason).or_insert(0) += 1;
    }
}

/// Shared between the node's tasks and its readers.
#[derive(Debug)]
pub struct Shared {
    snapshot: Mutex<Snapshot>,
    /// Notified whenever the snapshot changes: blocking waits sleep on it.
    changed: Condvar,
    /// Threads asleep on `changed`, counted under the snapshot lock. A notify is a syscall even
    /// with nobody waiting, and a leader publishes on every heartbeat round and every ack.
    change_waiters: AtomicUsize,
    pub counters: Counters,
    events: Mutex<VecDeque<EventRecord>>,
    events_ready: Condvar,
    /// True from a start until the run's last event (its `demoted`, if it led) is queued.
    running: AtomicBool,
    /// Authentication failures, logged at most once per peer address per window.
    pub auth_log: Mutex<LogLimiter>,
    /// Why this run's engine task died, if it did.
    failure: Mutex<Option<String>>,
}

impl Shared {
    pub fn new(peers: BTreeMap<NodeId, PeerInfo>) -> Shared {
        Shared {
            snapshot: Mutex::new(Snapshot::new(peers)),
            changed: Condvar::new(),
            change_waiters: AtomicUsize::new(0),
            counters: Counters::default(),
            events: Mutex::new(VecDeque::new()),
            events_ready: Condvar::new(),
            running: AtomicBool::new(false),
            auth_log: Mutex::new(LogLimiter::default()),
            failure: Mutex::new(None),
        }
    }

    pub fn read(&self) -> MutexGuard<'_, Snapshot> {
        self.snapshot.lock().expect("snapshot lock")
    }

    pub fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused frame or handshake by reason, and logs it with the peer's address at most
    /// once per window per address (`me` names this node in the log line).
    pub fn refuse(&self, me: &str, peer_address: &str, why: &Rejection) {
        self.counters.reject(why.reason());
        let admitted = self.auth_log.lock().expect("auth log lock").admit(peer_address, Instant::now());
        if let Some(suppressed) = admitted {
            log::warn!("{me}: refused a frame from {peer_address}: {why}{}", suppressed_note(suppressed));
        }
    }

    /// Changes the snapshot and wakes every waiter.
    pub fn publish(&self, f: impl FnOnce(&mut Snapshot)) {
        self.publish_with_events(f, Vec::new());
    }

    /// Changes the snapshot, then queues the events that describe the change: nobody can hear of
    /// a transition before they can read it.
    pub fn publish_with_events(&self, f: impl FnOnce(&mut Snapshot), events: Vec<EventRecord>) {
        let mut s = self.read();
        let before = s.leader.clone();
        f(&mut s);
        let after = s.leader.clone();
        s.monitor.observe(before.as_ref(), after.as_ref(), &events, Instant::now());
        for e in &events {
            match e.kind {
                EventKind::Elected => {
                    debug_assert!(s.leading.is_none(), "elected twice without demoted");
                    s.leading = Some(e.term);
                }
                EventKind::Demoted => {
                    debug_assert_eq!(s.leading, Some(e.term), "demoted without elected");
                    s.leading = None;
                    s.ended = e.reason.map(|r| (e.term, r));
                }
                _ => {}
            }
        }
        s.version += 1;
        // Read under the lock: a waiter registers under it before it sleeps, so none is missed.
        let wake = self.change_waiters.load(Ordering::Relaxed) > 0;
        drop(s);
        if wake {
            self.changed.notify_all();
        }
        if !events.is_empty() {
            let mut q = self.events.lock().expect("events lock");
            for e in events {
                if q.len() >= MAX_PENDING_EVENTS {
                    log::error!("event queue full: dropping {:?} (a callback is far too slow)", e.kind);
                    continue;
                }
                q.push_back(e);
            }
            drop(q);
            self.events_ready.notify_all();
        }
    }

    /// A new run begins from `hard` (the durable state just loaded): volatile state is reset,
    /// counters and queued events are kept, and term and vote read as on disk at once, before the
    /// engine's task publishes anything (a reader right after start() must not see term 0).
    pub fn begin_run(&self, hard: &HardState) {
        *self.failure.lock().expect("failure lock") = None;
        self.running.store(true, Ordering::Release);
        self.publish(|s| {
            s.role = Some(Role::Follower);
            s.term = hard.term;
            s.voted_for = hard.voted_for.clone();
            s.leader = None;
            s.lease_until = None;
            s.last_heartbeat = None;
            // A new engine counts from zero: keep what the earlier runs counted.
            s.votes_before = s.votes_answered();
            s.votes = VoteCounts::default();
            s.faults.clear();
            s.clock_rate = 1.0;
            s.monitor.begin_run(Instant::now());
            s.health = Health::Ok;
            for p in s.peers.values_mut() {
                p.connected = false;
                p.last_contact = None;
            }
        });
    }

    /// The run ended (its tasks are gone): publishes the stopped state and, if a leadership was
    /// still open, its `demoted` event with `reason`, so elected and demoted alternate however
    /// the run ended. Then the dispatcher may drain and finish.
    pub fn end_run(&self, reason: DemoteReason) {
        let open = self.read().leading;
        let events =
            open.map(|term| EventRecord::new(EventKind::Demoted, term, None, Some(reason))).into_iter().collect();
        self.publish_with_events(
            |s| {
                s.role = None;
                s.leader = None;
                s.lease_until = None;
                s.health = Health::Stopped;
                for p in s.peers.values_mut() {
                    p.connected = false;
                    p.round_trip = None;
                }
            },
            events,
        );
        let q = self.events.lock().expect("events lock");
        self.running.store(false, Ordering::Release);
        drop(q);
        self.events_ready.notify_all();
    }

    /// The engine's task died with `message`: the run ends as a crash does (its leadership, if
    /// any, closed with reason "crashed"), and the node reports health "failed" until stopped.
    pub fn fail(&self, message: String) {
        log::error!("the engine task died: {message}; the node stays stopped until stop() and start()");
        *self.failure.lock().expect("failure lock") = Some(message.clone());
        self.end_run(DemoteReason::Crashed);
        self.publish(|s| {
            s.health = Health::Failed;
            s.last_error = Some(format!("the engine task died: {message}"));
        });
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// The next event, waiting up to `timeout`; None on timeout, or at once when the node is not
    /// running and every event has been taken.
    pub fn next_event(&self, timeout: Duration) -> Option<EventRecord> {
        let q = self.events.lock().expect("events lock");
        let (mut q, _) = self
            .events_ready
            .wait_timeout_while(q, timeout, |q| q.is_empty() && self.is_running())
            .expect("events lock");
        q.pop_front()
    }

    /// Not running and no event left: the dispatcher may end.
    pub fn drained(&self) -> bool {
        let q = self.events.lock().expect("events lock");
        q.is_empty() && !self.is_running()
    }

    /// Waits until the snapshot's version differs from `seen`, at most `timeout`, and returns the
    /// version now. A lease that holds also ends the wait when it runs out: its end changes
    /// `is_leader` without any publish.
    pub fn wait_changed(&self, seen: u64, timeout: Duration) -> u64 {
        let s = self.read();
        let now = Instant::now();
        let timeout = match s.lease_remaining(now) {
            Some(left) if !left.is_zero() => timeout.min(left),
            _ => timeout,
        };
        self.change_waiters.fetch_add(1, Ordering::Relaxed);
        let (s, _) = self.changed.wait_timeout_while(s, timeout, |s| s.version == seen).expect("snapshot lock");
        self.change_waiters.fetch_sub(1, Ordering::Relaxed);
        s.version
    }
}
