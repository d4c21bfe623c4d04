"""Defects an attack on real nodes found (issue: chaos, durability and security), each reproduced:
absurd fault arguments, a dead engine task that looked alive, duplicate members under two
spellings, control characters in ids, a lost state file, a public address without a secret."""

from __future__ import annotations

import logging
import os
import warnings

import pytest

import quorate
from conftest import wait_until
from quorate import ConfigError, NodeStoppedError, QuorateError
from quorate.cluster import free_ports

ELECT = 15.0


def quiet_node(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quorate.Node(*args, **kwargs)


@pytest.mark.parametrize("factor", [1e-300, 1e300, float("nan"), float("inf"), 0.0, -1.0])
def test_an_absurd_clock_rate_is_a_config_error_and_the_node_keeps_running(factor):
    node = quiet_node("a", {"a": f"127.0.0.1:{free_ports(1)[0]}"})
    with node:
        node.wait_until_leading(timeout=ELECT)
        with pytest.raises(ConfigError, match=r"clock_rate.*\[0.01, 100\]"):
            node.faults.clock_rate(factor)
        assert node.faults.active() == {}
        node.faults.clock_rate(1.5)  # the node still takes commands
        assert node.is_leader and node.status().health == "ok"


def test_a_dead_engine_task_is_reported_not_hidden(quorate_cluster):
    demoted = []
    c = quorate_cluster(3, on_demoted=demoted.append)
    leader = c.wait_for_leader(ELECT)
    node = c.nodes[leader]
    lead = node.wait_until_leading(timeout=ELECT)
    node._core._inject_engine_panic()
    wait_until(lambda: node.status().health == "failed", ELECT, "health failed")
    status = node.status()
    assert "injected" in (status.last_error or "") and status.role == "stopped"
    assert not node.is_leader and node.fencing_token is None and not lead.held and node.leader is None
    wait_until(lambda: [e for e in demoted if e.node_id == leader], ELECT, "on_demoted of the dead node")
    assert [e.reason for e in demoted if e.node_id == leader] == ["crashed"]
    with pytest.raises(QuorateError, match="engine task died"):
        node.faults.drop(0.1)
    with pytest.raises(NodeStoppedError):
        node.wait_until_leading(timeout=1.0)
    others = [n for i, n in c.nodes.items() if i != leader]
    wait_until(lambda: any(n.is_leader for n in others), ELECT, "the others elect a new leader")
    node.start()  # a failed node starts again from its data_dir
    assert node.status().health == "ok"
    wait_until(lambda: node.leader is not None and node.leader != leader, ELECT, "it follows the new leader")


@pytest.mark.parametrize(
    "members",
    [
        {"a": "127.0.0.1:{p}", "b": "localhost:{p}"},
        {"a": "[::1]:{p}", "b": "localhost:{p}"},
        {"a": "127.0.0.1:{p}", "b": "127.0.0.1:0{p}"},
    ],
)
def test_one_address_under_two_spellings_is_one_address(members):
    port = free_ports(1)[0]
    with pytest.raises(ConfigError, match="same address"):
        quiet_node("a", {k: v.format(p=port) for k, v in members.items()})


@pytest.mark.parametrize("node_id", ["a\nb", "a\rb", "tab\there", "nul\x00"])
def test_a_node_id_with_a_control_character_is_refused(node_id):
    with pytest.raises(ConfigError, match="control character"):
        quiet_node(node_id, {node_id: f"127.0.0.1:{free_ports(1)[0]}"})


def test_a_lost_state_file_is_refused_until_reset_on_purpose(tmp_path):
    port = free_ports(1)[0]
    node = quiet_node("a", {"a": f"127.0.0.1:{port}"}, data_dir=tmp_path)
    with node:
        node.wait_until_leading(timeout=ELECT)
        term = node.term
    os.remove(tmp_path / "quorate-state")
    with pytest.raises(QuorateError, match="quorate.lock"):
        node.start()
    os.remove(tmp_path / "quorate.lock")
    with node:
        node.wait_until_leading(timeout=ELECT)
        assert node.term >= 1 and term >= 1


def test_a_public_address_without_a_secret_warns_in_the_log_and_in_status(caplog):
    caplog.set_level(logging.WARNING, logger="quorate")
    port = free_ports(1)[0]
    public = quiet_node("a", {"a": f"0.0.0.0:{port}"})
    with public:
        wait_until(lambda: any("without a secret" in r.getMessage() for r in caplog.records), ELECT, "the warning")
        assert any("without a secret" in w for w in public.status().warnings)
    private = quiet_node("a", {"a": f"127.0.0.1:{free_ports(1)[0]}"})
    assert private.status().warnings == []
    secret = quiet_node("a", {"a": f"0.0.0.0:{free_ports(1)[0]}"}, secret=b"sixteen-byte-key")
    assert secret.status().warnings == []
