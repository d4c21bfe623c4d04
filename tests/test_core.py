"""quorate.Core: the sans-IO engine driven from Python."""

from __future__ import annotations

import pytest

import quorate
from quorate import ConfigError, NotLeaderError


def test_one_member_core_elects_itself_after_its_timeout_and_holds_the_lease():
    core = quorate.Core("a", ["a"])
    assert core.tick(0.0) == []
    assert core.next_deadline() is not None and 0.15 <= core.next_deadline() < 0.30
    outputs = core.tick(core.next_deadline())
    kinds = [o["kind"] for o in outputs]
    assert kinds[0] == "persist", "the self-vote is durable first"
    assert outputs[0] == {"kind": "persist", "term": 1, "voted_for": "a"}
    assert {"kind": "event", "event": "elected", "term": 1, "leader": "a"} in outputs
    state = core.state
    assert state["role"] == "leader" and state["term"] == 1 and state["leader"] == "a"
    now = core.next_deadline()
    assert core.is_leader(now - 0.001)
    assert core.fencing_token(now - 0.001) == 1


def test_three_cores_elect_exactly_one_leader_that_all_follow(core_net):
    net = core_net(["a", "b", "c"])
    net.advance_to(1.0)
    leaders = net.leaders()
    assert len(leaders) == 1
    leader = leaders[0]
    assert all(c.state["leader"] == leader for c in net.cores.values())
    assert net.cores[leader].is_leader(net.now)
    terms = {c.state["term"] for c in net.cores.values()}
    assert len(terms) == 1


def test_pre_vote_lets_an_isolated_core_keep_its_term(core_net):
    net = core_net(["a", "b", "c"])
    net.advance_to(1.0)
    follower = next(i for i in net.cores if i not in net.leaders())
    term = net.cores[follower].state["term"]
    net.down.add(follower)  # its messages are lost both ways, but it keeps running
    for _ in range(20):
        net.now += 0.3
        net.carry_out(follower, net.cores[follower].tick(net.now))
        net.in_flight = [m for m in net.in_flight if follower not in m[:2]]
    assert net.cores[follower].state["term"] == term


def test_messages_round_trip_through_step(core_net):
    net = core_net(["a", "b", "c"])
    net.advance_to(1.0)  # every message produced was accepted by step()
    kinds = {e["event"] for _, e in net.events}
    assert {"elected", "leader_changed", "term_changed", "election_started"} <= kinds


def test_resign_hands_off_with_timeout_now_and_the_target_wins(core_net):
    net = core_net(["a", "b", "c"])
    net.advance_to(1.0)
    (leader,) = net.leaders()
    outputs = net.cores[leader].resign(net.now)
    sends = [o for o in outputs if o["kind"] == "send"]
    assert len(sends) == 1 and sends[0]["message"]["type"] == "timeout_now"
    target = sends[0]["to"]
    assert not net.cores[leader].is_leader(net.now), "the old leader gives up its lease at once"
    net.carry_out(leader, outputs)
    net.deliver_all()
    assert net.leaders() == [target]


def test_transfer_leadership_errors():
    core = quorate.Core("a", ["a", "b", "c"])
    core.tick(0.0)
    with pytest.raises(NotLeaderError):
        core.transfer_leadership(0.1, "b")
    with pytest.raises(ConfigError, match="to:"):
        core.transfer_leadership(0.1, "zed")


def test_core_restores_term_and_vote_and_will_not_vote_again_in_that_term():
    core = quorate.Core("a", ["a", "b", "c"], term=4, voted_for="b")
    core.tick(10.0)
    out = core.step(10.2, "c", {"type": "vote", "term": 4, "pre_vote": False, "transfer": False})
    assert out == [{"kind": "send", "to": "c", "message": {"type": "vote_response", "term": 4, "granted": False, "pre_vote": False}}]


@pytest.mark.parametrize(
    "message, needle",
    [
        ({"term": 1}, '"type"'),
        ({"type": "gossip", "term": 1}, "unknown type"),
        ({"type": "heartbeat", "term": 1}, '"seq"'),
        ({"type": "heartbeat", "term": -1, "seq": 1}, "term must be >= 0"),
        ({"type": "vote", "term": 1, "pre_vote": "yes", "transfer": False}, '"pre_vote"'),
    ],
)
def test_malformed_messages_are_config_errors_naming_the_field(message, needle):
    core = quorate.Core("a", ["a", "b"])
    with pytest.raises(ConfigError, match=needle):
        core.step(0.0, "b", message)
    assert core.state["term"] == 0


def test_step_refuses_unknown_senders_and_time_that_goes_back():
    core = quorate.Core("a", ["a", "b"])
    with pytest.raises(ConfigError, match="sender"):
        core.step(0.0, "mallory", {"type": "timeout_now", "term": 1})
    core.tick(5.0)
    with pytest.raises(ConfigError, match="backwards"):
        core.tick(4.0)
    with pytest.raises(ConfigError, match="now"):
        core.tick(float("nan"))
