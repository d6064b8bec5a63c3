"""Networks on the real engine: listing survives networks vanishing mid-list, create and
remove are idempotent, removal stays inside opskit's scope.

Bad input refused before any call, and the containers table, are tested without an engine
in ../unit/test_network.py."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator

import pytest

import opskit
from opskit.base import labels as L

pytestmark = pytest.mark.engine

SCOPE = "fixA"
TEST_LABEL = "opskit-test.session"


def _sweep(ops: opskit.Ops) -> None:
    api = ops.engine.api
    for label in (f"{TEST_LABEL}={SCOPE}", f"{L.SCOPE}={SCOPE}"):
        for n in api.networks(filters={"label": [label]}):
            with contextlib.suppress(Exception):
                api.remove_network(n["Id"])


@pytest.fixture(scope="module")
def ops() -> Iterator[opskit.Ops]:
    """A connection in scope fixA; every network of the scope or test label removed after."""
    try:
        ops = opskit.connect(scope=SCOPE)
    except opskit.EngineUnavailable as exc:
        pytest.skip(f"no Docker engine: {exc}")
    try:
        yield ops
    finally:
        _sweep(ops)
        ops.close()


def _name(kind: str) -> str:
    return f"fixa-{kind}-{secrets.token_hex(3)}"


def test_listing_while_networks_come_and_go_never_raises(ops: opskit.Ops) -> None:
    api = ops.engine.api
    done = threading.Event()
    churn_errors: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(50):  # 50 creates and 50 removes
                net = api.create_network(_name("churn"), internal=True,
                                         labels={TEST_LABEL: SCOPE})
                api.remove_network(net["Id"])
        except BaseException as exc:
            churn_errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    listings = 0
    while not done.is_set() and listings < 5000:
        seen = ops.networks()
        listings += 1
        assert len({n.id for n in seen}) == len(seen)
        assert any(n.name == "bridge" for n in seen)
    worker.join(30)
    assert not churn_errors, churn_errors
    assert listings > 10


def test_create_and_remove_are_idempotent(ops: opskit.Ops) -> None:
    name = _name("idem")
    first = ops.network_create(name, internal=True)
    again = ops.network_create(name, internal=True)
    assert first.id == again.id and first.managed and first.internal
    assert [n.id for n in ops.networks() if n.name == name] == [first.id]
    ops.network_remove(name)
    assert [n for n in ops.networks() if n.name == name] == []
    ops.network_remove(name, missing_ok=True)
    with pytest.raises(opskit.NetworkNotFound) as caught:
        ops.network_remove(name)
    assert name in str(caught.value)


def test_concurrent_creates_of_one_name_all_succeed(ops: opskit.Ops) -> None:
    name = _name("race")
    start = threading.Barrier(4)
    results: list[str] = []
    failures: list[BaseException] = []

    def create() -> None:
        start.wait()
        try:
            results.append(ops.network_create(name, internal=True).name)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures, failures
    assert results == [name] * 4


def test_removing_a_network_opskit_did_not_create_is_refused(ops: opskit.Ops) -> None:
    api = ops.engine.api
    foreign, other_scope = _name("foreign"), _name("other")
    api.create_network(foreign, internal=True, labels={TEST_LABEL: SCOPE})
    api.create_network(other_scope, internal=True, labels={
        TEST_LABEL: SCOPE, **L.resource_labels("someone-else", role="network")})
    for name in (foreign, other_scope):
        with pytest.raises(opskit.OutOfScope) as caught:
            ops.network_remove(name)
        assert name in str(caught.value) and "Hint:" in str(caught.value)
        assert [n["Name"] for n in api.networks(names=[name])] == [name], "still there"
