"""The monitoring the articles ask for, as each node sees it: how long leaderships last, how long
the node goes without a leader (failover time from here), how often elections start, and the
abnormal patterns named in status().warnings."""

from __future__ import annotations

import time

from conftest import wait_until

ELECT = 15.0


def test_tenure_and_leaderless_gaps_are_measured_across_a_failover(quorate_cluster):
    c = quorate_cluster(3)
    leader = c.wait_for_leader(ELECT)
    survivor = next(n for i, n in c.nodes.items() if i != leader)
    # The cluster's leader is the one a majority follows; this member may learn of it a moment later.
    wait_until(lambda: survivor.leader == leader, ELECT, "the survivor following the leader")
    first = survivor.status()
    assert first.leaderless_histogram["count"] == 1, "the gap from start to the first leader"
    assert first.leaderless_for is None and first.term_changes >= 1
    time.sleep(0.5)
    c.nodes[leader].resign()  # the old leader's tenure ends; the others see a (short) gap
    new = wait_until(lambda: c.leader() not in (None, leader) and c.leader(), ELECT, "a new leader")
    old = c.nodes[leader].status()
    assert old.tenure_histogram["count"] == 1 and old.tenure_histogram["sum"] >= 0.5, old.tenure_histogram
    buckets = old.tenure_histogram["buckets"]
    assert tuple(buckets[-1]) == (float("inf"), 1) and all(b[1] <= 1 for b in buckets)
    assert c.nodes[new].status().leading_for is not None
    c.kill(new)
    wait_until(lambda: c.leader() not in (None, new), ELECT, "a leader after the kill")
    gaps = survivor.status().leaderless_histogram
    assert gaps["count"] >= 2 and gaps["sum"] > 0, gaps


def test_an_isolated_node_warns_of_unreachable_peers_and_an_election_storm(quorate_cluster):
    c = quorate_cluster(3, pre_vote=False, election_timeout=(0.05, 0.1), heartbeat_interval=0.02)
    c.wait_for_leader(ELECT)
    lonely = c.nodes["n3"]
    lonely.faults.isolate()
    warnings = wait_until(
        lambda: [w for w in lonely.status().warnings if "storm" in w or "unreachable" in w]
        if any("storm" in w for w in lonely.status().warnings) else None,
        ELECT, "an election storm on the isolated node (it campaigns every timeout without pre-vote)",
    )
    assert any("election storm" in w for w in warnings), warnings
    assert lonely.status().elections_last_minute > 10


def test_a_clock_rate_near_the_drift_bound_is_warned_of(quorate_cluster):
    c = quorate_cluster(1)
    c.wait_for_leader(ELECT)
    node = c.nodes["n1"]
    assert node.status().warnings == []
    node.faults.clock_rate(1.045)  # max_clock_drift is 0.05
    assert any("clock rate" in w for w in node.status().warnings)
    node.faults.clock_rate(1.01)
    assert not any("clock rate" in w for w in node.status().warnings)


def test_a_dead_peer_is_warned_of_once_unreachable_for_longer_than_the_election_timeout(quorate_cluster):
    c = quorate_cluster(3)
    c.wait_for_leader(ELECT)
    c.kill("n3")
    watcher = c.nodes["n1"]
    wait_until(lambda: any("'n3'" in w or '"n3"' in w for w in watcher.status().warnings), ELECT, "the warning")
    c.restart("n3")
    wait_until(lambda: not any("n3" in w for w in watcher.status().warnings), ELECT, "the warning gone")


def test_a_leader_measures_each_peers_round_trip_and_an_injected_delay_shows_in_it(quorate_cluster):
    c = quorate_cluster(3)
    leader = c.wait_for_leader(ELECT)
    node = c.nodes[leader]
    trips = wait_until(
        lambda: (lambda p: p if all(v.round_trip is not None for v in p.values()) else None)(node.status().peers),
        ELECT, "a round trip to every peer")
    assert all(0.0 < p.round_trip < 1.0 for p in trips.values()), trips
    followers = [n for i, n in c.nodes.items() if i != leader]
    assert all(p.round_trip is None for f in followers for p in f.status().peers.values()), "only a leader measures"
    slow = followers[0]
    slow.faults.delay(0.05)  # its acks now take 50 ms longer; the smoothed value follows within ~1 s
    wait_until(lambda: (node.status().peers[slow.node_id].round_trip or 0) > 0.04, ELECT, "the delay in the round trip")
    other = node.status().peers[followers[1].node_id].round_trip
    assert other is not None and other < 0.04, "the other peer's round trip is its own"
    node.stop()
    assert all(p.round_trip is None for p in node.status().peers.values()), "a stopped node measures nothing"


def test_votes_answered_are_counted_by_kind_and_answer_and_survive_a_restart(quorate_cluster):
    c = quorate_cluster(3)  # pre-vote on: every election asks pre-votes first
    leader = c.wait_for_leader(ELECT)
    answers = {"granted", "stale_term", "already_voted", "leader_known", "in_lease"}
    statuses = {i: n.status() for i, n in c.nodes.items()}
    for s in statuses.values():
        assert set(s.votes) == {"vote", "pre_vote"} and all(set(v) == answers for v in s.votes.values()), s.votes
    # The leader won a majority: at least one peer granted it a pre-vote and a vote.
    assert sum(s.votes["vote"]["granted"] for i, s in statuses.items() if i != leader) >= 1
    assert sum(s.votes["pre_vote"]["granted"] for i, s in statuses.items() if i != leader) >= 1
    voter = next(i for i, s in statuses.items() if i != leader and s.votes["vote"]["granted"] >= 1)
    before = statuses[voter].votes
    c.nodes[voter].stop()
    c.nodes[voter].start()
    after = c.nodes[voter].status().votes
    assert all(after[k][a] >= before[k][a] for k in before for a in answers), "counts never go back"
    assert c.nodes[voter].status().to_dict()["votes"] == after


def test_a_round_trip_that_eats_the_lease_is_warned_of_as_slow_links(quorate_cluster):
    # Lease ~0.14 s; heartbeat 0.05 s + a 0.07 s round trip is over 80% of it.
    c = quorate_cluster(3, election_timeout=(0.15, 0.3), heartbeat_interval=0.05)
    leader = c.wait_for_leader(ELECT)
    assert not any(w.startswith("slow links") for w in c.nodes[leader].status().warnings)
    for n in c.nodes.values():
        n.faults.delay(0.07)
    wait_until(lambda: any(w.startswith("slow links") for n in c.nodes.values() for w in n.status().warnings),
               ELECT, "a slow-links warning")
