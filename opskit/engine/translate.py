"""Engine exceptions, in opskit's words: the one place a docker-py or transport exception is
translated into the error tree of :mod:`opskit.errors`."""

from __future__ import annotations

import re
from typing import Any

from ..base.errors import (
    ContainerNotFound,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    ImageNotFound,
    NetworkNotFound,
    OpsKitError,
)

__all__ = ["translate"]


def _timeout_words(exc: BaseException) -> str:
    """``read timeout=20.0`` from a requests timeout, else a plain phrase."""
    found = re.search(r"(?:read|connect) timeout=[0-9.]+", str(exc))
    return found.group(0) if found else "timed out"


def translate(exc: BaseException, what: str, *, host: str = "", target: str = "",
              kind: str = "") -> OpsKitError:
    """Translate a docker-py or transport exception into an opskit error.

    The caller raises the result ``from exc``.

    Args:
        exc: the exception docker-py (or requests underneath it) raised.
        what: the operation, in words (``"restart of web-1"``).
        host: the engine's address, named in connection errors.
        target: the container, image or network the call was about.
        kind: ``container``, ``image`` or ``network``: what a 404 means; read from the
            engine's message ("No such network: ...") when not given.
    """
    import docker.errors  # docker-py stays out of ``import opskit`` (bundles open without it)
    import requests.exceptions
    if isinstance(exc, OpsKitError):
        return exc
    if isinstance(exc, requests.exceptions.Timeout):
        if target:
            return EngineTimeout(host or "the engine", what, target, _timeout_words(exc))
        return EngineUnavailable(host or "the engine", f"{what} timed out ({exc})")
    if isinstance(exc, requests.exceptions.ConnectionError | ConnectionError):
        return EngineUnavailable(host or "the engine", f"{what}: {exc}")
    if isinstance(exc, docker.errors.ImageNotFound):
        return ImageNotFound(target or "?", host)
    if isinstance(exc, docker.errors.NotFound):
        message = _explanation(exc).lower()
        if not kind:
            match = re.match(r"(?:no such |)(container|image|network)\b", message)
            kind = match.group(1) if match else "container"
        if kind == "network":
            return NetworkNotFound(target or "?", host)
        if kind == "image":
            return ImageNotFound(target or "?", host)
        return ContainerNotFound(target or "?", host)
    if isinstance(exc, docker.errors.APIError):
        return EngineError(what, _explanation(exc), status=exc.status_code)
    if isinstance(exc, docker.errors.DockerException):
        return EngineError(what, str(exc))
    return EngineError(what, f"{type(exc).__name__}: {exc}")


def _explanation(exc: Any) -> str:
    explanation = getattr(exc, "explanation", None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return str(explanation or exc)
