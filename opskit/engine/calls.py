"""The engine calls docker-py has no public method for, and the docker-py helpers opskit uses.

This is the one module outside docker-py that touches docker-py's private API (``api._get``,
``_post``, ``_url``, ``_result``, ``_raise_for_status``, ``_stream_helper``, ``CancellableStream``)
and its ``docker.utils`` / ``docker.types`` helpers, so a docker-py upgrade has one place to check.
Each function says the Engine API endpoint it calls and what the ``docker`` CLI does the same.

``api`` is always a docker-py low-level ``APIClient`` (:attr:`opskit.engine.connection.Engine.api`).
Unless a function says otherwise it raises docker-py's own exceptions, which callers turn into
opskit's with :func:`opskit.engine.translate.translate`; the few checks that need docker-py's
exception types (:func:`is_timeout`, :func:`is_read_timeout`, :func:`refusal_message`) are here.

docker-py, requests and urllib3 are imported inside the functions: ``import opskit`` stays
without them (an incident bundle opens where docker-py is not installed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["BOOT_API_VERSION", "PayloadStream", "Readable", "api_client", "container_stats",
           "context_paths", "docker_client", "get_archive", "inspect_container", "ipam_config",
           "is_read_timeout", "is_timeout", "is_transport", "logs_stream",
           "parse_repository_tag", "ping", "refusal_message", "request", "stat_path",
           "stats_stream", "status_of", "unpause"]

_PATH_STAT = "X-Docker-Container-Path-Stat"


class Readable(Protocol):
    """A raw HTTP body read in pieces (urllib3's response)."""

    def read(self, amt: int) -> bytes:
        """Up to ``amt`` bytes; empty at the end of the body."""
        ...


class PayloadStream(Protocol):
    """Decoded JSON payloads from a streaming endpoint, closable from another thread."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The payloads, one per engine message, until the engine or :meth:`close` ends it."""
        ...

    def close(self) -> None:
        """Shut the socket, so a read blocked in another thread ends at once."""
        ...


# -- exceptions ---------------------------------------------------------------------------

def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is the client's timeout (connect or read) rather than an engine answer."""
    import requests.exceptions

    return isinstance(exc, requests.exceptions.Timeout)


def is_transport(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure to reach the engine or to hear from it (connection refused
    or reset, a timeout), not a bug or a refusal."""
    import requests.exceptions

    return isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
                      | ConnectionError)


def is_read_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` says the engine sent nothing for the client's read timeout.

    A streamed answer (a build log) raises urllib3's ``ReadTimeoutError`` from inside the body,
    not wrapped by requests; a plain request raises requests' ``ReadTimeout``.
    """
    import requests.exceptions
    import urllib3.exceptions

    return isinstance(exc, urllib3.exceptions.ReadTimeoutError | requests.exceptions.ReadTimeout)


def refusal_message(exc: BaseException) -> str | None:
    """The engine's own message when ``exc`` is its refusal of a request (docker-py's
    ``APIError``, any status), else None (a transport or client-side failure)."""
    import docker.errors

    if not isinstance(exc, docker.errors.APIError):
        return None
    return str(exc.explanation or exc)


# -- containers ---------------------------------------------------------------------------

def inspect_container(api: Any, cid: str, timeout: float) -> dict[str, Any]:
    """``GET /containers/{id}/json`` waiting at most ``timeout`` seconds: ``docker inspect CID``.

    docker-py's ``inspect_container`` always waits the client's timeout; this one bounds a call
    that may wait on a busy container's lock (a paused container whose health probe was
    starting) without changing the client.
    """
    response = api._get(api._url("/containers/{0}/json", cid), timeout=timeout)
    attrs: dict[str, Any] = api._result(response, True)
    return attrs


def unpause(api: Any, cid: str, timeout: float) -> None:
    """``POST /containers/{id}/unpause`` waiting at most ``timeout`` seconds:
    ``docker unpause CID``.

    Raises:
        docker.errors.APIError: the engine refused (409 when the container is not paused;
            ``NotFound`` when it is gone), like ``APIClient.unpause``.
    """
    response = api._post(api._url("/containers/{0}/unpause", cid), timeout=timeout)
    api._raise_for_status(response)


# -- archives (docker cp) -----------------------------------------------------------------

def stat_path(api: Any, cid: str, path: str, timeout: float) -> dict[str, Any] | None:
    """The engine's stat of ``path`` in a container (name, size, mode, mtime, linkTarget), or
    None when there is no such path: ``HEAD /containers/{id}/archive?path=PATH``, what
    ``docker cp`` asks before it writes into a container.
    """
    import docker.errors

    res = api.head(api._url("/containers/{0}/archive", cid), params={"path": path},
                   timeout=timeout)
    try:
        if res.status_code == 404:
            return None
        api._raise_for_status(res)
        return _path_stat(res)
    except docker.errors.NotFound:
        return None
    finally:
        res.close()


@contextmanager
def get_archive(api: Any, cid: str, path: str, *, chunk_size: int = 1 << 20
                ) -> Iterator[tuple[dict[str, Any], Iterator[bytes]]]:
    """``GET /containers/{id}/archive?path=PATH``: a tar archive of ``path``, as
    ``docker cp CID:PATH -`` writes it.

    A context manager giving ``(stat, chunks)``: the engine's stat of ``path`` (see
    :func:`stat_path`) and the archive's bytes, uncompressed, in pieces of up to ``chunk_size``.
    The response is closed when the block ends, however it ends, so a caller may stop reading
    early (an archive too large).

    Raises:
        docker.errors.NotFound: no such container, or no such path in it.
    """
    res = api._get(api._url("/containers/{0}/archive", cid), params={"path": path},
                   stream=True, headers={"Accept-Encoding": "identity"})
    try:
        api._raise_for_status(res)
        yield _path_stat(res), res.iter_content(chunk_size, False)
    finally:
        res.close()


def _path_stat(response: Any) -> dict[str, Any]:
    from docker.utils import decode_json_header

    header = response.headers.get(_PATH_STAT)
    stat: dict[str, Any] = decode_json_header(header) if header else {}
    return stat


# -- logs and stats -----------------------------------------------------------------------

@contextmanager
def logs_stream(api: Any, cid: str, params: dict[str, Any]) -> Iterator[Readable]:
    """``GET /containers/{id}/logs`` with ``params`` (``stdout``, ``stderr``, ``timestamps``,
    ``tail``, ``since``, ``until``, ``follow``): ``docker logs CID``, as the raw HTTP body.

    A context manager giving the HTTP body unparsed: without a TTY the engine multiplexes
    stdout and stderr, each frame behind an 8-byte header (stream type, padding, length) whose
    stream type docker-py's own reader drops. The response is closed when the block ends.
    """
    response = api._get(api._url("/containers/{0}/logs", cid), params=params, stream=True)
    try:
        api._raise_for_status(response)
        yield response.raw
    finally:
        response.close()


def container_stats(api: Any, cid: str) -> dict[str, Any] | None:
    """One stats payload: ``GET /containers/{id}/stats?stream=false``, like
    ``docker stats --no-stream CID`` (the engine answers after two samples, 1 to 2 s).

    Returns:
        The payload, or None when the engine ended its answer without a body (the container
        stopped while the engine waited for its samples).
    """
    import requests.exceptions

    try:
        payload: dict[str, Any] = api.stats(cid, stream=False)
    except requests.exceptions.JSONDecodeError:
        return None
    return payload


def stats_stream(api: Any, cid: str) -> PayloadStream:
    """``GET /containers/{id}/stats?stream=true`` as decoded payloads: ``docker stats CID``.

    Like ``api.stats(cid, stream=True, decode=True)``, but wrapped, as docker-py's own
    ``events()`` is, in a ``CancellableStream`` whose ``close()`` shuts the socket, so a read
    blocked in another thread ends at once. Each read waits at most the client's timeout.

    Raises:
        docker.errors.APIError: the engine refused (``NotFound`` for a removed container).
    """
    from docker.types.daemon import CancellableStream

    response = api._get(api._url("/containers/{0}/stats", cid), params={"stream": True},
                        stream=True)
    api._raise_for_status(response)
    stream: PayloadStream = CancellableStream(api._stream_helper(response, decode=True),
                                              response)
    return stream


# -- clients and docker-py helpers --------------------------------------------------------

def api_client(api: Any, host: str, *, timeout: float, pool_size: int) -> Any:
    """A new low-level docker-py client to the engine ``api`` talks to, at ``host``, with a
    connection pool of its own (``pool_size`` connections), the same API version (no version
    request) and the same TLS settings. No engine call is made.

    Raises:
        docker.errors.DockerException (and others): docker-py cannot use ``host``.
    """
    import docker
    import docker.tls

    tls: Any = False
    if str(getattr(api, "base_url", "")).startswith("https://"):
        verify = api.verify
        tls = docker.tls.TLSConfig(client_cert=api.cert,
                                   ca_cert=verify if isinstance(verify, str) else None,
                                   verify=bool(verify))
    client = docker.APIClient(base_url=host, version=api.api_version, timeout=timeout, tls=tls,
                              max_pool_size=pool_size, use_ssh_client=host.startswith("ssh"))
    client.trust_env = api.trust_env
    return client


BOOT_API_VERSION = "1.24"
"""The oldest API docker-py speaks: a client made with it sends no request until asked."""


def docker_client(url: str, *, timeout: float, tls: Any, pool_size: int) -> Any:
    """``docker.DockerClient(base_url=url, ...)`` that verifies a TLS engine against the CA file
    it was given, whatever the environment says.

    requests lets ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` replace a session's own CA file on
    every request (psf/requests#3829), so with either set (common on corporate machines and in
    CI images) docker-py would check the engine's certificate against the system's CAs and
    refuse it. With a CA file, the client therefore reads no settings from the environment, as
    the docker CLI ignores them; proxies for such an engine are not taken from it either.

    Raises:
        docker.errors.DockerException, requests exceptions: as ``docker.DockerClient`` does
        (the engine's API version is asked for once, as docker-py does).
    """
    import docker

    pinned = bool(tls) and bool(getattr(tls, "verify", False)) and isinstance(
        getattr(tls, "ca_cert", None), str)
    client = docker.DockerClient(base_url=url, timeout=timeout, tls=tls or False,
                                 max_pool_size=pool_size, use_ssh_client=url.startswith("ssh"),
                                 version=BOOT_API_VERSION if pinned else None)
    if pinned:
        client.api.trust_env = False
        try:
            client.api._version = str(client.api.version(api_version=False)["ApiVersion"])
        except Exception:
            client.close()
            raise
    return client


def parse_repository_tag(ref: str) -> tuple[str, str | None]:
    """An image reference split as ``docker pull`` does: ``("repo", "tag")``; the tag is None
    when not given, and a digest (``repo@sha256:...``) is the second part."""
    from docker.utils import parse_repository_tag as parse

    repo, tag = parse(ref)
    return str(repo), None if tag is None else str(tag)


def context_paths(root: str, patterns: list[str], dockerfile: str) -> set[str]:
    """The files and folders of a build context ``docker build`` sends, relative to ``root``:
    all but those ``.dockerignore`` ``patterns`` leave out (the Dockerfile and ``.dockerignore``
    are always sent)."""
    from docker.utils.build import exclude_paths

    return {str(path) for path in exclude_paths(root, patterns, dockerfile=dockerfile)}


def ipam_config(subnet: str) -> dict[str, Any]:
    """The IP address management settings of ``docker network create --subnet SUBNET``: the
    default driver with one pool of that subnet (``POST /networks/create``'s ``IPAM``)."""
    from docker.types import IPAMConfig, IPAMPool

    config: dict[str, Any] = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)])
    return config


# -- swarm --------------------------------------------------------------------------------

def request(api: Any, method: str, path: str, *args: str, params: dict[str, Any] | None = None,
            body: Any = None, timeout: float) -> Any:
    """One Engine API call by method and path (``/services/{0}/update``, its ``args`` quoted
    in), its JSON answer decoded (None for an empty body), waiting at most ``timeout`` seconds.

    For the Swarm endpoints docker-py either lacks (``rollback=previous``) or wraps in a way
    that drops fields (``update_service`` without the current spec).

    Raises:
        docker.errors.APIError: the engine refused (its message in ``explanation``).
        requests.exceptions.RequestException: no answer in time, connection refused.
    """
    url = api._url(path, *args)
    if method == "GET":
        response = api._get(url, params=params, timeout=timeout)
    elif method == "DELETE":
        response = api._delete(url, params=params, timeout=timeout)
    else:
        response = api._post(url, params=params, timeout=timeout,
                             data=None if body is None else json.dumps(body),
                             headers={"Content-Type": "application/json"})
    api._raise_for_status(response)
    text = response.text
    return json.loads(text) if text.strip() else None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an engine refusal (docker-py's ``APIError``), else None."""
    import docker.errors

    return exc.status_code if isinstance(exc, docker.errors.APIError) else None


def ping(api: Any, timeout: float) -> bool:
    """Whether the engine answers ``GET /_ping`` within ``timeout`` seconds."""
    try:
        response = api._get(api._url("/_ping"), timeout=timeout)
    except Exception:
        return False
    return bool(response.status_code == 200)
