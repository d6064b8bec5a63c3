"""Typed records for the engine's events, read the same way on old and new engines.

``docker events`` (``GET /events``) sends one JSON object per change. Engines up to API 1.51
also send the fields ``status``, ``id`` and ``from``, deprecated since API 1.22; API 1.52 no
longer sends them. :func:`parse_event` reads only ``Type``, ``Action``, ``Actor.ID``,
``Actor.Attributes`` and ``timeNano`` (``time`` when ``timeNano`` is absent), so both shapes
give the same :class:`Event`. Nothing here talks to the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from ..base.errors import EngineError

__all__ = ["Event", "event_key", "parse_event"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HINT = ("pass the decoded JSON of GET /events unchanged (docker-py: "
         "client.events(decode=True)).")


def _no_raw() -> Mapping[str, Any]:
    return MappingProxyType({})


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Event:
    """One engine event, as one line of ``docker events --format '{{json .}}'``.

    Attributes:
        time_nano: when it happened, nanoseconds since the epoch (``timeNano``).
        type: ``container``, ``image``, ``network``, ``volume``, ``daemon``, ...
        action: the whole ``Action``, e.g. ``exec_start: wget -q -O- http://...``.
        base_action: ``Action`` before ``": "``: ``exec_start``, ``health_status``, ``die``.
        actor_id: the object's ID (``Actor.ID``): a full container ID, an image ID, ...
        attributes: a read-only copy of ``Actor.Attributes`` (``name``, ``image``, the
            container's labels, ``exitCode``, ``signal``, ``execID``).
        detail: ``Action`` after ``": "`` (``healthy``, the exec's command), else ``""``.
        host: the engine the event came from, as the caller names it.
        raw: a read-only copy of the payload as received.
    """

    time_nano: int
    type: str
    action: str
    base_action: str
    actor_id: str
    attributes: Mapping[str, str] = field(hash=False)
    detail: str
    host: str = ""
    raw: Mapping[str, Any] = field(default_factory=_no_raw, repr=False, compare=False,
                                   hash=False)

    def __post_init__(self) -> None:
        # Copies, so a caller that mutates its dicts afterwards cannot change the record.
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))
        object.__setattr__(self, "raw", MappingProxyType(dict(self.raw)))

    @property
    def ts(self) -> datetime:
        """When it happened, as a UTC datetime (nanoseconds truncated to microseconds)."""
        return _EPOCH + timedelta(microseconds=self.time_nano // 1000)

    @property
    def name(self) -> str | None:
        """The object's name (a container's name, without ``/``), if the engine sent one."""
        return self.attributes.get("name")

    @property
    def exit_code(self) -> int | None:
        """The container's exit code for a ``die`` event (``exitCode``), else ``None``."""
        if self.base_action != "die":
            return None
        return _int_or_none(self.attributes.get("exitCode"))

    @property
    def signal(self) -> int | None:
        """The signal number of a ``kill`` event (``signal``), else ``None``."""
        if self.base_action != "kill":
            return None
        return _int_or_none(self.attributes.get("signal"))


def _time_nano(payload: Mapping[str, Any]) -> int:
    nano = payload.get("timeNano")
    if isinstance(nano, int) and not isinstance(nano, bool):
        return nano
    if nano is None:
        seconds = payload.get("time")
        if isinstance(seconds, int) and not isinstance(seconds, bool):
            return seconds * 1_000_000_000
        if isinstance(seconds, float):
            return round(seconds * 1e9)
    raise EngineError("Reading an engine event",
                      f"the event has no usable 'timeNano' or 'time' (fields: {_keys(payload)})",
                      hint=_HINT)


def _keys(payload: Mapping[str, Any]) -> str:
    return ", ".join(sorted(str(k) for k in payload)) or "none"


def parse_event(payload: Mapping[str, Any], *, host: str = "") -> Event:
    """Turn one decoded ``GET /events`` object into an :class:`Event`.

    Reads ``Type``, ``Action``, ``Actor.ID``, ``Actor.Attributes`` and ``timeNano`` (or
    ``time`` x 1e9 when ``timeNano`` is absent); never the deprecated ``status``, ``id`` and
    ``from``, which API 1.52 engines no longer send.

    Args:
        payload: one event, as docker-py's ``client.events(decode=True)`` yields it.
        host: the engine it came from, kept on the record.

    Raises:
        EngineError: ``Type`` or ``Action`` is missing or empty, or there is no time.
    """
    for key in ("Type", "Action"):
        value = payload.get(key)
        if not isinstance(value, str) or not value:
            raise EngineError("Reading an engine event",
                              f"the event has no '{key}' (fields: {_keys(payload)})",
                              hint=_HINT)
    action: str = payload["Action"]
    base_action, _, detail = action.partition(": ")
    actor = payload.get("Actor")
    actor = actor if isinstance(actor, Mapping) else {}
    attrs = actor.get("Attributes")
    attributes = ({str(k): "" if v is None else str(v) for k, v in attrs.items()}
                  if isinstance(attrs, Mapping) else {})
    return Event(
        time_nano=_time_nano(payload),
        type=payload["Type"],
        action=action,
        base_action=base_action,
        actor_id=str(actor.get("ID") or ""),
        attributes=attributes,
        detail=detail,
        host=host,
        raw=payload,
    )


def event_key(ev: Event) -> tuple[int, str, str, str]:
    """The identity of an event, to drop the duplicates a reconnect with ``since`` replays.

    ``since`` is inclusive, so resuming from the last event's time sends that event (and any
    others of the same second) again. Two events with equal keys are the same event.

    Returns:
        ``(time_nano, type, action, actor_id)``.
    """
    return (ev.time_nano, ev.type, ev.action, ev.actor_id)
