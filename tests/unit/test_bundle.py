"""Incident bundles opened with no engine: the recorded sample opens in another process
without docker-py, and what is not a bundle, or a hostile one (bad manifest, zip tricks,
size and decompression bombs), is an InvalidBundle saying what is wrong.

Recording bundles on the real engine is in ../engine/test_bundle.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from opskit.analysis.bundle import open_bundle
from opskit.base.errors import InvalidBundle
from tests.support.bundles import open_elsewhere
from tests.support.paths import SAMPLE


def test_sample_opens_with_no_engine() -> None:
    if not SAMPLE.exists():
        pytest.skip("no sample bundle (scripts/record_sample.py makes it)")
    out = open_elsewhere(SAMPLE)
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
    from opskit.analysis.bundle import write_bundle
    from opskit.analysis.incidents import findings_frame
    from opskit.analysis.tables import empty_logs

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
        import resource, opskit.analysis.bundle, pandas, pyarrow.parquet
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            opskit.analysis.bundle.open_bundle({str(bomb)!r})
        except opskit.InvalidBundle as exc:
            print("refused:", exc)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    said, grew = done.stdout.strip().rsplit("\n", 1)
    assert "would expand from" in said and int(grew) < 20, done.stdout
