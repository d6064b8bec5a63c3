"""Incident bundles recorded on the real engine: the same frames as live, no secret in any
file, a full disk, the size cap, recording around a finding, and opening the result in
another process with no engine.

Opening bundles made without an engine (the sample, hostile files) is in
../unit/test_bundle.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import opskit
from opskit.analysis.bundle import TABLES, Bundle, analysis, open_bundle, record
from opskit.base import labels as L
from opskit.observe.listing import containers_frame
from opskit.records.findings import Finding
from tests.support.bundles import open_elsewhere
from tests.support.paths import NOTEBOOKS
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine

HEALTH = {"test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
          "interval": 1, "timeout": 5, "retries": 2}


def until(check: Any, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {str(c): str(t) for c, t in frame.dtypes.items()}


@pytest.fixture(scope="module")
def incident(ops: opskit.Ops, demo: Any, tmp_path_factory: Any) -> Iterator[tuple[Any, str, Any]]:
    """A web service that crashed once and was started again by hand, recorded from a
    connection of its own that keeps an event journal (the engine replays only 256 events)."""
    name, base = unique("bweb"), ops
    ops = opskit.connect(scope=base.engine.scope)
    journal = ops.journal(tmp_path_factory.mktemp("journal") / "events.jsonl").start()
    try:
        assert journal.wait_connected(10)
        ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                      healthcheck=HEALTH, labels={TEST_LABEL: SESSION}),
                   wait="healthy", timeout=60)
        ops.chaos("crash", name)
        until(lambda: ops.inspect(name).state == "exited")
        ops.start(name)
        until(lambda: ops.inspect(name).health == "healthy")
        ops.health(name)
        path = tmp_path_factory.mktemp("bundle") / "crash.opsb"
        yield ops, name, record(ops, "crash", services=[name], since="2m", path=path)
    finally:
        with contextlib.suppress(opskit.OpsKitError):
            ops.teardown(name)
        journal.stop()
        ops.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root only), to fill up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_recorded_frames_have_the_live_shape(incident: tuple[Any, str, Bundle]) -> None:
    ops, name, b = incident
    assert b.path.exists() and zipfile.is_zipfile(b.path)
    with zipfile.ZipFile(b.path) as archive:
        assert sorted(archive.namelist()) == sorted(["manifest.json",
                                                     *(f"{t}.parquet" for t in TABLES)])
    live = {  # ops.containers() is containers_frame(); filtered, to skip others' containers
        "containers": containers_frame(ops.engine, filters={"label": f"{L.SERVICE}={name}"}),
        "events": ops.events("2m"), "logs": ops.logs(name),
        "health": ops.health(name), "actions": ops.actions(),
        "stats": ops.stats([str(b.containers["id"][0])]),
    }
    for kind, frame in live.items():
        assert dtypes(getattr(b, kind)) == dtypes(frame), kind
        assert isinstance(getattr(b, kind), pd.DataFrame)
    assert list(b.containers["name"].astype(str)) == [name]
    assert len(b.containers) == 1 and b.containers["id"][0] in set(live["containers"]["id"])
    assert len(b.logs) == len(live["logs"]) and len(b.health) >= 2
    assert set(b.actions["action"].astype(str)) >= {"chaos:crash", "start"}
    dies = b.events[b.events["base_action"].astype(str) == "die"]
    assert len(dies) == 1 and isinstance(dies["attributes"].iloc[0], dict)
    assert b.manifest["engine"]["version"] == ops.engine.info["Version"]
    assert b.manifest["time_range"]["seconds"] == pytest.approx(120, abs=1)
    assert b.since < b.until and b.manifest["tables"]["logs"]["rows"] == len(b.logs)


def test_a_bundle_answers_like_a_live_engine(incident: tuple[Any, str, Bundle]) -> None:
    ops, name, b = incident
    assert b.logs(name).equals(pd.DataFrame(b.logs))
    assert len(b.logs(name, tail=1)) == 1 and b.logs("nobody").empty
    assert b.events("1s").empty or b.events("1s")["ts"].min() >= b.until - pd.Timedelta("1s")
    assert b.inspect(name).name == name
    recorded, live = analysis(b), analysis(ops, services=[name], since=b.since, until=b.until)
    for part in ("findings", "failures", "recovery", "availability", "events"):
        assert list(getattr(recorded, part).columns) == list(getattr(live, part).columns), part
    print(recorded.failures.to_string(), live.failures.to_string())
    assert set(live.failures["at"]) <= set(recorded.failures["at"])
    assert "exited_nonzero" in set(live.failures["kind"]) & set(recorded.failures["kind"])
    assert recorded.availability["service"].tolist() == [name]
    report = b.report()
    for heading in ("## What failed", "## What was done", "## Time to detect and recover",
                    "## Availability", "## Redaction"):
        assert heading in report
    assert "<table>" in b.report(format="html") and "exited_nonzero" in report


def test_secrets_never_reach_the_bundle(ops: opskit.Ops, demo: Any, tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """Secrets in env, command arguments, labels, health output and logs: no value reaches
    any file of the bundle, its frames, its report, or the analysis notebook run on it; the
    manifest counts what was masked, by name."""
    caplog.set_level(logging.DEBUG, logger="opskit")
    name = unique("canary")
    try:
        _canaries(ops, name, tmp_path)
    finally:
        ops.teardown(name)
    assert "CANARY" not in caplog.text


def _canaries(ops: opskit.Ops, name: str, tmp_path: Path) -> None:
    script = ("echo Password=CANARY7; echo 'GET https://alice:CANARY8@db.example/x'; "
              "exec sleep 300")
    ops.deploy(opskit.ServiceSpec(
        name=name, image="opskit/demo-web:latest",
        env={"Password": "CANARY1", "api_TOKEN": "CANARY2",
             "DATABASE_URL": "postgres://u:CANARY3@db/x"},
        command=["sh", "-c", script, "demo", "--password=CANARY4"],
        labels={"db_secret": "CANARY5", TEST_LABEL: SESSION},
        healthcheck={"test": ["CMD", "sh", "-c", "echo token=CANARY6; exit 1"],
                     "interval": 0.3, "timeout": 1, "retries": 1}), wait="running")
    for _ in range(8):
        ops.health(name)
        time.sleep(0.3)
    b = record(ops, "canary", services=[name], since="1m", path=tmp_path / "canary.opsb")
    assert len(b.logs) >= 2 and len(b.health) >= 2 and len(b.events)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(b.path) as archive:
        archive.extractall(unpacked)
    for file in unpacked.rglob("*"):
        assert b"CANARY" not in file.read_bytes(), file.name
    again = open_bundle(b.path)
    for kind in TABLES:
        frame = getattr(again, kind)
        for column in frame.columns:
            text = "\n".join(json.dumps(v, default=str) for v in frame[column].tolist())
            assert "CANARY" not in text, f"{kind}.{column}"
    counted = again.manifest["redaction"]
    assert {"Password", "api_TOKEN", "DATABASE_URL"} <= set(counted["inspections"]["env"])
    assert "--password" in counted["inspections"]["command"]
    assert "db_secret" in counted["inspections"]["labels"]
    assert "token" in counted["inspections"]["health"]
    assert {"Password", "url-credentials"} <= set(counted["logs"]["logs"])
    assert "CANARY" not in json.dumps(again.manifest) and "CANARY" not in again.report()
    # the analysis notebook on this bundle: no canary in any output it shows
    import papermill

    executed = tmp_path / "06-executed.ipynb"
    notebooks = NOTEBOOKS
    papermill.execute_notebook(str(notebooks / "06-incident-analysis.ipynb"), str(executed),
                               parameters={"bundle_path": str(b.path)}, cwd=str(notebooks),
                               progress_bar=False)
    assert "CANARY" not in executed.read_text()


def test_full_disk_leaves_nothing_and_the_journal_runs(incident: tuple[Any, str, Bundle],
                                                       tiny_disk: Path, tmp_path: Path) -> None:
    """The disk fills while a bundle is written: a clear StorageError naming the path, no
    partial file left, and the event journal keeps running."""
    ops, name, b = incident
    journal = opskit.connect(scope=ops.engine.scope).journal(tmp_path / "j.jsonl").start()
    try:
        assert journal.wait_connected(10)
        (tiny_disk / "filler").write_bytes(b"x" * (248 * 1024))  # 8 KiB left
        assert b.path.stat().st_size > 16 * 1024
        target = tiny_disk / "incident.opsb"
        with pytest.raises(opskit.StorageError) as caught:
            record(ops, "incident", services=[name], since="2m", path=target)
        assert str(target) in str(caught.value) and not caught.value.too_big
        assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"], "nothing partial"
        assert journal.running
        ops.restart(name, timeout=1)
        time.sleep(0.5)
        assert journal.flush(5) and "restart" in journal.path.read_text()
    finally:
        journal.stop()


def test_size_cap_is_a_clear_error(incident: tuple[Any, str, Bundle], tmp_path: Path) -> None:
    ops, name, _ = incident
    target = tmp_path / "capped.opsb"
    with pytest.raises(opskit.StorageError, match="over the cap") as caught:
        record(ops, "capped", services=[name], since="2m", path=target, max_bytes=4096)
    assert caught.value.too_big and str(target) in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_record_around_a_finding(incident: tuple[Any, str, Bundle], tmp_path: Path) -> None:
    ops, name, b = incident
    failure = b.analysis().failures.iloc[0]
    crash = Finding(container_id=failure["container_id"], container=name, service=name,
                    kind=failure["kind"], severity="critical",
                    since=failure["onset"].to_pydatetime(warn=False),
                    evidence={}, hint="", failure_class="management")
    around = record(ops, "around", around=crash, margin="10s", path=tmp_path / "a.opsb")
    assert around.since == crash.since - pd.Timedelta("10s")
    assert around.until is not None and around.until <= crash.since + pd.Timedelta("10s")
    assert list(around.containers["name"].astype(str)) == [name]
    assert around.manifest["captured"]["around"] == crash.key


def test_recorded_here_opens_in_another_process(incident: tuple[Any, str, Bundle]) -> None:
    _, _, b = incident
    out = open_elsewhere(b.path)
    assert out["rows"] == {k: len(getattr(b, k)) for k in TABLES}
    assert out["traces"] > 0 and out["html"] == "<!DOCTYPE html>" and out["replay"] == 5
    assert not out["docker"], "opening a bundle must not import docker"
