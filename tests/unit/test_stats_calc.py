"""Tests of opskit.records.stats_calc on stats payloads recorded from a real engine.

The ``stats_v1_*`` files were recorded from dockerd 20.10 (API 1.41, cgroup v1, 2 CPUs); the
``stats_v2_*`` files were written by hand from the Engine API schema for a cgroup v2 host (see
tests/payloads/manifest.json). Expected numbers are computed here from the recorded fields,
which each test first checks are the ones it expects. No engine is needed.

CLI check: ``docker stats --no-stream`` ran at the same moment as the recording (cli_stats_v1.json)
and read the same engine sample as stats_v1_busy_2.json and stats_v1_idle.json. It printed
``50.62%`` and ``352KiB / 64MiB`` (0.54 %) for the busy container and ``1.55%`` and
``780KiB / 23.54GiB`` for the idle one; the functions give 50.6246 %, 360448 B (0.537 %),
1.5484 % and 798720 B: equal up to the CLI's rounding.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from opskit.base.errors import EngineError, OpsKitError
from opskit.records import stats_calc
from opskit.records.stats_calc import (
    block_io,
    cpu_percent,
    is_empty,
    memory_limit,
    memory_percent,
    memory_used,
    network_bytes,
    pids,
    read_time,
    stats_row,
)
from tests.support.paths import PAYLOADS


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def cpu_fields(payload: dict[str, Any], key: str = "cpu_stats") -> tuple[int, int]:
    section = payload[key]
    return section["cpu_usage"]["total_usage"], section["system_cpu_usage"]


# --- CPU % -------------------------------------------------------------------------------


def test_cpu_percent_v1_uses_precpu_stats_of_the_same_payload() -> None:
    p = load("stats_v1_busy_2.json")
    assert cpu_fields(p) == (3867194892, 751940000000)
    assert cpu_fields(p, "precpu_stats") == (3366011663, 749960000000)
    assert p["cpu_stats"]["online_cpus"] == 2
    expected = (3867194892 - 3366011663) / (751940000000 - 749960000000) * 2 * 100
    assert cpu_percent(p) == pytest.approx(expected, rel=1e-12)
    assert cpu_percent(p) == pytest.approx(50.6245686, abs=1e-6)  # nano_cpus = 0.5 CPU


def test_cpu_percent_v1_first_sample() -> None:
    p = load("stats_v1_busy_1.json")
    assert cpu_fields(p) == (2865286404, 747980000000)
    assert cpu_fields(p, "precpu_stats") == (2365684315, 745990000000)
    expected = (2865286404 - 2365684315) / (747980000000 - 745990000000) * 2 * 100
    assert cpu_percent(p) == pytest.approx(expected, rel=1e-12)


def test_cpu_percent_one_shot_has_no_baseline() -> None:
    # one_shot=True: the engine zeroes precpu_stats and omits its system_cpu_usage.
    p = load("stats_v1_busy_oneshot_1.json")
    assert p["preread"] == "0001-01-01T00:00:00Z"
    assert p["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert "system_cpu_usage" not in p["precpu_stats"]
    assert cpu_percent(p) == 0.0


def test_cpu_percent_one_shot_with_previous_sample_kept_by_the_client() -> None:
    first = load("stats_v1_busy_oneshot_1.json")
    second = load("stats_v1_busy_oneshot_2.json")
    assert cpu_fields(first) == (4367032457, 753950000000)
    assert cpu_fields(second) == (4863907721, 755930000000)
    expected = (4863907721 - 4367032457) / (755930000000 - 753950000000) * 2 * 100
    assert cpu_percent(second, first) == pytest.approx(expected, rel=1e-12)
    assert 45 < cpu_percent(second, first) < 55


def test_cpu_percent_prev_overrides_precpu_stats() -> None:
    prev = load("stats_v1_busy_2.json")
    cur = load("stats_v1_busy_oneshot_1.json")
    expected = (4367032457 - 3867194892) / (753950000000 - 751940000000) * 2 * 100
    assert cpu_percent(cur, prev) == pytest.approx(expected, rel=1e-12)


def test_cpu_percent_zero_and_negative_deltas() -> None:
    p = load("stats_v1_busy_2.json")
    assert cpu_percent(p, p) == 0.0  # both deltas 0
    assert cpu_percent(load("stats_v1_busy_1.json"), p) == 0.0  # prev is newer: negative
    idle_cpu = copy.deepcopy(p)
    idle_cpu["precpu_stats"]["cpu_usage"]["total_usage"] = 3867194892  # container delta 0
    assert cpu_percent(idle_cpu) == 0.0
    # Counters reset by a restart: the container delta is negative, the system one is not.
    restarted = load("stats_v1_idle.json")
    assert cpu_fields(restarted) == (237004104, 759920000000)
    assert cpu_percent(restarted, p) == 0.0
    frozen_clock = copy.deepcopy(p)
    frozen_clock["precpu_stats"]["system_cpu_usage"] = 751940000000  # system delta 0
    assert cpu_percent(frozen_clock) == 0.0


def test_cpu_percent_missing_data() -> None:
    p = load("stats_v1_busy_2.json")
    no_precpu = {k: v for k, v in p.items() if k != "precpu_stats"}
    assert cpu_percent(no_precpu) == 0.0
    assert cpu_percent({}) == 0.0
    assert cpu_percent(p, {}) == 0.0


def test_cpu_percent_falls_back_to_percpu_usage_length() -> None:
    p = load("stats_v1_busy_2.json")
    assert len(p["cpu_stats"]["cpu_usage"]["percpu_usage"]) == 2
    expected = (3867194892 - 3366011663) / (751940000000 - 749960000000) * 2 * 100
    no_online = copy.deepcopy(p)
    del no_online["cpu_stats"]["online_cpus"]
    assert cpu_percent(no_online) == pytest.approx(expected, rel=1e-12)
    zero_online = copy.deepcopy(p)
    zero_online["cpu_stats"]["online_cpus"] = 0  # the CLI treats 0 as "not sent"
    assert cpu_percent(zero_online) == pytest.approx(expected, rel=1e-12)
    # The list's length counts, not the CPUs that were busy: a third (idle) entry gives x 3.
    three = copy.deepcopy(no_online)
    three["cpu_stats"]["cpu_usage"]["percpu_usage"].append(0)
    assert cpu_percent(three) == pytest.approx(expected / 2 * 3, rel=1e-12)
    neither = copy.deepcopy(no_online)
    del neither["cpu_stats"]["cpu_usage"]["percpu_usage"]
    assert cpu_percent(neither) == 0.0


def test_cpu_percent_v2_has_no_percpu_usage() -> None:
    p = load("stats_v2_busy.json")
    assert "percpu_usage" not in p["cpu_stats"]["cpu_usage"]
    assert p["cpu_stats"]["online_cpus"] == 4
    expected = (18402611000 - 17901124000) / (9436270000000 - 9432260000000) * 4 * 100
    assert cpu_percent(p) == pytest.approx(expected, rel=1e-12)
    idle = load("stats_v2_idle.json")
    expected_idle = (3251804000 - 3242096000) / (9444290000000 - 9440280000000) * 4 * 100
    assert cpu_percent(idle) == pytest.approx(expected_idle, rel=1e-12)


# --- memory ------------------------------------------------------------------------------


def test_memory_v1_subtracts_total_inactive_file() -> None:
    mem = load("stats_v1_idle.json")["memory_stats"]
    assert (mem["usage"], mem["stats"]["total_inactive_file"]) == (9187328, 8388608)
    assert memory_used(mem) == 9187328 - 8388608 == 798720  # 780 KiB, as the CLI printed
    assert memory_limit(mem) == 25276514304
    assert memory_percent(mem) == pytest.approx(798720 / 25276514304 * 100, rel=1e-12)


def test_memory_v1_total_inactive_file_wins_over_inactive_file() -> None:
    mem = copy.deepcopy(load("stats_v1_idle.json")["memory_stats"])
    mem["stats"]["inactive_file"] = 0
    assert memory_used(mem) == 798720


def test_memory_v1_busy_with_no_page_cache() -> None:
    mem = load("stats_v1_busy_2.json")["memory_stats"]
    assert (mem["usage"], mem["stats"]["total_inactive_file"]) == (360448, 0)
    assert memory_used(mem) == 360448
    assert memory_limit(mem) == 64 * 1024 * 1024
    assert memory_percent(mem) == pytest.approx(360448 / 67108864 * 100, rel=1e-12)


def test_memory_v2_subtracts_inactive_file() -> None:
    busy = load("stats_v2_busy.json")["memory_stats"]
    assert "total_inactive_file" not in busy["stats"]
    assert (busy["usage"], busy["stats"]["inactive_file"]) == (1187840, 45056)
    assert memory_used(busy) == 1187840 - 45056
    assert memory_percent(busy) == pytest.approx((1187840 - 45056) / 67108864 * 100, rel=1e-12)
    idle = load("stats_v2_idle.json")["memory_stats"]
    assert memory_used(idle) == 14680064 - 8388608
    assert memory_limit(idle) == 8232431616


def test_memory_used_conditions_match_the_cli() -> None:
    # v1 key present but not below usage: the CLI falls through to inactive_file.
    assert memory_used({"usage": 100, "stats": {"total_inactive_file": 150,
                                                "inactive_file": 30}}) == 70
    assert memory_used({"usage": 100, "stats": {"total_inactive_file": 100,
                                                "inactive_file": 100}}) == 100
    assert memory_used({"usage": 100, "stats": {"total_inactive_file": 0}}) == 100
    assert memory_used({"usage": 100, "stats": {"inactive_file": 120}}) == 100
    assert memory_used({"usage": 100, "stats": {}}) == 100
    assert memory_used({"usage": 100}) == 100
    assert memory_used({}) == 0


def test_memory_percent_zero_limit() -> None:
    assert memory_percent({"usage": 4096, "limit": 0}) == 0.0
    assert memory_percent({}) == 0.0
    assert memory_limit({}) == 0


# --- network, block I/O, pids ------------------------------------------------------------


def test_network_bytes() -> None:
    assert network_bytes(load("stats_v1_busy_2.json")) == (806, 0)  # the CLI said 806B / 0B
    two = load("stats_v2_idle.json")
    assert sorted(two["networks"]) == ["eth0", "eth1"]
    assert network_bytes(two) == (2398 + 5120, 1024 + 384)
    assert network_bytes(load("stats_v1_stopped.json")) == (0, 0)
    assert network_bytes({"networks": None}) == (0, 0)


def test_block_io_v2_lowercase_ops_over_devices() -> None:
    assert block_io(load("stats_v2_busy.json")) == (1228800, 8192)
    assert block_io(load("stats_v2_idle.json")) == (4517888 + 4096, 8392704 + 0)


def test_block_io_v1_capitalised_ops_skip_sync_async_total() -> None:
    payload = {"blkio_stats": {"io_service_bytes_recursive": [
        {"major": 254, "minor": 0, "op": "Read", "value": 4096},
        {"major": 254, "minor": 0, "op": "Write", "value": 8192},
        {"major": 254, "minor": 0, "op": "Sync", "value": 12288},
        {"major": 254, "minor": 0, "op": "Async", "value": 0},
        {"major": 254, "minor": 0, "op": "Discard", "value": 0},
        {"major": 254, "minor": 0, "op": "Total", "value": 12288},
        {"major": 253, "minor": 0, "op": "READ", "value": 100},
        {"major": 253, "minor": 0, "op": "write", "value": 200},
        {"major": 253, "minor": 0, "op": "", "value": 999},
    ]}}
    assert block_io(payload) == (4096 + 100, 8192 + 200)


def test_block_io_empty_and_null_lists() -> None:
    recorded = load("stats_v1_busy_2.json")
    assert recorded["blkio_stats"]["io_service_bytes_recursive"] == []  # see manifest notes
    assert block_io(recorded) == (0, 0)
    stopped = load("stats_v1_stopped.json")
    assert stopped["blkio_stats"]["io_service_bytes_recursive"] is None
    assert block_io(stopped) == (0, 0)
    assert block_io({}) == (0, 0)


def test_pids() -> None:
    assert pids(load("stats_v1_busy_2.json")) == 1
    assert pids(load("stats_v2_idle.json")) == 3
    assert pids(load("stats_v1_stopped.json")) == 0


# --- stopped container, time, row --------------------------------------------------------


def test_is_empty() -> None:
    stopped = load("stats_v1_stopped.json")
    assert stopped["read"] == "0001-01-01T00:00:00Z"
    assert is_empty(stopped)
    assert not is_empty(load("stats_v1_busy_1.json"))
    assert not is_empty(load("stats_v2_busy.json"))
    assert is_empty({})


def test_stopped_container_gives_zeros() -> None:
    stopped = load("stats_v1_stopped.json")
    row = stats_row(stopped)
    assert row["ts"] == datetime(1, 1, 1, tzinfo=UTC)
    assert row["name"] == "opskit-payload-idle"
    assert row["id"] == "f2346d7cefb9045ea423fd8b6bf78e807b821e4396b3d62e93d050f884867082"
    numbers = {k: v for k, v in row.items() if k not in ("ts", "id", "name")}
    assert numbers == {"cpu_pct": 0.0, "mem_used": 0, "mem_limit": 0, "mem_pct": 0.0,
                       "net_rx": 0, "net_tx": 0, "blk_read": 0, "blk_write": 0, "pids": 0}


def test_read_time_truncates_nanoseconds_to_utc() -> None:
    p = load("stats_v1_busy_2.json")
    assert p["read"] == "2026-11-26T11:23:38.483912033Z"
    assert read_time(p) == datetime(2026, 11, 26, 11, 23, 38, 483912, tzinfo=UTC)
    offset = read_time({"read": "2026-11-26T12:23:38.1+01:00"})
    assert offset == datetime(2026, 11, 26, 11, 23, 38, 100000, tzinfo=UTC)
    assert offset.tzinfo is UTC


@pytest.mark.parametrize("bad", [None, "", "yesterday", 1795692218])
def test_read_time_rejects_garbage(bad: object) -> None:
    with pytest.raises(EngineError) as info:
        read_time({"read": bad})
    assert isinstance(info.value, OpsKitError)
    assert "read" in str(info.value) and "Hint:" in str(info.value)


def test_stats_row_v1_busy() -> None:
    p = load("stats_v1_busy_2.json")
    row = stats_row(p)
    assert set(row) == {"ts", "id", "name", "cpu_pct", "mem_used", "mem_limit", "mem_pct",
                        "net_rx", "net_tx", "blk_read", "blk_write", "pids"}
    assert row["ts"] == datetime(2026, 11, 26, 11, 23, 38, 483912, tzinfo=UTC)
    assert row["id"] == "93d9a0582ee8b93bc1f993f9dd8b25f72eae6e1f3c738230a293ef0e53b3f6c2"
    assert row["name"] == "opskit-payload-busy"
    assert row["cpu_pct"] == pytest.approx(
        (3867194892 - 3366011663) / (751940000000 - 749960000000) * 2 * 100, rel=1e-12)
    assert (row["mem_used"], row["mem_limit"]) == (360448, 67108864)
    assert row["mem_pct"] == pytest.approx(360448 / 67108864 * 100, rel=1e-12)
    assert (row["net_rx"], row["net_tx"], row["blk_read"], row["blk_write"], row["pids"]) == (
        806, 0, 0, 0, 1)
    for key in ("mem_used", "mem_limit", "net_rx", "net_tx", "blk_read", "blk_write", "pids"):
        assert type(row[key]) is int, key


def test_stats_row_v2_idle() -> None:
    row = stats_row(load("stats_v2_idle.json"))
    assert row["name"] == "opskit-v2-idle"
    assert row["ts"] == datetime(2026, 11, 26, 12, 0, 4, 118896, tzinfo=UTC)
    assert row["cpu_pct"] == pytest.approx(9708000 / 4010000000 * 4 * 100, rel=1e-12)
    assert (row["mem_used"], row["mem_limit"]) == (6291456, 8232431616)
    assert (row["net_rx"], row["net_tx"]) == (7518, 1408)
    assert (row["blk_read"], row["blk_write"]) == (4521984, 8392704)
    assert row["pids"] == 3


def test_stats_row_prev_and_ts_override() -> None:
    first = load("stats_v1_busy_oneshot_1.json")
    second = load("stats_v1_busy_oneshot_2.json")
    assert stats_row(second)["cpu_pct"] == 0.0
    row = stats_row(second, first, ts=datetime(2026, 11, 26, 12, 0, 0))  # naive: UTC
    assert row["cpu_pct"] == pytest.approx(496875264 / 1980000000 * 2 * 100, rel=1e-12)
    assert row["ts"] == datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    cet = timezone(timedelta(hours=1))
    row = stats_row(second, ts=datetime(2026, 11, 26, 13, 0, 0, tzinfo=cet))
    assert row["ts"] == datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert row["ts"].utcoffset() == timedelta(0)


# --- the CLI, read at the same moment ----------------------------------------------------

_UNITS = {"B": 1, "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3,
          "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def _size(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]+)", text.strip())
    assert match, text
    return float(match.group(1)) * _UNITS[match.group(2)]


@pytest.mark.parametrize("index", [0, 1])
def test_matches_docker_stats_cli_from_the_same_sample(index: int) -> None:
    record = load("cli_stats_v1.json")["rows"][index]
    payload = load(record["payload"])
    assert payload["read"] == record["payload_read"]
    cli = record["cli"]
    row = stats_row(payload)
    assert cli["Name"] == row["name"]
    cli_cpu = float(cli["CPUPerc"].rstrip("%"))
    assert abs(row["cpu_pct"] - cli_cpu) <= 0.006  # the CLI prints 2 decimals
    used_text, limit_text = cli["MemUsage"].split(" / ")
    assert row["mem_used"] == pytest.approx(_size(used_text), rel=0.01)
    assert row["mem_limit"] == pytest.approx(_size(limit_text), rel=0.01)
    assert abs(row["mem_pct"] - float(cli["MemPerc"].rstrip("%"))) <= 0.006
    rx_text, tx_text = cli["NetIO"].split(" / ")
    assert (row["net_rx"], row["net_tx"]) == (_size(rx_text), _size(tx_text))
    assert row["pids"] == int(cli["PIDs"])


# --- module hygiene ----------------------------------------------------------------------


def test_all_lists_the_public_names() -> None:
    public = {n for n in vars(stats_calc) if not n.startswith("_")
              and getattr(getattr(stats_calc, n), "__module__", "") == stats_calc.__name__}
    assert set(stats_calc.__all__) == public


def test_no_docker_import() -> None:
    code = ("import sys, opskit.records.stats_calc, opskit.records.event_records; "
            "sys.exit(1 if 'docker' in sys.modules or 'pandas' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
