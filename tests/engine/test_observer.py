"""Tests of the independent event observer (tests/support/observer.py) on the local engine.

Its parsing, and a missing engine reported at once, are tested in ../unit/test_observer.py.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import pytest

from tests.support.observer import (
    TEST_LABEL,
    EventObserver,
    _close_stream,
)

pytestmark = pytest.mark.engine

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


@pytest.fixture
def make_container(main_client: docker.DockerClient, image: str) -> Iterator[MakeContainer]:
    """Create labelled containers running ``sleep``; all are removed, whatever the outcome."""
    made: list[Any] = []

    def make(command: tuple[str, ...] = ("sleep", "30"), **kwargs: Any) -> Any:
        name = f"opskit-obs-{uuid.uuid4().hex[:10]}"
        container = main_client.containers.create(
            image, list(command), name=name, labels=LABELS, init=True, **kwargs)
        made.append(container)
        return container

    yield make
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


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
