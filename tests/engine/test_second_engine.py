"""Tests of the throwaway second engine (tests/support/second_engine.py).

They start a real dockerd in a network namespace of its own, SIGKILL and restart it, tear it
down, and check the main engine's default bridge still works afterwards (RECIPES: a second
dockerd on the host's namespace deletes the first engine's ``docker0``).
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.support.observer import TEST_LABEL, EventObserver
from tests.support.second_engine import ThrowawayEngine

LABELS = {TEST_LABEL: "observer"}

pytestmark = [
    pytest.mark.engine,
    pytest.mark.slow,
    pytest.mark.skipif(
        ThrowawayEngine.unavailable_reason() is not None,
        reason=f"throwaway engine: {ThrowawayEngine.unavailable_reason()}"),
]


def unique_name(tag: str) -> str:
    """A netns name no other test run on this machine uses at the same time."""
    return f"ok{tag}{os.getpid() % 100000}"


@pytest.fixture
def engine() -> Iterator[ThrowawayEngine]:
    """A started throwaway engine, torn down whatever happens."""
    eng = ThrowawayEngine(unique_name("t"))
    try:
        eng.start()
        yield eng
    finally:
        eng.close()


def assert_gone(eng: ThrowawayEngine, folder: Path, pid: int) -> None:
    """Nothing of a closed engine is left: folder, mounts, namespace, process."""
    assert not folder.exists()
    assert str(folder) not in Path("/proc/self/mounts").read_text()
    assert not eng.netns_path.exists()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert not eng.running and eng.pid is None


def assert_main_bridge_works(client: docker.DockerClient, image: str) -> None:
    """``docker run --rm`` on the main engine's default bridge: the container gets an IPv4."""
    container = client.containers.create(
        image, ["sh", "-c", "ip -4 addr show eth0 | grep -q inet"], labels=LABELS)
    try:
        container.start()
        assert container.wait(timeout=30)["StatusCode"] == 0
    finally:
        container.remove(force=True)


def test_sigkill_and_restart_keep_the_container(
    engine: ThrowawayEngine, image: str, main_client: docker.DockerClient
) -> None:
    folder = engine.dir
    assert folder is not None and len(str(engine.sock)) < 100
    assert engine.url == f"unix://{folder}/d.sock" and engine.ping()
    engine.load_image(image)
    client = engine.client()
    assert client.images.get(image).labels[TEST_LABEL] == "observer"

    with EventObserver(engine.url) as obs:
        victim = client.containers.create(
            image, ["sleep", "300"], name="victim", labels=LABELS, init=True)
        victim.start()
        obs.wait_for("start", "victim")
        first_pid = engine.pid
        assert first_pid is not None

        assert engine.sigkill() == -9
        assert not engine.running and not engine.ping()

        started = time.monotonic()
        engine.start()
        restart_s = time.monotonic() - started
        second_pid = engine.pid
        assert engine.running and engine.ping() and second_pid not in (None, first_pid)
        # Without live-restore the restarted engine stops the old container itself: the
        # observer reconnects and sees that, as events from the engine's own start.
        obs.wait_for("die", victim.id, timeout=30)
        assert obs.disconnects >= 1

    after = engine.client()
    listed = after.containers.list(all=True, filters={"label": f"{TEST_LABEL}=observer"})
    assert [c.id for c in listed] == [victim.id]
    assert listed[0].status == "exited"
    assert restart_s < 30
    assert obs.count("start", "victim") == 1  # the engine did not start it again

    engine.close()
    assert second_pid is not None
    assert_gone(engine, folder, second_pid)
    engine.close()  # idempotent
    assert_main_bridge_works(main_client, image)


def test_sigterm_then_start_again(engine: ThrowawayEngine) -> None:
    assert engine.sigterm() == 0
    assert not engine.ping()
    engine.start()
    assert engine.ping()
    assert engine.client().version()["ApiVersion"]


def test_a_failed_start_cleans_up(image: str, main_client: docker.DockerClient) -> None:
    eng = ThrowawayEngine(unique_name("f"), extra_args=["--no-such-flag"])
    with pytest.raises(RuntimeError, match="no-such-flag"):
        eng.start(timeout=20)
    folder = eng.dir
    assert folder is not None and eng.netns_path.exists()
    eng.close()
    assert not folder.exists() and not eng.netns_path.exists()
    eng.close()
    with pytest.raises(RuntimeError, match="closed"):
        eng.start()
    assert_main_bridge_works(main_client, image)


def test_close_after_sigkill_leaves_nothing_running(image: str) -> None:
    eng = ThrowawayEngine(unique_name("k"))
    with eng:
        eng.load_image(image)
        container = eng.client().containers.create(image, ["sleep", "300"], labels=LABELS)
        container.start()
        folder, pid = eng.dir, eng.pid
        assert folder is not None and pid is not None
        obs = EventObserver(eng.url, timeout=2).start()
        try:
            eng.sigkill()  # its shim and the container live on until close() kills them
            with pytest.raises(AssertionError, match="stream ends: 1"):
                obs.wait_for("restart", timeout=1)  # reconnecting in vain meanwhile
        finally:
            started = time.monotonic()
            obs.stop()  # the engine is down: no catch-up, and no hang
        assert time.monotonic() - started < 3 and not obs.running
    assert_gone(eng, folder, pid)
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                 and container.id in _read(p / "cgroup")
                 and "zombie" not in _read(p / "status")]
    assert leftovers == []
    assert glob.glob(f"/sys/fs/cgroup/*/docker/{container.id}") == []
    assert glob.glob(f"/sys/fs/cgroup/docker/{container.id}") == []


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
