"""The swarm as DataFrames, from the managers' payloads: nodes, services, tasks, events.

Pure functions over the Engine API's objects (``GET /nodes``, ``/services``, ``/tasks``,
``/events``), so they are tested on payloads recorded from a real swarm. A node is named by its
``opskit.lab.node`` label when it has one (every node of a swarm on one machine reports the
machine's hostname), else its hostname.

Swarm's task states: a task with a healthcheck is ``starting`` until its first healthy probe,
then ``running``: ``running`` counts replicas that serve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..base.units import parse_time

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NODE_COLUMNS", "SERVICE_COLUMNS", "SWARM_EVENT_COLUMNS", "TASK_COLUMNS",
           "events_frame", "node_name", "nodes_frame", "services_frame", "tasks_frame"]

NODE_LABEL = "opskit.lab.node"
NODE_COLUMNS = ["node_id", "node", "hostname", "role", "availability", "state", "leader",
                "reachability", "addr", "engine_version", "message"]
SERVICE_COLUMNS = ["service_id", "service", "mode", "wanted", "running", "starting", "failed",
                   "update_state", "update_message", "image", "version", "opskit"]
TASK_COLUMNS = ["task_id", "service", "slot", "node_id", "node", "state", "desired_state",
                "error", "message", "exit_code", "container_id", "ts", "image"]
SWARM_EVENT_COLUMNS = ["ts", "type", "action", "actor_id", "name", "attributes"]
_DTYPES = {"ts": "datetime64[ns, UTC]", "leader": "bool", "opskit": "bool"}


def _frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=list(columns))
    for column, dtype in _DTYPES.items():
        if column in frame.columns:
            frame[column] = (pd.to_datetime(frame[column], utc=True).astype(dtype)
                             if dtype.startswith("datetime") else frame[column].astype(dtype))
    return frame


def node_name(node: Mapping[str, Any]) -> str:
    """The node's label ``opskit.lab.node``, else its hostname, else its ID."""
    spec = node.get("Spec") or {}
    labels = spec.get("Labels") or {}
    return str(labels.get(NODE_LABEL) or (node.get("Description") or {}).get("Hostname")
               or node.get("ID", ""))


def nodes_frame(nodes: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """``docker node ls``: one row per node (role, availability, state, leader)."""
    rows = []
    for node in nodes:
        spec, status = node.get("Spec") or {}, node.get("Status") or {}
        manager = node.get("ManagerStatus") or {}
        desc = node.get("Description") or {}
        rows.append({
            "node_id": str(node.get("ID", "")), "node": node_name(node),
            "hostname": str(desc.get("Hostname", "")), "role": str(spec.get("Role", "")),
            "availability": str(spec.get("Availability", "")),
            "state": str(status.get("State", "")), "leader": bool(manager.get("Leader")),
            "reachability": str(manager.get("Reachability", "")),
            "addr": str(status.get("Addr", "")),
            "engine_version": str((desc.get("Engine") or {}).get("EngineVersion", "")),
            "message": str(status.get("Message", ""))})
    return _frame(sorted(rows, key=lambda r: r["node"]), NODE_COLUMNS)


def tasks_frame(tasks: Sequence[Mapping[str, Any]], nodes: Sequence[Mapping[str, Any]] = (),
                services: Sequence[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """``docker service ps``: one row per task, newest first within a slot."""
    names = {str(n.get("ID")): node_name(n) for n in nodes}
    service_names = {str(s.get("ID")): str((s.get("Spec") or {}).get("Name", "")) for s in
                     services}
    rows: list[dict[str, Any]] = []
    for task in tasks:
        status = task.get("Status") or {}
        container = (status.get("ContainerStatus") or {})
        spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
        node_id = str(task.get("NodeID", ""))
        slot = task.get("Slot")
        rows.append({
            "task_id": str(task.get("ID", "")),
            "service": service_names.get(str(task.get("ServiceID")),
                                         str(task.get("ServiceID", ""))),
            "slot": int(slot) if slot is not None else -1,
            "node_id": node_id, "node": names.get(node_id, node_id[:12]),
            "state": str(status.get("State", "")),
            "desired_state": str(task.get("DesiredState", "")),
            "error": str(status.get("Err", "")), "message": str(status.get("Message", "")),
            "exit_code": container.get("ExitCode"),
            "container_id": str(container.get("ContainerID", "")),
            "ts": parse_time(status.get("Timestamp")) if status.get("Timestamp") else None,
            "image": str(spec.get("Image", "")).split("@", 1)[0]})
    rows.sort(key=lambda r: (r["service"], r["slot"], -(r["ts"].timestamp() if r["ts"] else 0.0)))
    return _frame(rows, TASK_COLUMNS)


def services_frame(services: Sequence[Mapping[str, Any]], tasks: Sequence[Mapping[str, Any]],
                   *, owned: Mapping[str, bool] | None = None,
                   active_nodes: int | None = None) -> pd.DataFrame:
    """``docker service ls`` with the update status: replicas wanted, running (healthy when
    the service has a healthcheck), starting, failed in the last tasks."""
    rows = []
    for service in services:
        sid, spec = str(service.get("ID", "")), service.get("Spec") or {}
        mode = spec.get("Mode") or {}
        mine = [t for t in tasks if str(t.get("ServiceID")) == sid and
                t.get("DesiredState") == "running"]
        states = [str((t.get("Status") or {}).get("State", "")) for t in mine]
        if "Replicated" in mode:
            kind, wanted = "replicated", int((mode["Replicated"] or {}).get("Replicas", 0))
        else:
            kind, wanted = "global", active_nodes if active_nodes is not None else len(mine)
        failed = sum(1 for t in tasks if str(t.get("ServiceID")) == sid and
                     (t.get("Status") or {}).get("State") in ("failed", "rejected"))
        update = service.get("UpdateStatus") or {}
        image = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
        name = str(spec.get("Name", ""))
        rows.append({
            "service_id": sid, "service": name, "mode": kind, "wanted": wanted,
            "running": states.count("running"),
            "starting": sum(s in ("new", "pending", "assigned", "accepted", "preparing",
                                  "ready", "starting") for s in states),
            "failed": failed, "update_state": str(update.get("State", "")),
            "update_message": str(update.get("Message", "")),
            "image": str(image).split("@", 1)[0],
            "version": int((service.get("Version") or {}).get("Index", 0)),
            "opskit": bool((owned or {}).get(name, False))})
    return _frame(sorted(rows, key=lambda r: r["service"]), SERVICE_COLUMNS)


def events_frame(payloads: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Service and node events (``docker events --filter type=service --filter type=node``)."""
    import pandas as pd

    rows = []
    for raw in payloads:
        actor = raw.get("Actor") or {}
        attrs = dict(actor.get("Attributes") or {})
        ns = raw.get("timeNano") or int(raw.get("time") or 0) * 1_000_000_000
        rows.append({"ts": pd.Timestamp(int(ns), unit="ns", tz="UTC"),
                     "type": str(raw.get("Type", "")), "action": str(raw.get("Action", "")),
                     "actor_id": str(actor.get("ID", "")), "name": str(attrs.get("name", "")),
                     "attributes": attrs})
    rows.sort(key=lambda r: r["ts"])
    return _frame(rows, SWARM_EVENT_COLUMNS)
