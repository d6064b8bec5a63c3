"""The connection to one Docker engine: the only place that reads ``DOCKER_HOST`` and friends.

:func:`open_engine` builds the docker-py client once, checks the engine answers, and returns an
:class:`Engine` that every other module receives. Nothing here runs at import time.

The engine is chosen as the ``docker`` CLI chooses it: an explicit URL, else ``DOCKER_HOST``,
else the context named by ``DOCKER_CONTEXT``, else the CLI's current context
(``currentContext`` in ``$DOCKER_CONFIG/config.json``, ``~/.docker`` by default), else the local
socket. A remote ``tcp://`` engine is refused unless TLS verification is on.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base import errors
from ..base.durable import state_dir
from .calls import docker_client
from .translate import translate

log = logging.getLogger("opskit")

DEFAULT_URL = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 20.0
POOL_SIZE = 64
MIN_KEY_BYTES = 32
_SCHEMES = ("unix", "tcp", "http", "https", "ssh", "npipe")
_TCP = ("tcp", "http", "https")
_SCOPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_TLS_FILES = ("ca", "cert", "key")

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_URL", "MIN_KEY_BYTES", "Engine", "check_scope",
           "display_url", "open_engine"]




def check_scope(scope: str) -> str:
    """Return ``scope`` if it is a valid scope name, else raise.

    A scope name becomes a label value and the name of the scope's key and seal files, so it is
    1 to 63 letters, digits, ``_``, ``.`` or ``-``, starting with a letter or digit: no path
    separator, no ``..``.

    Raises:
        InvalidSpec: the name is not one (``field`` is ``scope``); nothing was written.
    """
    if not isinstance(scope, str) or not _SCOPE_NAME.fullmatch(scope):
        raise errors.InvalidSpec(
            "scope", f"{scope!r} is not a scope name (the scope's key and seal files are named "
            "after it)",
            allowed="1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit",
            value=scope)
    return scope


def _scope_key(scope: str) -> bytes:
    check_scope(scope)
    env = os.environ.get("OPSKIT_SCOPE_KEY")
    if env:
        if len(env.encode()) < MIN_KEY_BYTES:
            raise errors.OpsKitError(
                f"OPSKIT_SCOPE_KEY is {len(env.encode())} bytes long; a scope key needs at "
                f"least {MIN_KEY_BYTES} to sign anything.",
                hint="set it to a random value (`python -c 'import secrets; "
                "print(secrets.token_hex(32))'`), or unset it to use the key file opskit keeps "
                "for each scope.")
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
    if len(key) < MIN_KEY_BYTES:
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


def _normalise(url: str) -> str:
    """``url`` stripped, with a lower-case scheme (``TCP://`` is ``tcp://``; docker-py reads
    both alike, so every check must too), and a bare path as a ``unix://`` socket."""
    url = url.strip()
    if url.startswith("/"):
        return "unix://" + url
    scheme, sep, rest = url.partition("://")
    return scheme.lower() + sep + rest if sep else url


def _docker_config_dir() -> Path:
    """The docker CLI's folder: ``$DOCKER_CONFIG``, else ``~/.docker``."""
    return Path(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"))


def _readable(path: Path, host: str, why: str, hint: str) -> str:
    """``path`` as a string if it can be read; else EngineUnavailable naming it."""
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise errors.EngineUnavailable(
            host, f"the TLS file {path} ({why}) cannot be read: {exc.strerror or exc}",
            hint=hint) from exc
    return str(path)


def _tls_config(host: str, files: dict[str, str | None], verify: bool) -> Any:
    import docker.tls

    cert = (files["cert"], files["key"]) if files.get("cert") and files.get("key") else None
    try:
        return docker.tls.TLSConfig(client_cert=cert, ca_cert=files.get("ca"), verify=verify)
    except Exception as exc:  # docker.errors.TLSParameterError
        raise errors.EngineUnavailable(host, f"its TLS settings are unusable: {exc}") from exc


def _tls_from_env(host: str) -> Any:
    """TLS from ``DOCKER_TLS_VERIFY``: ``ca.pem``, ``cert.pem`` and ``key.pem`` from
    ``DOCKER_CERT_PATH``, else from the docker CLI's folder (as ``docker`` does)."""
    folder = Path(os.environ.get("DOCKER_CERT_PATH") or _docker_config_dir())
    why = ("from DOCKER_CERT_PATH" if os.environ.get("DOCKER_CERT_PATH")
           else "DOCKER_TLS_VERIFY is set and DOCKER_CERT_PATH is not, so the docker CLI's folder")
    hint = (f"put the engine's ca.pem and your cert.pem and key.pem in {folder}, set "
            "DOCKER_CERT_PATH to the folder that holds them, or pass "
            "tls=docker.tls.TLSConfig(...).")
    files: dict[str, str | None] = {
        name: _readable(folder / f"{name}.pem", host, why, hint) for name in _TLS_FILES}
    return _tls_config(host, files, verify=True)


def _current_context() -> tuple[str, str]:
    """The context ``DOCKER_CONTEXT`` names, else the CLI's ``currentContext``, and where that
    name came from; ``("", "")`` for none."""
    name = os.environ.get("DOCKER_CONTEXT", "")
    if name:
        return name, "DOCKER_CONTEXT"
    config = _docker_config_dir() / "config.json"
    try:
        name = json.loads(config.read_text()).get("currentContext") or ""
    except FileNotFoundError:
        return "", ""
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("cannot read %s (%s): using the default engine, as docker does", config, exc)
        return "", ""
    return (str(name), f"currentContext in {config}") if name else ("", "")


def _context_endpoint(name: str, via: str) -> tuple[str, Any]:
    """The engine URL and TLS settings of a docker CLI context (its store, as ``docker context
    create`` writes it: ``contexts/meta/<sha256>/meta.json`` and ``contexts/tls/<sha256>/``).

    Raises:
        InvalidTarget: no context of that name, or its metadata cannot be read.
        EngineUnavailable: a TLS file of the context cannot be read.
    """
    store = _docker_config_dir() / "contexts"
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = store / "meta" / digest / "meta.json"
    hint = ("`docker context ls` lists the contexts; `docker context use default` or unsetting "
            "DOCKER_CONTEXT selects the local engine.")
    try:
        endpoint = json.loads(meta.read_text())["Endpoints"]["docker"]
        host = str(endpoint["Host"])
    except FileNotFoundError as exc:
        raise errors.InvalidTarget(name, f"is not a docker context (named by {via}; none in "
                                   f"{store})", hint=hint) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise errors.InvalidTarget(name, f"is a docker context opskit cannot read ({meta}: "
                                   f"{exc!r})", hint=hint) from exc
    tls_dir = store / "tls" / digest / "docker"
    present = {n: tls_dir / f"{n}.pem" for n in _TLS_FILES if (tls_dir / f"{n}.pem").exists()}
    if not present:
        return host, None
    if "cert" in present or "key" in present:  # a client certificate needs both halves
        present.update(cert=tls_dir / "cert.pem", key=tls_dir / "key.pem")
    shown = display_url(_normalise(host))
    fix = (f"recreate the context (`docker context rm {name}`, then `docker context create "
           f"{name} --docker host=...,ca=...,cert=...,key=...`).")
    files: dict[str, str | None] = {
        n: _readable(p, shown, f"of docker context '{name}'", fix) for n, p in present.items()}
    return host, _tls_config(shown, files, verify=not endpoint.get("SkipTLSVerify", False))


def _choose(url: str | None, tls: Any, context: str | None = None) -> tuple[str, Any, str]:
    """The engine URL, its TLS settings and what chose it, in the docker CLI's order."""
    if context:
        host, context_tls = _context_endpoint(context, "context=")
        chosen = tls if tls is not None else context_tls
        return _normalise(host), chosen, f"docker context '{context}' (context=)"
    if url:
        return _normalise(url), tls, ""
    if os.environ.get("DOCKER_HOST"):
        return _normalise(os.environ["DOCKER_HOST"]), tls, "DOCKER_HOST"
    name, via = _current_context()
    if name and name != "default":
        host, context_tls = _context_endpoint(name, via)
        chosen = tls if tls is not None else context_tls
        return _normalise(host), chosen, f"docker context '{name}' ({via})"
    return DEFAULT_URL, tls, ""


def open_engine(url: str | None = None, *, scope: str = "default", timeout: float = DEFAULT_TIMEOUT,
                tls: Any = None, context: str | None = None) -> Engine:
    """Connect to a Docker engine and check that it answers (``docker version``).

    Args:
        url: ``unix:///path``, ``tcp://host:port`` or ``ssh://user@host``. When omitted, the
            engine ``docker`` would use: ``DOCKER_HOST``, else the context ``DOCKER_CONTEXT``
            names, else the CLI's current context, else the local socket.
        scope: opskit acts only on containers it created in this scope (see
            :func:`check_scope`).
        timeout: seconds for each non-streaming call.
        tls: a ``docker.tls.TLSConfig``; for a ``tcp://`` URL not from a context, read from
            ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH`` (default ``~/.docker``) when omitted.
        context: a docker CLI context by name (``docker --context NAME``), instead of ``url``.

    Raises:
        EngineUnavailable: the engine did not answer within ``timeout``, or a TLS file it needs
            cannot be read (the message names it).
        InsecureEngine: a non-loopback ``tcp://`` URL without TLS verification.
        InvalidTarget: not an engine URL, or an unknown docker context.
        InvalidSpec: ``scope`` is not a scope name.
        OpsKitError: ``OPSKIT_SCOPE_KEY`` is shorter than 32 bytes.
    """

    key = _scope_key(scope)  # before any connection: a refused key leaves nothing to close
    url, tls, via = _choose(url, tls, context)
    shown = display_url(url)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in _SCHEMES or not url.startswith(scheme + "://"):
        source = f" (from {via})" if via else ""
        raise errors.InvalidTarget(shown, f"is not an engine URL{source}",
                                   hint="use unix:///var/run/docker.sock, tcp://HOST:2376 or "
                                   "ssh://user@host.")
    from_context = via.startswith("docker context")  # a context carries its own TLS files
    if tls is None and scheme in _TCP and not from_context and os.environ.get("DOCKER_TLS_VERIFY"):
        tls = _tls_from_env(shown)
    if scheme in _TCP and not _is_loopback(url) and not getattr(tls, "verify", False):
        raise errors.InsecureEngine(shown)
    try:
        client = docker_client(url, timeout=timeout, tls=tls, pool_size=POOL_SIZE)
    except Exception as exc:  # docker-py raises several kinds for a bad URL or missing socket
        raise _unavailable(shown, str(exc).replace(url, shown), via) from exc
    try:
        info = client.api.version()
    except Exception as exc:
        client.close()
        err = translate(exc, "docker version", host=shown)
        if type(err) is errors.EngineUnavailable:
            err = _unavailable(shown, err.reason, via)
        raise err from exc
    log.debug("connected to %s%s (engine %s, API %s)", shown, f" from {via}" if via else "",
              info.get("Version"), info.get("ApiVersion"))
    return Engine(client=client, host=shown, scope=scope, key=key, timeout=timeout, info=info)


def _unavailable(shown: str, reason: str, via: str) -> errors.EngineUnavailable:
    """EngineUnavailable that says what chose the engine, when something other than the
    caller did."""
    if not via:
        return errors.EngineUnavailable(shown, reason)
    return errors.EngineUnavailable(
        shown, f"{reason} (engine chosen by {via})",
        hint="start that engine, or choose another: `docker context use NAME`, "
        "DOCKER_CONTEXT, DOCKER_HOST or opskit.connect(url).")


def display_url(url: str) -> str:
    """The engine URL without any user:password part, for messages and records."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}@" if parts.username and parts.scheme == "ssh" else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))
