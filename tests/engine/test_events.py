"""Tests of opskit.observe.events on the real engine: events_frame() reads the engine's
replay with the frame's dtypes and masked attributes, and Ops.events() merges the journal
with the engine without duplicates.

Frames from recorded payloads, the journal format and the gap rule are tested in
../unit/test_events.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import opskit
from opskit.observe import events
from tests.support.frames import EVENT_DTYPES as DTYPES
from tests.support.observer import BUSYBOX_IMAGE, build_busybox_image
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine


def test_events_frame_on_the_engine(clean: Any, tmp_path: Path) -> None:
    ops = clean
    build_busybox_image(ops.engine.client)
    name = unique("evf")
    api = ops.engine.api
    cid = api.create_container(BUSYBOX_IMAGE, ["sleep", "60"], name=name,
                               labels={TEST_LABEL: SESSION, "app_password": "CANARY7"})["Id"]
    api.start(cid)
    api.kill(cid)
    frame = events.events_frame(ops.engine, since="2m")
    mine = frame[frame["actor_id"] == cid]
    assert {"create", "start", "kill", "die"} <= set(mine["base_action"].astype(str))
    assert mine.loc[mine["base_action"] == "die", "exit_code"].tolist() == [137]
    assert (mine["name"] == name).all()
    assert "CANARY7" not in frame["attributes"].astype(str).str.cat()
    assert {c: str(t) for c, t in frame.dtypes.items()} == DTYPES
    keys = frame[frame["kind"] == "event"][["time_nano", "type", "action", "actor_id"]]
    assert not keys.astype(str).duplicated().any()
    with pytest.raises(ValueError):
        events.events_frame(ops.engine, since="last tuesday")


def test_ops_events_reads_the_journal_and_the_engine(clean, demo, tmp_path: Path) -> None:
    ops, name = clean, unique("opsev")
    with ops.journal(tmp_path / "j.jsonl").start() as journal:
        journal.wait_connected(10)
        ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                      labels={TEST_LABEL: SESSION}), wait="running")
        ops.kill(name)
        journal.flush()
        frame = ops.events(since="1m")
    mine = frame[frame["name"] == name]
    assert {"create", "start", "kill", "die"} <= set(mine["base_action"])
    assert not mine.duplicated(["time_nano", "type", "action", "actor_id"]).any()
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
