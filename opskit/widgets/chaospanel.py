"""ChaosPanel: inject a fault into one of opskit's containers, undo it, and, with a watchdog,
read how long detection and recovery took.

Injection is ``ops.chaos(kind, target)``, journaled by the library; undo is the returned
fault's ``undo()``. The panel says what the chosen fault does and what cures it: ``unhealthy``
hangs the demo web server (a restart cures it), ``corrupt`` removes its health file (only a
recreate cures it). Times come from :func:`opskit.analysis.metrics.recovery_times` of the watchdog's
journal rows.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..act.chaos import FAULTS, Fault
from ..analysis.metrics import recovery_times
from ..ops import Ops
from ..recover.watchdog import Watchdog
from .base import View
from .tables import frame_table

__all__ = ["ABOUT", "TIME_COLUMNS", "ChaosPanel"]

TIME_COLUMNS = ("ts", "container", "reason", "result", "attempt", "time_to_detect_s",
                "time_to_recover_s")
ABOUT = {
    "crash": "kills its process from the host, a real crash; undo starts it again",
    "kill": "docker kill; undo starts it again",
    "stop": "docker stop; undo starts it again",
    "pause": "docker pause; undo unpauses it",
    "unhealthy": "hangs the demo web server (SIGSTOP), so its probes time out; a restart cures "
                 "it",
    "corrupt": "removes the demo web's health file from the container's filesystem; a restart "
               "keeps it, only a recreate from the image cures it",
    "cpu": "a busy loop inside; undo ends it",
    "oom": "fills memory until the kernel's OOM killer acts (needs a memory limit)",
    "delay": "stops every process for a few seconds (from the host), then continues them",
    "disconnect": "cuts it from its network; undo reconnects it",
}


class ChaosPanel(View):
    """Fault injection with undo.

    Args:
        ops: the connection.
        watchdog: a watchdog whose detection and recovery times to show.

    Attributes:
        kind: the fault ``Dropdown`` (:data:`opskit.act.chaos.FAULTS`); target: the container
            ``Dropdown`` (opskit's containers).
        about: the ``HTML`` line saying what the chosen fault does and what cures it
            (:data:`ABOUT`).
        inject_button, undo_button, refresh_button: the buttons.
        faults: the faults injected from this panel, newest last.
        times: the ``HTML`` table of detection and recovery times.
    """

    def __init__(self, ops: Ops, watchdog: Watchdog | None = None) -> None:
        super().__init__()
        self.ops = ops
        self.watchdog = watchdog
        self.faults: list[Fault] = []
        self.kind = widgets.Dropdown(description="fault", options=FAULTS, value=FAULTS[0])
        self.target = widgets.Dropdown(description="target", options=[])
        self.about = widgets.HTML()
        self.kind.observe(lambda _change: self._describe(), names="value")
        self._describe()
        self.inject_button = widgets.Button(description="inject", icon="bolt",
                                            button_style="danger")
        self.undo_button = widgets.Button(description="undo", icon="undo", disabled=True)
        self.refresh_button = widgets.Button(description="refresh", icon="refresh")
        self.times = widgets.HTML()
        self.buttons = [self.inject_button, self.undo_button, self.refresh_button]
        self.inject_button.on_click(self.guard(self.inject))
        self.undo_button.on_click(self.guard(self.undo))
        self.refresh_button.on_click(self.guard(self.refresh))
        parts = [widgets.HBox([self.kind, self.target, self.refresh_button]), self.about,
                 widgets.HBox([self.inject_button, self.undo_button]), self.status,
                 self.output]
        if watchdog is not None:
            parts += [widgets.HTML("<b>Time to detect and to recover (s)</b>"), self.times]
        self.box = widgets.VBox(parts)
        self.guard(self.refresh)()

    def _describe(self) -> None:
        kind = str(self.kind.value)
        self.about.value = f"<i>{html.escape(kind)}: {html.escape(ABOUT.get(kind, ''))}</i>"

    @property
    def active(self) -> list[Fault]:
        """The faults injected here and not undone yet."""
        return [f for f in self.faults if not f.undone]

    def refresh(self) -> None:
        """Re-read opskit's containers (the targets) and the recovery times."""
        frame = self.ops.containers()
        names = [str(n) for n in frame[frame["managed"]]["name"]]
        if list(self.target.options) != names:
            current = self.target.value
            self.target.options = names
            self.target.value = current if current in names else (names[0] if names else None)
        if self.watchdog is not None:
            self.times.value = frame_table(recovery_times(self.watchdog.actions()),
                                           TIME_COLUMNS, empty="no recovery yet", limit=10)
        self.undo_button.disabled = not self.active

    def inject(self) -> None:
        """``ops.chaos(kind, target)``."""
        target = self.target.value
        if not target:
            self.messages.error("No target: deploy a service with opskit first.")
            return
        with self.busy(f"injecting {self.kind.value} into {target}..."):
            fault = self.ops.chaos(self.kind.value, target)
        self.faults.append(fault)
        self.messages.ok(f"Injected {fault.kind} into {fault.container} (fault {fault.id}).")
        self.refresh()

    def undo(self) -> None:
        """Undo the newest fault still in place."""
        active = self.active
        if not active:
            self.messages.info("Nothing to undo.")
            return
        fault = active[-1]
        with self.busy(f"undoing {fault.kind} on {fault.container}..."):
            fault.undo()
        self.messages.ok(f"Undid {fault.kind} on {fault.container} (fault {fault.id}).")
        self.refresh()
