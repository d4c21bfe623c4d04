"""Secret rotation without downtime (issue 21): `secret` takes a list, the first signs and every
one is accepted, so a running cluster moves from one secret to another member by member."""

from __future__ import annotations

import time

import pytest

import quorate
from conftest import wait_until
from quorate import ConfigError
from quorate.cluster import free_ports

ELECT = 15.0
OLD, NEW = b"old-cluster-secret-0123", b"new-cluster-secret-4567"


def _bad_macs(nodes):
    return sum(n.status().rejected_by_reason.get("bad_mac", 0) for n in nodes.values())


def test_a_running_cluster_rotates_its_secret_member_by_member_with_no_frame_refused(tmp_path):
    ids = ["a", "b", "c"]
    members = {i: f"127.0.0.1:{p}" for i, p in zip(ids, free_ports(len(ids)))}

    def node(i, secret):
        return quorate.Node(i, members, secret=secret, data_dir=tmp_path / i)

    nodes = {i: node(i, [OLD]) for i in ids}
    try:
        for n in nodes.values():
            n.start()
        leader = nodes["a"].wait_for_leader(timeout=ELECT)
        term = nodes[leader].term
        # Followers first, then the leader, at each stage: [old, new], [new, old], [new].
        order = [i for i in ids if i != leader] + [leader]
        for stage in ([OLD, NEW], [NEW, OLD], [NEW]):
            for i in order:
                nodes[i].stop()
                nodes[i] = node(i, stage)
                nodes[i].start()
                wait_until(
                    lambda: all(p.connected for n in nodes.values() for p in n.status().peers.values()),
                    ELECT,
                    f"every link up again after restarting {i} with {len(stage)} secrets",
                )
                nodes[i].wait_for_leader(timeout=ELECT)
                if i != leader:
                    assert nodes[leader].term == term, "restarting a follower with new secrets moved no term"
            # The old leader was restarted: the next stage's order starts from the new one.
            leader = nodes[ids[0]].wait_for_leader(timeout=ELECT)
            term = nodes[leader].term
            order = [i for i in ids if i != leader] + [leader]
        assert _bad_macs(nodes) == 0, "no frame was refused for its MAC at any step"
    finally:
        for n in nodes.values():
            n.stop()


def test_members_without_a_shared_secret_refuse_each_other(tmp_path):
    ids = ["a", "b"]
    members = {i: f"127.0.0.1:{p}" for i, p in zip(ids, free_ports(len(ids)))}
    a = quorate.Node("a", members, secret=[OLD])
    b = quorate.Node("b", members, secret=[NEW, b"yet-another-secret-890"])
    try:
        a.start()
        b.start()
        wait_until(lambda: _bad_macs({"a": a, "b": b}) > 0, ELECT, "a refused MAC")
        time.sleep(0.5)
        assert a.leader is None and b.leader is None
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize(
    "secret, message",
    [
        ([], "secret: an empty list; pass None for no secret"),
        ([OLD, b"short"], "secret[1]: must be at least 16 bytes, got 5"),
        ([OLD, 7], "secret: must be bytes or str, or a list of them"),
        (7, "secret: must be bytes or str, or a list of them"),
    ],
)
def test_a_bad_secret_list_is_a_config_error_naming_it(secret, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        quorate.Node("a", {"a": "127.0.0.1:1"}, secret=secret)


def test_read_secrets_reads_one_secret_per_line(tmp_path):
    f = tmp_path / "secrets"
    f.write_bytes(NEW + b"\r\n" + OLD + b"\n")
    assert quorate.read_secrets(f) == [NEW, OLD]
    f.write_bytes(OLD + b"\n")
    assert quorate.read_secrets(f) == [quorate.read_secret(f)] == [OLD]
    f.write_bytes(OLD + b"\n\n" + NEW)
    with pytest.raises(ConfigError, match="line 2 is empty"):
        quorate.read_secrets(f)
