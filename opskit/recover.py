"""One recovery action, start to finish: lease, evidence, act, verify, journal.

:func:`recover` is the only code that changes a container because of a finding. Its steps:

1. take the incident's lease on the engine (:mod:`opskit.lease`); if a peer holds it, write
   ``handled-by-peer`` and stop;
2. capture the evidence (:mod:`opskit.evidence`) before the restart wipes it;
3. write the action journal's ``started`` line (fsync'd);
4. restart (``docker restart -t N``) or recreate from the spec (remove, then deploy);
5. verify the container is running and healthy within the policy's ``verify_timeout``;
6. write the ``done`` line with the result, the state before and after, and the durations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from . import errors
from .actions import ActionJournal
from .engine import Engine
from .event_records import Event
from .evidence import capture_evidence, write_evidence
from .findings import Finding
from .lease import acquire_lease
from .policy import RecoveryPolicy
from .spec import ServiceSpec
from .waiting import wait_for

log = logging.getLogger("opskit")

__all__ = ["recover"]


def recover(engine: Engine, finding: Finding, *, policy: RecoveryPolicy,
            journal: ActionJournal, actor: str, events: Sequence[Event] = (),
            spec: ServiceSpec | None = None, attempt: int = 1,
            detected_at: float | None = None) -> bool | None:
    """Recover one container for one finding.

    Returns:
        True when the container was verified running and healthy afterwards, False when the
        action failed or did not cure it, None when nothing was done (a peer holds the lease,
        or the container is gone).
    """
    cid, name = finding.container_id, finding.container
    common = {"actor": actor, "service": finding.service, "reason": finding.kind,
              "finding_key": finding.key, "detected_at": detected_at}
    try:
        image = engine.api.inspect_container(cid)["Image"]
    except Exception:
        return None  # removed meanwhile: nothing to recover
    lease = acquire_lease(engine, cid, finding.key, holder=actor, image=image)
    if not lease.held:
        journal.note(policy.action, cid, name, "handled-by-peer", **common,
                     details={"holder": lease.holder})
        return None
    evidence = capture_evidence(engine, finding, events=events, write=False)
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
