"""LogViewer: the logs of containers or services as one table, filtered, optionally followed.

Each refresh reads ``ops.logs(target, since=..., grep=...)`` for every target and merges the
lines in time order (:func:`opskit.widgets.tables.merge_logs`); every line is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..ops import Ops
from .base import Ticker, View
from .tables import log_table, merge_logs

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SINCE", "STREAMS", "LogViewer"]

STREAMS = (("both", ""), ("stdout", "stdout"), ("stderr", "stderr"))
SINCE = (("1 min", "1m"), ("5 min", "5m"), ("15 min", "15m"), ("1 h", "1h"), ("24 h", "24h"),
         ("all", ""))


class LogViewer(View):
    """``docker logs -t`` of one or more targets, merged.

    Args:
        ops: the connection.
        targets: a container, a service, or a list of them.
        since: the initial window (a value of :data:`SINCE`: ``"15m"``, ``""`` for all).
        limit: the most lines shown (the newest).
        follow_every: seconds between two reads while following.

    Attributes:
        pattern: the regex ``Text`` (lines that match are kept).
        stream: the stream ``Dropdown``; since: the window ``Dropdown``.
        follow: the ``ToggleButton`` that re-reads every ``follow_every`` seconds.
        table: the ``HTML`` of the lines; frame: the lines shown, as a frame.
    """

    def __init__(self, ops: Ops, targets: str | Sequence[str], *, since: str = "15m",
                 limit: int = 500, follow_every: float = 2.0) -> None:
        super().__init__()
        self.ops = ops
        self.targets = [targets] if isinstance(targets, str) else list(targets)
        self.limit = limit
        self.frame: pd.DataFrame | None = None
        self.pattern = widgets.Text(description="regex", placeholder="error|warn",
                                    continuous_update=False)
        self.stream = widgets.Dropdown(description="stream", options=STREAMS, value="")
        self.since = widgets.Dropdown(description="since", options=SINCE,
                                      value=since if since in dict(SINCE).values() else "15m")
        self.follow = widgets.ToggleButton(description="follow", icon="play", value=False)
        self.refresh_button = widgets.Button(description="refresh", icon="refresh")
        self.table = widgets.HTML()
        self.buttons = [self.refresh_button]
        self._ticker = Ticker(follow_every, self.guard(self.refresh))
        self.refresh_button.on_click(self.guard(self.refresh))
        for control in (self.pattern, self.stream, self.since):
            control.observe(lambda _: self.guard(self.refresh)(), names="value")
        self.follow.observe(lambda _: self._follow_changed(), names="value")
        title = widgets.HTML(f"<b>logs of {', '.join(self.targets)}</b>")
        self.box = widgets.VBox([
            title, widgets.HBox([self.pattern, self.stream, self.since]),
            widgets.HBox([self.follow, self.refresh_button]), self.status, self.output,
            self.table])
        self.guard(self.refresh)()

    def refresh(self) -> None:
        """Read the logs again with the current filters and redraw the table."""
        since = self.since.value or None
        grep = self.pattern.value or None
        frames = [self.ops.logs(target, since=since, grep=grep) for target in self.targets]
        self.frame = merge_logs(frames, stream=self.stream.value or None, limit=self.limit)
        self.table.value = log_table(self.frame)
        self.messages.info(f"{len(self.frame)} line(s)" + (" (following)" if self.follow.value
                                                           else ""))

    def _follow_changed(self) -> None:
        if self.follow.value:
            self.follow.icon = "pause"
            self._ticker.start()
        else:
            self.follow.icon = "play"
            self._ticker.stop()

    def close(self) -> None:
        """Stop following."""
        self.follow.value = False
        self._ticker.stop()
