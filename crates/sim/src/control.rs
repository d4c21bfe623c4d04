//! The simulation's controls: crashes and restarts, partitions, pauses, clock rates and network
//! rates, each applied through the one fault model.

use std::time::Duration;

use super::{Item, Simulation};
use quorate_engine::faults::{check_rate, group_partition, Faults};
use quorate_engine::{ConfigError, DemoteReason, EventKind, NodeId, Role, TransferError};

impl Simulation {
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

    /// The node's engine, running and not paused, and the instant on its clock; `what` names the
    /// call in the error.
    fn awake(&mut self, what: &str, id: &str) -> Result<(usize, Duration), ConfigError> {
        let node = self.index(id)?;
        let n = &self.nodes[node];
        if n.engine.is_none() {
            return Err(ConfigError::new(format!("{what}: node {id:?} is down")));
        }
        if n.paused_until.is_some() {
            return Err(ConfigError::new(format!("{what}: node {id:?} is paused")));
        }
        Ok((node, n.clock.local(self.now)))
    }

    /// The node's election timeout fires now (`Engine::campaign`): it starts an election unless
    /// the engine's own rules hold it back (it leads; raft: it promised a leader silence).
    pub fn campaign(&mut self, id: &str) -> Result<(), ConfigError> {
        let (node, local) = self.awake("campaign", id)?;
        let outputs = self.nodes[node].engine.as_mut().expect("awake").campaign(local);
        self.apply(node, outputs);
        Ok(())
    }

    /// A leader steps down and hands off (`Engine::resign`); returns whether it was the leader
    /// (as the networked node's `resign` does).
    pub fn resign(&mut self, id: &str) -> Result<bool, ConfigError> {
        let (node, local) = self.awake("resign", id)?;
        let engine = self.nodes[node].engine.as_mut().expect("awake");
        let led = engine.role() == Role::Leader;
        let outputs = engine.resign(local);
        self.apply(node, outputs);
        Ok(led)
    }

    /// The leader `from` hands leadership to `to` (`Engine::transfer_leadership`: raft's
    /// TimeoutNow; bully and ring step aside). Returns false, changing nothing, if `from` does not
    /// lead.
    pub fn transfer_leadership(&mut self, from: &str, to: &str) -> Result<bool, ConfigError> {
        let (node, local) = self.awake("transfer_leadership", from)?;
        let engine = self.nodes[node].engine.as_mut().expect("awake");
        engine.config().transfer_target(to)?;
        match engine.transfer_leadership(local, to) {
            Ok(outputs) => {
                self.apply(node, outputs);
                Ok(true)
            }
            Err(TransferError::NotLeader) => Ok(false),
            Err(e @ TransferError::UnknownPeer(_)) => Err(ConfigError::new(format!("to: {e}"))),
        }
    }

    pub fn is_up(&self, id: &str) -> Result<bool, ConfigError> {
        Ok(self.nodes[self.index(id)?].engine.is_some())
    }

    /// Splits the members into groups that cannot reach one another; members named in no group
    /// form one more group together.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) -> Result<(), ConfigError> {
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let mut cuts = group_partition(&ids, groups)?;
        for n in &mut self.nodes {
            n.faults.set_group_partition(cuts.remove(&n.id).unwrap_or_default());
        }
        Ok(())
    }

    /// Clears every link fault (the partition, per-node cuts, drop, duplicate, delay). Pauses run
    /// out on their own; clock rates and the network's drop and duplicate rates stay as set.
    pub fn heal(&mut self) {
        for n in &mut self.nodes {
            n.faults.clear_links();
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
        let until = self.now.saturating_add(quorate_engine::faults::saturating_nanos(span));
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

    pub(super) fn unpause(&mut self, node: usize) {
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
        n.clock.set_rate(now, factor);
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
