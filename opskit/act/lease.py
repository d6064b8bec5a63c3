"""One actor per incident: a lease held on the Docker host itself.

Two watchdogs (two processes, or two machines watching one engine) that see the same failure
must not both act. The engine already has an atomic compare-and-set: container names are
unique, and ``POST /containers/create`` with a taken name fails with 409. A lease is therefore a
*created, never started* container named after the incident (``opskit-lease-<id>-<key>``),
labelled with its holder and expiry. The first watchdog to create it acts; the other gets 409,
reads the holder from the labels and records that the peer handled it. The holder releases
(removes) the lease once its action is done and verified, and a watchdog sweeps its own leases
when it stops, so ``docker ps -a`` shows none afterwards. Leases also expire after ``ttl``
seconds and are then removed by the next acquirer or sweep, so a holder that died does not
block recovery for ever. A peer that comes after the release does not act twice: a recovery
checks, under the lease, that the run it decided on is still the container's current one.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..base import errors
from ..base import labels as L
from ..engine.connection import Engine
from ..engine.ownership import is_sealed, seal_or_undo
from ..engine.translate import translate

log = logging.getLogger("opskit")

__all__ = ["Lease", "acquire_lease", "lease_name", "release_lease", "service_lock",
           "sweep_leases"]

HOLDER = L.PREFIX + "lease-holder"
EXPIRES = L.PREFIX + "lease-expires"


@dataclass(frozen=True)
class Lease:
    """The outcome of an acquire: ``held`` by us, or by ``holder`` until ``expires``."""

    name: str
    held: bool
    holder: str
    expires: float
    lease_id: str = ""


def lease_name(container_id: str, incident_key: str) -> str:
    """The lease container's name for one incident of one container."""
    digest = hashlib.sha256(incident_key.encode()).hexdigest()[:12]
    return f"opskit-lease-{container_id[:12]}-{digest}"


def acquire_lease(engine: Engine, container_id: str, incident_key: str, *, holder: str,
                  image: str, ttl: float = 600.0) -> Lease:
    """Try to take the lease for an incident (``docker create --name opskit-lease-...``).

    Args:
        container_id: the failing container's full ID.
        incident_key: what identifies the incident (a finding's key).
        holder: who asks (``watchdog:<id>@host``).
        image: a local image ID to create the lease container from (the failing container's
            own image: it is present, and nothing is ever pulled).
        ttl: seconds after which the lease may be broken.

    Raises:
        EngineUnavailable, EngineError: the engine could not be asked.
    """
    name = lease_name(container_id, incident_key)
    for attempt in range(6):
        expires = time.time() + ttl
        labels = {**L.resource_labels(engine.scope, role="lease"), HOLDER: holder,
                  EXPIRES: f"{expires:.3f}", L.PREFIX + "lease-for": container_id}
        try:
            created = engine.api.create_container(image, name=name, labels=labels,
                                                  command=["true"], network_disabled=True)
        except Exception as exc:
            err = translate(exc, f"taking lease {name}", host=engine.host)
            if not (isinstance(err, errors.EngineError) and err.status == 409):
                raise err from exc
        else:
            seal_or_undo(engine, "container", created["Id"],
                         functools.partial(_remove, engine, created["Id"]))
            return Lease(name, True, holder, expires, created["Id"])
        try:  # 409: the name is taken, by a peer's lease or our own
            current = engine.api.inspect_container(name)
        except Exception as exc:
            err = translate(exc, f"reading lease {name}", host=engine.host, kind="container")
            if not isinstance(err, errors.NotFound):
                raise err from exc
            # the engine reserves a name before the container can be inspected; or the
            # lease was released meanwhile: look again shortly
            time.sleep(0.02 * (attempt + 1))
            continue
        got = (current.get("Config") or {}).get("Labels") or {}
        their_expiry = float(got.get(EXPIRES, "0") or 0)
        if not _sealed_soon(engine, current["Id"]):  # a squatter: never removed
            return Lease(name, False, f"a container opskit did not create ({current['Id'][:12]})",
                         their_expiry, current["Id"])
        if got.get(HOLDER) == holder:  # ours already (an earlier attempt on this incident)
            return Lease(name, True, holder, their_expiry, current["Id"])
        if their_expiry > time.time():
            return Lease(name, False, got.get(HOLDER, "?"), their_expiry, current["Id"])
        log.info("lease %s of %s expired; breaking it", name, got.get(HOLDER, "?"))
        _remove(engine, current["Id"])
    return Lease(name, False, "?", 0.0)


@contextmanager
def service_lock(engine: Engine, service: str, *, holder: str, image: str,
                 ttl: float) -> Iterator[Lease]:
    """Hold the lock on changing one service's containers (a deploy, a recreate) while in
    the block; a peer that holds it raises :class:`~opskit.base.errors.Conflict`.

    Raises:
        Conflict: another deploy or recreate of the service holds the lock.
    """
    lease = acquire_lease(engine, "deploy", f"{engine.scope}/{service}", holder=holder,
                          image=image, ttl=ttl)
    if not lease.held:
        raise errors.Conflict(
            f"Another deploy of service '{service}' is in progress (by {lease.holder}).",
            hint=f"wait for it to finish; if its holder died, the lock ({lease.name}) expires "
            "by itself.")
    try:
        yield lease
    finally:
        release_lease(engine, lease)


def release_lease(engine: Engine, lease: Lease) -> bool:
    """Give a held lease back (``docker rm -f opskit-lease-...``); True when removed."""
    if not lease.held or not lease.lease_id:
        return False
    return bool(_remove(engine, lease.lease_id))


def sweep_leases(engine: Engine, *, now: float | None = None, holder: str | None = None) -> int:
    """Remove the lease containers of this scope that expired, and those ``holder`` holds
    (a watchdog that stops); returns how many."""
    now = time.time() if now is None else now
    removed = 0
    try:
        items = engine.api.containers(all=True, filters={"label": [
            f"{L.ROLE}=lease", f"{L.SCOPE}={engine.scope}"]})
    except Exception as exc:
        raise translate(exc, "listing leases", host=engine.host) from exc
    for item in items:
        labels = item.get("Labels") or {}
        if not is_sealed(engine, "container", item["Id"]):
            continue  # lease labels opskit did not seal: not its to remove
        if float(labels.get(EXPIRES, "0") or 0) <= now or (
                holder is not None and labels.get(HOLDER) == holder):
            removed += _remove(engine, item["Id"])
    return removed


SEAL_GRACE = 3.0
"""Seconds a lease found unsealed is looked at again before it counts as a squatter: the
winner of a race seals its lease right after the create (an fsync'd append), and a loser that
inspects it in between must not take the winner for a container opskit did not create."""


def _sealed_soon(engine: Engine, cid: str, grace: float = SEAL_GRACE) -> bool:
    deadline = time.monotonic() + grace
    pause = 0.01
    while not is_sealed(engine, "container", cid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
    return True


def _remove(engine: Engine, cid: str) -> int:
    try:
        engine.api.remove_container(cid, force=True)
        return 1
    except Exception as exc:  # a peer removed it first, or the engine is busy: not fatal
        log.debug("could not remove lease %s: %s", cid[:12], exc)
        return 0
