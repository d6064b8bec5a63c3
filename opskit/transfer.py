"""Copying files into and out of containers: ``docker cp``.

Copies go through tar archives (the engine's ``/archive`` endpoint). Archives coming out of a
container are unpacked with the standard library's ``data`` filter, so a hostile container cannot
write outside the destination (absolute paths, ``..``, links pointing out are refused).
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import tempfile
from pathlib import Path
from typing import IO

from . import errors
from .engine import Engine
from .targets import resolve_one

__all__ = ["copy_from", "copy_to"]


def _is_dir_in_container(engine: Engine, cid: str, path: str) -> bool | None:
    """True/False for an existing directory/file, None when the path does not exist."""
    try:
        stat = engine.api.get_archive(cid, path, chunk_size=None)[1]
    except Exception as exc:
        import docker.errors

        if isinstance(exc, docker.errors.NotFound):
            return None
        raise
    return bool(int(stat.get("mode", 0)) & (1 << 31))  # Go's os.ModeDir


def copy_to(engine: Engine, target: str, src: str | os.PathLike[str], dest: str, *,
            allow_foreign: bool = False) -> str:
    """Copy a local file or folder into a container: ``docker cp SRC TARGET:DEST``.

    If ``dest`` is an existing folder (or ends with ``/``) the source goes inside it under its
    own name; otherwise it is written as ``dest``.

    Returns:
        The path written in the container.

    Raises:
        CopyFailed: the source is missing, or the destination's folder does not exist.
    """
    source = Path(src)
    ref = resolve_one(engine, target, action="copy into", allow_foreign=allow_foreign)
    if not source.exists():
        raise errors.CopyFailed(ref.name, str(source), "the local source does not exist",
                                hint="give the path of a local file or folder.")
    if not dest.startswith("/"):
        raise errors.CopyFailed(ref.name, dest, "the destination is not an absolute path",
                                hint="give a path such as /data/ or /data/file.txt.")
    try:
        is_dir = _is_dir_in_container(engine, ref.id, dest)
        if dest.endswith("/") or is_dir:
            folder, name = dest.rstrip("/") or "/", source.name
        else:
            folder, name = posixpath.dirname(dest) or "/", posixpath.basename(dest)
        with tempfile.TemporaryFile() as buf:
            with tarfile.open(fileobj=buf, mode="w") as tar:
                tar.add(str(source), arcname=name)
            buf.seek(0)
            ok = engine.api.put_archive(ref.id, folder, buf)
    except Exception as exc:
        import docker.errors

        if isinstance(exc, docker.errors.NotFound):
            raise errors.CopyFailed(ref.name, dest, "the destination folder does not exist in "
                                    "the container") from exc
        raise errors.translate(exc, f"copy into {ref.name}", host=engine.host,
                               target=ref.name) from exc
    if not ok:
        raise errors.CopyFailed(ref.name, dest, "the engine refused the archive")
    return posixpath.join(folder, name)


def copy_from(engine: Engine, target: str, src: str, dest: str | os.PathLike[str], *,
              allow_foreign: bool = False) -> Path:
    """Copy a file or folder out of a container: ``docker cp TARGET:SRC DEST``.

    If ``dest`` is an existing local folder the copy goes inside it; otherwise it is written as
    ``dest``. Reading does not change the container, but it can carry secrets, so the container
    must be in scope like any other action.

    Returns:
        The local path written.

    Raises:
        CopyFailed: the source does not exist in the container, or the archive is unsafe.
    """
    ref = resolve_one(engine, target, action="copy from", allow_foreign=allow_foreign)
    destination = Path(dest)
    try:
        stream, stat = engine.api.get_archive(ref.id, src)
        with tempfile.TemporaryFile() as buf:
            for chunk in stream:
                buf.write(chunk)
            buf.seek(0)
            return _unpack(buf, stat.get("name", posixpath.basename(src)), destination, ref.name,
                           src)
    except errors.OpsKitError:
        raise
    except Exception as exc:
        import docker.errors

        if isinstance(exc, docker.errors.NotFound):
            raise errors.CopyFailed(ref.name, src, "no such file or folder in the container"
                                    ) from exc
        raise errors.translate(exc, f"copy from {ref.name}", host=engine.host,
                               target=ref.name) from exc


def _unpack(buf: IO[bytes], name: str,
            destination: Path, container: str, src: str) -> Path:
    into_folder = destination.is_dir()
    folder = destination if into_folder else destination.parent
    if not folder.is_dir():
        raise errors.CopyFailed(container, str(destination), "the local folder does not exist",
                                hint="create it first, or give an existing folder.")
    with tempfile.TemporaryDirectory(dir=folder, prefix=".opskit-cp-") as tmp:
        try:
            with tarfile.open(fileobj=buf, mode="r") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise errors.CopyFailed(container, src, f"unsafe or broken archive: {exc}") from exc
        unpacked = Path(tmp) / name
        final = folder / name if into_folder else destination
        if final.is_dir():
            _merge(unpacked, final)
        else:
            os.replace(unpacked, final)
    return final


def _merge(src: Path, dest: Path) -> None:
    for item in src.iterdir():
        target = dest / item.name
        if item.is_dir() and target.is_dir():
            _merge(item, target)
        else:
            os.replace(item, target)
