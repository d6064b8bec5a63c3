"""ContainerBoard: the containers as a coloured table, with the lifecycle buttons.

Every action goes through the library (``ops.restart(name)`` and friends), so scope checks and
the action journal apply; destructive actions (stop, restart, kill, remove) first ask for
confirmation, and only the confirm button performs them.
"""

from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..act.manage import DESTRUCTIVE, VERBS, Verb
from ..base.errors import ActionFailed, OpsKitError
from ..ops import Ops
from .base import View
from .logview import LogViewer
from .tables import container_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ACTIONS", "DESTRUCTIVE", "ContainerBoard"]

ACTIONS: tuple[Verb, ...] = tuple(VERBS)
ALL = "(all)"
STATES = (ALL, "running", "paused", "restarting", "exited", "created", "dead")


class ContainerBoard(View):
    """``docker ps -a`` as a board: filter, select, act, read the logs.

    Args:
        ops: the connection (``opskit.connect()``).
        service: show only this service at first (the service dropdown changes it).
        managed_only: show only containers opskit created (a checkbox changes it).

    Attributes:
        box: the ``ipywidgets.VBox`` to display.
        select: the ``SelectMultiple`` of container names the buttons act on.
        table: the ``HTML`` table of containers.
        action_buttons: the buttons by action name (``"restart"``), plus ``"logs"``.
        confirm, cancel: the confirmation pair, shown while a destructive action waits.
        log_viewer: the :class:`LogViewer` the logs button opened, if any.
        pending: the action waiting for confirmation, if any.
        frame: the last ``ops.containers()`` frame.
    """

    def __init__(self, ops: Ops, service: str | None = None, *, managed_only: bool = True
                 ) -> None:
        super().__init__()
        self.ops = ops
        self.frame: pd.DataFrame | None = None
        self.pending: tuple[str, tuple[str, ...]] | None = None
        self._rendering = False
        self.log_viewer: LogViewer | None = None
        self.service_filter = widgets.Dropdown(description="service",
                                               options=[ALL] + ([service] if service else []),
                                               value=service or ALL)
        self.state_filter = widgets.Dropdown(description="state", options=STATES, value=ALL)
        self.managed = widgets.Checkbox(description="opskit's only", value=managed_only,
                                        indent=False)
        self.refresh_button = widgets.Button(description="refresh", icon="refresh")
        self.table = widgets.HTML()
        self.select = widgets.SelectMultiple(description="containers", options=[], rows=6)
        self.action_buttons = {
            name: widgets.Button(description=name,
                                 button_style="warning" if name in DESTRUCTIVE else "")
            for name in (*ACTIONS, "logs")}
        self.question = widgets.HTML()
        self.confirm = widgets.Button(description="confirm", button_style="danger")
        self.cancel = widgets.Button(description="cancel")
        self.confirm_bar = widgets.HBox([self.question, self.confirm, self.cancel],
                                        layout=widgets.Layout(display="none"))
        self.details = widgets.VBox()
        self.buttons = [self.refresh_button, *self.action_buttons.values()]
        for name, button in self.action_buttons.items():
            button.on_click(self.guard(functools.partial(self.request, name)))
        self.confirm.on_click(self.guard(self._confirmed))
        self.cancel.on_click(self.guard(self._cancelled))
        self.refresh_button.on_click(self.guard(self.refresh))
        for control in (self.service_filter, self.state_filter, self.managed):
            control.observe(lambda _: self.guard(self.render)(), names="value")
        self.box = widgets.VBox([
            widgets.HBox([self.service_filter, self.state_filter, self.managed,
                          self.refresh_button]),
            self.table, self.select,
            widgets.HBox(list(self.action_buttons.values())),
            self.confirm_bar, self.status, self.progress, self.output, self.details])
        self.guard(self.refresh)()

    def close(self) -> None:
        """Stop following the logs the logs button opened."""
        if self.log_viewer is not None:
            self.log_viewer.close()

    # -- reading ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read ``ops.containers()`` again and redraw the table and the name list."""
        self.frame = self.ops.containers()
        self.render()

    def visible(self) -> pd.DataFrame | None:
        """The rows of the last frame that pass the filters."""
        frame = self.frame
        if frame is None:
            return None
        if self.managed.value:
            frame = frame[frame["managed"]]
        services = sorted({str(s) for s in frame["service"] if str(s)})
        wanted = self.service_filter.value
        options = [ALL, *services] + ([wanted] if wanted not in (ALL, *services) else [])
        if list(self.service_filter.options) != options:
            self.service_filter.options = options
            self.service_filter.value = wanted
        if wanted != ALL:
            frame = frame[frame["service"].astype(str) == wanted]
        if self.state_filter.value != ALL:
            frame = frame[frame["state"].astype(str) == self.state_filter.value]
        return frame

    def render(self) -> None:
        """Redraw from the last frame (after a filter changed); keeps the selection."""
        if self._rendering:
            return  # a filter's options changed while drawing
        self._rendering = True
        try:
            frame = self.visible()
            if frame is None:
                return
            self.table.value = container_table(frame)
            names = [str(n) for n in frame["name"]]
            chosen = tuple(n for n in self.select.value if n in names)
            if list(self.select.options) != names:
                self.select.options = names
            self.select.value = chosen
        finally:
            self._rendering = False

    # -- acting -------------------------------------------------------------------------

    def request(self, action: str) -> None:
        """What a button does: logs at once, a destructive action after confirmation."""
        names = tuple(self.select.value)
        if not names:
            self.messages.error("Select one or more containers first.")
            return
        if action == "logs":
            if self.log_viewer is not None:
                self.log_viewer.close()  # stop following the previous selection
            self.log_viewer = LogViewer(self.ops, list(names))
            self.details.children = (self.log_viewer.box,)
            return
        if action not in DESTRUCTIVE:
            self.perform(action, names)
            return
        self.pending = (action, names)
        self.question.value = (f"<b>{html.escape(action)}</b> "
                               f"{html.escape(', '.join(names))}?")
        self.confirm_bar.layout.display = ""
        self.messages.info(f"Confirm to {action} {len(names)} container(s).")

    def _confirmed(self) -> None:
        if self.pending is None:
            return
        action, names = self.pending
        self._cancelled(quiet=True)
        self.perform(action, names)

    def _cancelled(self, *, quiet: bool = False) -> None:
        self.pending = None
        self.confirm_bar.layout.display = "none"
        if not quiet:
            self.messages.info("Cancelled.")

    def perform(self, action: str, names: tuple[str, ...]) -> None:
        """Run ``ops.<action>(name)`` on each container, one result line each, then refresh."""
        lines: list[tuple[str, str]] = []
        with self.busy(f"{action} of {len(names)} container(s)...", total=len(names)) as bar:
            for name in names:
                lines.extend(self._act(action, name))
                bar.value += 1
                self.messages.show(lines)
        try:
            self.refresh()
        except OpsKitError as exc:  # keep the result lines above the error
            self.messages.error(exc, append=True)

    def _act(self, action: str, name: str) -> list[tuple[str, str]]:
        try:
            results = self.ops.lifecycle(action, name)
        except ActionFailed as exc:
            results = exc.results
        except OpsKitError as exc:
            lines = [("error", f"{name}: {action} failed: {exc.message}")]
            return lines + ([("error", f"Hint: {exc.hint}")] if exc.hint else [])
        return [("ok", f"{r.name}: {action} ok ({r.duration:.1f}s)") if r.ok
                else ("error", f"{r.name}: {action} failed: {r.error}") for r in results]
