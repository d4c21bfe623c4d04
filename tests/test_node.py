"""quorate.Node and LocalCluster in this process, on loopback. Generous time bounds only."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sys
import threading
import time
import warnings

import pytest

import quorate
from conftest import LeaderMonitor, wait_until
from quorate import ConfigError, NotLeaderError, QuorateError
from quorate.cluster import free_ports

# Bounds are generous: a loaded 2-core machine must not flake them (election takes ~0.2-0.5 s).
ELECT = 10.0


@pytest.mark.parametrize("members", [1, 3, 5])
def test_a_local_cluster_elects_exactly_one_leader_that_every_node_agrees_on(quorate_cluster, members):
    c = quorate_cluster(members)
    with LeaderMonitor(c.nodes):
        leader = c.wait_for_leader(ELECT)
        time.sleep(0.5)
        assert c.wait_for_leader(ELECT) == leader
    assert [i for i, n in c.nodes.items() if n.is_leader] == [leader]
    assert all(n.leader == leader for n in c.nodes.values())
    st = c.nodes[leader].status()
    assert st.role == "leader" and st.is_leader and st.fencing_token == st.term
    assert 0 < st.lease_remaining <= 0.15


def test_callbacks_fire_in_order_on_every_node_and_elected_demoted_alternate(quorate_cluster):
    seen = {}
    lock = threading.Lock()

    def record(e):
        with lock:
            seen.setdefault(e.node_id, []).append((e.kind, e.term, threading.current_thread().name))

    c = quorate_cluster(3, on_elected=record, on_demoted=record, on_leader_change=record)
    with LeaderMonitor(c.nodes):
        for _ in range(3):  # three leaderships, handed off gracefully
            leader = c.wait_for_leader(ELECT)
            assert c.nodes[leader].resign()
            wait_until(lambda leader=leader: c.leader() not in (None, leader), ELECT, "a new leader after resign")
    with lock:
        for node_id, events in seen.items():
            assert all(name == f"quorate-dispatch-{node_id}" for _, _, name in events), "one dispatcher thread"
            flips = [k for k, _, _ in events if k in ("elected", "demoted")]
            assert flips == ["elected", "demoted"] * (len(flips) // 2) + ["elected"] * (len(flips) % 2)
            terms = [t for _, t, _ in events]
            assert terms == sorted(terms), "events come in order"
        assert sum(1 for evs in seen.values() for k, _, _ in evs if k == "elected") >= 3


def test_a_raising_callback_goes_to_unraisablehook_and_the_node_keeps_running(quorate_cluster, monkeypatch, caplog):
    hooked = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: hooked.append(args))

    def boom(e):
        raise RuntimeError("callback failure")

    c = quorate_cluster(1, on_elected=boom)
    leader = c.wait_for_leader(ELECT)
    wait_until(lambda: hooked, ELECT, "the hook")
    assert isinstance(hooked[0].exc_value, RuntimeError)
    assert c.nodes[leader].is_leader


def test_the_history_is_ordered_by_the_shared_monotonic_clock(quorate_cluster):
    c = quorate_cluster(3)
    before = time.monotonic()
    leader = c.wait_for_leader(ELECT)
    history = c.events
    assert history and all(a.at <= b.at for a, b in zip(history, history[1:]))
    elected = [e for e in history if e.kind == "elected"]
    assert elected[-1].node_id == leader
    assert before - 1.0 < elected[-1].at < time.monotonic() + 0.1
    assert abs(elected[-1].wall - time.time()) < 60


def test_killing_the_leader_elects_another_with_a_higher_term(quorate_cluster):
    c = quorate_cluster(3)
    with LeaderMonitor(c.nodes):
        old = c.wait_for_leader(ELECT)
        term = c.nodes[old].term
        c.kill(old)
        assert c.nodes[old].role == "stopped" and not c.nodes[old].is_leader
        new = c.wait_for_leader(ELECT)
        assert new != old and c.nodes[new].term > term
        c.restart(old)
        wait_until(lambda: c.nodes[old].leader == new, ELECT, "the restarted node to follow")
        assert c.nodes[old].term >= term


def test_an_isolated_leader_steps_down_within_twice_the_minimum_timeout_while_the_rest_elect(quorate_cluster):
    c = quorate_cluster(3)
    with LeaderMonitor(c.nodes):
        old = c.wait_for_leader(ELECT)
        cut_at = time.monotonic()
        c.nodes[old].faults.isolate()
        wait_until(lambda: c.nodes[old].role != "leader", ELECT, "the isolated leader to step down")
        stepped_down_after = time.monotonic() - cut_at
        # 2 x election_timeout[0] = 0.3 s, with slack for a busy machine's polling.
        assert stepped_down_after < 0.3 + 0.5, stepped_down_after
        others = {i: n for i, n in c.nodes.items() if i != old}
        new = wait_until(lambda: next((i for i, n in others.items() if n.is_leader), None), ELECT, "a new leader")
        assert new != old
        c.nodes[old].faults.heal()  # isolate() is the node's own fault: LocalCluster.heal() leaves it
        wait_until(lambda: c.leader() == new, ELECT, "everyone to follow the new leader after healing")


def test_minority_and_majority_partitions(quorate_cluster):
    c = quorate_cluster(5)
    with LeaderMonitor(c.nodes):
        leader = c.wait_for_leader(ELECT)
        followers = [i for i in c.nodes if i != leader]
        # A minority without the leader: the leader and its majority carry on, terms stay put.
        c.partition(followers[:2], [leader] + followers[2:])
        time.sleep(1.0)
        assert c.wait_for_leader(ELECT) == leader
        assert all(c.nodes[i].term == c.nodes[leader].term for i in followers[:2]), "pre-vote: no inflation"
        c.heal()
        # The leader in the minority: the majority elects another.
        c.partition([leader, followers[0]], followers[1:])
        # By the one leader rule (quorate.Cluster.leader) the cut-off leader stays the leader until
        # its lease runs out (the majority still names it); then the majority's new leader is.
        new = wait_until(lambda: c.leader() if c.leader() in followers[1:] else None, ELECT, "a majority-side leader")
        assert new in followers[1:] and not c.nodes[leader].is_leader
        c.heal()
        assert c.wait_for_leader(ELECT) == new


def test_thirty_percent_drop_still_yields_one_leader(quorate_cluster):
    c = quorate_cluster(3)
    with LeaderMonitor(c.nodes):
        for n in c.nodes.values():
            n.faults.drop(0.3)
        leader = c.wait_for_leader(30.0)
        assert c.nodes[leader].faults.active()["drop"] == "0.3"


def test_pause_and_resume_a_leader(quorate_cluster):
    c = quorate_cluster(3)
    with LeaderMonitor(c.nodes):
        old = c.wait_for_leader(ELECT)
        c.pause(old)
        others = {i: n for i, n in c.nodes.items() if i != old}
        new = wait_until(lambda: next((i for i, n in others.items() if n.is_leader), None), ELECT, "a new leader")
        assert not c.nodes[old].is_leader, "a paused leader's lease runs out"
        c.resume(old)
        wait_until(lambda: c.nodes[old].leader == new and c.nodes[old].role == "follower", ELECT, "the old leader to step down")


def test_clock_rate_within_the_drift_bound_keeps_one_leader(quorate_cluster):
    c = quorate_cluster(3)
    with LeaderMonitor(c.nodes):
        for i, n in enumerate(c.nodes.values()):
            n.faults.clock_rate(1.0 + 0.02 * i)
        leader = c.wait_for_leader(ELECT)
        c.kill(leader)
        c.wait_for_leader(ELECT)
        active = [n.faults.active() for n in c.nodes.values() if n.role != "stopped"]
        assert any("clock_rate" in a for a in active)


def test_delay_and_duplicate_faults_still_elect(quorate_cluster):
    c = quorate_cluster(3)
    for n in c.nodes.values():
        n.faults.delay(0.005, jitter=0.005)
        n.faults.duplicate(0.2)
    with LeaderMonitor(c.nodes):
        c.wait_for_leader(ELECT)


def test_graceful_transfer_and_resign(quorate_cluster):
    c = quorate_cluster(3)
    leader = c.wait_for_leader(ELECT)
    target = next(i for i in c.nodes if i != leader)
    c.nodes[leader].transfer_leadership(target, timeout=5.0)
    assert c.wait_for_leader(ELECT) == target
    with pytest.raises(NotLeaderError):
        c.nodes[leader].transfer_leadership(target)
    with pytest.raises(ConfigError):
        c.nodes[target].transfer_leadership("nobody")
    assert c.nodes[leader].resign() is False
    assert c.nodes[target].resign() is True
    wait_until(lambda: c.leader() not in (None, target), ELECT, "a leader other than the one that resigned")


def test_a_graceful_stop_of_the_leader_hands_off(quorate_cluster):
    c = quorate_cluster(3)
    leader = c.wait_for_leader(ELECT)
    term = c.nodes[leader].term
    c.nodes[leader].stop()
    others = {i: n for i, n in c.nodes.items() if i != leader}
    new = wait_until(lambda: next((i for i, n in others.items() if n.is_leader), None), ELECT, "the hand-off")
    assert c.nodes[new].term == term + 1, "one transfer election, not a timeout-driven scramble"


def test_wrong_secret_or_cluster_name_never_joins(quorate_cluster):
    ports = free_ports(3)
    members = {f"s{i}": f"127.0.0.1:{p}" for i, p in enumerate(ports)}
    secret = b"a-long-shared-secret"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        good = [quorate.Node(i, members, secret=secret) for i in ("s0", "s1")]
        bad = quorate.Node("s2", members, secret=b"the-wrong-secret-value")
    nodes = good + [bad]
    try:
        for n in nodes:
            n.start()
        leader = wait_until(lambda: next((n.node_id for n in good if n.is_leader), None), ELECT, "the good pair")
        time.sleep(1.0)
        assert bad.leader is None and not bad.is_leader
        assert all(n.term <= 2 for n in good)
        assert next(n for n in good if n.node_id == leader).is_leader
        assert sum(n.status().messages_rejected for n in nodes) > 0
    finally:
        for n in nodes:
            n.stop(graceful=False)


def test_restart_from_data_dir_keeps_term_and_vote(tmp_path):
    ports = free_ports(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = quorate.Node("solo", {"solo": f"127.0.0.1:{ports[0]}"}, data_dir=tmp_path)
    with n:
        n.wait_for_leader(ELECT)
        st = n.status()
    assert st.voted_for == "solo"
    n.start()
    try:
        assert n.term >= st.term, "the term came back from disk"
        assert n.status().voted_for == "solo" or n.term > st.term
    finally:
        n.stop()


def test_a_corrupt_state_file_stops_start_with_the_file_named(tmp_path):
    (tmp_path / "quorate-state").write_bytes(b"QRS1 definitely not a valid state")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = quorate.Node("a", {"a": f"127.0.0.1:{free_ports(1)[0]}"}, data_dir=tmp_path)
    with pytest.raises(QuorateError, match="quorate-state"):
        n.start()


def test_a_busy_port_raises_oserror():
    blocker = __import__("socket").socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = quorate.Node("a", {"a": f"127.0.0.1:{port}"})
    try:
        with pytest.raises(OSError):
            n.start()
    finally:
        blocker.close()


def test_wait_for_leader_times_out_with_timeout_error():
    ports = free_ports(3)
    members = {f"x{i}": f"127.0.0.1:{p}" for i, p in enumerate(ports)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = quorate.Node("x0", members)  # alone: its peers never start
    with n:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            n.wait_for_leader(timeout=0.5)
        assert time.monotonic() - t0 < 5.0


def test_asyncio_wait_for_leader_and_async_subscription(quorate_cluster):
    c = quorate_cluster(3)

    async def main():
        node = next(iter(c.nodes.values()))
        sub = node.subscribe()
        leader = await node.wait_for_leader_async(timeout=ELECT)
        kinds = []

        async def read():
            async for e in sub:
                kinds.append(e.kind)
                if e.kind == "leader_changed" and e.leader is not None and e.leader != leader:
                    return e.leader

        c.nodes[leader].resign()
        new = await asyncio.wait_for(read(), timeout=ELECT)
        sub.close()
        return leader, new, kinds

    leader, new, kinds = asyncio.run(main())
    assert new != leader and "leader_changed" in kinds


def test_blocking_subscription_ends_when_the_node_stops(quorate_cluster):
    c = quorate_cluster(1)
    node = c.nodes["n1"]
    sub = node.subscribe()
    got = []

    def read():
        for e in sub:
            got.append(e.kind)

    t = threading.Thread(target=read)
    t.start()
    node.wait_for_leader(ELECT)
    node.stop()
    t.join(10.0)
    assert not t.is_alive() and "elected" in got


def test_status_and_metrics_text(quorate_cluster):
    c = quorate_cluster(3)
    leader = c.wait_for_leader(ELECT)
    wait_until(lambda: all(p.connected for p in c.nodes[leader].status().peers.values()), ELECT, "connections")
    st = c.nodes[leader].status()
    d = st.to_dict()
    assert d["node_id"] == leader and set(d["peers"]) == set(c.nodes) - {leader}
    assert st.messages_sent > 0 and st.messages_received > 0 and st.elections_won >= 1
    text = c.nodes[leader].metrics_text()
    assert f'quorate_is_leader{{node="{leader}"}} 1.0' in text
    assert "# TYPE quorate_messages_sent_total counter" in text
    follower = next(i for i in c.nodes if i != leader)
    wait_until(lambda: c.nodes[follower].status().last_heartbeat_age is not None, ELECT, "a heartbeat")
    assert c.nodes[follower].status().last_heartbeat_age < 1.0


def test_stop_is_idempotent_and_start_after_stop_restarts(quorate_cluster):
    c = quorate_cluster(1)
    n = c.nodes["n1"]
    n.wait_for_leader(ELECT)
    n.stop()
    n.stop()
    assert n.role == "stopped" and not n.is_leader
    n.start()
    assert n.wait_for_leader(ELECT) == "n1"


def test_stop_timeout_none_waits_with_no_limit_for_the_callbacks(quorate_cluster):
    # The default is an explicit 5 s; None means no limit, as it does for every other timeout.
    import inspect

    assert inspect.signature(quorate.Node.stop).parameters["timeout"].default == 5.0
    release = threading.Event()
    demoted = threading.Event()

    def slow(event: quorate.Event) -> None:
        release.wait(30)  # 30 s: far past the old silent 5 s bound, only the test's release ends it
        demoted.set()

    c = quorate_cluster(1, on_demoted=slow)
    n = c.nodes["n1"]
    n.wait_until_leading(ELECT)
    threading.Timer(6.0, release.set).start()
    started = time.monotonic()
    n.stop(timeout=None)
    assert demoted.is_set(), "stop(timeout=None) returned before the on_demoted callback ended"
    assert time.monotonic() - started >= 5.5
    with pytest.raises(ConfigError, match="timeout"):
        n.stop(timeout=-1.0)

# Forking a threaded process is the very case under test (Python 3.12+ warns of it).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_a_clear_error(quorate_cluster):
    if not hasattr(os, "fork"):
        pytest.skip("this platform has no fork()")
    c = quorate_cluster(1)
    node = c.nodes["n1"]
    node.wait_for_leader(ELECT)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            node.wait_for_leader(1.0)
            os.write(w, b"no error")
        except QuorateError as e:
            os.write(w, ("ok " + str(e)).encode())
        except BaseException as e:  # noqa: BLE001
            os.write(w, repr(e).encode())
        os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    message = os.read(r, 1000).decode()
    assert message.startswith("ok ") and "fork" in message, message


CONFIG_CASES = [
    (dict(node_id="z", members={"a": "127.0.0.1:1"}), "node_id"),
    (dict(node_id="a", members={}), "members"),
    (dict(node_id="a", members={"a": "127.0.0.1:1", "b": "127.0.0.1:1", "c": "127.0.0.1:2"}), "same address"),
    (dict(node_id="a", members={"a": "not-an-address"}), "host:port"),
    (dict(node_id="a", members={"a": "127.0.0.1:99999"}), "host:port"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, election_timeout=(0.3, 0.1)), "election_timeout"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, election_timeout=(0.0, 0.1)), "election_timeout"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, heartbeat_interval=0.2), "heartbeat_interval"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, algorithm="paxos"), "algorithm"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, secret=b"short"), "secret"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, max_clock_drift=0.5), "max_clock_drift"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, bind="nowhere"), "bind"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, on_elected=42), "on_elected"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, election_timeout="150ms"), "election_timeout"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, election_timeout=(float("nan"), 0.3)), "election_timeout"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, election_timeout=(0.15, float("inf"))), "election_timeout"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, election_timeout=(-0.15, 0.3)), "election_timeout"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, heartbeat_interval=float("nan")), "heartbeat_interval"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, heartbeat_interval="50ms"), "heartbeat_interval"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, max_clock_drift=float("nan")), "max_clock_drift"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, seed=-1), "seed"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, seed=2**64), "seed"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, seed="7"), "seed"),
    (dict(node_id="a", members={"a": "127.0.0.1:1"}, priority=True), "priority"),
]


@pytest.mark.parametrize("kwargs, needle", CONFIG_CASES)
def test_node_config_errors(kwargs, needle):
    kwargs = dict(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError, match=needle):
            quorate.Node(kwargs.pop("node_id"), kwargs.pop("members"), **kwargs)


def test_an_even_group_and_a_missing_data_dir_warn():
    members = {"a": "127.0.0.1:1", "b": "127.0.0.1:2"}
    with pytest.warns(UserWarning) as record:
        quorate.Node("a", members)
    messages = " ".join(str(w.message) for w in record)
    assert "even" in messages and "data_dir" in messages


def test_rust_logs_reach_the_python_quorate_logger(caplog):
    caplog.set_level(logging.DEBUG, logger="quorate")
    ports = free_ports(2)
    members = {"l0": f"127.0.0.1:{ports[0]}", "l1": f"127.0.0.1:{ports[1]}", "l2": "127.0.0.1:1"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = quorate.Node("l0", members, secret=b"sixteen-byte-key-a")
        b = quorate.Node("l1", members, secret=b"sixteen-byte-key-b")
    with a, b:
        wait_until(
            lambda: any("refused a frame from 127.0.0.1" in r.getMessage() for r in caplog.records),
            ELECT,
            "a refusal logged",
        )
        # Authentication failures repeat at every reconnect; the log says so once per peer per 10 s.
        wait_until(lambda: a.status().rejected_by_reason.get("bad_mac", 0) >= 3, ELECT, "three refusals counted")
        time.sleep(0.5)
        refused = [r for r in caplog.records if "refused a frame from" in r.getMessage()]
    assert refused[0].name.startswith("quorate") and refused[0].levelno == logging.WARNING
    per_node = collections.Counter(r.getMessage().split(":")[0] for r in refused)
    assert per_node and all(n == 1 for n in per_node.values()), per_node
    assert 'reason="bad_mac"' in a.metrics_text()


def test_a_node_of_another_cluster_is_refused_and_each_side_logs_both_names(caplog):
    caplog.set_level(logging.WARNING, logger="quorate")
    ports = free_ports(2)
    members = {"x0": f"127.0.0.1:{ports[0]}", "x1": f"127.0.0.1:{ports[1]}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blue = quorate.Node("x0", members, cluster="blue")
        green = quorate.Node("x1", members, cluster="green")

    def logged_by(node_id):
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{node_id}: refused")]

    with blue, green:
        # The acceptor refuses; the dialer hears why from it. Both lines name both clusters.
        wait_until(lambda: len(logged_by("x0")) >= 2 and len(logged_by("x1")) >= 2, ELECT, "refusals on both sides")
        for node_id in ("x0", "x1"):
            assert all('"blue"' in m and '"green"' in m for m in logged_by(node_id)), logged_by(node_id)
        reasons = blue.status().rejected_by_reason
        assert reasons.get("cluster", 0) >= 1 and reasons.get("refused_by_peer", 0) >= 1, reasons
        assert blue.leader is None and green.leader is None


def test_a_cluster_partition_keeps_the_faults_set_on_a_node_and_heal_undoes_only_the_partition(quorate_cluster):
    c = quorate_cluster(3)
    c.wait_for_leader(ELECT)
    n1 = c.nodes["n1"]
    n1.faults.drop(0.1)
    n1.faults.partition("n3")
    c.partition(["n1"], ["n2", "n3"])
    active = n1.faults.active()
    assert active["drop"] == "0.1" and "n3" in active["partitioned"] and "n2" in active["group_partition"], active
    c.partition(["n1", "n2"])  # a new partition replaces the old one; n3 is the other side
    assert "n2" not in n1.faults.active()["group_partition"]
    c.heal()
    active = n1.faults.active()
    assert active == {"drop": "0.1", "partitioned": active["partitioned"]} and "n3" in active["partitioned"], active
    n1.faults.heal()
    assert n1.faults.active() == {}
    with pytest.raises(ConfigError, match="two groups"):
        c.partition(["n1"], ["n1", "n2"])
    with pytest.raises(ConfigError, match="not a member"):
        c.partition(["zz"])
    with pytest.raises(ConfigError, match="list of node ids"):
        c.partition("n1")


def test_every_timing_default_is_the_one_the_engine_defines():
    import inspect

    from quorate._core import DEFAULT_TIMING

    assert DEFAULT_TIMING == {
        "election_timeout": (0.15, 0.3), "heartbeat_interval": 0.05, "pre_vote": True,
        "check_quorum": True, "max_clock_drift": 0.05,
    }
    for api in (quorate.Node.__init__, quorate.Core, quorate.Simulation):
        params = inspect.signature(api).parameters
        for name, value in DEFAULT_TIMING.items():
            if name in params:
                assert params[name].default == value, (api, name)


def test_status_to_dict_is_strict_json(quorate_cluster):
    import json

    c = quorate_cluster(3)
    leader = c.wait_for_leader(ELECT)
    c.nodes[leader].resign()
    c.wait_for_leader(ELECT)
    for node in c.nodes.values():
        d = node.status().to_dict()
        text = json.dumps(d, allow_nan=False)  # raises ValueError on NaN or an infinity
        assert "Infinity" not in text
        buckets = d["tenure_histogram"]["buckets"]
        assert buckets and buckets[-1][0] == "+Inf", buckets
