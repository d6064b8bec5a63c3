"""A fleet of real engines: the main one and a throwaway dockerd in its own network namespace.

Reads fan out with a deadline per engine: a stopped (SIGSTOP) engine costs the deadline, not
the notebook, its rows are missing and its status row says why; it answers again once resumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import docker.tls
import pytest

import opskit
from tests.support.live import sweep
from tests.support.observer import EventObserver
from tests.support.paths import ROOT
from tests.support.relay import Relay
from tests.support.second_engine import MAIN_URL, ThrowawayEngine
from tests.support.session import unique, until
from tests.support.tls import TlsFiles, link_netns, make_certs

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(ThrowawayEngine.unavailable_reason() is not None,
                       reason=f"throwaway engine: {ThrowawayEngine.unavailable_reason()}"),
]

GONE = "unix:///nonexistent/opskit-fleet.sock"


@pytest.fixture(scope="module")
def edge(demo: list[str]) -> Iterator[ThrowawayEngine]:
    """A second engine with the demo web image, torn down whatever happens."""
    eng = ThrowawayEngine(f"okf{os.getpid() % 100000}",
                          extra_args=["--label", "opskit-test.role=edge"])
    try:
        eng.start()
        eng.load_image("opskit/demo-web:latest")
        yield eng
    finally:
        eng.close()


@pytest.fixture(autouse=True)
def clean_edge(clean: Any, edge: ThrowawayEngine) -> Iterator[None]:
    """After each test, what the test scope left on the edge engine is removed (``clean``
    does it on the main one)."""
    yield
    if edge.running:
        with opskit.connect(edge.url, scope=clean.engine.scope) as ops:
            sweep(ops)


@pytest.fixture
def fleet(clean: Any, edge: ThrowawayEngine) -> Iterator[opskit.Fleet]:
    """main, edge and an engine that is not there, in the test scope."""
    with opskit.connect_fleet({"main": MAIN_URL, "edge": edge.url, "gone": GONE},
                              scope=clean.engine.scope, timeout=5, deadline=3) as fleet:
        yield fleet


def test_one_frame_over_engines_with_an_engine_column(fleet: opskit.Fleet) -> None:
    assert fleet.reachable == ["main", "edge"]
    name = unique("fleet")
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest")
    for engine in ("main", "edge"):
        fleet[engine].deploy(spec, wait="running", timeout=30)

    frame = fleet.containers()
    mine = frame[frame["name"].astype(str) == name]
    assert sorted(mine["engine"].astype(str)) == ["edge", "main"]
    assert list(frame["engine"].cat.categories) == ["main", "edge", "gone"]
    assert list(frame.columns[:2]) == ["engine", "id"]
    status = fleet.last
    assert status is not None
    assert list(status["reachable"]) == [True, True, False]
    assert "opskit-fleet.sock" in status.set_index("engine").loc["gone", "error"]

    overview = fleet.status().set_index("engine")
    assert overview.loc["edge", "reachable"] and overview.loc["edge", "running"] >= 1
    assert not overview.loc["gone", "reachable"]
    fleet["edge"].teardown(name)


def test_a_stopped_engine_costs_the_deadline_and_says_why(fleet: opskit.Fleet,
                                                          edge: ThrowawayEngine) -> None:
    assert edge.pid is not None
    os.kill(edge.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        frame = fleet.containers()
        took = time.monotonic() - started
    finally:
        os.kill(edge.pid, signal.SIGCONT)
    assert took < fleet.deadline + 2, f"the fleet read took {took:.1f} s"
    assert set(frame["engine"].astype(str)) <= {"main"}
    status = fleet.last
    assert status is not None
    row = status.set_index("engine").loc["edge"]
    assert not row["reachable"] and "no answer within 3 s" in row["error"]

    def answers() -> bool:
        fleet.containers()
        return bool(fleet.last is not None and fleet.last.set_index("engine").loc[
            "edge", "reachable"])

    deadline = time.monotonic() + 30
    while not answers():
        assert time.monotonic() < deadline, "the resumed engine never answered again"
        time.sleep(0.5)


def test_deploy_to_chosen_engines_is_idempotent_and_torn_down(fleet: opskit.Fleet) -> None:
    name = unique("fdep")
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest")
    with pytest.raises(opskit.EngineUnavailable, match="not reachable"):
        fleet.deploy(spec, wait="running")  # "gone" is one of all the engines: nowhere
    assert name not in set(fleet.containers()["name"].astype(str))

    done = fleet.deploy(spec, engines=["main", "edge"], wait="running", timeout=30)
    assert set(done) == {"main", "edge"} and all(d.created for d in done.values())
    again = fleet.deploy(spec, engines=["main", "edge"], wait="running", timeout=30)
    assert all(d.kept and not d.created for d in again.values())

    removed = fleet.teardown(name, engines=["main", "edge"])
    assert all(removed.values())
    assert name not in set(fleet.containers()["name"].astype(str))


def test_engines_are_chosen_by_their_labels(fleet: opskit.Fleet) -> None:
    assert fleet.select(["main", "edge"], labels={"opskit-test.role": "edge"}) == ["edge"]
    with pytest.raises(opskit.EngineUnavailable, match="labels"):
        fleet.select(labels={"opskit-test.role": "edge"})  # "gone" might match: refuse
    with pytest.raises(opskit.InvalidTarget, match="nowhere"):
        fleet.select(["nowhere"])


def test_a_failure_on_one_engine_keeps_the_others_and_names_it(fleet: opskit.Fleet) -> None:
    name = unique("fpart")
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-crash:latest")  # not on edge
    with pytest.raises(opskit.FleetFailed) as caught:
        fleet.deploy(spec, engines=["main", "edge"], wait=None, timeout=30)
    outcomes = caught.value.outcomes
    assert outcomes["main"].ok and not outcomes["edge"].ok
    assert "demo-crash" in outcomes["edge"].error  # never pulled: the image is named
    assert "Hint:" in str(caught.value)
    fleet.teardown(name, engines=["main"])


def test_a_black_holed_engine_costs_the_deadline(clean: Any) -> None:
    with Relay("/var/run/docker.sock") as relay, opskit.connect_fleet(
            {"main": MAIN_URL, "far": relay.url}, scope=clean.engine.scope, timeout=5,
            deadline=2) as fleet:
        assert fleet.reachable == ["main", "far"]
        assert set(fleet.containers()["engine"].astype(str)) <= {"main", "far"}
        relay.blackhole()
        started = time.monotonic()
        fleet.containers()
        took = time.monotonic() - started
        assert took < 4, f"the fleet read took {took:.1f} s"
        status = fleet.last
        assert status is not None
        assert list(status["reachable"]) == [True, False]
        assert "no answer within 2 s" in status.iloc[1]["error"]
        relay.passthrough()


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TlsFiles]]:
    """A dockerd reached over TCP with TLS verification, as a remote host is: its own network
    namespace, a veth link, certificates made here; its URL and the certificates."""
    tag = os.getpid() % 100000
    netns, subnet = f"okr{tag}", 1 + tag % 250
    certs = make_certs(tmp_path_factory.mktemp("tls"), f"10.251.{subnet}.2")
    eng = None
    try:
        inside = link_netns(netns, f"okr{tag}h", subnet)
        eng = ThrowawayEngine(netns, extra_args=["-H", f"tcp://{inside}:2376",
                                                 *certs.dockerd_args()])
        eng.start()
        yield f"tcp://{inside}:2376", certs
    finally:
        if eng is not None:
            eng.close()
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)


def test_a_remote_engine_over_tls(clean: Any, remote: tuple[str, TlsFiles], tmp_path: Any,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified against the CA it was given, even where REQUESTS_CA_BUNDLE names the system's
    CAs (requests would let it win); refused without TLS; unreachable with a wrong CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    url, certs = remote
    tls = docker.tls.TLSConfig(client_cert=(str(certs.client_cert), str(certs.client_key)),
                               ca_cert=str(certs.ca), verify=True)
    with opskit.connect_fleet({"main": MAIN_URL, "remote": url}, scope=clean.engine.scope,
                              timeout=10, deadline=10, tls={"remote": tls}) as fleet:
        assert fleet.reachable == ["main", "remote"]
        assert fleet["remote"].host == url
        overview = fleet.status().set_index("engine")
        assert overview.loc["remote", "reachable"] and overview.loc["remote", "version"]
        assert set(fleet.containers()["engine"].cat.categories) == {"main", "remote"}

    with pytest.raises(opskit.InsecureEngine):  # no TLS: refused before any connection
        opskit.connect_fleet({"remote": url}, scope=clean.engine.scope)

    stranger = make_certs(tmp_path / "other", "10.251.0.2", name="other")
    wrong = docker.tls.TLSConfig(client_cert=(str(stranger.client_cert),
                                              str(stranger.client_key)),
                                 ca_cert=str(stranger.ca), verify=True)
    with opskit.connect_fleet({"remote": url}, scope=clean.engine.scope, timeout=10,
                              deadline=10, tls={"remote": wrong}) as fleet:
        assert fleet.reachable == []
        reason = fleet.status().iloc[0]["error"]
        assert url.removeprefix("tcp://") in reason and "certificate" in reason.lower()


def test_one_supervisor_recovers_on_each_engine_and_on_one_that_comes_back(
        clean: Any, edge: ThrowawayEngine, free_port: int) -> None:
    """The late engine is unreachable when the supervisor starts; its container crashes
    meanwhile; once it answers, its watchdog starts and reconciles that failure."""
    name = unique("fsup")
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest")
    scope = clean.engine.scope
    with opskit.connect(edge.url, scope=scope) as direct:
        direct.deploy(spec, wait="healthy", timeout=30)
        with opskit.connect_fleet({"main": MAIN_URL, "late": f"tcp://127.0.0.1:{free_port}"},
                                  scope=scope, timeout=5, deadline=3) as fleet:
            fleet["main"].deploy(spec, wait="healthy", timeout=30)
            assert fleet.reachable == ["main"]
            sup = fleet.watch([name], relist_every=1, retry_every=1, record_bundles=False)
            sup.start()
            try:
                status = sup.status().set_index("engine")
                assert status.loc["main", "watching"] and not status.loc["late", "watching"]
                assert status.loc["late", "error"]
                direct.chaos("crash", name)  # kill -9 from the host, while nobody watches
                with Relay(str(edge.sock), port=free_port):
                    until(lambda: _done(sup, "late"), 40, "the late engine's crash recovered")
                    clean.chaos("crash", name)
                    until(lambda: _done(sup, "main"), 40, "the main engine's crash recovered")
                    timeline = sup.actions()
                    assert list(timeline["engine"].cat.categories) == ["main", "late"]
                    assert timeline["ts"].is_monotonic_increasing
                    until(lambda: direct.inspect(name).health == "healthy", 20, "healthy")
            finally:
                sup.stop()
            assert not sup.running


def _done(sup: Any, engine: str) -> bool:
    actions = sup.actions()
    mine = actions[(actions["engine"].astype(str) == engine)
                   & (actions["result"].astype(str) == "ok")]
    return bool(len(mine) and set(mine["action"].astype(str)) == {"restart"})



def test_an_incident_across_engines_is_one_bundle_notebook_06_opens(
        fleet: opskit.Fleet, tmp_path: Any) -> None:
    name = unique("fbun")
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest")
    fleet.deploy(spec, engines=["main", "edge"], timeout=30)
    fleet["edge"].chaos("crash", name)
    until(lambda: fleet["edge"].inspect(name).state == "exited", 20, "the crash seen")
    bundle = fleet.record("across", [name], since="5m", path=tmp_path / "across.opsb")
    fleet.teardown(name, engines=["main", "edge"])

    again = opskit.open_bundle(bundle.path)
    assert set(again.containers["engine"].astype(str)) == {"main", "edge"}
    assert set(again.manifest["engines"]) == {"main", "edge"}
    assert any("gone" in note for note in again.manifest["notes"])
    died = again.events[(again.events["action"].astype(str) == "die")]
    assert set(died["engine"].astype(str)) == {"edge"}
    assert len(again.replay()) and "across" in again.report()

    out = tmp_path / "06.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "papermill", str(ROOT / "notebooks/06-incident-analysis.ipynb"),
         str(out), "-p", "bundle_path", str(bundle.path), "--cwd", str(ROOT / "notebooks"),
         "--no-progress-bar"], capture_output=True, text=True, timeout=240,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_fleet_console_offers_the_demo_then_shows_each_engine(
        fleet: opskit.Fleet) -> None:
    from opskit.widgets import EngineOverview, FleetDashboard
    from opskit.widgets.fleetview import DEMO_SERVICES

    overview = EngineOverview(fleet)
    rows = overview.frame.set_index("engine")
    assert list(rows.index) == ["main", "edge", "gone"] and not rows.loc["gone", "reachable"]
    assert overview.idle and overview.demo_button.layout.display == ""  # a fresh lab
    try:
        overview.demo_button.click()
        assert "error" not in overview.messages.kinds, overview.messages.text
        assert not overview.idle and overview.demo_button.layout.display == "none"
        assert set(overview.frame.set_index("engine").loc[["main", "edge"], "services"]) == {2}

        console = FleetDashboard(fleet, autostart=False)
        assert list(console.engine.options) == ["main", "edge"]
        console.engine.value = "edge"
        assert console.dashboard is not None and console.dashboard.ops is fleet["edge"]
        board = console.dashboard.board
        board.refresh()
        assert board.frame is not None and "demo-web" in set(board.frame["name"].astype(str))
        console.close()
    finally:
        for spec in DEMO_SERVICES:
            fleet.teardown(spec.name, engines=["main", "edge"])


def test_no_action_while_an_engine_cannot_be_observed_then_one_when_it_can(
        clean: Any, edge: ThrowawayEngine) -> None:
    """The edge engine's dockerd is stopped (SIGSTOP) while its container is killed from the
    host: its watchdog cannot see, and starts nothing; once resumed, exactly one restart."""
    name = unique("fobs")
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest")
    with opskit.connect_fleet({"main": MAIN_URL, "edge": edge.url}, scope=clean.engine.scope,
                              timeout=5, deadline=3) as fleet:
        fleet.deploy(spec, engines=["edge"], wait="healthy", timeout=30)
        cid = fleet["edge"].inspect(name).id
        sup = fleet.watch([name], engines=["edge"], relist_every=1, record_bundles=False)
        with EventObserver(edge.url, {"container": [cid]}) as observer:
            sup.start()
            try:
                pid = fleet["edge"].inspect(name).pid
                assert edge.pid is not None
                os.kill(edge.pid, signal.SIGSTOP)
                try:
                    os.kill(pid, signal.SIGKILL)  # the container dies unseen
                    time.sleep(4)  # re-lists time out meanwhile: nothing may be done
                    assert len(sup.actions()) == 0
                finally:
                    os.kill(edge.pid, signal.SIGCONT)
                until(lambda: _done(sup, "edge"), 40, "recovered once the engine answers")
                observer.barrier()
                assert observer.error is None
                assert observer.count("die", cid) == 1
                assert observer.count("start", cid) == 1, observer.actions(cid)
            finally:
                sup.stop()
        fleet.teardown(name, engines=["edge"])


def test_an_engine_killed_mid_read_is_a_row_and_comes_back(
        clean: Any, edge: ThrowawayEngine) -> None:
    with opskit.connect_fleet({"main": MAIN_URL, "edge": edge.url}, scope=clean.engine.scope,
                              timeout=5, deadline=3) as fleet:
        assert edge.pid is not None
        os.kill(edge.pid, signal.SIGSTOP)  # hold it mid-call, then kill it there
        started = time.monotonic()
        killer = threading.Timer(0.5, edge.sigkill)
        killer.start()
        frame = fleet.containers()
        killer.join()
        assert time.monotonic() - started < fleet.deadline + 2
        assert set(frame["engine"].astype(str)) <= {"main"}
        status = fleet.last
        assert status is not None and not status.set_index("engine").loc["edge", "reachable"]
        edge.start()
        until(lambda: (fleet.containers() is not None and fleet.last is not None
                       and bool(fleet.last.set_index("engine").loc["edge", "reachable"])),
              30, "the restarted engine read again")


def test_engines_named_by_docker_context(clean: Any, edge: ThrowawayEngine, tmp_path: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``docker context create edge-ctx --docker host=...``, then the fleet names it."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    made = subprocess.run(["docker", "context", "create", "edge-ctx", "--docker",
                           f"host={edge.url}"], capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    with opskit.connect_fleet(["edge-ctx"], scope=clean.engine.scope, deadline=10) as fleet:
        assert fleet.reachable == ["edge-ctx"] and fleet["edge-ctx"].host == edge.url
        assert fleet.status().iloc[0]["reachable"]


def test_lifecycle_verbs_act_on_every_engine_that_has_the_target(
        fleet: opskit.Fleet, edge: ThrowawayEngine) -> None:
    name = unique("fverb")
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest")
    fleet.deploy(spec, engines=["main", "edge"], wait="running", timeout=30)
    cid = fleet["edge"].inspect(name).id
    with pytest.raises(opskit.InvalidSpec, match="verb"):
        fleet.lifecycle("explode", name)
    with pytest.raises(opskit.ContainerNotFound):
        fleet.restart(unique("nowhere"))
    with EventObserver(edge.url, {"container": [cid]}) as observer:
        done = fleet.restart(name, timeout=1)
        assert set(done) == {"main", "edge"} and all(r.ok for rs in done.values() for r in rs)
        stopped = fleet.stop(name, engines=["edge"], timeout=1)
        assert set(stopped) == {"edge"}
        observer.barrier()
        assert observer.error is None
        assert observer.count("restart", cid) == 1 and observer.count("die", cid) == 2
    assert fleet["main"].inspect(name).state == "running"
    assert fleet["edge"].inspect(name).state == "exited"
