"""The watchdog's decisions and actions on one replica: the level-triggered reconcile step.

:class:`Reconciler` is the part of :class:`~opskit.recover.watchdog.Watchdog` that, given what a
pass found about one container, decides and acts: is it down on purpose
(:mod:`opskit.recover.intent`), is a dependency of it down, what does its
:class:`~opskit.spec.policy.RecoveryState` say (backoff, budget, quarantine, the ladder's step),
then the action through :func:`~opskit.recover.attempt.recover`, and, after a cure, the
dependants that need a restart. The watchdog's loops (events, re-list) and its public surface
live in :mod:`opskit.recover.watchdog`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..act.actions import ActionJournal
from ..base import errors
from ..engine.connection import Engine
from ..observe.inspection import ContainerInfo
from ..records.event_records import Event
from ..records.findings import Finding
from ..spec.dependencies import (
    COMPOSE_DEPENDS_ON,
    Dependency,
    dependency_order,
    from_compose_label,
)
from ..spec.policy import RecoveryPolicy, RecoveryState
from ..spec.service import ServiceSpec
from .attempt import recover
from .intent import StopIntent, stop_intent
from .rules import (
    ContainerView,
    RuleConfig,
    engine_restarting,
    intentional_stop,
)

log = logging.getLogger("opskit")

__all__ = ["Alert", "Reconciler"]

_DOWN = ("exited", "dead", "created")


def _run_key(info: ContainerInfo) -> str | None:
    """One run of a container (its ID and ``State.StartedAt``): what an incident's lease is
    keyed on, so peers that saw the same failure at different moments take the same lease."""
    return f"{info.id}:run:{info.started_at.isoformat()}" if info.started_at else None


@dataclass(frozen=True)
class Alert:
    """What the watchdog tells a person (the ``alert`` callback, and the log at WARNING).

    Attributes:
        kind: ``quarantined`` (the fast budget is spent; slow retries go on),
            ``quarantine_lifted``, ``left_down`` (stopped, and the records cannot tell
            whether on purpose), ``recovered`` (after being quarantined).
        container, service: what it is about; message: one sentence.
    """

    kind: str
    container: str
    service: str
    message: str


@dataclass
class Tracked:
    """What the watchdog keeps about one container."""

    info: ContainerInfo
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=300))
    findings: list[Finding] = field(default_factory=list)


@dataclass
class ReplicaState:
    """What the watchdog keeps about one replica, across its containers (a recreate makes a
    new one): the recovery state, whether an action is under way, what was said."""

    state: RecoveryState
    busy: bool = False
    intent: tuple[str, StopIntent] | None = None  # (run, answer)
    noted: tuple[str, str] = ("", "")  # (run, reason) last journaled without acting
    waiting_on: str = ""


class Reconciler:
    """Decide and act on one replica at a time; the state it shares with the watchdog.

    Not used alone: :class:`~opskit.recover.watchdog.Watchdog` sets these attributes and runs the
    loops that call :meth:`_consider`.
    """

    engine: Engine
    rules: RuleConfig
    specs: dict[str, ServiceSpec]
    actions_journal: ActionJournal
    actor: str
    alert: Callable[[Alert], None] | None
    alerts: deque[Alert]
    bundle_recorder: Callable[[Any, Finding], str | None] | None
    bundles: list[str]
    counters: dict[str, int]
    _read_specs: dict[str, ServiceSpec]
    _policies: Mapping[str, RecoveryPolicy]
    _default_policy: RecoveryPolicy
    _tracked: dict[str, Tracked]
    _replicas: dict[str, ReplicaState]
    _lock: threading.RLock
    _stop: threading.Event
    _pool: ThreadPoolExecutor | None
    _recorder: ThreadPoolExecutor | None

    def relist(self) -> None:
        """One level-triggered pass over every watched container (the watchdog's)."""
        raise NotImplementedError

    def spec_for(self, service: str) -> ServiceSpec | None:
        """The spec a service is held to: the one given, else the one read back from its
        containers (None when neither is known)."""
        return self.specs.get(service) or self._read_specs.get(service)

    def policy_for(self, service: str) -> RecoveryPolicy:
        """The recovery policy that governs ``service``: the one given to the watchdog for it
        by name, else its spec's ``recovery``, else the watchdog's default."""
        spec = self.spec_for(service)
        return (self._policies.get(service) or (spec.recovery if spec is not None else None)
                or self._default_policy)

    def _safe(self, call: Callable[[], Any]) -> None:
        try:
            call()
        except errors.EngineUnavailable as exc:
            # no action on a host that cannot be observed; the journal reconnects by itself
            self.counters["errors"] += 1
            log.warning("watchdog cannot observe the engine: %s", exc.message)
        except Exception:
            self.counters["errors"] += 1
            log.exception("watchdog pass failed")

    def _replica(self, info: ContainerInfo) -> ReplicaState:
        key = info.replica or info.name
        rep = self._replicas.get(key)
        if rep is None:
            rep = self._replicas[key] = ReplicaState(RecoveryState(self.policy_for(info.service)))
        return rep

    def _is_down(self, replica: str) -> bool:
        return any((t.info.replica or t.info.name) == replica and t.info.state in _DOWN
                   for t in self._tracked.values())

    def _intent(self, rep: ReplicaState, view: ContainerView) -> StopIntent:
        """Whether the stopped container was stopped on purpose (cached per run)."""
        info = view.info
        run = f"{info.id}:{info.finished_at}"
        if rep.intent is not None and rep.intent[0] == run:
            return rep.intent[1]
        if any(e.base_action == "die" for e in view.events) and \
                not intentional_stop(view, self.rules):
            answer = StopIntent(False, "it died with no stop or kill asked (events)", "events")
        else:  # what a person did, or what a recovery of ours left: the journals decide
            answer = stop_intent(self.engine, info, seen=view.events,
                                 actions=self.actions_journal.frame(), config=self.rules)
        with self._lock:
            rep.intent = (run, answer)
        return answer

    def _consider(self, finding: Finding, *, view: ContainerView | None = None,
                  force: bool = False) -> None:
        with self._lock:
            tracked = self._tracked.get(finding.container_id)
            if tracked is None:
                return
            info = tracked.info
            view = view or ContainerView(info=info, events=list(tracked.events),
                                         now=datetime.now(UTC))
            rep = self._replica(info)
            if rep.busy:
                return
        intent = None
        if info.state in _DOWN and not force:
            intent = self._intent(rep, view)
            if intent.on_purpose is None:
                self._note(rep, finding, "left down", intent.reason, alert="left_down")
                return
        blocker = "" if force else self._dependency_down(info)
        with self._lock:
            rep.waiting_on = blocker
        if blocker:
            self._note(rep, finding, "waiting for dependency",
                       f"its dependency {blocker} is down; it is restarted once that is healthy")
            return
        restarting = engine_restarting(view, self.rules)
        was_quarantined = rep.state.quarantined
        with self._lock:
            if rep.busy:
                return
            decision = rep.state.decide(finding, datetime.now(UTC), engine_restarting=restarting,
                                        intentional_stop=bool(intent and intent.on_purpose))
            if force and decision.delay:
                decision = dataclasses.replace(decision, delay=0.0)
            if decision.act:
                rep.busy = True
        if rep.state.quarantined and not was_quarantined:
            self._quarantined(finding, decision.attempt - 1)
        if not decision.act:
            if decision.reason != "not actionable kind":
                why = intent.reason if intent is not None and decision.reason == \
                    "intentional stop" else decision.reason
                self._note(rep, finding, decision.reason, why, decision=decision)
            return
        assert self._pool is not None
        self.counters["actions"] += 1
        with self._lock:
            rep.noted = ("", "")
        # the run that failed, as known now: after the backoff the container may run again
        self._pool.submit(self._act, rep, finding, decision.delay, decision.attempt,
                          decision.action, time.time(), _run_key(info), info.image_id)

    def _note(self, rep: ReplicaState, finding: Finding, reason: str, why: str, *,
              decision: Any = None, alert: str = "") -> None:
        """Journal a decision not to act, once per run and reason."""
        run = f"{finding.container_id}:{finding.since.isoformat()}"
        with self._lock:
            if rep.noted == (run, reason):
                return
            rep.noted = (run, reason)
        result = "dry-run" if decision is not None and decision.dry_run else (
            "quarantined" if reason == "quarantined" else "skipped")
        details: dict[str, Any] = {"why": why}
        if decision is not None:
            details.update(attempt=decision.attempt, max_attempts=decision.max_attempts,
                           step=decision.action)
        self.actions_journal.note(
            decision.action if decision is not None else "none", finding.container_id,
            finding.container, result, actor=self.actor, service=finding.service,
            reason=finding.kind, finding_key=finding.key, detected_at=time.time(),
            details=details)
        if alert:
            self._tell(alert, finding.container, finding.service, why)

    def _tell(self, kind: str, container: str, service: str, message: str) -> None:
        alert = Alert(kind, container, service, message)
        self.alerts.append(alert)
        log.warning("opskit alert: %s %s: %s", kind, container, message)
        if self.alert is not None:
            try:
                self.alert(alert)
            except Exception:
                log.exception("the alert callback failed")

    def _quarantined(self, finding: Finding, attempts: int) -> None:
        policy = self.policy_for(finding.service)
        slow = (f"retried every {policy.quarantine_retry:g}s at most until it is healthy"
                if policy.quarantine_retry is not None else "no action until acknowledged")
        self.actions_journal.note("quarantine", finding.container_id, finding.container,
                                  "quarantined", actor=self.actor, service=finding.service,
                                  reason=finding.kind, finding_key=finding.key,
                                  details={"attempts": attempts, "then": slow})
        self._tell("quarantined", finding.container, finding.service,
                   f"{attempts} attempts did not hold; {slow}")

    # -- dependencies ---------------------------------------------------------------------

    def _dependencies(self, info: ContainerInfo) -> tuple[Dependency, ...]:
        spec = self.spec_for(info.service)
        declared = spec.dependencies if spec is not None else ()
        return declared or from_compose_label(info.labels.get(COMPOSE_DEPENDS_ON))

    def _dependency_down(self, info: ContainerInfo) -> str:
        """The first watched dependency of ``info`` that is down or unhealthy (``""``: none)."""
        needs = {d.service for d in self._dependencies(info)}
        if not needs:
            return ""
        with self._lock:
            for tracked in self._tracked.values():
                dep = tracked.info
                if dep.service in needs and (dep.state != "running" or dep.health == "unhealthy"):
                    return dep.name
        return ""

    def _restart_dependants(self, recovered: ContainerInfo, old_id: str) -> None:
        """Restart, in dependency order, the watched replicas that need a service recovered
        just now (``restart: true``, or sharing its network namespace): each as a journaled
        action of its own, within its own budget."""
        with self._lock:
            infos = [t.info for t in self._tracked.values()]
        graph = {i.service: {d.service for d in self._dependencies(i)} for i in infos}

        def shares(info: ContainerInfo) -> bool:  # its network namespace went with it
            mode = str((info.attrs.get("HostConfig") or {}).get("NetworkMode", ""))
            return mode in (f"container:{old_id}", f"container:{recovered.id}")

        # those sharing its namespace first, then the services that depend on it, in order
        sharing = sorted({i.service for i in infos if shares(i)} - {recovered.service})
        order = sharing + [s for s in dependency_order(graph, [recovered.service])
                           if s not in sharing]
        restarted = {recovered.service}
        for service in order:
            for info in infos:
                if info.service != service or info.state != "running":
                    continue
                needs = any(d.restart and d.service in restarted
                            for d in self._dependencies(info))
                if not (shares(info) or needs) or self._stop.is_set():
                    continue
                restarted.add(service)
                finding = Finding(
                    container_id=info.id, container=info.name, service=info.service,
                    kind="dependency_recovered", severity="warning", since=datetime.now(UTC),
                    evidence={"dependency": recovered.name, "shares_network": shares(info)},
                    hint=f"'{recovered.name}' was recovered; '{info.name}' needs it restarted.",
                    failure_class="recovery")
                self._act_on_dependant(info, finding)

    def _act_on_dependant(self, info: ContainerInfo, finding: Finding) -> None:
        with self._lock:
            rep = self._replica(info)
            if rep.busy:
                return
            attempt = rep.state.attempts_in_window(datetime.now(UTC)) + 1
            rep.busy = True
        policy = self.policy_for(info.service)
        try:
            ok = recover(self.engine, finding, policy=policy, journal=self.actions_journal,
                         actor=self.actor, spec=self.spec_for(info.service), attempt=attempt,
                         detected_at=time.time(), image=info.image_id or None,
                         incident=f"{info.id}:dependency:{finding.since.isoformat()}",
                         action="restart")
            if ok is not None:
                with self._lock:
                    rep.state.record_attempt(datetime.now(UTC), ok)
        finally:
            with self._lock:
                rep.busy = False

    # -- acting ---------------------------------------------------------------------------

    def _record_bundle(self, finding: Finding) -> None:
        """Record an incident bundle around a finding acted on (best effort, logged)."""
        if self.bundle_recorder is None:
            return
        try:
            path = self.bundle_recorder(self, finding)
        except Exception as exc:
            log.warning("incident bundle for %s not recorded: %s", finding.container, exc)
            return
        if path:
            self.bundles.append(path)

    def _act(self, rep: ReplicaState, finding: Finding, delay: float, attempt: int, step: str,
             detected_at: float, incident: str | None, image: str) -> None:
        ok: bool | None = None
        try:
            if delay and self._stop.wait(delay):
                return
            with self._lock:
                events = list(self._tracked[finding.container_id].events) \
                    if finding.container_id in self._tracked else []
            ok = recover(self.engine, finding, policy=self.policy_for(finding.service),
                         journal=self.actions_journal, actor=self.actor, events=events,
                         spec=self.spec_for(finding.service), attempt=attempt,
                         detected_at=detected_at, image=image or None, incident=incident,
                         action=step)
            if ok is not None and self.bundle_recorder is not None \
                    and self._recorder is not None:
                self._recorder.submit(self._record_bundle, finding)
            if ok is not None:
                was = rep.state.quarantined
                with self._lock:
                    rep.state.record_attempt(datetime.now(UTC), ok)
                if rep.state.quarantined and not was:
                    self._quarantined(finding, attempt)
                elif ok and was:
                    reset = self.policy_for(finding.service).reset_after
                    self._tell("recovered", finding.container, finding.service,
                               f"healthy again after a slow retry ({step}); still quarantined "
                               f"until healthy for {reset:g}s or acknowledged")
        except Exception:
            self.counters["errors"] += 1
            log.exception("recovery of %s failed", finding.container)
        finally:
            with self._lock:
                rep.busy = False
        if ok and not self._stop.is_set():
            self._safe(lambda: self._after_cure(finding))
        if ok is not None and not self._stop.is_set():
            # what happened while this attempt ran (a die during the verify, say) was not acted
            # on then: look again now, so the backoff, not a re-list tick, sets the pace
            self._safe(self.relist)

    def _after_cure(self, finding: Finding) -> None:
        """After a verified cure: restart the dependants that need it."""
        found = [t.info for t in list(self._tracked.values())
                 if (t.info.replica or t.info.name) == finding.container]
        info: ContainerInfo | None = found[0] if found else None
        try:
            info = ContainerInfo.from_attrs(self.engine.api.inspect_container(finding.container))
        except Exception as exc:
            log.debug("inspect of %s after its cure failed: %s", finding.container, exc)
        if info is not None:
            self._restart_dependants(info, finding.container_id)
