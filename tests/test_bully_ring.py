"""Bully and Ring behind the same API as raft: Core, Simulation, Node and LocalCluster with
algorithm="bully" and algorithm="ring"."""

import warnings

import pytest

import quorate
from quorate import ConfigError


def test_core_runs_bully_and_its_messages_round_trip_as_dicts():
    c = quorate.Core("c", ["a", "b", "c"], algorithm="bully", seed=1)
    assert c.tick(0.0) == []
    out = c.tick(c.next_deadline())
    assert out[0] == {"kind": "persist", "term": 2, "voted_for": None}, "the epoch is durable before it is announced"
    assert [o["message"] for o in out if o["kind"] == "send"] == [{"type": "coordinator", "term": 2}] * 2
    now = c.next_deadline() - 0.001
    out = c.step(now, "a", {"type": "alive_ack", "term": 2, "seq": 0})
    assert [o["event"] for o in out] == ["elected"]
    assert c.is_leader(now) and c.fencing_token(now) == 2
    with pytest.raises(ConfigError, match="seq"):
        c.step(now, "a", {"type": "alive", "term": 2})


def test_core_takes_priorities_and_refuses_a_contradiction():
    c = quorate.Core("a", ["a", "b", "c"], algorithm="bully", priorities={"a": 9})
    c.tick(0.0)
    out = c.tick(c.next_deadline())
    assert out[0]["kind"] == "persist", "a outranks b and c: it coordinates at once"
    with pytest.raises(ConfigError, match="priorities"):
        quorate.Core("a", ["a", "b"], algorithm="bully", priority=1, priorities={"a": 2})
    with pytest.raises(ConfigError, match="priorities"):
        quorate.Core("a", ["a", "b"], algorithm="bully", priorities={"z": 2})


def test_simulation_elects_the_highest_rank_and_fails_over():
    sim = quorate.Simulation(5, algorithm="bully", seed=4)
    assert sim.run_until_leader(5.0) == "n5"
    sim.kill("n5")
    assert sim.run_until_leader(5.0) == "n4"
    sim.restart("n5")
    sim.run_for(0.5)
    assert sim.leader() == "n5"
    sim.check()
    ranked = quorate.Simulation(3, algorithm="bully", seed=4, priorities={"n1": 5})
    assert ranked.run_until_leader(5.0) == "n1"


def test_node_passes_priority_and_priorities_through():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        members = {"a": "127.0.0.1:1", "b": "127.0.0.1:2", "c": "127.0.0.1:3"}
        n = quorate.Node("a", members, algorithm="bully", priorities={"a": 4, "b": 1})
        assert (n.algorithm, n.priority) == ("bully", 4)
        assert quorate.Node("b", members, algorithm="bully", priority=7).priority == 7
        with pytest.raises(ConfigError, match="priorities"):
            quorate.Node("a", members, algorithm="bully", priority=1, priorities={"a": 2})
        with pytest.raises(ConfigError, match="priorities"):
            quorate.Node("a", members, algorithm="bully", priorities={"a": "high"})


@pytest.mark.parametrize("algorithm", ["bully", "ring"])
def test_local_cluster_runs_bully_and_ring_over_the_network(algorithm):
    with quorate.LocalCluster(3, algorithm=algorithm, priorities={"n1": 5}) as cluster:
        assert cluster.wait_for_leader(timeout=10) == "n1"
        cluster.kill("n1")
        assert cluster.wait_for_leader(timeout=10) == "n3"
        cluster.restart("n1")
        deadline = 10.0
        import time

        start = time.monotonic()
        while cluster.leader() != "n1" and time.monotonic() - start < deadline:
            time.sleep(0.05)
        assert cluster.leader() == "n1", "a recovering higher rank takes over (bully_preempt)"


def test_core_runs_ring_and_its_messages_round_trip_as_dicts():
    b = quorate.Core("b", ["a", "b", "c", "d"], algorithm="ring", seed=1)
    b.tick(0.0)
    out = b.tick(b.next_deadline())
    assert [o["message"] for o in out if o["kind"] == "send"] == [
        {"type": "ring_election", "term": 0, "candidate": "b", "hop": 1}
    ], "b's successor on the ring is c"
    assert [o["to"] for o in out if o["kind"] == "send"] == ["c"]
    d = quorate.Core("d", ["a", "b", "c", "d"], algorithm="ring", seed=1)
    d.tick(0.0)
    d.tick(d.next_deadline())
    out = d.step(1.0, "c", {"type": "ring_election", "term": 0, "candidate": "d", "hop": 5})
    assert out[0] == {"kind": "persist", "term": 3, "voted_for": None}
    sent = [o["message"] for o in out if o["kind"] == "send"]
    assert {"type": "ring_ack", "term": 0, "hop": 5} in sent
    assert {"type": "ring_coordinator", "term": 3, "leader": "d", "hop": 2} in sent
    with pytest.raises(ConfigError, match="candidate"):
        d.step(1.0, "c", {"type": "ring_election", "term": 0, "hop": 5})


def test_simulation_runs_ring_and_fails_over():
    sim = quorate.Simulation(5, algorithm="ring", seed=4)
    assert sim.run_until_leader(5.0) == "n5"
    sim.kill("n5")
    assert sim.run_until_leader(5.0) == "n4"
    sim.check()
