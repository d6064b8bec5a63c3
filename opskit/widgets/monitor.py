"""StatsMonitor: live CPU, memory and network of containers in a plotly ``FigureWidget``.

The figure is :func:`opskit.figures.charts.stats_figure` of the collector's ``frame()``, redrawn in
place every ``every`` seconds on a timer thread (or by :meth:`StatsMonitor.refresh`). The
container list follows what the collector samples now: a container that starts appears at the
next refresh, one that stopped or was removed drops from the list and the figure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import ipywidgets as widgets

from ..figures.charts import stats_figure
from ..observe.collector import Collector
from ..ops import Ops
from .base import Ticker, View, replace_figure

__all__ = ["WINDOWS", "StatsMonitor"]

WINDOWS = (("1 min", "1min"), ("5 min", "5min"), ("15 min", "15min"), ("1 h", "1h"))


class StatsMonitor(View):
    """``docker stats`` as a live figure.

    Args:
        ops: the connection.
        collector: a collector (``ops.collector()``), started or not; without one, the monitor
            makes its own and stops it on :meth:`close`. A stopped collector given here is
            started, and left running on close (it is the caller's).
        window: how much history to draw (``"5min"``, ``"1h"``, ...).
        every: seconds between two redraws.
        autostart: start the timer now (tests call :meth:`refresh` instead).

    Attributes:
        figure: the ``go.FigureWidget``.
        pause: the pause/resume ``ToggleButton``; window: the window ``Dropdown``.
        containers: the ``SelectMultiple`` of names (none selected: draw all).
    """

    def __init__(self, ops: Ops, collector: Collector | None = None, window: str = "5min", *,
                 every: float = 2.0, autostart: bool = True) -> None:
        import plotly.graph_objects as go

        super().__init__()
        self.ops = ops
        self._owned = collector is None
        self.collector = collector if collector is not None else ops.collector()
        if not self.collector.running:
            self.guard(self.collector.start)()
        windows = list(WINDOWS) + ([(window, window)] if window not in dict(WINDOWS).values()
                                   else [])
        self.window = widgets.Dropdown(description="window", options=windows, value=window)
        self.pause = widgets.ToggleButton(description="pause", icon="pause", value=False)
        self.containers = widgets.SelectMultiple(description="containers", options=[], rows=5)
        self.refresh_button = widgets.Button(description="refresh", icon="refresh")
        self.figure = go.FigureWidget()
        self.buttons = [self.refresh_button]
        self._updating = False
        self._lock = threading.Lock()
        self._ticker = Ticker(every, self._tick)
        self.refresh_button.on_click(self.guard(self.refresh))
        self.pause.observe(lambda _: self._paused_changed(), names="value")
        for control in (self.window, self.containers):
            control.observe(lambda _: self._changed(), names="value")
        self.box = widgets.VBox([
            widgets.HBox([self.window, self.pause, self.refresh_button]),
            self.containers, self.status, self.output, self.figure])
        self.guard(self.refresh)()
        if autostart:
            self._ticker.start()

    def names(self) -> list[str]:
        """The containers that can be drawn: those sampled now, else those in the frame."""
        if self.collector.running:
            return list(self.collector.containers)
        frame = self.collector.frame()
        return sorted({str(n) for n in frame["name"]}) if not frame.empty else []

    def refresh(self) -> None:
        """Redraw the figure from the collector's rows (also while paused)."""
        with self._lock:  # the timer thread and a click may both redraw
            self._redraw()

    def _redraw(self) -> None:
        names = self.names()
        chosen = tuple(n for n in self.containers.value if n in names)
        self._updating = True
        try:
            if list(self.containers.options) != names:
                self.containers.options = names
            self.containers.value = chosen
        finally:
            self._updating = False
        frame = self.collector.frame()
        shown: Sequence[str] = chosen or names
        figure = stats_figure(frame, containers=shown, window=self.window.value)
        replace_figure(self.figure, figure)
        self.messages.info(f"{len(shown)} container(s), {len(frame)} rows; updated "
                           f"{time.strftime('%H:%M:%S')}"
                           + (" (paused)" if self.pause.value else ""))
        if self.collector.error is not None:  # the collector's last background error
            self.messages.error(self.collector.error, append=True)

    def _tick(self) -> None:
        if not self.pause.value:
            self.guard(self.refresh)()

    def _changed(self) -> None:
        if not self._updating:
            self.guard(self.refresh)()

    def _paused_changed(self) -> None:
        self.pause.description = "resume" if self.pause.value else "pause"
        self.pause.icon = "play" if self.pause.value else "pause"

    def start(self) -> None:
        """Start redrawing on the timer."""
        self._ticker.start()

    def close(self) -> None:
        """Stop the timer, and the collector when the monitor made it."""
        self._ticker.stop()
        if self._owned:
            self.collector.stop()
