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
