"""Swarm services and nodes, acted on through the managers: deploy (create or update), a
health-gated rollout watched with opskit's own deadline, rollback, drain and activate, and a
bounded rebalance. Every action is written to the action journal before and after.

Scope: opskit updates, rolls back, rebalances and removes only services it created in its
scope (labels with an ownership token signed by the scope key, like its containers); it drains
and activates only nodes a person labelled for the scope (``io.opskit.scope=SCOPE`` on the
node: ``docker node update --label-add io.opskit.scope=SCOPE NODE``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..act.actions import ActionJournal, ActionRecord
from ..base import errors
from ..base import labels as L
from ..engine.swarm import Managers
from ..spec.rollout import Rollout
from ..spec.service import ServiceSpec
from ..spec.swarm import SwarmService, swarm_service
from .frames import node_name

log = logging.getLogger("opskit")

__all__ = ["DEADLINE_LABEL", "RolloutOutcome", "deploy_service", "find_node", "force_update",
           "node_in_scope", "replicas_running", "rollback", "service_in_scope", "service_labels",
           "set_availability", "watch_rollout"]

POLL = 0.5
DEADLINE_LABEL = L.PREFIX + "rollout-deadline"
_DONE = {"completed": True, "rollback_completed": False}


def service_labels(scope: str, key: bytes, name: str) -> dict[str, str]:
    """The labels that make a Swarm service opskit's in ``scope``."""
    labels = L.resource_labels(scope, service=name)
    labels[L.OWNER] = L.owner_token(key, scope, f"swarm:{name}", "")
    return labels


def service_in_scope(service: Mapping[str, Any], scope: str, key: bytes) -> str | None:
    """Why a service is *not* opskit's to act on in ``scope``, or None when it is."""
    spec = service.get("Spec") or {}
    return L.check_owned(spec.get("Labels") or {}, name=f"swarm:{spec.get('Name', '')}",
                         scope=scope, key=key)


def node_in_scope(node: Mapping[str, Any], scope: str) -> str | None:
    """Why a node is *not* one opskit may drain or activate, or None when it is."""
    labels = (node.get("Spec") or {}).get("Labels") or {}
    if labels.get(L.SCOPE) != scope:
        return (f"the node carries no label {L.SCOPE}={scope} (a person opts a node in: "
                f"`docker node update --label-add {L.SCOPE}={scope} {node_name(node)}`)")
    return None


def find_node(nodes: Sequence[Mapping[str, Any]], target: str) -> Mapping[str, Any]:
    """The node called ``target`` (ID or prefix, name, hostname).

    Raises:
        NodeNotFound: none, or more than one with that hostname (name it by ID then).
    """
    hits = [n for n in nodes if target and (str(n.get("ID", "")).startswith(target) or
                                            node_name(n) == target)]
    if not hits:
        hits = [n for n in nodes if (n.get("Description") or {}).get("Hostname") == target]
    if len(hits) != 1:
        raise errors.NodeNotFound(target, [node_name(n) for n in nodes])
    return hits[0]


def _owned_service(managers: Managers, name: str, scope: str, key: bytes
                   ) -> dict[str, Any]:
    service = managers.service(name)
    why = service_in_scope(service, scope, key)
    if why:
        raise errors.OutOfScope(name, str(service.get("ID", "")), why, action="update")
    return service


@dataclass
class RolloutOutcome:
    """How a deploy or update ended.

    Attributes:
        service: its name; created: a new service (no update to watch).
        state: the last ``UpdateStatus.State`` (``completed``, ``rollback_completed``...),
            ``created``, or ``unchanged``.
        ok: the new spec runs with every replica healthy.
        rolled_back: the previous spec runs again (by Swarm's own failure action, or by
            opskit's rollback of a paused or stuck update).
        by: who rolled it back: ``swarm`` or ``opskit``; message: Swarm's or opskit's words.
        seconds: from the request to the end; timeline: (seconds, state) as observed.
    """

    service: str
    created: bool = False
    state: str = ""
    ok: bool = False
    rolled_back: bool = False
    by: str = ""
    message: str = ""
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)


def _journal(journal: ActionJournal | None, action: str, target_id: str, target: str,
             **kw: Any) -> ActionRecord | None:
    return journal.begin(action, target_id, target, **kw) if journal is not None else None


def _finish(journal: ActionJournal | None, record: ActionRecord | None, result: str,
            **kw: Any) -> None:
    if journal is not None and record is not None:
        journal.finish(record, result, **kw)


def deploy_service(managers: Managers, spec: ServiceSpec, *, scope: str, key: bytes,
                   journal: ActionJournal | None = None, rollout: Rollout | None = None,
                   mode: Literal["replicated", "global"] = "replicated",
                   constraints: Sequence[str] = (), max_per_node: int = 0,
                   wait: bool = True, on_state: Callable[[str], None] | None = None
                   ) -> RolloutOutcome:
    """Create the service, or update it to ``spec`` (``docker service create`` /
    ``docker service update``), then watch the rollout (:func:`watch_rollout`).

    The body is checked (and its rollout linted) before any manager is asked. An existing
    service of the same name that is not opskit's is refused, untouched.

    Raises:
        InvalidSpec: a field Swarm cannot honour, or a rollout trap of severity error.
        OutOfScope: a service of that name exists and is not opskit's in this scope.
        RolloutFailed: the update failed (``rolled_back`` says whether the old spec runs).
        SwarmUnavailable: no manager answered.
    """
    nodes = managers.nodes()
    ready = [n for n in nodes if (n.get("Status") or {}).get("State") == "ready" and
             (n.get("Spec") or {}).get("Availability") == "active"]
    built: SwarmService = swarm_service(
        spec, labels=service_labels(scope, key, spec.name), rollout=rollout, mode=mode,
        constraints=constraints, max_per_node=max_per_node, nodes=len(ready) or None)
    # the per-batch deadline travels with the service, so a watch started later holds an
    # update to the same deadline as the deploy that began it
    built.body["Labels"][DEADLINE_LABEL] = f"{built.rollout.deadline:g}"
    started = time.monotonic()
    existing = managers.services({"name": [spec.name]})
    existing = [s for s in existing if (s.get("Spec") or {}).get("Name") == spec.name]
    warnings = [f"{p.field}: {p.problem}" for p in built.warnings]
    if not existing:
        record = _journal(journal, "service-create", "", spec.name, service=spec.name)
        try:
            sid = managers.create_service(built.body)
        except errors.OpsKitError as exc:
            if "already exists" not in str(exc) and "name conflicts" not in str(exc):
                _finish(journal, record, "failed", error=str(exc))
                raise
            # a create that timed out on one manager but landed: taken as created only when
            # the service under that name is opskit's (another actor may have made it)
            landed = managers.service(spec.name)
            why = service_in_scope(landed, scope, key)
            if why:
                _finish(journal, record, "failed", error=str(exc))
                raise errors.OutOfScope(spec.name, str(landed.get("ID", "")), why,
                                        action="create") from exc
            sid = str(landed.get("ID", ""))
        _finish(journal, record, "ok", details={"service_id": sid})
        outcome = RolloutOutcome(spec.name, created=True, state="created", warnings=warnings)
        if wait:
            outcome = _wait_converged(managers, spec.name, outcome, built.rollout, started,
                                      on_state)
        return outcome
    service = existing[0]
    why = service_in_scope(service, scope, key)
    if why:
        raise errors.OutOfScope(spec.name, str(service.get("ID", "")), why, action="update")
    previous = (service.get("UpdateStatus") or {}).get("StartedAt")
    record = _journal(journal, "service-update", str(service["ID"]), spec.name,
                      service=spec.name, details={"image": spec.image})
    try:
        warnings += managers.update_service(str(service["ID"]),
                                            int(service["Version"]["Index"]), built.body,
                                            name=spec.name)
    except errors.OpsKitError as exc:
        _finish(journal, record, "failed", error=str(exc))
        raise
    _finish(journal, record, "ok")
    if not wait:
        return RolloutOutcome(spec.name, state="updating", warnings=warnings)
    outcome = watch_rollout(managers, spec.name, built.rollout,
                            replicas=spec.replicas if mode == "replicated" else len(ready),
                            previous_start=previous, journal=journal, on_state=on_state,
                            started=started)
    outcome.warnings = warnings
    if not outcome.ok:
        raise errors.RolloutFailed(spec.name, outcome.state, outcome.message,
                                   rolled_back=outcome.rolled_back)
    return outcome


def replicas_running(managers: Managers, service_id: str, *, off_node: str = ""
                     ) -> tuple[int, int]:
    """(running, wanted): tasks desired and running (on nodes other than ``off_node``); a
    global service wants one per task the scheduler made (one per node that fits)."""
    service = managers.service(service_id)
    mode = (service.get("Spec") or {}).get("Mode") or {}
    tasks = managers.tasks({"service": [service_id], "desired-state": ["running"]})
    running = sum(1 for t in tasks if (t.get("Status") or {}).get("State") == "running"
                  and str(t.get("NodeID")) != off_node)
    if "Replicated" in mode:
        return running, int((mode["Replicated"] or {}).get("Replicas", 0))
    return running, max(1, len(tasks))


def _wait_converged(managers: Managers, name: str, outcome: RolloutOutcome, rollout: Rollout,
                    started: float, on_state: Callable[[str], None] | None) -> RolloutOutcome:
    deadline = started + rollout.deadline
    while True:
        running, wanted = replicas_running(managers, name)
        if running >= wanted:
            return dataclasses.replace(outcome, ok=True, seconds=time.monotonic() - started,
                                       message=f"{running}/{wanted} replicas running")
        if time.monotonic() > deadline:
            return dataclasses.replace(
                outcome, ok=False, seconds=time.monotonic() - started,
                message=f"{running}/{wanted} replicas running after {rollout.deadline:g} s")
        if on_state is not None:
            on_state(f"{running}/{wanted}")
        time.sleep(POLL)


def watch_rollout(managers: Managers, name: str, rollout: Rollout, *, replicas: int,
                  previous_start: str | None = None, journal: ActionJournal | None = None,
                  on_state: Callable[[str], None] | None = None,
                  started: float | None = None) -> RolloutOutcome:
    """Follow an update until it completes, is rolled back, or must be rolled back.

    Swarm's own failure action handles a task that fails within the monitor. opskit adds the
    two cases Swarm leaves alone: an update ``paused`` (failure action ``pause``, or a task
    that failed to start) and one still ``updating`` after ``batches x rollout.deadline``
    (swarmkit waits for a replacement task for ever: no suitable node, no free port). Both are
    rolled back (``docker service rollback``), journaled, and followed to the end. A rollback
    that pauses is reported, never retried (Swarm cannot roll a rollback back).
    """
    started = time.monotonic() if started is None else started
    batches = max(1, math.ceil(max(replicas, 1) / rollout.parallelism))
    deadline = started + batches * rollout.deadline
    # whatever Swarm does (a rollback of its own that never ends, a change it never rolls),
    # the watch ends: the update's deadline, as long again for a rollback, and once more
    hard_deadline = started + 3 * batches * rollout.deadline
    outcome = RolloutOutcome(name)
    last, seen_new, rolling_back, why_rolled = "", False, False, ""
    while True:
        service = managers.service(name)
        status = service.get("UpdateStatus") or {}
        state = str(status.get("State", ""))
        fresh = status.get("StartedAt") and status.get("StartedAt") != previous_start
        now = time.monotonic() - started
        if fresh:
            seen_new = True
        if state != last and (fresh or rolling_back):
            outcome.timeline.append((round(now, 2), state))
            if on_state is not None:
                on_state(state)
            last = state
        message = str(status.get("Message", ""))
        if state == "rollback_started" and message and not why_rolled:
            why_rolled = message  # "update rolled back due to failure or early termination of
            # task ...": the only place Swarm says why; later states say "rollback completed"
        if seen_new and state in _DONE:
            running, wanted = replicas_running(managers, name)
            if running >= wanted or time.monotonic() > deadline:
                by = "opskit" if rolling_back else ("swarm" if state != "completed" else "")
                if not _DONE[state]:
                    message = "; ".join(m for m in (outcome.message or why_rolled or message,
                                                     _task_errors(managers, name)) if m)
                return dataclasses.replace(
                    outcome, state=state, ok=_DONE[state] and running >= wanted,
                    rolled_back=not _DONE[state], by=by, seconds=time.monotonic() - started,
                    message=message or f"{running}/{wanted} replicas running")
        elif seen_new and state == "rollback_paused":
            return dataclasses.replace(outcome, state=state, rolled_back=False, by="",
                                       seconds=time.monotonic() - started,
                                       message=message or "the rollback paused")
        elif not seen_new and not status and now > 3.0:
            # nothing for Swarm to roll (a label-only change): the spec is in place
            running, wanted = replicas_running(managers, name)
            if running >= wanted:
                return dataclasses.replace(outcome, state="unchanged", ok=True,
                                           seconds=time.monotonic() - started,
                                           message=f"{running}/{wanted} replicas running")
        if seen_new and not rolling_back and (state == "paused" or (
                state == "updating" and time.monotonic() > deadline)):
            why = (f"the update paused: {message}" if state == "paused" else
                   f"the update was still updating after {batches} x {rollout.deadline:g} s "
                   "(swarmkit waits for a replacement task for ever)")
            rollback(managers, name, journal=journal, reason=why, service=service)
            outcome.message = why
            rolling_back = True
            deadline = time.monotonic() + batches * rollout.deadline
        elif (rolling_back and time.monotonic() > deadline) or \
                time.monotonic() > hard_deadline:
            return dataclasses.replace(
                outcome, state=state or "timeout", rolled_back=False,
                by="opskit" if rolling_back else "", seconds=time.monotonic() - started,
                message=f"the update did not end within {3 * batches * rollout.deadline:g} s"
                f" (last state {state or 'none'}: {message or 'no message'})")
        time.sleep(POLL)


def _task_errors(managers: Managers, name: str) -> str:
    """The errors of the service's failed tasks, newest first, in Swarm's words."""
    tasks = managers.tasks({"service": [name]})
    failed = sorted((t for t in tasks if (t.get("Status") or {}).get("Err")),
                    key=lambda t: str((t.get("Status") or {}).get("Timestamp", "")),
                    reverse=True)
    errors_seen = []
    for task in failed:
        err = str(task["Status"]["Err"])
        if err not in errors_seen:
            errors_seen.append(err)
    if errors_seen:
        return "task errors: " + "; ".join(errors_seen[:3])
    # a task stopped for failing its healthcheck may end 'complete' with no error (its PID 1
    # exits 0 on the stop): say how the ended tasks ended
    ended = sorted((t for t in tasks if t.get("DesiredState") == "shutdown" and
                    (t.get("Status") or {}).get("State") in ("complete", "failed", "shutdown")),
                   key=lambda t: str((t.get("Status") or {}).get("Timestamp", "")), reverse=True)
    told = []
    for task in ended[:3]:
        status = task.get("Status") or {}
        code = (status.get("ContainerStatus") or {}).get("ExitCode")
        told.append(f"slot {task.get('Slot')} {status.get('State')} ({status.get('Message')}"
                    f"{'' if code is None else f', exit {code}'})")
    return ("ended tasks: " + "; ".join(told)) if told else ""


def rollback(managers: Managers, name: str, *, journal: ActionJournal | None = None,
             reason: str = "manual", service: Mapping[str, Any] | None = None,
             scope: str | None = None, key: bytes | None = None) -> None:
    """``docker service rollback NAME``: the previous spec back (``POST /services/{id}/update?
    version=N&rollback=previous``; docker-py has no call for it).

    Raises:
        OutOfScope: with ``scope``/``key``, a service that is not opskit's.
        EngineError: Swarm refused (no previous spec: the service was never updated).
    """
    current = dict(service) if service is not None else (
        _owned_service(managers, name, scope, key) if scope is not None and key is not None
        else managers.service(name))
    record = _journal(journal, "service-rollback", str(current.get("ID", "")), name,
                      service=name, reason=reason)
    try:
        managers.update_service(str(current["ID"]), int(current["Version"]["Index"]),
                                current["Spec"], rollback=True, name=name)
    except errors.OpsKitError as exc:
        _finish(journal, record, "failed", error=str(exc))
        raise
    _finish(journal, record, "ok")
    log.warning("rolled back Swarm service %s: %s", name, reason)


def set_availability(managers: Managers, target: str, availability: str, *, scope: str,
                     journal: ActionJournal | None = None, reason: str = "manual") -> str:
    """``docker node update --availability drain|active|pause NODE``; the node's ID.

    Raises:
        NodeNotFound: no such node. OutOfScope: the node is not opted in for the scope.
        InvalidSpec: not an availability.
    """
    if availability not in ("active", "drain", "pause"):
        raise errors.InvalidSpec("availability", f"{availability!r} is not a node "
                                 "availability", allowed="'active', 'drain', 'pause'")
    node = find_node(managers.nodes(), target)
    why = node_in_scope(node, scope)
    if why:
        raise errors.OutOfScope(target, str(node.get("ID", "")), why, action=availability)
    spec = dict(node.get("Spec") or {})
    if spec.get("Availability") == availability:
        return str(node["ID"])
    action = {"drain": "node-drain", "active": "node-activate", "pause": "node-pause"}
    record = _journal(journal, action[availability], str(node["ID"]), node_name(node),
                      reason=reason, state_before=str(spec.get("Availability", "")))
    spec["Availability"] = availability
    try:
        managers.update_node(str(node["ID"]), int(node["Version"]["Index"]), spec)
    except errors.OpsKitError as exc:
        _finish(journal, record, "failed", error=str(exc))
        raise
    _finish(journal, record, "ok", state_after=availability)
    return str(node["ID"])


def force_update(managers: Managers, name: str, *, scope: str, key: bytes,
                 journal: ActionJournal | None = None, reason: str = "rebalance") -> None:
    """``docker service update --force NAME``: every task replaced, rolled out with the
    service's own update settings; the scheduler spreads the new tasks over the nodes."""
    service = _owned_service(managers, name, scope, key)
    spec = dict(service["Spec"])
    template = dict(spec.get("TaskTemplate") or {})
    template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
    spec["TaskTemplate"] = template
    record = _journal(journal, "service-rebalance", str(service["ID"]), name, service=name,
                      reason=reason)
    try:
        managers.update_service(str(service["ID"]), int(service["Version"]["Index"]), spec,
                                name=name)
    except errors.OpsKitError as exc:
        _finish(journal, record, "failed", error=str(exc))
        raise
    _finish(journal, record, "ok")
