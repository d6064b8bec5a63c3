"""Deploy a service from a spec: idempotent, one replica at a time, rolled back on failure.

:func:`deploy` is what ``docker run`` becomes when it must be safe to run twice:

- an unchanged spec (same config hash, same image ID) changes nothing: same container IDs;
- a changed spec replaces replicas one at a time; each new replica must reach ``wait`` within
  ``timeout``; if one does not, every replica replaced so far is rolled back to its previous
  container, which keeps serving (or serves again, when a fixed host port forced it to stop);
- a missing image raises :class:`~opskit.base.errors.ImageNotFound` at once (never an implicit
  pull);
- a name held by a container opskit does not own raises :class:`~opskit.base.errors.NameConflict`
  before anything changes, and that container is not touched.

:func:`teardown` removes a service's replicas and the networks deploy made that nothing else
uses (named volumes only when asked: they hold data).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..base import errors
from ..base import labels as L
from ..engine.calls import parse_repository_tag
from ..engine.connection import Engine
from ..engine.ownership import is_sealed
from ..engine.targets import (
    Ref,
    list_raw,
    ref_from_summary,
    resolve,
    service_refs,
)
from ..engine.translate import translate
from ..observe.waiting import wait_for
from ..spec.service import ServiceSpec
from .actions import default_actor
from .create import (
    create_replica,
    ensure_networks,
    ensure_volumes,
    start_replica,
    volume_identity,
)
from .images import build as build_image
from .images import image_id as local_image_id
from .lease import service_lock

log = logging.getLogger("opskit")

__all__ = ["Deployment", "deploy", "teardown"]

WAITS = ("running", "healthy", None)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Deployment:
    """What a deploy did.

    Attributes:
        service: the service name.
        image_id: the image the replicas run.
        containers: the replicas' names, in order, and ``ids`` their full IDs.
        created, kept, started, removed: container IDs in each outcome.
        replaced: ``(old_id, new_id)`` pairs.
        networks_created, volumes_created: what deploy had to create first.
        duration: seconds.
    """

    service: str
    image_id: str
    containers: tuple[str, ...]
    ids: tuple[str, ...]
    created: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    started: tuple[str, ...] = ()
    replaced: tuple[tuple[str, str], ...] = ()
    removed: tuple[str, ...] = ()
    networks_created: tuple[str, ...] = ()
    volumes_created: tuple[str, ...] = ()
    duration: float = 0.0

    @property
    def changed(self) -> bool:
        """False when the deploy found everything as the spec says."""
        return bool(self.created or self.started or self.replaced or self.removed)

    def summary(self) -> str:
        """One line for people: ``web: 1 kept, 0 created, 1 replaced in 1.2s``."""
        return (f"{self.service}: {len(self.kept)} kept, {len(self.created)} created, "
                f"{len(self.replaced)} replaced, {len(self.started)} started, "
                f"{len(self.removed)} removed in {self.duration:.1f}s")


@dataclass
class _Rollout:
    engine: Engine
    spec: ServiceSpec
    wait: str | None
    timeout: float
    progress: Progress
    image_id: str = ""
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    replaced: list[tuple[Ref, str, bool]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    def launch(self, replica: str) -> str:
        """Create, start and wait for a new replica; on failure nothing of it is left."""
        cid = create_replica(self.engine, self.spec, replica, name=replica)
        start_replica(self.engine, self.spec, cid, name=replica)
        if self.wait:
            try:
                wait_for(self.engine, cid, self.wait, timeout=self.timeout, name=replica)
            except errors.OpsKitError:
                _remove_quietly(self.engine, cid)
                raise
        return cid

    def replace(self, replica: str, old: Ref) -> str:
        """Swap ``old`` for a new replica; on failure restore ``old`` under its name."""
        inspect = self.engine.api.inspect_container(old.id)
        stop_first = _publishes_fixed_ports(inspect) or any(
            p.host_port for p in self.spec.port_maps)
        self.engine.api.rename(old.id, f"{replica}.old-{old.id[:8]}")
        stopped = False
        try:
            if stop_first and old.state == "running":
                self.progress(f"{replica}: stopping the old container first (fixed host ports)")
                self.engine.api.stop(old.id, timeout=_stop_timeout(self.spec))
                stopped = True
            new = self.launch(replica)
        except BaseException:
            if not _restore(self.engine, old, replica, restart=stopped):
                self.lost.append(replica)
            raise
        self.replaced.append((old, new, stopped))
        return new

    def roll_back(self) -> list[str]:
        """Undo every replacement and creation made so far, newest first.

        Returns:
            The replicas whose previous container could not be restored.
        """
        lost = []
        for old, new, restart in reversed(self.replaced):
            _remove_quietly(self.engine, new)
            if not _restore(self.engine, old, old.replica, restart=restart):
                lost.append(old.replica)
        for cid in self.created:
            _remove_quietly(self.engine, cid)
        for name in self.networks:
            _remove_unused_network(self.engine, name)
        for name in self.volumes:
            try:
                self.engine.api.remove_volume(name)
            except Exception as exc:
                log.warning("could not remove volume %s made by a failed deploy: %s", name, exc)
        return lost


def _stop_timeout(spec: ServiceSpec) -> int:
    return int(spec.stop_timeout) if spec.stop_timeout is not None else 10


def _publishes_fixed_ports(inspect: dict[str, Any]) -> bool:
    bindings = (inspect.get("HostConfig") or {}).get("PortBindings") or {}
    return any(b.get("HostPort") for items in bindings.values() for b in (items or []))


def _remove_quietly(engine: Engine, cid: str) -> None:
    try:
        engine.api.remove_container(cid, force=True, v=True)
    except Exception as exc:
        log.warning("could not remove container %s: %s", cid[:12], exc)


def _restore(engine: Engine, old: Ref, replica: str, *, restart: bool) -> bool:
    """Give the old container its name back (and start it again if deploy stopped it)."""
    try:
        engine.api.rename(old.id, replica)
        if restart:
            engine.api.start(old.id)
    except Exception as exc:  # the deploy's own error is raised; this one is named in it
        log.error("rollback could not restore %s (%s): %s", replica, old.id[:12], exc)
        return False
    log.info("restored %s (%s)", replica, old.id[:12])
    return True


def _resolve_image(engine: Engine, spec: ServiceSpec, progress: Progress) -> str:
    image = str(spec.image)
    build = spec.build_context
    if build is not None:
        progress(f"building {image} from {build.context}")
        result = build_image(engine, build.context, tag=image, dockerfile=build.dockerfile,
                             buildargs=dict(build.args))
        return result.image_id
    if spec.pull == "always":
        _pull(engine, image)
    try:
        return local_image_id(engine, image)
    except errors.ImageNotFound:
        if spec.pull != "missing":
            raise
    _pull(engine, image)
    return local_image_id(engine, image)


def _pull(engine: Engine, image: str) -> None:
    """``docker pull IMAGE``, only ever when the spec asks for it (``pull=``)."""
    repo, tag = parse_repository_tag(image)
    try:
        engine.api.pull(repo, tag=tag or "latest")
    except Exception as exc:
        raise translate(exc, f"pull of {image} (asked for by the spec)",
                               host=engine.host, target=image) from exc


def _current(engine: Engine, spec: ServiceSpec) -> tuple[dict[str, Ref], list[Ref]]:
    """Owned replicas by replica name, and owned containers that are not wanted any more."""
    wanted = set(spec.replica_names())
    by_replica: dict[str, Ref] = {}
    extra: list[Ref] = []
    refs = [r for r in service_refs(engine, spec.name) if not r.owned_reason(engine)]
    # the container holding the replica's name first; a leftover '<replica>.old-*' of an
    # interrupted deploy takes the name back when nothing holds it
    for ref in sorted(refs, key=lambda r: r.name != r.replica):
        if ref.replica in wanted and ref.replica not in by_replica:
            if ref.name != ref.replica:
                engine.api.rename(ref.id, ref.replica)
                log.info("restored %s from an interrupted deploy", ref.replica)
            by_replica[ref.replica] = ref
        else:
            extra.append(ref)
    for item in list_raw(engine, filters={"name": [f"^/{n}$" for n in wanted]}):
        holder = ref_from_summary(item)
        if holder.name in wanted and (holder.owned_reason(engine) or holder.service != spec.name):
            raise errors.NameConflict(holder.name, holder.id)
    return by_replica, extra


def deploy(engine: Engine, spec: ServiceSpec, *, wait: str | None = "healthy",
           timeout: float = 60.0, progress: Progress | None = None) -> Deployment:
    """Bring a service to its spec, like ``docker run`` made idempotent and safe.

    Args:
        engine: the engine.
        spec: what to run.
        wait: ``"healthy"`` (default; a container without a healthcheck counts once running),
            ``"running"``, or None not to wait.
        timeout: seconds each new replica may take to reach ``wait``.
        progress: called with one line per step (the CLI prints them).

    Raises:
        ImageNotFound: the image is not present and the spec does not allow a pull.
        NameConflict: a replica's name is held by a container opskit does not own.
        PortInUse: a published host port is taken (nothing is left behind).
        DeployFailed: a new replica did not reach ``wait``; carries ``rolled_back`` and the
            :class:`~opskit.base.errors.WaitTimeout` with the probe output and last log lines.
    """
    if wait not in WAITS:
        raise errors.InvalidSpec("wait", f"unknown wait {wait!r}",
                                 allowed="'healthy', 'running' or None")
    say = progress or (lambda line: log.info("%s", line))
    started_at = time.monotonic()
    image_id = _resolve_image(engine, spec, say)
    holder = f"{default_actor()} pid {os.getpid()} deploy {uuid.uuid4().hex[:8]}"
    with service_lock(engine, spec.name, holder=holder,
                      image=image_id, ttl=timeout * (spec.replicas + 1) + 120):
        by_replica, extra = _current(engine, spec)
        ro = _Rollout(engine, spec, wait, timeout, say, image_id=image_id)
        try:
            networks = ensure_networks(engine, spec, created=ro.networks)
            volumes = ensure_volumes(engine, spec, created=ro.volumes)
            for replica in spec.replica_names():
                ro.ids.append(_converge(ro, replica, by_replica.get(replica)))
        except BaseException as exc:
            lost = ro.roll_back() + ro.lost
            if not isinstance(exc, Exception):
                raise  # Ctrl-C: rolled back, and the interrupt goes on
            err = exc if isinstance(exc, errors.OpsKitError) else translate(
                exc, f"deploy of {spec.name}", host=engine.host)
            if lost or isinstance(err, errors.WaitTimeout | errors.EngineError):
                reason = err.message + (f" Could not restore: {', '.join(lost)}." if lost else "")
                raise errors.DeployFailed(spec.name, reason, rolled_back=bool(by_replica) and
                                          not lost, cause=err) from exc
            raise err from exc
        removed = [old.id for old, _, _ in ro.replaced] + [r.id for r in extra]
        for cid in removed:
            _remove_quietly(engine, cid)
    result = Deployment(
        service=spec.name, image_id=image_id, containers=tuple(spec.replica_names()),
        ids=tuple(ro.ids), created=tuple(ro.created), kept=tuple(ro.kept),
        started=tuple(ro.started), replaced=tuple((o.id, n) for o, n, _ in ro.replaced),
        removed=tuple(removed), networks_created=tuple(networks), volumes_created=tuple(volumes),
        duration=time.monotonic() - started_at)
    say(result.summary())
    return result


def _converge(ro: _Rollout, replica: str, old: Ref | None) -> str:
    """Bring one replica to the spec; return its container ID."""
    engine, spec = ro.engine, ro.spec
    if old is None:
        ro.progress(f"{replica}: creating")
        cid = ro.launch(replica)
        ro.created.append(cid)
        return cid
    same = (old.labels.get(L.SPEC_HASH) == L.spec_digest(engine.key, spec.config_hash)
            and old.image_id == ro.image_id)
    if not same:
        ro.progress(f"{replica}: spec changed, replacing {old.id[:12]}")
        return ro.replace(replica, old)
    if old.state in ("running", "paused", "restarting"):
        ro.progress(f"{replica}: unchanged")
        ro.kept.append(old.id)
    else:
        ro.progress(f"{replica}: unchanged, starting it ({old.state})")
        start_replica(engine, spec, old.id, name=replica, discard=False)
        ro.started.append(old.id)
    if ro.wait and old.state != "paused":
        wait_for(engine, old.id, ro.wait, timeout=ro.timeout, name=replica)
    return old.id


def teardown(engine: Engine, service: str, *, volumes: bool = False,
             allow_foreign: bool = False) -> list[str]:
    """Remove every replica of a service and the opskit networks nothing else uses.

    Like ``docker compose down`` (and ``-v`` with ``volumes=True``): named volumes are kept
    unless asked, because they hold data.

    Returns:
        What was removed, as ``container:NAME``, ``network:NAME``, ``volume:NAME``.

    Raises:
        ContainerNotFound, OutOfScope.
    """
    refs = resolve(engine, service, action="teardown", allow_foreign=allow_foreign)
    networks: set[str] = set()
    for ref in refs:
        try:
            data = engine.api.inspect_container(ref.id)
            networks.update(((data.get("NetworkSettings") or {}).get("Networks") or {}).keys())
        except Exception as exc:
            log.debug("inspect of %s before teardown failed: %s", ref.name, exc)
    removed: list[str] = []
    for lease in engine.api.containers(all=True, filters={"label": [
            f"{L.ROLE}=lease", f"{L.SCOPE}={engine.scope}"]}):
        if (lease.get("Labels") or {}).get(L.PREFIX + "lease-for") in {r.id for r in refs} \
                and is_sealed(engine, "container", lease["Id"]):
            _remove_quietly(engine, lease["Id"])  # its incident leases go with it
    for ref in refs:
        try:
            engine.api.remove_container(ref.id, force=True, v=True)
        except Exception as exc:
            raise translate(exc, f"remove of {ref.name}", host=engine.host,
                                   target=ref.name) from exc
        removed.append(f"container:{ref.name}")
    for name in sorted(networks):
        removed.extend(_remove_unused_network(engine, name))
    if volumes:
        removed.extend(_remove_service_volumes(engine, service))
    return removed


def _remove_unused_network(engine: Engine, name: str) -> list[str]:
    try:
        net = engine.api.inspect_network(name)
    except Exception:
        return []
    labels = net.get("Labels") or {}
    if labels.get(L.MANAGED) != "true" or labels.get(L.SCOPE) != engine.scope or \
            not is_sealed(engine, "network", net["Id"]):
        return []  # not opskit's: its labels alone do not make it so
    if net.get("Containers"):
        return []
    try:
        engine.api.remove_network(net["Id"])
    except Exception as exc:
        log.warning("could not remove network %s: %s", name, exc)
        return []
    return [f"network:{name}"]


def _remove_service_volumes(engine: Engine, service: str) -> list[str]:
    found = engine.api.volumes(filters={"label": [f"{L.SERVICE}={service}",
                                                  f"{L.SCOPE}={engine.scope}"]})
    removed = []
    for vol in (found or {}).get("Volumes") or []:
        if not is_sealed(engine, "volume", volume_identity(vol)):
            log.warning("volume %s carries opskit's labels but no seal of this scope: kept",
                        vol["Name"])
            continue
        try:
            engine.api.remove_volume(vol["Name"])
            removed.append(f"volume:{vol['Name']}")
        except Exception as exc:
            log.warning("could not remove volume %s: %s", vol["Name"], exc)
    return removed
