"""quorate beside PySyncObj (pure-Python Raft), in one run on one machine with the same settings
(issue 13). Measured, never asserted.

    pip install '.[bench]'                                   # PySyncObj, for this bench only
    python benches/compare_pysyncobj.py all --json results.json --write-benchmarks   # ~1 hour
    python benches/compare_pysyncobj.py failover --sizes 5 --trials 100
    python benches/compare_pysyncobj.py --quick all          # smoke test, under a minute

Measurements (each alone, or all of them with `all`):

- `query`: the cost of the leader query from Python, measured in the node's own process with
  timeit (best of 5 runs; timeit's loop, about `pass`'s figure, included): quorate's `is_leader`
  and `leader` properties against PySyncObj's `_isLeader()` and `_getLeader()`, on the leader of a
  3-process cluster, the observer paused.
- `idle`: CPU per node process (utime + stime from /proc/<pid>/stat) over `--window` seconds of
  a settled cluster with the observer paused, so that only the library runs; RSS per process
  (VmRSS) at the end, beside a bare worker's (the interpreter and this bench, no library).
- `coldstart`: fresh processes (libraries already imported), fresh ports and data dirs; the time
  from the start command to every node agreeing on one leader, `--trials` times.
- `failover`: kill -9 the leader at a random moment (0.2-0.4 s after the cluster agreed, so at a
  random point of the heartbeat cycle); the time from the kill to the moment since which every
  survivor names the same new leader and that leader's own query says it leads. The killed node
  is restarted from its data dir and the whole cluster agrees again before the next trial.
- `busy`: the application in every node process runs a CPU-bound loop that holds the GIL ~20 ms
  at a time (below). Spurious elections over `--window` seconds with no fault injected (new
  leaderships any observer saw; terms raised beside), then `--trials` crash failovers while the
  loop runs.
- `lowest`: for each library, the smallest election timeout (min, 2 x min; heartbeat 0.33 x min)
  on the ladder (`--ladder`) at which 5 busy processes keep one leader for `--window` seconds:
  no new leadership, no node's leader changing, no term raised. The search starts at
  `--ladder-start`, goes down while stable and up while not; then `--lowest-trials` crash
  failovers at each library's own lowest stable setting, busy as in the search.

Settings, the same for both: loopback only, free ports, temporary data dirs. At equal timeouts
PySyncObj's raftMinTimeout / raftMaxTimeout = quorate's election_timeout = 0.15 / 0.30 s, and
PySyncObj's appendEntriesPeriod = quorate's heartbeat_interval = 0.04 s (PySyncObj requires its
minimum timeout to exceed three heartbeat periods, hence 0.04 s and, on the ladder, 0.33 x min,
not min / 3). quorate otherwise runs its defaults (pre-vote, check-quorum, lease, a data_dir whose
term and vote are fsynced). PySyncObj runs its defaults except:
- journalFile in the node's data dir, for parity: quorate restarts a killed node from its durable
  term and vote, and so does PySyncObj with a journal (its log is an mmap'ed file and its term
  and vote are rewritten to a `.meta` file, flushed but not fsynced, before it votes). Without one
  a restarted PySyncObj node would come back with term 0 and an empty log.
- autoTickPeriod = min(0.05, heartbeat) (`--pysyncobj-tick` overrides it): PySyncObj acts on its
  timers only when its tick thread wakes, on a socket event or at the latest every autoTickPeriod
  (default 0.05 s); a tick slower than the heartbeat would stretch the heartbeat it was given.
- connectionRetryTime = 0.5 s (default 5 s): how soon a node redials a restarted peer. It only
  shortens the wait after each restart; no election depends on it.
- dynamicMembershipChange=False, as asked.

Observation, the same for both: each node process (benches/compare_pysyncobj_worker.py) runs a
side thread that polls the library's own leader query every millisecond and reports each change
with time.monotonic() (CLOCK_MONOTONIC, shared by every process on Linux, so the parent compares
times directly). quorate's callbacks are reported beside: a trial's callback time ends at the last
survivor's `on_leader_change` naming the new leader and the new leader's `on_elected`, and its
engine time at those events' own `at` (when the engine produced them, before any Python ran).

The busy loop: `sum(range(n))` on the application's thread, over and over. A pure-Python loop
would give the GIL up every 5 ms (sys.getswitchinterval()); one C call keeps it to the end.
n is calibrated in this process before any node starts: the best of 7 runs of
sum(range(200000)), scaled to 20 ms (`calibrate_busy`, whose result, with the GIL gaps a
ticking thread saw meanwhile, goes into the JSON). All nodes of a run share the machine: 5 busy
processes on 2 cores get about 40% of a core each, so a 20 ms call then holds the GIL for about
50 ms of wall time; both libraries face the same.

Statistics: median, p90, p99, max and n, with benches/node_bench.percentile (nearest rank). A
trial with no agreement within 30 s counts as infinite ("none"). Output: a Markdown table
(quorate, PySyncObj, ratio = PySyncObj / quorate, the issue's goal, met?) with the command that
produced it, `--json PATH` for every raw figure, `--write-benchmarks` to put the table into
BENCHMARKS.md between its markers. Every child process is killed at exit, Ctrl-C included.

Duration with the defaults (`all`, --trials 100, --window 60, --sizes 3,5) on the project's
2-core VM: about an hour, estimated from short runs (a failover trial takes ~0.8 s at equal
timeouts and 1.3-2.7 s in the busy service, a cold start ~0.5 s; eight 60 s windows; the ladder
walk costs ~65 s a level and PySyncObj's failovers at its own, longer timeouts a few s each).
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from node_bench import percentile, wait  # noqa: E402 - one percentile and one bounded wait for every bench
from quorate.cluster import free_ports  # noqa: E402

WORKER = os.path.join(HERE, "compare_pysyncobj_worker.py")
LIBS = ("quorate", "pysyncobj")
NAMES = {"quorate": "quorate", "pysyncobj": "PySyncObj"}
BOUND = 30.0  # seconds: every wait for a cluster is bounded by this
CLK_TCK = os.sysconf("SC_CLK_TCK")
PYSYNCOBJ_DEFAULT_TICK = 0.05
LADDER = (2.0, 1.4, 1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05, 0.035, 0.025, 0.018, 0.012)
HB_FRACTION = 0.33  # ladder heartbeat = 0.33 x min: PySyncObj asserts min > 3 x heartbeat
MARK_BEGIN = "<!-- compare_pysyncobj: begin (written by benches/compare_pysyncobj.py --write-benchmarks) -->"
MARK_END = "<!-- compare_pysyncobj: end -->"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Timing:
    lo: float
    hi: float
    hb: float

    def label(self) -> str:
        return f"{self.lo * 1000:g}-{self.hi * 1000:g} ms, hb {self.hb * 1000:g} ms"


EQUAL = Timing(0.15, 0.30, 0.04)


def ladder_timing(lo: float) -> Timing:
    return Timing(lo, 2 * lo, round(lo * HB_FRACTION, 6))


# ----- child processes -------------------------------------------------------------------------

_children: List["subprocess.Popen[str]"] = []


def kill_children() -> None:
    for p in _children:
        if p.poll() is None:
            p.kill()
    for p in _children:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a child that ignores SIGKILL
            pass
    _children.clear()


atexit.register(kill_children)


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid`, from /proc/<pid>/stat (fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


class NodeProc:
    """One worker process (respawned after a kill -9) and what its observer and callbacks said."""

    def __init__(self, lib: str, node_id: str, root: str) -> None:
        self.lib, self.node_id = lib, node_id
        self.err_path = os.path.join(root, f"{lib}-{node_id}.stderr")
        self.popen: Optional["subprocess.Popen[str]"] = None
        self.cond = threading.Condition()
        self.gen = 0  # which process; lines from an earlier one are ignored
        self.seq = 0
        self.replies: Dict[int, Dict[str, Any]] = {}
        self.eof = True
        self.ready: Optional[Dict[str, Any]] = None
        self.polls: List[Tuple[float, Optional[str], bool]] = []
        self.cbs: List[Dict[str, Any]] = []
        self.state: Tuple[Optional[str], bool, float] = (None, False, 0.0)  # leader, self, since

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def spawn(self) -> None:
        with self.cond:
            self.gen += 1
            gen = self.gen
            self.ready, self.eof, self.replies = None, False, {}
        with open(self.err_path, "a") as err:
            self.popen = subprocess.Popen([sys.executable, WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=err, text=True, bufsize=1)
        _children.append(self.popen)
        threading.Thread(target=self._read, args=(self.popen, gen), daemon=True).start()

    def _read(self, popen: "subprocess.Popen[str]", gen: int) -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            with self.cond:
                if gen != self.gen:
                    continue
                k = rec["k"]
                if k == "poll":
                    self.polls.append((rec["t"], rec["leader"], rec["self"]))
                    self.state = (rec["leader"], rec["self"], rec["t"])
                elif k == "cb":
                    self.cbs.append(rec)
                elif k == "reply":
                    self.replies[rec["seq"]] = rec
                elif k == "ready":
                    self.ready = rec
                self.cond.notify_all()
        with self.cond:
            if gen == self.gen:
                self.eof = True
                self.cond.notify_all()

    def stderr_tail(self) -> str:
        try:
            with open(self.err_path) as f:
                return "".join(f.readlines()[-15:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = BOUND) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.ready is not None or self.eof, timeout) or self.ready is None:
                raise RuntimeError(f"{self.lib} {self.node_id}: worker not ready\n{self.stderr_tail()}")

    def send(self, **cmd: Any) -> int:
        assert self.popen is not None and self.popen.stdin is not None
        with self.cond:
            self.seq += 1
            seq = self.seq
        self.popen.stdin.write(json.dumps({**cmd, "seq": seq}) + "\n")
        self.popen.stdin.flush()
        return seq

    def reply(self, seq: int, timeout: float = BOUND) -> Dict[str, Any]:
        with self.cond:
            self.cond.wait_for(lambda: seq in self.replies or self.eof, timeout)
            rep = self.replies.pop(seq, None)
        if rep is None:
            raise RuntimeError(f"{self.lib} {self.node_id}: no reply within {timeout} s\n{self.stderr_tail()}")
        if not rep["ok"]:
            raise RuntimeError(f"{self.lib} {self.node_id}: {rep['error']}\n{self.stderr_tail()}")
        return rep

    def request(self, timeout: float = BOUND, **cmd: Any) -> Dict[str, Any]:
        return self.reply(self.send(**cmd), timeout)

    def reset_observations(self) -> None:
        with self.cond:
            self.polls, self.cbs = [], []
            self.state = (None, False, time.monotonic())

    def kill9(self) -> None:
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait(10)

    def quit(self) -> None:
        p = self.popen
        if p is None or p.poll() is not None:
            return
        try:
            assert p.stdin is not None
            p.stdin.write('{"cmd": "quit"}\n')
            p.stdin.flush()
            p.wait(3)
        except (OSError, subprocess.TimeoutExpired):
            p.kill()
            p.wait(10)


class Cluster:
    """`size` worker processes of one library on loopback; nodes n1..n<size>."""

    def __init__(self, lib: str, size: int, timing: Timing, root: str, busy_n: int,
                 pysyncobj_tick: Optional[float] = None) -> None:
        self.lib, self.size, self.timing, self.root, self.busy_n = lib, size, timing, root, busy_n
        self.tick = pysyncobj_tick if pysyncobj_tick is not None else min(PYSYNCOBJ_DEFAULT_TICK, timing.hb)
        self.ids = [f"n{k}" for k in range(1, size + 1)]
        self.procs = {i: NodeProc(lib, i, root) for i in self.ids}
        self.members: Dict[str, str] = {}
        self.round = 0
        self.busy = False

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for p in self.procs.values():
            p.quit()

    def _load(self, p: NodeProc) -> None:
        p.wait_ready()
        p.request(cmd="load", lib=self.lib)

    def spawn(self) -> "Cluster":
        for p in self.procs.values():
            p.spawn()
        for p in self.procs.values():
            self._load(p)
        return self

    def spec(self, i: str) -> Dict[str, Any]:
        t = self.timing
        return {"cmd": "start", "lib": self.lib, "id": i, "members": self.members, "election_timeout": [t.lo, t.hi],
                "heartbeat": t.hb, "pysyncobj_tick": self.tick,
                "data_dir": os.path.join(self.root, f"{self.lib}-{self.size}-r{self.round}-{i}")}

    def start_nodes(self) -> float:
        """Starts a node in every process at once, on fresh ports and data dirs; returns the
        monotonic time just before the first start command was sent."""
        self.round += 1
        ports = free_ports(self.size)
        self.members = {i: f"127.0.0.1:{ports[k]}" for k, i in enumerate(self.ids)}
        for p in self.procs.values():
            p.reset_observations()
        t_go = time.monotonic()
        seqs = {i: self.procs[i].send(**self.spec(i)) for i in self.ids}
        for i, seq in seqs.items():
            self.procs[i].reply(seq)
        return t_go

    def stop_nodes(self) -> None:
        seqs = {i: self.procs[i].send(cmd="stop") for i in self.ids}
        for i, seq in seqs.items():
            self.procs[i].reply(seq)

    def restart(self, i: str) -> None:
        """A new process for node i, restarted from its data dir on its port (after a kill -9)."""
        p = self.procs[i]
        p.spawn()
        self._load(p)
        p.reset_observations()
        p.request(**self.spec(i))
        if self.busy:
            p.request(cmd="busy", on=True, n=self.busy_n)

    def set_polling(self, on: bool) -> None:
        for p in self.procs.values():
            p.request(cmd="poll", on=on)

    def set_busy(self, on: bool) -> None:
        self.busy = on
        for p in self.procs.values():
            p.request(cmd="busy", on=on, n=self.busy_n)

    def terms(self) -> Dict[str, int]:
        return {i: int(p.request(cmd="status")["term"]) for i, p in self.procs.items()}

    def agreed(self, alive: Sequence[str]) -> Optional[Tuple[str, float]]:
        """(leader, since): every live node names one leader, whose own query says it leads;
        `since` is the latest of their last changes, the moment from which they all agree."""
        states = [self.procs[i].state for i in alive]
        leaders = {s[0] for s in states}
        if len(leaders) != 1:
            return None
        (leader,) = leaders
        if leader is None or leader not in alive or not self.procs[leader].state[1]:
            return None
        return leader, max(s[2] for s in states)

    def wait_agreed(self, alive: Optional[Sequence[str]] = None, timeout: float = BOUND,
                    other_than: Optional[str] = None) -> Tuple[str, float]:
        alive = list(self.ids if alive is None else alive)

        def pred() -> Optional[Tuple[str, float]]:
            a = self.agreed(alive)
            return a if a is not None and a[0] != other_than else None

        try:
            return wait(pred, timeout)
        except TimeoutError:
            states = {i: self.procs[i].state[:2] for i in alive}
            raise TimeoutError(f"{self.lib}, {self.size} nodes: no agreed leader within {timeout} s: {states}") from None


# ----- measurements ----------------------------------------------------------------------------


def calibrate_busy(target: float = 0.020) -> Dict[str, Any]:
    """n for sum(range(n)) to take `target` seconds: best of 7 runs of 200000, scaled. Then 10
    calls of it while a thread ticks every 0.5 ms: the gaps it sees are how long the call held
    the GIL (they should be close to the call, never ~5 ms)."""
    n0 = 200_000
    best = math.inf
    for _ in range(7):
        t0 = time.perf_counter()
        sum(range(n0))
        best = min(best, time.perf_counter() - t0)
    n = max(1, int(n0 * target / best))
    gaps: List[float] = []
    done = threading.Event()

    def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.0005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    th = threading.Thread(target=ticker)
    th.start()
    calls = []
    for _ in range(10):
        t0 = time.perf_counter()
        sum(range(n))
        calls.append(time.perf_counter() - t0)
        time.sleep(0.002)
    done.set()
    th.join()
    gaps.sort()
    return {"n": n, "target_ms": target * 1000, "call_ms_median": 1000 * statistics.median(calls),
            "gil_gap_ms_max": 1000 * gaps[-1], "gil_gap_ms_p90": 1000 * percentile(gaps, 0.9)}


def stats(values: Sequence[float]) -> Dict[str, Any]:
    """Seconds in; median, p90, p99, max (ms; None = infinite, a trial without agreement) and n."""
    ms = sorted(v * 1000 for v in values)
    if not ms:
        return {"n": 0}
    f = lambda v: None if math.isinf(v) else round(v, 3)  # noqa: E731
    return {"n": len(ms), "median": f(percentile(ms, 0.5)), "p90": f(percentile(ms, 0.9)),
            "p99": f(percentile(ms, 0.99)), "max": f(ms[-1]), "failed": sum(math.isinf(v) for v in ms)}


def callback_end(c: Cluster, alive: Sequence[str], new: str, since: float, patience: float = 5.0
                 ) -> Optional[Tuple[float, float]]:
    """quorate only: (callback entered, engine `at`) of the last survivor to hear of `new` by
    callback (`on_leader_change` naming it; `on_elected` on `new` itself), after `since`."""

    def last_for(i: str) -> Optional[Dict[str, Any]]:
        p = c.procs[i]
        with p.cond:
            cbs = [e for e in p.cbs if e["t"] >= since]
        if i == new:
            hits = [e for e in cbs if e["ev"] == "elected"]
        else:
            hits = [e for e in cbs if e["ev"] == "leader_changed"]
            if not hits or hits[-1]["leader"] != new:
                return None
        return hits[-1] if hits else None

    try:
        found = wait(lambda: (lambda r: r if all(r) else None)([last_for(i) for i in alive]), patience)
    except TimeoutError:
        return None
    return max(e["t"] for e in found), max(e["at"] for e in found)


def failover_trials(c: Cluster, trials: int, rng: random.Random, what: str) -> Dict[str, Any]:
    """Kill -9 the leader `trials` times (see the module's docstring). A trial whose survivors
    agree on no new leader within BOUND counts as infinite; if the cluster does not agree again
    after the restart, the measurement stops there, with a note, keeping the trials it has."""
    poll: List[float] = []
    cb: List[float] = []
    engine: List[float] = []
    leaders: List[Tuple[str, Optional[str]]] = []
    notes: List[str] = []
    for k in range(trials):
        try:
            old, _ = c.wait_agreed()
            time.sleep(rng.uniform(0.2, 0.4))
            a = c.agreed(c.ids)
            if a is None or a[0] != old:  # it moved meanwhile: take the leader there is now
                old, _ = c.wait_agreed()
        except TimeoutError as e:
            notes.append(f"stopped before trial {k}: {e}")
            log(f"{what}: {notes[-1]}")
            break
        alive = [i for i in c.ids if i != old]
        t_kill = time.monotonic()
        c.procs[old].kill9()
        try:
            new, since = c.wait_agreed(alive, other_than=old)
            poll.append(since - t_kill)
            leaders.append((old, new))
            if c.lib == "quorate":
                end = callback_end(c, alive, new, t_kill)
                if end is None:
                    notes.append(f"trial {k}: no callback naming {new} within 5 s of agreement")
                else:
                    cb.append(end[0] - t_kill)
                    engine.append(end[1] - t_kill)
        except TimeoutError as e:
            poll.append(math.inf)
            leaders.append((old, None))
            notes.append(f"trial {k}: {e}")
        c.restart(old)
        if (k + 1) % 10 == 0 or k + 1 == trials:
            log(f"{what}: {k + 1}/{trials} trials, median so far {1000 * statistics.median(poll):.1f} ms")
    try:
        c.wait_agreed()
    except TimeoutError as e:
        notes.append(f"after the last trial: {e}")
    out: Dict[str, Any] = {"times_s": poll, "stats": stats(poll), "killed_and_new": leaders, "notes": notes}
    if c.lib == "quorate":
        out.update(callback_times_s=cb, callback_stats=stats(cb), engine_times_s=engine, engine_stats=stats(engine))
    return out


def query_cost(c: Cluster, calls: int) -> Dict[str, Any]:
    leader, _ = c.wait_agreed()
    follower = next(i for i in c.ids if i != leader)
    c.set_polling(False)
    try:
        on_leader = c.procs[leader].request(cmd="query", calls=calls, timeout=300)
        on_follower = c.procs[follower].request(cmd="query", calls=calls, timeout=300)
    finally:
        c.set_polling(True)
    keys = ("is_leader", "leader", "pass")
    return {"calls": calls, "leader_ns": {k: on_leader[k] for k in keys}, "follower_ns": {k: on_follower[k] for k in keys}}


def idle(c: Cluster, window: float) -> Dict[str, Any]:
    leader, _ = c.wait_agreed()
    terms0 = c.terms()
    c.set_polling(False)
    try:
        time.sleep(1.0)  # let the pause settle
        pids = {i: c.procs[i].pid for i in c.ids}
        cpu0, t0 = {i: cpu_seconds(pid) for i, pid in pids.items()}, time.monotonic()
        time.sleep(window)
        cpu1, t1 = {i: cpu_seconds(pid) for i, pid in pids.items()}, time.monotonic()
        rss = {i: rss_kib(pid) / 1024 for i, pid in pids.items()}
    finally:
        c.set_polling(True)
    after, _ = c.wait_agreed()
    pct = {i: 100 * (cpu1[i] - cpu0[i]) / (t1 - t0) for i in c.ids}
    bare = {i: c.procs[i].ready["rss_kib"] / 1024 for i in c.ids}  # type: ignore[index]
    return {"window_s": t1 - t0, "leader": leader, "leader_after": after, "terms_before": terms0,
            "terms_after": c.terms(), "cpu_pct": pct, "cpu_pct_mean": statistics.mean(pct.values()),
            "cpu_pct_leader": pct[leader], "rss_mib": rss, "rss_mib_mean": statistics.mean(rss.values()),
            "bare_rss_mib_mean": statistics.mean(bare.values())}


def busy_window(c: Cluster, window: float) -> Dict[str, Any]:
    """Turns the busy loop on in every process and counts, over `window` seconds, the new
    leaderships the observers saw (a node's own query turning true), nodes' leader changes, and
    terms raised (read from each node before and after)."""
    leader, _ = c.wait_agreed()
    terms0 = c.terms()
    c.set_busy(True)
    t0 = time.monotonic()
    time.sleep(window)
    t1 = time.monotonic()
    terms1 = c.terms()
    elections = leader_changes = 0
    cb_elected = 0
    reasons: Dict[str, int] = {}
    for p in c.procs.values():
        with p.cond:
            polls, cbs = list(p.polls), list(p.cbs)
        prev_leader: Optional[str] = None
        prev_self = False
        for t, ldr, me in polls:
            if t0 < t <= t1:
                elections += me and not prev_self
                leader_changes += ldr != prev_leader
            prev_leader, prev_self = ldr, me
        for e in cbs:
            if t0 < e["t"] <= t1:
                cb_elected += e["ev"] == "elected"
                if e["ev"] == "demoted":
                    reasons[e["reason"]] = reasons.get(e["reason"], 0) + 1
    raised = max(terms1.values()) - max(terms0.values())
    out: Dict[str, Any] = {"window_s": t1 - t0, "leader": leader, "elections": elections, "leader_changes": leader_changes,
                           "terms_raised": raised, "terms_before": terms0, "terms_after": terms1}
    if c.lib == "quorate":
        out.update(callback_elected=cb_elected, demoted_reasons=reasons)
    out["stable"] = elections == 0 and leader_changes == 0 and raised == 0
    return out


# ----- the runs ----------------------------------------------------------------------------------


@dataclass
class Settings:
    sizes: List[int]
    trials: int
    window: float
    calls: int
    ladder: List[float]
    ladder_start: float
    lowest_trials: int
    pysyncobj_tick: Optional[float]
    seed: int
    root: str
    busy: Dict[str, Any]


def run_equal(lib: str, size: int, parts: Sequence[str], s: Settings, out: Dict[str, Any]) -> None:
    """The measurements that share one cluster at equal timeouts, in order."""
    rng = random.Random(f"{s.seed}-{lib}-{size}")
    log(f"{NAMES[lib]}, {size} processes, {EQUAL.label()}: {', '.join(parts)}")
    with Cluster(lib, size, EQUAL, s.root, s.busy["n"], s.pysyncobj_tick) as c:
        c.spawn()
        c.start_nodes()
        c.wait_agreed()
        if "query" in parts:
            out.setdefault("query", {})[lib] = query_cost(c, s.calls)
        if "idle" in parts:
            out.setdefault("idle", {}).setdefault(str(size), {})[lib] = idle(c, s.window)
        if "failover" in parts:
            r = failover_trials(c, s.trials, rng, f"{NAMES[lib]} failover, {size} processes")
            out.setdefault("failover", {}).setdefault(str(size), {})[lib] = r
        if "busy" in parts:
            w = busy_window(c, s.window)
            log(f"{NAMES[lib]} busy, {size} processes: {w['elections']} new leaderships, terms raised {w['terms_raised']}")
            r = failover_trials(c, s.trials, rng, f"{NAMES[lib]} busy failover, {size} processes")
            out.setdefault("busy", {}).setdefault(str(size), {})[lib] = {"window": w, "failover": r}


def run_coldstart(lib: str, size: int, s: Settings, out: Dict[str, Any]) -> None:
    log(f"{NAMES[lib]}, {size} processes: {s.trials} cold starts")
    times: List[float] = []
    with Cluster(lib, size, EQUAL, s.root, s.busy["n"], s.pysyncobj_tick) as c:
        c.spawn()
        for _ in range(s.trials):
            t_go = c.start_nodes()
            try:
                _, since = c.wait_agreed()
                times.append(since - t_go)
            except TimeoutError:
                times.append(math.inf)
            c.stop_nodes()
    out.setdefault("coldstart", {}).setdefault(str(size), {})[lib] = {"times_s": times, "stats": stats(times)}


def run_lowest(lib: str, s: Settings, out: Dict[str, Any]) -> None:
    """Walks the ladder from s.ladder_start: down while stable, up while not."""
    ladder = sorted(set(s.ladder) | {s.ladder_start}, reverse=True)
    k = ladder.index(s.ladder_start)
    levels: List[Dict[str, Any]] = []
    stable_at: Dict[float, bool] = {}

    def try_level(lo: float) -> bool:
        timing = ladder_timing(lo)
        log(f"{NAMES[lib]} lowest stable: 5 busy processes at {timing.label()}")
        with Cluster(lib, 5, timing, s.root, s.busy["n"], s.pysyncobj_tick) as c:
            c.spawn()
            c.start_nodes()
            try:
                c.wait_agreed()
                w = busy_window(c, s.window)
            except TimeoutError as e:
                w = {"stable": False, "error": str(e)}
        levels.append({"min": lo, "timing": timing.__dict__, **w})
        log(f"  {'stable' if w['stable'] else 'not stable'}: {w.get('elections')} new leaderships, "
            f"terms raised {w.get('terms_raised')}")
        stable_at[lo] = w["stable"]
        return bool(w["stable"])

    if try_level(ladder[k]):
        while k + 1 < len(ladder) and try_level(ladder[k + 1]):
            k += 1
        lowest: Optional[float] = ladder[k]
    else:
        lowest = None
        while k > 0:
            k -= 1
            if try_level(ladder[k]):
                lowest = ladder[k]
                break
    r: Dict[str, Any] = {"levels": levels, "lowest": lowest}
    if lowest is not None:
        timing = ladder_timing(lowest)
        rng = random.Random(f"{s.seed}-{lib}-lowest")
        with Cluster(lib, 5, timing, s.root, s.busy["n"], s.pysyncobj_tick) as c:
            c.spawn()
            c.start_nodes()
            c.wait_agreed()
            c.set_busy(True)
            r["failover"] = failover_trials(c, s.lowest_trials, rng, f"{NAMES[lib]} failover at {timing.label()}, busy")
        r["timing"] = timing.__dict__
    out.setdefault("lowest", {})[lib] = r


# ----- the table -------------------------------------------------------------------------------


def fmt_times(st: Optional[Dict[str, Any]]) -> str:
    if not st or not st.get("n"):
        return "—"
    f = lambda v: "none" if v is None else f"{v:.1f}"  # noqa: E731
    return f"{f(st['median'])} / {f(st['p90'])} / {f(st['p99'])} / {f(st['max'])} (n={st['n']})"


def ratio(p: Optional[float], q: Optional[float]) -> Optional[float]:
    if p is None or q is None:
        return None
    if q == 0:
        return math.inf if p > 0 else None
    return p / q


def fmt_ratio(r: Optional[float]) -> str:
    if r is None:
        return "—"
    return "∞" if math.isinf(r) else f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def yes(v: Optional[bool]) -> str:
    return "—" if v is None else "yes" if v else "**no**"


def le(a: Optional[float], b: Optional[float]) -> bool:
    """a <= b, with None as infinite (a percentile that fell on a trial without agreement)."""
    if b is None:
        return True
    return a is not None and a <= b


def finite(o: Any) -> Any:
    """`o` with every infinite float as None, for strict JSON."""
    if isinstance(o, float) and math.isinf(o):
        return None
    if isinstance(o, dict):
        return {k: finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite(v) for v in o]
    return o


def table(res: Dict[str, Any]) -> Tuple[str, Dict[str, Optional[bool]]]:
    rows: List[str] = ["| measure | quorate | PySyncObj | ratio (PySyncObj / quorate) | goal | met |",
                       "|---|---|---|---|---|---|"]
    goals: Dict[str, Optional[bool]] = {}

    def row(measure: str, q: str, p: str, r: str = "—", goal: str = "—", met: Optional[bool] = None) -> None:
        rows.append(f"| {measure} | {q} | {p} | {r} | {goal} | {yes(met)} |")

    def pair(d: Dict[str, Any], lib: str, key: str = "stats") -> Optional[Dict[str, Any]]:
        return (d.get(lib) or {}).get(key)

    def times_rows(label: str, d: Dict[str, Any], goal: str = "—", goal_key: Optional[str] = None,
                   check: Optional[Callable[[Dict[str, Any], Dict[str, Any]], bool]] = None) -> None:
        q, p = pair(d, "quorate"), pair(d, "pysyncobj")
        r = "—"
        met = None
        if q and p and q.get("n") and p.get("n"):
            r = f"{fmt_ratio(ratio(p['median'], q['median']))} median, {fmt_ratio(ratio(p['p99'], q['p99']))} p99"
            if check is not None:
                met = check(q, p)
        row(label, fmt_times(q), fmt_times(p), r, goal, met)
        if goal_key is not None:
            goals[goal_key] = met
        if "callback_stats" in (d.get("quorate") or {}):
            row(f"{label}: quorate's callbacks (engine `at`)", f"{fmt_times(d['quorate']['callback_stats'])} "
                f"({fmt_times(d['quorate']['engine_stats'])})", "—")

    no_worse = lambda q, p: le(q["median"], p["median"]) and le(q["p99"], p["p99"])  # noqa: E731
    for size, d in sorted((res.get("failover") or {}).items()):
        times_rows(f"crash failover, {size} processes, {EQUAL.label()} (ms)", d,
                   "quorate median and p99 <= PySyncObj's", f"failover_{size}", no_worse)
    for size, d in sorted((res.get("coldstart") or {}).items()):
        times_rows(f"first leader from a cold start, {size} processes (ms)", d)
    for size, d in sorted((res.get("idle") or {}).items()):
        q, p = d.get("quorate"), d.get("pysyncobj")
        cell = lambda x: "—" if not x else f"{x['cpu_pct_mean']:.3f}% of a core (leader {x['cpu_pct_leader']:.3f}%)"  # noqa: E731
        r = ratio(p["cpu_pct_mean"], q["cpu_pct_mean"]) if q and p else None
        met = None if r is None else r >= 10
        goals[f"idle_{size}"] = met
        row(f"idle CPU per node, {size} processes, {q['window_s'] if q else p['window_s']:.0f} s, observer paused",
            cell(q), cell(p), fmt_ratio(r), "quorate <= 0.1 x PySyncObj", met)
        cell = lambda x: "—" if not x else f"{x['rss_mib_mean']:.1f} MiB (bare worker {x['bare_rss_mib_mean']:.1f})"  # noqa: E731
        row(f"RSS per node process, {size} processes", cell(q), cell(p),
            fmt_ratio(ratio(p["rss_mib_mean"], q["rss_mib_mean"])) if q and p else "—")
    qd = res.get("query") or {}
    for key, qname, pname in (("is_leader", "is_leader", "_isLeader()"), ("leader", "leader", "_getLeader()")) if qd else ():
        q, p = (qd.get("quorate") or {}).get("leader_ns"), (qd.get("pysyncobj") or {}).get("leader_ns")
        r = ratio(p[key], q[key]) if q and p else None
        met = None if r is None else r >= 10
        goals[f"query_{key}"] = met
        row(f"leader query from Python, on the leader: `{qname}` / `{pname}` (ns per call)",
            f"{q[key]:.0f}" if q else "—", f"{p[key]:.0f}" if p else "—", fmt_ratio(r), "quorate >= 10 x faster", met)
    for size, d in sorted((res.get("busy") or {}).items()):
        q, p = (d.get("quorate") or {}).get("window"), (d.get("pysyncobj") or {}).get("window")
        cell = lambda x: "—" if not x else f"{x['elections']} (terms raised {x['terms_raised']})"  # noqa: E731
        met = None if not q else q["elections"] == 0 and q["terms_raised"] == 0
        goals[f"busy_spurious_{size}"] = met
        w = (q or p or {}).get("window_s", 0)
        row(f"busy service: spurious elections in {w:.0f} s, {size} processes", cell(q), cell(p), "—",
            "quorate: 0", met)
        times_rows(f"busy service: crash failover, {size} processes (ms)",
                   {lib: (d.get(lib) or {}).get("failover") or {} for lib in LIBS})
    lo = res.get("lowest") or {}
    if lo:
        cell = lambda x: "—" if not x else ("none on the ladder" if x.get("lowest") is None else  # noqa: E731
                                            Timing(**x["timing"]).label())
        q, p = lo.get("quorate"), lo.get("pysyncobj")
        row("lowest stable election timeout, 5 busy processes", cell(q), cell(p),
            fmt_ratio(ratio(p["lowest"], q["lowest"])) if q and p and q.get("lowest") and p.get("lowest") else "—")
        ten = lambda q, p: q["median"] is not None and le(10 * q["median"], p["median"])  # noqa: E731
        times_rows("crash failover at each one's lowest stable setting, 5 busy processes (ms)",
                   {lib: (lo.get(lib) or {}).get("failover") or {} for lib in LIBS},
                   "quorate >= 10 x faster (median)", "lowest_failover", ten)
    return "\n".join(rows), goals


def markdown(res: Dict[str, Any]) -> str:
    t, _ = table(res)
    m = res["meta"]
    b = m["busy"]
    return "\n".join([
        f"`{m['command']}` — {m['date']}, {m['machine']}, Python {m['python']}, quorate {m['versions']['quorate']}, "
        f"PySyncObj {m['versions']['pysyncobj']}; load average {m['loadavg_start']} at the start, "
        f"{m['loadavg_end']} at the end. Times in ms as median / p90 / p99 / max (n). Busy loop: "
        f"sum(range({b['n']})), {b['call_ms_median']:.1f} ms a call when calibrated, longest GIL gap seen "
        f"{b['gil_gap_ms_max']:.1f} ms.",
        "",
        t,
    ])


def write_benchmarks(path: str, text: str) -> None:
    with open(path) as f:
        doc = f.read()
    if MARK_BEGIN not in doc or MARK_END not in doc:
        raise SystemExit(f"{path}: no {MARK_BEGIN!r} ... {MARK_END!r} markers to write between")
    head, rest = doc.split(MARK_BEGIN, 1)
    _, tail = rest.split(MARK_END, 1)
    with open(path, "w") as f:
        f.write(f"{head}{MARK_BEGIN}\n{text}\n{MARK_END}{tail}")


def meta(command: str, busy: Dict[str, Any]) -> Dict[str, Any]:
    import quorate

    try:
        from importlib.metadata import version

        pso = version("pysyncobj")
    except Exception:  # pragma: no cover - reported, not fatal here
        pso = "unknown"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"command": command, "date": datetime.date.today().isoformat(),
            "machine": f"{os.cpu_count()} CPUs ({model})", "python": platform.python_version(),
            "versions": {"quorate": getattr(quorate, "__version__", "?"), "pysyncobj": pso},
            "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()), "busy": busy}


# ----- command line ------------------------------------------------------------------------------


def floats(text: str) -> List[float]:
    return [float(x) for x in text.split(",") if x]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="?", default="all",
                    choices=["all", "query", "idle", "coldstart", "failover", "busy", "lowest"])
    ap.add_argument("--trials", type=int, help="trials per failover and cold-start measurement (default 100)")
    ap.add_argument("--window", type=float, help="seconds of the idle and busy windows (default 60)")
    ap.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")], help="cluster sizes (default 3,5)")
    ap.add_argument("--calls", type=int, help="leader-query calls per timeit run (default 200000)")
    ap.add_argument("--ladder", type=floats, help="election-timeout minimums to search, s (default "
                    + ",".join(f"{x:g}" for x in LADDER) + ")")
    ap.add_argument("--ladder-start", type=float, help="where the lowest-stable search starts (default 0.3)")
    ap.add_argument("--lowest-trials", type=int, help="failover trials at each lowest stable setting (default --trials)")
    ap.add_argument("--pysyncobj-tick", type=float, help="PySyncObj autoTickPeriod (default min(0.05, heartbeat))")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smoke-test preset: --sizes 3 --trials 3 --window 2 "
                    "--calls 20000 --ladder 0.15,0.05 --ladder-start 0.15 --lowest-trials 2")
    ap.add_argument("--json", metavar="PATH", help="write every raw figure here")
    ap.add_argument("--write-benchmarks", nargs="?", const=os.path.join(HERE, "..", "BENCHMARKS.md"), metavar="PATH",
                    help="put the table into BENCHMARKS.md (or PATH) between its compare_pysyncobj markers")
    a = ap.parse_args(argv)
    quick = a.quick
    pick = lambda v, full, q: v if v is not None else (q if quick else full)  # noqa: E731
    trials = pick(a.trials, 100, 3)
    root = tempfile.mkdtemp(prefix="quorate-vs-pysyncobj-")
    command = "python benches/compare_pysyncobj.py " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        import pysyncobj  # noqa: F401 - fail early, with the reason, before any process starts
    except ImportError:
        print("PySyncObj is not installed: pip install '.[bench]'", file=sys.stderr)
        return 2
    try:
        busy = calibrate_busy()
        log(f"busy loop: sum(range({busy['n']})) ~ {busy['call_ms_median']:.1f} ms a call, "
            f"longest GIL gap {busy['gil_gap_ms_max']:.1f} ms")
        s = Settings(sizes=pick(a.sizes, [3, 5], [3]), trials=trials, window=pick(a.window, 60.0, 2.0),
                     calls=pick(a.calls, 200_000, 20_000), ladder=pick(a.ladder, list(LADDER), [0.15, 0.05]),
                     ladder_start=pick(a.ladder_start, 0.3, 0.15), lowest_trials=pick(a.lowest_trials, trials, 2),
                     pysyncobj_tick=a.pysyncobj_tick, seed=a.seed, root=root, busy=busy)
        res: Dict[str, Any] = {"meta": meta(command, busy), "settings": {
            "sizes": s.sizes, "trials": s.trials, "window_s": s.window, "calls": s.calls, "ladder": s.ladder,
            "ladder_start": s.ladder_start, "lowest_trials": s.lowest_trials, "equal_timing": EQUAL.__dict__,
            "pysyncobj_tick": s.pysyncobj_tick, "hb_fraction_on_ladder": HB_FRACTION, "seed": s.seed}}
        t_start = time.monotonic()
        parts = {"all": ["query", "idle", "failover", "busy"], "query": ["query"], "idle": ["idle"],
                 "failover": ["failover"], "busy": ["busy"]}.get(a.what, [])
        for size in s.sizes:
            for lib in LIBS:
                todo = [x for x in parts if x != "query" or size == s.sizes[0]]
                if todo:
                    run_equal(lib, size, todo, s, res)
        if a.what in ("all", "coldstart"):
            for size in s.sizes:
                for lib in LIBS:
                    run_coldstart(lib, size, s, res)
        if a.what in ("all", "lowest"):
            for lib in LIBS:
                run_lowest(lib, s, res)
        res["meta"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        res["meta"]["duration_s"] = time.monotonic() - t_start
        t, goals = table(res)
        res["goals"] = goals
        text = markdown(res)
        print(text)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(finite(res), f, indent=1, allow_nan=False)
        if a.write_benchmarks:
            write_benchmarks(a.write_benchmarks, text)
        log(f"done in {res['meta']['duration_s']:.0f} s")
        return 0
    finally:
        kill_children()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
