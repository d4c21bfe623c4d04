"""Five `python -m quorate node` processes, each in its own network namespace, joined over veth
pairs to bridges in a namespace of their own (tests/netns_harness.py), under network faults: the
leader isolated (link down, or its veth detached from the bridge), minority/majority splits, a
bridge node that reaches both sides of a split, one-way loss, kill -9, SIGSTOP, and combinations.

benches/chaos.py's observer reads every node's /status every few milliseconds the whole time and
checks, with no slack: never two nodes reading is_leader at one instant, fencing tokens that never
go down, terms that never go down and one vote per term, health "ok", no process exiting by
itself. At the end every node's event log is checked: one leader per term, `elected`/`demoted`
alternating, tokens of `elected` strictly increasing on the host's monotonic clock, and (here)
leaderships as intervals of that clock that never overlap. After every heal a leader is agreed
by all five within 30 s (the generous bound of a busy CI host); after a cut that leaves a
majority, by the majority side within 30 s.

Needs root and `ip netns` (skipped with the reason otherwise); one-way loss also needs tc's u32
classifier and mirred action. Default length ~2.5 minutes: six fault families for ~10 s each and a
random schedule of all of them for QUORATE_NETNS_SECONDS (default 45); QUORATE_NETNS_SEED picks
the schedules' draws (each test adds its own offset; which node a fault hits depends on who leads
at the time, so a replay is close, not exact). Each run's figures are appended, as one JSON line per test, to the file named by
QUORATE_NETNS_REPORT when it is set (RELIABILITY.md's numbers come from there).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List

import pytest

import netns_harness as nh
from netns_harness import NET_KINDS, SIGNAL_KINDS, Net, NetnsChaos

SECONDS = float(os.environ.get("QUORATE_NETNS_SECONDS", "45"))
SEED = int(os.environ.get("QUORATE_NETNS_SEED", str(int(time.time()) % 100000)))
ELECTION_TIMEOUT = (0.15, 0.3)  # the node's default, written out for the lease bound below
MAX_CLOCK_DRIFT = 0.05
LEASE = ELECTION_TIMEOUT[0] * (1 - MAX_CLOCK_DRIFT)
# An event's `at` is read by the engine a little after the instant it describes; one process's
# demoted and another's elected may cross by that much on a loaded host. The status observer's
# check (two leaders at one instant) has no slack at all.
EVENT_SLACK = 0.02
RECOVER_BOUND = 30.0

_REASON = nh.unavailable_reason()


@pytest.fixture(scope="module")
def netns_ok():
    if _REASON is not None:
        pytest.skip(_REASON)


def run_faults(tmp_path, kinds: Dict[str, float], seconds: float, seed: int, name: str, one_way: bool = False) -> dict:
    """Runs `kinds` for `seconds` on five nodes in namespaces, asserts every check, returns figures."""
    if one_way:
        reason = nh.one_way_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
    lines: List[str] = []
    cfg = nh.chaos.ChaosConfig(seconds=seconds, seed=seed, root=str(tmp_path), recover_bound=RECOVER_BOUND,
                               start_bound=60.0, kinds=kinds, hold=(0.5, 2.0), gap=(0.2, 1.0),
                               election_timeout=ELECTION_TIMEOUT, log=lines.append)
    command = (f"QUORATE_NETNS_SEED={SEED} QUORATE_NETNS_SECONDS={SECONDS:g} "  # each test adds its offset
               f"pytest tests/test_netns.py -k {name}")
    net = Net(5, one_way=one_way)
    with net:
        schedule = NetnsChaos(cfg, str(tmp_path), command, net)
        report = schedule.run()
        overlaps, worst, intervals = nh.lease_overlaps(schedule.group, LEASE, EVENT_SLACK)
    left = net.alive()
    summary = (report.markdown() + f"\n\nlease intervals {intervals}, largest overlap {worst * 1000:.1f} ms"
               f"\nnetwork operations {net.ops}\n\nschedule:\n" + "\n".join(lines[-40:]))
    figures = {
        "test": name, "seed": seed, "seconds": round(report.wall_seconds, 1), "faults": dict(report.faults),
        "signals": dict(report.signals), "restarts": report.restarts, "elected": report.logs.elected,
        "leader_changes": report.logs.leader_changes, "demoted": dict(report.logs.demoted_reasons),
        "failover_ms": ms(report.failovers), "recovery_ms": ms(report.recoveries),
        "leader_kept": schedule.leader_kept, "leader_moved": schedule.leader_moved,
        "terms_during_bridge": schedule.bridge_terms,
        "recovery_by_kind": schedule.recovery_by_kind, "lease_intervals": intervals,
        "largest_overlap_ms": round(worst * 1000, 2), "reads": report.reads, "net_ops": net.ops,
        "violations": len(report.violations) + len(overlaps),
    }
    out = os.environ.get("QUORATE_NETNS_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(figures) + "\n")
    print(summary)
    assert left == [], f"namespaces left behind: {left}"
    assert not report.violations, summary
    assert not overlaps, "\n".join(overlaps) + "\n\n" + summary
    assert sum(report.faults.values()) >= 2, summary
    # A bridge node keeps a healthy leader (that is the point), so a run may see only the first election.
    assert report.logs.elected >= 1 and report.reads > 200, summary
    return figures


def ms(values: List[float]) -> dict:
    if not values:
        return {}
    v = sorted(values)
    return {"n": len(v), "median": round(1000 * statistics.median(v)), "max": round(1000 * v[-1])}


def test_isolate_the_leader(netns_ok, tmp_path):
    """Link down in the leader's namespace (its sends fail at once), and its veth detached from
    the bridge (its packets vanish): the other four elect; after the heal, one leader for all."""
    f = run_faults(tmp_path, {"isolate_leader_down": 1, "isolate_leader_detach": 1}, 10, SEED, "isolate")
    assert f["failover_ms"], f


def test_minority_and_majority_splits(netns_ok, tmp_path):
    """Two bridges: the leader with one follower cut from the other three (they elect), or two
    followers cut off (the leader's side keeps a leader)."""
    run_faults(tmp_path, {"split_leader_minority": 1, "split_leader_majority": 1}, 10, SEED + 1, "splits")


def test_bridge_node(netns_ok, tmp_path):
    """Sides {leader, f} on br0 and {f, f} on br1, and one follower with a veth on each: it reaches
    everyone, the sides not each other. The side with the bridge node keeps or finds a majority
    leader; with the leader frozen as well, the bridge node and side B elect."""
    run_faults(tmp_path, {"bridge_node": 1, "bridge_leader_frozen": 1}, 10, SEED + 2, "bridge")


def test_one_way_loss(netns_ok, tmp_path):
    """tc drops every packet in one direction only: the leader mute (its packets to the followers
    lost), the leader deaf (the followers' packets to it lost), one follower mute."""
    run_faults(tmp_path, {"oneway_leader_mute": 1, "oneway_leader_deaf": 1, "oneway_follower_mute": 1}, 10,
               SEED + 3, "one_way", one_way=True)


def test_kill_9_and_sigstop_in_namespaces(netns_ok, tmp_path):
    """benches/chaos.py's signal faults over the namespaced network: kill -9 and restart (at once
    too), SIGSTOP/SIGCONT of the leader, pauses around the lease."""
    run_faults(tmp_path, dict(SIGNAL_KINDS), 8, SEED + 4, "kill_9_and_sigstop")


def test_combinations(netns_ok, tmp_path):
    """Link down + SIGSTOP, a split + kill -9 on the majority side (no quorum until the heal and
    the restart), a mute leader + an isolated follower."""
    run_faults(tmp_path, {"isolate_and_stop": 1, "split_and_kill9": 1, "oneway_and_isolate": 1}, 10, SEED + 5,
               "combinations", one_way=True)


def test_random_schedule_of_every_fault(netns_ok, tmp_path):
    """Every kind above, drawn at random for QUORATE_NETNS_SECONDS (default 45)."""
    one_way = nh.one_way_unavailable_reason() is None
    kinds = {k: w for k, w in {**NET_KINDS, **SIGNAL_KINDS}.items() if one_way or "oneway" not in k}
    f = run_faults(tmp_path, kinds, SECONDS, SEED + 6, "random_schedule", one_way=one_way)
    assert len(f["faults"]) >= 4, f


OUTAGE = float(os.environ.get("QUORATE_NETNS_OUTAGE", "0"))


@pytest.mark.skipif(OUTAGE <= 0, reason="long: QUORATE_NETNS_OUTAGE=<seconds> (e.g. 45) runs it")
@pytest.mark.xfail(reason="a dialer never learns that a silent connection died: after a long cut its messages wait "
                          "for TCP's retransmission backoff (seen: 8.9 s after a 45 s outage)", strict=False)
def test_after_a_long_outage_of_every_link_a_leader_within_ten_election_timeouts(netns_ok, tmp_path):
    """Every node's veth off the bridge for QUORATE_NETNS_OUTAGE seconds (packets vanish, no RST),
    then back: a leader agreed by all within 10 x election_timeout[1] (issue 10's bound, 3 s)."""
    cfg = nh.chaos.ChaosConfig(seconds=0, seed=SEED, root=str(tmp_path), election_timeout=ELECTION_TIMEOUT,
                               log=lambda line: None)
    with Net(3, one_way=False) as net:
        group = nh.NetnsGroup(cfg, str(tmp_path), net)
        observer = nh.chaos.Observer(group, cfg).start()
        try:
            for i in group.ids:
                group.start(i)
            assert observer.wait_agreed(group.ids, time.monotonic(), RECOVER_BOUND), observer.describe()
            for i in group.ids:
                net.detach(i)
            time.sleep(OUTAGE)
            net.heal()
            healed = time.monotonic()
            found = observer.wait_agreed(group.ids, healed, RECOVER_BOUND)
            took = (found[1] - healed) if found else float("inf")
        finally:
            observer.stop()
            group.shutdown()
    print(f"after a {OUTAGE:g} s outage: a leader agreed by all {took:.2f} s after the heal")
    assert not observer.violations, observer.violations
    assert took <= 10 * ELECTION_TIMEOUT[1], f"{took:.2f} s after a {OUTAGE:g} s outage ({observer.describe()})"


# ----- the harness itself ----------------------------------------------------------------------


def test_teardown_removes_everything_even_after_a_failure(netns_ok):
    net = Net(2, one_way=False)
    with pytest.raises(RuntimeError, match="boom"):
        with net:
            assert len(net.alive()) == 3
            raise RuntimeError("boom")
    assert net.alive() == []


def test_stale_namespaces_of_a_dead_run_are_removed(netns_ok):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = f"{nh.PREFIX}-{dead.pid}-stale-n1"
    nh.run("ip", "netns", "add", name)
    orphan = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.3)
        assert name in nh.remove_stale()
        assert orphan.wait(10) == -9  # a node a killed run left behind is killed with its namespace
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait(10)
        nh.run("ip", "netns", "del", name, check=False)
    assert name not in nh.run("ip", "netns", "list").stdout


def test_the_interval_check_sees_overlapping_leaderships(tmp_path):
    """lease_overlaps on hand-written logs: b elected while a still led is caught; a leader frozen
    by SIGSTOP whose demoted comes after SIGCONT ends its leadership at SIGSTOP + lease."""

    class P:
        def __init__(self, i):
            self.node_id, self.log_path = i, str(tmp_path / f"{i}.jsonl")

    class G:
        procs = {"a": P("a"), "b": P("b")}
        kill_times: dict = {}
        pauses = {"a": [], "b": []}

    def write(i, events):
        with open(G.procs[i].log_path, "w") as f:
            f.write(json.dumps({"kind": "started", "node_id": i}) + "\n")
            for kind, at, term in events:
                f.write(json.dumps({"kind": kind, "node_id": i, "term": term, "at": at, "fencing_token": term}) + "\n")

    write("a", [("elected", 1.0, 1), ("demoted", 3.0, 1)])
    write("b", [("elected", 2.5, 2), ("demoted", 4.0, 2)])
    bad, worst, n = nh.lease_overlaps(G, 0.1425, 0.02)
    assert n == 2 and len(bad) == 1 and abs(worst - 0.5) < 1e-9, bad
    G.pauses["a"] = [(2.0, 2.9)]  # a frozen at 2.0: its lease was gone by 2.1425
    bad, worst, n = nh.lease_overlaps(G, 0.1425, 0.02)
    assert bad == [] and worst == 0.0, bad
    # Frozen at 2.4: the end 2.5425 is an upper bound (the lease ran from the last acked round,
    # up to a heartbeat interval before the freeze), so 42.5 ms past it is not proof of overlap...
    G.pauses["a"] = [(2.4, 2.9)]
    bad, worst, n = nh.lease_overlaps(G, 0.1425, 0.02, heartbeat=0.05)
    assert bad == [] and abs(worst - 0.0425) < 1e-9, bad
    # ... but 92.5 ms is.
    G.pauses["a"] = [(2.45, 2.9)]
    bad, worst, n = nh.lease_overlaps(G, 0.1425, 0.02, heartbeat=0.05)
    assert len(bad) == 1 and abs(worst - 0.0925) < 1e-9, bad
