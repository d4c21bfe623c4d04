"""The exceptions of quorate. Defined in Python so ConfigError can also be a ValueError; the Rust
engine raises these same classes."""

from __future__ import annotations

__all__ = ["QuorateError", "ConfigError", "NotLeaderError", "SafetyViolation"]


class QuorateError(Exception):
    """Base class of every error quorate raises on purpose."""


class ConfigError(QuorateError, ValueError):
    """A bad argument; the message names the argument and the rule it broke."""


class NotLeaderError(QuorateError):
    """An operation that only a leader may do was asked of a node that does not lead."""


class SafetyViolation(QuorateError, AssertionError):
    """The simulator's safety checker saw a guarantee broken; the message names the first one."""
