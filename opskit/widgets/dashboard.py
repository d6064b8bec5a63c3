"""Dashboard: the views in one ``ipywidgets.Tab``.

Tabs: containers (:class:`ContainerBoard`), stats (:class:`StatsMonitor`), timeline
(:class:`TimelineView`), deploy (:class:`DeployForm`), recovery (:class:`RecoveryPanel`, with a
watchdog) and chaos (:class:`ChaosPanel`).
"""

from __future__ import annotations

import ipywidgets as widgets

from ..observe.collector import Collector
from ..ops import Ops
from ..recover.watchdog import Watchdog
from .base import Displayable, View
from .board import ContainerBoard
from .chaospanel import ChaosPanel
from .deployform import DeployForm
from .monitor import StatsMonitor
from .recovery import RecoveryPanel
from .timeline import TimelineView

__all__ = ["Dashboard"]


class Dashboard(Displayable):
    """Every view of opskit, one tab each.

    Args:
        ops: the connection.
        watchdog: a watchdog, for the recovery tab and the chaos tab's times.
        collector: a stats collector for the stats tab (one is made and owned otherwise).
        autostart: start the stats tab's timer now.

    Attributes:
        box: the ``ipywidgets.VBox`` holding the ``tab``.
        views: the views by tab title.
    """

    def __init__(self, ops: Ops, watchdog: Watchdog | None = None,
                 collector: Collector | None = None, *, autostart: bool = True) -> None:
        self.ops = ops
        self.board = ContainerBoard(ops)
        self.monitor = StatsMonitor(ops, collector, autostart=autostart)
        self.views: dict[str, View] = {"containers": self.board, "stats": self.monitor,
                                       "timeline": TimelineView(ops), "deploy": DeployForm(ops)}
        if watchdog is not None:
            self.views["recovery"] = RecoveryPanel(ops, watchdog)
        self.views["chaos"] = ChaosPanel(ops, watchdog)
        self.tab = widgets.Tab(children=[view.box for view in self.views.values()],
                               titles=list(self.views))
        self.box = widgets.VBox([self.tab])

    def close(self) -> None:
        """Stop the timers (and the collector the stats tab made)."""
        for view in self.views.values():
            view.close()
