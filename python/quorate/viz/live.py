"""`LiveView`: an ipywidgets view of a running cluster, with buttons per node; in virtual time it
also plays, steps and replays, and draws the messages in flight."""

from __future__ import annotations

import html
import io
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .._core import InFlight
from ..errors import ConfigError
from ..faults import Fault, FaultLog
from ..protocol import Cluster
from ._base import _FAULT_COLOR, ROLE_COLORS, _new_figure, _require
from .network import _draw_network, _NodeLook, _present_looks
from .spans import Span, _SimAt, role_spans
from .timeline import timeline

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LiveView"]


class LiveView:
    """An ipywidgets view of a running `LocalCluster` or a `Simulation`: the timeline, each
    node's role, and buttons per node.

    The buttons, one row per node (each also a method, e.g. `view.kill("n1")`):

    - kill, restart: crash the node, start it again from its kept state;
    - pause: freeze its engine (as SIGSTOP); heal resumes it;
    - isolate: cut it off from every other node; heal rejoins it (on a Simulation, heal lifts
      every isolation and partition: the simulator heals links only as a whole);
    - heal: undo the node's pause, isolation, drop and clock rate;
    - timeout: force its election timeout, as `FaultLog.force_timeout` does: a leader resigns
      and hands off, a follower gets the leader's TimeoutNow (`transfer_leadership`), so it
      campaigns at once; with no leader, a simulated node campaigns now (`Simulation.campaign`).

    On a LocalCluster the picture redraws every `interval` seconds once displayed (every 2 s when
    nothing changed for a while; the "live" toggle stops it), showing the last `window` seconds.
    On a Simulation, play runs virtual time at `speed` virtual seconds per wall second (the
    slider), pause stops, step advances `step_seconds`; the time slider replays: it moves a
    cursor through the past and the roles shown are those at the cursor.

    On a Simulation the picture also has a second panel, drawn as `network` draws it (RaftScope's
    picture): the nodes on a circle coloured by role, and every message in flight
    (`Simulation.in_flight()`) as a triangle moving from sender to receiver, placed by its
    progress and coloured by kind. Messages move visibly when the latency is a fair part of the
    election timeout and time runs slowly: e.g. `Simulation(5, latency=(0.01, 0.02))` with
    `speed=0.02` and `step_seconds=0.002`. While replaying the past the panel shows the roles at
    the cursor but no messages: the simulator keeps no record of past messages, and the view does
    not make one up. A LocalCluster has no such panel: its messages travel over real sockets and
    nothing records them in flight.

    `view.faults` is the `FaultLog` of everything the buttons did (pass your own `faults=` to
    share one with your code). `view.widget` is the widget to display (showing `view` in a
    notebook does that); `view.figure` is the matplotlib Figure drawn last, and
    `view.shown_messages` the `InFlight` messages it shows (empty for a LocalCluster and during a
    replay). `close()` stops its threads. ImportError without ipywidgets or matplotlib."""

    ACTIONS: Tuple[str, ...] = ("kill", "restart", "pause", "isolate", "heal", "timeout")

    def __init__(
        self,
        target: Cluster,
        *,
        faults: Optional[FaultLog] = None,
        interval: float = 0.3,
        window: Optional[float] = 20.0,
        speed: float = 0.5,
        step_seconds: float = 0.05,
    ) -> None:
        widgets = _require("ipywidgets")
        _require("matplotlib")
        if not isinstance(target, Cluster):
            raise ConfigError(f"target: expected a LocalCluster or a Simulation, got {type(target).__name__}")
        self.target = target
        self.faults = faults if faults is not None else FaultLog(target)
        self.interval = float(interval)
        self.window = window
        self.step_seconds = float(step_seconds)
        # In virtual time the view runs the clock itself (play, step, replay) and draws the messages
        # in flight; a cluster on the host's clock runs by itself and is only watched.
        self.simulated = target.virtual_time
        # One lock for the target (a Simulation must not run and take a fault at once) and the drawing.
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._playing = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._cursor: Optional[float] = None  # replay: the time shown, None for the present
        self._setting_slider = False
        self._last_change = time.monotonic()
        self._last_seen: Tuple[int, int] = (-1, -1)
        self.draws = 0
        self.errors: List[str] = []
        self.figure: Optional["Figure"] = None
        self.shown_messages: List[InFlight] = []

        members = self.faults.members
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%"))
        self.roles = widgets.HTML()
        self.message = widgets.HTML()
        self.buttons: Dict[str, Dict[str, Any]] = {}
        rows = []
        for node in members:
            row: Dict[str, Any] = {}
            for action in self.ACTIONS:
                b = widgets.Button(description=action, layout=widgets.Layout(width="auto"),
                                   tooltip=f"{action} {node}")
                b.on_click(self._clicker(action, node))
                row[action] = b
            self.buttons[node] = row
            rows.append(widgets.HBox([widgets.Label(node, layout=widgets.Layout(width="3em"))] + list(row.values())))
        controls: List[Any] = []
        if self.simulated:
            self.play_button = widgets.Button(description="play", icon="play")
            self.pause_button = widgets.Button(description="pause", icon="pause")
            self.step_button = widgets.Button(description=f"step {self.step_seconds:g} s", icon="step-forward")
            self.speed_slider = widgets.FloatLogSlider(value=speed, base=10, min=-3, max=1, step=0.1,
                                                       description="speed", readout_format=".3f")
            self.time_slider = widgets.FloatSlider(value=self._now(), min=0.0, max=max(self._now(), 1e-3),
                                                   step=0.001, description="time", readout_format=".3f",
                                                   continuous_update=True, layout=widgets.Layout(width="60%"))
            self.play_button.on_click(lambda _: self.play())
            self.pause_button.on_click(lambda _: self.pause_time())
            self.step_button.on_click(lambda _: self.step())
            self.time_slider.observe(self._on_time, names="value")
            controls = [widgets.HBox([self.play_button, self.pause_button, self.step_button, self.speed_slider]),
                        self.time_slider]
        else:
            self.live_toggle = widgets.ToggleButton(value=True, description="live", icon="refresh")
            controls = [self.live_toggle]
        self.widget = widgets.VBox(controls + [self.image, self.roles] + rows + [self.message])
        self.refresh()

    # ----- the button actions (each is also what a click does) -----

    def _clicker(self, action: str, node: str) -> Callable[[Any], None]:
        return lambda _button: self.act(action, node)

    def act(self, action: str, node: str) -> None:
        """Does one button's action on `node` (the same as clicking it); errors are shown in the
        view's message line and kept in `errors`, never raised into the notebook's event loop."""
        if action not in self.ACTIONS:
            raise ConfigError(f"action: one of {self.ACTIONS}, got {action!r}")
        try:
            with self._lock:
                text = getattr(self, action)(node)
            self._say(text or f"{action} {node}")
        except Exception as e:  # noqa: BLE001 - a widget callback must not raise into the kernel
            self.errors.append(f"{action} {node}: {e}")
            self._say(f"{action} {node} failed: {e}", error=True)
        self._last_change = time.monotonic()
        self.refresh()

    def kill(self, node: str) -> None:
        """The kill button: crashes `node` (`FaultLog.kill`)."""
        with self._lock:
            self.faults.kill(node)

    def restart(self, node: str) -> None:
        """The restart button: starts a killed `node` again from its kept state."""
        with self._lock:
            self.faults.restart(node)

    def pause(self, node: str) -> None:
        """The pause button: freezes `node`'s engine until heal."""
        with self._lock:
            self.faults.pause(node)

    def isolate(self, node: str) -> None:
        """The isolate button: cuts `node` off from every other node until heal."""
        with self._lock:
            self.faults.isolate(node)

    def heal(self, node: str) -> None:
        """The heal button: undoes `node`'s pause, isolation, drop and clock rate
        (`FaultLog.heal(node)`)."""
        with self._lock:
            self.faults.heal(node)

    def timeout(self, node: str) -> str:
        """The timeout button: fires `node`'s election timeout now (`FaultLog.force_timeout`);
        returns what was done."""
        with self._lock:
            return self.faults.force_timeout(node)

    # ----- virtual time (a Simulation) -----

    def _sim(self) -> Any:
        if not self.simulated:
            raise ConfigError("this view watches a LocalCluster: virtual time is for a Simulation")
        return self.target

    def step(self, seconds: Optional[float] = None) -> None:
        """Advances the simulation by `seconds` (default `step_seconds`) of virtual time."""
        sim = self._sim()
        with self._lock:
            sim.run_for(self.step_seconds if seconds is None else seconds)
        self._cursor = None
        self._last_change = time.monotonic()
        self.refresh()

    def play(self) -> None:
        """Runs virtual time at the speed slider's rate until `pause_time()`."""
        self._sim()
        self._cursor = None
        self._playing.set()
        self.start()

    def pause_time(self) -> None:
        """Stops playing (the simulation keeps its state)."""
        self._playing.clear()

    @property
    def playing(self) -> bool:
        """True while virtual time plays in the background."""
        return self._playing.is_set()

    def show_time(self, at: Optional[float]) -> None:
        """Replay: shows the timeline up to `at` (virtual seconds) and the roles then; None
        returns to the present."""
        self._cursor = None if at is None else float(at)
        self.refresh()

    def _on_time(self, change: Dict[str, Any]) -> None:
        if self._setting_slider:
            return
        self.pause_time()
        value = float(change["new"])
        self.show_time(None if value >= self._now() - 1e-9 else value)

    # ----- drawing -----

    def _now(self) -> float:
        return self.faults.now()

    def _say(self, text: str, error: bool = False) -> None:
        color = _FAULT_COLOR if error else "#333"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _roles_html(self, spans: Dict[str, List[Span]], at: float) -> str:
        cells = []
        for node, node_spans in spans.items():
            role = next((s for s in node_spans if s.start <= at < s.end), node_spans[-1] if node_spans else None)
            name = role.role if role is not None else "?"
            term = role.term if role is not None else 0
            cells.append(
                f'<span style="background:{ROLE_COLORS.get(name, "#ddd")};padding:2px 6px;margin-right:6px;'
                f'border-radius:3px">{html.escape(node)}: {name}, term {term}</span>'
            )
        return "".join(cells)

    def refresh(self) -> None:
        """Redraws the timeline now (the background thread calls this a few times a second)."""
        with self._lock:
            try:
                if self.simulated:
                    sim = self._sim()
                    now = sim.now
                    at = now if self._cursor is None else min(self._cursor, now)
                    events = [e for e in sim.events if e.at <= at]
                    faults = [f for f in self.faults.entries if f.start <= at]
                    faults = [Fault(f.start, f.end if f.end is not None and f.end <= at else None, f.node, f.text, f.kind)
                              for f in faults]
                    src: Any = _SimAt(events, sim.members, at)
                    end = at
                    title = f"virtual time {now:.3f} s" + (f", replaying {at:.3f} s" if self._cursor is not None else "")
                else:
                    src = self.target
                    faults = self.faults.entries
                    end = None
                    title = "LocalCluster" + ("" if self.target.running else " (stopped)")
                spans = role_spans(src, faults=faults, end=end)
                if self.simulated:
                    fig = _new_figure((13.0, 1.4 + 0.6 * max(len(spans), 3)))
                    grid = fig.add_gridspec(1, 2, width_ratios=[3.0, 1.1])
                    timeline(src, faults=faults, end=end, window=self.window, title=title,
                             ax=fig.add_subplot(grid[0]))
                    self._draw_messages(fig.add_subplot(grid[1]), spans, at)
                else:
                    fig = timeline(src, faults=faults, end=end, window=self.window, title=title)
                self.figure = fig
                buf = io.BytesIO()
                fig.savefig(buf, format="png", dpi=72)
                self.image.value = buf.getvalue()
                last = max((s[-1].end for s in spans.values() if s), default=0.0)
                self.roles.value = self._roles_html(spans, last - 1e-9)
                if self.simulated:
                    self._setting_slider = True
                    try:
                        self.time_slider.max = max(self._now(), 1e-3)
                        if self._cursor is None:
                            self.time_slider.value = self._now()
                    finally:
                        self._setting_slider = False
                self.draws += 1
            except Exception as e:  # noqa: BLE001 - a redraw must never kill the view
                self.errors.append(f"refresh: {e}")
                self._say(f"redraw failed: {e}", error=True)

    def _draw_messages(self, ax: "Axes", spans: Dict[str, List[Span]], at: float) -> None:
        """The network panel: the present with its messages in flight, or the roles at a replayed
        moment (with no messages: none are recorded)."""
        sim = self._sim()
        if self._cursor is None or at >= sim.now:
            messages = sim.in_flight()
            looks = _present_looks(sim)
            title = f"{len(messages)} message{'' if len(messages) == 1 else 's'} in flight"
        else:
            messages = []
            looks = {}
            for node, node_spans in spans.items():
                span = next((x for x in node_spans if x.start <= at < x.end), node_spans[-1] if node_spans else None)
                if span is not None:
                    looks[node] = _NodeLook(span.role, span.term)
            title = "replay: messages in flight are\nshown only at the present"
        self.shown_messages = list(messages)
        _draw_network(ax, sim.members, looks, messages, sim.now, title)

    # ----- the background thread -----

    def start(self) -> None:
        """Starts the background thread (redraws a running cluster; plays a simulation). Showing
        the view in a notebook starts it."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="quorate-liveview", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops the background thread (waits at most 2 s) and stops playing; the widgets stay."""
        self._playing.clear()
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(2.0)

    def _changed(self) -> bool:
        seen = (len(self.target.events), len(self.faults.entries))
        if seen != self._last_seen:
            self._last_seen = seen
            self._last_change = time.monotonic()
        return time.monotonic() - self._last_change < 5.0

    def _run(self) -> None:
        last_draw = 0.0
        while not self._stop.wait(self.interval):
            if self.simulated:
                if not self._playing.is_set():
                    continue
                with self._lock:
                    self._sim().run_for(self.interval * float(self.speed_slider.value))
                self.refresh()
                continue
            if not self.target.running:
                self.refresh()
                return
            if not self.live_toggle.value:
                continue
            now = time.monotonic()
            if self._changed() or now - last_draw >= 2.0:
                self.refresh()
                last_draw = now

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]
        if not self.simulated:
            self.start()

    def __repr__(self) -> str:
        kind = "Simulation" if self.simulated else "LocalCluster"
        return f"<LiveView of a {kind}, {len(self.buttons)} nodes, {self.draws} draws>"
