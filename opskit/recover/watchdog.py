"""The watchdog: level-triggered recovery of opskit's services, with events as the fast path.

Every pass compares what each watched replica's spec wants (running, and healthy when it has a
healthcheck) with what the engine says, and acts on the difference, whatever happened before
the watchdog looked and whichever events it missed. A pass runs for every life-cycle event of a
watched container (a crash is acted on within milliseconds of the engine's ``die``), after each
attempt, and on every re-list (every ``relist_every`` seconds): the re-list is the guarantee.

What each service wants comes from the specs the watchdog is given and, for the others, from the
spec written on the containers themselves (:mod:`opskit.spec.desired`), so a watchdog started later,
or restarted, knows it too. A replica that is down is recovered unless it was stopped on purpose
(:mod:`opskit.recover.intent`: opskit's own stop in the action journal, an API stop or kill in the
events, or in the engine's memory); when the records cannot tell, it is left alone and
``status()`` says so.

Acting follows one path (:mod:`opskit.recover.attempt`): the incident's lease, the evidence, the
action journal, the ladder's step (restart; recreate when a restart did not cure), the verify, the
lease released. The policy (:mod:`opskit.spec.policy`) paces it: backoff, a fast budget, then
quarantine, where it is flagged and alerted and retried slowly until the cause goes away. After
a dependency was recovered, its dependants that need it are restarted in dependency order.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..act.actions import ActionJournal, default_actor
from ..act.lease import sweep_leases
from ..base import errors
from ..base import labels as L
from ..engine.connection import Engine
from ..engine.ownership import is_sealed
from ..engine.targets import owned_reason
from ..engine.translate import translate
from ..observe.health import HealthHistory
from ..observe.inspection import ContainerInfo, health_from_status
from ..observe.journal import EventJournal, default_journal_path
from ..records.event_records import Event, parse_event
from ..records.findings import Finding
from ..spec.desired import spec_from_attrs
from ..spec.policy import ACTIONABLE_KINDS, RecoveryPolicy
from ..spec.service import ServiceSpec
from .reconcile import (
    Alert,
    Reconciler,
    ReplicaState,
    Tracked,
)
from .rules import ContainerView, RuleConfig, evaluate

if TYPE_CHECKING:
    import pandas as pd


log = logging.getLogger("opskit")

__all__ = ["Alert", "BundleRecorder", "Watchdog"]

BundleRecorder = Callable[["Watchdog", Finding], "str | None"]
"""Records an incident bundle around a finding the watchdog acted on; returns its path."""

LIFECYCLE = {"create", "start", "restart", "die", "oom", "kill", "stop", "pause", "unpause",
             "destroy", "health_status", "rename"}


class Watchdog(Reconciler):
    """Keep services running and healthy; recover within a budget; write everything down.

    Args:
        engine: the engine.
        services: service names to watch (None: every opskit service of the scope).
        policy: a :class:`RecoveryPolicy`, or one per service name.
        rules: thresholds of the detection rules; by default with ``expect_running``: a
            watched service should run, so an exit with code 0 is down too (unless on purpose).
        specs: service specs (their ``recovery``, ``depends_on`` and what ``recreate`` makes);
            the others are read back from the containers.
        journal: a running event journal to read (one is started and owned otherwise).
        actions: the action journal to write.
        relist_every: seconds between re-lists (the level-triggered pass over everything).
        bundle_recorder: called as ``bundle_recorder(watchdog, finding)`` after each recovery
            to record an incident bundle (on a thread of its own: recovery never waits for it);
            returns the bundle's path. :meth:`opskit.Ops.watch` wires one that writes into
            ``state_dir()/incidents/``; none is recorded without it.
        alert: called with an :class:`Alert` when a person should know (quarantine, a
            container left down); it must return quickly.
    """

    def __init__(self, engine: Engine, *, services: Sequence[str] | None = None,
                 policy: RecoveryPolicy | Mapping[str, RecoveryPolicy] | None = None,
                 rules: RuleConfig | None = None, specs: Mapping[str, ServiceSpec] | None = None,
                 journal: EventJournal | None = None, actions: ActionJournal | None = None,
                 relist_every: float = 5.0,
                 bundle_recorder: BundleRecorder | None = None,
                 alert: Callable[[Alert], None] | None = None) -> None:
        self.engine = engine
        self.services = set(services or [])
        self._policies = policy if isinstance(policy, Mapping) else {}
        self._default_policy = policy if isinstance(policy, RecoveryPolicy) else RecoveryPolicy()
        self.rules = rules or RuleConfig(expect_running=True)
        self.specs = dict(specs or {})
        self._read_specs: dict[str, ServiceSpec] = {}
        self._journal = journal
        self._owns_journal = journal is None
        self.actions_journal = actions or ActionJournal(host=engine.host)
        self.relist_every = relist_every
        self.alert = alert
        self.alerts: deque[Alert] = deque(maxlen=200)
        self.bundle_recorder = bundle_recorder
        self._recorder: ThreadPoolExecutor | None = None
        self.bundles: list[str] = []
        self.actor = f"watchdog:{uuid.uuid4().hex[:6]}@{default_actor()}"
        self._tracked: dict[str, Tracked] = {}
        self._replicas: dict[str, ReplicaState] = {}
        self._missing: dict[str, str] = {}
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
        """Start watching in background threads (``docker events`` plus a periodic re-list);
        the first pass over every watched container runs before this returns."""
        if self._threads:
            return self
        if self._journal is None:
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
        self._safe(self.relist)
        for target, name in ((self._event_loop, "events"), (self._relist_loop, "relist")):
            thread = threading.Thread(target=target, name=f"opskit-watchdog-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("watchdog %s watching %s", self.actor,
                 ", ".join(sorted(self.services)) or "every service")
        return self

    def stop(self) -> None:
        """Stop watching; recoveries under way finish first (bounded by their verify timeout),
        then the leases this watchdog still holds are removed."""
        self._stop.set()
        if self._sub is not None:
            self._sub.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._recorder is not None:
            self._recorder.shutdown(wait=True, cancel_futures=True)
            self._recorder = None
        try:
            sweep_leases(self.engine, holder=self.actor)
        except errors.OpsKitError as exc:
            log.warning("leases of %s not swept: %s", self.actor, exc.message)
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
        """Counters, and the replicas a person may need to look at.

        ``quarantined``: the fast budget is spent (slow retries go on unless the policy says
        ``quarantine_retry=None``); ``left_down``: replica -> why it is not started (the
        records cannot tell whether it was stopped on purpose); ``stopped_on_purpose``:
        replica -> the record that says so; ``waiting``: replica -> the dependency it waits for;
        ``missing``: replica -> why a replica its spec wants has no container.
        """
        with self._lock:
            names = {t.info.replica or t.info.name: t.info.name for t in self._tracked.values()}
            quarantined = sorted(names.get(k, k) for k, r in self._replicas.items()
                                 if r.state.quarantined)
            left, purposed = {}, {}
            for key, rep in self._replicas.items():
                if rep.intent is None or not self._is_down(key):
                    continue
                if rep.intent[1].on_purpose is None:
                    left[names.get(key, key)] = rep.intent[1].reason
                elif rep.intent[1].on_purpose:
                    purposed[names.get(key, key)] = rep.intent[1].reason
            waiting = {names.get(k, k): r.waiting_on for k, r in self._replicas.items()
                       if r.waiting_on}
            watched = sorted(t.info.name for t in self._tracked.values())
        return {"actor": self.actor, "running": self.running, "watched": watched,
                "quarantined": quarantined, "left_down": left, "stopped_on_purpose": purposed,
                "waiting": waiting, "missing": dict(self._missing), **self.counters,
                "journal": self._journal.status() if self._journal else {}}

    def wait_for_action(self, *, timeout: float = 30.0, result: str | None = None) -> Any:
        """Block until this watchdog journals a finished action (optionally with ``result``);
        return its row, or None after ``timeout`` seconds. For runbooks: inject, then wait."""
        def finished(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[frame["result"].astype(str) != "interrupted"]  # still under way

        seen = set(finished(self.actions())["id"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = finished(self.actions())
            fresh = fresh[~fresh["id"].isin(seen)]
            if result is not None:
                fresh = fresh[fresh["result"].astype(str) == result]
            if len(fresh):
                return fresh.iloc[0]
            time.sleep(0.1)
        return None

    def acknowledge(self, target: str) -> list[str]:
        """Lift the quarantine of a container or every replica of a service (a person's call):
        fast retries resume, with a fresh budget."""
        now, done = datetime.now(UTC), []
        with self._lock:
            for tracked in self._tracked.values():
                info = tracked.info
                if target in (info.name, info.id, info.service):
                    rep = self._replica(info)
                    rep.state.acknowledge(now)
                    rep.noted = ("", "")
                    done.append(info.name)
        for name in done:
            log.info("quarantine of %s acknowledged", name)
        return done

    def recover_now(self, target: str) -> list[str]:
        """Act now on a container or service that is down or unhealthy: a person's call, so it
        also starts what the records could not tell was stopped on purpose (the budget still
        counts the attempt)."""
        acted = []
        for finding in self.findings():
            if target in (finding.container, finding.container_id, finding.service) and \
                    finding.kind in ACTIONABLE_KINDS:
                self._consider(finding, force=True)
                acted.append(finding.container)
        return acted

    # -- the loops ----------------------------------------------------------------------

    def _watched(self, labels: Mapping[str, str], container_id: str = "",
                 image_id: str | None = None) -> bool:
        """Whether a container is one of the watched services' and opskit's: its labels, and
        with its ID its seal, and with its image ID that the labels are not inherited (a pass
        that acts always has both; an event's attributes alone only pre-filter)."""
        if labels.get(L.MANAGED) != "true" or labels.get(L.SCOPE) != self.engine.scope:
            return False
        if self.services and labels.get(L.SERVICE, "") not in self.services:
            return False
        if image_id is not None:
            return owned_reason(self.engine, container_id, dict(labels), image_id,
                                name=labels.get(L.REPLICA, "")) is None
        if L.check_owned(labels, name=labels.get(L.REPLICA, ""), scope=self.engine.scope,
                         key=self.engine.key):
            return False  # forged or foreign labels: never act on it
        return not container_id or is_sealed(self.engine, "container", container_id)

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
            if tracked is None and not self._watched(event.attributes, event.actor_id):
                continue
            if event.base_action == "destroy":
                with self._lock:
                    self._tracked.pop(event.actor_id, None)
                continue
            # kept before the inspect: an inspect that times out must not lose the kill that
            # tells a person's stop from a crash when the die comes
            self._remember(event)
            self._safe(functools.partial(self._pass, event.actor_id, event))

    def _relist_loop(self) -> None:
        while not self._stop.wait(self.relist_every):
            self._safe(self.relist)

    def relist(self) -> None:
        """One level-triggered pass: re-read every watched container (``docker ps -a``, and an
        inspect of those whose listing changed) and reconcile each with what it should be."""
        filters = {"label": [f"{L.MANAGED}=true", f"{L.SCOPE}={self.engine.scope}"]}
        try:
            items = self.engine.api.containers(all=True, filters=filters)
        except Exception as exc:
            raise translate(exc, "listing watched containers", host=self.engine.host
                                   ) from exc
        seen = set()
        names = {str((item.get("Names") or ["/"])[0]).lstrip("/") for item in items}
        for item in items:
            labels = item.get("Labels") or {}
            if labels.get(L.ROLE) == "lease" or not self._watched(
                    labels, item["Id"], str(item.get("ImageID", ""))):
                continue
            name = str((item.get("Names") or ["/"])[0]).lstrip("/")
            replica = labels.get(L.REPLICA, "")
            if replica and name != replica:  # set aside by a recreate or a deploy
                if replica not in names:
                    self._restore_aside(item["Id"], name, replica)
                continue
            seen.add(item["Id"])
            known = self._unchanged(item)
            if known is not None:
                self._evaluate(known, None)  # time-based rules still run on each tick
            else:
                self._pass(item["Id"], None)
        with self._lock:
            for cid in set(self._tracked) - seen:
                self._tracked.pop(cid, None)
        self._missing = self._missing_replicas(names)
        self.counters["passes"] += 1
        sweep_leases(self.engine)  # expired incident leases of this scope

    def _missing_replicas(self, names: set[str]) -> dict[str, str]:
        """Replicas a known spec wants that no container holds: removed by a person (a
        recovery of opskit's never leaves one missing: it sets the old container aside until
        the new one runs). Reported, not recreated: ``docker rm`` is on purpose."""
        out = {}
        for service in sorted(self.services or {*self.specs, *self._read_specs}):
            spec = self.spec_for(service)
            for replica in spec.replica_names() if spec is not None else ():
                if replica not in names:
                    out[replica] = (f"no container of service '{service}' holds the name "
                                    f"(removed): ops.deploy(spec) brings it back")
        return out

    def _restore_aside(self, cid: str, name: str, replica: str) -> None:
        """A replica's container left aside by an interrupted recreate or deploy, with nothing
        under the replica's name: it takes the name back (the next pass reconciles it)."""
        with self._lock:
            rep = self._replicas.get(replica)
            if rep is not None and rep.busy:
                return
        try:
            self.engine.api.rename(cid, replica)
        except Exception as exc:
            log.warning("could not give %s its name back from %s: %s", replica, name, exc)
            return
        self.actions_journal.note("rename", cid, replica, "ok", actor=self.actor,
                                  reason="interrupted recreate", details={"from": name})
        log.info("restored %s from %s (an interrupted recreate or deploy)", replica, name)

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
        if tracked is None or own_probes:
            return None
        info, health = tracked.info, health_from_status(str(item.get("Status", "")))
        if item.get("State") == info.state == "running" and health == info.health and \
                info.health in ("", "healthy"):
            return info
        return None

    # -- one container ------------------------------------------------------------------

    def _remember(self, event: Event) -> None:
        """Add an event to a known container's history, whatever its pass then meets."""
        with self._lock:
            tracked = self._tracked.get(event.actor_id)
            if tracked is not None and event not in tracked.events:
                tracked.events.append(event)

    def _from_event(self, container_id: str, event: Event | None) -> ContainerInfo | None:
        """What a ``die`` event alone says about a container already known.

        The engine answers an inspect only after it has finished its exit handling (about
        60 ms after ``die``, several hundred under load); the event carries what the rules
        need, so the decision does not wait. An exit 137 is decided as a crash here and
        :func:`~opskit.recover.attempt.recover` reads ``State.OOMKilled`` in its evidence. The next
        pass reads the full state.
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
        """Inspect one container (or read a ``die`` event), evaluate the rules, reconcile."""
        known = self._from_event(container_id, event)
        if known is not None:
            self._evaluate(known, event)
            return
        try:
            attrs = self.engine.api.inspect_container(container_id)
        except Exception as exc:
            err = translate(exc, f"inspect of {container_id[:12]}", host=self.engine.host,
                            target=container_id, kind="container")
            if isinstance(err, errors.ContainerNotFound):  # removed: nothing left to watch
                with self._lock:
                    self._tracked.pop(container_id, None)
                return
            raise err from exc
        info = ContainerInfo.from_attrs(attrs)
        raw_labels = dict((attrs.get("Config") or {}).get("Labels") or {})  # unmasked
        if not self._watched(raw_labels, info.id, info.image_id) or (
                info.replica and info.name != info.replica):
            return
        if info.service and self.spec_for(info.service) is None:
            spec, why = spec_from_attrs(attrs, self.engine.key)
            if spec is not None and spec.name == info.service:
                self._read_specs[info.service] = spec
            elif why:
                log.debug("spec of %s not read back from %s: %s", info.service, info.name, why)
        self._health.observe(info.name, info.id, attrs)
        self._evaluate(info, event)

    def _evaluate(self, info: ContainerInfo, event: Event | None) -> None:
        now = datetime.now(UTC)
        lifted = False
        with self._lock:
            tracked = self._tracked.get(info.id)
            if tracked is None:
                tracked = self._tracked[info.id] = Tracked(info=info)
            tracked.info = info
            if event is not None and event not in tracked.events:
                tracked.events.append(event)
            view = ContainerView(info=info, events=list(tracked.events), now=now)
            tracked.findings = evaluate(view, self.rules)
            rep = self._replica(info)
            fine = info.state == "running" and info.health in ("", "healthy") and not any(
                f.kind in ACTIONABLE_KINDS for f in tracked.findings)
            waiting: list[str] = []
            if fine:
                lifted = rep.state.record_healthy(now)
                rep.waiting_on = ""
                waiting = [t.info.id for t in self._tracked.values() if self._replicas.get(
                    t.info.replica or t.info.name, rep).waiting_on == info.name]
        self.counters["findings"] += len(tracked.findings)
        if lifted:
            self._tell("quarantine_lifted", info.name, info.service, f"healthy for "
                       f"{self.policy_for(info.service).reset_after:g}s: fast retries resume")
        for cid in waiting:  # dependants waited for this one: look at them now, not next tick
            self._safe(functools.partial(self._pass, cid, None))
        for finding in tracked.findings:
            if finding.kind in ACTIONABLE_KINDS:
                self._consider(finding, view=view)
                break  # one action per pass and container: the most severe finding
