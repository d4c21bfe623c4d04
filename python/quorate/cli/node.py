"""``quorate node``: one member of an election group as a process, events as JSON lines on stdout,
and an optional HTTP status port (GET /status, /metrics)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional, Tuple

from ..errors import ConfigError, QuorateError
from ..node import Node
from .options import name_the_option, node_arguments

__all__ = ["run_node"]


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
                body = json.dumps(node.status().to_dict(), allow_nan=False).encode()
                kind = "application/json"
            elif self.path == "/metrics":
                try:
                    from ..metrics import CONTENT_TYPE, exposition
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


