"""Deploy on the real engine: idempotence, rolling replace, rollback; a port already taken, an
image missing, invalid specs and name conflicts each a clear error that leaves nothing behind.

Assertions about what the engine did come from an independent event observer.
"""

from __future__ import annotations

import socket
import urllib.request

import pytest

import opskit
from opskit.engine.targets import list_raw
from tests.support.live import foreign_container
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine

HEALTH = {"test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
          "interval": 0.5, "timeout": 1.0, "retries": 2}


def spec(name: str, **kw: object) -> opskit.ServiceSpec:
    fields: dict[str, object] = {"name": name, "image": "opskit/demo-web:latest",
                                 "healthcheck": HEALTH, "labels": {TEST_LABEL: SESSION},
                                 "stop_timeout": 2}
    fields.update(kw)
    return opskit.ServiceSpec.from_dict(fields)


def names_of(ops: opskit.Ops, prefix: str) -> list[str]:
    return sorted(c["Names"][0].lstrip("/") for c in list_raw(ops.engine)
                  if c["Names"][0].lstrip("/").startswith(prefix))


def test_unchanged_spec_changes_nothing(clean, demo, observer) -> None:
    ops, name = clean, unique("idem")
    first = ops.deploy(spec(name, replicas=2), timeout=30)
    second = ops.deploy(spec(name, replicas=2), timeout=30)
    assert second.ids == first.ids
    assert second.kept == first.ids and not second.changed
    for cid in first.ids:
        assert observer.count("create", cid) == 1 and observer.count("destroy", cid) == 0


def test_changed_spec_replaces_one_at_a_time(clean, demo, observer) -> None:
    ops, name = clean, unique("roll")
    first = ops.deploy(spec(name, replicas=2, env={"VERSION": "1"}), timeout=30)
    second = ops.deploy(spec(name, replicas=2, env={"VERSION": "2"}), timeout=30)
    assert set(second.ids).isdisjoint(first.ids)
    assert [old for old, _ in second.replaced] == list(first.ids)
    assert names_of(ops, name) == [name, f"{name}-2"]
    for cid in second.ids:
        assert ops.inspect(cid).health == "healthy"
    # one at a time: the second old replica was still running when the first new one started
    starts = [e for e in observer.events() if e.get("Action") == "start"
              and e["Actor"]["ID"] in second.ids]
    destroy_old2 = [e for e in observer.events() if e.get("Action") == "destroy"
                    and e["Actor"]["ID"] == first.ids[1]]
    assert starts and destroy_old2 and starts[0]["timeNano"] < destroy_old2[0]["timeNano"]
    for cid in first.ids:
        assert observer.count("destroy", cid) == 1


def test_failed_new_version_rolls_back(clean, demo, free_port, observer) -> None:
    ops, name = clean, unique("bad")
    good = ops.deploy(spec(name, ports={8080: free_port}), timeout=30)
    broken = spec(name, ports={8080: free_port},
                  healthcheck={**HEALTH, "test": ["CMD", "test", "-f", "/no/such/file"]})
    with pytest.raises(opskit.DeployFailed) as caught:
        ops.deploy(broken, timeout=4)
    err = caught.value
    assert err.rolled_back and isinstance(err.cause, opskit.WaitTimeout)
    assert "unhealthy" in str(err) and "Hint:" in str(err)
    # the old container is back under its name and serving on the same port
    info = ops.inspect(name)
    assert info.id == good.ids[0] and info.state == "running"
    assert urllib.request.urlopen(f"http://127.0.0.1:{free_port}/health", timeout=5).read() \
        == b"ok\n"
    assert names_of(ops, name) == [name]
    assert observer.count("destroy", good.ids[0]) == 0


def test_crashing_new_version_reports_exit_and_logs(clean, demo) -> None:
    ops, name = clean, unique("crash")
    ops.deploy(spec(name), timeout=30)
    crashing = opskit.ServiceSpec(name=name, image="opskit/demo-crash:latest",
                                  env={"CRASH_AFTER": "0.2", "CRASH_CODE": "3"},
                                  labels={TEST_LABEL: SESSION})
    with pytest.raises(opskit.DeployFailed) as caught:
        ops.deploy(crashing, timeout=10)
    cause = caught.value.cause
    assert isinstance(cause, opskit.WaitTimeout) and cause.exit_code == 3
    assert cause.last_logs, "the error carries the replica's last log lines"
    assert ops.inspect(name).image == "opskit/demo-web:latest"


def test_scale_down_removes_extra_replicas(clean, demo) -> None:
    ops, name = clean, unique("scale")
    ops.deploy(spec(name, replicas=3), wait="running", timeout=30)
    result = ops.deploy(spec(name, replicas=2), wait="running", timeout=30)
    assert len(result.removed) == 1
    assert names_of(ops, name) == [name, f"{name}-2"]


# -- a port already taken: a clear error naming it, nothing left, no retry -------------------

def test_port_in_use_names_port_and_leaves_nothing(clean, demo, observer) -> None:
    ops, name, net = clean, unique("port"), unique("portnet")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(opskit.PortInUse) as caught:
            ops.deploy(spec(name, ports={8080: port}, networks=[net]), timeout=10)
    assert caught.value.port == port and str(port) in str(caught.value)
    assert names_of(ops, name) == []
    assert ops.engine.api.networks(names=[net]) == [], "the network deploy made is gone too"
    creates = observer.count("create", name)
    assert creates == 1 and observer.count("destroy", name) == 1, "no retry loop, nothing left"


# -- an image missing here: a clear error at once, never a pull ------------------------------

def test_missing_image_fails_at_once_without_pull(clean, observer) -> None:
    ops, name = clean, unique("noimg")
    with pytest.raises(opskit.ImageNotFound) as caught:
        ops.deploy(spec(name, image="missing-image:1"), timeout=10)
    assert "missing-image:1" in str(caught.value) and "never pulls" in str(caught.value)
    assert observer.pulls() == []
    assert observer.count("create", name) == 0


# -- invalid specs: an error naming the field, before any API call ---------------------------

BAD_SPECS = [
    ({"memory": "-5m"}, "memory"),
    ({"memory": "lots"}, "memory"),
    ({"restart": "sometimes"}, "restart"),
    ({"ports": {"80x": 8080}}, "ports[80x]"),
    ({"ports": {8080: 70000}}, "ports[8080]"),
    ({"ports": {"8080/foo": 1}}, "ports[8080/foo]"),
    ({"colour": "blue"}, "colour"),
    ({"healthcheck": {"test": ["CMD", "true"], "every": 1}}, "healthcheck.every"),
    ({"healthcheck": {"test": ["CMD", "true"], "interval": -1}}, "healthcheck.interval"),
    ({"replicas": 0}, "replicas"),
    ({"cpus": -1}, "cpus"),
    ({"volumes": {"data": "relative"}}, "volumes[data]"),
    ({"env": {"A=B": "x"}}, "env[A=B]"),
    ({"labels": {"io.opskit.managed": "true"}}, "labels[io.opskit.managed]"),
    ({"name": "bad name!"}, "name"),
]


@pytest.mark.parametrize(("change", "field"), BAD_SPECS)
def test_invalid_spec_names_field_before_any_call(clean, change, field, observer) -> None:
    data = {"name": unique("inv"), "image": "opskit/demo-web:latest", **change}
    with pytest.raises(opskit.InvalidSpec) as caught:
        clean.deploy(data)
    assert caught.value.field == field
    assert f"'{field}'" in str(caught.value) and "Hint:" in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert observer.count("create", str(data["name"])) == 0


def test_engine_400_is_passed_through(clean, demo) -> None:
    ops, name = clean, unique("e400")
    bad = spec(name, user="no-such-user-here")
    with pytest.raises(opskit.OpsKitError) as caught:
        ops.deploy(bad, wait="running", timeout=10)
    assert "no-such-user-here" in str(caught.value)
    assert names_of(ops, name) == []


# -- name conflicts: a foreign holder never touched; the same spec a no-op -------------------

def test_name_held_by_foreign_container_is_refused_untouched(clean, demo, observer) -> None:
    ops, name = clean, unique("taken")
    cid = foreign_container(ops, name)
    with pytest.raises(opskit.NameConflict) as caught:
        ops.deploy(spec(name), timeout=10)
    assert caught.value.holder_id == cid
    assert ops.engine.api.inspect_container(cid)["State"]["Status"] == "running"
    touched = {a.split(":")[0] for a in observer.actions(cid)}
    assert touched <= {"create", "start", "exec_create", "exec_start", "exec_die",
                       "health_status"}, touched
    assert observer.count("create", name) == 1, "only the foreign container was ever created"


def test_same_spec_is_a_no_op_and_changed_spec_replaces(clean, demo) -> None:
    ops, name = clean, unique("same")
    first = ops.deploy(spec(name), timeout=30)
    assert ops.deploy(spec(name), timeout=30).kept == first.ids
    changed = ops.deploy(spec(name, env={"X": "1"}), timeout=30)
    assert changed.replaced and changed.ids != first.ids


def test_deploy_from_a_build_context_rebuilds_and_replaces(clean, demo, tmp_path,
                                                            observer) -> None:
    ops, name = clean, unique("built")
    (tmp_path / "Dockerfile").write_text("FROM opskit/demo-web:latest\nCOPY page.txt /www/\n")
    (tmp_path / "page.txt").write_text("v1\n")
    built = spec(name, image=f"opskit-test/{name}:latest", build=str(tmp_path))
    first = ops.deploy(built, timeout=30)
    assert ops.exec(name, ["cat", "/www/page.txt"]).stdout == "v1\n"
    assert ops.deploy(built, timeout=30).kept == first.ids, "same source: nothing to do"
    (tmp_path / "page.txt").write_text("v2\n")
    second = ops.deploy(built, timeout=30)
    assert second.replaced and second.image_id != first.image_id
    assert ops.exec(name, ["cat", "/www/page.txt"]).stdout == "v2\n"
    assert observer.pulls() == []


def test_interrupted_deploy_rolls_back(clean, demo, free_port, observer) -> None:
    ops, name = clean, unique("intr")
    good = ops.deploy(spec(name, ports={8080: free_port}), timeout=30)

    def interrupt(line: str) -> None:
        if "stopping the old container" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ops.deploy(spec(name, ports={8080: free_port}, env={"V": "2"}), timeout=30,
                   progress=interrupt)
    assert names_of(ops, name) == [name]
    info = ops.inspect(name)
    assert info.id == good.ids[0] and info.state == "running"
    assert ops.deploy(spec(name, ports={8080: free_port}), timeout=30).kept == good.ids


def test_leftover_of_a_killed_deploy_takes_its_name_back(clean, demo) -> None:
    ops, name = clean, unique("left")
    good = ops.deploy(spec(name), timeout=30)
    ops.engine.api.rename(good.ids[0], f"{name}.old-{good.ids[0][:8]}")  # as a SIGKILL leaves it
    again = ops.deploy(spec(name), timeout=30)
    assert again.ids == good.ids and names_of(ops, name) == [name]


def test_concurrent_deploys_of_one_service_do_not_interleave(clean, demo) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ops, name = clean, unique("conc")

    def attempt(_: int) -> str:
        try:
            ops.deploy(spec(name), timeout=30)
            return "deployed"
        except opskit.Conflict as exc:
            assert "in progress" in str(exc)
            return "refused"

    with ThreadPoolExecutor(3) as pool:
        outcomes = sorted(pool.map(attempt, range(3)))
    assert "deployed" in outcomes and set(outcomes) <= {"deployed", "refused"}
    assert names_of(ops, name) == [name]
    assert not [c for c in ops.engine.api.containers(all=True)
                if c["Names"][0].startswith("/opskit-lease-deploy")
                and c["Labels"].get("io.opskit.scope") == ops.engine.scope]
