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
        real.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    pub(crate) fn now(&self) -> Duration {
        self.clock.local(self.real_nanos(Instant::now()))
    }

    /// The real instant at which the local clock reads `local`.
    pub(crate) fn real(&self, local: Duration) -> Instant {
        self.epoch + Duration::from_nanos(self.clock.real_at(local))
    }

    pub(crate) fn set_rate(&mut self, rate: f64) {
        let now = self.real_nanos(Instant::now());
        self.clock.set_rate(now, rate);
    }
}
