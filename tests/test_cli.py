"""The command line, run as a newcomer would."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Dict, NamedTuple

import pytest


class DemoRun(NamedTuple):
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@pytest.fixture(scope="module")
def demo_runs() -> Dict[str, DemoRun]:
    """`quorate demo` and `quorate demo --simulated`, run once each, side by side, bounded."""
    commands = {
        "live": [sys.executable, "-m", "quorate", "demo"],
        "simulated": [sys.executable, "-m", "quorate", "demo", "--simulated"],
    }
    started = time.monotonic()
    procs = {k: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k, c in commands.items()}
    runs = {}
    try:
        for kind in ("simulated", "live"):
            out, err = procs[kind].communicate(timeout=120)
            runs[kind] = DemoRun(procs[kind].returncode, out, err, time.monotonic() - started)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    return runs


def test_live_demo_elects_kills_the_leader_and_re_elects_on_loopback(demo_runs):
    done = demo_runs["live"]
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("elected leader of term") >= 2
    assert "failover:" in out and "ms after the kill" in out
    assert "healed: every node follows" in out


def test_simulated_demo_elects_fails_over_and_reports_a_clean_safety_check(demo_runs):
    done = demo_runs["simulated"]
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("elected leader of term") >= 3
    assert "failover took" in out
    assert "stepped down" in out
    assert "safety checker: no violations" in out


def test_both_demos_tell_every_scene_to_completion_within_their_time_bounds(demo_runs):
    from quorate.__main__ import SCENES

    assert len(SCENES) == 4
    for kind, bound in (("live", 60.0), ("simulated", 20.0)):  # ~10 s and ~1 s unloaded; CI shares two cores
        done = demo_runs[kind]
        assert done.returncode == 0, (kind, done.stdout, done.stderr)
        assert done.seconds < bound, (kind, done.seconds)
        lines = done.stdout.splitlines()
        headings = [lines.index(f"{i}. {title}") for i, title in enumerate(SCENES, 1)]
        assert headings == sorted(headings), (kind, done.stdout)
        # The demotions say why: the killed leader crashed, the cut-off leader's lease ran out.
        assert "(reason: crashed)" in done.stdout and "(reason: lost_lease)" in done.stdout, (kind, done.stdout)
        assert "(strictly increasing)" in done.stdout, (kind, done.stdout)
        assert done.stdout.rstrip().splitlines()[-1].startswith("done"), (kind, done.stdout)


def test_the_simulated_demo_is_deterministic(demo_runs):
    again = subprocess.run(
        [sys.executable, "-m", "quorate", "demo", "--simulated"], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    story = [line for line in again.stdout.splitlines() if not line.startswith("done")]
    assert story == [line for line in demo_runs["simulated"].stdout.splitlines() if not line.startswith("done")]


def test_demo_rejects_a_bad_group_size():
    done = subprocess.run(
        [sys.executable, "-m", "quorate", "demo", "--members", "0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--members" in done.stderr


# ----- `quorate node`: a bad option is one line on stderr and exit status 2, never a traceback -----

import json  # noqa: E402
import os  # noqa: E402
import selectors  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import urllib.request  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_command(tmp_path, *extra: str) -> list:
    return [sys.executable, "-m", "quorate", "node", "--id", "a", "--member", f"a=127.0.0.1:{free_port()}",
            "--data-dir", str(tmp_path / "a"), "--quiet-warnings", *extra]


def run_failing_node(tmp_path, *extra: str) -> str:
    """Runs `quorate node` expecting it to refuse at once; returns its one stderr line."""
    done = subprocess.run(node_command(tmp_path, *extra), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert '"started"' not in done.stdout, done.stdout
    return lines[0]


@pytest.mark.parametrize(
    "status_bind, reason",
    [
        ("nope", "HOST:PORT"),
        ("127.0.0.1:99999", "0..65535"),
        ("127.0.0.1:", "HOST:PORT"),
        ("::1:9401", "brackets"),
    ],
)
def test_node_refuses_an_unparsable_status_bind(tmp_path, status_bind, reason):
    line = run_failing_node(tmp_path, "--status-bind", status_bind)
    assert "--status-bind" in line and reason in line and repr(status_bind) in line, line


def test_node_refuses_a_busy_status_bind_before_it_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = run_failing_node(tmp_path, "--status-bind", f"127.0.0.1:{port}")
    assert "--status-bind" in line and f"127.0.0.1:{port}" in line and "in use" in line, line


def test_node_refuses_a_busy_member_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "quorate", "node", "--id", "a", "--member", f"a=127.0.0.1:{port}",
             "--data-dir", str(tmp_path / "a"), "--quiet-warnings", "--status-bind", f"127.0.0.1:{free_port()}"],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr, done.stderr


@pytest.mark.parametrize(
    "make_file, reason",
    [
        pytest.param(lambda d: d / "missing", "No such file", id="missing"),
        pytest.param(lambda d: (d / "short").write_bytes(b"short\n") and d / "short", "5 bytes", id="short"),
        pytest.param(lambda d: d, "Is a directory", id="directory"),
    ],
)
def test_node_refuses_a_bad_secret_file(tmp_path, make_file, reason):
    path = make_file(tmp_path)
    line = run_failing_node(tmp_path, "--secret-file", str(path))
    assert "--secret-file" in line and str(path) in line and reason in line, line


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--seed", "-1"], "--seed"),
        (["--election-timeout", "nan", "0.3"], "election_timeout"),
        (["--heartbeat-interval", "inf"], "heartbeat_interval"),
        (["--member", "a=127.0.0.1:1"], "twice"),
    ],
)
def test_node_refuses_other_bad_options_without_a_traceback(tmp_path, extra, needle):
    done = subprocess.run(node_command(tmp_path, *extra), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and needle in done.stderr, done.stderr


def read_json_line(proc: subprocess.Popen, timeout: float) -> dict:
    """The next JSON line of `proc`'s stdout, waiting at most `timeout` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            assert remaining > 0 and sel.select(remaining), f"no line within {timeout} s; got {buf!r}"
            chunk = os.read(proc.stdout.fileno(), 1)
            assert chunk, f"stdout closed; got {buf!r}"
            buf += chunk
    return json.loads(buf)


def test_node_serves_status_once_it_reports_started_and_stops_on_sigterm(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"0123456789abcdef\n")
    proc = subprocess.Popen(
        node_command(tmp_path, "--status-bind", "127.0.0.1:0", "--secret-file", str(secret)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        started = read_json_line(proc, 60)
        assert started["kind"] == "started" and started["node_id"] == "a", started
        assert started["status"].startswith("http://127.0.0.1:") and not started["status"].endswith(":0"), started
        with urllib.request.urlopen(started["status"] + "/status", timeout=10) as r:
            assert json.loads(r.read())["node_id"] == "a"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stderr is not None and proc.stdout is not None
        proc.stderr.close()
        proc.stdout.close()


# ----- `quorate node` exposes every argument of Node(...), from one table ---------------------------

import inspect  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402

import quorate  # noqa: E402
from quorate import _cli_options  # noqa: E402
from quorate.__main__ import build_parser  # noqa: E402

# Where an option's name is not the argument's own (dashes for underscores).
RENAMED = {"node_id": "--id", "members": "--member", "secret": "--secret-file"}


def node_parameters() -> Dict[str, inspect.Parameter]:
    """Node.__init__'s arguments that make sense on a command line: all but self and the callbacks."""
    params = inspect.signature(quorate.Node.__init__).parameters
    return {
        name: p for name, p in params.items()
        if name != "self" and not name.startswith("on_") and not re.search(r"Callable|Callback", str(p.annotation))
    }


def help_blocks() -> Dict[str, str]:
    """`quorate node --help`, one whitespace-normalised text per option, under each of its spellings."""
    env = dict(os.environ, COLUMNS="100")
    done = subprocess.run([sys.executable, "-m", "quorate", "node", "--help"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    blocks: Dict[str, str] = {}
    flags: list = []
    options = re.split(r"\n(?:options|optional arguments):\n", done.stdout)[1]  # the latter before Python 3.10
    for line in options.splitlines():
        if line.startswith("  -"):  # an option's first line: its spellings, then maybe the start of its help
            flags = re.findall(r"--[a-z-]+", line.strip().split("  ")[0])
        for flag in flags:
            blocks[flag] = " ".join((blocks.get(flag, "") + " " + line).split())
    return blocks


def test_every_node_argument_but_the_callbacks_is_an_option_showing_the_constructors_default():
    params = node_parameters()
    assert len(params) >= 14  # 17 arguments, three of them callbacks
    rows = {row.param: row for row in _cli_options.NODE_OPTIONS}
    assert set(rows) == set(params), "the option table and Node.__init__ disagree"
    blocks = help_blocks()
    for name, param in params.items():
        row = rows[name]
        assert row.flag == RENAMED.get(name, "--" + name.replace("_", "-")), row
        assert row.flag in blocks, (row.flag, sorted(blocks))
        text = blocks[row.flag]
        if param.default is inspect.Parameter.empty:
            assert "(required)" in text, text
            continue
        default = param.default
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else str(default)
        assert f"(default: {shown})" in text, (name, shown, text)
        if isinstance(default, bool):
            assert "--no-" + row.flag[2:] in text, text


def parse_node(*argv: str) -> dict:
    args = build_parser().parse_args(["node", "--id", "a", "--member", "a=127.0.0.1:7401", *argv])
    return _cli_options.node_arguments(args)


def test_an_option_left_out_is_not_passed_so_the_constructors_default_applies():
    assert parse_node() == {"node_id": "a", "members": {"a": "127.0.0.1:7401"}}


def test_options_reach_the_constructor_as_its_arguments(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"0123456789abcdef\n")
    got = parse_node(
        "--member", "b=127.0.0.1:7402", "--member", "c=127.0.0.1:7403", "--bind", "127.0.0.1:0",
        "--algorithm", "raft", "--election-timeout", "0.2", "0.4", "--heartbeat-interval", "0.04",
        "--data-dir", str(tmp_path), "--secret-file", str(secret), "--cluster", "demo", "--no-pre-vote",
        "--check-quorum", "--max-clock-drift", "0.1", "--priority", "3", "--seed", "7",
    )
    assert got == {
        "node_id": "a", "members": {"a": "127.0.0.1:7401", "b": "127.0.0.1:7402", "c": "127.0.0.1:7403"},
        "bind": "127.0.0.1:0", "algorithm": "raft", "election_timeout": (0.2, 0.4), "heartbeat_interval": 0.04,
        "data_dir": str(tmp_path), "secret": b"0123456789abcdef", "cluster": "demo", "pre_vote": False,
        "check_quorum": True, "max_clock_drift": 0.1, "priority": 3, "seed": 7,
    }
    assert parse_node("--election-timeout", "0.2,0.4")["election_timeout"] == (0.2, 0.4)
    assert parse_node("--no-check-quorum", "--pre-vote")["check_quorum"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quorate.Node(**got)  # the constructor takes every one of them as it is


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--algorithm", "paxos"], ["--algorithm", "paxos"]),
        (["--priority", "1.5"], ["--priority", "priority"]),
        (["--seed", "many"], ["--seed", "many"]),
        (["--max-clock-drift", "0.6"], ["--max-clock-drift", "max_clock_drift"]),
        (["--election-timeout", "0.3,0.2"], ["--election-timeout", "election_timeout"]),
        (["--election-timeout", "0.1", "0.2", "0.3"], ["--election-timeout", "pair"]),
        (["--heartbeat-interval", "soon"], ["--heartbeat-interval", "soon"]),
        (["--bind", "nowhere"], ["--bind", "nowhere"]),
        (["--cluster", ""], ["--cluster"]),
        (["--id", "z"], ["--id", "z"]),
        (["--member", "b=nowhere"], ["--member", "nowhere"]),
    ],
)
def test_a_value_the_constructor_refuses_is_reported_with_its_option(tmp_path, extra, needles):
    line = run_failing_node(tmp_path, *extra)
    for needle in needles:
        assert needle in line, line


def test_node_runs_with_every_option_given(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"0123456789abcdef")
    proc = subprocess.Popen(
        node_command(
            tmp_path, "--bind", "127.0.0.1:0", "--algorithm", "raft", "--election-timeout", "0.2,0.4",
            "--heartbeat-interval", "0.04", "--secret-file", str(secret), "--cluster", "demo", "--no-pre-vote",
            "--no-check-quorum", "--max-clock-drift", "0.1", "--priority", "2", "--seed", "5",
        ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        started = read_json_line(proc, 60)
        assert started["kind"] == "started" and not started["address"].endswith(":0"), started
        deadline = time.monotonic() + 60
        while read_json_line(proc, max(deadline - time.monotonic(), 0.1))["kind"] != "elected":
            pass
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stderr is not None and proc.stdout is not None
        proc.stderr.close()
        proc.stdout.close()
