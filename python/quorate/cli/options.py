"""The options of ``quorate node``: one row per argument of ``Node(...)``, from which the argparse
options are generated.

A row holds only what is the command line's own business: the option's spelling, its metavar,
its help, and how its text becomes the value handed to ``Node``. The default shown in ``--help``
is read from ``Node.__init__``'s signature and never written here; an option left out is not
passed at all, so the constructor's own default applies. Nothing here checks a value that the
constructor checks: text that reads as a number becomes one, anything else is passed on as it is,
and the constructor's ConfigError (naming its argument and the rule) is reported with the option
that carried the value (see :func:`name_the_option`).
"""

from __future__ import annotations

import argparse
import inspect
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from ..errors import ConfigError
from ..node import Node
from ..secret import read_secrets

__all__ = [
    "NodeOption", "NODE_OPTIONS", "NodeHelpFormatter", "add_node_options", "node_arguments", "name_the_option",
    "constructor_parameters",
]


@dataclass(frozen=True)
class NodeOption:
    """One argument of ``Node(...)`` on the command line."""

    param: str  #: the constructor's argument name
    flag: str  #: the option, e.g. "--data-dir"; for a switch, "--pre-vote" (argparse adds "--no-pre-vote")
    kind: str  #: "text" | "number" | "pair" | "switch" | "members" | "priorities" | "secret_file"
    metavar: Optional[str]
    help: str


NODE_OPTIONS: Tuple[NodeOption, ...] = (
    NodeOption("node_id", "--id", "text", "ID", "this node's id, one of the --member ids"),
    NodeOption("members", "--member", "members", "ID=HOST:PORT",
               "a member of the group, the option repeated for every member, this node included"),
    NodeOption("bind", "--bind", "text", "HOST:PORT",
               "listen address (port 0: any free port); None: this node's --member address"),
    NodeOption("algorithm", "--algorithm", "text", "NAME", "the election algorithm"),
    NodeOption("election_timeout", "--election-timeout", "pair", None,
               "randomized election timeout range in seconds, as MIN MAX or MIN,MAX"),
    NodeOption("heartbeat_interval", "--heartbeat-interval", "number", "SECONDS", "seconds between a leader's heartbeats"),
    NodeOption("data_dir", "--data-dir", "text", "DIR",
               "directory for the durable term and vote; None: memory only, unsafe across restarts"),
    NodeOption("secret", "--secret-file", "secret_file", "PATH",
               "file holding the shared cluster secret (>= 16 bytes; one trailing newline is not part of it), "
               "or one secret per line for a rotation (the first signs, every one is accepted); "
               "read with quorate.read_secrets; None: frames are not authenticated"),
    NodeOption("cluster", "--cluster", "text", "NAME", "cluster name; frames of another cluster are refused"),
    NodeOption("pre_vote", "--pre-vote", "switch", None,
               "pre-vote: a node raises its term only if a majority would vote for it"),
    NodeOption("check_quorum", "--check-quorum", "switch", None,
               "check-quorum: a leader steps down when a majority stops answering"),
    NodeOption("max_clock_drift", "--max-clock-drift", "number", "RATE",
               "assumed bound on the clock-rate difference between nodes, for the leader lease"),
    NodeOption("priority", "--priority", "number", "N",
               "this node's bully/ring priority: rank is (priority, id); raft ignores it; None: its --priorities entry or 0"),
    NodeOption("priorities", "--priorities", "priorities", "ID=N",
               "a member's bully/ring priority, the option repeated per member (the same on every node; not given: 0)"),
    NodeOption("seed", "--seed", "number", "N", "fixes this node's timeout randomness (tests, demos); None: random"),
)

_BY_PARAM: Dict[str, NodeOption] = {o.param: o for o in NODE_OPTIONS}


def constructor_parameters() -> Dict[str, inspect.Parameter]:
    """``Node.__init__``'s parameters but ``self``, by name: the source of every default shown."""
    params = dict(inspect.signature(Node.__init__).parameters)
    params.pop("self", None)
    return params


def _shown(default: Any) -> str:
    """A default as the command line spells it (a pair as "MIN MAX")."""
    if isinstance(default, tuple):
        return " ".join(str(v) for v in default)
    return str(default)


class _Pair(argparse.Action):
    """``--election-timeout MIN MAX`` or ``MIN,MAX``: stores the tokens; node_arguments builds the pair."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        setattr(namespace, self.dest, list(values))


class NodeHelpFormatter(argparse.HelpFormatter):
    """Shows a pair option as ``MIN MAX`` (argparse would write ``MIN [MAX ...]`` for nargs="+")."""

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        if isinstance(action, _Pair):
            return "MIN MAX"
        return super()._format_args(action, default_metavar)


def add_node_options(parser: argparse.ArgumentParser) -> None:
    """Adds one option per row of NODE_OPTIONS whose argument ``Node.__init__`` takes. The help of
    each shows the constructor's default; an option not given is left out of the namespace."""
    params = constructor_parameters()
    for row in NODE_OPTIONS:
        param = params.get(row.param)
        if param is None:  # tests/test_cli.py keeps the table and the constructor in step
            continue
        required = param.default is inspect.Parameter.empty
        text = row.help + (" (required)" if required else f" (default: {_shown(param.default)})")
        options: Dict[str, Any] = {"dest": row.param, "help": text.replace("%", "%%")}
        if required:
            options["required"] = True
        else:
            options["default"] = argparse.SUPPRESS
        if row.kind == "switch":
            options["action"] = argparse.BooleanOptionalAction
        elif row.kind == "pair":
            options.update(action=_Pair, nargs="+")
        elif row.kind in ("members", "priorities"):
            options.update(action="append", metavar=row.metavar)
        else:
            options["metavar"] = row.metavar
        parser.add_argument(row.flag, **options)


def _number(text: str) -> Union[int, float, str]:
    """An int or a float if the text reads as one; otherwise the text itself, for the constructor
    to refuse with its own message."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _members(specs: Sequence[str]) -> Dict[str, str]:
    # Only the ID=... split is the command line's own: the addresses are the constructor's to check.
    members: Dict[str, str] = {}
    for spec in specs:
        node_id, sep, address = spec.partition("=")
        if not sep:
            raise ConfigError(f"--member: expected ID=HOST:PORT, got {spec!r}")
        if node_id in members:
            raise ConfigError(f"--member: {node_id!r} is given twice")
        members[node_id] = address
    return members


def _priorities(specs: Sequence[str]) -> Dict[str, Union[int, float, str]]:
    priorities: Dict[str, Union[int, float, str]] = {}
    for spec in specs:
        node_id, sep, value = spec.partition("=")
        if not sep:
            raise ConfigError(f"--priorities: expected ID=N, got {spec!r}")
        if node_id in priorities:
            raise ConfigError(f"--priorities: {node_id!r} is given twice")
        priorities[node_id] = _number(value)
    return priorities


def node_arguments(args: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments for ``Node(**...)`` from the options given (and only those)."""
    kwargs: Dict[str, Any] = {}
    for row in NODE_OPTIONS:
        if not hasattr(args, row.param):
            continue
        value = getattr(args, row.param)
        if row.kind == "number":
            value = _number(value)
        elif row.kind == "pair":
            value = tuple(_number(v) for token in value for v in token.split(","))
        elif row.kind == "members":
            value = _members(value)
        elif row.kind == "priorities":
            value = _priorities(value)
        elif row.kind == "secret_file":
            try:
                secrets = read_secrets(value)
                # One line is one secret, as read_secret gives it; more are a rotation list.
                value = secrets[0] if len(secrets) == 1 else secrets
            except ConfigError as e:
                raise ConfigError(f"{row.flag}: {e}") from None
        kwargs[row.param] = value
    return kwargs


_LEADING_NAME = re.compile(r"([a-z_]+)[:\[]")


def name_the_option(error: ConfigError) -> ConfigError:
    """The constructor's ConfigError ("seed: expected ...") with the option that carried the
    argument in front ("--seed: seed: expected ..."); other messages unchanged."""
    message = str(error)
    match = _LEADING_NAME.match(message)
    row = _BY_PARAM.get(match.group(1)) if match else None
    if row is None:
        return error
    return ConfigError(f"{row.flag}: {message}")

