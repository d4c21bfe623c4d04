"""Real processes: `python -m quorate node`, observed through --status-bind. Loopback only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from typing import Dict, List, Optional

import pytest

from quorate.cluster import free_ports

from conftest import wait_until

ELECT = 15.0


class Proc:
    def __init__(self, node_id: str, members: Dict[str, str], status_port: int, data_dir: str, log_dir) -> None:
        self.node_id = node_id
        self.members = members
        self.status_port = status_port
        self.data_dir = data_dir
        self.log_path = log_dir / f"{node_id}.jsonl"
        self.popen: Optional[subprocess.Popen] = None

    def start(self) -> None:
        args = [sys.executable, "-m", "quorate", "node", "--id", self.node_id, "--data-dir", self.data_dir,
                "--status-bind", f"127.0.0.1:{self.status_port}", "--quiet-warnings"]
        for i, a in self.members.items():
            args += ["--member", f"{i}={a}"]
        self.log = open(self.log_path, "a")
        self.popen = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    def status(self) -> Optional[dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.status_port}/status", timeout=1.0) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def events(self) -> List[dict]:
        out = []
        with open(self.log_path) as f:
            for line in f:
                if line.startswith("{"):
                    out.append(json.loads(line))
        return out

    def signal(self, sig: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


@pytest.fixture
def procs(tmp_path):
    made: List[Proc] = []

    def make(count: int) -> Dict[str, Proc]:
        ports = free_ports(2 * count)
        ids = [f"p{i}" for i in range(1, count + 1)]
        members = {i: f"127.0.0.1:{ports[k]}" for k, i in enumerate(ids)}
        group = {i: Proc(i, members, ports[count + k], str(tmp_path / i), tmp_path) for k, i in enumerate(ids)}
        for p in group.values():
            p.start()
            made.append(p)
        return group

    yield make
    for p in made:
        if p.popen is not None and p.popen.poll() is None:
            p.signal(signal.SIGCONT)
        p.kill()


def agreed_leader(group: Dict[str, Proc], alive: List[str]) -> Optional[str]:
    statuses = {i: group[i].status() for i in alive}
    if any(s is None for s in statuses.values()):
        return None
    leaders = {s["leader"] for s in statuses.values()}
    if len(leaders) != 1:
        return None
    (leader,) = leaders
    if leader not in statuses or not statuses[leader]["is_leader"]:
        return None
    return leader


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
    group = procs(3)
    alive = list(group)
    leader = wait_until(lambda: agreed_leader(group, alive), ELECT, "a first leader")
    term = group[leader].status()["term"]
    group[leader].signal(signal.SIGTERM)
    assert group[leader].wait(15) == 0
    assert group[leader].events()[-1]["kind"] == "stopped"
    alive.remove(leader)
    new = wait_until(lambda: agreed_leader(group, alive), ELECT, "the hand-off")
    assert group[new].status()["term"] == term + 1, "one transfer election"


def test_metrics_endpoint_serves_prometheus_text(procs):
    group = procs(1)
    only = next(iter(group.values()))
    wait_until(lambda: agreed_leader(group, list(group)), ELECT, "the single node to lead")
    with urllib.request.urlopen(f"http://127.0.0.1:{only.status_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert f'quorate_is_leader{{node="{only.node_id}"}} 1' in text


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
