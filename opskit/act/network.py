"""Networks: create, connect, disconnect, remove, list (``docker network ...``).

Networks opskit creates carry its labels; removing a network opskit did not create is refused
with :class:`~opskit.base.errors.OutOfScope`. Connecting and disconnecting change a container, so
the container must be in scope; the network itself may be anyone's.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..base import errors
from ..base import labels as L
from ..engine.calls import ipam_config, refusal_message
from ..engine.connection import Engine
from ..engine.ownership import is_sealed, seal_or_undo
from ..engine.targets import resolve
from ..engine.translate import translate
from ..observe.inspection import parse_engine_time
from ..spec.service import NAME_RE

log = logging.getLogger("opskit")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

__all__ = ["NetworkInfo", "network_connect", "network_create", "network_disconnect",
           "network_remove", "networks"]


@dataclass(frozen=True)
class NetworkInfo:
    """A network: ID, name, driver, subnet, attached container names, and the raw payload."""

    id: str
    name: str
    driver: str
    subnet: str
    internal: bool
    managed: bool
    containers: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_payload(cls, data: dict[str, Any], scope: str) -> NetworkInfo:
        """From ``docker network inspect`` output."""
        ipam = (data.get("IPAM") or {}).get("Config") or [{}]
        labels = data.get("Labels") or {}
        names = tuple(sorted(c.get("Name", "") for c in (data.get("Containers") or {}).values()))
        return cls(id=data["Id"], name=data["Name"], driver=data.get("Driver", ""),
                   subnet=(ipam[0] or {}).get("Subnet", ""), internal=bool(data.get("Internal")),
                   managed=labels.get(L.MANAGED) == "true" and labels.get(L.SCOPE) == scope,
                   containers=names, attrs=data)


def _inspect(engine: Engine, name: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = engine.api.inspect_network(name)
    except Exception as exc:
        err = translate(exc, f"inspect of network {name}", host=engine.host, kind="network")
        if isinstance(err, errors.NotFound):
            raise errors.NetworkNotFound(name, engine.host) from exc
        raise err from exc
    return data


def networks(engine: Engine) -> list[NetworkInfo]:
    """Every network on the engine: ``docker network ls``, each one inspected.

    A network removed between the list and its inspect is left out (it no longer exists).

    Raises:
        EngineUnavailable, EngineError: the engine did not answer, or refused.
    """
    try:
        items = engine.api.networks()
    except Exception as exc:
        raise translate(exc, "listing networks", host=engine.host) from exc
    found = []
    for item in items:
        try:
            data = _inspect(engine, item["Id"])
        except errors.NetworkNotFound:
            continue  # removed since the list
        found.append(NetworkInfo.from_payload(data, engine.scope))
    return found


def _named(engine: Engine, name: str) -> list[dict[str, Any]]:
    """Summaries of the networks named exactly ``name``, earliest created first.

    The engine's duplicate check is not atomic: concurrent creates can leave several networks
    of one name, so callers agree to use the first of this order.
    """
    try:
        items = engine.api.networks(names=[name])
    except Exception as exc:
        raise translate(exc, f"lookup of network {name}", host=engine.host,
                               target=name) from exc
    same = [item for item in items if item.get("Name") == name]
    return sorted(same, key=lambda item: (parse_engine_time(item.get("Created")) or _EPOCH,
                                          item.get("Id", "")))


def _find(engine: Engine, name: str) -> dict[str, Any] | None:
    """The network named exactly ``name`` (the earliest, if several), inspected, or None."""
    for item in _named(engine, name):
        try:
            return _inspect(engine, item["Id"])
        except errors.NetworkNotFound:
            continue
    return None


def network_create(engine: Engine, name: str, *, driver: str = "bridge", internal: bool = False,
                   subnet: str | None = None) -> NetworkInfo:
    """Create a network, or return it if it exists: ``docker network create NAME``.

    Idempotent: a network of that name (made by anyone, or by a concurrent call) is returned
    as it is; its driver and subnet are not compared.

    Raises:
        InvalidSpec: a bad name or subnet (before any engine call).
        EngineUnavailable, EngineError: the engine did not answer, or refused (a subnet that
            overlaps another network's, an unknown driver).
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise errors.InvalidSpec("network", f"{name!r} is not a valid network name",
                                 allowed="letters, digits, '_', '.', '-'")
    ipam = None
    if subnet is not None:
        try:
            if not isinstance(subnet, str):
                raise TypeError(f"{type(subnet).__name__} is not text")
            ipaddress.ip_network(subnet)
        except (TypeError, ValueError) as exc:
            raise errors.InvalidSpec("subnet", str(exc), allowed="CIDR like 10.42.0.0/24",
                                     value=subnet) from None
        ipam = ipam_config(subnet)
    existing = _find(engine, name)
    if existing is not None:
        return NetworkInfo.from_payload(existing, engine.scope)
    try:
        created = engine.api.create_network(
            name, driver=driver, internal=internal, ipam=ipam, check_duplicate=True,
            labels=L.resource_labels(engine.scope, role="network"))
    except Exception as exc:
        refused = refusal_message(exc) is not None  # the engine answered (a name taken?)
        existing = _find(engine, name) if refused else None
        if existing is not None:  # created by someone else since the lookup
            return NetworkInfo.from_payload(existing, engine.scope)
        raise translate(exc, f"create of network {name}", host=engine.host,
                        target=name) from exc
    ours = created["Id"]
    seal_or_undo(engine, "network", ours, lambda: engine.api.remove_network(ours))
    same = _named(engine, name)
    keep = same[0]["Id"] if same else ours
    if keep != ours:  # a concurrent create of the same name won: use it, drop ours
        try:
            engine.api.remove_network(ours)
        except Exception as exc:
            log.warning("could not remove duplicate network %s (%s): %s", name, ours[:12], exc)
    return NetworkInfo.from_payload(_inspect(engine, keep), engine.scope)


def network_connect(engine: Engine, network: str, target: str, *,
                    aliases: list[str] | None = None, allow_foreign: bool = False) -> list[str]:
    """Attach containers to a network: ``docker network connect NETWORK TARGET``.

    Returns:
        The names of the containers connected (already connected ones included).
    """
    net = _inspect(engine, network)
    attached = set((net.get("Containers") or {}).keys())
    done = []
    for ref in resolve(engine, target, action="network connect", allow_foreign=allow_foreign):
        if ref.id not in attached:
            try:
                engine.api.connect_container_to_network(ref.id, net["Id"], aliases=aliases)
            except Exception as exc:
                raise translate(exc, f"connect of {ref.name} to {network}",
                                       host=engine.host, target=network) from exc
        done.append(ref.name)
    return done


def network_disconnect(engine: Engine, network: str, target: str, *, force: bool = False,
                       allow_foreign: bool = False) -> list[str]:
    """Detach containers from a network: ``docker network disconnect NETWORK TARGET``."""
    net = _inspect(engine, network)
    attached = set((net.get("Containers") or {}).keys())
    done = []
    for ref in resolve(engine, target, action="network disconnect", allow_foreign=allow_foreign):
        if ref.id in attached:
            try:
                engine.api.disconnect_container_from_network(ref.id, net["Id"], force=force)
            except Exception as exc:
                raise translate(exc, f"disconnect of {ref.name} from {network}",
                                       host=engine.host, target=network) from exc
        done.append(ref.name)
    return done


def network_remove(engine: Engine, network: str, *, missing_ok: bool = False,
                   allow_foreign: bool = False) -> None:
    """Remove a network opskit created: ``docker network rm NETWORK``.

    Args:
        engine: the engine.
        network: a network name or ID.
        missing_ok: return quietly when there is no such network (so a clean-up can run
            twice); otherwise that raises NetworkNotFound.
        allow_foreign: remove a network opskit did not create in this scope.

    Raises:
        NetworkNotFound: no such network (unless ``missing_ok``).
        OutOfScope: the network is not opskit's (checked before any change).
        EngineError: the engine refused (containers are still attached).
    """
    try:
        data = _inspect(engine, network)
    except errors.NetworkNotFound:
        if missing_ok:
            return
        raise
    info = NetworkInfo.from_payload(data, engine.scope)
    if not (info.managed and is_sealed(engine, "network", info.id)) and not allow_foreign:
        why = ("its opskit labels are not sealed by this scope (copied, or made by an older "
               "opskit)" if info.managed else "opskit did not create this network")
        raise errors.OutOfScope(network, info.id, why, action="remove network")
    try:
        engine.api.remove_network(info.id)
    except Exception as exc:
        err = translate(exc, f"remove of network {network}", host=engine.host, target=network,
                        kind="network")
        if missing_ok and isinstance(err, errors.NotFound):
            return  # removed by someone else since the inspect
        raise err from exc
