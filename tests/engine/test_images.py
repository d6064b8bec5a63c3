"""Tests of opskit.act.images and the demo images, against the real engine.

The engine's own record is the judge: image IDs and labels from ``docker image inspect``, pull
and oom events read by a separate docker-py client, container state from ``docker inspect``.
Containers are made with the low-level ``create_container`` + ``start`` (never ``run``, which
pulls), labelled ``io.opskit.test=images``, and removed even when a test fails.

The pure functions and the checks made before any engine call are in ../unit/test_images.py.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from opskit.act.images import (
    DEMO_IMAGES,
    BuildProgress,
    build,
    busybox_path,
    demo_images,
    image_exists,
    image_id,
)
from opskit.base import labels
from opskit.base.errors import BuildFailed, EngineUnavailable
from opskit.engine.connection import Engine, open_engine

pytestmark = pytest.mark.engine

TEST_LABEL = {"io.opskit.test": "images"}
HEADER = ('FROM scratch\nCOPY busybox /bin/busybox\n'
          'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n')
Run = Callable[..., str]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    try:
        eng = open_engine()
    except EngineUnavailable as exc:
        if os.environ.get("CI") or os.environ.get("OPSKIT_REQUIRE_ENGINE"):
            raise
        pytest.skip(f"no Docker engine: {exc}")
    yield eng
    eng.client.close()


@pytest.fixture(scope="module")
def observer(engine: Engine) -> Iterator[Any]:
    """A docker-py client of the test's own, to read the engine's events."""
    client = docker.APIClient(base_url=engine.host, timeout=10)
    yield client
    client.close()


@pytest.fixture(scope="module")
def demo(engine: Engine) -> list[str]:
    return demo_images(engine)


@pytest.fixture
def run(engine: Engine, demo: list[str]) -> Iterator[Run]:
    """Create and start a demo container; every one is removed at teardown."""
    made: list[str] = []

    def _run(name: str, env: dict[str, str] | None = None, **host: Any) -> str:
        created = engine.api.create_container(
            DEMO_IMAGES[name], environment=env, labels=TEST_LABEL,
            name=f"opskit-test-images-{name}-{uuid.uuid4().hex[:8]}",
            host_config=engine.api.create_host_config(**host))
        made.append(created["Id"])
        engine.api.start(created["Id"])
        return str(created["Id"])

    yield _run
    for cid in made:
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_container(cid, force=True, v=True)


@pytest.fixture
def tags(engine: Engine) -> Iterator[list[str]]:
    """Image tags a test builds; removed at teardown."""
    made: list[str] = []
    yield made
    for tag in made:
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_image(tag, force=True)


def _state(engine: Engine, cid: str) -> dict[str, Any]:
    return dict(engine.api.inspect_container(cid)["State"])


def _wait_health(engine: Engine, cid: str, want: str, timeout: float = 30.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        state = _state(engine, cid)
        if (state.get("Health") or {}).get("Status") == want:
            return time.monotonic() - start
        time.sleep(0.05)
    pytest.fail(f"container did not become {want} within {timeout}s: {state}")


def _exec(engine: Engine, cid: str, *cmd: str) -> str:
    run = engine.api.exec_create(cid, list(cmd))
    out = engine.api.exec_start(run["Id"]).decode()
    assert engine.api.exec_inspect(run["Id"])["ExitCode"] == 0, out
    return str(out)


def _events(observer: Any, since: float, **filters: str) -> list[dict[str, Any]]:
    return list(observer.events(decode=True, since=since, until=time.time() + 0.2,
                                filters=filters or None))


def _seconds(state: dict[str, Any]) -> float:
    def parse(stamp: str) -> float:
        whole, _, frac = stamp.rstrip("Z").partition(".")
        return datetime.fromisoformat(whole).timestamp() + float("0." + (frac or "0"))
    return parse(state["FinishedAt"]) - parse(state["StartedAt"])


# ---- builds on the engine -------------------------------------------------------------------

def test_demo_images_build_once_then_skip(engine: Engine) -> None:
    seen: list[BuildProgress] = []
    first = demo_images(engine, progress=seen.append, force=True)
    assert first == list(DEMO_IMAGES.values())
    assert {p.tag for p in seen} == set(first)
    assert all(p.steps >= p.step > 0 for p in seen if p.line.startswith("Step "))
    ids = {tag: image_id(engine, tag) for tag in first}

    again: list[BuildProgress] = []
    assert demo_images(engine, progress=again.append) == first
    assert again == []  # nothing rebuilt
    assert {tag: image_id(engine, tag) for tag in first} == ids
    for name, tag in DEMO_IMAGES.items():
        found = engine.api.inspect_image(tag)["Config"]["Labels"]
        assert found["io.opskit.demo"] == name
        assert found["org.opencontainers.image.description"]
        assert found[labels.DEMO_DIGEST].startswith("sha256:")
        assert found[labels.IMAGE_SCOPE] == "demo"
        assert labels.MANAGED not in found and labels.SCOPE not in found, \
            "containers inherit image labels: an image must not make them look opskit's"


def test_build_from_folder_streams_steps_and_labels(engine: Engine, demo: list[str],
                                                   tmp_path: Path, tags: list[str]) -> None:
    tag = f"opskit-test/images-child:{uuid.uuid4().hex[:8]}"
    tags.append(tag)
    (tmp_path / "Dockerfile").write_text(
        f"ARG BASE={DEMO_IMAGES['web']}\nFROM $BASE\nARG WORD\nRUN echo \"$WORD\" > /word\n")
    seen: list[BuildProgress] = []
    result = build(engine, tmp_path, tag=tag, buildargs={"WORD": "hello"},
                   labels={"com.example.team": "ops"}, progress=seen.append)
    assert result.built and result.tag == tag and result.duration > 0
    assert result.image_id == image_id(engine, tag) and image_exists(engine, tag)
    assert [p.line for p in seen] == list(result.log)
    assert seen[-1].step == seen[-1].steps >= 4
    found = engine.api.inspect_image(tag)["Config"]["Labels"]
    assert found["com.example.team"] == "ops" and labels.MANAGED not in found
    assert found[labels.IMAGE_SCOPE] == engine.scope


def test_failing_step_raises_build_failed_with_its_output(engine: Engine, tmp_path: Path,
                                                         tags: list[str]) -> None:
    tag = f"opskit-test/images-broken:{uuid.uuid4().hex[:8]}"
    tags.append(tag)
    (tmp_path / "Dockerfile").write_text(HEADER + 'RUN echo "marker-$((6 * 7))" && exit 3\n')
    with pytest.raises(BuildFailed) as info:
        build(engine, tmp_path, tag=tag, extra_files={"busybox": str(busybox_path())})
    assert info.value.tag == tag
    assert "non-zero code: 3" in info.value.engine_message
    assert any("marker-42" in line for line in info.value.log_tail)
    assert "marker-42" in str(info.value)
    assert not image_exists(engine, tag)


@pytest.mark.parametrize("dockerfile", [
    "FROM opskit-test/no-such-base:1\nRUN true\n",
    HEADER + "COPY --from=opskit-test/no-such-base:2 /x /x\n",
])
def test_missing_base_image_fails_without_pull(engine: Engine, observer: Any, tmp_path: Path,
                                               dockerfile: str) -> None:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    since = time.time()
    with pytest.raises(BuildFailed, match="no pull was done") as info:
        build(engine, tmp_path, tag="opskit-test/images-orphan:1",
              extra_files={"busybox": str(busybox_path())})
    assert "opskit-test/no-such-base" in str(info.value)
    assert info.value.log_tail == []  # the engine was never asked to build
    pulls = [e for e in _events(observer, since) if e.get("Type") == "image"
             and e.get("Action") == "pull" and "no-such-base" in str(e.get("Actor"))]
    assert pulls == []


def test_image_lookup_never_pulls(engine: Engine) -> None:
    assert not image_exists(engine, "opskit-test/no-such-image:1")
    with pytest.raises(LookupError, match="never pulls"):
        image_id(engine, "opskit-test/no-such-image:1")
    assert image_id(engine, DEMO_IMAGES["web"]).startswith("sha256:")


# ---- behaviour of each demo image -----------------------------------------------------------

def test_web_serves_and_flips_health(engine: Engine, run: Run) -> None:
    cid = run("web")
    _wait_health(engine, cid, "healthy")
    assert "opskit demo-web" in _exec(engine, cid, "wget", "-q", "-O-", "http://127.0.0.1:8080/")
    assert _exec(engine, cid, "wget", "-q", "-O-", "http://127.0.0.1:8080/health") == "ok\n"
    _exec(engine, cid, "make-unhealthy")  # a hung httpd: each probe times out
    _wait_health(engine, cid, "unhealthy")
    _exec(engine, cid, "make-healthy")
    _wait_health(engine, cid, "healthy")
    _exec(engine, cid, "make-corrupt")  # the health file removed
    _wait_health(engine, cid, "unhealthy")
    _exec(engine, cid, "make-healthy")
    _wait_health(engine, cid, "healthy")
    start = time.monotonic()
    engine.api.stop(cid, timeout=10)
    assert time.monotonic() - start < 2  # PID 1 handles SIGTERM; no 10 s wait
    assert _state(engine, cid)["ExitCode"] == 0


def test_web_port_from_env(engine: Engine, run: Run) -> None:
    cid = run("web", {"WEB_PORT": "9090"})
    _wait_health(engine, cid, "healthy")
    assert _exec(engine, cid, "wget", "-q", "-O-", "http://127.0.0.1:9090/health") == "ok\n"


@pytest.mark.parametrize(("env", "code", "after"), [
    ({}, 1, 1.0),
    ({"CRASH_CODE": "7", "CRASH_AFTER": "0.5"}, 7, 0.5),
])
def test_crash_exits_with_code_after_delay(engine: Engine, run: Run, env: dict[str, str],
                                           code: int, after: float) -> None:
    cid = run("crash", env)
    assert engine.api.wait(cid, timeout=15)["StatusCode"] == code
    assert after - 0.05 <= _seconds(_state(engine, cid)) < after + 1.5
    assert b"will exit with code" in engine.api.logs(cid, stdout=True, stderr=False)
    assert b"crashing now" in engine.api.logs(cid, stdout=False, stderr=True)


def test_flap_toggles_health_by_itself(engine: Engine, run: Run) -> None:
    cid = run("flap", {"FLAP_PERIOD": "2"})
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while seen[-3:] != ["healthy", "unhealthy", "healthy"] and time.monotonic() < deadline:
        status = (_state(engine, cid).get("Health") or {}).get("Status", "")
        if not seen or seen[-1] != status:
            seen.append(status)
        time.sleep(0.05)
    assert seen[-3:] == ["healthy", "unhealthy", "healthy"], seen


def test_flap_scripts_flip_health(engine: Engine, run: Run) -> None:
    cid = run("flap")
    _wait_health(engine, cid, "healthy")
    _exec(engine, cid, "make-unhealthy")
    assert _wait_health(engine, cid, "unhealthy") < 4  # interval 1 s x retries 1
    _exec(engine, cid, "make-healthy")
    assert _wait_health(engine, cid, "healthy") < 4


def test_hog_is_oom_killed(engine: Engine, observer: Any, run: Run) -> None:
    since = time.time()
    cid = run("hog", mem_limit="16m")
    assert engine.api.wait(cid, timeout=30)["StatusCode"] == 137
    state = _state(engine, cid)
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    actions = [e["Action"] for e in _events(observer, since, container=cid)]
    assert "oom" in actions and "die" in actions
    assert b"holding 2 MiB" in engine.api.logs(cid)


def test_hog_cpu_mode_burns_cpu(engine: Engine, run: Run) -> None:
    cid = run("hog", {"HOG_CPU": "1"})
    # it burns CPU while it runs: the counter keeps growing (no rate asserted: a loaded
    # machine gives it less, and timings do not belong in pass/fail tests)
    first = engine.api.stats(cid, stream=False, one_shot=True)["cpu_stats"]["cpu_usage"]
    time.sleep(1.0)
    second = engine.api.stats(cid, stream=False, one_shot=True)["cpu_stats"]["cpu_usage"]
    assert second["total_usage"] > first["total_usage"] > 0


@pytest.mark.parametrize(("name", "env"), [
    ("web", {}), ("crash", {"CRASH_AFTER": "60"}), ("flap", {"FLAP_PERIOD": "1"}),
    ("hog", {"HOG_INTERVAL": "60"}), ("hog", {"HOG_CPU": "1"}),
])
def test_stop_is_prompt(engine: Engine, run: Run, name: str, env: dict[str, str]) -> None:
    cid = run(name, env)
    time.sleep(0.3)
    assert _state(engine, cid)["Running"]
    start = time.monotonic()
    engine.api.stop(cid, timeout=10)
    assert time.monotonic() - start < 2
    assert _state(engine, cid)["ExitCode"] == 0
