"""The connection to one Docker engine: the only place that reads ``DOCKER_HOST`` and friends.

:func:`open_engine` builds the docker-py client once, checks the engine answers, and returns an
:class:`Engine` that every other module receives. Nothing here runs at import time.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import errors

log = logging.getLogger("opskit")

DEFAULT_URL = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 20.0
POOL_SIZE = 64

__all__ = ["DEFAULT_URL", "Engine", "display_url", "open_engine", "state_dir"]


def state_dir() -> Path:
    """Folder for opskit's own files (scope keys, journals): ``$OPSKIT_HOME`` or ~/.local/state."""
    root = os.environ.get("OPSKIT_HOME") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "opskit")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _scope_key(scope: str) -> bytes:
    env = os.environ.get("OPSKIT_SCOPE_KEY")
    if env:
        return env.encode()
    keys = state_dir() / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    path = keys / f"{scope}.key"
    if not path.exists():
        # write the whole key beside it, then link it into place: the link fails if another
        # process won the race, and nobody ever reads a half-written key
        fd, tmp = tempfile.mkstemp(dir=keys, prefix=".key-")
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
            os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise errors.OpsKitError(f"The scope key {path} is too short to sign anything.",
                                 hint="remove it; opskit makes a new one (containers signed with "
                                 "the old key then count as foreign).")
    return key


@dataclass(frozen=True)
class Engine:
    """One engine, as every module sees it.

    Attributes:
        client: docker-py's high-level client (``client.api`` is the low-level one).
        host: the engine's address, as named in errors (``unix:///var/run/docker.sock``).
        scope: the opskit scope this connection acts in (a label value).
        key: the scope key that signs ownership tokens.
        timeout: seconds for every non-streaming call.
        info: the engine's version payload (``docker version``).
    """

    client: Any
    host: str
    scope: str
    key: bytes = field(repr=False)
    timeout: float
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def api(self) -> Any:
        """docker-py's low-level ``APIClient``."""
        return self.client.api

    @property
    def is_local(self) -> bool:
        """True for a unix socket or a loopback address."""
        return self.host.startswith("unix://") or _is_loopback(self.host)


def _is_loopback(url: str) -> bool:
    hostname = urllib.parse.urlparse(url).hostname or ""
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def open_engine(url: str | None = None, *, scope: str = "default", timeout: float = DEFAULT_TIMEOUT,
                tls: Any = None) -> Engine:
    """Connect to a Docker engine and check that it answers (``docker version``).

    Args:
        url: ``unix:///path``, ``tcp://host:port`` or ``ssh://user@host``; ``DOCKER_HOST`` when
            omitted, then the local socket.
        scope: opskit acts only on containers it created in this scope.
        timeout: seconds for each non-streaming call.
        tls: a ``docker.tls.TLSConfig``; read from ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``
            when omitted.

    Raises:
        EngineUnavailable: the engine did not answer within ``timeout``.
        InsecureEngine: a non-loopback ``tcp://`` URL without TLS verification.
    """
    import docker

    env_url = os.environ.get("DOCKER_HOST")
    url = url or env_url or DEFAULT_URL
    if url.startswith("/"):
        url = "unix://" + url
    shown = display_url(url)
    if urllib.parse.urlparse(url).scheme not in ("unix", "tcp", "http", "https", "ssh", "npipe"):
        raise errors.InvalidTarget(shown, "is not an engine URL",
                                   hint="use unix:///var/run/docker.sock, tcp://HOST:2376 or "
                                   "ssh://user@host.")
    if tls is None and os.environ.get("DOCKER_TLS_VERIFY") and url == env_url:
        tls = docker.tls.TLSConfig(
            client_cert=(os.path.join(os.environ.get("DOCKER_CERT_PATH", ""), "cert.pem"),
                         os.path.join(os.environ.get("DOCKER_CERT_PATH", ""), "key.pem")),
            ca_cert=os.path.join(os.environ.get("DOCKER_CERT_PATH", ""), "ca.pem"), verify=True)
    remote_tcp = url.startswith(("tcp://", "http://", "https://")) and not _is_loopback(url)
    if remote_tcp and not getattr(tls, "verify", False):
        raise errors.InsecureEngine(shown)
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout, tls=tls or False,
                                     max_pool_size=POOL_SIZE, use_ssh_client=url.startswith("ssh"))
    except Exception as exc:  # docker-py raises several kinds for a bad URL or missing socket
        raise errors.EngineUnavailable(shown, str(exc).replace(url, shown)) from exc
    try:
        info = client.api.version()
    except Exception as exc:
        client.close()
        raise errors.translate(exc, "docker version", host=shown) from exc
    log.debug("connected to %s (engine %s, API %s)", shown, info.get("Version"),
              info.get("ApiVersion"))
    return Engine(client=client, host=shown, scope=scope, key=_scope_key(scope), timeout=timeout,
                  info=info)


def display_url(url: str) -> str:
    """The engine URL without any user:password part, for messages and records."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}@" if parts.username and parts.scheme == "ssh" else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))
