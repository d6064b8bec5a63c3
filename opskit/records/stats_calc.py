"""The arithmetic of ``docker stats``: the engine's stats JSON in, the CLI's numbers out.

The engine's ``GET /containers/{id}/stats`` answers raw cgroup counters; ``docker stats``
turns them into percentages and byte counts on the client side. These pure functions do the
same, the way docker/cli does in ``cli/command/container/stats_helpers.go``, so a row opskit
records reads the same as what ``docker stats --no-stream`` prints for that sample. They take
the decoded JSON (what docker-py's ``container.stats(stream=False)`` returns) and do no I/O.

Both cgroup versions are handled: v1 hosts report ``total_inactive_file`` and per-CPU usage,
v2 hosts report ``inactive_file`` and no per-CPU list. Windows payloads are not handled.

A missing field counts as zero, as in the CLI (Go decodes an absent field to zero); one
deliberate difference: CPU % is ``0.0`` when either sample lacks ``system_cpu_usage``, where
the CLI would divide by the counters since boot (see :func:`cpu_percent`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict

from ..base.errors import EngineError

__all__ = [
    "StatsRow",
    "block_io",
    "cpu_percent",
    "is_empty",
    "memory_limit",
    "memory_percent",
    "memory_used",
    "network_bytes",
    "pids",
    "read_time",
    "stats_row",
]

_ZERO_TIME = "0001-01-01T00:00:00Z"


class StatsRow(TypedDict):
    """One ``docker stats`` line as numbers; bytes are integers, times are UTC."""

    ts: datetime
    id: str
    name: str
    cpu_pct: float
    mem_used: int
    mem_limit: int
    mem_pct: float
    net_rx: int
    net_tx: int
    blk_read: int
    blk_write: int
    pids: int


def _section(data: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    value = data.get(key) if data is not None else None
    return value if isinstance(value, Mapping) else {}


def _count(value: Any) -> int:
    """A counter from the JSON as an int; absent, null or malformed counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def cpu_percent(cur: Mapping[str, Any], prev: Mapping[str, Any] | None = None) -> float:
    """CPU use in percent of one CPU, as the ``CPU %`` column of ``docker stats``.

    ``(container CPU delta / system CPU delta) x online CPUs x 100``, the CLI's
    ``calculateCPUPercentUnix``: 100 % is one CPU busy, a container on 2 CPUs can show 200 %.

    Args:
        cur: a stats payload.
        prev: an earlier payload of the same container, whose ``cpu_stats`` is the baseline.
            ``None`` uses ``cur["precpu_stats"]``, which ``stats(stream=False)`` fills with
            the engine's previous sample. A ``one_shot=True`` payload has an empty
            ``precpu_stats``: keep its predecessor and pass it here.

    Returns:
        The percentage; ``0.0`` when either delta is not positive or a sample lacks
        ``system_cpu_usage`` (a one-shot or stopped-container baseline), where the CLI would
        compute an average since boot instead.
    """
    now = _section(cur, "cpu_stats")
    before = _section(prev, "cpu_stats") if prev is not None else _section(cur, "precpu_stats")
    if not now.get("system_cpu_usage") or not before.get("system_cpu_usage"):
        return 0.0
    usage_now = _section(now, "cpu_usage")
    cpu_delta = _count(usage_now.get("total_usage")) - _count(
        _section(before, "cpu_usage").get("total_usage"))
    system_delta = _count(now.get("system_cpu_usage")) - _count(before.get("system_cpu_usage"))
    online = _count(now.get("online_cpus"))
    if online == 0:
        percpu = usage_now.get("percpu_usage")
        online = len(percpu) if isinstance(percpu, list) else 0
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * online * 100.0


def memory_used(mem: Mapping[str, Any]) -> int:
    """Memory in use without the reclaimable page cache, as ``MEM USAGE`` of ``docker stats``.

    The CLI's ``calculateMemUsageUnixNoCache``: ``usage - total_inactive_file`` when that key
    exists and is below usage (cgroup v1), else ``usage - inactive_file`` when that is below
    usage (cgroup v2; an absent key counts as 0), else ``usage``.

    Args:
        mem: the payload's ``memory_stats``.
    """
    usage = _count(mem.get("usage"))
    stats = _section(mem, "stats")
    if "total_inactive_file" in stats:
        inactive = _count(stats["total_inactive_file"])
        if inactive < usage:
            return usage - inactive
    inactive = _count(stats.get("inactive_file"))
    if inactive < usage:
        return usage - inactive
    return usage


def memory_limit(mem: Mapping[str, Any]) -> int:
    """The memory limit in bytes, as ``LIMIT`` of ``docker stats`` (host memory if unlimited).

    Args:
        mem: the payload's ``memory_stats``; ``0`` when it is empty (a stopped container).
    """
    return _count(mem.get("limit"))


def memory_percent(mem: Mapping[str, Any]) -> float:
    """:func:`memory_used` in percent of :func:`memory_limit`, as ``MEM %`` of ``docker stats``.

    Args:
        mem: the payload's ``memory_stats``.

    Returns:
        The percentage; ``0.0`` when the limit is 0 (no data, a stopped container).
    """
    limit = memory_limit(mem)
    if limit == 0:
        return 0.0
    return memory_used(mem) / limit * 100.0


def network_bytes(payload: Mapping[str, Any]) -> tuple[int, int]:
    """Bytes received and sent over all interfaces, as ``NET I/O`` of ``docker stats``.

    Returns:
        ``(rx, tx)``; ``(0, 0)`` for a container without networks.
    """
    rx = tx = 0
    for iface in _section(payload, "networks").values():
        if isinstance(iface, Mapping):
            rx += _count(iface.get("rx_bytes"))
            tx += _count(iface.get("tx_bytes"))
    return rx, tx


def block_io(payload: Mapping[str, Any]) -> tuple[int, int]:
    """Bytes read from and written to block devices, as ``BLOCK I/O`` of ``docker stats``.

    Sums ``blkio_stats.io_service_bytes_recursive`` over devices. Like the CLI's
    ``calculateBlockIO`` it looks only at the first letter of ``op``, in either case: cgroup v1
    says ``Read``/``Write`` (and ``Sync``, ``Async``, ``Total``, which are skipped), cgroup v2
    says ``read``/``write``.

    Returns:
        ``(read, write)``; ``(0, 0)`` when the list is empty or null.
    """
    entries = _section(payload, "blkio_stats").get("io_service_bytes_recursive")
    read = write = 0
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping):
            continue
        op = str(entry.get("op") or "")[:1]
        if op in ("r", "R"):
            read += _count(entry.get("value"))
        elif op in ("w", "W"):
            write += _count(entry.get("value"))
    return read, write


def pids(payload: Mapping[str, Any]) -> int:
    """Number of processes and threads, as ``PIDS`` of ``docker stats``; 0 when absent."""
    return _count(_section(payload, "pids_stats").get("current"))


def is_empty(payload: Mapping[str, Any]) -> bool:
    """Whether the payload carries no sample: the zeroed answer for a stopped container.

    The engine answers a stopped container's stats with ``read`` set to Go's zero time
    (``0001-01-01T00:00:00Z``), empty ``memory_stats`` and zero counters.
    """
    read = payload.get("read")
    return not read or not isinstance(read, str) or read.startswith(_ZERO_TIME[:10])


def read_time(payload: Mapping[str, Any]) -> datetime:
    """When the engine took the sample (``read``), as a timezone-aware UTC datetime.

    Nanoseconds are truncated to microseconds. A stopped container's zero time gives
    ``0001-01-01 00:00:00+00:00``.

    Raises:
        EngineError: ``read`` is absent or not an RFC 3339 time.
    """
    value = payload.get("read")
    parsed: datetime | None = None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        raise EngineError(
            "Reading a stats sample", f"'read' is not an RFC 3339 time: {value!r}",
            hint="pass the JSON of GET /containers/{id}/stats unchanged "
            "(docker-py: container.stats(stream=False)).")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def stats_row(payload: Mapping[str, Any], prev: Mapping[str, Any] | None = None, *,
              ts: datetime | None = None) -> StatsRow:
    """One ``docker stats --no-stream`` line for a payload, as numbers.

    Args:
        payload: a stats payload (``container.stats(stream=False)``). Check :func:`is_empty`
            first: a stopped container's row is all zeros at ``0001-01-01``.
        prev: an earlier payload of the same container, for CPU %; see :func:`cpu_percent`.
        ts: the row's time instead of the payload's ``read``; a naive datetime is taken as UTC.

    Returns:
        A dict with ``ts`` (UTC), ``id``, ``name`` (without the leading ``/``), ``cpu_pct``,
        ``mem_used``, ``mem_limit``, ``mem_pct``, ``net_rx``, ``net_tx``, ``blk_read``,
        ``blk_write`` and ``pids``.

    Raises:
        EngineError: ``ts`` is not given and ``read`` is not a time.
    """
    if ts is None:
        when = read_time(payload)
    elif ts.tzinfo is None:
        when = ts.replace(tzinfo=UTC)
    else:
        when = ts.astimezone(UTC)
    mem = _section(payload, "memory_stats")
    net_rx, net_tx = network_bytes(payload)
    blk_read, blk_write = block_io(payload)
    return StatsRow(
        ts=when,
        id=str(payload.get("id") or ""),
        name=str(payload.get("name") or "").lstrip("/"),
        cpu_pct=cpu_percent(payload, prev),
        mem_used=memory_used(mem),
        mem_limit=memory_limit(mem),
        mem_pct=memory_percent(mem),
        net_rx=net_rx,
        net_tx=net_tx,
        blk_read=blk_read,
        blk_write=blk_write,
        pids=pids(payload),
    )
