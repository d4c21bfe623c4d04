"""The stubs: mypy --strict accepts a typed usage example, and stubtest finds the stubs faithful."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent

mypy = pytest.importorskip("mypy", reason="mypy is a test dependency: pip install '.[test]'")


def test_typed_usage_example_runs():
    done = subprocess.run([sys.executable, str(HERE / "typed_usage.py")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_mypy_strict_accepts_the_typed_usage_example():
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(HERE / "typed_usage.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_stubtest_finds_the_stubs_match_the_extension_module():
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "quorate._core"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
