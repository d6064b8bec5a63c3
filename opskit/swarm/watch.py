"""The watchdog on Swarm: it detects and escalates; it never restarts a task (Swarm does).

Every pass (level-triggered: what the managers and each node's engine say now, whatever
happened before) compares what each service wants with what runs, and finds:

- ``node_lost``: a node's own engine has not answered for ``lost_after`` seconds, the other
  managers cannot reach it, or Swarm calls it ``down``/``unknown``. Swarm starts a lost node's
  replacement tasks only once it marks the node down (its heartbeat timeout: 10 to 14 s for a
  lost non-leader here, about 45 s when the leader goes) and then after its restart delay. With
  ``drain_lost_nodes`` opskit drains a lost node that is opted in for its scope (journaled): the
  replacements are made at once and start as soon as Swarm marks the node down, without the
  restart delay (swarmkit still waits for the node, which a drain cannot change; measured in
  bench/bench_swarm.py), and the node is activated again once it has been back for
  ``return_after`` seconds.
- ``under_replicated``: fewer replicas running than wanted for ``grace`` seconds, with the
  reason from the tasks (no suitable node, the image missing on a node, restart attempts used
  up, a task that keeps failing with its error).
- ``rollout_paused``, ``rollout_stuck`` (still ``updating`` past its deadline) and
  ``rollback_paused``: the first two are rolled back (``docker service rollback``) for opskit's
  own services, the third is paged (Swarm cannot roll a rollback back).
- ``orphaned_tasks``: containers of tasks a returning node still runs though the swarm moved
  them (duplicates until its agent catches up).
- ``unbalanced``: a service spread unevenly after a node came back (Swarm never moves a running
  task); with ``rebalance``, a bounded number of ``docker service update --force`` per service
  and hour, journaled.

Findings are journaled once per episode and sent to ``alert``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ..act.actions import ActionJournal
from ..base import errors
from ..base.units import parse_time
from ..engine.calls import ping
from ..engine.connection import Engine
from ..engine.swarm import Managers
from ..spec.rollout import MONITOR_MARGIN
from .frames import node_name
from .service import (
    DEADLINE_LABEL,
    force_update,
    node_in_scope,
    rollback,
    service_in_scope,
    set_availability,
)


class Swarm(Protocol):
    """What the watch needs of :class:`~opskit.swarm.cluster.Swarm`."""

    managers: Managers
    scope: str
    key: bytes
    journal: ActionJournal

    def node_ops(self) -> Mapping[str, Any]:
        """An ``Ops`` per reachable node engine, by node name."""
        ...

log = logging.getLogger("opskit")

__all__ = ["SwarmFinding", "SwarmWatch"]

TASK_LABEL = "com.docker.swarm.task.id"
_PENDING = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting")


@dataclass(frozen=True)
class SwarmFinding:
    """Something wrong with the swarm: ``kind``, the node or service (``subject``), since
    when, and one sentence that says why and what to do."""

    kind: str
    subject: str
    message: str
    since: datetime
    severity: str = "warning"  # or "page"


class SwarmWatch:
    """Watch a swarm; see the module docstring.

    Args:
        swarm: the :class:`~opskit.swarm.cluster.Swarm`.
        every: seconds between passes.
        drain_lost_nodes: drain a node lost for ``lost_after`` seconds (only nodes labelled
            ``io.opskit.scope=SCOPE``), activate it again when back for ``return_after``.
        rollback_stuck: roll back paused and stuck updates of opskit's services.
        rebalance: rebalance unbalanced services, at most ``max_rebalances`` per service per
            ``rebalance_window`` seconds.
        grace: seconds a service may be short of replicas before it is a finding.
        alert: called with each new finding, from the watch's thread (from the caller's
            when it calls :meth:`pass_once` itself).
    """

    def __init__(self, swarm: Swarm, *, every: float = 1.0, drain_lost_nodes: bool = False,
                 lost_after: float = 3.0, return_after: float = 5.0,
                 rollback_stuck: bool = True, rebalance: bool = False,
                 max_rebalances: int = 2, rebalance_window: float = 3600.0,
                 grace: float = 10.0,
                 alert: Callable[[SwarmFinding], None] | None = None) -> None:
        self.swarm = swarm
        self.every, self.lost_after, self.return_after = every, lost_after, return_after
        self.drain_lost_nodes, self.rollback_stuck = drain_lost_nodes, rollback_stuck
        self.rebalance, self.max_rebalances = rebalance, max_rebalances
        self.rebalance_window, self.grace = rebalance_window, grace
        self.alert = alert
        self.alerts: deque[SwarmFinding] = deque(maxlen=500)
        self.counters = {"passes": 0, "errors": 0, "drains": 0, "activations": 0,
                         "rollbacks": 0, "rebalances": 0}
        self._findings: dict[tuple[str, str], SwarmFinding] = {}
        self._unreachable: dict[str, float] = {}  # node -> monotonic first seen unreachable
        self._back: dict[str, float] = {}  # node -> monotonic first seen back
        self._drained = self._drained_before()  # node IDs a watch drained for being lost
        self._short: dict[str, float] = {}  # service -> monotonic first seen short
        self._rolled: set[str] = set()  # "service:StartedAt" rolled back already
        self._rebalanced: dict[str, list[float]] = {}
        self._engines: dict[str, Engine] = {}
        self._orphan_since: dict[tuple[str, str], float] = {}
        self._many_lost = False
        self._fit: set[str] = set()
        self.orphan_after = 5.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- life -------------------------------------------------------------------------------

    def _drained_before(self) -> set[str]:
        """Nodes a watch (this one's predecessor too) drained as lost and nobody activated
        since: read from the swarm's journal, so a restarted watch still brings them back."""
        try:
            frame = self.swarm.journal.frame()
        except Exception:  # an unreadable journal must not stop the watch from starting
            log.warning("swarm watch: the journal could not be read; drains of earlier "
                        "watches are not known")
            return set()
        if not len(frame):
            return set()
        rows = frame[frame["action"].isin(["node-drain", "node-activate"]) &
                     (frame["result"] == "ok")]
        drained = set()
        for node_id, group in rows.groupby(rows["container_id"].astype(str), sort=False):
            last = group.iloc[-1]
            if last["action"] == "node-drain" and str(last["reason"]).startswith("node lost"):
                drained.add(node_id)
        return drained

    def start(self) -> SwarmWatch:
        """Run passes on a daemon thread until :meth:`stop`."""
        self._engines = {name: ops.engine for name, ops in self.swarm.node_ops().items()}
        self._thread = threading.Thread(target=self._loop, name="opskit-swarm-watch",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.pass_once()
            except errors.OpsKitError as exc:
                self.counters["errors"] += 1
                log.warning("swarm watch pass failed: %s", exc.message)
            except Exception:
                self.counters["errors"] += 1
                log.exception("swarm watch pass failed")
            self._stop.wait(self.every)

    # -- what it says -----------------------------------------------------------------------

    def findings(self) -> list[SwarmFinding]:
        """What is wrong now."""
        with self._lock:
            return list(self._findings.values())

    def lost_nodes(self) -> list[str]:
        """The nodes found lost in the last pass."""
        return [f.subject for f in self.findings() if f.kind == "node_lost"]

    def status(self) -> dict[str, Any]:
        found = self.findings()
        return {"findings": {f"{f.kind}:{f.subject}": f.message for f in found},
                "drained_by_opskit": sorted(self._drained), **self.counters}

    # -- one pass ---------------------------------------------------------------------------

    def pass_once(self) -> list[SwarmFinding]:
        """One level-triggered pass; the findings now."""
        managers = self.swarm.managers
        if not self._engines:
            self._engines = {name: ops.engine for name, ops in self.swarm.node_ops().items()}
        reach = self._reachability()
        nodes = managers.nodes()
        services = managers.services()
        tasks = managers.tasks()
        found: dict[tuple[str, str], SwarmFinding] = {}
        now = time.monotonic()
        self._many_lost = 2 * sum(self._lost(n, reach) for n in nodes) > len(nodes)
        self._fit = {str(n["ID"]) for n in nodes if not self._lost(n, reach) and
                     (n.get("Status") or {}).get("State") == "ready" and
                     (n.get("Spec") or {}).get("Availability") == "active"}
        for node in nodes:
            self._node(node, reach, now, found)
        ready_active = [n for n in nodes if (n.get("Status") or {}).get("State") == "ready"
                        and (n.get("Spec") or {}).get("Availability") == "active"]
        names = {str(n["ID"]): node_name(n) for n in nodes}
        for service in services:
            self._service(service, tasks, names, ready_active, now, found)
        self._orphans(tasks, reach, now, found)
        with self._lock:
            new = [f for key, f in found.items() if key not in self._findings]
            self._findings = found
        for finding in new:
            self._tell(finding)
        self.counters["passes"] += 1
        return list(found.values())

    def _reachability(self) -> dict[str, bool]:
        """Whether each node's own engine answers ``/_ping`` within a second."""
        out = {}
        for name, engine in self._engines.items():
            try:
                out[name] = ping(engine.api, timeout=1.0)
            except Exception:
                out[name] = False
        return out

    def _node(self, node: Mapping[str, Any], reach: Mapping[str, bool], now: float,
              found: dict[tuple[str, str], SwarmFinding]) -> None:
        name, node_id = node_name(node), str(node.get("ID", ""))
        state = str((node.get("Status") or {}).get("State", ""))
        availability = str((node.get("Spec") or {}).get("Availability", ""))
        engine_down = reach.get(name) is False
        unreachable = (node.get("ManagerStatus") or {}).get("Reachability") == "unreachable"
        if self._lost(node, reach):
            first = self._unreachable.setdefault(name, now)
            self._back.pop(name, None)
            # 'unknown' is also every node's state for a moment after a new leader is elected:
            # it waits lost_after like a silent engine; only 'down' is Swarm's own verdict
            if now - first >= self.lost_after or state == "down":
                why = (f"its engine has not answered for {now - first:.0f} s" if engine_down
                       else "the other managers cannot reach it" if unreachable
                       else f"Swarm reports it {state}")
                message = f"node {name} is lost: {why}"
                if self.drain_lost_nodes and availability == "active":
                    message += self._drain(node, name, why)
                elif node_id in self._drained:
                    message += "; drained by opskit until it is back"
                else:
                    message += ("; Swarm moves its tasks once it marks the node down (its "
                                "heartbeat timeout) and its restart delay has passed; "
                                "swarm.drain(node) saves the delay")
                found[("node_lost", name)] = _finding("node_lost", name, message, "page")
            return
        self._unreachable.pop(name, None)
        if node_id in self._drained and state == "ready":
            first = self._back.setdefault(name, now)
            if now - first >= self.return_after:
                try:
                    set_availability(self.swarm.managers, node_id, "active",
                                     scope=self.swarm.scope, journal=self.swarm.journal,
                                     reason=f"node {name} back for {self.return_after:g} s")
                    self._drained.discard(node_id)
                    self._back.pop(name, None)
                    self.counters["activations"] += 1
                except errors.OpsKitError as exc:
                    log.warning("could not activate %s again: %s", name, exc.message)

    def _active_others(self, node_id: str) -> int:
        """Active, ready nodes other than ``node_id`` that are not lost (this pass)."""
        return len(self._fit - {node_id})

    @staticmethod
    def _lost(node: Mapping[str, Any], reach: Mapping[str, bool]) -> bool:
        """Whether a node is lost: its engine silent to opskit, the other managers unable to
        reach it (they see that within a few raft heartbeats, long before Swarm calls the
        node down), or Swarm's own state."""
        state = str((node.get("Status") or {}).get("State", ""))
        return (reach.get(node_name(node)) is False
                or (node.get("ManagerStatus") or {}).get("Reachability") == "unreachable"
                or state in ("down", "unknown", "disconnected"))

    def _drain(self, node: Mapping[str, Any], name: str, why: str) -> str:
        refusal = node_in_scope(node, self.swarm.scope)
        if refusal:
            return f"; not drained: {refusal}"
        if self._many_lost:
            # most nodes lost at once is more likely opskit's own view (its network, its host)
            # than the swarm's: draining them all would take every task down
            return ("; not drained: most nodes look lost from here at once, which is more "
                    "likely opskit's own network than the swarm's; check, then drain by hand")
        if self._active_others(str(node["ID"])) < 1:
            return "; not drained: it is the last active node that is not lost"
        try:
            set_availability(self.swarm.managers, str(node["ID"]), "drain",
                             scope=self.swarm.scope, journal=self.swarm.journal,
                             reason=f"node lost: {why}")
        except errors.OpsKitError as exc:
            return f"; the drain failed: {exc.message}"
        self._drained.add(str(node["ID"]))
        self.counters["drains"] += 1
        return ("; drained by opskit: Swarm starts its replacements as soon as it marks the "
                "node down, without its restart delay (activated again once back)")

    def _service(self, service: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]],
                 names: Mapping[str, str], ready_active: Sequence[Mapping[str, Any]],
                 now: float, found: dict[tuple[str, str], SwarmFinding]) -> None:
        spec = service.get("Spec") or {}
        name, sid = str(spec.get("Name", "")), str(service.get("ID", ""))
        mine = [t for t in tasks if str(t.get("ServiceID")) == sid]
        desired = [t for t in mine if t.get("DesiredState") == "running"]
        mode = spec.get("Mode") or {}
        wanted = (int((mode.get("Replicated") or {}).get("Replicas", 0)) if "Replicated" in mode
                  else len(ready_active))
        running = [t for t in desired if (t.get("Status") or {}).get("State") == "running"]
        owned = service_in_scope(service, self.swarm.scope, self.swarm.key) is None
        self._update(service, name, owned, now, found, nodes=len(ready_active))
        if len(running) < wanted:
            first = self._short.setdefault(name, now)
            if now - first >= self.grace:
                found[("under_replicated", name)] = _finding(
                    "under_replicated", name,
                    f"service {name} runs {len(running)} of {wanted} replicas for "
                    f"{now - first:.0f} s: {_shortage_reason(spec, mine, desired)}", "page")
        else:
            self._short.pop(name, None)
        placement = (spec.get("TaskTemplate") or {}).get("Placement") or {}
        settled = str((service.get("UpdateStatus") or {}).get("State", "")) in (
            "", "completed", "rollback_completed")
        # a rolling update is uneven for a moment, and a constrained service's spread is its
        # constraints' business: only a settled, unconstrained service is judged
        if "Replicated" in mode and len(ready_active) > 1 and running and settled and not (
                placement.get("Constraints") or placement.get("MaxReplicas")):
            counts = {str(n["ID"]): 0 for n in ready_active}
            for task in running:
                if str(task.get("NodeID")) in counts:
                    counts[str(task.get("NodeID"))] += 1
            if max(counts.values()) - min(counts.values()) > 1:
                spread = ", ".join(f"{names.get(k, k[:12])}={v}" for k, v in counts.items())
                message = f"service {name} is spread unevenly ({spread})"
                message += self._rebalance(name, owned, now)
                found[("unbalanced", name)] = _finding("unbalanced", name, message)

    def _update(self, service: Mapping[str, Any], name: str, owned: bool, now: float,
                found: dict[tuple[str, str], SwarmFinding], *, nodes: int = 1) -> None:
        status = service.get("UpdateStatus") or {}
        state, started = str(status.get("State", "")), str(status.get("StartedAt", ""))
        key = f"{name}:{started}"
        if state == "rollback_paused":
            found[("rollback_paused", name)] = _finding(
                "rollback_paused", name, f"the rollback of {name} paused: "
                f"{status.get('Message', '')}; Swarm never rolls a rollback back: a person "
                "must fix the previous spec's tasks (swarm.tasks(service))", "page")
            return
        stuck = state == "updating" and _age(started) > _deadline(service, nodes)
        if state != "paused" and not stuck:
            return
        kind = "rollout_paused" if state == "paused" else "rollout_stuck"
        why = (f"the update of {name} paused: {status.get('Message', '')}" if state == "paused"
               else f"the update of {name} has been updating for {_age(started):.0f} s, past "
               f"its deadline of {_deadline(service, nodes):.0f} s (swarmkit has no timeout)")
        if self.rollback_stuck and owned and key not in self._rolled:
            try:
                rollback(self.swarm.managers, name, journal=self.swarm.journal, reason=why,
                         service=service)
                self._rolled.add(key)
                self.counters["rollbacks"] += 1
                why += "; rolled back by opskit"
            except errors.OpsKitError as exc:
                why += f"; the rollback failed: {exc.message}"
        elif key in self._rolled:
            why += "; rolled back by opskit"
        elif not owned:
            why += "; not opskit's service: roll it back with `docker service rollback`"
        found[(kind, name)] = _finding(kind, name, why, "page")

    def _rebalance(self, name: str, owned: bool, now: float) -> str:
        if not self.rebalance:
            return "; swarm.rebalance(service) spreads it again (every task is replaced)"
        if not owned:
            return "; not opskit's service: not rebalanced"
        done = [t for t in self._rebalanced.get(name, []) if now - t < self.rebalance_window]
        if len(done) >= self.max_rebalances:
            return (f"; {len(done)} rebalances in the last {self.rebalance_window:g} s: no "
                    "more until the window passes")
        try:
            force_update(self.swarm.managers, name, scope=self.swarm.scope, key=self.swarm.key,
                         journal=self.swarm.journal, reason="unbalanced spread")
        except errors.OpsKitError as exc:
            return f"; the rebalance failed: {exc.message}"
        self._rebalanced[name] = [*done, now]
        self.counters["rebalances"] += 1
        return "; rebalanced by opskit (docker service update --force)"

    def orphaned_containers(self, tasks: Sequence[Mapping[str, Any]] | None = None,
                            reach: Mapping[str, bool] | None = None) -> dict[str, list[str]]:
        """Per node, the task containers it runs that the swarm moved or shut down (their task
        is unknown to the managers or no longer desired running): duplicates, until the node's
        agent catches up. Nodes whose engine does not answer are not asked."""
        if not self._engines:
            self._engines = {name: ops.engine for name, ops in self.swarm.node_ops().items()}
        known = {str(t.get("ID")): t for t in (tasks if tasks is not None else
                                                self.swarm.managers.tasks())}
        out: dict[str, list[str]] = {}
        for name, engine in self._engines.items():
            if reach is not None and reach.get(name) is False:
                continue
            try:
                listed = engine.api.containers(filters={"label": [TASK_LABEL]})
            except Exception:
                continue
            for item in listed:
                task = known.get(str((item.get("Labels") or {}).get(TASK_LABEL)))
                if task is None or task.get("DesiredState") not in ("running", "ready"):
                    out.setdefault(name, []).append(
                        str((item.get("Names") or ["?"])[0]).lstrip("/"))
        return out

    def _orphans(self, tasks: Sequence[Mapping[str, Any]], reach: Mapping[str, bool],
                 now: float, found: dict[tuple[str, str], SwarmFinding]) -> None:
        """Orphans seen for ``orphan_after`` seconds (a task being stopped by a rolling update
        is one for a moment)."""
        current = self.orphaned_containers(tasks, reach)
        seen = {(node, c) for node, names in current.items() for c in names}
        self._orphan_since = {k: self._orphan_since.get(k, now) for k in seen}
        for node, names in current.items():
            old = [c for c in names if now - self._orphan_since[(node, c)] >= self.orphan_after]
            if old:
                found[("orphaned_tasks", node)] = _finding(
                    "orphaned_tasks", node, f"node {node} still runs {len(old)} task "
                    f"container(s) the swarm moved or shut down ({', '.join(old[:3])}): "
                    "duplicates until its agent reconciles (it removes them itself once it "
                    "reaches the managers again)")

    def _tell(self, finding: SwarmFinding) -> None:
        self.alerts.append(finding)
        log.warning("opskit swarm alert: %s %s: %s", finding.kind, finding.subject,
                    finding.message)
        with contextlib.suppress(errors.StorageError):
            self.swarm.journal.note("escalate", "", finding.subject, "alerted",
                                    reason=finding.kind, details={"why": finding.message,
                                                                  "severity": finding.severity})
        if self.alert is not None:
            try:
                self.alert(finding)
            except Exception:
                log.exception("swarm alert callback failed")


def _finding(kind: str, subject: str, message: str, severity: str = "warning") -> SwarmFinding:
    return SwarmFinding(kind, subject, message, datetime.now(UTC), severity)


def _age(started: str) -> float:
    when = parse_time(started) if started else None
    return (datetime.now(UTC) - when).total_seconds() if when is not None else 0.0


def _deadline(service: Mapping[str, Any], nodes: int = 1) -> float:
    """The opskit deadline of a service's update: batches x the per-batch deadline its deploy
    set (the ``io.opskit.rollout-deadline`` label), else x (2 x monitor + delay + 60 s) as
    :func:`~opskit.spec.rollout.derive_rollout` derives it."""
    spec = service.get("Spec") or {}
    update = spec.get("UpdateConfig") or {}
    monitor = float(update.get("Monitor") or MONITOR_MARGIN * 1e9) / 1e9
    delay = float(update.get("Delay") or 0) / 1e9
    mode = spec.get("Mode") or {}
    replicas = (int((mode.get("Replicated") or {}).get("Replicas", 1)) if "Replicated" in mode
                else max(1, nodes))  # global: one task per node
    batches = max(1, math.ceil(replicas / max(1, int(update.get("Parallelism") or 1))))
    try:
        per_batch = float((spec.get("Labels") or {})[DEADLINE_LABEL])
    except (KeyError, TypeError, ValueError):
        per_batch = 2 * monitor + delay + 60.0
    return batches * per_batch


def _shortage_reason(spec: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]],
                     desired: Sequence[Mapping[str, Any]]) -> str:
    """Why a service is short, in Swarm's words where it has them."""
    pending = [t for t in desired if (t.get("Status") or {}).get("State") in _PENDING]
    for task in pending:
        status = task.get("Status") or {}
        err = str(status.get("Err") or "")
        if "no suitable node" in err or "insufficient resources" in err:
            return f"a task cannot be placed: {err} (free a node, or relax the placement)"
    policy = ((spec.get("TaskTemplate") or {}).get("RestartPolicy") or {})
    attempts = int(policy.get("MaxAttempts") or 0)
    failed = [t for t in tasks if (t.get("Status") or {}).get("State") in ("failed",
                                                                            "rejected")]
    if attempts and policy.get("Condition") == "on-failure" and len(failed) >= attempts:
        return (f"its restart attempts are used up ({attempts}, condition on-failure); the "
                f"last error: {(failed[-1].get('Status') or {}).get('Err', '?')}")
    if failed:
        last = max(failed, key=lambda t: str((t.get("Status") or {}).get("Timestamp", "")))
        status = last.get("Status") or {}
        return (f"tasks keep failing: {status.get('Err') or status.get('Message') or '?'} "
                "(Swarm restarts them; the cause is in the task error)")
    if pending:
        status = pending[0].get("Status") or {}
        state = str(status.get("State"))
        doing = ("waiting for the scheduler" if state == "pending" else
                 "starting, or waiting for its first healthy probe")
        return f"a task is {state}: {status.get('Err') or status.get('Message')} ({doing})"
    return "its tasks are on a node that is lost (Swarm moves them once it marks it down)"
