"""Choosing and opening the engine connection (opskit/engine/connection.py) with no engine:
the refusal of an unverified remote engine in every spelling, TLS files as the docker CLI finds
them, docker contexts in the CLI's order, and the scope name and key.

Each test runs with a HOME and an opskit state folder of its own and no DOCKER_* variable.
Contexts are made by the real docker CLI (``docker --config DIR context create``, which talks
to no engine); a fake client records what would have been dialled. Opening the real engine
through its socket and through a context is in ../engine/test_engine_connection.py.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

import opskit
from opskit.engine import connection as E
from tests.support.contexts import (
    REMOTE,
    cli,
    isolated_home,
    make_contexts,
    socket_link,
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own (no ~/.docker), a state folder of its own, no DOCKER_* variable."""
    return isolated_home(tmp_path, monkeypatch)


class Dialled(Exception):
    """Raised by the fake client: the connection would have been opened here."""


@pytest.fixture
def dialled(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace docker.DockerClient: record its arguments, then fail, so nothing connects."""
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise Dialled("recorded")

    monkeypatch.setattr(docker, "DockerClient", fake)
    return calls


def pems(folder: Path, names: tuple[str, ...] = ("ca", "cert", "key")) -> Path:
    """Placeholder PEM files (docker-py only checks they exist before it connects)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.pem").write_text(f"-----BEGIN {name.upper()}-----\n")
    return folder


# -- 1. the refusal of an unverified remote engine -------------------------------------------

SPELLINGS = [f"tcp://{REMOTE}:2375", f"TCP://{REMOTE}:2375", f"Tcp://{REMOTE}:2375",
             f"tCP://{REMOTE}:2375", f"HTTP://{REMOTE}:2375", f"http://{REMOTE}:2375",
             f"HTTPS://{REMOTE}:2376", f" tcp://{REMOTE}:2375", f"\tTCP://{REMOTE}:2375\n"]


@pytest.mark.parametrize("url", SPELLINGS)
def test_a_remote_engine_without_tls_is_refused_in_any_spelling(url, dialled, monkeypatch):
    with pytest.raises(opskit.InsecureEngine) as caught:
        E.open_engine(url)
    assert caught.value.host == caught.value.host.lower().strip()
    assert REMOTE in caught.value.host and "Hint:" in str(caught.value)
    monkeypatch.setenv("DOCKER_HOST", url)
    with pytest.raises(opskit.InsecureEngine):
        E.open_engine()
    assert dialled == [], "refused before any client was built"


@pytest.mark.parametrize("url", ["tcp:/203.0.113.7:2375", "tcp:203.0.113.7:2375",
                                 "ftp://203.0.113.7", "203.0.113.7:2375", "localhost:2375"])
def test_what_is_not_an_engine_url_is_refused(url, dialled):
    with pytest.raises(opskit.InvalidTarget, match="not an engine URL"):
        E.open_engine(url)
    assert dialled == []


def test_a_loopback_engine_in_capitals_passes_the_check(dialled):
    with pytest.raises(opskit.EngineUnavailable):
        E.open_engine("TCP://127.0.0.1:2375")
    assert [c["base_url"] for c in dialled] == ["tcp://127.0.0.1:2375"]
    assert dialled[0]["tls"] is False


# -- 2. TLS files as the docker CLI finds them -----------------------------------------------

def remote_tls_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://{REMOTE}:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")


def test_tls_files_come_from_the_cli_folder_not_the_current_one(home, tmp_path, monkeypatch,
                                                                 dialled):
    remote_tls_env(monkeypatch)
    monkeypatch.chdir(pems(tmp_path / "cwd"))  # the old code read these
    with pytest.raises(opskit.EngineUnavailable) as caught:
        E.open_engine()
    message = str(caught.value)
    assert str(home / ".docker" / "ca.pem") in message and "Hint:" in message
    assert "DOCKER_CERT_PATH" in caught.value.hint and str(tmp_path / "cwd") not in message
    assert caught.value.host == f"tcp://{REMOTE}:2376" and dialled == []

    pems(home / ".docker")
    with pytest.raises(opskit.EngineUnavailable):
        E.open_engine()
    [call] = dialled
    tls = call["tls"]
    assert tls.verify is True and tls.ca_cert == str(home / ".docker" / "ca.pem")
    assert tls.cert == (str(home / ".docker" / "cert.pem"), str(home / ".docker" / "key.pem"))


@pytest.mark.parametrize("missing", ["ca", "cert", "key"])
def test_a_missing_tls_file_is_named(missing, home, monkeypatch, dialled):
    remote_tls_env(monkeypatch)
    pems(home / ".docker", tuple(n for n in ("ca", "cert", "key") if n != missing))
    with pytest.raises(opskit.EngineUnavailable) as caught:
        E.open_engine()
    assert f"{missing}.pem" in caught.value.reason and "No such file" in caught.value.reason
    assert dialled == []


def test_an_unreadable_tls_file_is_named(tmp_path, monkeypatch, dialled):
    remote_tls_env(monkeypatch)
    folder = pems(tmp_path / "certs", ("ca", "key"))
    (folder / "cert.pem").mkdir()
    monkeypatch.setenv("DOCKER_CERT_PATH", str(folder))
    with pytest.raises(opskit.EngineUnavailable) as caught:
        E.open_engine()
    assert str(folder / "cert.pem") in str(caught.value) and "directory" in str(caught.value)
    assert dialled == []


def test_cert_path_then_docker_config_then_home(home, tmp_path, monkeypatch, dialled):
    remote_tls_env(monkeypatch)
    pems(home / ".docker")
    config = pems(tmp_path / "config")
    certs = pems(tmp_path / "certs")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    with pytest.raises(opskit.EngineUnavailable):
        E.open_engine()
    monkeypatch.setenv("DOCKER_CERT_PATH", str(certs))
    with pytest.raises(opskit.EngineUnavailable):
        E.open_engine()
    assert [c["tls"].ca_cert for c in dialled] == [str(config / "ca.pem"), str(certs / "ca.pem")]


def test_tls_verify_applies_to_an_explicit_url_too(home, monkeypatch, dialled):
    """As ``docker -H tcp://...`` with DOCKER_TLS_VERIFY set: the InsecureEngine hint holds."""
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    pems(home / ".docker")
    with pytest.raises(opskit.EngineUnavailable):
        E.open_engine(f"tcp://{REMOTE}:2376")
    assert dialled[0]["tls"].verify is True


def test_an_empty_tls_verify_is_unset(monkeypatch, dialled):
    remote_tls_env(monkeypatch)
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "")
    with pytest.raises(opskit.InsecureEngine):
        E.open_engine()


# -- 3. docker contexts ----------------------------------------------------------------------

@pytest.fixture
def link() -> Iterator[Path]:
    """A short path that is the main engine's socket (a symlink); nothing here dials it."""
    with socket_link() as sock:
        yield sock


@pytest.fixture
def contexts(home: Path, link: Path) -> Path:
    """~/.docker with contexts ``good``, ``ghost`` and ``plain`` (see make_contexts)."""
    return make_contexts(home, link)


def chosen() -> str:
    """The URL opskit would dial now (no url argument)."""
    return E._choose(None, None)[0]


def test_a_context_whose_engine_is_missing_fails_naming_it(contexts, monkeypatch):
    monkeypatch.setenv("DOCKER_CONTEXT", "ghost")
    with pytest.raises(opskit.EngineUnavailable) as caught:
        E.open_engine(timeout=5)
    assert caught.value.host == "unix:///nonexistent-opskit/d.sock"
    assert "docker context 'ghost'" in str(caught.value)


def test_the_cli_current_context_is_honoured(contexts, monkeypatch):
    cli(contexts, "context", "use", "ghost")
    with pytest.raises(opskit.EngineUnavailable, match="nonexistent-opskit") as caught:
        E.open_engine(timeout=5)
    assert "currentContext" in str(caught.value)


@pytest.mark.parametrize("env", [
    {}, {"DOCKER_CONTEXT": "good"}, {"DOCKER_CONTEXT": "default"},
    {"DOCKER_HOST": "unix:///elsewhere.sock"},
    {"DOCKER_HOST": "unix:///elsewhere.sock", "DOCKER_CONTEXT": "good"},
    {"DOCKER_CONTEXT": "plain"}])
@pytest.mark.parametrize("current", ["", "ghost"])
def test_the_same_engine_as_the_docker_cli(contexts, env, current, monkeypatch):
    """Precedence as the CLI's: DOCKER_HOST > DOCKER_CONTEXT > currentContext > default."""
    if current:
        cli(contexts, "context", "use", current)
    want = cli(contexts, "context", "inspect", "--format", "{{.Endpoints.docker.Host}}", **env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert chosen() == want


def test_an_explicit_url_wins_over_everything(contexts, monkeypatch, dialled):
    cli(contexts, "context", "use", "ghost")
    monkeypatch.setenv("DOCKER_CONTEXT", "good")
    monkeypatch.setenv("DOCKER_HOST", "unix:///elsewhere.sock")
    with pytest.raises(opskit.EngineUnavailable):
        E.open_engine("unix:///explicit.sock")
    assert [c["base_url"] for c in dialled] == ["unix:///explicit.sock"]


@pytest.mark.parametrize("how", ["env", "config"])
def test_an_unknown_context_is_named(contexts, monkeypatch, how, dialled):
    if how == "env":
        monkeypatch.setenv("DOCKER_CONTEXT", "nope")
    else:
        (contexts / "config.json").write_text('{"currentContext": "nope"}')
    with pytest.raises(opskit.InvalidTarget) as caught:
        E.open_engine()
    assert caught.value.target == "nope" and "docker context ls" in str(caught.value)
    assert ("DOCKER_CONTEXT" if how == "env" else "config.json") in str(caught.value)
    assert dialled == []


def test_a_remote_context_without_tls_is_refused(contexts, monkeypatch, dialled):
    monkeypatch.setenv("DOCKER_CONTEXT", "plain")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")  # applies to DOCKER_HOST, never to a context
    with pytest.raises(opskit.InsecureEngine, match=REMOTE):
        E.open_engine()
    assert dialled == []


def test_contexts_live_in_docker_config(home, tmp_path, link, monkeypatch):
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    config = tmp_path / "elsewhere"
    cli(config, "context", "create", "there", "--docker", f"host=unix://{link}")
    monkeypatch.setenv("DOCKER_CONTEXT", "there")
    with pytest.raises(opskit.InvalidTarget, match="there"):
        E.open_engine()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    assert chosen() == f"unix://{link}"


@pytest.fixture
def real_pems(tmp_path: Path) -> Path:
    """A self-signed certificate and key the docker CLI accepts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path / "pki"
    folder.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    shutil.copy(folder / "cert.pem", folder / "ca.pem")
    return folder


@pytest.mark.parametrize("skip", [False, True])
def test_a_context_brings_its_own_tls(contexts, real_pems, monkeypatch, dialled, skip):
    files = ",".join(f"{n}={real_pems / (n + '.pem')}" for n in ("ca", "cert", "key"))
    option = ",skip-tls-verify=true" if skip else ""
    cli(contexts, "context", "create", "secure", "--docker",
        f"host=tcp://{REMOTE}:2376,{files}{option}")
    monkeypatch.setenv("DOCKER_CONTEXT", "secure")
    if skip:
        with pytest.raises(opskit.InsecureEngine):
            E.open_engine()
        assert dialled == []
        return
    with pytest.raises(opskit.EngineUnavailable):
        E.open_engine()
    tls = dialled[0]["tls"]
    assert tls.verify is True and tls.ca_cert.startswith(str(contexts / "contexts" / "tls"))
    assert dialled[0]["base_url"] == f"tcp://{REMOTE}:2376"
    Path(tls.cert[1]).unlink()
    with pytest.raises(opskit.EngineUnavailable, match=r"key\.pem") as caught:
        E.open_engine()  # the key is gone: the CLI would fail too; opskit says which file
    assert "docker context 'secure'" in str(caught.value) and "docker context rm" in str(
        caught.value)


# -- 6. the scope name and key ---------------------------------------------------------------

BAD_SCOPES = ["../../x", "team/a", "/abs", ".", "..", "", "-lead", ".hidden", "a b", "x\n",
              "a" * 64, "é", "a=b", "a\\b"]


@pytest.mark.parametrize("scope", BAD_SCOPES)
def test_a_scope_that_is_not_a_name_is_refused_before_any_file(scope, tmp_path, dialled):
    with pytest.raises(opskit.InvalidSpec) as caught:
        E.open_engine("unix:///nonexistent.sock", scope=scope)
    assert caught.value.field == "scope" and caught.value.value == scope
    assert repr(scope) in str(caught.value) and "Hint:" in str(caught.value)
    with pytest.raises(opskit.InvalidSpec):
        E._scope_key(scope)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [] and dialled == []


@pytest.mark.parametrize("scope", ["default", "test-1a2b", "A.b_c-9", "9", "a" * 63])
def test_a_scope_name_names_its_key_file(scope, tmp_path):
    key = E._scope_key(scope)
    assert len(key) >= E.MIN_KEY_BYTES
    assert (tmp_path / "state" / "keys" / f"{scope}.key").read_bytes().strip() == key


@pytest.mark.parametrize("value", ["x", "a-different-key", "k" * 31, "é" * 15])
def test_a_short_scope_key_is_refused(value, monkeypatch, tmp_path, dialled):
    monkeypatch.setenv("OPSKIT_SCOPE_KEY", value)
    with pytest.raises(opskit.OpsKitError, match="OPSKIT_SCOPE_KEY") as caught:
        E.open_engine("unix:///nonexistent.sock")
    assert f"{len(value.encode())} bytes" in str(caught.value) and "32" in str(caught.value)
    assert len(value) < 4 or value not in str(caught.value), "the key itself is never shown"
    assert dialled == [] and not (tmp_path / "state" / "keys").exists()


@pytest.mark.parametrize("value", ["k" * 32, "é" * 16, "0123456789abcdef" * 4])
def test_a_long_enough_scope_key_is_used(value, monkeypatch, tmp_path):
    monkeypatch.setenv("OPSKIT_SCOPE_KEY", value)
    assert E._scope_key("default") == value.encode()
    assert not (tmp_path / "state" / "keys").exists()
