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
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

from . import __version__
from ._core import Event
from .cluster import LocalCluster
from .errors import ConfigError, QuorateError
from ._cli_options import NodeHelpFormatter, add_node_options, name_the_option, node_arguments
from .node import Node
from .sim import Simulation


# ----- demo: one script of scenes, run live or simulated ----------------------------------------

#: The demo's scenes, in order; _run_scenes tells them against either kind of group.
SCENES = (
    "Start: the nodes elect a leader",
    "Kill the leader (abrupt: no hand-off) and time the failover",
    "Restart the killed node from its saved term and vote",
    "Cut a minority off, the leader with it, then heal",
)


class _DemoFailed(Exception):
    pass


class _Printer:
    """One line per event or remark, stamped with the group's clock; safe from callback threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.muted = False

    def line(self, at: float, text: str) -> None:
        with self._lock:
            if not self.muted:
                print(f"  [{at:7.3f}s] {text}", flush=True)

    def heading(self, number: int) -> None:
        with self._lock:
            print(f"\n{number}. {SCENES[number - 1]}", flush=True)


def _describe(event: Event) -> Optional[str]:
    if event.kind == "elected":
        return f"{event.node_id} elected leader of term {event.term} (fencing token {event.fencing_token})"
    if event.kind == "demoted":
        return f"{event.node_id} stepped down from term {event.term} (reason: {event.reason})"
    return None


class _LiveGroup:
    """The demo's view of a LocalCluster: real nodes on loopback, in real time."""

    clock = "real time"

    def __init__(self, members: int, printer: _Printer) -> None:
        self.origin = time.monotonic()  # Event.at is on the time.monotonic() clock
        self._printer = printer
        self.cluster = LocalCluster(members, on_elected=self._show, on_demoted=self._show)
        self.members: List[str] = list(self.cluster.nodes)
        self.title = f"{members} nodes on 127.0.0.1, Raft election over TCP"

    def _show(self, event: Event) -> None:
        text = _describe(event)
        if text is not None:
            self._printer.line(event.at - self.origin, text)

    def __enter__(self) -> "_LiveGroup":
        self.cluster.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.stop()

    def now(self) -> float:
        return time.monotonic() - self.origin

    def advance(self, seconds: float) -> None:
        time.sleep(seconds)

    def status(self, node_id: str) -> Dict[str, Any]:
        n = self.cluster.nodes[node_id]
        return {"role": n.role, "term": n.term, "leader": n.leader, "is_leader": n.is_leader}

    def kill(self, node_id: str) -> None:
        self.cluster.kill(node_id)

    def restart(self, node_id: str) -> None:
        self.cluster.restart(node_id)

    def partition(self, *groups: List[str]) -> None:
        self.cluster.partition(*groups)

    def heal(self) -> None:
        self.cluster.heal()

    def history(self) -> List[Event]:
        return self.cluster.history

    def closing_lines(self) -> List[str]:
        return []


class _SimulatedGroup:
    """The demo's view of a Simulation: the same engine in virtual time, deterministic."""

    clock = "virtual time"

    def __init__(self, members: int, seed: int, printer: _Printer) -> None:
        self.origin = 0.0
        self._printer = printer
        self.sim = Simulation(members, seed=seed)
        self.members = list(self.sim.members)
        self.title = f"{members} simulated nodes, Raft in virtual time (deterministic, seed {seed})"
        self._shown = 0

    def __enter__(self) -> "_SimulatedGroup":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def now(self) -> float:
        return self.sim.now

    def advance(self, seconds: float) -> None:
        self.sim.run_for(seconds)
        events = self.sim.events
        for event in events[self._shown:]:
            text = _describe(event)
            if text is not None:
                self._printer.line(event.at, text)
        self._shown = len(events)

    def status(self, node_id: str) -> Dict[str, Any]:
        return self.sim.status(node_id)

    def kill(self, node_id: str) -> None:
        self.sim.crash(node_id)

    def restart(self, node_id: str) -> None:
        self.sim.restart(node_id)

    def partition(self, *groups: List[str]) -> None:
        self.sim.partition(*groups)

    def heal(self) -> None:
        self.sim.heal()

    def history(self) -> List[Event]:
        return self.sim.events

    def closing_lines(self) -> List[str]:
        self.sim.check()  # raises SafetyViolation naming the first violation
        stats = self.sim.stats
        return [f"safety checker: no violations ({stats['messages_sent']} messages, "
                f"{stats['elections_started']} elections, {self.sim.now:.1f} s simulated)"]


_Group = Union[_LiveGroup, _SimulatedGroup]
_WAIT = 10.0  # seconds (of the group's clock) any one election may take before the demo gives up
_POLL = 0.005


def _agreed_leader(group: _Group, among: Sequence[str]) -> Optional[str]:
    """The leader that every running node of `among` follows, itself one of them and holding its lease."""
    running = [s for s in (group.status(i) for i in among) if s["role"] != "stopped"]
    leaders: Set[Optional[str]] = {s["leader"] for s in running}
    if len(leaders) != 1:
        return None
    (leader,) = leaders
    if leader is None or leader not in among or not group.status(leader)["is_leader"]:
        return None
    return leader


def _wait_for_leader(group: _Group, among: Sequence[str]) -> str:
    deadline = group.now() + _WAIT
    while True:
        leader = _agreed_leader(group, among)
        if leader is not None:
            return leader
        if group.now() >= deadline:
            states = ", ".join(f"{i}: {s['role']} t{s['term']} -> {s['leader']}"
                               for i, s in ((i, group.status(i)) for i in group.members))
            raise _DemoFailed(f"no leader agreed by {', '.join(among)} within {_WAIT:.0f} s ({states})")
        group.advance(_POLL)


def _run_scenes(group: _Group, printer: _Printer) -> None:
    """The demo's story, told once for either kind of group."""

    def say(text: str) -> None:
        printer.line(group.now(), text)

    members = group.members
    printer.heading(1)
    leader = _wait_for_leader(group, members)
    say(f"{leader} leads; every node follows it")
    group.advance(1.0)

    printer.heading(2)
    say(f"killing {leader}")
    killed_at = group.now()
    group.kill(leader)
    survivors = [i for i in members if i != leader]
    successor = _wait_for_leader(group, survivors)
    failover = group.now() - killed_at
    say(f"failover: {successor} leads, {1000 * failover:.0f} ms after the kill")
    group.advance(1.0)

    printer.heading(3)
    group.restart(leader)
    group.advance(1.5)
    back = group.status(leader)
    say(f"{leader} is back: {back['role']} in term {back['term']}, following {back['leader']}")

    printer.heading(4)
    minority = [successor] + [i for i in survivors if i != successor][: (len(members) - 1) // 2 - 1]
    majority = [i for i in members if i not in minority]
    say(f"cutting {', '.join(minority)} off from {', '.join(majority)}")
    group.partition(minority, majority)
    replacement = _wait_for_leader(group, majority)
    say(f"the majority elected {replacement} in term {group.status(replacement)['term']}")
    group.advance(1.0)
    cut = group.status(successor)
    say(f"{successor}, cut off: {cut['role']} in term {cut['term']}, is_leader={cut['is_leader']} "
        "(its lease ran out; pre-vote keeps its term from climbing)")
    group.heal()
    _wait_for_leader(group, members)
    group.advance(1.0)
    final = _wait_for_leader(group, members)
    terms = {i: group.status(i)["term"] for i in members}
    say(f"healed: every node follows {final}; terms {terms}")

    history = sorted(group.history(), key=lambda e: e.at)
    tokens = [e.fencing_token for e in history if e.kind == "elected" and e.fencing_token is not None]
    increasing = all(a < b for a, b in zip(tokens, tokens[1:]))
    print(f"\nfailover took {1000 * failover:.0f} ms ({group.clock})")
    print(f"fencing tokens of the {len(tokens)} leaderships, in order: {tokens}"
          + (" (strictly increasing)" if increasing else ""))
    if not increasing:
        raise _DemoFailed(f"fencing tokens did not strictly increase: {tokens}")
    for line in group.closing_lines():
        print(line)


def demo(members: int = 3, simulated: bool = False, seed: int = 1) -> int:
    """The scenes against a live LocalCluster (about 10 s) or a Simulation (well under a second)."""
    started = time.monotonic()
    printer = _Printer()
    group: _Group = _SimulatedGroup(members, seed, printer) if simulated else _LiveGroup(members, printer)
    print(f"quorate {__version__}: {group.title}")
    try:
        with group:
            try:
                _run_scenes(group, printer)
            finally:
                printer.muted = True  # the story ends here: not the demotions of the shutdown
    except _DemoFailed as e:
        print(f"quorate demo: {e}", file=sys.stderr)
        return 1
    wall = time.monotonic() - started
    print(f"\ndone: {group.now():.1f} s of virtual time in {wall:.2f} s" if simulated else f"\ndone in {wall:.1f} s")
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
    """One thread per connection, but at most `max_connections` at once (more are closed at once)
    and none idle for longer than the handler's timeout: a slow-loris client cannot pile up
    threads."""

    daemon_threads = True
    max_connections = 16

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up before its answer is written (every scraper does, now and then;
        # each one does while this process is stopped) is not an error worth a traceback, which
        # would land between the JSON event lines on a shared terminal.
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

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
        timeout = 5.0  # seconds a connection may sit idle before it is closed

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path == "/status":
                body = json.dumps(node.status().to_dict()).encode()
                kind = "application/json"
            elif self.path == "/metrics":
                try:
                    from .metrics import CONTENT_TYPE, exposition
                except ImportError as e:  # the optional prometheus extra is not installed
                    self.send_error(501, str(e))
                    return
                body, kind = exposition(node), CONTENT_TYPE
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


def run_node(args: argparse.Namespace) -> int:
    # Everything that can be checked without side effects is checked first.
    options = node_arguments(args)
    status_address = _host_port("--status-bind", args.status_bind) if args.status_bind else None
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
        try:
            node = Node(**options)
        except ConfigError as e:
            raise name_the_option(e) from None

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
        message = f"node {node.node_id!r} did not start: {e}"
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
        while not stop.wait(1.0):  # the signal handler sets it: the wait ends at once
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


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``demo`` and ``node`` (whose Node options come from _cli_options)."""
    parser = argparse.ArgumentParser(prog="quorate", description="Leader election with a Rust engine.")
    parser.add_argument("--version", action="version", version=f"quorate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    d = commands.add_parser("demo", help="a cluster electing, losing and re-electing a leader, live or simulated")
    d.add_argument("--members", type=int, default=3, help="group size, at least 3 (default 3)")
    d.add_argument("--simulated", action="store_true", help="run in the deterministic simulator instead")
    d.add_argument("--seed", type=int, default=1, help="simulation seed (with --simulated)")
    d.set_defaults(subparser=d)

    n = commands.add_parser(
        "node", help="run one member as a process; events as JSON lines on stdout",
        description="Runs one member of an election group: quorate.Node with the options below (each the "
        "constructor's argument of the same name; the defaults are the constructor's), events as JSON lines "
        "on stdout. SIGTERM or Ctrl-C stops it, a leader handing off first.",
        formatter_class=NodeHelpFormatter,
    )
    add_node_options(n)
    n.add_argument("--status-bind", default=None, metavar="HOST:PORT", help="serve GET /status and /metrics")
    n.add_argument("--quiet-warnings", action="store_true", help="do not warn about a missing data_dir etc.")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        if args.command == "demo":
            if args.members < 3:
                args.subparser.error(
                    f"--members: the demo needs at least 3 nodes (a majority must outlive the kill), got {args.members}"
                )
            return demo(args.members, simulated=args.simulated, seed=args.seed)
        if args.command == "node":
            return run_node(args)
    except (ConfigError, QuorateError, OSError) as e:
        # One line, no traceback: the message names the option (or argument) and the reason.
        print("quorate: " + " ".join(str(e).split("\n")), file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
