"""Redaction on the real engine: ``inspect`` of a real container masks the healthcheck and
the log options, and a real failing build shows no secret from its output.

Redaction itself (text, env, argv, labels, inspect payloads, WaitTimeout messages, the
report) is tested without an engine in ../unit/test_redact.py.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest

import opskit
from opskit.act.images import build, busybox_path, image_exists
from opskit.base import errors
from opskit.base.redact import MASK
from tests.support.canaries import inspect_payload, pem_body

pytestmark = pytest.mark.engine

SCOPE = "fixA"
TEST_LABELS = {"opskit-test.session": SCOPE}


def test_inspect_of_a_real_container_masks_healthcheck_and_log_options() -> None:
    try:
        ops = opskit.connect(scope=SCOPE)
    except opskit.EngineUnavailable as exc:
        pytest.skip(f"no Docker engine: {exc}")
    api = ops.engine.api
    payload = inspect_payload()
    cid = api.create_container(
        "opskit/demo-web:latest", labels={**TEST_LABELS, "db_secret": "CANARY5"},
        healthcheck=payload["Config"]["Healthcheck"],
        environment=payload["Config"]["Env"],
        host_config=api.create_host_config(log_config=payload["HostConfig"]["LogConfig"]))["Id"]
    try:
        info = ops.inspect(cid)
        assert info.attrs["HostConfig"]["LogConfig"]["Config"]["splunk-token"] == MASK
        assert "CANARY" not in repr(info.attrs) + repr(info)
        assert "Password" in info.env_names
    finally:
        with contextlib.suppress(Exception):
            api.remove_container(cid, force=True)
        ops.close()


def test_a_real_failing_build_shows_no_secret(ops: Any, tmp_path: Path) -> None:
    body = pem_body(5, lines=2)
    (tmp_path / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "RUN printf '%s\\n' '-----BEGIN RSA PRIVATE KEY-----' " + " ".join(
            f"'{x}'" for x in body) + " '-----END RSA PRIVATE KEY-----' "
        "&& echo 'redis-cli -a CANARYr ping' && echo password=CANARYp && exit 3\n")
    tag = f"opskit-test/redact-broken:{uuid.uuid4().hex[:8]}"
    with pytest.raises(errors.BuildFailed) as info:
        build(ops.engine, tmp_path, tag=tag, extra_files={"busybox": str(busybox_path())})
    err = info.value
    assert "non-zero code: 3" in err.engine_message
    shown = f"{err} {err.engine_message} {err.log_tail!r}"
    assert "CANARY" not in shown, shown
    assert "redis-cli -a *** ping" in shown and "password=***" in shown
    assert err.log_tail.count(MASK) >= len(body)
    assert not image_exists(ops.engine, tag)
