"""Tests of opskit.observe.collector: continuous sampling on the real engine.

The engine pushes one sample a second on each stream, and a container's first sample is only a
CPU baseline, so a container's rows start about two seconds after its stream opens; a re-list
every second finds new containers. Waits below poll with deadlines, never fixed sleeps alone.

Its pure parts (the downsampler, argument checks) are tested in ../unit/test_collector.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import opskit
from opskit.observe.collector import Collector
from opskit.records.statsframe import COLUMNS, read_stats
from tests.support.session import SESSION, TEST_LABEL, unique

IMAGE = "opskit/demo-web:latest"

pytestmark = pytest.mark.engine


def run_idle(ops: Any, name: str) -> str:
    api = ops.engine.api
    cid: str = api.create_container(IMAGE, command=["sleep", "3600"], name=name,
                                    labels={TEST_LABEL: SESSION},
                                    healthcheck={"test": ["NONE"]})["Id"]
    api.start(cid)
    return cid


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` every 50 ms; return the seconds it took, fail after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} did not happen within {timeout:g}s")
        time.sleep(0.05)
    return time.monotonic() - started


def rows_of(col: Collector, name: str) -> int:
    frame = col.frame()
    return int((frame["name"] == name).sum())


def test_picks_up_drops_and_picks_up_again(clean: Any, demo: Any) -> None:
    first, second = unique("col-a"), unique("col-b")
    with Collector(clean.engine, targets=[first, second]) as col:
        assert col.running and col.containers == []
        run_idle(clean, first)
        took = wait_until(lambda: rows_of(col, first) > 0, 5.0, f"rows of {first}")
        print(f"first rows after {took:.2f}s")  # shown with pytest -s
        assert list(col.latest()["name"]) == [first]
        clean.engine.api.kill(first)
        wait_until(lambda: first not in col.containers, 3.0, f"{first} dropped")
        assert first not in set(col.latest()["name"])
        held = rows_of(col, first)
        run_idle(clean, second)
        wait_until(lambda: rows_of(col, second) > 0, 5.0, f"rows of {second}")
        assert rows_of(col, first) == held  # a stopped container is no longer sampled
        frame = col.frame()
        assert list(frame.columns) == list(COLUMNS)
        assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
        assert frame["name"].dtype == "category" and frame["mem_used"].dtype == "int64"
        started = time.monotonic()
        col.stop()
        assert time.monotonic() - started < 1.0
        assert not col.running and col.containers == []
        col.stop()  # idempotent
        assert not any(t.name.startswith("opskit-stats-") and t.is_alive()
                       for t in threading.enumerate())


def test_memory_bound_with_a_tiny_max_rows(clean: Any, demo: Any) -> None:
    name = unique("col-bound")
    run_idle(clean, name)
    with Collector(clean.engine, targets=name, max_rows=2) as col:
        wait_until(lambda: col.store.appended >= 4, 10.0, "4 rows")
        frame = col.frame()
        assert len(frame) == 2 and col.store.dropped >= 2
        assert frame["ts"].is_monotonic_increasing
        assert frame["ts"].iloc[-1] == col.latest()["ts"].iloc[0]  # the newest are kept


def test_parquet_files_are_written_atomically(clean: Any, demo: Any, tmp_path: Path) -> None:
    name = unique("col-pq")
    run_idle(clean, name)
    out = tmp_path / "stats"
    seen_final: set[str] = set()

    def complete_files() -> bool:
        for path in out.glob("*.parquet"):  # never a hidden temp file, never a partial file
            read_stats(path)
            seen_final.add(path.name)
        return len(seen_final) >= 2

    with Collector(clean.engine, targets=[name], path=out, flush_every=1.0) as col:
        wait_until(complete_files, 10.0, "two Parquet files")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert [p.name for p in col.files] == sorted(p.name for p in out.iterdir())
    back, held = read_stats(out), col.frame()
    assert len(back) == len(held) >= 2
    assert back["mem_used"].tolist() == held["mem_used"].tolist()
    assert (back["ts"] == held["ts"]).all() and back["name"].dtype == "category"


def test_service_target_and_interval(clean: Any, demo: Any) -> None:
    svc = unique("col-svc")
    clean.deploy(opskit.ServiceSpec(name=svc, image=IMAGE, command=["sleep", "3600"],
                                    healthcheck={"test": ["NONE"]}), wait="running")
    with Collector(clean.engine, interval=2.0, targets=svc) as col:
        wait_until(lambda: col.store.appended >= 2, 10.0, "two downsampled rows")
    gaps = col.frame()["ts"].diff().dropna()
    assert (gaps >= timedelta(seconds=1.5)).all()
    assert set(col.frame()["name"]) == {svc}
