"""``GET /events``, read so that it can never hang: the engine's replay between two times, a
live stream any thread can close, and the engine's clock.

docker-py's ``APIClient.events()`` opens the stream with no timeout at all: against a stopped or
black-holed engine it waits for the response headers for ever. :func:`open_stream` waits at most
``timeout`` for the headers and then reads the body without a timeout, and :class:`EventStream`
can be closed from any thread. :func:`fetch_events` is the bounded form (``since`` and
``until``): a plain request with a timeout on every read.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from ..base import errors
from ..records.event_records import event_key, parse_event
from .calls import api_client
from .connection import Engine
from .translate import translate

__all__ = ["EventStream", "api_time", "engine_time_ns", "fetch_events", "open_stream",
           "parse_system_time", "replay_keys", "side_client"]

_SYSTEM_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def api_time(ns: int) -> str:
    """``since``/``until`` for ``GET /events`` with nanoseconds: ``"{sec}.{nsec:09d}"``."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def parse_system_time(value: str) -> int:
    """Nanoseconds since the epoch from ``docker info``'s ``SystemTime`` (RFC 3339).

    Raises:
        ValueError: the value is not an RFC 3339 time.
    """
    match = _SYSTEM_TIME.match(value.strip())
    if not match:
        raise ValueError(f"unexpected engine SystemTime {value!r}")
    seconds, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone))
    return int(stamp.timestamp()) * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


def engine_time_ns(api: Any, host: str = "") -> tuple[int, str]:
    """The engine's clock and ID: ``docker info`` (``GET /info``), with ``api``'s timeout.

    Returns:
        ``(SystemTime in ns, ID)``.

    Raises:
        EngineUnavailable: the engine did not answer in time.
        EngineError: the engine refused, or sent no usable ``SystemTime``.
    """
    try:
        info = api.info()
        return parse_system_time(str(info.get("SystemTime", ""))), str(info.get("ID", ""))
    except ValueError as exc:
        raise errors.EngineError("docker info", str(exc)) from exc
    except Exception as exc:
        raise translate(exc, "docker info", host=host) from exc


def _events_request(api: Any, since: str | None, until: str | None,
                    filters: Mapping[str, Any] | None) -> tuple[str, dict[str, str]]:
    from docker.utils import convert_filters

    params = {k: v for k, v in (("since", since), ("until", until),
                                ("filters", convert_filters(dict(filters)) if filters else None))
              if v is not None}
    return f"{api.base_url}/v{api.api_version}/events", params


def _check(response: Any, what: str) -> None:
    if response.status_code >= 400:
        try:
            message = str(response.json().get("message") or response.reason)
        except Exception:  # not JSON, or the body could not be read
            message = str(response.reason)
        response.close()
        raise errors.EngineError(what, message, status=response.status_code)


def fetch_events(api: Any, since_ns: int, until_ns: int, *, filters: Mapping[str, Any] | None
                 = None, timeout: float = 10.0, host: str = "") -> list[dict[str, Any]]:
    """The engine's replay between two times: ``docker events --since S --until U``.

    The engine answers from the last 256 events it keeps in memory and ends the response.

    Raises:
        EngineUnavailable: no answer within ``timeout`` (per read).
        EngineError: the engine refused the request.
    """
    url, params = _events_request(api, api_time(since_ns), api_time(until_ns), filters)
    try:
        response = api.get(url, params=params, timeout=timeout)
    except Exception as exc:
        raise translate(exc, "docker events --since/--until", host=host) from exc
    _check(response, "docker events --since/--until")
    return [json.loads(line) for line in response.content.splitlines() if line.strip()]


def replay_keys(api: Any, since_ns: int, until_ns: int, *,
                filters: Mapping[str, Any] | None = None, timeout: float = 10.0,
                host: str = "") -> tuple[set[tuple[int, str, str, str]], int]:
    """The keys (:func:`~opskit.records.event_records.event_key`) of the engine's replay between two
    times, and how many events it held (see :func:`fetch_events`; same errors)."""
    replay = fetch_events(api, since_ns, until_ns, filters=filters, timeout=timeout, host=host)
    keys = set()
    for payload in replay:
        with contextlib.suppress(errors.EngineError):
            keys.add(event_key(parse_event(payload)))
    return keys, len(replay)


def _response_socket(response: Any) -> socket.socket | None:
    conn = getattr(response.raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is None:  # the path docker-py's CancellableStream takes
        with contextlib.suppress(AttributeError):
            fp = response.raw._fp.fp.raw
            sock = getattr(fp, "_sock", None) or getattr(fp, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


class EventStream:
    """A live ``GET /events`` response, iterated as decoded dicts; :meth:`close` works from
    any thread and makes a blocked iteration end."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._sock = _response_socket(response)
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        buffer = b""
        for chunk in self._response.iter_content(chunk_size=None):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)

    def close(self) -> None:
        """Shut the socket down (waking a blocked reader) and drop the response."""
        self.closed = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._response.close()


def open_stream(api: Any, since_ns: int | None, *, filters: Mapping[str, Any] | None = None,
                timeout: float = 5.0, host: str = "") -> EventStream:
    """Open ``docker events --since S`` (``GET /events``): replay, then live events.

    The response headers must arrive within ``timeout``; the body is read without one (the
    stream is quiet while nothing happens), so the caller needs a watchdog.

    Raises:
        EngineUnavailable: no connection or no headers within ``timeout``.
        EngineError: the engine refused the request.
    """
    since = api_time(since_ns) if since_ns is not None else None
    url, params = _events_request(api, since, None, filters)
    try:
        response = api.get(url, params=params, stream=True, timeout=(timeout, timeout))
    except Exception as exc:
        raise translate(exc, "docker events", host=host) from exc
    _check(response, "docker events")
    stream = EventStream(response)
    if stream._sock is not None:
        stream._sock.settimeout(None)
    return stream


def side_client(engine: Engine, timeout: float) -> Any:
    """A new low-level client to the same engine (same host and TLS) with its own pool and a
    short ``timeout``, for watchdog pings that must not wait behind the shared pool.

    Raises:
        EngineUnavailable: docker-py could not build the client (bad URL or TLS files).
    """
    try:
        return api_client(engine.api, engine.host, timeout=timeout, pool_size=10)
    except Exception as exc:  # docker-py raises several kinds for a bad URL or TLS file
        raise errors.EngineUnavailable(engine.host, f"cannot build a client: {exc}") from exc
