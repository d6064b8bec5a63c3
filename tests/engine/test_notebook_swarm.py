"""Notebook 09, the Swarm runbook, run headless with papermill as ``test_notebooks`` runs every
runbook (``--cwd notebooks``, parameters injected, the executed copy checked for errors).

Without managers it says no swarm is connected and skips its live cells. On a real three-manager
swarm (``tests/support/swarm.py``) it deploys, rolls a broken update back, follows the tasks of a
node lost while its watch runs, and records a bundle. A notebook cannot lose a node on a real
cluster, so the test does it: a thread kills a non-leader node's dockerd once the broken update
is rolled back and every replica runs again (the moment section 4 ends), and the notebook is
given that node as ``lose_node``. What it printed is checked, and the swarm itself."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

import opskit
from tests.engine.test_notebooks import _texts
from tests.support.paths import NOTEBOOKS, ROOT
from tests.support.swarm import LocalSwarm, SwarmNode

pytestmark = [pytest.mark.engine, pytest.mark.slow]

NOTEBOOK = NOTEBOOKS / "09-swarm.ipynb"
SCOPE = "okn-notebook"
SERVICE = "oknweb"
REPLICAS = 3
IMAGE = "opskit/demo-web:latest"


def _execute(out: Path, params: dict[str, Any], timeout: float = 240) -> dict[str, Any]:
    """``papermill 09-swarm.ipynb OUT -y PARAMS --cwd notebooks``; the executed copy, which
    must hold no error."""
    cmd = [sys.executable, "-m", "papermill", str(NOTEBOOK), str(out), "-y", json.dumps(params),
           "--cwd", str(NOTEBOOK.parent), "--no-progress-bar"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed: dict[str, Any] = json.loads(out.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert not errors, [f"{o['ename']}: {o['evalue']}" for o in errors]
    injected = [c for c in executed["cells"]
                if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and all(name in "".join(injected[0]["source"]) for name in params)
    assert out.stat().st_size < 2_000_000
    return executed


def _text(executed: dict[str, Any]) -> str:
    """Everything the executed copy printed or showed as text."""
    return "\n".join(_texts(executed))


@pytest.fixture(scope="module")
def swarm(demo: list[str]) -> Iterator[LocalSwarm]:
    """A three-manager swarm with the demo web image on every node, each node opted in for
    SCOPE (``docker node update --label-add io.opskit.scope=SCOPE``); torn down at the end."""
    reason = LocalSwarm.unavailable_reason()
    if reason:
        pytest.skip(f"local swarm: {reason}")
    local = LocalSwarm("okn", net=252)
    try:
        local.up(images=[IMAGE])
        api = local.nodes[0].client().api
        for node in local.nodes:
            spec = api.inspect_node(node.node_id)
            body = dict(spec["Spec"])
            body["Labels"] = {**(body.get("Labels") or {}), "io.opskit.scope": SCOPE}
            api.update_node(node.node_id, spec["Version"]["Index"], body)
        yield local
    finally:
        local.close()


def _epoch(stamp: str) -> float:
    """A task's ``Status.Timestamp`` (RFC 3339, nanoseconds) as Unix seconds."""
    return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()


def _leader(api: docker.APIClient) -> str:
    return next(n["ID"] for n in api.nodes() if (n.get("ManagerStatus") or {}).get("Leader"))


def _kill_after_rollback(api: docker.APIClient, nodes: list[SwarmNode], leader: str,
                         seen: dict[str, Any], stop: threading.Event,
                         timeout: float = 150.0) -> None:
    """Once the service's update is rolled back and every replica runs (section 4 done), kill
    the dockerd of a non-leader node that runs one of them; ``seen`` gets the node and the
    tasks it ran then. (Which nodes hold tasks after the rollback is Swarm's choice.)"""
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            state = (api.inspect_service(SERVICE).get("UpdateStatus") or {}).get("State")
            tasks = api.tasks({"service": SERVICE, "desired-state": "running"})
        except docker.errors.APIError:
            state, tasks = None, []  # not created yet
        running = [t for t in tasks if t["Status"]["State"] == "running"]
        if state == "rollback_completed" and len(running) == REPLICAS:
            lost = next((n for n in nodes if n.node_id != leader and any(
                t["NodeID"] == n.node_id for t in running)), None)
            if lost is not None:
                seen["node"] = lost
                seen["tasks"] = [t["ID"] for t in running if t["NodeID"] == lost.node_id]
                lost.kill()
                seen["killed"] = time.time()
                return
        stop.wait(0.2)


def test_without_a_swarm_it_says_so_and_completes(tmp_path: Path) -> None:
    """``managers = []``: no error, a sentence on how to connect, no live cell run."""
    executed = _execute(tmp_path / "executed.ipynb", {"managers": [], "service": SERVICE})
    text = _text(executed)
    assert "No swarm connected" in text and "managers" in text
    assert "no swarm: skipped" in text and "no swarm: nothing recorded" in text
    assert "moved: skipped" in text


def test_on_a_swarm_it_rolls_back_and_moves_a_lost_nodes_tasks(swarm: LocalSwarm,
                                                                tmp_path: Path) -> None:
    """The broken update is rolled back by Swarm, the lost node is drained by the notebook's
    watch and its tasks run elsewhere, and the bundle opens with the swarm's tables."""
    api = swarm.nodes[0].client(timeout=10).api
    leader = _leader(api)
    asker = next(n for n in swarm.nodes if n.node_id == leader)  # stays up: never killed
    api = asker.client(timeout=10).api
    bundle = tmp_path / "swarm.opsb"
    params = {"managers": swarm.urls, "scope": SCOPE, "service": SERVICE,
              "replicas": REPLICAS, "lose_node": "*", "image": IMAGE,
              "bundle_path": str(bundle)}
    seen: dict[str, Any] = {}
    stop = threading.Event()
    killer = threading.Thread(target=_kill_after_rollback,
                              args=(api, list(swarm.nodes), leader, seen, stop), daemon=True)
    started = time.monotonic()
    killer.start()
    try:
        executed = _execute(tmp_path / "executed.ipynb", params)
        ran = time.monotonic() - started
        stop.set()
        killer.join(10)
        assert "killed" in seen, "the update was never seen rolled back, so no node was lost"
        lost = seen["node"]
        assert seen["tasks"], f"{lost.netns} ran no task of {SERVICE} when it was lost"
        text = _text(executed)
        assert "rolled back: True" in text, text[-3000:]
        assert "moved: True" in text, text[-3000:]
        assert "has swarm: True" in text, text[-3000:]
        assert f"node {lost.netns} is lost" in text and "drained by opskit" in text

        # the swarm itself: the previous spec runs again, every replica elsewhere
        service = api.inspect_service(SERVICE)
        assert service["UpdateStatus"]["State"] == "rollback_completed"
        env = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []
        assert "RELEASE=2" in env and "WEB_PORT=9090" not in env
        tasks = api.tasks({"service": SERVICE})
        running = [t for t in tasks if t["DesiredState"] == "running"]
        assert len(running) == REPLICAS
        assert all(t["Status"]["State"] == "running" for t in running)
        assert all(t["NodeID"] != lost.node_id for t in running)
        moved = {t["ID"]: t["DesiredState"] for t in tasks if t["ID"] in seen["tasks"]}
        assert set(moved.values()) == {"shutdown"}, moved
        node = api.inspect_node(lost.node_id)
        assert node["Spec"]["Availability"] == "drain"
        assert node["Spec"]["Labels"]["io.opskit.scope"] == SCOPE

        opened = opskit.open_bundle(bundle)
        assert opened.has_swarm
        assert SERVICE in set(opened.swarm_services["service"])
        assert lost.netns in set(opened.swarm_nodes["node"])
        back = max(_epoch(t["Status"]["Timestamp"]) for t in running)
        print(f"\nnotebook on the swarm: {ran:.0f} s; every replica running elsewhere "
              f"{back - seen['killed']:.1f} s after {lost.netns}'s dockerd was killed")
    finally:
        stop.set()
        killer.join(10)
        lost = seen.get("node")
        if lost is not None:
            lost.start()
        with contextlib.suppress(docker.errors.APIError, AttributeError):
            spec = api.inspect_node(lost.node_id)
            body = {**spec["Spec"], "Availability": "active"}
            api.update_node(lost.node_id, spec["Version"]["Index"], body)
