"""Tests of the independent event observer (tests/support/observer.py) on the local engine."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import pytest
from support.observer import (
    BUSYBOX_IMAGE,
    DEFAULT_URL,
    TEST_LABEL,
    EventObserver,
    _close_stream,
    base_action,
    build_busybox_image,
    parse_event,
    parse_system_time,
)

LABELS = {TEST_LABEL: "observer"}
MakeContainer = Callable[..., Any]


def poll(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.02)


def cut_stream(obs: EventObserver) -> None:
    """Break the observer's live stream as a dropped connection or an engine restart would."""
    _close_stream(obs._stream)


# -- no engine needed ----------------------------------------------------------------------


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


# -- on the engine -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    """The main engine; a skip when none answers (an error under CI or OPSKIT_REQUIRE_ENGINE)."""
    try:
        engine = docker.DockerClient(base_url=DEFAULT_URL, timeout=30)
        engine.ping()
    except Exception as exc:
        if os.environ.get("CI") or os.environ.get("OPSKIT_REQUIRE_ENGINE"):
            raise
        pytest.skip(f"no Docker engine at {DEFAULT_URL}: {exc}")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def image(client: docker.DockerClient) -> str:
    """The busybox test image, built locally (it stays after the tests)."""
    build_busybox_image(client)
    return BUSYBOX_IMAGE


@pytest.fixture
def make_container(client: docker.DockerClient, image: str) -> Iterator[MakeContainer]:
    """Create labelled containers running ``sleep``; all are removed, whatever the outcome."""
    made: list[Any] = []

    def make(command: tuple[str, ...] = ("sleep", "30"), **kwargs: Any) -> Any:
        name = f"opskit-obs-{uuid.uuid4().hex[:10]}"
        container = client.containers.create(
            image, list(command), name=name, labels=LABELS, init=True, **kwargs)
        made.append(container)
        return container

    yield make
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


@pytest.mark.engine
def test_records_a_container_life_by_id_short_id_and_name(
    make_container: MakeContainer,
) -> None:
    with EventObserver() as obs:
        victim = make_container()
        other = make_container()
        victim.start()
        other.start()
        result = victim.exec_run(["wget", "-q", "-T", "1", "-O-", "http://127.0.0.1:9/"])
        assert result.exit_code != 0  # nothing listens there; only the events matter
        victim.kill()
        died = obs.wait_for("die", victim.name)
        other.remove(force=True)
        obs.wait_for("destroy", other.id[:12])

    assert died["Actor"]["ID"] == victim.id
    assert died["Actor"]["Attributes"]["exitCode"] == "137"
    assert obs.actions(victim.name, base=True) == [
        "create", "start", "exec_create", "exec_start", "exec_die", "kill", "die"]
    exec_start = [a for a in obs.actions(victim.id) if a.startswith("exec_start")]
    assert exec_start == ["exec_start: wget -q -T 1 -O- http://127.0.0.1:9/"]
    for key in (victim.id, victim.id[:12], victim.id[:6], victim.name, "/" + victim.name):
        assert obs.count("start", key) == 1, key
        assert obs.count("exec_start", key) == 1, key
    assert obs.count("exec_start: wget -q -T 1 -O- http://127.0.0.1:9/", victim.name) == 1
    assert obs.actions(other.name) == ["create", "start", "kill", "die", "destroy"]
    assert obs.count("start") >= 2
    assert obs.pulls() == []
    assert all({"Type", "Action", "Actor", "timeNano"} == set(e) for e in obs.events())
    assert not obs.running and obs.disconnects == 0 and obs.error is None
    assert obs.since is not None and int(obs.since.replace(".", "")) == obs.since_ns
    assert obs.since_ns <= died["timeNano"]


@pytest.mark.engine
def test_filters_are_the_engines(make_container: MakeContainer) -> None:
    watched, ignored = make_container(), make_container()
    with EventObserver(filters={"container": [watched.name]}) as obs:
        ignored.start()
        watched.start()
        obs.wait_for("start", watched.name)
        ignored.kill()
        watched.kill()
        obs.wait_for("die", watched.id)
    assert {e["Actor"]["ID"] for e in obs.events()} == {watched.id}


@pytest.mark.engine
def test_wait_for_times_out_with_what_it_saw(make_container: MakeContainer) -> None:
    container = make_container()
    with EventObserver(filters={"container": [container.id]}) as obs:
        container.start()
        obs.wait_for("start", container.name)
        started = time.monotonic()
        with pytest.raises(AssertionError) as caught:
            obs.wait_for("oom", container.name, timeout=0.5)
        assert 0.5 <= time.monotonic() - started < 2
    message = str(caught.value)
    assert "'oom'" in message and container.name in message and "'start'" in message


@pytest.mark.engine
def test_wait_for_the_nth_event(make_container: MakeContainer) -> None:
    container = make_container(("true",))
    with EventObserver(filters={"container": [container.id]}) as obs:
        for _ in range(3):
            container.start()
            container.wait(timeout=10)
        third = obs.wait_for("die", container.name, n=3)
        first = obs.wait_for("die", container.name)
    assert third["timeNano"] > first["timeNano"]
    assert obs.count("start", container.name) == 3


@pytest.mark.engine
def test_stop_keeps_every_event_before_it_and_is_prompt(make_container: MakeContainer) -> None:
    container = make_container()
    obs = EventObserver(filters={"container": [container.id]}).start()
    try:
        container.start()  # the engine logs "start" before the API call returns
    finally:
        started = time.monotonic()
        obs.stop()
        took = time.monotonic() - started
    assert took < 2.0
    assert obs.count("start", container.id) == 1  # no wait_for: stop() caught up
    obs.stop()  # a second stop is a no-op
    container.kill()
    assert obs.count("kill") == 0 and not obs.running


@pytest.mark.engine
def test_stop_fetches_what_a_dead_stream_missed(make_container: MakeContainer) -> None:
    container = make_container()
    obs = EventObserver(filters={"container": [container.id]}, reconnect=False).start()
    try:
        cut_stream(obs)
        poll(lambda: not obs.running)
        container.start()
        # what the stream delivered (events() does not catch up, unlike the counting queries)
        assert [e for e in obs.events() if e["Action"] == "start"] == []
        assert obs.disconnects == 1
    finally:
        obs.stop()
    assert obs.actions(container.name) == ["start"]


@pytest.mark.engine
def test_reconnects_from_the_last_event_without_duplicates(
    make_container: MakeContainer,
) -> None:
    container = make_container()
    with EventObserver(filters={"container": [container.id]}) as obs:
        container.start()
        obs.wait_for("start", container.name)
        cut_stream(obs)
        poll(lambda: obs.disconnects == 1)
        container.kill()
        obs.wait_for("die", container.name)
        assert obs.running
    assert obs.actions(container.name) == ["start", "kill", "die"]


@pytest.mark.engine
def test_start_reports_a_missing_engine_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(docker.errors.DockerException):
        EventObserver("unix:///tmp/opskit-no-such-engine.sock", timeout=2).start()
    assert time.monotonic() - started < 5
