"""Continuous stats in the background: ``docker stats`` (streaming) into a bounded table.

A :class:`Collector` holds one streaming stats connection per running container
(``GET /containers/{id}/stats?stream=1``: the engine pushes a sample a second), each read on a
daemon thread of its own. A supervisor thread re-lists the running containers every
``relist_every`` seconds with the cheap ``docker ps`` call, so containers that start are picked
up and those that stop are dropped (their stream ends when they stop). Rows go into a
:class:`~opskit.records.statsframe.ColumnStore` capped at ``max_rows``, and, when a ``path`` is
given,
are appended to a folder of Parquet files every ``flush_every`` seconds, each written atomically.

CPU % of a row is computed against the previous row of the same container, so the first sample
of each stream only serves as that baseline (the engine sends it without ``precpu_stats``): a new
container's first row comes about two seconds after its stream opens. With ``interval`` above one
second rows are downsampled to one per ``interval`` (aligned on the epoch), and CPU % then covers
the whole interval.

Streams are closable and never hang: :meth:`Collector.stop` shuts each stream's socket, joins
every thread within about a second, and each stream read has the engine's timeout as a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..base import errors
from ..base import labels as L
from ..base.units import parse_time
from ..engine.connection import Engine
from ..engine.targets import Ref, ref_from_summary
from ..engine.translate import translate
from ..records.stats_calc import StatsRow, is_empty
from ..records.statsframe import (
    ColumnStore,
    frame_from_columns,
    rows_frame,
    write_parquet_atomic,
)
from .stats import (
    SAMPLED_STATES,
    Downsampler,
    open_stats_stream,
    spare_client,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("opskit")

__all__ = ["Collector"]

JOIN_TIMEOUT = 1.0
RETRY_AFTER = 5.0
_POOL = 1024  # idle connections the collector's own client may keep; streams hold one each


class _Sampler:
    """One container's stream, read on a daemon thread."""

    def __init__(self, owner: Collector, ref: Ref) -> None:
        self.owner = owner
        self.ref = ref
        self.stopping = owner.stopping
        self.stream: Any = None
        self.failed = False
        self.lock = threading.Lock()
        self.cut_done = False
        self.thread = threading.Thread(target=self.run, name=f"opskit-stats-{ref.name}",
                                       daemon=True)

    def run(self) -> None:
        owner, ref = self.owner, self.ref
        try:
            stream = open_stats_stream(owner.api, ref.id)
            with self.lock:
                self.stream = stream
                cut = self.cut_done
            if cut:
                _close(stream)
                return
            down = Downsampler(owner.interval)
            for payload in stream:
                if self.stopping.is_set():
                    break
                if is_empty(payload):
                    break  # the container is no longer running
                row = down.feed(payload)
                if row is not None:
                    owner.add(ref.id, row)
        except Exception as exc:
            if not (self.stopping.is_set() or self.cut_done):
                self.failed = True
                owner.note_error(translate(exc, f"docker stats of {ref.name}",
                                                  host=owner.engine.host, target=ref.name))
        finally:
            with self.lock:
                stream, self.stream = self.stream, None
            if stream is not None:
                _close(stream)
            owner.ended(self)

    def cut(self) -> None:
        """Shut the stream's socket so a blocked read ends now."""
        with self.lock:
            self.cut_done = True
            stream = self.stream
        if stream is not None:
            _close(stream)


def _close(stream: Any) -> None:
    with contextlib.suppress(Exception):
        stream.close()  # shutdown() + close() of the socket (not possible over ssh)
    with contextlib.suppress(Exception):
        stream._response.close()


class Collector:
    """Sample containers' stats continuously: ``docker stats`` into a bounded table.

    ``with Collector(engine) as col: ...`` starts and stops it; :meth:`frame` gives the rows
    held so far, :meth:`latest` the last row of each container sampled now.

    Args:
        engine: the engine; the collector opens a client of its own on the same host.
        interval: seconds between rows of a container. The engine samples once a second, so
            anything up to 1 keeps every sample; above, rows are downsampled.
        path: a folder to append Parquet files to (``stats-<time>-<id>-<n>.parquet``, each
            written atomically); read it back with :func:`opskit.records.statsframe.read_stats`.
        max_rows: the most rows held in memory; the oldest are dropped beyond.
        targets: ``None`` for every running container, or service names, container names or
            IDs (12 characters or more), looked up at every re-list, so a target that does not
            exist yet is picked up when it starts.
        relist_every: seconds between two ``docker ps`` calls (about 1 ms of CPU each).
        flush_every: seconds between two Parquet files.

    Attributes:
        error: the last error met in the background (an opskit error, or the ``OSError`` of a
            failed write), or ``None``.
        files: the Parquet files written so far.

    Raises:
        InvalidSpec: an argument is out of range.
    """

    def __init__(self, engine: Engine, interval: float = 1.0, path: str | Path | None = None,
                 max_rows: int = 1_000_000, targets: str | Sequence[str] | None = None, *,
                 relist_every: float = 1.0, flush_every: float = 30.0) -> None:
        for name, value in (("interval", interval), ("relist_every", relist_every),
                            ("flush_every", flush_every)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise errors.InvalidSpec(name, "must be a positive number of seconds",
                                         value=value, allowed="a number > 0")
        self.engine = engine
        self.interval = float(interval)
        self.path = None if path is None else Path(path)
        self.store = ColumnStore(max_rows)
        self.targets = None if targets is None else (
            [targets] if isinstance(targets, str) else list(targets))
        self.relist_every = float(relist_every)
        self.flush_every = float(flush_every)
        self.error: Exception | None = None
        self.files: list[Path] = []
        self.stopping = threading.Event()
        self.api: Any = None
        self._lock = threading.Lock()
        self._samplers: dict[str, _Sampler] = {}
        self._last: dict[str, StatsRow] = {}
        self._retry_at: dict[str, float] = {}
        self._supervisor: threading.Thread | None = None
        self._stopped = False
        self._flushed = 0
        self._file_no = 0
        self._token = secrets.token_hex(3)
        self._flush_lock = threading.Lock()
        self._last_flush = 0.0

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (f"<opskit.Collector {self.engine.host} {state} containers={len(self._samplers)} "
                f"rows={len(self.store)}>")

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Open the collector's client, list the containers and start sampling.

        Starting a running collector does nothing; starting a stopped one resumes sampling
        into the same table.

        Raises:
            EngineUnavailable: the engine did not answer the first listing.
        """
        if self.running:
            return self
        self.stopping = threading.Event()
        self._stopped = False
        if self.path is not None:
            import pyarrow.parquet  # noqa: F401  (imported now, so stop() flushes fast)
        self.api = spare_client(self.engine, pool_size=_POOL)
        try:
            self._relist(raising=True)
        except BaseException:
            self._stopped = True
            self.api.close()
            raise
        self._last_flush = time.monotonic()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True,
                                            name=f"opskit-collector({self.engine.host})")
        self._supervisor.start()
        log.debug("collector started on %s: %d containers", self.engine.host,
                  len(self._samplers))
        return self

    def stop(self) -> None:
        """Stop sampling, join every thread (within about a second), write the last rows.

        Idempotent; never hangs: a thread that does not end in time is left behind (it is a
        daemon thread and its read has a deadline) and logged. A failed last write is logged
        and kept in :attr:`error`.
        """
        if self._supervisor is None or self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + JOIN_TIMEOUT
        with self._lock:
            self.stopping.set()
            samplers = list(self._samplers.values())
        for sampler in samplers:
            sampler.cut()
        for thread in [self._supervisor, *(s.thread for s in samplers)]:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("collector: thread %s did not end within %gs; left behind",
                            thread.name, JOIN_TIMEOUT)
        if self.path is not None:
            try:
                self.flush()
            except OSError as exc:
                log.error("collector: last write to %s failed: %s", self.path, exc)
                self.error = exc
        with contextlib.suppress(Exception):
            self.api.close()
        with self._lock:
            self._last.clear()
        log.debug("collector stopped: %d rows held, %d dropped", len(self.store),
                  self.store.dropped)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._supervisor is not None and not self._stopped

    @property
    def containers(self) -> list[str]:
        """Names of the containers being sampled now."""
        with self._lock:
            return sorted(s.ref.name for s in self._samplers.values())

    # -- background ---------------------------------------------------------------------------

    def _supervise(self) -> None:
        while not self.stopping.wait(self.relist_every):
            self._relist(raising=False)
            if self.path is not None and time.monotonic() - self._last_flush >= self.flush_every:
                self._last_flush = time.monotonic()
                try:
                    self.flush()
                except OSError as exc:
                    self.note_error(exc)  # the rows stay in memory; the next write retries

    def _wanted(self, item: dict[str, Any]) -> bool:
        if item.get("State") not in SAMPLED_STATES:
            return False
        if self.targets is None:
            return True
        ref = ref_from_summary(item)
        for target in self.targets:
            if target in (ref.name, ref.id) or (len(target) >= 12 and ref.id.startswith(target)):
                return True
            if (ref.service == target and ref.labels.get(L.SCOPE) == self.engine.scope
                    and ref.owned_reason(self.engine) is None):
                return True
        return False

    def _relist(self, *, raising: bool) -> None:
        """``docker ps``: start a stream for each new container, cut those that went away."""
        try:
            items: list[dict[str, Any]] = self.api.containers()
        except Exception as exc:
            err = translate(exc, "listing containers for stats", host=self.engine.host)
            if raising:
                raise err from exc
            self.note_error(err)
            return
        wanted = {i["Id"]: ref_from_summary(i) for i in items if self._wanted(i)}
        now = time.monotonic()
        with self._lock:
            if self.stopping.is_set():
                return
            gone = [s for cid, s in self._samplers.items() if cid not in wanted]
            new = [ref for cid, ref in wanted.items()
                   if cid not in self._samplers and self._retry_at.get(cid, 0.0) <= now]
            for ref in new:
                sampler = self._samplers[ref.id] = _Sampler(self, ref)
                sampler.thread.start()
        for sampler in gone:
            sampler.cut()

    def add(self, container_id: str, row: StatsRow) -> None:
        """Record a row (called by the sampling threads)."""
        self.store.append(row)
        with self._lock:
            if container_id in self._samplers:
                self._last[container_id] = row

    def ended(self, sampler: _Sampler) -> None:
        """Forget a container whose stream ended (called by its thread)."""
        with self._lock:
            if self._samplers.get(sampler.ref.id) is sampler:
                del self._samplers[sampler.ref.id]
            self._last.pop(sampler.ref.id, None)
            if sampler.failed:
                self._retry_at[sampler.ref.id] = time.monotonic() + RETRY_AFTER
            else:
                self._retry_at.pop(sampler.ref.id, None)

    def note_error(self, err: Exception) -> None:
        """Keep and log an error met in the background."""
        if self.error is None or str(self.error) != str(err):
            log.warning("collector: %s", err)
        self.error = err

    # -- reading ------------------------------------------------------------------------------

    def frame(self, since: datetime | str | float | None = None) -> pd.DataFrame:
        """Every row held, oldest first (the columns of
        :func:`opskit.observe.stats.stats_snapshot`).

        Args:
            since: keep rows at or after this: a datetime, an ISO time, a Unix time, or an age
                such as ``"5m"``.
        """
        return self.store.frame(parse_time(since))

    def latest(self) -> pd.DataFrame:
        """A warm snapshot: the last row of each container sampled now, sorted by name.

        What ``docker stats --no-stream`` would print, without waiting for the engine.
        """
        with self._lock:
            rows = list(self._last.values())
        rows.sort(key=lambda r: (r["name"], r["id"]))
        return rows_frame(rows)

    def flush(self) -> Path | None:
        """Write the rows appended since the last write to a new Parquet file under ``path``.

        Returns:
            The file written, or ``None`` when there was nothing new (or no ``path``).

        Raises:
            OSError: the file could not be written; the rows stay for the next write.
        """
        if self.path is None:
            return None
        with self._flush_lock:
            return self._flush(self.path)

    def _flush(self, path: Path) -> Path | None:
        cols, keys, end = self.store.columns(from_seq=self._flushed)
        lost = end - len(cols["ts"]) - self._flushed
        if lost > 0:
            log.warning("collector: %d rows were dropped from memory before they were written "
                        "to %s; raise max_rows or lower flush_every", lost, self.path)
        if not len(cols["ts"]):
            self._flushed = end
            return None
        self._file_no += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = path / f"stats-{stamp}-{self._token}-{self._file_no:05d}.parquet"
        write_parquet_atomic(frame_from_columns(cols, keys), target)
        self._flushed = end
        self.files.append(target)
        return target
