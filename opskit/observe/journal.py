"""The durable event journal: every engine event on disk, gaps said out loud, nothing lost.

The engine keeps only its last 256 events in memory, docker-py's event generator ends
silently when dockerd restarts, and a stream behind a dead link blocks for ever.
:class:`EventJournal` runs three daemon threads:

* the reader holds ``GET /events`` open and puts each new event on an in-memory queue, so it
  never waits on disk or on consumers (the engine drops subscribers slower than ~100 ms);
  when the stream ends or fails it reconnects with backoff and jitter (0.1 s doubling to
  5 s), resumes with ``since`` = the last event's ``timeNano`` and drops the replayed
  duplicates;
* the writer appends each record to the journal file (see :mod:`opskit.records.journal_file`),
  flushed at once and fsync'd every ``fsync_every`` seconds, keeps the container states and
  hands records to subscribers without ever blocking;
* the watchdog pings the engine on a connection of its own when the stream has been quiet for
  ``stall_after`` seconds, and cuts the stream when the ping fails.

After every reconnect the journal asks the engine for its replay since the last journaled
event. If that event is no longer there (the daemon restarted, or its 256-event buffer was
overrun) events may be missing: a ``gap`` record says so, and ``reconcile`` records bring
each container's state in line with ``docker ps -a``.

One process writes a journal file at a time (it holds the file's ``flock``). A second
journal on the same file, in another ``opskit watch`` or in the same process, becomes a
*follower*: it opens no event stream and writes nothing, but reads the lines the writer
appends (every 0.1 s) into its states and subscriptions, so each event is in the file once
and every watcher still sees it. When the writer stops or dies, the follower takes the lock
and carries on writing from the file's last event, as a restarted journal would; a reader of
the file never has more than one file per host to read.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ..base import errors
from ..base.durable import state_dir
from ..engine.connection import Engine
from ..engine.events import EventStream, engine_time_ns, open_stream, replay_keys, side_client
from ..engine.targets import list_raw
from ..records.event_records import event_key, parse_event
from ..records.journal_file import (
    JournalFile,
    Record,
    StateTable,
    Subscription,
    Tail,
    gap_reason,
    host_slug,
)

__all__ = ["EventJournal", "Subscription", "default_journal_path"]

log = logging.getLogger("opskit")

_RECENT = 4096  # event keys remembered to drop replayed duplicates
_BACKOFF_MIN, _BACKOFF_MAX = 0.1, 5.0
_PING_TIMEOUT = 2.0
_JOIN_TIMEOUT = 15.0
_BATCH = 1000
_FOLLOW_EVERY = 0.1  # seconds between two reads of a file another process writes
_STOP = object()
Key = tuple[int, str, str, str]


class _Listing:
    """A ``docker ps -a`` result on the writer's queue, to reconcile states at that point."""

    def __init__(self, items: list[dict[str, Any]], time_nano: int) -> None:
        self.items, self.time_nano = items, time_nano


class EventJournal:
    """Watch one engine's events into a durable JSON Lines file (``docker events``, kept).

    Args:
        engine: the engine to watch.
        path: the journal file; ``state_dir()/journal/<host>.jsonl`` when omitted. An
            existing journal is resumed: its last event is the ``since`` of the first request.
        stall_after: seconds of silence after which the watchdog pings the engine.
        fsync_every: seconds between two fsyncs of the file while records arrive.
        filters: the engine's event filters (``{"label": ["k=v"]}``); a ``label`` filter
            also narrows the reconcile listing. A follower sees what the writer's filters let
            through.
    """

    def __init__(self, engine: Engine, path: str | Path | None = None, *,
                 stall_after: float = 5.0, fsync_every: float = 0.2,
                 filters: Mapping[str, Any] | None = None) -> None:
        self.engine = engine
        self.path = Path(path) if path is not None else default_journal_path(engine.host)
        self.stall_after = float(stall_after)
        self.fsync_every = float(fsync_every)
        self.filters = dict(filters) if filters else None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._subs: list[Subscription] = []
        self._subs_lock = threading.Lock()
        self._table = StateTable()
        self._table_lock = threading.Lock()
        self._recent: OrderedDict[Key, None] = OrderedDict()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: EventStream | None = None
        self._threads: list[threading.Thread] = []
        self._writers: list[threading.Thread] = []
        self._follower: threading.Thread | None = None
        self._clients: list[Any] = []
        self._file = JournalFile(self.path)
        self._tail = Tail(self.path)
        self.role = ""
        self._writer_connected = False  # what the file's last connect record says
        self._last_ns = self._start_ns = 0
        self._last_key: Key | None = None
        self._alive_at = 0.0
        self._stalled = self._down = False
        self._engine_id = ""
        self._stats = dict.fromkeys(("events_written", "records_written", "gaps", "reconnects",
                                     "duplicates", "stalls", "records_followed"), 0)
        self._last_error = ""
        self._last_event_ns: int | None = None
        self._lag: float | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Open (or resume) the file and start the reader, writer and watchdog threads; when
        another process writes the file, start following it instead (:attr:`role` says which).

        The engine need not answer yet: the reader keeps trying.

        Raises:
            OSError: the journal file cannot be opened.
            EngineUnavailable: no client can be built for the engine's address.
        """
        if self._threads:
            return self
        self._stopping.clear()
        writing = self._file.open()
        try:
            self._api = side_client(self.engine, min(self.engine.timeout, 10.0))
            self._ping_api = side_client(self.engine, _PING_TIMEOUT)
        except BaseException:
            self._file.close()
            raise
        self._clients = [self._api, self._ping_api]
        self._catch_up(follow=False)
        if writing:
            self._begin_writing()
        else:
            self.role = "follower"
            if self._writer_connected:
                self._connected.set()
            log.info("journal %s: %s is written by process %s; following it", self.engine.host,
                     self.path, self._file.holder() or "?")
            self._follower = self._spawn("follower", self._follow_loop)
        return self

    def _spawn(self, name: str, target: Any) -> threading.Thread:
        thread = threading.Thread(target=target, name=f"opskit-journal-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _begin_writing(self) -> None:
        self.role = "writer"
        try:
            self._start_ns, self._engine_id = engine_time_ns(self._api, self.engine.host)
        except errors.OpsKitError as exc:
            self._start_ns = time.time_ns()
            log.warning("journal %s: engine not answering yet (%s); will keep trying",
                        self.engine.host, exc)
        self._writers = [self._spawn(name, target) for name, target in (
            ("reader", self._read_loop), ("watchdog", self._watch_loop),
            ("writer", self._write_loop))]

    def stop(self) -> None:
        """Cut the stream, join the threads, write a ``stop`` record, fsync and close.

        A follower only stops reading. Idempotent; every wait is bounded (a thread stuck in
        a call ends with that call's timeout, and is logged if it outlives the join).
        """
        if not self._threads:
            return
        self._stopping.set()
        if self._follower is not None:
            self._follower.join(_JOIN_TIMEOUT)  # a take-over under way completes first
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        if self._writers:
            reader, watchdog, writer = self._writers
            for thread in (reader, watchdog):
                thread.join(_JOIN_TIMEOUT)
            self._queue.put(self._note("stop", "journal stopped"))
            self._queue.put(_STOP)
            writer.join(_JOIN_TIMEOUT)
            closable = not writer.is_alive()
        else:
            closable = True
        for thread in self._threads:
            if thread.is_alive():
                log.warning("journal %s: thread %s did not end", self.engine.host, thread.name)
        if closable:
            self._file.close()
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()
        self._threads, self._writers, self._follower = [], [], None
        self._connected.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return bool(self._threads) and not self._stopping.is_set()

    # -- what callers read --------------------------------------------------------------------

    def subscribe(self, maxsize: int = 10000) -> Subscription:
        """A new :class:`Subscription` to records written from now on."""
        sub = Subscription(self, maxsize)
        with self._subs_lock:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._subs_lock, contextlib.suppress(ValueError):
            self._subs.remove(sub)

    def states(self, *, removed: bool = True) -> dict[str, dict[str, Any]]:
        """The last known state of each container (``name``, ``state`` as ``docker ps``
        names it or ``removed``, ``image``, ``since_ns``, ``source``, ``exit_code``,
        ``health``), from events and reconcile records."""
        with self._table_lock:
            return {cid: dict(entry) for cid, entry in self._table.states.items()
                    if removed or entry.get("state") != "removed"}

    def status(self) -> dict[str, Any]:
        """Counters for tests and the UI: ``connected``, ``events_written``, ``gaps``,
        ``reconnects``, ``stalls``, ``duplicates``, ``last_event_ts``, ``lag`` (seconds from
        the last event to its write), ``backlog``, ``last_error``, ..."""
        last = self._last_event_ns
        return {"running": self.running, "connected": self._connected.is_set(),
                **self._stats, "write_errors": self._file.errors, "backlog": self._queue.qsize(),
                "subscribers": len(self._subs), "lag": self._lag,
                "last_event_ts": None if last is None else datetime.fromtimestamp(last / 1e9, UTC),
                "last_error": self._last_error, "engine_id": self._engine_id,
                "path": str(self.path), "role": self.role, "writer_pid": self._file.holder()}

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """True once the stream is open (and the first reconcile queued) within ``timeout``;
        for a follower, once the writer's last ``connect`` record says its stream is open."""
        return self._connected.wait(timeout)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything read so far is written and fsync'd (a follower: until it
        has read what the writer wrote); False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout) if self._threads else False

    # -- reader -------------------------------------------------------------------------------

    def _catch_up(self, *, follow: bool) -> None:
        """Fold the lines of the file not read yet into the states (at start, and as a
        follower, which also hands them to subscribers)."""
        records: list[Record] = []
        for record in self._tail.read():
            if record.kind == "event":
                if record.key in self._recent:
                    if follow:
                        self._stats["duplicates"] += 1
                    continue
                self._remember(record.key)
                if record.time_nano >= self._last_ns:
                    self._last_ns, self._last_key = record.time_nano, record.key
            elif record.kind == "connect":
                self._writer_connected = record.action == "connect"
                self._engine_id = record.attributes.get("engine_id") or self._engine_id
            records.append(record)
        if not records:
            return
        with self._table_lock:
            for record in records:
                self._table.apply(record)
        if not follow:
            return
        self._stats["records_followed"] += len(records)
        (self._connected.set if self._writer_connected else self._connected.clear)()
        for record in records:
            if record.kind == "event":
                self._last_event_ns = record.time_nano
                self._lag = max(0.0, time.time() - record.time_nano / 1e9)
        with self._subs_lock:
            subs = list(self._subs)
        for record in records:
            for sub in subs:
                sub._offer(record)

    def _follow_loop(self) -> None:
        while not self._stopping.wait(_FOLLOW_EVERY):
            markers: list[threading.Event] = []
            with contextlib.suppress(queue.Empty):
                while True:
                    item = self._queue.get_nowait()
                    if isinstance(item, threading.Event):
                        markers.append(item)
            self._catch_up(follow=True)
            for marker in markers:
                marker.set()  # flush(): what the writer had written by then is read
            if self._file.try_lock():  # the writer stopped or died: write from here on
                self._catch_up(follow=True)  # its last lines, the torn one cut
                self._connected.clear()
                log.warning("journal %s: took over writing %s", self.engine.host, self.path)
                self._begin_writing()
                return

    def _remember(self, key: Key) -> None:
        self._recent[key] = None
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)

    def _note(self, action: str, reason: str, **attrs: str) -> Record:
        return Record(time_nano=time.time_ns(), type="journal", action=action,
                      host=self.engine.host, kind="connect",
                      attributes={"reason": reason, **attrs})

    def _read_loop(self) -> None:
        first, delay = True, 0.0
        while not self._stopping.wait(delay / 2 + random.uniform(0, delay / 2)):
            try:
                self._connect(first)
            except Exception as exc:  # engine down, refused or slow: try again later
                self._down = True
                self._last_error = str(exc)
                log.debug("journal %s: connect failed: %s", self.engine.host, exc)
                delay = min(max(delay * 2, _BACKOFF_MIN), _BACKOFF_MAX)
                continue
            first = False
            reason = self._consume()
            if self._stopping.is_set():
                return
            self._connected.clear()
            self._queue.put(self._note("disconnect", reason))
            log.info("journal %s: %s; reconnecting", self.engine.host, reason)
            delay = _BACKOFF_MIN

    def _connect(self, first: bool) -> None:
        now_ns, engine_id = engine_time_ns(self._api, self.engine.host)
        since_ns = self._last_ns or self._start_ns
        stream = open_stream(self._api, since_ns, filters=self.filters, host=self.engine.host,
                             timeout=min(self.engine.timeout, 5.0))
        with self._stream_lock:
            if self._stopping.is_set():
                stream.close()
                return
            self._stream, self._stalled, self._alive_at = stream, False, time.monotonic()
        try:
            gap = None if first and self._last_key is None else self._continuity(
                since_ns, now_ns, engine_id, first)
            listing = self._listing() if gap is not None or first else None
        except BaseException:
            with self._stream_lock:
                self._stream = None
            stream.close()
            raise
        self._queue.put(self._note("connect", "stream open", engine_id=engine_id))
        if gap is not None:
            self._last_key = None  # the reconcile below is the new baseline
            self._queue.put(Record(time_nano=since_ns + 1, type="journal", action="gap",
                                   host=self.engine.host, kind="gap", attributes=gap))
            log.warning("journal %s: gap: %s", self.engine.host, gap["reason"])
        if listing is not None:
            self._queue.put(_Listing(listing, now_ns))
        if not first:
            self._stats["reconnects"] += 1
        self._engine_id, self._down = engine_id, False
        self._connected.set()

    def _continuity(self, since_ns: int, now_ns: int, engine_id: str,
                    first: bool) -> dict[str, str] | None:
        """The gap's attributes when events may be missing (see :func:`gap_reason`)."""
        keys, replayed = replay_keys(self._api, since_ns, now_ns, filters=self.filters,
                                     timeout=min(self.engine.timeout, 10.0),
                                     host=self.engine.host)
        verdict = gap_reason(last_key=self._last_key, replay_keys=keys, replayed=replayed,
                             filtered=bool(self.filters), down=self._down, first=first,
                             other_engine=bool(self._engine_id) and engine_id != self._engine_id)
        if verdict is None:
            return None
        return {"reason": verdict[0], "since_ns": str(since_ns), "until_ns": str(now_ns),
                "replayed": str(replayed), "daemon_restart": str(verdict[1]).lower()}

    def _listing(self) -> list[dict[str, Any]] | None:
        """``docker ps -a`` for the reconcile, narrowed like the event filters."""
        filters = self.filters or {}
        types = filters.get("type")
        if types and "container" not in types:
            return None
        return list_raw(self.engine, filters={"label": filters["label"]} if "label" in filters
                        else None)

    def _consume(self) -> str:
        stream = self._stream
        if stream is None:
            return "stream closed"
        reason = "stream ended (engine restarting or connection closed)"
        try:
            for payload in stream:
                self._alive_at = time.monotonic()
                try:
                    event = parse_event(payload, host=self.engine.host)
                except errors.EngineError as exc:
                    log.warning("journal %s: unreadable event skipped: %s", self.engine.host, exc)
                    continue
                key = event_key(event)
                if key in self._recent:
                    self._stats["duplicates"] += 1
                    continue
                self._remember(key)
                if event.time_nano >= self._last_ns:
                    self._last_ns, self._last_key = event.time_nano, key
                self._queue.put(Record.from_event(event))
        except Exception as exc:  # a cut socket, a torn chunk, ...
            reason = f"stream failed: {type(exc).__name__}"
        with self._stream_lock:
            self._stream = None
        stream.close()
        return "engine unreachable (ping failed)" if self._stalled else reason

    # -- watchdog -----------------------------------------------------------------------------

    def _watch_loop(self) -> None:
        tick = max(0.05, min(0.5, self.stall_after / 4))
        while not self._stopping.wait(tick):
            stream = self._stream
            if stream is None or time.monotonic() - self._alive_at < self.stall_after:
                continue
            try:
                self._ping_api.ping()  # GET /_ping on a connection of its own
                self._alive_at = time.monotonic()  # quiet, and the engine answers: fine
                continue
            except Exception as exc:
                self._last_error = f"ping: {exc}"
            with self._stream_lock:
                if self._stream is stream and not self._stopping.is_set():
                    self._stalled = self._down = True
                    self._stats["stalls"] += 1
                    log.warning("journal %s: no events for %.1fs and no answer to ping; "
                                "cutting the stream", self.engine.host, self.stall_after)
                    stream.close()

    # -- writer -------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        dirty, done, synced = False, False, time.monotonic()
        while not done:
            try:
                items = [self._queue.get(timeout=self.fsync_every if dirty else 1.0)]
            except queue.Empty:
                items = []
            while items and len(items) < _BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records: list[Record] = []
            markers: list[threading.Event] = []
            for item in items:
                if item is _STOP:
                    done = True
                elif isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    with self._table_lock:
                        new = (self._table.diff(item.items, item.time_nano, self.engine.host)
                               if isinstance(item, _Listing) else [item])
                        for record in new:
                            self._table.apply(record)
                    records.extend(new)
            if records:
                self._write(records)
                dirty = True
            if dirty and (done or markers or time.monotonic() - synced >= self.fsync_every):
                self._file.sync()
                dirty, synced = False, time.monotonic()
            with self._subs_lock:
                subs = list(self._subs)
            for record in records:
                for sub in subs:
                    sub._offer(record)
            for marker in markers:
                marker.set()

    def _write(self, records: list[Record]) -> None:
        if not self._file.append(records):
            self._last_error = self._file.last_error
            return
        self._stats["records_written"] += len(records)
        for record in records:
            if record.kind == "gap":
                self._stats["gaps"] += 1
            elif record.kind == "event":
                self._stats["events_written"] += 1
                self._last_event_ns = record.time_nano
                self._lag = max(0.0, time.time() - record.time_nano / 1e9)


def default_journal_path(host: str) -> Path:
    """Where a host's journal lives: ``state_dir()/journal/<host slug>.jsonl``."""
    return state_dir() / "journal" / f"{host_slug(host)}.jsonl"
