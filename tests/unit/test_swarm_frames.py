"""The swarm's frames and the watch's reasons, on payloads recorded from a real 3-manager swarm
(tests/payloads/manifest.json: a service whose failed update Swarm rolled back, one that no node
can take, a drained node). No engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opskit.base import labels as L
from opskit.swarm import frames
from opskit.swarm.service import find_node, node_in_scope, service_in_scope, service_labels
from opskit.swarm.watch import _deadline, _shortage_reason

PAYLOADS = Path(__file__).parent.parent / "payloads"


def load(name: str) -> Any:
    return json.loads((PAYLOADS / f"swarm_{name}.json").read_text())


NODES, SERVICES, TASKS, EVENTS = load("nodes"), load("services"), load("tasks"), load("events")


def by_name(name: str) -> dict[str, Any]:
    return next(s for s in SERVICES if s["Spec"]["Name"] == name)


def test_nodes_are_named_by_their_lab_label_with_one_leader() -> None:
    nodes = frames.nodes_frame(NODES).set_index("node")
    assert list(nodes.index) == ["okdn1", "okdn2", "okdn3"]
    assert int(nodes["leader"].sum()) == 1 and bool(nodes.loc["okdn1", "leader"])
    assert nodes.loc["okdn3", "availability"] == "drain"
    assert set(nodes["role"]) == {"manager"} and set(nodes["state"]) == {"ready"}


def test_tasks_carry_service_and_node_names_and_the_schedulers_error() -> None:
    tasks = frames.tasks_frame(TASKS, NODES, SERVICES)
    pending = tasks[tasks["service"] == "nowhere"].iloc[0]
    assert pending["state"] == "pending" and "no suitable node" in pending["error"]
    web = tasks[(tasks["service"] == "web") & (tasks["desired_state"] == "running")]
    assert sorted(web["slot"]) == [1, 2, 3] and set(web["state"]) == {"running"}
    assert set(web["node"]) <= {"okdn1", "okdn2"}  # okdn3 is drained
    assert str(tasks["ts"].dtype) == "datetime64[ns, UTC]"


def test_services_count_replicas_and_show_the_update_state() -> None:
    services = frames.services_frame(SERVICES, TASKS, owned={"web": True}).set_index("service")
    assert services.loc["web", "wanted"] == 3 and services.loc["web", "running"] == 3
    assert services.loc["web", "update_state"] == "rollback_completed"
    assert services.loc["nowhere", "running"] == 0 and services.loc["nowhere", "starting"] == 1
    assert bool(services.loc["web", "opskit"]) and not bool(services.loc["nowhere", "opskit"])


def test_events_are_sorted_service_and_node_events() -> None:
    events = frames.events_frame(EVENTS)
    assert set(events["type"]) == {"service", "node"}
    assert events["ts"].is_monotonic_increasing
    assert ((events["type"] == "service") & (events["name"] == "web")).any()


def test_the_reason_a_service_is_short_is_swarms_own() -> None:
    nowhere = by_name("nowhere")
    mine = [t for t in TASKS if t["ServiceID"] == nowhere["ID"]]
    desired = [t for t in mine if t["DesiredState"] == "running"]
    reason = _shortage_reason(nowhere["Spec"], mine, desired)
    assert "no suitable node" in reason and "placement" in reason


def test_restart_attempts_used_up_is_named() -> None:
    spec = {"TaskTemplate": {"RestartPolicy": {"Condition": "on-failure", "MaxAttempts": 2}}}
    failed = [{"Status": {"State": "failed", "Err": "task: non-zero exit (3)",
                          "Timestamp": f"2026-12-06T21:0{i}:00Z"}, "DesiredState": "shutdown"}
              for i in range(2)]
    assert "restart attempts are used up (2" in _shortage_reason(spec, failed, [])


def test_the_update_deadline_counts_batches() -> None:
    web = by_name("web")
    monitor = web["Spec"]["UpdateConfig"]["Monitor"] / 1e9
    assert _deadline(web) == pytest.approx(3 * (2 * monitor + 60.0))


def test_scope_of_services_and_nodes() -> None:
    key = b"k" * 32
    mine = {"ID": "x", "Spec": {"Name": "web", "Labels": service_labels("s", key, "web")}}
    assert service_in_scope(mine, "s", key) is None
    forged = {"ID": "y", "Spec": {"Name": "web", "Labels": {
        L.MANAGED: "true", L.SCOPE: "s", L.OWNER: "0" * 32}}}
    assert "token" in (service_in_scope(forged, "s", key) or "")
    other_key = service_in_scope(mine, "s", b"z" * 32)
    assert other_key is not None
    renamed = {"ID": "x", "Spec": {"Name": "api", "Labels": service_labels("s", key, "web")}}
    assert service_in_scope(renamed, "s", key) is not None  # a token is for one name
    drained = find_node(NODES, "okdn3")
    assert node_in_scope(drained, "payloads") is None
    assert "--label-add" in (node_in_scope(find_node(NODES, "okdn1"), "payloads") or "")


def test_a_swarm_bundle_filters_by_service_and_time() -> None:
    import opskit

    bundle = opskit.open_bundle(PAYLOADS.parent.parent / "samples" / "sample-swarm.opsb")
    assert bundle.has_swarm
    tasks = bundle.swarm_tasks("web")
    assert len(tasks) == len(bundle.swarm_tasks) and len(tasks) > 0
    assert len(bundle.swarm_services("web")) == 1 and len(bundle.swarm_services("nope")) == 0
    assert len(bundle.swarm_nodes(list(bundle.swarm_nodes["node"])[:1])) == 1
    last = bundle.swarm_events["ts"].max()
    assert len(bundle.swarm_events(last)) == (bundle.swarm_events["ts"] == last).sum()


def test_a_time_that_is_no_time_is_refused_with_the_field() -> None:
    from opskit.base.errors import InvalidSpec
    from opskit.swarm.cluster import _to_ns

    with pytest.raises(InvalidSpec) as caught:
        _to_ns("yesterday", 0)
    assert "since" in str(caught.value)
    assert _to_ns("10s", 20 * 10**9) == 10 * 10**9
