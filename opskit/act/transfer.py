"""Copying files into and out of containers: ``docker cp``.

Copies go through tar archives (the engine's ``/archive`` endpoint). An archive coming out of a
container is judged whole before anything is unpacked (:func:`check_members`), then unpacked
with the per-member filter :func:`safe_member`, into a fresh folder beside the destination that
is moved into place at the end: a refused archive leaves nothing behind.

What a hostile container cannot do:

* write outside the destination: a member whose path is absolute, holds ``..``, or passes
  through a symbolic link of the same archive is refused, as is a name given twice. These are
  lexical checks on the names alone; they do not rely on ``os.path.realpath``, which Python
  before 3.11.13 gives up on for a chain of long links (CVE-2025-4517), letting the standard
  ``data`` filter be walked around.
* leave a link that climbs out of the copy: a symbolic link's target, read from the link's own
  folder, must stay inside the copy, as ``docker cp`` requires. An absolute target is judged as
  ``docker cp`` does, as if it were relative to the link's folder, and kept unchanged (a busybox
  ``/bin`` is a folder of links to ``/bin/busybox``); ``..`` after a step through another link
  is refused, since where it lands cannot be known without following links. Links are never
  followed while unpacking or moving the result into place.
* hard-link to anything but a file met earlier in the same archive, create device files or
  FIFOs, or keep setuid/setgid bits and ownership.
* fill the disk: the archive is read into an unnamed temporary file beside the destination and
  cut at ``max_bytes`` (:data:`DEFAULT_MAX_COPY_BYTES`, 1 GiB, by default).
"""

from __future__ import annotations

import os
import posixpath
import sys
import tarfile
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..base import errors
from ..engine.calls import get_archive, stat_path
from ..engine.connection import Engine
from ..engine.targets import resolve_one
from ..engine.translate import translate

__all__ = ["DEFAULT_MAX_COPY_BYTES", "check_members", "copy_from", "copy_to", "safe_member"]

DEFAULT_MAX_COPY_BYTES = 2**30
"""The largest archive :func:`copy_from` reads unless told otherwise (1 GiB): it is buffered
on disk beside the destination, never in memory, so the cap guards the disk and the time."""

_UNSAFE_HINT = ("the container's archive holds a member that would land outside the "
                "destination, or a device file; nothing was written. Copy a narrower path, or "
                "use `docker cp` yourself if you trust the container.")
_FOLD_CASE = sys.platform in ("darwin", "win32")  # file systems that fold case by default


class _Refused(tarfile.FilterError):
    """A member refused by the whole-archive checks; caught and reported as CopyFailed."""

    def __init__(self, member: tarfile.TarInfo, reason: str) -> None:
        self.tarinfo = member
        super().__init__(f"{member.name!r} {reason}")


def _key(name: str) -> str:
    """A member's place in the copy, as the local file system will compare it."""
    key = posixpath.normpath(name)
    return unicodedata.normalize("NFC", key).casefold() if _FOLD_CASE else key


def _clean_name(member: tarfile.TarInfo, dest_path: str = "") -> str:
    """The member's normalised path; an absolute path or a ``..`` is refused."""
    name = member.name
    if name.startswith("/") or os.path.isabs(name):
        raise tarfile.AbsolutePathError(member)
    if ".." in PurePosixPath(name).parts:
        raise tarfile.OutsideDestinationError(member, os.path.join(dest_path, name))
    return posixpath.normpath(name)


def _link_escape(member: tarfile.TarInfo, path: str, links: frozenset[str] = frozenset()
                 ) -> str | None:
    """Why a symbolic link's target leaves the copy, or None when it stays inside.

    The target is walked from the link's folder one name at a time (an absolute target as if
    relative to that folder, which is ``docker cp``'s check); ``links`` are the other links of
    the archive, after which a ``..`` cannot be judged without following them.
    """
    if not member.linkname:
        return "is a link with an empty target"
    stack = path.split("/")[:-1] if path != "." else []
    through = ""
    for part in member.linkname.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if through:
                return (f"links through the link {through!r} of the same archive and then "
                        f"up ('..'): {member.linkname!r} cannot be judged without following it")
            if not stack:
                return (f"would link to {member.linkname!r}, which is outside the destination "
                        "(docker cp refuses it too)")
            stack.pop()
        else:
            stack.append(part)
            if not through and _key("/".join(stack)) in links:
                through = "/".join(stack)
    return None


def safe_member(member: tarfile.TarInfo, dest_path: str) -> tarfile.TarInfo:
    """A tar extraction filter (``tar.extractall(dest, filter=safe_member)``) for ``docker cp``.

    Like the standard library's ``data`` filter, except that an absolute member path is refused
    rather than made relative, and that a symbolic link is judged by its target alone, lexically,
    as ``docker cp`` does: it must stay inside the copy when read from the link's folder (an
    absolute target as if relative to that folder), and is then kept as it is, created and never
    followed. A filter sees one member at a time: unpack with :func:`check_members` first, which
    judges the archive as a whole (paths through links, names given twice, hard links).

    Raises:
        tarfile.FilterError: an absolute path, a ``..`` component, a path through a link or
            otherwise outside ``dest_path``, a link whose target leaves the copy, a device file
            or FIFO, or a hard link leading out of the archive.
    """
    path = _clean_name(member, dest_path)
    if not member.issym():
        return tarfile.data_filter(member, dest_path)
    reason = _link_escape(member, path)
    if reason:
        raise _Refused(member, reason)
    # The data filter's checks of the link's own path and its dropping of mode and ownership,
    # with a harmless target; then the real target back: a link is created, never followed.
    checked = tarfile.data_filter(member.replace(linkname=".", deep=False), dest_path)
    return checked.replace(linkname=member.linkname, deep=False)


def check_members(members: Sequence[tarfile.TarInfo]) -> None:
    """Judge a whole archive before anything of it is unpacked, by names alone.

    Refused: an absolute path or ``..``; a member at, or under, the path of a symbolic link of
    the same archive (it would be written through the link, or replace it); a name given twice
    (unless both are folders); a non-folder named ``.``; a symbolic link whose target leaves the
    copy (see :func:`safe_member`), or climbs with ``..`` after stepping through another link; a
    hard link to anything but a regular file met earlier in the archive.

    Raises:
        tarfile.FilterError: naming the first member refused and why.
    """
    paths = [_clean_name(m) for m in members]
    links = frozenset(_key(p) for m, p in zip(members, paths, strict=True) if m.issym())
    seen: dict[str, tarfile.TarInfo] = {}
    files: set[str] = set()
    for member, path in zip(members, paths, strict=True):
        key = _key(path)
        parts = key.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in links:
                raise _Refused(member, f"would be written through the link {'/'.join(parts[:i])!r}"
                                       " of the same archive")
        earlier = seen.get(key)
        if earlier is not None and not (earlier.isdir() and member.isdir()):
            raise _Refused(member, "is given twice in the archive")
        if key == "." and not member.isdir():
            raise _Refused(member, "has no name")
        seen[key] = member
        if member.issym():
            reason = _link_escape(member, path, links)
            if reason:
                raise _Refused(member, reason)
        elif member.islnk():
            target = member.linkname
            if target.startswith("/") or os.path.isabs(target):
                raise tarfile.AbsoluteLinkError(member)
            if ".." in PurePosixPath(target).parts:
                raise tarfile.LinkOutsideDestinationError(member, target)
            if _key(target) not in files:
                raise _Refused(member, f"is a hard link to {target!r}, which is not a file "
                               "earlier in the archive")
            files.add(key)
        elif member.isreg():
            files.add(key)


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
        stat = stat_path(engine.api, ref.id, dest, engine.timeout)
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
        err = translate(exc, f"copy into {ref.name}", host=engine.host, target=ref.name)
        if isinstance(err, errors.NotFound):
            raise errors.CopyFailed(ref.name, dest, "the destination folder does not exist in "
                                    "the container",
                                    hint="create it first (exec(['mkdir', '-p', FOLDER])) or "
                                    "copy into an existing folder.") from exc
        raise err from exc
    if not ok:
        raise errors.CopyFailed(ref.name, dest, "the engine refused the archive")
    return posixpath.join(folder, name)


def copy_from(engine: Engine, target: str, src: str, dest: str | os.PathLike[str], *,
              max_bytes: int | None = DEFAULT_MAX_COPY_BYTES,
              allow_foreign: bool = False) -> Path:
    """Copy a file or folder out of a container: ``docker cp TARGET:SRC DEST``.

    If ``dest`` is an existing local folder the copy goes inside it; otherwise it is written as
    ``dest``. Symbolic links come out as links (absolute ones too, as with ``docker cp``); an
    archive that would write outside ``dest``, or holds a link climbing out of the copy, is
    refused whole (see :func:`check_members`). Reading does not change the container, but it
    can carry secrets, so the container must be in scope like any other action.

    Args:
        max_bytes: the largest archive read from the engine, in bytes: the files' contents
            plus tar's headers (512 bytes a file, contents rounded up to 512). 1 GiB by default
            (:data:`DEFAULT_MAX_COPY_BYTES`); ``None`` for no limit, as ``docker cp``. The
            archive goes to an unnamed temporary file beside ``dest``, never into memory.
        allow_foreign: copy from a container outside opskit's scope.

    Returns:
        The local path written.

    Raises:
        CopyFailed: the source does not exist in the container, the local folder does not
            exist, the copy is larger than ``max_bytes``, the archive is unsafe, or the copy
            could not be written locally. Nothing is left at ``dest`` or beside it.
        InvalidTarget: ``max_bytes`` is not a positive whole number or None.
        ContainerNotFound, OutOfScope, EngineError, EngineUnavailable.
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)
                                  or max_bytes <= 0):
        raise errors.InvalidTarget(target, f"was given copy max_bytes={max_bytes!r}",
                                   hint="pass a number of bytes above 0 (for example 2**30), "
                                   "or None for no limit.")
    ref = resolve_one(engine, target, action="copy from", allow_foreign=allow_foreign)
    if posixpath.normpath(src or "/") in ("/", "//"):
        raise errors.CopyFailed(ref.name, src, "copying the whole filesystem is not supported",
                                hint=f"copy a folder under / instead, or use `docker export "
                                f"{ref.name}`.")
    destination = Path(dest)
    folder = _local_folder(destination, ref.name)
    try:  # unnamed where the system allows; closed by the with below
        spool = tempfile.TemporaryFile(dir=folder, prefix=".opskit-cp-")  # noqa: SIM115
    except OSError as exc:
        raise errors.CopyFailed(ref.name, str(folder), f"could not write there: {exc}",
                                hint="check the permissions of the local folder.") from exc
    try:
        with spool as buf:
            stat = _download(engine, ref.id, src, buf, max_bytes, ref.name)
            buf.seek(0)
            name = stat.get("name") or posixpath.basename(src.rstrip("/"))
            return _unpack(buf, name, destination, ref.name, src)
    except errors.OpsKitError:
        raise
    except Exception as exc:
        err = translate(exc, f"copy from {ref.name}", host=engine.host, target=ref.name)
        if isinstance(err, errors.NotFound):
            raise errors.CopyFailed(ref.name, src, "no such file or folder in the container",
                                    hint=f"check the path exists (`opskit exec {ref.name} -- "
                                    f"ls -ld {src}`).") from exc
        raise err from exc


def _size(n: int) -> str:
    return f"{n} bytes" if n < 2**20 else f"{n / 2**20:.4g} MiB"


def _too_big(container: str, src: str, max_bytes: int, seen: str) -> errors.CopyFailed:
    return errors.CopyFailed(container, src, f"the copy is larger than max_bytes={max_bytes} "
                             f"({_size(max_bytes)}): {seen}",
                             hint="copy a narrower path (a file, not its folder), or pass a "
                             "larger max_bytes= (None for no limit); nothing was written.")


def _download(engine: Engine, cid: str, src: str, into: IO[bytes], max_bytes: int | None,
              container: str) -> dict[str, Any]:
    """Write the engine's archive of ``src`` (``GET /containers/ID/archive``) into ``into``.

    Returns the engine's stat of ``src``. The response is closed however this ends; more than
    ``max_bytes`` stops the read with :class:`~opskit.base.errors.CopyFailed`.
    """
    with get_archive(engine.api, cid, src) as (stat, chunks):
        size, mode = stat.get("size"), int(stat.get("mode") or 0)
        plain_file = not mode & ((1 << 31) | (1 << 27))  # os.ModeDir, os.ModeSymlink
        if max_bytes is not None and plain_file and isinstance(size, int) and size > max_bytes:
            raise _too_big(container, src, max_bytes, f"the file holds {_size(size)}")
        total = 0
        for chunk in chunks:
            total += len(chunk)
            if max_bytes is not None and total > max_bytes:
                raise _too_big(container, src, max_bytes, "the engine's archive went past it")
            try:
                into.write(chunk)
            except OSError as exc:
                raise errors.CopyFailed(container, src, f"could not write beside the "
                                        f"destination: {exc}", hint="check free space and "
                                        "permissions of the local folder.") from exc
    return stat


def _local_folder(destination: Path, container: str) -> Path:
    """The existing local folder the copy is written in."""
    folder = destination if destination.is_dir() else destination.parent
    if not folder.is_dir():
        raise errors.CopyFailed(container, str(destination), "the local folder does not exist",
                                hint="create it first, or give an existing folder.")
    return folder


def _unpack(buf: IO[bytes], name: str,
            destination: Path, container: str, src: str) -> Path:
    """Judge the whole archive, unpack it next to ``destination``, then move its top entry
    into place.

    ``name`` is the engine's name for the copy: a file or folder name, or ``"."`` for the
    contents of a folder (``docker cp TARGET:DIR/. DEST``), which are merged into ``dest``.
    """
    if name in ("", "..") or "/" in name:
        raise errors.CopyFailed(container, src, f"the engine named the copy {name!r}",
                                hint=_UNSAFE_HINT)
    into_folder = destination.is_dir()
    folder = _local_folder(destination, container)
    final = folder / name if into_folder and name != "." else destination
    with tempfile.TemporaryDirectory(dir=folder, prefix=".opskit-cp-") as tmp:
        root = Path(tmp) / "copy"
        try:
            root.mkdir()
            with tarfile.open(fileobj=buf, mode="r") as tar:
                members = tar.getmembers()
                check_members(members)  # all of it, before anything is written
                tar.extractall(root, members=members, filter=safe_member)
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
