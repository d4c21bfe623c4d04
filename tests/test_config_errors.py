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


@pytest.mark.parametrize("algorithm", ["paxos", "Raft", ""])
def test_an_unknown_algorithm_is_refused_loudly(algorithm):
    with pytest.raises(ConfigError, match="unknown algorithm"):
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
        sim.kill("zz")
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
    sim.kill("n1")
    with pytest.raises(ConfigError, match="already down"):
        sim.kill("n1")
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


# ----- numbers, pairs and seeds: a ConfigError naming the argument and the value, for Core and
# Simulation alike (never a TypeError from argument extraction, a panic or a silent default) -----

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("make", [
    pytest.param(lambda **kw: quorate.Core("a", ["a", "b", "c"], **kw), id="Core"),
    pytest.param(lambda **kw: quorate.Simulation(3, **kw), id="Simulation"),
])
@pytest.mark.parametrize(
    "kwargs, needle, shown",
    [
        (dict(election_timeout=(NAN, 0.3)), "election_timeout", "nan"),
        (dict(election_timeout=(0.15, NAN)), "election_timeout", "nan"),
        (dict(election_timeout=(INF, INF)), "election_timeout", "inf"),
        (dict(election_timeout=(0.15, INF)), "election_timeout", "inf"),
        (dict(election_timeout=(-0.15, 0.3)), "election_timeout", "-0.15"),
        (dict(election_timeout=(0.15, -0.3)), "election_timeout", "-0.3"),
        (dict(election_timeout=(1e300, 2e300)), "election_timeout", "1e+300"),
        (dict(election_timeout="150ms"), "election_timeout", "'150ms'"),
        (dict(election_timeout=(0.1, 0.2, 0.3)), "election_timeout", "(0.1, 0.2, 0.3)"),
        (dict(election_timeout=None), "election_timeout", "None"),
        (dict(election_timeout=("0.15", 0.3)), "election_timeout", "'0.15'"),
        (dict(election_timeout=(True, 0.3)), "election_timeout", "True"),
        (dict(heartbeat_interval=NAN), "heartbeat_interval", "nan"),
        (dict(heartbeat_interval=INF), "heartbeat_interval", "inf"),
        (dict(heartbeat_interval=-0.05), "heartbeat_interval", "-0.05"),
        (dict(heartbeat_interval=0), "heartbeat_interval", "0"),
        (dict(heartbeat_interval="50ms"), "heartbeat_interval", "'50ms'"),
        (dict(heartbeat_interval=None), "heartbeat_interval", "None"),
        (dict(max_clock_drift=NAN), "max_clock_drift", "nan"),
        (dict(max_clock_drift="5%"), "max_clock_drift", "'5%'"),
        (dict(seed=-1), "seed", "-1"),
        (dict(seed=2**64), "seed", str(2**64)),
        (dict(seed=True), "seed", "True"),
        (dict(seed=1.5), "seed", "1.5"),
        (dict(seed="7"), "seed", "'7'"),
        (dict(seed=None), "seed", "None"),
    ],
)
def test_numbers_pairs_and_seeds_are_checked_by_core_and_simulation(make, kwargs, needle, shown):
    with pytest.raises(ConfigError) as raised:
        make(**kwargs)
    message = str(raised.value)
    assert message.startswith(f"{needle}:"), message
    assert shown in message, message


def test_the_largest_seed_and_int_timeouts_are_accepted():
    quorate.Core("a", ["a"], seed=2**64 - 1, election_timeout=(1, 2), heartbeat_interval=0.5)
    quorate.Simulation(3, seed=2**64 - 1, election_timeout=[1, 2], heartbeat_interval=0.5)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(term=2**64), "term"),
        (dict(term="1"), "term"),
    ],
)
def test_core_term_is_an_unsigned_int(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        quorate.Core("a", ["a", "b"], **kwargs)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(latency="2ms"), "latency"),
        (dict(latency=(NAN, 0.002)), "latency"),
        (dict(drop_rate="10%"), "drop_rate"),
        (dict(drop_rate=NAN), "drop_rate"),
        (dict(duplicate_rate=None), "duplicate_rate"),
    ],
)
def test_simulation_latency_and_rates_are_checked(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        quorate.Simulation(3, **kwargs)


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda sim: sim.run_for("1s"), "seconds"),
        (lambda sim: sim.run_for(NAN), "seconds"),
        (lambda sim: sim.run_for(1e12), "seconds"),
        (lambda sim: sim.run_until_leader(INF), "timeout"),
        (lambda sim: sim.run_until_leader(None), "timeout"),
        (lambda sim: sim.pause("n1", -1), "seconds"),
        (lambda sim: sim.set_drop_rate("x"), "rate"),
        (lambda sim: sim.set_clock_rate("n1", INF), "factor"),
    ],
)
def test_simulation_time_arguments_are_checked(call, needle):
    with pytest.raises(ConfigError, match=needle):
        call(quorate.Simulation(3))


@pytest.mark.parametrize("now", [NAN, INF, -1.0, "0", None, 1e300])
def test_core_now_is_checked(now):
    core = quorate.Core("a", ["a", "b", "c"])
    with pytest.raises(ConfigError, match="^now:"):
        core.tick(now)


# ----- check_timeout: every Python-side timeout= argument -----------------------------------------

from quorate._core import seconds_or_none as check_timeout  # noqa: E402


@pytest.mark.parametrize("value", [NAN, INF, -INF, -1, -0.5, "1", True, False, b"1", [1.0], 10**400])
def test_check_timeout_refuses_with_the_name_and_value(value):
    with pytest.raises(ConfigError) as raised:
        check_timeout("timeout", value)
    message = str(raised.value)
    assert message.startswith("timeout:"), message
    assert repr(value)[:20] in message, message


@pytest.mark.parametrize("value, expected", [(None, None), (0, 0.0), (1, 1.0), (0.25, 0.25), (2.5e6, 2.5e6)])
def test_check_timeout_passes_none_and_returns_floats(value, expected):
    result = check_timeout("timeout", value)
    assert result == expected and (result is None or type(result) is float)


# ----- read_secret: the one rule for a secret file --------------------------------------------------

SECRET = b"0123456789abcdef-cluster"


@pytest.mark.parametrize(
    "content, expected",
    [
        pytest.param(SECRET, SECRET, id="as-is"),
        pytest.param(SECRET + b"\n", SECRET, id="trailing-newline-removed"),
        pytest.param(SECRET + b"\r\n", SECRET, id="crlf-removed"),
        pytest.param(SECRET + b"\n\n", SECRET + b"\n", id="only-one-newline-removed"),
        pytest.param(b"  inner  white space \t kept \n", b"  inner  white space \t kept ", id="whitespace-kept"),
    ],
)
def test_read_secret_removes_one_trailing_line_ending_and_nothing_else(tmp_path, content, expected):
    path = tmp_path / "secret"
    path.write_bytes(content)
    assert quorate.read_secret(path) == expected
    assert quorate.read_secret(str(path)) == expected


@pytest.mark.parametrize(
    "content, needle",
    [
        pytest.param(b"short\n", "5 bytes", id="short"),
        pytest.param(b"0123456789abcde\n", "15 bytes", id="one-byte-short"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"\n", "empty", id="only-a-newline"),
        pytest.param(b"x" * (64 * 1024 + 1), "larger than", id="huge"),
    ],
)
def test_read_secret_refuses_a_short_or_huge_file_naming_the_path(tmp_path, content, needle):
    path = tmp_path / "secret"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        quorate.read_secret(path)
    assert str(path) in str(raised.value) and needle in str(raised.value), str(raised.value)


def test_read_secret_refuses_a_missing_file_naming_the_path_and_the_reason(tmp_path):
    path = tmp_path / "no-such-secret"
    with pytest.raises(ConfigError) as raised:
        quorate.read_secret(path)
    assert str(path) in str(raised.value) and "No such file" in str(raised.value), str(raised.value)


def test_read_secret_refuses_a_directory_and_a_non_path(tmp_path):
    with pytest.raises(ConfigError, match=str(tmp_path)):
        quorate.read_secret(tmp_path)
    with pytest.raises(ConfigError, match="path"):
        quorate.read_secret(3)  # type: ignore[arg-type]  # not a file descriptor
