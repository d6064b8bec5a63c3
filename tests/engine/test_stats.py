"""Tests of opskit.observe.stats: snapshots on the real engine.

The comparison with ``docker stats --no-stream`` runs the CLI and the snapshot at the same
moment: the engine samples once a second and hands that sample to every subscriber, so both
usually read the same numbers; the tolerances (5 CPU points, 1 % of memory) cover the CLI's
rounding and the odd case where the two calls straddle an engine tick.

What needs no engine (opskit.records.statsframe, fetch_stats on a fake API, an unreachable
engine) is tested in ../unit/test_stats.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import opskit
from opskit.observe import stats as stats_mod
from opskit.observe.stats import stats_snapshot
from opskit.records.statsframe import COLUMNS
from tests.support.frames import STATS_DTYPES as DTYPES
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine

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


def test_a_container_stopping_during_the_snapshot_is_skipped(clean: Any, demo: Any) -> None:
    short, long = unique("stats-short"), unique("stats-long")
    run_container(clean, long, ["sleep", "3600"])
    run_container(clean, short, ["sleep", "0.3"])  # exits while the engine gathers samples
    frame = stats_snapshot(clean.engine, [short, long])
    assert list(frame["name"]) == [long]
    assert clean.engine.api.inspect_container(short)["State"]["Status"] == "exited"


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


def test_every_running_container_by_default(clean: Any, demo: Any) -> None:
    name = unique("stats-all")
    run_container(clean, name, ["sleep", "3600"])
    frame = stats_snapshot(clean.engine)
    assert name in set(frame["name"])
    assert frame["name"].is_monotonic_increasing


def test_unknown_target_raises_container_not_found(clean: Any) -> None:
    with pytest.raises(opskit.ContainerNotFound) as caught:
        stats_snapshot(clean.engine, ["no-such-container-" + SESSION])
    assert clean.engine.host in str(caught.value)
    assert_dtypes(stats_snapshot(clean.engine, []))


def test_snapshot_timeout_names_the_host(clean: Any, demo: Any) -> None:
    name = unique("stats-slow")
    run_container(clean, name, ["sleep", "3600"])
    started = time.monotonic()
    with pytest.raises(opskit.EngineUnavailable) as caught:
        stats_snapshot(clean.engine, name, timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert clean.engine.host in str(caught.value) and "Hint:" in str(caught.value)
