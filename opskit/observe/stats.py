"""``docker stats --no-stream`` as a DataFrame, as fast as the engine allows.

The engine samples each container's cgroups once a second, and ``GET /containers/{id}/stats``
with ``stream=false`` answers only after two samples (the second one carries the first as
``precpu_stats``), so one call takes one to two seconds whatever the client does. Calls for
different containers wait on the same engine ticks, so opskit makes them all at once, one
daemon thread per container: a cold snapshot of 50 containers takes about as long as one
container, like ``docker stats --no-stream``, where a serial docker-py loop takes 50 times as
long.

``one_shot=True`` answers after a single sample (about 1 s) but without ``precpu_stats``, so it
has no CPU %; computing one from two one-shot calls costs the same two samples, and reading the
cgroup files directly works only on a local engine and not at the engine's sampling instant.
Neither is exact, so opskit does not use them; a running :class:`opskit.observe.collector.Collector`
gives a warm snapshot in milliseconds instead.

Numbers are computed by :func:`opskit.records.stats_calc.stats_row`, as docker/cli does.

The streaming side, used by :class:`opskit.observe.collector.Collector`, is here too:
:func:`open_stats_stream` (``docker stats CONTAINER``, closable from another thread) and
:class:`Downsampler`, which turns one container's payloads into rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..base import errors
from ..base import labels as L
from ..engine.calls import PayloadStream, api_client, container_stats, stats_stream
from ..engine.connection import POOL_SIZE, Engine
from ..engine.targets import (
    Ref,
    list_raw,
    ref_from_summary,
    resolve,
)
from ..engine.translate import translate
from ..records.stats_calc import (
    StatsRow,
    is_empty,
    read_time,
    stats_row,
)
from ..records.statsframe import rows_frame, to_ns

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("opskit")

__all__ = ["SAMPLED_STATES", "Downsampler", "fetch_stats", "open_stats_stream", "spare_client",
           "stats_refs", "stats_snapshot"]

SAMPLED_STATES = ("running", "paused")
"""Container states the engine has stats for (``docker stats`` lists these)."""


def spare_client(engine: Engine, *, pool_size: int = POOL_SIZE) -> Any:
    """A second low-level docker-py client to ``engine``'s host, with a connection pool of its own.

    The engine's client keeps at most :data:`~opskit.engine.connection.POOL_SIZE` connections;
    calls beyond that still work but each opens and throws away a connection (urllib3 warns). For
    more concurrent calls, or long-lived streams that should not hold the shared pool, use a
    spare client and close it after. It speaks the engine's API version (no version request)
    and reuses its TLS settings.

    Raises:
        EngineUnavailable: the client could not be built for the host.
    """
    try:
        return api_client(engine.api, engine.host, timeout=engine.timeout, pool_size=pool_size)
    except Exception as exc:  # docker-py raises several kinds for a bad URL
        raise translate(exc, "opening a second client", host=engine.host) from exc


def _match_summary(engine: Engine, target: str, items: Sequence[dict[str, Any]]) -> list[Ref]:
    """What :func:`opskit.engine.targets.resolve` finds for a read, looked up in a listing
    already made: the service's replicas opskit owns in this scope, else the container of that
    exact name or full ID. Empty when neither matches (short IDs are left to ``resolve``)."""
    refs = [ref_from_summary(i) for i in items]
    service = [r for r in refs if r.service == target and r.labels.get(L.SCOPE) == engine.scope
               and r.owned_reason(engine) is None]
    if service:
        return sorted(service, key=lambda r: (r.replica, r.name))
    return [r for r in refs if target in (r.name, r.id)][:1]


def stats_refs(engine: Engine, targets: str | Sequence[str] | None = None) -> list[Ref]:
    """The containers a stats call covers: the running ones, or those the targets name.

    Several targets are looked up in one ``docker ps -a`` listing; only a target it cannot
    answer (a short ID, a typo) costs a ``docker inspect``.

    Args:
        engine: the engine.
        targets: ``None`` for every running container, or a service name, a container name or
            ID, or a list of them.

    Returns:
        Refs in a stable order, without duplicates, stopped containers included (callers skip
        them: see :data:`SAMPLED_STATES`).

    Raises:
        ContainerNotFound: a target names nothing.
        InvalidTarget: a target is empty.
        EngineUnavailable: the engine did not answer.
    """
    if targets is None:
        return [ref_from_summary(i) for i in list_raw(engine, all=False)]
    wanted = [targets] if isinstance(targets, str) else list(targets)
    items = list_raw(engine) if wanted else []
    found: dict[str, Ref] = {}
    for target in wanted:
        refs = _match_summary(engine, target, items) if target else []
        for ref in refs or resolve(engine, target):
            found.setdefault(ref.id, ref)
    return list(found.values())


def fetch_stats(api: Any, ref: Ref, *, host: str) -> dict[str, Any] | None:
    """One container's stats payload: ``docker stats --no-stream CONTAINER`` (two engine samples).

    Args:
        api: a docker-py ``APIClient`` (its timeout bounds the call).
        ref: the container.
        host: the engine's address, named in errors.

    Returns:
        The payload, or ``None`` when the container stopped or vanished meanwhile (the engine
        then answers a zeroed payload, an empty body, or 404).

    Raises:
        EngineUnavailable: the engine did not answer in time.
        EngineError: the engine refused.
    """
    try:
        payload = container_stats(api, ref.id)
    except Exception as exc:
        err = translate(exc, f"docker stats of {ref.name}", host=host, target=ref.name,
                        kind="container")
        if isinstance(err, errors.NotFound):
            log.debug("stats: %s was removed during the snapshot", ref.name)
            return None
        raise err from exc
    if payload is None:
        # The engine ends the answer with no body when the container stops while it waits.
        log.debug("stats: %s stopped during the snapshot (empty answer)", ref.name)
        return None
    if is_empty(payload):
        log.debug("stats: %s stopped during the snapshot", ref.name)
        return None
    return payload


def stats_snapshot(engine: Engine, targets: str | Sequence[str] | None = None, *,
                   timeout: float | None = None) -> pd.DataFrame:
    """``docker stats --no-stream [TARGET...]`` as a DataFrame, every container fetched at once.

    Each container's stats come from its own call, all made at the same moment on daemon
    threads, so the whole snapshot takes one call's time (1 to 2 s). Containers that are not
    running are skipped, as are those that stop or vanish while the snapshot runs.

    Args:
        engine: the engine.
        targets: ``None`` for every running container, or a service name, a container name or
            ID, or a list of them.
        timeout: seconds for the whole snapshot; the engine's timeout when omitted.

    Returns:
        One row per container, sorted by name: columns of :data:`opskit.records.statsframe.COLUMNS`
        (``ts`` is the engine's sample time; ``cpu_pct`` is 100 for one busy CPU).

    Raises:
        ContainerNotFound: a target names nothing.
        EngineUnavailable: the engine did not answer, or not within ``timeout``.
        EngineError: the engine refused a stats call.
    """
    limit = engine.timeout if timeout is None else float(timeout)
    deadline = time.monotonic() + limit
    refs = [r for r in stats_refs(engine, targets) if r.state in SAMPLED_STATES]
    if not refs:
        return rows_frame(())
    extra = spare_client(engine, pool_size=len(refs)) if len(refs) > POOL_SIZE else None
    api = extra if extra is not None else engine.api
    results: list[dict[str, Any] | None] = [None] * len(refs)
    failures: list[BaseException | None] = [None] * len(refs)

    def work(i: int) -> None:
        try:
            results[i] = fetch_stats(api, refs[i], host=engine.host)
        except BaseException as exc:
            failures[i] = exc

    threads = [threading.Thread(target=work, args=(i,), name=f"opskit-stats-{r.name}",
                                daemon=True) for i, r in enumerate(refs)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        late = [r.name for r, t in zip(refs, threads, strict=True) if t.is_alive()]
    finally:
        if extra is not None and not any(t.is_alive() for t in threads):
            extra.close()
    if late:
        raise errors.EngineUnavailable(
            engine.host, f"docker stats of {len(late)} container(s) ({', '.join(late[:5])}) did "
            f"not answer within {limit:g}s",
            hint="the engine may be overloaded; pass a larger timeout, or read a running "
            "Collector's latest() instead.")
    for exc in failures:
        if exc is not None:
            raise exc
    rows: list[StatsRow] = [stats_row(p) for p in results if p is not None]
    rows.sort(key=lambda r: (r["name"], r["id"]))
    return rows_frame(rows)


def open_stats_stream(api: Any, container_id: str) -> PayloadStream:
    """``docker stats CONTAINER`` as a stream of payloads that another thread can cut.

    Like docker-py's ``api.stats(id, stream=True, decode=True)``, but its ``close()`` shuts
    the socket, so a blocked read ends at once (see :func:`opskit.engine.calls.stats_stream`).
    Each read waits at most the client's timeout.

    Raises:
        docker.errors.APIError: the engine refused (``NotFound`` for a removed container);
            translate it with :func:`opskit.engine.translate.translate`.
    """
    return stats_stream(api, container_id)


class Downsampler:
    """Turns one container's stream of payloads into rows, keeping the previous for CPU %.

    The first payload is only the baseline. With ``interval`` <= 1 s every later payload gives a
    row; above, the first payload of each ``interval``-long slot (aligned on the epoch) does,
    and its CPU % covers the time since the previous row.
    """

    def __init__(self, interval: float) -> None:
        self.interval_ns = round(interval * 1e9) if interval > 1.0 else 0
        self._prev: dict[str, Any] | None = None
        self._prev_ns = 0

    def feed(self, payload: dict[str, Any]) -> StatsRow | None:
        """The row for ``payload``, or ``None`` when it is a baseline or is downsampled away."""
        when = read_time(payload)
        now_ns = to_ns(when)
        prev = self._prev
        if prev is not None and self.interval_ns and (
                now_ns // self.interval_ns <= self._prev_ns // self.interval_ns):
            return None
        self._prev, self._prev_ns = payload, now_ns
        if prev is None:
            return None
        return stats_row(payload, prev, ts=when)
