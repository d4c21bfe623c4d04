"""The deterministic simulator: the real election engine in virtual time.

`Simulation` is a `quorate.Cluster`: the same verbs as `LocalCluster` (`kill`, `restart`,
`pause`, `resume`, `partition`, `isolate`, `heal`, `set_clock_rate`, ...), `status()` as a
`quorate.Status`, and the one `leader()` rule. The engine room is the Rust class
`quorate._core._Simulation`; this subclass adds the interface and the presentation (the progress
bar of long runs, `repr` and the notebook table), which belong in Python.
"""

from __future__ import annotations

import contextlib
import html
import importlib
import time
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from ._core import InFlight, _Simulation
from ._core import failover_trials as _failover_trials
from .errors import ConfigError
from .status import Status

__all__ = ["Simulation", "InFlight", "failover_trials"]

# Wall time between two checks for Ctrl-C (and progress updates) during a long run: at least every
# 100 ms, as a notebook user expects of Ctrl-C / "interrupt the kernel".
_SLICE = 0.05
# A run that has taken this much wall time shows a tqdm progress bar, if tqdm is installed.
_PROGRESS_AFTER = 2.0


def _rate_text(rate: float) -> str:
    """A clock rate as `Faults.active()` writes it (Rust's float text: 2.0 is "2")."""
    text = repr(float(rate))
    return text[:-2] if text.endswith(".0") else text


class _Progress:
    """A tqdm progress bar over virtual seconds, shown once a run has taken `_PROGRESS_AFTER` of
    wall time, when `tqdm` can be imported (`tqdm.auto`, so a notebook gets its widget). A failing
    tqdm never fails the run, but a KeyboardInterrupt or SystemExit raised in its code is passed
    on, never swallowed (they are not `Exception`s)."""

    def __init__(self, total: float, what: str) -> None:
        self.started = time.monotonic()
        self.total = total
        self.what = what
        self.bar: Any = None
        self.tried = False
        self.shown = 0.0

    def update(self, done: float) -> None:
        if self.bar is None and not self.tried and time.monotonic() - self.started >= _PROGRESS_AFTER:
            self.tried = True
            try:
                tqdm = importlib.import_module("tqdm.auto").tqdm
                self.bar = tqdm(total=self.total, unit="s", desc=self.what, leave=False)
            except Exception:  # noqa: BLE001 - an optional helper
                self.bar = None
        if self.bar is not None and done > self.shown:
            try:
                self.bar.update(done - self.shown)
                self.shown = done
            except Exception:  # noqa: BLE001 - an optional helper
                pass

    def close(self) -> None:
        bar, self.bar = self.bar, None
        if bar is not None:
            try:
                bar.close()
            except Exception:  # noqa: BLE001 - an optional helper
                pass


class Simulation(_Simulation):
    """The same election engine in virtual time: deterministic for a given seed and sequence of
    calls. A `quorate.Cluster`.

    `members` is a count (nodes n1..nN, default 5) or a sequence of ids. Times are seconds of
    virtual time (`now`, `Event.at`); nothing waits on the wall clock. `latency` is the (min, max)
    one-way message delay, `drop_rate` and `duplicate_rate` probabilities in [0, 1]; `algorithm`
    is "raft", "bully" or "ring"; `priorities` maps member ids to their bully/ring priority
    (others: 0); the other options are those of `quorate.Node`. Under bully and ring the safety
    check allows two coordinators at once (a partition), but never a shared or lowered fencing
    token. Raises ConfigError (a ValueError) for a bad argument, naming it. Long runs (`run_for`,
    `run_until_leader`, `wait_for_leader`) can be interrupted with Ctrl-C (within 100 ms of wall
    time; the simulation stays usable, at the instant reached) and show a tqdm progress bar after
    2 s of wall time when tqdm is installed.

    Renamed in 0.2 (the old spelling still works, with a DeprecationWarning, for one release):
    `crash` is `kill`, and `status()` returns a `quorate.Status` instead of a dict (reading it
    with `status(id)["role"]` warns)."""

    # ----- the Cluster interface ----------------------------------------------------------------

    @property
    def virtual_time(self) -> bool:
        """True: time moves only in `run_for` and the waits that run the simulation."""
        return True

    @property
    def running(self) -> bool:
        """True: a simulation's present is always `now`."""
        return True

    def run_for(self, seconds: float) -> None:
        """Advances virtual time by `seconds`, handling every timer and message due meanwhile;
        returns None. The GIL is released while it runs; Ctrl-C interrupts it within 100 ms of
        wall time (KeyboardInterrupt; the simulation stays usable, at the instant reached). A run
        that takes over 2 s of wall time shows a tqdm progress bar if tqdm is installed.
        ConfigError for a negative, non-finite or non-numeric `seconds`."""
        self._run(self._deadline("seconds", seconds), False, "Simulation.run_for")

    def run_until_leader(self, timeout: float) -> Optional[str]:
        """Runs until `leader()` names one, for at most `timeout` virtual seconds; returns its
        id, or None if there was none by then (returns at once if there already is one).
        Interruptible with Ctrl-C like `run_for`. ConfigError for a bad `timeout`."""
        self._run(self._deadline("timeout", timeout), True, "Simulation.run_until_leader")
        return self.leader()

    def wait_for_leader(self, timeout: Optional[float] = None) -> str:
        """As `run_until_leader`, but TimeoutError if no leader came within `timeout` virtual
        seconds. None: no limit (the far end of virtual time, about 292 years; if every node is
        down, nothing is left to happen and the clock jumps there)."""
        leader = self._run(self._deadline("timeout", timeout, True), True, "Simulation.wait_for_leader")
        if leader is None:
            raise TimeoutError(f"no leader within {timeout} virtual s: {self._summary()}")
        return leader

    def _run(self, until: int, until_leader: bool, what: str) -> Optional[str]:
        """Runs in slices of `_SLICE` wall seconds; between them Python sees Ctrl-C and the bar moves."""
        start = self.now
        progress = _Progress(max(until / 1e9 - start, 0.0), what)
        try:
            while not self._run_slice(until, until_leader, _SLICE):
                progress.update(self.now - start)
        finally:
            try:
                progress.update(self.now - start)  # where the run ended, Ctrl-C or not
            finally:
                progress.close()
        return self.leader() if until_leader else None

    def status(self, node_id: str) -> Status:
        """Node `node_id` now, as a `quorate.Status`: role ("stopped" while crashed), term,
        voted_for, leader, is_leader, fencing_token, lease_remaining (virtual seconds or None),
        health ("ok", or "stopped" while crashed) and faults ("paused", "clock_rate" as
        `Faults.active()` names them). A simulated node has no peer connections and counts no
        messages of its own: `peers` is empty, the per-node counters are 0 and
        `last_heartbeat_age` is None (the network's counters are in `stats`). ConfigError for an
        unknown id."""
        d = self._status(node_id)
        faults: Dict[str, str] = {}
        if d["paused"]:
            faults["paused"] = "true"
        if d["clock_rate"] != 1.0:
            faults["clock_rate"] = _rate_text(d["clock_rate"])
        return _SimStatus(
            node_id=d["node_id"], role=d["role"], term=d["term"], leader=d["leader"], voted_for=d["voted_for"],
            is_leader=d["is_leader"], fencing_token=d["fencing_token"], lease_remaining=d["lease_remaining"],
            last_heartbeat_age=None, peers={}, elections_started=0, elections_won=0, leader_changes=0,
            messages_sent=0, messages_received=0, messages_rejected=0, faults=faults,
            health="ok" if d["up"] else "stopped",
        )

    def statuses(self) -> Dict[str, Status]:
        """Every node's `Status`, by id."""
        return {i: self.status(i) for i in self.members}

    def set_drop_rate(self, rate: float, node_id: Optional[str] = None) -> None:
        """The probability in [0, 1] that the network drops each message from now on. The rate is
        the whole network's: ConfigError if a `node_id` is given, or for a rate outside [0, 1]."""
        if node_id is not None:
            raise ConfigError(
                f"node_id: a Simulation's drop rate is global; call set_drop_rate(rate) without a node, got {node_id!r}"
            )
        super().set_drop_rate(rate)

    def faults_for(self, seconds: float) -> "contextlib.AbstractContextManager[None]":
        """A block whose faults last `seconds` of virtual time: leaving it runs the simulation to
        the end of the window, then heals partitions and isolation, resumes paused nodes and
        restarts the nodes that were up on entry and crashed in it. A body that raises heals at
        once. ConfigError for a bad `seconds`."""
        if seconds is None:
            raise ConfigError("seconds: a fault window needs a number of seconds, got None")
        return self._window(self._deadline("seconds", seconds) / 1e9)

    @contextlib.contextmanager
    def _window(self, end: float) -> Iterator[None]:
        up_at_entry = [i for i in self.members if self.status(i).role != "stopped"]
        try:
            yield
            if self.now < end:
                self.run_for(end - self.now)
        finally:
            self.heal()
            for i in self.members:
                st = self.status(i)
                if "paused" in st.faults:
                    self.resume(i)
                if st.role == "stopped" and i in up_at_entry:
                    self.restart(i)

    # ----- old spellings ------------------------------------------------------------------------

    def crash(self, id: str) -> None:
        """Deprecated: `kill(id)`, the verb every `quorate.Cluster` uses."""
        warnings.warn("Simulation.crash() is now Simulation.kill()", DeprecationWarning, stacklevel=2)
        self.kill(id)

    # ----- presentation -------------------------------------------------------------------------

    def _summary(self) -> str:
        return ", ".join(
            f"{s.node_id}: {s.role} t{s.term} -> {s.leader}" for s in self.statuses().values()
        )

    def __repr__(self) -> str:
        """`Simulation(members=['n1', ...], now=1.234, leader='n3')`: virtual seconds and the
        leader (`leader()`) or None."""
        return f"Simulation(members={self.members!r}, now={self.now:.3f}, leader={self.leader()!r})"

    def _repr_html_(self) -> str:
        """A small HTML table for notebooks: each node's role, term, leader, lease and faults
        (crashed, paused, clock rate), under a caption with the virtual time and the leader."""
        esc = html.escape
        rows = []
        for s in self.statuses().values():
            faults = []
            if s.role == "stopped":
                faults.append("crashed")
            if "paused" in s.faults:
                faults.append("paused")
            if "clock_rate" in s.faults:
                faults.append(f"clock x{s.faults['clock_rate']}")
            lease = "" if s.lease_remaining is None else f"{s.lease_remaining:.3f}"
            style = ' style="font-weight:bold"' if s.is_leader else ""
            cells = (s.node_id, s.role, s.term, s.leader or "", lease, ", ".join(faults))
            rows.append(f"<tr{style}>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
        leader = self.leader()
        return (
            f"<table><caption>Simulation at {self.now:.3f} s (virtual), leader: {esc(str(leader))}</caption>"
            "<thead><tr><th>node</th><th>role</th><th>term</th><th>leader</th><th>lease left (s)</th>"
            f"<th>faults</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )


class _SimStatus(Status):
    """A simulated node's Status that still answers the dict reads of the old `status()`, with a
    DeprecationWarning (one release)."""

    def __repr__(self) -> str:
        return "Status" + super().__repr__()[len(type(self).__name__):]

    def __getitem__(self, key: str) -> Any:
        warnings.warn(
            f"Simulation.status() returns a quorate.Status now: read status(id).{key} "
            "(up: role != 'stopped'; paused and clock_rate: in faults)",
            DeprecationWarning,
            stacklevel=2,
        )
        if key == "up":
            return self.role != "stopped"
        if key == "paused":
            return "paused" in self.faults
        if key == "clock_rate":
            return float(self.faults.get("clock_rate", 1.0))
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None


def failover_trials(
    trials: int,
    members: Union[int, Sequence[str]] = 5,
    seed: int = 0,
    **simulation_options: Any,
) -> List[float]:
    """Crash the leader at a uniformly random point of its heartbeat interval, ``trials`` times.

    Each value is the time in seconds from the crash until a new leader holds its lease and is
    known to every live node (``math.inf`` for a trial in which none came within 100 maximum election timeouts).
    ``simulation_options`` are those of :class:`Simulation` (``election_timeout``, ``latency``, ...).
    Trial ``i`` uses a seed derived from ``(seed, i)``, so the list is reproducible.
    """
    template = Simulation(members, seed=seed, **simulation_options)
    return _failover_trials(trials, template)
