"""Tests of opskit.records.event_records on events recorded from a real engine.

events_v141.json holds every event of one recorded run on dockerd 20.10 (API 1.41): image tag,
create, start, healthcheck probes (exec_create/exec_start/exec_die), health_status healthy
and unhealthy, an exec, kill 9 + die 137, stop (kill 15, kill 9, die 137, stop), an OOM kill
(oom, die 137) and destroy. events_v152.json is the same run in the shape of API 1.52, which
no longer sends status, id and from: only Type, Action, Actor and timeNano are read, so both
shapes parse alike. No engine is needed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opskit.base.errors import EngineError, OpsKitError
from opskit.records import event_records
from opskit.records.event_records import Event, event_key, parse_event
from tests.support.paths import PAYLOADS

BUSY = "93d9a0582ee8b93bc1f993f9dd8b25f72eae6e1f3c738230a293ef0e53b3f6c2"
IDLE = "f2346d7cefb9045ea423fd8b6bf78e807b821e4396b3d62e93d050f884867082"
OOM = "e643a0e002630611c25862fd6ec515fffd4bb07f7616fdbfae315ba2d325f942"


def load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((PAYLOADS / name).read_text())
    return data


@pytest.fixture(scope="module")
def v141() -> list[dict[str, Any]]:
    return load("events_v141.json")


@pytest.fixture(scope="module")
def events(v141: list[dict[str, Any]]) -> list[Event]:
    return [parse_event(p, host="local") for p in v141]


def test_every_recorded_event_parses(v141: list[dict[str, Any]], events: list[Event]) -> None:
    assert len(events) == len(v141) == 68
    assert all("status" in p and "id" in p for p in v141)  # the 1.41 shape still sends them
    counts = Counter(e.base_action for e in events)
    assert counts == {"tag": 1, "create": 3, "start": 3, "exec_create": 16, "exec_start": 16,
                      "exec_die": 16, "health_status": 2, "kill": 3, "die": 3, "stop": 1,
                      "oom": 1, "destroy": 3}
    assert {e.host for e in events} == {"local"}


def test_create_event_fields(v141: list[dict[str, Any]], events: list[Event]) -> None:
    raw = v141[1]
    assert (raw["Type"], raw["Action"], raw["timeNano"]) == (
        "container", "create", 1795692210581153027)
    ev = events[1]
    assert (ev.type, ev.action, ev.base_action, ev.detail) == (
        "container", "create", "create", "")
    assert ev.actor_id == BUSY
    assert ev.time_nano == 1795692210581153027
    assert ev.name == "opskit-payload-busy"
    assert ev.attributes == {"image": "opskit-test/payload-busybox:latest",
                             "io.opskit.test": "payloads", "name": "opskit-payload-busy"}
    assert ev.exit_code is None and ev.signal is None
    assert ev.raw == raw


def test_ts_is_utc_from_time_nano(events: list[Event]) -> None:
    ev = events[1]
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=1795692210,
                                                            microseconds=581153)
    assert ev.ts == expected == datetime(2026, 11, 26, 11, 23, 30, 581153, tzinfo=UTC)
    assert ev.ts.utcoffset() == timedelta(0)
    assert int(ev.ts.timestamp()) == ev.raw["time"]


def test_image_event(events: list[Event]) -> None:
    ev = events[0]
    assert (ev.type, ev.action) == ("image", "tag")
    assert "from" not in ev.raw  # image events never had it
    assert ev.actor_id.startswith("sha256:")
    assert ev.name == "opskit-test/payload-busybox:latest"


def test_exec_events_split_action_and_detail(events: list[Event]) -> None:
    create, start, die = events[12:15]
    assert create.action == "exec_create: sh -c echo hello"
    assert (create.base_action, create.detail) == ("exec_create", "sh -c echo hello")
    assert (start.base_action, start.detail) == ("exec_start", "sh -c echo hello")
    assert (die.action, die.base_action, die.detail) == ("exec_die", "exec_die", "")
    exec_id = "37d9dffaac904fd50c66a4a4f158ceb0b07776b9c968a4021668597799c52dca"
    assert create.attributes["execID"] == start.attributes["execID"] == exec_id
    assert die.attributes["exitCode"] == "0"
    assert die.exit_code is None  # an exec's exit code is not the container's
    dd = events[10]
    assert dd.detail == "sh -c dd if=/dev/zero of=/h bs=1M count=8 2>&1; sync"


def test_health_status(events: list[Event]) -> None:
    health = [e for e in events if e.base_action == "health_status"]
    assert [(e.action, e.detail) for e in health] == [
        ("health_status: healthy", "healthy"), ("health_status: unhealthy", "unhealthy")]
    assert {e.actor_id for e in health} == {IDLE}
    failed_probe = events[50]
    assert failed_probe.base_action == "exec_die" and failed_probe.attributes["exitCode"] == "1"


def test_kill_die_stop_oom(events: list[Event]) -> None:
    kills = [(e.name, e.signal) for e in events if e.base_action == "kill"]
    assert kills == [("opskit-payload-busy", 9), ("opskit-payload-idle", 15),
                     ("opskit-payload-idle", 9)]
    dies = [(e.actor_id, e.exit_code) for e in events if e.base_action == "die"]
    assert dies == [(BUSY, 137), (IDLE, 137), (OOM, 137)]
    oom_index = next(i for i, e in enumerate(events) if e.action == "oom")
    assert events[oom_index].actor_id == OOM
    assert (events[oom_index + 1].action, events[oom_index + 1].actor_id) == ("die", OOM)
    stop = next(e for e in events if e.action == "stop")
    assert (stop.actor_id, stop.exit_code, stop.signal) == (IDLE, None, None)
    assert [e.actor_id for e in events if e.action == "destroy"] == [BUSY, IDLE, OOM]


def test_newer_shape_without_status_id_from(events: list[Event]) -> None:
    newer = load("events_v152.json")
    assert newer and all(not ({"status", "id", "from"} & set(p)) for p in newer)
    parsed = [parse_event(p, host="local") for p in newer]
    by_time = {e.time_nano: e for e in events}
    for ev in parsed:
        old = by_time[ev.time_nano]
        assert ev == old  # raw differs; every parsed field is the same
        assert event_key(ev) == event_key(old)
    assert [e.exit_code for e in parsed if e.base_action == "die"] == [137, 137, 137]
    assert [e.signal for e in parsed if e.base_action == "kill"] == [9, 15, 9]


def test_deprecated_fields_are_never_read(v141: list[dict[str, Any]]) -> None:
    payload = copy.deepcopy(v141[53])  # die of the busy container
    payload.update(status="start", id="not-the-actor", **{"from": "other:image"})
    ev = parse_event(payload)
    assert (ev.action, ev.actor_id, ev.exit_code) == ("die", BUSY, 137)


def test_time_fallback_only_without_time_nano(v141: list[dict[str, Any]]) -> None:
    payload = {k: v for k, v in v141[3].items() if k != "timeNano"}
    assert payload["time"] == 1795692210
    assert parse_event(payload).time_nano == 1795692210 * 1_000_000_000
    both = dict(v141[3], time=1)  # timeNano present: time is ignored
    assert parse_event(both).time_nano == 1795692210836031869
    with pytest.raises(EngineError):  # present but not a number: no silent fallback
        parse_event(dict(v141[3], timeNano="1795692210836031869"))


@pytest.mark.parametrize("missing", ["Type", "Action"])
def test_missing_type_or_action_raises(v141: list[dict[str, Any]], missing: str) -> None:
    payload = {k: v for k, v in v141[1].items() if k != missing}
    with pytest.raises(EngineError) as info:
        parse_event(payload)
    assert isinstance(info.value, OpsKitError)
    assert f"'{missing}'" in str(info.value) and "Hint:" in str(info.value)
    with pytest.raises(EngineError):
        parse_event(dict(v141[1], **{missing: ""}))


def test_missing_time_raises(v141: list[dict[str, Any]]) -> None:
    payload = {k: v for k, v in v141[1].items() if k not in ("time", "timeNano")}
    with pytest.raises(EngineError, match="timeNano"):
        parse_event(payload)


def test_minimal_payload_without_actor() -> None:
    ev = parse_event({"Type": "daemon", "Action": "reload", "timeNano": 5})
    assert (ev.actor_id, dict(ev.attributes), ev.name, ev.host) == ("", {}, None, "")


def test_attributes_are_a_read_only_copy(v141: list[dict[str, Any]]) -> None:
    payload = copy.deepcopy(v141[53])
    ev = parse_event(payload)
    payload["Actor"]["Attributes"]["exitCode"] = "0"
    payload["Action"] = "start"
    assert ev.exit_code == 137 and ev.raw["Action"] == "die"
    with pytest.raises(TypeError):
        ev.attributes["exitCode"] = "1"  # type: ignore[index]
    with pytest.raises(TypeError):
        ev.raw["Action"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.action = "start"  # type: ignore[misc]


def test_event_key_drops_replayed_events(events: list[Event]) -> None:
    keys = [event_key(e) for e in events]
    assert len(set(keys)) == len(keys)  # every recorded event has its own key
    assert keys[1] == (1795692210581153027, "container", "create", BUSY)
    # A reconnect with since=<last seen time> replays the tail of the first stream.
    first, replay = events[:40], events[36:]
    seen: set[tuple[int, str, str, str]] = set()
    merged = []
    for ev in first + replay:
        if event_key(ev) not in seen:
            seen.add(event_key(ev))
            merged.append(ev)
    assert merged == events
    assert len({*events}) == len(events)  # events are hashable


def test_unparsable_exit_code_and_signal() -> None:
    die = parse_event({"Type": "container", "Action": "die", "timeNano": 1,
                       "Actor": {"ID": "x", "Attributes": {"exitCode": "?"}}})
    kill = parse_event({"Type": "container", "Action": "kill", "timeNano": 1,
                        "Actor": {"ID": "x", "Attributes": {}}})
    assert die.exit_code is None and kill.signal is None


def test_all_lists_the_public_names() -> None:
    public = {n for n in vars(event_records) if not n.startswith("_")
              and getattr(getattr(event_records, n), "__module__", "") == event_records.__name__}
    assert set(event_records.__all__) == public
