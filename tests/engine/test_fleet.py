"""A fleet of real engines: the main one and a throwaway dockerd in its own network namespace.

Reads fan out with a deadline per engine: a stopped (SIGSTOP) engine costs the deadline, not
the notebook, its rows are missing and its status row says why; it answers again once resumed.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

import opskit
from tests.support.second_engine import MAIN_URL, ThrowawayEngine
from tests.support.session import unique

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(ThrowawayEngine.unavailable_reason() is not None,
                       reason=f"throwaway engine: {ThrowawayEngine.unavailable_reason()}"),
]

GONE = "unix:///nonexistent/opskit-fleet.sock"


@pytest.fixture(scope="module")
def edge(demo: list[str]) -> Iterator[ThrowawayEngine]:
    """A second engine with the demo web image, torn down whatever happens."""
    eng = ThrowawayEngine(f"okf{os.getpid() % 100000}")
    try:
        eng.start()
        eng.load_image("opskit/demo-web:latest")
        yield eng
    finally:
        eng.close()


@pytest.fixture
def fleet(clean: Any, edge: ThrowawayEngine) -> Iterator[opskit.Fleet]:
    """main, edge and an engine that is not there, in the test scope."""
    with opskit.connect_fleet({"main": MAIN_URL, "edge": edge.url, "gone": GONE},
                              scope=clean.engine.scope, timeout=5, deadline=3) as fleet:
        yield fleet


def test_one_frame_over_engines_with_an_engine_column(fleet: opskit.Fleet) -> None:
    assert fleet.reachable == ["main", "edge"]
    name = unique("fleet")
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest")
    for engine in ("main", "edge"):
        fleet[engine].deploy(spec, wait="running", timeout=30)

    frame = fleet.containers()
    mine = frame[frame["name"].astype(str) == name]
    assert sorted(mine["engine"].astype(str)) == ["edge", "main"]
    assert list(frame["engine"].cat.categories) == ["main", "edge", "gone"]
    assert list(frame.columns[:2]) == ["engine", "id"]
    status = fleet.last
    assert status is not None
    assert list(status["reachable"]) == [True, True, False]
    assert "opskit-fleet.sock" in status.set_index("engine").loc["gone", "error"]

    overview = fleet.status().set_index("engine")
    assert overview.loc["edge", "reachable"] and overview.loc["edge", "running"] >= 1
    assert not overview.loc["gone", "reachable"]
    fleet["edge"].teardown(name)


def test_a_stopped_engine_costs_the_deadline_and_says_why(fleet: opskit.Fleet,
                                                          edge: ThrowawayEngine) -> None:
    assert edge.pid is not None
    os.kill(edge.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        frame = fleet.containers()
        took = time.monotonic() - started
    finally:
        os.kill(edge.pid, signal.SIGCONT)
    assert took < fleet.deadline + 2, f"the fleet read took {took:.1f} s"
    assert set(frame["engine"].astype(str)) <= {"main"}
    status = fleet.last
    assert status is not None
    row = status.set_index("engine").loc["edge"]
    assert not row["reachable"] and "no answer within 3 s" in row["error"]

    def answers() -> bool:
        fleet.containers()
        return bool(fleet.last is not None and fleet.last.set_index("engine").loc[
            "edge", "reachable"])

    deadline = time.monotonic() + 30
    while not answers():
        assert time.monotonic() < deadline, "the resumed engine never answered again"
        time.sleep(0.5)
