"""``docker events`` as frames: the host's durable journal merged with the engine's replay.

:func:`events_frame` is what ``ops.events(since="10m")`` returns: the durable journal of the
host (when one was kept, see :class:`opskit.observe.journal.EventJournal`) merged with the engine's
own replay of its last 256 events, duplicates dropped, sorted by time.

The requests themselves live in :mod:`opskit.engine.events`; pandas is imported inside the
frame functions only.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base.units import parse_time
from ..engine.connection import Engine
from ..engine.events import engine_time_ns, fetch_events
from ..records.event_records import parse_event
from ..records.journal_file import (
    FIELDS,
    Record,
    iter_records,
)
from .journal import EventJournal, default_journal_path

if TYPE_CHECKING:
    import pandas as pd


__all__ = ["events_frame", "frame_from_payloads", "merge_frames", "read_journal",
           "records_frame"]

log = logging.getLogger("opskit")
_ATTRS_RE = re.compile(rb',"attributes":(\{.*\})\}\r?$', re.MULTILINE)


def frame_from_payloads(payloads: Iterable[Mapping[str, Any]], host: str = "") -> pd.DataFrame:
    """A frame (columns of :func:`records_frame`) from decoded
    ``GET /events`` objects, either engine shape (newer engines send no
    ``status``/``id``/``from``).

    Raises:
        EngineError: a payload has no ``Type``, ``Action`` or time.
    """
    return records_frame(Record.from_event(parse_event(p, host=host)) for p in payloads)


def merge_frames(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate frames, drop duplicate events (same time, type, action and actor; the
    first kept), sort by time (stable), and restore the categories."""
    import pandas as pd

    parts = [f for f in frames if f is not None and not f.empty]
    if not parts:
        return records_frame([])
    merged = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].copy()
    keys = merged[["time_nano", "type", "action", "actor_id"]].astype(
        {"type": "str", "action": "str"})
    dup = keys.duplicated() & (merged["kind"].astype("str") == "event")
    merged = merged[~dup].sort_values("time_nano", kind="stable").reset_index(drop=True)
    for column in ("type", "action", "base_action", "name", "host", "kind"):
        merged[column] = merged[column].astype("object").astype("category")
    return merged


def events_frame(engine: Engine, since: Any = "10m", until: Any = None, *,
                 journal: EventJournal | None = None) -> pd.DataFrame:
    """``docker events --since S --until U`` as a frame, completed from the host's journal.

    Rows come from the journal file (``journal.path``, or the host's default journal when it
    exists), gap, reconcile and connect records included, and from the engine's own replay
    of its last 256 events; duplicates are dropped and rows sorted by time.

    Args:
        engine: the engine.
        since: a datetime, ISO string, Unix time or age (``"10m"``).
        until: the same; the engine's clock now when omitted.
        journal: a running journal whose file to read.

    Raises:
        ValueError: ``since`` or ``until`` is not a time.
        EngineUnavailable: the engine did not answer within its timeout.
        EngineError: the engine refused the request.
    """
    now_ns, _ = engine_time_ns(engine.api, engine.host)
    now = datetime.fromtimestamp(now_ns / 1e9, UTC)
    start = parse_time(since, now=now)
    end = parse_time(until, now=now)
    since_ns = int(start.timestamp() * 1e9) if start else 0
    until_ns = int(end.timestamp() * 1e9) if end else now_ns
    payloads = fetch_events(engine.api, since_ns, min(until_ns, now_ns), timeout=engine.timeout,
                            host=engine.host)
    replay = frame_from_payloads(payloads, host=engine.host)
    if journal is not None and journal.running:
        journal.flush(engine.timeout)  # what it has read is in the file before we read it
    path = journal.path if journal is not None else default_journal_path(engine.host)
    frames = [replay]
    if path.exists():
        stored = read_journal(path)
        window = (stored["time_nano"] >= since_ns) & (stored["time_nano"] <= until_ns)
        frames.insert(0, stored[window & (stored["host"].astype("str") == engine.host)])
    return merge_frames(*frames)


def read_journal(path: str | Path) -> pd.DataFrame:
    """Read a journal file into a frame (see :func:`records_frame` for the columns).

    pyarrow reads the flat fields and one ``json.loads`` call parses every ``attributes``
    object; a file with a damaged line falls back to reading line by line, skipping it.

    Raises:
        FileNotFoundError: there is no journal at ``path``.
    """
    data = Path(path).read_bytes()
    try:
        return _fast_frame(data)
    except Exception as exc:  # pyarrow and json raise several kinds on a damaged line
        log.info("journal %s: fast read failed (%s); reading line by line", path, exc)
    return records_frame(iter_records(Path(path)))


def _fast_frame(data: bytes) -> pd.DataFrame:

    import pyarrow as pa
    import pyarrow.json as pj

    if not data:
        return records_frame([])
    schema = pa.schema([("time_nano", pa.int64()), ("type", pa.string()),
                        ("action", pa.string()), ("actor_id", pa.string()),
                        ("name", pa.string()), ("host", pa.string()), ("kind", pa.string())])
    table = pj.read_json(io.BytesIO(data), parse_options=pj.ParseOptions(
        explicit_schema=schema, unexpected_field_behavior="ignore"))
    # attributes is each line's last field: one regex pass, one json.loads for them all
    parts = _ATTRS_RE.findall(data)
    attributes = json.loads(b"[" + b",".join(parts) + b"]")
    if len(attributes) != table.num_rows:
        raise ValueError("a line without a trailing attributes object")
    columns = {name: table.column(name).to_pandas() if name == "actor_id"
               else table.column(name).dictionary_encode().to_pandas()
               for name in FIELDS[1:-1]}
    return _frame(table.column("time_nano").to_numpy(), columns, attributes)


def records_frame(records: Iterable[Record]) -> pd.DataFrame:
    """A frame of records: ``ts`` (datetime64[ns, UTC]), ``time_nano`` (int64), ``type``,
    ``action``, ``base_action`` (categories), ``detail``, ``actor_id``, ``name`` (category),
    ``exit_code`` (Int64, ``die`` events only), ``attributes`` (dict), ``host`` and ``kind``
    (categories)."""
    rows = list(records)
    columns: dict[str, list[Any]] = {name: [getattr(r, name) for r in rows]
                                     for name in FIELDS[1:-1]}
    return _frame([r.time_nano for r in rows], columns, [dict(r.attributes) for r in rows])


def _frame(time_nano: Any, columns: Mapping[str, Any],
           attributes: list[dict[str, str]]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    def category(values: Any) -> pd.Series:
        if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
            return values
        return pd.Series(values, dtype="object").astype("category")

    nanos = pd.Series(time_nano, dtype="int64")
    action = category(columns["action"])
    # base_action and detail are worked out once per distinct action, not once per row
    levels = pd.Series(action.cat.categories, dtype="str")
    split = (levels.str.partition(": ") if len(levels)
             else pd.DataFrame({0: levels, 1: levels, 2: levels}))
    codes = action.cat.codes.to_numpy()
    base = category(split[0].to_numpy(dtype=object)[codes] if len(codes) else [])
    detail = pd.Series(split[2].to_numpy(dtype=object)[codes] if len(codes) else [], dtype="str")
    values, missing = np.zeros(len(nanos), dtype="int64"), np.ones(len(nanos), dtype=bool)
    for row in np.flatnonzero((base == "die").to_numpy()):
        code = attributes[row].get("exitCode")
        if code and code.lstrip("-").isdigit():
            values[row], missing[row] = int(code), False
    return pd.DataFrame({
        "ts": pd.to_datetime(nanos, unit="ns", utc=True),
        "time_nano": nanos,
        "type": category(columns["type"]),
        "action": action,
        "base_action": base,
        "detail": detail,
        "actor_id": pd.Series(columns["actor_id"], dtype="str"),
        "name": category(columns["name"]),
        "exit_code": pd.Series(pd.arrays.IntegerArray(values, missing)),
        "attributes": pd.Series(attributes, dtype="object"),
        "host": category(columns["host"]),
        "kind": category(columns["kind"]),
    })
