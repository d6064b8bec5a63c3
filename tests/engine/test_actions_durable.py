"""The action journal on the real engine: what ``Ops`` does by hand is journaled, by full ID.

The file itself (fsync'd lines, interrupted actions, two writers) is tested in
../unit/test_actions_durable.py.
"""

from __future__ import annotations

import pytest

import opskit
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine


def test_manual_actions_are_journaled(clean, demo) -> None:
    ops, name = clean, unique("journal")
    ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                  labels={TEST_LABEL: SESSION}), wait="running")
    ops.restart(name, timeout=1)
    ops.stop(name, timeout=1)
    frame = ops.actions()
    mine = frame[frame["container"] == name]
    assert list(mine["action"].astype(str)) == ["restart", "stop"]
    assert set(mine["result"].astype(str)) == {"ok"} and set(mine["reason"]) == {"manual"}
    assert mine["container_id"].str.len().eq(64).all()
