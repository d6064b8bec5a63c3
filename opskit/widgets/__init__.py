"""Jupyter views of opskit; the only package that imports ipywidgets.

Each view is a plain class holding its ``box`` (an ``ipywidgets.VBox``) and a message area;
display it by leaving it as the last expression of a cell::

    from opskit.widgets import ContainerBoard, Dashboard
    ContainerBoard(ops)
    Dashboard(ops, watchdog=ops.watch().start())
"""

from __future__ import annotations

from .board import ContainerBoard
from .chaospanel import ChaosPanel
from .dashboard import Dashboard
from .deployform import DeployForm
from .logview import LogViewer
from .monitor import StatsMonitor
from .recovery import RecoveryPanel
from .timeline import TimelineView

__all__ = ["ChaosPanel", "ContainerBoard", "Dashboard", "DeployForm", "LogViewer",
           "RecoveryPanel", "StatsMonitor", "TimelineView"]
