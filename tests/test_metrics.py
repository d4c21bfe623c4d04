"""Prometheus metrics through prometheus_client: quorate.metrics.QuorateCollector, exposition()
and Node.metrics_text(). The client's own parser reads every output back."""

from __future__ import annotations

import sys
import warnings
from typing import Dict, Tuple

import pytest

prometheus_client = pytest.importorskip("prometheus_client", reason="a test dependency: pip install '.[test]'")
from prometheus_client import CollectorRegistry, Counter, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import quorate  # noqa: E402
from conftest import wait_until  # noqa: E402
from quorate.cluster import free_ports  # noqa: E402
from quorate.metrics import CONTENT_TYPE, REJECTION_REASONS, QuorateCollector, exposition  # noqa: E402

ELECT = 15.0

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def parse(text: str) -> Tuple[Dict[str, str], Samples]:
    """Family name -> type, and (sample name, sorted labels) -> value, as the client parses them."""
    types: Dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


COUNTERS = ("elections_started", "elections_won", "leader_changes", "messages_sent", "messages_received",
            "messages_dropped")


def test_the_parser_reads_every_family_with_conventional_names_and_values_that_match_status(quorate_cluster):
    c = quorate_cluster(3)
    leader = c.wait_for_leader(ELECT)
    node = c.nodes[leader]
    wait_until(lambda: all(p.connected for p in node.status().peers.values()), ELECT, "connections")
    before = node.status()
    text = node.metrics_text()
    after = node.status()
    types, samples = parse(text)

    for name, kind in types.items():
        assert name.startswith("quorate_"), name
        assert kind in ("gauge", "counter", "histogram"), (name, kind)
    # Counters end in _total in the exposition; durations are in seconds.
    for name in types:
        if types[name] == "counter":
            assert any(k[0] == name + "_total" for k in samples), name
        assert "millis" not in name and not name.endswith("_ms"), name
    every_node_label = {dict(labels).get("node") for _, labels in samples}
    assert every_node_label == {leader}, "every sample carries the node label"

    assert value(samples, "quorate_term", node=leader) == before.term == after.term
    # The monitoring the articles ask for: tenure and leaderless gaps as histograms.
    assert types["quorate_leadership_tenure_seconds"] == types["quorate_leaderless_seconds"] == "histogram"
    gaps = before.leaderless_histogram
    assert value(samples, "quorate_leaderless_seconds_count", node=leader) == gaps["count"] >= 1
    assert value(samples, "quorate_leaderless_seconds_bucket", node=leader, le="+Inf") == gaps["count"]
    assert value(samples, "quorate_leading_for_seconds", node=leader) > 0.0
    assert value(samples, "quorate_is_leader", node=leader) == 1.0
    assert value(samples, "quorate_role", node=leader, role="leader") == 1.0
    assert sum(v for (n, _), v in samples.items() if n == "quorate_role") == 1.0
    assert value(samples, "quorate_healthy", node=leader) == 1.0
    assert value(samples, "quorate_health", node=leader, state="ok") == 1.0
    assert value(samples, "quorate_health", node=leader, state="degraded") == 0.0
    assert 0.0 < value(samples, "quorate_lease_remaining_seconds", node=leader) < 1.0
    info = [labels for n, labels in samples if n == "quorate_node_info"]
    assert info == [(("address", node.address), ("algorithm", "raft"), ("node", leader))]
    for name in COUNTERS:
        got = value(samples, f"quorate_{name}_total", node=leader)
        assert getattr(before, name) <= got <= getattr(after, name), name
    for peer in after.peers:
        assert value(samples, "quorate_peer_connected", node=leader, peer=peer) == 1.0
        assert 0.0 <= value(samples, "quorate_peer_last_contact_age_seconds", node=leader, peer=peer) < 5.0
    # Every known rejection reason is there from the start, at 0 until it happens.
    for reason in REJECTION_REASONS:
        assert value(samples, "quorate_messages_rejected_total", node=leader, reason=reason) == 0.0


def test_a_stopped_nodes_metrics_equal_its_status_exactly_and_faults_are_listed(quorate_cluster):
    c = quorate_cluster(3)
    leader = c.wait_for_leader(ELECT)
    follower = next(i for i in c.nodes if i != leader)
    c.nodes[follower].faults.drop(0.2)
    _, running = parse(exposition(c.nodes[follower]).decode())
    assert value(running, "quorate_fault_active", node=follower, fault="drop") == 1.0
    wait_until(lambda: c.nodes[follower].status().last_heartbeat_age is not None, ELECT, "a heartbeat")
    _, running = parse(exposition(c.nodes[follower]).decode())
    assert 0.0 <= value(running, "quorate_last_heartbeat_age_seconds", node=follower) < 5.0
    c.stop()  # counters no longer move: every value can be compared exactly
    for node_id, node in c.nodes.items():
        st = node.status()
        _, samples = parse(node.metrics_text())
        assert value(samples, "quorate_role", node=node_id, role="stopped") == 1.0
        assert value(samples, "quorate_is_leader", node=node_id) == 0.0
        assert value(samples, "quorate_healthy", node=node_id) == 0.0
        assert value(samples, "quorate_health", node=node_id, state=st.health) == 1.0
        assert value(samples, "quorate_term", node=node_id) == st.term
        for name in COUNTERS:
            assert value(samples, f"quorate_{name}_total", node=node_id) == getattr(st, name), name


def test_a_cluster_collector_gives_one_label_set_per_node_and_sees_a_kill(quorate_cluster):
    c = quorate_cluster(3)
    leader = c.wait_for_leader(ELECT)
    collector = QuorateCollector(c)
    registry = CollectorRegistry()
    registry.register(collector)
    _, samples = parse(generate_latest(registry).decode())
    terms = {dict(labels)["node"]: v for (n, labels), v in samples.items() if n == "quorate_term"}
    assert set(terms) == set(c.nodes)
    leading = {dict(labels)["node"] for (n, labels), v in samples.items() if n == "quorate_is_leader" and v == 1.0}
    assert leading <= {leader}
    c.kill(leader)
    _, samples = parse(generate_latest(registry).decode())
    assert value(samples, "quorate_role", node=leader, role="stopped") == 1.0
    assert value(samples, "quorate_health", node=leader, state="stopped") == 1.0
    assert "n1" in repr(collector)


def test_the_collector_registers_beside_a_services_own_metrics_and_twice_is_refused(quorate_cluster):
    c = quorate_cluster(1)
    c.wait_for_leader(ELECT)
    registry = CollectorRegistry()
    jobs = Counter("myservice_jobs", "Jobs the service ran.", registry=registry)
    jobs.inc(3)
    registry.register(QuorateCollector(c.nodes["n1"]))
    types, samples = parse(generate_latest(registry).decode())
    assert value(samples, "myservice_jobs_total") == 3.0
    assert value(samples, "quorate_is_leader", node="n1") == 1.0
    assert types["quorate_elections_won"] == "counter"
    # describe() names the families, so the registry's duplicate check catches a second collector.
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(QuorateCollector(c.nodes["n1"]))
    # The default-registry style (auto_describe) works as well.
    auto = CollectorRegistry(auto_describe=True)
    auto.register(QuorateCollector([c.nodes["n1"]]))
    assert b"quorate_term" in generate_latest(auto)


def test_rejected_frames_are_counted_by_reason_and_sum_to_messages_rejected():
    ports = free_ports(2)
    members = {"a": f"127.0.0.1:{ports[0]}", "b": f"127.0.0.1:{ports[1]}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = quorate.Node("a", members, secret=b"the-first-secret-value")
        b = quorate.Node("b", members, secret=b"the-other-secret-value")
    with a, b:
        wait_until(lambda: a.status().rejected_by_reason.get("bad_mac", 0) >= 1, ELECT, "a refused frame")
    st = a.status()  # stopped: stable
    _, samples = parse(a.metrics_text())
    by_reason = {dict(labels)["reason"]: v for (n, labels), v in samples.items() if n == "quorate_messages_rejected_total"}
    assert by_reason["bad_mac"] == st.rejected_by_reason["bad_mac"] >= 1
    assert sum(by_reason.values()) == st.messages_rejected
    assert set(REJECTION_REASONS) <= set(by_reason)


def test_exposition_returns_bytes_to_serve_with_the_clients_content_type():
    ports = free_ports(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        node = quorate.Node("solo", {"solo": f"127.0.0.1:{ports[0]}"})
    body = exposition(node)  # a node never started reports too
    assert isinstance(body, bytes)
    _, samples = parse(body.decode())
    assert value(samples, "quorate_role", node="solo", role="stopped") == 1.0
    assert CONTENT_TYPE.startswith("text/plain")
    assert node.metrics_text() == body.decode()


@pytest.mark.parametrize("bad", ["n1", 42, [object()]])
def test_a_bad_source_is_a_type_error(bad):
    with pytest.raises(TypeError, match="QuorateCollector"):
        QuorateCollector(bad)


def test_without_prometheus_client_metrics_text_says_which_extra_to_install(monkeypatch):
    ports = free_ports(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        node = quorate.Node("solo", {"solo": f"127.0.0.1:{ports[0]}"})
    # A None entry in sys.modules makes `import prometheus_client` fail, as if it were not installed.
    for name in list(sys.modules):
        if name == "prometheus_client" or name.startswith("prometheus_client."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "quorate.metrics")
    with pytest.raises(ImportError, match=r"pip install 'quorate\[prometheus\]'"):
        node.metrics_text()



def test_warnings_and_every_health_state_are_gauges():
    ports = free_ports(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Listening beyond loopback without a secret is one of the warnings status() reports.
        exposed = quorate.Node("solo", {"solo": f"0.0.0.0:{ports[0]}"})
    st = exposed.status()
    _, samples = parse(exposed.metrics_text())
    assert value(samples, "quorate_warnings", node="solo") == len(st.warnings) >= 1
    assert {dict(labels)["state"] for n, labels in samples if n == "quorate_health"} >= {
        "ok", "degraded", "failed", "stopped"
    }


def test_votes_and_round_trips_are_exported_as_status_gives_them(quorate_cluster):
    from quorate.metrics import VOTE_ANSWERS

    c = quorate_cluster(3)
    leader = c.wait_for_leader(ELECT)
    node = c.nodes[leader]
    wait_until(lambda: all(p.round_trip is not None for p in node.status().peers.values()), ELECT, "round trips")
    voter = next(n for i, n in c.nodes.items() if i != leader)
    for n in (node, voter):
        s = n.status()
        _, samples = parse(n.metrics_text())
        for kind in ("vote", "pre_vote"):
            for answer in VOTE_ANSWERS:
                got = value(samples, "quorate_votes_total", node=n.node_id, kind=kind, answer=answer)
                assert got == s.votes[kind][answer], (kind, answer)
        trips = {dict(labels)["peer"]: v for (name, labels), v in samples.items()
                 if name == "quorate_peer_round_trip_seconds"}
        if n is node:
            assert set(trips) == set(s.peers) and all(0 < v < 1 for v in trips.values()), trips
        else:
            assert trips == {}, "a follower measures no round trip"
