from __future__ import annotations

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
