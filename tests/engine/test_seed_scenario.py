"""The seed scenario end to end, on the real engine: deploy, observe, communicate, manage."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

import opskit
from opskit.engine.targets import list_raw
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine

HEALTH = opskit.Healthcheck(test=["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
                            interval=0.5, timeout=1.0, retries=2)


def web_spec(name: str, port: int | None, network: str, **kw: object) -> opskit.ServiceSpec:
    ports = {8080: port} if port else {}
    return opskit.ServiceSpec(name=name, image="opskit/demo-web:latest", ports=ports,
                              networks=[network], healthcheck=HEALTH,
                              labels={TEST_LABEL: SESSION}, **kw)  # type: ignore[arg-type]


def test_seed_scenario(clean, demo, observer, free_port, tmp_path: Path) -> None:
    ops = clean
    net, web = unique("opsnet"), unique("web")

    # build (demo fixture) and run with a published port, healthy
    dep = ops.deploy(web_spec(web, free_port, net), wait="healthy", timeout=30)
    assert dep.created and dep.containers == (web,)
    assert net in dep.networks_created
    page = urllib.request.urlopen(f"http://127.0.0.1:{free_port}/", timeout=5).read()
    assert b"opskit" in page.lower()

    # list it, inspect it, read its logs
    listed = {c["Names"][0].lstrip("/"): c for c in list_raw(ops.engine)}
    assert listed[web]["State"] == "running"
    info = ops.inspect(web)
    assert info.state == "running" and info.health == "healthy"
    assert info.ports["8080/tcp"] == f"127.0.0.1:{free_port}"
    assert info.networks == (net,) and info.service == web
    logs = ops.logs(web)
    assert list(logs.columns) == ["ts", "container", "stream", "line"]
    assert str(logs["ts"].dtype) == "datetime64[ns, UTC]"
    assert (logs["container"] == web).all() and len(logs) >= 1

    # a second network, a second container on the first one, reach the first by name
    other = unique("opsnet2")
    created = ops.network_create(other)
    assert created.managed and created.name == other
    client = unique("client")
    ops.deploy(web_spec(client, None, net), wait="running", timeout=30)
    reply = ops.exec(client, ["wget", "-q", "-O-", f"http://{web}:8080/health"])
    assert reply.exit_code == 0 and reply.stdout.strip() == "ok"
    assert ops.network_connect(other, web) == [web]
    assert other in ops.inspect(web).networks
    assert ops.network_disconnect(other, web) == [web]
    ops.network_remove(other)

    # copy a file into it and out again
    src = tmp_path / "note.txt"
    src.write_text("hello from the host\n")
    assert ops.copy_to(web, src, "/www/") == "/www/note.txt"
    served = ops.exec(client, ["wget", "-q", "-O-", f"http://{web}:8080/note.txt"])
    assert served.stdout == "hello from the host\n"
    back = ops.copy_from(web, "/www/note.txt", tmp_path / "back.txt")
    assert back.read_text() == "hello from the host\n"

    # pause and unpause, restart, kill, remove — each seen by the independent observer
    ops.pause(web)
    assert ops.inspect(web).state == "paused"
    ops.unpause(web)
    assert ops.inspect(web).state == "running"
    before = ops.inspect(web).started_at
    ops.restart(web, timeout=2)
    observer.wait_for("restart", web)
    assert ops.inspect(web).started_at > before
    ops.kill(web)
    observer.wait_for("die", web)
    assert ops.inspect(web).state == "exited"
    ops.remove(web)
    observer.wait_for("destroy", web)
    with pytest.raises(opskit.ContainerNotFound):
        ops.inspect(web)

    # and deploy it again
    again = ops.deploy(web_spec(web, free_port, net), wait="healthy", timeout=30)
    assert again.created and not again.kept
    assert ops.inspect(web).health == "healthy"
    for verb in ("pause", "unpause", "restart", "destroy"):
        assert observer.count(verb, dep.ids[0]) == 1, verb
    assert observer.count("kill", dep.ids[0]) >= 1
    assert observer.pulls() == []


def test_teardown_removes_service_and_its_network(clean, demo, observer) -> None:
    ops = clean
    net, svc = unique("tdnet"), unique("td")
    dep = ops.deploy(web_spec(svc, None, net, replicas=2), wait="running", timeout=30)
    removed = ops.teardown(svc)
    assert sorted(removed) == sorted([f"container:{svc}", f"container:{svc}-2",
                                      f"network:{net}"])
    assert not [c for c in list_raw(ops.engine) if c["Names"][0].lstrip("/").startswith(svc)]
    for cid in dep.ids:
        observer.wait_for("destroy", cid)
