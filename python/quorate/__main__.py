"""Command line: ``python -m quorate demo | node`` (also the ``quorate`` console script)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import __version__
from ._core import Event
from .cluster import LocalCluster
from .errors import ConfigError, QuorateError
from .node import Node
from .secret import read_secret
from .sim import Simulation


# ----- demo: a live cluster on loopback -------------------------------------------------------


def demo(members: int = 3) -> int:
    """A live cluster of real nodes on loopback electing, losing and re-electing a leader (~15 s)."""
    print(f"quorate {__version__}: {members} nodes on 127.0.0.1, Raft election over TCP")
    t0 = time.monotonic()

    def say(text: str) -> None:
        print(f"  [{time.monotonic() - t0:6.2f}s] {text}", flush=True)

    def on_elected(e: Event) -> None:
        say(f"{e.node_id} elected leader of term {e.term} (fencing token {e.fencing_token})")

    def on_demoted(e: Event) -> None:
        say(f"{e.node_id} stepped down (term {e.term})")

    with LocalCluster(members, on_elected=on_elected, on_demoted=on_demoted) as cluster:
        print("\n1. Start: the nodes elect a leader")
        leader = cluster.wait_for_leader(10.0)
        say(f"every node follows {leader}; addresses " + ", ".join(n.address for n in cluster.nodes.values()))
        time.sleep(2.0)

        print(f"\n2. Kill the leader {leader} (abrupt: no hand-off)")
        killed_at = time.monotonic()
        cluster.kill(leader)
        new_leader = cluster.wait_for_leader(10.0)
        say(f"failover: {new_leader} leads, {1000 * (time.monotonic() - killed_at):.0f} ms after the kill")
        time.sleep(1.0)
        cluster.restart(leader)
        time.sleep(1.5)
        say(f"{leader} restarted from its data_dir and follows {cluster.nodes[leader].leader}")

        follower = next(i for i in cluster.nodes if i != new_leader)
        print(f"\n3. Cut {follower} off from the others (a minority), then heal")
        term_before = cluster.nodes[new_leader].term
        cluster.partition([follower], [i for i in cluster.nodes if i != follower])
        time.sleep(3.0)
        say(f"{follower} alone: role {cluster.nodes[follower].role}, term {cluster.nodes[follower].term} "
            "(pre-vote: no term inflation)")
        cluster.heal()
        final = cluster.wait_for_leader(10.0)
        time.sleep(1.5)
        terms = {i: n.term for i, n in cluster.nodes.items()}
        say(f"healed: every node follows {final}; terms {terms} (was {term_before} before the cut)")
        ok = cluster.leader() == final
    print(f"\ndone in {time.monotonic() - t0:.1f} s")
    return 0 if ok else 1


def simulated_demo(members: int = 3, seed: int = 1) -> int:
    """The same story in the deterministic simulator, in virtual time."""
    print(f"quorate {__version__}: a simulated group of {members} (deterministic, seed {seed})")
    sim = Simulation(members, seed=seed)
    seen = 0

    def new_events() -> None:
        nonlocal seen
        for e in sim.events[seen:]:
            if e.kind == "elected":
                print(f"  t={e.at:7.3f}s  {e.node_id} elected leader of term {e.term} (fencing token {e.fencing_token})")
            elif e.kind == "demoted":
                print(f"  t={e.at:7.3f}s  {e.node_id} stepped down (term {e.term})")
        seen = len(sim.events)

    print("\n1. Start: the nodes elect a leader")
    leader = sim.run_until_leader(5.0)
    new_events()
    if leader is None:
        print("no leader elected", file=sys.stderr)
        return 1
    sim.run_for(1.0)
    print(f"\n2. Crash the leader {leader}")
    sim.crash(leader)
    crashed_at = sim.now
    new_leader = sim.run_until_leader(5.0)
    new_events()
    if new_leader is None:
        print("no new leader after the crash", file=sys.stderr)
        return 1
    print(f"  failover took {1000 * (sim.now - crashed_at):.0f} ms of simulated time")
    sim.restart(leader)
    sim.run_for(1.0)
    print(f"\n3. Cut the leader {new_leader} off from the majority, then heal")
    sim.partition([new_leader], [m for m in sim.members if m != new_leader])
    sim.run_for(1.0)
    new_events()
    st = sim.status(new_leader)
    print(f"  {new_leader} while cut off: {st['role']}, is_leader={st['is_leader']}")
    sim.heal()
    final = sim.run_until_leader(5.0)
    sim.run_for(0.5)
    new_events()
    if final is None:
        print("no leader after healing", file=sys.stderr)
        return 1
    print(f"  healed: every node follows {final}; terms { {m: sim.status(m)['term'] for m in sim.members} }")
    sim.check()
    stats = sim.stats
    print(f"\nsafety checker: no violations ({stats['messages_sent']} messages, "
          f"{stats['elections_started']} elections, {sim.now:.1f} s simulated)")
    return 0


# ----- node: one member as a process ------------------------------------------------------------


def _host_port(option: str, text: str) -> Tuple[str, int]:
    """Parses HOST:PORT ("127.0.0.1:9401", "[::1]:9401", ":9401" for 127.0.0.1); ConfigError naming
    `option` and the value otherwise."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not (port_text.isascii() and port_text.isdigit()):
        raise ConfigError(f"{option}: expected HOST:PORT, e.g. 127.0.0.1:9401, got {text!r}")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"{option}: the port must be in 0..65535, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"{option}: write an IPv6 address in brackets, e.g. [::1]:9401, got {text!r}")
    return host or "127.0.0.1", port


class _StatusServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind would also look up the host's FQDN, which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _StatusServer6(_StatusServer):
    address_family = socket.AF_INET6


def _status_server(node: Node, host: str, port: int) -> _StatusServer:
    """Binds (but does not yet serve) GET /status and /metrics; OSError if the address is busy."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path == "/status":
                body = json.dumps(node.status().to_dict()).encode()
                kind = "application/json"
            elif self.path == "/metrics":
                body = node.metrics_text().encode()
                kind = "text/plain; version=0.0.4"
            else:
                self.send_error(404, "try /status or /metrics")
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server_class = _StatusServer6 if ":" in host else _StatusServer
    return server_class((host, port), Handler)


def _seed(text: str) -> int:
    """argparse type of --seed: an int in [0, 2**64)."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int in [0, 2**64), got {text!r}") from None
    if not 0 <= seed < 2**64:
        raise argparse.ArgumentTypeError(f"expected an int in [0, 2**64), got {text!r}")
    return seed


def run_node(args: argparse.Namespace) -> int:
    # Everything that can be checked without side effects is checked first.
    members: Dict[str, str] = {}
    for spec in args.member:
        node_id, sep, address = spec.partition("=")
        if not sep:
            raise ConfigError(f"--member: expected ID=HOST:PORT, got {spec!r}")
        if node_id in members:
            raise ConfigError(f"--member: {node_id!r} is given twice")
        members[node_id] = address
    status_address = _host_port("--status-bind", args.status_bind) if args.status_bind else None
    secret: Optional[bytes] = None
    if args.secret_file:
        try:
            secret = read_secret(args.secret_file)
        except ConfigError as e:
            raise ConfigError(f"--secret-file: {e}") from None
    out_lock = threading.Lock()
    stop = threading.Event()
    stdout_closed = False

    def emit(record: Dict[str, Any]) -> None:
        nonlocal stdout_closed
        with out_lock:
            if stdout_closed:
                return
            try:
                sys.stdout.write(json.dumps(record) + "\n")
                sys.stdout.flush()
            except BrokenPipeError:  # the reader went away (`| head`): stop the node, quietly
                stdout_closed = True
                stop.set()
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if args.quiet_warnings else "default")
        node = Node(
            args.id,
            members,
            bind=args.bind,
            data_dir=args.data_dir,
            secret=secret,
            cluster=args.cluster,
            election_timeout=(args.election_timeout[0], args.election_timeout[1]),
            heartbeat_interval=args.heartbeat_interval,
            seed=args.seed,
        )

    # The status server is bound before the node starts, so a busy --status-bind stops the
    # command before the node ever joins the group (and before it reports "started").
    server: Optional[_StatusServer] = None
    if status_address is not None:
        try:
            server = _status_server(node, *status_address)
        except OSError as e:
            raise ConfigError(f"--status-bind: cannot listen on {args.status_bind}: {e.strerror or e}") from None

    sub = node.subscribe()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        node.start()
    except (OSError, QuorateError) as e:  # a busy listen address; an unreadable data dir
        sub.close()
        if server is not None:
            server.server_close()
        message = f"node {args.id!r} did not start: {e}"
        raise (OSError(message) if isinstance(e, OSError) else QuorateError(message)) from None

    serving: Optional[threading.Thread] = None
    pumper: Optional[threading.Thread] = None
    try:
        status_url = None
        if server is not None:
            serving = threading.Thread(target=server.serve_forever, name="quorate-status", daemon=True)
            serving.start()
            host, port = server.server_name, server.server_port  # the port bound, when asked for 0
            status_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        emit({"kind": "started", "node_id": node.node_id, "address": node.address, "status": status_url})

        def pump() -> None:
            for e in sub:
                emit(e.to_dict())

        pumper = threading.Thread(target=pump, name="quorate-events", daemon=True)
        pumper.start()
        while not stop.wait(0.2):
            pass
    finally:
        node.stop(graceful=True, timeout=5.0)
        if pumper is not None:
            pumper.join(2.0)
        if server is not None:
            if serving is not None:
                server.shutdown()  # only once serve_forever runs: otherwise it would wait forever
            server.server_close()
    emit({"kind": "stopped", "node_id": node.node_id, "term": node.term})
    if stdout_closed:
        print("quorate: stdout was closed; the node stopped", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="quorate", description="Leader election with a Rust engine.")
    parser.add_argument("--version", action="version", version=f"quorate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    d = commands.add_parser("demo", help="a live cluster electing, losing and re-electing a leader")
    d.add_argument("--members", type=int, default=3, help="group size (default 3)")
    d.add_argument("--simulated", action="store_true", help="run in the deterministic simulator instead")
    d.add_argument("--seed", type=int, default=1, help="simulation seed (with --simulated)")

    n = commands.add_parser("node", help="run one member as a process; events as JSON lines on stdout")
    n.add_argument("--id", required=True, help="this node's id")
    n.add_argument("--member", action="append", required=True, metavar="ID=HOST:PORT",
                   help="a member (every member, this node included)")
    n.add_argument("--bind", default=None, help="listen address (default: this node's member address)")
    n.add_argument("--data-dir", default=None, help="directory for the durable term and vote")
    n.add_argument("--secret-file", default=None, help="file holding the cluster secret (>= 16 bytes)")
    n.add_argument("--cluster", default="quorate", help="cluster name")
    n.add_argument("--status-bind", default=None, metavar="HOST:PORT", help="serve GET /status and /metrics")
    n.add_argument("--election-timeout", type=float, nargs=2, default=(0.15, 0.30), metavar=("MIN", "MAX"))
    n.add_argument("--heartbeat-interval", type=float, default=0.05)
    n.add_argument("--seed", type=_seed, default=None, help="fixes this node's timeout randomness")
    n.add_argument("--quiet-warnings", action="store_true", help="do not warn about missing data_dir etc.")

    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        if args.command == "demo":
            if args.members < 1:
                parser.error("--members must be at least 1")
            return simulated_demo(args.members, args.seed) if args.simulated else demo(args.members)
        if args.command == "node":
            return run_node(args)
    except (ConfigError, QuorateError, OSError) as e:
        # One line, no traceback: the message names the option (or argument) and the reason.
        print("quorate: " + " ".join(str(e).split("\n")), file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
