"""Turning what a person types (a name, an ID, a service) into containers, and the scope check.

Mutating calls resolve a target to full IDs once, check each container's labels against the
engine's scope (see :mod:`opskit.base.labels`), then act by ID only, so a container renamed or
replaced in between is never hit by mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..base import errors
from ..base import labels as L
from .connection import Engine
from .ownership import is_sealed
from .translate import translate

__all__ = ["Ref", "list_raw", "owned_reason", "ref_from_summary", "resolve", "resolve_one",
           "service_refs"]


@dataclass(frozen=True)
class Ref:
    """One container, as resolved: full ID, current name, labels, state and image ID."""

    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    state: str = ""
    image_id: str = ""

    @property
    def service(self) -> str:
        """The opskit service the container belongs to, or ``""``."""
        return self.labels.get(L.SERVICE, "")

    @property
    def replica(self) -> str:
        """The replica name the container was created under (stable across renames)."""
        return self.labels.get(L.REPLICA, self.name)

    def owned_reason(self, engine: Engine) -> str | None:
        """Why this container is not opskit's in ``engine``'s scope, or None when it is.

        Its labels must carry a valid ownership token that it did not inherit from its image,
        and its own ID must carry the scope's seal (:mod:`opskit.engine.ownership`): labels copied
        onto another container, or a ``docker commit`` of an opskit container, do not make it
        opskit's. When the image cannot be read, the answer is no (fail closed).
        """
        return owned_reason(engine, self.id, self.labels, self.image_id, name=self.name)


_IMAGE_LABELS: dict[tuple[str, str], dict[str, str]] = {}


def _image_labels(engine: Engine, image_id: str) -> dict[str, str] | None:
    """An image's labels (cached: an image ID's labels never change); None when they cannot
    be read."""
    if not image_id:
        return None
    key = (engine.host, image_id)
    if key not in _IMAGE_LABELS:
        try:
            data = engine.api.inspect_image(image_id)
        except Exception:
            return None
        _IMAGE_LABELS[key] = dict((data.get("Config") or {}).get("Labels") or {})
    return _IMAGE_LABELS[key]


def owned_reason(engine: Engine, container_id: str, labels: dict[str, str], image_id: str, *,
                 name: str = "") -> str | None:
    """Why a container is not opskit's in ``engine``'s scope, or None when it is (see
    :meth:`Ref.owned_reason`)."""
    if labels.get(L.MANAGED) != "true":  # plainly not opskit's: no image to read
        return L.check_owned(labels, name=name, scope=engine.scope, key=engine.key)
    inherited = _image_labels(engine, image_id)
    if inherited is None:
        return (f"its image {image_id[:19] or '?'} could not be read, so its labels cannot be "
                "told from inherited ones")
    reason = L.check_owned(labels, name=name, scope=engine.scope, key=engine.key,
                           image_labels=inherited)
    if reason:
        return reason
    if not is_sealed(engine, "container", container_id):
        return ("its ID carries no opskit seal of this scope: its labels were copied from an "
                "opskit container, or an older opskit made it (deploy it again)")
    return None


def ref_from_summary(item: dict[str, Any]) -> Ref:
    """A :class:`Ref` from one entry of ``GET /containers/json`` (``docker ps``)."""
    names = item.get("Names") or ["/"]
    return Ref(id=item["Id"], name=names[0].lstrip("/"), labels=dict(item.get("Labels") or {}),
               state=item.get("State", ""), image_id=item.get("ImageID", ""))


def ref_from_inspect(data: dict[str, Any]) -> Ref:
    """A :class:`Ref` from ``docker inspect`` output."""
    return Ref(id=data["Id"], name=data.get("Name", "/").lstrip("/"),
               labels=dict((data.get("Config") or {}).get("Labels") or {}),
               state=(data.get("State") or {}).get("Status", ""), image_id=data.get("Image", ""))


def list_raw(engine: Engine, *, filters: dict[str, Any] | None = None,
             all: bool = True) -> list[dict[str, Any]]:
    """``docker ps -a --filter ...`` as the engine's raw summaries (no per-container inspect)."""
    try:
        result: list[dict[str, Any]] = engine.api.containers(all=all, filters=filters or {})
    except Exception as exc:
        raise translate(exc, "listing containers", host=engine.host) from exc
    return result


def service_refs(engine: Engine, service: str) -> list[Ref]:
    """Containers carrying the service label in this engine's scope, sorted by replica name."""
    items = list_raw(engine, filters={"label": [f"{L.SERVICE}={service}",
                                                f"{L.SCOPE}={engine.scope}"]})
    return sorted((ref_from_summary(i) for i in items), key=lambda r: (r.replica, r.name))


def resolve(engine: Engine, target: str, *, action: str = "", allow_foreign: bool = False
            ) -> list[Ref]:
    """Resolve a target to containers and, for an action, check they are in scope.

    A target is a service name (all its replicas), a container name, or a full or short ID,
    looked up in that order.

    Args:
        engine: the engine.
        target: what the person typed.
        action: the mutating action about to happen (``"restart"``); empty for reads.
        allow_foreign: act on containers outside opskit's scope too.

    Raises:
        ContainerNotFound: nothing answers to the target.
        OutOfScope: an action on a container opskit does not own.
    """
    if not isinstance(target, str) or not target.strip():
        raise errors.InvalidTarget(repr(target), "is empty",
                                   hint="name a container, an ID or a service.")
    refs = [r for r in service_refs(engine, target)
            if not r.owned_reason(engine) or allow_foreign]
    if not refs:
        found = _listed(engine, target)
        refs = [found] if found else []
    if not refs:
        try:
            data = engine.api.inspect_container(target)
        except Exception as exc:
            import docker.errors

            if isinstance(exc, docker.errors.NotFound):
                raise errors.ContainerNotFound(target, engine.host) from exc
            raise translate(exc, f"inspect of {target}", host=engine.host,
                                   target=target) from exc
        refs = [ref_from_inspect(data)]
    if action and not allow_foreign:
        for ref in refs:
            reason = ref.owned_reason(engine)
            if reason:
                raise errors.OutOfScope(target, ref.id, reason, action=action)
    return refs


_HEX = re.compile(r"[0-9a-f]{1,64}")


def _listed(engine: Engine, target: str) -> Ref | None:
    """The one container named ``target`` or whose ID starts with it, from ``docker ps``.

    The engine answers a listing from a snapshot, without taking any container's lock, so a
    container the engine is busy with (see :class:`~opskit.base.errors.EngineTimeout`) still
    resolves. Docker's order is kept: a full ID, then an exact name, then a unique ID prefix.
    None sends the caller to ``docker inspect`` (nothing found, or an ambiguous prefix).
    """
    name = target.lstrip("/")
    is_hex = bool(_HEX.fullmatch(name))
    if is_hex and len(name) == 64:
        by_id = list_raw(engine, filters={"id": [name]})
        if len(by_id) == 1:
            return ref_from_summary(by_id[0])
    by_name = [i for i in list_raw(engine, filters={"name": [f"^/{re.escape(name)}$"]})
               if "/" + name in (i.get("Names") or [])]
    if len(by_name) == 1:
        return ref_from_summary(by_name[0])
    if is_hex:
        by_prefix = [i for i in list_raw(engine, filters={"id": [name]})  # a prefix match
                     if i["Id"].startswith(name)]
        if len(by_prefix) == 1:
            return ref_from_summary(by_prefix[0])
    return None


def resolve_one(engine: Engine, target: str, *, action: str = "",
                allow_foreign: bool = False) -> Ref:
    """Like :func:`resolve`, for calls that need exactly one container (exec, cp).

    Raises:
        InvalidTarget: the target is a service with several replicas.
    """
    refs = resolve(engine, target, action=action, allow_foreign=allow_foreign)
    if len(refs) > 1:
        names = ", ".join(r.name for r in refs)
        raise errors.InvalidTarget(target, f"is a service of {len(refs)} containers ({names})",
                                   hint=f"name one container, e.g. '{refs[0].name}'.")
    return refs[0]
