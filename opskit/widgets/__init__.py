"""Jupyter views of opskit; the only package that imports ipywidgets.

Each view is a plain class holding its ``box`` (an ``ipywidgets.VBox``) and a message area;
display it by leaving it as the last expression of a cell::

    from opskit.widgets import ContainerBoard, Dashboard
    ContainerBoard(ops)
    Dashboard(ops, watchdog=ops.watch().start())
    FleetDashboard(opskit.connect_fleet({...}))   # engines overview, then one engine's
"""

from __future__ import annotations

from .board import ContainerBoard
from .chaospanel import ChaosPanel
from .dashboard import Dashboard
from .deployform import DeployForm
from .fleetview import EngineOverview, FleetDashboard
from .logview import LogViewer
from .monitor import StatsMonitor
from .recovery import RecoveryPanel
from .timeline import TimelineView

__all__ = ["ChaosPanel", "ContainerBoard", "Dashboard", "DeployForm", "EngineOverview",
           "FleetDashboard", "LogViewer", "RecoveryPanel", "StatsMonitor", "TimelineView"]
