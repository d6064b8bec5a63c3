"""ServiceSpec and Healthcheck: pure validation, YAML, round trips, hashing (no engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

import opskit
from opskit.spec.service import PortMap, ServiceSpec


def test_contract_example_from_the_readme() -> None:
    spec = opskit.ServiceSpec(
        name="web", image="opskit/demo-web:latest", ports={8080: 18080}, env={"MODE": "prod"},
        healthcheck=opskit.Healthcheck(test=["CMD", "wget", "-q", "-O-",
                                             "http://127.0.0.1:8080/health"],
                                       interval=1.0, timeout=1.0, retries=2, start_period=0.0),
        restart="no", networks=["opsnet"], volumes={"webdata": "/data"}, memory="64m", cpus=0.5,
        user=None, workdir=None, command=None, labels={}, replicas=1)
    assert spec.port_maps == (PortMap(8080, "tcp", "127.0.0.1", 18080),)
    assert spec.memory == 64 * 1024 * 1024
    assert spec.health is not None and spec.health.to_engine()["Interval"] == 1_000_000_000
    assert spec.replica_names() == ["web"]


def test_ports_forms() -> None:
    spec = ServiceSpec(name="p", image="x:1", ports={"53/udp": "0.0.0.0:5353", 8080: None,
                                                     9090: ("::1", 19090)})
    assert spec.port_maps == (PortMap(53, "udp", "0.0.0.0", 5353),
                              PortMap(8080, "tcp", "127.0.0.1", None),
                              PortMap(9090, "tcp", "::1", 19090))


def test_same_host_port_twice_is_refused() -> None:
    with pytest.raises(opskit.InvalidSpec) as caught:
        ServiceSpec(name="p", image="x:1", ports={80: 8080, 81: 8080})
    assert "published twice" in str(caught.value)


def test_yaml_round_trip_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "web.yaml"
    path.write_text("""
name: web
image: opskit/demo-web:latest
ports: {8080: null}
env: {MODE: prod}
healthcheck: {test: [CMD, wget, -q, -O-, "http://127.0.0.1:8080/health"], interval: 1s, retries: 2}
memory: 64m
replicas: 2
""")
    spec = ServiceSpec.from_yaml(path)
    assert spec.replica_names() == ["web", "web-2"]
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    path.write_text("name: web\nimage: x:1\nreplica: 2\n")
    with pytest.raises(opskit.InvalidSpec) as caught:
        ServiceSpec.from_yaml(path)
    assert caught.value.field == "replica" and "replicas" in str(caught.value)


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(opskit.InvalidSpec, match="cannot read"):
        ServiceSpec.from_yaml(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(opskit.InvalidSpec, match=r"bad\.yaml"):
        ServiceSpec.from_yaml(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(opskit.InvalidSpec, match="not a mapping"):
        ServiceSpec.from_yaml(bad)


def test_config_hash_ignores_replicas_only() -> None:
    base = ServiceSpec(name="h", image="x:1", env={"A": "1"})
    assert base.config_hash == base.replace(replicas=3).config_hash
    assert base.config_hash != base.replace(env={"A": "2"}).config_hash
    assert base.config_hash == ServiceSpec.from_dict(base.to_dict()).config_hash


def test_recovery_policy_is_a_field_that_does_not_shape_replicas() -> None:
    from opskit.spec.policy import RecoveryPolicy

    base = ServiceSpec(name="h", image="x:1")
    spec = base.replace(recovery={"action": "restart", "max_attempts": 2, "window": "5m"})
    assert isinstance(spec.recovery, RecoveryPolicy) and spec.recovery.window == 300.0
    assert spec.config_hash == base.config_hash, "changing the policy replaces no container"
    assert ServiceSpec.from_dict(spec.to_dict()).recovery == spec.recovery
    with pytest.raises(opskit.InvalidSpec) as caught:
        base.replace(recovery={"window": "0s"})
    assert caught.value.field == "recovery.window" and "too small" in str(caught.value)
    with pytest.raises(opskit.InvalidSpec) as caught:
        base.replace(recovery={"retries": 3})
    assert caught.value.field == "recovery.retries"
    with pytest.raises(opskit.InvalidSpec, match="'recovery'"):
        base.replace(recovery="restart")


def test_build_context_instead_of_image() -> None:
    spec = ServiceSpec(name="app", build={"context": "./app", "args": {"V": "1"}})
    assert spec.image == "opskit-built/app:latest"
    assert spec.build_context is not None and spec.build_context.args == {"V": "1"}
    with pytest.raises(opskit.InvalidSpec, match="'image'"):
        ServiceSpec(name="app")


def test_healthcheck_shell_string_and_none() -> None:
    assert opskit.Healthcheck(test="curl -f localhost").test == ("CMD-SHELL", "curl -f localhost")
    assert opskit.Healthcheck(test=["NONE"]).test == ("NONE",)
    assert opskit.Healthcheck(test=["wget", "x"]).test == ("CMD", "wget", "x")
    with pytest.raises(opskit.InvalidSpec, match=r"healthcheck\.retries"):
        opskit.Healthcheck(test="true", retries=-1)


def test_secret_values_are_not_in_errors() -> None:
    with pytest.raises(opskit.InvalidSpec) as caught:
        ServiceSpec(name="s", image="x:1", env={"PASSWORD": ["CANARY-not-text"]})
    assert "CANARY" not in str(caught.value)
