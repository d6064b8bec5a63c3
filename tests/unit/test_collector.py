"""Tests of opskit.observe.collector's parts that need no engine: an unreachable engine
fails at start, bad arguments are refused, and the downsampler keeps one row per interval
from recorded stats payloads.

Continuous sampling on the real engine is in ../engine/test_collector.py.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import docker
import pytest

import opskit
from opskit.engine.connection import Engine
from opskit.observe.collector import Collector
from opskit.observe.stats import Downsampler
from opskit.records.stats_calc import cpu_percent
from tests.support.paths import PAYLOADS


def test_unreachable_engine_raises_at_start() -> None:
    host = "unix:///nonexistent/docker.sock"
    engine = Engine(client=docker.DockerClient(base_url=host, version="1.41", timeout=2),
                    host=host, scope="x", key=b"k", timeout=2.0)
    col = Collector(engine)
    with pytest.raises(opskit.EngineUnavailable) as caught:
        col.start()
    assert host in str(caught.value) and not col.running
    col.stop()  # harmless


def test_bad_arguments_are_invalid_spec() -> None:
    engine: Any = object()
    with pytest.raises(opskit.InvalidSpec):
        Collector(engine, interval=0)
    with pytest.raises(opskit.InvalidSpec):
        Collector(engine, max_rows=0)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def at(payload: dict[str, Any], when: datetime) -> dict[str, Any]:
    moved = copy.deepcopy(payload)
    moved["read"] = when.isoformat().replace("+00:00", "Z")
    return moved


def test_downsampler_first_payload_is_only_the_baseline() -> None:
    one, two = load("stats_v1_busy_1.json"), load("stats_v1_busy_2.json")
    down = Downsampler(1.0)
    assert down.feed(one) is None
    row = down.feed(two)
    assert row is not None and row["cpu_pct"] == pytest.approx(cpu_percent(two, one))
    assert row["ts"].tzinfo is not None


def test_downsampler_keeps_one_row_per_interval() -> None:
    base = datetime(2026, 11, 26, 12, 0, 0, 500_000, tzinfo=UTC)
    one = load("stats_v1_busy_1.json")
    down = Downsampler(5.0)
    kept = [i for i in range(21) if down.feed(at(one, base + timedelta(seconds=i))) is not None]
    assert kept == [5, 10, 15, 20]  # the first sample of each 5 s slot (…:05, :10, …)
