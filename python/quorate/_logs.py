"""Log forwarding: the Rust side's log records reach Python `logging` (logger "quorate") on one
Python thread, started with the first node."""

from __future__ import annotations

import logging
import threading
from typing import Optional

from ._core import _take_log_records

_log_forwarder: Optional[threading.Thread] = None
_log_forwarder_lock = threading.Lock()


def _forward_logs() -> None:
    """Moves the Rust side's log records into the "quorate" logger, on this one Python thread."""
    while True:
        for levelno, target, message in _take_log_records(1.0):
            name = "quorate" if target in ("quorate", "") else "quorate." + target.split("::", 1)[-1].replace("::", ".")
            logging.getLogger(name).log(levelno, "%s", message)


def ensure_log_forwarder() -> None:
    """Starts the forwarding thread unless it runs."""
    global _log_forwarder
    with _log_forwarder_lock:
        if _log_forwarder is None or not _log_forwarder.is_alive():
            _log_forwarder = threading.Thread(target=_forward_logs, name="quorate-logs", daemon=True)
            _log_forwarder.start()


def forget_log_forwarder() -> None:
    """In a forked child: the parent's thread did not survive the fork; the next node starts one."""
    global _log_forwarder
    _log_forwarder = None
