"""Writing files that survive crashes, full disks and other writers.

Two shapes, used by every journal and bundle opskit writes:

- :class:`AppendLog`: an append-only file of whole lines, shared safely by processes. Each
  append takes the file's ``flock`` for the write and its fsync, so two processes never
  interleave or cut each other's lines. A write that fails half way (disk full) is cut back
  with ``ftruncate`` on the descriptor (no buffered flush that could fail again), so the file
  always ends at a line boundary; the next append works as soon as space is back.
- :func:`atomic_write`: a whole file written to a temporary file beside the target, fsync'd,
  then renamed over it, so the final path holds either the old file or the complete new one.

Both raise :class:`~opskit.base.errors.StorageError` naming the path, and leave nothing partial.
:func:`try_lock`, :func:`lock_holder` and :func:`cut_torn_tail` are the pieces the event
journal uses to hold its file for a writer's whole lifetime.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from .errors import StorageError

__all__ = ["AppendLog", "atomic_write", "cut_torn_tail", "lock_holder", "state_dir",
           "try_lock"]

log = logging.getLogger("opskit")

_CHUNK = 65536


def try_lock(fd: int) -> bool:
    """Take the exclusive ``flock`` of an open file without waiting; False when another open
    file (in this process or another) holds it. The lock lasts until ``fd`` is closed."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_holder(fd: int) -> int | None:
    """The PID holding the ``flock`` of the file open at ``fd``, from ``/proc/locks``; ``None``
    when unknown (not Linux, another PID namespace, or nobody holds it)."""
    st = os.fstat(fd)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            for line in fh:
                parts = line.split()  # "3: FLOCK ADVISORY WRITE 2887 fe:00:1491 0 EOF"
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == device:
                    pid = int(parts[4])
                    return pid if pid > 0 else None
    except (OSError, ValueError):
        return None
    return None


def cut_torn_tail(fd: int) -> int:
    """Cut the bytes after the last newline (a line torn by a crash or a full disk) off the
    file open read-write at ``fd``; returns how many were cut. Hold the file's lock."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    keep, end = 0, size
    while end > 0:
        start = max(0, end - _CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    os.ftruncate(fd, keep)
    return size - keep


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class AppendLog:
    """An append-only file of text lines, safe against torn writes, threads and processes.

    Args:
        path: the file (created with its folder on the first append).
        lock_timeout: seconds to wait for another process's append before giving up.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = None

    def _open(self) -> int:
        if self._fh is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # unbuffered: every write is one write(2), so nothing waits in a buffer
                self._fh = open(self.path, "a+b", buffering=0)  # noqa: SIM115 - kept open
            except OSError as exc:
                raise StorageError(str(self.path), exc) from exc
        return self._fh.fileno()

    def _wait_for_lock(self, fd: int) -> None:
        deadline, pause = time.monotonic() + self.lock_timeout, 0.001
        while True:
            try:
                if try_lock(fd):
                    return
            except OSError as exc:
                raise StorageError(str(self.path), exc) from exc
            if time.monotonic() >= deadline:
                pid = lock_holder(fd)
                who = f"process {pid}" if pid else "another process"
                raise StorageError(str(self.path), OSError(
                    errno.EAGAIN, f"{who} has held its lock for over {self.lock_timeout:g}s "
                    "(stopped in the middle of an append?)"))
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    def append(self, lines: Iterable[str], *, sync: bool = False) -> None:
        """Append whole lines under the file's lock; on failure cut the file back to where
        it was (a line boundary) and raise. A torn line left by a writer that crashed is cut
        off first.

        Raises:
            StorageError: the disk is full, the file cannot be written, or another process
                held the lock for longer than ``lock_timeout``.
        """
        data = "".join(line.rstrip("\n") + "\n" for line in lines).encode()
        if not data:
            return
        with self._lock:
            fd = self._open()
            self._wait_for_lock(fd)
            try:
                self._append_locked(fd, data, sync)
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _append_locked(self, fd: int, data: bytes, sync: bool) -> None:
        start = -1
        try:
            cut = cut_torn_tail(fd)
            if cut:
                log.warning("%s: cut a torn last line (%d bytes) left by a failed write",
                            self.path, cut)
            start = os.fstat(fd).st_size
            _write_all(fd, data)
            if sync:
                os.fsync(fd)
        except OSError as exc:
            if start >= 0:
                with contextlib.suppress(OSError):  # failing too: the next append cuts it
                    os.ftruncate(fd, start)
            raise StorageError(str(self.path), exc) from exc

    def sync(self) -> None:
        """fsync what was appended."""
        with self._lock:
            if self._fh is not None:
                try:
                    os.fsync(self._fh.fileno())
                except OSError as exc:
                    raise StorageError(str(self.path), exc) from exc

    def close(self) -> None:
        """fsync and close (appending again reopens)."""
        with self._lock:
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    os.fsync(self._fh.fileno())
                self._fh.close()
                self._fh = None


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], *,
                 max_bytes: int | None = None) -> Path:
    """Write a file atomically: ``write(fh)`` fills a temporary file, which is fsync'd and
    renamed over ``path``.

    Args:
        path: the final path.
        write: fills the open binary file.
        max_bytes: refuse (and remove the temporary file) when the result is larger.

    Raises:
        StorageError: writing failed (disk full, no permission) or the size cap was passed;
            nothing is left at ``path`` or beside it.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            size = fh.tell()
            if max_bytes is not None and size > max_bytes:
                raise StorageError(str(final), OSError(f"{size} bytes is over the cap of "
                                                       f"{max_bytes} bytes"), too_big=True)
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        with contextlib.suppress(OSError):
            dir_fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except StorageError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StorageError(str(final), exc) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return final


def state_dir() -> Path:
    """Folder for opskit's own files (scope keys, journals): ``$OPSKIT_HOME`` or ~/.local/state."""
    root = os.environ.get("OPSKIT_HOME") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "opskit")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
