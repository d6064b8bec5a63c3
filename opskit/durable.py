"""Writing files that survive crashes and full disks.

Two shapes, used by every journal and bundle opskit writes:

- :class:`AppendLog`: an append-only file of whole lines. A write that fails half way (disk
  full) is cut back off, so the file never ends in a torn line; ``sync()`` fsyncs.
- :func:`atomic_write`: a whole file written to a temporary file beside the target, fsync'd,
  then renamed over it, so the final path holds either the old file or the complete new one.

Both raise :class:`~opskit.errors.StorageError` naming the path, and leave nothing partial.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from .errors import StorageError

__all__ = ["AppendLog", "atomic_write"]


class AppendLog:
    """An append-only file of text lines, safe against torn writes (thread-safe)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = None

    def _open(self) -> IO[bytes]:
        if self._fh is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open across appends
            except OSError as exc:
                raise StorageError(str(self.path), exc) from exc
        return self._fh

    def append(self, lines: Iterable[str], *, sync: bool = False) -> None:
        """Append whole lines; on failure cut the file back to where it was and raise.

        Raises:
            StorageError: the disk is full or the file cannot be written.
        """
        data = "".join(line.rstrip("\n") + "\n" for line in lines).encode()
        if not data:
            return
        with self._lock:
            fh = self._open()
            start = fh.seek(0, os.SEEK_END)
            try:
                fh.write(data)
                fh.flush()
                if sync:
                    os.fsync(fh.fileno())
            except OSError as exc:
                with contextlib.suppress(OSError):
                    fh.truncate(start)
                    fh.seek(start)
                raise StorageError(str(self.path), exc) from exc

    def sync(self) -> None:
        """fsync what was appended."""
        with self._lock:
            if self._fh is not None:
                try:
                    self._fh.flush()
                    os.fsync(self._fh.fileno())
                except OSError as exc:
                    raise StorageError(str(self.path), exc) from exc

    def close(self) -> None:
        """fsync and close (appending again reopens)."""
        with self._lock:
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    self._fh.flush()
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
