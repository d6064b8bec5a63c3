"""Fixtures on the real engine: the engine in a test scope, the demo images, an independent
observer, watchdogs, a free port, a plain docker-py client and the busybox test image.

Every test runs in its own opskit scope (``test-<session id>``) so scope checks are real, and
everything a test creates carries ``opskit-test.session=<session id>``; the ``clean`` fixture
removes what is left after each test, pass or fail. With no engine answering, the tests skip,
unless CI or OPSKIT_REQUIRE_ENGINE is set.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.support.live import engine_or_skip, sweep
from tests.support.observer import BUSYBOX_IMAGE, build_busybox_image
from tests.support.second_engine import MAIN_URL


@pytest.fixture(scope="session")
def ops() -> Iterator[Any]:
    """An Ops on the real engine, in a scope of this test session."""
    ops = engine_or_skip()
    yield ops
    sweep(ops)
    api = ops.engine.api  # what notebooks run by nbval left, if one failed midway
    for c in api.containers(all=True, filters={"label": ["io.opskit.scope=notebooks"]}):
        with contextlib.suppress(Exception):
            api.remove_container(c["Id"], force=True, v=True)
    ops.close()


@pytest.fixture(scope="session")
def demo(ops: Any) -> list[str]:
    """The demo images, built once per session (idempotent)."""
    tags: list[str] = ops.demo_images()
    return tags


@pytest.fixture
def clean(ops: Any) -> Iterator[Any]:
    """Yield ``ops``; afterwards remove every container, network and volume of the test scope."""
    yield ops
    sweep(ops)


@pytest.fixture
def observer(ops: Any) -> Iterator[Any]:
    """An independent event observer (its own client) recording during the test; its counts
    are read after its catch-up barrier, and its own error must be empty at the end."""
    from tests.support.observer import EventObserver

    with EventObserver(url=ops.engine.host) as obs:
        yield obs
    assert obs.error is None, f"the observer's own stream failed: {obs.error!r}"


@pytest.fixture
def watchdog(clean: Any, tmp_path: Path) -> Iterator[Any]:
    """``make(services, **kw)`` starts a watchdog on an event journal of its own (incident
    bundles off unless ``record_bundles=True``, then recorded through ``clean`` as
    ``ops.watch()`` wires it); every one is stopped after the test."""
    from opskit.analysis.bundle import watchdog_bundle
    from opskit.observe.journal import EventJournal
    from opskit.recover.watchdog import Watchdog

    started: list[tuple[Any, Any]] = []

    def make(services: list[str], **kw: Any) -> Any:
        journal = EventJournal(clean.engine, tmp_path / f"j{len(started)}.jsonl").start()
        journal.wait_connected(10)
        if kw.pop("record_bundles", False):
            kw["bundle_recorder"] = functools.partial(watchdog_bundle, clean)
        wd = Watchdog(clean.engine, services=services, journal=journal,
                      actions=clean.action_journal, **kw).start()
        started.append((wd, journal))
        return wd

    yield make
    for wd, journal in started:
        wd.stop()
        journal.stop()


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def main_client() -> Iterator[docker.DockerClient]:
    """A plain docker-py client of the main engine, for tests that watch opskit from outside;
    a skip when none answers (an error under CI or OPSKIT_REQUIRE_ENGINE)."""
    try:
        client = docker.DockerClient(base_url=MAIN_URL, timeout=60)
        client.ping()
    except Exception as exc:
        if os.environ.get("CI") or os.environ.get("OPSKIT_REQUIRE_ENGINE"):
            raise
        pytest.skip(f"no Docker engine at {MAIN_URL}: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def image(main_client: docker.DockerClient) -> str:
    """The busybox test image on the main engine, built locally (it stays after the tests)."""
    build_busybox_image(main_client)
    return BUSYBOX_IMAGE
