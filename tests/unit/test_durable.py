"""Durable files: a full disk leaves whole lines and a clear error, never a torn line; and one
writer at a time.

AppendLog is filled on a 256 KiB tmpfs until a line is cut half way, and must leave no torn
line, raise a StorageError and write again once space is back. The journal file's lock is held
by another process (a subprocess) to check that a second journal writes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import opskit
from opskit.base.durable import AppendLog, atomic_write, cut_torn_tail, lock_holder, try_lock
from opskit.records.journal_file import JournalFile, Record, Tail, iter_records, repair_tail


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root only), to fill up."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def holder(path: Path) -> subprocess.Popen[str]:
    """A process that holds ``path``'s lock (as a journal writer does) until its stdin closes."""
    script = textwrap.dedent(f"""
        import os, sys, fcntl
        fd = os.open({str(path)!r}, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def release(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    proc.wait(10)


def test_nearly_full_disk_leaves_no_torn_line_and_recovers(tiny_disk: Path) -> None:
    """A line written half (its page fits, the rest does not) is cut off; the next append
    raises StorageError, not a raw OSError, and works once space is back."""
    path = tiny_disk / "actions.jsonl"
    log = AppendLog(path)
    log.append(["first"], sync=True)
    filler = fill(tiny_disk)
    big = "y" * 6000  # about 4 KiB fit in the file's last page: a partial write
    for _ in range(2):
        with pytest.raises(opskit.StorageError) as caught:
            log.append([big], sync=True)
        assert str(path) in str(caught.value) and "Hint: free disk space" in str(caught.value)
        assert isinstance(caught.value.cause, OSError)
        assert path.read_bytes() == b"first\n", "no torn line left"
    filler.unlink()
    log.append(["second", big], sync=True)
    assert path.read_text().splitlines() == ["first", "second", big]
    log.close()


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


def test_a_torn_line_left_by_a_crash_is_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"id":1}\n{"id":2,"pha')  # a writer killed in the middle of a line
    log = AppendLog(path)
    log.append(['{"id":3}'], sync=True)
    assert path.read_bytes() == b'{"id":1}\n{"id":3}\n'
    log.close()


def test_append_waits_for_another_process_and_names_a_stuck_one(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    proc = holder(path)
    try:
        log = AppendLog(path, lock_timeout=0.3)
        with pytest.raises(opskit.StorageError, match=f"process {proc.pid} has held its lock"):
            log.append(["stuck"])
        assert path.read_bytes() == b""
        waiting = AppendLog(path, lock_timeout=10)
        thread = threading.Thread(target=waiting.append, args=(["after"],))
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive() and path.read_bytes() == b"", "it waits for the lock"
    finally:
        release(proc)
    thread.join(10)
    assert path.read_bytes() == b"after\n"
    waiting.close()


def test_two_processes_append_500_lines_each_without_interleaving(tmp_path: Path) -> None:
    path, go = tmp_path / "shared.jsonl", tmp_path / "go"
    script = textwrap.dedent(f"""
        import json, os, sys, time
        from opskit.base.durable import AppendLog
        log = AppendLog({str(path)!r})
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        for i in range(500):
            log.append([json.dumps({{"w": sys.argv[1], "i": i, "pad": "p" * (i % 7 * 900)}})],
                       sync=i % 10 == 0)
        log.close()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, w]) for w in "ab"]
    go.touch()
    assert [p.wait(120) for p in procs] == [0, 0]
    import json

    rows = [json.loads(line) for line in path.read_text().splitlines()]  # every line parses
    for w in "ab":
        assert [r["i"] for r in rows if r["w"] == w] == list(range(500))
    assert len(rows) == 1000


def test_journal_file_has_one_writer(tmp_path: Path) -> None:
    """A second JournalFile on a file another process writes gets no lock, writes nothing,
    names the writer's PID, and takes over once that process has let go."""
    path = tmp_path / "j.jsonl"
    rec = Record(time_nano=1, type="container", action="start", actor_id="c" * 64)
    proc = holder(path)
    second = JournalFile(path)
    try:
        assert second.open() is False and not second.writing
        assert second.holder() == proc.pid == lock_holder(os.open(path, os.O_RDONLY))
        assert second.append([rec]) is False
        path.write_bytes(rec.to_line().encode() + b'{"time_nano": 2, "ty')  # writer's last
        assert repair_tail(path) == 0, "no cutting a file another process writes"
    finally:
        release(proc)
    assert second.try_lock() and second.writing and second.holder() == os.getpid()
    assert path.read_bytes() == rec.to_line().encode(), "the torn line is cut on take-over"
    assert second.append([rec]) and len(list(iter_records(path))) == 2
    third = JournalFile(path)
    assert third.open() is False and third.holder() == os.getpid()  # in-process too
    third.close()
    second.close()


def test_tail_reads_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    recs = [Record(time_nano=i, type="container", action="start", actor_id=str(i))
            for i in range(3)]
    tail = Tail(path)
    assert list(tail.read()) == []
    path.write_text(recs[0].to_line() + recs[1].to_line()[:10])
    assert [r.time_nano for r in tail.read()] == [0]
    with open(path, "a") as fh:
        fh.write(recs[1].to_line()[10:] + "not json\n" + recs[2].to_line())
    assert [r.time_nano for r in tail.read()] == [1, 2] and tail.skipped == 1
    assert tail.offset == path.stat().st_size


def test_cut_torn_tail_and_try_lock(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"a\n" + b"b" * 200_000)  # a torn line longer than one read
    fd = os.open(path, os.O_RDWR)
    other = os.open(path, os.O_RDWR)
    try:
        assert try_lock(fd) and not try_lock(other)
        assert cut_torn_tail(fd) == 200_000 and path.read_bytes() == b"a\n"
        assert cut_torn_tail(fd) == 0
    finally:
        os.close(fd)
        os.close(other)


def test_event_journal_file_on_a_full_disk_keeps_whole_lines_and_catches_up(
        tiny_disk: Path) -> None:
    """The lines that reached the file stay (a follower may have read them), the torn one is
    cut, and the rest is written, once, when space is back."""
    path = tiny_disk / "j.jsonl"
    jf = JournalFile(path)
    assert jf.open()
    recs = [Record(time_nano=i, type="container", action="start", actor_id=f"{i:064d}",
                   attributes={"pad": "p" * 700}) for i in range(12)]
    assert jf.append(recs[:1])
    filler = fill(tiny_disk)
    assert not jf.append(recs[1:]) and "No space" in jf.last_error
    data = path.read_bytes()
    assert data.endswith(b"\n") and len(data) > len(recs[0].to_line()), "whole lines kept"
    kept = [r.time_nano for r in iter_records(path)]
    assert kept == list(range(len(kept)))
    filler.unlink()
    assert jf.append([])
    assert [r.time_nano for r in iter_records(path)] == list(range(12)), "each record once"
    jf.close()
