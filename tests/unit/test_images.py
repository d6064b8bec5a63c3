"""Tests of opskit.act.images with no engine: the pure functions (static ELF, a
Dockerfile's base images) and the checks a build makes before any engine call.

Builds and the demo images on the real engine are in ../engine/test_images.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opskit.act.images import (
    BUSYBOX_ENV,
    base_images,
    build,
    busybox_path,
    demo_images,
    is_static_elf,
)
from opskit.base.errors import InvalidSpec
from opskit.engine.connection import Engine

HEADER = ('FROM scratch\nCOPY busybox /bin/busybox\n'
          'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n')


class _NoEngine:
    """A client that fails the test on any use: proves a check ran before any engine call."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the engine was called ({name}) before validation")


OFFLINE = Engine(client=_NoEngine(), host="unix:///nowhere.sock", scope="test", key=b"k",
                 timeout=1.0)


# ---- pure functions -------------------------------------------------------------------------

def test_is_static_elf() -> None:
    data = busybox_path().read_bytes()
    assert is_static_elf(data)
    assert not is_static_elf(Path("/bin/ls").read_bytes())  # dynamic: has PT_INTERP
    assert not is_static_elf(b"#!/bin/sh\necho hi\n" * 10)
    assert not is_static_elf(data[:100])  # program headers cut off


@pytest.mark.parametrize(("text", "args", "want"), [
    ("FROM scratch\nRUN true", None, []),
    ("# c\nFROM  alpine:3 AS base\nFROM base\nCOPY --from=base /a /b", None, ["alpine:3"]),
    ("ARG V=1\nFROM img:${V}\nFROM --platform=linux/amd64 \\\n  other", None, ["img:1", "other"]),
    ("ARG V\nFROM img:${V:-dflt}", {"V": "9"}, ["img:9"]),
    ("ARG V\nFROM img:${V:-dflt}", None, ["img:dflt"]),
    ("FROM a AS one\nFROM b\nCOPY --from=0 /x /x\nCOPY --from=ONE /y /y\nCOPY --from=c:1 /z /z",
     None, ["a", "b", "c:1"]),
])
def test_base_images(text: str, args: dict[str, str] | None, want: list[str]) -> None:
    assert base_images(text, args) == want


# ---- checks before any engine call ----------------------------------------------------------

def test_missing_context_raises_before_any_engine_call(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec) as info:
        build(OFFLINE, tmp_path / "nope", tag="opskit-test/x:1")
    assert info.value.field == "build.context" and str(tmp_path / "nope") in str(info.value)
    assert "Hint:" in str(info.value)
    with pytest.raises(InvalidSpec, match="holds no 'Dockerfile'"):
        build(OFFLINE, tmp_path, tag="opskit-test/x:1")
    (tmp_path / "Dockerfile").write_text(HEADER)
    with pytest.raises(InvalidSpec, match=r"build\.extra_files\[busybox\]"):
        build(OFFLINE, tmp_path, tag="opskit-test/x:1", extra_files={"busybox": "/no/such"})


@pytest.mark.parametrize("path", ["/no/such/busybox", "/bin/ls"])
def test_bad_busybox_raises_before_any_engine_call(monkeypatch: pytest.MonkeyPatch,
                                                    path: str) -> None:
    monkeypatch.setenv(BUSYBOX_ENV, path)
    with pytest.raises(InvalidSpec, match="busybox-static") as info:
        demo_images(OFFLINE)
    assert info.value.field == BUSYBOX_ENV and path in str(info.value)
