"""RecoveryPanel: what the watchdog found, what it did, and the two calls a person makes.

Findings come from ``watchdog.findings_frame()``, the action journal's tail from
``watchdog.actions()``; "recover now" is ``watchdog.recover_now(name)`` and "acknowledge" lifts
a quarantine with ``watchdog.acknowledge(name)``. The dry-run box shows the policy's
``dry_run`` and cannot be changed here.
"""

from __future__ import annotations

import ipywidgets as widgets

from ..ops import Ops
from ..recover.watchdog import Watchdog
from .base import View
from .tables import frame_table

__all__ = ["FINDING_COLUMNS", "JOURNAL_COLUMNS", "RecoveryPanel", "dry_run_of"]

FINDING_COLUMNS = ("container", "service", "kind", "severity", "since", "failure_class", "hint")
JOURNAL_COLUMNS = ("ts", "container", "action", "result", "reason", "error")


def dry_run_of(watchdog: Watchdog) -> bool:
    """Whether the watchdog's default recovery policy only reports."""
    return bool(watchdog.policy.dry_run)


class RecoveryPanel(View):
    """The watchdog's findings and journal, with "recover now" and "acknowledge".

    Args:
        ops: the connection.
        watchdog: a watchdog (``ops.watch(...)``), started or not.
        tail: how many journal rows to show.

    Attributes:
        findings: the ``HTML`` findings table; journal: the ``HTML`` journal table.
        target: the ``Dropdown`` of containers the buttons act on.
        recover_button, acknowledge_button, refresh_button: the buttons.
        dry_run: a disabled ``Checkbox`` showing the policy's dry_run.
    """

    def __init__(self, ops: Ops, watchdog: Watchdog, *, tail: int = 20) -> None:
        super().__init__()
        self.ops = ops
        self.watchdog = watchdog
        self.tail = tail
        self.findings = widgets.HTML()
        self.journal = widgets.HTML()
        self.watching = widgets.HTML()
        self.target = widgets.Dropdown(description="container", options=[])
        self.recover_button = widgets.Button(description="recover now", icon="medkit",
                                             button_style="warning")
        self.acknowledge_button = widgets.Button(description="acknowledge quarantine",
                                                 icon="check")
        self.refresh_button = widgets.Button(description="refresh", icon="refresh")
        self.dry_run = widgets.Checkbox(description="dry run (policy)", disabled=True,
                                        value=dry_run_of(watchdog), indent=False)
        self.buttons = [self.recover_button, self.acknowledge_button, self.refresh_button]
        self.recover_button.on_click(self.guard(self.recover))
        self.acknowledge_button.on_click(self.guard(self.acknowledge))
        self.refresh_button.on_click(self.guard(self.refresh))
        self.box = widgets.VBox([
            widgets.HBox([self.dry_run, self.watching, self.refresh_button]),
            widgets.HTML("<b>Findings</b>"), self.findings,
            widgets.HBox([self.target, self.recover_button, self.acknowledge_button]),
            self.status, self.output, widgets.HTML("<b>Action journal</b>"), self.journal])
        self.guard(self.refresh)()

    def refresh(self) -> None:
        """Read the findings, status and journal again."""
        status = self.watchdog.status()
        findings = self.watchdog.findings_frame()
        self.findings.value = frame_table(findings, FINDING_COLUMNS, empty="no findings",
                                          coloured_columns=("kind",))
        self.journal.value = frame_table(self.watchdog.actions(), JOURNAL_COLUMNS,
                                         empty="no actions yet", limit=self.tail)
        names = sorted({str(n) for n in findings["container"]} | set(status["watched"]))
        if list(self.target.options) != names:
            current = self.target.value
            self.target.options = names
            self.target.value = current if current in names else (names[0] if names else None)
        quarantined = ", ".join(status["quarantined"]) or "none"
        running = "running" if status["running"] else "stopped"
        self.watching.value = (f"watchdog {running}, {len(status['watched'])} watched, "
                               f"quarantined: {quarantined}")
        self.dry_run.value = dry_run_of(self.watchdog)

    def _chosen(self) -> str | None:
        name = self.target.value
        if not name:
            self.messages.error("Choose a container first.")
            return None
        return str(name)

    def recover(self) -> None:
        """``watchdog.recover_now(name)`` on the chosen container."""
        name = self._chosen()
        if name is None:
            return
        with self.busy(f"recovering {name}..."):
            acted = self.watchdog.recover_now(name)
        if acted:
            self.messages.ok(f"Recovery asked for {', '.join(acted)}"
                             + (" (dry run: reported, not done)" if self.dry_run.value else ""))
        else:
            self.messages.info(f"Nothing to recover on {name}: no actionable finding.")
        self.refresh()

    def acknowledge(self) -> None:
        """``watchdog.acknowledge(name)``: lift the quarantine of the chosen container."""
        name = self._chosen()
        if name is None:
            return
        done = self.watchdog.acknowledge(name)
        if done:
            self.messages.ok(f"Quarantine lifted for {', '.join(done)}.")
        else:
            self.messages.info(f"{name} is not watched; nothing to acknowledge.")
        self.refresh()
