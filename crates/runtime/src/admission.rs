//! Which inbound connections may hold a handshake slot. Slots are few (a connection in its
//! handshake holds a task and a file descriptor), and an outsider can open connections as fast as
//! it likes, so refusing newcomers once the slots are full would let silent connections lock the
//! members out (a restarted majority could not reconnect for as long as an attack lasted). Instead
//! a newcomer is always let in and the full table sheds an old handshake: first the oldest from a
//! source address that is no member's, then the oldest of all. A member's handshake takes a round
//! trip, so an attacker would have to open a table's worth of connections within that round trip
//! to shed it; silent connections just get shed.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;

use tokio::sync::oneshot;

/// Connections in their handshake at once.
pub const MAX_HANDSHAKING: usize = 64;
/// Of those, from one source address, so that one source cannot fill the table by itself (half of
/// it, so that a large cluster on one host, all dialing from 127.0.0.1, still starts at once).
pub const MAX_HANDSHAKING_PER_SOURCE: usize = 32;

/// The connections in their handshake, oldest first.
#[derive(Debug)]
pub struct Admission {
    member_sources: HashSet<IpAddr>,
    next_id: u64,
    pending: VecDeque<Pending>,
}

#[derive(Debug)]
struct Pending {
    id: u64,
    ip: IpAddr,
    shed: oneshot::Sender<()>,
}

/// A connection let into the table: its id (to `finish` it) and the signal that it was shed.
pub struct Admitted {
    pub id: u64,
    pub shed: oneshot::Receiver<()>,
}

impl Admission {
    /// `member_sources`: the addresses the members' own addresses name, preferred when shedding.
    pub fn new(member_sources: impl IntoIterator<Item = IpAddr>) -> Admission {
        Admission { member_sources: member_sources.into_iter().collect(), next_id: 0, pending: VecDeque::new() }
    }

    /// Lets a connection from `ip` in, shedding another if a limit is reached; returns the new
    /// connection and the sources of those shed (each was told through its `shed` signal).
    pub fn admit(&mut self, ip: IpAddr) -> (Admitted, Option<IpAddr>) {
        let from_source = self.pending.iter().filter(|p| p.ip == ip).count();
        let victim = if from_source >= MAX_HANDSHAKING_PER_SOURCE {
            self.pending.iter().position(|p| p.ip == ip)
        } else if self.pending.len() >= MAX_HANDSHAKING {
            let outsider = self.pending.iter().position(|p| !self.member_sources.contains(&p.ip));
            outsider.or(Some(0))
        } else {
            None
        };
        let shed = victim.and_then(|i| self.pending.remove(i)).map(|p| {
            let _ = p.shed.send(());
            p.ip
        });
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.pending.push_back(Pending { id: self.next_id, ip, shed: tx });
        debug_assert!(self.pending.len() <= MAX_HANDSHAKING);
        (Admitted { id: self.next_id, shed: rx }, shed)
    }

    /// The connection's handshake ended (done, failed or shed): its slot is free.
    pub fn finish(&mut self, id: u64) {
        self.pending.retain(|p| p.id != id);
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn silent_connections_from_outsiders_are_shed_before_a_member_is_refused() {
        let mut a = Admission::new([ip("127.0.0.1")]);
        let mut attackers = Vec::new();
        for i in 0..MAX_HANDSHAKING {
            let source = if i % 2 == 0 { "127.0.0.2" } else { "127.0.0.3" };
            attackers.push(a.admit(ip(source)).0);
        }
        assert_eq!(a.len(), MAX_HANDSHAKING, "two outsiders fill the table");
        let (mut member, shed) = a.admit(ip("127.0.0.1"));
        assert_eq!(shed, Some(ip("127.0.0.2")), "the oldest outsider makes room");
        assert!(attackers[0].shed.try_recv().is_ok(), "and is told to close");
        // The outsiders keep coming: every one sheds another outsider, never the member.
        for i in 0..10 * MAX_HANDSHAKING {
            let (_, shed) = a.admit(ip(if i % 2 == 0 { "127.0.0.2" } else { "127.0.0.3" }));
            assert_ne!(shed, Some(ip("127.0.0.1")));
        }
        assert!(member.shed.try_recv().is_err(), "the member's handshake was never shed");
        a.finish(member.id);
        assert_eq!(a.len(), MAX_HANDSHAKING - 1);
    }

    #[test]
    fn one_source_holds_at_most_its_share_and_sheds_its_own_oldest() {
        let mut a = Admission::new([]);
        let mut first = a.admit(ip("10.0.0.9")).0;
        for _ in 1..MAX_HANDSHAKING_PER_SOURCE {
            assert_eq!(a.admit(ip("10.0.0.9")).1, None);
        }
        assert_eq!(a.admit(ip("10.0.0.9")).1, Some(ip("10.0.0.9")));
        assert!(first.shed.try_recv().is_ok(), "its own oldest went");
        assert_eq!(a.len(), MAX_HANDSHAKING_PER_SOURCE);
        assert_eq!(a.admit(ip("10.0.0.8")).1, None, "other sources still have room");
    }

    #[test]
    fn among_members_only_the_oldest_is_shed() {
        let mut a = Admission::new([ip("127.0.0.1"), ip("127.0.0.5"), ip("127.0.0.6")]);
        let mut oldest = a.admit(ip("127.0.0.5")).0;
        for i in 1..MAX_HANDSHAKING {
            a.admit(ip(if i % 2 == 0 { "127.0.0.5" } else { "127.0.0.1" }));
        }
        assert_eq!(a.admit(ip("127.0.0.6")).1, Some(ip("127.0.0.5")));
        assert!(oldest.shed.try_recv().is_ok());
        assert_eq!(a.len(), MAX_HANDSHAKING);
    }
}
