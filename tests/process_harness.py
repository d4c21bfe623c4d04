"""Running `python -m quorate node` processes and reading them through --status-bind; shared by
tests/test_processes.py and benches/node_bench.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Dict, List, Optional, Sequence


class Proc:
    def __init__(self, node_id: str, members: Dict[str, str], status_port: int, root: str,
                 extra_args: Sequence[str] = ()) -> None:
        self.node_id = node_id
        self.members = members
        self.status_port = status_port
        self.data_dir = os.path.join(root, node_id)
        self.log_path = os.path.join(root, f"{node_id}.jsonl")
        self.extra_args = list(extra_args)
        self.popen: Optional[subprocess.Popen] = None

    def start(self) -> None:
        args = [sys.executable, "-m", "quorate", "node", "--id", self.node_id, "--data-dir", self.data_dir,
                "--status-bind", f"127.0.0.1:{self.status_port}", "--quiet-warnings", *self.extra_args]
        for i, a in self.members.items():
            args += ["--member", f"{i}={a}"]
        with open(self.log_path, "a") as log:
            self.popen = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def status(self) -> Optional[dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.status_port}/status", timeout=1.0) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def events(self, since: float = 0.0) -> List[dict]:
        with open(self.log_path) as f:
            records = [json.loads(line) for line in f if line.startswith("{")]
        return [e for e in records if e.get("at", since) >= since]

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


def make_group(count: int, root: str, ports: List[int], extra_args: Sequence[str] = (), prefix: str = "p") -> Dict[str, Proc]:
    """`count` processes' worth of Procs (not started) on the given 2 x count free ports."""
    ids = [f"{prefix}{i}" for i in range(1, count + 1)]
    members = {i: f"127.0.0.1:{ports[k]}" for k, i in enumerate(ids)}
    return {i: Proc(i, members, ports[count + k], root, extra_args) for k, i in enumerate(ids)}


def agreed_leader(group: Dict[str, Proc], alive: List[str]) -> Optional[str]:
    """The leader every live process names, once it reports is_leader itself."""
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
