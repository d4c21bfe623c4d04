//! Unit tests named after the rule they check: Raft paper sections 5.1 and 5.2, thesis 9.6
//! (pre-vote), 4.2.3 (disruptive servers), 6.2 (check-quorum), 6.4 (leases), 3.10 (transfer), and
//! what leadership events mean (elected once the lease is held, a reason on every demoted).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::test_support::{ms, sends};
use super::*;

const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];

fn timing(pre_vote: bool, check_quorum: bool) -> Timing {
    Timing { pre_vote, check_quorum, ..Timing::default() }
}

fn node_with(id: &str, n: usize, t: Timing, hard: HardState) -> Raft {
    let cfg = Config::new(id, IDS[..n].iter().copied(), t, 42).unwrap();
    let mut r = Raft::new(cfg, hard);
    r.tick(ms(0)); // start the clock at 0
    r
}

fn node(id: &str, n: usize) -> Raft {
    node_with(id, n, timing(false, true), HardState::default())
}

fn events(outs: &[Output]) -> Vec<EventKind> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.kind),
            _ => None,
        })
        .collect()
}

/// The reason of every `demoted` event, in order; every other event must carry none.
fn demotions(outs: &[Output]) -> Vec<DemoteReason> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(e) => {
                assert_eq!(e.reason.is_some(), e.kind == EventKind::Demoted, "a reason on demoted only: {e:?}");
                e.reason
            }
            _ => None,
        })
        .collect()
}

fn vote(term: Term) -> Message {
    Message::Vote { term, pre_vote: false, transfer: false }
}

fn granted(term: Term) -> Message {
    Message::VoteResponse { term, granted: true, pre_vote: false }
}

/// Drives `r` (pre_vote off) to leader of term 1 with votes from the first peers, at `at`.
fn elect(r: &mut Raft, at: Duration) {
    r.tick(at);
    assert_eq!(r.role(), Role::Candidate);
    let peers: Vec<String> = r.config().peers().cloned().collect();
    let need = r.config().quorum() - 1;
    for p in peers.iter().take(need) {
        r.step(at, p, granted(r.term()));
    }
    assert_eq!(r.role(), Role::Leader);
}

/// `elect`, then the first heartbeat round acknowledged by a majority at `at`: the lease is held.
fn elect_with_lease(r: &mut Raft, at: Duration) {
    elect(r, at);
    let peers: Vec<String> = r.config().peers().cloned().collect();
    let need = r.config().quorum() - 1;
    let mut kinds = Vec::new();
    for p in peers.iter().take(need) {
        kinds.extend(events(&r.step(at, p, Message::HeartbeatResponse { term: r.term(), seq: 1 })));
    }
    assert_eq!(kinds, vec![EventKind::Elected]);
    assert!(r.is_leader(at));
}

// ----- 5.1 terms -----------------------------------------------------------------------------

#[test]
fn test_5_1_any_role_seeing_a_higher_term_becomes_follower_at_that_term() {
    // follower
    let mut f = node("a", 3);
    f.step(ms(10), "b", Message::Heartbeat { term: 4, seq: 1 });
    assert_eq!((f.role(), f.term(), f.leader().cloned()), (Role::Follower, 4, Some("b".into())));
    // candidate
    let mut c = node("a", 3);
    c.tick(ms(400));
    assert_eq!(c.role(), Role::Candidate);
    c.step(ms(401), "b", Message::HeartbeatResponse { term: 7, seq: 0 });
    assert_eq!((c.role(), c.term()), (Role::Follower, 7));
    // leader
    let mut l = node("a", 3);
    elect_with_lease(&mut l, ms(400));
    let outs = l.step(ms(402), "c", Message::HeartbeatResponse { term: 9, seq: 1 });
    assert_eq!((l.role(), l.term()), (Role::Follower, 9));
    assert_eq!(events(&outs), vec![EventKind::Demoted, EventKind::TermChanged, EventKind::LeaderChanged]);
    assert_eq!(demotions(&outs), vec![DemoteReason::HigherTerm]);
}

#[test]
fn test_5_1_a_stale_heartbeat_is_answered_with_the_current_term() {
    let mut f = node("a", 3);
    f.step(ms(10), "b", Message::Heartbeat { term: 5, seq: 1 });
    let outs = f.step(ms(20), "c", Message::Heartbeat { term: 3, seq: 8 });
    assert_eq!(sends(&outs), vec![("c".into(), Message::HeartbeatResponse { term: 5, seq: 8 })]);
    assert_eq!(f.leader().map(String::as_str), Some("b"), "a stale leader is not followed");
}

#[test]
fn test_5_1_a_stale_vote_request_is_rejected_with_the_current_term() {
    let mut f = node("a", 3);
    f.step(ms(10), "b", Message::Heartbeat { term: 5, seq: 1 });
    let outs = f.step(ms(20), "c", vote(2));
    assert_eq!(sends(&outs), vec![("c".into(), Message::VoteResponse { term: 5, granted: false, pre_vote: false })]);
}

// ----- 5.2 leader election -------------------------------------------------------------------

#[test]
fn test_5_2_a_follower_whose_timeout_passes_becomes_candidate_votes_for_itself_and_asks_everyone() {
    let mut r = node("a", 5);
    assert!(r.tick(ms(149)).is_empty(), "no election before election_timeout[0]");
    let outs = r.tick(ms(300));
    assert_eq!(r.role(), Role::Candidate);
    assert_eq!(r.hard_state(), HardState { term: 1, voted_for: Some("a".into()) });
    assert_eq!(outs[0], Output::Persist(r.hard_state()), "the vote for itself is durable before any request");
    let asked: Vec<String> = sends(&outs)
        .into_iter()
        .map(|(to, m)| {
            assert_eq!(m, vote(1));
            to
        })
        .collect();
    assert_eq!(asked, vec!["b", "c", "d", "e"]);
    assert_eq!(events(&outs), vec![EventKind::TermChanged, EventKind::ElectionStarted]);
}

#[test]
fn test_5_2_election_timeouts_are_drawn_from_the_range_and_redrawn_at_every_reset() {
    let mut r = node("a", 3);
    let mut seen = std::collections::BTreeSet::new();
    let mut now = ms(0);
    for seq in 1..=200 {
        r.step(now, "b", Message::Heartbeat { term: 1, seq });
        let timeout = r.next_deadline().unwrap() - now;
        assert!(timeout >= ms(150) && timeout < ms(300), "timeout {timeout:?} outside [150, 300) ms");
        seen.insert(timeout.as_millis());
        now += ms(10);
    }
    assert!(seen.len() > 50, "timeouts are redrawn, not fixed: {} distinct values", seen.len());
}

#[test]
fn test_5_2_same_seed_gives_the_same_timeouts() {
    let a = node("a", 3);
    let b = node("a", 3);
    assert_eq!(a.next_deadline(), b.next_deadline());
}

#[test]
fn test_5_2_a_candidate_with_votes_from_a_majority_of_all_members_wins() {
    for n in [3, 5] {
        let mut r = node("a", n);
        r.tick(ms(400));
        for (i, p) in IDS[1..].iter().take(n / 2).enumerate() {
            assert_eq!(r.role(), Role::Candidate, "{i} of {n} votes is not yet a majority");
            let outs = r.step(ms(401), p, granted(1));
            if i + 1 == n / 2 {
                // The win makes it leader; `elected` waits until a majority acknowledges a round.
                assert_eq!(events(&outs), vec![EventKind::LeaderChanged]);
                let heartbeats =
                    sends(&outs).iter().filter(|(_, m)| matches!(m, Message::Heartbeat { term: 1, .. })).count();
                assert_eq!(heartbeats, n - 1, "a new leader asserts itself at once");
            }
        }
        assert_eq!(r.role(), Role::Leader);
    }
}

#[test]
fn test_5_2_a_candidate_rejected_by_a_majority_returns_to_follower() {
    let mut r = node("a", 3);
    r.tick(ms(400));
    r.step(ms(401), "b", Message::VoteResponse { term: 1, granted: false, pre_vote: false });
    assert_eq!(r.role(), Role::Candidate, "one rejection of three is not a majority");
    r.step(ms(401), "c", Message::VoteResponse { term: 1, granted: false, pre_vote: false });
    assert_eq!((r.role(), r.term()), (Role::Follower, 1));
}

#[test]
fn test_5_2_one_vote_per_term_first_come_first_served() {
    let mut r = node("a", 3);
    let outs = r.step(ms(200), "b", vote(1));
    assert_eq!(outs[0], Output::Persist(HardState { term: 1, voted_for: Some("b".into()) }));
    assert_eq!(sends(&outs), vec![("b".into(), granted(1))]);
    let outs = r.step(ms(201), "c", vote(1));
    assert_eq!(sends(&outs), vec![("c".into(), Message::VoteResponse { term: 1, granted: false, pre_vote: false })]);
    let outs = r.step(ms(202), "b", vote(1));
    assert_eq!(
        sends(&outs),
        vec![("b".into(), granted(1))],
        "a repeated request from the same candidate is granted again"
    );
    assert!(!outs.iter().any(|o| matches!(o, Output::Persist(_))), "nothing new to persist");
}

#[test]
fn test_5_2_a_candidate_that_hears_from_the_leader_of_its_term_follows_it() {
    let mut r = node("a", 3);
    r.tick(ms(400));
    r.step(ms(401), "b", Message::Heartbeat { term: 1, seq: 1 });
    assert_eq!((r.role(), r.term(), r.leader().map(String::as_str)), (Role::Follower, 1, Some("b")));
}

#[test]
fn test_5_2_a_split_vote_times_out_and_a_new_election_starts_in_the_next_term() {
    let mut r = node("a", 3);
    r.tick(ms(400));
    let deadline = r.next_deadline().unwrap();
    r.tick(deadline);
    assert_eq!((r.role(), r.term()), (Role::Candidate, 2));
}

#[test]
fn test_5_2_a_leader_sends_heartbeats_every_interval() {
    let mut r = node("a", 3);
    elect(&mut r, ms(400));
    assert_eq!(r.next_deadline(), Some(ms(450)));
    assert!(sends(&r.tick(ms(449))).is_empty());
    for (i, seq) in (2..6).enumerate() {
        let at = ms(450 + 50 * i as u64);
        // keep a majority answering so check-quorum does not step it down
        r.step(at, "b", Message::HeartbeatResponse { term: 1, seq: seq - 1 });
        let hb = sends(&r.tick(at));
        assert_eq!(hb.len(), 2);
        assert!(hb.iter().all(|(_, m)| *m == Message::Heartbeat { term: 1, seq }));
    }
}

#[test]
fn test_5_2_a_one_member_group_elects_itself_and_holds_a_lease() {
    let cfg = Config::new("a", ["a"], Timing::default(), 0).unwrap();
    let mut r = Raft::new(cfg, HardState::default());
    r.tick(ms(0));
    let outs = r.tick(ms(300));
    assert_eq!(r.role(), Role::Leader);
    let kinds = events(&outs);
    // Alone, the lease comes at once.
    assert_eq!(kinds[kinds.len() - 2..], [EventKind::LeaderChanged, EventKind::Elected]);
    assert!(r.is_leader(ms(300)));
    assert_eq!(r.fencing_token(ms(300)), Some(1));
}

// ----- persistence -----------------------------------------------------------------------------

#[test]
fn test_persist_comes_before_every_send_that_depends_on_it() {
    let mut r = node("a", 3);
    let outs = r.step(ms(200), "b", vote(3));
    let persist = outs.iter().position(|o| matches!(o, Output::Persist(_))).unwrap();
    let reply = outs.iter().position(|o| matches!(o, Output::Send { .. })).unwrap();
    assert!(persist < reply);
    assert_eq!(outs[persist], Output::Persist(HardState { term: 3, voted_for: Some("b".into()) }));
}

#[test]
fn test_a_restarted_node_keeps_its_vote_for_the_term() {
    let hard = HardState { term: 3, voted_for: Some("b".into()) };
    let mut r = node_with("a", 3, timing(false, true), hard);
    let outs = r.step(ms(200), "c", vote(3));
    assert_eq!(sends(&outs), vec![("c".into(), Message::VoteResponse { term: 3, granted: false, pre_vote: false })]);
}

#[test]
fn test_a_restarted_node_grants_no_vote_within_the_minimum_election_timeout() {
    let cfg = Config::new("a", IDS[..3].iter().copied(), timing(false, true), 1).unwrap();
    let mut r = Raft::new(cfg, HardState { term: 2, voted_for: None });
    assert!(sends(&r.step(ms(1_000), "b", vote(3))).is_empty(), "booted at 1.0 s: silent until 1.15 s");
    assert!(r.campaign(ms(1_100)).is_empty(), "nor does it vote for itself");
    assert_eq!(sends(&r.step(ms(1_150), "b", vote(3))), vec![("b".into(), granted(3))]);
}

// ----- thesis 9.6 pre-vote ---------------------------------------------------------------------

#[test]
fn test_9_6_a_pre_candidate_asks_for_the_next_term_without_raising_its_own() {
    let mut r = node_with("a", 3, timing(true, true), HardState::default());
    let outs = r.tick(ms(400));
    assert_eq!((r.role(), r.term()), (Role::PreCandidate, 0));
    assert!(!outs.iter().any(|o| matches!(o, Output::Persist(_))), "nothing durable changes");
    assert!(sends(&outs).iter().all(|(_, m)| *m == Message::Vote { term: 1, pre_vote: true, transfer: false }));
}

#[test]
fn test_9_6_a_pre_vote_is_granted_without_changing_the_voter() {
    let mut r = node_with("b", 3, timing(true, true), HardState::default());
    let outs = r.step(ms(200), "a", Message::Vote { term: 1, pre_vote: true, transfer: false });
    assert_eq!(sends(&outs), vec![("a".into(), Message::VoteResponse { term: 1, granted: true, pre_vote: true })]);
    assert_eq!(r.hard_state(), HardState::default());
    assert!(outs.iter().all(|o| matches!(o, Output::Send { .. })));
}

#[test]
fn test_9_6_a_majority_of_pre_votes_starts_the_real_election() {
    let mut r = node_with("a", 3, timing(true, true), HardState::default());
    r.tick(ms(400));
    let outs = r.step(ms(401), "b", Message::VoteResponse { term: 1, granted: true, pre_vote: true });
    assert_eq!((r.role(), r.term()), (Role::Candidate, 1));
    assert!(sends(&outs).iter().all(|(_, m)| *m == vote(1)));
}

#[test]
fn test_9_6_a_rejected_pre_candidate_keeps_its_term_and_follows_again() {
    let mut r = node_with("a", 3, timing(true, true), HardState::default());
    r.tick(ms(400));
    for p in ["b", "c"] {
        r.step(ms(401), p, Message::VoteResponse { term: 0, granted: false, pre_vote: true });
    }
    assert_eq!((r.role(), r.term()), (Role::Follower, 0));
}

// ----- thesis 4.2.3 disruptive servers and 3.10 leadership transfer -----------------------------

#[test]
fn test_4_2_3_a_follower_that_heard_from_its_leader_ignores_higher_term_candidates() {
    let mut r = node("b", 3);
    r.step(ms(10), "a", Message::Heartbeat { term: 1, seq: 1 });
    let outs = r.step(ms(100), "c", vote(2));
    assert!(outs.is_empty(), "no reply and no term change within 150 ms of the heartbeat");
    assert_eq!(r.term(), 1);
    let outs = r.step(ms(100), "c", Message::Vote { term: 2, pre_vote: true, transfer: false });
    assert!(outs.is_empty(), "pre-votes too");
    let outs = r.step(ms(160), "c", vote(2));
    assert_eq!(sends(&outs), vec![("c".into(), granted(2))], "after the lease it votes again");
}

#[test]
fn test_4_2_3_a_transfer_vote_is_granted_despite_the_leaders_lease() {
    let mut r = node("b", 3);
    r.step(ms(10), "a", Message::Heartbeat { term: 1, seq: 1 });
    assert!(r.step(ms(20), "c", vote(2)).is_empty(), "the same vote without `transfer` gets silence");
    assert_eq!(r.term(), 1);
    let outs = r.step(ms(20), "c", Message::Vote { term: 2, pre_vote: false, transfer: true });
    assert_eq!(sends(&outs), vec![("c".into(), granted(2))]);
}

#[test]
fn test_3_10_timeout_now_starts_a_transfer_campaign_at_once_skipping_pre_vote() {
    let mut r = node_with("b", 3, timing(true, true), HardState::default());
    r.step(ms(10), "a", Message::Heartbeat { term: 1, seq: 1 });
    // Its election timer runs until at least 160 ms: at 20 ms only the TimeoutNow can start a campaign.
    assert!(r.next_deadline().unwrap() >= ms(160));
    assert!(r.tick(ms(20)).is_empty(), "no timer is due at 20 ms");
    let outs = r.step(ms(20), "a", Message::TimeoutNow { term: 1 });
    assert_eq!((r.role(), r.term()), (Role::Candidate, 2));
    let asked = sends(&outs);
    assert_eq!(asked.len(), 2);
    assert!(asked.iter().all(|(_, m)| *m == Message::Vote { term: 2, pre_vote: false, transfer: true }));
}

/// A group of `n` members booted at 0 ms, each with its own seed (so their timeouts differ).
fn group(n: usize) -> BTreeMap<String, Raft> {
    IDS[..n]
        .iter()
        .enumerate()
        .map(|(seed, id)| {
            let cfg = Config::new(*id, IDS[..n].iter().copied(), timing(true, true), seed as u64).unwrap();
            let mut r = Raft::new(cfg, HardState::default());
            r.tick(ms(0));
            (id.to_string(), r)
        })
        .collect()
}

/// Messages as (from, to, message), and events as (node, kind), in the order they happened.
type Delivered = Vec<(String, String, Message)>;
type Announced = Vec<(String, EventKind)>;

/// Delivers `outs` of `from` and everything they cause, all at `now`, with no node ticked: what it
/// returns (every message delivered, every event) happened at that one instant.
fn deliver_all(g: &mut BTreeMap<String, Raft>, now: Duration, from: &str, outs: Vec<Output>) -> (Delivered, Announced) {
    let mut queue: VecDeque<(String, Vec<Output>)> = VecDeque::from([(from.to_string(), outs)]);
    let (mut delivered, mut kinds) = (Vec::new(), Vec::new());
    while let Some((sender, outs)) = queue.pop_front() {
        kinds.extend(events(&outs).into_iter().map(|k| (sender.clone(), k)));
        for (to, m) in sends(&outs) {
            delivered.push((sender.clone(), to.clone(), m.clone()));
            let reply = g.get_mut(&to).unwrap().step(now, &sender, m);
            queue.push_back((to, reply));
        }
        assert!(delivered.len() < 1_000, "a hand-off settles in a few messages");
    }
    (delivered, kinds)
}

#[test]
fn test_3_10_a_hand_off_elects_its_target_while_no_election_timer_is_due() {
    let cases =
        [3, 5].into_iter().flat_map(|n| ["resign", "shut_down", "transfer_leadership"].map(move |how| (n, how)));
    for (n, how) in cases {
        // The first leader wins by its own timeout, the earliest in the group; every vote and
        // heartbeat then re-arms the others' timers from that instant.
        let mut g = group(n);
        let (t0, first) = g.iter().map(|(id, r)| (r.next_deadline().unwrap(), id.clone())).min().unwrap();
        let outs = g.get_mut(&first).unwrap().tick(t0);
        deliver_all(&mut g, t0, &first, outs);
        assert!(g[&first].is_leader(t0), "{n} {how}: {first} leads at {t0:?}");

        // The hand-off comes 10 ms later: no election timer is due, so ticking every node does
        // nothing. The followers owe the leader silence: they vote only in a `transfer` campaign
        // (in a group of five, the former leader's vote and the target's own are not a majority).
        let t1 = t0 + ms(10);
        for (id, r) in g.iter_mut() {
            if *id != first {
                assert!(r.next_deadline().unwrap() > t1, "{n} {how}: {id}'s election timer runs past {t1:?}");
            }
            assert!(r.tick(t1).is_empty(), "{n} {how}: {id} has no timer due at {t1:?}");
        }
        let peers: Vec<String> = g.keys().filter(|id| **id != first).cloned().collect();
        let leader = g.get_mut(&first).unwrap();
        let (target, outs) = match how {
            // The most caught-up peer: every peer acknowledged round 1, and a tie goes to the first id.
            "resign" => (peers[0].clone(), leader.resign(t1)),
            "shut_down" => (peers[0].clone(), leader.shut_down(t1)),
            _ => (peers[1].clone(), leader.transfer_leadership(t1, &peers[1]).unwrap()),
        };
        let (delivered, kinds) = deliver_all(&mut g, t1, &first, outs);

        // At that same instant the target leads and holds its lease, elected by the hand-off.
        let r = &g[&target];
        assert_eq!((r.role(), r.term()), (Role::Leader, 2), "{n} {how}: {target} took over");
        assert!(r.is_leader(t1) && !g[&first].is_leader(t1), "{n} {how}");
        assert!(g.values().all(|r| r.leader() == Some(&target)), "{n} {how}: everyone follows {target}");
        assert_eq!(delivered[0], (first.clone(), target.clone(), Message::TimeoutNow { term: 1 }), "{n} {how}");
        let started: Vec<&String> =
            kinds.iter().filter(|(_, k)| *k == EventKind::ElectionStarted).map(|(id, _)| id).collect();
        assert_eq!(started, vec![&target], "{n} {how}: one campaign, the target's");
        let votes: Vec<&Message> =
            delivered.iter().filter(|(_, _, m)| matches!(m, Message::Vote { .. })).map(|(_, _, m)| m).collect();
        assert_eq!(votes.len(), n - 1, "{n} {how}");
        assert!(
            votes.iter().all(|m| **m == Message::Vote { term: 2, pre_vote: false, transfer: true }),
            "{n} {how}: {votes:?}"
        );
    }
}

#[test]
fn test_3_10_resign_steps_down_first_and_hands_off_to_the_most_caught_up_peer() {
    let mut r = node("a", 5);
    elect_with_lease(&mut r, ms(400)); // b and c acknowledge round 1
    r.step(ms(401), "d", Message::HeartbeatResponse { term: 1, seq: 1 });
    r.tick(ms(450));
    r.step(ms(451), "e", Message::HeartbeatResponse { term: 1, seq: 2 });
    let outs = r.resign(ms(452));
    assert_eq!(r.role(), Role::Follower);
    assert!(!r.is_leader(ms(452)));
    assert_eq!(events(&outs)[0], EventKind::Demoted);
    assert_eq!(sends(&outs), vec![("e".into(), Message::TimeoutNow { term: 1 })]);
}

#[test]
fn test_3_10_transfer_leadership_refuses_unknown_peers_and_non_leaders() {
    let mut r = node("a", 3);
    assert_eq!(r.transfer_leadership(ms(1), "z"), Err(TransferError::UnknownPeer("z".into())));
    assert_eq!(r.transfer_leadership(ms(1), "b"), Err(TransferError::NotLeader));
    elect(&mut r, ms(400));
    let outs = r.transfer_leadership(ms(401), "c").unwrap();
    assert_eq!(sends(&outs), vec![("c".into(), Message::TimeoutNow { term: 1 })]);
    assert!(r.resign(ms(402)).is_empty(), "no longer leader: nothing to resign");
}

// ----- thesis 6.2 check-quorum and 6.4 leases ----------------------------------------------------

#[test]
fn test_6_2_a_leader_that_never_earned_its_lease_steps_down_after_the_minimum_timeout() {
    // Check-quorum governs a leader without a lease: no majority ever acknowledged a round.
    let mut r = node("a", 3);
    elect(&mut r, ms(400));
    let mut now = ms(400);
    while r.role() == Role::Leader && now < ms(1_000) {
        now = r.next_deadline().unwrap();
        r.tick(now);
    }
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(now, ms(550), "steps down exactly election_timeout[0] after its last quorum contact");
}

#[test]
fn test_6_2_without_check_quorum_a_leader_that_never_earned_its_lease_stays_leader_without_one() {
    let mut r = node_with("a", 3, timing(false, false), HardState::default());
    elect(&mut r, ms(400));
    assert_eq!(r.next_deadline(), Some(ms(450)), "only heartbeats are due");
    let mut now = ms(400);
    while now < ms(2_000) {
        now = r.next_deadline().unwrap();
        assert!(events(&r.tick(now)).is_empty());
    }
    assert_eq!(r.role(), Role::Leader);
    assert!(!r.is_leader(now));
}

#[test]
fn test_6_4_the_lease_runs_from_the_send_time_of_a_round_a_majority_acknowledged() {
    let mut r = node("a", 3);
    elect(&mut r, ms(400)); // round 1 sent at 400 ms
    assert!(!r.is_leader(ms(400)), "no lease before a majority acknowledges a round");
    assert_eq!(r.fencing_token(ms(400)), None);
    r.step(ms(430), "b", Message::HeartbeatResponse { term: 1, seq: 1 });
    // 400 ms + 150 ms * (1 - 0.05) = 542.5 ms, measured from the send, not the ack.
    assert_eq!(r.lease_expiry(), Some(Duration::from_micros(542_500)));
    assert!(r.is_leader(ms(542)));
    assert_eq!(r.fencing_token(ms(542)), Some(1));
    assert!(!r.is_leader(Duration::from_micros(542_500)));
}

#[test]
fn test_6_4_an_ack_of_an_older_round_never_shortens_the_lease() {
    let mut r = node("a", 3);
    elect(&mut r, ms(400));
    r.tick(ms(450)); // round 2
    r.step(ms(451), "b", Message::HeartbeatResponse { term: 1, seq: 2 });
    let expiry = r.lease_expiry();
    r.step(ms(452), "c", Message::HeartbeatResponse { term: 1, seq: 1 });
    assert_eq!(r.lease_expiry(), expiry);
}

#[test]
fn test_6_4_a_node_inside_a_lease_refuses_to_campaign() {
    let mut r = node("b", 3);
    r.step(ms(10), "a", Message::Heartbeat { term: 1, seq: 1 });
    assert!(r.campaign(ms(100)).is_empty());
    assert_eq!(r.role(), Role::Follower);
    r.campaign(ms(170));
    assert_eq!(r.role(), Role::Candidate);
}

// ----- robustness ----------------------------------------------------------------------------

#[test]
fn test_messages_from_non_members_and_from_itself_are_ignored() {
    let mut r = node("a", 3);
    assert!(r.step(ms(10), "mallory", vote(9)).is_empty());
    assert!(r.step(ms(10), "a", vote(9)).is_empty());
    assert_eq!(r.term(), 0);
}

#[test]
fn test_elected_and_demoted_alternate_across_leaderships() {
    let mut r = node("a", 3);
    let mut kinds = Vec::new();
    let mut reasons = Vec::new();
    let mut now = ms(0);
    for _ in 0..5 {
        now += ms(400);
        kinds.extend(events(&r.tick(now)));
        let term = r.term();
        kinds.extend(events(&r.step(now, "b", granted(term))));
        kinds.extend(events(&r.step(now, "b", Message::HeartbeatResponse { term, seq: 1 })));
        now += ms(400); // silence: the lease lapses
        let outs = r.tick(now);
        kinds.extend(events(&outs));
        reasons.extend(demotions(&outs));
    }
    let alternating: Vec<_> =
        kinds.into_iter().filter(|k| matches!(k, EventKind::Elected | EventKind::Demoted)).collect();
    assert_eq!(alternating.len(), 10);
    for pair in alternating.chunks(2) {
        assert_eq!(pair, [EventKind::Elected, EventKind::Demoted]);
    }
    assert_eq!(reasons, vec![DemoteReason::LostLease; 5]);
}

#[test]
fn test_time_that_steps_back_is_treated_as_standing_still() {
    // Every input is handled at the latest time the node has seen, never earlier.

    // A deadline never moves back: a heartbeat handled at a stepped-back time (100 ms) re-arms the
    // election timer from the latest time seen (400 ms), so no election fires early.
    let mut r = node("a", 3);
    r.step(ms(400), "b", Message::Heartbeat { term: 1, seq: 1 });
    let outs = r.step(ms(100), "b", Message::Heartbeat { term: 1, seq: 2 });
    assert_eq!(sends(&outs), vec![("b".into(), Message::HeartbeatResponse { term: 1, seq: 2 })]);
    let deadline = r.next_deadline().unwrap();
    assert!(deadline >= ms(400) + ms(150), "re-armed from 400 ms, not from 100 ms: {deadline:?}");
    for at in [ms(100), ms(399), ms(401), deadline - ms(1)] {
        assert!(r.tick(at).is_empty(), "no timer fires at {at:?}, before {deadline:?}");
    }
    assert_eq!((r.role(), r.next_deadline()), (Role::Follower, Some(deadline)));

    // Standing still, not going back: a tick at a stepped-back time is a tick at the latest time
    // seen, so the election timer that was due then fires, and re-arms from then.
    let mut r = node("a", 3);
    let due = r.next_deadline().unwrap();
    // Any input moves the clock; this one (a late vote response to a follower) changes nothing else.
    assert!(r.step(due, "b", granted(0)).is_empty());
    assert_eq!(r.role(), Role::Follower, "only a tick fires timers");
    r.tick(ms(1));
    assert_eq!((r.role(), r.term()), (Role::Candidate, 1), "the timer due at {due:?} fires");
    assert!(r.next_deadline().unwrap() >= due + ms(150), "re-armed from {due:?}, not from 1 ms");

    // A leader's heartbeat round is sent, and its lease measured, at the latest time seen.
    let mut r = node("a", 3);
    elect_with_lease(&mut r, ms(400)); // round 1 at 400 ms; next heartbeat due at 450 ms
    assert!(r.step(ms(460), "c", granted(1)).is_empty(), "a late vote moves the clock, nothing else");
    let outs = r.tick(ms(300));
    assert_eq!(sends(&outs).len(), 2, "round 2 was due at 450 ms: it goes out");
    assert!(sends(&outs).iter().all(|(_, m)| *m == Message::Heartbeat { term: 1, seq: 2 }));
    assert_eq!(r.next_deadline(), Some(ms(510)), "the next round is due 50 ms after 460 ms, not after 300 ms");
    r.step(ms(300), "b", Message::HeartbeatResponse { term: 1, seq: 2 });
    assert_eq!(r.lease_expiry(), Some(ms(460) + Timing::default().lease_duration()), "round 2 was sent at 460 ms");

    // An ack handled at a stepped-back time cannot count for a round that, at the latest time seen,
    // is too old to grant a lease: that would announce `elected` for a lease already over.
    let mut r = node("a", 3);
    elect(&mut r, ms(400)); // round 1, sent at 400 ms, could grant a lease until 542.5 ms at most
    assert!(r.step(ms(543), "c", granted(1)).is_empty(), "a late vote moves the clock, nothing else");
    let outs = r.step(ms(500), "b", Message::HeartbeatResponse { term: 1, seq: 1 });
    assert!(events(&outs).is_empty(), "no lease from an ack handled at 543 ms: {outs:?}");
    assert_eq!((r.role(), r.lease_expiry()), (Role::Leader, None));
    assert!(!r.is_leader(ms(543)));
}

#[test]
fn test_4_2_3_a_higher_term_reply_does_not_release_a_followers_promise_to_its_leader() {
    // Found by a fault schedule: b follows a; a stale vote_response from c at a higher term makes b
    // adopt that term and forget its leader, but it must still refuse c's vote until 150 ms after
    // it last heard from a, or c could lead while a's lease holds.
    let mut b = node("b", 3);
    b.step(ms(200), "a", Message::Heartbeat { term: 5, seq: 1 });
    b.step(ms(210), "c", Message::VoteResponse { term: 17, granted: false, pre_vote: false });
    assert_eq!((b.term(), b.leader()), (17, None));
    assert!(sends(&b.step(ms(211), "c", vote(18))).is_empty(), "higher term: still silent");
    assert_eq!(b.term(), 17);
    assert!(sends(&b.step(ms(212), "c", vote(17))).is_empty(), "same term: still silent");
    assert_eq!(b.hard_state().voted_for, None);
    assert_eq!(sends(&b.step(ms(350), "c", vote(18))), vec![("c".into(), granted(18))]);
}

// ----- leadership events: elected means "may act as leader", demoted says why ------------------

#[test]
fn elected_is_announced_only_once_the_lease_is_held() {
    let mut r = node("a", 5);
    r.tick(ms(400));
    let mut kinds = Vec::new();
    for p in ["b", "c"] {
        kinds.extend(events(&r.step(ms(401), p, granted(1))));
    }
    assert_eq!(r.role(), Role::Leader);
    assert_eq!(kinds, vec![EventKind::LeaderChanged], "the win alone announces no elected");
    assert!(!r.is_leader(ms(401)));
    // Round 1 went out at 401 ms; a majority of five is three, the leader counting itself.
    assert!(events(&r.step(ms(410), "b", Message::HeartbeatResponse { term: 1, seq: 1 })).is_empty());
    assert!(!r.is_leader(ms(410)));
    let outs = r.step(ms(420), "d", Message::HeartbeatResponse { term: 1, seq: 1 });
    assert_eq!(events(&outs), vec![EventKind::Elected]);
    let Output::Event(e) = &outs[0] else { panic!("an event: {outs:?}") };
    assert_eq!((e.term, e.leader.as_deref(), e.reason), (1, Some("a"), None));
    assert!(r.is_leader(ms(420)), "is_leader holds when elected is announced");
    // Later acks renew the lease without announcing anything.
    assert!(events(&r.step(ms(421), "e", Message::HeartbeatResponse { term: 1, seq: 1 })).is_empty());
    r.tick(ms(451));
    for p in ["b", "c"] {
        assert!(events(&r.step(ms(460), p, Message::HeartbeatResponse { term: 1, seq: 2 })).is_empty());
    }
    assert_eq!(r.lease_expiry(), Some(ms(451) + Timing::default().lease_duration()));
}

#[test]
fn a_lapsed_lease_steps_the_leader_down_with_reason_lost_lease() {
    for check_quorum in [true, false] {
        let mut r = node_with("a", 3, timing(false, check_quorum), HardState::default());
        elect_with_lease(&mut r, ms(400)); // lease until 542.5 ms
        let expiry = Duration::from_micros(542_500);
        assert_eq!(r.lease_expiry(), Some(expiry));
        let mut now = ms(400);
        let mut last = Vec::new();
        while r.role() == Role::Leader {
            now = r.next_deadline().unwrap();
            assert!(now <= expiry, "the lapse is a deadline of its own");
            last = r.tick(now);
        }
        assert_eq!(now, expiry, "steps down the moment the lease lapses (check_quorum={check_quorum})");
        assert_eq!(events(&last), vec![EventKind::Demoted, EventKind::LeaderChanged]);
        assert_eq!(demotions(&last), vec![DemoteReason::LostLease]);
        assert!(sends(&last).is_empty(), "no heartbeat from a leader whose lease lapsed");
        assert_eq!((r.role(), r.term(), r.leader()), (Role::Follower, 1, None));
    }
}

#[test]
fn a_late_ack_never_revives_a_lapsed_lease() {
    for check_quorum in [true, false] {
        let mut r = node_with("a", 3, timing(false, check_quorum), HardState::default());
        elect_with_lease(&mut r, ms(400)); // lease until 542.5 ms
        r.tick(ms(450)); // round 2, unanswered so far
        r.tick(ms(500)); // round 3
        assert!(r.is_leader(ms(542)));
        // No tick at the lapse (a late driver): the ack of round 3 arrives after it. It would have
        // extended the lease to 642.5 ms, but the lapse is handled before the message.
        let outs = r.step(ms(543), "b", Message::HeartbeatResponse { term: 1, seq: 3 });
        assert_eq!(demotions(&outs), vec![DemoteReason::LostLease]);
        assert!(!events(&outs).contains(&EventKind::Elected));
        assert_eq!(r.role(), Role::Follower);
        for at in [543, 560, 600, 640] {
            assert!(!r.is_leader(ms(at)), "is_leader stays false for the rest of the term");
        }
        // The same through every other input of a leader.
        let mut r = node_with("a", 3, timing(false, check_quorum), HardState::default());
        elect_with_lease(&mut r, ms(400));
        let outs = r.resign(ms(600));
        assert_eq!(demotions(&outs), vec![DemoteReason::LostLease], "lapsed before the resign: nothing to hand off");
        assert!(sends(&outs).is_empty());
    }
}

#[test]
fn a_transfer_from_a_leader_whose_lease_lapsed_is_refused_and_its_tick_steps_it_down() {
    let mut r = node("a", 3);
    elect_with_lease(&mut r, ms(400));
    assert_eq!(r.transfer_leadership(ms(600), "b"), Err(TransferError::NotLeader));
    assert_eq!(r.role(), Role::Leader, "the refusal changes nothing");
    assert!(r.next_deadline().unwrap() <= ms(600), "the step-down is due at once");
    assert_eq!(demotions(&r.tick(ms(600))), vec![DemoteReason::LostLease]);
}

#[test]
fn a_higher_term_demotes_with_reason_higher_term() {
    for higher in [
        Message::Heartbeat { term: 2, seq: 1 },
        Message::HeartbeatResponse { term: 2, seq: 1 },
        Message::VoteResponse { term: 2, granted: false, pre_vote: false },
        Message::TimeoutNow { term: 2 },
    ] {
        let mut r = node("a", 3);
        elect_with_lease(&mut r, ms(400));
        let outs = r.step(ms(410), "b", higher.clone());
        assert_eq!(demotions(&outs), vec![DemoteReason::HigherTerm], "{higher:?}");
        assert!(r.role() != Role::Leader && r.term() >= 2, "{higher:?}");
    }
    // A vote request at a higher term: ignored inside the leader's lease (thesis 4.2.3), unless it
    // is a transfer campaign.
    let mut r = node("a", 3);
    elect_with_lease(&mut r, ms(400));
    assert!(r.step(ms(460), "c", vote(2)).is_empty());
    assert!(r.is_leader(ms(460)));
    let outs = r.step(ms(461), "c", Message::Vote { term: 2, pre_vote: false, transfer: true });
    assert_eq!(demotions(&outs), vec![DemoteReason::HigherTerm]);
    assert_eq!((r.role(), r.term(), r.hard_state().voted_for.as_deref()), (Role::Follower, 2, Some("c")));
}

#[test]
fn resign_demotes_with_reason_resigned() {
    let mut r = node("a", 3);
    elect_with_lease(&mut r, ms(400));
    let outs = r.resign(ms(410));
    assert_eq!(demotions(&outs), vec![DemoteReason::Resigned]);
    assert_eq!(sends(&outs), vec![("b".into(), Message::TimeoutNow { term: 1 })]);
    // transfer_leadership is a resignation too
    let mut r = node("a", 3);
    elect_with_lease(&mut r, ms(400));
    let outs = r.transfer_leadership(ms(410), "c").unwrap();
    assert_eq!(demotions(&outs), vec![DemoteReason::Resigned]);
    // and alone, with nobody to hand off to
    let cfg = Config::new("a", ["a"], Timing::default(), 0).unwrap();
    let mut r = Raft::new(cfg, HardState::default());
    r.tick(ms(0));
    r.tick(ms(300));
    assert!(r.is_leader(ms(300)));
    let outs = r.resign(ms(310));
    assert_eq!(demotions(&outs), vec![DemoteReason::Resigned]);
    assert_eq!(r.role(), Role::Follower);
}

#[test]
fn shut_down_demotes_with_reason_stopped() {
    let mut r = node("a", 5);
    elect_with_lease(&mut r, ms(400)); // b and c acknowledge round 1
    r.tick(ms(450));
    r.step(ms(451), "d", Message::HeartbeatResponse { term: 1, seq: 2 });
    let outs = r.shut_down(ms(452));
    assert_eq!(events(&outs), vec![EventKind::Demoted, EventKind::LeaderChanged]);
    assert_eq!(demotions(&outs), vec![DemoteReason::Stopped]);
    assert_eq!(sends(&outs), vec![("d".into(), Message::TimeoutNow { term: 1 })], "the same hand-off as resign");
    assert!(!r.is_leader(ms(452)));
    assert!(r.shut_down(ms(453)).is_empty(), "not a leader: nothing to do");
}

#[test]
fn a_leader_that_never_held_its_lease_emits_no_demoted() {
    // deposed by a higher term
    let mut r = node("a", 3);
    elect(&mut r, ms(400));
    let outs = r.step(ms(410), "b", Message::Heartbeat { term: 2, seq: 1 });
    assert_eq!(events(&outs), vec![EventKind::TermChanged, EventKind::LeaderChanged]);
    // check-quorum
    let mut r = node("a", 3);
    elect(&mut r, ms(400));
    let outs = r.tick(ms(550));
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(events(&outs), vec![EventKind::LeaderChanged]);
    // resign and shut_down still hand off
    for stop in [false, true] {
        let mut r = node("a", 3);
        elect(&mut r, ms(400));
        let outs = if stop { r.shut_down(ms(410)) } else { r.resign(ms(410)) };
        assert_eq!(events(&outs), vec![EventKind::LeaderChanged]);
        assert_eq!(sends(&outs), vec![("b".into(), Message::TimeoutNow { term: 1 })]);
    }
    // an ack that arrives once its round can no longer grant a lease earns nothing
    let mut r = node("a", 3);
    elect(&mut r, ms(400));
    let outs = r.step(ms(543), "b", Message::HeartbeatResponse { term: 1, seq: 1 });
    assert!(events(&outs).is_empty());
    assert_eq!((r.role(), r.lease_expiry()), (Role::Leader, None));
}

#[test]
fn a_term_absurdly_far_ahead_is_refused_and_never_adopted() {
    let mut a = Raft::new(Config::new("a", ["a", "b", "c"], Timing::default(), 1).unwrap(), HardState::default());
    a.tick(Duration::ZERO);
    let forged = Message::Heartbeat { term: u64::MAX, seq: 1 };
    assert!(!a.plausible(&forged));
    let out = a.step(Duration::from_millis(1), "b", forged);
    assert!(out.is_empty(), "nothing persisted, sent or announced: {out:?}");
    assert_eq!(a.term(), 0);
    let far_but_fine = Message::Heartbeat { term: MAX_TERM_AHEAD, seq: 1 };
    assert!(a.plausible(&far_but_fine));
}

#[test]
fn a_node_at_the_last_term_never_campaigns_and_never_wraps() {
    let cfg = Config::new("a", ["a", "b", "c"], Timing { pre_vote: false, ..Timing::default() }, 1).unwrap();
    let mut a = Raft::new(cfg, HardState { term: u64::MAX, voted_for: None });
    a.tick(Duration::ZERO);
    for ms in (0..5_000).step_by(50) {
        let out = a.tick(Duration::from_millis(ms));
        assert!(out.iter().all(|o| !matches!(o, Output::Persist(_))), "no term to move to: {out:?}");
    }
    assert_eq!((a.term(), a.role()), (u64::MAX, Role::Follower));
}

// ----- measures: for monitoring, never for a decision -------------------------------------------

#[test]
fn test_every_vote_request_is_counted_once_with_its_answer() {
    use super::measures::VoteAnswer::*;
    let mut r = node("a", 3);
    r.step(ms(200), "b", vote(1)); // granted
    r.step(ms(201), "c", vote(1)); // already voted for b
    r.step(ms(202), "b", vote(1)); // a repeat is granted again
    r.step(ms(203), "c", Message::Heartbeat { term: 2, seq: 1 }); // c leads term 2
    r.step(ms(204), "b", vote(1)); // stale
    r.step(ms(205), "b", Message::Vote { term: 3, pre_vote: true, transfer: false }); // silent: c's lease
    r.step(ms(206), "b", vote(3)); // silent too, and the term stays
    let v = r.vote_counts();
    let got: Vec<(bool, &str, u64)> = [false, true]
        .into_iter()
        .flat_map(|pre| super::measures::VoteAnswer::ALL.map(|a| (pre, a.name(), v.get(pre, a))))
        .filter(|(_, _, n)| *n > 0)
        .collect();
    assert_eq!(
        got,
        vec![
            (false, "granted", 2),
            (false, "stale_term", 1),
            (false, "already_voted", 1),
            (false, "in_lease", 1),
            (true, "in_lease", 1)
        ]
    );
    assert_eq!(v.get(false, LeaderKnown), 0);
    // Past c's lease, a pre-vote at c's own term is refused because b knows its leader.
    r.step(ms(400), "b", Message::Vote { term: 2, pre_vote: true, transfer: false });
    assert_eq!(r.vote_counts().get(true, LeaderKnown), 1);
}

#[test]
fn test_a_leader_measures_each_peers_round_trip_from_its_heartbeat_acks() {
    let mut r = node("a", 3);
    elect(&mut r, ms(300)); // round 1 sent at 300 ms
    r.step(ms(304), "b", Message::HeartbeatResponse { term: 1, seq: 1 });
    // c's ack comes after the round was settled by b's: it still measures c.
    r.step(ms(310), "c", Message::HeartbeatResponse { term: 1, seq: 1 });
    assert_eq!(r.round_trip("b").map(|t| t.last), Some(ms(4)));
    assert_eq!(r.round_trip("c").map(|t| t.last), Some(ms(10)));
    r.resign(ms(320));
    assert_eq!(r.round_trip("b"), None, "only a leader measures");
}
