"""``docker events`` as frames, and the requests on ``GET /events`` the journal is built on.

:func:`events_frame` is what ``ops.events(since="10m")`` returns: the durable journal of the
host (when one was kept, see :class:`opskit.journal.EventJournal`) merged with the engine's
own replay of its last 256 events, duplicates dropped, sorted by time.

The wire helpers exist because docker-py's ``APIClient.events()`` opens the stream with no
timeout at all: against a stopped or black-holed engine it waits for the response headers
for ever. :func:`open_stream` waits at most ``timeout`` for the headers and then reads the
body without a timeout, and :class:`EventStream` can be closed from any thread.
:func:`fetch_events` is the bounded form (``since`` and ``until``): a plain request with a
timeout on every read. pandas is imported inside the frame functions only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors
from .engine import Engine, state_dir
from .event_records import event_key, parse_event
from .journal_file import FIELDS, Record, host_slug, iter_records
from .units import parse_time

if TYPE_CHECKING:
    import pandas as pd

    from .journal import EventJournal

__all__ = ["EventStream", "api_time", "default_journal_path", "engine_time_ns",
           "events_frame", "fetch_events", "frame_from_payloads", "merge_frames",
           "open_stream", "parse_system_time", "read_journal", "records_frame", "replay_keys",
           "side_client"]

log = logging.getLogger("opskit")
_ATTRS_RE = re.compile(rb',"attributes":(\{.*\})\}\r?$', re.MULTILINE)
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
        raise errors.translate(exc, "docker info", host=host) from exc


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
        raise errors.translate(exc, "docker events --since/--until", host=host) from exc
    _check(response, "docker events --since/--until")
    return [json.loads(line) for line in response.content.splitlines() if line.strip()]


def replay_keys(api: Any, since_ns: int, until_ns: int, *,
                filters: Mapping[str, Any] | None = None, timeout: float = 10.0,
                host: str = "") -> tuple[set[tuple[int, str, str, str]], int]:
    """The keys (:func:`~opskit.event_records.event_key`) of the engine's replay between two
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
        raise errors.translate(exc, "docker events", host=host) from exc
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
    import docker

    api = engine.api
    tls: Any = False
    if str(api.base_url).startswith("https://"):
        verify = api.verify
        tls = docker.tls.TLSConfig(client_cert=api.cert, verify=bool(verify),
                                   ca_cert=verify if isinstance(verify, str) else None)
    try:
        return docker.APIClient(base_url=engine.host, timeout=timeout, tls=tls,
                                version=api.api_version,
                                use_ssh_client=engine.host.startswith("ssh"))
    except Exception as exc:  # docker-py raises several kinds for a bad URL or TLS file
        raise errors.EngineUnavailable(engine.host, f"cannot build a client: {exc}") from exc


def default_journal_path(host: str) -> Path:
    """Where a host's journal lives: ``state_dir()/journal/<host slug>.jsonl``."""
    return state_dir() / "journal" / f"{host_slug(host)}.jsonl"


def frame_from_payloads(payloads: Iterable[Mapping[str, Any]], host: str = "") -> pd.DataFrame:
    """A frame (columns of :func:`opskit.journal_file.records_frame`) from decoded
    ``GET /events`` objects, either engine shape (row 16: no ``status``/``id``/``from``).

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
    import io

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
