"""The watchdog: event-driven detection and bounded, audited recovery of opskit's services.

It reads the event journal's stream (so it learns of a crash within milliseconds of the engine),
re-lists the watched containers every few seconds (to catch what events cannot say, such as a
container paused for too long), runs the pure rules of :mod:`opskit.rules` on each changed
container, and asks the container's :class:`~opskit.policy.RecoveryState` whether to act.

Acting follows one path (:mod:`opskit.recover`): take the incident's lease on the engine (so two
watchdogs never both act), capture the evidence, write the action journal's ``started`` line,
restart or recreate, verify the container is running and healthy, write the ``done`` line. It
never acts on an intentional stop, while the engine's own restart policy is at work, on a paused
container, on a probe that could not run, or on a failure that happened before it started
(those are reported, and ``recover_now`` acts on them on request).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import errors
from . import labels as L
from .actions import ActionJournal, default_actor
from .engine import Engine
from .event_records import Event, parse_event
from .findings import Finding
from .health import HealthHistory
from .inspection import ContainerInfo, health_from_status
from .lease import sweep_leases
from .policy import ACTIONABLE_KINDS, RecoveryPolicy, RecoveryState
from .recover import recover
from .rules import ContainerView, RuleConfig, engine_restarting, evaluate, intentional_stop
from .spec import ServiceSpec

if TYPE_CHECKING:
    import pandas as pd

    from .journal import EventJournal

log = logging.getLogger("opskit")

__all__ = ["Watchdog"]

LIFECYCLE = {"create", "start", "restart", "die", "oom", "kill", "stop", "pause", "unpause",
             "destroy", "health_status"}


def _run_key(info: ContainerInfo) -> str | None:
    """One run of a container (its ID and ``State.StartedAt``): what an incident's lease is
    keyed on, so peers that saw the same failure at different moments take the same lease."""
    return f"{info.id}:run:{info.started_at.isoformat()}" if info.started_at else None


@dataclass
class _Tracked:
    """What the watchdog keeps about one container."""

    info: ContainerInfo
    state: RecoveryState
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=300))
    findings: list[Finding] = field(default_factory=list)
    decided: set[str] = field(default_factory=set)
    busy: bool = False


class Watchdog:
    """Watch services, detect failures, recover within a budget, and write everything down.

    Args:
        engine: the engine.
        services: service names to watch (None: every opskit service of the scope).
        policy: a :class:`RecoveryPolicy`, or one per service name.
        rules: thresholds of the detection rules.
        specs: service specs, needed for ``action="recreate"``.
        journal: a running event journal to read (one is started and owned otherwise).
        actions: the action journal to write.
        relist_every: seconds between re-lists.
        act_on_existing: also act on failures that began before the watchdog started.
        record_bundles: after each recovery, record an incident bundle around the finding into
            ``state_dir()/incidents/`` (on a thread of its own: recovery never waits for it).
    """

    def __init__(self, engine: Engine, *, services: Sequence[str] | None = None,
                 policy: RecoveryPolicy | Mapping[str, RecoveryPolicy] | None = None,
                 rules: RuleConfig | None = None, specs: Mapping[str, ServiceSpec] | None = None,
                 journal: EventJournal | None = None, actions: ActionJournal | None = None,
                 relist_every: float = 5.0, act_on_existing: bool = False,
                 record_bundles: bool = True) -> None:
        self.engine = engine
        self.services = set(services or [])
        self._policies = policy if isinstance(policy, Mapping) else {}
        self._default_policy = policy if isinstance(policy, RecoveryPolicy) else RecoveryPolicy()
        self.rules = rules or RuleConfig()
        self.specs = dict(specs or {})
        self._journal = journal
        self._owns_journal = journal is None
        self.actions_journal = actions or ActionJournal(host=engine.host)
        self.relist_every = relist_every
        self.act_on_existing = act_on_existing
        self.record_bundles = record_bundles
        self._recorder: ThreadPoolExecutor | None = None
        self.bundles: list[str] = []
        self.actor = f"watchdog:{uuid.uuid4().hex[:6]}@{default_actor()}"
        self._tracked: dict[str, _Tracked] = {}
        self._health = HealthHistory()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None
        self._sub: Any = None
        self.started_at: datetime | None = None
        self.counters = {"events": 0, "passes": 0, "findings": 0, "actions": 0, "errors": 0}

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> Watchdog:
        """Start watching in background threads (``docker events`` plus a periodic re-list)."""
        if self._threads:
            return self
        if self._journal is None:
            from .events import default_journal_path
            from .journal import EventJournal

            # its own journal needs only life-cycle events: healthcheck probes alone are three
            # exec events per container per interval (92 a second for 50 containers)
            path = default_journal_path(self.engine.host).with_suffix(".watchdog.jsonl")
            self._journal = EventJournal(self.engine, path, filters={
                "type": ["container"], "event": sorted(LIFECYCLE)})
        if not self._journal.running:
            self._journal.start()
        self._sub = self._journal.subscribe()
        self.started_at = datetime.now(UTC)
        self._stop.clear()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="opskit-recover")
        self._recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opskit-record")
        self._safe(self._resume_interrupted)
        self.relist()
        for target, name in ((self._event_loop, "events"), (self._relist_loop, "relist")):
            thread = threading.Thread(target=target, name=f"opskit-watchdog-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("watchdog %s watching %s", self.actor,
                 ", ".join(sorted(self.services)) or "every service")
        return self

    def stop(self) -> None:
        """Stop watching; recoveries under way finish first (bounded by their verify timeout)."""
        self._stop.set()
        if self._sub is not None:
            self._sub.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._recorder is not None:
            self._recorder.shutdown(wait=True, cancel_futures=True)
            self._recorder = None
        if self._owns_journal and self._journal is not None:
            self._journal.stop()

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the watchdog threads run."""
        return bool(self._threads) and not self._stop.is_set()

    # -- what it knows ------------------------------------------------------------------

    @property
    def policy(self) -> RecoveryPolicy:
        """The default recovery policy (services without one of their own follow it)."""
        return self._default_policy

    def policy_for(self, service: str) -> RecoveryPolicy:
        """The recovery policy that governs ``service``: the one given to the watchdog for it
        by name, else its spec's ``recovery``, else the watchdog's default."""
        spec = self.specs.get(service)
        return (self._policies.get(service) or (spec.recovery if spec is not None else None)
                or self._default_policy)

    def findings(self) -> list[Finding]:
        """The current findings of every watched container."""
        with self._lock:
            return [f for t in self._tracked.values() for f in t.findings]

    def findings_frame(self) -> pd.DataFrame:
        """The current findings as a DataFrame (one row each)."""
        import pandas as pd

        rows = [f.to_dict() for f in self.findings()]
        return pd.DataFrame(rows, columns=["container_id", "container", "service", "kind",
                                           "severity", "since", "evidence", "hint",
                                           "failure_class"])

    def actions(self) -> pd.DataFrame:
        """This watchdog's rows of the action journal."""
        frame = self.actions_journal.frame()
        return frame[frame["actor"].astype(str) == self.actor].reset_index(drop=True)

    def status(self) -> dict[str, Any]:
        """Counters, quarantined containers and the journal's own status."""
        with self._lock:
            quarantined = sorted(t.info.name for t in self._tracked.values()
                                 if t.state.quarantined)
            watched = sorted(t.info.name for t in self._tracked.values())
        return {"actor": self.actor, "running": self.running, "watched": watched,
                "quarantined": quarantined, **self.counters,
                "journal": self._journal.status() if self._journal else {}}

    def wait_for_action(self, *, timeout: float = 30.0, result: str | None = None) -> Any:
        """Block until this watchdog journals a finished action (optionally with ``result``);
        return its row, or None after ``timeout`` seconds. For runbooks: inject, then wait."""
        seen = len(self.actions())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self.actions()
            fresh = frame.iloc[seen:]
            fresh = fresh[fresh["result"].astype(str) != "interrupted"]  # still under way
            if result is not None:
                fresh = fresh[fresh["result"].astype(str) == result]
            if len(fresh):
                return fresh.iloc[0]
            time.sleep(0.1)
        return None

    def acknowledge(self, target: str) -> list[str]:
        """Lift the quarantine of a container or every replica of a service (a person's call)."""
        now, done = datetime.now(UTC), []
        with self._lock:
            for tracked in self._tracked.values():
                if target in (tracked.info.name, tracked.info.id, tracked.info.service):
                    tracked.state.acknowledge(now)
                    tracked.decided.clear()
                    done.append(tracked.info.name)
        for name in done:
            log.info("quarantine of %s acknowledged", name)
        return done

    def recover_now(self, target: str) -> list[str]:
        """Act on the current actionable findings of a container or service now, bypassing the
        'failed before the watchdog started' rule (the budget and quarantine still hold)."""
        acted = []
        for finding in self.findings():
            if target in (finding.container, finding.container_id, finding.service) and \
                    finding.kind in ACTIONABLE_KINDS:
                self._consider(finding, force=True)
                acted.append(finding.container)
        return acted

    def _resume_interrupted(self) -> None:
        """Finish recoveries a killed watchdog left half done.

        A recovery interrupted mid-restart can leave its container stopped by opskit's own
        request (which the rules then read as an intentional stop), or still unhealthy from
        before this watchdog started (which it would otherwise only report). Such a container
        is recovered again, as a new journaled action.
        """
        frame = self.actions_journal.frame()
        cut = frame[(frame["result"].astype(str) == "interrupted")
                    & frame["actor"].astype(str).str.startswith("watchdog:")]
        for cid in dict.fromkeys(cut["container_id"]):
            try:
                info = ContainerInfo.from_attrs(self.engine.api.inspect_container(cid))
            except Exception:
                continue  # removed since
            stuck = info.state in ("exited", "created") or (
                info.state == "running" and info.health == "unhealthy")
            if not self._watched(info.labels) or not stuck:
                continue
            since = info.finished_at or datetime.now(UTC)
            finding = Finding(container_id=cid, container=info.name, service=info.service,
                              kind="interrupted_recovery", severity="critical", since=since,
                              evidence={"exit_code": info.exit_code}, failure_class="recovery",
                              hint="a watchdog was killed while recovering this container.")
            with self._lock:
                self._tracked[cid] = _Tracked(info=info,
                                              state=RecoveryState(self.policy_for(info.service)))
            recover(self.engine, finding, policy=self.policy_for(info.service),
                    journal=self.actions_journal, actor=self.actor,
                    spec=self.specs.get(info.service), detected_at=time.time())

    # -- the loops ----------------------------------------------------------------------

    def _watched(self, labels: Mapping[str, str]) -> bool:
        if labels.get(L.MANAGED) != "true" or labels.get(L.SCOPE) != self.engine.scope:
            return False
        if L.check_owned(labels, name=labels.get(L.REPLICA, ""), scope=self.engine.scope,
                         key=self.engine.key):
            return False  # forged or foreign labels: never act on it (RELIABILITY row 14)
        return not self.services or labels.get(L.SERVICE, "") in self.services

    def _event_loop(self) -> None:
        while not self._stop.is_set():
            record = self._sub.get(timeout=0.5)
            if record is None:
                continue
            if record.kind == "gap":
                self._safe(self.relist)
                continue
            if record.type != "container" or record.base_action not in LIFECYCLE:
                continue
            self.counters["events"] += 1
            event = parse_event({"Type": record.type, "Action": record.action,
                                 "Actor": {"ID": record.actor_id,
                                           "Attributes": dict(record.attributes)},
                                 "timeNano": record.time_nano}, host=record.host)
            with self._lock:
                tracked = self._tracked.get(event.actor_id)
            if tracked is None and not self._watched(event.attributes):
                continue
            if event.base_action == "destroy":
                with self._lock:
                    self._tracked.pop(event.actor_id, None)
                continue
            self._safe(lambda e=event: self._pass(e.actor_id, e))

    def _relist_loop(self) -> None:
        while not self._stop.wait(self.relist_every):
            self._safe(self.relist)

    def _safe(self, call: Any) -> None:
        try:
            call()
        except errors.EngineUnavailable as exc:
            # no action on a host that cannot be observed; the journal reconnects by itself
            self.counters["errors"] += 1
            log.warning("watchdog cannot observe the engine: %s", exc.message)
        except Exception:
            self.counters["errors"] += 1
            log.exception("watchdog pass failed")

    def relist(self) -> None:
        """Re-read every watched container (``docker ps -a`` + inspect) and evaluate it."""
        filters = {"label": [f"{L.MANAGED}=true", f"{L.SCOPE}={self.engine.scope}"]}
        try:
            items = self.engine.api.containers(all=True, filters=filters)
        except Exception as exc:
            raise errors.translate(exc, "listing watched containers", host=self.engine.host
                                   ) from exc
        seen = set()
        for item in items:
            if self._watched(item.get("Labels") or {}) and \
                    (item.get("Labels") or {}).get(L.ROLE) != "lease":
                seen.add(item["Id"])
                known = self._unchanged(item)
                if known is not None:
                    self._evaluate(known, None)  # time-based rules still run on each tick
                else:
                    self._pass(item["Id"], None)
        with self._lock:
            for cid in set(self._tracked) - seen:
                self._tracked.pop(cid, None)
        self.counters["passes"] += 1
        sweep_leases(self.engine)  # expired incident leases of this scope

    def _unchanged(self, item: Mapping[str, Any]) -> ContainerInfo | None:
        """The known state of a listed container when the listing shows nothing new.

        ``docker ps`` carries the state and, in its status text, the health; a running,
        healthy container that was already running and healthy needs no inspect (the engine
        emits an event for every change of either). Probe-counting rules read the health log,
        which only an inspect returns, so they always inspect.
        """
        own_probes = self.rules.unhealthy_after > 1 or self.rules.unhealthy_for is not None
        with self._lock:
            tracked = self._tracked.get(item["Id"])
        if tracked is None or own_probes or tracked.busy:
            return None
        info, health = tracked.info, health_from_status(str(item.get("Status", "")))
        if item.get("State") == info.state == "running" and health == info.health and \
                info.health in ("", "healthy"):
            return info
        return None

    # -- one container ------------------------------------------------------------------

    def _from_event(self, container_id: str, event: Event | None) -> ContainerInfo | None:
        """What a ``die`` event alone says about a container already known.

        The engine answers an inspect only after it has finished its exit handling (about
        60 ms after ``die``, several hundred under load); the event carries what the rules
        need, so the decision does not wait. An exit 137 is decided as a crash here and
        :func:`~opskit.recover.recover` reads ``State.OOMKilled`` in its evidence (this engine
        sends ``oom`` up to 0.4 s after ``die``), journaling an OOM kill as ``oom_killed``; an
        ``oom`` event already seen makes it ``oom_killed`` at once. The next re-list reads the
        full state.
        """
        if event is None or event.base_action != "die":
            return None
        with self._lock:
            tracked = self._tracked.get(container_id)
        if tracked is None or tracked.info.restart_policy not in ("", "no"):
            return None  # the engine may restart it itself: only its inspect can say
        code = event.exit_code
        if code is None:
            return None
        return dataclasses.replace(tracked.info, state="exited", exit_code=code,
                                   finished_at=event.ts, pid=0, oom_killed=False)

    def _pass(self, container_id: str, event: Event | None) -> None:
        """Inspect one container (or read a ``die`` event), evaluate the rules, decide."""
        known = self._from_event(container_id, event)
        if known is not None:
            self._evaluate(known, event)
            return
        try:
            attrs = self.engine.api.inspect_container(container_id)
        except Exception as exc:
            import docker.errors

            if isinstance(exc, docker.errors.NotFound):
                with self._lock:
                    self._tracked.pop(container_id, None)
                return
            raise errors.translate(exc, f"inspect of {container_id[:12]}",
                                   host=self.engine.host) from exc
        info = ContainerInfo.from_attrs(attrs)
        if not self._watched(info.labels):
            return
        self._health.observe(info.name, info.id, attrs)
        self._evaluate(info, event)

    def _evaluate(self, info: ContainerInfo, event: Event | None) -> None:
        container_id = info.id
        now = datetime.now(UTC)
        with self._lock:
            tracked = self._tracked.get(container_id)
            if tracked is None:
                tracked = _Tracked(info=info, state=RecoveryState(self.policy_for(info.service)))
                self._tracked[container_id] = tracked
            tracked.info = info
            if event is not None:
                tracked.events.append(event)
            view = ContainerView(info=info, events=list(tracked.events), now=now)
            tracked.findings = evaluate(view, self.rules)
            if info.state == "running" and info.health in ("", "healthy") and \
                    not tracked.findings:
                tracked.state.record_healthy(now)
        self.counters["findings"] += len(tracked.findings)
        for finding in tracked.findings:
            if finding.kind in ACTIONABLE_KINDS:
                self._consider(finding, view=view)

    def _consider(self, finding: Finding, *, view: ContainerView | None = None,
                  force: bool = False) -> None:
        with self._lock:
            tracked = self._tracked.get(finding.container_id)
            if tracked is None or tracked.busy or (finding.key in tracked.decided and not force):
                return
            if not force and self.started_at and finding.since < self.started_at and \
                    not self.act_on_existing:
                tracked.decided.add(finding.key)
                self.actions_journal.note(
                    "none", finding.container_id, finding.container, "skipped",
                    actor=self.actor, service=finding.service, reason=finding.kind,
                    finding_key=finding.key, details={"why": "failed before the watchdog "
                                                      "started; recover_now() acts on it"})
                return
            restarting = view is not None and engine_restarting(view, self.rules)
            # an asked-for stop explains an exit, not a running container's failure (say, one
            # unhealthy again after an earlier restart, whose kill is still among the events)
            stopped = view is not None and view.info.state in ("exited", "dead") and \
                intentional_stop(view, self.rules)
            decision = tracked.state.decide(finding, datetime.now(UTC),
                                            engine_restarting=restarting,
                                            intentional_stop=stopped)
            tracked.decided.add(finding.key)
            if decision.act:
                tracked.busy = True
        if not decision.act:
            if decision.reason not in ("not actionable kind",):
                self.actions_journal.note(
                    decision.action, finding.container_id, finding.container,
                    "dry-run" if decision.dry_run else
                    ("quarantined" if decision.reason in ("quarantined", "budget exhausted")
                     else "skipped"),
                    actor=self.actor, service=finding.service, reason=finding.kind,
                    finding_key=finding.key, detected_at=time.time(),
                    details={"why": decision.reason, "attempt": decision.attempt,
                             "max_attempts": decision.max_attempts})
            return
        assert self._pool is not None
        self.counters["actions"] += 1
        # the run that failed, as known now: after the backoff the container may run again
        self._pool.submit(self._act, tracked, finding, decision.delay, decision.attempt,
                          time.time(), _run_key(tracked.info), tracked.info.image_id)

    def _record_bundle(self, finding: Finding) -> None:
        """Record an incident bundle around a finding acted on (best effort, logged)."""
        from .bundle import record
        from .evidence import incidents_dir
        from .ops import Ops

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"{finding.container}-{finding.kind}-{stamp}"
        try:
            bundle = record(Ops(self.engine, journal=self.actions_journal), name,
                            [finding.service] if finding.service else None, around=finding,
                            path=incidents_dir() / f"{name}.opsb", watchdog=self)
        except Exception as exc:
            log.warning("incident bundle for %s not recorded: %s", finding.container, exc)
            return
        self.bundles.append(str(bundle.path))

    def _act(self, tracked: _Tracked, finding: Finding, delay: float, attempt: int,
             detected_at: float, incident: str | None, image: str) -> None:
        ok: bool | None = None
        try:
            if delay and self._stop.wait(delay):
                return
            policy = self.policy_for(finding.service)
            ok = recover(self.engine, finding, policy=policy, journal=self.actions_journal,
                         actor=self.actor, events=list(tracked.events),
                         spec=self.specs.get(finding.service), attempt=attempt,
                         detected_at=detected_at, image=image or None, incident=incident)
            if ok is not None and self.record_bundles and self._recorder is not None:
                self._recorder.submit(self._record_bundle, finding)
            if ok is not None:
                with self._lock:
                    tracked.state.record_attempt(datetime.now(UTC), ok)
                    # decide again on this key: still failing, or (after a cure) failing again
                    # within the flap window, which keeps the first spell's key; the policy's
                    # backoff and budget pace it
                    tracked.decided.discard(finding.key)
                    if tracked.state.quarantined:
                        self.actions_journal.note(
                            "quarantine", finding.container_id, finding.container,
                            "quarantined", actor=self.actor, service=finding.service,
                            reason=finding.kind, finding_key=finding.key,
                            details={"attempts": attempt})
        except Exception:
            self.counters["errors"] += 1
            log.exception("recovery of %s failed", finding.container)
        finally:
            with self._lock:
                tracked.busy = False
        if ok is not None and not self._stop.is_set():
            # what happened while this attempt ran (a die during the verify, say) was not acted
            # on then: look at the container again now, so the backoff, not a re-list tick,
            # sets the pace of the next attempt
            self._safe(lambda: self._pass(finding.container_id, None))
