//! Every bound the engines keep, in one place: what a peer sends never grows a node's memory, or
//! its term, without limit.

use super::messages::Term;

/// How far ahead of ours a message's term (raft) or epoch (bully, ring) may be. Terms grow by one
/// per election, epochs by at most the group size; a billion elections at once is not a peer
/// following the rules. A term far ahead (a forged frame, a corrupt peer) would otherwise be adopted
/// and persisted, and one near `Term::MAX` would leave no term to campaign at, ever.
pub const MAX_TERM_AHEAD: Term = 1 << 30;

/// Heartbeat rounds a leader remembers while waiting for acks (and raft's send times kept for
/// round-trip samples). Rounds older than the lease are useless, so this is only a backstop against
/// a huge election timeout with a tiny heartbeat.
pub const MAX_OPEN_ROUNDS: usize = 64;

/// Ring hops a node keeps waiting for their acks (a backstop: a hop lives one `heartbeat_interval`).
pub const MAX_OPEN_HOPS: usize = 64;
