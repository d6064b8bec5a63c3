"""Shared fixtures: a real engine, a test scope, the demo images, an independent observer.

Every test runs in its own opskit scope (``test-<session id>``) so scope checks are real, and
everything a test creates carries ``io.opskit.test=<session id>``; the ``clean`` fixture removes
what is left after each test, pass or fail.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SESSION = secrets.token_hex(4)
TEST_LABEL = "opskit-test.session"
os.environ.setdefault("OPSKIT_HOME", tempfile.mkdtemp(prefix="opskit-test-home-"))


def _engine_or_skip(scope: str | None = None) -> Any:
    import opskit

    try:
        return opskit.connect(scope=scope or f"test-{SESSION}")
    except opskit.EngineUnavailable as exc:
        if os.environ.get("CI") or os.environ.get("OPSKIT_REQUIRE_ENGINE"):
            raise
        pytest.skip(f"no Docker engine: {exc}")


@pytest.fixture(scope="session")
def ops() -> Iterator[Any]:
    """An Ops on the real engine, in a scope of this test session."""
    ops = _engine_or_skip()
    yield ops
    _sweep(ops)
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
    _sweep(ops)


@contextlib.contextmanager
def demo_web_in_scope(scope: str, prefix: str) -> Iterator[tuple[Any, str]]:
    """A running demo-web container in an opskit scope of its own (for module fixtures);
    afterwards everything that scope made, or that carries its test label, is removed."""
    import opskit

    ops = _engine_or_skip(scope)
    name = f"{prefix}-{secrets.token_hex(3)}"
    try:
        ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                      labels={TEST_LABEL: scope}), wait="running")
        yield ops, name
    finally:
        _sweep(ops, label_value=scope)
        ops.close()


def _sweep(ops: Any, *, label_value: str = SESSION) -> None:
    api = ops.engine.api
    image_filter = {"label": [f"io.opskit.image-scope={ops.engine.scope}"]}
    scope_filter = {"label": [f"io.opskit.scope={ops.engine.scope}"]}
    test_filter = {"label": [f"{TEST_LABEL}={label_value}"]}
    for filters in (scope_filter, test_filter):
        for c in api.containers(all=True, filters=filters):
            with contextlib.suppress(Exception):
                api.remove_container(c["Id"], force=True, v=True)
    for filters in (scope_filter, test_filter):
        for n in api.networks(filters=filters):
            with contextlib.suppress(Exception):
                api.remove_network(n["Id"])
        for v in (api.volumes(filters=filters) or {}).get("Volumes") or []:
            with contextlib.suppress(Exception):
                api.remove_volume(v["Name"], force=True)
    for image in api.images(filters=image_filter):
        with contextlib.suppress(Exception):
            api.remove_image(image["Id"], force=True)


@pytest.fixture
def observer(ops: Any) -> Iterator[Any]:
    """An independent event observer (its own client) recording during the test; its counts
    are read after its catch-up barrier, and its own error must be empty at the end."""
    from support.observer import EventObserver

    with EventObserver(url=ops.engine.host) as obs:
        yield obs
    assert obs.error is None, f"the observer's own stream failed: {obs.error!r}"


def deploy_web(ops: Any, name: str, *, retries: int = 1, timeout: float = 20.0,
               **kw: Any) -> str:
    """Deploy the demo web with a fast healthcheck (0.5 s, 1 s timeout) in the test scope,
    wait until healthy, and return its container ID."""
    import opskit

    health = {"test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
              "interval": 0.5, "timeout": 1, "retries": retries}
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-web:latest", healthcheck=health,
                              labels={TEST_LABEL: SESSION}, **kw)
    cid: str = ops.deploy(spec, wait="healthy", timeout=timeout).ids[0]
    return cid


@pytest.fixture
def watchdog(clean: Any, tmp_path: Path) -> Iterator[Any]:
    """``make(services, **kw)`` starts a watchdog on an event journal of its own (incident
    bundles off unless ``record_bundles=True``); every one is stopped after the test."""
    from opskit.journal import EventJournal
    from opskit.watchdog import Watchdog

    started: list[tuple[Any, Any]] = []

    def make(services: list[str], **kw: Any) -> Any:
        journal = EventJournal(clean.engine, tmp_path / f"j{len(started)}.jsonl").start()
        journal.wait_connected(10)
        kw.setdefault("record_bundles", False)
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


def until(check: Any, timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``check()`` every 0.1 s until it returns something true; fail after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")


def unique(prefix: str) -> str:
    """A name unique to this test session."""
    return f"{prefix}-{SESSION}-{secrets.token_hex(2)}"


def foreign_container(ops: Any, name: str, labels: dict[str, str] | None = None,
                      image: str = "opskit/demo-web:latest") -> str:
    """Create and start a container opskit did not deploy (optionally with forged labels)."""
    api = ops.engine.api
    all_labels = {TEST_LABEL: SESSION, **(labels or {})}
    cid: str = api.create_container(image, name=name, labels=all_labels)["Id"]
    api.start(cid)
    return cid
