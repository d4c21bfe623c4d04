"""quorate's pytest plugin: registered through the pytest11 entry point, its fixtures clean up
even after a failing test, its helpers, and the tests of docs/testing.md (the leader-only job
example among them) pass as written."""

from __future__ import annotations

import importlib.metadata
import pathlib
import re
import time

import pytest

import quorate
from quorate.errors import ConfigError
from quorate.pytest_plugin import (
    ClusterFactory,
    SimulationFactory,
    assert_single_leader,
    faults_for,
    wait_for_new_leader,
)

pytest_plugins = ["pytester"]

ELECT = 15.0
TESTING_MD = pathlib.Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Runs pytest in a fresh process, as a user's project would: the plugin comes from the
    installed package's entry point, nothing else."""
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args, timeout=600)


def docs_python_blocks() -> list:
    return re.findall(r"```python\n(.*?)```", TESTING_MD.read_text(), re.S)


# ----- registration and the docs ------------------------------------------------------------------


def test_the_plugin_is_registered_through_the_pytest11_entry_point(pytestconfig):
    eps = importlib.metadata.entry_points()
    group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", [])
    ours = [ep for ep in group if ep.name == "quorate"]
    assert [ep.value for ep in ours] == ["quorate.pytest_plugin"]
    assert pytestconfig.pluginmanager.has_plugin("quorate")


def test_the_leader_only_job_example_in_the_docs_passes_as_written(pytester):
    text = TESTING_MD.read_text()
    example = re.search(r"<!-- example: leader-only job -->\n```python\n(.*?)```", text, re.S)
    assert example, "docs/testing.md shows the leader-only job example"
    assert "run_while_leading" in example.group(1) and "cluster.kill(old)" in example.group(1)
    pytester.makepyfile(test_leader_job=example.group(1))
    result = run_inner(pytester)
    result.assert_outcomes(passed=1)


def test_every_test_in_the_testing_guide_passes(pytester):
    blocks = docs_python_blocks()
    assert len(blocks) >= 5, "imports, three short tests, the example"
    source = "\n\n".join(blocks)
    assert source.count("\ndef test_") + source.startswith("def test_") >= 4
    pytester.makepyfile(test_guide=source)
    result = run_inner(pytester)
    result.assert_outcomes(passed=source.count("def test_"))


# ----- fixtures --------------------------------------------------------------------------------------


def test_clusters_are_stopped_and_cleaned_even_when_the_test_fails_or_errors(pytester):
    pytester.makepyfile(
        test_inner="""
        import os
        import pytest

        made = []

        def test_fails(quorate_cluster):
            c = quorate_cluster(3)
            c.wait_for_leader(15)
            made.append((c, list(c.nodes.values()), os.path.dirname(next(iter(c.data_dirs.values())))))
            assert False, "this test fails on purpose"

        def test_raises_and_makes_two(quorate_cluster):
            a = quorate_cluster(["a1", "a2", "a3"])
            b = quorate_cluster(1, start=False)
            made.append((a, list(a.nodes.values()), os.path.dirname(next(iter(a.data_dirs.values())))))
            made.append((b, list(b.nodes.values()), os.path.dirname(next(iter(b.data_dirs.values())))))
            raise RuntimeError("this test raises on purpose")

        def test_afterwards_everything_was_stopped_and_removed():
            assert len(made) == 3
            for cluster, nodes, root in made:
                assert not cluster.running
                assert all(n.role == "stopped" for n in nodes), [n.role for n in nodes]
                assert not os.path.exists(root), root
        """
    )
    result = run_inner(pytester)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*this test fails on purpose*"])


def test_simulations_are_safety_checked_at_teardown_unless_asked_not_to(pytester):
    pytester.makepyfile(
        test_inner="""
        import quorate

        class Broken:
            # stands in for a simulation whose checker saw a guarantee broken
            def check(self):
                raise quorate.SafetyViolation("at 1.000000s: two leaders in term 3 (staged)")

        def test_clean(quorate_simulation):
            sim = quorate_simulation(5, seed=3)
            assert sim.run_until_leader(5.0) is not None

        def test_broken_is_reported(quorate_simulation):
            quorate_simulation(3)
            quorate_simulation._checked.append(Broken())

        def test_unchecked(quorate_simulation):
            sim = quorate_simulation(3, check=False)
            assert sim not in quorate_simulation._checked
        """
    )
    result = run_inner(pytester)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*SafetyViolation*two leaders in term 3 (staged)*"])


def test_the_cluster_factory_passes_options_to_every_node(quorate_cluster):
    elected = []
    cluster = quorate_cluster(3, election_timeout=(0.2, 0.4), heartbeat_interval=0.04, on_elected=elected.append)
    assert isinstance(quorate_cluster, ClusterFactory) and quorate_cluster.clusters == [cluster]
    leader = assert_single_leader(cluster, ELECT)
    assert cluster.nodes[leader].status().health == "ok"
    deadline = time.monotonic() + ELECT
    while not elected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert elected and elected[0].node_id == leader
    idle = quorate_cluster(["x1"], start=False)
    assert not idle.running and idle.nodes["x1"].role == "stopped"
    with pytest.raises(ConfigError):
        quorate_cluster(3, algorithm="paxos")


def test_the_simulation_factory(quorate_simulation):
    sim = quorate_simulation(3, seed=5, election_timeout=(0.2, 0.4))
    assert isinstance(quorate_simulation, SimulationFactory) and quorate_simulation.simulations == [sim]
    assert sim.members == ["n1", "n2", "n3"]


# ----- helpers ---------------------------------------------------------------------------------------


def test_assert_single_leader_on_a_cluster_a_node_list_a_dict_and_a_simulation(quorate_cluster, quorate_simulation):
    cluster = quorate_cluster(3)
    leader = assert_single_leader(cluster, ELECT)
    assert cluster.nodes[leader].is_leader
    assert assert_single_leader(list(cluster.nodes.values()), ELECT) == leader
    assert assert_single_leader(dict(cluster.nodes), ELECT) == leader
    sim = quorate_simulation(5, seed=2)
    sim_leader = assert_single_leader(sim, timeout=5.0)
    assert sim_leader == sim.leader()
    with pytest.raises(ConfigError):
        assert_single_leader("n1")
    with pytest.raises(ConfigError, match="timeout"):
        assert_single_leader(cluster, timeout=-1)


def test_assert_single_leader_fails_with_every_nodes_state_when_there_is_no_majority(quorate_cluster):
    cluster = quorate_cluster(3)
    leader = assert_single_leader(cluster, ELECT)
    for node_id in [i for i in cluster.nodes if i != leader]:
        cluster.kill(node_id)
    time.sleep(1.0)  # until then the leader may rightly still hold the lease its peers granted
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="no single agreed leader within 1.0 s") as info:
        assert_single_leader(cluster, timeout=1.0)
    assert time.monotonic() - t0 < 10.0
    assert all(f"{i}: " in str(info.value) for i in cluster.nodes)


def test_wait_for_new_leader_after_killing_the_leader(quorate_cluster):
    cluster = quorate_cluster(3)
    old = assert_single_leader(cluster, ELECT)
    term = cluster.nodes[old].term
    cluster.kill(old)
    new = wait_for_new_leader(cluster, old, ELECT)
    assert new != old and cluster.nodes[new].term > term
    with pytest.raises(AssertionError, match="no leader other than"):
        wait_for_new_leader(cluster, new, timeout=0.5)
    assert wait_for_new_leader(cluster, None, ELECT) == new


def test_wait_for_new_leader_in_a_simulation(quorate_simulation):
    sim = quorate_simulation(5, seed=9)
    old = assert_single_leader(sim, 5.0)
    sim.kill(old)
    new = wait_for_new_leader(sim, old, timeout=5.0)
    assert new != old and sim.leader() == new
    with pytest.raises(AssertionError, match="virtual"):
        wait_for_new_leader(sim, new, timeout=0.5)


def test_faults_for_heals_a_partition_after_the_window_and_restarts_a_killed_node(quorate_cluster):
    cluster = quorate_cluster(5)
    old = assert_single_leader(cluster, ELECT)
    victim = next(i for i in cluster.nodes if i != old)
    t0 = time.monotonic()
    with cluster.faults_for(1.5) as window:
        cluster.partition([old], [i for i in cluster.nodes if i != old])
        cluster.kill(victim)
        cluster.nodes[old].faults.drop(0.5)
        assert not window.healed and 0 < window.remaining <= 1.5
    took = time.monotonic() - t0
    assert took >= 1.5, "the window is waited out"
    assert window.healed and window.remaining == 0
    assert cluster.nodes[victim].role != "stopped", "the killed node is back"
    assert all(n.faults.active() == {} for n in cluster.nodes.values())
    assert_single_leader(cluster, ELECT)
    assert cluster.leader() is not None and cluster.nodes[cluster.leader()].term > 0


def test_faults_for_heals_at_the_deadline_while_a_long_body_still_runs(quorate_cluster):
    cluster = quorate_cluster(3)
    assert_single_leader(cluster, ELECT)
    node = cluster.nodes["n1"]
    with faults_for(node, 0.5) as window:
        node.faults.pause()
        assert node.faults.active() == {"paused": "true"}
        assert window.wait_healed(10.0), "healed by the timer, inside the block"
        assert node.faults.active() == {}
    assert node.faults.active() == {}


def test_faults_for_heals_at_once_when_the_body_raises(quorate_cluster):
    cluster = quorate_cluster(3)
    old = assert_single_leader(cluster, ELECT)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="boom"):
        with faults_for(cluster, 30.0):
            cluster.partition([old], [i for i in cluster.nodes if i != old])
            raise RuntimeError("boom")
    assert time.monotonic() - t0 < 10.0
    assert all(n.faults.active() == {} for n in cluster.nodes.values())


def test_faults_for_a_simulation_is_virtual_time(quorate_simulation):
    sim = quorate_simulation(5, seed=4)
    old = assert_single_leader(sim, 5.0)
    start = sim.now
    with faults_for(sim, 2.0):
        sim.partition([old], [i for i in sim.members if i != old])
        sim.kill(next(i for i in sim.members if i != old))
        new = wait_for_new_leader(sim, old, 2.0)
    assert sim.now >= start + 2.0
    assert all((sim.status(i).role != "stopped") for i in sim.members)
    assert assert_single_leader(sim, 5.0) == new


@pytest.mark.parametrize("seconds", [-1, float("nan"), None, "2s"])
def test_faults_for_refuses_a_bad_window(quorate_cluster, seconds):
    cluster = quorate_cluster(1, start=False)
    with pytest.raises(ConfigError, match="seconds"):
        faults_for(cluster, seconds)


def test_the_plugin_module_names_what_it_exports():
    import quorate.pytest_plugin as plugin

    for name in plugin.__all__:
        assert getattr(plugin, name).__doc__, name
    assert isinstance(quorate.LocalCluster.faults_for.__doc__, str)
