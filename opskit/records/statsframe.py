"""The stats table: its columns, a bounded in-memory store, per-container means, Parquet files.

Every stats frame opskit returns (:func:`opskit.observe.stats.stats_snapshot`,
:meth:`opskit.observe.collector.Collector.frame`,
:meth:`~opskit.observe.collector.Collector.latest`) has the
columns of :data:`COLUMNS`, in that order, with these dtypes: ``ts`` ``datetime64[ns, UTC]`` (the
engine's sample time), ``id`` and ``name`` ``category``, ``cpu_pct`` and ``mem_pct`` ``float64``,
and ``mem_used``, ``mem_limit``, ``net_rx``, ``net_tx``, ``blk_read``, ``blk_write``, ``pids``
``int64`` (bytes and counts, as ``docker stats`` shows them, unrounded).

Memory footprint: a row costs 8 bytes of time, 9 x 8 bytes of numbers and one small category
code for each of ``id`` and ``name`` (int8 up to 127 containers, int16 beyond): about 82 bytes, so
1,000,000 rows of 50 containers take 82 MB (78 MiB, ``frame.memory_usage(deep=True).sum()``),
within the 150 MB budget. With ``id`` and ``name`` as pandas' default ``str`` dtype the same frame
takes 166 MB, as Python strings (``object``) 264 MB; both are over it, and grouping by strings is
slower too. ``bench/bench_stats.py`` measures this.
:func:`memory_footprint` reports the figure for a frame.

Only the standard library is imported at module level: numpy, pandas and pyarrow are imported by
the functions that need them.
"""

from __future__ import annotations

import os
import secrets
import threading
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base import errors
from ..base.units import parse_duration
from .stats_calc import StatsRow

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "COLUMNS",
    "FLOAT_COLUMNS",
    "INT_COLUMNS",
    "ColumnStore",
    "empty_frame",
    "frame_from_columns",
    "memory_footprint",
    "read_stats",
    "resample_means",
    "rows_frame",
    "to_ns",
    "write_parquet_atomic",
]

COLUMNS = ("ts", "id", "name", "cpu_pct", "mem_used", "mem_limit", "mem_pct", "net_rx",
           "net_tx", "blk_read", "blk_write", "pids")
FLOAT_COLUMNS = ("cpu_pct", "mem_pct")
INT_COLUMNS = ("mem_used", "mem_limit", "net_rx", "net_tx", "blk_read", "blk_write", "pids")
NUMBER_COLUMNS = tuple(c for c in COLUMNS if c in FLOAT_COLUMNS or c in INT_COLUMNS)
_TYPECODE = {c: ("d" if c in FLOAT_COLUMNS else "q") for c in NUMBER_COLUMNS}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

Columns = dict[str, Any]
"""Column arrays: ``ts`` (int64 ns), ``key`` (int32 codes into ``keys``), one per number."""


def to_ns(when: datetime) -> int:
    """Nanoseconds since the Unix epoch of an aware datetime (exact, no float rounding)."""
    return (when - _EPOCH) // _US * 1000


def frame_from_columns(cols: Columns, keys: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Build a stats frame from column arrays and the ``(id, name)`` table the codes point into.

    Only the containers that appear in the rows become categories (sorted).
    """
    import numpy as np
    import pandas as pd

    codes = np.asarray(cols["key"], dtype=np.int64)
    used = np.flatnonzero(np.bincount(codes, minlength=len(keys))) if len(codes) else codes[:0]
    ids = np.array([keys[k][0] for k in used], dtype=object)
    names = np.array([keys[k][1] for k in used], dtype=object)
    id_cats, id_of = np.unique(ids, return_inverse=True)
    name_cats, name_of = np.unique(names, return_inverse=True)
    remap = np.zeros(len(keys), dtype=np.int64)
    remap[used] = np.arange(len(used))
    local = remap[codes]
    data: dict[str, Any] = {
        "ts": pd.to_datetime(np.asarray(cols["ts"], dtype=np.int64), unit="ns", utc=True),
        "id": pd.Categorical.from_codes(id_of.reshape(-1)[local], categories=pd.Index(id_cats)),
        "name": pd.Categorical.from_codes(name_of.reshape(-1)[local],
                                          categories=pd.Index(name_cats)),
    }
    for col in NUMBER_COLUMNS:
        dtype = np.float64 if col in FLOAT_COLUMNS else np.int64
        data[col] = np.asarray(cols[col], dtype=dtype)
    return pd.DataFrame(data, columns=list(COLUMNS))


def rows_frame(rows: Iterable[StatsRow]) -> pd.DataFrame:
    """A stats frame from :func:`opskit.records.stats_calc.stats_row` rows, in the given order."""
    keys: dict[tuple[str, str], int] = {}
    cols: Columns = {"ts": [], "key": [], **{c: [] for c in NUMBER_COLUMNS}}
    for row in rows:
        cols["ts"].append(to_ns(row["ts"]))
        cols["key"].append(keys.setdefault((row["id"], row["name"]), len(keys)))
        for col in NUMBER_COLUMNS:
            cols[col].append(row[col])  # type: ignore[literal-required]
    return frame_from_columns(cols, list(keys))


def empty_frame() -> pd.DataFrame:
    """A stats frame with no rows and the real dtypes."""
    return rows_frame(())


def memory_footprint(frame: pd.DataFrame) -> int:
    """Bytes a frame holds, strings and categories included (``memory_usage(deep=True)``)."""
    return int(frame.memory_usage(deep=True).sum())


def _every_ns(every: str | float | timedelta) -> int:
    try:
        seconds = parse_duration(every)
    except ValueError as exc:
        raise errors.InvalidSpec("every", str(exc), value=every,
                                 allowed="a positive duration: '10s', '1m', 10.0") from None
    if seconds <= 0:
        raise errors.InvalidSpec("every", "must be positive", value=every,
                                 allowed="a positive duration: '10s', '1m', 10.0")
    return round(seconds * 1e9)


def resample_means(frame: pd.DataFrame, every: str | float | timedelta = "10s") -> pd.DataFrame:
    """Mean of every number per container and time bin (pure pandas, no engine).

    Bins are aligned on the epoch (``10s`` bins start at :00, :10, ...); a bin is labelled by its
    start. Rows are grouped by ``id`` and ``name``, so a container keeps its own series when a
    replacement reuses its name.

    Args:
        frame: a stats frame (:data:`COLUMNS`).
        every: the bin width: ``"10s"``, ``"1m"``, seconds, or a timedelta.

    Returns:
        Columns ``ts`` (bin start, UTC), ``id``, ``name`` (categories), the means of the number
        columns (all ``float64``) and ``samples`` (``int64``, rows in the bin), sorted by
        container and time.

    Raises:
        InvalidSpec: ``every`` is not a positive duration.
    """
    import numpy as np
    import pandas as pd

    step = _every_ns(every)
    stamps = frame["ts"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    bins = pd.Series(stamps // step * step, index=frame.index, name="ts")
    grouped = frame.groupby([frame["id"], frame["name"], bins], observed=True, sort=True)
    means = grouped[list(NUMBER_COLUMNS)].mean()
    means["samples"] = grouped.size().astype(np.int64)
    out = means.reset_index()
    out["ts"] = pd.to_datetime(out["ts"].to_numpy(dtype=np.int64), unit="ns", utc=True)
    for col in NUMBER_COLUMNS:
        out[col] = out[col].astype(np.float64)
    return out[["ts", "id", "name", *NUMBER_COLUMNS, "samples"]]


def write_parquet_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame to one Parquet file so the final path never holds a partial file.

    The data goes to a hidden temporary file in the same folder (``.NAME.XXXX.tmp``, which
    pyarrow's dataset reader skips), is flushed and fsynced, then renamed over ``path``; the
    folder is fsynced so the rename survives a crash. On any failure the temporary file is
    removed and nothing appears at ``path``.

    Raises:
        OSError: the file could not be written (disk full, permissions).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def read_stats(path: str | Path) -> pd.DataFrame:
    """Read a stats file, or a folder of them as a collector writes, back into a stats frame.

    Rows are sorted by time; dtypes are those of :data:`COLUMNS` whatever the files held.
    """
    import numpy as np
    import pandas as pd

    raw = pd.read_parquet(Path(path))
    if raw.empty:
        return empty_frame()
    pairs = pd.MultiIndex.from_arrays([raw["id"].astype(str), raw["name"].astype(str)])
    codes, uniques = pairs.factorize()
    cols: Columns = {
        "ts": pd.to_datetime(raw["ts"], utc=True).astype("datetime64[ns, UTC]")
        .to_numpy(dtype="datetime64[ns]").view(np.int64),
        "key": codes,
        **{c: raw[c].to_numpy() for c in NUMBER_COLUMNS},
    }
    keys = [(str(i), str(n)) for i, n in uniques]
    frame = frame_from_columns(cols, keys)
    return frame.sort_values("ts", kind="stable", ignore_index=True)


@dataclass
class _Block:
    first_seq: int
    cols: dict[str, array[Any]] = field(default_factory=dict)
    max_ts: int = -(1 << 63)


class ColumnStore:
    """A bounded, thread-safe column store of stats rows: the newest ``max_rows`` are kept.

    Rows go into typed ``array.array`` columns (8 bytes a number, 4 for the container code)
    grouped in blocks; when the store holds more than ``max_rows`` the oldest rows are dropped,
    and a block is freed once all its rows are. Memory stays at most ``max_rows`` plus one block
    of rows (about 80 bytes each), plus one small entry per container whose rows are held.

    Args:
        max_rows: the most rows kept.
        block_rows: rows per block; by default an eighth of ``max_rows``, at most 65,536.

    Raises:
        InvalidSpec: ``max_rows`` is below 1.
    """

    def __init__(self, max_rows: int, *, block_rows: int | None = None) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise errors.InvalidSpec("max_rows", "must be a positive integer", value=max_rows,
                                     allowed="an integer >= 1, e.g. 1_000_000")
        self.max_rows = max_rows
        self._block_rows = block_rows or max(1, min(65_536, max_rows // 8))
        self._blocks: deque[_Block] = deque()
        self._head = 0  # rows of the oldest block already dropped
        self._size = 0
        self.appended = 0
        """Rows appended since creation (dropped ones included)."""
        self._keys: dict[tuple[str, str], int] = {}
        self._key_list: list[tuple[str, str]] = []
        self._compact_at = 1024
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    @property
    def dropped(self) -> int:
        """Rows dropped to respect ``max_rows``."""
        return self.appended - self._size

    def append(self, row: StatsRow) -> None:
        """Add one row; drops the oldest row when the store is full."""
        ts = to_ns(row["ts"])
        with self._lock:
            key = self._keys.get((row["id"], row["name"]))
            if key is None:
                key = self._keys[(row["id"], row["name"])] = len(self._key_list)
                self._key_list.append((row["id"], row["name"]))
            block = self._blocks[-1] if self._blocks else None
            if block is None or len(block.cols["ts"]) >= self._block_rows:
                block = _Block(self.appended, {"ts": array("q"), "key": array("i"),
                                               **{c: array(t) for c, t in _TYPECODE.items()}})
                self._blocks.append(block)
            cols = block.cols
            cols["ts"].append(ts)
            cols["key"].append(key)
            for col in NUMBER_COLUMNS:
                cols[col].append(row[col])  # type: ignore[literal-required]
            block.max_ts = max(block.max_ts, ts)
            self.appended += 1
            self._size += 1
            if self._size > self.max_rows:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        self._head += 1
        self._size -= 1
        if self._head >= len(self._blocks[0].cols["ts"]):
            self._blocks.popleft()
            self._head = 0
            if len(self._key_list) >= self._compact_at:
                self._compact_keys()

    def _compact_keys(self) -> None:
        """Forget containers no held row refers to, so the key table stays bounded."""
        used = sorted({k for b in self._blocks for k in b.cols["key"]})
        remap = {old: new for new, old in enumerate(used)}
        for block in self._blocks:
            block.cols["key"] = array("i", (remap[k] for k in block.cols["key"]))
        self._key_list = [self._key_list[k] for k in used]
        self._keys = {key: i for i, key in enumerate(self._key_list)}
        self._compact_at = max(1024, 2 * len(self._key_list))

    def columns(self, *, since_ns: int | None = None, from_seq: int = 0
                ) -> tuple[Columns, list[tuple[str, str]], int]:
        """Copy the held rows out as numpy arrays.

        Args:
            since_ns: keep rows whose ``ts`` is at or after this (ns since the epoch).
            from_seq: keep rows appended as number ``from_seq`` (0-based) or later.

        Returns:
            ``(columns, keys, end_seq)``: the arrays, the ``(id, name)`` table the ``key``
            codes point into, and the number of rows appended so far (the next ``from_seq``).
        """
        import numpy as np

        names = ("ts", "key", *NUMBER_COLUMNS)
        with self._lock:
            parts: dict[str, list[np.ndarray[Any, Any]]] = {c: [] for c in names}
            for i, block in enumerate(self._blocks):
                if since_ns is not None and block.max_ts < since_ns:
                    continue
                start = max(self._head if i == 0 else 0, from_seq - block.first_seq, 0)
                if start >= len(block.cols["ts"]):
                    continue
                for col in names:
                    arr = block.cols[col]
                    parts[col].append(np.frombuffer(arr, dtype=_np_type(arr.typecode))[start:])
            out: Columns = {
                c: (np.concatenate(p) if p else np.empty(0, dtype=_np_type(_code(c))))
                for c, p in parts.items()}
            del parts  # release the buffer views before the arrays may grow again
            keys = list(self._key_list)
            end_seq = self.appended
        if since_ns is not None and len(out["ts"]):
            mask = out["ts"] >= since_ns
            if not mask.all():
                out = {c: a[mask] for c, a in out.items()}
        return out, keys, end_seq

    def frame(self, since: datetime | None = None) -> pd.DataFrame:
        """The held rows (at or after ``since``) as a stats frame, oldest first."""
        cols, keys, _ = self.columns(since_ns=None if since is None else to_ns(since))
        return frame_from_columns(cols, keys)


def _code(col: str) -> str:
    return "q" if col == "ts" else "i" if col == "key" else _TYPECODE[col]


def _np_type(typecode: str) -> Any:
    import numpy as np

    return {"q": np.int64, "i": np.int32, "d": np.float64}[typecode]
