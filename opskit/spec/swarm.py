"""A :class:`~opskit.spec.service.ServiceSpec` as a Swarm service: the Engine API's
``ServiceSpec`` body, every safety field explicit, refused before it reaches a manager when it
holds a known trap.

The docker command equivalent is ``docker service create --name NAME --replicas N
--endpoint-mode dnsrr --publish mode=host,target=8080,published=18080 --restart-condition any
--update-failure-action rollback --update-monitor ... IMAGE``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..base.errors import InvalidSpec
from .fields import nanoseconds
from .rollout import Rollout, RolloutProblem, derive_rollout, lint_rollout
from .service import ServiceSpec

__all__ = ["RESTART_DELAY", "SwarmService", "swarm_service"]

RESTART_DELAY = 5.0
"""Seconds Swarm waits before it starts a failed task again (the engine's own default)."""


@dataclass(frozen=True)
class SwarmService:
    """What :func:`swarm_service` made: the ``body`` for ``POST /services/create``, the
    ``rollout`` it carries, and the ``warnings`` of the lint (errors are raised instead)."""

    body: dict[str, Any]
    rollout: Rollout
    warnings: tuple[RolloutProblem, ...]


def _restart_policy(spec: ServiceSpec, window: float) -> dict[str, Any]:
    condition, attempts = "any", 0
    if spec.restart.startswith("on-failure"):
        condition = "on-failure"
        attempts = int(spec.restart.partition(":")[2] or 0)
    return {"Condition": condition, "Delay": nanoseconds(RESTART_DELAY),
            "MaxAttempts": attempts, "Window": nanoseconds(window)}


def _ports(spec: ServiceSpec) -> list[dict[str, Any]]:
    ports = []
    for port in spec.port_maps:
        if port.host_ip not in ("0.0.0.0", "", "::"):
            raise InvalidSpec(
                f"ports[{port.key}]", f"Swarm publishes on every address of the node, not only "
                f"{port.host_ip}", hint=f"write the port as {{'{port.key}': "
                f"'0.0.0.0:{port.host_port or ''}'}} to accept that, or leave it unpublished "
                "and reach the service on its network.")
        entry: dict[str, Any] = {"Protocol": port.protocol, "TargetPort": port.container_port,
                                 "PublishMode": "host"}
        if port.host_port:
            entry["PublishedPort"] = port.host_port
        ports.append(entry)
    return ports


def _mounts(spec: ServiceSpec) -> list[dict[str, Any]]:
    mounts = []
    for source, target in spec.volumes.items():
        path, _, mode = str(target).partition(":")
        mounts.append({"Type": "bind" if source.startswith("/") else "volume",
                       "Source": source, "Target": path, "ReadOnly": mode == "ro"})
    return mounts


def swarm_service(spec: ServiceSpec, *, labels: Mapping[str, str] | None = None,
                  rollout: Rollout | None = None, mode: Literal["replicated", "global"] =
                  "replicated", constraints: Sequence[str] = (), max_per_node: int = 0,
                  nodes: int | None = None, endpoint_mode: Literal["dnsrr", "vip"] = "dnsrr"
                  ) -> SwarmService:
    """The Swarm service for ``spec``.

    Restarting is Swarm's job on Swarm: the restart condition is ``any`` (``on-failure[:N]``
    keeps its meaning), with Swarm's 5 s delay and a window as long as the rollout's monitor,
    so a spec's ``restart='no'`` (the single-engine default, where opskit's watchdog restarts)
    does not switch Swarm's self-healing off.

    Args:
        labels: labels of the service (opskit's scope labels), with the spec's own; its
            containers carry the spec's own only.
        rollout: the update and rollback settings; derived from the healthcheck when None.
        mode: ``replicated`` (``spec.replicas`` tasks) or ``global`` (one per node).
        constraints: placement constraints (``node.role==worker``, ``node.labels.zone==a``).
        max_per_node: at most this many replicas on one node (0: no limit).
        nodes: schedulable nodes, when known: the lint then checks placement traps.
        endpoint_mode: ``dnsrr`` (default: it needs no IPVS in the kernel) or ``vip``.

    Raises:
        InvalidSpec: a field Swarm cannot honour (a port bound to one address) or a rollout
            trap of severity error (named by :func:`~opskit.spec.rollout.lint_rollout`).
    """
    if mode not in ("replicated", "global"):
        raise InvalidSpec("mode", f"{mode!r} is not a Swarm mode",
                          allowed="'replicated', 'global'")
    if endpoint_mode not in ("dnsrr", "vip"):
        raise InvalidSpec("endpoint_mode", f"{endpoint_mode!r} is not an endpoint mode",
                          allowed="'dnsrr', 'vip'")
    if isinstance(max_per_node, bool) or not isinstance(max_per_node, int) or max_per_node < 0:
        raise InvalidSpec("max_per_node", f"{max_per_node!r} must be a whole number, 0 or more",
                          allowed="0 (no limit), 1, 2, ...")
    check = spec.health
    rollout = rollout if rollout is not None else derive_rollout(check)
    replicas = spec.replicas if mode == "replicated" else None
    problems = lint_rollout(rollout, check, replicas=replicas, max_per_node=max_per_node,
                            nodes=nodes)
    for problem in problems:
        if problem.severity == "error":
            raise InvalidSpec(problem.field, problem.problem, hint=problem.hint + ".")
    all_labels = {**spec.labels, **(labels or {})}
    container: dict[str, Any] = {
        # the task containers carry the spec's labels only: opskit's scope labels and token
        # are the service's (Swarm labels each container with its service and task); on a
        # node's engine they would read as opskit containers with a token for another name
        "Image": spec.image, "Labels": dict(spec.labels),
        "Env": [f"{key}={value}" for key, value in spec.env.items()],
        "Mounts": _mounts(spec), "Init": bool(spec.init)}
    for key, value in (("Command", spec.entrypoint), ("Args", spec.command),
                       ("User", spec.user), ("Dir", spec.workdir),
                       ("StopSignal", spec.stop_signal)):
        if value is not None:
            container[key] = list(value) if isinstance(value, tuple) else value
    if spec.stop_timeout is not None:
        container["StopGracePeriod"] = nanoseconds(spec.stop_timeout)
    if check is not None:
        container["Healthcheck"] = check.to_engine()
    limits: dict[str, Any] = {}
    if spec.memory is not None:
        limits["MemoryBytes"] = int(spec.memory)
    if spec.cpus is not None:
        limits["NanoCPUs"] = nanoseconds(spec.cpus)
    if spec.pids_limit is not None:
        limits["Pids"] = int(spec.pids_limit)
    placement: dict[str, Any] = {"Constraints": list(constraints)}
    if max_per_node:
        placement["MaxReplicas"] = max_per_node
    body: dict[str, Any] = {
        "Name": spec.name, "Labels": dict(all_labels),
        "TaskTemplate": {"ContainerSpec": container, "Resources": {"Limits": limits},
                         "RestartPolicy": _restart_policy(spec, rollout.monitor),
                         "Placement": placement,
                         "Networks": [{"Target": net} for net in spec.networks]},
        "Mode": {"Replicated": {"Replicas": spec.replicas}} if mode == "replicated"
        else {"Global": {}},
        "UpdateConfig": rollout.update_config(), "RollbackConfig": rollout.rollback_config(),
        "EndpointSpec": {"Mode": endpoint_mode, "Ports": _ports(spec)}}
    return SwarmService(body, rollout, tuple(p for p in problems if p.severity != "error"))
