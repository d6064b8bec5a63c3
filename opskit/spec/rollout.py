"""How a Swarm service is updated and rolled back, derived from its healthcheck.

Swarm counts a failed task against an update only if it failed within ``Monitor`` of starting,
so a monitor shorter than the time a healthcheck needs to call a task unhealthy means an
update that breaks the service is never rolled back. docker-py's ``UpdateConfig()`` is worse:
parallelism 0 (all at once) and failure action ``continue``. :func:`derive_rollout` sets
every field explicitly from the healthcheck; :func:`lint_rollout` names the known traps before
anything is sent to the engine.

The docker command equivalent is ``docker service create --update-parallelism 1
--update-delay 0s --update-order start-first --update-failure-action rollback
--update-monitor 47s --update-max-failure-ratio 0 --rollback-...``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ..base.errors import InvalidSpec
from .fields import Healthcheck, nanoseconds

__all__ = ["MONITOR_MARGIN", "Rollout", "RolloutProblem", "derive_rollout", "detection_time",
           "lint_rollout"]

MONITOR_MARGIN = 5.0
"""Seconds added to the healthcheck's detection time: a probe may start late, and a task
must have run its start period before its first failing probe counts."""

Order = Literal["start-first", "stop-first"]
FailureAction = Literal["rollback", "pause", "continue"]


def detection_time(check: Healthcheck) -> float:
    """Seconds, at worst, from a task's start until the engine calls it ``unhealthy``:
    the start period, then ``retries`` probes each up to ``interval + timeout`` apart."""
    return float(check.start_period) + (float(check.interval) + float(check.timeout)) * \
        check.retries


@dataclass(frozen=True)
class Rollout:
    """The update and rollback settings of a Swarm service, every field explicit.

    Args:
        parallelism: tasks updated at once (``--update-parallelism``; never 0, which means all).
        delay: seconds between batches (``--update-delay``).
        order: ``start-first`` (the new task runs before the old one stops) or ``stop-first``.
        failure_action: what Swarm does when an update fails (``rollback``, ``pause``,
            ``continue``); the rollback's own failure action is always ``pause``.
        monitor: seconds after each task starts during which its failure counts
            (``--update-monitor``); at least the healthcheck's detection time.
        max_failure_ratio: failed tasks tolerated, as a share of those updated (0 = none).
        deadline: seconds opskit gives each batch (``parallelism`` tasks) of an update to
            complete, so ``batches x deadline`` for the whole update, before it rolls the
            update back itself (swarmkit has no timeout of its own).
    """

    parallelism: int = 1
    delay: float = 0.0
    order: Order = "start-first"
    failure_action: FailureAction = "rollback"
    monitor: float = 15.0
    max_failure_ratio: float = 0.0
    deadline: float = 120.0

    def __post_init__(self) -> None:
        if isinstance(self.parallelism, bool) or not isinstance(self.parallelism, int) or \
                self.parallelism < 1:
            raise InvalidSpec("rollout.parallelism", f"{self.parallelism!r} must be a whole "
                              "number of at least 1 (the engine reads 0 as all at once)",
                              allowed="1, 2, 3, ...")
        if self.order not in ("start-first", "stop-first"):
            raise InvalidSpec("rollout.order", f"{self.order!r} is not an order",
                              allowed="'start-first', 'stop-first'")
        if self.failure_action not in ("rollback", "pause", "continue"):
            raise InvalidSpec("rollout.failure_action", f"{self.failure_action!r} is not an "
                              "action", allowed="'rollback', 'pause', 'continue'")
        for name in ("delay", "monitor", "deadline"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidSpec(f"rollout.{name}", f"{value!r} must be seconds, 0 or more",
                                  allowed="a number of seconds")
        if not 0.0 <= float(self.max_failure_ratio) <= 1.0:
            raise InvalidSpec("rollout.max_failure_ratio", f"{self.max_failure_ratio!r} is "
                              "not a share", allowed="0.0 to 1.0")

    def update_config(self) -> dict[str, object]:
        """The Engine API's ``UpdateConfig`` (durations in nanoseconds)."""
        return {"Parallelism": self.parallelism, "Delay": nanoseconds(self.delay),
                "FailureAction": self.failure_action, "Monitor": nanoseconds(self.monitor),
                "MaxFailureRatio": float(self.max_failure_ratio), "Order": self.order}

    def rollback_config(self) -> dict[str, object]:
        """The Engine API's ``RollbackConfig``: the same pace and monitor; a rollback that
        fails pauses (Swarm never rolls a rollback back) and opskit pages."""
        return {**self.update_config(), "FailureAction": "pause"}


def derive_rollout(check: Healthcheck | None, **overrides: object) -> Rollout:
    """Settings whose monitor covers the healthcheck's detection time plus
    :data:`MONITOR_MARGIN`, and whose per-batch deadline lets a task be replaced once and
    watched again.

    Without a healthcheck, a task fails only by exiting: the monitor is the margin alone.
    ``overrides`` replace derived fields (``order="stop-first"``).

    Raises:
        InvalidSpec: an override names no field or has a wrong value.
    """
    detect = detection_time(check) if check is not None and check.test[0] != "NONE" else 0.0
    base = Rollout(monitor=round(detect + MONITOR_MARGIN, 3))
    fields = set(Rollout.__dataclass_fields__)
    for key in overrides:
        if key not in fields:
            raise InvalidSpec(f"rollout.{key}", "is not a rollout field",
                              allowed=", ".join(sorted(fields)))
    derived = replace(base, **overrides)  # type: ignore[arg-type]
    if "deadline" not in overrides:
        # a task may be replaced once (start-first, then unhealthy) and must then be watched
        # for the monitor again; a minute on top for scheduling and image loading
        derived = replace(derived, deadline=round(2 * derived.monitor + derived.delay + 60.0, 3))
    return derived


@dataclass(frozen=True)
class RolloutProblem:
    """A known trap in a rollout's settings: ``severity`` is ``error`` (refused) or
    ``warning``; ``hint`` says what to change."""

    field: str
    severity: Literal["error", "warning"]
    problem: str
    hint: str


def lint_rollout(rollout: Rollout, check: Healthcheck | None, *, replicas: int | None,
                 max_per_node: int = 0, nodes: int | None = None) -> list[RolloutProblem]:
    """The traps in ``rollout`` for a service of ``replicas`` (None: global) on ``nodes``
    schedulable nodes, with at most ``max_per_node`` replicas per node (0: no limit).

    - monitor shorter than the healthcheck's detection time: a broken update never rolls back
      (an error when the failure action is ``rollback``);
    - start-first when every slot a node may hold is taken: the new task can never be placed,
      and the update stays ``updating`` for ever (an error);
    - failure action ``continue``: a failing update carries on (a warning);
    - parallelism above the replicas: all at once (a warning).
    """
    found: list[RolloutProblem] = []
    if check is not None and check.test[0] != "NONE":
        need = detection_time(check)
        if rollout.monitor < need:
            found.append(RolloutProblem(
                "rollout.monitor", "error" if rollout.failure_action == "rollback" else "warning",
                f"monitor {rollout.monitor:g}s is shorter than the {need:g}s the healthcheck needs "
                "to call a task unhealthy, so a broken update is never rolled back",
                f"use at least {need + MONITOR_MARGIN:g}s (derive_rollout(healthcheck))"))
    if rollout.order == "start-first" and max_per_node and nodes is not None and (
            replicas is not None and replicas >= max_per_node * nodes):
        found.append(RolloutProblem(
            "rollout.order", "error",
            f"start-first with at most {max_per_node} replica(s) per node on {nodes} node(s) "
            "leaves no slot for the new task: the update waits for ever",
            "use order='stop-first', or raise max_per_node, or add a node"))
    if rollout.failure_action == "continue":
        found.append(RolloutProblem(
            "rollout.failure_action", "warning",
            "failure action 'continue' carries on with an update whose tasks fail",
            "use 'rollback' (or 'pause' to decide by hand)"))
    if replicas is not None and replicas > 0 and rollout.parallelism > replicas:
        found.append(RolloutProblem(
            "rollout.parallelism", "warning",
            f"parallelism {rollout.parallelism} updates all {replicas} replicas at once",
            "use a parallelism below the replicas so some keep serving"))
    return found
