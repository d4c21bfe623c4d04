"""quorate.viz: the timeline replays a known run exactly, one lane per node; the CDF; the fault
log; the LiveView's buttons, clicked as a user would (no browser: `button.click()` runs the
same callbacks); and the ImportError that names the extra."""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, Tuple

import pytest

import quorate
from quorate import viz
from quorate.errors import ConfigError

NEEDS_EXTRA = "needs the notebook extra: pip install 'quorate[notebook]'"
FAST = dict(election_timeout=(0.1, 0.2), heartbeat_interval=0.03)


@pytest.fixture
def mpl() -> Any:
    matplotlib = pytest.importorskip("matplotlib", reason=NEEDS_EXTRA)
    matplotlib.use("Agg")
    return matplotlib


@pytest.fixture
def widgets() -> Any:
    pytest.importorskip("matplotlib", reason=NEEDS_EXTRA)
    return pytest.importorskip("ipywidgets", reason=NEEDS_EXTRA)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.01)


def known_run() -> Tuple[quorate.Simulation, viz.FaultLog, Dict[str, Any]]:
    """A seeded run: an election, the leader killed, a new one, the old one restarted, then the
    new leader cut off in a minority and healed."""
    sim = quorate.Simulation(3, seed=7)
    log = viz.FaultLog(sim)
    first = sim.run_until_leader(5.0)
    assert first is not None
    sim.run_for(0.5)
    killed_at = sim.now
    log.kill(first)
    second = sim.run_until_leader(5.0)
    assert second is not None and second != first
    sim.run_for(0.5)
    restarted_at = sim.now
    log.restart(first)
    sim.run_for(0.5)
    cut_at = sim.now
    log.partition([second])
    sim.run_for(1.0)
    log.heal()
    sim.run_for(0.5)
    sim.check()
    return sim, log, dict(first=first, second=second, killed_at=killed_at, restarted_at=restarted_at, cut_at=cut_at)


# ----- role_spans: the data under the picture ----------------------------------------------------


def test_role_spans_replay_a_known_simulation_run_exactly():
    sim, log, run = known_run()
    spans = viz.role_spans(sim, faults=log)
    assert list(spans) == sim.members
    for node, node_spans in spans.items():
        # Contiguous, from 0 to now, and never two equal roles in a row unless a new election.
        assert node_spans[0].start == 0.0 and node_spans[-1].end == pytest.approx(sim.now)
        for a, b in zip(node_spans, node_spans[1:]):
            assert a.end == b.start, (node, a, b)
            assert a.role != b.role or a.role == "candidate", (node, a, b)

    events = sim.events
    for node in sim.members:
        # Leader spans are exactly the elected .. demoted pairs of the events.
        starts = [e for e in events if e.node_id == node and e.kind == "elected"]
        ends = [e for e in events if e.node_id == node and e.kind == "demoted"]
        leader = [s for s in spans[node] if s.role == "leader"]
        assert [(s.start, s.term, s.fencing_token) for s in leader] == [(e.at, e.term, e.fencing_token) for e in starts]
        assert [s.end for s in leader[: len(ends)]] == [e.at for e in ends]
        assert [s.reason for s in leader[: len(ends)]] == [e.reason for e in ends]
        # Each election a node started is a candidate span beginning then.
        assert [s.start for s in spans[node] if s.role == "candidate"] == [
            e.at for e in events if e.node_id == node and e.kind == "election_started"
        ]

    # The killed leader: leader until the kill (reason crashed), down until the restart, then following.
    first = [s for s in spans[run["first"]] if s.end > 0.0]
    roles = [s.role for s in first]
    i = roles.index("down")
    assert roles[i - 1] == "leader" and first[i - 1].reason == "crashed"
    assert first[i].start == pytest.approx(run["killed_at"]) and first[i].end == pytest.approx(run["restarted_at"])
    assert roles[i + 1] == "follower"
    # The leader cut off in the minority lost its lease after the cut.
    lost = [s for s in spans[run["second"]] if s.role == "leader" and s.reason == "lost_lease"]
    assert lost and run["cut_at"] < lost[0].end < run["cut_at"] + 0.3


def test_role_spans_without_a_fault_log_show_a_crashed_leader_down_until_it_is_heard_from():
    sim = quorate.Simulation(3, seed=7)
    first = sim.run_until_leader(5.0)
    assert first is not None
    sim.run_for(0.5)
    sim.kill(first)
    sim.run_until_leader(5.0)
    sim.restart(first)
    sim.run_for(1.0)
    spans = viz.role_spans(sim.events, end=sim.now)  # a list of Event: no members, no faults
    assert list(spans) == sorted(spans)
    roles = [s.role for s in spans[first]]
    assert roles[-3:] == ["leader", "down", "follower"], roles
    back = next(e.at for e in sim.events if e.node_id == first and e.at > spans[first][-2].start)
    assert spans[first][-1].start == back


def test_fault_log_opens_and_closes_spans():
    sim = quorate.Simulation(3, seed=1)
    log = viz.FaultLog(sim)
    sim.run_until_leader(5.0)
    log.pause("n1", 0.2)  # a simulated pause with a length is closed at once
    log.kill("n2")
    log.drop(0.1)
    assert log.is_open("n2", "down") and log.is_open(None, "drop")
    sim.run_for(0.5)
    log.restart("n2")
    log.heal()
    kinds = {(f.node, f.kind): f for f in log.entries}
    assert kinds[("n1", "paused")].end == pytest.approx(kinds[("n1", "paused")].start + 0.2)
    assert kinds[("n2", "down")].end == pytest.approx(sim.now)
    assert kinds[(None, "drop")].end is not None
    assert not any(f.end is None for f in log.entries)
    with pytest.raises(ConfigError, match="global"):
        log.drop(0.5, node="n1")
    with pytest.raises(ConfigError, match="not a member"):
        log.kill("n9")
    with pytest.raises(ConfigError):
        viz.FaultLog("a cluster")  # type: ignore[arg-type]


# ----- the figures -------------------------------------------------------------------------------


def test_timeline_returns_a_figure_with_one_lane_per_node_and_the_replayed_spans(mpl):
    from matplotlib.figure import Figure

    sim, log, run = known_run()
    fig = viz.timeline(sim, faults=log, title="known run")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == sim.members
    lanes = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    spans = viz.role_spans(sim, faults=log)
    drawn: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
    for patch in ax.patches:
        gid = patch.get_gid() or ""
        if gid.count("|") == 2 and not gid.startswith("fault"):
            node, role, _term = gid.split("|")
            assert patch.get_y() + patch.get_height() / 2 == pytest.approx(lanes[node])
            drawn.setdefault((node, role), []).extend([patch.get_x(), patch.get_x() + patch.get_width()])
    for node, node_spans in spans.items():
        for role in ("leader", "down", "follower"):
            want = [t for s in node_spans if s.role == role for t in (s.start, s.end)]
            assert drawn.get((node, role), []) == pytest.approx(want), (node, role)
    # The partition is drawn on the cut-off node's lane only (the majority side is not hatched).
    cut = [p.get_gid() for p in ax.patches if (p.get_gid() or "").startswith("fault|") and "partition" in p.get_gid()]
    assert cut == [f"fault|{run['second']}|partition"]
    texts = [t.get_text() for t in ax.texts]
    assert "crashed" in texts and "lost_lease" in texts and any(t.startswith("partition") for t in texts)
    assert any(t.startswith("term 1, token 1") for t in texts)


def test_timeline_takes_a_list_of_events_fault_tuples_and_a_window(mpl):
    sim = quorate.Simulation(5, seed=3)
    sim.run_for(2.0)
    fig = viz.timeline(
        sim.events,
        faults=[(0.5, "n1", "a mark"), (0.6, 0.9, None, "a span on every lane"), viz.Fault(1.0, None, "n2", "open")],
        end=sim.now,
        window=1.5,
    )
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["n1", "n2", "n3", "n4", "n5"]
    assert ax.get_xlim() == pytest.approx((0.5, 2.0))
    hatched = [p.get_gid() for p in ax.patches if (p.get_gid() or "").startswith("fault|")]
    assert len(hatched) == 5 + 1  # the span on every lane, and the open one on n2
    with pytest.raises(ConfigError, match="faults"):
        viz.timeline(sim, faults=[("bad",)])
    with pytest.raises(ConfigError, match="source"):
        viz.timeline("not a source")


def test_timeline_draws_into_given_axes(mpl):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    sim = quorate.Simulation(3, seed=2)
    sim.run_for(1.0)
    assert viz.timeline(sim, ax=ax) is fig


def test_failover_cdf_one_curve_per_series_and_no_leader_trials_keep_it_below_one(mpl):
    from matplotlib.figure import Figure

    times = quorate.sim.failover_trials(50, members=3, seed=1)
    fig = viz.failover_cdf(times, label="3 nodes")
    assert isinstance(fig, Figure)
    (line,) = fig.axes[0].get_lines()
    assert line.get_ydata()[-1] == pytest.approx(1.0)
    assert max(line.get_xdata()) == pytest.approx(1000 * max(times))

    fig = viz.failover_cdf({"some never": [0.1, 0.2, math.inf, math.inf], "all": [0.3, 0.4]}, log_x=True,
                           legend_loc="outside")
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 and lines[0].get_ydata()[-1] == pytest.approx(0.5)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "2/4 no leader" in legend[0] and "median 350 ms, max 400 ms" in legend[1]


def test_drawing_without_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    sim = quorate.Simulation(3, seed=1)
    sim.run_for(1.0)
    for draw in (lambda: viz.timeline(sim), lambda: viz.failover_cdf([0.1]), lambda: viz.LiveView(sim)):
        with pytest.raises(ImportError, match=r"pip install 'quorate\[notebook\]'"):
            draw()
    assert viz.role_spans(sim)  # the data needs no matplotlib


# ----- the live view -----------------------------------------------------------------------------


def png(view: viz.LiveView) -> bytes:
    data = bytes(view.image.value)
    assert data.startswith(b"\x89PNG"), data[:8]
    return data


def test_live_view_on_a_simulation_buttons_and_virtual_time(widgets):
    sim = quorate.Simulation(3, seed=7)
    view = viz.LiveView(sim, step_seconds=0.05)
    try:
        assert set(view.buttons) == set(sim.members)
        assert all(set(row) == set(viz.LiveView.ACTIONS) for row in view.buttons.values())
        png(view)

        view.step_button.click()
        assert sim.now == pytest.approx(0.05)
        view.step(1.0)
        leader = sim.leader()
        assert leader is not None

        view.buttons[leader]["kill"].click()
        assert (sim.status(leader).role != "stopped") is False
        view.step(1.0)
        assert sim.leader() not in (None, leader)
        view.buttons[leader]["restart"].click()
        assert (sim.status(leader).role != "stopped") is True
        view.step(0.5)

        view.buttons["n1"]["pause"].click()
        assert ("paused" in sim.status("n1").faults) is True
        view.buttons["n1"]["heal"].click()
        assert ("paused" in sim.status("n1").faults) is False
        view.step(0.5)

        leader = sim.leader()
        assert leader is not None
        view.buttons[leader]["isolate"].click()
        view.step(1.0)
        assert [m for m in sim.members if m != leader and sim.status(m).is_leader]
        assert not sim.status(leader).is_leader
        view.buttons[leader]["heal"].click()
        assert not view.faults.is_open(leader, "isolated")
        view.step(0.5)

        leader = sim.leader()
        view.buttons[leader]["timeout"].click()  # a leader resigns and hands off
        assert "resigned" in view.message.value
        assert [(e.node_id, e.reason) for e in sim.events if e.kind == "demoted"][-1] == (leader, "resigned")
        view.step(1.0)
        new = sim.leader()
        assert new not in (None, leader)
        view.buttons[leader]["timeout"].click()  # a follower: the leader's TimeoutNow
        assert [(m.sender, m.receiver) for m in sim.in_flight() if m.kind == "timeout_now"] == [(new, leader)]
        view.step(1.0)
        assert sim.leader() == leader
        sim.check()
        kinds = [(f.node, f.kind, f.text) for f in view.faults.entries]
        assert (leader, "note", "timeout: resign") in kinds and (leader, "note", f"timeout (TimeoutNow from {new})") in kinds
        assert ("n1", "paused", "paused") in kinds and any(k == "down" for _, k, _ in kinds)

        # Play runs virtual time in the background; pause stops it.
        view.speed_slider.value = 1.0
        before = sim.now
        view.play_button.click()
        assert view.playing
        wait_for(lambda: sim.now > before + 0.2, 10, "virtual time to advance while playing")
        view.pause_button.click()
        time.sleep(view.interval * 2)
        stopped_at = sim.now
        time.sleep(view.interval * 2)
        assert sim.now == stopped_at and not view.playing

        # The time slider replays: the picture and the roles are those of the chosen moment.
        now_picture = png(view)
        view.time_slider.value = 0.1  # before the first election
        assert view._cursor == pytest.approx(0.1)
        assert png(view) != now_picture
        assert "leader" not in view.roles.value and sim.now == stopped_at
        view.time_slider.value = view.time_slider.max  # back to the present
        assert view._cursor is None
        assert view.errors == []
    finally:
        view.close()


def message_artists(view: viz.LiveView) -> List[Any]:
    """The message triangles of the view's last picture (its second axes: the network panel)."""
    assert view.figure is not None
    return [a for ax in view.figure.axes for a in ax.lines if (a.get_gid() or "").startswith("msg|")]


def node_centres(view: viz.LiveView) -> Dict[str, Tuple[float, float]]:
    assert view.figure is not None
    return {p.get_gid()[5:]: tuple(p.center) for ax in view.figure.axes for p in ax.patches
            if (p.get_gid() or "").startswith("node|")}


def test_live_view_on_a_simulation_draws_each_message_in_flight_where_it_is(widgets):
    sim = quorate.Simulation(5, seed=3, latency=(0.01, 0.02))
    view = viz.LiveView(sim, step_seconds=0.002)
    try:
        assert message_artists(view) == [] and view.shown_messages == [], "nothing on the wire at 0 s"
        assert set(node_centres(view)) == set(sim.members)
        view.step(0.16)  # past the boot promise (0.15 s); with seed 3 nobody has timed out yet
        assert sim.in_flight() == []
        view.buttons["n4"]["timeout"].click()  # no leader yet: n4 campaigns now
        assert view.errors == [] and "pre_vote to n1, n2, n3, n5" in view.message.value
        drawn = message_artists(view)
        assert sorted(a.get_gid() for a in drawn) == [f"msg|n4|{p}|pre_vote" for p in ("n1", "n2", "n3", "n5")]

        # Step through the election: after every step the picture has exactly the messages the
        # simulation holds, each between its sender and receiver, as far along as its progress.
        centres = node_centres(view)
        most = 0
        kinds = set()
        for _ in range(40):
            view.step_button.click()
            flying = sim.in_flight()
            drawn = message_artists(view)
            assert len(drawn) == len(flying) and view.shown_messages == flying
            assert sorted(a.get_gid() for a in drawn) == sorted(f"msg|{m.sender}|{m.receiver}|{m.kind}" for m in flying)
            for m in flying:
                (x0, y0), (x1, y1) = centres[m.sender], centres[m.receiver]
                p = m.progress(sim.now)
                xs = [a.get_xdata()[0] for a in drawn if a.get_gid() == f"msg|{m.sender}|{m.receiver}|{m.kind}"]
                ys = [a.get_ydata()[0] for a in drawn if a.get_gid() == f"msg|{m.sender}|{m.receiver}|{m.kind}"]
                # The point of the segment it is drawn at (edge to edge of the node circles, a
                # little to one side): its distance from the sender is its progress of the way.
                length = math.hypot(x1 - x0, y1 - y0)
                along = [((x - x0) * (x1 - x0) + (y - y0) * (y1 - y0)) / length for x, y in zip(xs, ys)]
                expected = 0.2 + p * (length - 0.4)
                assert any(abs(a - expected) < 1e-6 for a in along), (m, along, expected)
            most = max(most, len(flying))
            kinds |= {m.kind for m in flying}
        assert most >= 4 and {"pre_vote", "pre_vote_response", "vote", "vote_response"} <= kinds, kinds
        view.step(0.2)
        assert sim.leader() == "n4"

        # A message to a node that went down is drawn faded (doomed).
        victim = next(m for m in sim.members if m != sim.leader())
        view.kill(victim)
        view.step(0.05)
        for _ in range(30):
            if any(m.receiver == victim for m in sim.in_flight()):
                break
            view.step_button.click()
        doomed = [a for a in message_artists(view) if a.get_gid().split("|")[2] == victim]
        assert doomed and all(a.get_alpha() == pytest.approx(0.35) for a in doomed)
        assert all(a.get_alpha() == 1.0 for a in message_artists(view) if a.get_gid().split("|")[2] != victim)

        # Replaying the past: the roles at the cursor, and no messages (none are recorded).
        assert message_artists(view)
        view.time_slider.value = 0.1
        assert message_artists(view) == [] and view.shown_messages == []
        assert any("only at the present" in ax.get_title() for ax in view.figure.axes)
        view.time_slider.value = view.time_slider.max
        assert len(message_artists(view)) == len(sim.in_flight())
        assert view.errors == []
    finally:
        view.close()


def test_network_draws_a_simulation_and_refuses_what_has_no_messages(mpl):
    sim = quorate.Simulation(3, seed=1, latency=(0.002, 0.002))
    sim.run_for(0.15)
    sim.campaign("n2")
    fig = viz.network(sim)
    gids = sorted(a.get_gid() for a in fig.axes[0].lines if (a.get_gid() or "").startswith("msg|"))
    assert gids == ["msg|n2|n1|pre_vote", "msg|n2|n3|pre_vote"]
    assert "2 in flight" in fig.axes[0].get_title()
    with pytest.raises(ConfigError, match="only the simulator"):
        viz.network(sim.events)  # type: ignore[arg-type]


def test_force_timeout_on_a_simulation_campaigns_when_there_is_no_leader():
    sim = quorate.Simulation(3, seed=1, latency=(0.002, 0.002))
    log = viz.FaultLog(sim)
    sim.run_for(0.1)
    said = log.force_timeout("n1")  # within the boot promise: held back
    assert "does not campaign" in said and sim.in_flight() == []
    sim.run_for(0.05)
    said = log.force_timeout("n1")
    assert said == "n1's timeout fired: pre_vote to n2, n3"
    assert [(f.node, f.text) for f in log.entries] == [("n1", "timeout (campaign)")]
    assert sim.run_until_leader(1.0) == "n1"
    assert log.resign("n1") is True and log.resign("n2") is False
    sim.check()


def test_live_view_on_a_local_cluster_buttons(widgets):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = quorate.LocalCluster(3, **FAST)
    with cluster:
        view = viz.LiveView(cluster, interval=0.1)
        try:
            leader = cluster.wait_for_leader(10)
            view.buttons[leader]["kill"].click()
            assert cluster.nodes[leader].role == "stopped"
            new = wait_for(lambda: (cluster.leader() or "") if cluster.leader() != leader else "", 10, "a new leader")
            view.buttons[leader]["restart"].click()
            assert cluster.nodes[leader].role != "stopped"
            wait_for(lambda: cluster.nodes[leader].leader == new, 10, "the restarted node to follow")

            follower = next(i for i in cluster.nodes if i != new)
            view.buttons[follower]["pause"].click()
            assert "paused" in cluster.nodes[follower].faults.active()
            view.buttons[follower]["heal"].click()
            assert "paused" not in cluster.nodes[follower].faults.active()
            view.buttons[follower]["isolate"].click()
            # LocalCluster.isolate cuts the node off in the cluster's partition layer (as heal lifts it).
            assert "group_partition" in cluster.nodes[follower].faults.active()
            view.buttons[follower]["heal"].click()
            assert cluster.nodes[follower].faults.active() == {}
            wait_for(lambda: cluster.nodes[follower].leader == new and cluster.leader() == new, 10, "heal")

            # timeout on a follower: the leader hands off with TimeoutNow, and it leads at once.
            view.buttons[follower]["timeout"].click()
            wait_for(lambda: cluster.leader() == follower, 10, "the timed-out follower to lead")
            # timeout on the leader: it resigns.
            view.buttons[follower]["timeout"].click()
            wait_for(lambda: any(e.kind == "demoted" and e.node_id == follower and e.reason == "resigned"
                                 for e in cluster.events), 10, "a resignation")
            cluster.wait_for_leader(10)
            assert view.errors == [], view.errors

            # The picture shows every action, and redraws in the background once started.
            png(view)
            # Real nodes: no panel of messages in flight (nothing records them), just the timeline.
            assert view.shown_messages == [] and len(view.figure.axes) == 1 and message_artists(view) == []
            texts = [f.text for f in view.faults.entries]
            assert "killed" in texts and "paused" in texts and "isolated" in texts
            assert any(t.startswith("timeout") for t in texts)
            view.start()
            drawn = view.draws
            wait_for(lambda: view.draws >= drawn + 2, 10, "background redraws")
        finally:
            view.close()
        assert view._thread is not None and not view._thread.is_alive()
    # A stopped cluster: a button reports the failure in the view instead of raising.
    view.act("isolate", "n1")
    assert view.errors and "isolate n1" in view.errors[-1]
