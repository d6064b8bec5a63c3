"""Caps on what comes out of containers (issue 10, "Files from outside"): ``logs()`` reads a
default tail and says when it cut; the exec and copy caps are tested beside their modules
(test_execute.py, test_transfer.py), the bundle limits in test_bundle.py, the defaults
themselves in ../unit/test_limits.py."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

import opskit
from opskit.observe.logs import DEFAULT_TAIL
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine

LINES = 12_000


@pytest.fixture(scope="module")
def chatty(ops: opskit.Ops, demo: Any) -> Any:
    """A container that has printed 12 000 numbered lines, more than the default tail."""
    name = unique("chatty")
    ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-crash:latest",
                                  command=["sh", "-c", f"seq {LINES}; sleep 300"],
                                  labels={TEST_LABEL: SESSION}), wait="running")
    deadline = time.monotonic() + 20
    while len(ops.logs(name, tail=LINES + 10)) < LINES:
        assert time.monotonic() < deadline, "the container did not print its lines"
        time.sleep(0.2)
    yield ops, name
    ops.teardown(name)


def test_logs_read_a_default_tail_and_say_they_cut(chatty: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    ops, name = chatty
    with caplog.at_level(logging.INFO, logger="opskit"):
        frame = ops.logs(name)
    assert len(frame) == DEFAULT_TAIL
    assert frame["line"].iloc[0] == str(LINES - DEFAULT_TAIL + 1)
    assert frame["line"].iloc[-1] == str(LINES)
    assert frame.attrs == {"truncated": [name], "tail": DEFAULT_TAIL}
    assert any("tail='all'" in r.getMessage() and name in r.getMessage() for r in caplog.records)
    assert frame.sort_values("ts", kind="stable").attrs["truncated"] == [name], "attrs follow"


def test_every_line_when_asked_and_no_mark_when_nothing_was_cut(chatty: Any) -> None:
    ops, name = chatty
    every = ops.logs(name, tail="all")
    assert len(every) == LINES and every.attrs == {"truncated": [], "tail": None}
    enough = ops.logs(name, tail=LINES)
    assert len(enough) == LINES and enough.attrs["truncated"] == [], "exactly the tail: no cut"
    few = ops.logs(name, tail=3)
    assert few["line"].tolist() == [str(n) for n in range(LINES - 2, LINES + 1)]
    assert few.attrs == {"truncated": [name], "tail": 3}
    assert ops.logs(name, tail=0).empty
    cut = ops.logs(name, grep=r"^1$")
    assert cut.empty and cut.attrs["truncated"] == [name], "the tail is counted before grep"
    assert len(ops.logs(name, grep=r"^1$", tail="all")) == 1


@pytest.mark.parametrize("bad", [-1, "lots", True, 2.5])
def test_a_bad_tail_is_refused(chatty: Any, bad: Any) -> None:
    ops, name = chatty
    with pytest.raises(opskit.InvalidTarget, match="tail") as caught:
        ops.logs(name, tail=bad)
    assert "Hint:" in str(caught.value) and "'all'" in str(caught.value)
