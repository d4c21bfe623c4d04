"""The soak: five `python -m quorate node` processes on 127.0.0.1 (a secret, a data_dir each)
under benches/chaos.py's random schedule (kill -9 and restart, SIGSTOP/SIGCONT, graceful
restarts, with its observer checking safety the whole time and the event logs at the end) for
QUORATE_SOAK_SECONDS (default 120; the long run is 1800), while every node process's resident
memory (VmRSS in /proc/<pid>/status) and open file descriptors (/proc/<pid>/fd) are sampled
once a second.

Two nodes (n1, n2) are never killed or restarted, only frozen (SIGSTOP) and resumed, so their
series span the whole run; the others are killed and restarted, and each of their processes
starts a series of its own. Every series at least MIN_SERIES seconds long must be flat: the
median of its last third at most 20 MiB and 20 descriptors above the median of its first third.
And 0 violations. QUORATE_SOAK_SEED picks the schedule; QUORATE_SOAK_REPORT names a file that
gets the run's figures as one JSON line.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import threading
import time
from typing import Dict, List, Tuple

import netns_harness as nh  # for sample_process and benches/chaos.py; needs no root
from netns_harness import chaos

SECONDS = float(os.environ.get("QUORATE_SOAK_SECONDS", "120"))
SEED = int(os.environ.get("QUORATE_SOAK_SEED", str(int(time.time()) % 100000)))
PROTECTED = ("n1", "n2")  # frozen and resumed, never killed: one series each for the whole run
RSS_GROWTH = 20 * 1024 * 1024
FD_GROWTH = 20
MIN_SERIES = min(60.0, SECONDS / 2)  # a series shorter than this has no meaningful thirds

SOAK_KINDS: Dict[str, float] = {
    "kill9_leader": 3, "kill9_follower": 2, "kill9_restart_at_once": 2, "kill9_and_stop": 1,
    "sigterm_leader": 1, "stop_leader": 3, "stop_follower": 1, "stop_flap": 2, "stop_majority": 1,
}
LEADER_ENDS = ("kill9_leader", "kill9_restart_at_once", "kill9_and_stop", "sigterm_leader")


class SoakChaos(chaos.Chaos):
    """chaos.Chaos whose kills and restarts never hit PROTECTED: a fault that would end a protected
    leader's process freezes it instead (stop_leader), and a follower kill picks an unprotected one."""

    def inject(self, kind: str) -> None:
        if kind in LEADER_ENDS and self.leader in PROTECTED:
            self.log(f"{kind} would end protected {self.leader}'s process: stop_leader instead")
            kind = "stop_leader"
        if kind == "kill9_follower":
            victim = self.rng.choice([i for i in self.group.ids if i != self.leader and i not in PROTECTED])
            self.report.faults[kind] += 1
            self.observer.fault_in_force = True
            self.kill([victim])
            self.hold()
            self.restart([victim])
            self.settle(kind)
            self.observer.fault_in_force = False
            return
        super().inject(kind)


class Sampler:
    """Samples (seconds since start, VmRSS bytes, fds) of every live node process once a second,
    one series per (node, process)."""

    def __init__(self, group: chaos.Group, interval: float = 1.0) -> None:
        self.group = group
        self.interval = interval
        self.series: Dict[Tuple[str, int], List[Tuple[float, int, int]]] = collections.defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self.t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self.group.lock:
                live = [(i, self.group.life[i], self.group.procs[i].popen) for i in self.group.ids
                        if self.group.state[i] != "down"]
            for i, life, popen in live:
                if popen is None or popen.poll() is not None:
                    continue
                got = nh.sample_process(popen.pid)
                if got is not None:
                    self.series[(i, life)].append((time.monotonic() - self.t0, got[0], got[1]))

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def thirds(samples: List[Tuple[float, int, int]]) -> dict:
    n = len(samples)
    first, last = samples[: n // 3], samples[n - n // 3:]
    return {
        "samples": n, "span_s": round(samples[-1][0] - samples[0][0]),
        "rss_first_mib": round(statistics.median(s[1] for s in first) / 2**20, 1),
        "rss_last_mib": round(statistics.median(s[1] for s in last) / 2**20, 1),
        "rss_max_mib": round(max(s[1] for s in samples) / 2**20, 1),
        "fds_first": statistics.median(s[2] for s in first), "fds_last": statistics.median(s[2] for s in last),
        "fds_max": max(s[2] for s in samples),
    }


def test_soak_five_processes_random_faults_flat_rss_and_fds(tmp_path):
    lines: List[str] = []
    cfg = chaos.ChaosConfig(seconds=SECONDS, seed=SEED, root=str(tmp_path), recover_bound=30.0, start_bound=60.0,
                            kinds=SOAK_KINDS, log=lines.append)
    command = f"QUORATE_SOAK_SECONDS={SECONDS:g} QUORATE_SOAK_SEED={SEED} pytest tests/test_soak.py"
    soak = SoakChaos(cfg, str(tmp_path), command)
    with Sampler(soak.group) as sampler:
        report = soak.run()
    flat: Dict[str, dict] = {}
    growth: List[str] = []
    for (node, life), samples in sorted(sampler.series.items()):
        if len(samples) < 6 or samples[-1][0] - samples[0][0] < MIN_SERIES:
            continue
        t = thirds(samples)
        flat[f"{node}/{life}"] = t
        if (t["rss_last_mib"] - t["rss_first_mib"]) * 2**20 >= RSS_GROWTH:
            growth.append(f"{node} process {life}: RSS {t['rss_first_mib']} -> {t['rss_last_mib']} MiB")
        if t["fds_last"] - t["fds_first"] >= FD_GROWTH:
            growth.append(f"{node} process {life}: fds {t['fds_first']} -> {t['fds_last']}")
    figures = {
        "seed": SEED, "seconds": round(report.wall_seconds, 1), "faults": dict(report.faults),
        "signals": dict(report.signals), "restarts": report.restarts, "elected": report.logs.elected,
        "leader_changes": report.logs.leader_changes, "series": flat,
        "short_series": sum(1 for s in sampler.series.values() if s and s[-1][0] - s[0][0] < MIN_SERIES),
        "recovery_median_ms": round(1000 * statistics.median(report.recoveries)) if report.recoveries else None,
        "recovery_max_ms": round(1000 * max(report.recoveries, default=0.0)),
        "failover_median_ms": round(1000 * statistics.median(report.failovers)) if report.failovers else None,
        "violations": len(report.violations), "growth": growth,
    }
    out = os.environ.get("QUORATE_SOAK_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(figures) + "\n")
    summary = (report.markdown() + "\n\nseries (first third -> last third medians):\n" +
               "\n".join(f"{k}: {v}" for k, v in flat.items()) + "\n\nschedule:\n" + "\n".join(lines[-30:]))
    print(summary)
    assert not report.violations, summary
    assert all((p, 0) in sampler.series for p in PROTECTED), summary
    for p in PROTECTED:  # never restarted: one series over (nearly) the whole run
        assert f"{p}/0" in flat and flat[f"{p}/0"]["span_s"] >= 0.8 * SECONDS, summary
    assert not growth, "\n".join(growth) + "\n\n" + summary
    assert sum(report.faults.values()) >= 10 and report.logs.elected >= 5, summary
