"""mkdocs hook: replaces `<!-- cli-help: NAME -->` in a page with the live output of
`python -m quorate NAME --help`, so the CLI page cannot drift from the command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

from mkdocs.exceptions import PluginError

_MARK = re.compile(r"<!-- cli-help: ([a-z]+) -->")


def _help(command: str) -> str:
    env = dict(os.environ, COLUMNS="100")
    done = subprocess.run(
        [sys.executable, "-m", "quorate", command, "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    if done.returncode != 0:
        raise PluginError(f"`python -m quorate {command} --help` failed: {done.stderr.strip()}")
    return "```text\n" + done.stdout.rstrip() + "\n```"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return _MARK.sub(lambda m: _help(m.group(1)), markdown)
