"""exec: a deadline that really ends the wait (RELIABILITY row 6), streams kept apart, and a
repr that shows no secret (row 13)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from conftest import demo_web_in_scope

import opskit
from opskit.execute import ExecResult

SCOPE = "fixA"


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[opskit.Ops, str]]:
    """A running demo-web container in scope fixA, removed afterwards."""
    with demo_web_in_scope(SCOPE, "fixa-exec") as found:
        yield found


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("opskit-exec-")]


@pytest.mark.engine
def test_a_hung_exec_ends_at_its_timeout(web: tuple[opskit.Ops, str]) -> None:
    ops, name = web
    started = time.monotonic()
    with pytest.raises(opskit.EngineError) as caught:
        ops.exec(name, ["sleep", "5"], timeout=1)
    took = time.monotonic() - started
    assert 0.9 <= took < 2.0, took
    assert name in str(caught.value) and "within 1s" in str(caught.value)
    assert "Hint:" in str(caught.value)
    deadline = time.monotonic() + 2
    while _readers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _readers(), "the reading thread ended with the closed stream"
    assert ops.exec(name, ["echo", "still fine"], timeout=5).stdout == "still fine\n"


@pytest.mark.engine
@pytest.mark.parametrize("timeout", [None, 5.0])
def test_streams_and_exit_code_with_and_without_timeout(web: tuple[opskit.Ops, str],
                                                        timeout: float | None) -> None:
    ops, name = web
    result = ops.exec(name, "echo out; echo err >&2; exit 3", timeout=timeout)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok and result.output == "out\nerr\n"


@pytest.mark.engine
def test_repr_masks_secrets_but_attributes_keep_them(web: tuple[opskit.Ops, str]) -> None:
    ops, name = web
    result = ops.exec(name, ["sh", "-c", "echo token=CANARY2", "--password=CANARY4"])
    assert "CANARY" not in repr(result) and "CANARY" not in str(result)
    assert "token=***" in repr(result) and "--password=***" in repr(result)
    assert result.command == ("sh", "-c", "echo token=CANARY2", "--password=CANARY4")
    assert result.stdout == "token=CANARY2\n"


@pytest.mark.engine
@pytest.mark.parametrize("bad", [0, -1, True, "5", float("nan")])
def test_a_bad_timeout_is_refused_before_anything_runs(web: tuple[opskit.Ops, str],
                                                       bad: object) -> None:
    ops, name = web
    with pytest.raises(opskit.InvalidTarget) as caught:
        ops.exec(name, ["touch", "/tmp/ran"], timeout=bad)
    assert "timeout" in str(caught.value)
    assert ops.exec(name, ["ls", "/tmp"]).stdout.split().count("ran") == 0


def test_repr_without_an_engine() -> None:
    result = ExecResult(container="web-1", id="c" * 64,
                        command=("app", "--password", "CANARY4", "DATABASE_URL=postgres://u:"
                                 "CANARY3@db/x"), exit_code=0, stdout="Password=CANARY1\n",
                        stderr="", duration=0.5)
    text = repr(result)
    assert "CANARY" not in text
    assert "'--password', '***'" in text and "web-1" in text and "exit_code=0" in text
