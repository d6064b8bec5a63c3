"""One recovery action, start to finish: lease, evidence, act, verify, journal.

:func:`recover` is the only code that changes a container because of a finding. Its steps:

1. take the incident's lease on the engine (:mod:`opskit.lease`); if a peer holds it, write
   ``handled-by-peer`` and stop;
2. capture the evidence (:mod:`opskit.evidence`) before the restart wipes it, meanwhile (the
   lease's ``docker create`` and the evidence's inspect and logs are independent engine calls;
   evidence captured for an incident a peer holds is dropped unwritten); an exit 137 the
   evidence shows as ``State.OOMKilled`` is journaled as ``oom_killed``;
   a decision gone stale meanwhile (the container runs again, or is healthy again) is journaled
   as ``skipped`` and nothing is done;
3. write the action journal's ``started`` line (fsync'd);
4. restart (``docker restart -t N``) or recreate from the spec (remove, then deploy);
5. verify the container is running and healthy within the policy's ``verify_timeout``;
6. write the ``done`` line with the result, the state before and after, and the durations.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import errors
from .actions import ActionJournal
from .engine import Engine
from .event_records import Event
from .evidence import Evidence, capture_evidence, write_evidence
from .findings import Finding
from .lease import Lease, acquire_lease
from .policy import RecoveryPolicy
from .spec import ServiceSpec
from .waiting import wait_for

log = logging.getLogger("opskit")

__all__ = ["recover"]


def recover(engine: Engine, finding: Finding, *, policy: RecoveryPolicy,
            journal: ActionJournal, actor: str, events: Sequence[Event] = (),
            spec: ServiceSpec | None = None, attempt: int = 1,
            detected_at: float | None = None, image: str | None = None,
            incident: str | None = None) -> bool | None:
    """Recover one container for one finding.

    Args:
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
    common: dict[str, Any] = {"actor": actor, "service": finding.service, "reason": finding.kind,
                              "finding_key": finding.key, "detected_at": detected_at}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="opskit-evidence") as pool:
        captured = pool.submit(capture_evidence, engine, finding, events=events, write=False)
        lease = _lease(engine, finding, actor, image, incident or finding.key)
        evidence = captured.result()
    if lease is None:
        return None  # removed meanwhile: nothing to recover
    if not lease.held:
        journal.note(policy.action, cid, name, "handled-by-peer", **common,
                     details={"holder": lease.holder})
        return None
    if _cured(evidence):
        journal.note(policy.action, cid, name, "skipped", **common,
                     details={"why": "no longer failing when the lease was taken",
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
    record = journal.begin(policy.action, cid, name, state_before=state_before, **common)
    started = time.monotonic()
    failed_at = finding.since.timestamp()
    try:
        new_id = _act(engine, finding, policy, spec)
        acted_s = time.monotonic() - started
        wait_for(engine, new_id, "healthy", timeout=policy.verify_timeout, name=name)
    except errors.ContainerNotFound:
        journal.finish(record, "skipped", error=f"{name} was removed meanwhile",
                       state_after="removed", details={"attempt": attempt,
                                                       "evidence": evidence_path})
        return None
    except errors.OpsKitError as exc:
        journal.finish(record, "failed", error=exc.message, state_after=_state(engine, cid),
                       details={"attempt": attempt, "evidence": evidence_path,
                                "failed_at": failed_at})
        log.warning("recovery of %s failed: %s", name, exc.message)
        return False
    now = time.time()
    journal.finish(record, "ok", state_after="running", container_id=new_id,
                   details={"attempt": attempt, "evidence": evidence_path,
                            "failed_at": failed_at, "act_s": round(acted_s, 3),
                            "recovered_at": now,
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


def _act(engine: Engine, finding: Finding, policy: RecoveryPolicy,
         spec: ServiceSpec | None) -> str:
    """Restart or recreate; return the ID of the container to verify."""
    cid = finding.container_id
    if policy.action == "recreate":
        if spec is None:
            raise errors.InvalidSpec("recovery.action", f"recreate of '{finding.container}' "
                                     "needs the service's spec",
                                     hint="give the watchdog specs={service: spec}, or use "
                                     "action='restart'.")
        from .deploy import deploy

        try:
            engine.api.remove_container(cid, force=True)
        except Exception as exc:
            raise errors.translate(exc, f"remove of {finding.container}", host=engine.host,
                                   kind="container") from exc
        result = deploy(engine, spec, wait=None)
        for name, new_id in zip(result.containers, result.ids, strict=True):
            if name == finding.container:
                return new_id
        return result.ids[0]
    try:
        engine.api.restart(cid, timeout=int(policy.restart_timeout))
    except Exception as exc:
        raise errors.translate(exc, f"restart of {finding.container}", host=engine.host,
                               target=finding.container, kind="container") from exc
    return cid


def _state(engine: Engine, cid: str) -> str:
    try:
        return str(engine.api.inspect_container(cid)["State"]["Status"])
    except Exception:
        return "removed"
