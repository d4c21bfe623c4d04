"""One node of quorate or PySyncObj in its own process, for benches/compare_pysyncobj.py.

Not meant to be run by hand. The parent writes one JSON command a line on stdin and reads JSON
lines on stdout. At start it imports only the standard library (so the `ready` line's RSS is a
bare worker) and says {"k": "ready", "rss_kib": ...}. Commands (each reply carries the command's
"seq"):

- {"cmd": "load", "lib": "quorate"|"pysyncobj"}: imports the library (before "start", which is timed).
- {"cmd": "start", "lib": "quorate"|"pysyncobj", "id", "members": {id: "host:port"},
  "election_timeout": [min, max], "heartbeat", "data_dir", "pysyncobj_tick"}: imports the library and
  starts one node; replies {"k": "reply", "t": the monotonic time the node was started}.
- {"cmd": "stop"}: stops the node (abruptly; the process lives on, for the next "start").
- {"cmd": "poll", "on": bool}: pauses or resumes the observer (paused, it makes no wake-up at all).
- {"cmd": "busy", "on": bool, "n": int}: starts or stops the application's busy loop.
- {"cmd": "status"}: the node's term, leader and own leader flag, and the process's VmRSS.
- {"cmd": "query", "calls": int}: the cost of the leader query from Python, ns per call (timeit).
- {"cmd": "quit"} or end of stdin: stops the node and exits.

The observer is a side thread that reads the library's own leader query every millisecond
(quorate: `node.leader` and `node.is_leader`; PySyncObj: `_getLeader()` and `_isLeader()`) and
prints {"k": "poll", "t", "leader", "self"} each time the pair changes, with `t` from
time.monotonic(), which is CLOCK_MONOTONIC and so shared with the parent and the other workers.
For quorate the callbacks are printed too, {"k": "cb", "ev": "leader_changed"|"elected"|"demoted",
"t": when the callback was entered, "at": the engine's own time of the event, ...}.

The busy loop is `sum(range(n))` over and over on its own thread: one C call, which keeps the GIL
from start to end (CPython only hands the GIL over between bytecodes), of about 20 ms with the n
the parent calibrated (see compare_pysyncobj.calibrate_busy).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
import timeit
from typing import Any, Callable, Dict, Optional, Tuple

_out_lock = threading.Lock()


def emit(**record: Any) -> None:
    line = json.dumps(record)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def rss_kib(pid: str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


class QuorateNode:
    def __init__(self, spec: Dict[str, Any]) -> None:
        import warnings

        import quorate

        def cb(kind: str) -> Callable[[Any], None]:
            def on_event(e: Any) -> None:
                emit(k="cb", ev=kind, t=time.monotonic(), at=e.at, leader=e.leader, term=e.term,
                     reason=getattr(e, "reason", None))
            return on_event

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.node = quorate.Node(
                spec["id"], spec["members"], election_timeout=tuple(spec["election_timeout"]),
                heartbeat_interval=spec["heartbeat"], data_dir=spec["data_dir"],
                on_leader_change=cb("leader_changed"), on_elected=cb("elected"), on_demoted=cb("demoted"))
        self.node.start()

    def raw(self) -> Tuple[Any, bool]:
        n = self.node
        return n.leader, n.is_leader

    def name(self, raw_leader: Any) -> Optional[str]:
        return raw_leader  # already the id

    def term(self) -> int:
        return self.node.term

    def query_cost(self, calls: int) -> Dict[str, float]:
        g = {"n": self.node}
        return {"is_leader": best_ns("n.is_leader", g, calls), "leader": best_ns("n.leader", g, calls)}

    def stop(self) -> None:
        self.node.stop(graceful=False, timeout=2.0)


class PySyncObjNode:
    def __init__(self, spec: Dict[str, Any]) -> None:
        from pysyncobj import SyncObj, SyncObjConf

        members: Dict[str, str] = spec["members"]
        me = members[spec["id"]]
        self.ids = {addr: i for i, addr in members.items()}
        lo, hi = spec["election_timeout"]
        os.makedirs(spec["data_dir"], exist_ok=True)
        conf = SyncObjConf(
            raftMinTimeout=lo, raftMaxTimeout=hi, appendEntriesPeriod=spec["heartbeat"],
            autoTickPeriod=spec["pysyncobj_tick"], dynamicMembershipChange=False,
            journalFile=os.path.join(spec["data_dir"], "journal"),
            connectionRetryTime=spec.get("pysyncobj_retry", 0.5))
        self.obj = SyncObj(me, [a for a in members.values() if a != me], conf)

    def raw(self) -> Tuple[Any, bool]:
        o = self.obj
        return o._getLeader(), o._isLeader()

    def name(self, raw_leader: Any) -> Optional[str]:
        return None if raw_leader is None else self.ids.get(raw_leader.address, str(raw_leader.address))

    def term(self) -> int:
        return int(self.obj.raftCurrentTerm)

    def query_cost(self, calls: int) -> Dict[str, float]:
        g = {"o": self.obj}
        return {"is_leader": best_ns("o._isLeader()", g, calls), "leader": best_ns("o._getLeader()", g, calls)}

    def stop(self) -> None:
        self.obj.destroy_synchronous()


def best_ns(stmt: str, g: Dict[str, Any], calls: int) -> float:
    """ns per execution of `stmt`, the best of 5 timeit runs of `calls` each (timeit's own loop
    included: a few ns, the `pass` figure in the reply)."""
    return min(timeit.Timer(stmt, globals=g).repeat(repeat=5, number=calls)) / calls * 1e9


class Worker:
    def __init__(self) -> None:
        self.node: Any = None
        self.polling = threading.Event()
        self.polling.set()
        self.busy = threading.Event()
        self.busy_n = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._poll, name="observer", daemon=True).start()
        threading.Thread(target=self._busy, name="application", daemon=True).start()

    def _poll(self) -> None:
        last: Tuple[Any, bool] = (None, False)
        node = None
        while True:
            self.polling.wait()
            with self.lock:  # "stop" takes it too: no record of a stopped node follows its reply
                n = self.node
                if n is not node:  # a new node (or none): start from "no leader known"
                    node, last = n, (None, False)
                if n is not None:
                    leader, me = n.raw()
                    if leader != last[0] or me != last[1]:
                        t = time.monotonic()
                        last = (leader, me)
                        emit(k="poll", t=t, leader=n.name(leader), self=me)
            time.sleep(0.001)

    def _busy(self) -> None:
        while True:
            self.busy.wait()
            n = self.busy_n
            while self.busy.is_set():
                sum(range(n))  # one C call: the GIL is held for all of it (~20 ms)

    def handle(self, cmd: Dict[str, Any]) -> Dict[str, Any]:
        what = cmd["cmd"]
        if what == "load":  # import the library now, so that "start" measures no import
            __import__("quorate" if cmd["lib"] == "quorate" else "pysyncobj")
            return {}
        if what == "start":
            assert self.node is None, "already started"
            lib = cmd["lib"]
            node = QuorateNode(cmd) if lib == "quorate" else PySyncObjNode(cmd)
            t = time.monotonic()
            with self.lock:
                self.node = node
            return {"t": t}
        if what == "stop":
            with self.lock:
                node, self.node = self.node, None
            if node is not None:
                node.stop()
            return {}
        if what == "poll":
            (self.polling.set if cmd["on"] else self.polling.clear)()
            return {}
        if what == "busy":
            if cmd["on"]:
                self.busy_n = int(cmd["n"])
                self.busy.set()
            else:
                self.busy.clear()
            return {}
        if what == "status":
            n = self.node
            if n is None:
                return {"rss_kib": rss_kib()}
            leader, me = n.raw()
            return {"term": n.term(), "leader": n.name(leader), "self": me, "rss_kib": rss_kib()}
        if what == "query":
            calls = int(cmd["calls"])
            cost = self.node.query_cost(calls)
            cost["pass"] = best_ns("pass", {}, calls)
            return cost
        raise ValueError(f"unknown command {what!r}")


def _die_with_parent() -> None:
    # Linux: SIGKILL this worker when the parent dies, even by kill -9, so no node outlives a run.
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main() -> None:
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        os._exit(1)
    w = Worker()
    emit(k="ready", pid=os.getpid(), rss_kib=rss_kib())
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        try:
            reply = w.handle(cmd)
            emit(k="reply", seq=cmd.get("seq"), ok=True, **reply)
        except Exception as e:  # reported to the parent, which decides
            emit(k="reply", seq=cmd.get("seq"), ok=False, error=f"{type(e).__name__}: {e}")
    try:
        if w.node is not None:
            w.node.stop()
    finally:
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
