//! A running node's clock: real time since the node started, run at the rate a clock-rate fault
//! sets (the fault model's `NodeClock`), and back to real instants for the published lease.

use std::time::{Duration, Instant};

use quorate_engine::faults::NodeClock;

/// This node's clock: the fault model's `NodeClock` over real nanoseconds since `epoch`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalClock {
    epoch: Instant,
    clock: NodeClock,
}

impl LocalClock {
    pub(crate) fn new() -> LocalClock {
        LocalClock { epoch: Instant::now(), clock: NodeClock::default() }
    }

    pub(crate) fn real_nanos(&self, real: Instant) -> u64 {
        quorate_engine::faults::saturating_nanos(real.saturating_duration_since(self.epoch))
    }

    pub(crate) fn now(&self) -> Duration {
        self.clock.local(self.real_nanos(Instant::now()))
    }

    /// The real instant at which the local clock reads `local`; a year from now for one beyond
    /// what an `Instant` holds (the deadline is re-armed long before).
    pub(crate) fn real(&self, local: Duration) -> Instant {
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        self.epoch.checked_add(Duration::from_nanos(self.clock.real_at(local))).map_or(far, |at| at.min(far))
    }

    pub(crate) fn set_rate(&mut self, rate: f64) {
        let now = self.real_nanos(Instant::now());
        self.clock.set_rate(now, rate);
    }
}
