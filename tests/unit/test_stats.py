"""Tests of opskit.records.statsframe, and of opskit.observe.stats with no engine: an empty
answer means the container stopped, an unreachable engine is EngineUnavailable, and the
stats modules import no pandas.

Snapshots on the real engine, compared with ``docker stats``, are in
../engine/test_stats.py.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import opskit
from opskit.engine.connection import Engine
from opskit.observe import stats as stats_mod
from opskit.observe.stats import stats_snapshot
from opskit.records import statsframe
from opskit.records.statsframe import (
    COLUMNS,
    ColumnStore,
    empty_frame,
    frame_from_columns,
    memory_footprint,
    read_stats,
    resample_means,
    rows_frame,
    write_parquet_atomic,
)
from tests.support.frames import STATS_DTYPES as DTYPES


def assert_dtypes(frame: Any) -> None:
    assert list(frame.columns) == list(COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == DTYPES


def test_an_empty_answer_means_the_container_stopped() -> None:
    import docker.errors
    import requests

    from opskit.engine.targets import Ref

    class Api:
        def __init__(self, exc: BaseException) -> None:
            self.exc = exc

        def stats(self, cid: str, stream: bool) -> Any:
            raise self.exc

    ref = Ref(id="a" * 64, name="web")
    empty = requests.exceptions.JSONDecodeError("Expecting value", "", 0)
    assert stats_mod.fetch_stats(Api(empty), ref, host="unix:///x") is None
    gone = docker.errors.NotFound("No such container")
    assert stats_mod.fetch_stats(Api(gone), ref, host="unix:///x") is None
    with pytest.raises(opskit.EngineUnavailable, match="unix:///x"):
        stats_mod.fetch_stats(Api(requests.exceptions.ConnectionError("refused")), ref,
                              host="unix:///x")


def test_unreachable_engine_is_engine_unavailable() -> None:
    import docker

    host = "unix:///nonexistent/docker.sock"
    engine = Engine(client=docker.DockerClient(base_url=host, version="1.41", timeout=2),
                    host=host, scope="x", key=b"k", timeout=2.0)
    with pytest.raises(opskit.EngineUnavailable) as caught:
        stats_snapshot(engine)
    assert host in str(caught.value)


def test_stats_modules_import_no_pandas() -> None:
    code = ("import sys, opskit, opskit.observe.stats, opskit.observe.collector, "
            "opskit.records.statsframe; "
            "print(','.join(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def synthetic(rows: int, containers: int = 50, start: int = 1_795_000_000) -> Any:
    """``rows`` stats rows of ``containers`` containers sampled once a second."""
    import numpy as np

    n = np.arange(rows)
    cols = {"ts": (start + n // containers) * 1_000_000_000, "key": n % containers,
            "cpu_pct": (n % 100).astype(float), "mem_pct": np.full(rows, 1.5)}
    for col in statsframe.INT_COLUMNS:
        cols[col] = n % 1000
    keys = [(f"{i:02d}" * 32, f"web-{i}") for i in range(containers)]
    return frame_from_columns(cols, keys)


def test_empty_frame_and_rows_frame_dtypes() -> None:
    assert_dtypes(empty_frame())
    row = {"ts": datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC), "id": "a" * 64,
           "name": "web", "cpu_pct": 1.5, "mem_used": 10, "mem_limit": 100, "mem_pct": 10.0,
           "net_rx": 1, "net_tx": 2, "blk_read": 3, "blk_write": 4, "pids": 5}
    frame = rows_frame([row])  # type: ignore[list-item]
    assert_dtypes(frame)
    assert frame["ts"].iloc[0] == row["ts"] and frame["pids"].iloc[0] == 5


def test_resample_means_per_container() -> None:
    frame = synthetic(200, containers=2)  # 100 s, two containers
    out = resample_means(frame, "10s")
    assert list(out.columns[:3]) == ["ts", "id", "name"]
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]" and out["name"].dtype == "category"
    assert len(out) == 2 * 10 and set(out["samples"]) == {10}
    first = frame[(frame["name"] == "web-1") & (frame["ts"] < frame["ts"].iloc[0]
                                                 + timedelta(seconds=10))]
    got = out[out["name"] == "web-1"].iloc[0]
    assert got["cpu_pct"] == pytest.approx(first["cpu_pct"].mean())
    assert got["mem_used"] == pytest.approx(first["mem_used"].mean())
    assert got["ts"] == frame["ts"].iloc[0]  # the start is on a 10 s boundary
    with pytest.raises(opskit.InvalidSpec):
        resample_means(frame, "-5s")


def test_a_million_rows_fit_the_memory_budget() -> None:
    frame = synthetic(1_000_000)
    assert_dtypes(frame)
    assert memory_footprint(frame) <= 150 * 2**20
    out = resample_means(frame, "10s")
    assert len(out) == 50 * 2_000 and int(out["samples"].sum()) == 1_000_000


def test_column_store_is_bounded_and_keeps_the_newest() -> None:
    store = ColumnStore(1000, block_rows=64)
    base = datetime(2026, 11, 26, tzinfo=UTC)
    for i in range(10_000):
        store.append({"ts": base + timedelta(seconds=i), "id": f"{i % 7:064d}",  # type: ignore[typeddict-item]
                      "name": f"c{i % 7}", "cpu_pct": float(i), "mem_used": i, "mem_limit": 1,
                      "mem_pct": 0.0, "net_rx": 0, "net_tx": 0, "blk_read": 0, "blk_write": 0,
                      "pids": 1})
    frame = store.frame()
    assert len(store) == len(frame) == 1000 and store.dropped == 9000
    assert list(frame["mem_used"]) == list(range(9000, 10_000))
    assert sum(len(b.cols["ts"]) for b in store._blocks) <= 1000 + 64
    recent = store.frame(base + timedelta(seconds=9990))
    assert list(recent["mem_used"]) == list(range(9990, 10_000))


def test_column_store_forgets_containers_it_no_longer_holds() -> None:
    store = ColumnStore(10, block_rows=4)
    base = datetime(2026, 11, 26, tzinfo=UTC)
    for i in range(5000):  # a new container every row
        store.append({"ts": base + timedelta(seconds=i), "id": f"{i:064d}",  # type: ignore[typeddict-item]
                      "name": f"c{i}", "cpu_pct": 0.0, "mem_used": i, "mem_limit": 1,
                      "mem_pct": 0.0, "net_rx": 0, "net_tx": 0, "blk_read": 0, "blk_write": 0,
                      "pids": 1})
    assert len(store._key_list) <= 1024
    frame = store.frame()
    assert list(frame["name"]) == [f"c{i}" for i in range(4990, 5000)]


def test_parquet_round_trip(tmp_path: Path) -> None:
    frame = synthetic(500, containers=5)
    write_parquet_atomic(frame.iloc[:200], tmp_path / "a.parquet")
    write_parquet_atomic(frame.iloc[200:], tmp_path / "b.parquet")
    back = read_stats(tmp_path)
    assert_dtypes(back)
    assert back["mem_used"].tolist() == frame["mem_used"].tolist()
    assert back["name"].astype(str).tolist() == frame["name"].astype(str).tolist()
    assert (back["ts"] == frame["ts"]).all()


def test_parquet_write_never_leaves_a_partial_file(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(statsframe.os, "fsync", boom)
    with pytest.raises(OSError):
        write_parquet_atomic(synthetic(100), tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []
