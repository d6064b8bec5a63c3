"""exec on the real engine: a hung exec ends at its deadline (the wait never blocks its caller
forever), streams kept apart with the real exit code, output capped per stream with a marker,
and a repr that shows no secret while the attributes keep the values.

The cap's arithmetic and the repr with no engine are tested in ../unit/test_execute.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

import opskit
from opskit.act.execute import DEFAULT_MAX_OUTPUT
from tests.support.live import demo_web_in_scope

pytestmark = pytest.mark.engine

SCOPE = "fixA"


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[opskit.Ops, str]]:
    """A running demo-web container in scope fixA, removed afterwards."""
    with demo_web_in_scope(SCOPE, "fixa-exec") as found:
        yield found


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("opskit-exec-")]


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


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_streams_and_exit_code_with_and_without_timeout(web: tuple[opskit.Ops, str],
                                                        timeout: float | None) -> None:
    ops, name = web
    result = ops.exec(name, "echo out; echo err >&2; exit 3", timeout=timeout)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok and result.output == "out\nerr\n"


def test_repr_masks_secrets_but_attributes_keep_them(web: tuple[opskit.Ops, str]) -> None:
    ops, name = web
    result = ops.exec(name, ["sh", "-c", "echo token=CANARY2", "--password=CANARY4"])
    assert "CANARY" not in repr(result) and "CANARY" not in str(result)
    assert "token=***" in repr(result) and "--password=***" in repr(result)
    assert result.command == ("sh", "-c", "echo token=CANARY2", "--password=CANARY4")
    assert result.stdout == "token=CANARY2\n"


@pytest.mark.parametrize("bad", [0, -1, True, "5", float("nan")])
def test_a_bad_timeout_is_refused_before_anything_runs(web: tuple[opskit.Ops, str],
                                                       bad: object) -> None:
    ops, name = web
    with pytest.raises(opskit.InvalidTarget) as caught:
        ops.exec(name, ["touch", "/tmp/ran"], timeout=bad)
    assert "timeout" in str(caught.value)
    assert ops.exec(name, ["ls", "/tmp"]).stdout.split().count("ran") == 0


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_output_is_capped_per_stream_and_the_exit_code_is_real(web: tuple[opskit.Ops, str],
                                                               timeout: float | None) -> None:
    ops, name = web
    big = 3 * 2**20
    result = ops.exec(name, f"head -c {big} /dev/zero | tr '\\0' x; echo small >&2; exit 7",
                      timeout=timeout)
    assert result.exit_code == 7, "the command ran to its end although its output was cut"
    assert result.truncated and result.dropped == (big - DEFAULT_MAX_OUTPUT, 0)
    kept, marker = result.stdout.rsplit("\n", 2)[0], result.stdout.rsplit("\n", 2)[1]
    assert kept == "x" * DEFAULT_MAX_OUTPUT
    assert marker == f"[opskit: output cut at {DEFAULT_MAX_OUTPUT} bytes; " \
        f"{big - DEFAULT_MAX_OUTPUT} more bytes not kept]"
    assert result.stderr == "small\n", "each stream has its own cap"
    assert "truncated=True" in repr(result)

    whole = ops.exec(name, f"head -c {big} /dev/zero", max_output=None, timeout=timeout)
    assert len(whole.stdout) == big and not whole.truncated and whole.dropped == (0, 0)
    small = ops.exec(name, "echo 0123456789 >&2", max_output=4, timeout=timeout)
    assert small.stderr == "0123\n[opskit: output cut at 4 bytes; 7 more bytes not kept]\n"
    assert small.truncated and small.dropped == (0, 7) and small.stdout == ""


@pytest.mark.parametrize("bad", [0, -5, True, 1.5, "1M"])
def test_a_bad_max_output_is_refused_before_anything_runs(web: tuple[opskit.Ops, str],
                                                          bad: object) -> None:
    ops, name = web
    with pytest.raises(opskit.InvalidTarget) as caught:
        ops.exec(name, ["touch", "/tmp/ran-cap"], max_output=bad)
    assert "max_output" in str(caught.value) and "Hint:" in str(caught.value)
    assert ops.exec(name, ["ls", "/tmp"]).stdout.split().count("ran-cap") == 0
