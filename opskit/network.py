"""Networks: create, connect, disconnect, remove, list (``docker network ...``).

Networks opskit creates carry its labels; removing a network opskit did not create is refused
with :class:`~opskit.errors.OutOfScope`. Connecting and disconnecting change a container, so the
container must be in scope; the network itself may be anyone's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import errors
from . import labels as L
from .engine import Engine
from .targets import resolve

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
        import docker.errors

        if isinstance(exc, docker.errors.NotFound):
            raise errors.NetworkNotFound(name, engine.host) from exc
        raise errors.translate(exc, f"inspect of network {name}", host=engine.host) from exc
    return data


def networks(engine: Engine) -> list[NetworkInfo]:
    """Every network on the engine: ``docker network ls``."""
    try:
        items = engine.api.networks()
    except Exception as exc:
        raise errors.translate(exc, "listing networks", host=engine.host) from exc
    return [NetworkInfo.from_payload(_inspect(engine, n["Id"]), engine.scope) for n in items]


def network_create(engine: Engine, name: str, *, driver: str = "bridge", internal: bool = False,
                   subnet: str | None = None) -> NetworkInfo:
    """Create a network, or return it if it exists: ``docker network create NAME``.

    Raises:
        InvalidSpec: a bad name or subnet (before any engine call).
    """
    from .spec import NAME_RE

    if not isinstance(name, str) or not NAME_RE.match(name):
        raise errors.InvalidSpec("network", f"{name!r} is not a valid network name",
                                 allowed="letters, digits, '_', '.', '-'")
    found = [n for n in engine.api.networks(names=[name]) if n.get("Name") == name]
    if found:
        return NetworkInfo.from_payload(_inspect(engine, found[0]["Id"]), engine.scope)
    ipam = None
    if subnet:
        import ipaddress

        try:
            ipaddress.ip_network(subnet)
        except ValueError as exc:
            raise errors.InvalidSpec("subnet", str(exc), allowed="CIDR like 10.42.0.0/24") from None
        from docker.types import IPAMConfig, IPAMPool

        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)])
    try:
        engine.api.create_network(name, driver=driver, internal=internal, ipam=ipam,
                                  check_duplicate=True,
                                  labels=L.resource_labels(engine.scope, role="network"))
    except Exception as exc:
        raise errors.translate(exc, f"create of network {name}", host=engine.host,
                               target=name) from exc
    return NetworkInfo.from_payload(_inspect(engine, name), engine.scope)


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
                raise errors.translate(exc, f"connect of {ref.name} to {network}",
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
                raise errors.translate(exc, f"disconnect of {ref.name} from {network}",
                                       host=engine.host, target=network) from exc
        done.append(ref.name)
    return done


def network_remove(engine: Engine, network: str, *, allow_foreign: bool = False) -> None:
    """Remove a network opskit created: ``docker network rm NETWORK``.

    Raises:
        NetworkNotFound, OutOfScope: the network is not opskit's.
    """
    data = _inspect(engine, network)
    info = NetworkInfo.from_payload(data, engine.scope)
    if not info.managed and not allow_foreign:
        raise errors.OutOfScope(network, info.id, "opskit did not create this network",
                                action="remove network")
    try:
        engine.api.remove_network(info.id)
    except Exception as exc:
        raise errors.translate(exc, f"remove of network {network}", host=engine.host,
                               target=network) from exc
