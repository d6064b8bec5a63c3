"""Incident bundles on the real engine: record, open, the same frames as live, secrets (row 13),
a full disk (row 11), the size cap, and opening with no engine in another process."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SESSION, TEST_LABEL, unique

import opskit
from opskit import labels as L
from opskit.bundle import TABLES, Bundle, analysis, open_bundle, record
from opskit.errors import InvalidBundle
from opskit.findings import Finding
from opskit.listing import containers_frame

SAMPLE = Path(__file__).parent.parent / "samples" / "sample-incident.opsb"
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


@pytest.mark.engine
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


@pytest.mark.engine
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


@pytest.mark.engine
def test_secrets_never_reach_the_bundle(ops: opskit.Ops, demo: Any, tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """RELIABILITY row 13."""
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
    notebooks = Path(__file__).parent.parent / "notebooks"
    papermill.execute_notebook(str(notebooks / "06-incident-analysis.ipynb"), str(executed),
                               parameters={"bundle_path": str(b.path)}, cwd=str(notebooks),
                               progress_bar=False)
    assert "CANARY" not in executed.read_text()


@pytest.mark.engine
def test_full_disk_leaves_nothing_and_the_journal_runs(incident: tuple[Any, str, Bundle],
                                                       tiny_disk: Path, tmp_path: Path) -> None:
    """RELIABILITY row 11."""
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


@pytest.mark.engine
def test_size_cap_is_a_clear_error(incident: tuple[Any, str, Bundle], tmp_path: Path) -> None:
    ops, name, _ = incident
    target = tmp_path / "capped.opsb"
    with pytest.raises(opskit.StorageError, match="over the cap") as caught:
        record(ops, "capped", services=[name], since="2m", path=target, max_bytes=4096)
    assert caught.value.too_big and str(target) in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.engine
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


def _open_elsewhere(path: Path) -> dict[str, Any]:
    code = textwrap.dedent(f"""
        import json, sys
        import opskit.bundle
        b = opskit.bundle.open_bundle({str(path)!r})
        figure = b.timeline()
        out = {{"rows": {{k: len(getattr(b, k)) for k in opskit.bundle.TABLES}},
               "traces": len(figure.data), "report": b.report(),
               "html": b.report(format="html")[:15], "replay": len(b.replay()),
               "docker": "docker" in sys.modules}}
        print(json.dumps(out))
    """)
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent.sock")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.engine
def test_recorded_here_opens_in_another_process(incident: tuple[Any, str, Bundle]) -> None:
    _, _, b = incident
    out = _open_elsewhere(b.path)
    assert out["rows"] == {k: len(getattr(b, k)) for k in TABLES}
    assert out["traces"] > 0 and out["html"] == "<!DOCTYPE html>" and out["replay"] == 5
    assert not out["docker"], "opening a bundle must not import docker"


def test_sample_opens_with_no_engine() -> None:
    if not SAMPLE.exists():
        pytest.skip("no sample bundle (scripts/record_sample.py makes it)")
    out = _open_elsewhere(SAMPLE)
    assert out["rows"]["events"] > 0 and out["traces"] > 0 and not out["docker"]
    assert "# Incident sample-incident" in out["report"]


def test_what_is_not_a_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidBundle, match=r"nothing\.opsb"):
        open_bundle(tmp_path / "nothing.opsb")
    (tmp_path / "text.opsb").write_text("not a zip")
    with pytest.raises(InvalidBundle, match="Hint:"):
        open_bundle(tmp_path / "text.opsb")
    with zipfile.ZipFile(tmp_path / "other.opsb", "w") as archive:
        archive.writestr("manifest.json", json.dumps({"format": "something-else"}))
    with pytest.raises(InvalidBundle, match="something-else"):
        open_bundle(tmp_path / "other.opsb")


# -- hostile and broken files: every one an InvalidBundle saying what is wrong -------------------

def _good_bundle(path: Path) -> Path:
    """A small valid bundle made with no engine."""
    from opskit.bundle import write_bundle
    from opskit.bundle_parts import empty_logs, findings_frame

    stamp = pd.Series([pd.Timestamp("2026-01-01", tz="UTC")], dtype="datetime64[ns, UTC]")
    tables = {
        "containers": pd.DataFrame({"id": ["c" * 64], "name": ["web-1"], "service": ["web"]}),
        "inspections": pd.DataFrame({"name": ["web-1"], "attrs": [{"Id": "c" * 64}]}),
        "stats": pd.DataFrame({"ts": stamp, "name": ["web-1"], "cpu_pct": [1.5]}),
        "events": pd.DataFrame({"ts": stamp, "name": ["web-1"], "attributes": [{"a": "b"}]}),
        "logs": empty_logs(),
        "health": pd.DataFrame({"ts": stamp, "container": ["web-1"]}),
        "actions": pd.DataFrame({"ts": stamp, "container": ["web-1"], "details": [{}]}),
        "findings": findings_frame([]),
    }
    manifest = {"name": "good", "time_range": {"since": "2026-01-01T00:00:00+00:00",
                                               "until": "2026-01-01T00:10:00+00:00"},
                "notes": [], "redaction": {}, "policy": None}
    return write_bundle(path, manifest, tables)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _rezip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _manifest(**change: Any) -> Any:
    def edit(members: dict[str, bytes]) -> dict[str, bytes]:
        manifest = json.loads(members["manifest.json"])
        for dotted, value in change.items():
            *parents, last = dotted.split("__")
            node = manifest
            for key in parents:
                node = node[key]
            node[last] = value
        return {**members, "manifest.json": json.dumps(manifest).encode()}
    return edit


def _replace(name: str, data: bytes | None) -> Any:
    def edit(members: dict[str, bytes]) -> dict[str, bytes]:
        out = dict(members)
        if data is None:
            del out[name]
        else:
            out[name] = data
        return out
    return edit


def _parquet(frame: pd.DataFrame, **kw: Any) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, **kw)
    return buffer.getvalue()


HOSTILE = [
    ("no manifest", _replace("manifest.json", None), "holds no manifest.json"),
    ("manifest not JSON", _replace("manifest.json", b"{\"format\":"), "manifest.json is not JSON"),
    ("manifest not UTF-8", _replace("manifest.json", b"\xff\xfe{}"), "manifest.json is not JSON"),
    ("manifest a list", _replace("manifest.json", b"[1, 2]"), "a JSON list, not an object"),
    ("manifest a string", _replace("manifest.json", b'"x"'), "a JSON str, not an object"),
    ("deeply nested", _replace("manifest.json", b"[" * 200_000 + b"]" * 200_000),
     "nested too deeply"),
    ("other format", _manifest(format="something-else"), "'something-else'"),
    ("newer version", _manifest(version=2), "format version is 2; this opskit reads version 1"),
    ("version as true", _manifest(version=True), "format version is True"),
    ("version as text", _manifest(version="1"), "format version is '1'"),
    ("tables a list", _manifest(tables=[]), "'tables' is a list, not an object"),
    ("a table missing", _manifest(tables__logs=None), "has no table 'logs'"),
    ("dtypes a string", _manifest(tables__logs__dtypes="x"), "'tables.logs.dtypes' is a string"),
    ("file a number", _manifest(tables__logs__file=3), "'tables.logs.file' is a whole number"),
    ("file elsewhere", _manifest(tables__logs__file="../../etc/passwd"), "does not hold it"),
    ("a strange dtype", _manifest(tables__containers__dtypes={"id": "V1000000000"}),
     "dtype 'V1000000000'"),
    ("a dtype column missing", _manifest(tables__containers__dtypes={"nope": "int64"}),
     "has no column 'nope', which the manifest lists"),
    ("name a number", _manifest(name=5), "'name' is a whole number, not a string"),
    ("notes an object", _manifest(notes={}), "'notes' is an object, not a list"),
    ("engine a list", _manifest(engine=[]), "'engine' is a list, not an object or null"),
    ("time not a time", _manifest(time_range__since="yesterday-ish"), "'time_range.since'"),
    ("time a list", _manifest(time_range__until=[1]), "'time_range.until'"),
    ("redaction counts", _manifest(redaction={"logs": {"line": {"pw": "many"}}}),
     "'redaction' is not"),
    ("policy unknown", _manifest(policy={"bogus": 1}), "'policy' is not a recovery policy"),
    ("parquet garbage", _replace("logs.parquet", b"PAR1 not really PAR1"),
     "the table 'logs' (logs.parquet) could not be read"),
    ("parquet without a column", _replace("containers.parquet", _parquet(pd.DataFrame(
        {"id": ["c"], "name": ["web-1"]}))), "has no column 'service'"),
    ("parquet nested column", _replace("containers.parquet", _parquet(pd.DataFrame(
        {"id": [["c"]], "name": ["web-1"], "service": ["web"]}))), "type list<"),
    ("JSON column nested deeply", _replace("events.parquet", _parquet(pd.DataFrame(
        {"ts": [pd.Timestamp(0, tz="UTC")], "name": ["w"],
         "attributes": ["[" * 200_000 + "]" * 200_000]}))), "nested too deeply"),
]


@pytest.mark.parametrize(("edit", "says"), [(e, s) for _, e, s in HOSTILE],
                         ids=[name for name, _, _ in HOSTILE])
def test_a_hostile_bundle_is_an_invalid_bundle_naming_what_is_wrong(tmp_path: Path, edit: Any,
                                                                   says: str) -> None:
    good = _good_bundle(tmp_path / "good.opsb")
    assert open_bundle(good).containers["name"].tolist() == ["web-1"], "the base opens"
    bad = _rezip(tmp_path / "bad.opsb", edit(_members(good)))
    with pytest.raises(InvalidBundle) as caught:
        open_bundle(bad)
    text = str(caught.value)
    assert says in text, text
    assert str(bad) in text and "Hint:" in text and caught.value.path == str(bad)


def test_zip_level_tricks_are_refused_before_reading(tmp_path: Path) -> None:
    members = _members(_good_bundle(tmp_path / "good.opsb"))
    bomb = _rezip(tmp_path / "bomb.opsb", {**members, "manifest.json": b" " * 64 * 2**20})
    assert bomb.stat().st_size < 2**20
    with pytest.raises(InvalidBundle, match=r"'manifest.json' would expand from \d+ to 67108864 "
                       r"bytes \(\d+:1, more than the 100:1 allowed\)"):
        open_bundle(bomb)
    with pytest.raises(InvalidBundle, match="compression method 12"):
        open_bundle(_rezip(tmp_path / "bz.opsb", members, zipfile.ZIP_BZIP2))
    twice = tmp_path / "twice.opsb"
    with pytest.warns(UserWarning, match="Duplicate name"):
        _rezip(twice, members)
        with zipfile.ZipFile(twice, "a") as archive:
            archive.writestr("manifest.json", b"{}")
    with pytest.raises(InvalidBundle, match=r"'manifest\.json' is given twice"):
        open_bundle(twice)
    locked = tmp_path / "locked.opsb"
    raw = bytearray(_rezip(locked, members).read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local, central
        at = raw.find(signature)
        while at >= 0:
            raw[at + flags_at] |= 0x1  # "encrypted"
            at = raw.find(signature, at + 1)
    locked.write_bytes(bytes(raw))
    with pytest.raises(InvalidBundle, match="is encrypted"):
        open_bundle(locked)
    (tmp_path / "text.opsb").write_text("not a zip")
    with pytest.raises(InvalidBundle, match="BadZipFile"):
        open_bundle(tmp_path / "text.opsb")


def test_size_limits_name_the_limit_and_can_be_raised(tmp_path: Path) -> None:
    good = _good_bundle(tmp_path / "good.opsb")
    size = good.stat().st_size
    with pytest.raises(InvalidBundle, match=rf"the file holds {size} bytes, more than "
                       rf"max_bytes={size - 1}; open_bundle\(path, max_bytes=N\)"):
        open_bundle(good, max_bytes=size - 1)
    stored = _rezip(tmp_path / "stored.opsb", _members(good))
    total = sum(len(v) for v in _members(good).values())
    with pytest.raises(InvalidBundle, match=rf"its members hold {total} bytes uncompressed, "
                       rf"more than max_bytes={total - 1}"):
        open_bundle(_rezip(tmp_path / "deflated.opsb", _members(good)), max_bytes=total - 1)
    assert open_bundle(stored, max_bytes=total).name == "good"


def test_a_parquet_bomb_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    """A text value repeated through a Parquet dictionary, and rows of run-length zeros: a few
    KiB on disk, gigabytes once decoded."""
    import pyarrow as pa

    members = _members(_good_bundle(tmp_path / "good.opsb"))
    rows = 4096
    line = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()),
                                          pa.array(["x" * 2**20]))
    logs = pa.table({"ts": pa.array([0] * rows, pa.timestamp("ns", tz="UTC")),
                     "container": pa.array(["web-1"] * rows), "stream": pa.array(["stdout"] * rows),
                     "line": line})
    import io

    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(logs, buffer, store_schema=False, compression="zstd")  # read back as text
    assert len(buffer.getvalue()) < 2**20
    bomb = _rezip(tmp_path / "dict.opsb", {**members, "logs.parquet": buffer.getvalue()},
                  zipfile.ZIP_STORED)
    with pytest.raises(InvalidBundle, match=r"the table 'logs' \(logs.parquet\) would take about "
                       r"\d+ bytes of memory once decoded, more than the \d+ left of 2147483648 "
                       r"\(8 x max_bytes\)"):
        open_bundle(bomb)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array([0] * 2**21, pa.int8())}), buffer)
    cells = _rezip(tmp_path / "cells.opsb", {**members, "stats.parquet": buffer.getvalue()},
                   zipfile.ZIP_STORED)
    with pytest.raises(InvalidBundle, match=r"the table 'stats' \(stats.parquet\) would take"):
        open_bundle(cells, max_bytes=2**20)


def test_a_zip_bomb_does_not_raise_memory(tmp_path: Path) -> None:
    """The issue's probe: a small file that used to raise memory by hundreds of MiB."""
    members = _members(_good_bundle(tmp_path / "good.opsb"))
    bomb = _rezip(tmp_path / "bomb.opsb", {**members, "logs.parquet": b"\0" * 600 * 2**20})
    assert bomb.stat().st_size < 2**20
    code = textwrap.dedent(f"""
        import resource, opskit.bundle, pandas, pyarrow.parquet
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            opskit.bundle.open_bundle({str(bomb)!r})
        except opskit.InvalidBundle as exc:
            print("refused:", exc)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    said, grew = done.stdout.strip().rsplit("\n", 1)
    assert "would expand from" in said and int(grew) < 20, done.stdout
