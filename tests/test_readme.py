"""The README's code runs as written: a newcomer's first copy-paste must work."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def section_code(heading: str) -> str:
    text = README.read_text()
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start : end if end != -1 else None], re.S)
    assert len(blocks) == 1, f"one python block under {heading!r}"
    return blocks[0]


def test_running_work_only_on_the_leader_runs_as_written(tmp_path):
    script = tmp_path / "leader_work.py"
    script.write_text(section_code("Running work only on the leader"))
    out = subprocess.run([sys.executable, "-W", "ignore", str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    tokens = re.search(r"fencing tokens written: \[(.*)\]", out.stdout)
    assert tokens, out.stdout
    values = [int(t) for t in tokens.group(1).split(",")]
    assert len(values) >= 2 and values == sorted(values), values
