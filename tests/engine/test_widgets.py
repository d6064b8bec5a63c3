"""The Jupyter views on the real engine, driven with ``.click()`` and no kernel.

What the engine did is read from the engine itself (``StartedAt``) and from an independent
event observer, not from what the view says. The form's text parsing, which needs no engine, is
tested in ../unit/test_widgets.py.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

import opskit
from opskit.spec.policy import RecoveryPolicy
from opskit.widgets import (
    ChaosPanel,
    ContainerBoard,
    Dashboard,
    DeployForm,
    LogViewer,
    RecoveryPanel,
    StatsMonitor,
    TimelineView,
)
from tests.support.session import SESSION, TEST_LABEL, unique, until

pytestmark = pytest.mark.engine

HEALTH = {"test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
          "interval": 0.3, "timeout": 1, "retries": 1}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def web(ops: opskit.Ops, name: str, **kw: Any) -> str:
    """Deploy one demo web replica (healthy within about a second); its container ID."""
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest", healthcheck=HEALTH,
                              labels={TEST_LABEL: SESSION}, **kw)
    return ops.deploy(spec, wait="healthy", timeout=20).ids[0]


def started_at(ops: opskit.Ops, cid: str) -> str:
    return str(ops.engine.api.inspect_container(cid)["State"]["StartedAt"])


@pytest.fixture
def no_callback_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail if ipywidgets caught an exception from a callback (what it does with no kernel)."""
    caplog.set_level(logging.WARNING)
    yield
    leaked = [r for r in caplog.records if "Exception in callback" in r.getMessage()]
    assert not leaked, leaked[0].getMessage()


def test_board_restart_is_confirmed_then_done(clean, demo, observer, no_callback_errors) -> None:
    ops, name = clean, unique("board")
    cid = web(ops, name)
    board = ContainerBoard(ops, service=name)
    assert board.select.options == (name,)
    assert WIDGET_MIME in board._repr_mimebundle_()
    before = started_at(ops, cid)
    board.select.value = (name,)

    board.action_buttons["restart"].click()
    assert board.confirm_bar.layout.display != "none" and board.pending == ("restart", (name,))
    time.sleep(0.5)
    assert started_at(ops, cid) == before, "nothing happens before the confirm"
    assert observer.count("restart", cid) == 0

    board.confirm.click()
    assert started_at(ops, cid) != before
    observer.wait_for("restart", cid)
    assert board.confirm_bar.layout.display == "none" and board.pending is None
    assert board.messages.kinds == ["ok"] and f"{name}: restart ok" in board.messages.text
    row = board.frame[board.frame["name"] == name].iloc[0]
    assert row["state"] == "running"
    assert name in board.table.value and ">running</span>" in board.table.value
    assert not any(b.disabled for b in board.buttons), "buttons enabled again"

    board.action_buttons["stop"].click()
    board.cancel.click()
    assert ops.inspect(cid).state == "running" and board.messages.text == "Cancelled."
    board.action_buttons["logs"].click()
    assert board.log_viewer is not None and "demo-web: serving" in board.log_viewer.table.value


def test_board_shows_errors_in_the_view(clean, demo, no_callback_errors) -> None:
    ops, name = clean, unique("stopped")
    cid = web(ops, name)
    ops.stop(name)
    board = ContainerBoard(ops, service=name)
    board.action_buttons["pause"].click()
    assert "Select one or more containers" in board.messages.text

    board.state_filter.value = "exited"
    assert board.select.options == (name,)
    board.select.value = (name,)
    board.action_buttons["pause"].click()
    assert board.messages.kinds == ["error"]
    assert f"{name}: pause failed" in board.messages.text and "not running" in board.messages.text
    assert "#c62828" in board.output.outputs[0]["data"]["text/html"]
    assert ops.inspect(cid).state == "exited"

    board.state_filter.value = "running"
    assert board.select.options == () and "no containers" in board.table.value


def test_stats_monitor_follows_containers(clean, demo, no_callback_errors) -> None:
    ops, name = clean, unique("stats")
    web(ops, name)
    collector = ops.collector(targets=[name], relist_every=0.5).start()
    try:
        monitor = StatsMonitor(ops, collector, autostart=False)
        until(lambda: not collector.frame().empty, what="a stats row")
        monitor.refresh()
        assert monitor.containers.options == (name,)
        traces = [t.name for t in monitor.figure.data]
        assert name in traces and f"{name} mem" in traces
        live = StatsMonitor(ops, collector, every=0.2)
        until(lambda: name in [t.name for t in live.figure.data], what="a timer redraw")
        live.close()
        monitor.window.value = "1min"
        monitor.pause.value = True
        assert monitor.pause.description == "resume"

        ops.remove(name)
        until(lambda: name not in collector.containers, what="the stream to end")
        monitor.refresh()
        assert monitor.containers.options == ()
        assert not monitor.figure.data, "a gone container drops from the figure"
        monitor.close()
        assert collector.running, "a collector passed in is the caller's to stop"
    finally:
        collector.stop()


def test_log_viewer_filters_and_escapes(clean, demo, no_callback_errors) -> None:
    ops, name = clean, unique("logs")
    web(ops, name, command=["sh", "-c", "echo '<b>bold</b> hello'; echo oops >&2; "
                                        "exec demo-web"])
    viewer = LogViewer(ops, name)
    until(lambda: (viewer.refresh(), len(viewer.frame) >= 3)[1], what="three log lines")
    assert "&lt;b&gt;bold&lt;/b&gt;" in viewer.table.value and "<b>bold" not in viewer.table.value
    viewer.pattern.value = "hel+o"
    assert list(viewer.frame["line"]) == ["<b>bold</b> hello"]
    viewer.pattern.value = ""
    viewer.stream.value = "stderr"
    assert list(viewer.frame["line"]) == ["oops"]
    viewer.stream.value = ""
    viewer.pattern.value = "(unclosed"
    assert viewer.messages.kinds[0] == "error" and "bad filter" in viewer.messages.text
    viewer.follow.value = True
    viewer.close()
    assert not viewer.follow.value


def test_deploy_form_validates_before_the_engine(clean, demo, observer, free_port,
                                                 no_callback_errors) -> None:
    ops, name = clean, unique("form")
    form = DeployForm(ops)
    form.fields["name"].value = name
    form.fields["ports"].value = "8080:99999"
    assert "ports[8080]" in form.errors["ports"].value and "#c62828" in form.errors["ports"].value
    assert all(not form.errors[f].value for f in form.errors if f != "ports")
    form.deploy_button.click()
    assert "not valid" in form.messages.text
    time.sleep(0.3)
    assert observer.count("create", name) == 0, "no container for an invalid spec"

    form.fields["ports"].value = f"8080:{free_port}"
    form.fields["healthcheck"].value = "wget -q -O- http://127.0.0.1:8080/health"
    form.fields["health_interval"].value = "0.3s"
    form.fields["env"].value = "GREETING=hi\n# a comment\n"
    assert not form.errors["ports"].value and form.spec is not None
    form.deploy_button.click()
    assert form.messages.kinds == ["ok"] and f"{name}: 0 kept, 1 created" in form.messages.text
    assert form.log.text, "the deploy's progress lines were shown"
    assert ops.inspect(name).health == "healthy"
    assert observer.count("create", name) == 1

    form.mode.value = "yaml"
    assert form.yaml_box.layout.display == "" and form.form_box.layout.display == "none"
    form.yaml.value = f"name: {name}\nimage: opskit/demo-web:latest\nreplicas: 0\n"
    assert "replicas" in form.errors["yaml"].value and form.spec is None


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
                    reason="a host-side crash needs root")
def test_recovery_and_chaos_panels_with_a_watchdog(clean, demo, no_callback_errors) -> None:
    ops, name = clean, unique("wd")
    web(ops, name)
    wd = ops.watch([name], policy=RecoveryPolicy(dry_run=True), relist_every=0.5).start()
    try:
        panel = RecoveryPanel(ops, wd)
        assert panel.dry_run.value is True and panel.dry_run.disabled
        chaos = ChaosPanel(ops, wd)
        assert name in chaos.target.options and "no recovery yet" in chaos.times.value
        ops.chaos("crash", name)
        until(lambda: len(wd.findings_frame()), what="a finding")
        panel.refresh_button.click()
        assert name in panel.findings.value and panel.target.value == name
        assert "dry-run" in panel.journal.value, "the dry-run decision is journaled"
        panel.recover_button.click()
        assert panel.messages.kinds == ["ok"] and "dry run" in panel.messages.text
        assert ops.inspect(name).state == "exited", "a dry run never acts"
        panel.acknowledge_button.click()
        assert f"Quarantine lifted for {name}" in panel.messages.text
    finally:
        wd.stop()


def test_chaos_panel_inject_and_undo(clean, demo, observer, no_callback_errors) -> None:
    ops, name = clean, unique("chaos")
    cid = web(ops, name)
    panel = ChaosPanel(ops)
    assert panel.undo_button.disabled
    panel.target.value = name
    panel.kind.value = "pause"
    panel.inject_button.click()
    assert ops.inspect(cid).state == "paused" and f"Injected pause into {name}" in \
        panel.messages.text
    assert not panel.undo_button.disabled
    panel.undo_button.click()
    assert ops.inspect(cid).state == "running" and not panel.active
    assert observer.count("pause", cid) == 1 and observer.count("unpause", cid) == 1


def test_timeline_and_dashboard_build(clean, demo, no_callback_errors) -> None:
    ops, name = clean, unique("tl")
    web(ops, name)
    view = TimelineView(ops, [name], since="10m")
    assert view.figure.data and view.messages.kinds == ["info"]
    view.window.value = "1h"
    view.refresh_button.click()
    assert view.figure.layout.title.text == "Event and health timeline"

    dash = Dashboard(ops, autostart=False)
    try:
        assert dash.tab.titles == ("containers", "stats", "timeline", "deploy", "chaos")
        assert WIDGET_MIME in dash._repr_mimebundle_()
        assert name in dash.board.select.options
    finally:
        dash.close()
    assert not dash.monitor.collector.running, "the dashboard's own collector is stopped"
