"""Opening the real engine the ways opskit chooses it: its socket spelled in capitals is the
local socket, and a docker context naming the engine by another path is honoured.

Each test runs with a HOME and an opskit state folder of its own and no DOCKER_* variable.
How the engine is chosen, with no engine, is tested in ../unit/test_engine_connection.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opskit.engine import connection as E
from tests.support.contexts import MAIN_SOCKET, isolated_home, make_contexts, socket_link

pytestmark = pytest.mark.engine


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own (no ~/.docker), a state folder of its own, no DOCKER_* variable."""
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def link() -> Iterator[Path]:
    """A short path that is the main engine's socket (a symlink)."""
    with socket_link() as sock:
        yield sock


@pytest.fixture
def contexts(home: Path, link: Path) -> Path:
    """~/.docker with contexts ``good`` (the main engine through ``link``), ``ghost`` and
    ``plain``."""
    return make_contexts(home, link)


def test_the_local_socket_in_capitals_is_the_local_socket() -> None:
    engine = E.open_engine("UNIX://" + MAIN_SOCKET)
    try:
        assert engine.host == "unix://" + MAIN_SOCKET and engine.is_local
    finally:
        engine.client.close()




def test_docker_context_is_honoured(contexts, link, monkeypatch):
    monkeypatch.setenv("DOCKER_CONTEXT", "good")
    engine = E.open_engine(timeout=10)
    try:
        assert engine.host == f"unix://{link}" and engine.info["ApiVersion"]
    finally:
        engine.client.close()
