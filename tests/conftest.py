from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Tuple

import pytest

import quorate


class CoreNet:
    """Drives several quorate.Core engines by hand: a zero-latency network with a shared clock.

    Every output list is checked for the persist-before-send rule as it is carried out.
    """

    def __init__(self, ids: List[str], **options: Any) -> None:
        self.cores = {i: quorate.Core(i, ids, seed=n, **options) for n, i in enumerate(ids)}
        self.now = 0.0
        self.in_flight: List[Tuple[str, str, Dict[str, Any]]] = []
        self.persisted: Dict[str, Tuple[int, Any]] = {}
        self.events: List[Tuple[str, Dict[str, Any]]] = []
        self.down: set = set()
        for core_id in ids:
            self.carry_out(core_id, self.cores[core_id].tick(self.now))

    def carry_out(self, core_id: str, outputs: List[Dict[str, Any]]) -> None:
        sent = False
        for o in outputs:
            assert o["kind"] in ("persist", "send", "event"), o
            if o["kind"] == "persist":
                assert not sent, f"{core_id}: persist after a send in {outputs}"
                self.persisted[core_id] = (o["term"], o["voted_for"])
            elif o["kind"] == "send":
                sent = True
                self.in_flight.append((core_id, o["to"], o["message"]))
            else:
                self.events.append((core_id, o))

    def deliver_all(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.in_flight:
                return
            sender, to, message = self.in_flight.pop(0)
            if to in self.down or sender in self.down:
                continue
            self.carry_out(to, self.cores[to].step(self.now, sender, message))
        raise AssertionError("messages still in flight after the delivery limit")

    def advance_to(self, until: float, limit: int = 100_000) -> None:
        """Fire timers in deadline order up to `until`, delivering messages after each."""
        for _ in range(limit):
            due = [
                (c.next_deadline(), i)
                for i, c in self.cores.items()
                if i not in self.down and c.next_deadline() is not None and c.next_deadline() <= until
            ]
            if not due:
                self.now = max(self.now, until)
                return
            at, core_id = min(due)
            self.now = max(self.now, at)
            self.carry_out(core_id, self.cores[core_id].tick(self.now))
            self.deliver_all()
        raise AssertionError("timers still due after the tick limit")

    def leaders(self) -> List[str]:
        return [i for i, c in self.cores.items() if i not in self.down and c.state["role"] == "leader"]


@pytest.fixture
def core_net():
    return CoreNet


class LeaderMonitor:
    """Samples every node's is_leader and fencing_token on one thread, about every millisecond.

    Two nodes leading "at once" is recorded only when, after seeing both, the first still reads
    is_leader: then both held it at the instant of the second read. Fencing tokens seen while
    is_leader must never go down. Bounded: it stops after `limit` seconds at the latest.
    """

    def __init__(self, nodes, limit: float = 120.0) -> None:
        self.nodes = nodes
        self.overlaps = []
        self.token_regressions = []
        self.samples = 0
        self._stop = threading.Event()
        self._limit = limit
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        end = time.monotonic() + self._limit
        max_token = 0
        while not self._stop.is_set() and time.monotonic() < end:
            leading = []
            for node_id, node in list(self.nodes.items()):
                token = node.fencing_token
                if token is not None:
                    leading.append((node_id, token))
                    if token < max_token:
                        self.token_regressions.append((node_id, token, max_token))
                    max_token = max(max_token, token)
            if len(leading) > 1 and self.nodes[leading[0][0]].is_leader:
                self.overlaps.append((time.monotonic(), leading))
            self.samples += 1
            time.sleep(0.001)

    def __enter__(self) -> "LeaderMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)
        assert self.samples > 10, "the monitor sampled"
        assert not self.overlaps, f"two leaders at once: {self.overlaps[:3]}"
        assert not self.token_regressions, f"fencing token went down: {self.token_regressions[:3]}"


def wait_until(predicate, timeout: float, what: str, interval: float = 0.01):
    """Polls `predicate` until it returns something truthy; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# LocalClusters come from the project's own pytest plugin (quorate.pytest_plugin): the fixture
# `quorate_cluster` makes them and stops them all at teardown, as it does for our users.
