"""Networks: listing survives networks vanishing mid-list, create and remove are idempotent,
removal stays inside opskit's scope, bad input is refused before any call. Also the containers
table: a vanished container is left out, any other failure is an error, not a partial table."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest
import requests.exceptions

import opskit
from opskit import labels as L
from opskit import listing, network
from opskit.engine import Engine

SCOPE = "fixA"
TEST_LABEL = "opskit-test.session"


# -- without an engine: a fake API that records what was asked ------------------------------

class _FakeApi:
    def __init__(self, **methods: Callable[..., Any]) -> None:
        self.calls: list[str] = []
        self._methods = methods

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if name not in self._methods:
                raise AssertionError(f"unexpected engine call {name}")
            return self._methods[name](*args, **kwargs)
        return call


def _engine(api: _FakeApi) -> Engine:
    return Engine(client=SimpleNamespace(api=api), host="unix:///fake.sock", scope=SCOPE,
                  key=b"k", timeout=1.0)


def _gone(what: str) -> docker.errors.NotFound:
    return docker.errors.NotFound(f"404: {what}", explanation=f"network {what} not found")


def _net(nid: str) -> dict[str, Any]:
    return {"Id": nid, "Name": f"net-{nid}", "Driver": "bridge", "Labels": {}}


@pytest.mark.parametrize(("name", "subnet", "field"), [
    ("fixa-ok", "10.0.0.300/24", "subnet"), ("fixa-ok", "not-a-cidr", "subnet"),
    ("fixa-ok", "10.1.2.3/24", "subnet"), ("fixa-ok", 12, "subnet"), ("fixa-ok", "", "subnet"),
    ("bad name!", None, "network"), ("", None, "network")])
def test_bad_input_is_refused_before_any_call(name: str, subnet: Any, field: str) -> None:
    api = _FakeApi()
    with pytest.raises(opskit.InvalidSpec) as caught:
        network.network_create(_engine(api), name, subnet=subnet)
    assert caught.value.field == field
    assert api.calls == []


def test_a_network_gone_between_list_and_inspect_is_left_out() -> None:
    def inspect(nid: str) -> dict[str, Any]:
        if nid == "b":
            raise _gone(nid)
        return _net(nid)

    api = _FakeApi(networks=lambda: [{"Id": "a"}, {"Id": "b"}, {"Id": "c"}],
                   inspect_network=inspect)
    assert [n.id for n in network.networks(_engine(api))] == ["a", "c"]


def test_other_inspect_failures_are_errors_not_a_shorter_list() -> None:
    def inspect(nid: str) -> dict[str, Any]:
        raise requests.exceptions.ConnectionError("connection refused")

    api = _FakeApi(networks=lambda: [{"Id": "a"}], inspect_network=inspect)
    with pytest.raises(opskit.EngineUnavailable) as caught:
        network.networks(_engine(api))
    assert "unix:///fake.sock" in str(caught.value)


def _container(cid: str) -> dict[str, Any]:
    return {"Id": cid, "Name": f"/c-{cid}", "Config": {"Labels": {}}, "State": {}}


def test_containers_table_leaves_out_a_container_gone_since_the_list() -> None:
    def inspect(cid: str) -> dict[str, Any]:
        if cid == "b":
            raise docker.errors.NotFound("404", explanation="No such container: b")
        return _container(cid)

    api = _FakeApi(containers=lambda **kw: [{"Id": "a"}, {"Id": "b"}],
                   inspect_container=inspect)
    assert [r.id for r in listing.container_rows(_engine(api))] == ["a"]


@pytest.mark.parametrize(("failure", "error"), [
    (requests.exceptions.ConnectionError("refused"), opskit.EngineUnavailable),
    (requests.exceptions.ReadTimeout("slow"), opskit.EngineUnavailable),
    (docker.errors.APIError("500", explanation="daemon busy"), opskit.EngineError)])
def test_containers_table_raises_instead_of_going_partial(failure: Exception,
                                                          error: type[Exception]) -> None:
    def inspect(cid: str) -> dict[str, Any]:
        if cid == "b":
            raise failure
        return _container(cid)

    api = _FakeApi(containers=lambda **kw: [{"Id": "a"}, {"Id": "b"}, {"Id": "c"}],
                   inspect_container=inspect)
    with pytest.raises(error):
        listing.container_rows(_engine(api))


# -- on the real engine --------------------------------------------------------------------

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


@pytest.mark.engine
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


@pytest.mark.engine
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


@pytest.mark.engine
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


@pytest.mark.engine
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
