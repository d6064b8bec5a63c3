"""A HOME of the test's own and docker contexts made by the real docker CLI, for the tests of
how opskit chooses its engine as the CLI would."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REMOTE = "203.0.113.7"  # TEST-NET-3: never answers, and nothing here ever connects to it
MAIN_SOCKET = "/var/run/docker.sock"
DOCKER_VARS = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY",
               "DOCKER_CERT_PATH", "OPSKIT_SCOPE_KEY")


def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own (no ~/.docker), a state folder of its own, no DOCKER_* variable."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OPSKIT_HOME", str(tmp_path / "state"))
    for name in DOCKER_VARS:
        monkeypatch.delenv(name, raising=False)
    return home


def cli(config: Path, *args: str, **env: str) -> str:
    """Run the docker CLI with this config folder and only these DOCKER_* variables."""
    clean = {k: v for k, v in os.environ.items() if k not in DOCKER_VARS}
    proc = subprocess.run(["docker", "--config", str(config), *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@contextmanager
def socket_link() -> Iterator[Path]:
    """A short path that is the main engine's socket (a symlink), so a context naming it
    is told apart from the default socket. Nothing connects through it unless a test does."""
    folder = Path(tempfile.mkdtemp(prefix="okctx", dir="/tmp"))
    sock = folder / "d.sock"
    sock.symlink_to(MAIN_SOCKET)
    try:
        yield sock
    finally:
        shutil.rmtree(folder)


def make_contexts(home: Path, link: Path) -> Path:
    """~/.docker with contexts ``good`` (the main engine by another path), ``ghost`` (a
    socket that does not exist) and ``plain`` (a remote engine without TLS); no config.json.
    Skips when the docker CLI is not installed."""
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    config = home / ".docker"
    cli(config, "context", "create", "good", "--docker", f"host=unix://{link}")
    cli(config, "context", "create", "ghost", "--docker", "host=unix:///nonexistent-opskit/d.sock")
    cli(config, "context", "create", "plain", "--docker", f"host=tcp://{REMOTE}:2375")
    assert not (config / "config.json").exists()
    return config
