//! What an engine measures about itself for monitoring, never for a decision: how it answered
//! vote requests (why a cluster cannot elect is usually in the refusals) and the round-trip time
//! to each peer as the leader sees it. Counting changes no transition and no output.

use std::time::Duration;

/// How a node answered a vote or pre-vote request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteAnswer {
    Granted,
    /// The request's term is older than this node's (paper 5.1).
    StaleTerm,
    /// This node already voted for another candidate in that term (paper 5.2).
    AlreadyVoted,
    /// This node follows a leader of that term, so it votes for no one else in it.
    LeaderKnown,
    /// This node heard from a live leader (or restarted) within the minimum election timeout, so
    /// it ignored the request (thesis 4.2.3, the disruptive-server rule; a restarted node keeps a
    /// lease it may have granted): silence, not even a refusal on the wire.
    InLease,
}

impl VoteAnswer {
    pub const ALL: [VoteAnswer; 5] = [
        VoteAnswer::Granted,
        VoteAnswer::StaleTerm,
        VoteAnswer::AlreadyVoted,
        VoteAnswer::LeaderKnown,
        VoteAnswer::InLease,
    ];

    pub fn name(self) -> &'static str {
        match self {
            VoteAnswer::Granted => "granted",
            VoteAnswer::StaleTerm => "stale_term",
            VoteAnswer::AlreadyVoted => "already_voted",
            VoteAnswer::LeaderKnown => "leader_known",
            VoteAnswer::InLease => "in_lease",
        }
    }
}

/// Vote requests answered, by kind (a real vote or a pre-vote) and answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoteCounts {
    counts: [[u64; VoteAnswer::ALL.len()]; 2],
}

impl VoteCounts {
    pub fn record(&mut self, pre_vote: bool, answer: VoteAnswer) {
        self.counts[pre_vote as usize][answer as usize] += 1;
    }

    pub fn get(&self, pre_vote: bool, answer: VoteAnswer) -> u64 {
        self.counts[pre_vote as usize][answer as usize]
    }

    /// The sum of two tallies (a node's earlier runs and its current one).
    pub fn plus(&self, other: &VoteCounts) -> VoteCounts {
        let mut sum = *self;
        for (row, other_row) in sum.counts.iter_mut().zip(other.counts.iter()) {
            for (n, m) in row.iter_mut().zip(other_row.iter()) {
                *n += m;
            }
        }
        sum
    }
}

/// A smoothed round-trip time, as TCP keeps one (RFC 6298: SRTT with gain 1/8): one slow
/// heartbeat moves it a little, a lasting change moves it all the way within a few dozen rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTrip {
    pub smoothed: Duration,
    pub last: Duration,
}

impl RoundTrip {
    pub fn first(sample: Duration) -> RoundTrip {
        RoundTrip { smoothed: sample, last: sample }
    }

    pub fn update(&mut self, sample: Duration) {
        self.smoothed = self.smoothed - self.smoothed / 8 + sample / 8;
        self.last = sample;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_counts_keep_kinds_and_answers_apart() {
        let mut v = VoteCounts::default();
        v.record(false, VoteAnswer::Granted);
        v.record(true, VoteAnswer::Granted);
        v.record(true, VoteAnswer::Granted);
        v.record(false, VoteAnswer::AlreadyVoted);
        assert_eq!(v.get(false, VoteAnswer::Granted), 1);
        assert_eq!(v.get(true, VoteAnswer::Granted), 2);
        assert_eq!(v.get(false, VoteAnswer::AlreadyVoted), 1);
        assert_eq!(v.get(true, VoteAnswer::AlreadyVoted), 0);
        assert_eq!(v.plus(&v).get(true, VoteAnswer::Granted), 4);
    }

    #[test]
    fn smoothed_round_trip_moves_an_eighth_of_the_way() {
        let mut r = RoundTrip::first(Duration::from_millis(8));
        r.update(Duration::from_millis(16));
        assert_eq!(r.smoothed, Duration::from_millis(9));
        assert_eq!(r.last, Duration::from_millis(16));
    }
}
