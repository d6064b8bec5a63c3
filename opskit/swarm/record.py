"""An incident bundle of a swarm: the managers' frames (nodes, services, tasks, service and
node events) as the bundle's ``swarm_*`` tables, and from each node's own engine the task
containers, their events and a stats snapshot, joined to their tasks; the swarm's action
journal; the watch's findings in the manifest. It opens like any bundle
(:func:`opskit.open_bundle`, notebook 06), with ``bundle.has_swarm`` true.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..act.actions import default_actor
from ..analysis.bundle import SUFFIX, TABLES, Bundle, open_bundle, write_bundle
from ..analysis.bundle_format import JSON_COLUMNS
from ..analysis.incidents import findings_frame
from ..analysis.tables import concat_like, empty_logs, scrub, scrub_value, tidy
from ..base import errors
from ..base.redact import RedactionReport
from ..base.units import parse_time
from ..base.version import __version__
from ..observe.health import health_frame
from ..observe.listing import containers_frame
from ..records.statsframe import empty_frame
from . import frames

if TYPE_CHECKING:
    from .cluster import Swarm
    from .watch import SwarmWatch

__all__ = ["record_swarm"]

TASK_LABEL = "com.docker.swarm.task.id"


def record_swarm(swarm: Swarm, name: str, *, since: Any = "30m", path: str | Path | None = None,
                 watch: SwarmWatch | None = None) -> Bundle:
    """Record the swarm into ``NAME.opsb`` and open it; see the module docstring.

    A node whose engine cannot be read is named in the manifest's notes.

    Raises:
        SwarmUnavailable: no manager answered. StorageError: the file could not be written.
    """
    now = datetime.now(UTC)
    try:
        start = parse_time(since, now=now) or now
    except (ValueError, TypeError) as exc:
        raise errors.InvalidSpec("since", f"{since!r} is not a time", allowed="'30m', a "
                                 "datetime, an ISO string") from exc
    notes: list[str] = []
    raw_nodes, raw_services = swarm.managers.nodes(), swarm.managers.services()
    raw_tasks = swarm.managers.tasks()
    tasks = frames.tasks_frame(raw_tasks, raw_nodes, raw_services)
    swarm_tables = {
        "swarm_nodes": frames.nodes_frame(raw_nodes),
        "swarm_services": swarm.services_frame(raw_services, raw_tasks, raw_nodes),
        "swarm_tasks": tasks,
        "swarm_events": swarm.events(start, now)}
    by_container = {c: (s, n) for c, s, n in zip(tasks["container_id"], tasks["service"],
                                                  tasks["node"], strict=True) if c}
    listed, events, stats = [], [], []
    for node, ops in swarm.node_ops().items():
        try:
            frame = containers_frame(ops.engine, filters={"label": [TASK_LABEL]})
            frame["service"] = [by_container.get(i, ("", ""))[0] for i in frame["id"]]
            listed.append(frame.assign(node=node))
            running = list(frame.loc[frame["state"].astype(str) == "running", "id"])
            if running:
                stats.append(ops.stats([str(i) for i in running]).assign(node=node))
        except errors.OpsKitError as exc:
            notes.append(f"node {node} not read: {exc.message}")
    task_events = swarm.task_events(start, now)
    if len(task_events):
        events.append(task_events.drop(columns=["task_id"]))
    containers = concat_like(listed, pd.DataFrame(columns=["id", "name", "service", "node"]))
    actions = swarm.actions()
    actions = actions[actions["ts"] >= start] if len(actions) else actions
    reports = {kind: RedactionReport() for kind in (*TABLES, *swarm_tables, "manifest")}
    base = {
        "containers": containers,
        "inspections": pd.DataFrame(columns=["id", "name", "service", "attrs"]),
        "stats": concat_like(stats, empty_frame()),
        "events": concat_like(events, pd.DataFrame(columns=["ts", "kind", "name", "actor_id",
                                                            "attributes"])),
        "logs": empty_logs(), "health": health_frame([]), "actions": actions,
        "findings": findings_frame([], [])}
    tables = {kind: scrub(tidy(frame), reports[kind], JSON_COLUMNS.get(kind, ()))
              for kind, frame in {**base, **swarm_tables}.items()}
    found = [{"kind": f.kind, "subject": f.subject, "message": f.message,
              "since": f.since.isoformat(), "severity": f.severity}
             for f in (watch.findings() if watch is not None else [])]
    manifest = scrub_value({
        "name": Path(name).name.removesuffix(SUFFIX), "created_at": now.isoformat(),
        "opskit_version": __version__, "scope": swarm.scope,
        "engine": {"host": ", ".join(swarm.managers.hosts), "id": swarm.cluster_id,
                   "kind": "swarm"},
        "recorded_by": {"host": socket.gethostname(), "actor": default_actor()},
        "services": sorted(str(s) for s in tables["swarm_services"]["service"]),
        "containers": list(tables["containers"]["name"].astype(str)),
        "time_range": {"since": start.isoformat(), "until": now.isoformat(),
                       "seconds": (now - start).total_seconds()},
        "captured": {"swarm": True, "stats": "snapshot",
                     "events": "managers' and nodes' replay"},
        "swarm_findings": found, "watchdog": watch.status() if watch is not None else None,
        "notes": notes}, reports["manifest"], "manifest")
    manifest["redaction"] = {k: r.to_dict() for k, r in reports.items() if r.total()}
    manifest["redaction_total"] = sum(r.total() for r in reports.values())
    target = Path(path) if path is not None else Path(
        name if name.endswith(SUFFIX) else name + SUFFIX)
    return open_bundle(write_bundle(target, manifest, tables))
