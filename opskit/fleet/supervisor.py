"""One watchdog per engine of a fleet, under one supervisor.

Each engine's :class:`~opskit.recover.watchdog.Watchdog` watches and acts on that engine alone:
it acts only on what it has just inspected there, so an engine that cannot be observed gets no
action. The supervisor starts them, starts the watchdog of an engine that was unreachable once
it answers again (its first pass reconciles whatever happened meanwhile: it is level-triggered),
and reads them as one: findings, actions and alerts, each row naming its engine.

    sup = fleet.watch(["web"]).start()
    sup.status()     # one row per engine: watching, passes, actions, quarantined, why not
    sup.actions()    # every engine's recoveries, by time, an ``engine`` column first
    sup.stop()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..base.errors import OpsKitError
from ..ops import Ops
from ..recover.rules import RuleConfig
from ..recover.watchdog import Alert, Watchdog
from ..spec.policy import RecoveryPolicy
from ..spec.service import ServiceSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EngineAlert", "Supervisor"]

log = logging.getLogger("opskit")


class Members(Protocol):
    """What the supervisor needs of a fleet (:class:`opskit.Fleet` is one)."""

    timeout: float

    @property
    def reachable(self) -> list[str]: ...
    def select(self, engines: Sequence[str] | None = None) -> list[str]: ...
    def reconnect(self) -> dict[str, str]: ...
    def __getitem__(self, name: str) -> Ops: ...


@dataclass(frozen=True)
class EngineAlert:
    """An :class:`~opskit.recover.watchdog.Alert` and the engine it comes from."""

    engine: str
    alert: Alert


class Supervisor:
    """Watchdogs over the same services on several engines; build one with
    :meth:`opskit.Fleet.watch`.

    Args:
        fleet: the fleet.
        services: the services to watch (all of opskit's in scope when omitted).
        engines: the engines to watch (all of the fleet's by default).
        policy, rules, specs, relist_every, record_bundles: as :meth:`opskit.Ops.watch`, the
            same on every engine.
        alert: called with an :class:`EngineAlert` when a person should know.
        retry_every: seconds between attempts to reach an engine that is not watched yet.
    """

    def __init__(self, fleet: Members, services: Sequence[str] | None = None, *,
                 engines: Sequence[str] | None = None,
                 policy: RecoveryPolicy | Mapping[str, RecoveryPolicy] | None = None,
                 rules: RuleConfig | None = None, specs: Mapping[str, ServiceSpec] | None = None,
                 relist_every: float = 5.0, record_bundles: bool = True,
                 alert: Callable[[EngineAlert], None] | None = None,
                 retry_every: float = 10.0) -> None:
        self.fleet = fleet
        self.services = list(services) if services is not None else None
        self.engines = fleet.select(engines)
        self.policy = policy
        self.rules = rules
        self.specs = dict(specs or {})
        self.relist_every = relist_every
        self.record_bundles = record_bundles
        self.alert = alert
        self.retry_every = retry_every
        self.watchdogs: dict[str, Watchdog] = {}
        self.errors: dict[str, str] = {}
        self.alerts: list[EngineAlert] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return (f"<opskit.Supervisor watching {len(self.watchdogs)} of {len(self.engines)} "
                f"engines>")

    def start(self) -> Supervisor:
        """Start a watchdog on every chosen engine that answers, and keep trying the others;
        after :meth:`stop`, the watchdogs start again (each re-lists what it watches)."""
        self._stop.clear()
        with self._lock:
            stopped = [w for w in self.watchdogs.values() if not w.running]
        for watchdog in stopped:
            watchdog.start()
        self._start_missing()
        if self._thread is None:
            self._thread = threading.Thread(target=self._retry_loop, daemon=True,
                                            name="opskit-fleet-supervisor")
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop every watchdog and the retries; what they found and did stays readable."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.fleet.timeout + 5)
            self._thread = None
        with self._lock:
            watchdogs = list(self.watchdogs.values())
        for watchdog in watchdogs:
            watchdog.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stop.is_set()

    def _retry_loop(self) -> None:
        while not self._stop.wait(self.retry_every):
            try:
                self._start_missing()
            except Exception:  # the loop must outlive any one engine's trouble
                log.exception("fleet supervisor: retry failed")

    def _start_missing(self) -> None:
        missing = [name for name in self.engines if name not in self.watchdogs]
        if not missing:
            return
        if any(name not in self.fleet.reachable for name in missing):
            self.fleet.reconnect()
        for name in missing:
            if self._stop.is_set():
                return
            try:
                watchdog = self._watchdog(name).start()
            except OpsKitError as exc:
                with self._lock:
                    self.errors[name] = exc.message
                log.warning("fleet supervisor: no watchdog on %s yet: %s", name, exc.message)
                continue
            with self._lock:
                self.watchdogs[name] = watchdog
                self.errors.pop(name, None)
            log.info("fleet supervisor: watching %s", name)

    def _watchdog(self, name: str) -> Watchdog:
        ops = self.fleet[name]  # EngineUnavailable while it is not reachable

        def tell(alert: Alert) -> None:
            said = EngineAlert(name, alert)
            with self._lock:
                self.alerts.append(said)
            if self.alert is not None:
                self.alert(said)

        return ops.watch(self.services, policy=self.policy, rules=self.rules, specs=self.specs,
                         relist_every=self.relist_every, record_bundles=self.record_bundles,
                         alert=tell)

    # -- reading ------------------------------------------------------------------------------

    def status(self) -> pd.DataFrame:
        """One row per engine: watched or why not, passes, actions, findings, quarantined and
        left-down replicas."""
        import pandas as pd

        rows = []
        with self._lock:
            watchdogs, errors = dict(self.watchdogs), dict(self.errors)
        for name in self.engines:
            watchdog = watchdogs.get(name)
            if watchdog is None:
                rows.append({"engine": name, "watching": False,
                             "error": errors.get(name, "not started")})
                continue
            state = watchdog.status()
            rows.append({"engine": name, "watching": bool(state["running"]), "error": "",
                         "watched": len(state["watched"]), "passes": state["passes"],
                         "actions": state["actions"], "findings": state["findings"],
                         "errors": state["errors"], "quarantined": state["quarantined"],
                         "left_down": sorted(state["left_down"])})
        frame = pd.DataFrame(rows)
        frame["engine"] = pd.Categorical(frame["engine"], categories=self.engines)
        return frame

    def findings(self) -> pd.DataFrame:
        """Every engine's current findings, an ``engine`` column first."""
        return self._merged(lambda watchdog: watchdog.findings_frame(), "since")

    def actions(self) -> pd.DataFrame:
        """Every engine's recoveries (its watchdog's rows of the action journal), by time, an
        ``engine`` column first: one timeline across engines."""
        return self._merged(lambda watchdog: watchdog.actions(), "ts")

    def _merged(self, read: Callable[[Watchdog], pd.DataFrame], by: str) -> pd.DataFrame:
        import pandas as pd

        with self._lock:
            watchdogs = dict(self.watchdogs)
        frames = []
        for name, watchdog in watchdogs.items():
            frame = read(watchdog).copy()
            frame.insert(0, "engine", name)
            frames.append(frame)
        if not frames:
            return pd.DataFrame({"engine": pd.Categorical([], categories=self.engines)})
        merged = pd.concat(frames, ignore_index=True)
        merged["engine"] = pd.Categorical(merged["engine"], categories=self.engines)
        if by in merged:
            merged = merged.sort_values(by, kind="stable")
        return merged.reset_index(drop=True)
