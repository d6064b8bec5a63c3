"""The fleet without an engine: the fan-out's deadline and errors, and what connecting to
engines that are not there, or not allowed, gives."""

from __future__ import annotations

import threading
import time

import pytest

import opskit
from opskit.fleet import fan_out

GONE = "unix:///nonexistent/opskit-fleet.sock"


def test_fan_out_returns_at_the_deadline_with_what_answered() -> None:
    release = threading.Event()
    started = time.monotonic()
    out = fan_out({"fast": lambda: 1, "stuck": lambda: release.wait(30) and 2,
                   "broken": lambda: 1 // 0}, deadline=0.5)
    took = time.monotonic() - started
    release.set()
    assert list(out) == ["fast", "stuck", "broken"]
    assert out["fast"].ok and out["fast"].value == 1
    assert not out["stuck"].ok and out["stuck"].timed_out and "no answer within 0.5 s" in \
        out["stuck"].error
    assert not out["broken"].ok and out["broken"].error.startswith("ZeroDivisionError")
    assert isinstance(out["broken"].exception, ZeroDivisionError)
    assert 0.5 <= took < 5  # the stuck call did not hold the caller


def test_fan_out_of_nothing_is_empty() -> None:
    assert fan_out({}, deadline=1) == {}


def test_an_engine_that_is_not_there_is_in_the_fleet_with_its_reason() -> None:
    with opskit.connect_fleet({"gone": GONE}, timeout=2, deadline=5) as fleet:
        assert fleet.reachable == [] and list(fleet) == ["gone"] and len(fleet) == 1
        status = fleet.status()
        row = status.iloc[0]
        assert row["engine"] == "gone" and not row["reachable"]
        assert "nonexistent/opskit-fleet.sock" in row["error"]
        with pytest.raises(opskit.EngineUnavailable, match=r"opskit-fleet\.sock"):
            fleet["gone"]
        frame = fleet.containers()
        assert frame.empty and list(frame["engine"].cat.categories) == ["gone"]
        assert fleet.last is not None and not fleet.last.iloc[0]["reachable"]
        assert fleet.reconnect()["gone"]  # still down, still said why


def test_bad_fleets_are_refused_before_any_connection() -> None:
    with pytest.raises(opskit.InvalidSpec, match="engines"):
        opskit.connect_fleet({})
    with pytest.raises(opskit.InvalidSpec, match="twice"):
        opskit.connect_fleet(["a", "a"])
    with pytest.raises(opskit.InvalidSpec, match="scope"):
        opskit.connect_fleet({"gone": GONE}, scope="no spaces")
    for hostile in ("../../etc", "a/b", "", "x" * 70):  # a name is also a file name
        with pytest.raises(opskit.InvalidSpec, match="engine named"):
            opskit.connect_fleet({hostile: GONE})


def test_a_remote_engine_without_tls_is_refused_not_waited_for() -> None:
    with pytest.raises(opskit.InsecureEngine):
        opskit.connect_fleet({"gone": GONE, "plain": "tcp://192.0.2.1:2375"}, deadline=5)


def test_an_unknown_context_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(opskit.InvalidTarget, match="no-such-context"):
        opskit.connect_fleet(["no-such-context"], deadline=5)


def test_an_unknown_engine_name_says_which_there_are() -> None:
    with opskit.connect_fleet({"gone": GONE}, timeout=1, deadline=3) as fleet:
        for call in (lambda: fleet["other"], lambda: fleet.record("x", engines=["other"]),
                     lambda: fleet.deploy({"name": "web", "image": "a"}, engines=["other"])):
            with pytest.raises(opskit.InvalidTarget, match="gone"):
                call()
