"""docker cp's archive filter with no engine, on archives made in memory: links that stay
inside kept as links, links climbing out and hostile archives refused whole before anything
is written, modes made safe.

Copies in both directions on the real engine are in ../engine/test_transfer.py."""

from __future__ import annotations

import io
import os
import secrets
import stat
import tarfile
from pathlib import Path

import pytest

import opskit
from opskit.act import transfer
from opskit.act.transfer import check_members, safe_member

# -- the filter, on archives made in memory (no engine) -----------------------------------

def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def _file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def _entry(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o777
    return info, None


def _extract(buf: io.BytesIO, dest: Path) -> None:
    with tarfile.open(fileobj=buf, mode="r") as tar:
        tar.extractall(dest, filter=safe_member)


def test_links_that_stay_inside_are_kept_as_links(tmp_path: Path) -> None:
    buf = _tar(_entry("bin", tarfile.DIRTYPE), _file("bin/busybox", b"elf", 0o755),
               _entry("bin/sh", tarfile.SYMTYPE, "/bin/busybox"),
               _entry("bin/rel", tarfile.SYMTYPE, "busybox"),
               _entry("bin/up", tarfile.SYMTYPE, "../bin/busybox"),
               _entry("bin/hard", tarfile.LNKTYPE, "bin/busybox"))
    with tarfile.open(fileobj=buf, mode="r") as tar:
        check_members(tar.getmembers())
    buf.seek(0)
    _extract(buf, tmp_path)
    assert os.readlink(tmp_path / "bin/sh") == "/bin/busybox", "absolute, as docker cp keeps it"
    assert (tmp_path / "bin/rel").read_bytes() == b"elf"
    assert os.readlink(tmp_path / "bin/up") == "../bin/busybox"
    assert (tmp_path / "bin/hard").stat().st_ino == (tmp_path / "bin/busybox").stat().st_ino


@pytest.mark.parametrize("target", ["../../outside", "../..", "/../../etc", "a/../../.."])
def test_a_link_climbing_out_of_the_copy_is_refused_by_the_filter(tmp_path: Path,
                                                                   target: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(tarfile.FilterError, match="outside the destination"):
        _extract(_tar(_entry("bin", tarfile.DIRTYPE), _entry("bin/up", tarfile.SYMTYPE, target)),
                 dest)
    assert not (dest / "bin" / "up").is_symlink()


@pytest.mark.parametrize(("members", "error"), [
    ([_file("../evil")], tarfile.OutsideDestinationError),
    ([_file("a/../../evil")], tarfile.OutsideDestinationError),
    ([_file("/evil")], tarfile.AbsolutePathError),
    ([_entry("../evil-link", tarfile.SYMTYPE, "x")], tarfile.OutsideDestinationError),
    ([_entry("/evil-link", tarfile.SYMTYPE, "x")], tarfile.AbsolutePathError),
    ([_entry("dev", tarfile.CHRTYPE)], tarfile.SpecialFileError),
    ([_entry("blk", tarfile.BLKTYPE)], tarfile.SpecialFileError),
    ([_entry("hard", tarfile.LNKTYPE, "/etc/passwd")], tarfile.AbsoluteLinkError),
    ([_entry("hard", tarfile.LNKTYPE, "../evil")], tarfile.LinkOutsideDestinationError),
])
def test_unsafe_members_are_refused(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]],
                                    error: type[Exception]) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(error):
        _extract(_tar(*members), dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"], "nothing written outside"


def test_nothing_is_written_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"intact")
    for members in ([_entry("lnk", tarfile.SYMTYPE, str(outside)), _file("lnk/evil")],
                    [_entry("lnk", tarfile.SYMTYPE, "../outside"), _file("lnk/evil")],
                    [_entry("victim", tarfile.SYMTYPE, str(outside / "victim")),
                     _file("victim", b"overwritten")],
                    [_entry("lnk", tarfile.SYMTYPE, str(outside / "victim")),
                     _entry("hard", tarfile.LNKTYPE, "lnk")]):
        dest = tmp_path / f"dest-{secrets.token_hex(2)}"
        dest.mkdir()
        with pytest.raises(tarfile.FilterError):
            _extract(_tar(*members), dest)
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_bytes() == b"intact"


# -- the whole archive, judged by names before anything is written -----------------------

DIR, SYM, HARD = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


@pytest.mark.parametrize(("members", "says"), [
    ([_entry("d", DIR), _entry("d/lnk", SYM, "."), _file("d/lnk/evil")],
     "written through the link 'd/lnk'"),
    ([_entry("lnk", SYM, "/etc"), _file("lnk/passwd")], "written through the link 'lnk'"),
    ([_entry("victim", SYM, "/outside/victim"), _file("victim", b"overwritten")],
     "given twice"),
    ([_file("same"), _file("same")], "given twice"),
    ([_entry("a", DIR), _entry("b", SYM, "a"), _entry("up", SYM, "b/../..")],
     "through the link 'b'"),
    ([_entry("self", SYM, "self/..")], "through the link 'self'"),
    ([_entry("up", SYM, "../outside")], "outside the destination"),
    ([_entry("d", DIR), _entry("d/abs", SYM, "/../../etc")], "outside the destination"),
    ([_entry("", SYM, ".")], "has no name"),
    ([_entry("empty", SYM, "")], "empty target"),
    ([_entry("lnk", SYM, "/etc/passwd"), _entry("hard", HARD, "lnk")], "not a file earlier"),
    ([_entry("hard", HARD, "later"), _file("later")], "not a file earlier"),
    ([_entry("hard", HARD, "../evil")], "outside the destination"),
    ([_entry("hard", HARD, "/etc/passwd")], "absolute"),
    ([_file("ok"), _file("../evil")], "outside the destination"),
    ([_file("ok"), _file("/evil")], "absolute"),
])
def test_a_hostile_archive_is_refused_whole(tmp_path: Path,
                                            members: list[tuple[tarfile.TarInfo, bytes]],
                                            says: str) -> None:
    with tarfile.open(fileobj=_tar(*members), mode="r") as tar, \
            pytest.raises(tarfile.FilterError, match=says):
        check_members(tar.getmembers())
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(opskit.CopyFailed, match=says) as caught:
        transfer._unpack(_tar(*members), ".", dest, "web-1", "/data/.")
    assert "Hint:" in str(caught.value) and caught.value.container == "web-1"
    assert list(dest.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["dest"]


def _realpath_limit_attack(base_len: int) -> io.BytesIO:
    """The shape of CVE-2025-4517: links to long folder names, nested until resolving them
    passes PATH_MAX, where ``os.path.realpath`` (before Python 3.11.13) stops resolving and the
    ``data`` filter believes ``escape`` is inside; then a file written through ``escape``."""
    steps = "abcdefghijklmnop"
    component = "d" * ((os.pathconf("/", "PC_PATH_MAX") - base_len) // (len(steps) + 1))
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [_entry("data", DIR)]
    path = "data"
    for step in steps:
        members += [_entry(f"{path}/{component}", DIR),
                    _entry(f"{path}/{step}", SYM, component)]
        path = f"{path}/{component}"
    deep = "/".join(steps) + "/" + "l" * 254
    members += [_entry(f"data/{deep}", SYM, "/".join([".."] * len(steps))),
                _entry("data/escape", SYM, deep + "/../../../.."),
                _file("data/escape/pwned", b"outside!")]
    return _tar(*members)


def test_a_chain_of_long_links_writes_nothing_outside(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    buf = _realpath_limit_attack(len(str(dest)) + 40)
    with pytest.raises(opskit.CopyFailed, match="through the link") as caught:
        transfer._unpack(buf, "data", dest, "web-1", "/data")
    assert "unsafe archive" in str(caught.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dest"], "nothing written anywhere"


def test_modes_are_made_safe(tmp_path: Path) -> None:
    _extract(_tar(_file("suid", b"x", 0o4755), _file("sgid", b"x", 0o2775),
                  _file("private", b"x", 0o000)), tmp_path)
    assert stat.S_IMODE((tmp_path / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "sgid").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


def test_an_unsafe_archive_is_a_copy_failed_with_its_own_hint(tmp_path: Path) -> None:
    buf = _tar(_entry("data", tarfile.DIRTYPE), _file("../evil"))
    with pytest.raises(opskit.CopyFailed) as caught:
        transfer._unpack(buf, "data", tmp_path, "web-1", "/data")
    assert "unsafe archive" in str(caught.value) and "outside the destination" in str(caught.value)
    assert list(tmp_path.iterdir()) == [], "the temporary folder is gone, nothing else written"


def test_links_from_the_container_are_not_followed_when_merging(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"intact")
    dest = tmp_path / "dest"
    (dest / "data" / "lnk").mkdir(parents=True)
    buf = _tar(_entry("data", tarfile.DIRTYPE), _entry("data/lnk", tarfile.SYMTYPE, str(outside)))
    with pytest.raises(opskit.CopyFailed) as caught:
        transfer._unpack(buf, "data", dest, "web-1", "/data")
    assert "clash" in str(caught.value)
    assert (outside / "victim").read_bytes() == b"intact"
    assert (dest / "data" / "lnk").is_dir() and not (dest / "data" / "lnk").is_symlink()
