"""Container logs as a table: ``docker logs --timestamps`` for one container or a whole service.

Each stream (stdout, stderr) is read separately so every line keeps its stream; lines arrive
through the engine's streaming endpoint and go straight into column lists, so a long log is held
once. A service's replicas are merged in time order.

Unlike ``docker logs``, :func:`read_logs` does not read every line unless asked: by default it
reads the last :data:`DEFAULT_TAIL` (10 000) lines of each container, so a container that has
logged for months cannot fill the caller's memory. The frame says when lines were left out:
``frame.attrs["truncated"]`` names the containers whose older lines the tail cut, and
``frame.attrs["tail"]`` is the tail applied (``None`` for every line).
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ..base import errors
from ..base.redact import LineRedactor, RedactionReport
from ..base.units import parse_time
from ..engine.calls import logs_stream
from ..engine.connection import Engine
from ..engine.targets import Ref, resolve
from ..engine.translate import translate
from .inspection import parse_engine_time

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_TAIL", "LOG_COLUMNS", "iter_log_lines", "read_logs"]

log = logging.getLogger("opskit")

LOG_COLUMNS = ["ts", "container", "stream", "line"]
STREAMS = ("stdout", "stderr")
DEFAULT_TAIL = 10_000
"""Lines per container :func:`read_logs` reads unless told otherwise: about 1 to 5 MiB of a
typical log, enough for an incident window, bounded for a container that has logged for months.
"""


class _LineSplitter:
    """Cut a stream's chunks into lines, keeping a partial last line for the next chunk."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, chunk: bytes) -> list[str]:
        self.pending += chunk
        *complete, self.pending = self.pending.split(b"\n")
        return [raw.decode("utf-8", "replace") for raw in complete]

    def flush(self) -> list[str]:
        rest, self.pending = self.pending, b""
        return [rest.decode("utf-8", "replace")] if rest else []


def _frames(engine: Engine, ref: Ref, params: dict[str, Any]) -> Iterator[tuple[int, bytes]]:
    """Yield ``(stream, chunk)`` from ``GET /containers/{id}/logs``; 1 is stdout, 2 stderr.

    Without a TTY the engine multiplexes both streams, each frame behind an 8-byte header
    (stream type, 3 bytes of padding, big-endian length); docker-py's own reader drops the
    stream type, so the frames are read here from the decoded HTTP body.
    """
    api = engine.api
    tty = bool(((api.inspect_container(ref.id).get("Config")) or {}).get("Tty"))
    with logs_stream(api, ref.id, params) as body:
        if tty:
            while chunk := body.read(65536):
                yield 1, chunk
            return
        while header := body.read(8):
            if len(header) < 8:
                break
            stream, length = struct.unpack(">BxxxL", header)
            yield (2 if stream == 2 else 1), body.read(length)


def iter_log_lines(engine: Engine, ref: Ref, *, streams: tuple[str, ...] = STREAMS,
                   since: datetime | None = None, until: datetime | None = None,
                   tail: int | None = None) -> Iterator[tuple[datetime | None, str, str]]:
    """Yield ``(timestamp, stream, line)`` for one container, in the engine's order.

    One request carries both streams (the engine multiplexes them), so ``tail`` means the last
    N lines of the container, as ``docker logs --tail N`` does.
    """
    params: dict[str, Any] = {"stdout": int("stdout" in streams),
                              "stderr": int("stderr" in streams), "timestamps": 1, "follow": 0,
                              "tail": "all" if tail is None else str(int(tail))}
    if since is not None:
        params["since"] = f"{since.timestamp():.9f}"
    if until is not None:
        params["until"] = f"{until.timestamp():.9f}"
    splitters = {1: _LineSplitter(), 2: _LineSplitter()}
    try:
        for stream, chunk in _frames(engine, ref, params):
            for text in splitters[stream].feed(chunk):
                yield _parse(text, stream)
        for stream, splitter in splitters.items():
            for text in splitter.flush():
                yield _parse(text, stream)
    except Exception as exc:
        raise translate(exc, f"logs of {ref.name}", host=engine.host,
                               target=ref.name) from exc


def _parse(text: str, stream: int) -> tuple[datetime | None, str, str]:
    stamp, _, line = text.partition(" ")
    return parse_engine_time(stamp), STREAMS[stream - 1], line.rstrip("\r")


def read_logs(engine: Engine, target: str, *, since: Any = None, until: Any = None,
              tail: int | Literal["all"] | None = None, grep: str | None = None,
              streams: tuple[str, ...] = STREAMS, redact: bool = True,
              report: RedactionReport | None = None) -> pd.DataFrame:
    """Logs of a container or service: ``docker logs -t [--since] [--until] --tail N TARGET``.

    Args:
        target: a container, an ID, or a service (replicas merged in time order).
        since, until: datetimes, ISO strings, Unix times, or ages such as ``"5m"``.
        tail: the last N lines of each container (counted before ``grep``, as ``docker logs
            --tail``). ``None`` (the default) is :data:`DEFAULT_TAIL`, 10 000 lines;
            ``"all"`` reads every line, as ``docker logs`` does without ``--tail``.
        grep: keep only lines matching this regular expression.
        streams: which streams to read.
        redact: mask secrets in the lines (on by default; ``grep`` sees the masked line).
        report: counts what was masked, by name.

    Returns:
        A DataFrame with columns ts (UTC), container (category), stream (category), line.
        ``frame.attrs["truncated"]`` lists the containers (sorted) that had older lines the
        tail left out (empty when nothing was cut); ``frame.attrs["tail"]`` is the tail
        applied, ``None`` for ``"all"``.

    Raises:
        ContainerNotFound; InvalidTarget for a bad regex, time or tail.
    """
    import pandas as pd

    if tail is None:
        limit: int | None = DEFAULT_TAIL
    elif tail == "all":
        limit = None
    elif isinstance(tail, int) and not isinstance(tail, bool) and tail >= 0:
        limit = tail
    else:
        raise errors.InvalidTarget(target, f"was given logs tail={tail!r}",
                                   hint="pass a number of lines (0 or more), or 'all' for every "
                                   "line.")
    try:
        pattern = re.compile(grep) if grep else None
        start, end = parse_time(since), parse_time(until)
    except (re.error, ValueError) as exc:
        raise errors.InvalidTarget(target, f"got a bad filter: {exc}",
                                   hint="since/until like '5m' or an ISO time; grep a regex."
                                   ) from None
    ts: list[datetime | None] = []
    names: list[str] = []
    kinds: list[str] = []
    lines: list[str] = []
    truncated: list[str] = []
    for ref in resolve(engine, target):
        # One line more than the tail: when it comes, older lines exist and were left out.
        read = list(iter_log_lines(engine, ref, streams=streams, since=start, until=end,
                                   tail=None if limit is None else limit + 1))
        if limit is not None and len(read) > limit:
            read = read[len(read) - limit:]
            truncated.append(ref.name)
        redactors = {s: LineRedactor(report=report, table="logs") for s in ("stdout", "stderr")}
        for stamp, stream, line in read:
            if redact:  # one redactor per stream: a PEM key or YAML secret spans lines
                line = redactors.setdefault(stream, LineRedactor(report=report))(line)
            if pattern is not None and not pattern.search(line):
                continue
            ts.append(stamp)
            names.append(ref.name)
            kinds.append(stream)
            lines.append(line)
    if truncated and tail is None:
        log.info("logs of %s: only the last %d lines of each container were read; pass "
                 "tail='all' for every line", ", ".join(truncated), limit)
    frame = pd.DataFrame({
        "ts": pd.to_datetime(pd.Series(ts, dtype="object"), utc=True).astype(
            "datetime64[ns, UTC]"),
        "container": pd.Categorical(names),
        "stream": pd.Categorical(kinds, categories=list(streams)),
        "line": pd.Series(lines, dtype="string"),
    })
    frame = frame.sort_values("ts", kind="stable", ignore_index=True)
    frame.attrs.update(truncated=sorted(truncated), tail=limit)
    return frame
