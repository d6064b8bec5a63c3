"""Tests of opskit.stats (snapshots on the real engine) and opskit.statsframe (no engine).

The comparison with ``docker stats --no-stream`` runs the CLI and the snapshot at the same
moment: the engine samples once a second and hands that sample to every subscriber, so both
usually read the same numbers; the tolerances (5 CPU points, 1 % of memory) cover the CLI's
rounding and the odd case where the two calls straddle an engine tick.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import SESSION, TEST_LABEL, unique

import opskit
from opskit import stats as stats_mod
from opskit import statsframe
from opskit.engine import Engine
from opskit.stats import stats_snapshot
from opskit.statsframe import (
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

DTYPES = {"ts": "datetime64[ns, UTC]", "id": "category", "name": "category",
          "cpu_pct": "float64", "mem_used": "int64", "mem_limit": "int64", "mem_pct": "float64",
          "net_rx": "int64", "net_tx": "int64", "blk_read": "int64", "blk_write": "int64",
          "pids": "int64"}
IMAGE = "opskit/demo-web:latest"
_BINARY = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def assert_dtypes(frame: Any) -> None:
    assert list(frame.columns) == list(COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == DTYPES


def run_container(ops: Any, name: str, command: list[str], **host: Any) -> str:
    """Create and start a labelled container (no healthcheck) from the demo image."""
    api = ops.engine.api
    cid: str = api.create_container(
        IMAGE, command=command, name=name, labels={TEST_LABEL: SESSION},
        healthcheck={"test": ["NONE"]}, host_config=api.create_host_config(**host))["Id"]
    api.start(cid)
    return cid


def parse_binary_size(text: str) -> float:
    """``352KiB`` -> bytes, as the CLI prints sizes (docker/go-units BytesSize: binary)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?i?B)\s*", text)
    assert match, text
    return float(match.group(1)) * _BINARY[match.group(2)]


# --- against docker stats ------------------------------------------------------------------


def compare_once(engine: Any, names: list[str]) -> tuple[Any, list[str]]:
    """Run the CLI and the snapshot at the same moment; return the frame and every mismatch."""
    cli: dict[str, Any] = {}

    def run_cli() -> None:
        cli["out"] = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{json .}}", *names],
            capture_output=True, text=True, timeout=30, check=True).stdout

    thread = threading.Thread(target=run_cli)
    thread.start()
    frame = stats_snapshot(engine, names)
    thread.join(30)
    lines = {row["Name"]: row for row in map(json.loads, cli["out"].splitlines())}
    assert set(lines) == set(names) and list(frame["name"]) == sorted(names)
    problems = []
    for row in frame.itertuples():
        line = lines[row.name]
        used_text, limit_text = line["MemUsage"].split("/")
        checks = [
            ("cpu", row.cpu_pct, float(line["CPUPerc"].rstrip("%")), {"abs": 5.0}),
            ("mem", row.mem_used, parse_binary_size(used_text), {"rel": 0.01}),
            ("limit", row.mem_limit, parse_binary_size(limit_text), {"rel": 0.001}),
            ("mem %", row.mem_pct, float(line["MemPerc"].rstrip("%")), {"abs": 0.05}),
            ("pids", row.pids, int(line["PIDs"]), {"abs": 0}),
        ]
        problems += [f"{row.name} {what}: opskit {ours!r}, CLI {theirs!r} ({line})"
                     for what, ours, theirs, tol in checks
                     if ours != pytest.approx(theirs, **tol)]
    return frame, problems


@pytest.mark.engine
def test_snapshot_matches_docker_stats_cli(clean: Any, demo: Any) -> None:
    busy, idle = unique("stats-busy"), unique("stats-idle")
    run_container(clean, busy, ["sh", "-c", "while :; do :; done"], nano_cpus=500_000_000,
                  mem_limit="64m")
    run_container(clean, idle, ["sleep", "3600"])
    time.sleep(1.0)  # let the loop run for a whole engine sample first
    # On a loaded machine the two calls can straddle an engine tick and read two samples
    # whose CPU differs: allow two more tries; a real disagreement fails all three.
    attempts = []
    for _ in range(3):
        frame, problems = compare_once(clean.engine, [busy, idle])
        attempts.append(problems)
        if not problems:
            break
    assert not attempts[-1], attempts
    by_name = frame.set_index("name")
    assert 10.0 < by_name.loc[busy, "cpu_pct"] < 55.0  # nano_cpus caps it at half a CPU
    assert by_name.loc[idle, "cpu_pct"] < 5.0
    assert by_name.loc[busy, "mem_limit"] == 64 << 20


# --- the frame -----------------------------------------------------------------------------


@pytest.mark.engine
def test_dtypes_and_a_stopped_container_is_skipped(clean: Any, demo: Any) -> None:
    up, down = unique("stats-up"), unique("stats-down")
    up_id = run_container(clean, up, ["sleep", "3600"])
    run_container(clean, down, ["sleep", "3600"])
    clean.engine.api.kill(down)
    before = datetime.now(UTC)
    frame = stats_snapshot(clean.engine, [up, down])
    assert_dtypes(frame)
    assert list(frame["name"]) == [up] and list(frame["id"]) == [up_id]
    assert before - timedelta(seconds=3) <= frame["ts"].iloc[0] <= datetime.now(UTC)
    assert frame["mem_limit"].iloc[0] > 0 and frame["pids"].iloc[0] == 1


@pytest.mark.engine
def test_a_container_stopping_during_the_snapshot_is_skipped(clean: Any, demo: Any) -> None:
    short, long = unique("stats-short"), unique("stats-long")
    run_container(clean, long, ["sleep", "3600"])
    run_container(clean, short, ["sleep", "0.3"])  # exits while the engine gathers samples
    frame = stats_snapshot(clean.engine, [short, long])
    assert list(frame["name"]) == [long]
    assert clean.engine.api.inspect_container(short)["State"]["Status"] == "exited"


def test_an_empty_answer_means_the_container_stopped() -> None:
    import docker.errors
    import requests

    from opskit.targets import Ref

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


@pytest.mark.engine
def test_service_target_and_several_clients(clean: Any, demo: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    svc = unique("stats-svc")
    done = clean.deploy(opskit.ServiceSpec(name=svc, image=IMAGE, replicas=2,
                                           command=["sleep", "3600"],
                                           healthcheck={"test": ["NONE"]}), wait="running")
    spares: list[Any] = []
    real = stats_mod.spare_client
    monkeypatch.setattr(stats_mod, "POOL_SIZE", 1)  # 2 containers > 1: a spare client is used
    monkeypatch.setattr(stats_mod, "spare_client",
                        lambda engine, **kw: spares.append(real(engine, **kw)) or spares[-1])
    frame = stats_snapshot(clean.engine, svc)
    assert list(frame["name"]) == sorted(done.containers) and len(frame) == 2
    assert len(spares) == 1 and spares[0] is not clean.engine.api
    assert_dtypes(frame)


@pytest.mark.engine
def test_every_running_container_by_default(clean: Any, demo: Any) -> None:
    name = unique("stats-all")
    run_container(clean, name, ["sleep", "3600"])
    frame = stats_snapshot(clean.engine)
    assert name in set(frame["name"])
    assert frame["name"].is_monotonic_increasing


@pytest.mark.engine
def test_unknown_target_raises_container_not_found(clean: Any) -> None:
    with pytest.raises(opskit.ContainerNotFound) as caught:
        stats_snapshot(clean.engine, ["no-such-container-" + SESSION])
    assert clean.engine.host in str(caught.value)
    assert_dtypes(stats_snapshot(clean.engine, []))


@pytest.mark.engine
def test_snapshot_timeout_names_the_host(clean: Any, demo: Any) -> None:
    name = unique("stats-slow")
    run_container(clean, name, ["sleep", "3600"])
    started = time.monotonic()
    with pytest.raises(opskit.EngineUnavailable) as caught:
        stats_snapshot(clean.engine, name, timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert clean.engine.host in str(caught.value) and "Hint:" in str(caught.value)


def test_unreachable_engine_is_engine_unavailable() -> None:
    import docker

    host = "unix:///nonexistent/docker.sock"
    engine = Engine(client=docker.DockerClient(base_url=host, version="1.41", timeout=2),
                    host=host, scope="x", key=b"k", timeout=2.0)
    with pytest.raises(opskit.EngineUnavailable) as caught:
        stats_snapshot(engine)
    assert host in str(caught.value)


def test_stats_modules_import_no_pandas() -> None:
    code = ("import sys, opskit, opskit.stats, opskit.collector, opskit.statsframe; "
            "print(','.join(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- statsframe, no engine -------------------------------------------------------------------


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
