"""Ownership seals: opskit's claim bound to the thing it created, not only to its labels.

Labels are fixed when a container, network or volume is created, so the ownership token in them
(:func:`opskit.base.labels.owner_token`) can say which scope, replica and spec a container was made
for, but not *which* container it is: ``docker inspect`` shows the labels, and a copy of them
on another container would pass. A seal closes that gap. Right after the engine has created
something, opskit signs its engine-given identity (a container's or network's ID, a volume's name
and creation time) with the scope key and appends the signature to the scope's seal file
(``state_dir()/seals/<scope>.jsonl``, fsync'd). Only what carries both a valid token and a
valid seal is opskit's. The engine assigns IDs, so no copier can make a container with the ID of
one opskit sealed.

A container created by an opskit older than seals carries none, and counts as foreign until it
is deployed again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from ..base.durable import AppendLog, state_dir
from ..base.errors import StorageError
from .connection import Engine

log = logging.getLogger("opskit")

__all__ = ["is_sealed", "seal", "seal_or_undo", "seal_path"]

_CACHE: dict[Path, tuple[tuple[int, int], frozenset[tuple[str, str]]]] = {}
_LOCK = threading.Lock()


def seal_path(engine: Engine) -> Path:
    """The seal file of the engine's scope."""
    return state_dir() / "seals" / f"{engine.scope}.jsonl"


def _mac(engine: Engine, kind: str, ident: str) -> str:
    message = f"opskit-seal\0{engine.scope}\0{kind}\0{ident}".encode()
    return hmac.new(engine.key, message, hashlib.sha256).hexdigest()[:32]


def seal(engine: Engine, kind: str, ident: str) -> None:
    """Record that opskit created ``ident`` (a ``container``'s or ``network``'s ID, or a
    ``volume``'s ``name@CreatedAt``) in the engine's scope.

    Raises:
        StorageError: the seal file cannot be written (the caller undoes the create).
    """
    line = json.dumps({"kind": kind, "id": ident, "mac": _mac(engine, kind, ident)},
                      separators=(",", ":"))
    log = AppendLog(seal_path(engine))
    try:
        log.append([line], sync=True)
    finally:
        log.close()


def seal_or_undo(engine: Engine, kind: str, ident: str, undo: Callable[[], object]) -> None:
    """:func:`seal` what was just created; when the seal cannot be written, ``undo()`` the
    create (its own failure is only logged) and raise, so nothing unsealed is left behind.

    Raises:
        StorageError: the seal file cannot be written.
    """
    try:
        seal(engine, kind, ident)
    except StorageError:
        try:
            undo()
        except Exception as exc:  # the seal's error is the one to raise; say this one
            log.warning("could not undo the create of %s %s: %s", kind, ident[:12], exc)
        raise


def _sealed(engine: Engine) -> frozenset[tuple[str, str]]:
    """Every valid seal of the scope (cached until the file changes)."""
    path = seal_path(engine)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return frozenset()
    stamp = (stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        cached = _CACHE.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    found = set()
    for raw in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(raw)
            kind, ident, mac = str(entry["kind"]), str(entry["id"]), str(entry["mac"])
        except (ValueError, TypeError, KeyError):
            continue  # a torn or foreign line seals nothing
        if hmac.compare_digest(mac, _mac(engine, kind, ident)):
            found.add((kind, ident))
    result = frozenset(found)
    with _LOCK:
        _CACHE[path] = (stamp, result)
    return result


def is_sealed(engine: Engine, kind: str, ident: str) -> bool:
    """Whether opskit sealed ``ident`` of ``kind`` in the engine's scope."""
    return (kind, ident) in _sealed(engine)
