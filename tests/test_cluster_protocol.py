"""quorate.Cluster: LocalCluster and Simulation answer the same calls, with one leader rule."""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable

import pytest

import quorate
from quorate import ConfigError
from quorate.protocol import leader_of

ELECT = 10.0  # generous: a loaded 2-core machine must not flake (an election takes ~0.2-0.5 s)


@pytest.fixture(params=["local", "simulated"])
def cluster(request: Any, quorate_cluster: Any, quorate_simulation: Any) -> quorate.Cluster:
    if request.param == "local":
        return quorate_cluster(5)
    return quorate_simulation(5, seed=3)


def run_until(cluster: quorate.Cluster, done: Callable[[], bool], seconds: float = ELECT) -> None:
    """Lets the cluster run (sleep or simulate) until `done()`, for at most `seconds` of its clock."""
    end = cluster.now + seconds
    while not done():
        assert cluster.now < end, "the condition did not come in time"
        cluster.run_for(0.01)


def test_both_clusters_are_a_cluster(quorate_cluster, quorate_simulation):
    local = quorate_cluster(3, start=False)
    sim = quorate_simulation(3)
    assert isinstance(local, quorate.Cluster) and isinstance(sim, quorate.Cluster)
    assert not isinstance(local.nodes["n1"], quorate.Cluster)
    assert local.virtual_time is False and sim.virtual_time is True
    assert local.members == sim.members == ["n1", "n2", "n3"]


def test_the_same_calls_on_both(cluster):
    leader = cluster.wait_for_leader(ELECT)
    assert cluster.leader() == leader
    st = cluster.status(leader)
    assert isinstance(st, quorate.Status) and st.role == "leader" and st.is_leader and st.node_id == leader
    statuses = cluster.statuses()
    assert list(statuses) == cluster.members and all(isinstance(s, quorate.Status) for s in statuses.values())
    assert all(isinstance(e, quorate.Event) for e in cluster.events)
    assert any(e.kind == "elected" and e.node_id == leader for e in cluster.events)

    follower = next(i for i in cluster.members if i != leader)
    cluster.pause(follower)
    run_until(cluster, lambda: "paused" in cluster.status(follower).faults)
    cluster.resume(follower)
    assert "paused" not in cluster.status(follower).faults
    before = cluster.now
    cluster.pause(follower, 0.2)  # a pause with a length ends by itself
    run_until(cluster, lambda: "paused" not in cluster.status(follower).faults)
    assert cluster.now >= before + 0.2

    cluster.set_clock_rate(follower, 1.02)
    assert cluster.status(follower).faults["clock_rate"] == "1.02"
    cluster.set_clock_rate(follower, 1.0)
    assert "clock_rate" not in cluster.status(follower).faults
    cluster.set_drop_rate(0.0)

    cluster.isolate(follower)
    cluster.run_for(0.3)
    cluster.heal()
    cluster.kill(follower)
    assert cluster.status(follower).role == "stopped" and cluster.status(follower).health == "stopped"
    cluster.restart(follower)
    run_until(cluster, lambda: cluster.status(follower).leader is not None)

    leader = cluster.wait_for_leader(ELECT)
    assert cluster.resign(next(i for i in cluster.members if i != leader)) is False, "only a leader resigns"
    assert cluster.resign(leader) is True
    leader = cluster.wait_for_leader(ELECT)
    with cluster.faults_for(0.5):
        cluster.kill(leader)
    assert cluster.status(leader).role != "stopped", "the window restarted the killed leader"
    cluster.wait_for_leader(ELECT)
    with pytest.raises(ConfigError):
        cluster.kill("nobody")
    with pytest.raises(ConfigError):
        cluster.status("nobody")
    with pytest.raises(ConfigError):
        cluster.run_for(-1.0)


def test_the_leader_rule_under_a_partition_is_the_majority_sides_leader(cluster):
    old = cluster.wait_for_leader(ELECT)
    others = [i for i in cluster.members if i != old]
    minority, majority = [old, others[0]], others[1:]
    cluster.partition(minority, majority)
    run_until(cluster, lambda: cluster.leader() in majority)
    new = cluster.leader()
    assert new is not None and cluster.status(new).is_leader
    assert not cluster.status(old).is_leader, "the cut-off leader's lease ran out"
    # The minority does not follow the new leader, yet the majority's leader is the leader: the
    # old Simulation rule (agreed by every live node) said None here.
    run_until(cluster, lambda: all(cluster.status(i).leader != new for i in minority))
    assert cluster.leader() == new
    cluster.heal()
    run_until(cluster, lambda: all(s.leader == cluster.leader() is not None for s in cluster.statuses().values()))


def test_leader_of_counts_a_majority_of_all_members():
    up = [("a", True, True, "a"), ("b", True, False, "a"), ("c", True, False, "a")]
    down = [("d", False, False, None), ("e", False, False, None)]
    assert leader_of(up + down) == "a", "3 of 5 recognise a: a majority even with two down"
    assert leader_of(up[:2] + down + [("c", False, False, "a")]) is None, "a down member recognises nobody"
    assert leader_of([("a", True, False, "a"), ("b", True, False, "a"), ("c", True, False, "a")]) is None, "no lease"
    # A stale leader still holding its lease on the minority side is not the leader.
    split = [("a", True, True, "a"), ("b", True, False, "a"), ("c", True, True, "c"), ("d", True, False, "c"),
             ("e", True, False, "c")]
    assert leader_of(split) == "c"
    assert leader_of([]) is None


def test_the_old_spellings_warn_and_still_work(quorate_cluster, quorate_simulation):
    sim = quorate_simulation(3, seed=1)
    leader = sim.wait_for_leader(5.0)
    with pytest.warns(DeprecationWarning, match="kill"):
        sim.crash(leader)
    assert sim.status(leader).role == "stopped"
    with pytest.warns(DeprecationWarning, match="quorate.Status"):
        assert sim.status(leader)["up"] is False
    with pytest.warns(DeprecationWarning, match="quorate.Status"):
        assert sim.status(leader)["role"] == "stopped"
    with pytest.warns(DeprecationWarning):
        assert sim.status(leader)["paused"] is False and sim.status(leader)["clock_rate"] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sim.status(leader).role == "stopped"  # the new spelling does not warn
        sim.kill(next(i for i in sim.members if i != leader))
    local = quorate_cluster(1)
    local.wait_for_leader(ELECT)
    with pytest.warns(DeprecationWarning, match="events"):
        history = local.history
    assert history == local.events and history


def test_simulation_wait_for_leader_raises_timeout_and_takes_none():
    sim = quorate.Simulation(3, seed=2)
    sim.kill("n2")
    sim.kill("n3")
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="no leader"):
        sim.wait_for_leader(2.0)
    assert sim.now == pytest.approx(2.0) and time.monotonic() - t0 < 30
    with pytest.raises(ConfigError, match="timeout"):
        sim.run_until_leader(None)  # type: ignore[arg-type]
    sim.restart("n2")
    assert sim.wait_for_leader(None) in ("n1", "n2")
