"""A Docker Swarm as one object: :func:`connect_swarm` and :class:`Swarm`.

    swarm = opskit.connect_swarm(["unix:///run/m1.sock", "tcp://m2:2376", ...])
    swarm.nodes(); swarm.services(); swarm.tasks("web"); swarm.events("10m")
    swarm.deploy(spec, max_per_node=1)        # health-gated rollout, rolled back on failure
    swarm.drain("node-3"); swarm.activate("node-3"); swarm.rollback("web")
    swarm.stats(); swarm.task_events("10m")   # each node's own engine, joined to tasks
    wd = swarm.watch(drain_lost_nodes=True)   # escalates; Swarm keeps restarting tasks
    swarm.record("incident")                  # a bundle with the swarm's frames

Swarm restarts tasks itself; opskit never restarts a task. It makes updates safe (derived
monitor, a lint, its own deadline and rollback), shows why a service is short of replicas,
and acts, bounded and journaled, where Swarm waits: a node it sees lost is drained, a paused or
stuck update is rolled back, a spread left unbalanced by a node's return may be rebalanced.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..act.actions import ActionJournal
from ..base import errors
from ..base.units import parse_time
from ..engine.connection import Engine, open_engine
from ..engine.events import engine_time_ns
from ..engine.swarm import CALL_TIMEOUT, ELECTION_WAIT, Managers
from ..ops import Ops
from ..spec.rollout import Rollout
from ..spec.service import ServiceSpec
from . import frames
from .chaos import NodeFault, NodeHandle, node_fault
from .service import (
    RolloutOutcome,
    deploy_service,
    force_update,
    rollback,
    service_in_scope,
    set_availability,
)
from .watch import SwarmWatch

if TYPE_CHECKING:
    import pandas as pd

    from ..analysis.bundle import Bundle

log = logging.getLogger("opskit")

__all__ = ["Swarm", "connect_swarm"]

SWARM_EVENT_FILTERS = {"type": ["service", "node"]}
TASK_LABEL = "com.docker.swarm.task.id"


def connect_swarm(managers: Sequence[str] | None = None, *, nodes: Mapping[str, str] | None = None,
                  scope: str = "default", timeout: float = CALL_TIMEOUT,
                  wait: float = ELECTION_WAIT) -> Swarm:
    """Connect to a swarm through its managers' engines.

    Args:
        managers: engine URLs of managers (several: a call fails over when one is down or
            electing). Managers that do not answer now are skipped if one does. When omitted,
            the engine ``docker`` would use (``DOCKER_HOST``, the current context...).
        nodes: node name (or ID) -> engine URL of that node's own engine, for stats and
            container events (``docker stats`` is per engine). The managers' own engines are
            added by themselves.
        scope: opskit acts only on services it created in this scope, and drains only nodes
            labelled ``io.opskit.scope=SCOPE``.
        timeout: seconds for one call to one manager; wait: seconds to keep trying managers.

    Raises:
        SwarmUnavailable: no manager answered.
        InvalidTarget: no engine given is a Swarm manager.
    """
    engines, reasons = [], {}
    for url in managers if managers else [None]:
        try:
            engines.append(open_engine(url, scope=scope, timeout=timeout))
        except errors.EngineUnavailable as exc:
            reasons[url or exc.host] = exc.reason
    if not engines:
        raise errors.SwarmUnavailable("connect", reasons)
    return Swarm(Managers(engines, timeout=timeout, wait=wait), node_urls=nodes or {})


class Swarm:
    """A swarm, through its managers; see the module docstring.

    Attributes:
        managers: the :class:`~opskit.engine.swarm.Managers` every call goes through.
        scope, key: the opskit scope and its key (from the first manager's engine).
        journal: the action journal of this swarm (``state_dir()/actions/swarm-ID.jsonl``).
    """

    def __init__(self, managers: Managers, *, node_urls: Mapping[str, str] | None = None,
                 journal: ActionJournal | None = None) -> None:
        self.managers = managers
        first: Engine = managers.engines[0]
        self.scope, self.key = first.scope, first.key
        info = managers.swarm()
        self.cluster_id = str(info.get("ID", ""))
        self.journal = journal or ActionJournal(host=f"swarm-{self.cluster_id[:12]}")
        self._node_urls = dict(node_urls or {})
        self._node_ops: dict[str, Ops] = {}
        self.node_ops()  # learn which engine is which node while they answer

    def __repr__(self) -> str:
        return f"<opskit.Swarm {self.cluster_id[:12]} managers={self.managers.hosts}>"

    # -- observe ----------------------------------------------------------------------------

    def nodes(self) -> pd.DataFrame:
        """``docker node ls``: node, role, availability, state, leader, reachability."""
        return frames.nodes_frame(self.managers.nodes())

    def services(self) -> pd.DataFrame:
        """``docker service ls`` with replicas wanted/running/starting, the update state and
        whether opskit owns the service in this scope."""
        return self.services_frame(self.managers.services(), self.managers.tasks(),
                                   self.managers.nodes())

    def services_frame(self, services: Sequence[Mapping[str, Any]],
                       tasks: Sequence[Mapping[str, Any]],
                       nodes: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """:meth:`services` from payloads already read (no call to the managers)."""
        active = sum(1 for n in nodes if (n.get("Status") or {}).get("State") == "ready"
                     and (n.get("Spec") or {}).get("Availability") == "active")
        owned = {str(s["Spec"]["Name"]): service_in_scope(s, self.scope, self.key) is None
                 for s in services}
        return frames.services_frame(services, tasks, owned=owned, active_nodes=active)

    def tasks(self, service: str | None = None, *, all: bool = True) -> pd.DataFrame:
        """``docker service ps [SERVICE]``: slot, node, state, desired state, error.

        Args:
            all: with tasks that are shut down (their history), not only desired running.
        """
        filters: dict[str, list[str]] = {}
        if service:
            filters["service"] = [str(self.managers.service(service)["ID"])]
        if not all:
            filters["desired-state"] = ["running"]
        return frames.tasks_frame(self.managers.tasks(filters), self.managers.nodes(),
                                  self.managers.services())

    def events(self, since: Any = "10m", until: Any = None) -> pd.DataFrame:
        """Service and node events (``docker events --filter type=service --filter
        type=node``) from a manager's replay."""
        now_ns = self._clock_ns()
        since_ns = _to_ns(since, now_ns)
        until_ns = _to_ns(until, now_ns) if until is not None else now_ns
        return frames.events_frame(self.managers.events(since_ns, until_ns,
                                                        SWARM_EVENT_FILTERS))

    def _clock_ns(self) -> int:
        """A manager's clock (``docker info``), the first that answers."""
        reasons = {}
        for engine in self.managers.engines:
            try:
                return engine_time_ns(engine.api, engine.host)[0]
            except errors.OpsKitError as exc:
                reasons[engine.host] = exc.message
        raise errors.SwarmUnavailable("docker info", reasons)

    def node_ops(self) -> dict[str, Ops]:
        """An :class:`~opskit.ops.Ops` per node whose engine opskit can reach (the managers'
        engines, and the ``nodes`` given to :func:`connect_swarm`), by node name."""
        names = {str(n["ID"]): frames.node_name(n) for n in self.managers.nodes()}
        for engine in self.managers.engines:
            with contextlib.suppress(Exception):
                node_id = str(engine.api.info().get("Swarm", {}).get("NodeID", ""))
                name = names.get(node_id)
                if name and name not in self._node_ops:
                    self._node_ops[name] = Ops(engine)
        for name, url in self._node_urls.items():
            key = names.get(name, name)
            if key not in self._node_ops:
                with contextlib.suppress(errors.EngineUnavailable):
                    self._node_ops[key] = Ops(open_engine(url, scope=self.scope,
                                                          timeout=self.managers.timeout))
        return dict(self._node_ops)

    def stats(self, service: str | None = None) -> pd.DataFrame:
        """``docker stats --no-stream`` on every reachable node's engine, joined to the
        swarm's tasks by container ID: cpu, memory... with service, slot, node, task_id."""
        import pandas as pd

        tasks = self.tasks(service, all=False)
        per_node = self.node_ops()

        def one(item: tuple[str, Ops]) -> pd.DataFrame:
            name, ops = item
            frame = ops.stats(timeout=self.managers.timeout * 2)
            return frame.assign(node=name)

        with ThreadPoolExecutor(max(1, len(per_node))) as pool:
            parts = []
            for result in pool.map(lambda i: _quiet(one, i), per_node.items()):
                if result is not None:
                    parts.append(result)
        if not parts:
            return pd.DataFrame(columns=["task_id", "service", "slot", "node"])
        stats = pd.concat(parts, ignore_index=True)
        joined = stats.merge(tasks[["container_id", "task_id", "service", "slot"]],
                             left_on="id", right_on="container_id", how="inner",
                             suffixes=("_container", ""))
        return joined.drop(columns=["container_id"])

    def task_events(self, since: Any = "10m", until: Any = None) -> pd.DataFrame:
        """Container events of the swarm's tasks (``docker events`` on each reachable node's
        own engine: die, health_status, oom... are only there), with the task's ``service``,
        ``task_id`` and ``node``, in time order."""
        import pandas as pd

        parts = []
        for node, ops in self.node_ops().items():
            try:
                frame = ops.events(since, until)
            except errors.OpsKitError as exc:
                log.info("swarm task events: node %s skipped: %s", node, exc.message)
                continue
            attrs = [a if isinstance(a, dict) else {} for a in frame["attributes"]]
            mine = [TASK_LABEL in a for a in attrs]
            frame = frame[mine].copy()
            kept = [a for a, m in zip(attrs, mine, strict=True) if m]
            frame["service"] = [str(a.get("com.docker.swarm.service.name", "")) for a in kept]
            frame["task_id"] = [str(a.get(TASK_LABEL, "")) for a in kept]
            parts.append(frame.assign(node=node))
        if not parts:
            return pd.DataFrame(columns=["ts", "action", "name", "service", "task_id", "node"])
        return pd.concat(parts, ignore_index=True).sort_values("ts", kind="stable")

    def status(self) -> dict[str, Any]:
        """Counts for a glance: nodes by state, services short of replicas, updates."""
        nodes, services = self.nodes(), self.services()
        return {"nodes": len(nodes), "ready": int((nodes["state"] == "ready").sum()),
                "down": sorted(nodes.loc[nodes["state"] != "ready", "node"]),
                "leader": next(iter(nodes.loc[nodes["leader"], "node"]), None),
                "services": len(services),
                "short": sorted(services.loc[services["running"] < services["wanted"],
                                             "service"]),
                "updating": sorted(services.loc[services["update_state"].isin(
                    ["updating", "paused", "rollback_started", "rollback_paused"]),
                    "service"])}

    def actions(self) -> pd.DataFrame:
        """This swarm's action journal (deploys, rollbacks, drains, rebalances)."""
        return self.journal.frame()

    # -- act --------------------------------------------------------------------------------

    def deploy(self, spec: ServiceSpec, *, rollout: Rollout | None = None,
               mode: Literal["replicated", "global"] = "replicated",
               constraints: Sequence[str] = (), max_per_node: int = 0,
               wait: bool = True) -> RolloutOutcome:
        """Create or update a Swarm service from ``spec`` (``docker service create|update``)
        with every update, rollback and restart field set, the monitor derived from the
        healthcheck, and the rollout watched to its end; see
        :func:`~opskit.swarm.service.deploy_service`.

        Raises:
            InvalidSpec, OutOfScope, RolloutFailed, SwarmUnavailable.
        """
        return deploy_service(self.managers, spec, scope=self.scope, key=self.key,
                              journal=self.journal, rollout=rollout, mode=mode,
                              constraints=constraints, max_per_node=max_per_node, wait=wait)

    def rollback(self, service: str, *, reason: str = "manual") -> None:
        """``docker service rollback SERVICE``.

        Raises:
            ServiceNotFound, OutOfScope, EngineError (no previous spec).
        """
        rollback(self.managers, service, journal=self.journal, reason=reason,
                 scope=self.scope, key=self.key)

    def drain(self, node: str, *, reason: str = "manual") -> str:
        """``docker node update --availability drain NODE``: its tasks move elsewhere.

        Raises:
            NodeNotFound, OutOfScope (the node is not labelled for this scope).
        """
        return set_availability(self.managers, node, "drain", scope=self.scope,
                                journal=self.journal, reason=reason)

    def activate(self, node: str, *, reason: str = "manual") -> str:
        """``docker node update --availability active NODE``."""
        return set_availability(self.managers, node, "active", scope=self.scope,
                                journal=self.journal, reason=reason)

    def rebalance(self, service: str, *, reason: str = "manual") -> None:
        """``docker service update --force SERVICE``: tasks replaced one batch at a time with
        the service's update settings, spread again over the nodes."""
        force_update(self.managers, service, scope=self.scope, key=self.key,
                     journal=self.journal, reason=reason)

    def remove(self, service: str) -> None:
        """``docker service rm SERVICE`` (opskit's services only).

        Raises:
            ServiceNotFound, OutOfScope.
        """
        current = self.managers.service(service)
        why = service_in_scope(current, self.scope, self.key)
        if why:
            raise errors.OutOfScope(service, str(current.get("ID", "")), why, action="remove")
        record = self.journal.begin("service-remove", str(current["ID"]), service,
                                    service=service)
        try:
            self.managers.remove_service(str(current["ID"]), service)
        except errors.OpsKitError as exc:
            self.journal.finish(record, "failed", error=str(exc))
            raise
        self.journal.finish(record, "ok")

    def chaos(self, node: str, fault: str, handle: NodeHandle | None = None) -> NodeFault:
        """Make a fault on a node (``kill``, ``freeze``, ``cut`` need a ``handle`` on the node;
        ``drain`` goes through the managers); see :func:`opskit.swarm.chaos.node_fault`."""
        return node_fault(self, node, fault, handle)

    def watch(self, **kw: Any) -> SwarmWatch:
        """Start a :class:`~opskit.swarm.watch.SwarmWatch` on this swarm."""
        return SwarmWatch(self, **kw).start()

    def record(self, name: str, *, since: Any = "30m", path: str | Path | None = None,
               watch: SwarmWatch | None = None) -> Bundle:
        """An incident bundle of the swarm: nodes, services, tasks, service/node events and
        the swarm's actions, plus each reachable node's containers, stats and events (see
        :func:`opskit.swarm.record.record_swarm`)."""
        from .record import record_swarm

        return record_swarm(self, name, since=since, path=path, watch=watch)


def _quiet(call: Any, item: Any) -> Any:
    try:
        return call(item)
    except errors.OpsKitError as exc:
        log.info("swarm stats: node %s skipped: %s", item[0], exc.message)
        return None


def _to_ns(value: Any, now_ns: int) -> int:
    """A time or an age (``"10m"``, counted back from ``now_ns``) in nanoseconds."""
    try:
        when = parse_time(value, now=datetime.fromtimestamp(now_ns / 1e9, UTC))
    except (ValueError, TypeError):
        when = None
    if when is None:
        raise errors.InvalidSpec("since", f"{value!r} is not a time", allowed="'10m', a "
                                 "datetime, an ISO string")
    return int(when.timestamp() * 1e9)

