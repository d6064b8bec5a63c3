"""containers(), inspect(), logs() and health() on the real engine: columns, dtypes, redaction."""

from __future__ import annotations

import time

import pytest

import opskit
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine


def test_containers_frame_columns_and_dtypes(clean, demo) -> None:
    ops, name = clean, unique("frame")
    ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest", memory="32m",
                                  cpus=0.5, ports={8080: None}, env={"API_TOKEN": "CANARY9"},
                                  labels={TEST_LABEL: SESSION}), wait="running")
    frame = ops.containers()
    row = frame[frame["name"] == name].iloc[0]
    assert row["state"] == "running" and row["service"] == name
    assert row["memory_limit"] == 32 * 1024 * 1024 and row["cpu_limit"] == 0.5
    assert row["ports"].startswith("127.0.0.1:") and row["ports"].endswith("->8080/tcp")
    dtypes = {c: str(t) for c, t in frame.dtypes.items()}
    assert dtypes["created"] == dtypes["started_at"] == "datetime64[ns, UTC]"
    assert dtypes["name"] == dtypes["state"] == dtypes["health"] == "category"
    assert dtypes["exit_code"] == dtypes["memory_limit"] == "int64"
    assert dtypes["oom_killed"] == "bool"
    assert "env" not in frame.columns and "CANARY9" not in frame.to_csv()


def test_a_paused_container_row_can_come_from_the_listing(clean, demo) -> None:
    """What the table shows for a paused container whose inspect the engine holds up: the
    listing's view agrees with the inspect on everything the listing carries."""
    from opskit.observe.inspection import ContainerInfo
    from opskit.observe.listing import summary_attrs

    ops, name = clean, unique("paused-row")
    cid = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                        labels={TEST_LABEL: SESSION}),
                     wait="healthy", timeout=20).ids[0]
    ops.pause(name)
    [item] = ops.engine.api.containers(all=True, filters={"id": [cid]})
    listed = ContainerInfo.from_attrs(summary_attrs(item))
    inspected = ContainerInfo.from_attrs(ops.engine.api.inspect_container(cid))
    for field in ("id", "name", "service", "image", "image_id", "state", "labels", "networks",
                  "managed"):
        assert getattr(listed, field) == getattr(inspected, field), field
    assert listed.created == inspected.created.replace(microsecond=0)  # ps has whole seconds
    # `docker ps` shows no health for a paused container ("Up 5 seconds (Paused)"); the
    # engine's own health of one turns unhealthy as its probes time out (moby#46203)
    assert listed.state == "paused" and listed.health == ""
    frame = ops.containers()
    assert frame.set_index("id").loc[cid, "state"] == "paused"
    ops.unpause(name)


def test_inspect_masks_env_command_labels(clean, demo) -> None:
    ops, name = clean, unique("mask")
    ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-crash:latest",
                                  env={"Password": "CANARY1", "MODE": "prod"},
                                  command=["sh", "-c", "sleep 30", "--password=CANARY4"],
                                  labels={TEST_LABEL: SESSION, "db_secret": "CANARY5"}),
               wait="running")
    info = ops.inspect(name)
    assert "Password" in info.env_names and "MODE" in info.env_names
    text = repr(info.attrs) + repr(info.labels)
    assert "CANARY" not in text
    assert "--password=***" in info.attrs["Config"]["Cmd"]


def test_logs_frame_merges_streams_and_replicas(clean, demo) -> None:
    ops, name = clean, unique("logs")
    ops.deploy(opskit.ServiceSpec(
        name=name, image="opskit/demo-crash:latest", replicas=2,
        command=["sh", "-c", "echo out-1; echo err-1 >&2; echo token=CANARY2; sleep 30"],
        labels={TEST_LABEL: SESSION}), wait="running")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frame = ops.logs(name)
        if len(frame) >= 6:
            break
        time.sleep(0.2)
    assert set(frame["container"]) == {name, f"{name}-2"}
    assert set(frame["stream"]) == {"stdout", "stderr"}
    assert frame["ts"].is_monotonic_increasing
    assert "CANARY2" not in "".join(frame["line"]) and "token=***" in set(frame["line"])
    assert len(ops.logs(name, grep=r"^err")) == 2
    assert len(ops.logs(name, tail=1)) == 2, "tail counts lines per container, as docker does"
    with pytest.raises(opskit.InvalidTarget):
        ops.logs(name, grep="(")


def test_health_history_outcomes(clean, demo) -> None:
    ops, name = clean, unique("hist")
    ops.deploy(opskit.ServiceSpec(
        name=name, image="opskit/demo-web:latest", labels={TEST_LABEL: SESSION},
        healthcheck={"test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
                     "interval": 0.3, "timeout": 1, "retries": 1}), wait="healthy")
    ops.exec(name, ["make-corrupt"])  # /health answers 404 at once: a failing probe each 0.3 s
    deadline = time.monotonic() + 10
    while ops.inspect(name).health != "unhealthy" and time.monotonic() < deadline:
        time.sleep(0.2)
    hist = ops.health(name)
    assert list(hist.columns) == ["ts", "end", "container", "exit_code", "outcome", "output"]
    assert {"ok", "failed"} <= set(hist["outcome"].astype(str))
    time.sleep(2)
    longer = ops.health(name)
    assert len(longer) > 5, "history grows past the engine's five results"
    assert longer["ts"].is_monotonic_increasing
