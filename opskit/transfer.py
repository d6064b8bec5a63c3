"""Copying files into and out of containers: ``docker cp``.

Copies go through tar archives (the engine's ``/archive`` endpoint). Archives coming out of a
container are unpacked with :func:`safe_member`, a tar filter that keeps symbolic links as links,
as ``docker cp`` does (a busybox ``/bin`` is a folder of links to ``/bin/busybox``), while a
hostile container still cannot write outside the destination: a member whose own path is
absolute, holds ``..`` or passes through a link is refused, as are device files and hard links
leading out; setuid/setgid bits and ownership are dropped. Links are never followed while
unpacking or moving the result into place.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from . import errors
from .engine import Engine
from .targets import resolve_one

__all__ = ["copy_from", "copy_to", "safe_member"]

_UNSAFE_HINT = ("the container's archive holds a member that would land outside the "
                "destination, or a device file; nothing was written. Copy a narrower path, or "
                "use `docker cp` yourself if you trust the container.")


def safe_member(member: tarfile.TarInfo, dest_path: str) -> tarfile.TarInfo:
    """A tar extraction filter (``tar.extractall(dest, filter=safe_member)``) for ``docker cp``.

    Like the standard library's ``data`` filter, except that symbolic links are kept whatever
    they point at (they are created, never followed), and that an absolute member path is
    refused rather than made relative.

    Raises:
        tarfile.FilterError: an absolute path, a ``..`` component, a path through a link or
            otherwise outside ``dest_path``, a device file or FIFO, or a hard link leading
            out of the archive.
    """
    name = member.name
    if name.startswith("/") or os.path.isabs(name):
        raise tarfile.AbsolutePathError(member)
    if ".." in PurePosixPath(name).parts:
        raise tarfile.OutsideDestinationError(member, os.path.join(dest_path, name))
    if not member.issym():
        return tarfile.data_filter(member, dest_path)
    # The data filter's checks of the link's own path and its dropping of mode and ownership,
    # with a harmless target; then the real target back: a link is created, never followed.
    checked = tarfile.data_filter(member.replace(linkname=".", deep=False), dest_path)
    return checked.replace(linkname=member.linkname, deep=False)


def _stat_in_container(engine: Engine, cid: str, path: str) -> dict[str, Any] | None:
    """The engine's stat of ``path`` (``HEAD /containers/ID/archive``), None when missing."""
    import docker.errors
    from docker.utils import decode_json_header

    url = engine.api._url("/containers/{0}/archive", cid)
    res = engine.api.head(url, params={"path": path}, timeout=engine.timeout)
    try:
        if res.status_code == 404:
            return None
        engine.api._raise_for_status(res)
        header = res.headers.get("X-Docker-Container-Path-Stat")
        stat: dict[str, Any] = decode_json_header(header) if header else {}
    except docker.errors.NotFound:
        return None
    finally:
        res.close()
    return stat


def copy_to(engine: Engine, target: str, src: str | os.PathLike[str], dest: str, *,
            allow_foreign: bool = False) -> str:
    """Copy a local file or folder into a container: ``docker cp SRC TARGET:DEST``.

    If ``dest`` is an existing folder (or ends with ``/``) the source goes inside it under its
    own name; otherwise it is written as ``dest``. Local symbolic links are copied as links.

    Returns:
        The path written in the container.

    Raises:
        CopyFailed: the source is missing, or the destination's folder does not exist.
        ContainerNotFound, OutOfScope, InvalidTarget, EngineError, EngineUnavailable.
    """
    source = Path(src)
    ref = resolve_one(engine, target, action="copy into", allow_foreign=allow_foreign)
    if not source.exists() and not source.is_symlink():
        raise errors.CopyFailed(ref.name, str(source), "the local source does not exist",
                                hint="give the path of a local file or folder.")
    if not dest.startswith("/"):
        raise errors.CopyFailed(ref.name, dest, "the destination is not an absolute path",
                                hint="give a path such as /data/ or /data/file.txt.")
    try:
        stat = _stat_in_container(engine, ref.id, dest)
        is_dir = stat is not None and bool(int(stat.get("mode", 0)) & (1 << 31))  # os.ModeDir
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
                                    "the container",
                                    hint="create it first (exec(['mkdir', '-p', FOLDER])) or "
                                    "copy into an existing folder.") from exc
        raise errors.translate(exc, f"copy into {ref.name}", host=engine.host,
                               target=ref.name) from exc
    if not ok:
        raise errors.CopyFailed(ref.name, dest, "the engine refused the archive")
    return posixpath.join(folder, name)


def copy_from(engine: Engine, target: str, src: str, dest: str | os.PathLike[str], *,
              allow_foreign: bool = False) -> Path:
    """Copy a file or folder out of a container: ``docker cp TARGET:SRC DEST``.

    If ``dest`` is an existing local folder the copy goes inside it; otherwise it is written as
    ``dest``. Symbolic links come out as links (absolute ones too, as with ``docker cp``).
    Reading does not change the container, but it can carry secrets, so the container must be
    in scope like any other action.

    Returns:
        The local path written.

    Raises:
        CopyFailed: the source does not exist in the container, the local folder does not
            exist, the archive is unsafe (see :func:`safe_member`), or the copy could not be
            written locally.
        ContainerNotFound, OutOfScope, InvalidTarget, EngineError, EngineUnavailable.
    """
    ref = resolve_one(engine, target, action="copy from", allow_foreign=allow_foreign)
    if posixpath.normpath(src or "/") in ("/", "//"):
        raise errors.CopyFailed(ref.name, src, "copying the whole filesystem is not supported",
                                hint=f"copy a folder under / instead, or use `docker export "
                                f"{ref.name}`.")
    destination = Path(dest)
    try:
        stream, stat = engine.api.get_archive(ref.id, src)
        with tempfile.TemporaryFile() as buf:
            for chunk in stream:
                buf.write(chunk)
            buf.seek(0)
            name = (stat or {}).get("name") or posixpath.basename(src.rstrip("/"))
            return _unpack(buf, name, destination, ref.name, src)
    except errors.OpsKitError:
        raise
    except Exception as exc:
        import docker.errors

        if isinstance(exc, docker.errors.NotFound):
            raise errors.CopyFailed(ref.name, src, "no such file or folder in the container",
                                    hint=f"check the path exists (`opskit exec {ref.name} -- "
                                    f"ls -ld {src}`).") from exc
        raise errors.translate(exc, f"copy from {ref.name}", host=engine.host,
                               target=ref.name) from exc


def _unpack(buf: IO[bytes], name: str,
            destination: Path, container: str, src: str) -> Path:
    """Unpack the archive next to ``destination``, then move its top entry into place.

    ``name`` is the engine's name for the copy: a file or folder name, or ``"."`` for the
    contents of a folder (``docker cp TARGET:DIR/. DEST``), which are merged into ``dest``.
    """
    if name in ("", "..") or "/" in name:
        raise errors.CopyFailed(container, src, f"the engine named the copy {name!r}",
                                hint=_UNSAFE_HINT)
    into_folder = destination.is_dir()
    folder = destination if into_folder else destination.parent
    if not folder.is_dir():
        raise errors.CopyFailed(container, str(destination), "the local folder does not exist",
                                hint="create it first, or give an existing folder.")
    final = folder / name if into_folder and name != "." else destination
    with tempfile.TemporaryDirectory(dir=folder, prefix=".opskit-cp-") as tmp:
        root = Path(tmp) / "copy"
        try:
            root.mkdir()
            with tarfile.open(fileobj=buf, mode="r") as tar:
                tar.extractall(root, filter=safe_member)
        except tarfile.FilterError as exc:
            raise errors.CopyFailed(container, src, f"unsafe archive: {exc}",
                                    hint=_UNSAFE_HINT) from exc
        except tarfile.TarError as exc:
            raise errors.CopyFailed(container, src, f"broken archive: {exc}",
                                    hint="try again; the engine's archive ended early or is "
                                    "not a tar archive.") from exc
        except OSError as exc:
            raise errors.CopyFailed(container, str(destination), f"could not write: {exc}",
                                    hint="check free space and permissions of the local "
                                    "folder.") from exc
        unpacked = root / name if name != "." else root
        if not unpacked.exists() and not unpacked.is_symlink():
            raise errors.CopyFailed(container, src, f"the archive holds no entry {name!r}",
                                    hint=_UNSAFE_HINT)
        try:
            if _real_dir(final) and _real_dir(unpacked):
                _merge(unpacked, final)
            else:
                os.replace(unpacked, final)
        except OSError as exc:
            raise errors.CopyFailed(container, str(final), f"could not put the copy in place: "
                                    f"{exc}", hint="a file and a folder of the same name clash; "
                                    "remove the local one or choose another destination."
                                    ) from exc
    return final


def _real_dir(path: Path) -> bool:
    """A folder, and not a link to one (links from a container are never followed)."""
    return path.is_dir() and not path.is_symlink()


def _merge(src: Path, dest: Path) -> None:
    """Move ``src``'s entries into the existing folder ``dest``, folders merged recursively."""
    for item in src.iterdir():
        target = dest / item.name
        if _real_dir(item) and _real_dir(target):
            _merge(item, target)
        else:
            os.replace(item, target)
