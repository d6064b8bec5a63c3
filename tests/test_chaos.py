"""Fault injection on the real engine: each fault happens, is journaled, and is undone."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SESSION, TEST_LABEL, foreign_container, unique, until

import opskit

pytestmark = pytest.mark.engine


def web(ops: opskit.Ops, name: str, **kw: object) -> str:
    """A demo-web with a fast healthcheck; the 1 s timeout is what sees a hung httpd."""
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                              labels={TEST_LABEL: SESSION},
                              healthcheck={"test": ["CMD", "wget", "-q", "-O-",
                                                    "http://127.0.0.1:8080/health"],
                                           "interval": 0.3, "timeout": 1, "retries": 1},
                              **kw)  # type: ignore[arg-type]
    return ops.deploy(spec, wait="healthy", timeout=20).ids[0]


def wait_state(ops: opskit.Ops, cid: str, state: str, health: str | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = ops.inspect(cid)
        if info.state == state and (health is None or info.health == health):
            return
        time.sleep(0.1)
    raise AssertionError(f"{cid[:12]} is {info.state}/{info.health}, wanted {state}/{health}")


def inject_then_die(ops: opskit.Ops, monkeypatch: Any, home: Path, call: str) -> None:
    """Run ``ops.<call>`` in a process that then kills itself with SIGKILL (its undo never
    runs), with a chaos ledger of its own under ``home`` and this scope's key."""
    import shutil

    from opskit.engine import state_dir

    shutil.copytree(state_dir() / "keys", home / "keys")
    monkeypatch.setenv("OPSKIT_HOME", str(home))
    script = textwrap.dedent(f"""
        import os, signal, opskit
        ops = opskit.connect(scope={ops.engine.scope!r})
        ops.{call}
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), check=False)
    assert proc.returncode == -9


@pytest.mark.skipif(os.geteuid() != 0, reason="a host-side kill needs root")
def test_crash_is_a_real_crash_not_an_api_kill(clean, demo, observer) -> None:
    ops, name = clean, unique("crash")
    cid = web(ops, name)
    fault = ops.chaos("crash", name)
    observer.wait_for("die", cid)
    assert observer.count("kill", cid) == 0, "the engine saw a crash, not an API kill"
    assert ops.inspect(cid).exit_code == 137
    fault.undo()
    wait_state(ops, cid, "running")


@pytest.mark.parametrize(("kind", "state", "health"), [
    ("pause", "paused", None), ("unhealthy", "running", "unhealthy"),
    ("corrupt", "running", "unhealthy"), ("kill", "exited", None), ("stop", "exited", None)])
def test_faults_and_undo(clean, demo, kind, state, health) -> None:
    ops, name = clean, unique(kind)
    cid = web(ops, name)
    fault = ops.chaos(kind, name)
    wait_state(ops, cid, state, health)
    fault.undo()
    wait_state(ops, cid, "running", "healthy")
    journaled = ops.actions()
    assert f"chaos:{kind}" in set(journaled[journaled["container"] == name]["action"].astype(str))


def test_a_restart_cures_unhealthy_but_not_corrupt(clean, demo) -> None:
    """``unhealthy`` hangs httpd (SIGSTOP): ``docker restart`` starts fresh processes and cures
    it. ``corrupt`` removes the health file from the container's writable layer, which a restart
    keeps: it stays unhealthy until undone (or recreated)."""
    ops, name = clean, unique("cure")
    cid = web(ops, name)

    def health() -> str:
        return str(ops.inspect(cid).health)

    hang = ops.chaos("unhealthy", name)
    assert "T httpd" in " ".join(ops.exec(name, ["ps", "-o", "stat,comm"]).stdout.split())
    until(lambda: health() == "unhealthy", timeout=30, what="unhealthy after the hang")
    ops.restart(name, timeout=1)
    until(lambda: health() == "healthy", timeout=30, what="healthy after the restart")
    hang.undo()  # a restart cured it: nothing left, and the undo is harmless

    broken = ops.chaos("corrupt", name)
    until(lambda: health() == "unhealthy", timeout=30, what="unhealthy after the corruption")
    ops.restart(name, timeout=1)
    seen: list[str] = []
    deadline = time.monotonic() + 6  # the restart resets health; many 0.3 s probes follow
    while time.monotonic() < deadline:
        seen.append(health())
        time.sleep(0.1)
    assert "healthy" not in seen, "a restart keeps the container's filesystem"
    until(lambda: health() == "unhealthy", timeout=30, what="unhealthy after the restart")
    assert ops.exec(name, ["test", "-f", "/www/health"]).exit_code == 1
    broken.undo()
    until(lambda: health() == "healthy", timeout=30, what="healthy after the undo")
    assert not [r for r in ops.chaos_residue() if r["container_id"] == cid]


def test_an_image_without_the_script_is_refused_clearly(clean, demo) -> None:
    """demo-flap has no make-corrupt: a typed error with a hint, and no residue left."""
    ops, name = clean, unique("noscript")
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-flap:latest",
                              labels={TEST_LABEL: SESSION})
    cid = ops.deploy(spec, wait="running", timeout=20).ids[0]
    with pytest.raises(opskit.InvalidTarget, match="make-corrupt") as caught:
        ops.chaos("corrupt", name)
    assert "opskit/demo-web" in (caught.value.hint or "")
    assert not [r for r in ops.chaos_residue() if r["container_id"] == cid]
    journaled = ops.actions()
    mine = journaled[journaled["container"] == name]
    assert list(mine["result"].astype(str)) == ["failed"]


def test_cpu_hog_and_disconnect(clean, demo) -> None:
    ops, name, net = clean, unique("cpu"), unique("chaosnet")
    cid = web(ops, name, networks=[net])
    hog = ops.chaos("cpu", name)
    assert ops.exec(name, ["test", "-f", "/tmp/.opskit-chaos-cpu"]).exit_code == 0
    hog.undo()
    assert ops.exec(name, ["test", "-f", "/tmp/.opskit-chaos-cpu"]).exit_code == 1
    cut = ops.chaos("disconnect", name)
    assert net not in ops.inspect(cid).networks
    cut.undo()
    assert net in ops.inspect(cid).networks


@pytest.mark.skipif(os.geteuid() != 0, reason="stopping processes from the host needs root")
def test_delay_residue_after_the_injector_dies(clean, demo, tmp_path, monkeypatch) -> None:
    """RELIABILITY row 17 for a delay: its thaw dies with the injector; the stopped processes
    are reported and continued."""
    from opskit.chaos import _stopped, undo_residue

    ops, name = clean, unique("stuck")
    cid = web(ops, name)
    inject_then_die(ops, monkeypatch, tmp_path / "home", f"chaos('delay', {name!r}, seconds=300)")
    [found] = [r for r in ops.chaos_residue() if r["container_id"] == cid]
    assert found["kind"] == "delay" and found["still_in_place"] and found["state"] == "running"
    undo_residue(ops.engine, found)
    assert not any(_stopped(pid) for pid in found["pids"])
    assert not [r for r in ops.chaos_residue() if r["container_id"] == cid]


@pytest.mark.skipif(os.geteuid() != 0, reason="stopping processes from the host needs root")
def test_delay_holds_requests_then_lets_them_through(clean, demo) -> None:
    """Every process of the container is stopped for the delay: a request waits, is answered
    after it, and the container never changed state in the engine's eyes."""
    import urllib.request

    from opskit.chaos import _stopped

    ops, name = clean, unique("delay")
    cid = web(ops, name, ports={8080: None})
    port = ops.inspect(cid).ports["8080/tcp"].rpartition(":")[2]
    url = f"http://127.0.0.1:{port}/health"
    fault = ops.chaos("delay", name, seconds=1.5)
    assert fault.details["pids"] and all(_stopped(pid) for pid in fault.details["pids"])
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
    assert time.monotonic() - started > 1.0, "the request waited for the delay"
    until_free = time.monotonic() + 5
    while any(_stopped(pid) for pid in fault.details["pids"]) and time.monotonic() < until_free:
        time.sleep(0.05)
    assert not any(_stopped(pid) for pid in fault.details["pids"])
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
    assert ops.inspect(cid).state == "running"
    with pytest.raises(opskit.InvalidSpec, match="seconds"):
        ops.chaos("delay", name, seconds=0)


def test_oom_is_a_kernel_kill_inside_the_memory_limit(clean, demo, observer) -> None:
    ops, name, bare = clean, unique("oomhog"), unique("nolimit")
    cid = web(ops, name, memory="32m")
    fault = ops.chaos("oom", name)
    assert fault.details["memory_limit"] == 32 * 1024 * 1024
    observer.wait_for("oom", cid, timeout=30)
    fault.undo()
    assert ops.exec(name, ["test", "-f", "/tmp/.opskit-chaos-oom"]).exit_code == 1
    bare_id = web(ops, bare)
    with pytest.raises(opskit.InvalidTarget, match="no memory limit"):
        ops.chaos("oom", bare)
    assert not [r for r in ops.chaos_residue() if r["container_id"] == bare_id]
    journaled = ops.actions()
    assert bare not in set(journaled["container"].astype(str)), "refused before any record"


def test_foreign_and_unknown_are_refused(clean, demo) -> None:
    ops = clean
    name = unique("alien")
    foreign_container(ops, name)
    with pytest.raises(opskit.OutOfScope):
        ops.chaos("pause", name)
    with pytest.raises(opskit.InvalidTarget, match="unknown fault"):
        ops.chaos("meteor", name)
    assert ops.engine.api.inspect_container(name)["State"]["Status"] == "running"


def test_residue_after_the_injector_dies(clean, demo, tmp_path, monkeypatch) -> None:
    """RELIABILITY row 17: the injecting process is killed; the pause is reported and undone."""
    ops, name = clean, unique("residue")
    cid = web(ops, name)
    inject_then_die(ops, monkeypatch, tmp_path / "home", f"chaos('pause', {name!r})")
    found = [r for r in ops.chaos_residue() if r["container_id"] == cid]
    assert len(found) == 1 and found[0]["kind"] == "pause"
    assert found[0]["state"] == "paused" and found[0]["still_in_place"]
    from opskit.chaos import undo_residue

    undo_residue(ops.engine, found[0])
    wait_state(ops, cid, "running")
    assert not [r for r in ops.chaos_residue() if r["container_id"] == cid]
