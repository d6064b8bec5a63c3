"""opskit on a real three-manager Swarm (three dockerd in their own network namespaces, see
tests/support/swarm.py): frames, deploy with a watched rollout, a failed update rolled back by
Swarm, a stuck one rolled back by opskit, scope on services and nodes, manager failover, a lost
node drained by the watch and its tasks moved, under-replication with its reason, chaos with
undo and residue, a bundle with the swarm's frames.

What the swarm did is read from the managers with docker-py, not from opskit's own records.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import docker
import pandas as pd
import pytest

import opskit
from opskit.base import labels as L
from opskit.engine.swarm import Managers
from opskit.spec.rollout import derive_rollout
from opskit.spec.service import ServiceSpec
from opskit.swarm.watch import SwarmWatch
from tests.support.session import until
from tests.support.swarm import LocalSwarm

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(LocalSwarm.unavailable_reason() is not None,
                       reason=f"local swarm: {LocalSwarm.unavailable_reason()}"),
]

SCOPE = "swarmtest"
HEALTH = {"test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
          "interval": 0.5, "timeout": 1, "retries": 2}


def web(name: str, replicas: int = 3, **kw: Any) -> ServiceSpec:
    return ServiceSpec(name=name, image="opskit/demo-web:latest", healthcheck=HEALTH,
                       replicas=replicas, **kw)


@pytest.fixture(scope="module")
def lab(demo: list[str]) -> Iterator[LocalSwarm]:
    swarm = LocalSwarm("okt", net=250)
    try:
        swarm.up(["opskit/demo-web:latest"])
        for node in swarm.nodes[1:]:  # node 1 stays out of the scope: never drained
            node.label(**{L.SCOPE: SCOPE})
        yield swarm
    finally:
        swarm.close()


@pytest.fixture
def swarm(lab: LocalSwarm) -> Iterator[opskit.Swarm]:
    for node in lab.nodes:  # whatever a failed test left: every node up and linked
        node.thaw()
        lab.mend(node)
        node.start()
    sw = opskit.connect_swarm(lab.urls, scope=SCOPE)
    yield sw
    for service in sw.managers.services():
        sw.managers.remove_service(str(service["ID"]))
    for node in sw.managers.nodes():
        if node["Spec"].get("Availability") != "active":
            spec = dict(node["Spec"], Availability="active")
            sw.managers.update_node(str(node["ID"]), node["Version"]["Index"], spec)


def calm(check: Any) -> Any:
    """``check`` for ``until``, false while the swarm elects a leader (a cut or lost manager
    can start an election, which on a loaded machine outlasts the managers' wait)."""
    def run() -> Any:
        try:
            return check()
        except opskit.errors.SwarmUnavailable:
            return False
    return run


def leader_client(lab: LocalSwarm) -> docker.DockerClient:
    """A client of a manager that answers (any manager forwards to the leader)."""
    for node in lab.nodes:
        if node.ping():
            client = node.client()
            if client.info()["Swarm"].get("ControlAvailable"):
                return client
    raise AssertionError("no manager answers")


def the_leader(client: docker.DockerClient) -> str:
    """The leader's node ID, as the managers say (every manager has ControlAvailable)."""
    return str(next(n["ID"] for n in client.api.nodes()
                    if (n.get("ManagerStatus") or {}).get("Leader")))


def running_tasks(client: docker.DockerClient, service: str) -> list[dict[str, Any]]:
    tasks = client.api.tasks(filters={"service": service, "desired-state": "running"})
    return [t for t in tasks if t["Status"]["State"] == "running"]


def test_frames_of_a_deployed_service(lab: LocalSwarm, swarm: opskit.Swarm) -> None:
    out = swarm.deploy(web("front"))
    assert out.created and out.ok, out
    nodes = swarm.nodes()
    assert list(nodes["state"]) == ["ready"] * 3 and int(nodes["leader"].sum()) == 1
    assert set(nodes["node"]) == {n.netns for n in lab.nodes}
    services = swarm.services().set_index("service")
    assert services.loc["front", "wanted"] == 3 and services.loc["front", "running"] == 3
    assert bool(services.loc["front", "opskit"])
    tasks = swarm.tasks("front", all=False)
    assert sorted(tasks["slot"]) == [1, 2, 3] and set(tasks["state"]) == {"running"}
    witness = running_tasks(leader_client(lab), "front")
    assert {t["ID"] for t in witness} == set(tasks["task_id"])
    stats = swarm.stats("front")
    assert sorted(stats["slot"]) == [1, 2, 3] and set(stats["service"]) == {"front"}
    assert (stats["mem_used"] > 0).all()
    events = swarm.events("5m")
    assert ((events["type"] == "service") & (events["action"] == "create")
            & (events["name"] == "front")).any()
    body = leader_client(lab).api.inspect_service("front")["Spec"]
    assert body["UpdateConfig"]["Parallelism"] == 1
    assert body["UpdateConfig"]["FailureAction"] == "rollback"
    assert body["UpdateConfig"]["Monitor"] >= 8 * 10**9  # 2 x 1.5 s + margin 5 s
    assert body["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    assert body["EndpointSpec"]["Mode"] == "dnsrr"


def test_a_failed_update_is_rolled_back_and_says_why(lab: LocalSwarm,
                                                      swarm: opskit.Swarm) -> None:
    swarm.deploy(web("roll"))
    with pytest.raises(opskit.errors.RolloutFailed) as caught:
        swarm.deploy(web("roll", env={"WEB_PORT": "9090"}))
    assert caught.value.rolled_back and caught.value.state == "rollback_completed"
    assert "rolled back due to failure" in caught.value.message_from_swarm, \
        caught.value.message_from_swarm
    spec = leader_client(lab).api.inspect_service("roll")["Spec"]
    assert not any("WEB_PORT" in e for e in spec["TaskTemplate"]["ContainerSpec"].get("Env") or [])
    until(lambda: len(running_tasks(leader_client(lab), "roll")) == 3, timeout=30,
          what="the old spec's three tasks")
    actions = list(swarm.actions()["action"])
    assert "service-update" in actions


def test_a_stuck_update_is_rolled_back_by_opskit(lab: LocalSwarm, swarm: opskit.Swarm) -> None:
    """No node satisfies the new placement: swarmkit waits for ever; opskit's deadline ends it."""
    swarm.deploy(web("stuck", replicas=2))
    rollout = derive_rollout(web("stuck").health, deadline=6.0)
    started = time.monotonic()
    with pytest.raises(opskit.errors.RolloutFailed) as caught:
        swarm.deploy(web("stuck", replicas=2), rollout=rollout,
                     constraints=["node.labels.nowhere==1"])
    assert caught.value.rolled_back, caught.value
    assert time.monotonic() - started < 60
    rows = swarm.actions()
    rollback = rows[rows["action"] == "service-rollback"].iloc[-1]
    assert rollback["result"] == "ok" and "still updating" in rollback["reason"]
    spec = leader_client(lab).api.inspect_service("stuck")["Spec"]
    assert not spec["TaskTemplate"].get("Placement", {}).get("Constraints")


def test_services_and_nodes_outside_the_scope_are_never_touched(
        lab: LocalSwarm, swarm: opskit.Swarm) -> None:
    client = leader_client(lab)
    client.services.create("opskit/demo-web:latest", name="foreign")
    client.services.create("opskit/demo-web:latest", name="forged",
                           labels={L.MANAGED: "true", L.SCOPE: SCOPE, L.OWNER: "0" * 32})
    versions = {n: client.api.inspect_service(n)["Version"]["Index"]
                for n in ("foreign", "forged")}
    for name in ("foreign", "forged"):
        with pytest.raises(opskit.errors.OutOfScope):
            swarm.deploy(web(name))
        with pytest.raises(opskit.errors.OutOfScope):
            swarm.rollback(name)
        with pytest.raises(opskit.errors.OutOfScope):
            swarm.rebalance(name)
        with pytest.raises(opskit.errors.OutOfScope):
            swarm.remove(name)
        assert client.api.inspect_service(name)["Version"]["Index"] == versions[name]
    with pytest.raises(opskit.errors.OutOfScope) as caught:
        swarm.drain(lab.nodes[0].netns)  # node 1 is not labelled for the scope
    assert "--label-add" in str(caught.value)
    assert client.api.inspect_node(lab.nodes[0].node_id)["Spec"]["Availability"] == "active"
    pid = lab.nodes[0].pid
    with pytest.raises(opskit.errors.OutOfScope):
        swarm.chaos(lab.nodes[0].netns, "kill", lab.nodes[0])
    assert lab.nodes[0].pid == pid and lab.nodes[0].ping(), "never touched"
    with pytest.raises(opskit.errors.NodeNotFound):
        swarm.drain("no-such-node")
    assert not swarm.services().set_index("service").loc["foreign", "opskit"]


def test_drain_moves_tasks_and_the_undo_leaves_no_residue(lab: LocalSwarm,
                                                           swarm: opskit.Swarm) -> None:
    swarm.deploy(web("drained"))
    node = lab.nodes[2]
    fault = swarm.chaos(node.netns, "drain")
    moved = fault.wait_moved("drained", timeout=60)
    assert moved < 60
    assert all(t["NodeID"] != node.node_id for t in running_tasks(leader_client(lab),
                                                                  "drained"))
    fault.undo()
    until(calm(lambda: not fault.residue()), timeout=60, what="no residue after the undo")
    actions = list(swarm.actions()["action"])
    assert "chaos-drain" in actions and "chaos-undo-drain" in actions


def test_calls_fail_over_when_a_manager_is_lost(lab: LocalSwarm, swarm: opskit.Swarm) -> None:
    leader = the_leader(leader_client(lab))
    lost = next(n for n in reversed(lab.nodes) if n.node_id != leader)  # no election
    first = [e for e in swarm.managers.engines if e.host == lost.url]
    others = [e for e in swarm.managers.engines if e.host != lost.url]
    managers = Managers(first + others, timeout=2, wait=20)
    lost.kill()
    try:
        started = time.monotonic()
        assert len(managers.nodes()) == 3
        assert time.monotonic() - started < 20
        alone = Managers(first, timeout=1, wait=2)
        with pytest.raises(opskit.errors.SwarmUnavailable) as caught:
            alone.nodes()
        assert lost.url in str(caught.value)
        # connected after the loss: opskit cannot ping that node's engine, and the other
        # managers' view of it is what tells the watch, long before Swarm says down
        late = opskit.connect_swarm(lab.urls, scope=SCOPE)
        watch = SwarmWatch(late, lost_after=0.0)
        watch._engines = {n: o.engine for n, o in late.node_ops().items()}
        assert lost.netns not in watch._engines
        until(lambda: any(f.kind == "node_lost" and f.subject == lost.netns
                          for f in watch.pass_once()), timeout=20, what="node_lost")
    finally:
        lost.start()


def test_a_lost_node_is_drained_and_its_tasks_move(lab: LocalSwarm,
                                                   swarm: opskit.Swarm) -> None:
    swarm.deploy(web("lost"))
    client = leader_client(lab)
    leader_id = the_leader(client)
    victim = next(n for n in lab.nodes[1:] if n.node_id != leader_id and any(
        t["NodeID"] == n.node_id for t in running_tasks(client, "lost")))
    watch = swarm.watch(drain_lost_nodes=True, lost_after=1.0, return_after=2.0, every=0.5)
    try:
        fault = swarm.chaos(victim.netns, "kill", victim)
        moved = fault.wait_moved("lost", timeout=60)
        assert moved < 40, f"moved after {moved:.1f} s"
        kinds = {(f.kind, f.subject) for f in watch.findings()}
        assert ("node_lost", victim.netns) in kinds
        rows = swarm.actions()
        drain = rows[rows["action"] == "node-drain"].iloc[-1]
        assert drain["container"] == victim.netns and "node lost" in drain["reason"]
        watch.stop()  # a watch restarted meanwhile still knows the drain from the journal
        watch = swarm.watch(drain_lost_nodes=True, lost_after=1.0, return_after=2.0, every=0.5)
        assert victim.node_id in watch.status()["drained_by_opskit"]
        fault.undo()
        until(lambda: leader_client(lab).api.inspect_node(victim.node_id)["Spec"][
            "Availability"] == "active", timeout=60, what="the node activated again by the watch")
        until(calm(lambda: not fault.residue()), timeout=90, what="no residue")
    finally:
        watch.stop()
        victim.start()


def test_under_replication_names_its_reason(lab: LocalSwarm, swarm: opskit.Swarm) -> None:
    swarm.deploy(web("nowhere", replicas=1), constraints=["node.labels.nowhere==1"],
                 wait=False)
    watch = SwarmWatch(swarm, grace=0.0)
    found = {}

    def short() -> bool:
        found.update({f.subject: f for f in watch.pass_once() if f.kind == "under_replicated"})
        return "nowhere" in found and "no suitable node" in found["nowhere"].message

    until(short, timeout=20, what="an under_replicated finding with the scheduler's reason")
    assert found["nowhere"].severity == "page"
    escalations = swarm.actions()
    assert ((escalations["action"] == "escalate") & (escalations["container"] == "nowhere")).any()


def test_a_bundle_carries_the_swarms_frames(lab: LocalSwarm, swarm: opskit.Swarm,
                                            tmp_path: Any) -> None:
    swarm.deploy(web("recorded", replicas=2))
    bundle = swarm.record("swarm-incident", path=tmp_path / "s.opsb", since="5m")
    again = opskit.open_bundle(tmp_path / "s.opsb")
    assert again.has_swarm and bundle.has_swarm
    assert len(again.swarm_nodes) == 3
    assert set(again.swarm_tasks.loc[again.swarm_tasks["desired_state"] == "running",
                                     "service"]) == {"recorded"}
    assert (again.swarm_events["type"] == "service").any()
    assert len(again.containers) >= 2 and set(again.containers["service"]) >= {"recorded"}
    assert "service-create" in set(again.actions["action"])


def recent(swarm: opskit.Swarm, since: pd.Timestamp) -> pd.DataFrame:
    """The swarm's actions since ``since`` (its journal holds the earlier tests' too)."""
    rows = swarm.actions()
    return rows[rows["ts"] >= since]


def spread(client: docker.DockerClient, service: str) -> dict[str, int]:
    counts = {n.attrs["ID"]: 0 for n in client.nodes.list()
              if n.attrs["Spec"]["Availability"] == "active"}
    for task in running_tasks(client, service):
        counts[task["NodeID"]] = counts.get(task["NodeID"], 0) + 1
    return counts


def test_an_uneven_spread_is_rebalanced_within_its_bound(lab: LocalSwarm,
                                                        swarm: opskit.Swarm) -> None:
    """A drained node that comes back gets no tasks from Swarm; the watch sees the uneven
    spread and, allowed to, rebalances it, at most ``max_rebalances`` times per window."""
    since = pd.Timestamp.now(tz="UTC")
    swarm.deploy(web("spread"))
    third = lab.nodes[2]
    swarm.drain(third.netns)
    until(lambda: len(running_tasks(leader_client(lab), "spread")) == 3 and all(
        t["NodeID"] != third.node_id for t in running_tasks(leader_client(lab), "spread")),
        timeout=60, what="the tasks off the drained node")
    swarm.activate(third.netns)
    until(lambda: max(spread(leader_client(lab), "spread").values()) == 2, timeout=20,
          what="an uneven spread")
    held = SwarmWatch(swarm, rebalance=True, max_rebalances=0)
    found = {(f.kind, f.subject): f for f in held.pass_once()}
    assert "no more until the window passes" in found[("unbalanced", "spread")].message
    assert "service-rebalance" not in set(recent(swarm, since)["action"])
    watch = SwarmWatch(swarm, rebalance=True, max_rebalances=1)
    found = {(f.kind, f.subject): f for f in watch.pass_once()}
    assert "rebalanced by opskit" in found[("unbalanced", "spread")].message
    again = {(f.kind, f.subject): f for f in watch.pass_once()}
    if ("unbalanced", "spread") in again:  # the forced update is still under way
        assert "no more until the window passes" in again[("unbalanced", "spread")].message
    assert watch.counters["rebalances"] == 1
    assert list(recent(swarm, since)["action"]).count("service-rebalance") == 1

    def even() -> bool:
        counts = spread(leader_client(lab), "spread")
        return sum(counts.values()) == 3 and max(counts.values()) - min(counts.values()) <= 1

    until(even, timeout=90, what="an even spread after the rebalance")


def test_a_cut_node_leaves_orphans_that_are_found_then_cleaned(lab: LocalSwarm,
                                                                swarm: opskit.Swarm) -> None:
    """Cut off from the managers, a node keeps running its task containers while Swarm starts
    them elsewhere: the watch reports the duplicates; once the link is back, none is left."""
    swarm.deploy(web("island"))
    client = leader_client(lab)
    leader_id = the_leader(client)
    victim = next(n for n in lab.nodes[1:] if n.node_id != leader_id and any(
        t["NodeID"] == n.node_id for t in running_tasks(client, "island")))
    watch = SwarmWatch(swarm, grace=0.0)
    watch.orphan_after = 0.0
    fault = swarm.chaos(victim.netns, "cut", victim)
    try:
        fault.wait_moved("island", timeout=90)
        kinds: dict[tuple[str, str], Any] = {}

        def orphaned() -> bool:
            kinds.update({(f.kind, f.subject): f for f in watch.pass_once()})
            return ("orphaned_tasks", victim.netns) in kinds

        until(calm(orphaned), timeout=90, what="the cut node's duplicates")
        assert ("node_lost", victim.netns) in kinds
    finally:
        fault.undo()
    until(calm(lambda: not fault.residue(orphans=lambda: watch.orphaned_containers().get(
        victim.netns, []))), timeout=120, what="no residue once the link is back")
    assert "chaos-cut" in set(swarm.actions()["action"])


def test_the_watch_rolls_back_a_paused_update_and_a_stuck_one(lab: LocalSwarm,
                                                               swarm: opskit.Swarm) -> None:
    check, since = web("x").health, pd.Timestamp.now(tz="UTC")
    swarm.deploy(web("paused", replicas=2))
    swarm.deploy(web("paused", replicas=2, env={"WEB_PORT": "9090"}),
                 rollout=derive_rollout(check, failure_action="pause"), wait=False)
    swarm.deploy(web("stalled", replicas=1))
    swarm.deploy(web("stalled", replicas=1), rollout=derive_rollout(check, deadline=3.0),
                 constraints=["node.labels.nowhere==1"], wait=False)
    watch = SwarmWatch(swarm)
    seen: dict[tuple[str, str], Any] = {}

    def both() -> bool:
        seen.update({(f.kind, f.subject): f for f in watch.pass_once()})
        return all(key in seen and "rolled back by opskit" in seen[key].message
                   for key in (("rollout_paused", "paused"), ("rollout_stuck", "stalled")))

    until(both, timeout=90, what="both updates rolled back by the watch")
    for name in ("paused", "stalled"):
        until(lambda n=name: leader_client(lab).api.inspect_service(n).get(
            "UpdateStatus", {}).get("State") == "rollback_completed", timeout=60,
            what=f"{name} rolled back")
    assert watch.counters["rollbacks"] == 2
    rows = swarm.actions()
    rows = rows[rows["ts"] >= since]  # the swarm's journal holds the earlier tests' too
    assert set(rows.loc[rows["action"] == "service-rollback", "container"]) == {"paused",
                                                                                "stalled"}


def test_a_frozen_engine_is_a_lost_node_and_thawing_leaves_no_residue(
        lab: LocalSwarm, swarm: opskit.Swarm) -> None:
    victim = lab.nodes[2]
    watch = SwarmWatch(swarm, lost_after=1.0)
    watch.pass_once()
    fault = swarm.chaos(victim.netns, "freeze", victim)
    try:
        until(calm(lambda: any(f.kind == "node_lost" and f.subject == victim.netns
                               for f in watch.pass_once())), timeout=60, what="node_lost")
    finally:
        fault.undo()
    until(calm(lambda: not fault.residue()), timeout=90, what="no residue after the thaw")


def test_task_events_come_from_each_nodes_engine(lab: LocalSwarm, swarm: opskit.Swarm) -> None:
    swarm.deploy(web("told", replicas=2))
    events = swarm.task_events("2m")
    starts = events[(events["service"] == "told") & (events["base_action"] == "start")]
    tasks = swarm.tasks("told", all=False)
    assert set(starts["task_id"]) >= set(tasks["task_id"])
    assert set(starts["node"]) == set(tasks["node"])
    health = events[(events["service"] == "told") & (events["base_action"] == "health_status")]
    assert len(health) >= 2  # only the node's own engine says a task turned healthy


def test_an_engine_that_is_not_a_manager_is_named(ops: Any) -> None:
    with pytest.raises(opskit.errors.InvalidTarget) as caught:
        opskit.connect_swarm([ops.engine.host])
    assert "not a Swarm manager" in str(caught.value) and "swarm init" in str(caught.value)


def test_when_every_node_looks_lost_from_here_none_is_drained(lab: LocalSwarm,
                                                              swarm: opskit.Swarm) -> None:
    """opskit's own view broken (every node engine silent to it, the swarm fine): draining
    would take every task down, so the watch pages and drains nothing."""
    blind = SwarmWatch(swarm, drain_lost_nodes=True, lost_after=0.0)
    blind._engines = {name: dataclasses.replace(ops.engine, client=docker.DockerClient(
        base_url="unix:///nonexistent/docker.sock", version="1.41", timeout=1))
        for name, ops in swarm.node_ops().items()}
    found = [f for f in blind.pass_once() if f.kind == "node_lost"]
    said = {f.subject: f.message for f in found}
    assert len(said) == 3 and all("not drained" in m for m in said.values())
    for node in lab.nodes[1:]:  # opted in for the scope: refused for the view, not the label
        assert "most nodes look lost" in said[node.netns]
    assert blind.counters["drains"] == 0
    assert {n["Spec"]["Availability"] for n in leader_client(lab).api.nodes()} == {"active"}
