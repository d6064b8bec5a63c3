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

import opskit
from tests.support.live import foreign_container
from tests.support.session import SESSION, TEST_LABEL, unique, until

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
    runs), with a chaos ledger of its own under ``home`` and this scope's key and seals."""
    import shutil

    from opskit.base.durable import state_dir

    for part in ("keys", "seals"):
        if (state_dir() / part).exists():
            shutil.copytree(state_dir() / part, home / part)
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
    observer.barrier()
    assert observer.count("kill", cid) == 0, "the engine saw a crash, not an API kill"
    assert observer.error is None
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
    """A delay's injector dies midway: its thaw dies with it; the stopped processes are
    reported as residue and continued, never taken for a crash."""
    from opskit.act.chaos import undo_residue
    from opskit.act.hostpids import is_stopped

    ops, name = clean, unique("stuck")
    cid = web(ops, name)
    inject_then_die(ops, monkeypatch, tmp_path / "home", f"chaos('delay', {name!r}, seconds=300)")
    [found] = [r for r in ops.chaos_residue() if r["container_id"] == cid]
    assert found["kind"] == "delay" and found["still_in_place"] and found["state"] == "running"
    undo_residue(ops.engine, found)
    assert not any(is_stopped(pid) for pid in found["pids"])
    assert not [r for r in ops.chaos_residue() if r["container_id"] == cid]


@pytest.mark.skipif(os.geteuid() != 0, reason="stopping processes from the host needs root")
def test_delay_holds_requests_then_lets_them_through(clean, demo) -> None:
    """Every process of the container is stopped for the delay: a request waits, is answered
    after it, and the container never changed state in the engine's eyes."""
    import urllib.request

    from opskit.act.hostpids import is_stopped

    ops, name = clean, unique("delay")
    cid = web(ops, name, ports={8080: None})
    port = ops.inspect(cid).ports["8080/tcp"].rpartition(":")[2]
    url = f"http://127.0.0.1:{port}/health"
    fault = ops.chaos("delay", name, seconds=1.5)
    alive = [pid for pid in fault.details["pids"] if os.path.exists(f"/proc/{pid}")]
    assert alive and all(is_stopped(pid) for pid in alive), "a probe may have ended meanwhile"
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
    assert time.monotonic() - started > 1.0, "the request waited for the delay"
    until_free = time.monotonic() + 5
    while any(is_stopped(pid) for pid in fault.details["pids"]) and time.monotonic() < until_free:
        time.sleep(0.05)
    assert not any(is_stopped(pid) for pid in fault.details["pids"])
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
    """The injecting process is killed midway: the container left paused is reported as
    residue and undone, never taken for a crash."""
    ops, name = clean, unique("residue")
    cid = web(ops, name)
    inject_then_die(ops, monkeypatch, tmp_path / "home", f"chaos('pause', {name!r})")
    found = [r for r in ops.chaos_residue() if r["container_id"] == cid]
    assert len(found) == 1 and found[0]["kind"] == "pause"
    assert found[0]["state"] == "paused" and found[0]["still_in_place"]
    from opskit.act.chaos import undo_residue

    undo_residue(ops.engine, found[0])
    wait_state(ops, cid, "running")
    assert not [r for r in ops.chaos_residue() if r["container_id"] == cid]


# -- host-side faults only signal the container's own processes ------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="host-side faults need root")
@pytest.mark.parametrize("kind", ["crash", "delay"])
def test_a_pid_that_is_not_the_containers_is_never_signalled(clean, demo, observer, bystander,
                                                             monkeypatch, kind) -> None:
    """An engine whose PID namespace is not ours reports PIDs that name other processes here:
    the fault is refused before any record or signal, and the bystander lives on."""
    from opskit.act.hostpids import is_stopped

    ops, name = clean, unique(f"ns{kind}")
    cid = web(ops, name)
    api = ops.engine.api
    if kind == "crash":
        real_inspect = api.inspect_container

        def inspect(container: str) -> dict[str, Any]:
            data: dict[str, Any] = real_inspect(container)
            data["State"]["Pid"] = bystander.pid
            return data

        monkeypatch.setattr(api, "inspect_container", inspect)
    else:
        real_top = api.top

        def top(container: str, *args: Any, **kw: Any) -> dict[str, Any]:
            data: dict[str, Any] = real_top(container, *args, **kw)
            row = list(data["Processes"][0])
            row[data["Titles"].index("PID")] = str(bystander.pid)
            data["Processes"].append(row)
            return data

        monkeypatch.setattr(api, "top", top)
    with pytest.raises(opskit.InvalidTarget, match="PID namespace") as caught:
        ops.chaos(kind, name, seconds=2.0)
    assert str(bystander.pid) in str(caught.value) and "kind='kill'" in (caught.value.hint or "")
    time.sleep(0.3)
    assert bystander.poll() is None and not is_stopped(bystander.pid), "the bystander lives on"
    monkeypatch.undo()
    observer.barrier()
    assert observer.count("die", cid) == 0 and observer.error is None
    assert ops.inspect(cid).state == "running"
    pids = [int(row[1]) for row in api.top(cid)["Processes"]]
    assert pids and not any(is_stopped(pid) for pid in pids), "nothing of the container stopped"
    assert not [r for r in ops.chaos_residue() if r["container_id"] == cid]
    journaled = ops.actions()
    assert name not in set(journaled["container"].astype(str)), "refused before any record"


# -- the shared ledger is only undone within the caller's scope ------------------------------

def test_residue_is_listed_and_undone_only_in_its_scope(clean, demo, observer, tmp_path,
                                                         monkeypatch) -> None:
    """Two scopes share the chaos ledger: another scope neither sees nor undoes a fault."""
    from opskit.act.chaos import undo_residue

    ops, name = clean, unique("scoped")
    cid = web(ops, name)
    inject_then_die(ops, monkeypatch, tmp_path / "home", f"chaos('pause', {name!r})")
    [entry] = [r for r in ops.chaos_residue() if r["container_id"] == cid]
    assert entry["scope"] == ops.engine.scope
    other = opskit.connect(scope=f"{ops.engine.scope}-other")
    try:
        assert [r for r in other.chaos_residue() if r["container_id"] == cid] == []
        with pytest.raises(opskit.OutOfScope) as caught:
            undo_residue(other.engine, entry)
        assert caught.value.container_id == cid and "undo chaos pause" in str(caught.value)
        observer.barrier()
        assert observer.count("unpause", cid) == 0 and observer.error is None
        assert ops.engine.api.containers(filters={"id": [cid]})[0]["State"] == "paused"
    finally:
        other.close()
    [still] = [r for r in ops.chaos_residue() if r["container_id"] == cid]
    undo_residue(ops.engine, still)
    wait_state(ops, cid, "running")
    observer.barrier()
    assert observer.count("unpause", cid) == 1 and observer.error is None


@pytest.mark.parametrize("kind", ["crash", "disconnect"])
def test_a_forged_ledger_entry_does_not_touch_a_foreign_container(clean, demo, observer,
                                                                  tmp_path, monkeypatch,
                                                                  kind) -> None:
    """Anyone who can write the ledger can name any container in it: an unlabelled container
    is neither listed nor started nor reconnected."""
    import json

    from opskit.act.chaos import undo_residue
    from opskit.base.durable import state_dir

    monkeypatch.setenv("OPSKIT_HOME", str(tmp_path / "home"))
    ops, name, net = clean, unique("forged"), unique("forgednet")
    cid = foreign_container(ops, name)
    api = ops.engine.api
    network = api.create_network(net, labels={TEST_LABEL: SESSION})["Id"]
    try:
        api.stop(cid, timeout=1)
        forged = {"id": "f0f0f0f0f0f0", "phase": "injected", "kind": kind, "container": name,
                  "container_id": cid, "network": net, "pids": [], "ts": time.time(),
                  "scope": ops.engine.scope}
        (state_dir() / "chaos.jsonl").write_text(json.dumps(forged) + "\n")
        assert [r for r in ops.chaos_residue() if r["container_id"] == cid] == []
        with pytest.raises(opskit.OutOfScope):
            undo_residue(ops.engine, forged)
        observer.barrier()
        assert observer.count("start", cid) == 1, "only its own first start"
        assert observer.count("connect", network, type="network") == 0
        assert observer.error is None
        assert api.inspect_container(cid)["State"]["Status"] == "exited"
        with pytest.raises(opskit.InvalidTarget, match="chaos residue entry"):
            undo_residue(ops.engine, {**forged, "container_id": name})
    finally:
        api.remove_container(cid, force=True)
        api.remove_network(network)
