"""Each `python -m quorate node` in its own Linux network namespace, over veth pairs and bridges
that the harness creates and removes; shared by tests/test_netns.py.

The topology, all of it made by `Net` and gone when it closes (even after a failure):

    namespace <prefix>-hub:   br0 (side A) and br1 (side B), nothing else
    namespace <prefix>-n<k>:  eth0 = 10.77.0.<k>/24, its peer v<k> in the hub on br0
                              eth1 (down; same MAC, 10.77.0.<k>/32), its peer w<k> in the hub on br1
                              drop0, a veth whose peer stays down: tc redirects dropped packets there
                              lo, where the node's status server listens (127.0.0.1:9400)

<prefix> is `qnetns-<pid>-<random>`, so parallel runs never collide, and namespaces of a prefix
whose pid is gone (a crashed run) are removed by the next run. Faults are link states:

- isolate a node: `ip link set eth0 down` in its namespace (its sends fail at once), or detach its
  veth from the bridge in the hub (its packets vanish, as with a cable cut further away);
- split: move some nodes' hub-side veths to br1 (two L2 domains);
- bridge node: sides A (br0) and B (br1), and one node with eth0 on br0 and eth1 on br1, with
  host routes to side B's addresses through eth1: it reaches both sides, the sides not each other;
- one-way loss: a tc u32 filter on eth0's egress redirects packets for chosen destinations to
  drop0 (a veth whose peer is down, so the kernel drops them). This host's kernel has neither
  netem nor the gact "drop" action nor iptables/nft binaries; u32 + mirred is what works.

A heal puts everything back in one `ip -batch` (see Net.heal: a heal applied link by link can
cut a working path for a moment and depose a healthy leader). Every MAC and address stays fixed
(eth1 carries eth0's MAC), so no neighbour entry ever goes stale.

The test process reaches each namespace's status server through a forwarder: a thread listening
on 127.0.0.1 in the test's own namespace that opens every upstream socket inside the node's
namespace (setns(2) on that thread only). So benches/chaos.py's observer, which reads
http://127.0.0.1:<port>/status, reads nodes in namespaces unchanged.
"""

from __future__ import annotations

import collections
import ctypes
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benches"))
import chaos  # noqa: E402 - benches/chaos.py: the observer, the schedule and the log checks
from process_harness import Proc  # noqa: E402

PREFIX = "qnetns"
SUBNET = "10.77.0"
NODE_PORT = 7400
STATUS_PORT = 9400
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/var/run/netns"


def run(*args: str, check: bool = True, timeout: float = 10.0, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    """One `ip`/`tc` command, bounded; raises with its stderr when `check` and it fails."""
    p = subprocess.run(list(args), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def unavailable_reason() -> Optional[str]:
    """Why namespaces cannot be used here, or None when they can (root, `ip`, netns, veth, bridge)."""
    if sys.platform != "linux":
        return f"network namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "network namespaces need root (run the suite as root, as CI does)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"{PREFIX}-{os.getpid()}-probe"
    try:
        run("ip", "netns", "add", probe)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return f"`ip netns add` does not work here: {e}"
    try:
        run("ip", "-n", probe, "link", "add", "pv", "type", "veth", "peer", "name", "pw")
        run("ip", "-n", probe, "link", "add", "pb", "type", "bridge")
        run("ip", "-n", probe, "link", "set", "pv", "master", "pb")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return f"veth pairs or bridges do not work in a namespace here: {e}"
    finally:
        run("ip", "netns", "del", probe, check=False)
    return None


def one_way_unavailable_reason() -> Optional[str]:
    """Why one-way drops cannot be made (tc with the u32 classifier and the mirred action), or None."""
    if shutil.which("tc") is None:
        return "the `tc` command is not installed (one-way loss uses a tc u32 filter with mirred)"
    probe = f"{PREFIX}-{os.getpid()}-tcprobe"
    try:
        run("ip", "netns", "add", probe)
        run("ip", "-n", probe, "link", "add", "qa", "type", "veth", "peer", "name", "qb")
        run("ip", "-n", probe, "link", "add", "qd", "type", "veth", "peer", "name", "qe")
        run("tc", "-n", probe, "qdisc", "add", "dev", "qa", "clsact")
        run("tc", "-n", probe, "filter", "add", "dev", "qa", "egress", "protocol", "ip", "u32",
            "match", "ip", "dst", "10.1.2.3/32", "action", "mirred", "egress", "redirect", "dev", "qd")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return f"tc clsact + u32 + mirred does not work here (and no iptables/nft): {e}"
    finally:
        run("ip", "netns", "del", probe, check=False)
    return None


def remove_stale() -> List[str]:
    """Removes namespaces of this harness's prefix whose run (pid) is gone, and any process still
    in them; returns their names."""
    removed = []
    p = run("ip", "netns", "list", check=False)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(rf"^{PREFIX}-(\d+)-", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            # A run killed outright (SIGKILL, OOM) leaves its node processes running in its
            # namespaces: only this harness starts processes there, so they go too.
            for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            run("ip", "netns", "del", name, check=False)
            removed.append(name)
    return removed


# ----- reaching a namespace from this process -------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def setns(path: str) -> None:
    """Moves the calling thread (only it) into the network namespace at `path`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class Forwarder:
    """127.0.0.1:<port> here -> 127.0.0.1:<target_port> inside namespace `ns`, one connection at a
    time (the observer sends one request at a time to each node)."""

    def __init__(self, ns: str, target_port: int) -> None:
        self.ns = ns
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=f"fwd-{ns}", daemon=True)
        self._thread.start()
        self._ready.wait(5)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            setns(os.path.join(NETNS_DIR, self.ns))  # this thread's sockets live in the node's namespace
        except BaseException as e:  # noqa: BLE001 - reported to the constructor
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self._relay(client)
            except OSError:
                pass
            finally:
                client.close()

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=1.0)
        try:
            deadline = time.monotonic() + 2.0
            socks = [client, upstream]
            while socks and time.monotonic() < deadline:
                readable, _, _ = select.select(socks, [], [], 0.2)
                for s in readable:
                    data = s.recv(65536)
                    other = upstream if s is client else client
                    if not data:
                        socks.remove(s)
                        if s is upstream:
                            return  # the answer is complete
                        try:
                            other.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        continue
                    other.sendall(data)
        finally:
            upstream.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.listener.close()


# ----- the network ----------------------------------------------------------------------------


class Net:
    """The namespaces, veths and bridges of one group of `count` nodes, and the faults on them.

    Use as a context manager: everything it made is deleted on exit, whatever happened."""

    def __init__(self, count: int, one_way: bool = True) -> None:
        self.prefix = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}"
        self.hub = f"{self.prefix}-hub"
        self.count = count
        self.ids = [f"n{k}" for k in range(1, count + 1)]
        self.ns = {i: f"{self.prefix}-{i}" for i in self.ids}
        self.addr = {i: f"{SUBNET}.{k}" for k, i in enumerate(self.ids, start=1)}
        self.index = {i: k for k, i in enumerate(self.ids, start=1)}
        self.one_way = one_way
        self.made: List[str] = []
        self.forwarders: Dict[str, Forwarder] = {}
        self.ops = 0  # link operations performed (ip/tc commands that change the network)
        self.bridged: Optional[str] = None  # the node using eth1, if any

    # -- life --

    def __enter__(self) -> "Net":
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        remove_stale()
        run("ip", "netns", "add", self.hub)
        self.made.append(self.hub)
        for br in ("br0", "br1"):
            run("ip", "-n", self.hub, "link", "add", br, "type", "bridge")
            run("ip", "-n", self.hub, "link", "set", br, "up")
        for i in self.ids:
            ns, k, a = self.ns[i], self.index[i], self.addr[i]
            run("ip", "netns", "add", ns)
            self.made.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", self.hub, "link", "add", f"v{k}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            run("ip", "-n", self.hub, "link", "add", f"w{k}", "type", "veth", "peer", "name", "eth1", "netns", ns)
            for hub_end, br in ((f"v{k}", "br0"), (f"w{k}", "br1")):
                run("ip", "-n", self.hub, "link", "set", hub_end, "master", br)
                run("ip", "-n", self.hub, "link", "set", hub_end, "up")
            mac = open_text(ns, "eth0")
            run("ip", "-n", ns, "link", "set", "eth1", "address", mac)
            run("ip", "-n", ns, "addr", "add", f"{a}/24", "dev", "eth0")
            run("ip", "-n", ns, "addr", "add", f"{a}/32", "dev", "eth1")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            if self.one_way:
                run("ip", "-n", ns, "link", "add", "drop0", "type", "veth", "peer", "name", "drop1")
                run("ip", "-n", ns, "link", "set", "drop0", "up")
                run("tc", "-n", ns, "qdisc", "add", "dev", "eth0", "clsact")
            self.forwarders[i] = Forwarder(ns, STATUS_PORT)

    def close(self) -> None:
        for f in self.forwarders.values():
            f.close()
        self.forwarders.clear()
        for name in reversed(self.made):
            run("ip", "netns", "del", name, check=False)
        self.made.clear()

    def alive(self) -> List[str]:
        """This Net's namespaces that still exist (empty after close)."""
        listed = run("ip", "netns", "list", check=False).stdout
        return [n for n in [self.hub, *self.ns.values()] if re.search(rf"^{re.escape(n)}( |$)", listed, re.M)]

    def members(self) -> Dict[str, str]:
        return {i: f"{self.addr[i]}:{NODE_PORT}" for i in self.ids}

    # -- faults --

    def _op(self, *args: str) -> None:
        run(*args)
        self.ops += 1

    def link_down(self, i: str) -> None:
        self._op("ip", "-n", self.ns[i], "link", "set", "eth0", "down")

    def link_up(self, i: str) -> None:
        self._op("ip", "-n", self.ns[i], "link", "set", "eth0", "up")

    def detach(self, i: str) -> None:
        self._op("ip", "-n", self.hub, "link", "set", f"v{self.index[i]}", "nomaster")

    def attach(self, i: str, br: str = "br0") -> None:
        self._op("ip", "-n", self.hub, "link", "set", f"v{self.index[i]}", "master", br)

    def hub_batch(self, lines: Sequence[str]) -> None:
        """Several link changes in the hub by one `ip -batch`: they land within a millisecond or so,
        not one process start apart."""
        if lines:
            run("ip", "-n", self.hub, "-batch", "-", stdin="\n".join(lines) + "\n")
            self.ops += len(lines)

    def split(self, side_b: Iterable[str]) -> None:
        """The nodes of `side_b` on br1, the others stay on br0: neither side reaches the other."""
        self.hub_batch([f"link set v{self.index[i]} master br1" for i in side_b])

    def bridge(self, side_b: Sequence[str], via: str) -> None:
        """`side_b` on br1, the rest on br0, and `via` on both: it reaches everyone, the sides do
        not reach each other."""
        self.split(side_b)
        ns = self.ns[via]
        self._op("ip", "-n", ns, "link", "set", "eth1", "up")
        for i in side_b:
            self._op("ip", "-n", ns, "route", "replace", f"{self.addr[i]}/32", "dev", "eth1", "src", self.addr[via])
        self.bridged = via

    def drop(self, src: str, dsts: Iterable[str]) -> None:
        """One-way loss: every IPv4 packet from `src` to each of `dsts` is dropped (the reverse
        direction is untouched)."""
        for d in dsts:
            self._op("tc", "-n", self.ns[src], "filter", "add", "dev", "eth0", "egress", "protocol", "ip", "u32",
                     "match", "ip", "dst", f"{self.addr[d]}/32", "action", "mirred", "egress", "redirect", "dev", "drop0")

    def heal(self) -> None:
        """Every link up, every node on br0, no second veth in use, no drop filter.

        Ordered so that no path that works during the fault breaks on the way back (a heal that
        cut the bridge node off for a moment would depose a healthy leader): every hub-side veth
        moves to br0 in one batch, the bridge node's second veth with them (it has eth0's MAC and
        address, so it is a second port to the same host there), then its eth1 goes down and its
        veth back to br1. Every MAC and address stays as it was, so no neighbour entry goes stale."""
        for i in self.ids:
            if self.one_way:
                run("tc", "-n", self.ns[i], "filter", "del", "dev", "eth0", "egress", check=False)
            run("ip", "-n", self.ns[i], "link", "set", "eth0", "up")
        lines = [f"link set v{self.index[i]} master br0" for i in self.ids]
        if self.bridged is not None:
            lines.append(f"link set w{self.index[self.bridged]} master br0")
        self.hub_batch(lines)
        if self.bridged is not None:
            run("ip", "-n", self.ns[self.bridged], "link", "set", "eth1", "down")  # its host routes go with it
            run("ip", "-n", self.hub, "link", "set", f"w{self.index[self.bridged]}", "master", "br1")
            self.bridged = None
        self.ops += 1


def open_text(ns: str, dev: str) -> str:
    """The MAC address of `dev` in namespace `ns`."""
    out = run("ip", "-n", ns, "-o", "link", "show", dev).stdout
    m = re.search(r"link/ether ([0-9a-f:]{17})", out)
    if not m:
        raise RuntimeError(f"no MAC address for {dev} in {ns}: {out}")
    return m.group(1)


# ----- processes in namespaces, reusing benches/chaos.py's Group --------------------------------


class NetnsProc(Proc):
    """process_harness.Proc, started with `ip netns exec` (which execs: the Popen's pid is the
    node's own, so signals reach it directly); status_port is the forwarder's."""

    def __init__(self, net: Net, node_id: str, root: str, extra_args: Sequence[str]) -> None:
        super().__init__(node_id, net.members(), net.forwarders[node_id].port, root, extra_args)
        self.net = net

    def start(self) -> None:
        args = ["ip", "netns", "exec", self.net.ns[self.node_id], sys.executable, "-m", "quorate", "node",
                "--id", self.node_id, "--data-dir", self.data_dir, "--status-bind", f"127.0.0.1:{STATUS_PORT}",
                "--quiet-warnings", *self.extra_args]
        for i, a in self.members.items():
            args += ["--member", f"{i}={a}"]
        with open(self.log_path, "a") as log:
            self.popen = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


class NetnsGroup(chaos.Group):
    """chaos.Group over NetnsProcs; also remembers when each kill -9, SIGSTOP and SIGCONT happened
    (host monotonic clock), for the lease-interval check."""

    def __init__(self, cfg: chaos.ChaosConfig, root: str, net: Net) -> None:  # noqa: D107 - replaces Group's
        self.cfg = cfg
        secret_path = os.path.join(root, "secret")
        # 32 random bytes, hex-encoded: the CLI reads the file as text lines (one trailing newline
        # is not part of the secret), so raw bytes that happen to hold a newline would not do.
        with open(secret_path, "w") as f:
            f.write(secrets.token_bytes(32).hex() + "\n")
        extra = ["--secret-file", secret_path, "--cluster", f"netns-{cfg.seed}"]
        if cfg.election_timeout is not None:
            extra += ["--election-timeout", str(cfg.election_timeout[0]), str(cfg.election_timeout[1])]
        self.procs = {i: NetnsProc(net, i, root, extra) for i in net.ids}
        self.ids = list(self.procs)
        self.lock = threading.Lock()
        self.state = {i: "down" for i in self.ids}
        self.life = {i: -1 for i in self.ids}
        self.ends = {}
        self.started_at = {}
        self.unexpected_exits = []
        self.signals = collections.Counter()
        self.kill_times: Dict[Tuple[str, int], float] = {}
        self.pauses: Dict[str, List[Tuple[float, float]]] = {i: [] for i in self.ids}  # (SIGSTOP, SIGCONT)

    def kill9(self, i: str) -> None:
        life = self.life[i]
        super().kill9(i)
        self.kill_times[(i, life)] = time.monotonic()

    def stop(self, i: str) -> None:
        super().stop(i)
        self.pauses[i].append((time.monotonic(), float("inf")))  # after the signal: frozen by then

    def cont(self, i: str) -> None:
        sent = time.monotonic()  # before the signal: the node's next event is stamped after it
        super().cont(i)
        s, _ = self.pauses[i][-1]
        self.pauses[i][-1] = (s, sent)

    def shutdown(self) -> None:
        for p in self.procs.values():
            if p.popen is not None and p.popen.poll() is None:
                try:
                    os.kill(p.popen.pid, signal.SIGCONT)
                except OSError:
                    pass
        super().shutdown()


def lease_overlaps(group: NetnsGroup, lease: float, slack: float, heartbeat: float = 0.05) -> Tuple[List[str], float, int]:
    """Leaderships from every node's event log as intervals on the host's monotonic clock, checked
    pairwise for overlap: returns (violations, the largest overlap seen in seconds, intervals).

    A leadership runs from its `elected` event's `at` to its `demoted` event's `at`; one ended by
    kill -9 runs to the kill; one still open at the end of the log (a stop) to the log's last event.
    A leader frozen by SIGSTOP cannot act, and its lease, counted from a heartbeat round sent
    before the freeze, lapses at most `lease` later: when its `demoted` comes only after the
    SIGCONT, the leadership ends at min(demoted, SIGSTOP + lease). That end is an upper bound: the
    lease runs from the last acknowledged heartbeat round, up to `heartbeat` seconds before the
    freeze, and a follower votes again only `election_timeout[0]` after its last ack, so another
    node may be elected up to that much before it without any overlap; such an end gets
    `heartbeat` more slack. Overlaps up to `slack` seconds (the time an event takes from the
    engine's clock reading to its timestamp, on a busy host) are reported in the maximum but are
    not violations. The observer's check of /status reads (two leaders at one instant) has no
    slack and no such uncertainty."""
    intervals: List[Tuple[float, float, str, int, bool]] = []
    for node, proc in group.procs.items():
        if not os.path.exists(proc.log_path):
            continue
        for life, records in enumerate(chaos.read_lives(proc.log_path)):
            events = [r for r in records if "at" in r]
            last_at = events[-1]["at"] if events else 0.0
            start: Optional[Tuple[float, int]] = None
            for e in events:
                if e["kind"] == "elected":
                    start = (e["at"], e["term"])
                elif e["kind"] == "demoted" and start is not None:
                    end, capped = cap(group, node, start[0], e["at"], lease)
                    intervals.append((start[0], end, node, start[1], capped))
                    start = None
            if start is not None:
                end, capped = cap(group, node, start[0], group.kill_times.get((node, life), last_at), lease)
                intervals.append((start[0], end, node, start[1], capped))
    intervals.sort()
    bad, worst = [], 0.0
    for k, (s1, e1, n1, t1, c1) in enumerate(intervals):
        for s2, e2, n2, t2, c2 in intervals[k + 1:]:
            if s2 >= e1:
                break
            if n1 == n2:
                continue
            overlap = min(e1, e2) - s2
            worst = max(worst, overlap)
            if overlap > slack + (heartbeat if (c1 if e1 <= e2 else c2) else 0.0):
                bad.append(f"leaderships overlap by {overlap * 1000:.1f} ms: {n1} term {t1} [{s1:.3f}, {e1:.3f}] "
                           f"and {n2} term {t2} [{s2:.3f}, {e2:.3f}] (SIGSTOP/SIGCONT of {n1}: {fmt(group.pauses.get(n1))}, "
                           f"of {n2}: {fmt(group.pauses.get(n2))})")
    return bad, worst, len(intervals)


def fmt(pauses: Optional[List[Tuple[float, float]]]) -> str:
    return ", ".join(f"[{a:.3f}, {b:.3f}]" for a, b in pauses or []) or "none"


def cap(group: NetnsGroup, node: str, start: float, end: float, lease: float) -> Tuple[float, bool]:
    """(the end of a leadership, whether it was capped at a SIGSTOP + lease)."""
    for stopped, resumed in group.pauses.get(node, []):
        if start <= stopped < end and resumed <= end and stopped + lease < end:
            return stopped + lease, True
    return end, False


# ----- resource samples (the soak) --------------------------------------------------------------


def sample_process(pid: int) -> Optional[Tuple[int, int]]:
    """(VmRSS in bytes, open file descriptors) of a live process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds
    except (OSError, StopIteration, ValueError):
        return None


# ----- the schedule: chaos.Chaos with network faults --------------------------------------------

# Network faults, and combinations with signals, with their weights in the random schedule.
# Signal-only kinds come from benches/chaos.py (chaos.FAULT_KINDS) and run unchanged.
NET_KINDS: Dict[str, float] = {
    "isolate_leader_down": 3,       # eth0 down in the leader's namespace; up later
    "isolate_leader_detach": 2,     # the leader's veth off the bridge (silent loss); back later
    "split_leader_minority": 3,     # leader + 1 on br1, 3 on br0: the 3 elect
    "split_leader_majority": 2,     # 2 followers on br1: the leader's side keeps a leader
    "bridge_node": 2,               # sides {leader, f} and {f, f}, one follower on both bridges
    "bridge_leader_frozen": 1,      # the bridge shape, then SIGSTOP the leader: the bridge side elects
    "oneway_leader_mute": 2,        # the leader's packets to every follower dropped
    "oneway_leader_deaf": 2,        # every follower's packets to the leader dropped
    "oneway_follower_mute": 1,      # one follower's packets to everyone dropped (a majority remains)
    "isolate_and_stop": 1,          # leader's link down and a follower SIGSTOPped: 3 of 5 elect
    "split_and_kill9": 1,           # leader + 1 cut off, and a majority-side follower kill -9'd: 2 left
                                    # on the majority side, no quorum until heal + restart
    "oneway_and_isolate": 1,        # leader mute and a follower's link down
}

SIGNAL_KINDS: Dict[str, float] = {"kill9_leader": 2, "kill9_restart_at_once": 1, "stop_leader": 2,
                                  "stop_flap": 1, "kill9_follower": 1}


class NetnsChaos(chaos.Chaos):
    """benches/chaos.py's schedule (observer, settle, failover, restart, the final log checks) on
    a group in namespaces, with the network fault kinds above. `leader_kept` counts the splits in
    which the leader's side kept its leader; `elections_during` the elections seen while a
    bridge shape held."""

    def __init__(self, cfg: chaos.ChaosConfig, root: str, command: str, net: Net) -> None:  # noqa: D107
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.net = net
        self.group = NetnsGroup(cfg, root, net)
        self.observer = chaos.Observer(self.group, cfg)
        self.report = chaos.Report(cfg, command)
        self.leader = None
        self.leader_kept = 0
        self.leader_moved = 0
        self.bridge_terms: List[int] = []  # terms that passed while a bridge shape held
        self.recovery_by_kind: Dict[str, List[float]] = {}  # heal -> one leader agreed by all, seconds

    def _terms(self) -> int:
        with self.observer._cond:
            return max((r.status["term"] for r in self.observer.latest.values()), default=0)

    def heal(self, what: str) -> None:
        """Heals the network, then waits for one leader agreed by every node (Chaos.settle: the
        time from the heal to that agreement goes to report.recoveries)."""
        self.net.heal()
        before = len(self.report.recoveries)
        self.settle(what)
        if len(self.report.recoveries) > before:
            self.recovery_by_kind.setdefault(what, []).append(round(self.report.recoveries[-1], 3))

    def inject(self, kind: str) -> None:
        if kind not in NET_KINDS:
            super().inject(kind)
            return
        ids = self.group.ids
        leader = self.leader
        assert leader is not None
        followers = [i for i in ids if i != leader]
        self.rng.shuffle(followers)
        self.report.faults[kind] += 1
        self.observer.fault_in_force = True
        since = time.monotonic()
        net = self.net
        paused: List[str] = []
        killed: List[str] = []
        if kind == "isolate_leader_down":
            net.link_down(leader)
            self.failover(leader, followers, since)
        elif kind == "isolate_leader_detach":
            net.detach(leader)
            self.failover(leader, followers, since)
        elif kind == "split_leader_minority":
            net.split([leader, followers[0]])
            self.failover(leader, followers[1:], since)
        elif kind == "split_leader_majority":
            net.split(followers[:2])
            self.majority_keeps(leader, [leader] + followers[2:], since)
        elif kind == "bridge_node":
            t0 = self._terms()
            net.bridge(followers[1:3], via=followers[0])
            self.majority_keeps(leader, [leader, followers[0], followers[3]], since)
            self.hold()
            self.bridge_terms.append(self._terms() - t0)
        elif kind == "bridge_leader_frozen":
            t0 = self._terms()
            net.bridge(followers[1:3], via=followers[0])
            self.pause([leader])
            paused.append(leader)
            # Only the bridge node and side B (3 of 5) can still form a majority.
            self.failover(leader, followers[:3], since)
            self.bridge_terms.append(self._terms() - t0)
        elif kind == "oneway_leader_mute":
            net.drop(leader, followers)
            self.failover(leader, followers, since)
        elif kind == "oneway_leader_deaf":
            for f in followers:
                net.drop(f, [leader])
            self.failover(leader, followers, since)
        elif kind == "oneway_follower_mute":
            net.drop(followers[0], [i for i in ids if i != followers[0]])
        elif kind == "isolate_and_stop":
            net.link_down(leader)
            self.pause([followers[0]])
            paused.append(followers[0])
            self.failover(leader, followers[1:], since)
        elif kind == "split_and_kill9":
            net.split([leader, followers[0]])
            self.kill([followers[1]])
            killed.append(followers[1])
        elif kind == "oneway_and_isolate":
            net.drop(leader, followers)
            net.link_down(followers[0])
            self.failover(leader, followers[1:], since)
        else:
            raise ValueError(f"unknown fault kind {kind!r}")
        self.hold()
        self.resume(paused)
        if killed:
            self.restart(killed)
        self.heal(kind)
        self.observer.fault_in_force = False

    def majority_keeps(self, leader: str, side: Sequence[str], since: float) -> None:
        """After a cut that leaves `leader` with a majority: a leader agreed by `side`; counts
        whether it is still the same node."""
        found = self.observer.wait_agreed(side, since, self.cfg.recover_bound)
        if found is None:
            self.violation(f"no leader agreed by the majority side {', '.join(side)} within {self.cfg.recover_bound} s "
                           f"({self.observer.describe()})")
            return
        if found[0] == leader:
            self.leader_kept += 1
        else:
            self.leader_moved += 1
