"""What a service depends on (a spec's ``depends_on``, Compose's label) and in what order
dependants are restarted; and the spec each replica carries, read back. No engine."""

from __future__ import annotations

import pytest

import opskit
from opskit.base import labels as L
from opskit.base.errors import InvalidSpec
from opskit.spec.dependencies import (
    Dependency,
    dependency_order,
    from_compose_label,
    parse_depends_on,
)
from opskit.spec.desired import spec_from_attrs, spec_labels

KEY = b"k" * 32


def test_depends_on_short_and_long_forms() -> None:
    assert parse_depends_on(["db"]) == (Dependency("db"),)
    assert parse_depends_on({"db": {"restart": True}, "cache": {}}) == (
        Dependency("db", True), Dependency("cache"))
    spec = opskit.ServiceSpec(name="app", image="opskit/demo-web:latest",
                              depends_on={"db": {"restart": True}})
    assert spec.dependencies == (Dependency("db", True),)
    assert spec.config_hash == opskit.ServiceSpec(name="app",
                                                  image="opskit/demo-web:latest").config_hash


@pytest.mark.parametrize(("value", "field"), [
    ("db", "depends_on"), ({"db": {"restart": "yes"}}, "depends_on[db].restart"),
    ({"db": {"condition": "soon"}}, "depends_on[db].condition"),
    ({"db": {"wait": 1}}, "depends_on[db].wait"), (["db", "db"], "depends_on"),
    (["app"], "depends_on")])
def test_bad_depends_on_names_the_field(value: object, field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        opskit.ServiceSpec(name="app", image="opskit/demo-web:latest", depends_on=value)
    assert caught.value.field == field


def test_compose_label_is_read_never_trusted() -> None:
    assert from_compose_label("db:service_healthy:true,cache:service_started:false") == (
        Dependency("db", True, "service_healthy"), Dependency("cache", False, "service_started"))
    assert from_compose_label("db") == (Dependency("db", False, "service_started"),)
    assert from_compose_label(",,:x:y,") == ()
    assert from_compose_label(None) == ()


def test_dependants_in_dependency_order() -> None:
    graph = {"web": {"api"}, "api": {"db"}, "worker": {"db", "api"}, "db": set(),
             "other": {"cache"}}
    assert dependency_order(graph, ["db"]) == ["api", "web", "worker"]
    assert dependency_order(graph, ["cache"]) == ["other"]
    assert dependency_order({"a": {"b"}, "b": {"a"}}, ["a"]) in (["b", "a"], ["a", "b"])


def test_a_spec_is_read_back_from_its_labels_without_env_values_in_them() -> None:
    spec = opskit.ServiceSpec(name="web", image="opskit/demo-web:latest",
                              env={"DB_PASSWORD": "CANARY9"}, ports={8080: 18080},
                              recovery={"max_attempts": 3}, depends_on=["db"])
    labels = {**spec_labels(spec, KEY), L.SPEC_HASH: L.spec_digest(KEY, spec.config_hash)}
    assert "CANARY9" not in repr(labels)
    attrs = {"Config": {"Labels": labels, "Env": ["DB_PASSWORD=CANARY9", "PATH=/bin"]}}
    assert spec_from_attrs(attrs, KEY) == (spec, "")


@pytest.mark.parametrize(("change", "why"), [
    (lambda a: a["Config"]["Labels"].pop(L.SPEC), "no spec label"),
    (lambda a: a["Config"]["Labels"].update({L.SPEC_SIG: "0" * 32}), "signature"),
    (lambda a: a["Config"].update(Env=[]), "lacks DB_PASSWORD"),
    (lambda a: a["Config"]["Labels"].update({L.SPEC_HASH: "0" * 24}), "spec hash")])
def test_a_spec_label_that_does_not_hold_is_not_believed(change, why) -> None:
    spec = opskit.ServiceSpec(name="web", image="opskit/demo-web:latest",
                              env={"DB_PASSWORD": "x"})
    labels = {**spec_labels(spec, KEY), L.SPEC_HASH: L.spec_digest(KEY, spec.config_hash)}
    attrs = {"Config": {"Labels": labels, "Env": ["DB_PASSWORD=x"]}}
    change(attrs)
    found, reason = spec_from_attrs(attrs, KEY)
    assert found is None and why in reason
    assert spec_from_attrs(attrs, b"other-key" * 4)[0] is None
