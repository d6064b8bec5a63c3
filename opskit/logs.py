"""Container logs as a table: ``docker logs --timestamps`` for one container or a whole service.

Each stream (stdout, stderr) is read separately so every line keeps its stream; lines arrive
through the engine's streaming endpoint and go straight into column lists, so a long log is held
once. A service's replicas are merged in time order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import errors
from .engine import Engine
from .inspection import parse_engine_time
from .targets import Ref, resolve
from .units import parse_time

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LOG_COLUMNS", "iter_log_lines", "read_logs"]

LOG_COLUMNS = ["ts", "container", "stream", "line"]


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


def iter_log_lines(engine: Engine, ref: Ref, stream: str, *, since: datetime | None = None,
                   until: datetime | None = None, tail: int | None = None
                   ) -> Iterator[tuple[datetime | None, str]]:
    """Yield ``(timestamp, line)`` for one stream of one container."""
    kwargs: dict[str, Any] = {"stdout": stream == "stdout", "stderr": stream == "stderr",
                              "timestamps": True, "stream": True, "follow": False,
                              "tail": "all" if tail is None else int(tail)}
    if since is not None:
        kwargs["since"] = since
    if until is not None:
        kwargs["until"] = until
    try:
        chunks = engine.api.logs(ref.id, **kwargs)
        for text in _lines(chunks):
            stamp, _, line = text.partition(" ")
            yield parse_engine_time(stamp), line.rstrip("\r")
    except Exception as exc:
        raise errors.translate(exc, f"logs of {ref.name}", host=engine.host,
                               target=ref.name) from exc


def read_logs(engine: Engine, target: str, *, since: Any = None, until: Any = None,
              tail: int | None = None, grep: str | None = None,
              streams: tuple[str, ...] = ("stdout", "stderr")) -> pd.DataFrame:
    """Logs of a container or service: ``docker logs -t [--since] [--until] [--tail] TARGET``.

    Args:
        target: a container, an ID, or a service (replicas merged in time order).
        since, until: datetimes, ISO strings, Unix times, or ages such as ``"5m"``.
        tail: the last N lines of each stream of each container.
        grep: keep only lines matching this regular expression.
        streams: which streams to read.

    Returns:
        A DataFrame with columns ts (UTC), container (category), stream (category), line.

    Raises:
        ContainerNotFound; InvalidTarget for a bad regex or time.
    """
    import pandas as pd

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
    for ref in resolve(engine, target):
        for stream in streams:
            for stamp, line in iter_log_lines(engine, ref, stream, since=start, until=end,
                                              tail=tail):
                if pattern is not None and not pattern.search(line):
                    continue
                ts.append(stamp)
                names.append(ref.name)
                kinds.append(stream)
                lines.append(line)
    frame = pd.DataFrame({
        "ts": pd.to_datetime(pd.Series(ts, dtype="object"), utc=True).astype(
            "datetime64[ns, UTC]"),
        "container": pd.Categorical(names),
        "stream": pd.Categorical(kinds, categories=list(streams)),
        "line": pd.Series(lines, dtype="string"),
    })
    return frame.sort_values("ts", kind="stable", ignore_index=True)
