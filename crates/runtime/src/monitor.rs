//! What the articles on leader election say to watch: how long leaderships last, how long the node
//! goes without a leader (failover time as this node saw it), how often elections start, and the
//! abnormal patterns (election storms, flapping leadership, unreachable peers, clock drift near
//! the bound). Fed by every publish, under the snapshot's lock; bounded in memory.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use quorate_engine::{EventKind, NodeId, Timing};

use super::record::{EventRecord, PeerInfo};

/// Upper bounds (seconds) of the tenure histogram's buckets; a last bucket takes the rest.
pub const TENURE_BUCKETS: [f64; 8] = [1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 86400.0];
/// Upper bounds (seconds) of the leaderless-gap histogram's buckets.
pub const GAP_BUCKETS: [f64; 10] = [0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 60.0];
/// The sliding window of the rate-based warnings.
pub const WINDOW: Duration = Duration::from_secs(60);
/// More elections started than this within the window is an election storm.
pub const STORM_ELECTIONS: usize = 10;
/// More leader changes than this within the window is flapping leadership.
pub const FLAPPING_CHANGES: usize = 6;
/// Timestamps kept per window: enough to tell a storm, bounded whatever happens.
const MAX_STAMPS: usize = 256;

/// A Prometheus-style histogram with fixed buckets: counts per bucket (not cumulative), sum, count.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: &'static [f64],
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    pub fn observe(&mut self, seconds: f64) {
        let i = self.bounds.iter().position(|b| seconds <= *b).unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    pub tenures: Histogram,
    pub leaderless_gaps: Histogram,
    /// Since when this node leads (its `elected`), while it does.
    pub leading_since: Option<Instant>,
    /// Since when this node has known no leader, while it has not (from its first start).
    pub leaderless_since: Option<Instant>,
    pub term_changes: u64,
    elections: VecDeque<Instant>,
    leader_changes: VecDeque<Instant>,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor {
            tenures: Histogram::new(&TENURE_BUCKETS),
            leaderless_gaps: Histogram::new(&GAP_BUCKETS),
            leading_since: None,
            leaderless_since: None,
            term_changes: 0,
            elections: VecDeque::new(),
            leader_changes: VecDeque::new(),
        }
    }
}

fn stamp(window: &mut VecDeque<Instant>, now: Instant) {
    while window.len() >= MAX_STAMPS || window.front().is_some_and(|t| now.saturating_duration_since(*t) > WINDOW) {
        window.pop_front();
    }
    window.push_back(now);
}

fn within_window(window: &VecDeque<Instant>, now: Instant) -> usize {
    window.iter().filter(|t| now.saturating_duration_since(**t) <= WINDOW).count()
}

impl Monitor {
    /// One publish: the leader known before and after it, and the events it carried.
    pub fn observe(&mut self, before: Option<&NodeId>, after: Option<&NodeId>, events: &[EventRecord], now: Instant) {
        for e in events {
            match e.kind {
                EventKind::Elected => self.leading_since = Some(e.at),
                EventKind::Demoted => {
                    if let Some(since) = self.leading_since.take() {
                        self.tenures.observe(e.at.saturating_duration_since(since).as_secs_f64());
                    }
                }
                EventKind::ElectionStarted => stamp(&mut self.elections, e.at),
                EventKind::TermChanged => self.term_changes += 1,
                EventKind::LeaderChanged => stamp(&mut self.leader_changes, e.at),
            }
        }
        match (before, after) {
            (Some(_), None) => self.leaderless_since = Some(now),
            (None, Some(_)) => {
                if let Some(since) = self.leaderless_since.take() {
                    self.leaderless_gaps.observe(now.saturating_duration_since(since).as_secs_f64());
                }
            }
            _ => {}
        }
    }

    /// A run starts without a leader known: the gap until one is known counts.
    pub fn begin_run(&mut self, now: Instant) {
        self.leading_since = None;
        self.leaderless_since = Some(now);
    }

    pub fn elections_in_window(&self, now: Instant) -> usize {
        within_window(&self.elections, now)
    }

    pub fn leader_changes_in_window(&self, now: Instant) -> usize {
        within_window(&self.leader_changes, now)
    }

    /// The abnormal patterns seen now, in words.
    pub fn warnings<'a>(
        &self,
        now: Instant,
        timing: &Timing,
        clock_rate: f64,
        peers: impl Iterator<Item = (&'a NodeId, &'a PeerInfo)>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let elections = self.elections_in_window(now);
        if elections > STORM_ELECTIONS {
            out.push(format!("election storm: {elections} elections started in the last {} s", WINDOW.as_secs()));
        }
        let changes = self.leader_changes_in_window(now);
        if changes > FLAPPING_CHANGES {
            out.push(format!("flapping leadership: {changes} leader changes in the last {} s", WINDOW.as_secs()));
        }
        let patience = timing.election_timeout.1;
        let mut trips = Vec::new();
        let mut members: usize = 1;
        for (id, p) in peers {
            members += 1;
            let silent = p.last_contact.is_none_or(|t| now.saturating_duration_since(t) > patience);
            if !p.connected && silent {
                out.push(format!("peer {id:?} unreachable for longer than the election timeout"));
            }
            trips.extend(p.round_trip.map(|r| r.smoothed));
        }
        // A leader renews its lease when the majority's acks are back: the slowest of the fastest
        // peers it needs sets how long that takes. Near the lease, it lapses between renewals.
        trips.sort();
        let needed = members / 2; // peers besides itself that make a majority
        if let Some(&trip) = needed.checked_sub(1).and_then(|i| trips.get(i)) {
            let lease = timing.lease_duration();
            if timing.heartbeat_interval + trip > lease.mul_f64(0.8) {
                out.push(format!(
                    "slow links: heartbeat interval {:.0} ms + round trip {:.1} ms to the majority is near the lease ({:.0} ms): \
                     leadership will lapse and flap; raise election_timeout or lower heartbeat_interval",
                    timing.heartbeat_interval.as_secs_f64() * 1e3,
                    trip.as_secs_f64() * 1e3,
                    lease.as_secs_f64() * 1e3
                ));
            }
        }
        let drift = (clock_rate - 1.0).abs();
        if drift > 0.8 * timing.max_clock_drift {
            out.push(format!(
                "clock rate {clock_rate} is near or past the max_clock_drift bound ({}): leases may not hold",
                timing.max_clock_drift
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_engine::{DemoteReason, Term};

    fn event(kind: EventKind, at: Instant, term: Term) -> EventRecord {
        let reason = (kind == EventKind::Demoted).then_some(DemoteReason::LostLease);
        EventRecord { at, ..EventRecord::new(kind, term, None, reason) }
    }

    #[test]
    fn tenure_and_leaderless_gaps_land_in_their_buckets() {
        let mut m = Monitor::default();
        let t0 = Instant::now();
        m.begin_run(t0);
        let a = "a".to_string();
        m.observe(
            None,
            Some(&a),
            &[event(EventKind::Elected, t0 + Duration::from_millis(250), 1)],
            t0 + Duration::from_millis(250),
        );
        assert_eq!(m.leaderless_gaps.counts[3], 1, "0.25 s falls in the (0.2, 0.3] bucket");
        m.observe(
            Some(&a),
            None,
            &[event(EventKind::Demoted, t0 + Duration::from_secs(10), 1)],
            t0 + Duration::from_secs(10),
        );
        assert_eq!((m.tenures.count, m.tenures.counts[2]), (1, 1), "a tenure of ~9.75 s is in (5, 30]");
        assert!(m.leaderless_since.is_some() && m.leading_since.is_none());
    }

    #[test]
    fn storms_and_flapping_are_named_and_the_windows_stay_bounded() {
        let mut m = Monitor::default();
        let t0 = Instant::now();
        let events: Vec<_> =
            (0..1000).map(|i| event(EventKind::ElectionStarted, t0 + Duration::from_millis(i), 1)).collect();
        m.observe(None, None, &events, t0);
        assert!(m.elections.len() <= MAX_STAMPS);
        let w = m.warnings(t0 + Duration::from_secs(1), &Timing::default(), 1.045, std::iter::empty());
        assert!(w.iter().any(|s| s.starts_with("election storm")), "{w:?}");
        assert!(w.iter().any(|s| s.starts_with("clock rate")), "{w:?}");
        let later = m.warnings(t0 + Duration::from_secs(120), &Timing::default(), 1.0, std::iter::empty());
        assert!(later.is_empty(), "the window slid past the storm: {later:?}");
    }

    #[test]
    fn a_round_trip_near_the_lease_warns_of_slow_links_judged_by_the_majoritys_peers() {
        use quorate_engine::RoundTrip;
        let m = Monitor::default();
        let now = Instant::now();
        let timing = Timing::default(); // 50 ms heartbeats, a lease of 150 ms x (1 - drift)
        let peer = |ms: Option<u64>| PeerInfo {
            address: String::new(),
            connected: true,
            last_contact: Some(now),
            round_trip: ms.map(|ms| RoundTrip::first(Duration::from_millis(ms))),
        };
        let ids: Vec<NodeId> = ["b", "c", "d", "e"].map(String::from).to_vec();
        let slow = |trips: [Option<u64>; 4]| {
            let peers: Vec<PeerInfo> = trips.into_iter().map(peer).collect();
            m.warnings(now, &timing, 1.0, ids.iter().zip(peers.iter())).iter().any(|w| w.starts_with("slow links"))
        };
        assert!(!slow([Some(1), Some(2), Some(3), Some(4)]));
        // Five members: the leader needs two peers; the two fastest answer in 3 ms, so two slow
        // links do not put the lease at risk ...
        assert!(!slow([Some(1), Some(3), Some(200), Some(300)]));
        // ... but three do: its lease renews only when the second-fastest ack is back.
        assert!(slow([Some(1), Some(100), Some(200), Some(300)]));
        assert!(!slow([None, None, None, None]), "a follower measures nothing and warns of nothing");
    }
}
