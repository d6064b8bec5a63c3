"""Containers outside opskit's scope (unlabelled, forged labels, another scope's) are refused
before any mutating request, by name and by ID."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import opskit
from opskit.base import labels as L
from tests.support.live import foreign_container
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine

MUTATING = ("restart", "stop", "kill", "pause", "remove", "exec")


def _forged(ops: opskit.Ops, name: str) -> dict[str, str]:
    """Labels that look like opskit's, in the right scope, with a made-up ownership token."""
    return {L.MANAGED: "true", L.SCOPE: ops.engine.scope, L.SERVICE: name, L.REPLICA: name,
            L.SPEC_HASH: "0" * 24, L.OWNER: "f" * 32}


def _call(ops: opskit.Ops, verb: str, target: str) -> None:
    if verb == "exec":
        ops.exec(target, ["true"])
    else:
        getattr(ops, verb)(target)


@pytest.mark.parametrize("kind", ["unlabelled", "forged", "other-scope"])
def test_foreign_containers_are_refused_by_name_and_id(clean, demo, observer, kind) -> None:
    ops, name = clean, unique(kind)
    labels = {"unlabelled": {}, "forged": _forged(ops, name),
              "other-scope": {**_forged(ops, name), L.SCOPE: "someone-else"}}[kind]
    cid = foreign_container(ops, name, labels)
    for target in (name, cid, cid[:12]):
        for verb in MUTATING:
            with pytest.raises(opskit.OutOfScope) as caught:
                _call(ops, verb, target)
            assert caught.value.container_id == cid
            assert "Hint:" in str(caught.value) and cid[:12] in str(caught.value)
    with pytest.raises(opskit.OutOfScope):
        ops.copy_from(name, "/www/index.html", Path("/tmp"))
    with pytest.raises(opskit.OutOfScope):
        ops.teardown(name)
    # the engine saw nothing but the container's own creation and healthchecks
    acted = {a.split(":")[0] for a in observer.actions(cid)}
    assert acted <= {"create", "start", "exec_create", "exec_start", "exec_die",
                     "health_status"}, acted
    assert ops.engine.api.inspect_container(cid)["State"]["Status"] == "running"
    # reading is allowed
    assert ops.inspect(cid).id == cid


def test_allow_foreign_is_an_explicit_opt_in(clean, demo, observer) -> None:
    ops, name = clean, unique("optin")
    cid = foreign_container(ops, name)
    ops.restart(name, timeout=1, allow_foreign=True)
    observer.wait_for("restart", cid)


def test_own_container_renamed_keeps_its_scope(clean, demo) -> None:
    ops, name = clean, unique("own")
    dep = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                        labels={TEST_LABEL: SESSION}), wait="running")
    ops.engine.api.rename(dep.ids[0], name + "-renamed")
    assert ops.restart(name + "-renamed", timeout=1)[0].ok


def test_another_key_cannot_act(clean, demo, monkeypatch) -> None:
    ops, name = clean, unique("key")
    ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                  labels={TEST_LABEL: SESSION}), wait="running")
    monkeypatch.setenv("OPSKIT_SCOPE_KEY", "a-different-key-" + "x" * 32)
    other = opskit.connect(scope=ops.engine.scope)
    try:
        with pytest.raises(opskit.OutOfScope):
            other.stop(name)
    finally:
        other.close()


def test_labels_inherited_from_an_image_do_not_make_a_container_opskits(clean, demo,
                                                                        observer) -> None:
    """``docker commit`` of an opskit container copies its labels, token included."""
    ops, name = clean, unique("commit")
    dep = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                        labels={TEST_LABEL: SESSION}), wait="running")
    api = ops.engine.api
    image = api.commit(dep.ids[0], repository=f"opskit-test/{name}", tag="x")["Id"]
    try:
        debug = api.create_container(image, name=name + "-debug",
                                     labels={TEST_LABEL: SESSION})["Id"]
        api.start(debug)
        with pytest.raises(opskit.OutOfScope, match="come from its image"):
            ops.stop(name + "-debug")
        assert [r.id for r in ops.restart(name, timeout=1)] == [dep.ids[0]]
        assert ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                             labels={TEST_LABEL: SESSION}),
                          wait="running").removed == ()
        assert observer.count("restart", debug) == 0 and observer.count("destroy", debug) == 0
    finally:
        api.remove_container(name + "-debug", force=True)
        api.remove_image(image, force=True)


def test_plain_container_of_a_demo_image_is_not_opskits(clean, demo) -> None:
    name = unique("plain")
    foreign_container(clean, name)
    assert clean.inspect(name).managed is False


def test_copied_labels_do_not_make_a_container_opskits(clean, demo, observer) -> None:
    """Every io.opskit.* label of an opskit container, token and spec included, copied onto
    another container: the copy's ID carries no seal, so it is refused, a deploy does not
    adopt it, and a watchdog does not watch it."""
    from opskit.recover.watchdog import Watchdog

    ops, name = clean, unique("copied")
    dep = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                        labels={TEST_LABEL: SESSION}), wait="running")
    labels = {k: v for k, v in ops.engine.api.inspect_container(dep.ids[0])["Config"][
        "Labels"].items() if k.startswith(L.PREFIX) or k == TEST_LABEL}
    copy = foreign_container(ops, name + "-copy", labels)
    for verb in MUTATING:
        with pytest.raises(opskit.OutOfScope, match="no opskit seal"):
            _call(ops, verb, copy)
    with opskit.connect(scope=ops.engine.scope) as other:
        wd = Watchdog(other.engine, services=[name]).start()
        try:
            assert wd.status()["watched"] == [name], wd.status()["watched"]
            pid = ops.engine.api.inspect_container(copy)["State"]["Pid"]
            os.kill(pid, signal.SIGKILL)  # a crash: a watched container would be restarted
            time.sleep(3)
        finally:
            wd.stop()
    observer.barrier()
    assert observer.error is None
    assert observer.count("start", copy) == 1, "the copy was never started again by opskit"
    again = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                          labels={TEST_LABEL: SESSION}), wait="running")
    assert again.removed == () and again.ids == dep.ids


def test_unsealed_networks_volumes_and_leases_are_not_opskits(clean, demo) -> None:
    """Resources carrying opskit's labels that opskit did not create are never removed."""
    from opskit.act.lease import sweep_leases

    ops, name = clean, unique("res")
    api, scope = ops.engine.api, ops.engine.scope
    vol = api.create_volume(name + "-v", labels={**L.resource_labels(scope, service=name,
                                                                     role="volume"),
                                                 TEST_LABEL: SESSION})
    net = api.create_network(name + "-n", labels={**L.resource_labels(scope, role="network"),
                                                  TEST_LABEL: SESSION})
    lease = api.create_container("opskit/demo-web:latest", name=f"opskit-lease-{name}",
                                 labels={**L.resource_labels(scope, role="lease"),
                                         "io.opskit.lease-expires": "1", TEST_LABEL: SESSION})
    ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                  labels={TEST_LABEL: SESSION}), wait="running")
    removed = ops.teardown(name, volumes=True)
    assert f"volume:{vol['Name']}" not in removed
    with pytest.raises(opskit.OutOfScope, match="not sealed"):
        ops.network_remove(name + "-n")
    assert sweep_leases(ops.engine) == 0
    assert api.inspect_volume(vol["Name"]) and api.inspect_network(net["Id"])
    assert api.inspect_container(lease["Id"])


def test_the_deploy_lock_is_exclusive_per_call(clean, demo) -> None:
    """Three deploys of one new service at once from one process (same user, host and PID):
    one holds the lock and deploys, the others are refused with Conflict."""
    import threading

    ops, name = clean, unique("locked")
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                              labels={TEST_LABEL: SESSION})
    done, refused, gate = [], [], threading.Barrier(3)

    def deploy() -> None:
        gate.wait()
        try:
            done.append(ops.deploy(spec, wait="healthy", timeout=30))
        except opskit.base.errors.Conflict:
            refused.append(1)

    threads = [threading.Thread(target=deploy) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) + len(refused) == 3 and len(refused) >= 1, (done, refused)
    assert sum(len(d.created) for d in done) == 1, "one container, made once"


def test_an_unreadable_image_fails_closed(clean, demo, monkeypatch) -> None:
    """When the image's labels cannot be read, nothing can tell the container's labels from
    inherited ones: it is not opskit's (the old check let it pass)."""
    from opskit.engine import targets

    ops, name = clean, unique("closed")
    dep = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                        labels={TEST_LABEL: SESSION}), wait="running")
    targets._IMAGE_LABELS.clear()

    def refuse(image: str) -> dict[str, object]:
        raise ConnectionError("the engine did not answer about the image")

    monkeypatch.setattr(ops.engine.api, "inspect_image", refuse)
    with pytest.raises(opskit.OutOfScope, match="could not be read"):
        ops.stop(name)
    monkeypatch.undo()
    assert [r.id for r in ops.stop(name, timeout=1)] == list(dep.ids)
