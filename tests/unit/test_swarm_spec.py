"""A ServiceSpec as a Swarm service body: Swarm's safety switched on explicitly, the port
promise kept or refused, the rollout traps refused before any manager is asked."""

from __future__ import annotations

import pytest

from opskit.base.errors import InvalidSpec
from opskit.spec import ServiceSpec
from opskit.spec.rollout import Rollout
from opskit.spec.swarm import swarm_service

HC = {"test": ["CMD", "true"], "interval": 1, "timeout": 1, "retries": 3, "start_period": 2}


def web(**kw):
    return ServiceSpec(name="web", image="opskit/demo-web:latest", healthcheck=HC, **kw)


def test_swarms_safety_is_explicit() -> None:
    made = swarm_service(web(replicas=3, memory="64m", cpus=0.5, pids_limit=50,
                             env={"TOKEN": "s3cret"}, networks=["backend"]),
                         labels={"io.opskit.scope": "t"})
    body = made.body
    assert body["Mode"] == {"Replicated": {"Replicas": 3}}
    assert body["EndpointSpec"] == {"Mode": "dnsrr", "Ports": []}
    update, rollback = body["UpdateConfig"], body["RollbackConfig"]
    assert update["Parallelism"] == 1 and update["FailureAction"] == "rollback"
    assert update["Monitor"] == int((2 + 2 * 3 + 5) * 1e9)
    assert rollback["FailureAction"] == "pause"
    task = body["TaskTemplate"]
    assert task["RestartPolicy"]["Condition"] == "any", "restart='no' must not switch Swarm off"
    assert task["Resources"]["Limits"] == {"MemoryBytes": 64 * 1024 ** 2, "NanoCPUs": 500_000_000,
                                           "Pids": 50}
    assert task["ContainerSpec"]["Env"] == ["TOKEN=s3cret"]
    assert task["ContainerSpec"]["Healthcheck"]["Retries"] == 3
    assert body["Labels"]["io.opskit.scope"] == "t"
    assert "io.opskit.scope" not in task["ContainerSpec"]["Labels"], "the service's, not theirs"
    assert task["Networks"] == [{"Target": "backend"}]
    assert made.warnings == ()


def test_restart_entrypoint_and_command_keep_their_meaning() -> None:
    body = swarm_service(web(restart="on-failure:4", entrypoint=["/bin/web"],
                             command="serve --fast")).body
    assert body["TaskTemplate"]["RestartPolicy"]["Condition"] == "on-failure"
    assert body["TaskTemplate"]["RestartPolicy"]["MaxAttempts"] == 4
    spec = body["TaskTemplate"]["ContainerSpec"]
    assert spec["Command"] == ["/bin/web"] and spec["Args"] == ["sh", "-c", "serve --fast"]
    assert swarm_service(web(), mode="global").body["Mode"] == {"Global": {}}


def test_ports_are_host_mode_and_a_loopback_promise_is_not_broken_silently() -> None:
    with pytest.raises(InvalidSpec, match=r"ports\[8080/tcp\]") as info:
        swarm_service(web(ports={8080: 18080}))
    assert "0.0.0.0:18080" in info.value.hint
    ports = swarm_service(web(ports={8080: "0.0.0.0:18080"})).body["EndpointSpec"]["Ports"]
    assert ports == [{"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host",
                      "PublishedPort": 18080}]


def test_rollout_traps_are_refused_before_any_manager_is_asked() -> None:
    with pytest.raises(InvalidSpec, match=r"rollout\.monitor"):
        swarm_service(web(), rollout=Rollout(monitor=2.0))
    with pytest.raises(InvalidSpec, match=r"rollout\.order"):
        swarm_service(web(replicas=3), max_per_node=1, nodes=3)
    body = swarm_service(web(replicas=2), max_per_node=1, nodes=3).body
    assert body["TaskTemplate"]["Placement"]["MaxReplicas"] == 1
    warned = swarm_service(web(replicas=2), rollout=Rollout(monitor=60, parallelism=3))
    assert [w.field for w in warned.warnings] == ["rollout.parallelism"]
    for bad in ({"mode": "daemon"}, {"endpoint_mode": "ingress"}, {"max_per_node": -1}):
        with pytest.raises(InvalidSpec):
            swarm_service(web(), **bad)


def test_volumes_are_mounts() -> None:
    mounts = swarm_service(web(volumes={"data": "/data", "/srv/x": "/x:ro"})).body[
        "TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert mounts == [{"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": False},
                      {"Type": "bind", "Source": "/srv/x", "Target": "/x", "ReadOnly": True}]
