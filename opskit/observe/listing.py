"""All containers as one table: ``docker ps -a`` with what ``docker inspect`` adds.

The summary list (``GET /containers/json``, a few milliseconds) has no health, exit code, OOM
flag or restart count, so each container is also inspected, concurrently. Environment values
are never in the frame.

A paused container is inspected with a short timeout: Docker 20.10 can make an inspect of a
container paused while its health probe was starting wait about 30 s (see
:class:`~opskit.base.errors.EngineTimeout`). Its row then comes from the listing alone (state,
health from the status text, image, labels, networks) rather than stalling the whole table.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..base import errors
from ..base import labels as L
from ..engine.calls import inspect_container, is_timeout
from ..engine.connection import Engine
from ..engine.targets import list_raw
from ..engine.translate import translate
from .inspection import ContainerInfo, health_from_status

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CONTAINER_COLUMNS", "container_rows", "containers_frame"]

CONTAINER_COLUMNS = ["id", "name", "service", "image", "state", "health", "exit_code",
                     "oom_killed", "restart_count", "created", "started_at", "finished_at",
                     "ports", "networks", "memory_limit", "cpu_limit", "restart_policy",
                     "managed", "host"]
_CATEGORIES = ("name", "service", "image", "state", "health", "restart_policy", "host")
_TIMES = ("created", "started_at", "finished_at")


PAUSED_INSPECT_TIMEOUT = 3.0
"""Seconds an inspect of a paused container may take before its row comes from the listing."""


def _inspect_or_none(engine: Engine, item: dict[str, Any]) -> ContainerInfo | None:
    """``docker inspect CID`` as a record; None when it was removed since the list.

    Raises:
        EngineUnavailable, EngineError: any other failure (a partial table would mislead).
    """
    cid, api = item["Id"], engine.api
    paused = item.get("State") == "paused"
    what = f"inspect of {cid[:12]}"
    try:
        if paused:
            attrs = inspect_container(api, cid, min(engine.timeout, PAUSED_INSPECT_TIMEOUT))
        else:
            attrs = api.inspect_container(cid)
    except Exception as exc:
        err = translate(exc, what, host=engine.host, target=cid, kind="container")
        if isinstance(err, errors.NotFound):  # removed between the list and the inspect
            return None
        if not is_timeout(exc):
            raise err from exc
        if paused:  # the engine may hold its lock for ~30 s: the row the listing gives
            return ContainerInfo.from_attrs(summary_attrs(item))
        raise errors.EngineTimeout(engine.host or "the engine", what, cid, "timed out") from None
    return ContainerInfo.from_attrs(attrs)


def summary_attrs(item: dict[str, Any]) -> dict[str, Any]:
    """An inspect-shaped payload from one ``docker ps`` entry: what the listing knows.

    Health comes from the status text (``Up 3 minutes (healthy)``); limits, restart policy,
    exit code and times other than creation are unknown there and read as empty.
    """
    health = health_from_status(str(item.get("Status", "")))
    created = datetime.fromtimestamp(int(item.get("Created") or 0), UTC)
    return {"Id": item["Id"], "Name": (item.get("Names") or ["/"])[0],
            "Image": item.get("ImageID", ""),
            "Created": created.isoformat().replace("+00:00", "Z"),
            "Config": {"Image": item.get("Image", ""), "Labels": dict(item.get("Labels") or {})},
            "State": {"Status": item.get("State", ""), **({"Health": {"Status": health}}
                                                          if health else {})},
            "NetworkSettings": {"Networks": (item.get("NetworkSettings") or {}).get("Networks")
                                or {}}}


def container_rows(engine: Engine, *, all: bool = True,
                   filters: dict[str, Any] | None = None) -> list[ContainerInfo]:
    """Every container (``docker ps -a``), inspected concurrently, as typed records.

    opskit's lease containers (created, never started; see :mod:`opskit.act.lease`) are left out,
    and so is a container removed between the list and its inspect.

    Raises:
        EngineUnavailable, EngineError: the list or any inspect failed otherwise; no partial
            table is returned.
    """
    items = list_raw(engine, filters=filters, all=all)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as pool:
        infos = list(pool.map(lambda item: _inspect_or_none(engine, item), items))
    return [info for info in infos
            if info is not None and info.labels.get(L.ROLE) != "lease"]


def containers_frame(engine: Engine, *, all: bool = True,
                     filters: dict[str, Any] | None = None) -> pd.DataFrame:
    """``docker ps -a`` as a DataFrame, one row per container.

    Columns: id, name, service, image, state, health (categories), exit_code, restart_count,
    memory_limit (int64 bytes; 0 = none), cpu_limit (CPUs, 0.0 = none), oom_killed, managed
    (bool), created, started_at, finished_at (datetime64[ns, UTC], NaT when never), ports
    (``"127.0.0.1:18080->8080/tcp"``), networks (comma-separated), restart_policy, host.
    """
    import pandas as pd

    rows = []
    for info in container_rows(engine, all=all, filters=filters):
        rows.append({
            "id": info.id, "name": info.name, "service": info.service, "image": info.image,
            "state": info.state, "health": info.health, "exit_code": info.exit_code,
            "oom_killed": info.oom_killed, "restart_count": info.restart_count,
            "created": info.created, "started_at": info.started_at,
            "finished_at": info.finished_at,
            "ports": ",".join(f"{hp}->{cp}" for cp, hp in sorted(info.ports.items())),
            "networks": ",".join(info.networks), "memory_limit": info.memory_limit,
            "cpu_limit": info.cpu_limit, "restart_policy": info.restart_policy,
            "managed": info.managed, "host": engine.host})
    frame = pd.DataFrame(rows, columns=CONTAINER_COLUMNS)
    for col in _TIMES:
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[ns, UTC]")
    for col in _CATEGORIES:
        frame[col] = frame[col].astype("category")
    frame = frame.astype({"exit_code": "int64", "restart_count": "int64",
                          "memory_limit": "int64", "cpu_limit": "float64", "oom_killed": "bool",
                          "managed": "bool", "id": "string", "ports": "string",
                          "networks": "string"})
    return frame.sort_values("name", ignore_index=True)
