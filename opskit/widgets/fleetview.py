"""The fleet's console: an overview of the engines, then one engine's dashboard at a time.

:class:`EngineOverview` is one row per engine (reachable, version, containers running,
unhealthy and exited, opskit's services); when no opskit service runs on any engine that
answers, it offers to start the demo services rather than show an empty table.
:class:`FleetDashboard` puts it above an engine picker and that engine's :class:`Dashboard`.
"""

from __future__ import annotations

import ipywidgets as widgets

from ..fleet.fleet import Fleet
from ..fleet.supervisor import Supervisor
from ..spec.service import ServiceSpec
from .base import Displayable, View
from .dashboard import Dashboard
from .tables import frame_table

__all__ = ["DEMO_SERVICES", "EngineOverview", "FleetDashboard"]

DEMO_SERVICES = (
    ServiceSpec(name="demo-web", image="opskit/demo-web:latest"),
    ServiceSpec(name="demo-flap", image="opskit/demo-flap:latest",
                env={"FLAP_PERIOD": "20"}),
)
"""What the overview's button starts on every engine that answers, when nothing runs."""

_COLUMNS = ["engine", "reachable", "version", "running", "unhealthy", "exited", "services",
            "error"]


class EngineOverview(View):
    """The engines of a fleet at a glance, and the demo services offered on a fresh lab.

    Args:
        fleet: the fleet (:func:`opskit.connect_fleet`).

    Attributes:
        table: the ``HTML`` table of engines.
        demo_button: shown when no opskit service runs on any reachable engine.
        frame: the last :meth:`opskit.Fleet.overview`.
    """

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self.fleet = fleet
        self.frame = fleet.overview()
        self.table = widgets.HTML()
        self.refresh_button = widgets.Button(description="refresh", icon="refresh")
        self.demo_button = widgets.Button(description="start the demo services",
                                          button_style="success", icon="play",
                                          layout=widgets.Layout(display="none", width="auto"))
        self.buttons = [self.refresh_button, self.demo_button]
        self.refresh_button.on_click(self.guard(self.refresh))
        self.demo_button.on_click(self.guard(self.start_demo))
        self.box = widgets.VBox([widgets.HBox([self.refresh_button, self.demo_button]),
                                 self.status, self.progress, self.table, self.output])
        self._render()

    @property
    def idle(self) -> bool:
        """No opskit service runs on any engine that answers."""
        reachable = self.frame[self.frame["reachable"]] if len(self.frame) else self.frame
        return bool(len(reachable)) and int(reachable["services"].sum()) == 0

    def refresh(self) -> None:
        """Read every engine again (each within the fleet's deadline)."""
        with self.busy("reading the engines..."):
            self.frame = self.fleet.overview()
        self._render()

    def start_demo(self) -> None:
        """Build the demo images and deploy :data:`DEMO_SERVICES` on every reachable engine."""
        engines = self.fleet.reachable
        with self.busy(f"starting the demo services on {len(engines)} engine(s)...",
                       total=len(engines) + len(DEMO_SERVICES)) as bar:
            for name in engines:
                self.fleet[name].demo_images()
                bar.value += 1
            for spec in DEMO_SERVICES:
                self.fleet.deploy(spec, engines=engines, wait="running")
                bar.value += 1
        self.messages.ok(f"demo services running on {', '.join(engines)}")
        self.refresh()

    def _render(self) -> None:
        self.table.value = frame_table(self.frame, _COLUMNS, coloured_columns=["reachable"],
                                       empty="no engine in the fleet")
        self.demo_button.layout.display = "" if self.idle else "none"
        if self.idle:
            self.messages.info("No opskit service runs yet: start the demo services to see "
                               "the console at work.")


class FleetDashboard(Displayable):
    """The fleet overview, an engine picker, and the chosen engine's :class:`Dashboard`.

    Args:
        fleet: the fleet.
        supervisor: a started :meth:`opskit.Fleet.watch` supervisor: each engine's dashboard
            gets that engine's watchdog (its recovery tab).
        autostart: start each dashboard's stats timer.
    """

    def __init__(self, fleet: Fleet, supervisor: Supervisor | None = None, *,
                 autostart: bool = True) -> None:
        self.fleet = fleet
        self.supervisor = supervisor
        self.autostart = autostart
        self.overview = EngineOverview(fleet)
        self.engine = widgets.Dropdown(description="engine", options=fleet.reachable,
                                       value=fleet.reachable[0] if fleet.reachable else None)
        self.dashboard: Dashboard | None = None
        self.holder = widgets.VBox()
        self.engine.observe(self.overview.guard(self.show), names="value")
        self.box = widgets.VBox([self.overview.box, self.engine, self.holder])
        self.show()

    def show(self) -> None:
        """Show the dashboard of the engine picked (closing the previous one's timers)."""
        if self.dashboard is not None:
            self.dashboard.close()
            self.dashboard = None
        name = self.engine.value
        if not name:
            self.holder.children = ()
            return
        watchdog = self.supervisor.watchdogs.get(name) if self.supervisor else None
        self.dashboard = Dashboard(self.fleet[name], watchdog=watchdog, autostart=self.autostart)
        self.holder.children = (self.dashboard.box,)

    def close(self) -> None:
        """Stop the shown dashboard's timers."""
        if self.dashboard is not None:
            self.dashboard.close()
