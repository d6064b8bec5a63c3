"""The event journal's on-disk format, its records, and the container states derived from them.

A journal is a JSON Lines file, one :class:`Record` per line, appended to and never rewritten::

    {"time_nano":1795692210581153027,"type":"container","action":"create","actor_id":"93d9...",
     "name":"web-1","host":"unix:///var/run/docker.sock","kind":"event","attributes":{...}}

``kind`` says what a line is: ``event`` (one engine event, as ``docker events`` sent it),
``gap`` (events may be missing between ``attributes.since_ns`` and ``attributes.until_ns``),
``reconcile`` (the state ``docker ps -a`` showed after a gap differed from the journal's) or
``connect`` (the journal connected, lost or stopped its stream). ``attributes`` is written last
so :func:`opskit.observe.events.read_journal` can hand the flat fields to pyarrow's JSON reader and
parse the attribute objects in one pass: 100,000 lines read in a fraction of a second.

Secrets in label values and exec command lines are masked (:mod:`opskit.base.redact`) before
they are written. :class:`JournalFile` appends whole lines only (a failed write is cut back off)
and holds the file's lock, so one process writes it; :class:`Tail` follows it from another.
:func:`gap_reason` is the rule that says when events may be missing, :class:`StateTable`
folds records into container states, and a :class:`Subscription` hands records to one
consumer without ever blocking the journal. Nothing here talks to the engine.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from ..base.durable import cut_torn_tail, lock_holder, try_lock
from ..base.redact import redact_mapping, redact_text
from .event_records import Event

__all__ = ["BUFFER", "FIELDS", "KINDS", "JournalFile", "Record", "StateTable", "Subscription",
           "Tail", "gap_reason", "host_slug", "iter_records", "repair_tail"]

log = logging.getLogger("opskit")

BUFFER = 256  # events the engine keeps in memory
KINDS = ("event", "gap", "reconcile", "connect")
FIELDS = ("time_nano", "type", "action", "actor_id", "name", "host", "kind", "attributes")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: ``docker ps`` state after each container event; actions not listed leave the state as is.
ACTION_STATES: Mapping[str, str] = MappingProxyType({
    "create": "created", "start": "running", "restart": "running", "unpause": "running",
    "pause": "paused", "die": "exited", "stop": "exited", "destroy": "removed"})


def _mask_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """Mask secrets in event attributes (they carry the container's labels and, for exec
    events, command lines); see :func:`opskit.base.redact.redact_mapping`.

    Each key and value is masked once: every healthcheck probe of a container sends three
    events with the same labels, and masking was most of the journal's cost per event.
    """
    return {key: _masked_value(key, value) for key, value in attributes.items()}


@functools.lru_cache(maxsize=16384)
def _masked_value(key: str, value: str) -> str:
    return redact_mapping({key: value}, table="events")[key]


@functools.lru_cache(maxsize=4096)
def _masked_action(action: str) -> str:
    return redact_text(action, table="events")


def host_slug(host: str) -> str:
    """A file name for an engine address (``unix:///x/d.sock`` gives ``unix_x_d.sock``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", host).strip("_") or "engine"


@dataclass(frozen=True)
class Record:
    """One line of the journal.

    Attributes:
        time_nano: nanoseconds since the epoch, on the engine's clock where known.
        type: the event's ``Type`` (``container``, ``image``, ...), or ``journal``.
        action: the whole ``Action`` (``exec_start: true``); ``reconcile: exited`` for a
            reconcile record, ``gap`` for a gap, ``connect``/``disconnect``/``stop``.
        actor_id: ``Actor.ID``, or ``""``.
        name: the actor's name (``Actor.Attributes.name``) or ``None``.
        host: the engine's address.
        kind: one of :data:`KINDS`.
        attributes: string values; secrets masked.
    """

    time_nano: int
    type: str
    action: str
    actor_id: str = ""
    name: str | None = None
    host: str = ""
    kind: str = "event"
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def from_event(cls, event: Event) -> Record:
        """The journal line of an engine event (attributes masked)."""
        return cls(time_nano=event.time_nano, type=event.type,
                   action=_masked_action(event.action),
                   actor_id=event.actor_id, name=event.attributes.get("name"), host=event.host,
                   kind="event", attributes=_mask_attributes(event.attributes))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """Read back one decoded line. Raises ``KeyError``/``ValueError`` on a bad line."""
        attrs = data.get("attributes") or {}
        return cls(time_nano=int(data["time_nano"]), type=str(data["type"]),
                   action=str(data["action"]), actor_id=str(data.get("actor_id") or ""),
                   name=data.get("name"), host=str(data.get("host") or ""),
                   kind=str(data.get("kind") or "event"),
                   attributes={str(k): str(v) for k, v in attrs.items()})

    def to_dict(self) -> dict[str, Any]:
        """The line as a dict, ``attributes`` last."""
        return {"time_nano": self.time_nano, "type": self.type, "action": self.action,
                "actor_id": self.actor_id, "name": self.name, "host": self.host,
                "kind": self.kind, "attributes": dict(self.attributes)}

    def to_line(self) -> str:
        """One JSON line, newline included."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False) + "\n"

    @property
    def key(self) -> tuple[int, str, str, str]:
        """The identity used to drop duplicates (see
        :func:`opskit.records.event_records.event_key`)."""
        return (self.time_nano, self.type, self.action, self.actor_id)

    @property
    def base_action(self) -> str:
        """``action`` before ``": "``."""
        return self.action.partition(": ")[0]

    @property
    def detail(self) -> str:
        """``action`` after ``": "``, else ``""``."""
        return self.action.partition(": ")[2]

    @property
    def ts(self) -> datetime:
        """``time_nano`` as a UTC datetime (microseconds)."""
        return _EPOCH + timedelta(microseconds=self.time_nano // 1000)


class StateTable:
    """The last known state of each container, from events and reconcile records.

    Not thread-safe: the journal's writer thread owns it and hands out copies.
    """

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}

    def apply(self, record: Record) -> None:
        """Fold one record into the table (records must come in journal order)."""
        if record.type != "container" or not record.actor_id:
            return
        attrs = record.attributes
        current = self.states.get(record.actor_id)
        if record.kind == "reconcile":
            self.states[record.actor_id] = {
                **(current or {}), "name": record.name or (current or {}).get("name"),
                "state": attrs.get("state", "unknown"), "image": attrs.get("image"),
                "since_ns": record.time_nano, "source": "reconcile"}
            return
        if record.kind != "event":
            return
        base = record.base_action
        new_state = ACTION_STATES.get(base)
        if current is None and new_state is None and base != "rename":
            return  # exec/health of a container the journal never listed: nothing to say yet
        entry: dict[str, Any] = current if current is not None else {"name": None,
                                                                     "state": "unknown"}
        entry["name"] = attrs.get("name") or entry.get("name")
        entry["image"] = attrs.get("image") or entry.get("image")
        if new_state is not None:
            entry.update(state=new_state, since_ns=record.time_nano, source="event")
        if base in ("start", "restart", "die"):
            entry["health"] = None
        if base == "die":
            code = attrs.get("exitCode")
            entry["exit_code"] = int(code) if code and code.lstrip("-").isdigit() else None
        elif base == "oom":
            entry["oom"] = True
        elif base == "health_status":
            entry["health"] = record.detail
        self.states[record.actor_id] = entry

    def diff(self, listing: Iterable[Mapping[str, Any]], time_nano: int,
             host: str) -> list[Record]:
        """Reconcile records for what ``docker ps -a`` (``GET /containers/json?all=1``) shows
        differently from the table, containers that vanished included (state ``removed``)."""
        out: list[Record] = []
        seen: set[str] = set()
        for item in listing:
            cid = str(item.get("Id", ""))
            names = item.get("Names") or ["/"]
            name, state = str(names[0]).lstrip("/"), str(item.get("State") or "unknown")
            seen.add(cid)
            current = self.states.get(cid)
            if current and current.get("state") == state and current.get("name") == name:
                continue
            previous = current.get("state", "unknown") if current else "unknown"
            out.append(self._record(cid, name, state, previous, str(item.get("Image") or ""),
                                    time_nano, host))
        for cid, current in self.states.items():
            if cid not in seen and current.get("state") != "removed":
                out.append(self._record(cid, current.get("name"), "removed",
                                        str(current.get("state")), current.get("image") or "",
                                        time_nano, host))
        return out

    @staticmethod
    def _record(cid: str, name: str | None, state: str, previous: str, image: str,
                time_nano: int, host: str) -> Record:
        return Record(time_nano=time_nano, type="container", action=f"reconcile: {state}",
                      actor_id=cid, name=name, host=host, kind="reconcile",
                      attributes={"state": state, "previous": previous, "image": image})


def repair_tail(path: Path) -> int:
    """Cut a torn last line (a crash mid-write) off the journal; returns the bytes removed.

    Nothing is cut while another process writes the file (holds its lock): its last line
    may be on its way.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        if not try_lock(fd):
            return 0
        cut = cut_torn_tail(fd)
    finally:
        os.close(fd)  # releases the lock
    if cut:
        log.warning("journal %s: cut a torn last line (%d bytes)", path, cut)
    return cut


def iter_records(path: Path) -> Iterator[Record]:
    """Every readable line of a journal, in order; unreadable lines are skipped and logged."""
    bad = 0
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield Record.from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                bad += 1
    if bad:
        log.warning("journal %s: skipped %d unreadable line(s)", path, bad)


class Tail:
    """Reads the whole lines added to a journal since the last read: how a journal that does
    not hold the file follows the process that writes it (a torn last line is left for later).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.skipped = 0

    def read(self) -> Iterator[Record]:
        """The records of the complete lines after :attr:`offset`, which moves past them."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below, after the generator
        except FileNotFoundError:
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if size < self.offset:  # cut from outside (the writer only cuts torn lines)
                log.warning("journal %s: file shrank below the lines read; reading on from "
                            "its end", self.path)
                self.offset = size
            fh.seek(self.offset)
            rest = b""
            while chunk := fh.read(1 << 20):
                data = rest + chunk
                end = data.rfind(b"\n") + 1
                rest = data[end:]
                self.offset += end
                for line in data[:end].split(b"\n"):
                    if line.strip():
                        try:
                            yield Record.from_dict(json.loads(line))
                        except (ValueError, KeyError, TypeError, AttributeError):
                            self.skipped += 1


def gap_reason(*, last_key: tuple[int, str, str, str] | None, replay_keys: set[Any],
               replayed: int, filtered: bool, down: bool, other_engine: bool,
               first: bool) -> tuple[str, bool] | None:
    """Whether events may be missing after a reconnect, from the engine's replay.

    The engine's buffer is contiguous: when its replay since the last journaled event still
    holds that event, every later event is there too. Without such an event (none seen yet),
    a replay of fewer than 256 events from an engine that stayed up holds everything.

    Args:
        last_key: the key of the last journaled event, or ``None``.
        replay_keys: the keys of the events replayed since that event.
        replayed: how many events the replay held (256 means the buffer was full).
        filtered: the journal uses event filters (counts then say nothing about the buffer).
        down: the engine did not answer at some point since the stream was last open.
        other_engine: ``docker info`` names another engine ``ID`` than before.
        first: the first connection of this run (the journal file is being resumed).

    Returns:
        ``None`` when nothing can be missing, else ``(reason, daemon_restarted)``.
    """
    full = replayed >= BUFFER
    if last_key is not None and last_key in replay_keys:
        return None
    if last_key is None and not (down or other_engine or full or filtered):
        return None
    restarted = down or other_engine or (not full and not filtered)
    if first:
        return "journal was not running; the engine no longer holds its last event", restarted
    if full and not down:
        return "engine buffer overrun (256 events)", False
    if restarted:
        return "engine restarted", True
    return "stream ended; events may be missing", False


class JournalFile:
    """The append-only file: whole lines only, written at once, fsync'd when asked.

    One process writes a journal file at a time: :meth:`open` takes the file's ``flock`` and
    keeps it until :meth:`close` (the kernel drops it when the process dies). When another
    process holds it, :meth:`open` returns False and nothing is written; :meth:`try_lock`
    takes over once that process has let go.

    A write that fails (disk full, I/O error) is cut back to the last whole line it wrote, so
    no torn line is left (and no whole line a reader may have seen is withdrawn), and the rest
    is kept to be written with the next batch (up to 64 MiB).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_error = ""
        self.errors = 0
        self._fd: int | None = None  # set while this process writes (holds the lock)
        self._waiting: int | None = None  # open, without the lock, while another writes
        self._pending = b""
        self._torn = False

    @property
    def writing(self) -> bool:
        """True while this process holds the file and writes it."""
        return self._fd is not None

    def open(self) -> bool:
        """Create the folder and file if needed and try to take the file's lock; with it, cut
        a torn last line and open for appending.

        Returns:
            True when this process now writes the file; False when another process does.

        Raises:
            OSError: the file cannot be created or opened.
        """
        if self._fd is not None or self._waiting is not None:
            return self.try_lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._waiting = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)  # the new file's name is durable too
            finally:
                os.close(folder)
        return self.try_lock()

    def try_lock(self) -> bool:
        """Take the file's lock if nobody holds it (see :meth:`open`); True when held."""
        if self._fd is not None:
            return True
        if self._waiting is None or not try_lock(self._waiting):
            return False
        self._fd, self._waiting = self._waiting, None
        with contextlib.suppress(OSError):
            cut = cut_torn_tail(self._fd)
            if cut:
                log.warning("journal %s: cut a torn last line (%d bytes)", self.path, cut)
        return True

    def holder(self) -> int | None:
        """The PID of the process writing the file (this one's when :attr:`writing`)."""
        if self._fd is not None:
            return os.getpid()
        return lock_holder(self._waiting) if self._waiting is not None else None

    def append(self, records: list[Record]) -> bool:
        """Write the records (and any kept from a failed write); False when writing failed."""
        if self._fd is None:
            return False
        data = self._pending + "".join(r.to_line() for r in records).encode()
        start, written = -1, 0
        try:
            if self._torn:  # the cut after the last failure failed too
                cut_torn_tail(self._fd)
                self._torn = False
            start = os.fstat(self._fd).st_size
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            self._failed(data, start, written, exc)
            return False
        self._pending = b""
        return True

    def _failed(self, data: bytes, start: int, written: int, exc: OSError) -> None:
        keep = data.rfind(b"\n", 0, written) + 1  # whole lines that reached the file stay
        if written > keep and self._fd is not None:
            try:
                os.ftruncate(self._fd, start + keep)
            except OSError:
                self._torn = True
        rest = data[keep:]
        if len(rest) > 64 << 20:
            rest = rest[rest.find(b"\n", len(rest) - (64 << 20)) + 1:]
            log.error("journal: more than 64 MiB could not be written to %s; the oldest "
                      "records waiting were dropped", self.path)
        self._pending = rest
        self.errors += 1
        self.last_error = f"write {self.path}: {exc}"
        log.error("journal: cannot write %s: %s", self.path, exc)

    def sync(self) -> None:
        """fsync the file (errors are logged, not raised: the journal keeps running)."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self.last_error = f"fsync {self.path}: {exc}"
                log.error("journal: cannot fsync %s: %s", self.path, exc)

    def close(self) -> None:
        """fsync and close, which lets another process take the file; idempotent."""
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None
        if self._waiting is not None:
            os.close(self._waiting)
            self._waiting = None


class _Owner(Protocol):
    """What a :class:`Subscription` needs of its journal."""

    @property
    def engine(self) -> Any: ...

    def _unsubscribe(self, sub: Subscription) -> None: ...


class Subscription:
    """The journal's records, in file order, on a bounded queue of this consumer's own.

    A consumer that falls behind never slows the journal: records that do not fit are
    dropped, and once the queue is half empty again the consumer gets one ``gap`` record
    (``reason: subscriber overflow``, ``dropped: N``) before the next record.
    """

    def __init__(self, journal: _Owner, maxsize: int) -> None:
        self._journal = journal
        self._queue: queue.Queue[Record | None] = queue.Queue(maxsize)
        self._lock = threading.Lock()
        self._dropped = 0
        self._first_dropped_ns = 0
        self.dropped_total = 0
        self.closed = False

    def _try_put(self, record: Record) -> bool:
        try:
            self._queue.put_nowait(record)
            return True
        except queue.Full:
            return False

    def _gap(self) -> Record:
        record = Record(time_nano=self._first_dropped_ns, type="journal", action="gap",
                        host=self._journal.engine.host, kind="gap",
                        attributes={"reason": "subscriber overflow",
                                    "dropped": str(self._dropped)})
        self._dropped = 0
        return record

    def _offer(self, record: Record) -> None:
        """Called by the writer thread; never blocks."""
        with self._lock:
            if self.closed:
                return
            if self._dropped and self._queue.qsize() <= self._queue.maxsize // 2:
                self._try_put(self._gap())
            if self._dropped or not self._try_put(record):
                if not self._dropped:
                    self._first_dropped_ns = record.time_nano
                self._dropped += 1
                self.dropped_total += 1

    def get(self, timeout: float | None = None) -> Record | None:
        """The next record; ``None`` after ``timeout`` seconds or once closed and drained."""
        with self._lock:
            if self._dropped and self._queue.empty():
                return self._gap()
            if self.closed and self._queue.empty():
                return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is None:  # the wake-up close() queued
            with self._lock:
                return self._gap() if self._dropped else None
        return item

    def __iter__(self) -> Iterator[Record]:
        while True:
            record = self.get(timeout=0.25)
            if record is not None:
                yield record
            elif self.closed and self._queue.empty():
                return

    def close(self) -> None:
        """Stop receiving; records already queued can still be read. Idempotent."""
        with self._lock:
            self.closed = True
        self._journal._unsubscribe(self)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # wake a blocked get()
