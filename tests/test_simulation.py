"""quorate.Simulation and quorate.sim.failover_trials: the engine in deterministic virtual time."""

from __future__ import annotations

import math
import statistics

import pytest

import quorate
from quorate import ConfigError, SafetyViolation


def agreed_leader(sim):
    leader = sim.leader()
    assert leader is not None
    for m in sim.members:
        st = sim.status(m)
        if st.role != "stopped":
            assert st.leader == leader, (m, st)
    return leader


@pytest.mark.parametrize("members", [1, 3, 5])
def test_a_group_elects_exactly_one_leader_that_every_node_agrees_on(members):
    sim = quorate.Simulation(members, seed=3)
    leader = sim.run_until_leader(5.0)
    assert leader is not None
    sim.run_for(1.0)
    assert agreed_leader(sim) == leader
    leading = [m for m in sim.members if sim.status(m).is_leader]
    assert leading == [leader]
    sim.check()


def test_named_members_and_the_default_of_five():
    assert quorate.Simulation(["x", "y", "z"]).members == ["x", "y", "z"]
    assert quorate.Simulation().members == ["n1", "n2", "n3", "n4", "n5"]


def test_same_seed_and_calls_give_the_identical_event_list():
    def run(seed):
        sim = quorate.Simulation(5, seed=seed, drop_rate=0.1, duplicate_rate=0.05)
        leader = sim.run_until_leader(5.0)
        sim.kill(leader)
        sim.run_for(2.0)
        sim.partition(["n1", "n2"], ["n3", "n4", "n5"])
        sim.run_for(2.0)
        sim.heal()
        sim.restart(leader)
        sim.run_for(2.0)
        return [e.to_dict() for e in sim.events], sim.stats

    first, stats1 = run(11)
    second, stats2 = run(11)
    assert first == second and stats1 == stats2
    assert len(first) > 10
    other, _ = run(12)
    assert other != first, "a different seed gives a different history"


def test_crashing_the_leader_elects_another_with_a_higher_term():
    sim = quorate.Simulation(5, seed=5)
    old = sim.run_until_leader(5.0)
    old_term = sim.status(old).term
    sim.kill(old)
    assert sim.status(old).role == "stopped"
    new = sim.run_until_leader(5.0)
    assert new is not None and new != old
    assert sim.status(new).term > old_term
    sim.restart(old)
    sim.run_for(1.0)
    assert agreed_leader(sim) == new
    assert sim.status(old).term >= old_term, "a restart keeps the persisted term"
    sim.check()


def test_a_leader_cut_off_from_the_majority_loses_is_leader_and_the_majority_elects():
    sim = quorate.Simulation(5, seed=8)
    old = sim.run_until_leader(5.0)
    rest = [m for m in sim.members if m != old]
    sim.partition([old, rest[0]], rest[1:])
    sim.run_for(0.3)  # 2 x election_timeout[0]: check-quorum has stepped it down
    assert not sim.status(old).is_leader
    assert sim.status(old).role != "leader"
    new = sim.run_until_leader(5.0) or next(m for m in rest[1:] if sim.status(m).role == "leader")
    assert new in rest[1:]
    sim.heal()
    sim.run_for(1.0)
    assert agreed_leader(sim) == new, "pre-vote: the minority rejoins without deposing the new leader"
    sim.check()


def test_a_paused_leader_is_replaced_and_reads_is_leader_false_on_resume():
    sim = quorate.Simulation(3, seed=2)
    old = sim.run_until_leader(5.0)
    sim.pause(old, 1.0)
    sim.run_for(0.9)
    leaders = [m for m in sim.members if m != old and sim.status(m).role == "leader"]
    assert len(leaders) == 1
    assert not sim.status(old).is_leader, "its lease ran out while it was frozen"
    sim.run_for(0.5)
    assert agreed_leader(sim) == leaders[0]
    sim.check()


def test_clock_rates_within_the_drift_bound_keep_every_guarantee():
    sim = quorate.Simulation(5, seed=4, drop_rate=0.05)
    for i, m in enumerate(sim.members):
        sim.set_clock_rate(m, 1.0 + 0.01 * i)
    for _ in range(10):
        leader = sim.run_until_leader(5.0)
        assert leader is not None
        sim.run_for(0.5)
        sim.kill(leader)
        sim.run_for(0.2)
        sim.restart(leader)
    assert float(sim.status("n5").faults.get("clock_rate", 1.0)) == pytest.approx(1.04)
    sim.check()


def test_thirty_percent_drop_still_elects_one_leader():
    sim = quorate.Simulation(5, seed=9, drop_rate=0.3)
    assert sim.run_until_leader(30.0) is not None
    sim.check()


def test_status_events_and_stats_describe_the_run():
    sim = quorate.Simulation(3, seed=1)
    leader = sim.run_until_leader(5.0)
    st = sim.status(leader)
    assert isinstance(st, quorate.Status) and st.node_id == leader and st.role == "leader" and st.voted_for == leader
    assert st.lease_remaining is not None and st.lease_remaining > 0 and st.health == "ok"
    assert st.fencing_token == st.term or not st.is_leader
    elected = [e for e in sim.events if e.kind == "elected"]
    assert elected[-1].node_id == leader and elected[-1].fencing_token == elected[-1].term
    assert all(a.at <= b.at for a, b in zip(sim.events, sim.events[1:]))
    assert sim.stats["messages_sent"] > 0 and sim.stats["elections_started"] >= 1
    assert "Event(kind=" in repr(elected[-1])


def test_safety_violation_is_an_assertion_error_and_a_quorate_error():
    assert issubclass(SafetyViolation, AssertionError) and issubclass(SafetyViolation, quorate.QuorateError)
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, quorate.QuorateError)


def test_failover_trials_are_reproducible_and_plausible():
    times = quorate.sim.failover_trials(200, members=5, seed=1)
    assert len(times) == 200
    assert all(math.isfinite(t) and t > 0 for t in times)
    # Generous: the model bound for 150-300 ms timeouts is about 0.2 s; nothing should take 2 s.
    assert 0.05 < statistics.median(times) < 0.5
    assert max(times) < 2.0
    assert quorate.sim.failover_trials(20, members=5, seed=1) == times[:20]


def test_failover_trials_accept_simulation_options():
    fast = quorate.sim.failover_trials(100, members=5, seed=2, election_timeout=(0.012, 0.024), heartbeat_interval=0.006)
    slow = quorate.sim.failover_trials(100, members=5, seed=2)
    assert statistics.median(fast) < statistics.median(slow)


# ----- messages in flight, and the election controls ----------------------------------------------


def test_in_flight_after_a_forced_timeout_lists_the_candidates_vote_requests_with_their_times():
    # Latency fixed at 2 ms. Every raft node promises silence for election_timeout[0] (0.15 s) from
    # boot; with seed 1 no timer fires until 0.25 s, so at 0.15 s n2's forced timeout is the only
    # thing on the wire.
    sim = quorate.Simulation(3, seed=1, latency=(0.002, 0.002))
    assert sim.in_flight() == []
    sim.run_for(0.15)
    assert sim.events == [] and sim.in_flight() == []
    sim.campaign("n2")
    sent = sim.in_flight()
    assert [(m.sender, m.receiver, m.kind, m.term) for m in sent] == [("n2", "n1", "pre_vote", 1), ("n2", "n3", "pre_vote", 1)]
    for m in sent:
        assert m.sent_at == pytest.approx(0.15) and m.deliver_at == pytest.approx(0.152)
        assert m.doomed is False
        assert m.message == {"type": "vote", "term": 1, "pre_vote": True, "transfer": False}
        assert m.progress(0.15) == 0.0 and m.progress(0.151) == pytest.approx(0.5) and m.progress(1.0) == 1.0
    assert sent[0].to_dict()["receiver"] == "n1" and "kind='pre_vote'" in repr(sent[0]).replace('"', "'")
    assert sim.in_flight() == sent, "a view: looking twice changes nothing"

    sim.kill("n3")
    assert [m.doomed for m in sim.in_flight()] == [False, True], "n3 is down: its copy will be dropped"
    sim.run_for(0.002)  # both arrive: n1 grants, n3's copy is dropped
    assert [(m.sender, m.receiver, m.kind) for m in sim.in_flight()] == [("n1", "n2", "pre_vote_response")]
    assert sim.in_flight()[0].message["granted"] is True
    sim.run_for(0.002)  # granted: n2 campaigns for real in term 1
    votes = sim.in_flight()
    assert [(m.sender, m.receiver, m.kind, m.term, m.doomed) for m in votes] == [
        ("n2", "n1", "vote", 1, False),
        ("n2", "n3", "vote", 1, True),
    ]
    assert all(m.sent_at == pytest.approx(0.154) and m.deliver_at == pytest.approx(0.156) for m in votes)
    assert sim.run_until_leader(1.0) == "n2"
    sim.check()


def test_in_flight_is_empty_when_the_network_drops_everything_and_shows_duplicates():
    sim = quorate.Simulation(3, seed=1, drop_rate=1.0)
    sim.run_for(0.15)
    sim.campaign("n1")
    assert sim.in_flight() == [] and sim.stats["messages_dropped"] == 2
    sim = quorate.Simulation(3, seed=1, duplicate_rate=1.0)
    sim.run_for(0.15)
    sim.campaign("n1")
    assert sorted(m.receiver for m in sim.in_flight()) == ["n2", "n2", "n3", "n3"]


def test_transfer_leadership_sends_timeout_now_and_the_target_campaigns_at_once():
    sim = quorate.Simulation(3, seed=4, latency=(0.005, 0.005))
    leader = sim.run_until_leader(5.0)
    sim.run_for(0.2)
    follower = next(m for m in sim.members if m != leader)
    term = sim.status(leader).term

    sim.campaign(follower)  # it promised the leader silence: nothing happens
    assert not [m for m in sim.in_flight() if m.sender == follower and m.kind != "heartbeat_response"]
    assert sim.resign(follower) is False
    with pytest.raises(quorate.NotLeaderError):
        sim.transfer_leadership(follower, leader)
    with pytest.raises(ConfigError, match="itself"):
        sim.transfer_leadership(leader, leader)
    with pytest.raises(ConfigError):
        sim.transfer_leadership(leader, "n9")

    now = sim.now
    sim.transfer_leadership(leader, follower)
    handoff = [m for m in sim.in_flight() if m.kind == "timeout_now"]
    assert [(m.sender, m.receiver, m.term) for m in handoff] == [(leader, follower, term)]
    assert handoff[0].sent_at == pytest.approx(now) and handoff[0].deliver_at == pytest.approx(now + 0.005)
    sim.run_for(0.005)  # it arrives: the follower campaigns at once, no pre-vote, the transfer flag set
    votes = [m for m in sim.in_flight() if m.sender == follower]
    assert sorted(m.receiver for m in votes) == sorted(m for m in sim.members if m != follower)
    assert all(m.kind == "vote" and m.term == term + 1 and m.message["transfer"] for m in votes)
    assert sim.run_until_leader(1.0) == follower
    sim.run_for(0.2)

    assert sim.resign(follower) is True
    demoted = [e for e in sim.events if e.kind == "demoted"]
    assert (demoted[-1].node_id, demoted[-1].reason) == (follower, "resigned")
    assert sim.run_until_leader(1.0) not in (None, follower)
    sim.kill(leader)
    with pytest.raises(ConfigError, match="down"):
        sim.campaign(leader)
    with pytest.raises(ConfigError, match="not a member"):
        sim.campaign("n9")
    sim.check()


@pytest.mark.parametrize("algorithm, first", [("bully", "election"), ("ring", "ring_election")])
def test_in_flight_names_bully_and_ring_messages(algorithm, first):
    sim = quorate.Simulation(3, algorithm=algorithm, seed=4, latency=(0.002, 0.002))
    sim.campaign("n1")
    sent = sim.in_flight()
    assert sent and all(m.sender == "n1" and m.kind == first for m in sent), sent
    leader = sim.run_until_leader(5.0)
    seen = set()
    for _ in range(100):
        sim.run_for(0.001)
        seen |= {m.kind for m in sim.in_flight()}
    heartbeat = {"bully": {"alive", "alive_ack"}, "ring": {"ring_alive", "ring_alive_ack"}}[algorithm]
    assert heartbeat <= seen, (leader, seen)
    assert all(m.term is not None for m in sim.in_flight() if m.kind != "ring_ack")
    sim.check()
