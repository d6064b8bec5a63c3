"""docker cp in both directions on the real engine: links kept as links, links climbing out
of a container folder refused, clear errors for missing paths, and a copy that stops at
max_bytes leaves nothing.

The archive filter itself is tested without an engine in ../unit/test_transfer.py."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

import opskit
from tests.support.live import demo_web_in_scope

pytestmark = pytest.mark.engine

SCOPE = "fixA"


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[opskit.Ops, str]]:
    """A running demo-web container in scope fixA, removed afterwards."""
    with demo_web_in_scope(SCOPE, "fixa-cp") as found:
        yield found


def test_busybox_bin_with_absolute_links_comes_out(web: tuple[opskit.Ops, str],
                                                   tmp_path: Path) -> None:
    ops, name = web
    for _ in range(2):  # the second copy merges into the first
        out = ops.copy_from(name, "/bin", tmp_path)
        assert out == tmp_path / "bin"
        assert os.readlink(out / "sh") == "/bin/busybox"
        assert (out / "busybox").is_file() and not (out / "busybox").is_symlink()


def test_a_folder_with_links_goes_in_and_out_unchanged(web: tuple[opskit.Ops, str],
                                                      tmp_path: Path) -> None:
    ops, name = web
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.txt").write_text("beta\n")
    os.symlink("/www/index.html", tree / "abs")
    os.symlink("a.txt", tree / "rel")
    os.symlink("../a.txt", tree / "sub" / "up")
    folder = f"/tmp/fixa-{secrets.token_hex(2)}"
    ops.exec(name, ["mkdir", folder])
    assert ops.copy_to(name, tree, folder) == f"{folder}/tree"
    check = ops.exec(name, ["sh", "-c", f"cd {folder}/tree && for l in abs rel sub/up; do "
                            "readlink $l; done && cat rel sub/up abs | head -2"])
    assert check.stdout.splitlines()[:5] == ["/www/index.html", "a.txt", "../a.txt", "alpha",
                                             "alpha"], check
    back = tmp_path / "back"
    back.mkdir()
    out = ops.copy_from(name, f"{folder}/tree", back)
    assert out == back / "tree"
    assert os.readlink(out / "abs") == "/www/index.html"
    assert os.readlink(out / "rel") == "a.txt" and (out / "rel").read_text() == "alpha\n"
    assert os.readlink(out / "sub" / "up") == "../a.txt"
    assert (out / "sub" / "b.txt").read_text() == "beta\n"


def test_a_single_file_to_a_new_name_and_into_a_folder(web: tuple[opskit.Ops, str],
                                                       tmp_path: Path) -> None:
    ops, name = web
    page = ops.copy_from(name, "/www/index.html", tmp_path / "page.html")
    assert page == tmp_path / "page.html" and page.stat().st_size > 0
    assert ops.copy_from(name, "/www/index.html", tmp_path) == tmp_path / "index.html"
    contents = ops.copy_from(name, "/www/.", tmp_path / "www-contents")
    assert sorted(p.name for p in contents.iterdir()) == ["health", "index.html"]

    note = tmp_path / "note.txt"
    note.write_text("hello\n")
    assert ops.copy_to(name, note, "/tmp/renamed.txt") == "/tmp/renamed.txt"
    assert ops.copy_to(name, note, "/www") == "/www/note.txt"
    assert ops.copy_to(name, note, "/tmp/") == "/tmp/note.txt"
    shown = ops.exec(name, ["cat", "/tmp/renamed.txt", "/www/note.txt", "/tmp/note.txt"])
    assert shown.stdout == "hello\n" * 3


def test_missing_paths_are_clear_errors(web: tuple[opskit.Ops, str], tmp_path: Path) -> None:
    ops, name = web
    with pytest.raises(opskit.CopyFailed) as caught:
        ops.copy_from(name, "/nope/missing.txt", tmp_path)
    assert caught.value.path == "/nope/missing.txt" and "/nope/missing.txt" in str(caught.value)
    assert "no such file" in str(caught.value) and "ls -ld /nope/missing.txt" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(opskit.CopyFailed) as caught:
        ops.copy_to(name, tmp_path / "absent.txt", "/tmp/")
    assert "absent.txt" in str(caught.value)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(opskit.CopyFailed) as caught:
        ops.copy_to(name, tmp_path / "f.txt", "/no/such/folder/f.txt")
    assert "destination folder does not exist" in str(caught.value)
    with pytest.raises(opskit.CopyFailed):
        ops.copy_from(name, "/", tmp_path)


_CHAIN = """set -e
mkdir -p {root} && cd {root}
c=$(printf 'd%.0s' $(seq 100)); p=.; steps="a b c d e f g h i j k l m n o p"
for s in $steps; do mkdir "$p/$c"; ln -s "$c" "$p/$s"; p="$p/$c"; done
ln -s $(for s in $steps; do printf '../'; done) "$p/last"
ln -s "$(echo $steps | tr ' ' /)/last/../.." escape
"""


@pytest.mark.parametrize("make", [_CHAIN, "mkdir -p {root}/sub && ln -s ../../../etc {root}/sub/x"])
def test_links_climbing_out_of_a_container_folder_are_refused(web: tuple[opskit.Ops, str],
                                                              tmp_path: Path, make: str) -> None:
    ops, name = web
    root = f"/tmp/fixa-links-{secrets.token_hex(2)}"
    made = ops.exec(name, ["sh", "-c", make.format(root=root)])
    assert made.ok, made
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(opskit.CopyFailed) as caught:
        ops.copy_from(name, root, dest)
    assert "unsafe archive" in str(caught.value) and caught.value.path == root
    assert "outside the destination" in str(caught.value) or "through the link" in str(
        caught.value)
    assert list(dest.iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["dest"]


def test_a_copy_stops_at_max_bytes_and_leaves_nothing(web: tuple[opskit.Ops, str],
                                                      tmp_path: Path) -> None:
    ops, name = web
    for src, dest in (("/bin/busybox", tmp_path / "busybox"), ("/bin", tmp_path)):
        with pytest.raises(opskit.CopyFailed) as caught:
            ops.copy_from(name, src, dest, max_bytes=64 * 1024)
        text = str(caught.value)
        assert caught.value.container == name and caught.value.path == src
        assert "max_bytes=65536" in text and "Hint:" in text and "max_bytes=" in text
        assert list(tmp_path.iterdir()) == [], "no partial file, no temporary file"
    out = ops.copy_from(name, "/bin/busybox", tmp_path, max_bytes=16 * 2**20)
    assert out.stat().st_size > 64 * 1024
    with pytest.raises(opskit.InvalidTarget, match="max_bytes"):
        ops.copy_from(name, "/bin/busybox", tmp_path, max_bytes=0)
