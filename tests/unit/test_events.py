"""Tests of opskit.observe.events and opskit.records.journal_file with no engine: frames from
recorded payloads, the journal format, the gap rule.

They read the recorded payloads: events_v141.json, and events_v152.json in a newer engine's
shape, without ``status``, ``id`` and ``from`` (only ``Type``, ``Action``, ``Actor`` and
``timeNano`` are read, so both give the same rows). The engine's own replay read through
events_frame() is tested in ../engine/test_events.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from opskit.engine import events as wire
from opskit.observe import events
from opskit.records.event_records import event_key, parse_event
from opskit.records.journal_file import (
    JournalFile,
    Record,
    StateTable,
    Subscription,
    _mask_attributes,
    gap_reason,
    iter_records,
    repair_tail,
)
from tests.support.frames import EVENT_DTYPES as DTYPES
from tests.support.paths import PAYLOADS

IDLE = "f2346d7cefb9045ea423fd8b6bf78e807b821e4396b3d62e93d050f884867082"
BUSY = "93d9a0582ee8b93bc1f993f9dd8b25f72eae6e1f3c738230a293ef0e53b3f6c2"


def load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((PAYLOADS / name).read_text())
    return data


def records(name: str, host: str = "local") -> list[Record]:
    return [Record.from_event(parse_event(p, host=host)) for p in load(name)]


def test_import_pulls_in_no_pandas() -> None:
    code = ("import sys, opskit.observe.journal, opskit.observe.events, "
            "opskit.records.journal_file; print('pandas' in sys.modules, 'pyarrow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("name", ["events_v141.json", "events_v152.json"])
def test_frame_from_payloads_columns_and_dtypes(name: str) -> None:
    frame = events.frame_from_payloads(load(name), host="local")
    assert {c: str(t) for c, t in frame.dtypes.items()} == DTYPES
    assert (frame["kind"] == "event").all() and (frame["host"] == "local").all()
    assert frame["time_nano"].is_monotonic_increasing
    health = frame[frame["base_action"] == "health_status"]
    assert set(health["detail"]) == {"healthy", "unhealthy"}
    dies = frame[frame["base_action"] == "die"]
    assert dies["exit_code"].tolist() == [137, 137, 137]
    assert frame.loc[frame["base_action"] != "die", "exit_code"].isna().all()
    assert frame.loc[0, "ts"].value == frame.loc[0, "time_nano"]


def test_newer_shape_gives_the_same_rows() -> None:
    old = events.frame_from_payloads(load("events_v141.json"))
    new = events.frame_from_payloads(load("events_v152.json"))
    keys_old = set(zip(old["time_nano"], old["action"].astype(str), old["actor_id"], strict=True))
    keys_new = set(zip(new["time_nano"], new["action"].astype(str), new["actor_id"], strict=True))
    assert keys_new <= keys_old and len(keys_new) == len(new) == 35
    cols = ["time_nano", "actor_id", "exit_code"]
    merged = new[cols].merge(old[cols], on=["time_nano", "actor_id"], suffixes=("", "_old"))
    assert (merged["exit_code"].fillna(-1) == merged["exit_code_old"].fillna(-1)).all()


def test_secret_looking_labels_are_masked() -> None:
    attrs = {"name": "web", "db_password": "CANARY1", "api_TOKEN": "CANARY2",
             "Secret": "CANARY3", "aws.access-key": "CANARY4", "credentials": "CANARY5",
             "io.opskit.scope": "default", "empty_token": ""}
    masked = _mask_attributes(attrs)
    assert masked == {**attrs, "db_password": "***", "api_TOKEN": "***", "Secret": "***",
                      "aws.access-key": "***", "credentials": "***"}
    payload = {"Type": "container", "Action": "create", "timeNano": 1,
               "Actor": {"ID": "a" * 64, "Attributes": attrs}}
    line = Record.from_event(parse_event(payload)).to_line()
    assert "CANARY" not in line and line.endswith("}\n")


def test_journal_file_round_trip_and_fast_read(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    jf = JournalFile(path)
    jf.open()
    recs = records("events_v141.json")
    gap = Record(time_nano=recs[-1].time_nano + 1, type="journal", action="gap", kind="gap",
                 host="local", attributes={"reason": "engine restarted"})
    assert jf.append(recs) and jf.append([gap])
    jf.close()
    assert [r.key for r in iter_records(path)] == [r.key for r in [*recs, gap]]
    frame = events.read_journal(path)
    assert {c: str(t) for c, t in frame.dtypes.items()} == DTYPES
    assert len(frame) == len(recs) + 1 and frame["kind"].tolist()[-1] == "gap"
    expected = events.records_frame([*recs, gap])
    assert frame.drop(columns="attributes").equals(expected.drop(columns="attributes"))
    assert frame["attributes"].tolist() == expected["attributes"].tolist()


def test_read_journal_100k_lines_and_a_damaged_line(tmp_path: Path) -> None:
    base = records("events_v141.json")
    path = tmp_path / "big.jsonl"
    lines = [r.to_line() for r in base]
    with open(path, "w") as fh:
        fh.writelines(lines * (100_000 // len(base) + 1))
    n = path.read_bytes().count(b"\n")
    started = time.perf_counter()
    frame = events.read_journal(path)
    took = time.perf_counter() - started
    assert len(frame) == n >= 100_000
    assert frame["attributes"].iloc[-1] == dict(base[-1].attributes)
    print(f"read_journal: {n} lines in {took:.3f}s")
    with open(path, "a") as fh:
        fh.write('{"time_nano": "not json\n')
        fh.write(lines[0])
    frame = events.read_journal(path)  # the fast path refuses, the slow one skips the line
    assert len(frame) == n + 1


def test_repair_tail_cuts_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    good = records("events_v152.json")[:3]
    path.write_text("".join(r.to_line() for r in good) + good[0].to_line()[:40])
    assert repair_tail(path) == 40
    assert [r.key for r in iter_records(path)] == [r.key for r in good]
    assert repair_tail(path) == 0


def test_append_failure_leaves_no_torn_line(tmp_path: Path) -> None:
    jf = JournalFile(tmp_path / "j.jsonl")
    jf.open()
    jf._fd, real = None, jf._fd
    assert not jf.append(records("events_v152.json")[:2])  # closed: refused, nothing written
    jf._fd = real
    full = JournalFile(Path("/dev/full"))
    full._fd = os.open("/dev/full", os.O_WRONLY)
    assert not full.append(records("events_v152.json")[:2]) and full.errors == 1
    assert "No space" in full.last_error and full._pending
    full.close()
    jf.close()


def test_merge_drops_duplicates_and_keeps_journal_records() -> None:
    recs = records("events_v141.json")
    journal = events.records_frame([*recs[:40], Record(
        time_nano=recs[39].time_nano + 1, type="journal", action="gap", kind="gap",
        host="local", attributes={"reason": "engine restarted"})])
    replay = events.frame_from_payloads(load("events_v141.json")[30:], host="local")
    merged = events.merge_frames(journal, replay)
    assert len(merged) == len(recs) + 1
    assert merged["time_nano"].is_monotonic_increasing
    assert merged["kind"].value_counts().to_dict() == {"event": len(recs), "gap": 1}
    assert {c: str(t) for c, t in merged.dtypes.items()} == DTYPES
    assert events.merge_frames().empty


def test_state_table_from_events_and_reconcile() -> None:
    table = StateTable()
    recs = records("events_v141.json")
    for rec in recs[:10]:
        table.apply(rec)
    assert table.states[IDLE]["state"] == "running"
    assert table.states[IDLE]["health"] == "healthy"
    assert table.states[BUSY]["name"] == "opskit-payload-busy"
    listing = [{"Id": IDLE, "Names": ["/opskit-payload-idle"], "State": "exited",
                "Image": "x"},
               {"Id": "c" * 64, "Names": ["/newcomer"], "State": "created", "Image": "x"}]
    diff = table.diff(listing, 5, "local")
    by_id = {r.actor_id: r for r in diff}
    assert by_id[IDLE].attributes["state"] == "exited"
    assert by_id[IDLE].attributes["previous"] == "running"
    assert by_id["c" * 64].attributes == {"state": "created", "previous": "unknown", "image": "x"}
    assert by_id[BUSY].attributes["state"] == "removed"  # vanished from docker ps -a
    assert all(r.kind == "reconcile" and r.base_action == "reconcile" for r in diff)
    for rec in diff:
        table.apply(rec)
    assert table.diff(listing, 6, "local") == []
    table = StateTable()
    for rec in recs:
        table.apply(rec)
    assert {s["state"] for s in table.states.values()} == {"removed"}
    oom = [s for s in table.states.values() if s.get("oom")]
    assert len(oom) == 1 and oom[0]["exit_code"] == 137


@pytest.mark.parametrize(("kw", "expected"), [
    ({"last_key": (1, "c", "die", "x"), "replay_keys": {(1, "c", "die", "x")}, "replayed": 300},
     None),
    ({"last_key": (1, "c", "die", "x"), "replay_keys": set(), "replayed": 256},
     ("engine buffer overrun (256 events)", False)),
    ({"last_key": (1, "c", "die", "x"), "replay_keys": set(), "replayed": 3},
     ("engine restarted", True)),
    ({"last_key": (1, "c", "die", "x"), "replay_keys": set(), "replayed": 300, "down": True},
     ("engine restarted", True)),
    ({"last_key": None, "replay_keys": set(), "replayed": 12}, None),
    ({"last_key": None, "replay_keys": set(), "replayed": 12, "down": True},
     ("engine restarted", True)),
    ({"last_key": None, "replay_keys": set(), "replayed": 12, "filtered": True},
     ("stream ended; events may be missing", False)),
    ({"last_key": (1, "c", "die", "x"), "replay_keys": set(), "replayed": 3, "first": True},
     ("journal was not running; the engine no longer holds its last event", True)),
])
def test_gap_rule(kw: dict[str, Any], expected: tuple[str, bool] | None) -> None:
    args = {"filtered": False, "down": False, "other_engine": False, "first": False, **kw}
    assert gap_reason(**args) == expected


class _Owner:
    engine = type("E", (), {"host": "local"})()

    def _unsubscribe(self, sub: Subscription) -> None:
        pass


def test_slow_subscription_gets_one_gap_and_never_blocks() -> None:
    sub = Subscription(_Owner(), maxsize=10)
    recs = records("events_v141.json")
    started = time.monotonic()
    for rec in recs:  # 68 records into a queue of 10: never blocks
        sub._offer(rec)
    assert time.monotonic() - started < 1.0
    got = [sub.get(timeout=0.1) for _ in range(11)]
    assert [r.key for r in got[:10] if r] == [r.key for r in recs[:10]]
    gap = got[10]
    assert gap is not None and gap.kind == "gap"
    assert gap.attributes == {"reason": "subscriber overflow", "dropped": "58"}
    assert gap.time_nano == recs[10].time_nano and sub.dropped_total == 58
    assert sub.get(timeout=0.05) is None
    for rec in recs[:15]:  # overflow again; after draining half, the gap comes first
        sub._offer(rec)
    for _ in range(6):
        sub.get(timeout=0.1)
    sub._offer(recs[20])
    rest = []
    while (r := sub.get(timeout=0.05)) is not None:
        rest.append(r)
    assert [r.kind for r in rest] == ["event"] * 4 + ["gap", "event"]
    assert rest[4].attributes["dropped"] == "5"
    sub.close()
    sub.close()
    assert list(sub) == []


def test_wire_helpers() -> None:
    assert wire.api_time(1_795_692_210_000_000_005) == "1795692210.000000005"
    assert wire.parse_system_time("2026-11-26T11:33:41.123456789Z") % 10**9 == 123456789
    assert wire.parse_system_time("2026-11-26T12:33:41+01:00") % 10**9 == 0
    with pytest.raises(ValueError):
        wire.parse_system_time("yesterday")
    key = event_key(parse_event(load("events_v152.json")[0]))
    assert key == records("events_v152.json")[0].key
