"""Benchmarks of the networked node on loopback (issue 3). Measured, never asserted.

    python benches/node_bench.py failover --members 3 --trials 200
    python benches/node_bench.py failover --members 5 --trials 200
    python benches/node_bench.py failover --members 5 --trials 200 --aggressive
    python benches/node_bench.py handoff --trials 200
    python benches/node_bench.py idle
    python benches/node_bench.py latency

Failover uses real processes (`python -m quorate node`): kill -9 the leader at a random moment,
then read from the survivors' own event logs (JSON lines whose `at` is on the host's shared
monotonic clock) when each of them learned the new leader. The time of a trial is from the kill
to the last survivor's `leader_changed` naming the new leader, so polling adds nothing to it.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import resource
import signal
import statistics
import sys
import tempfile
import threading
import time
import warnings
from typing import List

import quorate
from quorate.cluster import free_ports

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from process_harness import agreed_leader as agreed  # noqa: E402 - shared with the tests
from process_harness import make_group


def percentile(ordered: List[float], q: float) -> float:
    """The q-quantile (0..1) of an ascending list: the value at rank round(q x (n - 1)). Every
    bench in this directory reports percentiles this way, so their tables compare."""
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarize(name: str, values_s: List[float]) -> str:
    ms = sorted(v * 1000 for v in values_s)
    p = lambda q: percentile(ms, q)  # noqa: E731
    return (f"| {name} | {len(ms)} | {statistics.mean(ms):.1f} | {p(0.5):.1f} | {p(0.9):.1f} | "
            f"{p(0.99):.1f} | {ms[-1]:.1f} |")


HEADER = "| scenario | trials | mean ms | median ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|"


def wait(pred, timeout: float):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.005)
    raise TimeoutError("benchmark step timed out")


def failover(members: int, trials: int, aggressive: bool) -> str:
    timing = ["--election-timeout", "0.012", "0.024", "--heartbeat-interval", "0.005"] if aggressive else []
    root = tempfile.mkdtemp(prefix="quorate-bench-")
    procs = make_group(members, root, free_ports(2 * members), timing, prefix="b")
    ids = list(procs)
    for p in procs.values():
        p.start()
    times: List[float] = []
    rng = random.Random(1)
    try:
        for _ in range(trials):
            alive = list(ids)
            leader = wait(functools.partial(agreed, procs, alive), 30)
            time.sleep(rng.uniform(0.2, 0.4))  # a random point of the leader's heartbeat cycle
            leader = wait(functools.partial(agreed, procs, alive), 30)
            t_kill = time.monotonic()
            procs[leader].popen.kill()  # SIGKILL
            procs[leader].popen.wait()
            alive.remove(leader)
            new = wait(functools.partial(agreed, procs, alive), 30)
            learned = []
            for i in alive:
                evs = [e for e in procs[i].events(since=t_kill) if e["kind"] == "leader_changed" and e["leader"] == new]
                learned.append(min(e["at"] for e in evs) if evs else time.monotonic())
            times.append(max(learned) - t_kill)
            procs[leader].start()
            wait(lambda: agreed(procs, ids), 30)
    finally:
        for p in procs.values():
            if p.popen and p.popen.poll() is None:
                p.popen.send_signal(signal.SIGKILL)
    label = f"crash failover, {members} processes, " + ("12-24 ms, hb 5 ms" if aggressive else "150-300 ms, hb 50 ms")
    return summarize(label, times)


def handoff(trials: int) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = quorate.LocalCluster(3).start()
    times = []
    try:
        for k in range(trials):
            leader = c.wait_for_leader(10)
            target = [i for i in c.nodes if i != leader][k % 2]
            sub = {i: n.subscribe() for i, n in c.nodes.items()}
            t0 = time.monotonic()
            c.nodes[leader].transfer_leadership(target, timeout=5)
            learned = []
            for s in sub.values():
                while True:
                    e = s.get(timeout=5)
                    if e.kind == "leader_changed" and e.leader == target:
                        learned.append(e.at)
                        break
                s.close()
            times.append(max(learned) - t0)
            time.sleep(0.05)
    finally:
        c.stop()
    return summarize("graceful hand-off (transfer_leadership), 3 in-process nodes", times)


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def idle() -> str:
    before = rss_kib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = quorate.LocalCluster(5).start()
    c.wait_for_leader(10)
    time.sleep(2.0)
    after = rss_kib()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    time.sleep(20.0)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    c.stop()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return (f"| 5 nodes in one process, 50 ms heartbeats, idle 20 s | CPU {100 * cpu / (t1 - t0):.2f}% of one core "
            f"| RSS +{(after - before) / 1024 / 5:.2f} MiB per node |")


def latency() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = quorate.LocalCluster(3).start()
    leader = c.wait_for_leader(10)
    node = c.nodes[leader]
    n = 200_000
    t0 = time.perf_counter()
    for _ in range(n):
        node.is_leader  # noqa: B018 - reading the property is the work measured
    read_us = (time.perf_counter() - t0) / n * 1e6
    delays: List[float] = []
    lock = threading.Lock()

    def on_change(e: quorate.Event) -> None:
        with lock:
            delays.append(time.monotonic() - e.at)

    c.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = quorate.LocalCluster(3, on_leader_change=on_change).start()
    for _ in range(50):
        leader = c.wait_for_leader(10)
        c.nodes[leader].resign()
        time.sleep(0.05)
    c.stop()
    delays.sort()
    return (f"| is_leader read from Python | {read_us:.3f} µs |\n"
            f"| engine event to Python callback entered ({len(delays)} events) | median {1000 * delays[len(delays) // 2]:.3f} ms, "
            f"p99 {1000 * delays[int(0.99 * (len(delays) - 1))]:.3f} ms |")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    f = sub.add_parser("failover")
    f.add_argument("--members", type=int, default=3)
    f.add_argument("--trials", type=int, default=200)
    f.add_argument("--aggressive", action="store_true")
    h = sub.add_parser("handoff")
    h.add_argument("--trials", type=int, default=200)
    sub.add_parser("idle")
    sub.add_parser("latency")
    a = ap.parse_args()
    if a.what == "failover":
        print(HEADER)
        print(failover(a.members, a.trials, a.aggressive))
    elif a.what == "handoff":
        print(HEADER)
        print(handoff(a.trials))
    elif a.what == "idle":
        print(idle())
    else:
        print(latency())


if __name__ == "__main__":
    main()
