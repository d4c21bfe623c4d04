"""Availability under attack (issue 21): what an outsider without the secret can do to a cluster on
loopback must end when it stops, and must not keep the members from electing while it goes on."""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import Dict, List

import pytest

import quorate
from quorate.cluster import free_ports

# Generous: on an idle machine the restarted cluster elects in ~0.2 s; the attack in the test
# used to keep it leaderless for as long as the attack lasted.
ELECT = 15.0
SILENT_PER_TARGET = 40


class SilentFlood:
    """Holds as many silent connections as it can to each target port from each source address,
    reopening every one the target closes: the handshake-slot exhaustion attack."""

    def __init__(self, ports: List[int], sources: List[str]) -> None:
        self.ports = ports
        self.sources = sources
        self.stop = threading.Event()
        self.opened = 0
        self.threads = [threading.Thread(target=self._run, args=(s,), daemon=True) for s in sources]

    def __enter__(self) -> "SilentFlood":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def _run(self, source: str) -> None:
        held: Dict[socket.socket, int] = {}
        try:
            while not self.stop.is_set():
                for port in self.ports:
                    while sum(1 for p in held.values() if p == port) < SILENT_PER_TARGET and not self.stop.is_set():
                        s = socket.socket()
                        s.settimeout(0.5)
                        try:
                            s.bind((source, 0))
                            s.connect(("127.0.0.1", port))
                        except OSError:
                            s.close()
                            break
                        held[s] = port
                        self.opened += 1
                readable, _, _ = select.select(list(held), [], [], 0.002)
                for s in readable:
                    try:
                        closed = s.recv(4096) == b""
                    except OSError:
                        closed = True
                    if closed:
                        del held[s]
                        s.close()
        finally:
            for s in held:
                s.close()


def _two_outsider_sources() -> List[str]:
    """127.0.0.2 and 127.0.0.3 when this machine's loopback takes them (Linux routes 127/8)."""
    sources = []
    for source in ("127.0.0.2", "127.0.0.3"):
        s = socket.socket()
        try:
            s.bind((source, 0))
            sources.append(source)
        except OSError:
            pass
        finally:
            s.close()
    return sources


def test_silent_connections_from_two_outsider_addresses_do_not_keep_a_restarted_member_from_reconnecting(tmp_path):
    sources = _two_outsider_sources()
    if len(sources) < 2:
        pytest.skip("this machine's loopback does not route 127.0.0.2 and 127.0.0.3")
    ids = ["a", "b", "c"]
    ports = free_ports(len(ids))
    members = {i: f"127.0.0.1:{p}" for i, p in zip(ids, ports)}
    nodes = [quorate.Node(i, members, data_dir=tmp_path / i) for i in ids]
    try:
        for n in nodes:
            n.start()
        nodes[0].wait_for_leader(timeout=ELECT)
        with SilentFlood(ports, sources) as flood:
            # The running nodes' links survive; let the flood take every handshake slot...
            deadline = time.monotonic() + 10.0
            while flood.opened < 2 * len(ports) * SILENT_PER_TARGET and time.monotonic() < deadline:
                time.sleep(0.05)
            assert flood.opened >= len(ports) * SILENT_PER_TARGET, "the flood really holds connections"
            # ...then stop two nodes and restart one: the restarted one and the survivor are a
            # majority only if the restarted one can dial into the survivor's flooded table.
            for n in nodes[:2]:
                n.stop()
            nodes[0].start()
            started = time.monotonic()
            leader = nodes[0].wait_for_leader(timeout=ELECT)
            elected_in = time.monotonic() - started
            assert not flood.stop.is_set(), "the flood went on throughout"
        assert leader in ids and elected_in < ELECT
    finally:
        for n in nodes:
            n.stop()
