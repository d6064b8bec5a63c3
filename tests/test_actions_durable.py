"""The action journal and durable writes: fsync'd lines, interrupted actions, a full disk."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SESSION, TEST_LABEL, unique

import opskit
from opskit.actions import ActionJournal, read_actions
from opskit.durable import AppendLog, atomic_write


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root only), to fill up."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_interrupted_action_is_reported(tmp_path: Path) -> None:
    journal = ActionJournal(tmp_path / "a.jsonl", host="h", actor="tester")
    done = journal.begin("restart", "c" * 64, "web")
    journal.finish(done, "ok")
    journal.begin("restart", "d" * 64, "api")  # the process dies here
    journal.close()
    frame = read_actions(tmp_path / "a.jsonl")
    assert list(frame["result"].astype(str)) == ["ok", "interrupted"]
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"


def test_append_log_cuts_back_a_failed_write(tiny_disk: Path) -> None:
    log = AppendLog(tiny_disk / "j.jsonl")
    log.append(["first"], sync=True)
    with pytest.raises(opskit.StorageError) as caught:
        log.append(["x" * 400_000], sync=True)
    assert str(tiny_disk / "j.jsonl") in str(caught.value) and "Hint:" in str(caught.value)
    assert (tiny_disk / "j.jsonl").read_text() == "first\n", "no torn line left"
    log.append(["second"], sync=True)
    assert (tiny_disk / "j.jsonl").read_text() == "first\nsecond\n"
    log.close()


def test_atomic_write_leaves_nothing_on_a_full_disk(tiny_disk: Path) -> None:
    target = tiny_disk / "bundle.opsb"
    atomic_write(target, lambda fh: fh.write(b"old"))
    with pytest.raises(opskit.StorageError):
        atomic_write(target, lambda fh: fh.write(b"y" * 400_000))
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["bundle.opsb"]
    with pytest.raises(opskit.StorageError, match="over the cap"):
        atomic_write(target, lambda fh: fh.write(b"z" * 100), max_bytes=10)
    assert target.read_bytes() == b"old"


def test_dev_full_is_a_clear_error() -> None:
    with pytest.raises(opskit.StorageError, match="/dev/full"):
        AppendLog("/dev/full").append(["x"], sync=True)


@pytest.mark.engine
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
