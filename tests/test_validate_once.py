"""One rule in one place: the engine's and the runtime's constructors hold every rule about a value
(Timing::new, the members rule, NodeConfig::new, the priority and transfer-target rules), so every
entry point (Node, LocalCluster, Simulation, Core, the CLI) gives the same message for the same bad
value; and the timing defaults live in Timing::default() alone, which the signatures and the stub
repeat only under this test's eye."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import quorate
from quorate import ConfigError, _core

NAN = float("nan")
ADDRESSES = {"n1": "127.0.0.1:1", "n2": "127.0.0.1:2", "n3": "127.0.0.1:3"}
TIMING_PARAMS = ("election_timeout", "heartbeat_interval", "pre_vote", "check_quorum", "max_clock_drift")


# ----- defaults: Timing::default() alone ---------------------------------------------------------


def test_default_timing_is_the_engines():
    assert _core.DEFAULT_TIMING == {
        "election_timeout": (0.15, 0.3),
        "heartbeat_interval": 0.05,
        "pre_vote": True,
        "check_quorum": True,
        "max_clock_drift": 0.05,
    }


@pytest.mark.parametrize("target", [quorate.Core, quorate.Simulation, quorate.Node.__init__], ids=["Core", "Simulation", "Node"])
def test_signature_defaults_are_the_engines(target):
    params = inspect.signature(target).parameters
    for name in TIMING_PARAMS:
        assert params[name].default == _core.DEFAULT_TIMING[name], (target, name)


def _stub_defaults(class_name: str) -> dict:
    stub = Path(_core.__file__).with_name("_core.pyi")
    if not stub.exists():  # an installed wheel without the stub beside the module
        stub = Path(__file__).resolve().parents[1] / "python" / "quorate" / "_core.pyi"
    tree = ast.parse(stub.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    new = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
    args = new.args
    positional = args.posonlyargs + args.args
    named = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]], args.defaults))
    named.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    return {name: ast.literal_eval(node) for name, node in named.items()}


@pytest.mark.parametrize("class_name", ["Core", "_Simulation"])
def test_stub_defaults_are_the_engines(class_name):
    defaults = _stub_defaults(class_name)
    for name in TIMING_PARAMS:
        assert defaults[name] == _core.DEFAULT_TIMING[name], (class_name, name)


def test_constructing_with_the_defaults_equals_leaving_them_out():
    explicit = dict(_core.DEFAULT_TIMING)
    a, b = quorate.Simulation(3, seed=5), quorate.Simulation(3, seed=5, **explicit)
    a.run_for(2.0)
    b.run_for(2.0)
    assert a.events == b.events


# ----- the same bad value, the same message, from every entry point ------------------------------


def _message(make) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError) as raised:
            make()
    return str(raised.value)


def _node(**kw):
    return quorate.Node("n1", ADDRESSES, **kw)


def _cluster(members=3, **kw):
    return quorate.LocalCluster(members, **kw)


def _sim(members=3, **kw):
    return quorate.Simulation(members, **kw)


def _core_engine(members=("n1", "n2", "n3"), **kw):
    return quorate.Core("n1", members, **kw)


ENTRY_POINTS = {"Node": _node, "LocalCluster": _cluster, "Simulation": _sim, "Core": _core_engine}


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        pytest.param(
            dict(election_timeout=(NAN, 0.3)),
            "election_timeout: both bounds must be finite numbers of seconds, got (nan, 0.3)",
            id="nan-election-timeout",
        ),
        pytest.param(
            dict(election_timeout=(0.3, 0.15)),
            "election_timeout: min (0.3) must not exceed max (0.15)",
            id="inverted-pair",
        ),
        pytest.param(
            dict(heartbeat_interval=0.15),
            "heartbeat_interval: must be below election_timeout[0] (0.15 >= 0.15)",
            id="heartbeat-not-below-timeout",
        ),
        pytest.param(
            dict(heartbeat_interval=0.2, election_timeout=(0.1, 0.3)),
            "heartbeat_interval: must be below election_timeout[0] (0.2 >= 0.1)",
            id="heartbeat-above-timeout",
        ),
        pytest.param(dict(max_clock_drift=0.5), "max_clock_drift: must be in [0, 0.5), got 0.5", id="drift"),
        pytest.param(
            dict(algorithm="paxos"),
            'algorithm: unknown algorithm "paxos"; expected "raft", "bully" or "ring"',
            id="algorithm",
        ),
        pytest.param(dict(priorities={"n1": True}), "priorities: the priority of 'n1' must be an int, got True", id="bool-priority"),
    ],
)
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_every_entry_point_gives_the_engines_message(entry, kwargs, expected):
    assert _message(lambda: ENTRY_POINTS[entry](**kwargs)) == expected


@pytest.mark.parametrize("entry", ["Node", "LocalCluster", "Core"])
def test_a_bool_priority_is_refused_alike(entry):
    assert _message(lambda: ENTRY_POINTS[entry](priority=True)) == "priority: must be an int, got True"


@pytest.mark.parametrize("entry", ["Node", "LocalCluster"])
@pytest.mark.parametrize("secret", [b"", "", b"short"])
def test_a_short_secret_is_refused_alike(entry, secret):
    size = len(secret)
    expected = f"secret: must be at least {_core.MIN_SECRET_BYTES} bytes, got {size}"
    assert _message(lambda: ENTRY_POINTS[entry](secret=secret)) == expected


def test_a_secret_of_min_secret_bytes_is_accepted():
    assert _core.MIN_SECRET_BYTES == 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quorate.Node("n1", {"n1": "127.0.0.1:1"}, secret=b"x" * _core.MIN_SECRET_BYTES)


# The members rule: a count of 1 to MAX_MEMBERS, or a list of that many ids; a bool is no count.


MEMBERS_CASES = [
    ("bool", True, "members: expected a count or a sequence of node ids, got True"),
    ("bool-false", False, "members: expected a count or a sequence of node ids, got False"),
    ("zero", 0, "members: a group needs at least one member, got 0"),
    ("negative", -1, "members: a group needs at least one member, got -1"),
    ("too-many", 1025, "members: a group has at most 1024 members, got 1025"),
    ("empty-list", [], "members: a group needs at least one member"),
    ("too-long-a-list", [f"m{i}" for i in range(1025)], "members: a group has at most 1024 members, got 1025"),
]


@pytest.mark.parametrize(
    "entry, members, expected",
    [
        pytest.param(entry, members, expected, id=f"{entry}-{name}")
        for entry in ["member_ids", "Simulation", "Core", "LocalCluster"]
        for name, members, expected in MEMBERS_CASES
    ],
)
def test_the_members_rule_is_one_rule(entry, members, expected, monkeypatch):
    if entry == "LocalCluster":
        # No ports are opened for a refused cluster once the rule comes first; until then, none
        # are opened here either.
        monkeypatch.setattr(quorate.cluster, "free_ports", lambda n, host="127.0.0.1": list(range(20000, 20000 + n)))
    make = {
        "member_ids": lambda: _core.member_ids(members),
        "Simulation": lambda: quorate.Simulation(members),
        "Core": lambda: quorate.Core("n1", members),
        "LocalCluster": lambda: quorate.LocalCluster(members),
    }[entry]
    assert _message(make) == expected


def test_a_node_with_no_members_reads_as_an_empty_list_does():
    expected = "members: a group needs at least one member"
    assert _message(lambda: quorate.Node("n1", {})) == expected
    assert _message(lambda: quorate.Core("n1", [])) == expected


def test_member_ids_keeps_the_order_given():
    assert _core.member_ids(3) == ["n1", "n2", "n3"]
    assert _core.member_ids(["c", "a", "b"]) == ["c", "a", "b"]
    assert len(_core.member_ids(_core.MAX_MEMBERS)) == _core.MAX_MEMBERS
    with pytest.raises(TypeError):
        _core.member_ids("abc")


def test_the_transfer_target_rule_is_one_rule():
    core = quorate.Core("n1", ["n1", "n2", "n3"])
    sim = quorate.Simulation(3)
    assert _message(lambda: core.transfer_leadership(0.0, "nobody")) == (
        "to: 'nobody' is not a member (members: ['n1', 'n2', 'n3'])"
    )
    assert _message(lambda: sim.transfer_leadership("n1", "nobody")) == (
        "to: 'nobody' is not a member (members: ['n1', 'n2', 'n3'])"
    )
    assert _message(lambda: core.transfer_leadership(0.0, "n1")) == "to: 'n1' is this node itself; name a peer"
    assert _message(lambda: sim.transfer_leadership("n1", "n1")) == "to: 'n1' is this node itself; name a peer"


# ----- timeout= arguments of the Python layer: the engine's rule for seconds ------------------------


@pytest.mark.parametrize("value", [NAN, float("inf"), -float("inf"), -1, -0.5, "1", True, False, b"1", [1.0], 10**400, 1e12])
def test_seconds_or_none_refuses_with_the_name_and_value(value):
    message = _message(lambda: _core.seconds_or_none("timeout", value))
    assert message.startswith("timeout:"), message


@pytest.mark.parametrize("value, expected", [(None, None), (0, 0.0), (1, 1.0), (0.25, 0.25), (2.5e6, 2.5e6)])
def test_seconds_or_none_passes_none_and_returns_floats(value, expected):
    result = _core.seconds_or_none("timeout", value)
    assert result == expected and (result is None or type(result) is float)


# ----- the CLI reports the constructor's message, behind the option that carried the value ----------


def test_the_cli_reports_the_same_message(tmp_path):
    expected = _message(lambda: quorate.Node("a", {"a": "127.0.0.1:1"}, election_timeout=(NAN, 0.3)))
    done = subprocess.run(
        [sys.executable, "-m", "quorate", "node", "--id", "a", "--member", "a=127.0.0.1:1", "--data-dir",
         str(tmp_path / "a"), "--quiet-warnings", "--election-timeout", "nan", "0.3"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert expected in done.stderr, (expected, done.stderr)
