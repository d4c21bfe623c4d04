"""Notebook safety: LocalCluster cleans up in the right order however it goes away, a cell run
twice stops the older cluster, both LocalCluster and Simulation show themselves without Rust
syntax (plain and HTML), and long simulator runs answer Ctrl-C and show progress."""

from __future__ import annotations

import _thread
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
import warnings
from typing import Any, List

import pytest

import quorate
from quorate import cluster as cluster_module

ELECT = 15.0


def make_cluster(members: Any = 3, **options: Any) -> quorate.LocalCluster:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quorate.LocalCluster(members, **options)


@pytest.fixture
def rmtree_spy(monkeypatch):
    """Records, at each removal of a cluster's temporary directory, the roles of every node."""
    calls: List[Any] = []
    real = cluster_module.shutil.rmtree
    watched: List[quorate.Node] = []

    def spy(path, *args, **kwargs):
        calls.append((path, [n.role for n in watched]))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(cluster_module.shutil, "rmtree", spy)
    return calls, watched


@pytest.mark.parametrize("cycle", [False, True], ids=["refcount", "cyclic-gc"])
def test_a_collected_cluster_stops_its_nodes_before_its_directory_goes(rmtree_spy, cycle):
    calls, watched = rmtree_spy
    c = make_cluster(3).start()
    c.wait_for_leader(ELECT)
    nodes = list(c.nodes.values())
    watched.extend(nodes)
    root = os.path.dirname(next(iter(c.data_dirs.values())))
    assert os.path.isdir(root)
    if cycle:
        c.me = c  # type: ignore[attr-defined]  # only the cycle collector can free it now
    del c
    gc.collect()
    assert all(n.role == "stopped" for n in nodes), [n.role for n in nodes]
    assert not os.path.exists(root)
    removals = [roles for path, roles in calls if path == root]
    assert removals and all(r == "stopped" for r in removals[0]), calls


def test_stop_stops_every_node_before_removing_the_directory_and_is_idempotent(rmtree_spy):
    calls, watched = rmtree_spy
    c = make_cluster(3).start()
    watched.extend(c.nodes.values())
    root = os.path.dirname(next(iter(c.data_dirs.values())))
    c.stop()
    assert calls and calls[0][0] == root and set(calls[0][1]) == {"stopped"}
    assert not os.path.exists(root) and not c.running
    c.stop()
    # A restarted cluster gets fresh data_dirs, removed again by the next stop.
    c.start()
    assert c.running and c.wait_for_leader(ELECT)
    c.stop()
    assert not os.path.exists(root)


def test_a_cluster_running_at_interpreter_exit_is_stopped_then_removed():
    code = textwrap.dedent(
        """
        import os, warnings
        warnings.simplefilter("ignore")
        import quorate
        c = quorate.LocalCluster(3).start()
        c.wait_for_leader(15)
        print(os.path.dirname(next(iter(c.data_dirs.values()))), flush=True)
        """
    )
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    root = done.stdout.strip().splitlines()[-1]
    assert root and not os.path.exists(root)
    assert time.monotonic() - t0 < 60


def test_a_new_cluster_with_the_same_ids_stops_the_running_one_with_a_warning():
    old = make_cluster(3).start()
    other = make_cluster(["a", "b", "c"]).start()  # different ids: left alone
    try:
        old.wait_for_leader(ELECT)
        old_root = os.path.dirname(next(iter(old.data_dirs.values())))
        with pytest.warns(UserWarning, match="same node ids"):
            new = quorate.LocalCluster(3)
        try:
            assert not old.running
            assert all(n.role == "stopped" for n in old.nodes.values())
            assert not os.path.exists(old_root)
            assert other.running and all(n.role != "stopped" for n in other.nodes.values())
            new.start()
            assert new.wait_for_leader(ELECT) in new.nodes
        finally:
            new.stop()
        # A cluster that was made but never started is not "running": no warning for it.
        idle = make_cluster(3)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            quorate.LocalCluster(3).stop()
        idle.stop()
    finally:
        old.stop()
        other.stop()


def test_local_cluster_repr_and_html():
    c = make_cluster(["n1", "n<2>", "n3"]).start()
    try:
        leader = c.wait_for_leader(ELECT)
        text = repr(c)
        assert text.startswith("<LocalCluster running") and f"leader={leader!r}" in text, text
        assert "Some(" not in text
        html = c._repr_html_()
        assert html.startswith("<table>") and html.count("<tr") == 4, html
        assert "n&lt;2&gt;" in html and "n<2>" not in html
        assert "leader" in html and "follower" in html
        c.nodes["n3"].faults.drop(0.1)
        assert "drop" in c._repr_html_()
    finally:
        c.stop()
    assert repr(c).startswith("<LocalCluster stopped")


def test_simulation_repr_is_python_notation_and_html_shows_nodes_roles_and_faults():
    sim = quorate.Simulation(["n1", "n'2", "n3"], seed=1)
    assert repr(sim) == f"Simulation(members={sim.members!r}, now=0.000, leader=None)"
    assert "\"n'2\"" in repr(sim)
    leader = sim.run_until_leader(5.0)
    assert leader is not None
    text = repr(sim)
    assert f"leader={leader!r}" in text and "Some(" not in text, text
    follower = next(i for i in sim.members if i != leader)
    sim.kill(follower)
    html = sim._repr_html_()
    assert html.startswith("<table>") and html.count("<tr") == 4, html
    assert "crashed" in html and "leader" in html and "n&#x27;2" in html


def test_slicing_a_long_run_does_not_change_the_result():
    options = dict(seed=11, heartbeat_interval=0.01, election_timeout=(0.05, 0.1), drop_rate=0.05)
    one = quorate.Simulation(15, **options)
    t0 = time.monotonic()
    # Long enough to be cut into several 50 ms slices of wall time: ~0.25 s since the simulator's
    # queue fix (60 virtual seconds, the earlier figure, took under 50 ms and broke the premise).
    one.run_for(300.0)
    assert time.monotonic() - t0 > 0.05
    many = quorate.Simulation(15, **options)
    for _ in range(3000):
        many.run_for(0.1)
    assert one.events == many.events and one.stats == many.stats
    assert abs(one.now - many.now) < 1e-6


@pytest.fixture
def python_sigint_handler():
    """Python's own SIGINT handler, for the test's duration. A process started in the background
    (`nohup bash .ci/run &`) inherits SIGINT as ignored, and then Python installs no handler:
    `_thread.interrupt_main()` does nothing and no KeyboardInterrupt is ever raised."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


@pytest.mark.parametrize("call", ["run_for", "run_until_leader"])
def test_ctrl_c_interrupts_a_long_run_within_a_fraction_of_a_second(call, python_sigint_handler):
    # Only one node of three is up: run_until_leader can never finish on its own.
    sim = quorate.Simulation(3, seed=2)
    if call == "run_until_leader":
        sim.kill("n2")
        sim.kill("n3")
    timer = interrupt_after(0.3)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            getattr(sim, call)(10.0**6)
    finally:
        timer.cancel()
    took = time.monotonic() - t0
    assert took < 0.3 + 1.0, took  # checked every 50 ms; generous for a loaded machine
    assert 0 < sim.now < 10.0**6
    sim.run_for(1.0)  # still usable
    sim.check()


def test_a_run_longer_than_two_seconds_shows_a_tqdm_bar_when_tqdm_is_there(monkeypatch, python_sigint_handler):
    bars: List["FakeBar"] = []

    class FakeBar:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs
            self.updates: List[float] = []
            self.closed = False
            bars.append(self)

        def update(self, n: float) -> None:
            self.updates.append(n)

        def close(self) -> None:
            self.closed = True

    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = FakeBar  # type: ignore[attr-defined]
    package = types.ModuleType("tqdm")
    package.auto = auto  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tqdm", package)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)

    sim = quorate.Simulation(3, seed=4)
    timer = interrupt_after(2.6)
    try:
        with pytest.raises(KeyboardInterrupt):
            sim.run_for(10.0**6)
    finally:
        timer.cancel()
    assert len(bars) == 1, bars
    bar = bars[0]
    assert bar.kwargs["total"] == 10.0**6 and bar.kwargs["unit"] == "s"
    assert bar.updates and all(u > 0 for u in bar.updates)
    assert abs(sum(bar.updates) - sim.now) < 1e-3 * sim.now + 1.0
    assert bar.closed

    # A short run shows no bar.
    quorate.Simulation(3).run_for(10.0)
    assert len(bars) == 1


def test_a_refused_argument_leaves_no_directory_and_does_not_stop_the_running_cluster(monkeypatch):
    made: List[str] = []
    real = cluster_module.tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        path = real(*args, **kwargs)
        made.append(path)
        return path

    monkeypatch.setattr(cluster_module.tempfile, "mkdtemp", recording_mkdtemp)
    running = make_cluster(3).start()
    try:
        with pytest.raises(quorate.ConfigError, match="algorithm"):
            quorate.LocalCluster(3, algorithm="paxos")
        gc.collect()
        assert len(made) == 2 and not os.path.exists(made[1])
        assert running.running and all(n.role != "stopped" for n in running.nodes.values())
    finally:
        running.stop()
