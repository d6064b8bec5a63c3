"""Networks with no engine (a fake API that records what was asked): bad input is refused
before any call, and a network vanishing between list and inspect is left out while any other
failure is an error. Also the containers table: a vanished container is left out, any other
failure is an error, not a partial table.

Networks on the real engine (listing while they come and go, idempotent create and remove,
removal inside opskit's scope) are in ../engine/test_network.py."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest
import requests.exceptions

import opskit
from opskit.act import network
from opskit.engine.connection import Engine
from opskit.observe import listing

SCOPE = "fixA"


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
