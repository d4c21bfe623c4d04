"""A typed usage example: `mypy --strict` must accept it against the hand-written stubs.

It is type-checked by tests/test_typing.py, and also runs (the same test executes it).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import quorate
from quorate.sim import failover_trials


def leader_after_crash(seed: int) -> Optional[str]:
    sim = quorate.Simulation(5, seed=seed, latency=(0.001, 0.003))
    first: Optional[str] = sim.run_until_leader(5.0)
    assert first is not None
    sim.kill(first)
    return sim.run_until_leader(5.0)


def event_kinds(sim: quorate.Simulation) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for e in sim.events:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return counts


def on_the_wire(sim: quorate.Simulation) -> List[str]:
    sim.run_for(0.15)  # past the silence every raft node promises at boot
    sim.campaign(sim.members[0])
    flying: List[quorate.InFlight] = sim.in_flight()
    lines = []
    for m in flying:
        term: Optional[int] = m.term
        share: float = m.progress(sim.now)
        lines.append(f"{m.sender}->{m.receiver} {m.kind} term={term} {share:.0%} doomed={m.doomed}")
    return lines


def drive_core() -> List[str]:
    core = quorate.Core("a", ["a"], seed=1)
    core.tick(0.0)
    deadline: Optional[float] = core.next_deadline()
    assert deadline is not None
    return [str(o["kind"]) for o in core.tick(deadline)]


def networked() -> str:
    with quorate.LocalCluster(1) as cluster:
        leader: str = cluster.wait_for_leader(10.0)
        node: quorate.Node = cluster.nodes[leader]
        status: quorate.Status = node.status()
        token: Optional[int] = node.fencing_token
        assert status.is_leader and token == status.term
        peers: Dict[str, quorate.PeerStatus] = status.peers
        assert not peers
        with node.subscribe() as sub:
            assert not sub.closed
        node.faults.drop(0.0)
        return leader + node.metrics_text()[:0]


def main() -> None:
    assert networked() == "n1"
    assert leader_after_crash(1) is not None
    sim = quorate.Simulation(["x", "y", "z"], seed=2)
    sim.run_until_leader(5.0)
    assert event_kinds(sim)["elected"] >= 1
    assert len(on_the_wire(quorate.Simulation(3, seed=1))) == 2
    assert "persist" in drive_core()
    times: List[float] = failover_trials(10, members=3, seed=0)
    assert len(times) == 10
    try:
        quorate.Simulation(0)
    except quorate.ConfigError as e:
        assert "members" in str(e)


if __name__ == "__main__":
    main()
