"""One replica from a spec: ``docker create`` plus ``docker start``, with nothing left half done.

:func:`create_replica` turns a :class:`~opskit.spec.service.ServiceSpec` into the engine's create
call (labels with the ownership token and the spec included) and joins the spec's networks;
:func:`start_replica` starts it and, if the start fails (a port already taken), removes the
container so no ``created`` container is left behind. :func:`recreate_replica` replaces one
replica by a fresh container from the same spec and image, and puts the old one back if the new
one cannot start.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from ..base import errors
from ..base import labels as L
from ..engine.connection import Engine
from ..engine.ownership import seal_or_undo
from ..engine.translate import translate
from ..spec.desired import spec_labels
from ..spec.service import ServiceSpec
from .lease import service_lock

log = logging.getLogger("opskit")

__all__ = ["container_labels", "create_replica", "ensure_networks", "ensure_volumes",
           "recreate_replica", "start_replica", "volume_identity"]

_PORT_TAKEN = re.compile(r"port is already allocated|address already in use", re.IGNORECASE)


def container_labels(engine: Engine, spec: ServiceSpec, replica: str) -> dict[str, str]:
    """The labels of one replica: the spec's own plus opskit's, with the ownership token."""
    config_hash = L.spec_digest(engine.key, spec.config_hash)
    out = dict(spec.labels)
    out.update(L.resource_labels(engine.scope, service=spec.name))
    out[L.REPLICA] = replica
    out[L.SPEC_HASH] = config_hash
    out[L.OWNER] = L.owner_token(engine.key, engine.scope, replica, config_hash)
    out.update(spec_labels(spec, engine.key))
    return out


def ensure_networks(engine: Engine, spec: ServiceSpec, *, created: list[str] | None = None
                    ) -> list[str]:
    """Create the spec's missing networks (bridge, labelled opskit); return those created.

    ``created``, when given, is filled as it goes, so a caller can undo a partial run.
    """
    created = [] if created is None else created
    for name in spec.networks:
        try:
            found = engine.api.networks(names=[name])
        except Exception as exc:
            raise translate(exc, f"listing network {name}", host=engine.host) from exc
        if any(n.get("Name") == name for n in found):
            continue
        try:
            made = engine.api.create_network(name, driver="bridge", check_duplicate=True,
                                             labels=L.resource_labels(engine.scope,
                                                                      role="network"))
        except Exception as exc:
            raise translate(exc, f"create of network {name}", host=engine.host,
                                   target=name) from exc
        seal_or_undo(engine, "network", made["Id"],
                     functools.partial(engine.api.remove_network, made["Id"]))
        log.info("created network %s for service %s", name, spec.name)
        created.append(name)
    return created


def volume_identity(volume: dict[str, Any]) -> str:
    """What a volume is sealed as: its name and creation time (a volume has no ID; one made
    again under the same name is another volume)."""
    return f"{volume.get('Name', '')}@{volume.get('CreatedAt', '')}"


def ensure_volumes(engine: Engine, spec: ServiceSpec, *, created: list[str] | None = None
                   ) -> list[str]:
    """Create the spec's missing named volumes (labelled opskit); return those created."""
    created = [] if created is None else created
    for source in spec.volumes:
        if source.startswith("/"):
            continue
        try:
            engine.api.inspect_volume(source)
            continue
        except Exception as exc:
            # any 404 is a NotFound (a volume's reads 'get NAME: no such volume'): missing
            err = translate(exc, f"inspect of volume {source}", host=engine.host)
            if not isinstance(err, errors.NotFound):
                raise err from exc
        try:
            made = engine.api.create_volume(source, labels=L.resource_labels(
                engine.scope, service=spec.name, role="volume"))
        except Exception as exc:
            raise translate(exc, f"create of volume {source}", host=engine.host) from exc
        seal_or_undo(engine, "volume", volume_identity(made),
                     functools.partial(engine.api.remove_volume, source))
        created.append(source)
    return created


def _host_config(engine: Engine, spec: ServiceSpec) -> dict[str, Any]:
    policy, _, retries = str(spec.restart).partition(":")
    restart: dict[str, Any] = {"Name": "" if policy == "no" else policy}
    if retries:
        restart["MaximumRetryCount"] = int(retries)
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in spec.port_maps:
        bindings.setdefault(port.key, []).append(
            {"HostIp": port.host_ip, "HostPort": str(port.host_port or "")})
    binds = {}
    for source, target in spec.volumes.items():
        path, _, mode = target.partition(":")
        binds[source] = {"bind": path, "mode": mode or "rw"}
    kwargs: dict[str, Any] = {"port_bindings": bindings, "binds": binds,
                              "restart_policy": restart, "init": spec.init or None}
    if spec.memory is not None:
        kwargs["mem_limit"] = spec.memory
    if spec.cpus is not None:
        kwargs["nano_cpus"] = int(spec.cpus * 1e9)
    if spec.pids_limit is not None:
        kwargs["pids_limit"] = spec.pids_limit
    if spec.networks:
        kwargs["network_mode"] = spec.networks[0]
    result: dict[str, Any] = engine.api.create_host_config(**kwargs)
    return result


def create_replica(engine: Engine, spec: ServiceSpec, replica: str, *, name: str,
                   image: str | None = None) -> str:
    """Create (not start) one replica named ``name``; return its full ID.

    Equivalent to ``docker create --name NAME --label ... -p ... IMAGE``. The image must be
    present: the low-level create never pulls. ``image`` (an image ID) replaces the spec's
    reference, so a recreate runs exactly the image that ran before.

    Raises:
        ImageNotFound, NameConflict, EngineError.
    """
    hc = spec.health.to_engine() if spec.health is not None else None
    healthcheck = None if hc is None else {
        "test": hc["Test"], "interval": hc["Interval"], "timeout": hc["Timeout"],
        "retries": hc["Retries"], "start_period": hc["StartPeriod"]}
    networking = None
    if spec.networks:
        networking = engine.api.create_networking_config({
            spec.networks[0]: engine.api.create_endpoint_config(aliases=[spec.name, replica])})
    try:
        created = engine.api.create_container(
            image or spec.image, name=name, command=list(spec.command) if spec.command else None,
            entrypoint=list(spec.entrypoint) if spec.entrypoint else None,
            environment=[f"{k}={v}" for k, v in spec.env.items()],
            ports=[(p.container_port, p.protocol) for p in spec.port_maps],
            labels=container_labels(engine, spec, replica), user=spec.user,
            working_dir=spec.workdir, healthcheck=healthcheck,
            stop_signal=spec.stop_signal,
            stop_timeout=int(spec.stop_timeout) if spec.stop_timeout is not None else None,
            host_config=_host_config(engine, spec), networking_config=networking,
            detach=True)
    except Exception as exc:
        err = translate(exc, f"create of {name}", host=engine.host, target=str(spec.image))
        if isinstance(err, errors.EngineError) and err.status == 409:
            holder = _holder_of(engine, name)
            raise errors.NameConflict(name, holder) from exc
        raise err from exc
    cid: str = created["Id"]
    seal_or_undo(engine, "container", cid, functools.partial(_discard, engine, cid))
    try:
        for network in spec.networks[1:]:
            engine.api.connect_container_to_network(cid, network, aliases=[spec.name, replica])
    except Exception as exc:
        _discard(engine, cid)
        raise translate(exc, f"connect of {name} to its networks",
                               host=engine.host) from exc
    return cid


def recreate_replica(engine: Engine, spec: ServiceSpec, container_id: str, *, replica: str,
                     image_id: str, holder: str, stop_timeout: float = 1.0) -> str:
    """A fresh container for one replica, from its spec and the image it ran; return its ID.

    Like ``docker stop -t N NAME && docker rm NAME && docker run --name NAME ...`` with nothing
    lost on failure: the old container is stopped and renamed aside (``NAME.old-<id>``), the
    new one is created and started under the replica's name, and only then is the old one
    removed (its anonymous volumes are kept). If the new one cannot be created or started, it
    is removed and the old one gets its name back. Holds the service's deploy lock meanwhile.

    Raises:
        Conflict: a deploy of the service is under way.
        NameConflict, PortInUse, EngineError: the new container could not be made or started.
    """
    reference = image_id
    try:  # the spec's reference, when it still names the image that ran (what people read)
        if engine.api.inspect_image(str(spec.image))["Id"] == image_id:
            reference = str(spec.image)
    except Exception as exc:
        log.debug("image %s no longer names %s: %s", spec.image, image_id[:19], exc)
    aside = f"{replica}.old-{container_id[:8]}"
    with service_lock(engine, spec.name, holder=holder, image=image_id, ttl=120):
        try:
            engine.api.stop(container_id, timeout=int(stop_timeout))
            engine.api.rename(container_id, aside)
        except Exception as exc:
            raise translate(exc, f"stop of {replica} before its recreate",
                                   host=engine.host, target=replica, kind="container") from exc
        try:
            new_id = create_replica(engine, spec, replica, name=replica, image=reference)
            start_replica(engine, spec, new_id, name=replica)
        except BaseException:
            try:
                engine.api.rename(container_id, replica)
            except Exception as exc:  # the create's error matters more; the log says this one
                log.error("could not give %s its name back after a failed recreate: %s",
                          replica, exc)
            raise
    try:
        engine.api.remove_container(container_id, force=True)
    except Exception as exc:
        log.warning("could not remove the old container of %s (%s): %s", replica,
                    container_id[:12], exc)
    return new_id


def _holder_of(engine: Engine, name: str) -> str:
    try:
        return str(engine.api.inspect_container(name)["Id"])
    except Exception:
        return "?" * 12


def _discard(engine: Engine, cid: str) -> None:
    try:
        engine.api.remove_container(cid, force=True, v=True)
    except Exception as exc:  # the original error matters more; say this one in the log
        log.warning("could not remove container %s after a failed deploy step: %s", cid[:12], exc)


def start_replica(engine: Engine, spec: ServiceSpec, cid: str, *, name: str,
                  discard: bool = True) -> None:
    """Start a replica (``docker start``); on failure remove it when ``discard`` and raise.

    Raises:
        PortInUse: a published host port is taken.
        EngineError: any other refusal.
    """
    try:
        engine.api.start(cid)
    except Exception as exc:
        if discard:
            _discard(engine, cid)
        err = translate(exc, f"start of {name}", host=engine.host, target=name)
        message = err.engine_message if isinstance(err, errors.EngineError) else ""
        if _PORT_TAKEN.search(message):
            port, host_ip = _taken_port(spec, message)
            raise errors.PortInUse(port, host_ip, message, service=spec.name) from exc
        raise err from exc


def _taken_port(spec: ServiceSpec, message: str) -> tuple[int, str]:
    for port in spec.port_maps:
        if port.host_port and re.search(rf":{port.host_port}\b", message):
            return port.host_port, port.host_ip
    published = [p for p in spec.port_maps if p.host_port]
    if published:
        return published[0].host_port or 0, published[0].host_ip
    return 0, "?"
