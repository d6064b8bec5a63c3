"""Leases on the engine: exactly one of several concurrent acquirers holds an incident."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import opskit
from opskit.act.lease import acquire_lease, lease_name, sweep_leases
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine


def test_one_holder_among_concurrent_acquirers(clean, demo) -> None:
    ops, name = clean, unique("lease")
    dep = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                        labels={TEST_LABEL: SESSION}), wait="running")
    cid, image = dep.ids[0], dep.image_id
    with ThreadPoolExecutor(8) as pool:
        leases = list(pool.map(lambda i: acquire_lease(ops.engine, cid, "incident-1",
                                                       holder=f"w{i}", image=image), range(8)))
    held = [lease for lease in leases if lease.held]
    assert len(held) == 1
    assert {lease.holder for lease in leases if not lease.held} == {held[0].holder}
    # another incident of the same container is a different lease
    assert acquire_lease(ops.engine, cid, "incident-2", holder="w0", image=image).held
    # leases never show in the containers table
    assert not ops.containers()["name"].astype(str).str.startswith("opskit-lease-").any()


def test_expired_lease_is_broken_and_swept(clean, demo) -> None:
    ops, name = clean, unique("expire")
    dep = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                        labels={TEST_LABEL: SESSION}), wait="running")
    cid, image = dep.ids[0], dep.image_id
    first = acquire_lease(ops.engine, cid, "k", holder="dead-watchdog", image=image, ttl=0.2)
    assert first.held
    time.sleep(0.3)
    second = acquire_lease(ops.engine, cid, "k", holder="alive", image=image)
    assert second.held and second.lease_id != first.lease_id
    acquire_lease(ops.engine, cid, "k2", holder="x", image=image, ttl=0.01)
    time.sleep(0.05)
    assert sweep_leases(ops.engine) == 1
    names = {c["Names"][0].lstrip("/") for c in ops.engine.api.containers(all=True)}
    assert lease_name(cid, "k") in names and lease_name(cid, "k2") not in names


def test_a_squatter_on_the_lease_name_is_never_taken_for_a_peer(clean, demo) -> None:
    """A container opskit did not create, on a lease's name and with a lease's labels, holds
    the incident for nobody: the acquire is refused (after the short grace a racing winner's
    seal gets) and the squatter is left alone, even once its stated expiry has passed."""
    from opskit.act import lease as lease_mod
    from opskit.base import labels as L

    ops, name = clean, unique("squat")
    dep = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                        labels={TEST_LABEL: SESSION}), wait="running")
    cid, image = dep.ids[0], dep.image_id
    api = ops.engine.api
    squatter = api.create_container(image, name=lease_name(cid, "k"), command=["true"], labels={
        **L.resource_labels(ops.engine.scope, role="lease"), lease_mod.HOLDER: "me",
        lease_mod.EXPIRES: "1", TEST_LABEL: SESSION})
    try:
        started = time.monotonic()
        got = acquire_lease(ops.engine, cid, "k", holder="me", image=image)
        assert not got.held and "did not create" in got.holder
        assert time.monotonic() - started >= lease_mod.SEAL_GRACE * 0.9
        assert sweep_leases(ops.engine) == 0
        assert api.inspect_container(squatter["Id"])["Id"] == squatter["Id"]
    finally:
        api.remove_container(squatter["Id"], force=True)
