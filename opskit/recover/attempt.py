"""One recovery action, start to finish: lease, evidence, act, verify, journal.

:func:`recover` is the only code that changes a container because of a finding. Its steps:

1. take the incident's lease on the engine (:mod:`opskit.act.lease`); if a peer holds it, write
   ``handled-by-peer`` and stop; under the lease, check that the failing run is still the
   container's current one (a peer that acted and released the lease started a new run);
2. capture the evidence (:mod:`opskit.recover.evidence`) before the restart wipes it, meanwhile (the
   lease's ``docker create`` and the evidence's inspect and logs are independent engine calls;
   evidence captured for an incident a peer holds is dropped unwritten); an exit 137 the
   evidence shows as ``State.OOMKilled`` is journaled as ``oom_killed``;
   a decision gone stale meanwhile (the container runs again, or is healthy again) is journaled
   as ``skipped`` and nothing is done;
3. write the action journal's ``started`` line (fsync'd);
4. take the ladder's step: restart (``docker restart -t N``) or recreate from the spec and
   the image that ran (:func:`~opskit.act.create.recreate_replica`: a fresh filesystem);
5. verify the container is running and healthy within the policy's ``verify_timeout`` (an
   ``unhealthy`` verdict after the action ends the wait: the next attempt climbs the ladder);
6. write the ``done`` line with the result, the state before and after, and the durations,
   and release the lease.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from ..act.actions import ActionJournal
from ..act.create import recreate_replica
from ..act.lease import Lease, acquire_lease, release_lease
from ..base import errors
from ..engine.connection import Engine
from ..engine.translate import translate
from ..observe.inspection import parse_engine_time
from ..observe.waiting import wait_for
from ..records.event_records import Event
from ..records.findings import Finding
from ..spec.policy import RecoveryPolicy
from ..spec.service import ServiceSpec
from .evidence import Evidence, capture_evidence, write_evidence

log = logging.getLogger("opskit")

__all__ = ["recover"]


def recover(engine: Engine, finding: Finding, *, policy: RecoveryPolicy,
            journal: ActionJournal, actor: str, events: Sequence[Event] = (),
            spec: ServiceSpec | None = None, attempt: int = 1,
            detected_at: float | None = None, image: str | None = None,
            incident: str | None = None, action: str | None = None) -> bool | None:
    """Recover one container for one finding.

    Args:
        action: the ladder's step to take (``restart`` or ``recreate``; the policy's first
            by default). A recreate without a spec falls back to a restart, and says so.
        image: the container's image ID, when the caller knows it (the lease is created from
            it); read with an inspect otherwise.
        incident: what the lease is keyed on (the finding's key by default). The watchdog
            passes the failing run (container ID and ``State.StartedAt``): peers agree on it
            whether they decided from a ``die`` event or from an inspect, which can see the
            same exit at times some milliseconds apart.

    Returns:
        True when the container was verified running and healthy afterwards, False when the
        action failed or did not cure it, None when nothing was done (a peer holds the lease,
        the failure was over by then, or the container is gone).
    """
    cid, name = finding.container_id, finding.container
    step = action or policy.step(0)
    fallback = ""
    if step == "recreate" and spec is None:
        step, fallback = "restart", "no spec to recreate from (deployed by an older opskit?)"
    common: dict[str, Any] = {"actor": actor, "service": finding.service, "reason": finding.kind,
                              "finding_key": finding.key, "detected_at": detected_at}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="opskit-evidence") as pool:
        captured = pool.submit(capture_evidence, engine, finding, events=events, write=False)
        lease = _lease(engine, finding, actor, image, incident or finding.key)
        evidence = captured.result()
    if lease is None:
        return None  # removed meanwhile: nothing to recover
    if not lease.held:
        journal.note(step, cid, name, "handled-by-peer", **common,
                     details={"holder": lease.holder})
        return None
    try:
        return _recover_held(engine, finding, evidence, policy=policy, journal=journal,
                             common=common, step=step, fallback=fallback, spec=spec,
                             attempt=attempt, incident=incident, image=image)
    finally:
        release_lease(engine, lease)


def _recover_held(engine: Engine, finding: Finding, evidence: Evidence, *,
                  policy: RecoveryPolicy, journal: ActionJournal, common: dict[str, Any],
                  step: str, fallback: str, spec: ServiceSpec | None, attempt: int,
                  incident: str | None, image: str | None) -> bool | None:
    """The steps of :func:`recover` taken under the incident's lease."""
    cid, name = finding.container_id, finding.container
    over = _run_over(engine, cid, incident)
    if over or _cured(evidence):
        journal.note(step, cid, name, "skipped", **common,
                     details={"why": over or "no longer failing when the lease was taken",
                              "state": (evidence.inspect.get("State") or {}).get("Status")})
        return None
    evidence = _classified(evidence)
    common["reason"] = evidence.finding.kind
    try:
        evidence = write_evidence(evidence)
    except errors.StorageError as exc:  # act anyway: the failure outranks its paperwork
        log.warning("evidence for %s not written: %s", name, exc.message)
    evidence_path = str(evidence.path or "")
    state_before = str((evidence.inspect.get("State") or {}).get("Status", ""))
    record = journal.begin(step, cid, name, state_before=state_before, **common)
    started = time.monotonic()
    failed_at = finding.since.timestamp()
    extra = {"attempt": attempt, "evidence": evidence_path, "failed_at": failed_at,
             **({"fallback": fallback} if fallback else {})}
    acted_from = datetime.now(UTC)
    try:
        new_id = _act(engine, finding, policy, spec, step, common["actor"],
                      image or str(evidence.inspect.get("Image") or ""))
        acted_s = time.monotonic() - started
        wait_for(engine, new_id, "healthy", timeout=policy.verify_timeout, name=name,
                 unhealthy_after=acted_from)
    except errors.ContainerNotFound:
        journal.finish(record, "skipped", error=f"{name} was removed meanwhile",
                       state_after="removed", details=extra)
        return None
    except errors.Conflict as exc:  # a deploy of the service is under way: it decides
        journal.finish(record, "skipped", error=exc.message, state_after=_state(engine, cid),
                       details=extra)
        return None
    except errors.OpsKitError as exc:
        journal.finish(record, "failed", error=exc.message, state_after=_state(engine, cid),
                       details=extra)
        log.warning("recovery of %s failed: %s", name, exc.message)
        return False
    now = time.time()
    journal.finish(record, "ok", state_after="running", container_id=new_id,
                   details={**extra, "act_s": round(acted_s, 3), "recovered_at": now,
                            "time_to_recover_s": round(now - failed_at, 3)})
    log.info("recovered %s (%s) in %.2fs", name, finding.kind, now - failed_at)
    return True


def _lease(engine: Engine, finding: Finding, actor: str, image: str | None,
           incident: str) -> Lease | None:
    """The incident's lease, created from ``image`` (or the container's, read by inspect);
    None when the container is gone."""
    cid = finding.container_id
    if image:
        try:
            return acquire_lease(engine, cid, incident, holder=actor, image=image)
        except errors.NotFound:
            pass  # the image was removed since: ask the container which one it runs
    try:
        image = str(engine.api.inspect_container(cid)["Image"])
    except Exception:
        return None
    return acquire_lease(engine, cid, incident, holder=actor, image=image)


def _cured(evidence: Evidence) -> bool:
    """Whether the evidence shows the failure over (started again by someone, or healthy
    again): acting on a decision that went stale during the backoff would make things worse."""
    state = evidence.inspect.get("State") or {}
    status, health = state.get("Status"), state.get("Health") or {}
    kind = evidence.finding.kind
    if kind in ("exited_nonzero", "exited_zero", "oom_killed"):
        return status == "running"
    if kind == "unhealthy":  # healthy by the engine and by its latest probe (opskit may count
        probes = health.get("Log") or [{}]  # failing probes before the engine does)
        return status == "running" and health.get("Status") == "healthy" and \
            probes[-1].get("ExitCode") == 0
    return False


def _classified(evidence: Evidence) -> Evidence:
    """The evidence with its finding made ``oom_killed`` when the inspect shows an OOM kill.

    The watchdog decides an exit 137 from the ``die`` event alone, before the engine says
    whether the kernel's OOM killer sent it; the evidence's inspect, taken after the engine's
    exit handling, does.
    """
    finding, state = evidence.finding, evidence.inspect.get("State") or {}
    if finding.kind != "exited_nonzero" or not state.get("OOMKilled"):
        return evidence
    limit = int((evidence.inspect.get("HostConfig") or {}).get("Memory") or 0)
    oom = dataclasses.replace(
        finding, kind="oom_killed",
        evidence={**finding.evidence, "oom_killed": True, "memory_limit": limit,
                  "decided_as": "exited_nonzero"},
        hint=f"Container '{finding.container}' was killed by the kernel for memory"
        f"{f' at its {limit / 2**20:g} MiB limit' if limit else ''}: raise the limit or find "
        "what grows.")
    return dataclasses.replace(evidence, finding=oom)


def _run_over(engine: Engine, cid: str, incident: str | None) -> str:
    """Why the failing run the incident names is over (``""`` while it is not): the container
    was started again since (by a peer that acted and released the lease, or by a person)."""
    if not incident or ":run:" not in incident:
        return ""
    try:
        started = str((engine.api.inspect_container(cid).get("State") or {}).get("StartedAt"))
    except Exception:
        return ""  # gone or busy: the action itself will say
    then = parse_engine_time(incident.partition(":run:")[2])
    now = parse_engine_time(started)
    if then is not None and now is not None and now > then:
        return f"the failing run is over: it was started again at {now.isoformat()}"
    return ""


def _act(engine: Engine, finding: Finding, policy: RecoveryPolicy, spec: ServiceSpec | None,
         step: str, actor: str, image: str) -> str:
    """Restart or recreate; return the ID of the container to verify."""
    cid = finding.container_id
    if step == "recreate" and spec is not None:
        replica = finding.container
        return recreate_replica(engine, spec, cid, replica=replica, image_id=image,
                                holder=actor, stop_timeout=policy.restart_timeout)
    try:
        engine.api.restart(cid, timeout=int(policy.restart_timeout))
    except Exception as exc:
        raise translate(exc, f"restart of {finding.container}", host=engine.host,
                               target=finding.container, kind="container") from exc
    return cid


def _state(engine: Engine, cid: str) -> str:
    try:
        return str(engine.api.inspect_container(cid)["State"]["Status"])
    except Exception:
        return "removed"
