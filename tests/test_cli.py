"""The command line, run as a newcomer would."""

from __future__ import annotations

import subprocess
import sys


def test_live_demo_elects_kills_the_leader_and_re_elects_on_loopback():
    done = subprocess.run([sys.executable, "-m", "quorate", "demo"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("elected leader of term") >= 2
    assert "failover:" in out and "ms after the kill" in out
    assert "healed: every node follows" in out


def test_simulated_demo_elects_fails_over_and_reports_a_clean_safety_check():
    done = subprocess.run(
        [sys.executable, "-m", "quorate", "demo", "--simulated"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("elected leader of term") >= 3
    assert "failover took" in out
    assert "stepped down" in out
    assert "safety checker: no violations" in out


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
import time  # noqa: E402
import urllib.request  # noqa: E402

import pytest  # noqa: E402


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
