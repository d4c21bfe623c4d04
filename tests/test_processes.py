"""Real processes: `python -m quorate node`, observed through --status-bind. Loopback only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from typing import Dict, List, Sequence

import pytest

from conftest import wait_until
from process_harness import Proc, agreed_leader, make_group
from quorate.cluster import free_ports

ELECT = 15.0


@pytest.fixture
def procs(tmp_path):
    made: List[Proc] = []

    def make(count: int, extra_args: Sequence[str] = ()) -> Dict[str, Proc]:
        group = make_group(count, str(tmp_path), free_ports(2 * count), extra_args)
        for p in group.values():
            p.start()
            made.append(p)
        return group

    yield make
    for p in made:
        if p.popen is not None and p.popen.poll() is None:
            p.signal(signal.SIGCONT)
        p.kill()


def elected_tokens_increase(group: Dict[str, Proc]) -> None:
    elected = sorted((e["at"], e["fencing_token"], e["node_id"]) for p in group.values() for e in p.events() if e["kind"] == "elected")
    tokens = [t for _, t, _ in elected]
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens), f"fencing tokens by time: {elected}"


@pytest.mark.parametrize("count", [3, 5])
def test_kill_9_the_leader_and_a_new_leader_with_a_higher_term_follows(procs, count):
    group = procs(count)
    alive = list(group)
    leader = wait_until(lambda: agreed_leader(group, alive), ELECT, "a first leader")
    before = group[leader].status()
    group[leader].kill()
    alive.remove(leader)
    new = wait_until(lambda: agreed_leader(group, alive), ELECT, "a leader after kill -9")
    assert new != leader
    assert group[new].status()["term"] > before["term"]

    # The killed node comes back from its data_dir with its term and vote.
    group[leader].start()
    alive.append(leader)
    restarted = wait_until(lambda: group[leader].status(), ELECT, "the restarted node's status")
    assert restarted["term"] >= before["term"]
    if restarted["term"] == before["term"]:
        assert restarted["voted_for"] == before["voted_for"], "no second vote in a term"
    wait_until(lambda: agreed_leader(group, alive), ELECT, "everyone to agree again")
    elected_tokens_increase(group)


def test_sigstop_the_leader_then_sigcont_it_reads_not_leader_at_once_and_steps_down(procs):
    group = procs(3)
    alive = list(group)
    leader = wait_until(lambda: agreed_leader(group, alive), ELECT, "a first leader")
    group[leader].signal(signal.SIGSTOP)
    others = [i for i in alive if i != leader]
    new = wait_until(lambda: agreed_leader(group, others), ELECT, "a leader while the old one is stopped")
    group[leader].signal(signal.SIGCONT)
    first = wait_until(lambda: group[leader].status(), ELECT, "the resumed node to answer")
    assert first["is_leader"] is False, "its lease ran out while it was stopped"
    wait_until(lambda: agreed_leader(group, alive) == new, ELECT, "the old leader to follow the new one")
    elected_tokens_increase(group)


def test_sigterm_stops_a_leader_gracefully_with_a_hand_off(procs):
    # Election timeouts of 3-6 s: within the first 2.5 s after the leader's last heartbeat no
    # timer can fire, so a leader there can only come from the hand-off.
    group = procs(3, ["--election-timeout", "3", "6", "--heartbeat-interval", "0.2"])
    alive = list(group)
    leader = wait_until(lambda: agreed_leader(group, alive), 60.0, "a first leader")
    term = group[leader].status()["term"]
    group[leader].signal(signal.SIGTERM)
    assert group[leader].wait(15) == 0
    stopped_at = time.monotonic()
    events = group[leader].events()
    assert events[-1]["kind"] == "stopped"
    assert [e["reason"] for e in events if e["kind"] == "demoted"][-1] == "stopped"
    alive.remove(leader)
    new = wait_until(lambda: agreed_leader(group, alive), 2.5, "the hand-off, before any election timer")
    assert time.monotonic() - stopped_at < 2.5
    assert group[new].status()["term"] == term + 1, "one transfer election"


def test_metrics_endpoint_serves_prometheus_text(procs):
    group = procs(1)
    only = next(iter(group.values()))
    wait_until(lambda: agreed_leader(group, list(group)), ELECT, "the single node to lead")
    with urllib.request.urlopen(f"http://127.0.0.1:{only.status_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert f'quorate_is_leader{{node="{only.node_id}"}} 1.0' in text


def _run_script(code: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)


def test_a_process_that_exits_with_nodes_running_finishes_promptly():
    t0 = time.monotonic()
    done = _run_script(
        """
        import warnings; warnings.simplefilter("ignore")
        import quorate
        c = quorate.LocalCluster(3).start()
        print(c.wait_for_leader(15))
        # no stop(): the interpreter exits with three nodes running
        """,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("n")
    assert time.monotonic() - t0 < 30


def test_ctrl_c_interrupts_a_blocking_wait():
    port_a, port_b = free_ports(2)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import warnings; warnings.simplefilter("ignore")
            # Started from a background job (nohup bash .ci/run &), SIGINT arrives ignored:
            # a user's terminal gives the process Python's own handler, so give it that.
            import signal; signal.signal(signal.SIGINT, signal.default_int_handler)
            import quorate
            n = quorate.Node("a", {{"a": "127.0.0.1:{port_a}", "b": "127.0.0.1:{port_b}", "c": "127.0.0.1:1"}}).start()
            print("waiting", flush=True)
            n.wait_for_leader()   # no peer ever answers: only Ctrl-C ends this
        """)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in err


def test_the_status_server_survives_slow_loris_clients(tmp_path):
    import socket

    ports = free_ports(2)
    proc = Proc("a", {"a": f"127.0.0.1:{ports[0]}"}, ports[1], str(tmp_path))
    proc.start()
    try:
        wait_until(proc.status, 30.0, "the status server")
        threads_before = len(os.listdir(f"/proc/{proc.popen.pid}/task"))
        loris = []
        for _ in range(60):  # each sends half a request line and then nothing
            s = socket.create_connection(("127.0.0.1", ports[1]), timeout=5)
            s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")
            loris.append(s)
        time.sleep(0.5)
        threads = len(os.listdir(f"/proc/{proc.popen.pid}/task"))
        assert threads <= threads_before + 16 + 2, (threads_before, threads)  # capped, not one per client
        # Idle connections are closed after the handler's timeout; then the server answers again.
        wait_until(proc.status, 30.0, "/status answered after the idle connections timed out")
        closed = 0
        for s in loris:
            s.settimeout(10)
            try:
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
            s.close()
        assert closed == len(loris)
    finally:
        proc.popen.send_signal(signal.SIGTERM)
        proc.popen.wait(20)
