"""Helpers for the tests on the real engine: connect or skip, deploy the demo web, make a
container opskit does not own, and sweep away what a test scope left.

Everything a test creates carries ``TEST_LABEL=<session id>`` and lives in an opskit scope of
the session (``test-<session id>``), so scope checks are real and the sweep finds it all.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.session import SESSION, TEST_LABEL


def engine_or_skip(scope: str | None = None) -> Any:
    """An Ops on the engine DOCKER_HOST (or the docker context) names, in ``scope`` (the
    session's by default); skip when none answers, unless CI or OPSKIT_REQUIRE_ENGINE is set."""
    import opskit

    try:
        return opskit.connect(scope=scope or f"test-{SESSION}")
    except opskit.EngineUnavailable as exc:
        if os.environ.get("CI") or os.environ.get("OPSKIT_REQUIRE_ENGINE"):
            raise
        pytest.skip(f"no Docker engine: {exc}")


def sweep(ops: Any, *, label_value: str = SESSION) -> None:
    """Remove every container, network, volume and image of the ops' scope or test label."""
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


@contextlib.contextmanager
def demo_web_in_scope(scope: str, prefix: str) -> Iterator[tuple[Any, str]]:
    """A running demo-web container in an opskit scope of its own (for module fixtures);
    afterwards everything that scope made, or that carries its test label, is removed."""
    import opskit

    ops = engine_or_skip(scope)
    name = f"{prefix}-{secrets.token_hex(3)}"
    try:
        ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                      labels={TEST_LABEL: scope}), wait="running")
        yield ops, name
    finally:
        sweep(ops, label_value=scope)
        ops.close()


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


def foreign_container(ops: Any, name: str, labels: dict[str, str] | None = None,
                      image: str = "opskit/demo-web:latest") -> str:
    """Create and start a container opskit did not deploy (optionally with forged labels)."""
    api = ops.engine.api
    all_labels = {TEST_LABEL: SESSION, **(labels or {})}
    cid: str = api.create_container(image, name=name, labels=all_labels)["Id"]
    api.start(cid)
    return cid
