"""The exceptions of quorate. Defined in Python so ConfigError can also be a ValueError; the Rust
engine raises these same classes."""

from __future__ import annotations

__all__ = [
    "QuorateError",
    "ConfigError",
    "NotLeaderError",
    "NodeStoppedError",
    "LeadershipLost",
    "SubscriptionClosed",
    "SafetyViolation",
]


class QuorateError(Exception):
    """Base class of every error quorate raises on purpose."""


class ConfigError(QuorateError, ValueError):
    """A bad argument; the message names the argument and the rule it broke."""


class NotLeaderError(QuorateError):
    """An operation that only a leader may do was asked of a node that does not lead."""


class NodeStoppedError(QuorateError):
    """The node is not running, or stopped while the caller waited on it (for example in
    `wait_until_leading`). `start()` it again, or give up."""


class LeadershipLost(QuorateError):
    """This node no longer leads in the term the work was started under: the lease ran out, a
    higher term appeared, it resigned, or the node stopped, crashed or lost its storage. Work
    guarded by that leadership must stop; its fencing token is stale.

    `term` is the term of the lost leadership; `reason` why it ended, when known ("lost_lease",
    "higher_term", "resigned", "stopped", "crashed", "storage")."""

    def __init__(self, message: str, term: "int | None" = None, reason: "str | None" = None) -> None:
        super().__init__(message)
        self.term = term
        self.reason = reason


class SubscriptionClosed(QuorateError):
    """`Subscription.get()` on a subscription that is closed (by `close()` or because the node
    stopped) and has no event left."""


class SafetyViolation(QuorateError, AssertionError):
    """The simulator's safety checker saw a guarantee broken; the message names the first one."""
