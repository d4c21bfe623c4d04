//! The one rule for "the leader" of a group, written once: the simulator's `recognised_leader`,
//! `quorate.Simulation.leader()`, `LocalCluster.leader()`, the pytest plugin and the demo all use
//! it (the Python side through `quorate._core._recognised_leader`).

use quorate_engine::{Engine, NodeId};

use crate::{SimNode, Simulation};

/// One member as the leader rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct MemberView<'a> {
    pub id: &'a str,
    /// Running (not crashed or stopped); a paused node is up.
    pub up: bool,
    /// Leads and holds its lease now.
    pub holds_lease: bool,
    /// The leader it follows or is.
    pub leader: Option<&'a str>,
}

/// The member that holds its lease and that a majority of ALL members (itself included) recognise
/// as leader, counting only members that are up; None if there is no such member. A majority of
/// the whole membership, as etcd and Kubernetes count it: a leader on the majority side of a
/// partition is the leader even while the minority names another or none, and a member that is
/// down does not lower the bar. Two majorities share a member, which names one leader, so at most
/// one member qualifies.
pub fn recognised_leader<'a>(members: &[MemberView<'a>]) -> Option<&'a str> {
    let needed = members.len() / 2 + 1;
    members
        .iter()
        .filter(|m| m.up && m.holds_lease)
        .map(|m| m.id)
        .find(|&holder| members.iter().filter(|m| m.up && m.leader == Some(holder)).count() >= needed)
}

impl Simulation {
    /// The leader by the one rule ([`recognised_leader`]): it holds its lease and a
    /// majority of all members, counting only live ones, follow it. Under a partition this is the
    /// majority side's leader, whatever the minority thinks.
    pub fn recognised_leader(&self) -> Option<&NodeId> {
        let local = |n: &SimNode| n.clock.local(self.now);
        if !self.nodes.iter().any(|n| n.engine.as_ref().is_some_and(|e| e.is_leader(local(n)))) {
            return None; // the common case while running: no view to build
        }
        let views: Vec<MemberView<'_>> = self
            .nodes
            .iter()
            .map(|n| MemberView {
                id: &n.id,
                up: n.engine.is_some(),
                holds_lease: n.engine.as_ref().is_some_and(|e| e.is_leader(local(n))),
                leader: n.engine.as_ref().and_then(Engine::leader).map(String::as_str),
            })
            .collect();
        let id = recognised_leader(&views)?;
        self.nodes.iter().find(|n| n.id == id).map(|n| &n.id)
    }

    /// The leader every live node knows, holding its lease: not "the leader" (that is
    /// [`Simulation::recognised_leader`]) but the failover measure, the moment the last live node
    /// has learnt of the new leader (`failover_trials`, the Figure 16 bench).
    pub fn leader_known_to_all(&self) -> Option<&NodeId> {
        let mut agreed: Option<&NodeId> = None;
        for n in &self.nodes {
            let Some(engine) = &n.engine else { continue };
            let leader = engine.leader()?;
            if agreed.is_some_and(|a| a != leader) {
                return None;
            }
            agreed = Some(leader);
        }
        let leader = agreed?;
        let node = &self.nodes[self.index(leader).ok()?];
        node.engine.as_ref()?.is_leader(node.clock.local(self.now)).then_some(leader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(id: &'a str, up: bool, holds_lease: bool, leader: Option<&'a str>) -> MemberView<'a> {
        MemberView { id, up, holds_lease, leader }
    }

    #[test]
    fn the_majority_sides_leader_is_the_leader_while_the_minority_names_another() {
        let members = [
            view("a", true, true, Some("a")),
            view("b", true, false, Some("a")),
            view("c", true, false, Some("a")),
            view("d", true, true, Some("d")), // a stale leader cut off with e, its lease not yet out
            view("e", true, false, Some("d")),
        ];
        assert_eq!(recognised_leader(&members), Some("a"));
    }

    #[test]
    fn members_that_are_down_do_not_lower_the_bar() {
        let members =
            [view("a", true, true, Some("a")), view("b", false, false, Some("a")), view("c", false, false, None)];
        assert_eq!(recognised_leader(&members), None, "one of three is no majority");
        let members =
            [view("a", true, true, Some("a")), view("b", true, false, Some("a")), view("c", false, false, None)];
        assert_eq!(recognised_leader(&members), Some("a"));
    }

    #[test]
    fn a_leader_without_its_lease_is_no_leader() {
        let members =
            [view("a", true, false, Some("a")), view("b", true, false, Some("a")), view("c", true, false, Some("a"))];
        assert_eq!(recognised_leader(&members), None);
    }
}
