"""What the detection rules report: :class:`Finding`, one condition of one container.

A finding says which container, what kind of trouble (``unhealthy``, ``crash_loop``, ...), how
bad (``severity``), since when, the evidence that shows it, a hint for the on-call engineer, and
which of the five failure classes it belongs to:

========================  ========================================================================
``deployment``            the first run after ``create`` ended before it was ever healthy
``management``            the container's life cycle or resources: exits, OOM, paused, pressure
``communication``         the service does not answer its own probe (``unhealthy``)
``detection``             opskit cannot see the service's health: no healthcheck, probe errors
``recovery``              restarts are not helping, or the engine's restart policy is at work
========================  ========================================================================

:attr:`Finding.key` (container ID, kind and ``since``) stays the same while one condition lasts,
so a watcher that sees the same finding on every pass records one incident. Nothing here does
I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from ..base.errors import InvalidSpec

__all__ = ["FAILURE_CLASSES", "SEVERITIES", "Finding"]

SEVERITIES = ("critical", "warning", "info")
FAILURE_CLASSES = ("deployment", "management", "communication", "detection", "recovery")


def _freeze(value: Any, where: str) -> Any:
    """A read-only copy of a JSON-able value: mappings become proxies, lists become tuples."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v, f"{where}.{k}") for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise TypeError(f"evidence {where} is a {type(value).__name__}, not a plain JSON value")


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class Finding:
    """One condition of one container, found by a rule of :mod:`opskit.recover.rules`.

    Attributes:
        container_id: the container's full ID.
        container: its name.
        service: the opskit service it belongs to (``""`` for a foreign container).
        kind: what was found: ``unhealthy``, ``probe_error``, ``exited_nonzero``,
            ``exited_zero``, ``crash_loop``, ``oom_killed``, ``restarting``, ``paused``,
            ``memory_pressure``, ``cpu_pressure``, ``no_healthcheck``.
        severity: ``critical``, ``warning`` or ``info``.
        since: when the condition began (UTC; a naive datetime is taken as UTC).
        evidence: a read-only mapping of plain JSON values (exit code, signal, counts, event
            times, last probe output, memory limit, last stats sample, ...). Datetimes given
            here are stored as ISO 8601 strings.
        hint: one sentence for the on-call engineer.
        failure_class: ``deployment``, ``management``, ``communication``, ``detection`` or
            ``recovery``.

    Raises:
        InvalidSpec: ``severity`` or ``failure_class`` is not one of the allowed values.
        TypeError: an evidence value is not a plain JSON value.
    """

    container_id: str
    container: str
    service: str
    kind: str
    severity: str
    since: datetime
    evidence: Mapping[str, Any] = field(hash=False)
    hint: str
    failure_class: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise InvalidSpec("severity", f"{self.severity!r} is not a severity",
                              allowed=", ".join(SEVERITIES), value=self.severity)
        if self.failure_class not in FAILURE_CLASSES:
            raise InvalidSpec("failure_class", f"{self.failure_class!r} is not a failure class",
                              allowed=", ".join(FAILURE_CLASSES), value=self.failure_class)
        object.__setattr__(self, "since", _utc(self.since))
        object.__setattr__(self, "evidence", _freeze(dict(self.evidence), "evidence"))

    @property
    def key(self) -> str:
        """``container_id:kind:since`` (since in ISO 8601): the same while the condition lasts."""
        return f"{self.container_id}:{self.kind}:{self.since.isoformat()}"

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able mapping (``since`` as ISO 8601) that :meth:`from_dict` reads."""
        return {"key": self.key, "container_id": self.container_id,
                "container": self.container, "service": self.service, "kind": self.kind,
                "severity": self.severity, "since": self.since.isoformat(),
                "evidence": _thaw(self.evidence), "hint": self.hint,
                "failure_class": self.failure_class}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Read back what :meth:`to_dict` wrote (``key`` is recomputed, not read)."""
        since = data["since"]
        return cls(container_id=data["container_id"], container=data["container"],
                   service=data.get("service", ""), kind=data["kind"],
                   severity=data["severity"],
                   since=datetime.fromisoformat(since) if isinstance(since, str) else since,
                   evidence=data.get("evidence") or {}, hint=data.get("hint", ""),
                   failure_class=data["failure_class"])
