"""An independent observer of a Docker engine's events, for tests.

Fault tests assert on what the engine did (how many ``kill``, ``restart``, ``start``, ``pull``
events), not on opskit's own log. :class:`EventObserver` is that witness: it
opens its own docker-py client, subscribes to ``/events`` from the engine's own clock, and reads
the stream on a daemon thread into a list, so a slow test never makes the engine drop events.

Only ``Type``, ``Action``, ``Actor`` (``ID``, ``Attributes``) and ``timeNano`` are read: newer
engines no longer send ``status``, ``id`` and ``from``.

Also here: :func:`build_busybox_image`, the tiny ``FROM scratch`` image the engine tests run.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import tarfile
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import docker
import docker.errors
import requests

__all__ = [
    "BUSYBOX_IMAGE",
    "DEFAULT_URL",
    "TEST_LABEL",
    "EventObserver",
    "base_action",
    "build_busybox_image",
    "engine_time_ns",
    "parse_event",
]

DEFAULT_URL = "unix:///var/run/docker.sock"
TEST_LABEL = "io.opskit.test"
BUSYBOX_IMAGE = "opskit-test/observer-busybox:latest"

Event = dict[str, Any]

_SYSTEM_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")
_JOIN_TIMEOUT = 5.0
_RECONNECT_MAX_DELAY = 1.0


def base_action(action: str) -> str:
    """The action without its details: ``"exec_start: wget -q ..."`` gives ``"exec_start"``."""
    return action.split(":", 1)[0].strip()


def parse_event(raw: Mapping[str, Any]) -> Event | None:
    """Keep the fields every engine version sends; ``None`` for a payload without ``Type``.

    The result has ``Type``, ``Action``, ``Actor`` (``ID``, ``Attributes``) and ``timeNano``
    (from ``time`` in whole seconds when an engine leaves ``timeNano`` out).
    """
    if not isinstance(raw, Mapping) or not raw.get("Type"):
        return None
    actor = raw.get("Actor") or {}
    time_ns = raw.get("timeNano")
    if time_ns is None:
        time_ns = int(raw.get("time") or 0) * 1_000_000_000
    return {
        "Type": str(raw["Type"]),
        "Action": str(raw.get("Action") or ""),
        "Actor": {
            "ID": str(actor.get("ID") or ""),
            "Attributes": dict(actor.get("Attributes") or {}),
        },
        "timeNano": int(time_ns),
    }


def parse_system_time(value: str) -> int:
    """Nanoseconds since the epoch from the engine's ``SystemTime`` (RFC 3339, nanoseconds)."""
    match = _SYSTEM_TIME.match(value.strip())
    if not match:
        raise ValueError(f"unexpected engine SystemTime {value!r}")
    seconds, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone))
    return int(stamp.timestamp()) * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


def engine_time_ns(client: docker.DockerClient) -> int:
    """The engine's clock now, in nanoseconds (the engine may be remote or skewed)."""
    return parse_system_time(client.info()["SystemTime"])


def _api_time(ns: int) -> str:
    """``since``/``until`` for ``/events`` with nanoseconds (docker-py rounds datetimes)."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _event_key(event: Event) -> tuple[int, str, str, str]:
    return (event["timeNano"], event["Type"], event["Action"], event["Actor"]["ID"])


def actor_matches(event: Event, container: str) -> bool:
    """True when the event's actor is ``container``: a full ID, an ID prefix or a name."""
    key = container.lstrip("/")
    actor = event["Actor"]
    name = str(actor["Attributes"].get("name", "")).lstrip("/")
    return bool(key) and (actor["ID"].startswith(key) or name == key)


def _describe(event: Event) -> str:
    actor = event["Actor"]
    who = actor["Attributes"].get("name") or actor["ID"][:12]
    return f"{event['Type']} {event['Action']!r} {who}"


def _close_stream(stream: Any) -> None:
    """Cut an events stream from another thread: shut its socket, then drop the response."""
    with contextlib.suppress(Exception):
        stream.close()  # docker-py's CancellableStream: shutdown() + close() on the socket
    with contextlib.suppress(Exception):
        stream._response.close()


class EventObserver:
    """Records one engine's events on a thread of its own, independently of opskit.

    ``with EventObserver(url, filters) as obs:`` starts it (``since`` is the engine's time at
    :meth:`start`) and stops it on exit. ``filters`` are the engine's own event filters, for
    example ``{"container": ["web"]}`` or ``{"label": ["io.opskit.test=observer"]}``.

    When the stream ends while the observer runs (the engine restarted; docker-py then ends it
    silently) and ``reconnect`` is true, it reconnects with ``since`` set to the last event's
    time and drops the replayed duplicates; :attr:`disconnects` counts such ends. Events the
    engine never kept (more than its 256, or before its restart) cannot be recovered.

    Query with :meth:`events`, :meth:`actions`, :meth:`count`, :meth:`wait_for`, :meth:`pulls`;
    the counting queries catch up with the engine first (:meth:`barrier`).
    Container arguments accept a full ID, a short ID prefix or a name. An action argument
    matches the whole ``Action`` or its :func:`base_action` (``"exec_start"`` matches
    ``"exec_start: wget -q ..."``).
    """

    base_action = staticmethod(base_action)

    def __init__(
        self,
        url: str = DEFAULT_URL,
        filters: Mapping[str, Any] | None = None,
        *,
        timeout: float = 10.0,
        reconnect: bool = True,
    ) -> None:
        self.url = url
        self.filters: dict[str, Any] | None = dict(filters) if filters else None
        self.timeout = timeout
        self.reconnect = reconnect
        self.since_ns: int | None = None
        self.disconnects = 0
        self.error: BaseException | None = None
        self._client: docker.DockerClient | None = None
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._stream_lock = threading.Lock()
        self._cond = threading.Condition()
        self._events: list[Event] = []
        self._seen: set[tuple[int, str, str, str]] = set()
        self._last_ns = 0
        self._stopping = threading.Event()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Open the client, note the engine's time and start reading; errors raise here."""
        if self._thread is not None:
            raise RuntimeError("EventObserver.start() called twice")
        client = docker.DockerClient(base_url=self.url, timeout=self.timeout)
        try:
            self._client = client
            self.since_ns = engine_time_ns(client)
            self._stream = self._open(self.since_ns)
        except BaseException:
            client.close()
            self._client = None
            raise
        self._thread = threading.Thread(
            target=self._run, name=f"EventObserver({self.url})", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading and close the client; safe to call twice, never waits long.

        Events the engine had recorded before this call are all kept: after the live stream is
        cut, a bounded ``since``/``until`` request fetches whatever the thread had not read yet.
        """
        if self._thread is None or self._client is None:
            return
        end_ns: int | None
        try:
            end_ns = engine_time_ns(self._client)
        except Exception:
            end_ns = None  # the engine is gone: nothing more to fetch from it
        with self._stream_lock:
            self._stopping.set()
            stream, self._stream = self._stream, None
        if stream is not None:
            _close_stream(stream)
        self._thread.join(_JOIN_TIMEOUT)
        if self._thread.is_alive():
            warnings.warn(f"EventObserver thread for {self.url} did not end", stacklevel=2)
        if end_ns is not None:
            self._catch_up(end_ns)
        self._client.close()
        self._client = None
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def since(self) -> str | None:
        """The engine time :meth:`start` noted, as ``/events`` takes it (``"sec.nanosec"``)."""
        return None if self.since_ns is None else _api_time(self.since_ns)

    @property
    def running(self) -> bool:
        """True while the reader thread runs (it ends on :meth:`stop`, or without reconnect)."""
        return self._thread is not None and self._thread.is_alive()

    # -- reading ------------------------------------------------------------------------------

    def _open(self, since_ns: int, until_ns: int | None = None) -> Any:
        assert self._client is not None
        stream = self._client.api.events(
            decode=True,
            since=_api_time(since_ns),
            until=None if until_ns is None else _api_time(until_ns),
            filters=self.filters,
        )
        response = getattr(stream, "_response", None)
        if response is not None and response.status_code >= 400:
            try:
                response.raise_for_status()
            except requests.exceptions.HTTPError as exc:
                _close_stream(stream)
                raise docker.errors.create_api_error_from_http_exception(exc) from exc
        return stream

    def _consume(self, stream: Iterable[Any]) -> None:
        try:
            for raw in stream:
                event = parse_event(raw)
                if event is not None:
                    self._add(event)
        except Exception as exc:  # a cut socket, a half JSON document at the cut, ...
            if not self._stopping.is_set():
                self.error = exc

    def _run(self) -> None:
        stream = self._stream
        while stream is not None:
            self._consume(stream)
            if self._stopping.is_set():
                return
            with self._cond:
                self.disconnects += 1
                self._cond.notify_all()
            stream = self._reopen() if self.reconnect else None

    def _reopen(self) -> Any:
        """Reconnect with backoff from the last event's time, until it works or stop()."""
        delay = 0.05
        while not self._stopping.wait(delay):
            try:
                stream = self._open(self._last_ns or self.since_ns or 0)
            except Exception as exc:
                self.error = exc
                delay = min(delay * 2, _RECONNECT_MAX_DELAY)
                continue
            with self._stream_lock:
                if self._stopping.is_set():
                    _close_stream(stream)
                    return None
                self._stream = stream
            return stream
        return None

    def _catch_up(self, end_ns: int) -> None:
        start_ns = self._last_ns or self.since_ns or 0
        if start_ns > end_ns:
            return
        try:
            self._consume(self._open(start_ns, end_ns))
        except Exception as exc:
            self.error = exc

    def _add(self, event: Event) -> None:
        key = _event_key(event)
        with self._cond:
            if key in self._seen:
                return
            self._seen.add(key)
            self._events.append(event)
            self._last_ns = max(self._last_ns, event["timeNano"])
            self._cond.notify_all()

    def barrier(self) -> None:
        """Catch up to the engine's clock now: after this, every event the engine recorded
        before the call is in this observer (read with a bounded ``since``/``until`` request,
        duplicates dropped), whatever the live stream's lag. Read counts after it."""
        assert self._client is not None, "barrier() needs a started observer"
        self._catch_up(engine_time_ns(self._client))

    # -- queries ------------------------------------------------------------------------------

    @staticmethod
    def _matches(
        event: Event, action: str | None, container: str | None, type: str | None
    ) -> bool:
        if type is not None and event["Type"] != type:
            return False
        if action is not None and action not in (event["Action"], base_action(event["Action"])):
            return False
        return container is None or actor_matches(event, container)

    def events(self) -> list[Event]:
        """A copy of every event recorded so far, in arrival order."""
        with self._cond:
            return copy.deepcopy(self._events)

    def select(
        self, action: str | None = None, container: str | None = None, type: str | None = None
    ) -> list[Event]:
        """Copies of the recorded events matching all the given criteria, read after a
        :meth:`barrier` while the observer runs (so a count never misses what the live
        stream has not delivered yet)."""
        if self._client is not None and not self._stopping.is_set():
            self.barrier()
        with self._cond:
            return [copy.deepcopy(e) for e in self._events
                    if self._matches(e, action, container, type)]

    def actions(
        self, container: str | None = None, type: str | None = "container", *, base: bool = False
    ) -> list[str]:
        """The ``Action`` of each recorded event of ``type`` (all types for ``None``), in order,
        for one container if given; ``base=True`` gives :func:`base_action` of each."""
        return [base_action(e["Action"]) if base else e["Action"]
                for e in self.select(None, container, type)]

    def count(self, action: str, container: str | None = None, *, type: str | None = None) -> int:
        """How many recorded events have this action (for this container, of this type)."""
        return len(self.select(action, container, type))

    def wait_for(
        self,
        action: str,
        container: str | None = None,
        timeout: float = 10.0,
        *,
        type: str | None = None,
        n: int = 1,
    ) -> Event:
        """Wait until ``n`` matching events were recorded and return the ``n``-th one.

        Raises :class:`AssertionError` listing what was seen when ``timeout`` runs out.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [e for e in self._events if self._matches(e, action, container, type)]
                if len(hits) >= n:
                    return copy.deepcopy(hits[n - 1])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            seen = [_describe(e) for e in self._events]
        target = f" for {container!r}" if container else ""
        shown = "; ".join(seen[-40:]) or "nothing"
        more = f" (last 40 of {len(seen)})" if len(seen) > 40 else ""
        raise AssertionError(
            f"expected {n} {action!r} event(s){target} within {timeout:g} s from {self.url}, "
            f"got {len(hits)}; stream ends: {self.disconnects}; seen{more}: {shown}")

    def pulls(self) -> list[Event]:
        """Image ``pull`` events (none should appear: opskit must never pull implicitly)."""
        return self.select("pull", None, "image")


def build_busybox_image(
    client: docker.DockerClient,
    tag: str = BUSYBOX_IMAGE,
    label: str = "observer",
    busybox: str | Path = "/bin/busybox",
) -> str:
    """Build the ``FROM scratch`` busybox test image without a registry; return its ID.

    It holds only a static busybox (Debian's ``busybox-static``) and its applet links, and is
    labelled ``io.opskit.test=<label>``. Building again is cheap: the engine's cache answers.
    """
    binary = Path(busybox).read_bytes()
    if b"ld-linux" in binary[:4096]:
        raise RuntimeError(f"{busybox} is dynamically linked; apt-get install busybox-static")
    dockerfile = (b"FROM scratch\n"
                  b"COPY busybox /bin/busybox\n"
                  b'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n')
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data, mode in (("Dockerfile", dockerfile, 0o644), ("busybox", binary, 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(
        fileobj=context, custom_context=True, tag=tag, labels={TEST_LABEL: label},
        rm=True, forcerm=True, pull=False)
    return str(image.id)
