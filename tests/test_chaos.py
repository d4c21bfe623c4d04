"""Chaos on real processes, short: benches/chaos.py's harness (five `python -m quorate node`
processes with a secret and data dirs; kill -9 and restart, SIGSTOP/SIGCONT, graceful restarts;
an observer reading every /status every few ms; the event logs checked at the end) for about 40 s
of faults, asserting that it finds no violation. The full run is `python benches/chaos.py`
(10 minutes); QUORATE_CHAOS_SECONDS and QUORATE_CHAOS_SEED change this one's length and schedule.

Bounds are generous (a leader agreed within 30 s of a fault clearing, a restarted process
answering within 60 s): CI runs this on two busy cores. Safety checks have no slack at all."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from typing import Dict, Iterator

import quorate
from conftest import wait_until
from process_harness import Proc
from quorate.cluster import free_ports

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benches"))
from chaos import ChaosConfig, is_status_client_gone, run_chaos, tracebacks  # noqa: E402 - benches/chaos.py

SECONDS = float(os.environ.get("QUORATE_CHAOS_SECONDS", "40"))
SEED = int(os.environ.get("QUORATE_CHAOS_SEED", "20261129"))


def test_five_processes_under_kill_9_sigstop_and_restarts_show_no_violation(tmp_path):
    lines = []
    cfg = ChaosConfig(seconds=SECONDS, seed=SEED, root=str(tmp_path), recover_bound=30.0, start_bound=60.0,
                      log=lines.append)
    command = f"QUORATE_CHAOS_SECONDS={SECONDS:g} QUORATE_CHAOS_SEED={SEED} pytest tests/test_chaos.py"
    report = run_chaos(cfg, command)
    summary = report.markdown() + "\n\nschedule:\n" + "\n".join(lines[-40:])
    assert not report.violations, summary
    # The run did what it says: faults of several kinds, leaders lost and found again.
    assert sum(report.faults.values()) >= 5 and len(report.faults) >= 3, summary
    assert report.logs.elected >= 3 and report.failovers, summary
    assert report.reads > 1000, summary


def test_the_checker_sees_two_leaders_at_once():
    """The observer's overlap rule on hand-made reads: A leads in term 3 before and after B's read
    of is_leader in term 4, so both led at B's read."""
    from chaos import Observer, Read

    class FakeGroup:
        ids = ["a", "b"]

    obs = Observer(FakeGroup(), ChaosConfig(log=lambda line: None))  # type: ignore[arg-type]

    def status(term, leading):
        return {"term": term, "is_leader": leading, "fencing_token": term if leading else None,
                "voted_for": None, "health": "ok", "role": "leader" if leading else "follower", "leader": None}

    obs.check(Read("a", 0, 1.0, 1.1, status(3, True)))
    obs.check(Read("b", 0, 1.2, 1.3, status(4, True)))
    assert obs.violations == []
    obs.check(Read("a", 0, 1.4, 1.5, status(3, True)))
    assert any("two leaders at once" in v for v in obs.violations), obs.violations
    assert any("fencing token went down" in v for v in obs.violations), obs.violations
    # A term read lower than before, across a restart, is a durability violation.
    obs.check(Read("b", 1, 2.0, 2.1, status(2, False)))
    assert any("term went back across a restart" in v for v in obs.violations), obs.violations


def test_a_status_client_that_hangs_up_leaves_no_traceback(tmp_path):
    ports = free_ports(2)
    proc = Proc("a", {"a": f"127.0.0.1:{ports[0]}"}, ports[1], str(tmp_path))
    proc.start()
    try:
        wait_until(proc.status, 30.0, "the status server")
        # While the process is stopped the kernel still accepts connections (the listen backlog):
        # each client sends its request and hangs up before any answer can come.
        proc.signal(signal.SIGSTOP)
        try:
            for _ in range(4):
                s = socket.create_connection(("127.0.0.1", ports[1]), timeout=5)
                s.sendall(b"GET /status HTTP/1.0\r\n\r\n")
                s.close()
        finally:
            proc.signal(signal.SIGCONT)
        wait_until(proc.status, 30.0, "/status answered again")
        time.sleep(0.5)
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(20)
    with open(proc.log_path) as f:
        found = tracebacks(f.read())
    assert all(is_status_client_gone(t) for t in found), found  # nothing worse than this defect
    assert found == [], found[0]


# ----- defects the chaos run found in the node itself, each reproduced in-process ---------------


@contextlib.contextmanager
def busy_cores(count: int = 2) -> Iterator[None]:
    """Keeps `count` cores busy (self-limited to 30 s), as the chaos run's load does: the node's
    runtime threads then start late, which is when these races show."""
    hog = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(count)]
    try:
        yield
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def three(node_port: int = 0) -> Dict[str, str]:
    ports = free_ports(3)
    if node_port:
        ports[0] = node_port
    return {i: f"127.0.0.1:{p}" for i, p in zip(("a", "b", "c"), ports)}


def quiet_node(*args, **kwargs) -> quorate.Node:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quorate.Node(*args, **kwargs)


def test_status_right_after_start_shows_the_durable_term_and_vote(tmp_path):
    members = three()
    a = quiet_node("a", members, data_dir=tmp_path / "a")
    b = quiet_node("b", members, data_dir=tmp_path / "b")
    with a, b:
        a.wait_for_leader(timeout=15)
        durable = a.status()
    assert durable.term >= 1
    wrong = []
    with busy_cores():
        for _ in range(200):
            node = quiet_node("a", three(), data_dir=tmp_path / "a")
            node.start()
            s = node.status()
            node.stop()
            if s.term < durable.term or (s.term == durable.term and s.voted_for != durable.voted_for):
                wrong.append((s.role, s.term, s.voted_for))
    assert wrong == [], f"{len(wrong)} of 200 first reads after start() show less than term {durable.term}: {wrong[:3]}"


def test_a_stopped_node_can_start_again_on_its_address_at_once():
    node = quiet_node("a", three())
    with busy_cores():
        for _ in range(200):
            node.start()
            node.stop()
