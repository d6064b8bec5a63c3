"""Tests of the independent event observer (tests/support/observer.py) with no engine: it
reads only the stable fields of an event in either engine shape, keeps nanoseconds and
zones, and a missing engine is reported at once.

The observer on the local engine is tested in ../engine/test_observer.py.
"""

from __future__ import annotations

import time

import docker.errors
import pytest

from tests.support.observer import EventObserver, base_action, parse_event, parse_system_time


def test_base_action_strips_details() -> None:
    assert base_action("exec_start: wget -q -O- http://x:1/") == "exec_start"
    assert base_action("health_status: unhealthy") == "health_status"
    assert base_action("die") == "die"
    assert EventObserver.base_action("exec_create: true") == "exec_create"


def test_parse_event_reads_only_the_stable_fields() -> None:
    newer = {  # a newer engine's shape: no status, id or from
        "Type": "container", "Action": "kill", "scope": "local", "time": 1700000000,
        "timeNano": 1700000000123456789,
        "Actor": {"ID": "ab" * 32, "Attributes": {"name": "web", "signal": "9"}},
    }
    assert parse_event(newer) == {
        "Type": "container", "Action": "kill", "timeNano": 1700000000123456789,
        "Actor": {"ID": "ab" * 32, "Attributes": {"name": "web", "signal": "9"}},
    }
    older = {"status": "die", "id": "x", "from": "img", "Type": "container", "Action": "die",
             "Actor": {"ID": "x"}, "time": 5}
    assert parse_event(older) == {"Type": "container", "Action": "die", "timeNano": 5 * 10**9,
                                  "Actor": {"ID": "x", "Attributes": {}}}
    assert parse_event({"status": "die", "id": "x"}) is None


def test_parse_system_time_keeps_nanoseconds_and_zones() -> None:
    assert parse_system_time("2026-11-26T11:22:33.253077637Z") == 1795692153253077637
    assert parse_system_time("2026-11-26T12:22:33.25+01:00") == 1795692153250000000
    assert parse_system_time("2026-11-26T11:22:33Z") == 1795692153000000000
    with pytest.raises(ValueError):
        parse_system_time("yesterday")


def test_start_reports_a_missing_engine_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(docker.errors.DockerException):
        EventObserver("unix:///tmp/opskit-no-such-engine.sock", timeout=2).start()
    assert time.monotonic() - started < 5
