"""Every bad argument is a ConfigError whose message names the argument."""

from __future__ import annotations

import pytest

import quorate
from quorate import ConfigError


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(node_id="z", members=["a", "b", "c"]), "node_id"),
        (dict(node_id="a", members=[]), "members"),
        (dict(node_id="a", members=["a", "a", "b"]), "members"),
        (dict(node_id="", members=[""]), "node_id"),
        (dict(node_id="a" * 65, members=["a" * 65]), "node_id"),
        (dict(node_id="a", members=["a"], election_timeout=(0.3, 0.15)), "election_timeout"),
        (dict(node_id="a", members=["a"], election_timeout=(0.0, 0.15)), "election_timeout"),
        (dict(node_id="a", members=["a"], election_timeout=(-0.1, 0.15)), "election_timeout"),
        (dict(node_id="a", members=["a"], heartbeat_interval=0.0), "heartbeat_interval"),
        (dict(node_id="a", members=["a"], heartbeat_interval=0.15), "heartbeat_interval"),
        (dict(node_id="a", members=["a"], heartbeat_interval=float("nan")), "heartbeat_interval"),
        (dict(node_id="a", members=["a"], algorithm="paxos"), "algorithm"),
        (dict(node_id="a", members=["a"], max_clock_drift=0.5), "max_clock_drift"),
        (dict(node_id="a", members=["a"], max_clock_drift=-0.01), "max_clock_drift"),
        (dict(node_id="a", members=["a", "b"], term=-1), "term"),
        (dict(node_id="a", members=["a", "b"], voted_for="q"), "voted_for"),
    ],
)
def test_core_config_errors(kwargs, needle):
    node_id = kwargs.pop("node_id")
    members = kwargs.pop("members")
    with pytest.raises(ConfigError, match=needle):
        quorate.Core(node_id, members, **kwargs)


@pytest.mark.parametrize("algorithm", ["bully", "ring"])
def test_algorithms_of_the_contract_not_yet_built_are_refused_loudly(algorithm):
    with pytest.raises(ConfigError, match="not implemented"):
        quorate.Simulation(3, algorithm=algorithm)


@pytest.mark.parametrize(
    "args, kwargs, needle",
    [
        ((0,), {}, "members"),
        ((["a", "a"],), {}, "members"),
        ((3,), dict(election_timeout=(0.3, 0.1)), "election_timeout"),
        ((3,), dict(heartbeat_interval=0.2), "heartbeat_interval"),
        ((3,), dict(latency=(0.01, 0.001)), "latency"),
        ((3,), dict(latency=(-1.0, 0.001)), "latency"),
        ((3,), dict(drop_rate=1.5), "drop_rate"),
        ((3,), dict(duplicate_rate=-0.1), "duplicate_rate"),
        ((3,), dict(max_clock_drift=0.7), "max_clock_drift"),
    ],
)
def test_simulation_config_errors(args, kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        quorate.Simulation(*args, **kwargs)


def test_simulation_fault_calls_validate_their_arguments():
    sim = quorate.Simulation(3)
    with pytest.raises(ConfigError, match="not a member"):
        sim.crash("zz")
    with pytest.raises(ConfigError, match="two groups"):
        sim.partition(["n1"], ["n1", "n2"])
    with pytest.raises(ConfigError, match="list of node ids"):
        sim.partition("n1")
    with pytest.raises(ConfigError, match="clock_rate"):
        sim.set_clock_rate("n1", 0.0)
    with pytest.raises(ConfigError, match="drop_rate"):
        sim.set_drop_rate(2.0)
    with pytest.raises(ConfigError, match="seconds"):
        sim.run_for(-1.0)
    sim.crash("n1")
    with pytest.raises(ConfigError, match="already down"):
        sim.crash("n1")
    with pytest.raises(ConfigError, match="down"):
        sim.pause("n1", 1.0)
    sim.restart("n1")
    with pytest.raises(ConfigError, match="running"):
        sim.restart("n1")


def test_failover_trials_config_errors():
    with pytest.raises(ConfigError, match="trials"):
        quorate.sim.failover_trials(-1)
    with pytest.raises(ConfigError, match="at least 2"):
        quorate.sim.failover_trials(1, members=1)
    with pytest.raises(ConfigError, match="election_timeout"):
        quorate.sim.failover_trials(1, election_timeout=(0.3, 0.1))


def test_members_must_be_a_count_or_a_sequence_of_ids():
    with pytest.raises(TypeError):
        quorate.Simulation("abc")
    with pytest.raises(TypeError):
        quorate.Simulation([1, 2, 3])
