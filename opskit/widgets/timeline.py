"""TimelineView: what happened to each container, with opskit's own actions, in one figure.

The figure is :func:`opskit.figures.charts.timeline` of ``ops.events(since)``, the probe history of
the chosen containers (``ops.health(name)``) and ``ops.actions()``, shown in a
``go.FigureWidget`` and redrawn in place by the refresh button or a new window.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets

from ..figures.charts import timeline
from ..ops import Ops
from .base import View, replace_figure

__all__ = ["WINDOWS", "TimelineView"]

WINDOWS = (("10 min", "10m"), ("30 min", "30m"), ("1 h", "1h"), ("6 h", "6h"), ("24 h", "24h"))


class TimelineView(View):
    """The event and health timeline.

    Args:
        ops: the connection.
        containers: container names to draw (and whose probes to read); all by default
            (health bands then come from the engine's ``health_status`` events only).
        since: the initial window (a value of :data:`WINDOWS`).

    Attributes:
        figure: the ``go.FigureWidget``; window: the window ``Dropdown``.
    """

    def __init__(self, ops: Ops, containers: Sequence[str] | None = None, *,
                 since: str = "30m") -> None:
        import plotly.graph_objects as go

        super().__init__()
        self.ops = ops
        self.containers = list(containers) if containers else None
        self.window = widgets.Dropdown(description="window", options=WINDOWS,
                                       value=since if since in dict(WINDOWS).values() else "30m")
        self.refresh_button = widgets.Button(description="refresh", icon="refresh")
        self.figure = go.FigureWidget()
        self.buttons = [self.refresh_button]
        self.refresh_button.on_click(self.guard(self.refresh))
        self.window.observe(lambda _: self.guard(self.refresh)(), names="value")
        self.box = widgets.VBox([widgets.HBox([self.window, self.refresh_button]), self.status,
                                 self.output, self.figure])
        self.guard(self.refresh)()

    def refresh(self) -> None:
        """Read events, probes and actions again and redraw."""
        import pandas as pd

        with self.busy("reading events..."):
            events = self.ops.events(since=self.window.value)
            health = (pd.concat([self.ops.health(name) for name in self.containers],
                                ignore_index=True) if self.containers else None)
            actions = self.ops.actions()
            figure = timeline(events=events, health=health, actions=actions,
                              containers=self.containers)
            replace_figure(self.figure, figure)
        self.messages.info(f"{len(events)} event(s) in the last {self.window.label}; "
                           f"{len(actions)} action(s) journaled")
